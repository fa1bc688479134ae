"""Migration 0007 on both databases: it creates exactly the tables the models declare, and
goes down to 0006 and back up."""

from __future__ import annotations

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect

import vigil.cases.models  # noqa: F401  (declares the tables on Base)
from vigil.core.db import Base, StateDB, _alembic_config, current_revision

CASE_TABLES = {"cases", "case_events", "case_assignees", "case_tasks", "case_comments",
               "case_mentions", "case_observables", "case_observable_links", "case_evidence",
               "case_custody", "case_timeline", "case_clocks", "case_reviews",
               "case_review_actions"}


def _differences(db: StateDB) -> list[object]:
    """Differences between the migrated schema and the models, for the cases tables."""
    with db.engine.connect() as connection:
        found = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    return [d for d in found
            if any(f"'{name}'" in repr(d) or f"<{name}>" in repr(d) for name in CASE_TABLES)]


def test_tables_match_the_models_and_downgrade(state_url: str) -> None:
    db = StateDB(state_url)
    try:
        db.upgrade()
        assert set(inspect(db.engine).get_table_names()) >= CASE_TABLES
        assert _differences(db) == []
        config = _alembic_config(db.engine)
        command.downgrade(config, "0006")
        assert current_revision(db.engine) == "0006"
        assert not CASE_TABLES & set(inspect(db.engine).get_table_names())
        command.upgrade(config, "head")
        assert set(inspect(db.engine).get_table_names()) >= CASE_TABLES
    finally:
        db.dispose()
