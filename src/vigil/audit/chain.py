"""Appending to the audit chain.

Each record hashes its own content together with the hash of the record before it, so an
edited, deleted or reordered record breaks the chain (see :mod:`vigil.audit.verify`). A
record is written in the caller's session: it commits or rolls back with the change it
describes. Appends serialise on the one ``audit_head`` row: the ``UPDATE`` that bumps the
sequence takes the row lock (PostgreSQL) or the write lock (SQLite) before the head is read,
so two writers can never chain onto the same record.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

from vigil.audit.models import AuditRecord
from vigil.core.auth import Principal
from vigil.core.timeutil import to_utc, utcnow

GENESIS = "0" * 64
"""The ``prev_hash`` of the first record."""


def canonical(value: Mapping[str, Any] | None) -> str | None:
    """The stored (and hashed) JSON form of a before/after state."""
    if value is None:
        return None
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def digest(seq: int, at: datetime, actor: str, action: str, object_type: str, object_id: str,
           before: str | None, after: str | None, prev_hash: str) -> str:
    """The hash of one record: its fields in a fixed order, and the previous hash."""
    fields = [str(seq), to_utc(at).isoformat(timespec="microseconds"), actor, action,
              object_type, object_id, before, after, prev_hash]
    return hashlib.sha256(json.dumps(fields, ensure_ascii=False).encode("utf-8")).hexdigest()


def record_hash(row: AuditRecord) -> str:
    return digest(row.seq, row.at, row.actor, row.action, row.object_type, row.object_id,
                  row.before, row.after, row.prev_hash)


def record(session: Session, actor: Principal | str, action: str, object_type: str,
           object_id: str | int, before: Mapping[str, Any] | None = None,
           after: Mapping[str, Any] | None = None) -> int:
    """Append one audit record in ``session``; returns its sequence number.

    ``actor`` is a principal (or its audit name, e.g. ``user:alice``); ``action`` a verb such
    as ``create``, ``update``, ``delete``, ``login``; ``before``/``after`` the changed fields
    (JSON-serialisable; only what changed is enough).
    """
    name = actor if isinstance(actor, str) else actor.actor
    session.flush()
    session.execute(text("UPDATE audit_head SET seq = seq + 1 WHERE id = 1"))
    seq, prev = session.execute(text("SELECT seq, hash FROM audit_head WHERE id = 1")).one()
    at = utcnow()
    before_text, after_text = canonical(before), canonical(after)
    oid = str(object_id)[:128]
    new_hash = digest(seq, at, name[:255], action[:64], object_type[:64], oid, before_text,
                      after_text, prev)
    session.add(AuditRecord(seq=seq, at=at, actor=name[:255], action=action[:64],
                            object_type=object_type[:64], object_id=oid, before=before_text,
                            after=after_text, prev_hash=prev, hash=new_hash))
    session.execute(text("UPDATE audit_head SET hash = :h WHERE id = 1"), {"h": new_hash})
    return int(seq)
