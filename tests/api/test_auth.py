"""Sign-in and the people routes over a real connection to a real ``vigil serve`` process.

Every route is called by every role: the allowed ones get through, the others get 403, and a
request without credentials gets 401. Failed sign-ins are rate-limited per user name and per
client address, so tests that fail on purpose connect from their own loopback address.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from helpers import create_token, free_port, server
from vigil.audit.service import listing
from vigil.core.auth import ROLE_PERMISSIONS, Role, cli_principal
from vigil.core.db import StateDB
from vigil.people import service

PASSWORD = "correct horse battery"
ROLES = [Role.ADMIN, Role.ANALYST, Role.RESPONDER, Role.AUDITOR]
MAX_FAILURES = 3


@dataclass
class Api:
    base: str
    data_dir: Path
    sessions: dict[str, str]
    """Role (and 'service') → bearer token."""

    def client(self, address: str = "127.0.0.1") -> httpx.Client:
        transport = httpx.HTTPTransport(local_address=address)
        return httpx.Client(base_url=self.base, timeout=20, transport=transport)

    def call(self, method: str, path: str, who: str | None, **kwargs: object) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.sessions[who]}"} if who else {}
        with self.client() as client:
            return client.request(method, path, headers=headers, **kwargs)  # type: ignore[arg-type]

    def login(self, username: str, password: str = PASSWORD,
              address: str = "127.0.0.1") -> httpx.Response:
        with self.client(address) as client:
            return client.post("/api/v1/auth/login", json={"username": username, "password": password})

    def db(self) -> StateDB:
        return StateDB(f"sqlite:///{self.data_dir / 'state.db'}")


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    data_dir: Path = tmp_path_factory.mktemp("auth") / "data"
    service_token = create_token(data_dir, "read", name="dashboard")
    db = StateDB(f"sqlite:///{data_dir / 'state.db'}")
    try:
        for role in ROLES:
            team = "security" if role is Role.ANALYST else "operations" if role is Role.RESPONDER else None
            service.add_user(db, cli_principal(), f"{role.value}1", PASSWORD, role=role, team=team,
                             email=f"{role.value}1@example.org")
    finally:
        db.dispose()
    port = free_port()
    with server(data_dir, port, free_port(), VIGIL_AUTH__LOGIN_MAX_FAILURES=str(MAX_FAILURES),
                VIGIL_AUTH__LOGIN_WINDOW_SECONDS="600"):
        api = Api(f"http://127.0.0.1:{port}", data_dir, {"service": service_token})
        for role in ROLES:
            answer = api.login(f"{role.value}1")
            assert answer.status_code == 200, answer.text
            api.sessions[role.value] = answer.json()["token"]
        yield api


# -- sign-in ---------------------------------------------------------------------------------


def test_login_sets_a_strict_http_only_cookie(api: Api) -> None:
    with api.client() as client:
        answer = client.post("/api/v1/auth/login", json={"username": "Analyst1", "password": PASSWORD})
        assert answer.status_code == 200
        body = answer.json()
        assert body["token"].startswith("vgs_")
        assert body["idle_minutes"] == 60
        assert body["user"]["name"] == "analyst1" and body["user"]["role"] == "analyst"
        assert body["user"]["team"] == "security"
        assert body["user"]["email"] == "analyst1@example.org"
        assert set(body["user"]["permissions"]) == {p.value for p in ROLE_PERMISSIONS[Role.ANALYST]}
        cookie = answer.headers["set-cookie"]
        assert f"vigil_session={body['token']}" in cookie
        for attribute in ("HttpOnly", "SameSite=strict", "Path=/", "Max-Age=43200"):
            assert attribute.lower() in cookie.lower()
        assert "secure" not in cookie.lower()  # plain HTTP on loopback
        me = client.get("/api/v1/auth/me")  # the cookie alone
        assert me.status_code == 200 and me.json()["name"] == "analyst1"
        assert client.post("/api/v1/auth/logout").status_code == 204
        assert client.get("/api/v1/auth/me").status_code == 401
    again = httpx.get(f"{api.base}/api/v1/auth/me", cookies={"vigil_session": body["token"]})
    assert again.status_code == 401


def test_logout_by_bearer_token(api: Api) -> None:
    token = api.login("auditor1").json()["token"]
    headers = {"Authorization": f"Bearer {token}"}
    with api.client() as client:
        assert client.get("/api/v1/auth/me", headers=headers).json()["role"] == "auditor"
        done = client.post("/api/v1/auth/logout", headers=headers)
        assert done.status_code == 204
        assert "vigil_session=" in done.headers["set-cookie"]
        assert client.get("/api/v1/auth/me", headers=headers).status_code == 401
        assert client.post("/api/v1/auth/logout", headers=headers).status_code == 401


def test_logout_with_an_api_token_is_refused(api: Api) -> None:
    answer = api.call("POST", "/api/v1/auth/logout", "service")
    assert answer.status_code == 400
    assert "API token" in answer.json()["detail"]


def test_me_for_each_kind_of_caller(api: Api) -> None:
    for role in ROLES:
        me = api.call("GET", "/api/v1/auth/me", role.value).json()
        assert (me["kind"], me["name"], me["role"]) == ("user", f"{role.value}1", role.value)
        assert me["display_name"] == f"{role.value}1"
    token = api.call("GET", "/api/v1/auth/me", "service").json()
    assert (token["kind"], token["name"], token["role"]) == ("token", "dashboard", "service")
    assert set(token["permissions"]) == {"events:read", "alerts:read", "cases:read"}
    assert token["email"] is None
    assert api.call("GET", "/api/v1/auth/me", None).status_code == 401


@pytest.mark.parametrize("body", [{}, {"username": "admin1"}, {"password": PASSWORD},
                                  {"username": "", "password": PASSWORD},
                                  {"username": "admin1", "password": PASSWORD, "extra": 1},
                                  {"username": ["admin1"], "password": PASSWORD},
                                  {"username": "admin1", "password": "x" * 2000}])
def test_login_bad_input_is_400(api: Api, body: dict[str, object]) -> None:
    with api.client("127.0.0.2") as client:
        answer = client.post("/api/v1/auth/login", json=body)
        assert answer.status_code == 400, answer.text
        assert client.post("/api/v1/auth/login", content=b"{not json").status_code == 400


def test_wrong_password_then_rate_limit_with_retry_after(api: Api) -> None:
    db = api.db()
    try:
        service.add_user(db, cli_principal(), "target", PASSWORD, role=Role.ANALYST)
    finally:
        db.dispose()
    for index in range(MAX_FAILURES):
        answer = api.login("target", "not the password!", address=f"127.0.1.{index + 1}")
        assert answer.status_code == 401
        assert answer.json()["detail"] == "wrong user name or password"
        assert answer.headers["www-authenticate"] == "Bearer"
    refused = api.login("target", PASSWORD, address="127.0.1.9")  # the right password, too late
    assert refused.status_code == 429
    assert 590 <= int(refused.headers["retry-after"]) <= 600
    assert "too many failed sign-ins" in refused.json()["detail"]
    assert api.login("admin1", PASSWORD, address="127.0.1.9").status_code == 200


def test_rate_limit_per_client_address(api: Api) -> None:
    for name in ("ghost1", "ghost2", "ghost3"):
        assert api.login(name, "guessing guessing", address="127.0.2.1").status_code == 401
    assert api.login("admin1", PASSWORD, address="127.0.2.1").status_code == 429
    assert api.login("admin1", PASSWORD, address="127.0.2.2").status_code == 200


def test_logins_are_audited(api: Api) -> None:
    api.login("responder1", "not the password!", address="127.0.3.1")
    db = api.db()
    try:
        entries = listing(db, object_type="user", object_id="responder1")
    finally:
        db.dispose()
    actions = [(e.actor, e.action) for e in entries]
    assert ("anonymous", "login_failed") in actions
    assert ("user:responder1", "login") in actions
    failed = next(e for e in entries if e.action == "login_failed")
    assert failed.after is not None and failed.after["client"] == "127.0.3.1"


def test_change_own_password(api: Api) -> None:
    db = api.db()
    try:
        service.add_user(db, cli_principal(), "changer", PASSWORD, role=Role.RESPONDER)
    finally:
        db.dispose()
    token = api.login("changer", address="127.0.4.1").json()["token"]
    headers = {"Authorization": f"Bearer {token}"}
    with api.client("127.0.4.1") as client:
        wrong = client.post("/api/v1/auth/password", headers=headers,
                            json={"current_password": "nope nope nope", "new_password": "x" * 20})
        assert wrong.status_code == 403
        weak = client.post("/api/v1/auth/password", headers=headers,
                           json={"current_password": PASSWORD, "new_password": "short"})
        assert weak.status_code == 400 and "at least 12" in weak.json()["detail"]
        done = client.post("/api/v1/auth/password", headers=headers,
                           json={"current_password": PASSWORD, "new_password": "a fresh passphrase"})
        assert done.status_code == 204
        assert client.get("/api/v1/auth/me", headers=headers).status_code == 401
    assert api.login("changer", "a fresh passphrase", address="127.0.4.1").status_code == 200
    service_change = api.call("POST", "/api/v1/auth/password", "service",
                              json={"current_password": "whatever whatever",
                                    "new_password": "whatever whatever 2"})
    assert service_change.status_code == 403


# -- who may call what -------------------------------------------------------------------------

READERS = {"admin", "analyst", "responder", "auditor"}
ADMINS = {"admin"}
ROUTES: list[tuple[str, str, dict[str, object] | None, set[str]]] = [
    ("GET", "/api/v1/users", None, READERS),
    ("GET", "/api/v1/users/analyst1", None, READERS),
    ("PATCH", "/api/v1/users/analyst1", {"email": "analyst1@example.org"}, ADMINS),
    ("POST", "/api/v1/users", {"username": "newbie-{who}", "password": PASSWORD, "role": "auditor"},
     ADMINS),
    ("GET", "/api/v1/teams", None, READERS),
    ("GET", "/api/v1/teams/security", None, READERS),
    ("POST", "/api/v1/teams", {"name": "team-{who}"}, ADMINS),
    ("GET", "/api/v1/tokens", None, ADMINS),
    ("POST", "/api/v1/tokens", {"name": "tok-{who}", "scopes": ["ingest"]}, ADMINS),
    ("DELETE", "/api/v1/tokens/{token}", None, ADMINS),
    ("GET", "/api/v1/auth/me", None, READERS | {"service"}),
]


def _fill(value: object, who: str, token_id: int) -> object:
    if isinstance(value, str):
        return value.replace("{who}", who).replace("{token}", str(token_id))
    if isinstance(value, dict):
        return {k: _fill(v, who, token_id) for k, v in value.items()}
    return value


@pytest.mark.parametrize(("method", "path", "body", "allowed"), ROUTES,
                         ids=[f"{m} {p}" for m, p, _, _ in ROUTES])
def test_every_route_checks_the_role(api: Api, method: str, path: str,
                                     body: dict[str, object] | None, allowed: set[str]) -> None:
    for who in [*(r.value for r in ROLES), "service", None]:
        victim = api.call("POST", "/api/v1/tokens", "admin", json={"name": "victim"}).json()["id"]
        url = str(_fill(path, who or "anon", victim))
        answer = api.call(method, url, who, json=_fill(body, who or "anon", victim))
        if who is None:
            assert answer.status_code == 401, (who, answer.text)
            assert answer.headers["www-authenticate"] == "Bearer"
        elif who in allowed:
            assert answer.status_code in (200, 201), (who, answer.text)
        else:
            assert answer.status_code == 403, (who, answer.text)
            assert "may not" in answer.json()["detail"]


def test_forbidden_comes_before_bad_input(api: Api) -> None:
    assert api.call("POST", "/api/v1/users", "analyst", json={"bad": True}).status_code == 403
    assert api.call("POST", "/api/v1/users", None, json={"bad": True}).status_code == 401
    assert api.call("POST", "/api/v1/users", "admin", json={"bad": True}).status_code == 400


# -- users, teams and tokens ---------------------------------------------------------------


def test_create_update_and_disable_a_user(api: Api) -> None:
    made = api.call("POST", "/api/v1/users", "admin", json={
        "username": "Zoe", "password": PASSWORD, "role": "responder", "team": "operations",
        "email": "zoe@example.org", "display_name": "Zoé Z."})
    assert made.status_code == 201, made.text
    body = made.json()
    assert {k: body[k] for k in ("username", "role", "team", "email", "display_name", "disabled")} == {
        "username": "zoe", "role": "responder", "team": "operations", "email": "zoe@example.org",
        "display_name": "Zoé Z.", "disabled": False}
    assert "password" not in made.text and "argon2" not in made.text
    zoe = api.login("zoe", address="127.0.5.1").json()["token"]
    assert api.call("GET", "/api/v1/users/ZOE", "auditor").json()["id"] == body["id"]

    changed = api.call("PATCH", "/api/v1/users/zoe", "admin",
                       json={"role": "analyst", "team": None, "email": None})
    assert changed.status_code == 200
    assert (changed.json()["role"], changed.json()["team"], changed.json()["email"]) == (
        "analyst", None, None)
    kept = api.call("PATCH", "/api/v1/users/zoe", "admin", json={"display_name": "Zoe"}).json()
    assert (kept["role"], kept["display_name"]) == ("analyst", "Zoe")
    with api.client() as client:
        me = client.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {zoe}"}).json()
    assert me["role"] == "analyst"

    disabled = api.call("PATCH", "/api/v1/users/zoe", "admin", json={"disabled": True})
    assert disabled.json()["disabled"] is True
    with api.client() as client:
        assert client.get("/api/v1/auth/me",
                          headers={"Authorization": f"Bearer {zoe}"}).status_code == 401
    assert api.login("zoe", address="127.0.5.1").status_code == 401
    api.call("PATCH", "/api/v1/users/zoe", "admin",
             json={"disabled": False, "password": "zoe's new passphrase"})
    assert api.login("zoe", "zoe's new passphrase", address="127.0.5.1").status_code == 200


@pytest.mark.parametrize(("method", "path", "body", "status", "fragment"), [
    ("POST", "/api/v1/users", {"username": "weak", "password": "short", "role": "analyst"}, 400,
     "at least 12"),
    ("POST", "/api/v1/users", {"username": "bad name", "password": PASSWORD, "role": "analyst"},
     400, "user name"),
    ("POST", "/api/v1/users", {"username": "svc", "password": PASSWORD, "role": "service"}, 400,
     "service role"),
    ("POST", "/api/v1/users", {"username": "svc", "password": PASSWORD, "role": "boss"}, 400, "role"),
    ("POST", "/api/v1/users", {"username": "admin1", "password": PASSWORD, "role": "admin"}, 400,
     "already taken"),
    ("POST", "/api/v1/users", {"username": "x", "password": PASSWORD, "role": "analyst",
                               "team": "nowhere"}, 404, "no team"),
    ("POST", "/api/v1/users", {"username": "x", "password": PASSWORD, "role": "analyst",
                               "email": "nope"}, 400, "email"),
    ("PATCH", "/api/v1/users/analyst1", {"role": None}, 400, "role cannot be null"),
    ("PATCH", "/api/v1/users/analyst1", {"password": "short"}, 400, "at least 12"),
    ("PATCH", "/api/v1/users/analyst1", {"unknown": 1}, 400, "unknown"),
    ("PATCH", "/api/v1/users/nobody", {"disabled": True}, 404, "no user"),
    ("PATCH", "/api/v1/users/admin1", {"role": "auditor"}, 400, "last enabled admin"),
    ("GET", "/api/v1/users/nobody", None, 404, "no user"),
    ("GET", "/api/v1/users?limit=0", None, 400, "limit"),
    ("GET", "/api/v1/users?limit=501", None, 400, "limit"),
    ("GET", "/api/v1/users?offset=-1", None, 400, "offset"),
    ("GET", "/api/v1/users?role=boss", None, 400, "role"),
    ("GET", "/api/v1/users?team=nowhere", None, 404, "no team"),
    ("GET", "/api/v1/teams/nowhere", None, 404, "no team"),
    ("POST", "/api/v1/teams", {"name": "security"}, 400, "already exists"),
    ("POST", "/api/v1/teams", {"name": "bad team"}, 400, "team name"),
    ("POST", "/api/v1/tokens", {"name": "bad name"}, 400, "token name"),
    ("POST", "/api/v1/tokens", {"name": "t", "scopes": ["users:admin"]}, 400, "does not hold"),
    ("POST", "/api/v1/tokens", {"name": "t", "scopes": ["nope"]}, 400, "unknown scope"),
    ("POST", "/api/v1/tokens", {"name": "t", "expires_days": 0}, 400, "expires_days"),
    ("POST", "/api/v1/tokens", {"name": "t", "user": "nobody"}, 404, "no user"),
    ("POST", "/api/v1/tokens", {"name": "t", "user": "analyst1", "role": "auditor"}, 400,
     "do not go together"),
    ("DELETE", "/api/v1/tokens/999999", None, 404, "no token"),
    ("DELETE", "/api/v1/tokens/abc", None, 400, "token_id"),
])
def test_bad_input(api: Api, method: str, path: str, body: dict[str, object] | None, status: int,
                   fragment: str) -> None:
    answer = api.call(method, path, "admin", json=body)
    assert answer.status_code == status, answer.text
    assert fragment in answer.json()["detail"]


def test_pagination(api: Api) -> None:
    first = api.call("GET", "/api/v1/users?limit=2", "analyst").json()
    second = api.call("GET", "/api/v1/users?limit=2&offset=2", "analyst").json()
    everyone = api.call("GET", "/api/v1/users?limit=500", "analyst").json()
    assert first["total"] == second["total"] == everyone["total"] >= 4
    assert (first["limit"], first["offset"], second["offset"]) == (2, 0, 2)
    names = [u["username"] for u in everyone["items"]]
    assert names == sorted(names)
    assert [u["username"] for u in first["items"] + second["items"]] == names[:4]
    ops = api.call("GET", "/api/v1/users?team=operations&role=responder", "auditor").json()
    assert "responder1" in [u["username"] for u in ops["items"]]
    assert all(u["team"] == "operations" and u["role"] == "responder" for u in ops["items"])
    teams = api.call("GET", "/api/v1/teams?limit=1&offset=1", "auditor").json()
    assert teams["total"] >= 2 and len(teams["items"]) == 1
    tokens = api.call("GET", "/api/v1/tokens?limit=1", "admin").json()
    assert tokens["total"] >= 1 and len(tokens["items"]) == 1


def test_tokens_are_shown_once_and_revoked_at_once(api: Api) -> None:
    made = api.call("POST", "/api/v1/tokens", "admin",
                    json={"name": "agent-7", "scopes": ["ingest", "events:read"], "expires_days": 30})
    assert made.status_code == 201
    body = made.json()
    token = body["token"]
    assert token.startswith("vgt_")
    assert (body["role"], body["scopes"], body["active"]) == ("service", ["events:ingest",
                                                                          "events:read"], True)
    with api.client() as client:
        me = client.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {token}"}).json()
    assert me["kind"] == "token" and set(me["permissions"]) == {"events:ingest", "events:read"}
    listed = api.call("GET", "/api/v1/tokens?limit=500", "admin")
    assert token not in listed.text and token[4:] not in listed.text
    assert body["id"] in [t["id"] for t in listed.json()["items"]]
    revoked = api.call("DELETE", f"/api/v1/tokens/{body['id']}", "admin").json()
    assert revoked["active"] is False and revoked["revoked_at"] is not None
    with api.client() as client:
        assert client.get("/api/v1/auth/me",
                          headers={"Authorization": f"Bearer {token}"}).status_code == 401


def test_personal_token(api: Api) -> None:
    made = api.call("POST", "/api/v1/tokens", "admin",
                    json={"name": "auditor-script", "user": "auditor1", "scopes": ["audit:read"]})
    assert made.status_code == 201, made.text
    assert (made.json()["user"], made.json()["role"]) == ("auditor1", "auditor")
    with api.client() as client:
        headers = {"Authorization": f"Bearer {made.json()['token']}"}
        me = client.get("/api/v1/auth/me", headers=headers).json()
        assert (me["kind"], me["name"], me["permissions"]) == ("user", "auditor1", ["audit:read"])
        assert client.get("/api/v1/users", headers=headers).status_code == 403  # narrowed


def test_the_collector_still_takes_old_scoped_tokens(api: Api) -> None:
    ingest = create_token(api.data_dir, "ingest", name="legacy")
    with api.client() as client:
        sent = client.post("/api/v1/ingest", content=b'{"msg": "hello"}',
                           headers={"Authorization": f"Bearer {ingest}"})
        assert sent.status_code == 202, sent.text
        read = client.post("/api/v1/ingest", content=b'{"msg": "hello"}',
                           headers={"Authorization": f"Bearer {api.sessions['service']}"})
        assert read.status_code == 403


def test_changes_through_the_api_name_the_caller(api: Api) -> None:
    api.call("POST", "/api/v1/teams", "admin", json={"name": "audited-team"})
    db = api.db()
    try:
        entry = listing(db, object_type="team", object_id="audited-team")[0]
    finally:
        db.dispose()
    assert (entry.actor, entry.action) == ("user:admin1", "create")
