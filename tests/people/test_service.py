"""Users and teams: adding, changing, looking up; policy, hashing and audit; SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from vigil.audit.service import listing, verify
from vigil.core.auth import Role, cli_principal
from vigil.core.db import StateDB
from vigil.core.errors import InputError, NotFoundError
from vigil.people import service
from vigil.people.models import User
from vigil.people.service import KEEP

ADMIN = cli_principal()
PASSWORD = "correct horse battery"


def add(db: StateDB, name: str, role: Role = Role.ANALYST, **extra: str) -> service.UserInfo:
    return service.add_user(db, ADMIN, name, PASSWORD, role=role, **extra)


def test_seeded_teams(state_db: StateDB) -> None:
    page = service.list_teams(state_db)
    assert [t.name for t in page.teams] == ["operations", "security"]
    assert page.total == 2
    assert all(t.members == 0 and t.description for t in page.teams)


def test_add_and_look_up(state_db: StateDB) -> None:
    created = add(state_db, "Alice", team="security", email="alice@example.org",
                  display_name="Alice Martin")
    assert created.username == "alice"
    assert (created.role, created.team, created.email, created.display_name) == (
        Role.ANALYST, "security", "alice@example.org", "Alice Martin")
    assert not created.disabled and created.active and created.last_login_at is None
    assert service.get_user(state_db, "ALICE") == created
    assert service.find_user(state_db, " alice ") == created
    assert service.get_user_by_id(state_db, created.id) == created
    assert service.find_user(state_db, "bob") is None
    assert service.user_exists(state_db, "alice")
    assert not service.user_exists(state_db, "bob")
    assert service.email_of(state_db, "Alice") == "alice@example.org"
    with pytest.raises(NotFoundError, match="no user named 'bob'"):
        service.get_user(state_db, "bob")
    with pytest.raises(NotFoundError, match="no user with id 999"):
        service.get_user_by_id(state_db, 999)


def test_display_name_defaults_to_the_user_name(state_db: StateDB) -> None:
    created = add(state_db, "carol", Role.AUDITOR)
    assert (created.display_name, created.email, created.team) == ("carol", None, None)


def test_password_is_stored_as_argon2_only(state_db: StateDB) -> None:
    add(state_db, "dave")
    with state_db.session() as session:
        row = session.scalars(select(User)).one()
        values = [str(getattr(row, c.key)) for c in User.__table__.columns]
    assert row.password_hash.startswith("$argon2id$")
    assert not any(PASSWORD in value for value in values)
    other = service.add_user(state_db, ADMIN, "erin", PASSWORD, role=Role.ANALYST)
    with state_db.session() as session:
        hashes = session.scalars(select(User.password_hash).order_by(User.id)).all()
    assert other.username == "erin" and hashes[0] != hashes[1]  # salted


@pytest.mark.parametrize(("password", "message"), [
    ("tiny-pw", "at least 12"), ("x" * 11, "at least 12"), (" " * 14, "only spaces"),
    ("frank-the-tank", "user name"), ("x" * 1025, "at most 1024")])
def test_password_policy(state_db: StateDB, password: str, message: str) -> None:
    name = "frank-the-tank"
    with pytest.raises(InputError, match=message) as info:
        service.add_user(state_db, ADMIN, name, password, role=Role.ANALYST)
    assert password.strip() not in str(info.value) or not password.strip()
    assert service.find_user(state_db, name) is None


@pytest.mark.parametrize("name", ["", " ", "-dash", ".dot", "a b", "x" * 65, "t\tab", "semi;colon",
                                  "mail@example.org", "ünïcode", "new\nline"])
def test_bad_user_names(state_db: StateDB, name: str) -> None:
    with pytest.raises(InputError, match="user name"):
        add(state_db, name)


def test_bad_inputs(state_db: StateDB) -> None:
    with pytest.raises(InputError, match="not an email"):
        add(state_db, "gina", email="not-an-address")
    with pytest.raises(InputError, match="unknown role"):
        add(state_db, "gina", role="boss")  # type: ignore[arg-type]
    with pytest.raises(InputError, match="service role is for API tokens"):
        add(state_db, "gina", role=Role.SERVICE)
    with pytest.raises(NotFoundError, match="no team named 'red'"):
        add(state_db, "gina", team="red")
    with pytest.raises(InputError, match="display name"):
        add(state_db, "gina", display_name="bad\x07name")
    assert service.list_users(state_db).total == 0


def test_user_names_are_unique_in_any_case(state_db: StateDB) -> None:
    add(state_db, "hank")
    for name in ("hank", "HANK", " Hank "):
        with pytest.raises(InputError, match="already taken"):
            add(state_db, name)
    assert service.list_users(state_db).total == 1


def test_list_filters_and_pagination(state_db: StateDB) -> None:
    for index, (role, team) in enumerate([(Role.ANALYST, "security"), (Role.RESPONDER, "operations"),
                                          (Role.RESPONDER, "operations"), (Role.AUDITOR, None),
                                          (Role.ADMIN, "security")]):
        add(state_db, f"user{index}", role, **({"team": team} if team else {}))
    service.disable_user(state_db, ADMIN, "user2")
    everyone = service.list_users(state_db)
    assert everyone.total == 5
    assert [u.username for u in everyone.users] == [f"user{i}" for i in range(5)]
    pages = [service.list_users(state_db, limit=2, offset=o) for o in (0, 2, 4, 6)]
    assert [[u.username for u in p.users] for p in pages] == [
        ["user0", "user1"], ["user2", "user3"], ["user4"], []]
    assert {p.total for p in pages} == {5}
    ops = service.list_users(state_db, team="operations")
    assert [u.username for u in ops.users] == ["user1", "user2"]
    assert [u.username for u in service.list_users(state_db, team="operations",
                                                   include_disabled=False).users] == ["user1"]
    assert [u.username for u in service.list_users(state_db, role=Role.RESPONDER).users] == [
        "user1", "user2"]
    assert [u.username for u in service.users_of_team(state_db, "Operations")] == ["user1"]
    assert [u.username for u in service.users_of_team(state_db, "operations",
                                                      include_disabled=True)] == ["user1", "user2"]
    teams = {t.name: t.members for t in service.list_teams(state_db).teams}
    assert teams == {"operations": 2, "security": 2}
    with pytest.raises(NotFoundError):
        service.users_of_team(state_db, "nobody")
    for limit, offset in ((0, 0), (501, 0), (10, -1)):
        with pytest.raises(InputError, match="limit"):
            service.list_users(state_db, limit=limit, offset=offset)


def test_emails_of_enabled_users(state_db: StateDB) -> None:
    add(state_db, "ivan", email="ivan@example.org")
    add(state_db, "judy", email="judy@example.org")
    add(state_db, "kim")
    service.disable_user(state_db, ADMIN, "judy")
    assert service.emails_of(state_db, ["Ivan", "judy", "kim", "nobody"]) == {
        "Ivan": "ivan@example.org"}
    assert service.emails_of(state_db, []) == {}
    assert service.email_of(state_db, "judy") is None


def test_update_user_fields(state_db: StateDB) -> None:
    add(state_db, "leo", team="security", email="leo@example.org")
    changed = service.update_user(state_db, ADMIN, "leo", role=Role.RESPONDER, team="operations",
                                  email=None, display_name="Leo L.")
    assert (changed.role, changed.team, changed.email, changed.display_name) == (
        Role.RESPONDER, "operations", None, "Leo L.")
    no_team = service.update_user(state_db, ADMIN, "leo", team=None)
    assert no_team.team is None and no_team.role is Role.RESPONDER
    same = service.update_user(state_db, ADMIN, "leo", role=KEEP)
    assert same == no_team
    assert service.set_role(state_db, ADMIN, "LEO", "auditor").role is Role.AUDITOR
    with pytest.raises(InputError, match="service role"):
        service.set_role(state_db, ADMIN, "leo", Role.SERVICE)
    with pytest.raises(NotFoundError):
        service.update_user(state_db, ADMIN, "nobody", disabled=True)


def test_disable_and_enable(state_db: StateDB) -> None:
    add(state_db, "mia")
    assert service.disable_user(state_db, ADMIN, "mia").disabled
    assert not service.user_exists(state_db, "mia")
    assert service.user_exists(state_db, "mia", active_only=False)
    assert not service.enable_user(state_db, ADMIN, "mia").disabled


def test_the_last_enabled_admin_stays(state_db: StateDB) -> None:
    add(state_db, "root", Role.ADMIN)
    with pytest.raises(InputError, match="last enabled admin"):
        service.disable_user(state_db, ADMIN, "root")
    with pytest.raises(InputError, match="last enabled admin"):
        service.set_role(state_db, ADMIN, "root", Role.ANALYST)
    add(state_db, "root2", Role.ADMIN)
    assert service.disable_user(state_db, ADMIN, "root").disabled
    with pytest.raises(InputError, match="last enabled admin"):
        service.set_role(state_db, ADMIN, "root2", Role.AUDITOR)
    assert service.get_user(state_db, "root2").role is Role.ADMIN


def test_set_password(state_db: StateDB) -> None:
    add(state_db, "nina")
    with state_db.session() as session:
        before = session.scalars(select(User.password_hash)).one()
    with pytest.raises(InputError, match="at least 12"):
        service.set_password(state_db, ADMIN, "nina", "short")
    service.set_password(state_db, ADMIN, "nina", "another long passphrase")
    with state_db.session() as session:
        after = session.scalars(select(User.password_hash)).one()
    assert after != before and after.startswith("$argon2id$")
    with pytest.raises(NotFoundError):
        service.set_password(state_db, ADMIN, "nobody", "another long passphrase")


def test_teams(state_db: StateDB) -> None:
    created = service.add_team(state_db, ADMIN, "Red-Team", "  Adversary emulation  ")
    assert (created.name, created.description, created.members) == ("red-team", "Adversary emulation", 0)
    assert service.get_team(state_db, "RED-TEAM") == created
    with pytest.raises(InputError, match="already exists"):
        service.add_team(state_db, ADMIN, "security")
    for bad in ("", "blue team", "-x", "t" * 65):
        with pytest.raises(InputError, match="team name"):
            service.add_team(state_db, ADMIN, bad)
    with pytest.raises(NotFoundError, match="no team named"):
        service.get_team(state_db, "green")
    page = service.list_teams(state_db, limit=1, offset=1)
    assert page.total == 3 and [t.name for t in page.teams] == ["red-team"]


def test_every_change_is_audited(state_db: StateDB) -> None:
    add(state_db, "omar", team="security", email="omar@example.org")
    service.set_role(state_db, ADMIN, "omar", Role.RESPONDER)
    service.update_user(state_db, ADMIN, "omar", role=Role.RESPONDER)  # no change, no record
    service.disable_user(state_db, ADMIN, "omar")
    service.enable_user(state_db, ADMIN, "omar")
    service.set_password(state_db, ADMIN, "omar", "a brand new passphrase")
    service.add_team(state_db, ADMIN, "blue")
    entries = list(reversed(listing(state_db)))
    assert [(e.action, e.object_type, e.object_id) for e in entries] == [
        ("create", "user", "omar"), ("update", "user", "omar"), ("update", "user", "omar"),
        ("update", "user", "omar"), ("set_password", "user", "omar"), ("create", "team", "blue")]
    assert {e.actor for e in entries} == {ADMIN.actor}
    create, role, disable, enable, password, _ = entries
    assert create.after == {"username": "omar", "display_name": "omar", "email": "omar@example.org",
                            "role": "analyst", "team": "security", "disabled": False}
    assert (role.before, role.after) == ({"role": "analyst"}, {"role": "responder"})
    assert (disable.before, disable.after) == ({"disabled": False},
                                               {"disabled": True, "sessions_ended": 0})
    assert (enable.before, enable.after) == ({"disabled": True}, {"disabled": False})
    assert password.after == {"sessions_ended": 0}
    for entry in entries:
        assert "argon2" not in repr(entry) and "passphrase" not in repr(entry)
    assert verify(state_db).ok


def test_failed_change_writes_no_audit_record(state_db: StateDB) -> None:
    add(state_db, "pia")
    with pytest.raises(InputError):
        add(state_db, "pia")
    with pytest.raises(NotFoundError):
        service.update_user(state_db, ADMIN, "pia", team="nowhere")
    assert [e.action for e in listing(state_db)] == ["create"]
    assert service.get_user(state_db, "pia").team is None
