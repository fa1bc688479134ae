"""API tokens for integrations, agents and people: shown once, stored as SHA-256.

A token holds a role (``service`` by default) narrowed to scopes (permission values such as
``events:ingest``); a personal token (``user``) acts as that user with the user's current
role, narrowed the same way. Tokens can expire and are revoked at once.

The two one-scope tokens of earlier versions keep working as scope names:
``ingest`` = ``events:ingest``; ``read`` = ``events:read``, ``alerts:read``, ``cases:read``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import func, select

from vigil.audit.service import record
from vigil.core.auth import ROLE_PERMISSIONS, SYSTEM, Permission, Principal, Role
from vigil.core.db import StateDB
from vigil.core.errors import ForbiddenError, InputError, NotFoundError
from vigil.core.timeutil import to_utc, utcnow
from vigil.people.auth import authenticate
from vigil.people.credentials import TOKEN_PREFIX, digest, new_secret
from vigil.people.models import ApiToken, User
from vigil.people.service import MAX_PAGE

PREFIX = TOKEN_PREFIX
MAX_EXPIRES_DAYS = 3650
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")
_PERMISSIONS = frozenset(p.value for p in Permission)


class Scope(StrEnum):
    """The scope names of the first tokens, still accepted wherever scopes are given."""

    INGEST = "ingest"
    READ = "read"


LEGACY_SCOPES: dict[Scope, frozenset[Permission]] = {
    Scope.INGEST: frozenset({Permission.EVENTS_INGEST}),
    Scope.READ: frozenset({Permission.EVENTS_READ, Permission.ALERTS_READ, Permission.CASES_READ}),
}


@dataclass(frozen=True, slots=True)
class TokenInfo:
    """A token as listed (never the token, never its hash)."""

    id: int
    name: str
    role: Role
    scopes: tuple[Permission, ...] | None
    """None: every permission of the role."""
    user: str | None
    created_at: datetime
    expires_at: datetime | None
    last_used_at: datetime | None
    revoked_at: datetime | None

    def active(self, now: datetime | None = None) -> bool:
        moment = now or utcnow()
        return self.revoked_at is None and (self.expires_at is None or self.expires_at > moment)


@dataclass(frozen=True, slots=True)
class NewToken:
    """A token just created: ``token`` is shown once and never available again."""

    token: str
    info: TokenInfo


@dataclass(frozen=True, slots=True)
class TokenPage:
    total: int
    tokens: list[TokenInfo]


def parse_scopes(values: Iterable[str]) -> frozenset[Permission]:
    """Permissions from scope names: ``ingest``, ``read`` or permission values."""
    granted: set[Permission] = set()
    for value in values:
        text = value.strip().lower()
        if text in (Scope.INGEST.value, Scope.READ.value):
            granted |= LEGACY_SCOPES[Scope(text)]
            continue
        try:
            granted.add(Permission(text))
        except ValueError:
            known = ", ".join([*Scope, *Permission])
            raise InputError(f"unknown scope {value!r} (scopes: {known})") from None
    return frozenset(granted)


def _sorted(scopes: Iterable[Permission]) -> list[str]:
    order = list(Permission)
    return [p.value for p in sorted(scopes, key=order.index)]


def _info(row: ApiToken, user: str | None) -> TokenInfo:
    scopes = None if row.scopes is None else tuple(
        Permission(v) for v in row.scopes if v in _PERMISSIONS)
    return TokenInfo(row.id, row.name, Role(row.role), scopes, user, to_utc(row.created_at),
                     to_utc(row.expires_at) if row.expires_at else None,
                     to_utc(row.last_used_at) if row.last_used_at else None,
                     to_utc(row.revoked_at) if row.revoked_at else None)


def _check(name: str, role: Role, scopes: frozenset[Permission] | None,
           expires_days: int | None) -> None:
    if not _NAME.fullmatch(name):
        raise InputError("token name: letters, digits, '_', '.', '-' (at most 128)")
    if scopes is not None:
        if not scopes:
            raise InputError("give at least one scope (or none for the whole role)")
        beyond = scopes - ROLE_PERMISSIONS[role]
        if beyond:
            raise InputError(f"role {role.value} does not hold {', '.join(_sorted(beyond))}")
    if expires_days is not None and not 1 <= expires_days <= MAX_EXPIRES_DAYS:
        raise InputError(f"expiry: 1 to {MAX_EXPIRES_DAYS} days")


def issue(db: StateDB, actor: Principal, name: str, *, role: Role | str = Role.SERVICE,
          scopes: Iterable[str] | None = None, user: str | None = None,
          expires_days: int | None = None) -> NewToken:
    """Create a token; the only time its clear text is available.

    ``scopes`` narrow the role (None: the whole role); ``user`` makes it a personal token of
    that enabled user, holding their role; ``expires_days`` ends it on its own.
    """
    try:
        chosen = Role(role)
    except ValueError:
        raise InputError(f"unknown role {role!r} (roles: {', '.join(Role)})") from None
    granted = parse_scopes(scopes) if scopes is not None else None
    token = new_secret(TOKEN_PREFIX)
    now = utcnow()
    with db.session() as session:
        owner = None
        if user is not None:
            owner = session.scalar(select(User).where(User.username == user.strip().lower()))
            if owner is None:
                raise NotFoundError(f"no user named {user!r}")
            if owner.disabled:
                raise InputError(f"user {owner.username} is disabled")
            chosen = Role(owner.role)
        _check(name, chosen, granted, expires_days)
        row = ApiToken(name=name, token_hash=digest(token), role=chosen.value,
                       scopes=_sorted(granted) if granted is not None else None,
                       user_id=owner.id if owner else None, created_at=now,
                       expires_at=now + timedelta(days=expires_days) if expires_days else None)
        session.add(row)
        session.flush()
        info = _info(row, owner.username if owner else None)
        record(session, actor, "create", "token", row.id, None, _audit_view(info))
        return NewToken(token, info)


def _audit_view(info: TokenInfo) -> dict[str, Any]:
    return {"name": info.name, "role": info.role.value, "user": info.user,
            "scopes": list(info.scopes) if info.scopes is not None else None,
            "expires_at": info.expires_at.isoformat() if info.expires_at else None}


def create(db: StateDB, name: str, scope: Scope = Scope.INGEST, *, actor: Principal = SYSTEM) -> str:
    """A service token with one of the first scope names (``ingest`` or ``read``)."""
    return issue(db, actor, name, scopes=[scope.value]).token


def revoke(db: StateDB, token_id: int, *, actor: Principal = SYSTEM) -> TokenInfo:
    """Revoke a token at once (revoking it again changes nothing)."""
    with db.session() as session:
        row = session.get(ApiToken, token_id)
        if row is None:
            raise NotFoundError(f"no token with id {token_id}")
        owner = session.get(User, row.user_id) if row.user_id is not None else None
        if row.revoked_at is None:
            row.revoked_at = utcnow()
            record(session, actor, "revoke", "token", row.id, {"name": row.name}, {"revoked": True})
        return _info(row, owner.username if owner else None)


def list_tokens(db: StateDB, *, user: str | None = None, include_revoked: bool = True,
                limit: int = 100, offset: int = 0) -> TokenPage:
    """Tokens, oldest first (never the token itself)."""
    if not 1 <= limit <= MAX_PAGE or offset < 0:
        raise InputError(f"limit must be 1..{MAX_PAGE} and offset at least 0")
    query = select(ApiToken, User.username).outerjoin(User, User.id == ApiToken.user_id)
    if user is not None:
        query = query.where(User.username == user.strip().lower())
    if not include_revoked:
        query = query.where(ApiToken.revoked_at.is_(None))
    with db.session() as session:
        total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
        rows = session.execute(query.order_by(ApiToken.id).limit(limit).offset(offset)).all()
        return TokenPage(total, [_info(row, username) for row, username in rows])


def listing(db: StateDB) -> list[TokenInfo]:
    """Every token, oldest first."""
    infos: list[TokenInfo] = []
    while True:
        page = list_tokens(db, limit=MAX_PAGE, offset=len(infos))
        infos.extend(page.tokens)
        if len(infos) >= page.total or not page.tokens:
            return infos


def verify(db: StateDB, authorization: str | None, scope: Scope) -> str:
    """The name behind a valid bearer token holding the permissions of ``scope``;
    AuthError when not valid, ForbiddenError when valid but narrower."""
    who = authenticate(db, authorization)
    missing = LEGACY_SCOPES[scope] - who.permissions
    if missing:
        held = ", ".join(_sorted(who.permissions)) or "none"
        raise ForbiddenError(f"this token may not {scope.value} (its scopes: {held})")
    return who.name
