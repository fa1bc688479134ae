"""``/api/v1/users``, ``/api/v1/teams``, ``/api/v1/tokens``: people and API tokens.

Reading users and teams needs ``users:read`` (every human role); changing them
``users:admin``; tokens ``tokens:admin``. A new token is returned once, never again.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query

from vigil.api.deps import VigilDep, requires
from vigil.core.auth import Permission, Principal, Role
from vigil.core.errors import InputError
from vigil.people import credentials, service, tokens
from vigil.people.schemas import (
    TeamCreateIn,
    TeamOut,
    TeamPageOut,
    TokenCreatedOut,
    TokenCreateIn,
    TokenOut,
    TokenPageOut,
    UserCreateIn,
    UserOut,
    UserPageOut,
    UserUpdateIn,
)
from vigil.people.service import KEEP, MAX_PAGE

router = APIRouter(prefix="/api/v1", tags=["people"])

UsersReader = Annotated[Principal, requires(Permission.USERS_READ)]
UsersAdmin = Annotated[Principal, requires(Permission.USERS_ADMIN)]
TokensAdmin = Annotated[Principal, requires(Permission.TOKENS_ADMIN)]
Limit = Annotated[int, Query(ge=1, le=MAX_PAGE)]
Offset = Annotated[int, Query(ge=0, le=10_000_000)]
Username = Annotated[str, Path(min_length=1, max_length=64)]


@router.get("/users", response_model=UserPageOut)
def list_users(vigil: VigilDep, _who: UsersReader,
               team: Annotated[str | None, Query(max_length=64)] = None,
               role: Role | None = None, include_disabled: bool = True,
               limit: Limit = 100, offset: Offset = 0) -> UserPageOut:
    """Users by name; ``total`` counts every match."""
    if team is not None:
        service.get_team(vigil.db, team)
    page = service.list_users(vigil.db, team=team, role=role, include_disabled=include_disabled,
                              limit=limit, offset=offset)
    return UserPageOut(total=page.total, limit=limit, offset=offset,
                       items=[UserOut.of(u) for u in page.users])


@router.get("/users/{username}", response_model=UserOut)
def get_user(username: Username, vigil: VigilDep, _who: UsersReader) -> UserOut:
    return UserOut.of(service.get_user(vigil.db, username))


@router.post("/users", response_model=UserOut, status_code=201)
def create_user(body: UserCreateIn, vigil: VigilDep, who: UsersAdmin) -> UserOut:
    """Add a user (password of at least 12 characters; roles other than service)."""
    return UserOut.of(service.add_user(vigil.db, who, body.username, body.password, role=body.role,
                                       team=body.team, email=body.email,
                                       display_name=body.display_name))


@router.patch("/users/{username}", response_model=UserOut)
def update_user(username: Username, body: UserUpdateIn, vigil: VigilDep,
                who: UsersAdmin) -> UserOut:
    """Change a user's role, team, e-mail, name, disabled flag or password. Disabling or a
    new password ends their sessions."""
    sent = body.model_fields_set
    for field in ("role", "disabled", "password", "display_name"):
        if field in sent and getattr(body, field) is None:
            raise InputError(f"{field} cannot be null")
    user = service.get_user(vigil.db, username)
    if body.password is not None:
        credentials.check_password_policy(body.password, user.username)
    updated = service.update_user(
        vigil.db, who, user.username,
        role=body.role if body.role is not None else KEEP,
        team=body.team if "team" in sent else KEEP,
        email=body.email if "email" in sent else KEEP,
        display_name=body.display_name if body.display_name is not None else KEEP,
        disabled=body.disabled if body.disabled is not None else KEEP)
    if body.password is not None:
        service.set_password(vigil.db, who, user.username, body.password)
    return UserOut.of(updated)


@router.get("/teams", response_model=TeamPageOut)
def list_teams(vigil: VigilDep, _who: UsersReader, limit: Limit = 100,
               offset: Offset = 0) -> TeamPageOut:
    """Teams by name with their member counts."""
    page = service.list_teams(vigil.db, limit=limit, offset=offset)
    return TeamPageOut(total=page.total, limit=limit, offset=offset,
                       items=[TeamOut.of(t) for t in page.teams])


@router.get("/teams/{name}", response_model=TeamOut)
def get_team(name: Annotated[str, Path(min_length=1, max_length=64)], vigil: VigilDep,
             _who: UsersReader) -> TeamOut:
    return TeamOut.of(service.get_team(vigil.db, name))


@router.post("/teams", response_model=TeamOut, status_code=201)
def create_team(body: TeamCreateIn, vigil: VigilDep, who: UsersAdmin) -> TeamOut:
    return TeamOut.of(service.add_team(vigil.db, who, body.name, body.description))


@router.get("/tokens", response_model=TokenPageOut)
def list_tokens(vigil: VigilDep, _who: TokensAdmin,
                user: Annotated[str | None, Query(max_length=64)] = None,
                include_revoked: bool = True, limit: Limit = 100,
                offset: Offset = 0) -> TokenPageOut:
    """API tokens, oldest first (never the tokens themselves)."""
    page = tokens.list_tokens(vigil.db, user=user, include_revoked=include_revoked, limit=limit,
                              offset=offset)
    return TokenPageOut(total=page.total, limit=limit, offset=offset,
                        items=[TokenOut.of(t) for t in page.tokens])


@router.post("/tokens", response_model=TokenCreatedOut, status_code=201)
def create_token(body: TokenCreateIn, vigil: VigilDep, who: TokensAdmin) -> TokenCreatedOut:
    """Create a token; the response holds it this once."""
    if body.user is not None and body.role is not Role.SERVICE:
        raise InputError("role and user do not go together: a personal token has its user's role")
    created = tokens.issue(vigil.db, who, body.name, role=body.role, scopes=body.scopes,
                           user=body.user, expires_days=body.expires_days)
    return TokenCreatedOut(**TokenOut.of(created.info).model_dump(), token=created.token)


@router.delete("/tokens/{token_id}", response_model=TokenOut)
def revoke_token(token_id: Annotated[int, Path(ge=1, le=2**62)], vigil: VigilDep,
                 who: TokensAdmin) -> TokenOut:
    """Revoke a token at once (again: no change)."""
    return TokenOut.of(tokens.revoke(vigil.db, token_id, actor=who))
