"""The state database: SQLAlchemy 2 engine, the declarative base, and Alembic migrations.

SQLite in the data folder (WAL mode) is the embedded default; ``VIGIL_STATE_URL`` selects
PostgreSQL (``postgresql+psycopg://...``). Every context declares its tables on :class:`Base`.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, MetaData, create_engine, event, inspect
from sqlalchemy.exc import OperationalError, SQLAlchemyError
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker

from vigil.core.errors import StateError

MIGRATIONS = Path(__file__).parent / "migrations"
POOL_SIZE = 20
"""Connections kept open: the API serves requests from up to 40 threads; a connection closed
and opened again per request (SQLAlchemy's default keeps 5) costs more than the query."""
POOL_OVERFLOW = 20
NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    """The declarative base of every state table."""

    metadata = MetaData(naming_convention=NAMING)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.execute("PRAGMA mmap_size=268435456")
    cursor.execute("PRAGMA cache_size=-16000")
    cursor.close()


def make_engine(url: str) -> Engine:
    """An engine for the state database at ``url``."""
    try:
        if url.startswith("sqlite"):
            path = url.split("///", 1)[-1]
            if path and path != ":memory:":
                Path(path).parent.mkdir(parents=True, exist_ok=True)
            memory = not path or path == ":memory:"
            sizes = {} if memory else {"pool_size": POOL_SIZE, "max_overflow": POOL_OVERFLOW}
            engine = create_engine(url, connect_args={"check_same_thread": False}, **sizes)
            event.listen(engine, "connect", _sqlite_pragmas)
            return engine
        return create_engine(url, pool_pre_ping=True, pool_size=POOL_SIZE,
                             max_overflow=POOL_OVERFLOW)
    except (SQLAlchemyError, ModuleNotFoundError, ValueError) as exc:
        raise StateError(f"invalid state database URL: {exc}") from exc


def _alembic_config(engine: Engine) -> Any:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["engine"] = engine
    return config


def upgrade(engine: Engine) -> str | None:
    """Apply every pending migration; return the revision now in force."""
    from alembic import command
    from alembic.runtime.migration import MigrationContext

    try:
        command.upgrade(_alembic_config(engine), "head")
        with engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision()
    except OperationalError as exc:
        raise StateError(f"cannot reach the state database: {exc.orig}") from exc


def current_revision(engine: Engine) -> str | None:
    """The migration revision of the database (None when never migrated)."""
    from alembic.runtime.migration import MigrationContext

    try:
        with engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision()
    except OperationalError as exc:
        raise StateError(f"cannot reach the state database: {exc.orig}") from exc


def table_names(engine: Engine) -> list[str]:
    return sorted(inspect(engine).get_table_names())


class StateDB:
    """The state database of one Vigil instance: an engine and a session factory."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = make_engine(url)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session that commits on success and rolls back on error."""
        session = self._sessions()
        try:
            yield session
            session.commit()
        except OperationalError as exc:
            session.rollback()
            raise StateError(f"state database error: {exc.orig}") from exc
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()

    def upgrade(self) -> str | None:
        return upgrade(self.engine)

    def dispose(self) -> None:
        self.engine.dispose()
