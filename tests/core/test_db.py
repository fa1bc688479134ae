"""The state database: engines, sessions and Alembic migrations on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import func, inspect, select, text

from vigil.core.db import StateDB, current_revision, make_engine, table_names, upgrade
from vigil.core.errors import StateError
from vigil.people.models import ApiToken

EXPECTED_TABLES = {"alembic_version", "api_tokens", "dead_letters"}


def test_fresh_database_has_no_revision(state_url: str) -> None:
    db = StateDB(state_url)
    try:
        assert current_revision(db.engine) is None
        assert not EXPECTED_TABLES & set(table_names(db.engine))
    finally:
        db.dispose()


def test_upgrade_creates_the_tables(state_url: str) -> None:
    db = StateDB(state_url)
    try:
        revision = db.upgrade()
        assert revision is not None
        assert current_revision(db.engine) == revision
        assert set(table_names(db.engine)) >= EXPECTED_TABLES
        columns = {c["name"] for c in inspect(db.engine).get_columns("api_tokens")}
        assert columns == {"id", "name", "token_hash", "role", "scopes", "user_id", "created_at",
                           "expires_at", "last_used_at", "revoked_at"}
        columns = {c["name"] for c in inspect(db.engine).get_columns("dead_letters")}
        assert {"id", "received_at", "origin", "format", "line", "reason", "raw", "size"} <= columns
    finally:
        db.dispose()


def test_upgrade_is_idempotent(state_url: str) -> None:
    db = StateDB(state_url)
    try:
        first = db.upgrade()
        with db.session() as session:
            session.add(ApiToken(name="keep-me", token_hash="a" * 64,
                                 created_at=datetime(2024, 5, 1, tzinfo=UTC)))
        tables = table_names(db.engine)
        assert db.upgrade() == first
        assert upgrade(db.engine) == first
        assert table_names(db.engine) == tables
        with db.session() as session:
            assert session.scalar(select(func.count()).select_from(ApiToken)) == 1
            version_rows = session.execute(text("SELECT version_num FROM alembic_version")).all()
        assert [row[0] for row in version_rows] == [first]
    finally:
        db.dispose()


def test_upgrade_from_a_second_handle(state_url: str) -> None:
    """Two processes (here: two engines) upgrading the same database agree on the revision."""
    first, second = StateDB(state_url), StateDB(state_url)
    try:
        assert first.upgrade() == second.upgrade()
        assert set(table_names(second.engine)) >= EXPECTED_TABLES
    finally:
        first.dispose()
        second.dispose()


def test_session_commits_on_success_and_rolls_back_on_error(state_db: StateDB) -> None:
    with state_db.session() as session:
        session.add(ApiToken(name="committed", token_hash="b" * 64,
                             created_at=datetime(2024, 5, 1, tzinfo=UTC)))
    with pytest.raises(RuntimeError), state_db.session() as session:
        session.add(ApiToken(name="rolled-back", token_hash="c" * 64,
                             created_at=datetime(2024, 5, 1, tzinfo=UTC)))
        session.flush()
        raise RuntimeError("boom")
    with state_db.session() as session:
        names = session.scalars(select(ApiToken.name)).all()
    assert names == ["committed"]


def test_timestamps_come_back_timezone_aware_or_equal(state_db: StateDB) -> None:
    moment = datetime(2024, 5, 1, 10, 20, 30, tzinfo=UTC)
    with state_db.session() as session:
        session.add(ApiToken(name="tz", token_hash="d" * 64, created_at=moment))
    with state_db.session() as session:
        stored = session.scalars(select(ApiToken.created_at)).one()
    assert stored.replace(tzinfo=stored.tzinfo or UTC) == moment


def test_sqlite_uses_wal_and_foreign_keys(tmp_path: Path) -> None:
    db = StateDB(f"sqlite:///{tmp_path / 'nested' / 'folder' / 'state.db'}")
    try:
        db.upgrade()
        assert (tmp_path / "nested" / "folder" / "state.db").is_file()
        with db.engine.connect() as connection:
            assert connection.execute(text("PRAGMA journal_mode")).scalar() == "wal"
            assert connection.execute(text("PRAGMA foreign_keys")).scalar() == 1
    finally:
        db.dispose()


def test_in_memory_sqlite_works() -> None:
    engine = make_engine("sqlite:///:memory:")
    try:
        assert current_revision(engine) is None
    finally:
        engine.dispose()


@pytest.mark.parametrize("url", ["nosuchdialect://x/y", "not a url at all"])
def test_invalid_url_is_a_state_error(url: str) -> None:
    with pytest.raises(StateError, match="invalid state database URL"):
        make_engine(url)


def test_unreachable_postgresql_is_a_state_error() -> None:
    db = StateDB("postgresql+psycopg://postgres@127.0.0.1:1/nowhere?connect_timeout=2")
    try:
        with pytest.raises(StateError, match="cannot reach the state database"):
            db.upgrade()
        with pytest.raises(StateError, match="cannot reach the state database"):
            current_revision(db.engine)
    finally:
        db.dispose()
