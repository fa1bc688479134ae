"""Users and teams: the use cases, and the look-ups other contexts call.

Every change is made on behalf of a :class:`~vigil.core.auth.Principal` and writes an audit
record in the same transaction. User names are case-insensitive: they are kept in lower case
and every look-up lowers its argument, so ``Alice`` and ``alice`` are one person.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from typing import Any

from sqlalchemy import Select, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from vigil.audit.service import record
from vigil.core.auth import Principal, PrincipalKind, Role, principal_for
from vigil.core.db import StateDB
from vigil.core.errors import InputError, NotFoundError
from vigil.core.timeutil import to_utc, utcnow
from vigil.people import credentials
from vigil.people.models import SignInSession, Team, User

_USERNAME = re.compile(r"[a-z0-9][a-z0-9_.-]{0,63}")
"""No '@': a user name is never mistaken for an e-mail address."""
_TEAM = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
MAX_PAGE = 500


class Keep(Enum):
    """Marks an argument of :func:`update_user` as 'leave as it is'."""

    KEEP = "keep"


KEEP = Keep.KEEP


@dataclass(frozen=True, slots=True)
class UserInfo:
    """A user as other contexts and the front doors see it (never the password hash)."""

    id: int
    username: str
    display_name: str
    email: str | None
    role: Role
    team: str | None
    disabled: bool
    created_at: datetime
    last_login_at: datetime | None

    @property
    def active(self) -> bool:
        return not self.disabled


@dataclass(frozen=True, slots=True)
class UserPage:
    total: int
    users: list[UserInfo]


@dataclass(frozen=True, slots=True)
class TeamInfo:
    id: int
    name: str
    description: str | None
    created_at: datetime
    members: int


@dataclass(frozen=True, slots=True)
class TeamPage:
    total: int
    teams: list[TeamInfo]


# -- validation ------------------------------------------------------------------------------


def normalize_username(username: str) -> str:
    """The stored form of a user name (lower case); InputError when it is not valid."""
    name = username.strip().lower()
    if not _USERNAME.fullmatch(name):
        raise InputError("user name: letters, digits, '_', '.', '-' (at most 64), "
                         "starting with a letter or digit")
    return name


def _team_name(name: str) -> str:
    team = name.strip().lower()
    if not _TEAM.fullmatch(team):
        raise InputError("team name: letters, digits, '_', '-' (at most 64), "
                         "starting with a letter or digit")
    return team


def _email(email: str | None) -> str | None:
    if email is None or not email.strip():
        return None
    value = email.strip()
    if len(value) > 320 or not _EMAIL.fullmatch(value):
        raise InputError(f"not an email address: {value[:80]!r}")
    return value


def _display_name(display_name: str | None, username: str) -> str:
    value = (display_name or "").strip() or username
    if len(value) > 255 or _CONTROL.search(value):
        raise InputError("display name: at most 255 characters, no control characters")
    return value


def human_role(role: Role | str) -> Role:
    """The role as a :class:`Role` a person may hold (service is for API tokens only)."""
    try:
        value = Role(role)
    except ValueError:
        raise InputError(f"unknown role {role!r} (roles: {', '.join(r.value for r in Role)})") from None
    if value is Role.SERVICE:
        raise InputError("the service role is for API tokens, not people (see `vigil tokens create`)")
    return value


# -- look-ups --------------------------------------------------------------------------------


def _info_query() -> Select[User, str]:
    return select(User, Team.name).outerjoin(Team, Team.id == User.team_id)


def _info(user: User, team: str | None) -> UserInfo:
    return UserInfo(user.id, user.username, user.display_name, user.email, Role(user.role), team,
                    user.disabled, to_utc(user.created_at),
                    to_utc(user.last_login_at) if user.last_login_at else None)


def principal_of(info: UserInfo) -> Principal:
    """The principal of a signed-in user: their role's permissions, their team."""
    return principal_for(PrincipalKind.USER, info.id, info.username, info.role, info.team)


def _user_row(session: Session, username: str) -> User:
    name = username.strip().lower()
    user = session.scalar(select(User).where(User.username == name))
    if user is None:
        raise NotFoundError(f"no user named {username!r}")
    return user


def _team_row(session: Session, name: str) -> Team:
    team = session.scalar(select(Team).where(Team.name == name.strip().lower()))
    if team is None:
        raise NotFoundError(f"no team named {name!r} (see `vigil teams list`)")
    return team


def _user_info(session: Session, user: User) -> UserInfo:
    team = session.get(Team, user.team_id) if user.team_id is not None else None
    return _info(user, team.name if team is not None else None)


def find_user(db: StateDB, username: str) -> UserInfo | None:
    """The user named ``username`` (any case), or None."""
    with db.session() as session:
        row = session.execute(_info_query().where(User.username == username.strip().lower())).first()
        return _info(row[0], row[1]) if row else None


def get_user(db: StateDB, username: str) -> UserInfo:
    """The user named ``username``; :class:`NotFoundError` when there is none."""
    info = find_user(db, username)
    if info is None:
        raise NotFoundError(f"no user named {username!r}")
    return info


def get_user_by_id(db: StateDB, user_id: int) -> UserInfo:
    """The user with id ``user_id``; :class:`NotFoundError` when there is none."""
    with db.session() as session:
        row = session.execute(_info_query().where(User.id == user_id)).first()
        if row is None:
            raise NotFoundError(f"no user with id {user_id}")
        return _info(row[0], row[1])


def user_exists(db: StateDB, username: str, *, active_only: bool = True) -> bool:
    """Whether ``username`` names a user (by default: an enabled one)."""
    info = find_user(db, username)
    return info is not None and (info.active or not active_only)


def email_of(db: StateDB, username: str) -> str | None:
    """The email address of an enabled user (None: unknown, disabled or no address)."""
    info = find_user(db, username)
    return info.email if info is not None and info.active else None


def emails_of(db: StateDB, usernames: Iterable[str]) -> dict[str, str]:
    """Email addresses of the enabled users among ``usernames`` that have one, keyed by the
    names as given (one query; unknown, disabled and address-less users are left out)."""
    given = {u: u.strip().lower() for u in usernames}
    if not given:
        return {}
    with db.session() as session:
        rows = session.execute(select(User.username, User.email).where(
            User.username.in_(set(given.values())), User.email.is_not(None),
            User.disabled.is_(False))).all()
    found = {name: email for name, email in rows if email}
    return {name: found[low] for name, low in given.items() if low in found}


def list_users(db: StateDB, *, team: str | None = None, role: Role | None = None,
               include_disabled: bool = True, limit: int = 100, offset: int = 0) -> UserPage:
    """Users by name, filtered; ``total`` counts every match, ``users`` one page of them."""
    if not 1 <= limit <= MAX_PAGE or offset < 0:
        raise InputError(f"limit must be 1..{MAX_PAGE} and offset at least 0")
    query = _info_query()
    if team is not None:
        query = query.where(Team.name == team.strip().lower())
    if role is not None:
        query = query.where(User.role == Role(role).value)
    if not include_disabled:
        query = query.where(User.disabled.is_(False))
    with db.session() as session:
        total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
        rows = session.execute(query.order_by(User.username).limit(limit).offset(offset)).all()
        return UserPage(total, [_info(user, team_name) for user, team_name in rows])


def users_of_team(db: StateDB, team: str, *, include_disabled: bool = False) -> list[UserInfo]:
    """The members of ``team`` (NotFoundError if there is no such team), enabled ones only
    unless ``include_disabled``."""
    with db.session() as session:
        team_row = _team_row(session, team)
        query = _info_query().where(User.team_id == team_row.id).order_by(User.username)
        if not include_disabled:
            query = query.where(User.disabled.is_(False))
        return [_info(user, name) for user, name in session.execute(query).all()]


# -- changes ---------------------------------------------------------------------------------


def _audit_view(info: UserInfo) -> dict[str, Any]:
    return {"username": info.username, "display_name": info.display_name, "email": info.email,
            "role": info.role.value, "team": info.team, "disabled": info.disabled}


def add_user(db: StateDB, actor: Principal, username: str, password: str, *, role: Role | str,
             team: str | None = None, email: str | None = None,
             display_name: str | None = None) -> UserInfo:
    """Create a user; InputError for a taken or invalid name, a weak password, a bad role."""
    name = normalize_username(username)
    chosen_role = human_role(role)
    address = _email(email)
    shown = _display_name(display_name, name)
    credentials.check_password_policy(password, name)
    password_hash = credentials.hash_password(password)
    with db.session() as session:
        team_id = _team_row(session, team).id if team else None
        if session.scalar(select(User.id).where(User.username == name)) is not None:
            raise InputError(f"user name {name!r} is already taken")
        user = User(username=name, display_name=shown, email=address, role=chosen_role.value,
                    team_id=team_id, password_hash=password_hash, disabled=False,
                    created_at=utcnow())
        session.add(user)
        try:
            session.flush()
        except IntegrityError:
            raise InputError(f"user name {name!r} is already taken") from None
        info = _user_info(session, user)
        record(session, actor, "create", "user", name, None, _audit_view(info))
        return info


def _enabled_admins(session: Session, other_than: int) -> int:
    return session.scalar(select(func.count()).select_from(User).where(
        User.role == Role.ADMIN.value, User.disabled.is_(False), User.id != other_than)) or 0


def revoke_sessions(session: Session, user_id: int) -> int:
    """End every open session of a user (in the caller's transaction); how many ended."""
    result = session.execute(update(SignInSession).where(
        SignInSession.user_id == user_id, SignInSession.revoked_at.is_(None)).values(
        revoked_at=utcnow()))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


def update_user(db: StateDB, actor: Principal, username: str, *, role: Role | str | Keep = KEEP,
                team: str | Keep | None = KEEP, email: str | Keep | None = KEEP,
                display_name: str | Keep = KEEP, disabled: bool | Keep = KEEP) -> UserInfo:
    """Change what is given (``KEEP`` leaves a field alone; ``team=None`` leaves every team).

    Disabling a user ends their sessions at once; the last enabled admin cannot be disabled
    or lose the admin role.
    """
    with db.session() as session:
        user = _user_row(session, username)
        before = _audit_view(_user_info(session, user))
        if not isinstance(role, Keep):
            user.role = human_role(role).value
        if not isinstance(team, Keep):
            user.team_id = _team_row(session, team).id if team else None
        if not isinstance(email, Keep):
            user.email = _email(email)
        if not isinstance(display_name, Keep):
            user.display_name = _display_name(display_name, user.username)
        if not isinstance(disabled, Keep):
            user.disabled = disabled
        was_admin = before["role"] == Role.ADMIN.value and not before["disabled"]
        if was_admin and (user.role != Role.ADMIN.value or user.disabled) \
                and _enabled_admins(session, user.id) == 0:
            raise InputError(f"{user.username} is the last enabled admin: make another admin first")
        after = _audit_view(_user_info(session, user))
        changed = {k for k in after if after[k] != before[k]}
        if not changed:
            return _user_info(session, user)
        extra: dict[str, Any] = {}
        if user.disabled and not before["disabled"]:
            extra["sessions_ended"] = revoke_sessions(session, user.id)
        record(session, actor, "update", "user", user.username,
               {k: before[k] for k in sorted(changed)},
               {**{k: after[k] for k in sorted(changed)}, **extra})
        return _user_info(session, user)


def disable_user(db: StateDB, actor: Principal, username: str) -> UserInfo:
    """Refuse the user's sign-ins, sessions and personal tokens (nothing is deleted)."""
    return update_user(db, actor, username, disabled=True)


def enable_user(db: StateDB, actor: Principal, username: str) -> UserInfo:
    return update_user(db, actor, username, disabled=False)


def set_role(db: StateDB, actor: Principal, username: str, role: Role | str) -> UserInfo:
    """Give the user another role; it applies to their next request."""
    return update_user(db, actor, username, role=role)


def set_password(db: StateDB, actor: Principal, username: str, password: str) -> None:
    """Set a new password (policy checked) and end the user's sessions."""
    with db.session() as session:
        name = _user_row(session, username).username
    credentials.check_password_policy(password, name)
    password_hash = credentials.hash_password(password)
    with db.session() as session:
        user = _user_row(session, name)
        user.password_hash = password_hash
        ended = revoke_sessions(session, user.id)
        record(session, actor, "set_password", "user", user.username, None,
               {"sessions_ended": ended})


# -- teams -----------------------------------------------------------------------------------


def list_teams(db: StateDB, *, limit: int = 100, offset: int = 0) -> TeamPage:
    """Teams by name with their member counts (enabled and disabled users)."""
    if not 1 <= limit <= MAX_PAGE or offset < 0:
        raise InputError(f"limit must be 1..{MAX_PAGE} and offset at least 0")
    members = (select(func.count()).select_from(User).where(User.team_id == Team.id)
               .correlate(Team).scalar_subquery())
    with db.session() as session:
        total = session.scalar(select(func.count()).select_from(Team)) or 0
        rows = session.execute(select(Team, members).order_by(Team.name)
                               .limit(limit).offset(offset)).all()
        return TeamPage(total, [TeamInfo(t.id, t.name, t.description, to_utc(t.created_at), int(n))
                                for t, n in rows])


def get_team(db: StateDB, name: str) -> TeamInfo:
    with db.session() as session:
        team = _team_row(session, name)
        count = session.scalar(select(func.count()).select_from(User).where(
            User.team_id == team.id)) or 0
        return TeamInfo(team.id, team.name, team.description, to_utc(team.created_at), count)


def add_team(db: StateDB, actor: Principal, name: str, description: str | None = None) -> TeamInfo:
    """Create a team; InputError for a taken or invalid name."""
    team_name = _team_name(name)
    text = (description or "").strip() or None
    if text is not None and (len(text) > 2000 or "\x00" in text):
        raise InputError("team description: at most 2000 characters")
    with db.session() as session:
        if session.scalar(select(Team.id).where(Team.name == team_name)) is not None:
            raise InputError(f"team {team_name!r} already exists")
        team = Team(name=team_name, description=text, created_at=utcnow())
        session.add(team)
        try:
            session.flush()
        except IntegrityError:
            raise InputError(f"team {team_name!r} already exists") from None
        record(session, actor, "create", "team", team_name, None,
               {"name": team_name, "description": text})
        return TeamInfo(team.id, team.name, team.description, to_utc(team.created_at), 0)
