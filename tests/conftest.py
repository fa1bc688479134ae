"""Shared fixtures: data folders, state databases (SQLite and PostgreSQL), the shared corpora."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from vigil.app import Vigil
from vigil.core.config import load_settings
from vigil.core.db import StateDB

PG_ADMIN_URL = os.environ.get("VIGIL_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "vigil-data"
    folder.mkdir()
    return folder


@pytest.fixture
def vigil(data_dir: Path) -> Iterator[Vigil]:
    instance = Vigil(load_settings(data_dir))
    yield instance
    instance.close()


def _postgres_database() -> Iterator[str]:
    name = f"vigil_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name
    finally:
        with admin.connect() as connection:
            connection.execute(text(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :n"),
                {"n": name})
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def state_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty state database URL: SQLite in a temp folder, or a new PostgreSQL DB."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'state.db'}"
    else:
        yield from _postgres_database()


@pytest.fixture
def state_db(state_url: str) -> Iterator[StateDB]:
    db = StateDB(state_url)
    db.upgrade()
    yield db
    db.dispose()
