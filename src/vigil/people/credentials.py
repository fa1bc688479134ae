"""Secrets and how they are kept: passwords (argon2), random bearer tokens (SHA-256).

Passwords are chosen by people and may be guessed, so they are stretched with argon2id
(argon2-cffi, RFC 9106 low-memory parameters). Session and API tokens are 256 random bits:
a fast SHA-256 is enough for secrets that cannot be guessed, and it lets a request find its
row with one indexed lookup.
"""

from __future__ import annotations

import hashlib
import secrets
from functools import cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from vigil.core.errors import AuthError, InputError

TOKEN_PREFIX = "vgt_"
"""API tokens (integrations, agents, personal tokens)."""
SESSION_PREFIX = "vgs_"
"""Sign-in session tokens."""

MIN_PASSWORD = 12
MAX_PASSWORD = 1024
"""Longer passwords are refused so that hashing stays cheap to ask for."""

_hasher = PasswordHasher()


def new_secret(prefix: str) -> str:
    """A new random token: the prefix says what it is, 256 bits say who."""
    return prefix + secrets.token_urlsafe(32)


def digest(token: str) -> str:
    """What is stored of a token: its SHA-256, hex."""
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def bearer(authorization: str) -> str:
    """The token of an ``Authorization: Bearer <token>`` header; AuthError if malformed."""
    kind, _, token = authorization.partition(" ")
    token = token.strip()
    if kind.lower() != "bearer" or not token or any(c.isspace() for c in token):
        raise AuthError("expected 'Authorization: Bearer <token>'")
    return token


def check_password_policy(password: str, username: str | None = None) -> None:
    """InputError unless ``password`` is acceptable (never says the password itself)."""
    if len(password) < MIN_PASSWORD:
        raise InputError(f"password too short: at least {MIN_PASSWORD} characters")
    if len(password) > MAX_PASSWORD:
        raise InputError(f"password too long: at most {MAX_PASSWORD} characters")
    if not password.strip():
        raise InputError("password must not be only spaces")
    if username and password.strip().lower() == username.lower():
        raise InputError("password must not be the user name")


def hash_password(password: str) -> str:
    """The argon2id hash of ``password`` (salted; never the same twice)."""
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    """Whether ``password`` matches ``password_hash`` (constant work either way)."""
    if len(password) > MAX_PASSWORD:
        return False
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    """Whether the hash was made with weaker parameters than the current ones."""
    try:
        return _hasher.check_needs_rehash(password_hash)
    except InvalidHashError:
        return True


@cache
def dummy_hash() -> str:
    """A hash to verify against when the user does not exist, so that an unknown user name
    takes as long to refuse as a wrong password."""
    return _hasher.hash(secrets.token_urlsafe(16))
