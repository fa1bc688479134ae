"""``/api/v1/audit``: the audit trail and its verification (auditors and admins)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel

from vigil.api.deps import VigilDep, requires
from vigil.audit import keys, service
from vigil.core.auth import Permission, Principal

router = APIRouter(prefix="/api/v1", tags=["audit"])
Auditor = Annotated[Principal, requires(Permission.AUDIT_READ)]


class AuditEntryOut(BaseModel):
    seq: int
    at: datetime
    actor: str
    action: str
    object_type: str
    object_id: str
    before: dict[str, Any] | None
    after: dict[str, Any] | None


class AuditPage(BaseModel):
    items: list[AuditEntryOut]
    next_before_seq: int | None
    """Pass as ``before_seq`` for the next (older) page; null on the last page."""


class ProblemOut(BaseModel):
    kind: str
    seq: int
    detail: str


class VerifyOut(BaseModel):
    ok: bool
    records: int
    checkpoints: int
    signatures_checked: bool
    problems: list[ProblemOut]


@router.get("/audit", response_model=AuditPage)
def list_audit(vigil: VigilDep, _who: Auditor,
               object_type: Annotated[str | None, Query(max_length=64)] = None,
               object_id: Annotated[str | None, Query(max_length=128)] = None,
               actor: Annotated[str | None, Query(max_length=255)] = None,
               since: datetime | None = None,
               before_seq: Annotated[int | None, Query(ge=1, le=2**53)] = None,
               limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> AuditPage:
    """Audit records newest first (who, what, when, before and after)."""
    entries = service.listing(vigil.db, object_type=object_type, object_id=object_id, actor=actor,
                              since=since, before_seq=before_seq, limit=limit)
    items = [AuditEntryOut.model_validate(e, from_attributes=True) for e in entries]
    following = items[-1].seq if len(items) == limit and items[-1].seq > 1 else None
    return AuditPage(items=items, next_before_seq=following)


@router.get("/audit/verify", response_model=VerifyOut)
def verify_audit(vigil: VigilDep, _who: Auditor) -> VerifyOut:
    """Verify the chain and the signed checkpoints."""
    path = vigil.key_folder / keys.PUBLIC_NAME
    public = keys.load_public(path) if path.exists() else None
    report = service.verify(vigil.db, public)
    return VerifyOut(ok=report.ok, records=report.records, checkpoints=report.checkpoints,
                     signatures_checked=public is not None,
                     problems=[ProblemOut(kind=p.kind.value, seq=p.seq, detail=p.detail)
                               for p in report.problems])
