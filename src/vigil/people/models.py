"""State tables of people: teams, users, sign-in sessions, login attempts and API tokens.

Secrets are never stored: passwords as argon2 hashes, session and API tokens as SHA-256 (they
are 256 random bits, so a fast hash is enough and lookups are by hash).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Boolean, DateTime, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from vigil.core.db import Base

_TZ = DateTime(timezone=True)


class Team(Base):
    """A team people belong to (``security`` and ``operations`` exist from the start)."""

    __tablename__ = "teams"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    description: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(_TZ)


class User(Base):
    """A person who signs in; ``role`` is a :class:`vigil.core.auth.Role` value."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str] = mapped_column(String(255))
    email: Mapped[str | None] = mapped_column(String(320))
    role: Mapped[str] = mapped_column(String(16))
    team_id: Mapped[int | None] = mapped_column(ForeignKey("teams.id"), index=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(_TZ)
    last_login_at: Mapped[datetime | None] = mapped_column(_TZ)


class SignInSession(Base):
    """A sign-in session: ends at ``expires_at``, after ``idle_seconds`` without a request
    (measured from ``last_seen_at``), or when revoked."""

    __tablename__ = "sessions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(_TZ)
    expires_at: Mapped[datetime] = mapped_column(_TZ, index=True)
    last_seen_at: Mapped[datetime] = mapped_column(_TZ)
    idle_seconds: Mapped[int] = mapped_column(Integer)
    client: Mapped[str | None] = mapped_column(String(64))
    revoked_at: Mapped[datetime | None] = mapped_column(_TZ)


class LoginAttempt(Base):
    """One sign-in attempt; the rate limit counts recent failures across processes."""

    __tablename__ = "login_attempts"
    __table_args__ = (Index("ix_login_attempts_username_at", "username", "at"),
                      Index("ix_login_attempts_client_at", "client", "at"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    username: Mapped[str] = mapped_column(String(64))
    client: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime] = mapped_column(_TZ, index=True)
    ok: Mapped[bool] = mapped_column(Boolean)


class ApiToken(Base):
    """A bearer token for an integration or agent (only its SHA-256 is kept).

    It holds ``role`` narrowed to ``scopes`` (permission values; NULL: the whole role). A
    personal token (``user_id`` set) acts as that user, with the user's current role.
    """

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(128), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    role: Mapped[str] = mapped_column(String(16), default="service")
    scopes: Mapped[list[str] | None] = mapped_column(JSON)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(_TZ)
    expires_at: Mapped[datetime | None] = mapped_column(_TZ)
    last_used_at: Mapped[datetime | None] = mapped_column(_TZ)
    revoked_at: Mapped[datetime | None] = mapped_column(_TZ)
