"""``/api/v1/notify`` over a real ``vigil serve`` process: roles, bad input, a signed test message."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from helpers import free_port, server
from respond.servers import Mailbox, Receiver, mailbox, receiving
from vigil.app import Vigil
from vigil.core.auth import SYSTEM, Role
from vigil.core.config import load_settings
from vigil.people import tokens


@dataclass
class Api:
    client: httpx.Client
    tokens: dict[Role, str]

    def as_(self, role: Role | None) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[role]}"} if role else {}

    def call(self, method: str, path: str, role: Role | None = Role.ADMIN,
             headers: dict[str, str] | None = None, **kwargs: object) -> httpx.Response:
        response = self.client.request(method, f"/api/v1/notify{path}",
                                       headers={**self.as_(role), **(headers or {})},
                                       **kwargs)  # type: ignore[arg-type]
        assert response.status_code < 500, response.text
        return response


@pytest.fixture(scope="module")
def hooks() -> Iterator[Receiver]:
    with receiving() as receiver:
        yield receiver


@pytest.fixture(scope="module")
def smtp() -> Iterator[Mailbox]:
    with mailbox() as box:
        yield box


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    data_dir: Path = tmp_path_factory.mktemp("notify-api") / "data"
    vigil = Vigil(load_settings(data_dir))
    issued = {role: tokens.issue(vigil.db, SYSTEM, f"t-{role.value}", role=role).token
              for role in Role}
    vigil.close()
    port = free_port()
    with server(data_dir, port, free_port(), VIGIL_INGEST__SYSLOG_ENABLED="false",
                VIGIL_SERVER__NOTIFICATIONS="false"), \
            httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
        yield Api(client, issued)


@pytest.mark.parametrize("role", [Role.ANALYST, Role.RESPONDER, Role.AUDITOR, Role.SERVICE, None])
def test_only_admins_manage_notifications(api: Api, role: Role | None) -> None:
    expected = 401 if role is None else 403
    body = {"name": "x", "kind": "webhook", "config": {"url": "http://127.0.0.1:9/x"}}
    for method, path, kwargs in (("GET", "/channels", {}), ("POST", "/channels", {"json": body}),
                                 ("GET", "/rules", {}), ("GET", "/deliveries", {}),
                                 ("POST", "/channels/1/test", {}), ("DELETE", "/rules/1", {})):
        assert api.call(method, path, role, **kwargs).status_code == expected, (method, path)


def test_webhook_channel_rule_test_and_delivery_log(api: Api, hooks: Receiver) -> None:
    created = api.call("POST", "/channels", json={
        "name": "soc-hook", "kind": "webhook", "secret": "api-secret",
        "config": {"url": hooks.url("/api-hook")}})
    assert created.status_code == 201, created.text
    channel = created.json()
    assert channel["has_secret"] is True
    assert "api-secret" not in created.text and "secret\"" not in created.text.replace(
        "has_secret", "")
    assert api.call("GET", f"/channels/{channel['id']}").json() == channel
    tested = api.call("POST", f"/channels/{channel['id']}/test").json()
    assert tested["ok"] is True and tested["status_code"] == 200
    [request] = hooks.on("/api-hook")
    stamp = request.headers["X-Vigil-Timestamp"]
    mac = hmac.new(b"api-secret", f"{stamp}.".encode() + request.body, hashlib.sha256).hexdigest()
    assert request.headers["X-Vigil-Signature"] == f"sha256={mac}"
    rule = api.call("POST", "/rules", json={"name": "high-alerts", "topics": ["alert.created"],
                                            "min_severity": "high",
                                            "channel_id": channel["id"]})
    assert rule.status_code == 201, rule.text
    assert rule.json()["channel"] == "soc-hook"
    patched = api.call("PATCH", f"/rules/{rule.json()['id']}",
                       json={"topics": ["alert.created", "incident.created"]})
    assert patched.json()["topics"] == ["alert.created", "incident.created"]
    page = api.call("GET", "/deliveries", params={"channel_id": channel["id"]}).json()
    [delivery] = page["deliveries"]
    assert (delivery["topic"], delivery["status"], page["next_before"]) == ("test", "sent", None)
    detail = api.call("GET", f"/deliveries/{delivery['id']}").json()
    assert [a["status_code"] for a in detail["attempt_log"]] == [200]
    assert api.call("POST", f"/deliveries/{delivery['id']}/retry").status_code == 409
    assert api.call("DELETE", f"/channels/{channel['id']}").status_code == 409
    assert api.call("DELETE", f"/rules/{rule.json()['id']}").status_code == 204
    assert api.call("DELETE", f"/channels/{channel['id']}").status_code == 204
    assert api.call("GET", f"/channels/{channel['id']}").status_code == 404


def test_email_channel_and_failed_test_then_retry(api: Api, smtp: Mailbox) -> None:
    created = api.call("POST", "/channels", json={
        "name": "mail", "kind": "email",
        "config": {"host": smtp.host, "port": smtp.port, "from_address": "vigil@example.org",
                   "to": ["soc@example.org"]}}).json()
    tested = api.call("POST", f"/channels/{created['id']}/test",
                      json={"to": "lead@example.org"}).json()
    assert tested["ok"] and tested["reply"].startswith("250")
    assert len(smtp.to("lead@example.org")) == 1
    dead = api.call("POST", "/channels", json={
        "name": "dead-mail", "kind": "email",
        "config": {"host": "127.0.0.1", "port": free_port(), "from_address": "vigil@example.org",
                   "to": ["soc@example.org"]}}).json()
    failed = api.call("POST", f"/channels/{dead['id']}/test").json()
    assert failed["ok"] is False and "Connection" in failed["error"]
    retried = api.call("POST", f"/deliveries/{failed['delivery_id']}/retry")
    assert retried.status_code == 200 and retried.json()["status"] == "pending"
    page = api.call("GET", "/deliveries", params={"limit": 1}).json()
    assert len(page["deliveries"]) == 1 and page["next_before"] is not None
    more = api.call("GET", "/deliveries", params={"before": page["next_before"]}).json()
    assert all(d["id"] < page["next_before"] for d in more["deliveries"])
    assert api.call("GET", "/deliveries", params={"status": "pending"}).json()[
        "deliveries"][0]["id"] == failed["delivery_id"]


BAD_REQUESTS = [
    ("POST", "/channels", {"json": {"name": "a", "kind": "pager", "config": {}}}),
    ("POST", "/channels", {"json": {"name": "a", "kind": "webhook", "config": {}}}),
    ("POST", "/channels", {"json": {"name": "a", "kind": "webhook",
                                    "config": {"url": "file:///etc/passwd"}}}),
    ("POST", "/channels", {"json": {"name": "a b", "kind": "webhook",
                                    "config": {"url": "http://x.org"}}}),
    ("POST", "/channels", {"json": {"name": "a", "kind": "webhook", "secret": "x\u0000y",
                                    "config": {"url": "http://x.org"}}}),
    ("POST", "/channels", {"json": {"name": "a", "kind": "email",
                                    "config": {"host": "h", "from_address": "x"}}}),
    ("POST", "/channels", {"content": b"{not json", "headers": {"Content-Type": "application/json"}}),
    ("POST", "/channels", {"json": [1, 2]}),
    ("GET", "/channels/99999999999", {}),
    ("GET", "/channels/abc", {}),
    ("PATCH", "/channels/1", {"json": {"bogus": 1}}),
    ("POST", "/rules", {"json": {"name": "r", "topics": ["alert.created"], "channel_id": 4242}}),
    ("POST", "/rules", {"json": {"name": "r", "topics": ["nope"], "channel_id": 1}}),
    ("POST", "/rules", {"json": {"name": "r", "topics": ["alert.created"],
                                 "channel_id": 99999999999}}),
    ("POST", "/rules", {"json": {"name": "r", "topics": "alert.created", "channel_id": 1}}),
    ("GET", "/deliveries", {"params": {"status": "lost"}}),
    ("GET", "/deliveries", {"params": {"limit": 0}}),
    ("GET", "/deliveries", {"params": {"limit": 100000}}),
    ("GET", "/deliveries", {"params": {"event_id": "-1"}}),
    ("GET", "/deliveries", {"params": {"before": "99999999999"}}),
    ("GET", "/deliveries/0", {}),
]


@pytest.mark.parametrize(("method", "path", "kwargs"), BAD_REQUESTS)
def test_bad_input_is_a_400(api: Api, method: str, path: str, kwargs: dict[str, object]) -> None:
    response = api.call(method, path, **kwargs)
    assert response.status_code == 400, (response.status_code, response.text)
    assert response.json()["detail"]


def test_not_found_and_conflicts(api: Api, hooks: Receiver) -> None:
    assert api.call("GET", "/channels/4242").status_code == 404
    assert api.call("PATCH", "/rules/4242", json={"enabled": False}).status_code == 404
    assert api.call("DELETE", "/channels/4242").status_code == 404
    assert api.call("POST", "/deliveries/4242/retry").status_code == 404
    body = {"name": "dup", "kind": "slack", "config": {"url": hooks.url("/dup")}}
    assert api.call("POST", "/channels", json=body).status_code == 201
    assert api.call("POST", "/channels", json=body).status_code == 409
    slack = api.call("GET", "/channels").json()
    shown = json.dumps(slack)
    assert "/dup" not in shown  # a Slack URL is a credential: only its host is shown
    dup = next(c for c in slack if c["name"] == "dup")
    bad_test = api.call("POST", f"/channels/{dup['id']}/test", json={"to": "a@b.org"})
    assert bad_test.status_code == 400
    bad_rule = api.call("POST", "/rules", json={"name": "r", "topics": ["alert.created"],
                                                "channel_id": dup["id"], "addresses": ["a@b.org"]})
    assert bad_rule.status_code == 400 and "e-mail" in bad_rule.json()["detail"]


def test_openapi_documents_the_channel_kinds(api: Api) -> None:
    schema = api.client.get("/openapi.json").json()
    assert "/api/v1/notify/channels/{channel_id}/test" in schema["paths"]
    for name in ("WebhookChannelIn", "SlackChannelIn", "TeamsChannelIn", "EmailChannelIn"):
        assert name in schema["components"]["schemas"]
