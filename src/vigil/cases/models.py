"""State tables of the cases context.

A case and everything hanging off it: the immutable transition log (``case_events``, the
source of the SOC metrics), assignees, tasks, comments and mentions,
observables and their links to alerts and events, evidence and its chain of custody, manual
timeline entries, clocks (SLA and regulatory deadlines) and the post-incident review with its
action items. People are referred to by id, with the user name and team at the time (so lists
filter without reaching into another context's tables); which alerts belong to a case is
kept by the alerts context (``alert.case_id``).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from vigil.core.db import Base

_TZ = DateTime(timezone=True)


def _case_fk() -> ForeignKey:
    return ForeignKey("cases.id", ondelete="CASCADE")



class Case(Base):
    """An investigation: what it is about, where it stands, and its denormalised milestones."""

    __tablename__ = "cases"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    title: Mapped[str] = mapped_column(String(300))
    description: Mapped[str] = mapped_column(Text, default="")
    severity: Mapped[str] = mapped_column(String(16), index=True)
    priority: Mapped[str] = mapped_column(String(16), index=True)
    stage: Mapped[str] = mapped_column(String(16), index=True)
    phase: Mapped[str] = mapped_column(String(24), index=True)
    disposition: Mapped[str | None] = mapped_column(String(40))
    closing_note: Mapped[str | None] = mapped_column(Text)
    template: Mapped[str | None] = mapped_column(String(64))
    tlp: Mapped[str] = mapped_column(String(16), default="amber")
    tags: Mapped[str] = mapped_column(Text, default="[]")
    external_ref: Mapped[str | None] = mapped_column(String(128))
    personal_data: Mapped[bool] = mapped_column(Boolean, default=False)
    health_data: Mapped[bool] = mapped_column(Boolean, default=False)
    aware_at: Mapped[datetime | None] = mapped_column(_TZ)
    functional_impact: Mapped[str | None] = mapped_column(String(16))
    information_impact: Mapped[str | None] = mapped_column(String(24))
    recoverability: Mapped[str | None] = mapped_column(String(24))
    created_by: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(_TZ, index=True)
    updated_at: Mapped[datetime] = mapped_column(_TZ, index=True)
    acknowledged_at: Mapped[datetime | None] = mapped_column(_TZ)
    contained_at: Mapped[datetime | None] = mapped_column(_TZ)
    resolved_at: Mapped[datetime | None] = mapped_column(_TZ)
    closed_at: Mapped[datetime | None] = mapped_column(_TZ)
    version: Mapped[int] = mapped_column(Integer, default=1)


class CaseEvent(Base):
    """One change of one field of a case (immutable): who, when, old → new, and from where."""

    __tablename__ = "case_events"
    __table_args__ = (Index("ix_case_events_case_at", "case_id", "at"),
                      Index("ix_case_events_field_at", "field", "at"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    case_id: Mapped[int] = mapped_column(_case_fk())
    at: Mapped[datetime] = mapped_column(_TZ)
    actor: Mapped[str] = mapped_column(String(255))
    source: Mapped[str] = mapped_column(String(16))
    field: Mapped[str] = mapped_column(String(32))
    old: Mapped[str | None] = mapped_column(Text)
    new: Mapped[str | None] = mapped_column(Text)


class CaseAssignee(Base):
    """A person working the case (user name and team as they were when assigned)."""

    __tablename__ = "case_assignees"
    __table_args__ = (Index("ix_case_assignees_team", "team"),)

    case_id: Mapped[int] = mapped_column(_case_fk(), primary_key=True)
    user_id: Mapped[int] = mapped_column(Integer, primary_key=True, index=True)
    username: Mapped[str] = mapped_column(String(128))
    team: Mapped[str | None] = mapped_column(String(64))
    assigned_at: Mapped[datetime] = mapped_column(_TZ)
    assigned_by: Mapped[str] = mapped_column(String(255))


class CaseTask(Base):
    """A piece of work with an owner (a person, or a team until someone picks it up)."""

    __tablename__ = "case_tasks"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    case_id: Mapped[int] = mapped_column(_case_fk(), index=True)
    title: Mapped[str] = mapped_column(String(300))
    description: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[str] = mapped_column(String(16))
    owner_id: Mapped[int | None] = mapped_column(Integer, index=True)
    owner_name: Mapped[str | None] = mapped_column(String(128))
    team: Mapped[str | None] = mapped_column(String(64))
    due_at: Mapped[datetime | None] = mapped_column(_TZ)
    mandatory: Mapped[bool] = mapped_column(Boolean, default=False)
    origin: Mapped[str | None] = mapped_column(String(128))
    created_by: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(_TZ)
    updated_at: Mapped[datetime] = mapped_column(_TZ)
    completed_at: Mapped[datetime | None] = mapped_column(_TZ)


class CaseComment(Base):
    """A comment on a case (immutable once written); replies name their parent."""

    __tablename__ = "case_comments"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    case_id: Mapped[int] = mapped_column(_case_fk(), index=True)
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("case_comments.id", ondelete="CASCADE"))
    author: Mapped[str] = mapped_column(String(255))
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(_TZ)


class CaseMention(Base):
    """A person named with ``@username`` in a comment."""

    __tablename__ = "case_mentions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    comment_id: Mapped[int] = mapped_column(ForeignKey("case_comments.id", ondelete="CASCADE"),
                                            index=True)
    case_id: Mapped[int] = mapped_column(_case_fk())
    user_id: Mapped[int] = mapped_column(Integer)
    username: Mapped[str] = mapped_column(String(128), index=True)


class CaseObservable(Base):
    """An IP, domain, URL, hash, host, user, file or e-mail seen in the case.

    ``key`` is the SHA-256 of ``type:value`` so that equal observables of different cases
    meet on one short indexed column (values such as URLs can be long).
    """

    __tablename__ = "case_observables"
    __table_args__ = (UniqueConstraint("case_id", "key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    case_id: Mapped[int] = mapped_column(_case_fk(), index=True)
    type: Mapped[str] = mapped_column(String(16))
    value: Mapped[str] = mapped_column(Text)
    key: Mapped[str] = mapped_column(String(64), index=True)
    description: Mapped[str] = mapped_column(Text, default="")
    tlp: Mapped[str] = mapped_column(String(16), default="amber")
    ioc: Mapped[bool] = mapped_column(Boolean, default=False)
    sighted: Mapped[bool] = mapped_column(Boolean, default=False)
    tags: Mapped[str] = mapped_column(Text, default="[]")
    created_by: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(_TZ)


class ObservableLink(Base):
    """An observable seen in an alert or an event (by id; ``seen_at`` when known)."""

    __tablename__ = "case_observable_links"
    __table_args__ = (UniqueConstraint("observable_id", "kind", "ref"),
                      Index("ix_case_observable_links_ref", "kind", "ref"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    observable_id: Mapped[int] = mapped_column(
        ForeignKey("case_observables.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(16))
    ref: Mapped[str] = mapped_column(String(128))
    seen_at: Mapped[datetime | None] = mapped_column(_TZ)
    linked_by: Mapped[str] = mapped_column(String(255))
    linked_at: Mapped[datetime] = mapped_column(_TZ)


class Evidence(Base):
    """A piece of evidence: what it is, its SHA-256 and size, and who holds it now."""

    __tablename__ = "case_evidence"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    case_id: Mapped[int] = mapped_column(_case_fk(), index=True)
    name: Mapped[str] = mapped_column(String(512))
    kind: Mapped[str] = mapped_column(String(32))
    description: Mapped[str] = mapped_column(Text, default="")
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    size: Mapped[int | None] = mapped_column(BigInteger)
    acquired_at: Mapped[datetime] = mapped_column(_TZ)
    acquired_by: Mapped[str] = mapped_column(String(255))
    holder: Mapped[str] = mapped_column(String(255))
    location: Mapped[str | None] = mapped_column(Text)
    created_by: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(_TZ)


class CustodyEntry(Base):
    """One entry of an evidence item's chain of custody (append-only)."""

    __tablename__ = "case_custody"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    evidence_id: Mapped[int] = mapped_column(ForeignKey("case_evidence.id", ondelete="CASCADE"),
                                             index=True)
    at: Mapped[datetime] = mapped_column(_TZ)
    action: Mapped[str] = mapped_column(String(16))
    holder: Mapped[str] = mapped_column(String(255))
    location: Mapped[str | None] = mapped_column(Text)
    note: Mapped[str] = mapped_column(Text, default="")
    sha256: Mapped[str | None] = mapped_column(String(64))
    recorded_by: Mapped[str] = mapped_column(String(255))
    recorded_at: Mapped[datetime] = mapped_column(_TZ)


class TimelineEntry(Base):
    """A manual entry of the investigative timeline (what happened, when)."""

    __tablename__ = "case_timeline"
    __table_args__ = (Index("ix_case_timeline_case_at", "case_id", "occurred_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    case_id: Mapped[int] = mapped_column(_case_fk())
    occurred_at: Mapped[datetime] = mapped_column(_TZ)
    title: Mapped[str] = mapped_column(String(300))
    description: Mapped[str] = mapped_column(Text, default="")
    category: Mapped[str | None] = mapped_column(String(64))
    technique: Mapped[str | None] = mapped_column(String(32))
    source: Mapped[str | None] = mapped_column(String(255))
    flagged: Mapped[bool] = mapped_column(Boolean, default=False)
    created_by: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(_TZ)


class Clock(Base):
    """A deadline: an SLA target or a regulatory obligation, started at a trigger time.

    ``due_at`` already includes the time spent paused. ``due_notified`` and ``breached`` make
    the reminder and the breach notification happen once.
    """

    __tablename__ = "case_clocks"
    __table_args__ = (Index("ix_case_clocks_state_due", "state", "due_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    case_id: Mapped[int] = mapped_column(_case_fk(), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    regime: Mapped[str | None] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(String(128))
    trigger_at: Mapped[datetime] = mapped_column(_TZ)
    due_at: Mapped[datetime] = mapped_column(_TZ)
    state: Mapped[str] = mapped_column(String(16))
    paused_at: Mapped[datetime | None] = mapped_column(_TZ)
    pause_reason: Mapped[str | None] = mapped_column(Text)
    paused_seconds: Mapped[int] = mapped_column(Integer, default=0)
    stopped_at: Mapped[datetime | None] = mapped_column(_TZ)
    outcome: Mapped[str | None] = mapped_column(String(16))
    note: Mapped[str | None] = mapped_column(Text)
    breached: Mapped[bool] = mapped_column(Boolean, default=False)
    breached_at: Mapped[datetime | None] = mapped_column(_TZ)
    due_notified: Mapped[bool] = mapped_column(Boolean, default=False)
    created_by: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(_TZ)


class Review(Base):
    """The post-incident review of a case (one per case)."""

    __tablename__ = "case_reviews"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    case_id: Mapped[int] = mapped_column(_case_fk(), unique=True)
    status: Mapped[str] = mapped_column(String(16))
    summary: Mapped[str] = mapped_column(Text, default="")
    what_happened: Mapped[str] = mapped_column(Text, default="")
    root_cause: Mapped[str] = mapped_column(Text, default="")
    went_well: Mapped[str] = mapped_column(Text, default="")
    went_badly: Mapped[str] = mapped_column(Text, default="")
    detection_gaps: Mapped[str] = mapped_column(Text, default="")
    lessons: Mapped[str] = mapped_column(Text, default="")
    first_compromise_at: Mapped[datetime | None] = mapped_column(_TZ)
    created_by: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(_TZ)
    updated_at: Mapped[datetime] = mapped_column(_TZ)
    completed_at: Mapped[datetime | None] = mapped_column(_TZ)
    completed_by: Mapped[str | None] = mapped_column(String(255))


class ActionItem(Base):
    """A corrective action from a review, owned by a person and tracked to closure."""

    __tablename__ = "case_review_actions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    review_id: Mapped[int] = mapped_column(ForeignKey("case_reviews.id", ondelete="CASCADE"),
                                           index=True)
    case_id: Mapped[int] = mapped_column(_case_fk())
    title: Mapped[str] = mapped_column(String(300))
    owner_id: Mapped[int] = mapped_column(Integer, index=True)
    owner_name: Mapped[str] = mapped_column(String(128))
    due_at: Mapped[datetime | None] = mapped_column(_TZ)
    status: Mapped[str] = mapped_column(String(16))
    link: Mapped[str | None] = mapped_column(String(512))
    created_at: Mapped[datetime] = mapped_column(_TZ)
    updated_at: Mapped[datetime] = mapped_column(_TZ)
