"""Migration 0004: tokens of earlier versions keep working; seeded teams; downgrade and back."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime

from alembic import command
from sqlalchemy import inspect, text

from vigil.core.auth import Permission, PrincipalKind, Role
from vigil.core.db import StateDB, _alembic_config, current_revision
from vigil.people import service, tokens
from vigil.people.auth import authenticate

LEGACY = {"old-ingest": ("ingest", "vgt_" + "i" * 43), "old-read": ("read", "vgt_" + "r" * 43)}


def test_legacy_tokens_become_scoped_service_tokens(state_url: str) -> None:
    db = StateDB(state_url)
    try:
        config = _alembic_config(db.engine)
        command.upgrade(config, "0003")
        with db.engine.begin() as connection:
            for name, (scope, token) in LEGACY.items():
                connection.execute(text(
                    "INSERT INTO api_tokens (name, scope, token_hash, created_at) "
                    "VALUES (:n, :s, :h, :c)"),
                    {"n": name, "s": scope, "h": hashlib.sha256(token.encode()).hexdigest(),
                     "c": datetime(2024, 5, 1, tzinfo=UTC)})
        command.upgrade(config, "0004")
        assert {"teams", "users", "sessions", "login_attempts"} <= set(inspect(db.engine).get_table_names())
        with db.engine.connect() as connection:
            teams = connection.execute(text("SELECT name FROM teams ORDER BY name")).scalars().all()
        assert teams == ["operations", "security"]

        db.upgrade()
        ingest = authenticate(db, f"Bearer {LEGACY['old-ingest'][1]}")
        read = authenticate(db, f"Bearer {LEGACY['old-read'][1]}")
        assert (ingest.kind, ingest.name, ingest.role) == (PrincipalKind.TOKEN, "old-ingest",
                                                           Role.SERVICE)
        assert ingest.permissions == {Permission.EVENTS_INGEST}
        assert read.permissions == {Permission.EVENTS_READ, Permission.ALERTS_READ,
                                    Permission.CASES_READ}
        assert tokens.verify(db, f"Bearer {LEGACY['old-read'][1]}", tokens.Scope.READ) == "old-read"
        assert len(service.list_teams(db).teams) == 2
    finally:
        db.dispose()


def test_downgrade_to_0003_and_back(state_url: str) -> None:
    db = StateDB(state_url)
    try:
        config = _alembic_config(db.engine)
        command.upgrade(config, "0004")
        with db.engine.begin() as connection:
            connection.execute(text(
                "INSERT INTO api_tokens (name, token_hash, role, scopes, created_at) VALUES "
                "('a', :h1, 'service', '[\"events:ingest\"]', :c), "
                "('b', :h2, 'service', '[\"events:read\", \"alerts:read\"]', :c)"),
                {"h1": "1" * 64, "h2": "2" * 64, "c": datetime(2024, 5, 1, tzinfo=UTC)})
        command.downgrade(config, "0003")
        assert current_revision(db.engine) == "0003"
        assert not {"teams", "users", "sessions", "login_attempts"} & set(
            inspect(db.engine).get_table_names())
        columns = {c["name"] for c in inspect(db.engine).get_columns("api_tokens")}
        assert columns == {"id", "name", "scope", "token_hash", "created_at", "revoked_at"}
        with db.engine.connect() as connection:
            rows = connection.execute(text("SELECT name, scope FROM api_tokens ORDER BY name")).all()
        assert [tuple(r) for r in rows] == [("a", "ingest"), ("b", "read")]
        command.upgrade(config, "0004")
        with db.engine.connect() as connection:
            scopes = connection.execute(text("SELECT scopes FROM api_tokens ORDER BY name")).scalars().all()
        assert [s if isinstance(s, list) else json.loads(s) for s in scopes] == [
            ["events:ingest"], ["events:read", "alerts:read", "cases:read"]]
    finally:
        db.dispose()
