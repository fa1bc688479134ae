"""The audit trail's public surface: append, list, verify, checkpoint.

Every context records its changes with :func:`record` inside its own session. Checkpoints are
signed with the instance's key (see :mod:`vigil.audit.keys`) when ``vigil audit checkpoint``
runs and periodically while the server runs.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select

from vigil.audit import keys
from vigil.audit.chain import record
from vigil.audit.models import AuditCheckpoint, AuditHead, AuditRecord
from vigil.audit.verify import Problem, ProblemKind, Report, verify
from vigil.core.db import StateDB
from vigil.core.timeutil import to_utc, utcnow

__all__ = ["AuditEntry", "Checkpoint", "Problem", "ProblemKind", "Report", "checkpoint",
           "listing", "record", "verify"]


@dataclass(frozen=True, slots=True)
class AuditEntry:
    seq: int
    at: datetime
    actor: str
    action: str
    object_type: str
    object_id: str
    before: dict[str, Any] | None
    after: dict[str, Any] | None


@dataclass(frozen=True, slots=True)
class Checkpoint:
    seq: int
    hash: str
    at: datetime
    key_id: str


def listing(db: StateDB, *, object_type: str | None = None, object_id: str | None = None,
            actor: str | None = None, since: datetime | None = None, before_seq: int | None = None,
            limit: int = 100) -> list[AuditEntry]:
    """Records newest first, filtered; page with ``before_seq`` (the last seq of a page)."""
    query = select(AuditRecord).order_by(AuditRecord.seq.desc()).limit(limit)
    if object_type:
        query = query.where(AuditRecord.object_type == object_type)
    if object_id:
        query = query.where(AuditRecord.object_id == object_id)
    if actor:
        query = query.where(AuditRecord.actor == actor)
    if since is not None:
        query = query.where(AuditRecord.at >= since)
    if before_seq is not None:
        query = query.where(AuditRecord.seq < before_seq)
    with db.session() as session:
        rows = session.scalars(query).all()
    return [AuditEntry(r.seq, to_utc(r.at), r.actor, r.action, r.object_type, r.object_id,
                       json.loads(r.before) if r.before else None,
                       json.loads(r.after) if r.after else None) for r in rows]


def checkpoint(db: StateDB, key_folder: Path) -> Checkpoint | None:
    """Sign the current head of the chain (None when the chain is empty or the head is
    already signed)."""
    key = keys.load_or_create(key_folder)
    with db.session() as session:
        head = session.get(AuditHead, 1)
        if head is None or head.seq == 0:
            return None
        last = session.scalar(select(AuditCheckpoint).order_by(AuditCheckpoint.id.desc()).limit(1))
        if last is not None and last.seq == head.seq:
            return None
        at = utcnow()
        message = keys.signed_message(head.seq, head.hash, at.isoformat(timespec="microseconds"))
        signature = base64.b64encode(key.sign(message)).decode()
        point = AuditCheckpoint(seq=head.seq, hash=head.hash, at=at,
                                key_id=keys.key_id(key.public_key()), signature=signature)
        session.add(point)
        return Checkpoint(head.seq, head.hash, at, point.key_id)
