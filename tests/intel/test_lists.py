"""Stored allowlists on both databases: importing a MISP warninglist flags the stored
indicators it covers, switching it off or removing it releases them, every change is audited,
and the built-in lists cannot be removed."""

from __future__ import annotations

import orjson
import pytest
from sqlalchemy import select

from vigil.audit.service import listing
from vigil.core.config import IntelSettings
from vigil.core.db import StateDB
from vigil.core.errors import ConflictError, InputError, NotFoundError
from vigil.intel import lists
from vigil.intel.allowlist import AllowlistSet, ListKind, builtin_lists
from vigil.intel.models import Indicator
from vigil.intel.normalize import indicator_id, make_input
from vigil.intel.types import IndicatorType
from vigil.intel.writing import ingest_session, revision

T = IndicatorType
ACTOR = "user:alice"
SETTINGS = IntelSettings()

STORED = [(T.IPV4, "45.9.148.3"), (T.CIDR, "91.240.118.0/24"), (T.DOMAIN, "evil-c2.ru"),
          (T.DOMAIN, "cdn.telemetry-hub.net"), (T.URL, "http://cdn.telemetry-hub.net/x.js"),
          (T.IPV4, "185.220.101.17"), (T.EMAIL, "billing@evil-c2.ru")]


def _warninglist(name: str, kind: str, entries: list[str], **extra: object) -> bytes:
    return orjson.dumps({"name": name, "version": 2, "description": "test list", "type": kind,
                         "list": entries, **extra})


def _flags(db: StateDB) -> dict[str, str | None]:
    with db.session() as session:
        rows = session.execute(select(Indicator.value, Indicator.allowlisted)).all()
    return {value: flag for value, flag in rows}


@pytest.fixture
def stored(state_db: StateDB) -> StateDB:
    with state_db.session() as session:
        ingest_session(session, [make_input(k, v, "feed-a") for k, v in STORED], actor=ACTOR,
                       allowlists=lists.active_lists(session, SETTINGS))
    assert set(_flags(state_db).values()) == {None}
    return state_db


def test_import_flag_release_and_audit(stored: StateDB) -> None:
    """One life of a stored list: import, scoping, switch off and on, replace, remove."""
    with stored.session() as session:
        before = revision(session)
        view = lists.import_allowlist(session, _warninglist("CDN hosts", "hostname", ["telemetry-hub.net"]),
                                      SETTINGS, actor=ACTOR)
        assert revision(session) == before + 1
    assert (view.name, view.kind, view.entries, view.enabled, view.builtin) == (
        "CDN hosts", ListKind.HOSTNAME, 1, True, False)
    flags = _flags(stored)
    assert flags["cdn.telemetry-hub.net"] == flags["http://cdn.telemetry-hub.net/x.js"] == "CDN hosts"
    assert flags["evil-c2.ru"] is None and flags["45.9.148.3"] is None

    with stored.session() as session:
        tor = _warninglist("Tor exits", "cidr", ["185.220.101.0/24", "91.240.0.0/16"])
        lists.import_allowlist(session, tor, SETTINGS, actor=ACTOR)
        mail = _warninglist("Mail only", "string", ["evil-c2.ru"], matching_attributes=["email-src"])
        lists.import_allowlist(session, mail, SETTINGS, actor=ACTOR)
    flags = _flags(stored)
    assert flags["185.220.101.17"] == flags["91.240.118.0/24"] == "Tor exits"
    assert flags["evil-c2.ru"] is None, "the string list applies to e-mail addresses only"

    with stored.session() as session:
        assert not lists.set_enabled(session, "Tor exits", False, SETTINGS, actor="user:bob").enabled
    flags = _flags(stored)
    assert flags["185.220.101.17"] is None and flags["91.240.118.0/24"] is None
    assert flags["cdn.telemetry-hub.net"] == "CDN hosts"
    with stored.session() as session:
        before = revision(session)
        lists.set_enabled(session, "Tor exits", False, SETTINGS, actor=ACTOR)  # no change: no revision
        assert revision(session) == before
        lists.set_enabled(session, "Tor exits", True, SETTINGS, actor=ACTOR)
    assert _flags(stored)["185.220.101.17"] == "Tor exits"

    with stored.session() as session:  # the same name again replaces the list
        view = lists.import_allowlist(session, _warninglist("Tor exits", "string", ["45.9.148.3"]),
                                      SETTINGS, actor=ACTOR)
    assert (view.kind, view.entries) == (ListKind.STRING, 1)
    flags = _flags(stored)
    assert flags["185.220.101.17"] is None and flags["45.9.148.3"] == "Tor exits"

    with stored.session() as session:
        for name in ("CDN hosts", "Tor exits", "Mail only"):
            lists.remove_allowlist(session, name, SETTINGS, actor=ACTOR)
        assert [v.name for v in lists.list_allowlists(session, SETTINGS) if not v.builtin] == []
    assert set(_flags(stored).values()) == {None}

    entries = [(e.action, e.actor, e.object_id, e.before, e.after)
               for e in reversed(listing(stored, object_type="intel_allowlist"))]
    assert entries == [
        ("import", ACTOR, "CDN hosts", None, {"entries": 1, "kind": "hostname"}),
        ("import", ACTOR, "Tor exits", None, {"entries": 2, "kind": "cidr"}),
        ("import", ACTOR, "Mail only", None, {"entries": 1, "kind": "string"}),
        ("update", "user:bob", "Tor exits", {"enabled": True}, {"enabled": False}),
        ("update", ACTOR, "Tor exits", {"enabled": False}, {"enabled": True}),
        ("import", ACTOR, "Tor exits", {"entries": 2, "kind": "cidr"}, {"entries": 1, "kind": "string"}),
        ("delete", ACTOR, "CDN hosts", {"kind": "hostname"}, None),
        ("delete", ACTOR, "Tor exits", {"kind": "string"}, None),
        ("delete", ACTOR, "Mail only", {"kind": "string"}, None),
    ]


BAD_FILES = [
    (b"<html>not json</html>", "not JSON"),
    (b"[]", "a warninglist is a JSON object"),
    (b'{"name": "x", "type": "regex", "list": ["("]}', "invalid regular expression"),
    (b'{"name": "x", "type": "bogus", "list": []}', "unknown warninglist type"),
    (orjson.dumps({"name": "x" * 201, "type": "string", "list": []}), "too long"),
    (orjson.dumps({"name": "x", "version": "1" * 41, "type": "string", "list": []}), "too long"),
]


def test_builtin_lists_bad_files_and_own_infrastructure(stored: StateDB) -> None:
    settings = IntelSettings(own_infrastructure=["185.220.101.0/24", "vigil.acme-corp.io"])
    with stored.session() as session:
        views = lists.list_allowlists(session, settings)
        builtin = [v.name for v in views if v.builtin]
        assert "Vigil: special-use and documentation networks" in builtin
        assert "Vigil: own infrastructure (addresses)" in builtin
        for name in ("Vigil: special-use and documentation networks",
                     "Vigil: reserved and documentation names"):
            with pytest.raises(ConflictError):
                lists.remove_allowlist(session, name, settings, actor=ACTOR)
            with pytest.raises(ConflictError):
                lists.set_enabled(session, name, False, settings, actor=ACTOR)
        with pytest.raises(NotFoundError):
            lists.remove_allowlist(session, "no such list", settings, actor=ACTOR)
        for name in ("Vigil: reserved and documentation names", "Vigil: own infrastructure (names)"):
            with pytest.raises(ConflictError, match="built-in"):  # a list that could never be removed
                lists.import_allowlist(session, _warninglist(name, "string", ["evil-c2.ru"]), settings,
                                       actor=ACTOR)
        assert lists.list_allowlists(session, IntelSettings(builtin_allowlists=False)) == []

    for data, message in BAD_FILES:
        with stored.session() as session, pytest.raises(InputError, match=message):
            lists.import_allowlist(session, data, SETTINGS, actor=ACTOR, origin="upload.json")
    with stored.session() as session:
        assert [v for v in lists.list_allowlists(session, SETTINGS) if not v.builtin] == []
    assert listing(stored, object_type="intel_allowlist") == []

    with stored.session() as session:
        assert lists.reapply(session, lists.active_lists(session, settings)) == 1
        assert lists.reapply(session, lists.active_lists(session, settings)) == 0
    assert _flags(stored)["185.220.101.17"] == "Vigil: own infrastructure (addresses)"
    with stored.session() as session:
        ingest_session(session, [make_input(T.IPV4, "198.51.100.7", "feed-a")], actor=ACTOR,
                       allowlists=lists.active_lists(session, settings))
    assert _flags(stored)["198.51.100.7"] == "Vigil: special-use and documentation networks"
    with stored.session() as session:
        lists.reapply(session, lists.active_lists(session, IntelSettings(builtin_allowlists=False)))
    assert set(_flags(stored).values()) == {None}


def test_covered() -> None:
    assert lists.covered(AllowlistSet([]), [(T.IPV4, "45.9.148.3")]) == {}
    found = lists.covered(AllowlistSet(builtin_lists()),
                          [(T.IPV4, "45.9.148.3"), (T.IPV4, "192.0.2.1"), (T.DOMAIN, "www.example.com")])
    assert set(found) == {"192.0.2.1", "www.example.com"}


def test_reapply_walks_more_than_one_page(state_db: StateDB) -> None:
    items = [make_input(T.IPV4, f"45.{9 + i // 250}.{i % 250}.3", "feed") for i in range(5200)]
    with state_db.session() as session:
        ingest_session(session, items, actor=ACTOR)
        lists.import_allowlist(session, _warninglist("All of 45/8", "cidr", ["45.0.0.0/8"]), SETTINGS,
                               actor=ACTOR)
    flags = _flags(state_db)
    assert len(flags) == 5200 and set(flags.values()) == {"All of 45/8"}
    with state_db.session() as session:
        assert session.get(Indicator, indicator_id(T.IPV4, "45.9.0.3")) is not None
