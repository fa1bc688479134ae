"""The match index loads from both state databases (SQLite and PostgreSQL): decay deadlines,
validity, network numbers, IPv6 networks, exclusions, and incremental reloads."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from vigil.core.db import StateDB
from vigil.intel.decay import DecayPolicy
from vigil.intel.index import SCHEMA, MatchIndex, naive_utc
from vigil.intel.normalize import make_input
from vigil.intel.writing import ingest_session
from vigil.store.duck import EventStore

NOW = datetime.now(UTC)


@pytest.fixture
def store() -> Iterator[EventStore]:
    found = EventStore(None)
    yield found
    found.close()


def test_the_index_loads_from_either_database(state_db: StateDB, store: EventStore) -> None:
    until = NOW + timedelta(days=3)
    with state_db.session() as session:
        ingest_session(session, [
            make_input("ipv4", "45.9.148.3", "feed", confidence=50),
            make_input("cidr", "91.240.118.0/24", "feed", valid_until=until),
            make_input("cidr", "2a00:1450::/32", "feed"),
            make_input("email", "Boss@Phish.ru", "feed"),
            make_input("ipv4", "45.9.148.4", "feed", revoked=True),
        ], actor="test")
    cursor = store.cursor()
    index = MatchIndex(state_db, cursor, DecayPolicy())
    assert index.refresh() and not index.refresh()
    exact = cursor.execute(f"SELECT kind, value, active_until FROM {SCHEMA}.exact ORDER BY kind").fetchall()
    assert [(k, v) for k, v, _ in exact] == [("email", "boss@phish.ru"), ("ip", "45.9.148.3")]
    ip_until = exact[1][2]
    # base 50, threshold 20, network family 47 days at speed 0.55: about 20 days
    assert naive_utc(NOW + timedelta(days=19)) < ip_until < naive_utc(NOW + timedelta(days=21))
    (net,) = cursor.execute(f"SELECT prefix, network, active_until FROM {SCHEMA}.net4").fetchall()
    assert net[:2] == (24, (91 << 24) + (240 << 16) + (118 << 8))
    assert abs(net[2] - naive_utc(until)) < timedelta(seconds=1)  # validity cuts the decay short
    assert [str(n[0]) for n in index.ipv6_networks()] == ["2a00:1450::/32"]
    assert index.prefixes == (24,) and index.size == 4

    with state_db.session() as session:
        ingest_session(session, [make_input("domain", "evil-c2.ru", "feed")], actor="test")
    assert index.refresh()
    kinds = sorted(k for (k,) in cursor.execute(f"SELECT kind FROM {SCHEMA}.exact").fetchall())
    assert kinds == ["domain", "email", "ip"] and index.size == 5
    scoped = index.scoped([_id("ipv4", "45.9.148.3")])
    assert scoped.size == 1 and scoped.prefixes == ()
    cursor.close()


def _id(kind: str, value: str) -> str:
    from vigil.intel.normalize import indicator_id
    from vigil.intel.types import IndicatorType

    return indicator_id(IndicatorType(kind), value)
