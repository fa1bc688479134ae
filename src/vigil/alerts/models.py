"""State tables of the alerts context: alerts, the incidents that group them, alert history.

``alerts`` keeps its name and first columns from the detect context it came from. Every
listing filter has an index that ends with the sort keys (``last_seen``, ``id``), so a page of
any filter is an index range read whatever the number of alerts; the grouping lookup on
``incidents`` is one index probe. JSON lists are stored as text, the same on SQLite and
PostgreSQL. ``severity`` is the rank of :class:`vigil.alerts.types.Severity`.

The entity column for the user is ``user_name``: ``user`` is a reserved word in PostgreSQL
(an unquoted ``SELECT user`` returns the session's role, not the column).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, DateTime, ForeignKey, Index, Integer, String, Text, true
from sqlalchemy.orm import Mapped, mapped_column

from vigil.core.db import Base

_TZ = DateTime(timezone=True)


class Incident(Base):
    """Alerts of one rule on one entity close in time, worked as one (see ``grouping``)."""

    __tablename__ = "incidents"
    __table_args__ = (
        Index("ix_incidents_key", "rule_id", "entity_kind", "entity_value", "status", "last_seen"),
        Index("ix_incidents_last_seen", "last_seen", "id"),
        Index("ix_incidents_status", "status", "last_seen", "id"),
        Index("ix_incidents_case_id", "case_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    title: Mapped[str] = mapped_column(Text)
    rule_id: Mapped[str] = mapped_column(String(128))
    entity_kind: Mapped[str] = mapped_column(String(16))
    entity_value: Mapped[str] = mapped_column(String(255))
    """The grouping entity's value ('' for kind ``none``)."""
    severity: Mapped[int] = mapped_column(Integer)
    """The highest severity of its alerts."""
    status: Mapped[str] = mapped_column(String(16))
    alert_count: Mapped[int] = mapped_column(Integer)
    first_seen: Mapped[datetime] = mapped_column(_TZ)
    last_seen: Mapped[datetime] = mapped_column(_TZ)
    case_id: Mapped[int | None] = mapped_column(Integer)
    """The case all its alerts were escalated to (a case lives in ``vigil.cases``)."""
    auto_group: Mapped[bool] = mapped_column(Boolean, server_default=true())
    """Whether new alerts may join it automatically (not for incidents split off by hand)."""
    merged_into: Mapped[int | None] = mapped_column(Integer)
    """The incident its alerts were merged into (this one is then closed)."""
    created_at: Mapped[datetime] = mapped_column(_TZ)
    updated_at: Mapped[datetime] = mapped_column(_TZ)
    closed_at: Mapped[datetime | None] = mapped_column(_TZ)


class Alert(Base):
    """Occurrences of one rule sharing one dedup key, and where the analysts are with them."""

    __tablename__ = "alerts"
    __table_args__ = (
        Index("ix_alerts_last_seen", "last_seen", "id"),
        Index("ix_alerts_first_seen", "first_seen", "id"),
        Index("ix_alerts_created_at", "created_at"),
        Index("ix_alerts_rule_id", "rule_id", "last_seen", "id"),
        Index("ix_alerts_status", "status", "last_seen", "id"),
        Index("ix_alerts_status_severity", "status", "severity", "last_seen", "id"),
        Index("ix_alerts_severity", "severity", "last_seen", "id"),
        Index("ix_alerts_host", "host", "last_seen", "id"),
        Index("ix_alerts_user_name", "user_name", "last_seen", "id"),
        Index("ix_alerts_src_ip", "src_ip", "last_seen", "id"),
        Index("ix_alerts_incident_id", "incident_id", "last_seen", "id"),
        Index("ix_alerts_assignee", "assignee", "status"),
        Index("ix_alerts_case_id", "case_id"),
        Index("ix_alerts_group_key", "group_key", "last_seen"),
        Index("ix_alerts_dedup_key", "dedup_key"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    source: Mapped[str] = mapped_column(String(16), server_default="sigma")
    rule_id: Mapped[str] = mapped_column(String(128))
    rule_title: Mapped[str] = mapped_column(Text)
    level: Mapped[str] = mapped_column(String(32))
    severity: Mapped[int] = mapped_column(Integer, server_default="2")
    rule_author: Mapped[str | None] = mapped_column(Text)
    rule_references: Mapped[str] = mapped_column(Text, default="[]")
    tags: Mapped[str] = mapped_column(Text, default="[]")
    host: Mapped[str | None] = mapped_column(String(255))
    user_name: Mapped[str | None] = mapped_column(String(255))
    src_ip: Mapped[str | None] = mapped_column(String(64))
    first_seen: Mapped[datetime] = mapped_column(_TZ)
    last_seen: Mapped[datetime] = mapped_column(_TZ)
    count: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    event_ids: Mapped[str] = mapped_column(Text, default="[]")
    """Up to 100 event ids (JSON list)."""
    group_key: Mapped[str | None] = mapped_column(String(512))
    """The burst key (correlations: the group-by values as JSON)."""
    dedup_key: Mapped[str] = mapped_column(String(512))
    status: Mapped[str] = mapped_column(String(32), default="new", server_default="new")
    disposition: Mapped[str | None] = mapped_column(String(40))
    closing_note: Mapped[str | None] = mapped_column(Text)
    assignee: Mapped[int | None] = mapped_column(Integer)
    """A user id of ``vigil.people``."""
    incident_id: Mapped[int | None] = mapped_column(ForeignKey("incidents.id"))
    case_id: Mapped[int | None] = mapped_column(Integer)
    """The case it was escalated to (a case lives in ``vigil.cases``)."""
    created_at: Mapped[datetime] = mapped_column(_TZ)
    updated_at: Mapped[datetime | None] = mapped_column(_TZ)
    acknowledged_at: Mapped[datetime | None] = mapped_column(_TZ)
    """The first acknowledgement (kept when reopened and acknowledged again)."""
    escalated_at: Mapped[datetime | None] = mapped_column(_TZ)
    """The first link to a case."""
    closed_at: Mapped[datetime | None] = mapped_column(_TZ)


class AlertHistory(Base):
    """One change of one field of one alert: who, when, from what, to what."""

    __tablename__ = "alert_history"
    __table_args__ = (
        Index("ix_alert_history_alert_id", "alert_id", "id"),
        Index("ix_alert_history_at", "at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    alert_id: Mapped[int] = mapped_column(ForeignKey("alerts.id", ondelete="CASCADE"))
    at: Mapped[datetime] = mapped_column(_TZ)
    actor: Mapped[str] = mapped_column(String(255))
    field: Mapped[str] = mapped_column(String(32))
    old: Mapped[str | None] = mapped_column(Text)
    new: Mapped[str | None] = mapped_column(Text)
