"""The outbox: domain events written in the same transaction as the change they describe.

A context that changes state (an alert created, a case assigned, a deadline breached) calls
:func:`emit` inside its own session, so the event exists exactly when the change committed.
Consumers (notifications, later playbooks) read it afterwards, off the path of the change:
a slow or failing consumer never slows or fails the change itself.

Payload conventions (every topic): ``subject`` (one line for people), ``severity``
(``informational|low|medium|high|critical`` or absent), ``object_type`` and ``object_id``
(what changed), ``recipients`` (user names concerned, e.g. the new assignee or the people
mentioned), ``details`` (anything else, JSON).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import DateTime, Integer, String, Text, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from vigil.core.db import Base
from vigil.core.timeutil import to_utc, utcnow


class Topic(StrEnum):
    ALERT_CREATED = "alert.created"
    INCIDENT_CREATED = "incident.created"
    CASE_CREATED = "case.created"
    CASE_UPDATED = "case.updated"
    CASE_ASSIGNED = "case.assigned"
    TASK_ASSIGNED = "task.assigned"
    MENTIONED = "comment.mentioned"
    CLOCK_DUE = "clock.due"
    CLOCK_BREACHED = "clock.breached"


class OutboxRow(Base):
    """One domain event (see the module docstring for the payload)."""

    __tablename__ = "outbox"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    topic: Mapped[str] = mapped_column(String(64), index=True)
    payload: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


@dataclass(frozen=True, slots=True)
class DomainEvent:
    id: int
    topic: Topic
    subject: str
    severity: str | None
    object_type: str
    object_id: str
    recipients: tuple[str, ...]
    details: Mapping[str, Any]
    created_at: datetime


def emit(session: Session, topic: Topic, *, subject: str, object_type: str, object_id: str | int,
         severity: str | None = None, recipients: Sequence[str] = (),
         details: Mapping[str, Any] | None = None) -> None:
    """Record a domain event in ``session`` (committed with the change it describes)."""
    payload = {"subject": subject, "severity": severity, "object_type": object_type,
               "object_id": str(object_id), "recipients": list(recipients),
               "details": dict(details or {})}
    session.add(OutboxRow(topic=topic.value, payload=json.dumps(payload, default=str),
                          created_at=utcnow()))


def read_after(session: Session, last_id: int, limit: int = 500) -> list[DomainEvent]:
    """Domain events with an id above ``last_id``, oldest first."""
    rows = session.scalars(select(OutboxRow).where(OutboxRow.id > last_id)
                           .order_by(OutboxRow.id).limit(limit)).all()
    return [_event(row) for row in rows]


def _event(row: OutboxRow) -> DomainEvent:
    data = json.loads(row.payload)
    return DomainEvent(row.id, Topic(row.topic), data["subject"], data.get("severity"),
                       data["object_type"], data["object_id"], tuple(data.get("recipients", [])),
                       data.get("details", {}), to_utc(row.created_at))
