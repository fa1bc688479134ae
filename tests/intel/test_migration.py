"""Migration 0010 on both databases: the intel tables match the models, and the migration
goes down and up again."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, select, text

from vigil.core.db import MIGRATIONS, Base, StateDB
from vigil.intel.models import (
    Allowlist,
    Feed,
    FeedRun,
    Indicator,
    IndicatorObservable,
    IndicatorSource,
    Meta,
    Sighting,
)
from vigil.intel.normalize import make_input
from vigil.intel.writing import ingest_session, revision

OURS = {m.__tablename__ for m in (Indicator, IndicatorObservable, IndicatorSource, Sighting, Feed, FeedRun,
                                  Allowlist, Meta)}


def _config(db: StateDB) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["engine"] = db.engine
    return config


@pytest.fixture
def empty_db(state_url: str) -> Iterator[StateDB]:
    db = StateDB(state_url)
    yield db
    db.dispose()


def _tables(item: object) -> set[str]:
    if isinstance(item, list | tuple):
        return {t for x in item for t in _tables(x)}
    table = getattr(item, "table", None)
    name = getattr(table, "name", None) or getattr(item, "name", None)
    return {name} if isinstance(name, str) else set()


def test_the_schema_matches_the_models(state_db: StateDB) -> None:
    with state_db.engine.connect() as connection:
        diffs = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    assert [d for d in diffs if _tables(d) & OURS] == []
    assert set(inspect(state_db.engine).get_table_names()) >= OURS
    with state_db.session() as session:
        assert session.execute(select(Meta.id, Meta.revision)).all() == [(1, 0)]
    indexes = {i["name"] for i in inspect(state_db.engine).get_indexes("intel_observables")}
    assert "ix_intel_observables_type_value" in indexes
    constraints = inspect(state_db.engine).get_unique_constraints("intel_indicators")
    uniques = {tuple(u["column_names"]) for u in constraints}
    assert ("type", "value") in uniques


def test_down_and_up_again(empty_db: StateDB) -> None:
    config = _config(empty_db)
    command.upgrade(config, "head")
    with empty_db.session() as session:
        ingest_session(session, [make_input("ipv4", "45.9.148.3", "feodo")], actor="user:alice")
        assert revision(session) == 1
    command.downgrade(config, "0009")
    tables = set(inspect(empty_db.engine).get_table_names())
    assert not tables & OURS
    assert {"alerts", "audit_log"} <= tables, "the tables of earlier migrations stay"
    command.upgrade(config, "head")
    with empty_db.session() as session:
        assert revision(session) == 0
        assert session.execute(text("SELECT COUNT(*) FROM intel_indicators")).scalar_one() == 0
        result = ingest_session(session, [make_input("ipv4", "45.9.148.3", "feodo")], actor="user:alice")
        assert (result.added, revision(session)) == (1, 1)
