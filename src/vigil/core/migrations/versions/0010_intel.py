"""Threat intelligence: indicators, their observables, sources and sightings; feeds and their
runs; allowlists; the matching revision.

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

_TZ = sa.DateTime(timezone=True)


def _indicator_ref(table: str) -> sa.Column[str]:
    return sa.Column("indicator_id", sa.String(36), sa.ForeignKey(
        "intel_indicators.id", ondelete="CASCADE", name=f"fk_{table}_indicator_id_intel_indicators"),
        nullable=False)


def upgrade() -> None:
    op.create_table(
        "intel_indicators",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("type", sa.String(16), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.Column("pattern", sa.Text()),
        sa.Column("stix_id", sa.String(80)),
        sa.Column("name", sa.Text()),
        sa.Column("description", sa.Text()),
        sa.Column("confidence", sa.Integer(), nullable=False),
        sa.Column("base_score", sa.Integer(), nullable=False),
        sa.Column("tlp", sa.String(16)),
        sa.Column("markings", sa.Text(), nullable=False),
        sa.Column("labels", sa.Text(), nullable=False),
        sa.Column("attack", sa.Text(), nullable=False),
        sa.Column("malware", sa.Text(), nullable=False),
        sa.Column("valid_from", _TZ),
        sa.Column("valid_until", _TZ),
        sa.Column("revoked", sa.Boolean(), nullable=False),
        sa.Column("first_seen", _TZ, nullable=False),
        sa.Column("last_seen", _TZ, nullable=False),
        sa.Column("last_sighting", _TZ),
        sa.Column("sightings_seen", sa.Integer(), nullable=False),
        sa.Column("sightings_fp", sa.Integer(), nullable=False),
        sa.Column("sightings_expired", sa.Integer(), nullable=False),
        sa.Column("allowlisted", sa.String(200)),
        sa.Column("stix", sa.Text()),
        sa.Column("created_at", _TZ, nullable=False),
        sa.Column("updated_at", _TZ, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_intel_indicators"),
        sa.UniqueConstraint("type", "value", name="uq_intel_indicators_type_value"),
    )
    op.create_index("ix_intel_indicators_updated_at", "intel_indicators", ["updated_at"])
    op.create_index("ix_intel_indicators_stix_id", "intel_indicators", ["stix_id"])
    op.create_index("ix_intel_indicators_last_seen", "intel_indicators", ["last_seen"])
    op.create_table(
        "intel_observables",
        _indicator_ref("intel_observables"),
        sa.Column("type", sa.String(16), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("indicator_id", "type", "value", name="pk_intel_observables"),
    )
    op.create_index("ix_intel_observables_type_value", "intel_observables", ["type", "value"])
    op.create_table(
        "intel_sources",
        _indicator_ref("intel_sources"),
        sa.Column("source", sa.String(200), nullable=False),
        sa.Column("first_seen", _TZ, nullable=False),
        sa.Column("last_seen", _TZ, nullable=False),
        sa.Column("reference", sa.Text()),
        sa.Column("confidence", sa.Integer()),
        sa.PrimaryKeyConstraint("indicator_id", "source", name="pk_intel_sources"),
    )
    op.create_index("ix_intel_sources_source", "intel_sources", ["source"])
    op.create_table(
        "intel_sightings",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        _indicator_ref("intel_sightings"),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("at", _TZ, nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("alert_id", sa.Integer()),
        sa.Column("note", sa.Text()),
    )
    op.create_index("ix_intel_sightings_indicator_id", "intel_sightings", ["indicator_id", "at"])
    op.create_table(
        "intel_feeds",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("config", sa.Text(), nullable=False),
        sa.Column("secret", sa.Text()),
        sa.Column("interval_minutes", sa.Integer(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("cursor", sa.Text()),
        sa.Column("etag", sa.Text()),
        sa.Column("last_modified", sa.Text()),
        sa.Column("last_pull_at", _TZ),
        sa.Column("last_ok_at", _TZ),
        sa.Column("last_error", sa.Text()),
        sa.Column("created_at", _TZ, nullable=False),
        sa.Column("updated_at", _TZ, nullable=False),
        sa.UniqueConstraint("name", name="uq_intel_feeds_name"),
    )
    op.create_table(
        "intel_feed_runs",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("feed_id", sa.Integer(), sa.ForeignKey(
            "intel_feeds.id", ondelete="CASCADE",
            name="fk_intel_feed_runs_feed_id_intel_feeds"), nullable=False),
        sa.Column("started_at", _TZ, nullable=False),
        sa.Column("finished_at", _TZ),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("fetched", sa.Integer(), nullable=False),
        sa.Column("added", sa.Integer(), nullable=False),
        sa.Column("updated", sa.Integer(), nullable=False),
        sa.Column("problems", sa.Integer(), nullable=False),
        sa.Column("error", sa.Text()),
    )
    op.create_index("ix_intel_feed_runs_feed_id", "intel_feed_runs", ["feed_id", "id"])
    op.create_table(
        "intel_allowlists",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("description", sa.Text()),
        sa.Column("version", sa.String(40)),
        sa.Column("entries", sa.Text(), nullable=False),
        sa.Column("matching_attributes", sa.Text(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("created_at", _TZ, nullable=False),
        sa.UniqueConstraint("name", name="uq_intel_allowlists_name"),
    )
    op.create_table(
        "intel_meta",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("matched_at", _TZ),
    )
    op.execute("INSERT INTO intel_meta (id, revision) VALUES (1, 0)")


def downgrade() -> None:
    for table in ("intel_meta", "intel_allowlists", "intel_feed_runs", "intel_feeds",
                  "intel_sightings", "intel_sources", "intel_observables", "intel_indicators"):
        op.drop_table(table)
