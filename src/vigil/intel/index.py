"""The match index: the active observables, held in DuckDB beside the events.

Live matching and retro-hunts are joins between event columns and this index, inside the
event store's DuckDB instance (an attached in-memory database, ``vigil_intel``), so matching a
batch is one vectorised query however many indicators there are.

- ``vigil_intel.exact(kind, value, indicator, active_until, valid_from)``: addresses, names,
  URLs, e-mail addresses, hashes, file names, JA3 and user agents, in the form
  :func:`vigil.intel.fields.index_value` gives them.
- ``vigil_intel.net4(prefix, network, indicator, active_until, valid_from)``: IPv4 networks as
  (prefix length, network number); an event address is masked once per prefix length present.
- IPv6 networks are few and kept in Python (see :meth:`MatchIndex.ipv6_networks`).

``active_until`` is when the indicator's decayed score falls below the threshold (or its
``valid_until``, if sooner), computed when loaded; a match counts only while ``now`` is before
it, so decay needs no reload. The index reloads when the state's ``intel_meta`` revision moves:
only the indicators updated since the last load, unless many changed.
"""

from __future__ import annotations

import ipaddress
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import duckdb
import pyarrow as pa
from sqlalchemy import select, text

from vigil.core.db import StateDB
from vigil.core.timeutil import to_utc, utcnow
from vigil.intel.decay import DecayPolicy
from vigil.intel.fields import index_value, kind_of
from vigil.intel.models import Indicator, IndicatorObservable
from vigil.intel.types import IndicatorType

SCHEMA = "vigil_intel"
FULL_RELOAD = 100_000
"""Above this many changed indicators a reload starts from scratch."""
_FAR = datetime(9999, 12, 31, tzinfo=UTC)
_EXACT = pa.schema([("kind", pa.string()), ("value", pa.string()), ("indicator", pa.string()),
                    ("active_until", pa.timestamp("us", tz="UTC")),
                    ("valid_from", pa.timestamp("us", tz="UTC"))])
_NET4 = pa.schema([("prefix", pa.uint8()), ("network", pa.uint32()), ("indicator", pa.string()),
                   ("active_until", pa.timestamp("us", tz="UTC")),
                   ("valid_from", pa.timestamp("us", tz="UTC"))])


@dataclass(frozen=True, slots=True)
class _Row:
    indicator: str
    kind: str
    value: str
    active_until: datetime
    valid_from: datetime | None


def _active_until(policy: DecayPolicy, kind: IndicatorType, base: int, fp: int, last: datetime,
                  valid_until: datetime | None) -> datetime:
    days = policy.max_age_days(kind, base * 0.5 ** max(0, fp))
    try:
        until = last + timedelta(days=days)
    except OverflowError:
        until = _FAR
    return min(until, valid_until) if valid_until else until


class MatchIndex:
    """The active observables of one state database, in one DuckDB instance."""

    def __init__(self, db: StateDB, connection: duckdb.DuckDBPyConnection, policy: DecayPolicy) -> None:
        self.db = db
        self.policy = policy
        self._conn = connection
        self._lock = threading.Lock()
        self.revision: int | None = None
        self.loaded_at: datetime | None = None
        self.size = 0
        self.prefixes: tuple[int, ...] = ()
        self._net6: dict[str, list[tuple[ipaddress.IPv6Network, str, datetime, datetime | None]]] = {}
        self._run(f"ATTACH IF NOT EXISTS ':memory:' AS {SCHEMA}")
        self._create()

    def _create(self) -> None:
        self._run(f"CREATE OR REPLACE TABLE {SCHEMA}.exact (kind VARCHAR, value VARCHAR, "
                           "indicator VARCHAR, active_until TIMESTAMPTZ, valid_from TIMESTAMPTZ)")
        self._run(f"CREATE OR REPLACE TABLE {SCHEMA}.net4 (prefix UTINYINT, network UINTEGER, "
                           "indicator VARCHAR, active_until TIMESTAMPTZ, valid_from TIMESTAMPTZ)")

    def _run(self, sql: str, params: Sequence[object] | None = None) -> list[tuple[object, ...]]:
        """Run one statement to completion (DuckDB refuses new work while a result is open)."""
        return self._conn.execute(sql, params).fetchall() if params is not None else \
            self._conn.execute(sql).fetchall()

    @property
    def empty(self) -> bool:
        return self.size == 0

    def ipv6_networks(self) -> list[tuple[ipaddress.IPv6Network, str, datetime, datetime | None]]:
        return [item for items in self._net6.values() for item in items]

    def refresh(self, *, force: bool = False) -> bool:
        """Reload what changed since the last load; returns whether anything was reloaded."""
        with self._lock:
            with self.db.session() as session:
                revision = int(session.execute(text(
                    "SELECT revision FROM intel_meta WHERE id = 1")).scalar() or 0)
                if not force and revision == self.revision:
                    return False
                since = self.loaded_at if not force and self.revision is not None else None
                started = utcnow()
                ids = None
                if since is not None:
                    ids = list(session.execute(select(Indicator.id).where(
                        Indicator.updated_at >= since - timedelta(seconds=2))).scalars())
                    if len(ids) > FULL_RELOAD:
                        ids = None
                rows = list(self._read(session, ids))
            self._store(rows, ids)
            self.revision, self.loaded_at = revision, started
            return True

    def _read(self, session: object, ids: Sequence[str] | None) -> Iterator[_Row]:
        from sqlalchemy.orm import Session

        assert isinstance(session, Session)
        columns = (IndicatorObservable.indicator_id, IndicatorObservable.type, IndicatorObservable.value,
                   Indicator.type, Indicator.base_score, Indicator.sightings_fp, Indicator.last_seen,
                   Indicator.last_sighting, Indicator.valid_from, Indicator.valid_until)
        base = select(*columns).join(Indicator, Indicator.id == IndicatorObservable.indicator_id).where(
            Indicator.revoked.is_(False), Indicator.allowlisted.is_(None),
            Indicator.sightings_expired == 0)
        batches = [base] if ids is None else [
            base.where(Indicator.id.in_(ids[i:i + 500])) for i in range(0, len(ids), 500)]
        for query in batches:
            for key, otype, value, itype, score, fp, last, sighted, vfrom, vuntil in session.execute(
                    query.execution_options(yield_per=20_000)):
                seen = to_utc(last) if sighted is None else max(to_utc(last), to_utc(sighted))
                until = _active_until(self.policy, IndicatorType(itype), score, fp, seen,
                                      to_utc(vuntil) if vuntil else None)
                yield _Row(key, otype, value, until, to_utc(vfrom) if vfrom else None)

    def _store(self, rows: list[_Row], ids: Sequence[str] | None) -> None:
        exact: dict[str, list[object]] = {n: [] for n in _EXACT.names}
        net4: dict[str, list[object]] = {n: [] for n in _NET4.names}
        net6: dict[str, list[tuple[ipaddress.IPv6Network, str, datetime, datetime | None]]] = {}
        for row in rows:
            kind = IndicatorType(row.kind)
            if kind is IndicatorType.CIDR:
                network = ipaddress.ip_network(row.value)
                if isinstance(network, ipaddress.IPv6Network):
                    net6.setdefault(row.indicator, []).append(
                        (network, row.indicator, row.active_until, row.valid_from))
                    continue
                values = (network.prefixlen, int(network.network_address))
                for name, item in zip(_NET4.names, (*values, row.indicator, row.active_until,
                                                    row.valid_from), strict=True):
                    net4[name].append(item)
                continue
            match = kind_of(kind)
            if match is None:
                continue
            for name, item in zip(_EXACT.names, (match.value, index_value(match, row.value), row.indicator,
                                                 row.active_until, row.valid_from), strict=True):
                exact[name].append(item)
        exact_table = pa.table(exact, schema=_EXACT)
        net_table = pa.table(net4, schema=_NET4)
        self._run("BEGIN TRANSACTION")
        try:
            if ids is None:
                self._create()
                self._net6 = {}
            else:
                self._run(f"CREATE OR REPLACE TEMP TABLE _changed AS SELECT unnest(?::VARCHAR[]) AS id",
                                   [list(ids)])
                for table in ("exact", "net4"):
                    self._run(f"DELETE FROM {SCHEMA}.{table} WHERE indicator IN (SELECT id FROM _changed)")
                for key in ids:
                    self._net6.pop(key, None)
            self._conn.register("_exact_rows", exact_table)
            self._conn.register("_net_rows", net_table)
            self._run(f"INSERT INTO {SCHEMA}.exact SELECT * FROM _exact_rows")
            self._run(f"INSERT INTO {SCHEMA}.net4 SELECT * FROM _net_rows")
            self._run("COMMIT")
        except BaseException:
            self._run("ROLLBACK")
            raise
        finally:
            for name in ("_exact_rows", "_net_rows"):
                self._conn.unregister(name)
        self._net6.update(net6)
        self._count()

    def _count(self) -> None:
        exact = self._run(f"SELECT count(*) FROM {SCHEMA}.exact")[0][0]
        prefixes = self._run(f"SELECT DISTINCT prefix FROM {SCHEMA}.net4 ORDER BY 1")
        self.prefixes = tuple(int(str(p)) for (p,) in prefixes)
        nets = self._run(f"SELECT count(*) FROM {SCHEMA}.net4")[0][0]
        self.size = int(str(exact)) + int(str(nets)) + len(self._net6)
