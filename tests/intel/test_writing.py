"""Storing indicators on both databases: adds, unchanged re-ingest, merging a second source
(each source with its own first/last seen, labels as a union, the most restrictive TLP, the
latest confidence), the ids of what changed, allowlist flags, the revision, the audit record,
and all-or-nothing batches."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from vigil.audit.service import listing
from vigil.core.db import StateDB
from vigil.intel import writing
from vigil.intel.allowlist import AllowlistSet, ListKind, Warninglist, builtin_lists
from vigil.intel.models import Indicator, IndicatorObservable, IndicatorSource
from vigil.intel.normalize import indicator_id, make_input
from vigil.intel.types import TLP, IndicatorInput, IndicatorType, Observable
from vigil.intel.writing import IngestResult, chunks, ingest_session, revision

T = IndicatorType
ACTOR = "user:alice"
DAY1 = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
DAY2 = DAY1 + timedelta(days=1)
DAY5 = DAY1 + timedelta(days=4)
NOW = DAY1 + timedelta(days=10)


def _ingest(db: StateDB, items: list[IndicatorInput], *, allowlists: AllowlistSet | None = None,
            now: datetime = NOW, source: str | None = None) -> IngestResult:
    with db.session() as session:
        return ingest_session(session, items, actor=ACTOR, now=now, allowlists=allowlists, source=source)


def _row(db: StateDB, kind: IndicatorType, value: str) -> Indicator:
    with db.session() as session:
        row = session.get(Indicator, indicator_id(kind, value))
        assert row is not None
        return row


Seen = tuple[datetime, datetime, int | None]


def _sources(db: StateDB, kind: IndicatorType, value: str) -> dict[str, Seen]:
    with db.session() as session:
        rows = session.execute(select(IndicatorSource).where(
            IndicatorSource.indicator_id == indicator_id(kind, value))).scalars().all()
        return {r.source: (_utc(r.first_seen), _utc(r.last_seen), r.confidence) for r in rows}


def _count(db: StateDB, model: type[object]) -> int:
    with db.session() as session:
        return int(session.execute(select(func.count()).select_from(model)).scalar_one())


def _counts(db: StateDB) -> tuple[int, int, int]:
    """Indicators, sources, observables."""
    return _count(db, Indicator), _count(db, IndicatorSource), _count(db, IndicatorObservable)


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


FEODO = [
    make_input(T.IPV4, "45.9.148.3", "feodo", confidence=80, tlp=TLP.CLEAR, labels=["c2"],
               malware=["Emotet"], first_seen=DAY1, last_seen=DAY2, reference="row-1"),
    make_input(T.CIDR, "91.240.118.0/24", "feodo", confidence=60, first_seen=DAY1, last_seen=DAY1),
    make_input(T.DOMAIN, "evil-c2.ru", "feodo", labels=["phishing"], first_seen=DAY1, last_seen=DAY1),
]


def _adds_then_re_ingest_is_unchanged(state_db: StateDB) -> None:
    with state_db.session() as session:
        assert revision(session) == 0
    result = _ingest(state_db, FEODO)
    assert (result.added, result.updated, result.unchanged, result.allowlisted) == (3, 0, 0, 0)
    assert sorted(result.ids) == sorted(indicator_id(i.type, i.value) for i in FEODO)
    with state_db.session() as session:
        assert revision(session) == 1
    row = _row(state_db, T.IPV4, "45.9.148.3")
    assert (row.type, row.value, row.confidence, row.base_score) == ("ipv4", "45.9.148.3", 80, 80)
    assert row.tlp == "clear"
    assert (_utc(row.first_seen), _utc(row.last_seen)) == (DAY1, DAY2)
    assert (row.labels, row.malware, row.revoked, row.allowlisted) == ('["c2"]', '["Emotet"]', False, None)
    assert _row(state_db, T.DOMAIN, "evil-c2.ru").confidence == 50, "the default confidence"
    assert _sources(state_db, T.IPV4, "45.9.148.3") == {"feodo": (DAY1, DAY2, 80)}
    with state_db.session() as session:
        observables = session.execute(select(IndicatorObservable.type, IndicatorObservable.value)).all()
    assert sorted(observables) == [("cidr", "91.240.118.0/24"), ("domain", "evil-c2.ru"),
                                   ("ipv4", "45.9.148.3")]

    again = _ingest(state_db, FEODO, now=NOW + timedelta(hours=1))
    assert (again.added, again.updated, again.unchanged, again.ids) == (0, 0, 3, [])
    with state_db.session() as session:
        assert revision(session) == 1, "nothing changed: live matching keeps its index"
    assert _counts(state_db) == (3, 3, 3)
    audit = listing(state_db, object_type="intel_indicators")
    assert [(e.actor, e.action, e.object_id, e.after) for e in reversed(audit)] == [
        (ACTOR, "import", "feodo", {"added": 3, "updated": 0, "unchanged": 0, "allowlisted": 0}),
        (ACTOR, "import", "feodo", {"added": 0, "updated": 0, "unchanged": 3, "allowlisted": 0})]


def _a_second_source_merges(state_db: StateDB) -> None:
    threatfox = [
        make_input(T.IPV4, "45.9.148.3", "threatfox", confidence=40, tlp=TLP.AMBER, labels=["botnet", "c2"],
                   attack=["T1071.001"], malware=["QakBot"], first_seen=DAY2, last_seen=DAY5,
                   reference="tf-9"),
        make_input(T.IPV4, "45.9.148[.]3", "threatfox", tlp=TLP.GREEN, first_seen=DAY1 - timedelta(days=3),
                   last_seen=DAY2),
        make_input(T.DOMAIN, "EVIL-C2.RU.", "threatfox", first_seen=DAY1, last_seen=DAY1),
        make_input(T.URL, "hxxp://evil-c2[.]ru/gate.php", "threatfox", confidence=90, first_seen=DAY5),
    ]
    result = _ingest(state_db, threatfox, source="ThreatFox")
    # evil-c2.ru only gains a source: its row is unchanged (no revision, no id to re-hunt).
    assert (result.added, result.updated, result.unchanged) == (1, 1, 1)
    assert set(_sources(state_db, T.DOMAIN, "evil-c2.ru")) == {"feodo", "threatfox"}
    assert sorted(result.ids) == sorted([indicator_id(T.IPV4, "45.9.148.3"),
                                         indicator_id(T.URL, "http://evil-c2.ru/gate.php")])
    row = _row(state_db, T.IPV4, "45.9.148.3")
    assert row.confidence == row.base_score == 40, "the latest confidence"
    assert row.tlp == "amber", "the most restrictive TLP"
    assert (row.labels, row.attack) == ('["botnet","c2"]', '["T1071.001"]')
    assert row.malware == '["Emotet","QakBot"]'
    assert (_utc(row.first_seen), _utc(row.last_seen)) == (DAY1 - timedelta(days=3), DAY5)
    assert _sources(state_db, T.IPV4, "45.9.148.3") == {
        "feodo": (DAY1, DAY2, 80), "threatfox": (DAY1 - timedelta(days=3), DAY5, 40)}
    assert _utc(_row(state_db, T.URL, "http://evil-c2.ru/gate.php").last_seen) == DAY5
    audit = listing(state_db, object_type="intel_indicators", limit=1)[0]
    assert (audit.object_id, audit.after) == ("ThreatFox", {"added": 1, "updated": 1, "unchanged": 1,
                                                             "allowlisted": 0})

    # A restatement by the first source: its own dates move, the other's stay; a lower TLP
    # and a missing confidence leave the stored ones alone.
    later = make_input(T.IPV4, "45.9.148.3", "feodo", tlp=TLP.CLEAR, first_seen=DAY2, last_seen=NOW)
    assert _ingest(state_db, [later]).updated == 1
    row = _row(state_db, T.IPV4, "45.9.148.3")
    assert (row.confidence, row.tlp, _utc(row.last_seen)) == (40, "amber", NOW)
    sources = _sources(state_db, T.IPV4, "45.9.148.3")
    assert sources["feodo"] == (DAY1, NOW, 80) and sources["threatfox"][1] == DAY5
    with state_db.session() as session:
        assert revision(session) == 3


def _without_dates_last_seen_is_now(state_db: StateDB) -> None:
    item = make_input(T.SHA256, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", "bazaar")
    _ingest(state_db, [item], now=DAY1)
    row = _row(state_db, item.type, item.value)
    assert (_utc(row.first_seen), _utc(row.last_seen)) == (DAY1, DAY1)
    again = _ingest(state_db, [item], now=DAY2)
    assert again.updated == 1, "a feed stating it again refreshes it"
    row = _row(state_db, item.type, item.value)
    assert (_utc(row.first_seen), _utc(row.last_seen)) == (DAY1, DAY2)
    valid = make_input(T.DOMAIN, "login-verify.net", "stix", valid_from=DAY5)
    _ingest(state_db, [valid], now=NOW)
    row = _row(state_db, T.DOMAIN, "login-verify.net")
    assert (_utc(row.first_seen), _utc(row.last_seen), _utc(row.valid_from or NOW)) == (DAY5, DAY5, DAY5)


def test_add_unchanged_merge(state_db: StateDB) -> None:
    """Adds, an unchanged re-ingest, a second source merged in, dates defaulting to now."""
    _adds_then_re_ingest_is_unchanged(state_db)
    _a_second_source_merges(state_db)
    _without_dates_last_seen_is_now(state_db)


def _validity_revocation_and_patterns_follow_the_latest_source(state_db: StateDB) -> None:
    pattern = "[ipv4-addr:value = '45.9.148.3'] OR [domain-name:value = 'evil-c2.ru']"
    observables = (Observable(T.IPV4, "45.9.148.3"), Observable(T.DOMAIN, "evil-c2.ru"))
    first = make_input(T.STIX_PATTERN, pattern, "stix-a", observables=observables, pattern=pattern,
                       stix_id="indicator--6d1b4f4e-93f2-4e5a-9f3e-2b0e1f8d2c11", name="Emotet C2",
                       valid_from=DAY1, valid_until=NOW, stix='{"type": "indicator"}')
    _ingest(state_db, [first])
    row = _row(state_db, T.STIX_PATTERN, pattern)
    assert (row.pattern, row.name, _utc(row.valid_until or DAY1)) == (pattern, "Emotet C2", NOW)
    with state_db.session() as session:
        stored = session.execute(select(IndicatorObservable.type, IndicatorObservable.value).where(
            IndicatorObservable.indicator_id == row.id)).all()
    assert sorted(stored) == [("domain", "evil-c2.ru"), ("ipv4", "45.9.148.3")]
    revoked = make_input(T.STIX_PATTERN, pattern, "stix-a", revoked=True, valid_from=DAY1,
                         stix='{"type": "indicator", "revoked": true}')
    assert _ingest(state_db, [revoked]).updated == 1
    row = _row(state_db, T.STIX_PATTERN, pattern)
    assert row.revoked and row.valid_until is None, "a STIX object without valid_until clears it"
    assert row.name == "Emotet C2", "what the latest source does not state is kept"


def _allowlisted_values_are_stored_and_flagged(state_db: StateDB) -> None:
    cdn = Warninglist("CDN", ListKind.HOSTNAME, ("telemetry-hub.net",))
    allowlists = AllowlistSet([*builtin_lists(), cdn])
    items = [make_input(T.IPV4, "198.51.100.7", "feed"),
             make_input(T.DOMAIN, "cdn.telemetry-hub.net", "feed"),
             make_input(T.IPV4, "45.9.148.3", "feed")]
    result = _ingest(state_db, items, allowlists=allowlists)
    assert (result.added, result.allowlisted) == (3, 2)
    documentation = _row(state_db, T.IPV4, "198.51.100.7")
    assert documentation.allowlisted == "Vigil: special-use and documentation networks"
    assert _row(state_db, T.DOMAIN, "cdn.telemetry-hub.net").allowlisted == "CDN"
    assert _row(state_db, T.IPV4, "45.9.148.3").allowlisted is None
    # The list is gone at the next ingest: the flag goes with it.
    result = _ingest(state_db, items, allowlists=AllowlistSet(builtin_lists()))
    assert (result.updated, result.unchanged, result.allowlisted) == (1, 2, 1)
    assert _row(state_db, T.DOMAIN, "cdn.telemetry-hub.net").allowlisted is None


def test_patterns_validity_and_allowlists(state_db: StateDB) -> None:
    _validity_revocation_and_patterns_follow_the_latest_source(state_db)
    _allowlisted_values_are_stored_and_flagged(state_db)


def test_a_failing_batch_leaves_nothing(state_db: StateDB, monkeypatch: pytest.MonkeyPatch) -> None:
    """Then, once the failure is gone, large batches with duplicates inside."""
    _ingest(state_db, FEODO[:1])
    counts = _counts(state_db)

    def broken(*_: object) -> None:
        raise RuntimeError("disk full")

    monkeypatch.setattr(writing, "_write_observables", broken)
    batch = [make_input(T.IPV4, f"45.9.149.{i}", "feed", confidence=70) for i in range(1, 200)]
    batch.append(make_input(T.IPV4, "45.9.148.3", "feed", confidence=10, labels=["changed"]))
    with pytest.raises(RuntimeError, match="disk full"):
        _ingest(state_db, batch)
    assert _counts(state_db) == counts
    row = _row(state_db, T.IPV4, "45.9.148.3")
    assert (row.confidence, row.labels) == (80, '["c2"]')
    with state_db.session() as session:
        assert revision(session) == 1
    assert len(listing(state_db, object_type="intel_indicators")) == 1
    monkeypatch.undo()
    _large_batches_and_duplicates_within_a_batch(state_db)


def _large_batches_and_duplicates_within_a_batch(state_db: StateDB) -> None:
    items = [make_input(T.IPV4, f"45.{20 + i // 250}.{i % 250}.3", "feed", first_seen=DAY1, last_seen=DAY1)
             for i in range(1200)]
    items += [make_input(T.IPV4, "45.20.0.3", "other", first_seen=DAY2, last_seen=DAY5, confidence=90)]
    result = _ingest(state_db, items)
    assert (result.added, len(result.ids), len(set(result.ids))) == (1200, 1200, 1200)
    assert _count(state_db, Indicator) == 1201 and _count(state_db, IndicatorSource) == 1202
    row = _row(state_db, T.IPV4, "45.20.0.3")
    assert (row.confidence, _utc(row.first_seen), _utc(row.last_seen)) == (90, DAY1, DAY5)
    assert _ingest(state_db, []) == IngestResult()


def test_chunks() -> None:
    assert [list(c) for c in chunks([1, 2, 3, 4, 5], 2)] == [[1, 2], [3, 4], [5]]
    assert list(chunks([], 3)) == []
    assert writing.is_simple(T.IPV4) and not writing.is_simple(T.STIX_PATTERN)
