"""State tables of notifications: channels, rules, deliveries, their attempts, consumer cursors.

A *channel* is where a message goes (a webhook, a Slack- or Teams-compatible webhook, an SMTP
server); a *rule* says which domain events go to which channel and to whom; a *delivery* is
one message for one recipient, retried until it is ``sent`` or ``failed``, with every attempt
kept in ``notify_attempts``. ``notify_cursors`` holds, per consumer, the outbox id below which
every event has been dispatched.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import (
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


class ChannelKind(StrEnum):
    WEBHOOK = "webhook"
    SLACK = "slack"
    TEAMS = "teams"
    EMAIL = "email"


class DeliveryStatus(StrEnum):
    PENDING = "pending"
    SENT = "sent"
    FAILED = "failed"


class Channel(Base):
    """Where messages go. ``config`` is the kind's JSON settings; ``secret`` (the HMAC key of a
    webhook, the SMTP password) is stored apart and never shown."""

    __tablename__ = "notify_channels"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    kind: Mapped[str] = mapped_column(String(16))
    config: Mapped[str] = mapped_column(Text)
    secret: Mapped[str | None] = mapped_column(Text)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class Rule(Base):
    """Which events (topics, minimum severity) go to which channel, and to whom: the people the
    event names (``event_recipients``) and/or fixed ``addresses`` (JSON list)."""

    __tablename__ = "notify_rules"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    topics: Mapped[str] = mapped_column(Text)
    min_severity: Mapped[str | None] = mapped_column(String(16))
    channel_id: Mapped[int] = mapped_column(ForeignKey("notify_channels.id"), index=True)
    event_recipients: Mapped[bool] = mapped_column(Boolean, default=False)
    addresses: Mapped[str] = mapped_column(Text, default="[]")
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class Delivery(Base):
    """One message for one recipient (``""`` for a webhook or chat channel). Unique per
    (event, rule, recipient), so dispatching an event twice never sends it twice. ``event``
    is the JSON snapshot of the domain event; test messages have no event id."""

    __tablename__ = "notify_deliveries"
    __table_args__ = (
        UniqueConstraint("event_id", "rule_id", "recipient", name="uq_notify_deliveries_key"),
        Index("ix_notify_deliveries_due", "status", "next_attempt_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    event_id: Mapped[int | None] = mapped_column(Integer, index=True)
    topic: Mapped[str] = mapped_column(String(64))
    rule_id: Mapped[int | None] = mapped_column(
        ForeignKey("notify_rules.id", ondelete="SET NULL"), index=True)
    channel_id: Mapped[int | None] = mapped_column(
        ForeignKey("notify_channels.id", ondelete="SET NULL"), index=True)
    rule_name: Mapped[str | None] = mapped_column(String(64))
    channel_name: Mapped[str] = mapped_column(String(64))
    recipient: Mapped[str] = mapped_column(String(320))
    subject: Mapped[str] = mapped_column(String(512))
    event: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class Attempt(Base):
    """One try at a delivery: HTTP status code or SMTP reply, or the error."""

    __tablename__ = "notify_attempts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    delivery_id: Mapped[int] = mapped_column(
        ForeignKey("notify_deliveries.id", ondelete="CASCADE"), index=True)
    number: Mapped[int] = mapped_column(Integer)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    ok: Mapped[bool] = mapped_column(Boolean)
    status_code: Mapped[int | None] = mapped_column(Integer)
    reply: Mapped[str | None] = mapped_column(Text)
    error: Mapped[str | None] = mapped_column(Text)
    duration_ms: Mapped[int] = mapped_column(Integer)


class Cursor(Base):
    """How far a consumer of the outbox has settled: every event id at or below ``last_id``
    has been dispatched (or was never committed)."""

    __tablename__ = "notify_cursors"

    consumer: Mapped[str] = mapped_column(String(64), primary_key=True)
    last_id: Mapped[int] = mapped_column(Integer)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
