"""The detection engine: compiled rules evaluated on store partitions.

For each partition the engine keeps only the rules routed to it, builds once a working table
with the fields those rules use (lower-cased and original text, NULL where the partition
lacks a field, source names mapped to Sigma names), then evaluates the rules in chunks of one
``UNION ALL`` query each. A rule that fails at run time is reported and skipped; it never
stops the others.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import duckdb

from vigil.core import logging as vlog
from vigil.detect.routing import mapping_for, routes
from vigil.detect.types import RAW_FIELD, CompiledRule, RuleMeta, cased_column, lower_column
from vigil.events.models import LogSource
from vigil.store.duck import EventStore
from vigil.store.schema import HOST, ID, RAW, TS, PartitionInfo, quote

log = vlog.get("vigil.detect")
CHUNK = 64
WORK = "_vigil_detect_work"


@dataclass(frozen=True, slots=True)
class Detection:
    """One event matched by one rule."""

    rule: RuleMeta
    event_id: str
    ts: datetime
    host: str | None
    source: str
    fields: dict[str, Any]


@dataclass(slots=True)
class EngineStats:
    """What an evaluation did (for summaries and benchmarks)."""

    partitions: int = 0
    events: int = 0
    rule_runs: int = 0
    detections: int = 0
    seconds: float = 0.0
    failures: dict[str, str] = field(default_factory=dict)


def time_scope(since: datetime | None, until: datetime | None) -> tuple[str, list[Any]]:
    """The SQL scope (and its parameters) of the events in ``[since, until)``."""
    conditions, params = ["TRUE"], []
    if since is not None:
        conditions.append(f"{quote(TS)} >= ?")
        params.append(since)
    if until is not None:
        conditions.append(f"{quote(TS)} < ?")
        params.append(until)
    return " AND ".join(conditions), params


def _source_of(info: PartitionInfo) -> LogSource:
    return LogSource(info.product, info.category, info.service)


def _projection(fields: Iterable[str], columns: dict[str, str],
                mapping: dict[str, str]) -> list[str]:
    """SELECT items giving every field its ``l:`` and ``c:`` columns on one partition."""
    items = []
    folded: dict[str, str] = {}
    for name in sorted(fields):
        # DuckDB names are case-insensitive: "l:FileName" and "l:Filename" are one column.
        folded.setdefault(name.lower(), name)
    for name in folded.values():
        if name == RAW_FIELD:
            source: str | None = RAW
        else:
            mapped = mapping.get(name)
            source = columns.get(mapped.lower()) if mapped else None
            source = source or columns.get(name.lower())
        if source is None:
            items += [f"NULL::VARCHAR AS {lower_column(name)}", f"NULL::VARCHAR AS {cased_column(name)}"]
        else:
            text = f"CAST({quote(source)} AS VARCHAR)"
            items += [f"lower({text}) AS {lower_column(name)}", f"{text} AS {cased_column(name)}"]
    return items


class Engine:
    """Evaluates a set of compiled rules on the partitions of an event store."""

    def __init__(self, rules: Sequence[CompiledRule]) -> None:
        self.rules = list(rules)

    def routed(self, info: PartitionInfo) -> list[CompiledRule]:
        source = _source_of(info)
        return [r for r in self.rules if routes(r.meta.logsource, source)]

    def run(self, store: EventStore, scope: str = "TRUE", params: Sequence[Any] = (),
            stats: EngineStats | None = None,
            sources: set[str] | None = None) -> Iterator[Detection]:
        """Detections for the events that satisfy ``scope`` (SQL), on every partition or on
        those whose label (``product/category/service``) is in ``sources``."""
        stats = stats if stats is not None else EngineStats()
        started = time.perf_counter()
        with store.reader() as cursor:
            for info in store.partitions():
                if sources is not None and info.label not in sources:
                    continue
                rules = self.routed(info)
                if rules:
                    stats.partitions += 1
                    yield from self._partition(cursor, store, info, rules, scope, params, stats)
        stats.seconds += time.perf_counter() - started

    def _partition(self, cursor: duckdb.DuckDBPyConnection, store: EventStore, info: PartitionInfo,
                   rules: list[CompiledRule], scope: str, params: Sequence[Any],
                   stats: EngineStats) -> Iterator[Detection]:
        fields: set[str] = set().union(*(r.fields for r in rules))
        items = _projection(fields, store.columns(info.partition), mapping_for(_source_of(info)))
        cursor.execute(
            f"CREATE OR REPLACE TEMP TABLE {WORK} AS SELECT {quote(ID)}, {quote(TS)}, "
            f"{quote(HOST)}, {', '.join(items)} FROM {quote(info.table)} WHERE {scope}",
            list(params))
        row = cursor.execute(f"SELECT count(*) FROM {WORK}").fetchone()
        stats.events += int(row[0]) if row else 0
        try:
            matches: list[tuple[int, str]] = []
            for start in range(0, len(rules), CHUNK):
                matches += self._chunk(cursor, rules, start, stats)
            stats.rule_runs += len(rules)
            yield from self._details(cursor, info, rules, matches, stats)
        finally:
            cursor.execute(f"DROP TABLE IF EXISTS {WORK}")

    def _chunk(self, cursor: duckdb.DuckDBPyConnection, rules: list[CompiledRule], start: int,
               stats: EngineStats) -> list[tuple[int, str]]:
        chunk = range(start, min(start + CHUNK, len(rules)))
        query = " UNION ALL ".join(
            f"SELECT {i} AS r, {quote(ID)} FROM {WORK} WHERE {rules[i].sql}" for i in chunk)
        try:
            return [(int(r), str(i)) for r, i in cursor.execute(query).fetchall()]
        except duckdb.Error:
            pass
        found: list[tuple[int, str]] = []
        for index in chunk:  # isolate the failing rule, keep the others
            try:
                rows = cursor.execute(
                    f"SELECT {quote(ID)} FROM {WORK} WHERE {rules[index].sql}").fetchall()
                found += [(index, str(i)) for (i,) in rows]
            except duckdb.Error as exc:
                stats.failures[rules[index].meta.id] = str(exc).splitlines()[0]
                log.warning("rule %s failed: %s", rules[index].meta.id, exc)
        return found

    def _details(self, cursor: duckdb.DuckDBPyConnection, info: PartitionInfo,
                 rules: list[CompiledRule], matches: list[tuple[int, str]],
                 stats: EngineStats) -> Iterator[Detection]:
        if not matches:
            return
        ids = sorted({event for _, event in matches})
        cursor.execute(f"SELECT * FROM {WORK} WHERE {quote(ID)} IN (SELECT unnest(?))", [ids])
        names = [d[0] for d in cursor.description or []]
        rows = {r[0]: dict(zip(names, r, strict=True)) for r in cursor.fetchall()}
        for index, event in matches:
            row = rows[event]
            rule = rules[index]
            shown = {f: row.get("c:" + f) for f in sorted(rule.fields) if f != RAW_FIELD}
            stats.detections += 1
            yield Detection(rule.meta, event, row[TS], row[HOST], info.label,
                            {k: v for k, v in shown.items() if v is not None})
