"""``/api/v1/audit`` and ``/api/v1/metrics`` over a real server: who may read them, bad input,
paging of the audit trail, verification after tampering."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text

from helpers import free_port, server
from vigil.app import Vigil
from vigil.core.auth import SYSTEM, Role
from vigil.core.config import load_settings
from vigil.people import service as people
from vigil.people import tokens

ROLES = [Role.ADMIN, Role.ANALYST, Role.RESPONDER, Role.AUDITOR]


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[httpx.Client, dict[str, str], Path]]:
    data_dir = tmp_path_factory.mktemp("audit-api") / "vigil-data"
    vigil = Vigil(load_settings(data_dir))
    keys: dict[str, str] = {}
    for role in ROLES:
        people.add_user(vigil.db, SYSTEM, f"u-{role.value}", "a long enough password", role=role)
        keys[role.value] = tokens.issue(vigil.db, SYSTEM, f"t-{role.value}", user=f"u-{role.value}").token
    keys["service"] = tokens.issue(vigil.db, SYSTEM, "t-service", role=Role.SERVICE).token
    vigil.close()
    port = free_port()
    with server(data_dir, port, free_port()), httpx.Client(
            base_url=f"http://127.0.0.1:{port}/api/v1", timeout=30) as client:
        yield client, keys, data_dir


def _get(api: tuple[httpx.Client, dict[str, str], Path], path: str, who: str | None,
         **params: object) -> httpx.Response:
    client, keys, _ = api
    headers = {"Authorization": f"Bearer {keys[who]}"} if who else {}
    answer = client.get(path, headers=headers, params=params)  # type: ignore[arg-type]
    assert answer.status_code < 500, answer.text
    return answer


@pytest.mark.parametrize(("who", "status"), [("admin", 200), ("auditor", 200), ("analyst", 403),
                                              ("responder", 403), ("service", 403), (None, 401)])
def test_audit_routes_by_role(api: tuple[httpx.Client, dict[str, str], Path], who: str | None,
                              status: int) -> None:
    assert _get(api, "/audit", who).status_code == status
    assert _get(api, "/audit/verify", who).status_code == status


@pytest.mark.parametrize(("who", "status"), [("admin", 200), ("auditor", 200), ("analyst", 200),
                                              ("responder", 200), ("service", 403), (None, 401)])
def test_metrics_by_role(api: tuple[httpx.Client, dict[str, str], Path], who: str | None,
                         status: int) -> None:
    assert _get(api, "/metrics", who).status_code == status


@pytest.mark.parametrize("params", [{"limit": 0}, {"limit": 1001}, {"before_seq": 0},
                                    {"before_seq": 2**60}, {"since": "yesterday-ish"},
                                    {"object_type": "x" * 65}])
def test_audit_bad_input_is_400(api: tuple[httpx.Client, dict[str, str], Path],
                                params: dict[str, object]) -> None:
    assert _get(api, "/audit", "auditor", **params).status_code == 400


@pytest.mark.parametrize("params", [{"period": "fortnight"}, {"rules": -1},
                                    {"since": "2026-01-02T00:00:00Z", "until": "2026-01-01T00:00:00Z"},
                                    {"since": "not a time"}])
def test_metrics_bad_input_is_400(api: tuple[httpx.Client, dict[str, str], Path],
                                  params: dict[str, object]) -> None:
    assert _get(api, "/metrics", "analyst", **params).status_code == 400


def test_audit_pages_and_filters(api: tuple[httpx.Client, dict[str, str], Path]) -> None:
    first = _get(api, "/audit", "auditor", limit=2).json()
    assert len(first["items"]) == 2 and first["next_before_seq"] == first["items"][-1]["seq"]
    second = _get(api, "/audit", "auditor", limit=2, before_seq=first["next_before_seq"]).json()
    assert all(e["seq"] < first["next_before_seq"] for e in second["items"])
    users = _get(api, "/audit", "auditor", object_type="user", limit=100).json()["items"]
    assert {e["object_id"] for e in users} >= {"u-admin", "u-auditor"}
    assert all(e["object_type"] == "user" for e in users)


def test_verify_reports_tampering(api: tuple[httpx.Client, dict[str, str], Path]) -> None:
    assert _get(api, "/audit/verify", "auditor").json()["ok"] is True
    _client, _keys, data_dir = api
    vigil = Vigil(load_settings(data_dir))
    try:
        with vigil.db.engine.begin() as connection:
            connection.execute(text("UPDATE audit_log SET actor = 'user:mallory' WHERE seq = 2"))
    finally:
        vigil.close()
    report = _get(api, "/audit/verify", "auditor").json()
    assert report["ok"] is False
    assert {"kind": "edited", "seq": 2} in [{"kind": p["kind"], "seq": p["seq"]}
                                            for p in report["problems"]]
