"""The rule catalog on SQLite and PostgreSQL: import, re-import, list, enable, coverage, and
the filters and correlation rules it keeps taking effect in retro-hunts."""

from __future__ import annotations

import json
import re
import time
import uuid
import zipfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect

from helpers import datasets
from vigil.alerts.models import Alert
from vigil.core.db import Base, StateDB
from vigil.core.errors import InputError, NotFoundError
from vigil.detect import catalog
from vigil.detect import coverage as coverage_layer
from vigil.detect.compiler import compile_rule, rule_meta
from vigil.detect.hunt import hunt_store
from vigil.detect.loader import load
from vigil.detect.models import Rule, RuleDocument
from vigil.events.models import Event, LogSource
from vigil.store.duck import EventStore

IDS = [f"7a1c0de{i}-0000-4000-8000-00000000000{i}" for i in range(10)]


def rule_text(rule_id: str, title: str, *, level: str = "medium", tags: tuple[str, ...] = (),
              value: str = "'\\whoami.exe'", modifier: str = "endswith") -> str:
    tag_lines = "tags:\n" + "".join(f"    - {t}\n" for t in tags) if tags else ""
    return (f"title: {title}\n"
            f"id: {rule_id}\n"
            "status: test\n"
            "author: Vigil tests\n"
            "references:\n"
            "    - https://example.org/whoami\n"
            "logsource:\n"
            "    product: windows\n"
            "    category: process_creation\n"
            "detection:\n"
            "    selection:\n"
            f"        Image|{modifier}: {value}\n"
            "    condition: selection\n"
            "falsepositives:\n"
            "    - Admins\n"
            f"{tag_lines}"
            f"level: {level}\n")


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def rules_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "rules"
    write(folder / "whoami.yml", rule_text(IDS[0], "Whoami Execution", level="low",
                                           tags=("attack.discovery", "attack.t1033")))
    write(folder / "mimikatz.yml", rule_text(IDS[1], "Mimikatz 100% Use", level="critical",
                                             value="'\\mimikatz.exe'",
                                             tags=("attack.t1003.001", "attack.t1033")))
    write(folder / "psexec.yml", rule_text(IDS[2], "PsExec Service", level="high",
                                           value="'\\psexesvc.exe'", tags=("attack.t1569.002",)))
    write(folder / "placeholder.yml", rule_text(IDS[3], "Admin Logon", level="high",
                                                modifier="expand", value="'%admins%'",
                                                tags=("attack.t1078",)))
    write(folder / "broken.yml", "title: broken\n  id: nope\n")
    return folder


TABLES = ("rules", "rule_documents", "alerts")


def test_migration_matches_the_models(state_db: StateDB) -> None:
    assert set(TABLES) <= set(inspect(state_db.engine).get_table_names())
    with state_db.engine.connect() as connection:
        diffs = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    ours = [d for d in diffs if any(_table_of(x) in TABLES for x in _flatten(d))]
    assert ours == []
    indexes = {i["name"] for i in inspect(state_db.engine).get_indexes("alerts")}
    assert {"ix_alerts_rule_id", "ix_alerts_last_seen", "ix_alerts_dedup_key"} <= indexes
    assert {i["name"] for i in inspect(state_db.engine).get_indexes("rule_documents")} == {
        "ix_rule_documents_kind"}
    assert Rule.__tablename__ == "rules" and Alert.__tablename__ == "alerts"
    assert RuleDocument.__tablename__ == "rule_documents"


def _table_of(item: object) -> str | None:
    """The table a piece of an Alembic diff names (a table name, a table, a column, an index)."""
    if isinstance(item, str):
        return item
    table = getattr(item, "table", None)
    return getattr(table, "name", None) or getattr(item, "name", None)


def _flatten(diff: object) -> list[object]:
    if isinstance(diff, list | tuple):
        return [x for item in diff for x in _flatten(item)]
    return [diff]


def test_import_compiles_stores_and_reports(state_db: StateDB, rules_dir: Path) -> None:
    report = catalog.import_rules(state_db, [rules_dir])
    assert (report.files, report.loaded, report.compiled, report.failed) == (5, 4, 3, 1)
    assert (report.new, report.updated, report.unchanged) == (4, 0, 0)
    [problem] = report.problems
    assert (Path(problem.path).name, problem.line) == ("broken.yml", 2)
    [failure] = report.failures
    assert failure.id == IDS[3]
    assert failure.line == 12  # the |expand line
    assert "%admins%" in failure.reason
    assert report.reasons() == {catalog.reason_group(failure.reason): 1}
    assert "%…%" in catalog.reason_group(failure.reason)

    failed = catalog.get_rule(state_db, IDS[3])
    assert failed.sql is None and failed.compile_error == failure.reason and not failed.compiled
    detail = catalog.get_rule(state_db, IDS[1])
    assert detail.title == "Mimikatz 100% Use"
    assert detail.author == "Vigil tests"
    assert detail.references == ("https://example.org/whoami",)
    assert detail.falsepositives == ("Admins",)
    assert detail.tags == ("attack.t1003.001", "attack.t1033")
    assert str(detail.logsource) == "windows/process_creation/-"
    assert detail.sql and "mimikatz.exe" in detail.sql
    assert detail.yaml == (rules_dir / "mimikatz.yml").read_text()
    assert detail.enabled and detail.compiled
    assert detail.imported_at.tzinfo is not None


def test_reimport_is_idempotent_and_keeps_enabled(state_db: StateDB, rules_dir: Path) -> None:
    catalog.import_rules(state_db, [rules_dir])
    catalog.set_enabled(state_db, IDS[0], False)
    again = catalog.import_rules(state_db, [rules_dir])
    assert (again.new, again.updated, again.unchanged) == (0, 0, 4)
    write(rules_dir / "whoami.yml", rule_text(IDS[0], "Whoami Execution (v2)", level="low"))
    write(rules_dir / "new.yml", rule_text(IDS[4], "Brand New"))
    third = catalog.import_rules(state_db, [rules_dir])
    assert (third.new, third.updated, third.unchanged) == (1, 1, 3)
    changed = catalog.get_rule(state_db, IDS[0])
    assert changed.title == "Whoami Execution (v2)" and not changed.enabled
    assert changed.updated_at >= changed.imported_at
    assert catalog.get_rule(state_db, IDS[4]).enabled


def test_list_filters(state_db: StateDB, rules_dir: Path) -> None:
    catalog.import_rules(state_db, [rules_dir])
    every = catalog.list_rules(state_db)
    assert [v.level for v in every] == ["critical", "high", "high", "low"]
    assert [v.title for v in catalog.list_rules(state_db, level="HIGH")] == ["Admin Logon",
                                                                             "PsExec Service"]
    assert [v.id for v in catalog.list_rules(state_db, search="MIMIKATZ")] == [IDS[1]]
    assert [v.id for v in catalog.list_rules(state_db, search="100%")] == [IDS[1]]
    assert catalog.list_rules(state_db, search="1_0") == []
    assert {v.id for v in catalog.list_rules(state_db, search="t1033")} == {IDS[0], IDS[1]}
    catalog.set_enabled(state_db, [IDS[2]], False)
    assert [v.id for v in catalog.list_rules(state_db, enabled=False)] == [IDS[2]]
    assert len(catalog.list_rules(state_db, enabled=True)) == 3
    with pytest.raises(InputError, match="unknown level"):
        catalog.list_rules(state_db, level="severe")


def test_get_rule_by_prefix(state_db: StateDB, rules_dir: Path) -> None:
    catalog.import_rules(state_db, [rules_dir])
    assert catalog.get_rule(state_db, "7A1C0DE2").id == IDS[2]
    assert catalog.get_rule(state_db, IDS[2].upper()).id == IDS[2]
    with pytest.raises(InputError, match="several rules"):
        catalog.get_rule(state_db, "7a1c0de")
    with pytest.raises(NotFoundError):
        catalog.get_rule(state_db, "ffff")
    with pytest.raises(InputError):
        catalog.get_rule(state_db, "  ")


def test_enable_and_disable_by_glob(state_db: StateDB, rules_dir: Path) -> None:
    catalog.import_rules(state_db, [rules_dir])
    result = catalog.set_enabled(state_db, ["*mimikatz*", "ps*"], False)
    assert result.matched == (IDS[1], IDS[2]) and result.changed == 2
    assert catalog.set_enabled(state_db, "*MIMIKATZ*", False).changed == 0
    assert {v.id for v in catalog.list_rules(state_db, enabled=False)} == {IDS[1], IDS[2]}
    assert catalog.set_enabled(state_db, "7a1c0de*", False).changed == 2
    with pytest.raises(NotFoundError, match="no rule id or title matches"):
        catalog.set_enabled(state_db, [IDS[0][:12], "*nothing*"], True)
    assert catalog.list_rules(state_db, enabled=True) == []  # all or nothing
    assert catalog.set_enabled(state_db, "*", True).changed == 4


def test_enabled_compiled_is_what_the_compiler_gives(state_db: StateDB, rules_dir: Path) -> None:
    catalog.import_rules(state_db, [rules_dir])
    catalog.set_enabled(state_db, IDS[2], False)
    rebuilt = catalog.enabled_compiled(state_db)
    assert [r.meta.id for r in rebuilt] == [IDS[0], IDS[1]]  # disabled and failed ones left out
    for item in load([rules_dir]).rules:
        if item.id in (IDS[0], IDS[1]):
            fresh = compile_rule(item.rule, rule_meta(item.rule, item.path))
            assert fresh in rebuilt


def test_coverage_and_navigator_layer(state_db: StateDB, rules_dir: Path) -> None:
    catalog.import_rules(state_db, [rules_dir])
    catalog.set_enabled(state_db, IDS[2], False)
    covered = catalog.coverage(state_db)
    assert covered == {"T1003.001": [IDS[1]], "T1033": [IDS[0], IDS[1]]}  # T1078 failed to compile
    names = catalog.titles(state_db, [i for ids in covered.values() for i in ids])
    layer = json.loads(json.dumps(coverage_layer.navigator_layer(covered, names)))
    assert layer["versions"]["layer"] == "4.5"
    assert layer["domain"] == "enterprise-attack"
    assert layer["name"]
    techniques = {t["techniqueID"]: t for t in layer["techniques"]}
    assert set(techniques) == {"T1003.001", "T1033"}
    assert all(re.fullmatch(r"T\d{4}(\.\d{3})?", t) for t in techniques)
    assert techniques["T1033"]["score"] == 2
    assert "Whoami Execution" in techniques["T1033"]["comment"]
    assert "Mimikatz 100% Use" in techniques["T1033"]["comment"]
    assert layer["gradient"]["maxValue"] > layer["gradient"]["minValue"]
    empty = coverage_layer.navigator_layer({})
    assert empty["techniques"] == [] and empty["gradient"] == {
        "colors": ["#dbeafe", "#1e40af"], "minValue": 0, "maxValue": 1}


@pytest.mark.slow
def test_sigmahq_corpus_import(state_db: StateDB) -> None:
    corpus = str(datasets() / "sigma" / "rules*")
    started = time.perf_counter()
    report = catalog.import_rules(state_db, [corpus])
    reasons = report.reasons().most_common()
    print(f"\nSigmaHQ on {state_db.engine.dialect.name}: {report.files} files, "
          f"{report.loaded} loaded, {report.compiled} compiled, {report.failed} failed, "
          f"{len(report.problems)} problems, {report.seconds:.1f} s")
    for reason, count in reasons:
        print(f"  {count:5d}  {reason}")
    assert report.loaded == report.compiled + report.failed
    assert report.loaded >= 3700 and report.problems == []
    assert report.compiled >= 0.98 * report.loaded
    assert report.new == report.loaded
    assert len(catalog.enabled_compiled(state_db)) == report.compiled
    again = catalog.import_rules(state_db, [corpus])
    assert (again.new, again.updated, again.unchanged) == (0, 0, report.loaded)
    covered = catalog.coverage(state_db)
    assert len(covered) > 200
    json.dumps(coverage_layer.navigator_layer(covered, catalog.titles(state_db)))
    print(f"  {len(covered)} techniques covered; both imports in {time.perf_counter() - started:.1f} s")


# --- filters and correlation rules -----------------------------------------------------------


FAILED = "53ba33fd-3a50-4468-a5ef-c583635cfa92"
FILTER = "6b1e4d2a-8f3c-4e1b-9a0d-2c3b4a5d6e7f"
BAD_FILTER = "6b1e4d2a-8f3c-4e1b-9a0d-2c3b4a5d6e80"
CORRELATION = "0e95725d-7320-415d-80f7-004da920fc11"
LOST = "0e95725d-7320-415d-80f7-004da920fc12"
T0 = datetime(2024, 5, 1, 10, 0, tzinfo=UTC)
SECURITY = LogSource("windows", None, "security")

BASE_RULE = f"""title: Failed logon
id: {FAILED}
name: failed_login
status: test
author: Vigil tests
logsource:
    product: windows
    service: security
detection:
    selection:
        EventID: 4625
    condition: selection
level: low
"""
TUNING = f"""title: Ignore the scanner account
id: {FILTER}
author: Vigil tests
logsource:
    product: windows
    service: security
filter:
    rules:
        - failed_login
    selection:
        User: scanner
    condition: not selection
"""
BROKEN_FILTER = f"""title: Unresolved placeholder
id: {BAD_FILTER}
logsource:
    product: windows
filter:
    rules: any
    selection:
        User|expand: '%admins%'
    condition: not selection
"""
CORRELATIONS = f"""title: Many failed logons
id: {CORRELATION}
name: many_failed
status: test
author: Vigil tests
level: high
correlation:
    type: event_count
    rules:
        - failed_login
    group-by:
        - User
    timespan: 5m
    generate: true
    condition:
        gte: 3
---
title: Lost correlation
id: {LOST}
correlation:
    type: event_count
    rules:
        - no_such_rule
    timespan: 5m
    condition:
        gte: 2
"""


@pytest.fixture
def tuned_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "tuned"
    write(folder / "failed.yml", BASE_RULE)
    write(folder / "filters" / "scanner.yml", TUNING)
    write(folder / "filters" / "broken.yml", BROKEN_FILTER)
    write(folder / "correlations.yml", CORRELATIONS)
    return folder


def logon(minutes: float, user: str) -> Event:
    values: dict[str, Any] = {"EventID": 4625, "User": user}
    return Event(uuid.uuid4().hex, T0 + timedelta(minutes=minutes), T0, "dc1", SECURITY, "json",
                 values, json.dumps(values))


def test_import_stores_filters_and_correlations(state_db: StateDB, tuned_dir: Path) -> None:
    report = catalog.import_rules(state_db, [tuned_dir])
    assert (report.loaded, report.compiled, report.filters, report.correlations) == (1, 1, 2, 2)
    assert report.documents == {"new": 4, "updated": 0, "unchanged": 0}
    problems = {(Path(p.path).name, p.reason) for p in report.problems}
    assert ("correlations.yml", "correlation 'Lost correlation' refers to unknown rule "
            "'no_such_rule'") in problems
    [placeholder] = [p for p in report.problems if Path(p.path).name == "broken.yml"]
    assert "%admins%" in placeholder.reason and placeholder.line == 1
    assert len(report.problems) == 2

    views = {v.id: v for v in catalog.list_rules(state_db)}
    assert {v.kind for v in views.values()} == {"rule", "filter", "correlation"}
    assert not views[BAD_FILTER].compiled and "%admins%" in (views[BAD_FILTER].compile_error or "")
    assert views[FILTER].compiled and str(views[FILTER].logsource) == "windows/-/security"
    assert [v.id for v in catalog.list_rules(state_db, kind="correlation")] == [CORRELATION, LOST]
    assert [v.id for v in catalog.list_rules(state_db, kind="rule")] == [FAILED]
    assert [v.id for v in catalog.list_rules(state_db, search="many_failed")] == [CORRELATION]
    with pytest.raises(InputError, match="unknown kind"):
        catalog.list_rules(state_db, kind="macro")
    detail = catalog.get_rule(state_db, CORRELATION.upper())
    assert detail.kind == "correlation" and detail.sql is None and detail.author == "Vigil tests"
    assert detail.yaml == CORRELATIONS.split("---\n", maxsplit=1)[0]  # its own document, as written
    assert catalog.get_rule(state_db, FILTER).yaml == TUNING


def test_reimport_of_documents_keeps_enabled(state_db: StateDB, tuned_dir: Path) -> None:
    catalog.import_rules(state_db, [tuned_dir])
    assert catalog.set_enabled(state_db, ["*scanner*", LOST], False).changed == 2
    again = catalog.import_rules(state_db, [tuned_dir])
    assert again.documents == {"new": 0, "updated": 0, "unchanged": 4}
    write(tuned_dir / "filters" / "scanner.yml", TUNING.replace("scanner account", "scanners"))
    third = catalog.import_rules(state_db, [tuned_dir])
    assert third.documents == {"new": 0, "updated": 1, "unchanged": 3}
    changed = catalog.get_rule(state_db, FILTER)
    assert changed.title == "Ignore the scanners" and not changed.enabled
    assert {v.id for v in catalog.list_rules(state_db, enabled=False)} == {FILTER, LOST}


def test_retro_hunt_applies_filters_and_finds_correlations(state_db: StateDB,
                                                           tuned_dir: Path) -> None:
    catalog.import_rules(state_db, [tuned_dir])
    store = EventStore(None)
    store.write([logon(0, "bob"), logon(1, "bob"), logon(2, "bob"),
                 logon(0, "scanner"), logon(1, "scanner"), logon(2, "scanner"),
                 logon(0, "alice"), logon(9, "alice"), logon(10, "alice")])
    ruleset = catalog.ruleset(state_db)
    assert [c.title for c in ruleset.correlations] == ["Many failed logons"]
    assert any("no_such_rule" in p for p in ruleset.problems)
    assert ruleset.names == {FAILED: "failed_login"}
    [rule] = catalog.enabled_compiled(state_db)
    assert rule == ruleset.rules[0] and "scanner" in rule.sql  # filters take effect everywhere
    result = hunt_store(store, ruleset.rules, ruleset=ruleset)
    users = sorted(d.fields["User"] for d in result.detections)
    assert users == ["alice"] * 3 + ["bob"] * 3  # the filtered account is gone
    [hit] = result.correlations
    assert (hit.rule.id, hit.group, hit.count) == (CORRELATION, {"User": "bob"}, 3)

    catalog.set_enabled(state_db, FILTER, False)
    ruleset = catalog.ruleset(state_db)
    result = hunt_store(store, ruleset.rules, ruleset=ruleset)
    assert sorted(h.group["User"] for h in result.correlations) == ["bob", "scanner"]
    catalog.set_enabled(state_db, CORRELATION, False)
    assert catalog.ruleset(state_db).correlations == []
    catalog.set_enabled(state_db, CORRELATION, True)
    catalog.set_enabled(state_db, FAILED, False)  # a correlation of a disabled rule is unusable
    ruleset = catalog.ruleset(state_db)
    assert ruleset.rules == [] and ruleset.correlations == []
    assert any("failed_login" in p for p in ruleset.problems)
    store.close()


def test_correlations_silence_their_rules_unless_generate(state_db: StateDB,
                                                          tuned_dir: Path) -> None:
    write(tuned_dir / "correlations.yml", CORRELATIONS.replace("    generate: true\n", ""))
    catalog.import_rules(state_db, [tuned_dir])
    store = EventStore(None)
    store.write([logon(0, "bob"), logon(1, "bob"), logon(2, "bob")])
    ruleset = catalog.ruleset(state_db)
    result = hunt_store(store, ruleset.rules, ruleset=ruleset)
    assert result.detections == [] and len(result.correlations) == 1
    store.close()


def test_documents_from_a_zip_keep_their_text(state_db: StateDB, tmp_path: Path) -> None:
    archive = tmp_path / "pack.zip"
    with zipfile.ZipFile(archive, "w") as opened:
        opened.writestr("rules/failed.yml", BASE_RULE)
        opened.writestr("rules/both.yml", TUNING + "---\n" + CORRELATIONS)
    report = catalog.import_rules(state_db, [archive])
    assert (report.filters, report.correlations) == (1, 2)
    assert catalog.get_rule(state_db, FILTER).yaml == TUNING
    assert catalog.get_rule(state_db, FILTER).path == f"{archive}!rules/both.yml"
    assert catalog.get_rule(state_db, LOST).yaml == CORRELATIONS.split("---\n")[1]
    assert len(catalog.ruleset(state_db).correlations) == 1
