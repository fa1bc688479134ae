"""Observables of a case (IP, domain, URL, hash, host, user, file, e-mail) and where they were
seen: links to alerts and events by id.

Values are normalised so that one observable is recorded once per case (IPs in canonical
form, domains, hosts, hashes and e-mail addresses in lower case); adding it again merges the
new links into the existing one. :func:`cases_sharing` finds other cases with the same
observable (similar cases).
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import re
from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from vigil.cases.base import audit_change, case_ref, get_case, lock_open_case
from vigil.cases.enums import LinkKind, ObservableType
from vigil.cases.links import check_alerts
from vigil.cases.models import CaseObservable, ObservableLink
from vigil.cases.schemas import MAX_ID, LinkCreate, ObservableCreate, ObservableOut
from vigil.cases.views import observable_view
from vigil.core.auth import Principal
from vigil.core.db import StateDB
from vigil.core.errors import InputError, NotFoundError
from vigil.core.timeutil import utcnow

OBJECT = "case_observable"
_HASH_LENGTHS = {32, 40, 64, 128}
_HEX = re.compile(r"[0-9a-f]+")
_DOMAIN = re.compile(r"(?=.{1,253}$)([a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?\.)*[a-z0-9_-]{1,63}")


def normalise(kind: ObservableType, value: str) -> str:
    """The canonical form of an observable value; InputError when it is not one."""
    text = value.strip()
    if kind is ObservableType.IP:
        try:
            return str(ipaddress.ip_address(text))
        except ValueError:
            raise InputError(f"not an IP address: {text[:80]!r}") from None
    if kind is ObservableType.HASH:
        lowered = text.lower()
        if len(lowered) not in _HASH_LENGTHS or not _HEX.fullmatch(lowered):
            raise InputError("a hash is 32, 40, 64 or 128 hexadecimal digits (MD5, SHA-1, SHA-256, "
                             "SHA-512)")
        return lowered
    if kind is ObservableType.DOMAIN:
        lowered = text.lower().rstrip(".")
        if not _DOMAIN.fullmatch(lowered):
            raise InputError(f"not a domain name: {text[:80]!r}")
        return lowered
    if kind in (ObservableType.HOST, ObservableType.EMAIL):
        return text.lower()
    return text


def observable_key(kind: ObservableType, value: str) -> str:
    """The short key equal observables share (SHA-256 of ``type:value``)."""
    return hashlib.sha256(f"{kind.value}:{value}".encode()).hexdigest()


def _observable(session: Session, case_id: int, observable_id: int) -> CaseObservable:
    row = session.get(CaseObservable, observable_id)
    if row is None or row.case_id != case_id:
        raise NotFoundError(f"no observable {observable_id} in {case_ref(case_id)}")
    return row


def _check_alert_refs(session: Session, links: Sequence[LinkCreate]) -> None:
    """Alert links name existing alerts by id (event ids are the event store's)."""
    refs = [link.ref for link in links if link.kind is LinkKind.ALERT]
    bad = [ref for ref in refs if not ref.isdigit() or not 0 < int(ref) <= MAX_ID]
    if bad:
        raise InputError(f"an alert link names an alert id, not {bad[0]!r}")
    if refs:
        check_alerts(session, [int(ref) for ref in refs])


def _add_links(session: Session, row: CaseObservable, links: Sequence[LinkCreate],
               actor: Principal, now: datetime) -> list[str]:
    _check_alert_refs(session, links)
    existing = {(link.kind, link.ref) for link in session.scalars(
        select(ObservableLink).where(ObservableLink.observable_id == row.id)).all()}
    added: list[str] = []
    for link in links:
        if (link.kind.value, link.ref) in existing:
            continue
        existing.add((link.kind.value, link.ref))
        session.add(ObservableLink(observable_id=row.id, kind=link.kind.value, ref=link.ref,
                                   seen_at=link.seen_at, linked_by=actor.actor, linked_at=now))
        added.append(f"{link.kind.value}:{link.ref}")
    session.flush()
    return added


def add_observable(db: StateDB, case_id: int, data: ObservableCreate, actor: Principal, *,
                   now: datetime | None = None) -> ObservableOut:
    """Record an observable in an open case (or merge links into the one already there)."""
    stamp = now or utcnow()
    value = normalise(data.type, data.value)
    key = observable_key(data.type, value)
    with db.session() as session:
        lock_open_case(session, case_id, stamp)
        row = session.scalar(select(CaseObservable).where(CaseObservable.case_id == case_id,
                                                          CaseObservable.key == key))
        if row is None:
            row = CaseObservable(case_id=case_id, type=data.type.value, value=value, key=key,
                                 description=data.description, tlp=data.tlp.value, ioc=data.ioc,
                                 sighted=data.sighted, tags=json.dumps(data.tags),
                                 created_by=actor.actor, created_at=stamp)
            session.add(row)
            session.flush()
            links = _add_links(session, row, data.links, actor, stamp)
            audit_change(session, actor, "create", OBJECT, row.id, None,
                         {"case_id": case_id, "type": row.type, "value": value, "ioc": row.ioc,
                          "links": links})
        else:
            links = _add_links(session, row, data.links, actor, stamp)
            if links:
                audit_change(session, actor, "link", OBJECT, row.id, None, {"links": links})
        return _view(session, row)


def link_observable(db: StateDB, case_id: int, observable_id: int, links: Sequence[LinkCreate],
                    actor: Principal, *, now: datetime | None = None) -> ObservableOut:
    """Record where an observable was seen (alert ids, event ids)."""
    stamp = now or utcnow()
    with db.session() as session:
        lock_open_case(session, case_id, stamp)
        row = _observable(session, case_id, observable_id)
        added = _add_links(session, row, links, actor, stamp)
        if added:
            audit_change(session, actor, "link", OBJECT, row.id, None, {"links": added})
        return _view(session, row)


def _view(session: Session, row: CaseObservable) -> ObservableOut:
    links = session.scalars(select(ObservableLink).where(ObservableLink.observable_id == row.id)
                            .order_by(ObservableLink.id)).all()
    return observable_view(row, links)


def list_observables(db: StateDB, case_id: int) -> list[ObservableOut]:
    """The observables of a case, oldest first, with their links."""
    with db.session() as session:
        get_case(session, case_id)
        return observables_of(session, case_id)


def observables_of(session: Session, case_id: int) -> list[ObservableOut]:
    """The observables of a case, read in ``session``."""
    rows = session.scalars(select(CaseObservable).where(CaseObservable.case_id == case_id)
                           .order_by(CaseObservable.id)).all()
    links: dict[int, list[ObservableLink]] = defaultdict(list)
    if rows:
        for link in session.scalars(select(ObservableLink).where(
                ObservableLink.observable_id.in_([r.id for r in rows])).order_by(ObservableLink.id)):
            links[link.observable_id].append(link)
    return [observable_view(row, links[row.id]) for row in rows]


def event_links(session: Session, case_id: int) -> list[tuple[CaseObservable, ObservableLink]]:
    """Every (observable, link) of a case (the timeline shows the linked events)."""
    return [(obs, link) for obs, link in session.execute(
        select(CaseObservable, ObservableLink)
        .join(ObservableLink, ObservableLink.observable_id == CaseObservable.id)
        .where(CaseObservable.case_id == case_id)).all()]


def cases_sharing(db: StateDB, kind: ObservableType, value: str, *, limit: int = 100) -> list[int]:
    """Ids of the cases that recorded this observable, newest first."""
    key = observable_key(kind, normalise(kind, value))
    with db.session() as session:
        return list(session.scalars(select(CaseObservable.case_id).where(CaseObservable.key == key)
                                    .order_by(CaseObservable.case_id.desc()).limit(limit)).all())
