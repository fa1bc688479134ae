"""Reading indicators on both databases: views with the decayed score, lookups by id, search
by value (the address itself, every network that contains it, the parent domains), keyset
paging through 2,500 indicators, and the listing filters."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import update

from vigil.core.db import StateDB
from vigil.core.errors import InputError, NotFoundError
from vigil.intel import reading
from vigil.intel.allowlist import AllowlistSet, builtin_lists
from vigil.intel.decay import DecayPolicy
from vigil.intel.models import Indicator
from vigil.intel.normalize import indicator_id, make_input
from vigil.intel.reading import IndicatorFilter
from vigil.intel.types import TLP, IndicatorInput, IndicatorType, IndicatorView, Observable, SourceView
from vigil.intel.writing import ingest_session

T = IndicatorType
NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
POLICY = DecayPolicy()
PATTERN = "[ipv4-addr:value = '45.9.148.3'] OR [domain-name:value = 'evil-c2.ru']"
STIX_ID = "indicator--6d1b4f4e-93f2-4e5a-9f3e-2b0e1f8d2c11"


def _ago(days: float) -> datetime:
    return NOW - timedelta(days=days)


def _store(db: StateDB, items: list[IndicatorInput], *, allowlists: AllowlistSet | None = None) -> None:
    with db.session() as session:
        ingest_session(session, items, actor="user:alice", now=NOW, allowlists=allowlists)


def _set(db: StateDB, kind: IndicatorType, value: str, **columns: object) -> None:
    with db.session() as session:
        session.execute(update(Indicator).where(Indicator.id == indicator_id(kind, value)).values(**columns))


def _values(found: list[IndicatorView]) -> set[str]:
    return {v.value for v in found}


CORPUS = [
    make_input(T.IPV4, "45.9.148.3", "feodo", confidence=80, tlp=TLP.GREEN, labels=["c2"], malware=["Emotet"],
               first_seen=_ago(30), last_seen=_ago(10), reference="row-1"),
    make_input(T.IPV4, "45.9.148.3", "threatfox", confidence=70, first_seen=_ago(12), last_seen=_ago(5)),
    make_input(T.CIDR, "45.9.148.0/24", "spamhaus", confidence=90, tlp=TLP.CLEAR, last_seen=_ago(1)),
    make_input(T.CIDR, "45.0.0.0/8", "spamhaus", confidence=30, last_seen=_ago(1)),
    make_input(T.CIDR, "44.0.0.0/7", "spamhaus", confidence=30, last_seen=_ago(1)),
    make_input(T.CIDR, "0.0.0.0/1", "spamhaus", confidence=30, last_seen=_ago(1)),
    make_input(T.CIDR, "45.9.148.2/31", "spamhaus", confidence=30, last_seen=_ago(1)),
    make_input(T.CIDR, "45.9.149.0/24", "spamhaus", confidence=30, last_seen=_ago(1)),
    make_input(T.CIDR, "91.240.118.0/24", "spamhaus", confidence=90, tlp=TLP.AMBER, last_seen=_ago(2)),
    make_input(T.IPV6, "2a03:2880:f12f:83::1", "feodo", confidence=60, last_seen=_ago(1)),
    make_input(T.CIDR, "2a03:2880::/29", "spamhaus", confidence=60, last_seen=_ago(1)),
    make_input(T.DOMAIN, "evil-c2.ru", "urlhaus", confidence=75, tlp=TLP.RED, labels=["c2", "phishing"],
               last_seen=_ago(3)),
    make_input(T.DOMAIN, "b.evil-c2.ru", "urlhaus", confidence=75, labels=["c2-panel"], last_seen=_ago(3)),
    make_input(T.DOMAIN, "ru-evil-c2.ru", "urlhaus", confidence=75, last_seen=_ago(3)),
    make_input(T.URL, "http://evil-c2.ru/gate.php", "urlhaus", confidence=85, labels=["c2_panel"],
               last_seen=_ago(2)),
    make_input(T.STIX_PATTERN, PATTERN, "stix", pattern=PATTERN, stix_id=STIX_ID, name="Emotet C2 pair",
               observables=(Observable(T.IPV4, "45.9.148.3"), Observable(T.DOMAIN, "evil-c2.ru")),
               confidence=65, valid_from=_ago(20), valid_until=NOW + timedelta(days=30), last_seen=_ago(4)),
    make_input(T.IPV4, "198.51.100.7", "feodo", confidence=90, last_seen=_ago(1)),
    make_input(T.IPV4, "185.220.101.17", "feodo", confidence=90, revoked=True, last_seen=_ago(1)),
    make_input(T.IPV4, "185.220.101.18", "feodo", confidence=90, last_seen=_ago(200)),
    make_input(T.MD5, "5f2b7f9c1e0d4a3b8c6e2d1f0a9b8c7d", "bazaar", confidence=60,
               valid_until=_ago(1), last_seen=_ago(2)),
]


@pytest.fixture
def corpus(state_db: StateDB) -> StateDB:
    _store(state_db, CORPUS, allowlists=AllowlistSet(builtin_lists()))
    return state_db


def _views_and_lookups(db: StateDB) -> None:
    with db.session() as session:
        view = reading.get(session, indicator_id(T.IPV4, "45.9.148.3"), POLICY)
        assert reading.get(session, STIX_ID, POLICY).type is T.STIX_PATTERN
        with pytest.raises(NotFoundError):
            reading.get(session, "indicator--00000000-0000-4000-8000-000000000000", POLICY)
    assert (view.value, view.confidence, view.base_score, view.tlp) == ("45.9.148.3", 70, 70, TLP.GREEN)
    assert view.sources == (
        SourceView("feodo", _ago(30), _ago(10), "row-1", 80),
        SourceView("threatfox", _ago(12), _ago(5), None, 70))
    assert view.observables == (Observable(T.IPV4, "45.9.148.3"),)
    assert (view.labels, view.malware) == (("c2",), ("Emotet",))
    assert (view.first_seen, view.last_seen) == (_ago(30), _ago(5))
    now_view = _view(db, T.IPV4, "45.9.148.3")
    assert now_view.score == POLICY.score(T.IPV4, 70, _ago(5), NOW) and 0 < now_view.score < 70
    assert now_view.active and now_view.allowlisted is None


def _view(db: StateDB, kind: IndicatorType, value: str, policy: DecayPolicy = POLICY) -> IndicatorView:
    with db.session() as session:
        row = session.get(Indicator, indicator_id(kind, value))
        assert row is not None
        return reading.views(session, [row], policy, NOW)[0]


def _decay_and_activity(db: StateDB) -> None:
    pair = _view(db, T.STIX_PATTERN, PATTERN)
    assert pair.active and pair.stix_id == STIX_ID
    assert set(pair.observables) == {Observable(T.IPV4, "45.9.148.3"), Observable(T.DOMAIN, "evil-c2.ru")}
    documentation = _view(db, T.IPV4, "198.51.100.7")
    assert documentation.allowlisted == "Vigil: special-use and documentation networks"
    assert not documentation.active and documentation.score > 80
    revoked = _view(db, T.IPV4, "185.220.101.17")
    assert (revoked.score, revoked.active, revoked.revoked) == (0, False, True)
    decayed = _view(db, T.IPV4, "185.220.101.18")
    assert (decayed.score, decayed.active) == (0, False)
    expired = _view(db, T.MD5, "5f2b7f9c1e0d4a3b8c6e2d1f0a9b8c7d")
    assert expired.score > 50 and not expired.active, "past valid_until"

    # A sighting resets the clock; false positives halve; an expired sighting zeroes.
    _set(db, T.IPV4, "185.220.101.18", last_sighting=_ago(1))
    _set(db, T.CIDR, "91.240.118.0/24", sightings_fp=2)
    _set(db, T.DOMAIN, "b.evil-c2.ru", sightings_expired=1)
    sighted = _view(db, T.IPV4, "185.220.101.18")
    false_positive = _view(db, T.CIDR, "91.240.118.0/24")
    gone = _view(db, T.DOMAIN, "b.evil-c2.ru")
    assert sighted.score == POLICY.score(T.IPV4, 90, _ago(1), NOW) and sighted.active
    assert sighted.last_sighting == _ago(1) and sighted.last_seen == _ago(200)
    assert false_positive.score == pytest.approx(POLICY.score(T.CIDR, 90, _ago(2), NOW) / 4, abs=0.01)
    assert (gone.score, gone.active, gone.sightings_expired) == (0, False, 1)
    # A changed policy applies at once.
    strict = DecayPolicy.of({"network": 1.5}, {}, 20, 50)
    assert _view(db, T.CIDR, "45.9.148.0/24").active
    assert not _view(db, T.CIDR, "45.9.148.0/24", strict).active


def _search(db: StateDB) -> None:
    with db.session() as session:
        found = _values(reading.search(session, "45.9.148.3", POLICY))
        assert found == {"45.9.148.3", "45.9.148.0/24", "45.0.0.0/8", "44.0.0.0/7", "0.0.0.0/1",
                         "45.9.148.2/31", PATTERN}
        assert _values(reading.search(session, "45.9.148[.]3", POLICY)) == found
        assert _values(reading.search(session, "45.9.148.200", POLICY)) == {
            "45.9.148.0/24", "45.0.0.0/8", "44.0.0.0/7", "0.0.0.0/1"}
        assert _values(reading.search(session, "91.240.118.77", POLICY)) == {"91.240.118.0/24", "0.0.0.0/1"}
        assert _values(reading.search(session, "2A03:2880:F12F:83:0::1", POLICY)) == {
            "2a03:2880:f12f:83::1", "2a03:2880::/29"}
        assert _values(reading.search(session, "x.a.b.evil-c2.ru", POLICY)) == {
            "b.evil-c2.ru", "evil-c2.ru", PATTERN}
        assert _values(reading.search(session, "Evil-C2.ru", POLICY)) == {"evil-c2.ru", PATTERN}
        assert reading.search(session, "ru", POLICY) == [], "no top-level domain; no name holds it"
        assert _values(reading.search(session, "hxxp://evil-c2[.]ru/gate.php", POLICY)) == {
            "http://evil-c2.ru/gate.php"}
        assert _values(reading.search(session, "91.240.118.0/24", POLICY)) == {"91.240.118.0/24"}
        assert _values(reading.search(session, "Emotet C2", POLICY)) == {PATTERN}, "free text: the names"
        assert reading.search(session, "Emotet%pair", POLICY) == [], "LIKE wildcards are no wildcards here"
        assert reading.search(session, "Emotet\x00", POLICY) == []
        assert reading.search(session, "185.100.87.5", POLICY) == []
        assert len(reading.search(session, "45.9.148.3", POLICY, limit=2)) == 2
        assert reading.counts(session) == {"ipv4": 4, "ipv6": 1, "cidr": 8, "domain": 3, "url": 1,
                                           "stix-pattern": 1, "md5": 1}


def test_views_decay_and_search(corpus: StateDB) -> None:
    _views_and_lookups(corpus)
    _search(corpus)
    _decay_and_activity(corpus)


def test_lookup_keys() -> None:
    keys = reading.lookup_keys("45.9.148.3")
    assert keys[0] == ("ipv4", "45.9.148.3") and len(keys) == 33
    assert {("cidr", "0.0.0.0/0"), ("cidr", "45.9.148.2/31"), ("cidr", "45.9.148.0/24")} <= set(keys)
    assert len(reading.lookup_keys("2a03:2880:f12f:83::1")) == 129
    assert reading.lookup_keys("a.b.evil-c2.ru") == [("domain", "a.b.evil-c2.ru"), ("domain", "b.evil-c2.ru"),
                                                     ("domain", "evil-c2.ru")]
    assert reading.lookup_keys("91.240.118.7/24") == [("cidr", "91.240.118.0/24")]
    assert reading.lookup_keys("EVIL-C2.RU", T.DOMAIN) == [("domain", "evil-c2.ru")]
    with pytest.raises(InputError):
        reading.lookup_keys("not an indicator")


def _filtered(db: StateDB, wanted: IndicatorFilter, policy: DecayPolicy = POLICY) -> set[str]:
    with db.session() as session:
        return _values(list(reading.iterate(session, wanted, policy, now=NOW)))


def test_filters(corpus: StateDB) -> None:
    every = {i.value for i in CORPUS}
    assert _filtered(corpus, IndicatorFilter()) == every
    assert _filtered(corpus, IndicatorFilter(types=(T.DOMAIN, T.URL))) == {
        "evil-c2.ru", "b.evil-c2.ru", "ru-evil-c2.ru", "http://evil-c2.ru/gate.php"}
    assert _filtered(corpus, IndicatorFilter(source="threatfox")) == {"45.9.148.3"}
    assert _filtered(corpus, IndicatorFilter(source="nobody")) == set()
    assert _filtered(corpus, IndicatorFilter(min_confidence=85)) == {
        "45.9.148.0/24", "91.240.118.0/24", "http://evil-c2.ru/gate.php", "198.51.100.7", "185.220.101.17",
        "185.220.101.18"}
    red_or_amber = {"evil-c2.ru", "91.240.118.0/24"}
    assert _filtered(corpus, IndicatorFilter(max_tlp=TLP.GREEN)) == every - red_or_amber
    assert _filtered(corpus, IndicatorFilter(max_tlp=TLP.AMBER_STRICT)) == every - {"evil-c2.ru"}
    assert _filtered(corpus, IndicatorFilter(max_tlp=TLP.CLEAR)) == every - red_or_amber - {"45.9.148.3"}
    assert _filtered(corpus, IndicatorFilter(label="c2")) == {"45.9.148.3", "evil-c2.ru"}
    assert _filtered(corpus, IndicatorFilter(label="c2_panel")) == {"http://evil-c2.ru/gate.php"}
    assert _filtered(corpus, IndicatorFilter(label="c2-panel")) == {"b.evil-c2.ru"}
    assert _filtered(corpus, IndicatorFilter(label="c2%")) == set(), "LIKE wildcards are no wildcards here"
    inactive = {"198.51.100.7", "185.220.101.17", "185.220.101.18", "5f2b7f9c1e0d4a3b8c6e2d1f0a9b8c7d"}
    assert _filtered(corpus, IndicatorFilter(active_only=True)) == every - inactive
    assert _filtered(corpus, IndicatorFilter(include_allowlisted=False)) == every - {"198.51.100.7"}
    assert _filtered(corpus, IndicatorFilter(min_score=60)) == {
        v.value for v in _all_views(corpus) if v.score >= 60}
    assert _filtered(corpus, IndicatorFilter(seen_within=timedelta(days=2, hours=1))) == {
        i.value for i in CORPUS if i.last_seen and i.last_seen >= _ago(2)} - {"45.9.148.3"}
    assert _filtered(corpus, IndicatorFilter(updated_since=NOW + timedelta(seconds=1))) == set()
    assert _filtered(corpus, IndicatorFilter(types=(T.IPV4,), active_only=True, min_confidence=50,
                                             max_tlp=TLP.GREEN, label="c2")) == {"45.9.148.3"}


def _all_views(db: StateDB) -> list[IndicatorView]:
    with db.session() as session:
        return list(reading.iterate(session, IndicatorFilter(), POLICY, now=NOW))


def _pages(db: StateDB, wanted: IndicatorFilter, limit: int) -> list[list[str]]:
    pages: list[list[str]] = []
    cursor: str | None = None
    with db.session() as session:
        while True:
            found, cursor = reading.page(session, wanted, POLICY, limit=limit, after=cursor, now=NOW)
            if found:
                pages.append([v.id for v in found])
            if cursor is None:
                return pages
            assert len(pages) < 100, "paging does not end"


def test_keyset_paging_returns_each_indicator_once(state_db: StateDB) -> None:
    items = [make_input(T.IPV4, f"45.{10 + i // 250}.{i % 250}.9", "feed", confidence=60 if i % 3 else 10,
                        last_seen=_ago(1)) for i in range(2500)]
    _store(state_db, items)
    expected = sorted(indicator_id(i.type, i.value) for i in items)
    for limit in (1000, 333):
        pages = _pages(state_db, IndicatorFilter(), limit)
        flat = [key for page in pages for key in page]
        assert flat == expected, limit
        assert all(len(page) == limit for page in pages[:-1])
    # With a filter applied after reading (score), pages are still full and each id comes once.
    active = sorted(indicator_id(i.type, i.value) for i in items if i.confidence == 60)
    pages = _pages(state_db, IndicatorFilter(active_only=True), 250)
    assert [key for page in pages for key in page] == active
    assert all(len(page) == 250 for page in pages[:-1])
    with state_db.session() as session:
        every = reading.iterate(session, IndicatorFilter(), POLICY, now=NOW, batch=700)
        assert [v.id for v in every] == expected
        for limit in (0, 1001):
            with pytest.raises(InputError, match="limit"):
                reading.page(session, IndicatorFilter(), POLICY, limit=limit)
        last, cursor = reading.page(session, IndicatorFilter(), POLICY, limit=10, after=expected[-1])
        assert (last, cursor) == ([], None)
