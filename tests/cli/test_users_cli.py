"""``vigil users``, ``vigil teams`` and ``vigil tokens``, run as real processes."""

from __future__ import annotations

import csv
import getpass
import io
import json
import subprocess
from pathlib import Path

import pytest

from helpers import CLI_ENV, VIGIL, Run, assert_user_error, ok, run_vigil
from vigil.audit.service import listing
from vigil.core.auth import Permission, PrincipalKind, Role
from vigil.core.config import AuthSettings
from vigil.core.db import StateDB
from vigil.people import service, sessions, tokens
from vigil.people.auth import authenticate

PASSWORD = "correct horse battery"


def vigil_with_input(data_dir: Path, stdin: str, *args: str) -> Run:
    """``vigil`` with text on standard input (for --password-stdin)."""
    done = subprocess.run([*VIGIL, "--data-dir", str(data_dir), *args], input=stdin,
                          capture_output=True, text=True, timeout=180, env=CLI_ENV, check=False)
    return Run(tuple(args), done.returncode, done.stdout, done.stderr)


def add_user(data_dir: Path, name: str, *options: str, password: str = PASSWORD) -> Run:
    return vigil_with_input(data_dir, password + "\n", "users", "add", name, "--password-stdin",
                            *options)


def open_db(data_dir: Path) -> StateDB:
    return StateDB(f"sqlite:///{data_dir / 'state.db'}")


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


def test_add_list_and_sign_in(data_dir: Path) -> None:
    added = ok(add_user(data_dir, "Alice", "--role", "analyst", "--team", "security",
                        "--email", "alice@example.org", "--display-name", "Alice Martin"))
    assert "user added: alice: role analyst, team security" in added.out
    ok(add_user(data_dir, "bob", "--role", "responder", "--team", "operations"))
    table = ok(run_vigil(data_dir, "users", "list")).out
    assert "alice" in table and "Alice Martin" in table and "responder" in table
    assert PASSWORD not in table
    rows = [json.loads(line) for line in ok(run_vigil(data_dir, "users", "list", "--format", "json"))
            .out.splitlines()]
    assert [(r["username"], r["role"], r["team"], r["disabled"]) for r in rows] == [
        ("alice", "analyst", "security", False), ("bob", "responder", "operations", False)]
    assert rows[0]["email"] == "alice@example.org"
    csv_rows = list(csv.DictReader(io.StringIO(
        ok(run_vigil(data_dir, "users", "list", "-o", "csv", "--team", "operations")).out)))
    assert [r["username"] for r in csv_rows] == ["bob"]
    db = open_db(data_dir)
    try:
        opened = sessions.login(db, AuthSettings(), "alice", PASSWORD)
        who = authenticate(db, f"Bearer {opened.token}")
        assert (who.kind, who.name, who.role, who.team) == (PrincipalKind.USER, "alice",
                                                            Role.ANALYST, "security")
        entries = listing(db, object_type="user", object_id="alice")
        assert entries[-1].action == "create"
        assert entries[-1].actor == f"system:cli:{getpass.getuser()}"
    finally:
        db.dispose()


def test_disable_enable_role_passwd_update(data_dir: Path) -> None:
    ok(add_user(data_dir, "carol", "--role", "auditor"))
    assert "user disabled: carol: role auditor (disabled)" in ok(
        run_vigil(data_dir, "users", "disable", "carol")).out
    assert "disabled" in ok(run_vigil(data_dir, "users", "list", "-o", "json")).out
    assert ok(run_vigil(data_dir, "users", "list", "--active", "-o", "json")).out == ""
    assert "user enabled" in ok(run_vigil(data_dir, "users", "enable", "CAROL")).out
    assert "role changed: carol: role responder" in ok(
        run_vigil(data_dir, "users", "role", "carol", "responder")).out
    changed = ok(vigil_with_input(data_dir, "a brand new passphrase\n", "users", "passwd", "carol",
                                  "--password-stdin"))
    assert "password of carol changed" in changed.out
    updated = ok(run_vigil(data_dir, "users", "update", "carol", "--team", "operations",
                           "--email", "carol@example.org", "--display-name", "Carol C."))
    assert "team operations" in updated.out
    assert "team" not in ok(run_vigil(data_dir, "users", "update", "carol", "--no-team")).out
    db = open_db(data_dir)
    try:
        user = service.get_user(db, "carol")
        assert (user.role, user.team, user.email, user.display_name, user.disabled) == (
            Role.RESPONDER, None, "carol@example.org", "Carol C.", False)
        assert sessions.login(db, AuthSettings(), "carol", "a brand new passphrase").username == "carol"
        actions = [e.action for e in reversed(listing(db, object_type="user", object_id="carol"))]
        assert actions[:6] == ["create", "update", "update", "update", "set_password", "update"]
    finally:
        db.dispose()


def test_teams(data_dir: Path) -> None:
    listed = ok(run_vigil(data_dir, "teams", "list")).out
    assert "security" in listed and "operations" in listed
    assert "team added: red-team" in ok(run_vigil(data_dir, "teams", "add", "Red-Team",
                                                  "--description", "Adversary emulation")).out
    ok(add_user(data_dir, "dan", "--role", "analyst", "--team", "red-team"))
    rows = {json.loads(line)["team"]: json.loads(line)
            for line in ok(run_vigil(data_dir, "teams", "list", "-o", "json")).out.splitlines()}
    assert rows["red-team"]["members"] == 1
    assert rows["red-team"]["description"] == "Adversary emulation"
    assert_user_error(run_vigil(data_dir, "teams", "add", "security"), "already exists")


def test_tokens_with_roles_users_and_expiry(data_dir: Path) -> None:
    ok(add_user(data_dir, "erin", "--role", "analyst"))
    default = ok(run_vigil(data_dir, "tokens", "create", "collector"))
    assert "events:ingest" in default.out
    scoped = ok(run_vigil(data_dir, "tokens", "create", "bridge", "--scope", "read",
                          "--scope", "alerts:write", "--expires-days", "30"))
    personal = ok(run_vigil(data_dir, "tokens", "create", "erin-laptop", "--user", "erin"))
    auditor = ok(run_vigil(data_dir, "tokens", "create", "evidence", "--role", "auditor"))
    secrets = {run.out.strip().splitlines()[-1] for run in (default, scoped, personal, auditor)}
    assert len(secrets) == 4 and all(s.startswith("vgt_") for s in secrets)
    listed = ok(run_vigil(data_dir, "tokens", "list", "-o", "json")).out
    assert not any(s in listed or s[4:20] in listed for s in secrets)
    rows = {json.loads(line)["name"]: json.loads(line) for line in listed.splitlines()}
    assert rows["collector"]["scopes"] == "events:ingest"
    assert rows["bridge"]["scopes"] == "events:read alerts:read alerts:write cases:read"
    assert rows["bridge"]["expires"]
    assert (rows["erin-laptop"]["user"], rows["erin-laptop"]["role"]) == ("erin", "analyst")
    assert rows["evidence"]["scopes"] == "all of the role"
    db = open_db(data_dir)
    try:
        token = personal.out.strip().splitlines()[-1]
        who = authenticate(db, f"Bearer {token}")
        assert (who.kind, who.name, who.role) == (PrincipalKind.USER, "erin", Role.ANALYST)
        bridge = authenticate(db, f"Bearer {scoped.out.strip().splitlines()[-1]}")
        assert Permission.ALERTS_WRITE in bridge.permissions
        token_id = next(t.id for t in tokens.listing(db) if t.name == "bridge")
        assert f"token {token_id} revoked" in ok(
            run_vigil(data_dir, "tokens", "revoke", str(token_id))).out
        assert "bridge" not in ok(run_vigil(data_dir, "tokens", "list", "--active")).out
        assert [e.action for e in listing(db, object_type="token")].count("create") == 4
    finally:
        db.dispose()


def test_user_mistakes(data_dir: Path) -> None:
    ok(add_user(data_dir, "frank", "--role", "analyst"))
    assert_user_error(add_user(data_dir, "frank", "--role", "analyst"), "already taken")
    assert_user_error(add_user(data_dir, "gina", "--role", "analyst", password="short"),
                      "at least 12")
    assert_user_error(add_user(data_dir, "gina", "--role", "boss"), "unknown role")
    assert_user_error(add_user(data_dir, "gina", "--role", "service"), "service role")
    assert_user_error(add_user(data_dir, "gina", "--role", "analyst", "--team", "nowhere"),
                      "no team named")
    assert_user_error(add_user(data_dir, "bad name", "--role", "analyst"), "user name")
    assert_user_error(add_user(data_dir, "gina", "--role", "analyst", password=""), "no password")
    assert_user_error(vigil_with_input(data_dir, "", "users", "add", "gina", "--role", "analyst"),
                      "--password-stdin")  # no terminal to prompt on
    assert_user_error(run_vigil(data_dir, "users", "disable", "nobody"), "no user named")
    assert_user_error(run_vigil(data_dir, "users", "role", "frank", "overlord"), "unknown role")
    assert_user_error(run_vigil(data_dir, "users", "list", "--format", "xml"), "--format")
    assert_user_error(run_vigil(data_dir, "users", "list", "--team", "nowhere"), "no team")
    assert_user_error(run_vigil(data_dir, "users", "update", "frank", "--team", "security",
                                "--no-team"), "do not go together")
    assert_user_error(run_vigil(data_dir, "tokens", "create", "t", "--scope", "everything"),
                      "unknown scope")
    assert_user_error(run_vigil(data_dir, "tokens", "create", "t", "--scope", "users:admin"),
                      "does not hold")
    assert_user_error(run_vigil(data_dir, "tokens", "create", "t", "--user", "nobody"), "no user")
    assert_user_error(run_vigil(data_dir, "tokens", "create", "t", "--user", "frank",
                                "--role", "auditor"), "do not go together")
    assert_user_error(run_vigil(data_dir, "tokens", "create", "t", "--expires-days", "0"), "expiry")
    assert_user_error(run_vigil(data_dir, "tokens", "list", "-o", "xml"), "--format")
    assert [u.username for u in _users(data_dir)] == ["frank"]


def test_the_last_admin_cannot_be_disabled(data_dir: Path) -> None:
    ok(add_user(data_dir, "root", "--role", "admin"))
    assert_user_error(run_vigil(data_dir, "users", "disable", "root"), "last enabled admin")
    assert_user_error(run_vigil(data_dir, "users", "role", "root", "auditor"), "last enabled admin")


def _users(data_dir: Path) -> list[service.UserInfo]:
    db = open_db(data_dir)
    try:
        return service.list_users(db).users
    finally:
        db.dispose()
