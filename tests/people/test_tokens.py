"""API tokens: created once, stored as SHA-256, legacy scopes still accepted; SQLite and PostgreSQL."""

from __future__ import annotations

import dataclasses
import hashlib

import pytest
from sqlalchemy import select

from vigil.core.auth import Permission
from vigil.core.db import StateDB
from vigil.core.errors import AuthError, ForbiddenError, InputError, NotFoundError
from vigil.people import tokens
from vigil.people.models import ApiToken
from vigil.people.tokens import PREFIX, Scope


def test_create_then_verify_with_the_right_scope(state_db: StateDB) -> None:
    token = tokens.create(state_db, "web-frontends", Scope.INGEST)
    assert token.startswith(PREFIX)
    assert len(token) > len(PREFIX) + 40
    assert tokens.verify(state_db, f"Bearer {token}", Scope.INGEST) == "web-frontends"


def test_verify_accepts_any_case_and_surrounding_spaces(state_db: StateDB) -> None:
    token = tokens.create(state_db, "soc-dashboard", Scope.READ)
    assert tokens.verify(state_db, f"bearer {token}", Scope.READ) == "soc-dashboard"
    assert tokens.verify(state_db, f"BEARER   {token}  ", Scope.READ) == "soc-dashboard"


def test_tokens_are_unique(state_db: StateDB) -> None:
    created = {tokens.create(state_db, "same-name", Scope.READ) for _ in range(5)}
    assert len(created) == 5
    for token in created:
        assert tokens.verify(state_db, f"Bearer {token}", Scope.READ) == "same-name"


@pytest.mark.parametrize(("scope", "other"), [(Scope.INGEST, Scope.READ),
                                              (Scope.READ, Scope.INGEST)])
def test_wrong_scope_is_forbidden(state_db: StateDB, scope: Scope, other: Scope) -> None:
    token = tokens.create(state_db, "scoped", scope)
    with pytest.raises(ForbiddenError) as info:
        tokens.verify(state_db, f"Bearer {token}", other)
    assert other.value in str(info.value)
    assert scope.value in str(info.value)
    assert info.value.http_status == 403


@pytest.mark.parametrize("header", [None, ""])
def test_missing_header(state_db: StateDB, header: str | None) -> None:
    with pytest.raises(AuthError, match="missing bearer token") as info:
        tokens.verify(state_db, header, Scope.READ)
    assert info.value.http_status == 401


MALFORMED_HEADERS = ["Bearer", "Bearer ", "Bearer    ", "Basic dXNlcjpwYXNz", "Token abc",
                     "vgt_abc", "Bearer\tabc"]


def test_malformed_header(state_db: StateDB) -> None:
    token = tokens.create(state_db, "present", Scope.READ)
    for header in [*MALFORMED_HEADERS, token, f"Basic {token}", f"{token} Bearer"]:
        with pytest.raises(AuthError, match="Authorization: Bearer"):
            tokens.verify(state_db, header, Scope.READ)


def test_unknown_token(state_db: StateDB) -> None:
    token = tokens.create(state_db, "real", Scope.READ)
    for guess in (f"{token}x", token[:-1], PREFIX + "0" * 43, token.upper()):
        with pytest.raises(AuthError, match="invalid or revoked"):
            tokens.verify(state_db, f"Bearer {guess}", Scope.READ)


def test_revoke(state_db: StateDB) -> None:
    keep = tokens.create(state_db, "keep", Scope.INGEST)
    drop = tokens.create(state_db, "drop", Scope.INGEST)
    drop_id = next(t.id for t in tokens.listing(state_db) if t.name == "drop")
    tokens.revoke(state_db, drop_id)
    with pytest.raises(AuthError, match="invalid or revoked"):
        tokens.verify(state_db, f"Bearer {drop}", Scope.INGEST)
    assert tokens.verify(state_db, f"Bearer {keep}", Scope.INGEST) == "keep"
    info = {t.name: t for t in tokens.listing(state_db)}
    assert info["drop"].revoked_at is not None
    assert info["keep"].revoked_at is None
    assert info["drop"].revoked_at >= info["drop"].created_at.replace(
        tzinfo=info["drop"].revoked_at.tzinfo)


def test_revoke_unknown_id(state_db: StateDB) -> None:
    with pytest.raises(NotFoundError, match="no token with id 4242"):
        tokens.revoke(state_db, 4242)


def test_listing_never_exposes_the_token(state_db: StateDB) -> None:
    assert tokens.listing(state_db) == []
    ingest = tokens.create(state_db, "collector", Scope.INGEST)
    read = tokens.create(state_db, "reader", Scope.READ)
    listed = tokens.listing(state_db)
    assert [(t.name, t.scopes) for t in listed] == [
        ("collector", (Permission.EVENTS_INGEST,)),
        ("reader", (Permission.EVENTS_READ, Permission.ALERTS_READ, Permission.CASES_READ))]
    assert listed[0].id < listed[1].id
    for info in listed:
        field_names = {f.name for f in dataclasses.fields(info)}
        assert field_names == {"id", "name", "role", "scopes", "user", "created_at", "expires_at",
                               "last_used_at", "revoked_at"}
        text = repr(info)
        for secret in (ingest, read, ingest[len(PREFIX):], read[len(PREFIX):]):
            assert secret not in text


def test_only_the_hash_is_stored(state_db: StateDB) -> None:
    token = tokens.create(state_db, "hashed", Scope.READ)
    with state_db.session() as session:
        row = session.scalars(select(ApiToken)).one()
        values = [str(getattr(row, c.key)) for c in ApiToken.__table__.columns]
    assert row.token_hash == hashlib.sha256(token.encode()).hexdigest()
    assert not any(token in value or token[len(PREFIX):] in value for value in values)


GOOD_NAMES = ["a", "web-frontends", "soc.dashboard_2", "A" * 128, "9lives"]
BAD_NAMES = ["", " ", "bad name", "-leading-dash", ".hidden", "_x", "A" * 129, "tab\there",
             "slash/name", "semi;colon", "quote'name", "ünïcode"]


def test_good_names(state_db: StateDB) -> None:
    for name in GOOD_NAMES:
        token = tokens.create(state_db, name, Scope.READ)
        assert tokens.verify(state_db, f"Bearer {token}", Scope.READ) == name
    assert [t.name for t in tokens.listing(state_db)] == GOOD_NAMES


def test_bad_names(state_db: StateDB) -> None:
    for name in BAD_NAMES:
        with pytest.raises(InputError, match="token name"):
            tokens.create(state_db, name, Scope.READ)
    assert tokens.listing(state_db) == []


def test_name_with_a_newline_is_rejected(state_db: StateDB) -> None:
    for name in ("name\n", "name\r\n", "\nname"):
        with pytest.raises(InputError, match="token name"):
            tokens.create(state_db, name, Scope.READ)
    assert tokens.listing(state_db) == []
