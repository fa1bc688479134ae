"""Threat-intelligence use cases for the front doors: import, search, show, list, sightings,
revocation, and the counts.

Every change goes through here with the principal who asked, and is audited. Importing is
all or nothing: a file either parses as the format it claims to be and is stored in one
transaction, or nothing is stored and the error says why.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

import orjson
from sqlalchemy import select

from vigil.audit.service import record
from vigil.core.auth import Principal
from vigil.core.config import IntelSettings
from vigil.core.db import StateDB
from vigil.core.errors import InputError, NotFoundError, ParseError
from vigil.core.timeutil import to_utc, utcnow
from vigil.intel import lists, reading
from vigil.intel.decay import DecayPolicy
from vigil.intel.models import Indicator, Sighting
from vigil.intel.reading import IndicatorFilter
from vigil.intel.types import IndicatorInput, IndicatorType, IndicatorView, Parsed, SightingKind
from vigil.intel.writing import IngestResult, bump_revision, ingest_session

__all__ = ["ImportFormat", "ImportReport", "IndicatorFilter", "IngestResult", "detect_format", "get",
           "import_bytes", "ingest", "page", "policy", "revoke", "search", "sight", "summary"]


def policy(settings: IntelSettings) -> DecayPolicy:
    return DecayPolicy.of(settings.lifetime_days, settings.decay_speed, settings.decay_threshold,
                          settings.default_confidence)


class ImportFormat(StrEnum):
    """What ``vigil intel import`` reads."""

    STIX = "stix"
    MISP = "misp"
    CSV = "csv"
    TEXT = "text"


@dataclass(slots=True)
class ImportReport:
    """The outcome of one import: what was read and what the store made of it."""

    format: ImportFormat
    read: int
    skipped: int
    problems: list[str] = field(default_factory=list)
    result: IngestResult = field(default_factory=IngestResult)


def ingest(db: StateDB, indicators: list[IndicatorInput], settings: IntelSettings, *,
           actor: Principal | str, source: str | None = None) -> IngestResult:
    """Store ``indicators`` in one transaction (allowlists applied)."""
    with db.session() as session:
        return ingest_session(session, indicators, actor=actor,
                              allowlists=lists.active_lists(session, settings),
                              default_confidence=settings.default_confidence, source=source)


def detect_format(data: bytes) -> ImportFormat:
    """STIX bundle, MISP event or a list, from the first bytes."""
    head = data[:4096].lstrip().lower()
    if head.startswith((b"<html", b"<!doctype", b"<?xml")):
        raise ParseError("the content is HTML or XML, not a feed")
    if head.startswith((b"{", b"[")):
        if b'"bundle"' in data[:65536] or b'"spec_version"' in data[:65536]:
            return ImportFormat.STIX
        if b'"event"' in head or b'"attribute"' in data[:65536].lower() or b'"response"' in head:
            return ImportFormat.MISP
        raise ParseError("JSON that is neither a STIX 2.1 bundle nor a MISP event")
    lines = (line for line in head.splitlines() if line.strip() and not line.startswith((b"#", b";")))
    first = next(lines, b"")
    return ImportFormat.CSV if b"," in first else ImportFormat.TEXT


def parse(data: bytes, fmt: ImportFormat, source: str, *, preset: str | None = None,
          max_indicators: int = 2_000_000) -> Parsed:
    """Parse ``data`` as ``fmt`` (a ``preset`` names the CSV column mapping)."""
    if fmt is ImportFormat.STIX:
        from vigil.intel.formats.stix import parse_bundle

        return parse_bundle(data, source)
    if fmt is ImportFormat.MISP:
        from vigil.intel.formats.misp import parse_event

        return parse_event(data, source)
    from vigil.intel.formats.presets import PRESETS
    from vigil.intel.formats.tabular import parse_table

    name = preset or ("plain" if fmt is ImportFormat.TEXT else None)
    if name is None:
        raise InputError("a CSV import needs a column mapping: give --preset "
                         f"({', '.join(sorted(PRESETS))})")
    if name not in PRESETS:
        raise InputError(f"unknown preset {name!r} (use {', '.join(sorted(PRESETS))})")
    return parse_table(data, PRESETS[name].mapping, source, max_indicators=max_indicators)


def import_bytes(db: StateDB, data: bytes, settings: IntelSettings, *, actor: Principal | str,
                 source: str, fmt: ImportFormat | None = None, preset: str | None = None) -> ImportReport:
    """Parse and store a feed file; nothing is stored when it does not parse."""
    if not data.strip():
        raise InputError(f"{source}: the file is empty")
    kind = fmt or detect_format(data)
    parsed = parse(data, kind, source, preset=preset, max_indicators=settings.max_import_indicators)
    if len(parsed.indicators) > settings.max_import_indicators:
        raise ParseError(f"{source}: more than {settings.max_import_indicators:,} indicators in one file; "
                         "nothing was imported (split it or raise intel.max_import_indicators)")
    report = ImportReport(kind, len(parsed.indicators), parsed.skipped, list(parsed.problems))
    if parsed.indicators:
        report.result = ingest(db, parsed.indicators, settings, actor=actor, source=source)
    return report


def get(db: StateDB, ref: str, settings: IntelSettings) -> IndicatorView:
    with db.session() as session:
        return reading.get(session, ref, policy(settings))


def search(db: StateDB, value: str, settings: IntelSettings, *, kind: IndicatorType | None = None,
           limit: int = 100) -> list[IndicatorView]:
    with db.session() as session:
        return reading.search(session, value, policy(settings), kind=kind, limit=limit)


def page(db: StateDB, wanted: IndicatorFilter, settings: IntelSettings, *, limit: int = 100,
         after: str | None = None) -> tuple[list[IndicatorView], str | None]:
    with db.session() as session:
        return reading.page(session, wanted, policy(settings), limit=limit, after=after)


def summary(db: StateDB) -> dict[str, int]:
    with db.session() as session:
        return reading.counts(session)


def _row(session: object, ref: str) -> Indicator:
    from sqlalchemy.orm import Session

    assert isinstance(session, Session)
    row = session.get(Indicator, ref) or session.execute(
        select(Indicator).where(Indicator.stix_id == ref).limit(1)).scalar_one_or_none()
    if row is None:
        raise NotFoundError(f"no indicator {ref!r}")
    return row


def sight(db: StateDB, ref: str, kind: SightingKind, settings: IntelSettings, *,
          actor: Principal | str, note: str | None = None, at: datetime | None = None,
          alert_id: int | None = None) -> IndicatorView:
    """Record a sighting: ``seen`` resets the decay, ``false_positive`` halves the score,
    ``expired`` takes the indicator out of matching and exports."""
    name = actor if isinstance(actor, str) else actor.actor
    moment = to_utc(at) if at else utcnow()
    with db.session() as session:
        row = _row(session, ref)
        session.add(Sighting(indicator_id=row.id, kind=kind.value, at=moment, count=1, actor=name,
                             alert_id=alert_id, note=note))
        if kind is SightingKind.SEEN:
            row.sightings_seen += 1
            if row.last_sighting is None or to_utc(row.last_sighting) < moment:
                row.last_sighting = moment
        elif kind is SightingKind.FALSE_POSITIVE:
            row.sightings_fp += 1
        else:
            row.sightings_expired += 1
        row.updated_at = utcnow()
        record(session, actor, "sighting", "intel_indicator", row.id, None,
               {"kind": kind.value, "note": note, "alert_id": alert_id})
        bump_revision(session)
        session.flush()
        return reading.views(session, [row], policy(settings))[0]


def revoke(db: StateDB, ref: str, settings: IntelSettings, *, actor: Principal | str,
           reason: str | None = None) -> IndicatorView:
    """Revoke an indicator: never matched nor exported again (until a feed states it anew)."""
    with db.session() as session:
        row = _row(session, ref)
        if not row.revoked:
            row.revoked = True
            row.updated_at = utcnow()
            record(session, actor, "revoke", "intel_indicator", row.id, {"revoked": False},
                   {"revoked": True, "reason": reason})
            bump_revision(session)
        session.flush()
        return reading.views(session, [row], policy(settings))[0]


def view_json(view: IndicatorView) -> dict[str, object]:
    """A JSON-ready mapping of a view (for the CLI's ``--json``)."""
    data: dict[str, object] = orjson.loads(orjson.dumps(view, default=str))
    return data
