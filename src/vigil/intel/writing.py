"""Storing indicators: one atomic upsert per batch, merging what every source says.

An indicator is stored once per (type, canonical value) — its id is the UUIDv5 of both —
whatever the number of feeds that state it. A batch is merged into what is stored:

- ``last_seen`` moves forward, ``first_seen`` back; each source keeps its own first/last seen;
- labels, ATT&CK ids, malware names and markings are unions; the TLP is the most restrictive;
- confidence, name, description, validity, ``revoked`` and the STIX object follow the latest
  source that states them;
- the allowlists are applied on the way in: a covered indicator is stored and flagged
  (``allowlisted`` = the list's name), never matched nor exported.

The whole batch is written in the caller's session (one transaction with, for example, a
feed's new cursor) with bulk statements, and one audit record says who imported how many from
where. Whenever something changed, the matching revision (``intel_meta``) moves on, so live
matching reloads its index.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

import orjson
from sqlalchemy import insert, select, text, update
from sqlalchemy.orm import Session

from vigil.audit.service import record
from vigil.core.auth import Principal
from vigil.core.timeutil import to_utc, utcnow
from vigil.intel.allowlist import AllowlistSet
from vigil.intel.models import Indicator, IndicatorObservable, IndicatorSource
from vigil.intel.normalize import indicator_id
from vigil.intel.types import TLP, IndicatorInput, IndicatorType

CHUNK = 500
T = TypeVar("T")


@dataclass(slots=True)
class IngestResult:
    """What one batch changed."""

    added: int = 0
    updated: int = 0
    unchanged: int = 0
    allowlisted: int = 0
    problems: list[str] = field(default_factory=list)
    ids: list[str] = field(default_factory=list)
    """Ids of the indicators added or changed (the retro-hunt looks for them)."""


def chunks(items: Sequence[T], size: int = CHUNK) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def _json(values: Iterable[str]) -> str:
    return orjson.dumps(sorted(values)).decode()


def _load(text_value: str | None) -> list[str]:
    return list(orjson.loads(text_value)) if text_value else []


def _max_tlp(a: str | None, b: TLP | None) -> str | None:
    if b is None:
        return a
    if a is None:
        return b.value
    return a if TLP(a).rank >= b.rank else b.value


def _merge_inputs(indicators: Sequence[IndicatorInput]) -> dict[str, list[IndicatorInput]]:
    merged: dict[str, list[IndicatorInput]] = {}
    for item in indicators:
        merged.setdefault(indicator_id(item.type, item.value), []).append(item)
    return merged


def _seen(item: IndicatorInput, now: datetime) -> tuple[datetime, datetime]:
    first = to_utc(item.first_seen or item.valid_from or item.last_seen or now)
    last = to_utc(item.last_seen or item.first_seen or item.valid_from or now)
    return min(first, last), max(first, last)


def _new_row(key: str, items: list[IndicatorInput], now: datetime, default_confidence: int,
             allowlisted: str | None) -> dict[str, Any]:
    row: dict[str, Any] = {
        "id": key, "type": items[0].type.value, "value": items[0].value, "pattern": None,
        "stix_id": None, "name": None, "description": None, "confidence": default_confidence,
        "base_score": default_confidence, "tlp": None, "markings": "[]", "labels": "[]",
        "attack": "[]", "malware": "[]", "valid_from": None, "valid_until": None, "revoked": False,
        "first_seen": None, "last_seen": None, "last_sighting": None, "sightings_seen": 0,
        "sightings_fp": 0, "sightings_expired": 0, "allowlisted": allowlisted, "stix": None,
        "created_at": now, "updated_at": now,
    }
    for item in items:
        _apply(row, item, now)
    return row


def _apply(row: dict[str, Any], item: IndicatorInput, now: datetime) -> None:
    """Merge one source's statement into ``row`` (a dict of column values)."""
    first, last = _seen(item, now)
    row["first_seen"] = first if row["first_seen"] is None else min(to_utc(row["first_seen"]), first)
    row["last_seen"] = last if row["last_seen"] is None else max(to_utc(row["last_seen"]), last)
    for name in ("pattern", "stix_id", "name", "description", "stix"):
        value = getattr(item, name)
        if value is not None:
            row[name] = value
    if item.confidence is not None:
        row["confidence"] = row["base_score"] = item.confidence
    if item.valid_from is not None:
        row["valid_from"] = to_utc(item.valid_from)
    if item.valid_until is not None or item.stix is not None:
        row["valid_until"] = to_utc(item.valid_until) if item.valid_until else None
    row["revoked"] = item.revoked
    row["tlp"] = _max_tlp(row["tlp"], item.tlp)
    for name in ("labels", "attack", "malware", "markings"):
        values = getattr(item, name)
        if values:
            row[name] = _json(set(_load(row[name])) | set(values))


_COMPARED = ("pattern", "stix_id", "name", "description", "confidence", "base_score", "tlp",
             "markings", "labels", "attack", "malware", "valid_from", "valid_until", "revoked",
             "first_seen", "last_seen", "allowlisted", "stix")


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, datetime) and isinstance(b, datetime):
        return to_utc(a) == to_utc(b)
    return bool(a == b)


class _Batch:
    """One ingest: the rows as stored, then as merged."""

    def __init__(self, session: Session, merged: dict[str, list[IndicatorInput]]) -> None:
        self.session = session
        self.merged = merged
        self.stored: dict[str, dict[str, Any]] = {}
        columns = [getattr(Indicator, c) for c in ("id", "type", "value", *_COMPARED)]
        for chunk in chunks(list(merged)):
            for found in session.execute(select(*columns).where(Indicator.id.in_(chunk))).mappings():
                self.stored[found["id"]] = dict(found)

    def sources(self) -> dict[tuple[str, str], dict[str, Any]]:
        keys = list(self.stored)
        found: dict[tuple[str, str], dict[str, Any]] = {}
        for chunk in chunks(keys):
            for row in self.session.execute(select(IndicatorSource).where(
                    IndicatorSource.indicator_id.in_(chunk))).scalars():
                found[(row.indicator_id, row.source)] = {
                    "indicator_id": row.indicator_id, "source": row.source,
                    "first_seen": row.first_seen, "last_seen": row.last_seen,
                    "reference": row.reference, "confidence": row.confidence}
        return found

    def observables(self) -> set[tuple[str, str, str]]:
        found: set[tuple[str, str, str]] = set()
        for chunk in chunks(list(self.stored)):
            rows = self.session.execute(select(
                IndicatorObservable.indicator_id, IndicatorObservable.type,
                IndicatorObservable.value).where(IndicatorObservable.indicator_id.in_(chunk)))
            found.update((a, b, c) for a, b, c in rows)
        return found


def ingest_session(session: Session, indicators: Sequence[IndicatorInput], *,
                   actor: Principal | str, now: datetime | None = None,
                   allowlists: AllowlistSet | None = None, default_confidence: int = 50,
                   source: str | None = None) -> IngestResult:
    """Store ``indicators`` in ``session`` (see the module docstring); returns the counts."""
    now = now or utcnow()
    result = IngestResult()
    merged = _merge_inputs(indicators)
    if not merged:
        return result
    batch = _Batch(session, merged)
    new_rows, changed_rows = [], []
    for key, items in merged.items():
        covered = allowlists.match(items[0].type, items[0].value) if allowlists else None
        if covered:
            result.allowlisted += 1
        stored = batch.stored.get(key)
        if stored is None:
            new_rows.append(_new_row(key, items, now, default_confidence, covered))
            result.ids.append(key)
            continue
        row = dict(stored)
        row["allowlisted"] = covered
        for item in items:
            _apply(row, item, now)
        if all(_same(row[c], stored[c]) for c in _COMPARED):
            result.unchanged += 1
            continue
        row["updated_at"] = now
        changed_rows.append({k: v for k, v in row.items() if k not in ("type", "value")})
        result.ids.append(key)
    for chunk in chunks(new_rows, 5000):
        session.execute(insert(Indicator), list(chunk))
    for chunk in chunks(changed_rows, 5000):
        session.execute(update(Indicator), list(chunk))
    result.added, result.updated = len(new_rows), len(changed_rows)
    _write_sources(session, batch, now)
    _write_observables(session, batch)
    if result.added or result.updated:
        bump_revision(session)
    record(session, actor, "import", "intel_indicators", source or _sources_label(indicators),
           after={"added": result.added, "updated": result.updated,
                  "unchanged": result.unchanged, "allowlisted": result.allowlisted})
    return result


def _sources_label(indicators: Sequence[IndicatorInput]) -> str:
    names = sorted({i.source for i in indicators})
    return ",".join(names)[:128] or "-"


def _write_sources(session: Session, batch: _Batch, now: datetime) -> None:
    stored = batch.sources()
    new: dict[tuple[str, str], dict[str, Any]] = {}
    changed: dict[tuple[str, str], dict[str, Any]] = {}
    for key, items in batch.merged.items():
        for item in items:
            first, last = _seen(item, now)
            pair = (key, item.source[:200])
            row = new.get(pair) or changed.get(pair)
            if row is None and pair in stored:
                row = changed[pair] = dict(stored[pair])
            if row is None:
                new[pair] = {"indicator_id": key, "source": pair[1], "first_seen": first,
                             "last_seen": last, "reference": item.reference,
                             "confidence": item.confidence}
                continue
            row["first_seen"] = min(to_utc(row["first_seen"]), first)
            row["last_seen"] = max(to_utc(row["last_seen"]), last)
            row["reference"] = item.reference or row["reference"]
            row["confidence"] = item.confidence if item.confidence is not None else row["confidence"]
    for chunk in chunks(list(new.values()), 5000):
        session.execute(insert(IndicatorSource), list(chunk))
    for chunk in chunks(list(changed.values()), 5000):
        session.execute(update(IndicatorSource), list(chunk))


def _write_observables(session: Session, batch: _Batch) -> None:
    stored = batch.observables()
    wanted: set[tuple[str, str, str]] = set()
    for key, items in batch.merged.items():
        for item in items:
            wanted.update((key, o.type.value, o.value) for o in item.observables)
    rows = [{"indicator_id": a, "type": b, "value": c} for a, b, c in wanted - stored]
    for chunk in chunks(rows, 5000):
        session.execute(insert(IndicatorObservable), list(chunk))


def bump_revision(session: Session) -> None:
    """Tell live matching that the active indicators changed."""
    session.execute(text("UPDATE intel_meta SET revision = revision + 1 WHERE id = 1"))


def revision(session: Session) -> int:
    found = session.execute(text("SELECT revision FROM intel_meta WHERE id = 1")).scalar()
    return int(found or 0)


def is_simple(kind: IndicatorType) -> bool:
    return kind is not IndicatorType.STIX_PATTERN
