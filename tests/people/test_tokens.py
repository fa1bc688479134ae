"""API tokens: created once, stored as SHA-256, legacy scopes still accepted; SQLite and PostgreSQL."""

from __future__ import annotations

import dataclasses
import hashlib
from datetime import timedelta

import pytest
from sqlalchemy import select

from vigil.audit.service import listing
from vigil.core.auth import ROLE_PERMISSIONS, Permission, PrincipalKind, Role, cli_principal
from vigil.core.db import StateDB
from vigil.core.errors import AuthError, ForbiddenError, InputError, NotFoundError
from vigil.core.timeutil import utcnow
from vigil.people import service, tokens
from vigil.people.auth import authenticate
from vigil.people.credentials import digest
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


# -- roles, scopes, personal tokens, expiry ---------------------------------------------------

ADMIN = cli_principal()
PASSWORD = "correct horse battery"


def test_a_service_token_holds_its_scopes(state_db: StateDB) -> None:
    created = tokens.issue(state_db, ADMIN, "edr-bridge", scopes=["ingest", "alerts:write"])
    assert created.info.role is Role.SERVICE and created.info.user is None
    assert created.info.scopes == (Permission.EVENTS_INGEST, Permission.ALERTS_WRITE)
    who = authenticate(state_db, f"Bearer {created.token}")
    assert (who.kind, who.id, who.name, who.role) == (PrincipalKind.TOKEN, created.info.id,
                                                      "edr-bridge", Role.SERVICE)
    assert who.permissions == {Permission.EVENTS_INGEST, Permission.ALERTS_WRITE}


def test_without_scopes_a_token_holds_its_whole_role(state_db: StateDB) -> None:
    created = tokens.issue(state_db, ADMIN, "compliance-export", role=Role.AUDITOR)
    assert created.info.scopes is None
    who = authenticate(state_db, f"Bearer {created.token}")
    assert who.role is Role.AUDITOR and who.permissions == ROLE_PERMISSIONS[Role.AUDITOR]


def test_scopes_must_be_held_by_the_role(state_db: StateDB) -> None:
    with pytest.raises(InputError, match="role service does not hold users:admin"):
        tokens.issue(state_db, ADMIN, "greedy", scopes=["users:admin"])
    with pytest.raises(InputError, match="unknown scope 'everything'"):
        tokens.issue(state_db, ADMIN, "vague", scopes=["everything"])
    with pytest.raises(InputError, match="at least one scope"):
        tokens.issue(state_db, ADMIN, "empty", scopes=[])
    with pytest.raises(InputError, match="unknown role"):
        tokens.issue(state_db, ADMIN, "who", role="root")
    for days in (0, -1, 3651):
        with pytest.raises(InputError, match="expiry"):
            tokens.issue(state_db, ADMIN, "when", expires_days=days)
    assert tokens.listing(state_db) == []


def test_personal_token_acts_as_its_user(state_db: StateDB) -> None:
    service.add_user(state_db, ADMIN, "alice", PASSWORD, role=Role.ANALYST, team="security")
    created = tokens.issue(state_db, ADMIN, "alice-laptop", user="Alice",
                           scopes=["read", "rules:write"])
    assert (created.info.user, created.info.role) == ("alice", Role.ANALYST)
    who = authenticate(state_db, f"Bearer {created.token}")
    assert (who.kind, who.name, who.role, who.team) == (PrincipalKind.USER, "alice", Role.ANALYST,
                                                        "security")
    assert who.permissions == {Permission.EVENTS_READ, Permission.ALERTS_READ, Permission.CASES_READ,
                               Permission.RULES_WRITE}
    service.set_role(state_db, ADMIN, "alice", Role.RESPONDER)  # the user's current role counts
    who = authenticate(state_db, f"Bearer {created.token}")
    assert who.role is Role.RESPONDER and Permission.RULES_WRITE not in who.permissions
    service.disable_user(state_db, ADMIN, "alice")
    with pytest.raises(AuthError, match="disabled user alice"):
        authenticate(state_db, f"Bearer {created.token}")
    with pytest.raises(InputError, match="disabled"):
        tokens.issue(state_db, ADMIN, "another", user="alice")
    with pytest.raises(NotFoundError, match="no user named 'bob'"):
        tokens.issue(state_db, ADMIN, "nobody", user="bob")
    assert [t.user for t in tokens.list_tokens(state_db, user="alice").tokens] == ["alice"]


def test_expired_tokens_are_refused(state_db: StateDB) -> None:
    created = tokens.issue(state_db, ADMIN, "temporary", expires_days=7)
    assert created.info.expires_at is not None
    assert timedelta(days=6, hours=23) < created.info.expires_at - utcnow() <= timedelta(days=7)
    assert authenticate(state_db, f"Bearer {created.token}").name == "temporary"
    later = created.info.expires_at + timedelta(seconds=1)
    with pytest.raises(AuthError, match="expired"):
        authenticate(state_db, f"Bearer {created.token}", now=later)
    assert created.info.active() and not created.info.active(later)


def test_last_used_is_kept_up_to_date_cheaply(state_db: StateDB) -> None:
    created = tokens.issue(state_db, ADMIN, "busy")
    assert tokens.listing(state_db)[0].last_used_at is None
    now = utcnow()
    authenticate(state_db, f"Bearer {created.token}", now=now)
    assert tokens.listing(state_db)[0].last_used_at == now
    authenticate(state_db, f"Bearer {created.token}", now=now + timedelta(seconds=30))
    assert tokens.listing(state_db)[0].last_used_at == now
    authenticate(state_db, f"Bearer {created.token}", now=now + timedelta(seconds=90))
    assert tokens.listing(state_db)[0].last_used_at == now + timedelta(seconds=90)


def test_token_changes_are_audited(state_db: StateDB) -> None:
    created = tokens.issue(state_db, ADMIN, "audited", scopes=["ingest"], expires_days=1)
    tokens.revoke(state_db, created.info.id, actor=ADMIN)
    tokens.revoke(state_db, created.info.id, actor=ADMIN)  # again: no change, no record
    entries = list(reversed(listing(state_db)))
    assert [(e.actor, e.action, e.object_type, e.object_id) for e in entries] == [
        (ADMIN.actor, "create", "token", str(created.info.id)),
        (ADMIN.actor, "revoke", "token", str(created.info.id))]
    assert entries[0].after is not None
    assert entries[0].after["scopes"] == ["events:ingest"] and entries[0].after["role"] == "service"
    assert created.token not in repr(entries) and digest(created.token) not in repr(entries)


def test_list_tokens_pages_and_filters(state_db: StateDB) -> None:
    made = [tokens.issue(state_db, ADMIN, f"t{i}") for i in range(5)]
    tokens.revoke(state_db, made[1].info.id)
    page = tokens.list_tokens(state_db, limit=2, offset=2)
    assert page.total == 5 and [t.name for t in page.tokens] == ["t2", "t3"]
    active = tokens.list_tokens(state_db, include_revoked=False)
    assert active.total == 4 and "t1" not in [t.name for t in active.tokens]
    with pytest.raises(InputError, match="limit"):
        tokens.list_tokens(state_db, limit=0)


def test_session_tokens_are_not_api_tokens(state_db: StateDB) -> None:
    created = tokens.issue(state_db, ADMIN, "api")
    with pytest.raises(AuthError):
        authenticate(state_db, None, created.token)  # not a session cookie
