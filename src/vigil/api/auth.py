"""``/api/v1/auth``: sign in, sign out, who am I, change my password.

Sign-in sets the session cookie (HttpOnly, SameSite=Strict; Secure over HTTPS) and returns the
session token once, for clients that send ``Authorization: Bearer vgs_...`` instead. Failed
sign-ins are rate-limited: 429 with ``Retry-After``.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Request, Response

from vigil.api.deps import SESSION_COOKIE, Caller, VigilDep
from vigil.core.auth import PrincipalKind
from vigil.core.errors import ForbiddenError, InputError
from vigil.people import credentials, service, sessions
from vigil.people.schemas import LoginIn, LoginOut, MeOut, PasswordChangeIn

router = APIRouter(prefix="/api/v1", tags=["auth"])


def _client(request: Request) -> str | None:
    return request.client.host if request.client else None


@router.post("/auth/login", response_model=LoginOut,
             responses={401: {"description": "Wrong user name or password"},
                        429: {"description": "Too many failed sign-ins; see Retry-After"}})
def login(body: LoginIn, request: Request, response: Response, vigil: VigilDep) -> LoginOut:
    """Sign in with a user name and password (no credentials needed, of course)."""
    settings = vigil.settings.auth
    opened = sessions.login(vigil.db, settings, body.username, body.password, _client(request))
    response.set_cookie(SESSION_COOKIE, opened.token, max_age=settings.session_hours * 3600,
                        path="/", httponly=True, samesite="strict",
                        secure=request.url.scheme == "https")
    user = service.get_user(vigil.db, opened.username)
    who = service.principal_of(user)
    return LoginOut(token=opened.token, expires_at=opened.expires_at,
                    idle_minutes=opened.idle_minutes, user=MeOut.of(who, user))


@router.post("/auth/logout", status_code=204, response_class=Response)
def logout(request: Request, vigil: VigilDep, _who: Caller,
           authorization: Annotated[str | None, Header()] = None) -> Response:
    """End the session this request signed in with (and clear the cookie)."""
    secret = credentials.bearer(authorization) if authorization else request.cookies.get(
        SESSION_COOKIE, "")
    if not secret.startswith(credentials.SESSION_PREFIX):
        raise InputError("logout ends a sign-in session; an API token is revoked instead "
                         "(DELETE /api/v1/tokens/{id})")
    sessions.logout(vigil.db, secret)
    done = Response(status_code=204)
    done.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="strict")
    return done


@router.get("/auth/me", response_model=MeOut)
def me(vigil: VigilDep, who: Caller) -> MeOut:
    """The caller: user or token, role, team and permissions."""
    user = service.find_user(vigil.db, who.name) if who.kind is PrincipalKind.USER else None
    return MeOut.of(who, user)


@router.post("/auth/password", status_code=204, response_class=Response)
def change_password(body: PasswordChangeIn, request: Request, vigil: VigilDep,
                    who: Caller) -> Response:
    """Change your own password (prove the current one); every session of yours ends, so
    sign in again."""
    if who.kind is not PrincipalKind.USER:
        raise ForbiddenError(f"{who.actor} is not a user and has no password")
    sessions.change_password(vigil.db, vigil.settings.auth, who, body.current_password,
                             body.new_password, _client(request))
    done = Response(status_code=204)
    done.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="strict")
    return done
