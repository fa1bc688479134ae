"""Reading indicators: views with their decayed score, search by value, filtered listings.

The score and the ``active`` flag are computed here, at read time, from the stored base
score, the last time a feed or a sighting saw the indicator, and the decay policy in force
(see :mod:`vigil.intel.decay`).

Searching a value finds the indicators that would match it in an event: the same value, the
networks that contain an address (every prefix of the address is looked up, no scan), and the
parent domains of a name (``a.b.evil.example`` finds ``evil.example``).
"""

from __future__ import annotations

import ipaddress
from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import orjson
from sqlalchemy import Select, and_, or_, select
from sqlalchemy.orm import Session

from vigil.core.errors import InputError, NotFoundError
from vigil.core.timeutil import to_utc, utcnow
from vigil.intel.decay import DecayPolicy
from vigil.intel.models import Indicator, IndicatorObservable, IndicatorSource
from vigil.intel.normalize import canonical, guess_type
from vigil.intel.types import TLP, IndicatorType, IndicatorView, Observable, SourceView
from vigil.intel.writing import chunks

MAX_PAGE = 1000


@dataclass(frozen=True, slots=True)
class IndicatorFilter:
    """Which indicators a listing or an export takes."""

    types: tuple[IndicatorType, ...] = ()
    source: str | None = None
    min_confidence: int | None = None
    min_score: float | None = None
    max_tlp: TLP | None = None
    label: str | None = None
    active_only: bool = False
    include_allowlisted: bool = True
    seen_within: timedelta | None = None
    """Only indicators seen (by a feed or a sighting) within this long."""
    updated_since: datetime | None = None


def _tuple(text: str | None) -> tuple[str, ...]:
    return tuple(orjson.loads(text)) if text else ()


def _view(row: Indicator, sources: Sequence[SourceView], observables: Sequence[Observable],
          policy: DecayPolicy, now: datetime) -> IndicatorView:
    kind = IndicatorType(row.type)
    last = to_utc(row.last_seen)
    if row.last_sighting is not None:
        last = max(last, to_utc(row.last_sighting))
    score = policy.score(kind, row.base_score, last, now, revoked=row.revoked,
                         false_positives=row.sightings_fp, expired=row.sightings_expired > 0)
    valid_from = to_utc(row.valid_from) if row.valid_from else None
    valid_until = to_utc(row.valid_until) if row.valid_until else None
    active = policy.active(score, now, valid_from, valid_until) and row.allowlisted is None
    return IndicatorView(
        id=row.id, type=kind, value=row.value, pattern=row.pattern, stix_id=row.stix_id,
        name=row.name, description=row.description, confidence=row.confidence,
        base_score=row.base_score, score=score, active=active,
        tlp=TLP(row.tlp) if row.tlp else None, markings=_tuple(row.markings),
        labels=_tuple(row.labels), attack=_tuple(row.attack), malware=_tuple(row.malware),
        valid_from=valid_from, valid_until=valid_until, revoked=row.revoked,
        first_seen=to_utc(row.first_seen), last_seen=to_utc(row.last_seen),
        last_sighting=to_utc(row.last_sighting) if row.last_sighting else None,
        sightings_seen=row.sightings_seen, sightings_false_positive=row.sightings_fp,
        sightings_expired=row.sightings_expired, allowlisted=row.allowlisted,
        observables=tuple(observables), sources=tuple(sources), stix=row.stix)


def views(session: Session, rows: Sequence[Indicator], policy: DecayPolicy,
          now: datetime | None = None) -> list[IndicatorView]:
    """Views of ``rows`` with their sources and observables (two queries per 500 rows)."""
    now = now or utcnow()
    sources: dict[str, list[SourceView]] = defaultdict(list)
    observables: dict[str, list[Observable]] = defaultdict(list)
    for chunk in chunks([r.id for r in rows]):
        for src in session.execute(select(IndicatorSource).where(
                IndicatorSource.indicator_id.in_(chunk)).order_by(IndicatorSource.source)).scalars():
            sources[src.indicator_id].append(SourceView(
                src.source, to_utc(src.first_seen), to_utc(src.last_seen), src.reference, src.confidence))
        for key, kind, value in session.execute(select(
                IndicatorObservable.indicator_id, IndicatorObservable.type,
                IndicatorObservable.value).where(IndicatorObservable.indicator_id.in_(chunk))):
            observables[key].append(Observable(IndicatorType(kind), value))
    return [_view(r, sources[r.id], sorted(observables[r.id], key=lambda o: (o.type, o.value)),
                  policy, now) for r in rows]


def get(session: Session, ref: str, policy: DecayPolicy) -> IndicatorView:
    """An indicator by its id or STIX id; :class:`NotFoundError` when there is none."""
    row = session.get(Indicator, ref) or session.execute(
        select(Indicator).where(Indicator.stix_id == ref).limit(1)).scalar_one_or_none()
    if row is None:
        raise NotFoundError(f"no indicator {ref!r}")
    return views(session, [row], policy)[0]


def _network_keys(kind: IndicatorType, value: str) -> list[str]:
    """Every network (as stored: ``a.b.c.d/n``) that contains the address ``value``."""
    address = ipaddress.ip_address(value)
    width = 32 if kind is IndicatorType.IPV4 else 128
    return [str(ipaddress.ip_network(f"{address}/{p}", strict=False)) for p in range(width)]


def _parents(name: str) -> list[str]:
    labels = name.split(".")
    return [".".join(labels[i:]) for i in range(1, len(labels) - 1)]


def lookup_keys(value: str, kind: IndicatorType | None = None) -> list[tuple[str, str]]:
    """The (type, value) observables that would match ``value`` in an event."""
    kind = kind or guess_type(value)
    kind, text = canonical(kind, value)
    keys = [(kind.value, text)]
    if kind in (IndicatorType.IPV4, IndicatorType.IPV6):
        keys += [(IndicatorType.CIDR.value, n) for n in _network_keys(kind, text)]
    elif kind is IndicatorType.DOMAIN:
        keys += [(kind.value, parent) for parent in _parents(text)]
    elif kind is IndicatorType.CIDR:
        keys = [(kind.value, text)]
    return keys


def search(session: Session, value: str, policy: DecayPolicy, *,
           kind: IndicatorType | None = None, limit: int = 100) -> list[IndicatorView]:
    """The indicators that match ``value`` (its type guessed unless given); also a free-text
    search of names when the value is no indicator at all."""
    try:
        keys = lookup_keys(value, kind)
    except InputError:
        if "\x00" in value:
            return []  # nothing stored holds a NUL (and PostgreSQL refuses it in a query)
        rows = session.execute(select(Indicator).where(or_(
            Indicator.name.contains(value, autoescape=True), Indicator.value == value.strip())).order_by(
            Indicator.id).limit(min(limit, MAX_PAGE))).scalars().all()
        return views(session, list(rows), policy)
    match = or_(*(and_(IndicatorObservable.type == t, IndicatorObservable.value == v) for t, v in keys))
    ids = session.execute(select(IndicatorObservable.indicator_id).where(match).distinct().limit(
        min(limit, MAX_PAGE))).scalars().all()
    rows = session.execute(select(Indicator).where(Indicator.id.in_(ids)).order_by(
        Indicator.id)).scalars().all() if ids else []
    return views(session, list(rows), policy)


def _filtered(query: Select[Indicator], wanted: IndicatorFilter, now: datetime) -> Select[Indicator]:
    if wanted.types:
        query = query.where(Indicator.type.in_([t.value for t in wanted.types]))
    if wanted.source:
        query = query.where(Indicator.id.in_(select(IndicatorSource.indicator_id).where(
            IndicatorSource.source == wanted.source)))
    if wanted.min_confidence is not None:
        query = query.where(Indicator.confidence >= wanted.min_confidence)
    if wanted.max_tlp is not None:
        allowed = [t.value for t in TLP if t.rank <= wanted.max_tlp.rank]
        query = query.where(or_(Indicator.tlp.is_(None), Indicator.tlp.in_(allowed)))
    if wanted.label:
        query = query.where(Indicator.labels.contains(orjson.dumps(wanted.label).decode(), autoescape=True))
    if not wanted.include_allowlisted or wanted.active_only:
        query = query.where(Indicator.allowlisted.is_(None))
    if wanted.active_only:
        query = query.where(Indicator.revoked.is_(False))
    if wanted.seen_within is not None:
        since = now - wanted.seen_within
        query = query.where(or_(Indicator.last_seen >= since, Indicator.last_sighting >= since))
    if wanted.updated_since is not None:
        query = query.where(Indicator.updated_at >= wanted.updated_since)
    return query


def _keeps(view: IndicatorView, wanted: IndicatorFilter) -> bool:
    if wanted.active_only and not view.active:
        return False
    return wanted.min_score is None or view.score >= wanted.min_score


def page(session: Session, wanted: IndicatorFilter, policy: DecayPolicy, *, limit: int = 100,
         after: str | None = None, now: datetime | None = None) -> tuple[list[IndicatorView], str | None]:
    """One page of indicators in id order, and the cursor of the next page (None at the end)."""
    if not 1 <= limit <= MAX_PAGE:
        raise InputError(f"limit must be between 1 and {MAX_PAGE}")
    now = now or utcnow()
    found: list[IndicatorView] = []
    cursor = after
    while len(found) < limit:
        query = _filtered(select(Indicator), wanted, now).order_by(Indicator.id).limit(limit)
        if cursor:
            query = query.where(Indicator.id > cursor)
        rows = list(session.execute(query).scalars().all())
        if not rows:
            return found, None
        cursor = rows[-1].id
        for view in views(session, rows, policy, now):
            if _keeps(view, wanted) and len(found) < limit:
                found.append(view)
                cursor = view.id
    return found, cursor


def iterate(session: Session, wanted: IndicatorFilter, policy: DecayPolicy, *,
            now: datetime | None = None, batch: int = 1000) -> Iterator[IndicatorView]:
    """Every indicator the filter keeps, in id order, read ``batch`` rows at a time."""
    now = now or utcnow()
    cursor: str | None = None
    while True:
        query = _filtered(select(Indicator), wanted, now).order_by(Indicator.id).limit(batch)
        if cursor:
            query = query.where(Indicator.id > cursor)
        rows = list(session.execute(query).scalars().all())
        if not rows:
            return
        cursor = rows[-1].id
        for view in views(session, rows, policy, now):
            if _keeps(view, wanted):
                yield view
        session.expunge_all()


def counts(session: Session) -> dict[str, int]:
    """Indicators stored, by type."""
    from sqlalchemy import func

    rows = session.execute(select(Indicator.type, func.count()).group_by(Indicator.type))
    return {kind: int(n) for kind, n in rows}
