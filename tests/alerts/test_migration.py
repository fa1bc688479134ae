"""Migration 0006 on both databases: the schema matches the models, alerts of an older
database get a severity, a source and an incident, and the migration goes down and up again."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, text

from vigil.alerts import service
from vigil.alerts.models import Alert, AlertHistory, Incident
from vigil.core.db import MIGRATIONS, Base, StateDB

from .alerting import ALICE, make, record

OURS = {Alert.__tablename__, Incident.__tablename__, AlertHistory.__tablename__}


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
    columns = {c["name"] for c in inspect(state_db.engine).get_columns("alerts")}
    assert {"user_name", "src_ip", "severity", "incident_id", "case_id", "disposition"} <= columns


OLD_ROWS = [
    ("r1", "Rule one", "high", "pc1", None, "k1"),
    ("r1", "Rule one", "low", "pc1", None, "k2"),
    ("r1", "Rule one", "bogus", None, None, "k3"),
    ("c1", "Correlation", "critical", None, '{"user":"x"}', "k4"),
]


def test_older_alerts_are_given_severity_source_and_incidents(empty_db: StateDB) -> None:
    config = _config(empty_db)
    command.upgrade(config, "0005")
    with empty_db.engine.begin() as connection:
        for rule_id, title, level, host, group, key in OLD_ROWS:
            connection.execute(text(
                "INSERT INTO alerts (rule_id, rule_title, level, rule_author, rule_references, "
                "tags, host, first_seen, last_seen, count, event_ids, group_key, dedup_key, status, "
                "created_at) VALUES (:r, :t, :l, 'Jane', '[]', '[]', :h, :at, :at, 1, '[\"e\"]', :g, "
                ":k, 'new', :at)"),
                {"r": rule_id, "t": title, "l": level, "h": host, "g": group, "k": key,
                 "at": "2026-01-01 10:00:00"})
    command.upgrade(config, "head")
    with empty_db.session() as session:
        views = {v.dedup_key: v for v in service.list_alerts(session, limit=10).items}
        incidents = {i.id: i for i in service.list_incidents(session, limit=10).items}
    assert [views[k].severity for k in ("k1", "k2", "k3", "k4")] == ["high", "low", "medium", "critical"]
    assert [views[k].source for k in ("k1", "k4")] == ["sigma", "correlation"]
    assert views["k1"].incident_id == views["k2"].incident_id
    assert len(incidents) == 3
    pc1 = incidents[views["k1"].incident_id or 0]
    assert (pc1.title, pc1.alert_count, pc1.severity, pc1.status) == (
        "Rule one on host pc1", 2, "high", "open")
    assert incidents[views["k3"].incident_id or 0].entity_kind == "none"
    with empty_db.session() as session:
        service.acknowledge(session, views["k1"].id, ALICE)


def test_down_and_up_again(empty_db: StateDB) -> None:
    config = _config(empty_db)
    command.upgrade(config, "0006")
    record(empty_db, make(key="a"))
    command.downgrade(config, "0005")
    tables = set(inspect(empty_db.engine).get_table_names())
    assert "incidents" not in tables and "alert_history" not in tables and "alerts" in tables
    assert "severity" not in {c["name"] for c in inspect(empty_db.engine).get_columns("alerts")}
    command.upgrade(config, "head")
    with empty_db.session() as session:
        [view] = service.list_alerts(session).items
    assert view.incident_id is not None and view.dedup_key == "a"
