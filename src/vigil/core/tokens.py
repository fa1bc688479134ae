"""Bearer tokens for integrations: shown once, stored as SHA-256, one scope each.

Scopes: ``ingest`` (send events to the HTTP collector) and ``read`` (search events through
the API). Tokens are 256 random bits, so a fast hash is enough: no password stretching is
needed for secrets that cannot be guessed, and lookups are by hash, never by string compare.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from sqlalchemy import select

from vigil.core.db import StateDB
from vigil.core.errors import AuthError, ForbiddenError, InputError, NotFoundError
from vigil.core.models import ApiToken
from vigil.core.timeutil import utcnow

PREFIX = "vgt_"
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")


class Scope(StrEnum):
    INGEST = "ingest"
    READ = "read"


@dataclass(frozen=True, slots=True)
class TokenInfo:
    id: int
    name: str
    scope: Scope
    created_at: datetime
    revoked_at: datetime | None


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create(db: StateDB, name: str, scope: Scope) -> str:
    """A new token; the only time the clear token is ever available."""
    if not _NAME.fullmatch(name):
        raise InputError("token name: letters, digits, '_', '.', '-' (at most 128)")
    token = PREFIX + secrets.token_urlsafe(32)
    with db.session() as session:
        session.add(ApiToken(name=name, scope=scope.value, token_hash=_digest(token),
                             created_at=utcnow()))
    return token


def verify(db: StateDB, authorization: str | None, scope: Scope) -> str:
    """The name behind a valid ``Bearer`` token with ``scope``; AuthError/ForbiddenError else."""
    if not authorization:
        raise AuthError("missing bearer token (Authorization: Bearer <token>)")
    kind, _, token = authorization.partition(" ")
    if kind.lower() != "bearer" or not token.strip():
        raise AuthError("expected 'Authorization: Bearer <token>'")
    with db.session() as session:
        row = session.scalar(select(ApiToken).where(ApiToken.token_hash == _digest(token.strip())))
        if row is None or row.revoked_at is not None:
            raise AuthError("invalid or revoked token")
        if row.scope != scope.value:
            raise ForbiddenError(f"this token may not {scope.value} (its scope is {row.scope})")
        return row.name


def revoke(db: StateDB, token_id: int) -> None:
    with db.session() as session:
        row = session.get(ApiToken, token_id)
        if row is None:
            raise NotFoundError(f"no token with id {token_id}")
        row.revoked_at = utcnow()


def listing(db: StateDB) -> list[TokenInfo]:
    with db.session() as session:
        rows = session.scalars(select(ApiToken).order_by(ApiToken.id)).all()
        return [TokenInfo(r.id, r.name, Scope(r.scope), r.created_at, r.revoked_at) for r in rows]
