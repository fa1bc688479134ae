"""Events to Arrow columns: the hot path from parsed events to a DuckDB insert.

Each batch of one partition becomes one Arrow table with the envelope columns and one text
column per field seen in the batch. Field values become text (numbers as digits, booleans as
``true``/``false``, nested values as JSON).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import date
from typing import Any

import orjson
import pyarrow as pa

from vigil.events.models import Event, LogSource
from vigil.store.schema import DAY, FORMAT, HOST, ID, RAW, RECEIVED, TS

_TS_TYPE = pa.timestamp("us", tz="UTC")
_ENVELOPE_LOWER = frozenset(n.lower() for n in (ID, TS, DAY, RECEIVED, HOST, FORMAT, RAW))


def _json_text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return orjson.dumps(value).decode()


def gather_fields(events: Sequence[Event]) -> dict[str, list[Any]]:
    """Column lists of text by field name (exact names), padded with None."""
    size = len(events)
    columns: dict[str, list[Any]] = {}
    for index, event in enumerate(events):
        for key, value in event.fields.items():
            column = columns.get(key)
            if column is None:
                column = columns[key] = [None] * size
            column[index] = value if value.__class__ is str else _json_text(value)
    return columns


def merge_case_variants(columns: dict[str, list[Any]],
                        known: dict[str, str]) -> dict[str, list[Any]]:
    """Fold names differing only in case into one column (the name the store already uses)."""
    merged: dict[str, list[Any]] = {}
    for key, values in columns.items():
        lowered = key.lower()
        name = known.get(lowered, key)
        existing = merged.get(name)
        if existing is None:
            alias = next((n for n in merged if n.lower() == lowered), None)
            if alias is None:
                merged[name] = values
                continue
            existing = merged[alias]
        for index, value in enumerate(values):
            if existing[index] is None:
                existing[index] = value
    return merged


def to_arrow(events: Sequence[Event], known: dict[str, str]) -> pa.Table:
    """One Arrow table for a batch of events of one partition."""
    fields = merge_case_variants(gather_fields(events), known)
    arrays: dict[str, pa.Array] = {
        ID: pa.array([e.id for e in events], type=pa.string()),
        TS: pa.array([e.ts for e in events], type=_TS_TYPE),
        DAY: pa.array([date(e.ts.year, e.ts.month, e.ts.day) for e in events], type=pa.date32()),
        RECEIVED: pa.array([e.received for e in events], type=_TS_TYPE),
        HOST: pa.array([e.host for e in events], type=pa.string()),
        FORMAT: pa.array([e.format for e in events], type=pa.string()),
        RAW: pa.array([e.raw for e in events], type=pa.large_string()),
    }
    for name, values in fields.items():
        if name.lower() in _ENVELOPE_LOWER:
            continue
        arrays[name] = pa.array(values, type=pa.string())
    return pa.table(arrays)


def group_events(events: Sequence[Event]) -> tuple[dict[LogSource, list[Event]], int]:
    """Events grouped by log source, each id once; also how many repeats were dropped."""
    by_source: dict[LogSource, list[Event]] = defaultdict(list)
    seen: set[str] = set()
    for event in events:
        if event.id not in seen:
            seen.add(event.id)
            by_source[event.source].append(event)
    return by_source, len(events) - len(seen)


def to_tables(events: Sequence[Event]) -> tuple[dict[LogSource, pa.Table], int]:
    """One Arrow table per log source for a batch of events; also the repeats dropped."""
    groups, duplicates = group_events(events)
    return {source: to_arrow(group, {}) for source, group in groups.items()}, duplicates
