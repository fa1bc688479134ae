"""People: users, teams, sign-in sessions, login attempts, token roles and scopes.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    _ = (sa, op)


def downgrade() -> None:
    pass
