"""Dead letters: every record Vigil could not take is kept with its reason and raw bytes."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, func, select

from vigil.core.db import StateDB
from vigil.core.timeutil import utcnow
from vigil.events.models import Rejected
from vigil.ingest.models import DeadLetter

MAX_RAW = 64 * 1024
"""At most this many raw bytes are kept per dead letter (the size is kept in full)."""


@dataclass(frozen=True, slots=True)
class DeadLetterView:
    """A dead letter as shown to people."""

    id: int
    received_at: datetime
    origin: str
    format: str | None
    line: int | None
    reason: str
    size: int
    raw: bytes


def record(db: StateDB, rejected: Sequence[Rejected], *, size: int | None = None) -> int:
    """Keep rejected records; returns how many were written."""
    if not rejected:
        return 0
    now = utcnow()
    with db.session() as session:
        session.add_all(
            DeadLetter(received_at=now, origin=r.origin[:1024], format=r.format, line=r.line,
                       reason=r.reason[:4000], raw=r.raw[:MAX_RAW],
                       size=size if size is not None and len(rejected) == 1 else len(r.raw))
            for r in rejected
        )
    return len(rejected)


def listing(db: StateDB, limit: int = 50, offset: int = 0) -> list[DeadLetterView]:
    """The most recent dead letters first."""
    with db.session() as session:
        rows = session.scalars(
            select(DeadLetter).order_by(DeadLetter.id.desc()).limit(limit).offset(offset)
        ).all()
        return [DeadLetterView(r.id, r.received_at, r.origin, r.format, r.line, r.reason,
                               r.size, r.raw) for r in rows]


def count(db: StateDB) -> int:
    with db.session() as session:
        return int(session.scalar(select(func.count()).select_from(DeadLetter)) or 0)


def purge(db: StateDB) -> int:
    """Forget every dead letter."""
    with db.session() as session:
        result = session.execute(delete(DeadLetter))
        return int(getattr(result, "rowcount", 0) or 0)
