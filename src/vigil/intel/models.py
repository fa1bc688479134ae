"""State tables of threat intelligence.

- ``intel_indicators``: one row per (type, canonical value), id = UUIDv5 of both. The decay
  score is not stored: it is computed when read from ``base_score`` and ``last_seen`` /
  ``last_sighting`` (so a changed decay policy applies at once).
- ``intel_observables``: the values live matching looks for (a simple indicator has one row,
  itself; an ``OR`` of STIX comparisons one per comparison).
- ``intel_sources``: which feeds state an indicator, with first and last seen per feed.
- ``intel_sightings``: seen / false positive / expired, by whom or which alert.
- ``intel_feeds`` and ``intel_feed_runs``: configured feeds, their pull state (cursor, ETag)
  and the outcome of every pull.
- ``intel_allowlists``: warninglists in the MISP format, applied on import and on match.
- ``intel_meta``: one row, the revision that changes whenever what matching uses changes.
"""

from __future__ import annotations

from datetime import datetime

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


class Indicator(Base):
    __tablename__ = "intel_indicators"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    type: Mapped[str] = mapped_column(String(16))
    value: Mapped[str] = mapped_column(Text)
    pattern: Mapped[str | None] = mapped_column(Text)
    stix_id: Mapped[str | None] = mapped_column(String(80))
    name: Mapped[str | None] = mapped_column(Text)
    description: Mapped[str | None] = mapped_column(Text)
    confidence: Mapped[int] = mapped_column(Integer)
    base_score: Mapped[int] = mapped_column(Integer)
    tlp: Mapped[str | None] = mapped_column(String(16))
    markings: Mapped[str] = mapped_column(Text, default="[]")
    labels: Mapped[str] = mapped_column(Text, default="[]")
    attack: Mapped[str] = mapped_column(Text, default="[]")
    malware: Mapped[str] = mapped_column(Text, default="[]")
    valid_from: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    valid_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    revoked: Mapped[bool] = mapped_column(Boolean, default=False)
    first_seen: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    last_seen: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    last_sighting: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    sightings_seen: Mapped[int] = mapped_column(Integer, default=0)
    sightings_fp: Mapped[int] = mapped_column(Integer, default=0)
    sightings_expired: Mapped[int] = mapped_column(Integer, default=0)
    allowlisted: Mapped[str | None] = mapped_column(String(200))
    stix: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        UniqueConstraint("type", "value", name="uq_intel_indicators_type_value"),
        Index("ix_intel_indicators_updated_at", "updated_at"),
        Index("ix_intel_indicators_stix_id", "stix_id"),
        Index("ix_intel_indicators_last_seen", "last_seen"),
    )


class IndicatorObservable(Base):
    __tablename__ = "intel_observables"

    indicator_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("intel_indicators.id", ondelete="CASCADE"), primary_key=True)
    type: Mapped[str] = mapped_column(String(16), primary_key=True)
    value: Mapped[str] = mapped_column(Text, primary_key=True)

    __table_args__ = (Index("ix_intel_observables_type_value", "type", "value"),)


class IndicatorSource(Base):
    __tablename__ = "intel_sources"

    indicator_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("intel_indicators.id", ondelete="CASCADE"), primary_key=True)
    source: Mapped[str] = mapped_column(String(200), primary_key=True)
    first_seen: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    last_seen: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    reference: Mapped[str | None] = mapped_column(Text)
    confidence: Mapped[int | None] = mapped_column(Integer)

    __table_args__ = (Index("ix_intel_sources_source", "source"),)


class Sighting(Base):
    __tablename__ = "intel_sightings"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    indicator_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("intel_indicators.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(16))
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    count: Mapped[int] = mapped_column(Integer, default=1)
    actor: Mapped[str] = mapped_column(String(200))
    alert_id: Mapped[int | None] = mapped_column(Integer)
    note: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (Index("ix_intel_sightings_indicator_id", "indicator_id", "at"),)


class Feed(Base):
    __tablename__ = "intel_feeds"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    kind: Mapped[str] = mapped_column(String(16))
    url: Mapped[str] = mapped_column(Text)
    config: Mapped[str] = mapped_column(Text, default="{}")
    secret: Mapped[str | None] = mapped_column(Text)
    interval_minutes: Mapped[int] = mapped_column(Integer, default=60)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    cursor: Mapped[str | None] = mapped_column(Text)
    etag: Mapped[str | None] = mapped_column(Text)
    last_modified: Mapped[str | None] = mapped_column(Text)
    last_pull_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_ok_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class FeedRun(Base):
    __tablename__ = "intel_feed_runs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    feed_id: Mapped[int] = mapped_column(Integer, ForeignKey("intel_feeds.id", ondelete="CASCADE"))
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    status: Mapped[str] = mapped_column(String(16))
    fetched: Mapped[int] = mapped_column(Integer, default=0)
    added: Mapped[int] = mapped_column(Integer, default=0)
    updated: Mapped[int] = mapped_column(Integer, default=0)
    problems: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (Index("ix_intel_feed_runs_feed_id", "feed_id", "id"),)


class Allowlist(Base):
    __tablename__ = "intel_allowlists"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    kind: Mapped[str] = mapped_column(String(16))
    description: Mapped[str | None] = mapped_column(Text)
    version: Mapped[str | None] = mapped_column(String(40))
    entries: Mapped[str] = mapped_column(Text)
    matching_attributes: Mapped[str] = mapped_column(Text, default="[]")
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class Meta(Base):
    __tablename__ = "intel_meta"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    revision: Mapped[int] = mapped_column(Integer, default=0)
    matched_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
