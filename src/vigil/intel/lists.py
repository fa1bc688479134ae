"""Allowlists kept in the state database, and applying them to what is stored.

Lists come in as MISP warninglist JSON files (``vigil intel allowlists import FILE``). Adding,
changing or removing a list re-checks every stored indicator, so a value newly allowlisted is
no longer matched or exported, and a value released is again; the change is audited.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from vigil.audit.service import record
from vigil.core.auth import Principal
from vigil.core.config import IntelSettings
from vigil.core.errors import ConflictError, InputError, NotFoundError
from vigil.core.timeutil import to_utc, utcnow
from vigil.intel.allowlist import AllowlistSet, ListKind, Warninglist, builtin_lists, parse_warninglist
from vigil.intel.models import Allowlist, Indicator
from vigil.intel.types import IndicatorType
from vigil.intel.writing import bump_revision, chunks


@dataclass(frozen=True, slots=True)
class AllowlistView:
    id: int | None
    name: str
    kind: ListKind
    entries: int
    matching_attributes: tuple[str, ...]
    enabled: bool
    builtin: bool
    description: str | None
    version: str | None
    created_at: datetime | None


def _warninglist(row: Allowlist) -> Warninglist:
    return Warninglist(row.name, ListKind(row.kind), tuple(orjson.loads(row.entries)),
                       tuple(orjson.loads(row.matching_attributes)), row.description, row.version)


def _view(row: Allowlist) -> AllowlistView:
    return AllowlistView(row.id, row.name, ListKind(row.kind), len(orjson.loads(row.entries)),
                         tuple(orjson.loads(row.matching_attributes)), row.enabled, False,
                         row.description, row.version, to_utc(row.created_at))


_CACHE: dict[tuple[object, ...], AllowlistSet] = {}
_CACHE_LOCK = threading.Lock()


def active_lists(session: Session, settings: IntelSettings) -> AllowlistSet:
    """The built-in lists (unless switched off) and every enabled stored list.

    Building the set from large lists (a million top sites) takes seconds, so it is kept per
    process and rebuilt only when the stored lists change (their ids, names, sizes and
    switches, read in one small query) or the settings do."""
    stamp = session.execute(select(Allowlist.id, Allowlist.name, Allowlist.enabled,
                                   func.length(Allowlist.entries), Allowlist.version).order_by(
        Allowlist.id)).all()
    key = (settings.builtin_allowlists, tuple(settings.own_infrastructure), tuple(tuple(r) for r in stamp))
    with _CACHE_LOCK:
        found = _CACHE.get(key)
    if found is not None:
        return found
    lists = builtin_lists(settings.own_infrastructure) if settings.builtin_allowlists else []
    rows = session.execute(select(Allowlist).where(Allowlist.enabled.is_(True)).order_by(
        Allowlist.name)).scalars()
    lists.extend(_warninglist(r) for r in rows)
    built = AllowlistSet(lists)
    with _CACHE_LOCK:
        _CACHE.clear()
        _CACHE[key] = built
    return built


def list_allowlists(session: Session, settings: IntelSettings) -> list[AllowlistView]:
    builtin = builtin_lists(settings.own_infrastructure) if settings.builtin_allowlists else []
    views = [AllowlistView(None, w.name, w.kind, len(w.entries), w.matching_attributes, True, True,
                           w.description, w.version, None) for w in builtin]
    rows = session.execute(select(Allowlist).order_by(Allowlist.name)).scalars()
    return views + [_view(r) for r in rows]


def import_allowlist(session: Session, data: bytes, settings: IntelSettings, *,
                     actor: Principal | str, origin: str = "warninglist") -> AllowlistView:
    """Add (or replace, by name) a list from MISP warninglist JSON, then re-check indicators."""
    try:
        parsed: Any = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise InputError(f"{origin}: not JSON: {exc}") from None
    warninglist = parse_warninglist(parsed, origin=origin)
    if any(w.name == warninglist.name for w in builtin_lists(settings.own_infrastructure)):
        raise ConflictError(f"{origin}: {warninglist.name!r} is the name of a built-in list")
    row = session.execute(select(Allowlist).where(Allowlist.name == warninglist.name)).scalar_one_or_none()
    before = None if row is None else {"entries": len(orjson.loads(row.entries)), "kind": row.kind}
    if row is None:
        row = Allowlist(name=warninglist.name, created_at=utcnow(), enabled=True)
        session.add(row)
    row.kind = warninglist.kind.value
    row.entries = orjson.dumps(list(warninglist.entries)).decode()
    row.matching_attributes = orjson.dumps(list(warninglist.matching_attributes)).decode()
    row.description, row.version = warninglist.description, warninglist.version
    session.flush()
    record(session, actor, "import", "intel_allowlist", row.name, before,
           {"entries": len(warninglist.entries), "kind": warninglist.kind.value})
    reapply(session, active_lists(session, settings))
    return _view(row)


def set_enabled(session: Session, name: str, enabled: bool, settings: IntelSettings, *,
                actor: Principal | str) -> AllowlistView:
    row = _row(session, name)
    if row.enabled != enabled:
        record(session, actor, "update", "intel_allowlist", row.name, {"enabled": row.enabled},
               {"enabled": enabled})
        row.enabled = enabled
        session.flush()
        reapply(session, active_lists(session, settings))
    return _view(row)


def remove_allowlist(session: Session, name: str, settings: IntelSettings, *,
                     actor: Principal | str) -> None:
    row = _row(session, name)
    record(session, actor, "delete", "intel_allowlist", row.name, {"kind": row.kind}, None)
    session.delete(row)
    session.flush()
    reapply(session, active_lists(session, settings))


def _row(session: Session, name: str) -> Allowlist:
    if any(w.name == name for w in builtin_lists()):
        raise ConflictError(f"{name!r} is built in: switch it off with intel.builtin_allowlists")
    row = session.execute(select(Allowlist).where(Allowlist.name == name)).scalar_one_or_none()
    if row is None:
        raise NotFoundError(f"no allowlist {name!r}")
    return row


def reapply(session: Session, allowlists: AllowlistSet) -> int:
    """Re-check every stored indicator against ``allowlists``; returns how many changed."""
    changed: list[dict[str, Any]] = []
    after = ""
    while True:
        rows = session.execute(select(Indicator.id, Indicator.type, Indicator.value, Indicator.allowlisted)
                               .where(Indicator.id > after).order_by(Indicator.id).limit(5000)).all()
        if not rows:
            break
        after = rows[-1][0]
        for key, kind, value, current in rows:
            covered = allowlists.match(IndicatorType(kind), value)
            if covered != current:
                changed.append({"id": key, "allowlisted": covered})
    for chunk in chunks(changed, 5000):
        session.execute(update(Indicator), list(chunk))
    if changed:
        bump_revision(session)
    return len(changed)


def covered(allowlists: AllowlistSet, pairs: Sequence[tuple[IndicatorType, str]]) -> dict[str, str]:
    """The values among ``pairs`` that a list covers, with the list's name."""
    found: dict[str, str] = {}
    for kind, value in pairs:
        name = allowlists.match(kind, value)
        if name:
            found[value] = name
    return found
