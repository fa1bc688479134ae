"""Sign-in sessions: login, authentication by bearer and cookie, expiry, idle timeout, logout,
the rate limit and the audit records; SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select, update

from vigil.audit.service import listing
from vigil.core.auth import ROLE_PERMISSIONS, PrincipalKind, Role, cli_principal
from vigil.core.config import AuthSettings
from vigil.core.db import StateDB
from vigil.core.errors import AuthError, ForbiddenError, InputError, TooManyAttemptsError
from vigil.core.timeutil import to_utc, utcnow
from vigil.people import service, sessions
from vigil.people.auth import TOUCH_EVERY, authenticate
from vigil.people.credentials import SESSION_PREFIX, digest
from vigil.people.models import LoginAttempt, SignInSession, User

ADMIN = cli_principal()
PASSWORD = "correct horse battery"
SETTINGS = AuthSettings(session_hours=8, idle_minutes=30, login_max_failures=3,
                        login_window_seconds=600)


@pytest.fixture
def db(state_db: StateDB) -> StateDB:
    service.add_user(state_db, ADMIN, "alice", PASSWORD, role=Role.RESPONDER, team="operations")
    return state_db


def test_login_opens_a_session(db: StateDB) -> None:
    before = utcnow()
    opened = sessions.login(db, SETTINGS, "Alice", PASSWORD, "192.0.2.1")
    assert opened.token.startswith(SESSION_PREFIX) and len(opened.token) > 40
    assert (opened.username, opened.role, opened.idle_minutes) == ("alice", Role.RESPONDER, 30)
    assert timedelta(hours=8) <= opened.expires_at - before < timedelta(hours=8, minutes=1)
    for who in (authenticate(db, f"Bearer {opened.token}"),
                authenticate(db, None, opened.token),
                authenticate(db, f"bearer  {opened.token} ", "ignored-cookie")):
        assert (who.kind, who.name, who.role, who.team) == (
            PrincipalKind.USER, "alice", Role.RESPONDER, "operations")
        assert who.permissions == ROLE_PERMISSIONS[Role.RESPONDER]
    user = service.get_user(db, "alice")
    assert user.last_login_at is not None and user.last_login_at >= before


def test_only_the_token_hash_is_stored(db: StateDB) -> None:
    opened = sessions.login(db, SETTINGS, "alice", PASSWORD)
    with db.session() as session:
        row = session.scalars(select(SignInSession)).one()
        values = [str(getattr(row, c.key)) for c in SignInSession.__table__.columns]
    assert row.token_hash == digest(opened.token)
    assert not any(opened.token in v or opened.token[4:] in v for v in values)


@pytest.mark.parametrize("password", ["wrong password here", PASSWORD.upper(), PASSWORD + " ", ""])
def test_wrong_password(db: StateDB, password: str) -> None:
    with pytest.raises(AuthError, match="wrong user name or password"):
        sessions.login(db, SETTINGS, "alice", password)


def test_unknown_and_disabled_users_get_the_same_answer(db: StateDB) -> None:
    with pytest.raises(AuthError, match="wrong user name or password"):
        sessions.login(db, SETTINGS, "nobody", PASSWORD)
    service.add_user(db, ADMIN, "bob", PASSWORD, role=Role.ANALYST)
    service.disable_user(db, ADMIN, "bob")
    with pytest.raises(AuthError, match="wrong user name or password"):
        sessions.login(db, SETTINGS, "bob", PASSWORD)


def test_logins_are_audited(db: StateDB) -> None:
    opened = sessions.login(db, SETTINGS, "alice", PASSWORD, "192.0.2.1")
    with pytest.raises(AuthError):
        sessions.login(db, SETTINGS, "alice", "not the password", "192.0.2.2")
    with pytest.raises(AuthError):
        sessions.login(db, SETTINGS, "mallory", "not the password", "192.0.2.3")
    assert sessions.logout(db, opened.token)
    entries = [e for e in reversed(listing(db)) if e.object_type != "user" or e.action != "create"]
    assert [(e.actor, e.action, e.object_type, e.object_id) for e in entries] == [
        ("user:alice", "login", "user", "alice"),
        ("anonymous", "login_failed", "user", "alice"),
        ("anonymous", "login_failed", "user", "mallory"),
        ("user:alice", "logout", "session", str(opened.id))]
    assert entries[0].after is not None and entries[0].after["client"] == "192.0.2.1"
    assert entries[1].after == {"client": "192.0.2.2", "reason": "wrong password", "failures": 1}
    assert entries[2].after == {"client": "192.0.2.3", "reason": "unknown user", "failures": 1}
    assert "not the password" not in repr(entries)


def test_logout_ends_the_session(db: StateDB) -> None:
    first = sessions.login(db, SETTINGS, "alice", PASSWORD)
    second = sessions.login(db, SETTINGS, "alice", PASSWORD)
    assert sessions.logout(db, first.token)
    assert not sessions.logout(db, first.token)
    assert not sessions.logout(db, "vgs_unknown")
    with pytest.raises(AuthError, match="invalid or ended session"):
        authenticate(db, f"Bearer {first.token}")
    assert authenticate(db, None, second.token).name == "alice"


def test_absolute_expiry(db: StateDB) -> None:
    opened = sessions.login(db, SETTINGS, "alice", PASSWORD)
    now = utcnow()
    step = timedelta(minutes=20)  # a request every 20 minutes keeps it from idling out
    moment = now
    while moment + step < opened.expires_at:
        moment += step
        assert authenticate(db, None, opened.token, now=moment).name == "alice"
    with pytest.raises(AuthError, match="session expired"):
        authenticate(db, None, opened.token, now=opened.expires_at)
    with db.session() as session:  # also when the row itself says so
        session.execute(update(SignInSession).values(expires_at=utcnow() - timedelta(seconds=1)))
    with pytest.raises(AuthError, match="session expired"):
        authenticate(db, f"Bearer {opened.token}")


def test_idle_timeout(db: StateDB) -> None:
    opened = sessions.login(db, SETTINGS, "alice", PASSWORD)
    now = utcnow()
    assert authenticate(db, None, opened.token, now=now + timedelta(minutes=29)).name == "alice"
    # that request counted as activity: 29 more minutes are fine, 30 without a request are not
    assert authenticate(db, None, opened.token, now=now + timedelta(minutes=58)).name == "alice"
    with pytest.raises(AuthError, match="30 minutes without activity"):
        authenticate(db, None, opened.token, now=now + timedelta(minutes=88, seconds=1))


def test_last_seen_is_written_at_most_once_a_minute(db: StateDB) -> None:
    opened = sessions.login(db, SETTINGS, "alice", PASSWORD)

    def last_seen() -> object:
        with db.session() as session:
            return to_utc(session.scalars(select(SignInSession.last_seen_at)).one())

    start = last_seen()
    now = utcnow()
    authenticate(db, None, opened.token, now=now + TOUCH_EVERY / 2)
    assert last_seen() == start
    authenticate(db, None, opened.token, now=now + TOUCH_EVERY * 2)
    assert last_seen() == now + TOUCH_EVERY * 2


def test_disabling_a_user_ends_their_sessions(db: StateDB) -> None:
    opened = sessions.login(db, SETTINGS, "alice", PASSWORD)
    service.disable_user(db, ADMIN, "alice")
    with pytest.raises(AuthError):
        authenticate(db, None, opened.token)
    service.enable_user(db, ADMIN, "alice")
    with pytest.raises(AuthError, match="invalid or ended session"):
        authenticate(db, None, opened.token)  # enabling again does not revive them
    assert sessions.login(db, SETTINGS, "alice", PASSWORD).token != opened.token


def test_a_disabled_user_is_refused_even_on_an_open_session(db: StateDB) -> None:
    opened = sessions.login(db, SETTINGS, "alice", PASSWORD)
    with db.session() as session:  # disabled behind the service's back: still refused
        session.execute(update(SignInSession).values(revoked_at=None))
        session.execute(update(User).values(disabled=True))
    with pytest.raises(AuthError, match="disabled"):
        authenticate(db, None, opened.token)


def test_role_changes_apply_to_the_next_request(db: StateDB) -> None:
    opened = sessions.login(db, SETTINGS, "alice", PASSWORD)
    service.set_role(db, ADMIN, "alice", Role.AUDITOR)
    service.update_user(db, ADMIN, "alice", team=None)
    who = authenticate(db, None, opened.token)
    assert (who.role, who.team) == (Role.AUDITOR, None)
    assert who.permissions == ROLE_PERMISSIONS[Role.AUDITOR]


def test_new_password_ends_sessions(db: StateDB) -> None:
    opened = sessions.login(db, SETTINGS, "alice", PASSWORD)
    service.set_password(db, ADMIN, "alice", "the new long passphrase")
    with pytest.raises(AuthError):
        authenticate(db, None, opened.token)
    with pytest.raises(AuthError):
        sessions.login(db, SETTINGS, "alice", PASSWORD)
    assert sessions.login(db, SETTINGS, "alice", "the new long passphrase").username == "alice"
    entry = next(e for e in listing(db) if e.action == "set_password")
    assert entry.after == {"sessions_ended": 1}


def test_change_own_password(db: StateDB) -> None:
    opened = sessions.login(db, SETTINGS, "alice", PASSWORD)
    who = authenticate(db, None, opened.token)
    with pytest.raises(ForbiddenError, match="current password"):
        sessions.change_password(db, SETTINGS, who, "wrong current one", "the new long passphrase")
    with pytest.raises(InputError, match="differ"):
        sessions.change_password(db, SETTINGS, who, PASSWORD, PASSWORD)
    with pytest.raises(InputError, match="at least 12"):
        sessions.change_password(db, SETTINGS, who, PASSWORD, "short")
    sessions.change_password(db, SETTINGS, who, PASSWORD, "the new long passphrase")
    with pytest.raises(AuthError):
        authenticate(db, None, opened.token)
    assert sessions.login(db, SETTINGS, "alice", "the new long passphrase").username == "alice"
    actions = [(e.actor, e.action) for e in reversed(listing(db))]
    assert ("anonymous", "login_failed") in actions
    assert ("user:alice", "set_password") in actions


# -- rate limit ------------------------------------------------------------------------------


def fail(db: StateDB, username: str = "alice", client: str = "192.0.2.1") -> None:
    with pytest.raises(AuthError):
        sessions.login(db, SETTINGS, username, "not the password", client)


def test_rate_limit_per_user_name(db: StateDB) -> None:
    for index in range(3):
        fail(db, client=f"198.51.100.{index}")
    with pytest.raises(TooManyAttemptsError, match="for this user name") as info:
        sessions.login(db, SETTINGS, "alice", PASSWORD, "203.0.113.9")  # even the right password
    assert info.value.http_status == 429
    assert 590 <= info.value.retry_after <= 600
    later = utcnow() + timedelta(seconds=601)
    assert sessions.login(db, SETTINGS, "alice", PASSWORD, "203.0.113.9", now=later).username == "alice"
    failed = [e for e in listing(db) if e.action == "login_failed"]
    assert failed[0].after is not None and failed[0].after["failures"] == 3
    assert failed[0].after["locked_seconds"] == 600
    assert len(failed) == 3  # refusals while locked are not attempts


def test_rate_limit_per_client_address(db: StateDB) -> None:
    for name in ("bob", "carol", "dave"):
        fail(db, username=name, client="198.51.100.7")
    with pytest.raises(TooManyAttemptsError, match="for this client address"):
        sessions.login(db, SETTINGS, "alice", PASSWORD, "198.51.100.7")
    assert sessions.login(db, SETTINGS, "alice", PASSWORD, "198.51.100.8").username == "alice"


def test_success_clears_the_user_name_count(db: StateDB) -> None:
    fail(db, client="a")
    fail(db, client="b")
    sessions.login(db, SETTINGS, "alice", PASSWORD, "c")
    fail(db, client="d")
    fail(db, client="e")
    assert sessions.login(db, SETTINGS, "alice", PASSWORD, "f").username == "alice"


def test_failures_leave_the_window(db: StateDB) -> None:
    now = utcnow()
    for minutes in (0, 4, 8):
        with pytest.raises(AuthError):
            sessions.login(db, SETTINGS, "alice", "nope nope nope", "x",
                           now=now + timedelta(minutes=minutes))
    with pytest.raises(TooManyAttemptsError) as info:
        sessions.login(db, SETTINGS, "alice", PASSWORD, "x", now=now + timedelta(minutes=9))
    assert info.value.retry_after == 60  # the first failure leaves the window in a minute
    assert sessions.login(db, SETTINGS, "alice", PASSWORD, "x",
                          now=now + timedelta(minutes=10, seconds=1)).username == "alice"


def test_old_attempts_and_sessions_are_pruned(db: StateDB) -> None:
    long_ago = utcnow() - timedelta(days=30)
    with pytest.raises(AuthError):
        sessions.login(db, SETTINGS, "alice", "nope nope nope", now=long_ago)
    sessions.login(db, SETTINGS, "alice", PASSWORD, now=long_ago)
    sessions.login(db, SETTINGS, "alice", PASSWORD)
    with db.session() as session:
        assert session.scalar(select(func.count()).select_from(LoginAttempt)) == 1
        assert session.scalar(select(func.count()).select_from(SignInSession)) == 1


def test_garbage_credentials(db: StateDB) -> None:
    for cookie in ("vgs_", "vgs_" + "A" * 43, "vgt_notasession", "x" * 5000):
        with pytest.raises(AuthError):
            authenticate(db, None, cookie)
    with pytest.raises(AuthError, match="missing bearer token"):
        authenticate(db, None, "   ")
    with pytest.raises(AuthError):
        sessions.login(db, SETTINGS, "x" * 5000, "y" * 5000)
