"""People: users, teams, sign-in sessions, login attempts, token roles and scopes.

The one-scope tokens of 0001 become service tokens whose scopes are permissions:
``ingest`` → ``events:ingest``; ``read`` → ``events:read``, ``alerts:read``, ``cases:read``.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-29
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

_TZ = sa.DateTime(timezone=True)
_LEGACY = {"ingest": ["events:ingest"], "read": ["events:read", "alerts:read", "cases:read"]}
_TEAMS = [("security", "Detection, threat hunting and incident response."),
          ("operations", "Systems and network operations: responders to alerts and incidents.")]


def upgrade() -> None:
    teams = op.create_table(
        "teams",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("description", sa.Text()),
        sa.Column("created_at", _TZ, nullable=False),
        sa.UniqueConstraint("name", name="uq_teams_name"),
    )
    now = datetime.now(UTC)
    op.bulk_insert(teams, [{"name": n, "description": d, "created_at": now} for n, d in _TEAMS])
    op.create_table(
        "users",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("username", sa.String(64), nullable=False),
        sa.Column("display_name", sa.String(255), nullable=False),
        sa.Column("email", sa.String(320)),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("team_id", sa.Integer(), sa.ForeignKey("teams.id", name="fk_users_team_id_teams")),
        sa.Column("password_hash", sa.String(255), nullable=False),
        sa.Column("disabled", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("created_at", _TZ, nullable=False),
        sa.Column("last_login_at", _TZ),
        sa.UniqueConstraint("username", name="uq_users_username"),
    )
    op.create_index("ix_users_team_id", "users", ["team_id"])
    op.create_table(
        "sessions",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("user_id", sa.Integer(), sa.ForeignKey("users.id", name="fk_sessions_user_id_users"),
                  nullable=False),
        sa.Column("created_at", _TZ, nullable=False),
        sa.Column("expires_at", _TZ, nullable=False),
        sa.Column("last_seen_at", _TZ, nullable=False),
        sa.Column("idle_seconds", sa.Integer(), nullable=False),
        sa.Column("client", sa.String(64)),
        sa.Column("revoked_at", _TZ),
        sa.UniqueConstraint("token_hash", name="uq_sessions_token_hash"),
    )
    op.create_index("ix_sessions_user_id", "sessions", ["user_id"])
    op.create_index("ix_sessions_expires_at", "sessions", ["expires_at"])
    op.create_table(
        "login_attempts",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("username", sa.String(64), nullable=False),
        sa.Column("client", sa.String(64), nullable=False),
        sa.Column("at", _TZ, nullable=False),
        sa.Column("ok", sa.Boolean(), nullable=False),
    )
    op.create_index("ix_login_attempts_at", "login_attempts", ["at"])
    op.create_index("ix_login_attempts_username_at", "login_attempts", ["username", "at"])
    op.create_index("ix_login_attempts_client_at", "login_attempts", ["client", "at"])
    _upgrade_tokens()


def _upgrade_tokens() -> None:
    with op.batch_alter_table("api_tokens") as batch:
        batch.add_column(sa.Column("role", sa.String(16), nullable=False, server_default="service"))
        batch.add_column(sa.Column("scopes", sa.JSON()))
        batch.add_column(sa.Column("user_id", sa.Integer()))
        batch.add_column(sa.Column("expires_at", _TZ))
        batch.add_column(sa.Column("last_used_at", _TZ))
        batch.create_foreign_key("fk_api_tokens_user_id_users", "users", ["user_id"], ["id"])
        batch.create_index("ix_api_tokens_user_id", ["user_id"])
    tokens = sa.table("api_tokens", sa.column("scope", sa.String()), sa.column("scopes", sa.JSON()))
    for scope, permissions in _LEGACY.items():
        op.execute(tokens.update().where(tokens.c.scope == scope).values(scopes=permissions))
    with op.batch_alter_table("api_tokens") as batch:
        batch.drop_column("scope")


def downgrade() -> None:
    # Personal tokens would outlive their user's role as plain tokens: revoke them first.
    op.execute(sa.text("UPDATE api_tokens SET revoked_at = CURRENT_TIMESTAMP "
                       "WHERE user_id IS NOT NULL AND revoked_at IS NULL"))
    with op.batch_alter_table("api_tokens") as batch:
        batch.add_column(sa.Column("scope", sa.String(32), nullable=False, server_default="read"))
    connection = op.get_bind()
    rows = connection.execute(sa.text("SELECT id, scopes FROM api_tokens")).all()
    for token_id, scopes in rows:
        values = json.loads(scopes) if isinstance(scopes, str) else (scopes or [])
        scope = "ingest" if "events:ingest" in values else "read"
        connection.execute(sa.text("UPDATE api_tokens SET scope = :s WHERE id = :i"),
                           {"s": scope, "i": token_id})
    with op.batch_alter_table("api_tokens") as batch:
        batch.alter_column("scope", server_default=None)
        batch.drop_index("ix_api_tokens_user_id")
        batch.drop_constraint("fk_api_tokens_user_id_users", type_="foreignkey")
        for column in ("last_used_at", "expires_at", "user_id", "scopes", "role"):
            batch.drop_column(column)
    op.drop_table("login_attempts")
    op.drop_table("sessions")
    op.drop_table("users")
    op.drop_table("teams")
