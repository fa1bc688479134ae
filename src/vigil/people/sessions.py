"""Sign-in: password check, the login rate limit, sessions and their end.

A session token (``vgs_...``) is shown once, at sign-in; only its SHA-256 is kept. A session
ends at an absolute time (``auth.session_hours`` after sign-in), after ``auth.idle_minutes``
without a request, at logout, or when the user is disabled or their password changes.

The rate limit counts failed sign-ins in the ``login_attempts`` table, so it holds across
every process sharing the state database: ``auth.login_max_failures`` per user name (since
that user's last successful sign-in) and per client address within
``auth.login_window_seconds``. A refused attempt is answered with 429 and how long to wait;
the password is not even checked then. Counting is not atomic, so a burst of parallel
attempts may pass the limit by a few; each one still costs an argon2 verification.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from vigil.audit.service import record
from vigil.core.auth import Principal, PrincipalKind, Role, principal_for
from vigil.core.config import AuthSettings
from vigil.core.db import StateDB
from vigil.core.errors import AuthError, ForbiddenError, InputError, TooManyAttemptsError
from vigil.core.timeutil import to_utc, utcnow
from vigil.people import credentials
from vigil.people.models import LoginAttempt, SignInSession, Team, User
from vigil.people.service import set_password

log = logging.getLogger(__name__)

ANONYMOUS = "anonymous"
"""How the audit trail names whoever failed to sign in."""
_KEEP_ATTEMPTS = timedelta(days=1)
_KEEP_ENDED_SESSIONS = timedelta(days=7)
_REFUSED = "wrong user name or password"


@dataclass(frozen=True, slots=True)
class NewSession:
    """A session just opened: ``token`` is never available again."""

    token: str
    id: int
    username: str
    role: Role
    expires_at: datetime
    idle_minutes: int


def _failures(session: Session, since: datetime, *conditions: object) -> tuple[int, datetime | None]:
    count, oldest = session.execute(
        select(func.count(), func.min(LoginAttempt.at)).where(
            LoginAttempt.ok.is_(False), LoginAttempt.at > since, *conditions)).one()  # type: ignore[arg-type]
    return int(count or 0), to_utc(oldest) if oldest is not None else None


def _user_window(session: Session, name: str, start: datetime) -> datetime:
    """Where the user name's window starts: a successful sign-in clears its failures."""
    last_ok = session.scalar(select(func.max(LoginAttempt.at)).where(
        LoginAttempt.username == name, LoginAttempt.ok.is_(True), LoginAttempt.at > start))
    return max(start, to_utc(last_ok)) if last_ok is not None else start


def _throttle(session: Session, settings: AuthSettings, name: str, client: str,
              now: datetime) -> None:
    window = timedelta(seconds=settings.login_window_seconds)
    start = now - window
    for since, condition, what in (
            (_user_window(session, name, start), LoginAttempt.username == name, "user name"),
            (start, LoginAttempt.client == client, "client address")):
        count, oldest = _failures(session, since, condition)
        if count >= settings.login_max_failures and oldest is not None:
            wait = max(1, math.ceil((oldest + window - now).total_seconds()))
            log.warning("sign-in refused for %r from %s: %d failures for this %s", name, client,
                        count, what)
            raise TooManyAttemptsError(
                f"too many failed sign-ins for this {what}: try again in {wait} s", retry_after=wait)


def _failed(db: StateDB, settings: AuthSettings, name: str, client: str, reason: str,
            now: datetime) -> None:
    with db.session() as session:
        session.add(LoginAttempt(username=name, client=client, at=now, ok=False))
        session.flush()
        start = now - timedelta(seconds=settings.login_window_seconds)
        count, _ = _failures(session, _user_window(session, name, start), LoginAttempt.username == name)
        after: dict[str, object] = {"client": client, "reason": reason, "failures": count}
        if count >= settings.login_max_failures:
            after["locked_seconds"] = settings.login_window_seconds
        record(session, ANONYMOUS, "login_failed", "user", name, None, after)


def _prune(session: Session, settings: AuthSettings, now: datetime) -> None:
    keep = max(_KEEP_ATTEMPTS, timedelta(seconds=settings.login_window_seconds))
    session.execute(delete(LoginAttempt).where(LoginAttempt.at < now - keep))
    session.execute(delete(SignInSession).where(SignInSession.expires_at < now - _KEEP_ENDED_SESSIONS))


def login(db: StateDB, settings: AuthSettings, username: str, password: str,
          client: str | None = None, *, now: datetime | None = None) -> NewSession:
    """Check a user name and password and open a session.

    :class:`AuthError` for a wrong name or password or a disabled user (one message for all
    three); :class:`TooManyAttemptsError` (429) while the rate limit holds. Both outcomes
    are audited.
    """
    now = now or utcnow()
    name = username.strip().lower()[:64]
    where = (client or "unknown")[:64]
    with db.session() as session:
        _throttle(session, settings, name, where, now)
        user = session.scalar(select(User).where(User.username == name))
        stored = user.password_hash if user is not None else None
        disabled = user is not None and user.disabled
    matches = credentials.verify_password(stored or credentials.dummy_hash(), password)
    if stored is None or not matches or disabled:
        reason = "unknown user" if stored is None else "wrong password" if not matches else "disabled"
        _failed(db, settings, name, where, reason, now)
        raise AuthError(_REFUSED)
    rehashed = credentials.hash_password(password) if credentials.needs_rehash(stored) else None
    return _open(db, settings, name, where, rehashed, now)


def _open(db: StateDB, settings: AuthSettings, name: str, client: str, rehashed: str | None,
          now: datetime) -> NewSession:
    token = credentials.new_secret(credentials.SESSION_PREFIX)
    with db.session() as session:
        user = session.scalar(select(User).where(User.username == name))
        if user is None or user.disabled:  # disabled between the check and now
            raise AuthError(_REFUSED)
        if rehashed is not None:
            user.password_hash = rehashed
        user.last_login_at = now
        row = SignInSession(token_hash=credentials.digest(token), user_id=user.id, created_at=now,
                            expires_at=now + timedelta(hours=settings.session_hours),
                            last_seen_at=now, idle_seconds=settings.idle_minutes * 60, client=client)
        session.add(row)
        session.add(LoginAttempt(username=name, client=client, at=now, ok=True))
        _prune(session, settings, now)
        session.flush()
        team = session.get(Team, user.team_id) if user.team_id is not None else None
        role = Role(user.role)
        who = principal_for(PrincipalKind.USER, user.id, name, role, team.name if team else None)
        record(session, who, "login", "user", name, None,
               {"client": client, "session": row.id, "expires_at": row.expires_at.isoformat()})
        return NewSession(token, row.id, name, role, row.expires_at, settings.idle_minutes)


def change_password(db: StateDB, settings: AuthSettings, who: Principal, current: str, new: str,
                    client: str | None = None, *, now: datetime | None = None) -> None:
    """A signed-in user changes their own password, proving the current one.

    A wrong current password counts as a failed sign-in (same rate limit, same audit);
    success ends every session of the user.
    """
    now = now or utcnow()
    where = (client or "unknown")[:64]
    with db.session() as session:
        _throttle(session, settings, who.name, where, now)
        stored = session.scalar(select(User.password_hash).where(User.username == who.name))
    if stored is None or not credentials.verify_password(stored, current):
        _failed(db, settings, who.name, where, "wrong current password", now)
        raise ForbiddenError("the current password is not right")
    if current == new:
        raise InputError("the new password must differ from the current one")
    set_password(db, who, who.name, new)


def logout(db: StateDB, token: str, *, now: datetime | None = None) -> bool:
    """End the session of ``token``; False when it was not an open session."""
    with db.session() as session:
        row = session.execute(select(SignInSession, User.username)
                              .join(User, User.id == SignInSession.user_id)
                              .where(SignInSession.token_hash == credentials.digest(token))).first()
        if row is None or row[0].revoked_at is not None:
            return False
        ended, username = row
        ended.revoked_at = now or utcnow()
        record(session, f"{PrincipalKind.USER.value}:{username}", "logout", "session", ended.id,
               None, {"user": username})
        return True
