"""Searching the event store: the query language over the log-source partitions.

A search runs on every partition that can hold matches (``--source`` narrows them), filtered
by time first, then merges the newest matches. Raw SQL is allowed read-only: a single
``SELECT`` (or ``WITH``/``DESCRIBE``/``SHOW``/``SUMMARIZE``/``EXPLAIN``) statement.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import duckdb

from vigil.core.errors import QueryError
from vigil.core.timeutil import to_utc
from vigil.store.duck import EventStore
from vigil.store.query import Compiler, parse
from vigil.store.schema import DAY, ENVELOPE, HOST, ID, RAW, RECEIVED, TS, PartitionInfo, quote

MAX_LIMIT = 10_000
_READ_ONLY = {"SELECT", "EXPLAIN"}


@dataclass(frozen=True, slots=True)
class SearchRequest:
    """What to search for."""

    query: str
    since: datetime | None = None
    until: datetime | None = None
    sources: tuple[str, ...] = ()
    limit: int = 100
    with_raw: bool = False


@dataclass(frozen=True, slots=True)
class Hit:
    """One matching event."""

    id: str
    ts: datetime
    host: str | None
    source: str
    fields: dict[str, Any]
    raw: str | None


def _selected(store: EventStore, sources: tuple[str, ...]) -> list[PartitionInfo]:
    partitions = store.partitions()
    if not sources:
        return partitions
    chosen = [p for p in partitions if any(_source_matches(p, s) for s in sources)]
    return chosen


def _source_matches(info: PartitionInfo, spec: str) -> bool:
    """``windows`` / ``windows/process_creation`` / ``linux/-/sshd`` / ``*/*/sysmon``."""
    parts = [p.strip().lower() for p in spec.split("/")]
    values = [(info.product or "-").lower(), (info.category or "-").lower(),
              (info.service or "-").lower()]
    return all(want in ("", "*") or want == have for want, have in zip(parts, values, strict=False))


def _where(info: PartitionInfo, store: EventStore, request: SearchRequest) -> tuple[str, list[Any]]:
    node = parse(request.query)
    condition = Compiler(store.columns(info.partition)).compile(node)
    params: list[Any] = []
    if request.since is not None:
        since = to_utc(request.since)
        condition += f" AND {quote(TS)} >= ? AND {quote(DAY)} >= CAST(? AS DATE)"
        params += [since, since.date()]
    if request.until is not None:
        until = to_utc(request.until)
        condition += f" AND {quote(TS)} < ? AND {quote(DAY)} <= CAST(? AS DATE)"
        params += [until, until.date()]
    return condition, params


def count(store: EventStore, request: SearchRequest) -> int:
    """How many events match."""
    parse(request.query)
    total = 0
    with store.reader() as cursor:
        for info in _selected(store, request.sources):
            condition, params = _where(info, store, request)
            row = cursor.execute(
                f"SELECT count(*) FROM {quote(info.table)} WHERE {condition}", params).fetchone()
            total += int(row[0]) if row else 0
    return total


def search(store: EventStore, request: SearchRequest) -> list[Hit]:
    """The newest matching events, at most ``request.limit``."""
    parse(request.query)
    limit = max(1, min(request.limit, MAX_LIMIT))
    hits: list[Hit] = []
    with store.reader() as cursor:
        for info in _selected(store, request.sources):
            condition, params = _where(info, store, request)
            cursor.execute(
                f"SELECT * FROM {quote(info.table)} WHERE {condition} "
                f"ORDER BY {quote(TS)} DESC LIMIT {limit}", params)
            names = [d[0] for d in cursor.description or []]
            hits.extend(_hit(info, names, row, request.with_raw) for row in cursor.fetchall())
    hits.sort(key=lambda h: h.ts, reverse=True)
    return hits[:limit]


def _hit(info: PartitionInfo, names: list[str], row: tuple[Any, ...], with_raw: bool) -> Hit:
    values = dict(zip(names, row, strict=True))
    fields = {k: v for k, v in values.items() if v is not None and k not in ENVELOPE}
    return Hit(id=values[ID], ts=values[TS], host=values.get(HOST), source=info.label,
               fields=fields, raw=values.get(RAW) if with_raw else None)


def _explained_kind(cursor: duckdb.DuckDBPyConnection, sql: str) -> str:
    """The kind of statement an EXPLAIN explains (EXPLAIN ANALYZE runs it: never allowed)."""
    words = sql.split(None, 2)
    if len(words) < 2 or words[1].upper() == "ANALYZE":
        return "EXPLAIN ANALYZE"
    rest = sql.split(None, 1)[1]
    inner = cursor.extract_statements(rest)
    if len(inner) != 1:
        return "EXPLAIN ANALYZE"
    kind = inner[0].type.name.upper()
    return _explained_kind(cursor, rest) if kind == "EXPLAIN" else kind


def run_sql(store: EventStore, sql: str, limit: int = 1000) -> tuple[list[str], list[tuple[Any, ...]]]:
    """Run one read-only SQL statement; the event tables are named ``ev_<partition>``."""
    with store.reader() as cursor:
        try:
            statements = cursor.extract_statements(sql)
        except duckdb.Error as exc:
            raise QueryError("invalid SQL: " + str(exc).partition("\n")[0]) from exc
        if len(statements) != 1:
            raise QueryError("give exactly one SQL statement")
        kind = statements[0].type.name.upper()
        if kind == "EXPLAIN":
            kind = _explained_kind(cursor, sql)
        if kind not in _READ_ONLY:
            raise QueryError(f"only read-only statements are allowed, not {kind}")
        try:
            cursor.execute(sql)
            names = [d[0] for d in cursor.description or []]
            return names, cursor.fetchmany(limit)
        except duckdb.Error as exc:
            raise QueryError("SQL error: " + str(exc).partition("\n")[0]) from exc


__all__ = ["RECEIVED", "Hit", "SearchRequest", "count", "run_sql", "search"]
