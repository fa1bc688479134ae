"""``vigil cases``, run as a real process on a temporary data folder."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

from helpers import assert_user_error, ok, run_vigil
from vigil.core.auth import cli_principal
from vigil.core.db import StateDB
from vigil.people import service as people

PASSWORD = "correct horse battery staple"


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    data_dir: Path = tmp_path_factory.mktemp("cases-cli") / "data"
    ok(run_vigil(data_dir, "cases", "list"))  # creates and migrates the state database
    db = StateDB(f"sqlite:///{data_dir / 'state.db'}")
    try:
        people.add_user(db, cli_principal(), "alice", PASSWORD, role="analyst", team="security")
        people.add_user(db, cli_principal(), "oscar", PASSWORD, role="responder", team="operations")
    finally:
        db.dispose()
    return data_dir


def _json_lines(text: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def test_create_with_tasks_for_both_teams_then_work_it(folder: Path) -> None:
    created = ok(run_vigil(folder, "cases", "create", "--title", "Ransom note on FS-2",
                           "--template", "ransomware", "--assignee", "alice", "--assignee", "oscar",
                           "--personal-data", "--aware-at", "2026-03-02T08:00:00Z",
                           "--format", "json"))
    detail = json.loads(created.out)
    ref = detail["ref"]
    assert detail["severity"] == "critical" and len(detail["tasks"]) == 7
    assert any(c["regime"] == "GDPR-33" and c["due_at"].startswith("2026-03-05T08:00")
               for c in detail["clocks"])
    task = ok(run_vigil(folder, "cases", "task", "add", ref, "Image FS-2 memory", "--owner", "oscar",
                        "--due", "2h", "--mandatory", "--format", "json"))
    added = _json_lines(task.out)[0]
    assert added["owner"] == "oscar" and added["team"] == "operations" and added["due (UTC)"]
    ok(run_vigil(folder, "cases", "task", "add", ref, "Hunt the note's hash", "--owner", "alice"))
    done = ok(run_vigil(folder, "cases", "task", "update", ref, str(added["task"]),
                        "--status", "done", "-o", "csv"))
    assert next(iter(csv.DictReader(io.StringIO(done.out))))["status"] == "done"
    tasks = _json_lines(ok(run_vigil(folder, "cases", "task", "list", ref, "-o", "json")).out)
    assert [t["owner"] for t in tasks[-2:]] == ["oscar", "alice"]
    said = ok(run_vigil(folder, "cases", "comment", ref, "@oscar isolate FS-2, thanks"))
    assert "told oscar" in said.out
    moved = ok(run_vigil(folder, "cases", "update", ref, "--stage", "in_progress",
                         "--phase", "eradication", "--unassign", "alice"))
    assert "[in_progress/eradication]" in moved.out and "(oscar)" in moved.out
    shown = ok(run_vigil(folder, "cases", "show", ref))
    assert "Ransom note on FS-2" in shown.out and "Timeline" in shown.out
    assert "GDPR Art. 33" in shown.out
    clocks = _json_lines(ok(run_vigil(folder, "cases", "clock", "list", ref, "-o", "json")).out)
    gdpr = next(c for c in clocks if c["regime"] == "GDPR-33")
    assert_user_error(run_vigil(folder, "cases", "close", ref, "--disposition",
                                "true_positive_with_impact", "--note", "Restored"),
                      "post-incident review")
    stopped = ok(run_vigil(folder, "cases", "clock", "stop", ref, str(gdpr["clock"]),
                           "--outcome", "not_required", "--note", "Only test data on FS-2"))
    assert "not_required" in stopped.out
    fields = {row["field"]: row["value"] for row in csv.DictReader(io.StringIO(
        ok(run_vigil(folder, "cases", "show", ref, "--format", "csv")).out))}
    assert fields["ref"] == ref and fields["stage"] == "in_progress"


def test_list_formats_and_filters(folder: Path) -> None:
    for title, severity in (("Phish to finance", "medium"), ("Odd VPN login", "high")):
        ok(run_vigil(folder, "cases", "create", "--title", title, "--severity", severity,
                     "--assignee", "alice"))
    table = ok(run_vigil(folder, "cases", "list", "--severity", "high", "--severity", "medium"))
    assert "Odd VPN login" in table.out and "Phish to finance" in table.out
    rows = _json_lines(ok(run_vigil(folder, "cases", "list", "--assignee", "alice",
                                    "--sort", "-severity", "--format", "json")).out)
    assert [r["title"] for r in rows[:2]] == ["Odd VPN login", "Phish to finance"]
    found = list(csv.DictReader(io.StringIO(ok(run_vigil(
        folder, "cases", "list", "-q", "vpn", "-o", "csv", "--limit", "1")).out)))
    assert [r["title"] for r in found] == ["Odd VPN login"]
    closed = ok(run_vigil(folder, "cases", "close", found[0]["case"], "--disposition",
                          "false_positive_logic", "--note", "Travel, confirmed"))
    assert "[closed/" in closed.out
    open_only = _json_lines(ok(run_vigil(folder, "cases", "list", "--open", "-o", "json")).out)
    assert "Odd VPN login" not in [r["title"] for r in open_only]
    names = [r["name"] for r in _json_lines(ok(run_vigil(folder, "cases", "templates",
                                                         "-o", "json")).out)]
    assert {"ransomware", "phishing", "account-compromise"} <= set(names)
    assert "clocks due soon" in ok(run_vigil(folder, "cases", "check-clocks")).out


def test_user_errors_are_one_line(folder: Path) -> None:
    assert_user_error(run_vigil(folder, "cases", "show", "CASE-999999"), "no case CASE-999999")
    assert_user_error(run_vigil(folder, "cases", "show", "banana"), "not a case")
    assert_user_error(run_vigil(folder, "cases", "list", "--format", "xml"), "--format")
    assert_user_error(run_vigil(folder, "cases", "list", "--stage", "sideways"), "--stage")
    assert_user_error(run_vigil(folder, "cases", "list", "--sort", "colour"), "cannot sort by")
    assert_user_error(run_vigil(folder, "cases", "create", "--title", "x", "--severity", "huge"),
                      "severity")
    assert_user_error(run_vigil(folder, "cases", "create", "--title", "x", "--template", "nope"),
                      "no case template 'nope'")
    assert_user_error(run_vigil(folder, "cases", "create", "--title", "x", "--assignee", "ghost"),
                      "no user 'ghost'")
    ref = json.loads(ok(run_vigil(folder, "cases", "create", "--title", "t", "-o", "json")).out)["ref"]
    assert_user_error(run_vigil(folder, "cases", "update", ref), "nothing to change")
    assert_user_error(run_vigil(folder, "cases", "update", ref, "--stage", "on_hold"),
                      "cannot move from new to on_hold")
    assert_user_error(run_vigil(folder, "cases", "close", ref, "--disposition", "maybe",
                                "--note", "x"), "--disposition")
    assert_user_error(run_vigil(folder, "cases", "task", "add", ref, "x", "--due", "soonish"),
                      "--due")
    assert_user_error(run_vigil(folder, "cases", "clock", "add", ref), "needs due_at or due_in")
    assert_user_error(run_vigil(folder, "cases", "clock", "pause", ref, "1", "--reason", " "),
                      "reason")
