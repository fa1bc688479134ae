"""Detection: Sigma filters and correlation rules in the catalog, rule names.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("rules", sa.Column("name", sa.Text()))
    op.create_table(
        "rule_documents",
        sa.Column("id", sa.String(128), primary_key=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("name", sa.Text()),
        sa.Column("level", sa.String(32), nullable=False),
        sa.Column("status", sa.String(32)),
        sa.Column("author", sa.Text()),
        sa.Column("description", sa.Text()),
        sa.Column("product", sa.String(128)),
        sa.Column("category", sa.String(128)),
        sa.Column("service", sa.String(128)),
        sa.Column("tags", sa.Text(), nullable=False),
        sa.Column("refs", sa.Text(), nullable=False),
        sa.Column("falsepositives", sa.Text(), nullable=False),
        sa.Column("path", sa.Text(), nullable=False),
        sa.Column("yaml", sa.Text(), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False, server_default=sa.true()),
        sa.Column("error", sa.Text()),
        sa.Column("imported_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_rule_documents_kind", "rule_documents", ["kind"])


def downgrade() -> None:
    op.drop_index("ix_rule_documents_kind", table_name="rule_documents")
    op.drop_table("rule_documents")
    with op.batch_alter_table("rules") as batch:
        batch.drop_column("name")
