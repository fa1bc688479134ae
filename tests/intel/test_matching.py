"""Live matching and retro-hunts against a real event store: every observable kind, decay,
validity, allowlists applied at match time, incremental index reloads, alerts with the
indicator's context, sightings, and the OTRF recordings ingested through the file path."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pyarrow as pa
import pytest
from sqlalchemy import select

from helpers import datasets
from vigil.alerts import AlertFilter
from vigil.alerts import service as alerts
from vigil.alerts.types import AlertView
from vigil.app import Vigil
from vigil.events.models import Event, LogSource
from vigil.ingest.batches import ParseOptions
from vigil.ingest.files import ingest_inputs
from vigil.ingest.inputs import expand
from vigil.intel import lists, service
from vigil.intel.live import IntelMatcher
from vigil.intel.models import Indicator, Sighting
from vigil.intel.normalize import indicator_id, make_input
from vigil.intel.types import TLP, IndicatorInput, IndicatorType
from vigil.intel.writing import ingest_session
from vigil.store.columns import to_tables

NOW = datetime.now(UTC)
SYSMON = LogSource("windows", "process_creation", None)
HASH = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"


def _store(vigil: Vigil, indicators: list[IndicatorInput]) -> None:
    with vigil.db.session() as session:
        ingest_session(session, indicators, actor="cli:test",
                       allowlists=lists.active_lists(session, vigil.settings.intel))


def _batch(vigil: Vigil, rows: list[dict[str, str]], *, ts: datetime = NOW, prefix: str = "e",
           host: str = "pc1") -> dict[LogSource, pa.Table]:
    events = [Event(id=f"{prefix}{i}", ts=ts, received=ts, source=SYSMON, host=host, format="json",
                    raw="{}", fields=fields) for i, fields in enumerate(rows)]
    tables, _ = to_tables(events)
    vigil.store.write_tables(tables)
    return tables


def _alerts(vigil: Vigil) -> list[AlertView]:
    with vigil.db.session() as session:
        return list(alerts.list_alerts(session, AlertFilter(), limit=500).items)


@pytest.fixture
def matcher(vigil: Vigil) -> Iterator[IntelMatcher]:
    found = IntelMatcher(vigil.db, vigil.store, vigil.settings.intel, reload_seconds=0)
    yield found
    found.close()


def test_every_kind_of_observable_matches_its_fields(vigil: Vigil, matcher: IntelMatcher) -> None:
    _store(vigil, [
        make_input("ipv4", "45.9.148.3", "feed-a", confidence=80, tlp=TLP.AMBER, name="C2 server",
                   attack=("T1071.001",)),
        make_input("cidr", "91.240.118.0/24", "feed-a"), make_input("domain", "evil-c2.ru", "feed-b"),
        make_input("sha256", HASH, "feed-b"), make_input("url", "http://bad.ru/x.exe", "feed-b"),
        make_input("filename", "mimikatz.exe", "feed-b"), make_input("cidr", "2a00:1450::/32", "feed-b"),
        make_input("email", "Boss@Phish.ru", "feed-b"), make_input("user-agent", "EvilBot/1.0", "feed-b"),
        make_input("ja3", "e7d705a3286e19ea42f587b344ee6865", "feed-b"),
    ])
    tables = _batch(vigil, [
        {"DestinationIp": "45.9.148.3"}, {"SourceIp": "::ffff:91.240.118.77"},
        {"QueryName": "a.b.EVIL-C2.ru."}, {"Hashes": f"SHA1=AB,SHA256={HASH.upper()},IMPHASH=00"},
        {"url": "HTTP://BAD.ru/x.exe"}, {"Image": "C:\\Temp\\MimiKatz.exe"},
        {"DestinationIp": "2a00:1450:4001::5"}, {"sender": "boss@phish.ru"},
        {"user_agent": "EvilBot/1.0"}, {"ja3": "E7D705A3286E19EA42F587B344EE6865"},
        {"DestinationIp": "8.8.8.8", "QueryName": "evil-c2.ru.example.org", "Image": "notmimikatz.exe"},
    ])
    result = matcher(tables)
    assert result.hits == 10 and result.alerts_created == 10
    found = {a.rule_title: a for a in _alerts(vigil)}
    c2 = found["Threat intel match: ipv4 45.9.148.3 (C2 server)"]
    assert c2.source == "intel" and c2.rule_author == "feed-a" and c2.severity == "high"
    assert {"intel", "tlp:amber", "intel.confidence.80", "attack.t1071.001",
            "intel.field.DestinationIp"} <= set(c2.tags)
    assert c2.event_ids == ["e0"] and c2.host == "pc1"
    with vigil.db.session() as session:
        row = session.get(Indicator, indicator_id(IndicatorType.IPV4, "45.9.148.3"))
        assert row is not None and row.sightings_seen == 1 and row.last_sighting is not None
        assert session.execute(select(Sighting)).scalars().all()


def test_a_second_batch_folds_into_the_same_alert(vigil: Vigil, matcher: IntelMatcher) -> None:
    _store(vigil, [make_input("ipv4", "45.9.148.3", "feed-a")])
    matcher(_batch(vigil, [{"DestinationIp": "45.9.148.3"}], prefix="a"))
    result = matcher(_batch(vigil, [{"DestinationIp": "45.9.148.3"}], prefix="b"))
    assert result.alerts_created == 0 and result.alerts_updated == 1
    (alert,) = _alerts(vigil)
    assert alert.count == 2


def test_inactive_indicators_do_not_match(vigil: Vigil, matcher: IntelMatcher) -> None:
    old = NOW - timedelta(days=200)
    _store(vigil, [
        make_input("ipv4", "45.9.148.1", "feed", first_seen=old, last_seen=old),  # decayed
        make_input("ipv4", "45.9.148.2", "feed", valid_from=NOW + timedelta(days=1)),
        make_input("ipv4", "45.9.148.3", "feed", valid_until=NOW - timedelta(hours=1)),
        make_input("ipv4", "45.9.148.4", "feed", revoked=True),
        make_input("ipv4", "45.9.148.5", "feed", confidence=10),  # below the threshold at once
        make_input("ipv4", "10.1.2.3", "feed"),  # allowlisted (RFC 1918)
        make_input("ipv4", "45.9.148.6", "feed"),
    ])
    rows = [{"DestinationIp": f"45.9.148.{i}"} for i in range(1, 7)] + [{"DestinationIp": "10.1.2.3"}]
    result = matcher(_batch(vigil, rows))
    assert result.hits == 1
    assert [a.rule_title for a in _alerts(vigil)] == ["Threat intel match: ipv4 45.9.148.6"]


def test_a_list_added_after_the_import_applies_at_match_time(vigil: Vigil, matcher: IntelMatcher) -> None:
    _store(vigil, [make_input("domain", "cdn-cache.net", "feed")])
    with vigil.db.session() as session:
        lists.import_allowlist(session, b'{"name": "our CDN", "type": "hostname", "list": ["cdn-cache.net"]}',
                               vigil.settings.intel, actor="cli:test")
    assert matcher(_batch(vigil, [{"QueryName": "img.cdn-cache.net"}])).hits == 0


def test_the_index_picks_up_new_indicators(vigil: Vigil, matcher: IntelMatcher) -> None:
    _store(vigil, [make_input("ipv4", "45.9.148.3", "feed")])
    assert matcher(_batch(vigil, [{"DestinationIp": "45.9.148.9"}], prefix="a")).hits == 0
    _store(vigil, [make_input("ipv4", "45.9.148.9", "feed")])
    assert matcher(_batch(vigil, [{"DestinationIp": "45.9.148.9"}], prefix="b")).hits == 1
    service.revoke(vigil.db, indicator_id(IndicatorType.IPV4, "45.9.148.9"), vigil.settings.intel,
                   actor="cli:test")
    assert matcher(_batch(vigil, [{"DestinationIp": "45.9.148.9"}], prefix="c")).hits == 0


def test_retro_hunt_matches_new_indicators_over_the_window(vigil: Vigil, matcher: IntelMatcher) -> None:
    _batch(vigil, [{"DestinationIp": "45.9.148.3"}], ts=NOW - timedelta(days=10), prefix="old")
    _batch(vigil, [{"DestinationIp": "45.9.148.3"}], ts=NOW - timedelta(days=400), prefix="ancient")
    assert matcher.retro().hits == 0  # nothing to hunt yet: marks the start
    _store(vigil, [make_input("ipv4", "45.9.148.3", "feed", confidence=90)])
    result = matcher.retro()
    assert result.hits == 1 and result.alerts_created == 1
    (alert,) = _alerts(vigil)
    assert "intel.retro" in alert.tags and alert.event_ids == ["old0"]
    again = matcher.retro()  # seen again (the scope overlaps by a moment): no new alert
    assert again.alerts_created == 0 and again.alerts_updated == 0
    with vigil.db.session() as session:
        assert len(session.execute(select(Sighting)).scalars().all()) == 1
    assert matcher.retro(days=1000, since_last=False).hits == 2


OTRF_ZIP = "atomic/windows/defense_evasion/host/empire_launcher_sct_regsvr32.zip"


def test_otrf_recording_through_the_file_ingest_path(vigil: Vigil) -> None:
    """Indicators taken from the recording match while it is ingested (live) and afterwards
    (retro-hunt of a newly imported indicator)."""
    _store(vigil, [
        make_input("sha256", "4e4588d8a960b26983b9c2cdfe698c0b88b6b1f46705cdea019e34a8e5bbb3e7", "otrf"),
        make_input("filename", "regsvr32.exe", "otrf"),
    ])
    matcher = IntelMatcher(vigil.db, vigil.store, vigil.settings.intel, reload_seconds=0)
    path = datasets() / "otrf-atomic-windows" / "datasets" / OTRF_ZIP
    summary = ingest_inputs(expand([str(path)]), vigil.store, vigil.db, ParseOptions(), on_written=matcher)
    assert summary.stored > 0
    assert matcher.totals.hits >= 3 and matcher.totals.alerts_created >= 2
    titles = {a.rule_title for a in _alerts(vigil)}
    assert "Threat intel match: filename regsvr32.exe" in titles
    _store(vigil, [make_input("md5", "6910C1C465EF83CC0E95B7C597E1A102".lower(), "otrf-late")])
    retro = matcher.retro(days=36500, indicator_ids=[indicator_id(IndicatorType.MD5,
                                                                  "6910c1c465ef83cc0e95b7c597e1a102")])
    assert retro.hits >= 1 and retro.alerts_created >= 1
    matcher.close()


def test_a_false_positive_disposition_becomes_a_sighting(vigil: Vigil, matcher: IntelMatcher) -> None:
    from vigil.alerts import Disposition
    from vigil.core.auth import SYSTEM
    from vigil.intel.feedback import record_false_positives

    _store(vigil, [make_input("ipv4", "45.9.148.3", "feed", confidence=80)])
    matcher(_batch(vigil, [{"DestinationIp": "45.9.148.3"}]))
    (alert,) = _alerts(vigil)
    with vigil.db.session() as session:
        alerts.close(session, alert.id, SYSTEM, Disposition.FALSE_POSITIVE_DATA, "our own scanner")
    assert record_false_positives(vigil.db) == 1
    assert record_false_positives(vigil.db) == 0
    view = service.get(vigil.db, indicator_id(IndicatorType.IPV4, "45.9.148.3"), vigil.settings.intel)
    assert view.sightings_false_positive == 1 and view.score < 41
