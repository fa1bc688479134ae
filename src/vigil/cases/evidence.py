"""Evidence and its chain of custody.

An evidence item is described by its SHA-256 (computed where it was acquired; Vigil stores
the description, not the bytes). Its custody log starts with the acquisition and grows by
appending entries (transferred, accessed, analysed, copied, stored, returned, destroyed);
entries are never edited or removed. An entry may carry the SHA-256 measured at that step:
the log then shows whether it still matches the acquired one.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from vigil.cases.base import audit_change, case_ref, get_case, lock_case, lock_open_case
from vigil.cases.enums import CustodyAction
from vigil.cases.models import CustodyEntry, Evidence
from vigil.cases.schemas import CustodyCreate, EvidenceCreate, EvidenceOut
from vigil.cases.views import evidence_view
from vigil.core.auth import Principal
from vigil.core.db import StateDB
from vigil.core.errors import ConflictError, InputError, NotFoundError
from vigil.core.timeutil import utcnow

OBJECT = "case_evidence"
_FUTURE = timedelta(minutes=5)


def _entry(session: Session, evidence: Evidence, action: CustodyAction, holder: str, at: datetime,
           location: str | None, note: str, sha256: str | None, actor: Principal,
           now: datetime) -> CustodyEntry:
    row = CustodyEntry(evidence_id=evidence.id, at=at, action=action.value, holder=holder,
                       location=location, note=note, sha256=sha256, recorded_by=actor.actor,
                       recorded_at=now)
    session.add(row)
    session.flush()
    audit_change(session, actor, "custody", OBJECT, evidence.id, None,
                 {"entry": row.id, "action": action.value, "holder": holder, "at": at,
                  "location": location, "sha256": sha256, "note": note})
    return row


def add_evidence(db: StateDB, case_id: int, data: EvidenceCreate, actor: Principal, *,
                 now: datetime | None = None) -> EvidenceOut:
    """Register an evidence item; its custody log starts with the acquisition."""
    stamp = now or utcnow()
    acquired_at = data.acquired_at or stamp
    if acquired_at > stamp + _FUTURE:
        raise InputError("acquired_at cannot be in the future")
    acquired_by = data.acquired_by or actor.name
    holder = data.holder or acquired_by
    with db.session() as session:
        lock_open_case(session, case_id, stamp)
        row = Evidence(case_id=case_id, name=data.name, kind=data.kind, description=data.description,
                       sha256=data.sha256, size=data.size, acquired_at=acquired_at,
                       acquired_by=acquired_by, holder=holder, location=data.location,
                       created_by=actor.actor, created_at=stamp)
        session.add(row)
        session.flush()
        audit_change(session, actor, "create", OBJECT, row.id, None,
                     {"case_id": case_id, "name": row.name, "kind": row.kind,
                      "sha256": row.sha256, "size": row.size})
        entry = _entry(session, row, CustodyAction.ACQUIRED, holder, acquired_at, data.location,
                       "acquired", data.sha256, actor, stamp)
        return evidence_view(row, [entry])


def add_custody(db: StateDB, case_id: int, evidence_id: int, data: CustodyCreate,
                actor: Principal, *, now: datetime | None = None) -> EvidenceOut:
    """Append to an evidence item's chain of custody (also on a closed case: evidence is
    returned or destroyed after closure). The item's holder and location follow the entry."""
    stamp = now or utcnow()
    at = data.at or stamp
    if at > stamp + _FUTURE:
        raise InputError("the custody time cannot be in the future")
    with db.session() as session:
        lock_case(session, case_id, now=stamp)
        row = _evidence(session, case_id, evidence_id)
        last = session.scalar(select(CustodyEntry).where(CustodyEntry.evidence_id == row.id)
                              .order_by(CustodyEntry.id.desc()).limit(1))
        if last is not None and last.action == CustodyAction.DESTROYED.value:
            raise ConflictError(f"evidence {evidence_id} was destroyed; its custody log is final")
        if data.action is CustodyAction.ACQUIRED:
            raise InputError("an item is acquired once; record a copy as new evidence")
        _entry(session, row, data.action, data.holder, at, data.location, data.note, data.sha256,
               actor, stamp)
        row.holder = data.holder
        if data.location is not None:
            row.location = data.location
        return _view(session, row)


def _evidence(session: Session, case_id: int, evidence_id: int) -> Evidence:
    row = session.get(Evidence, evidence_id)
    if row is None or row.case_id != case_id:
        raise NotFoundError(f"no evidence {evidence_id} in {case_ref(case_id)}")
    return row


def _view(session: Session, row: Evidence) -> EvidenceOut:
    custody = session.scalars(select(CustodyEntry).where(CustodyEntry.evidence_id == row.id)
                              .order_by(CustodyEntry.id)).all()
    return evidence_view(row, custody)


def get_evidence(db: StateDB, case_id: int, evidence_id: int) -> EvidenceOut:
    """One evidence item of a case with its chain of custody."""
    with db.session() as session:
        return _view(session, _evidence(session, case_id, evidence_id))


def list_evidence(db: StateDB, case_id: int) -> list[EvidenceOut]:
    """The evidence of a case, oldest first, each with its chain of custody."""
    with db.session() as session:
        get_case(session, case_id)
        return evidence_of(session, case_id)


def evidence_of(session: Session, case_id: int) -> list[EvidenceOut]:
    """The evidence of a case, read in ``session``."""
    rows = session.scalars(select(Evidence).where(Evidence.case_id == case_id)
                           .order_by(Evidence.id)).all()
    custody: dict[int, list[CustodyEntry]] = defaultdict(list)
    if rows:
        for entry in session.scalars(select(CustodyEntry).where(
                CustodyEntry.evidence_id.in_([r.id for r in rows])).order_by(CustodyEntry.id)):
            custody[entry.evidence_id].append(entry)
    return [evidence_view(row, custody[row.id]) for row in rows]
