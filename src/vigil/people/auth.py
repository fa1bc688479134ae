"""Authentication: the principal behind a bearer token or a session cookie.

One indexed lookup per request: the SHA-256 of the token finds its session or API token row,
joined with its user and team. The last-seen (sessions) and last-used (tokens) times are
written at most once a minute per credential, so a busy client does not write on every
request.

- ``Authorization: Bearer vgs_...`` or the session cookie: a signed-in user with their role.
- ``Authorization: Bearer vgt_...``: an API token with its role narrowed to its scopes; a
  personal token acts as its user (their current role, narrowed to the token's scopes).

Disabled users, revoked or expired tokens and ended sessions are refused with AuthError.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select, update

from vigil.core.auth import Permission, Principal, PrincipalKind, Role, principal_for
from vigil.core.db import StateDB
from vigil.core.errors import AuthError
from vigil.core.timeutil import to_utc, utcnow
from vigil.people.credentials import SESSION_PREFIX, bearer, digest
from vigil.people.models import ApiToken, SignInSession, Team, User

TOUCH_EVERY = timedelta(seconds=60)
"""How stale a last-seen/last-used time may get before a request refreshes it."""


def authenticate(db: StateDB, authorization: str | None, session_cookie: str | None = None, *,
                 now: datetime | None = None) -> Principal:
    """The principal behind the request's credentials (the header wins over the cookie);
    :class:`AuthError` when there are none or they are not valid."""
    now = now or utcnow()
    if authorization:
        secret = bearer(authorization)
        if secret.startswith(SESSION_PREFIX):
            return _session_principal(db, secret, now)
        return _token_principal(db, secret, now)
    if session_cookie and session_cookie.strip():
        return _session_principal(db, session_cookie.strip(), now)
    raise AuthError("missing bearer token (Authorization: Bearer <token>) or session cookie")


def _session_principal(db: StateDB, secret: str, now: datetime) -> Principal:
    query = (select(SignInSession.id, SignInSession.expires_at, SignInSession.last_seen_at,
                    SignInSession.idle_seconds, SignInSession.revoked_at, User.id, User.username,
                    User.role, User.disabled, Team.name)
             .join(User, User.id == SignInSession.user_id)
             .outerjoin(Team, Team.id == User.team_id)
             .where(SignInSession.token_hash == digest(secret)))
    with db.session() as session:
        row = session.execute(query).first()
        if row is None or row[4] is not None:
            raise AuthError("invalid or ended session: sign in again")
        session_id, expires_at, last_seen, idle, _, user_id, username, role, disabled, team = row
        if to_utc(expires_at) <= now:
            raise AuthError("session expired: sign in again")
        last_seen = to_utc(last_seen)
        if last_seen + timedelta(seconds=idle) <= now:
            raise AuthError(f"session ended after {idle // 60} minutes without activity: sign in again")
        if disabled:
            raise AuthError(f"user {username} is disabled")
        if now - last_seen >= TOUCH_EVERY:
            session.execute(update(SignInSession).where(SignInSession.id == session_id)
                            .values(last_seen_at=now))
    return principal_for(PrincipalKind.USER, user_id, username, Role(role), team)


def _scopes(values: list[str] | None) -> frozenset[Permission] | None:
    if values is None:
        return None
    known = {p.value for p in Permission}
    return frozenset(Permission(v) for v in values if v in known)


def _token_principal(db: StateDB, secret: str, now: datetime) -> Principal:
    query = (select(ApiToken.id, ApiToken.name, ApiToken.role, ApiToken.scopes,
                    ApiToken.expires_at, ApiToken.last_used_at, ApiToken.revoked_at,
                    User.id, User.username, User.role, User.disabled, Team.name)
             .outerjoin(User, User.id == ApiToken.user_id)
             .outerjoin(Team, Team.id == User.team_id)
             .where(ApiToken.token_hash == digest(secret)))
    with db.session() as session:
        row = session.execute(query).first()
        if row is None or row[6] is not None:
            raise AuthError("invalid or revoked token")
        (token_id, name, role, scopes, expires_at, last_used, _, user_id, username, user_role,
         disabled, team) = row
        if expires_at is not None and to_utc(expires_at) <= now:
            raise AuthError(f"token {name} has expired")
        if user_id is not None and disabled:
            raise AuthError(f"token {name} belongs to disabled user {username}")
        if last_used is None or now - to_utc(last_used) >= TOUCH_EVERY:
            session.execute(update(ApiToken).where(ApiToken.id == token_id).values(last_used_at=now))
    if user_id is not None:
        return principal_for(PrincipalKind.USER, user_id, username, Role(user_role), team,
                             scopes=_scopes(scopes))
    return principal_for(PrincipalKind.TOKEN, token_id, name, Role(role), scopes=_scopes(scopes))
