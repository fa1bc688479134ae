"""Authentication: the principal behind a bearer token or a session cookie.

Interim version backed by the scoped API tokens of ``vigil.core.tokens``; users and sessions
replace it.
"""

from __future__ import annotations

from vigil.core import tokens
from vigil.core.auth import Permission, Principal, PrincipalKind, Role, principal_for
from vigil.core.db import StateDB
from vigil.core.errors import AuthError, ForbiddenError

_SCOPES = {
    tokens.Scope.INGEST: frozenset({Permission.EVENTS_INGEST}),
    tokens.Scope.READ: frozenset({Permission.EVENTS_READ, Permission.ALERTS_READ}),
}


def authenticate(db: StateDB, authorization: str | None, session_cookie: str | None = None) -> Principal:
    """The principal behind the request's credentials; :class:`AuthError` when there are none
    or they are not valid."""
    del session_cookie
    for scope, granted in _SCOPES.items():
        try:
            name = tokens.verify(db, authorization, scope)
        except AuthError:
            raise
        except ForbiddenError:
            continue
        return principal_for(PrincipalKind.TOKEN, 0, name, Role.SERVICE, scopes=granted)
    raise AuthError("invalid token")
