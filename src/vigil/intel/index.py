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
``valid_until``, if sooner); a match counts only while ``now`` is before it, so decay needs no
reload. Times in the index are UTC without a zone. Loading reads the state rows as text and
numbers (no per-row Python objects) and computes ``active_until`` and the network numbers in
DuckDB: a million observables load in seconds. The index reloads when the state's
``intel_meta`` revision moves: only the indicators updated since the last load, unless many
changed.
"""

from __future__ import annotations

import ipaddress
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import duckdb
import pyarrow as pa
from sqlalchemy import String, cast, func, select, text
from sqlalchemy.orm import InstrumentedAttribute, Session
from sqlalchemy.sql.elements import ColumnElement

from vigil.core.db import StateDB
from vigil.core.timeutil import utcnow
from vigil.intel.decay import DecayPolicy
from vigil.intel.fields import index_value, kind_of
from vigil.intel.models import Indicator, IndicatorObservable
from vigil.intel.types import IndicatorType

SCHEMA = "vigil_intel"
FULL_RELOAD = 100_000
"""Above this many changed indicators a reload starts from scratch."""
MAX_AGE_DAYS = 36_500
_RAW = pa.schema([("indicator", pa.string()), ("otype", pa.string()), ("value", pa.string()),
                  ("itype", pa.string()), ("base", pa.int32()), ("fp", pa.int32()),
                  ("last_seen", pa.string()), ("last_sighting", pa.string()),
                  ("valid_from", pa.string()), ("valid_until", pa.string())])
Net6 = tuple[ipaddress.IPv6Network, str, datetime, datetime | None]


def naive_utc(moment: datetime) -> datetime:
    """``moment`` as UTC without a zone (the index's time form)."""
    if moment.tzinfo is None:
        return moment
    return moment.astimezone(UTC).replace(tzinfo=None)


def _text_time(column: InstrumentedAttribute[Any], dialect: str) -> ColumnElement[str]:
    """A timestamp column as ``YYYY-MM-DD HH:MM:SS.ffffff`` UTC text, whatever the database."""
    if dialect == "postgresql":
        return func.to_char(func.timezone("UTC", column), "YYYY-MM-DD HH24:MI:SS.US")
    return cast(column, String)


@dataclass(frozen=True, slots=True)
class IndexView:
    """What one matching run joins with: the whole index, or the part of it that belongs to
    some indicators (a retro-hunt of new indicators joins with only theirs)."""

    exact: str
    net4: str
    prefixes: tuple[int, ...]
    net6: tuple[Net6, ...]
    size: int


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
        self._net6: dict[str, list[Net6]] = {}
        self._run(f"ATTACH IF NOT EXISTS ':memory:' AS {SCHEMA}")
        self._create()

    def _create(self) -> None:
        self._run(f"CREATE OR REPLACE TABLE {SCHEMA}.exact (kind VARCHAR, value VARCHAR, "
                  "indicator VARCHAR, active_until TIMESTAMP, valid_from TIMESTAMP)")
        self._run(f"CREATE OR REPLACE TABLE {SCHEMA}.net4 (prefix UTINYINT, network UBIGINT, "
                  "indicator VARCHAR, active_until TIMESTAMP, valid_from TIMESTAMP)")

    def _run(self, sql: str, params: Sequence[object] | None = None) -> list[tuple[object, ...]]:
        """Run one statement to completion (DuckDB refuses new work while a result is open)."""
        return self._conn.execute(sql, params).fetchall() if params is not None else \
            self._conn.execute(sql).fetchall()

    @property
    def empty(self) -> bool:
        return self.size == 0

    def ipv6_networks(self) -> list[Net6]:
        return [item for items in self._net6.values() for item in items]

    def view(self) -> IndexView:
        """The whole index."""
        return IndexView(f"{SCHEMA}.exact", f"{SCHEMA}.net4", self.prefixes,
                         tuple(self.ipv6_networks()), self.size)

    def scoped(self, ids: Sequence[str]) -> IndexView:
        """The part of the index that belongs to the indicators ``ids`` (copied into small
        tables, so that the join is probed against thousands of values, not millions)."""
        with self._lock:
            self._run(f"CREATE OR REPLACE TABLE {SCHEMA}.scope AS SELECT unnest(?::VARCHAR[]) AS id",
                      [list(ids)])
            for table in ("exact", "net4"):
                self._run(f"CREATE OR REPLACE TABLE {SCHEMA}.scope_{table} AS SELECT * FROM {SCHEMA}.{table} "
                          f"WHERE indicator IN (SELECT id FROM {SCHEMA}.scope)")
            prefixes = tuple(int(str(p)) for (p,) in self._run(
                f"SELECT DISTINCT prefix FROM {SCHEMA}.scope_net4 ORDER BY 1"))
            size = sum(int(str(self._run(f"SELECT count(*) FROM {SCHEMA}.scope_{t}")[0][0]))
                       for t in ("exact", "net4"))
            wanted = set(ids)
            net6 = tuple(n for key, items in self._net6.items() if key in wanted for n in items)
        return IndexView(f"{SCHEMA}.scope_exact", f"{SCHEMA}.scope_net4", prefixes, net6, size + len(net6))

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
                raw = self._read(session, ids)
            self._store(raw, ids)
            self.revision, self.loaded_at = revision, started
            return True

    def _read(self, session: Session, ids: Sequence[str] | None) -> pa.Table:
        """The observables of the indicators that can be active, as text and numbers."""
        dialect = session.get_bind().dialect.name
        columns = (IndicatorObservable.indicator_id, IndicatorObservable.type, IndicatorObservable.value,
                   Indicator.type, Indicator.base_score, Indicator.sightings_fp,
                   *(_text_time(c, dialect) for c in (Indicator.last_seen, Indicator.last_sighting,
                                                      Indicator.valid_from, Indicator.valid_until)))
        base = select(*columns).join(Indicator, Indicator.id == IndicatorObservable.indicator_id).where(
            Indicator.revoked.is_(False), Indicator.allowlisted.is_(None),
            Indicator.sightings_expired == 0)
        batches = [base] if ids is None else [
            base.where(Indicator.id.in_(ids[i:i + 500])) for i in range(0, len(ids), 500)]
        rows: list[tuple[object, ...]] = []
        for query in batches:
            result = session.execute(query.execution_options(yield_per=50_000))
            for part in result.partitions():
                rows.extend(tuple(r) for r in part)
        names = _RAW.names
        return pa.table({n: [r[i] for r in rows] for i, n in enumerate(names)}, schema=_RAW)

    def _decay_sql(self) -> str:
        """``active_until`` of a raw row, by the decay policy (one CASE per indicator type)."""
        rules = {t: self.policy.rule(t) for t in IndicatorType}
        lifetime = " ".join(f"WHEN '{t.value}' THEN {r.lifetime_days}" for t, r in rules.items())
        speed = " ".join(f"WHEN '{t.value}' THEN {r.speed}" for t, r in rules.items())
        threshold = float(self.policy.threshold)
        effective = "(base * pow(0.5, greatest(fp, 0)))"
        age = (f"(CASE WHEN {effective} <= 0 OR {effective} < {threshold} THEN 0 ELSE least({MAX_AGE_DAYS}, "
               f"(CASE itype {lifetime} ELSE 470 END) * pow(1 - {threshold} / {effective}, "
               f"3 * (CASE itype {speed} ELSE 0.35 END))) END)")
        seen = "greatest(CAST(last_seen AS TIMESTAMP), coalesce(CAST(last_sighting AS TIMESTAMP), " \
               "CAST(last_seen AS TIMESTAMP)))"
        until = f"({seen} + to_microseconds(CAST({age} * 86400000000 AS BIGINT)))"
        return f"least({until}, coalesce(CAST(valid_until AS TIMESTAMP), {until}))"

    def _kind_sql(self) -> tuple[str, str]:
        kinds = {t: kind_of(t) for t in IndicatorType}
        kind = " ".join(f"WHEN '{t.value}' THEN '{k.value}'" for t, k in kinds.items() if k is not None)
        lowered = [t.value for t, k in kinds.items() if k is not None and index_value(k, "A") == "a"]
        value = f"CASE WHEN otype IN ({', '.join(repr(v) for v in lowered)}) THEN lower(value) ELSE value END"
        return f"CASE otype {kind} END", value

    def _store(self, raw: pa.Table, ids: Sequence[str] | None) -> None:
        kind, value = self._kind_sql()
        decay = self._decay_sql()
        self._conn.register("_intel_raw", raw)
        self._run("BEGIN TRANSACTION")
        try:
            if ids is None:
                self._create()
                net6: dict[str, list[Net6]] = {}
            else:
                self._run("CREATE OR REPLACE TEMP TABLE _changed AS SELECT unnest(?::VARCHAR[]) AS id",
                          [list(ids)])
                for table in ("exact", "net4"):
                    self._run(f"DELETE FROM {SCHEMA}.{table} WHERE indicator IN (SELECT id FROM _changed)")
                net6 = {k: v for k, v in self._net6.items() if k not in set(ids)}
            self._run(f"INSERT INTO {SCHEMA}.exact SELECT {kind}, {value}, indicator, {decay}, "
                      f"CAST(valid_from AS TIMESTAMP) FROM _intel_raw WHERE ({kind}) IS NOT NULL")
            octets = "string_split(split_part(value, '/', 1), '.')"
            self._run(f"INSERT INTO {SCHEMA}.net4 SELECT CAST(split_part(value, '/', 2) AS UTINYINT), "
                      f"list_reduce(list_transform({octets}, lambda s: CAST(s AS UBIGINT)), "
                      f"lambda acc, s: acc * 256 + s), indicator, {decay}, CAST(valid_from AS TIMESTAMP) "
                      "FROM _intel_raw WHERE otype = 'cidr' AND NOT contains(value, ':')")
            for key, network, until, start in self._run(
                    f"SELECT indicator, value, {decay}, CAST(valid_from AS TIMESTAMP) FROM _intel_raw "
                    "WHERE otype = 'cidr' AND contains(value, ':')"):
                net6.setdefault(str(key), []).append(
                    (ipaddress.IPv6Network(str(network)), str(key), until, start))  # type: ignore[arg-type]
            self._run("COMMIT")
        except BaseException:
            self._run("ROLLBACK")
            raise
        finally:
            self._conn.unregister("_intel_raw")
        self._net6 = net6
        self._count()

    def _count(self) -> None:
        exact = self._run(f"SELECT count(*) FROM {SCHEMA}.exact")[0][0]
        prefixes = self._run(f"SELECT DISTINCT prefix FROM {SCHEMA}.net4 ORDER BY 1")
        self.prefixes = tuple(int(str(p)) for (p,) in prefixes)
        nets = self._run(f"SELECT count(*) FROM {SCHEMA}.net4")[0][0]
        self.size = int(str(exact)) + int(str(nets)) + len(self._net6)
