"""``vigil alerts`` and ``vigil incidents`` as real processes on a temporary data folder."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from helpers import Run, assert_user_error, ok, run_vigil
from vigil.alerts import AlertInput, Source
from vigil.alerts import service as alerts
from vigil.app import Vigil
from vigil.audit.service import listing
from vigil.core.auth import Role, cli_principal
from vigil.core.config import load_settings
from vigil.people import service as people

T0 = datetime(2026, 5, 4, 12, 0, tzinfo=UTC)


def vigil(data_dir: Path, *args: str) -> Run:
    return run_vigil(data_dir, *args)


def _json_lines(run: Run) -> list[dict[str, object]]:
    return [json.loads(line) for line in run.out.splitlines() if line.strip()]


@pytest.fixture
def data(tmp_path: Path) -> Path:
    """Five alerts of one rule on two hosts (two incidents), one critical alert of another rule."""
    folder = tmp_path / "data"
    instance = Vigil(load_settings(folder))
    try:
        inputs = [AlertInput(source=Source.SIGMA, rule_id="whoami", rule_title="Whoami Execution",
                             dedup_key=f"k{i}", first_seen=T0 + timedelta(minutes=i),
                             last_seen=T0 + timedelta(minutes=i), level="low", rule_author="Jane Doe",
                             rule_references=("https://example.org/whoami",), host=f"pc{i % 2}",
                             user="bob", event_ids=(f"e{i}",), count=1) for i in range(5)]
        inputs.append(AlertInput(source=Source.CORRELATION, rule_id="brute", rule_title="Brute Force",
                                 dedup_key="b", first_seen=T0, last_seen=T0 + timedelta(minutes=9),
                                 level="critical", rule_author="Sam Roe", src_ip="10.9.9.9",
                                 event_ids=("b1", "b2"), count=2))
        with instance.db.session() as session:
            alerts.record(session, inputs)
        people.add_user(instance.db, cli_principal(), "carol", "correct horse battery",
                        role=Role.RESPONDER)
    finally:
        instance.close()
    return folder


def test_bare_alerts_lists_newest_first_with_the_rule_author(data: Path) -> None:
    out = ok(vigil(data, "alerts")).out
    assert "Jane Doe" in out and "Sam Roe" in out and "Whoami Execution" in out
    rows = _json_lines(ok(vigil(data, "alerts", "list", "--format", "json")))
    assert [r["id"] for r in rows] == [6, 5, 4, 3, 2, 1]
    assert rows[0]["rule_author"] == "Sam Roe" and rows[0]["severity"] == "critical"


def test_list_filters_formats_and_pages(data: Path) -> None:
    rows = _json_lines(ok(vigil(data, "alerts", "list", "--host", "pc1", "-o", "json")))
    assert [r["id"] for r in rows] == [4, 2]
    text = ok(vigil(data, "alerts", "list", "--severity", "critical", "--format", "csv")).out
    [row] = list(csv.DictReader(io.StringIO(text)))
    assert (row["rule_id"], row["src_ip"], row["event_ids"]) == ("brute", "10.9.9.9", "b1, b2")
    first = vigil(data, "alerts", "list", "-n", "4", "--sort", "id", "--asc", "-o", "json")
    assert [r["id"] for r in _json_lines(ok(first))] == [1, 2, 3, 4]
    cursor = first.err.split("--cursor", 1)[1].split()[0]
    rest = ok(vigil(data, "alerts", "list", "-n", "4", "--sort", "id", "--asc", "--cursor", cursor,
                    "-o", "json"))
    assert [r["id"] for r in _json_lines(rest)] == [5, 6] and "--cursor" not in rest.err
    since = (T0 + timedelta(minutes=3)).isoformat()
    rows = _json_lines(ok(vigil(data, "alerts", "list", "--since", since, "--rule", "whoami",
                                "-o", "json")))
    assert [r["id"] for r in rows] == [5, 4]


@pytest.mark.parametrize(("args", "fragment"), [
    (("alerts", "list", "--format", "xml"), "--format"),
    (("alerts", "list", "--status", "open"), "--status"),
    (("alerts", "list", "--severity", "severe"), "unknown severity"),
    (("alerts", "list", "--sort", "name"), "--sort"),
    (("alerts", "list", "--since", "yesterday-ish"), "--since"),
    (("alerts", "list", "--cursor", "nope"), "cursor"),
    (("alerts", "list", "-n", "0"), "limit"),
    (("alerts", "list", "--assignee", "nobody"), "nobody"),
    (("alerts", "show", "99"), "no alert with id 99"),
    (("alerts", "ack", "99"), "no alert with id 99"),
    (("alerts", "close", "1", "-d", "nope"), "unknown disposition"),
    (("alerts", "assign", "1", "--to", "zed"), "zed"),
    (("incidents", "show", "99"), "no incident with id 99"),
    (("incidents", "merge", "1", "1"), "itself"),
    (("incidents", "list", "--entity-kind", "planet"), "--entity-kind"),
])
def test_user_mistakes_are_one_line(data: Path, args: tuple[str, ...], fragment: str) -> None:
    assert_user_error(vigil(data, *args), fragment)


def test_show_in_every_format(data: Path) -> None:
    table = ok(vigil(data, "alerts", "show", "1")).out
    for text in ("Jane Doe", "https://example.org/whoami", "history", "system:vigil", "related alerts"):
        assert text in table
    body = json.loads(ok(vigil(data, "alerts", "show", "1", "-o", "json")).out)
    assert body["rule_author"] == "Jane Doe" and body["event_ids"] == ["e0"]
    assert [h["new"] for h in body["history"]] == ["new"]
    assert {r["alert"]["id"] for r in body["related"]} == {2, 4}  # user bob on the other host
    assert "rule_author,Jane Doe" in ok(vigil(data, "alerts", "show", "1", "-o", "csv")).out


def test_ack_close_reopen_and_the_audit_trail(data: Path) -> None:
    rows = _json_lines(ok(vigil(data, "alerts", "ack", "1", "-o", "json")))
    assert rows[0]["status"] == "acknowledged"
    assert_user_error(vigil(data, "alerts", "ack", "1"), "only a new alert")
    closed = _json_lines(ok(vigil(data, "alerts", "close", "1", "-d", "false_positive_logic",
                                  "-m", "noisy", "-o", "json")))
    assert (closed[0]["disposition"], closed[0]["closing_note"]) == ("false_positive_logic", "noisy")
    assert_user_error(vigil(data, "alerts", "close", "1", "-d", "duplicate"), "already closed")
    assert _json_lines(ok(vigil(data, "alerts", "reopen", "1", "-o", "json")))[0]["status"] == \
        "acknowledged"
    instance = Vigil(load_settings(data))
    try:
        trail = listing(instance.db, object_type="alert", object_id="1")
    finally:
        instance.close()
    assert [e.action for e in reversed(trail)] == ["create", "acknowledge", "close", "reopen"]
    assert all(e.actor.startswith("system:cli:") for e in trail[:3])


def test_many_ids_report_the_skipped_ones(data: Path) -> None:
    ok(vigil(data, "alerts", "ack", "2"))
    run = vigil(data, "alerts", "ack", "2", "3", "77", "-o", "json")
    assert run.code == 1 and "Traceback" not in run.err
    assert [r["id"] for r in _json_lines(run)] == [3]
    assert "skipped 2:" in run.err and "skipped 77: no alert with id 77" in run.err
    done = ok(vigil(data, "alerts", "close", "3", "4", "-d", "duplicate", "-o", "json"))
    assert {r["status"] for r in _json_lines(done)} == {"closed"}


def test_assign(data: Path) -> None:
    rows = _json_lines(ok(vigil(data, "alerts", "assign", "5", "--to", "carol", "-o", "json")))
    carol = rows[0]["assignee"]
    assert isinstance(carol, int)
    listed = _json_lines(ok(vigil(data, "alerts", "list", "--assignee", "carol", "-o", "json")))
    assert [r["id"] for r in listed] == [5]
    rows = _json_lines(ok(vigil(data, "alerts", "assign", "5", "--to", "none", "-o", "json")))
    assert rows[0]["assignee"] is None


def test_incidents_list_show_merge_split(data: Path) -> None:
    rows = _json_lines(ok(vigil(data, "incidents", "list", "-o", "json")))
    assert {(r["entity_kind"], r["entity_value"], r["alert_count"]) for r in rows} == {
        ("host", "pc0", 3), ("host", "pc1", 2), ("src_ip", "10.9.9.9", 1)}
    by_host = {r["entity_value"]: r["id"] for r in rows}
    table = ok(vigil(data, "incidents", "show", str(by_host["pc0"]))).out
    assert "Whoami Execution on host pc0" in table and "3 of 3 alerts" in table
    body = json.loads(ok(vigil(data, "incidents", "show", str(by_host["pc0"]), "-o", "json")).out)
    assert sorted(a["id"] for a in body["alerts"]) == [1, 3, 5]
    merged = _json_lines(ok(vigil(data, "incidents", "merge", str(by_host["pc0"]), str(by_host["pc1"]),
                                  "-o", "json")))
    assert merged[0]["alert_count"] == 5
    split = _json_lines(ok(vigil(data, "incidents", "split", str(by_host["pc0"]), "2", "4",
                                 "--title", "Second host", "-o", "json")))
    assert (split[0]["title"], split[0]["alert_count"]) == ("Second host", 2)
    closed = _json_lines(ok(vigil(data, "incidents", "list", "--status", "closed", "-o", "json")))
    assert [r["merged_into"] for r in closed] == [by_host["pc0"]]
    assert_user_error(vigil(data, "incidents", "split", str(by_host["pc0"]), "6"), "not in incident")
