"""Notifications: channels, rules and deliveries.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

_TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "notify_channels",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("config", sa.Text(), nullable=False),
        sa.Column("secret", sa.Text()),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("created_at", _TZ, nullable=False),
        sa.Column("updated_at", _TZ, nullable=False),
        sa.UniqueConstraint("name", name="uq_notify_channels_name"),
    )
    op.create_table(
        "notify_rules",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("topics", sa.Text(), nullable=False),
        sa.Column("min_severity", sa.String(16)),
        sa.Column("channel_id", sa.Integer(),
                  sa.ForeignKey("notify_channels.id",
                                name="fk_notify_rules_channel_id_notify_channels"),
                  nullable=False),
        sa.Column("event_recipients", sa.Boolean(), nullable=False),
        sa.Column("addresses", sa.Text(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("created_at", _TZ, nullable=False),
        sa.Column("updated_at", _TZ, nullable=False),
        sa.UniqueConstraint("name", name="uq_notify_rules_name"),
    )
    op.create_index("ix_notify_rules_channel_id", "notify_rules", ["channel_id"])
    op.create_table(
        "notify_deliveries",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("event_id", sa.Integer()),
        sa.Column("topic", sa.String(64), nullable=False),
        sa.Column("rule_id", sa.Integer(),
                  sa.ForeignKey("notify_rules.id", ondelete="SET NULL",
                                name="fk_notify_deliveries_rule_id_notify_rules")),
        sa.Column("channel_id", sa.Integer(),
                  sa.ForeignKey("notify_channels.id", ondelete="SET NULL",
                                name="fk_notify_deliveries_channel_id_notify_channels")),
        sa.Column("rule_name", sa.String(64)),
        sa.Column("channel_name", sa.String(64), nullable=False),
        sa.Column("recipient", sa.String(320), nullable=False),
        sa.Column("subject", sa.String(512), nullable=False),
        sa.Column("event", sa.Text(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", _TZ, nullable=False),
        sa.Column("last_error", sa.Text()),
        sa.Column("created_at", _TZ, nullable=False),
        sa.Column("sent_at", _TZ),
        sa.UniqueConstraint("event_id", "rule_id", "recipient", name="uq_notify_deliveries_key"),
    )
    op.create_index("ix_notify_deliveries_event_id", "notify_deliveries", ["event_id"])
    op.create_index("ix_notify_deliveries_rule_id", "notify_deliveries", ["rule_id"])
    op.create_index("ix_notify_deliveries_channel_id", "notify_deliveries", ["channel_id"])
    op.create_index("ix_notify_deliveries_created_at", "notify_deliveries", ["created_at"])
    op.create_index("ix_notify_deliveries_due", "notify_deliveries", ["status", "next_attempt_at"])
    op.create_table(
        "notify_attempts",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("delivery_id", sa.Integer(),
                  sa.ForeignKey("notify_deliveries.id", ondelete="CASCADE",
                                name="fk_notify_attempts_delivery_id_notify_deliveries"),
                  nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("at", _TZ, nullable=False),
        sa.Column("ok", sa.Boolean(), nullable=False),
        sa.Column("status_code", sa.Integer()),
        sa.Column("reply", sa.Text()),
        sa.Column("error", sa.Text()),
        sa.Column("duration_ms", sa.Integer(), nullable=False),
    )
    op.create_index("ix_notify_attempts_delivery_id", "notify_attempts", ["delivery_id"])
    op.create_table(
        "notify_cursors",
        sa.Column("consumer", sa.String(64), primary_key=True),
        sa.Column("last_id", sa.Integer(), nullable=False),
        sa.Column("updated_at", _TZ, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("notify_cursors")
    op.drop_table("notify_attempts")
    op.drop_table("notify_deliveries")
    op.drop_table("notify_rules")
    op.drop_table("notify_channels")
