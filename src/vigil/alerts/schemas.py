"""Typed inputs and outputs of the alerts API (``/api/v1/alerts``, ``/api/v1/incidents``).

Outputs are built from the service's views (``model_validate(view, from_attributes=True)``).
Ids are positive 32-bit integers (a bigger number cannot name a row: it is refused as bad
input instead of reaching the database). People are named by user id or user name.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from vigil.alerts.types import Disposition

MAX_ID = 2_147_483_647
Id = Annotated[int, Field(ge=1, le=MAX_ID)]
UserRef = Annotated[int, Field(ge=1, le=MAX_ID)] | Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)]
"""A person: user id, or user name."""
SeverityName = Literal["informational", "low", "medium", "high", "critical"]
Note = Annotated[str, Field(max_length=10_000)]


class _Out(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class AlertOut(_Out):
    """An alert; ``rule_author`` is shown with every alert (Detection Rule License)."""

    id: int
    source: str
    rule_id: str
    rule_title: str
    level: str
    severity: str
    rule_author: str | None
    rule_references: list[str]
    tags: list[str]
    host: str | None
    user: str | None
    src_ip: str | None
    first_seen: datetime
    """The first event (event time)."""
    last_seen: datetime
    count: int
    event_ids: list[str]
    status: str
    disposition: str | None
    assignee: int | None
    incident_id: int | None
    case_id: int | None
    created_at: datetime
    acknowledged_at: datetime | None
    closed_at: datetime | None
    escalated_at: datetime | None
    closing_note: str | None
    dedup_key: str
    """What occurrences fold on (rule, host and time window for Sigma detections)."""


class AlertPage(BaseModel):
    items: list[AlertOut]
    next_cursor: str | None
    """Pass as ``cursor`` (with the same sort and order) for the next page; null at the end."""
    total: int | None
    """Alerts matching the filters in all (only with ``count=true``)."""


class HistoryOut(_Out):
    id: int
    at: datetime
    actor: str
    field: str
    old: str | None
    new: str | None


class RelatedOut(_Out):
    alert: AlertOut
    shared: list[str]
    """The entities it shares: ``host``, ``user``, ``src_ip``."""


class AlertDetailOut(AlertOut):
    history: list[HistoryOut]
    related: list[RelatedOut]
    """Suggestions: other alerts on the same host, user or source IP (outside its incident)."""


class CloseIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    disposition: Disposition
    note: Note | None = None


class AssignIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    assignee: UserRef | None
    """User id or user name; null gives the alert back to nobody."""


class BulkIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    action: Literal["acknowledge", "close", "reopen"]
    ids: list[Id] = Field(min_length=1, max_length=1000)
    disposition: Disposition | None = None
    """Required to close."""
    note: Note | None = None


class SkippedOut(BaseModel):
    id: int
    reason: str


class BulkOut(BaseModel):
    done: list[int]
    skipped: list[SkippedOut]


class IncidentOut(_Out):
    id: int
    title: str
    rule_id: str
    entity_kind: str
    entity_value: str
    severity: str
    status: str
    alert_count: int
    first_seen: datetime
    last_seen: datetime
    case_id: int | None
    merged_into: int | None
    auto_group: bool
    created_at: datetime
    closed_at: datetime | None


class IncidentPage(BaseModel):
    items: list[IncidentOut]
    next_cursor: str | None
    total: int | None


class IncidentDetailOut(IncidentOut):
    alerts: list[AlertOut]
    """Its newest alerts (``alert_limit``; ``alert_count`` has them all)."""


class MergeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    target: Id
    sources: list[Id] = Field(min_length=1, max_length=100)


class SplitIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    alert_ids: list[Id] = Field(min_length=1, max_length=1000)
    title: Annotated[str, StringConstraints(strip_whitespace=True, max_length=2000)] | None = None
