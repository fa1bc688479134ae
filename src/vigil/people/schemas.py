"""What the API takes and gives for sign-in, users, teams and tokens (never a hash)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from vigil.core.auth import Principal, PrincipalKind, Role
from vigil.people.credentials import MAX_PASSWORD
from vigil.people.service import TeamInfo, UserInfo
from vigil.people.tokens import MAX_EXPIRES_DAYS, TokenInfo

_Password = Field(min_length=1, max_length=MAX_PASSWORD)


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class LoginIn(_In):
    username: str = Field(min_length=1, max_length=256)
    password: str = _Password


class PasswordChangeIn(_In):
    current_password: str = _Password
    new_password: str = _Password


class MeOut(BaseModel):
    """Who the caller is and what they may do."""

    kind: PrincipalKind
    name: str
    role: Role
    team: str | None
    permissions: list[str]
    display_name: str | None = None
    email: str | None = None

    @classmethod
    def of(cls, who: Principal, user: UserInfo | None = None) -> MeOut:
        order = sorted(p.value for p in who.permissions)
        return cls(kind=who.kind, name=who.name, role=who.role, team=who.team, permissions=order,
                   display_name=user.display_name if user else None,
                   email=user.email if user else None)


class LoginOut(BaseModel):
    """A new session: ``token`` is shown this once (it is also set as the session cookie)."""

    token: str
    expires_at: datetime
    idle_minutes: int
    user: MeOut


class UserOut(BaseModel):
    id: int
    username: str
    display_name: str
    email: str | None
    role: Role
    team: str | None
    disabled: bool
    created_at: datetime
    last_login_at: datetime | None

    @classmethod
    def of(cls, info: UserInfo) -> UserOut:
        return cls.model_validate(info, from_attributes=True)


class UserPageOut(BaseModel):
    total: int
    limit: int
    offset: int
    items: list[UserOut]


class UserCreateIn(_In):
    username: str = Field(min_length=1, max_length=64)
    password: str = _Password
    role: Role
    team: str | None = Field(default=None, max_length=64)
    email: str | None = Field(default=None, max_length=320)
    display_name: str | None = Field(default=None, max_length=255)


class UserUpdateIn(_In):
    """Only the fields sent change; ``team``/``email`` null removes them."""

    role: Role | None = None
    team: str | None = Field(default=None, max_length=64)
    disabled: bool | None = None
    password: str | None = Field(default=None, min_length=1, max_length=MAX_PASSWORD)
    email: str | None = Field(default=None, max_length=320)
    display_name: str | None = Field(default=None, max_length=255)


class TeamOut(BaseModel):
    id: int
    name: str
    description: str | None
    created_at: datetime
    members: int

    @classmethod
    def of(cls, info: TeamInfo) -> TeamOut:
        return cls.model_validate(info, from_attributes=True)


class TeamPageOut(BaseModel):
    total: int
    limit: int
    offset: int
    items: list[TeamOut]


class TeamCreateIn(_In):
    name: str = Field(min_length=1, max_length=64)
    description: str | None = Field(default=None, max_length=2000)


class TokenOut(BaseModel):
    id: int
    name: str
    role: Role
    scopes: list[str] | None
    """Null: every permission of the role."""
    user: str | None
    created_at: datetime
    expires_at: datetime | None
    last_used_at: datetime | None
    revoked_at: datetime | None
    active: bool

    @classmethod
    def of(cls, info: TokenInfo) -> TokenOut:
        return cls(id=info.id, name=info.name, role=info.role,
                   scopes=[s.value for s in info.scopes] if info.scopes is not None else None,
                   user=info.user, created_at=info.created_at, expires_at=info.expires_at,
                   last_used_at=info.last_used_at, revoked_at=info.revoked_at,
                   active=info.active())


class TokenCreatedOut(TokenOut):
    """A new token: ``token`` is shown this once and never again."""

    token: str


class TokenPageOut(BaseModel):
    total: int
    limit: int
    offset: int
    items: list[TokenOut]


class TokenCreateIn(_In):
    name: str = Field(min_length=1, max_length=128)
    role: Role = Role.SERVICE
    scopes: list[str] | None = Field(default=None, max_length=64)
    """Scope names (``ingest``, ``read``) or permissions; null: the whole role."""
    user: str | None = Field(default=None, max_length=64)
    """Make a personal token of this user (it holds their role; ``role`` must stay service)."""
    expires_days: int | None = Field(default=None, ge=1, le=MAX_EXPIRES_DAYS)
