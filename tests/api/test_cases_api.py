"""The cases API over a real connection to a real ``vigil serve`` process.

Every route is called without credentials (401), by a role that lacks its permission (403)
and by the roles that hold it; bad input is a 400 (never a 500), a refused transition a 409.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from helpers import create_token, free_port, server
from vigil.alerts import AlertInput, Source
from vigil.alerts import service as alerts
from vigil.core.auth import Role, cli_principal
from vigil.core.db import StateDB
from vigil.core.timeutil import utcnow
from vigil.people import service as people

PASSWORD = "correct horse battery staple"
ROLES = [Role.ADMIN, Role.ANALYST, Role.RESPONDER, Role.AUDITOR]
WRITERS = ["admin", "analyst", "responder"]
SHA = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"


@dataclass
class Api:
    base: str
    data_dir: Path
    tokens: dict[str, str]
    client: httpx.Client

    def call(self, method: str, path: str, who: str | None = "analyst",
             **kwargs: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.tokens[who]}"} if who else {}
        return self.client.request(method, path, headers=headers, **kwargs)

    def ok(self, method: str, path: str, who: str = "analyst", **kwargs: Any) -> Any:
        answer = self.call(method, path, who, **kwargs)
        assert answer.status_code in (200, 201), f"{method} {path}: {answer.status_code} {answer.text}"
        return answer.json()

    def new_case(self, **fields: Any) -> dict[str, Any]:
        body: dict[str, Any] = self.ok("POST", "/api/v1/cases", json={"title": "API case", **fields})
        return body


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    data_dir: Path = tmp_path_factory.mktemp("cases-api") / "data"
    tokens = {"reader": create_token(data_dir, "read", name="dashboard"),
              "ingest": create_token(data_dir, "ingest", name="shipper")}
    db = StateDB(f"sqlite:///{data_dir / 'state.db'}")
    try:
        for role in ROLES:
            team = {Role.ANALYST: "security", Role.RESPONDER: "operations"}.get(role)
            people.add_user(db, cli_principal(), role.value, PASSWORD, role=role, team=team)
    finally:
        db.dispose()
    port = free_port()
    with server(data_dir, port, free_port()), httpx.Client(base_url=f"http://127.0.0.1:{port}",
                                                          timeout=30) as client:
        for role in ROLES:
            answer = client.post("/api/v1/auth/login",
                                 json={"username": role.value, "password": PASSWORD})
            assert answer.status_code == 200, answer.text
            tokens[role.value] = answer.json()["token"]
        client.cookies.clear()  # every call names its caller (or none) explicitly
        yield Api(f"http://127.0.0.1:{port}", data_dir, tokens, client)


def _alerts(api: Api, count: int) -> list[int]:
    now = utcnow()
    db = StateDB(f"sqlite:///{api.data_dir / 'state.db'}")
    try:
        with db.session() as session:
            result = alerts.record(session, [AlertInput(
                source=Source.SIGMA, rule_id="webshell", rule_title="Web shell request",
                dedup_key=f"api-{now.timestamp()}-{i}", first_seen=now - timedelta(hours=1),
                last_seen=now, level="high", host="web-1", count=1) for i in range(count)])
    finally:
        db.dispose()
    return list(result.created)


def _routes(case_id: int, task_id: int, observable_id: int, evidence_id: int,
            clock_id: int) -> list[tuple[str, str, dict[str, Any] | None, int]]:
    """Every route, with a body, and the status a writer gets (in an order that works)."""
    c = f"/api/v1/cases/{case_id}"
    reads = ["/api/v1/cases", c, f"{c}/events", "/api/v1/case-templates", f"{c}/tasks",
             f"{c}/comments", f"{c}/timeline", f"{c}/observables", f"{c}/evidence",
             f"{c}/evidence/{evidence_id}", f"{c}/clocks", f"{c}/review"]
    routes: list[tuple[str, str, dict[str, Any] | None, int]] = [
        ("GET", path, None, 200) for path in reads]
    routes += [
        ("POST", "/api/v1/cases", {"title": "perm check"}, 201),
        ("PATCH", c, {"description": "checked"}, 200),
        ("POST", f"{c}/tasks", {"title": "perm task"}, 201),
        ("PATCH", f"{c}/tasks/{task_id}", {"status": "in_progress"}, 200),
        ("POST", f"{c}/comments", {"body": "perm comment"}, 201),
        ("POST", f"{c}/timeline", {"occurred_at": "2026-03-01T10:00:00Z", "title": "perm"}, 201),
        ("POST", f"{c}/observables", {"type": "host", "value": "web-1"}, 201),
        ("POST", f"{c}/observables/{observable_id}/links",
         {"links": [{"kind": "event", "ref": "e1"}]}, 200),
        ("POST", f"{c}/evidence", {"name": "perm.bin", "sha256": SHA}, 201),
        ("POST", f"{c}/evidence/{evidence_id}/custody", {"action": "accessed", "holder": "admin"},
         201),
        ("POST", f"{c}/clocks", {"kind": "custom", "due_in": "2d"}, 201),
        ("POST", f"{c}/clocks/{clock_id}/start",
         {"trigger_at": "2026-03-01T00:00:00Z", "reason": "perm"}, 200),
        ("POST", f"{c}/clocks/{clock_id}/pause", {"reason": "perm"}, 200),
        ("POST", f"{c}/clocks/{clock_id}/resume", None, 200),
        ("PUT", f"{c}/review", {"summary": "perm"}, 200),
        ("POST", f"{c}/review/actions", {"title": "perm action", "owner": "responder"}, 201),
        ("POST", f"{c}/alerts", {"alert_ids": []}, 400),
        ("DELETE", f"{c}/alerts/1", None, 404),
        ("POST", f"{c}/review/complete", None, 409),
        ("POST", f"{c}/clocks/{clock_id}/stop", {"outcome": "met"}, 200),
        ("POST", f"{c}/close", {"disposition": "duplicate", "closing_note": "perm"}, 200),
    ]
    return routes


def test_every_route_checks_its_permission(api: Api) -> None:
    case = api.new_case(tasks=[{"title": "t"}])
    c = f"/api/v1/cases/{case['id']}"
    observable = api.ok("POST", f"{c}/observables", json={"type": "ip", "value": "10.0.0.1"})
    evidence = api.ok("POST", f"{c}/evidence", json={"name": "x", "sha256": SHA})
    clock = api.ok("POST", f"{c}/clocks", json={"kind": "custom", "due_in": "1d"})
    routes = _routes(case["id"], case["tasks"][0]["id"], observable["id"], evidence["id"], clock["id"])
    for method, path, body, _status in routes:
        kwargs = {"json": body} if body is not None else {}
        assert api.call(method, path, None, **kwargs).status_code == 401, (method, path)
        assert api.call(method, path, "ingest", **kwargs).status_code == 403, (method, path)
        readers = ("auditor", "reader") if method == "GET" else ()
        for who in readers:
            assert api.call(method, path, who).status_code == 200, (method, path, who)
        if method != "GET":
            for who in ("auditor", "reader"):
                assert api.call(method, path, who, **kwargs).status_code == 403, (method, path, who)
    for index, (method, path, body, status) in enumerate(routes):
        who = WRITERS[index % len(WRITERS)]
        answer = api.call(method, path, who, **({"json": body} if body is not None else {}))
        assert answer.status_code == status, (method, path, who, answer.status_code, answer.text)
    actors = {e["actor"] for e in api.ok("GET", f"{c}/events")}
    assert actors >= {"user:analyst", "user:admin"} or actors >= {"user:analyst", "user:responder"}


def test_create_mid_investigation_and_work_it(api: Api) -> None:
    case = api.new_case(title="Ransom note on FS-2", template="ransomware",
                        assignees=["analyst", "responder"], personal_data=True,
                        aware_at="2026-03-02T08:00:00Z",
                        tasks=[{"title": "Check the file server's shadow copies", "owner": "responder",
                                "due_in": "2h"},
                               {"title": "Hunt the ransom note hash", "owner": "analyst"}])
    assert case["ref"] == f"CASE-{case['id']}" and case["severity"] == "critical"
    assert case["phase"] == "containment" and case["template"] == "ransomware"
    owners = {t["title"]: (t["owner_name"], t["team"]) for t in case["tasks"]}
    assert owners["Check the file server's shadow copies"] == ("responder", "operations")
    assert owners["Hunt the ransom note hash"] == ("analyst", "security")
    gdpr = next(c for c in case["clocks"] if c["regime"] == "GDPR-33")
    assert gdpr["due_at"].startswith("2026-03-05T08:00:00")
    c = f"/api/v1/cases/{case['id']}"
    moved = api.ok("PATCH", c, json={"stage": "in_progress", "version": case["version"]})
    assert moved["stage"] == "in_progress" and moved["acknowledged_at"]
    stale = api.call("PATCH", c, json={"title": "stale", "version": case["version"]})
    assert stale.status_code == 409 and "changed since version" in stale.json()["detail"]
    refused = api.call("PATCH", c, json={"stage": "new"})
    assert refused.status_code == 409 and "cannot move from in_progress to new" in refused.json()["detail"]
    comment = api.ok("POST", f"{c}/comments", json={"body": "@responder isolate FS-2 please"})
    assert comment["mentions"] == ["responder"]
    review = api.ok("PUT", f"{c}/review", json={
        "what_happened": "Phish → macro → ransomware", "root_cause": "Macros enabled",
        "went_well": "Backups were offline", "went_badly": "Slow isolation"})
    assert review["status"] == "draft"
    assert api.ok("POST", f"{c}/review/complete", who="responder")["status"] == "completed"
    close = api.call("POST", f"{c}/close", json={"disposition": "true_positive_with_impact",
                                                 "closing_note": "Restored"})
    assert close.status_code == 409 and "mandatory tasks still open" in close.json()["detail"]
    detail = api.ok("GET", c)
    assert detail["review"]["status"] == "completed"
    assert [i["kind"] for i in detail["timeline"]].count("change") >= 3
    assert {e["field"] for e in api.ok("GET", f"{c}/events")} >= {"stage", "phase", "assignee"}


def test_bad_input_is_400_or_404_never_500(api: Api) -> None:
    case = api.new_case()
    c = f"/api/v1/cases/{case['id']}"
    bad: list[tuple[str, str, Any, int]] = [
        ("POST", "/api/v1/cases", {}, 400),
        ("POST", "/api/v1/cases", {"title": "x", "colour": "red"}, 400),
        ("POST", "/api/v1/cases", {"title": "x", "severity": "apocalyptic"}, 400),
        ("POST", "/api/v1/cases", {"title": "x", "template": "nope"}, 400),
        ("POST", "/api/v1/cases", {"title": "x", "assignees": ["ghost"]}, 400),
        ("POST", "/api/v1/cases", {"title": "x", "alert_ids": [2**40]}, 400),
        ("POST", "/api/v1/cases", {"title": "x", "alert_ids": [99999]}, 400),
        ("POST", "/api/v1/cases", {"title": "nul \x00 byte"}, 400),
        ("POST", "/api/v1/cases", {"title": "x", "aware_at": "9999-12-31T23:59:59Z"}, 400),
        ("POST", "/api/v1/cases", {"title": "x", "tasks": [{"title": "t", "due_in": "99999999999w"}]}, 400),
        ("POST", "/api/v1/cases", [1, 2], 400),
        ("GET", "/api/v1/cases/0", None, 400),
        ("GET", f"/api/v1/cases/{2**40}", None, 400),
        ("GET", "/api/v1/cases/abc", None, 400),
        ("GET", "/api/v1/cases/987654", None, 404),
        ("PATCH", "/api/v1/cases/987654", {"title": "x"}, 404),
        ("PATCH", c, {"stage": "sideways"}, 400),
        ("PATCH", c, {"title": None}, 400),
        ("PATCH", c, {"version": 2**40}, 400),
        ("POST", f"{c}/tasks/1/nothing", {}, 404),
        ("PATCH", f"{c}/tasks/999999", {"status": "done"}, 404),
        ("POST", f"{c}/observables", {"type": "ip", "value": "999.1.1.1"}, 400),
        ("POST", f"{c}/evidence", {"name": "x", "sha256": "nothex"}, 400),
        ("GET", f"{c}/evidence/999999", None, 404),
        ("POST", f"{c}/clocks", {"kind": "regulatory"}, 400),
        ("POST", f"{c}/clocks", {"regime": "GDPR-99"}, 400),
        ("POST", f"{c}/clocks/999999/pause", {"reason": "x"}, 404),
        ("POST", f"{c}/comments", {"body": ""}, 400),
        ("POST", f"{c}/comments", {"body": "hi", "parent_id": 999999}, 400),
        ("POST", f"{c}/timeline", {"occurred_at": "yesterday", "title": "x"}, 400),
        ("POST", f"{c}/review/actions", {"title": "x", "owner": "ghost"}, 400),
        ("POST", f"{c}/alerts", {"incident_id": 999999}, 400),
    ]
    for method, path, body, status in bad:
        answer = api.call(method, path, json=body) if body is not None else api.call(method, path)
        assert answer.status_code == status, (method, path, body, answer.status_code, answer.text)
        assert answer.json()["detail"]
    for query in ({"sort": "colour"}, {"limit": 0}, {"limit": 501}, {"offset": -1},
                  {"stage": "sideways"}, {"q": "a\x00b"}, {"team": "x" * 65}):
        answer = api.call("GET", "/api/v1/cases", params=query)
        assert answer.status_code == 400, (query, answer.text)


def test_list_filters_sorting_and_pagination(api: Api) -> None:
    marker = f"page-{datetime.now(UTC).timestamp()}"
    made = [api.new_case(title=f"{marker} {i}", severity=sev, assignees=who)["id"]
            for i, (sev, who) in enumerate([("low", ["analyst"]), ("critical", ["responder"]),
                                            ("medium", []), ("high", ["analyst", "responder"]),
                                            ("low", [])])]
    first = api.ok("GET", "/api/v1/cases", params={"q": marker, "sort": "-severity", "limit": 2})
    assert first["total"] == 5 and first["limit"] == 2 and first["offset"] == 0
    assert [c["id"] for c in first["items"]] == [made[1], made[3]]
    rest = api.ok("GET", "/api/v1/cases", params={"q": marker, "sort": "-severity", "limit": 2,
                                                  "offset": 2})
    assert [c["id"] for c in rest["items"]] == [made[2], made[4]]  # equal severity: newest first
    ops = api.ok("GET", "/api/v1/cases", params={"q": marker, "team": "operations", "sort": "id"})
    assert [c["id"] for c in ops["items"]] == [made[1], made[3]]
    unassigned = api.ok("GET", "/api/v1/cases", params={"q": marker, "assignee": "none"})
    assert {c["id"] for c in unassigned["items"]} == {made[2], made[4]}
    several = api.ok("GET", "/api/v1/cases", params=[("q", marker), ("severity", "low"),
                                                     ("severity", "medium")])
    assert several["total"] == 3
    api.ok("PATCH", f"/api/v1/cases/{made[0]}", json={"stage": "in_progress", "phase": "recovery"})
    staged = api.ok("GET", "/api/v1/cases", params={"q": marker, "stage": "in_progress",
                                                    "phase": "recovery"})
    assert [c["id"] for c in staged["items"]] == [made[0]]
    assert api.ok("GET", "/api/v1/cases", params={"q": marker, "priority": "critical"})["total"] == 1


def test_evidence_clocks_alerts_and_templates(api: Api) -> None:
    alert_ids = _alerts(api, 3)
    case = api.new_case(title="Web shell", alert_ids=alert_ids[:2])
    c = f"/api/v1/cases/{case['id']}"
    assert case["alert_ids"] == alert_ids[:2]
    linked = api.ok("POST", f"{c}/alerts", json={"alert_ids": [alert_ids[2]]})
    assert linked["alert_ids"] == alert_ids
    assert api.ok("DELETE", f"{c}/alerts/{alert_ids[0]}")["alert_ids"] == alert_ids[1:]
    other = api.new_case()
    taken = api.call("POST", f"/api/v1/cases/{other['id']}/alerts", json={"alert_ids": [alert_ids[1]]})
    assert taken.status_code == 409
    evidence = api.ok("POST", f"{c}/evidence", json={"name": "web-1.E01", "kind": "disk",
                                                     "sha256": SHA, "size": 1 << 34})
    moved = api.ok("POST", f"{c}/evidence/{evidence['id']}/custody",
                   json={"action": "transferred", "holder": "lab", "sha256": SHA})
    assert [(e["action"], e["hash_matches"]) for e in moved["custody"]] == [
        ("acquired", True), ("transferred", True)]
    clock = next(k for k in api.ok("GET", f"{c}/clocks") if k["kind"] == "sla_ack")
    paused = api.ok("POST", f"{c}/clocks/{clock['id']}/pause", json={"reason": "Waiting on ISP"})
    assert paused["status"] == "paused"
    again = api.call("POST", f"{c}/clocks/{clock['id']}/pause", json={"reason": "again"})
    assert again.status_code == 409
    assert api.call("POST", f"{c}/clocks/{clock['id']}/pause", json={}).status_code == 400
    assert api.ok("POST", f"{c}/clocks/{clock['id']}/resume")["state"] == "running"
    hipaa = api.ok("POST", f"{c}/clocks", json={"regime": "HIPAA-individual",
                                                "trigger_at": "2026-01-30T14:00:00Z"})
    assert hipaa["due_at"].startswith("2026-03-31T14:00:00")
    templates = {t["name"]: t for t in api.ok("GET", "/api/v1/case-templates", who="auditor")}
    assert {"ransomware", "phishing", "account-compromise"} <= set(templates)
    assert templates["phishing"]["tasks"][0]["team"] == "security"
