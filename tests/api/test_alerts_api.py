"""``/api/v1/alerts`` and ``/api/v1/incidents`` over a real ``vigil serve`` process: every route
by every role, bad input (never a 500), unknown ids, refused moves, paging, and the audit."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import count
from pathlib import Path

import httpx
import pytest

from helpers import free_port, server
from vigil.alerts import AlertInput, Source
from vigil.alerts import service as alerts
from vigil.alerts.schemas import AlertOut, IncidentOut
from vigil.app import Vigil
from vigil.audit.service import listing
from vigil.core.auth import SYSTEM, Role, cli_principal
from vigil.core.config import load_settings
from vigil.core.db import StateDB
from vigil.people import service as people
from vigil.people import tokens

T0 = datetime(2026, 4, 1, 8, 0, tzinfo=UTC)
_keys = count()
WRITERS = [Role.ADMIN, Role.ANALYST, Role.RESPONDER, Role.SERVICE]


@dataclass
class Api:
    client: httpx.Client
    tokens: dict[Role, str]
    data_dir: Path

    def call(self, method: str, path: str, role: Role | None = Role.ANALYST,
             headers: dict[str, str] | None = None, **kwargs: object) -> httpx.Response:
        auth = {"Authorization": f"Bearer {self.tokens[role]}"} if role else {}
        answer = self.client.request(method, f"/api/v1{path}", headers={**auth, **(headers or {})},
                                     **kwargs)  # type: ignore[arg-type]
        assert answer.status_code < 500, answer.text
        return answer

    def ok(self, method: str, path: str, role: Role | None = Role.ANALYST,
           **kwargs: object) -> httpx.Response:
        answer = self.call(method, path, role, **kwargs)
        assert answer.status_code in (200, 201), answer.text
        return answer

    def seed(self, rule: str, *hosts: str, user: str | None = None, minutes: int = 0) -> list[int]:
        """New alerts of ``rule``, one per host (written straight to the state database)."""
        inputs = [AlertInput(source=Source.SIGMA, rule_id=rule, rule_title=f"{rule} title",
                             dedup_key=f"{rule}|{host}|{next(_keys)}",
                             first_seen=T0 + timedelta(minutes=minutes),
                             last_seen=T0 + timedelta(minutes=minutes + 1), level="high",
                             rule_author="Jane Doe", rule_references=("https://example.org/x",),
                             host=host, user=user, event_ids=(f"ev-{rule}-{host}",), count=1)
                  for host in hosts]
        db = StateDB(f"sqlite:///{self.data_dir / 'state.db'}")
        try:
            with db.session() as session:
                return list(alerts.record(session, inputs).created)
        finally:
            db.dispose()


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    data_dir: Path = tmp_path_factory.mktemp("alerts-api") / "data"
    vigil = Vigil(load_settings(data_dir))
    issued = {role: tokens.issue(vigil.db, SYSTEM, f"t-{role.value}", role=role).token
              for role in Role}
    for name, disabled in (("carol", False), ("dave", True)):
        people.add_user(vigil.db, cli_principal(), name, "correct horse battery", role=Role.RESPONDER)
        if disabled:
            people.disable_user(vigil.db, cli_principal(), name)
    vigil.close()
    port = free_port()
    with server(data_dir, port, free_port(), VIGIL_INGEST__SYSLOG_ENABLED="false",
                VIGIL_SERVER__NOTIFICATIONS="false"), \
            httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
        yield Api(client, issued, data_dir)


@pytest.mark.parametrize("role", [*Role, None])
def test_who_may_read_and_write(api: Api, role: Role | None) -> None:
    [alert] = api.seed(f"roles-{role}", "pc1")
    incident = api.ok("GET", f"/alerts/{alert}").json()["incident_id"]
    reading = [("GET", "/alerts", {}), ("GET", f"/alerts/{alert}", {}), ("GET", "/incidents", {}),
               ("GET", f"/incidents/{incident}", {})]
    writing = [("POST", f"/alerts/{alert}/assign", {"json": {"assignee": None}}),
               ("POST", "/alerts/bulk", {"json": {"action": "acknowledge", "ids": [alert]}}),
               ("POST", f"/alerts/{alert}/ack", {}),
               ("POST", f"/alerts/{alert}/close", {"json": {"disposition": "duplicate"}}),
               ("POST", f"/alerts/{alert}/reopen", {}),
               ("POST", "/incidents/merge", {"json": {"target": incident, "sources": [999_999]}}),
               ("POST", f"/incidents/{incident}/split", {"json": {"alert_ids": [alert]}})]
    for method, path, kwargs in reading:
        expected = 401 if role is None else 200
        assert api.call(method, path, role, **kwargs).status_code == expected, path
    for method, path, kwargs in writing:
        status = api.call(method, path, role, **kwargs).status_code
        if role is None:
            assert status == 401, path
        elif role in WRITERS:
            assert status not in (401, 403), path
        else:
            assert status == 403, path


def test_list_pages_filters_and_counts(api: Api) -> None:
    made = api.seed("paging", *(f"web-{i}" for i in range(7)))
    params = {"rule_id": "paging", "limit": 3, "count": "true"}
    first = api.ok("GET", "/alerts", params=params).json()
    assert first["total"] == 7 and len(first["items"]) == 3 and first["next_cursor"]
    seen = [a["id"] for a in first["items"]]
    cursor = first["next_cursor"]
    while cursor:
        page = api.ok("GET", "/alerts", params={"rule_id": "paging", "limit": 3, "cursor": cursor}).json()
        assert page["total"] is None
        seen += [a["id"] for a in page["items"]]
        cursor = page["next_cursor"]
    assert sorted(seen) == sorted(made) and len(seen) == 7
    by_offset = api.ok("GET", "/alerts", params={"rule_id": "paging", "limit": 3, "offset": 3}).json()
    assert [a["id"] for a in by_offset["items"]] == seen[3:6]
    ascending = api.ok("GET", "/alerts", params={"rule_id": "paging", "sort": "id", "order": "asc"})
    assert [a["id"] for a in ascending.json()["items"]] == sorted(made)
    one = api.ok("GET", "/alerts", params={"host": "web-2", "severity": ["high", "low"],
                                           "status": "new", "level": "high",
                                           "since": "2026-04-01T07:00:00Z"}).json()["items"]
    assert [a["id"] for a in one] == [made[2]]
    item = one[0]
    assert (item["rule_author"], item["severity"], item["source"]) == ("Jane Doe", "high", "sigma")
    assert api.ok("GET", "/alerts", params={"rule_id": "paging", "min_severity": "critical"}
                  ).json()["items"] == []


@pytest.mark.parametrize("params", [
    {"limit": 0}, {"limit": 1001}, {"sort": "bogus"}, {"order": "up"}, {"status": "open"},
    {"severity": "severe"}, {"since": "not a time"}, {"cursor": "garbage!"},
    {"incident_id": 0}, {"incident_id": 2**40}, {"offset": -1}, {"host": "h" * 300},
    {"source": "email"}, {"disposition": "fine"}, {"since": "0001-01-01T00:00:00+14:00"},
    {"until": "9999-12-31T23:59:59-14:00"},
])
def test_bad_listing_parameters_are_400(api: Api, params: dict[str, object]) -> None:
    answer = api.call("GET", "/alerts", params=params)
    assert answer.status_code == 400, answer.text
    assert answer.json()["error"] == "InputError"


def test_a_cursor_from_another_sort_and_cursor_with_offset_are_400(api: Api) -> None:
    api.seed("cursor", "a", "b")
    cursor = api.ok("GET", "/alerts", params={"limit": 1}).json()["next_cursor"]
    assert api.call("GET", "/alerts", params={"cursor": cursor, "sort": "id"}).status_code == 400
    assert api.call("GET", "/alerts", params={"cursor": cursor, "offset": 2}).status_code == 400
    assert api.call("GET", "/incidents", params={"cursor": "x", "count": "yes"}).status_code == 400


def test_detail_shows_author_references_events_history_and_related(api: Api) -> None:
    [alert] = api.seed("detail", "srv-9", user="mallory")
    [neighbour] = api.seed("detail-other", "srv-9")
    body = api.ok("GET", f"/alerts/{alert}").json()
    assert body["rule_author"] == "Jane Doe" and body["rule_references"] == ["https://example.org/x"]
    assert body["event_ids"] == ["ev-detail-srv-9"] and body["user"] == "mallory"
    assert [(h["field"], h["new"], h["actor"]) for h in body["history"]] == [
        ("status", "new", "system:vigil")]
    assert [(r["alert"]["id"], r["shared"]) for r in body["related"]] == [(neighbour, ["host"])]


def test_transitions_and_refusals(api: Api) -> None:
    [alert] = api.seed("moves", "pc7")
    assert api.ok("POST", f"/alerts/{alert}/ack").json()["status"] == "acknowledged"
    again = api.call("POST", f"/alerts/{alert}/ack")
    assert again.status_code == 409 and again.json()["error"] == "ConflictError"
    assert api.call("POST", f"/alerts/{alert}/close", json={}).status_code == 400
    assert api.call("POST", f"/alerts/{alert}/close", json={"disposition": "meh"}).status_code == 400
    assert api.call("POST", f"/alerts/{alert}/close", content=b"{not json",
                    headers={"Content-Type": "application/json"}).status_code == 400
    closed = api.ok("POST", f"/alerts/{alert}/close", role=Role.RESPONDER,
                    json={"disposition": "false_positive_logic", "note": "noisy rule"}).json()
    assert (closed["status"], closed["disposition"], closed["closing_note"]) == (
        "closed", "false_positive_logic", "noisy rule")
    assert api.call("POST", f"/alerts/{alert}/close",
                    json={"disposition": "duplicate"}).status_code == 409
    assert api.ok("POST", f"/alerts/{alert}/reopen").json()["status"] == "acknowledged"
    assert api.call("POST", f"/alerts/{alert}/reopen").status_code == 409
    for path in ("/alerts/999999/ack", "/alerts/999999/reopen"):
        assert api.call("POST", path).status_code == 404
    assert api.call("GET", "/alerts/999999").status_code == 404
    for bad in ("0", "abc", str(2**40)):
        assert api.call("GET", f"/alerts/{bad}").status_code == 400
    db = StateDB(f"sqlite:///{api.data_dir / 'state.db'}")
    try:
        trail = [(e.actor, e.action) for e in listing(db, object_type="alert", object_id=str(alert))]
    finally:
        db.dispose()
    assert trail == [("token:t-analyst", "reopen"), ("token:t-responder", "close"),
                     ("token:t-analyst", "acknowledge"), ("system:vigil", "create")]


def test_assign_by_name_or_id(api: Api) -> None:
    [alert] = api.seed("assign", "pc8")
    carol = api.ok("POST", f"/alerts/{alert}/assign", json={"assignee": "Carol"}).json()["assignee"]
    assert isinstance(carol, int)
    assert api.ok("POST", f"/alerts/{alert}/assign", json={"assignee": carol}).json()["assignee"] == carol
    assert [a["id"] for a in api.ok("GET", "/alerts", params={"assignee": carol}).json()["items"]] == [alert]
    for who in ("nobody", 999_999, "dave"):
        answer = api.call("POST", f"/alerts/{alert}/assign", json={"assignee": who})
        assert answer.status_code == 400, who
    assert api.call("POST", f"/alerts/{alert}/assign", json={}).status_code == 400
    assert api.ok("POST", f"/alerts/{alert}/assign", json={"assignee": None}).json()["assignee"] is None
    assert api.call("POST", "/alerts/999999/assign", json={"assignee": None}).status_code == 404


def test_bulk(api: Api) -> None:
    made = api.seed("bulk", "a1", "a2", "a3")
    api.ok("POST", f"/alerts/{made[0]}/ack")
    done = api.ok("POST", "/alerts/bulk", json={"action": "acknowledge", "ids": [*made, 999_999]}).json()
    assert done["done"] == made[1:]
    assert {s["id"] for s in done["skipped"]} == {made[0], 999_999}
    closing = {"action": "close", "ids": made, "disposition": "benign_true_positive", "note": "ok"}
    assert api.ok("POST", "/alerts/bulk", json=closing).json()["done"] == made
    for body in ({"action": "close", "ids": made}, {"action": "delete", "ids": made},
                 {"action": "acknowledge", "ids": []}, {"action": "acknowledge", "ids": [0]},
                 {"action": "acknowledge", "ids": list(range(1, 1002))}):
        assert api.call("POST", "/alerts/bulk", json=body).status_code == 400, body


def test_incidents_list_read_merge_split(api: Api) -> None:
    first = api.seed("incidents", "db-1", "db-1", "db-1")
    second = api.seed("incidents", "db-2")
    target = api.ok("GET", f"/alerts/{first[0]}").json()["incident_id"]
    source = api.ok("GET", f"/alerts/{second[0]}").json()["incident_id"]
    listed = api.ok("GET", "/incidents", params={"rule_id": "incidents", "count": "true"}).json()
    assert listed["total"] == 2 and {i["id"] for i in listed["items"]} == {target, source}
    by_entity = api.ok("GET", "/incidents", params={"entity_kind": "host", "entity_value": "db-2"})
    assert [i["id"] for i in by_entity.json()["items"]] == [source]
    detail = api.ok("GET", f"/incidents/{target}", params={"alert_limit": 2}).json()
    assert detail["alert_count"] == 3 and len(detail["alerts"]) == 2
    assert detail["title"] == "incidents title on host db-1" and detail["severity"] == "high"
    merged = api.ok("POST", "/incidents/merge", json={"target": target, "sources": [source]}).json()
    assert merged["alert_count"] == 4
    gone = api.ok("GET", f"/incidents/{source}").json()
    assert (gone["status"], gone["merged_into"]) == ("closed", target)
    assert api.call("POST", "/incidents/merge", json={"target": target, "sources": [source]}
                    ).status_code == 409
    assert api.call("POST", "/incidents/merge", json={"target": target, "sources": [target]}
                    ).status_code == 400
    split = api.call("POST", f"/incidents/{target}/split",
                     json={"alert_ids": first[1:], "title": "Other activity"})
    assert split.status_code == 201
    new = split.json()
    assert (new["title"], new["alert_count"], new["auto_group"]) == ("Other activity", 2, False)
    assert api.call("POST", f"/incidents/{target}/split", json={"alert_ids": [first[1]]}
                    ).status_code == 400
    assert api.call("POST", "/incidents/999999/split", json={"alert_ids": [first[0]]}
                    ).status_code == 404
    assert api.call("GET", "/incidents/999999").status_code == 404
    for body in ({"target": target}, {"target": target, "sources": []}, {"target": "x", "sources": [1]}):
        assert api.call("POST", "/incidents/merge", json=body).status_code == 400
    assert api.call("GET", "/incidents", params={"entity_kind": "planet"}).status_code == 400


def test_listings_have_exactly_the_documented_fields(api: Api) -> None:
    [alert] = api.seed("fields", "pc1")
    item = api.ok("GET", "/alerts", params={"rule_id": "fields"}).json()["items"][0]
    detail = api.ok("GET", f"/alerts/{alert}").json()
    assert set(item) == set(AlertOut.model_fields) == set(detail) - {"history", "related"}
    assert item["last_seen"] == detail["last_seen"] == "2026-04-01T08:01:00Z"
    incident = api.ok("GET", "/incidents", params={"rule_id": "fields"}).json()["items"][0]
    assert set(incident) == set(IncidentOut.model_fields)


def test_openapi_documents_the_routes(api: Api) -> None:
    paths = api.client.get("/openapi.json").json()["paths"]
    for path in ("/api/v1/alerts", "/api/v1/alerts/{alert_id}", "/api/v1/alerts/{alert_id}/close",
                 "/api/v1/alerts/bulk", "/api/v1/incidents", "/api/v1/incidents/merge",
                 "/api/v1/incidents/{incident_id}/split"):
        assert path in paths, path
