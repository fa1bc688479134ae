"""Configured feeds: adding, changing and removing them (audited), their runs, and pulls.

A feed is a name, a kind (see :mod:`vigil.intel.feed_sources`), a URL or file path, typed
settings, an optional secret (never shown: views say only whether one is set), a pull
interval and its state between pulls (TAXII cursor, MISP event timestamps, ETag and
Last-Modified).

:func:`pull` fetches and parses everything first, with no transaction open; then, in ONE
transaction, stores the indicators, the feed's new state and the run. A feed that breaks
(HTTP 500, HTML, malformed JSON, wrong CSV columns, a timeout half-way through TAXII pages, a
download over the size limit) leaves a failed run with its error and ``last_error`` on the
feed, and changes nothing else: no indicator half-imported, the cursor where it was.
:func:`pull_due` pulls every enabled feed whose interval has passed (the server's scheduler
calls it).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import Enum, StrEnum
from typing import Any

import httpx
import orjson
from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from vigil.audit.service import record
from vigil.core import logging as vlog
from vigil.core.auth import SYSTEM
from vigil.core.config import IntelSettings
from vigil.core.db import StateDB
from vigil.core.errors import ConflictError, InputError, NotFoundError, VigilError
from vigil.core.timeutil import to_utc, utcnow
from vigil.intel.feed_sources import (
    SOURCE_KEYS,
    FeedConfig,
    FeedKind,
    FeedState,
    Outcome,
    Source,
    check_source,
    check_url,
    fetch,
    is_remote,
)
from vigil.intel.lists import active_lists
from vigil.intel.models import Feed, FeedRun
from vigil.intel.taxii import credentials, shown_url
from vigil.intel.writing import ingest_session

__all__ = ["KEEP", "FeedConfig", "FeedKind", "FeedRunStatus", "FeedRunView", "FeedView", "Keep",
           "add_feed", "feed_runs", "get_feed", "list_feeds", "pull", "pull_due", "remove_feed",
           "update_feed"]

log = vlog.get("vigil.intel.feeds")
OBJECT_TYPE = "intel_feed"
MIB = 1024 * 1024
MAX_INTERVAL = 366 * 24 * 60
MAX_RUNS = 1000
MAX_MESSAGES = 20
ERROR_CHARS = 2000
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")


class FeedRunStatus(StrEnum):
    OK = "ok"
    UNCHANGED = "unchanged"
    """Nothing new (304, no new TAXII objects, no changed MISP event)."""
    FAILED = "failed"


class Keep(Enum):
    """``update_feed(secret=KEEP)``: leave the secret as it is."""

    KEEP = "keep"


KEEP = Keep.KEEP


@dataclass(frozen=True, slots=True)
class FeedView:
    id: int
    name: str
    kind: FeedKind
    url: str
    """Without user information (a password in a URL is never shown)."""
    config: FeedConfig
    has_secret: bool
    interval_minutes: int
    enabled: bool
    cursor: str | None
    """The TAXII ``added_after`` cursor, or for a MISP feed how many events it tracks."""
    etag: str | None
    last_modified: str | None
    last_pull_at: datetime | None
    last_ok_at: datetime | None
    last_error: str | None
    next_pull_at: datetime | None
    """When the scheduler pulls it next (None: disabled; the past: at its next check)."""
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class FeedRunView:
    id: int
    feed: str
    started_at: datetime
    finished_at: datetime | None
    status: FeedRunStatus
    fetched: int
    """TAXII objects, MISP events, or the items of one document (STIX, event, CSV, list)."""
    added: int
    updated: int
    problems: int
    error: str | None
    messages: tuple[str, ...] = ()
    """The first problems of this pull (only on the view :func:`pull` returns)."""
    indicator_ids: tuple[str, ...] = ()
    """Indicators this pull added or changed (only on the view :func:`pull` returns)."""


# -- views -------------------------------------------------------------------------------------


def _opt_utc(value: datetime | None) -> datetime | None:
    return to_utc(value) if value is not None else None


def _config(row: Feed, *, check_mapping: bool = True) -> FeedConfig:
    return FeedConfig.parse(FeedKind(row.kind), orjson.loads(row.config or "{}"),
                            check_mapping=check_mapping)


def _cursor_shown(row: Feed) -> str | None:
    if row.kind == FeedKind.MISP.value and row.cursor:
        tracked = orjson.loads(row.cursor)
        return f"{len(tracked)} events" if isinstance(tracked, dict) else None
    return row.cursor


def _view(row: Feed) -> FeedView:
    last = _opt_utc(row.last_pull_at)
    due = None if not row.enabled else (
        last + timedelta(minutes=row.interval_minutes) if last else to_utc(row.created_at))
    return FeedView(row.id, row.name, FeedKind(row.kind),
                    shown_url(row.url) if is_remote(row.url) else row.url,
                    _config(row, check_mapping=False),
                    bool(row.secret), row.interval_minutes, row.enabled, _cursor_shown(row), row.etag,
                    row.last_modified, last, _opt_utc(row.last_ok_at), row.last_error, due,
                    to_utc(row.created_at), to_utc(row.updated_at))


def _run_view(run: FeedRun, feed: str, messages: tuple[str, ...] = (),
              ids: tuple[str, ...] = ()) -> FeedRunView:
    return FeedRunView(run.id, feed, to_utc(run.started_at), _opt_utc(run.finished_at),
                       FeedRunStatus(run.status), run.fetched, run.added, run.updated, run.problems,
                       run.error, messages, ids)


def _audit(row: Feed) -> dict[str, Any]:
    return {"name": row.name, "kind": row.kind,
            "url": shown_url(row.url) if is_remote(row.url) else row.url,
            "config": orjson.loads(row.config or "{}"), "interval_minutes": row.interval_minutes,
            "enabled": row.enabled, "secret": "set" if row.secret else None}


# -- configuration -----------------------------------------------------------------------------


def _row(session: Session, name: str) -> Feed:
    row = session.scalar(select(Feed).where(Feed.name == name))
    if row is None:
        raise NotFoundError(f"no feed named {name!r}")
    return row


def _check_name(name: str) -> str:
    if not _NAME.match(name):
        raise InputError(f"invalid feed name {name!r}: 1 to 100 letters, digits, '.', '_' or '-', "
                         "starting with a letter or digit")
    return name


def _check_interval(minutes: int) -> int:
    if isinstance(minutes, bool) or not isinstance(minutes, int) or not 1 <= minutes <= MAX_INTERVAL:
        raise InputError(f"interval_minutes must be a whole number from 1 to {MAX_INTERVAL:,}")
    return minutes


def _check_secret(secret: str | None, config: FeedConfig) -> None:
    credentials(secret, config.auth, config.auth_header)


def add_feed(db: StateDB, name: str, kind: FeedKind | str, url: str, *,
             config: Mapping[str, object] | None = None, secret: str | None = None,
             interval_minutes: int = 60, enabled: bool = True, actor: str) -> FeedView:
    """Configure a new feed (audited); ConflictError when the name is taken."""
    kind = FeedKind.parse(kind) if isinstance(kind, str) else kind
    _check_name(name)
    url = check_url(kind, url)
    typed = FeedConfig.parse(kind, config)
    check_source(kind, url, typed)
    _check_secret(secret or None, typed)
    _check_interval(interval_minutes)
    now = utcnow()
    with db.session() as session:
        if session.scalar(select(Feed.id).where(Feed.name == name)) is not None:
            raise ConflictError(f"a feed named {name!r} exists already")
        row = Feed(name=name, kind=kind.value, url=url, config=orjson.dumps(typed.to_json()).decode(),
                   secret=secret or None, interval_minutes=interval_minutes, enabled=enabled,
                   created_at=now, updated_at=now)
        session.add(row)
        try:
            session.flush()
        except IntegrityError as exc:
            raise ConflictError(f"a feed named {name!r} exists already") from exc
        record(session, actor, "create", OBJECT_TYPE, row.id, None, _audit(row))
        return _view(row)


def _merged_config(row: Feed, patch: Mapping[str, object]) -> tuple[FeedConfig, bool]:
    """The settings with ``patch`` merged in (a ``None`` value removes a key), and whether
    what the feed reads changed."""
    current: dict[str, object] = orjson.loads(row.config or "{}")
    merged = {**current, **patch}
    merged = {k: v for k, v in merged.items() if v is not None}
    typed = FeedConfig.parse(FeedKind(row.kind), merged)
    moved = any(current.get(k) != merged.get(k) for k in SOURCE_KEYS)
    return typed, moved


def update_feed(db: StateDB, name: str, *, url: str | None = None,
                config: Mapping[str, object] | None = None, secret: str | Keep | None = KEEP,
                interval_minutes: int | None = None, enabled: bool | None = None,
                actor: str) -> FeedView:
    """Change the fields given (``config`` keys merge into the settings; ``secret=None``
    removes the secret). A new URL, collection, types, preset or mapping starts the feed's
    state afresh (the next pull reads everything)."""
    with db.session() as session:
        row = _row(session, name)
        before, old_secret = _audit(row), row.secret
        kind, reset = FeedKind(row.kind), False
        if url is not None and url.strip() != row.url:
            row.url, reset = check_url(kind, url), True
        if config is not None:
            typed, moved = _merged_config(row, config)
            row.config, reset = orjson.dumps(typed.to_json()).decode(), reset or moved
        else:
            typed = _config(row, check_mapping=False)
        check_source(kind, row.url, typed)
        if not isinstance(secret, Keep):
            row.secret = secret or None
        _check_secret(row.secret, typed)
        if interval_minutes is not None:
            row.interval_minutes = _check_interval(interval_minutes)
        if enabled is not None:
            row.enabled = enabled
        if reset:
            row.cursor = row.etag = row.last_modified = None
        after = _audit(row)
        old = {k: before[k] for k in after if before[k] != after[k]}
        new = {k: after[k] for k in old}
        if row.secret != old_secret:
            old["secret"], new["secret"] = before["secret"], "changed" if row.secret else None
        if new:
            row.updated_at = utcnow()
            record(session, actor, "update", OBJECT_TYPE, row.id, old, new)
        return _view(row)


def remove_feed(db: StateDB, name: str, *, actor: str) -> None:
    """Remove a feed and its runs (audited). Its indicators stay, with their sources."""
    with db.session() as session:
        row = _row(session, name)
        record(session, actor, "delete", OBJECT_TYPE, row.id, _audit(row), None)
        session.execute(delete(FeedRun).where(FeedRun.feed_id == row.id))
        session.delete(row)


def list_feeds(db: StateDB) -> list[FeedView]:
    with db.session() as session:
        return [_view(r) for r in session.scalars(select(Feed).order_by(Feed.name))]


def get_feed(db: StateDB, name: str) -> FeedView:
    with db.session() as session:
        return _view(_row(session, name))


def feed_runs(db: StateDB, name: str, limit: int = 20) -> list[FeedRunView]:
    """The latest ``limit`` runs of a feed, newest first."""
    if not 1 <= limit <= MAX_RUNS:
        raise InputError(f"limit must be from 1 to {MAX_RUNS}")
    with db.session() as session:
        row = _row(session, name)
        runs = session.scalars(select(FeedRun).where(FeedRun.feed_id == row.id)
                               .order_by(FeedRun.id.desc()).limit(limit))
        return [_run_view(r, row.name) for r in runs]


# -- pulling -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Snapshot:
    id: int
    source: Source
    state: FeedState


def _snapshot(db: StateDB, name: str) -> _Snapshot:
    with db.session() as session:
        row = _row(session, name)
        config = _config(row, check_mapping=False)
        source = Source(row.name, FeedKind(row.kind), row.url, config,
                        credentials(row.secret, config.auth, config.auth_header))
        return _Snapshot(row.id, source, FeedState(row.cursor, row.etag, row.last_modified))


def _locked(session: Session, feed_id: int, name: str) -> Feed:
    """The feed row, write-locked (a no-op UPDATE takes SQLite's write lock and PostgreSQL's
    row lock before the state is read)."""
    session.execute(update(Feed).where(Feed.id == feed_id).values(cursor=Feed.cursor))
    row = session.get(Feed, feed_id, populate_existing=True)
    if row is None:
        raise NotFoundError(f"feed {name!r} was removed during the pull")
    return row


def _finish(at: datetime, now: datetime | None) -> datetime:
    return now if now is not None else max(at, utcnow())


def _store(db: StateDB, snap: _Snapshot, outcome: Outcome, settings: IntelSettings, *,
           actor: str, at: datetime, now: datetime | None) -> FeedRunView:
    with db.session() as session:
        row = _locked(session, snap.id, snap.source.name)
        if FeedState(row.cursor, row.etag, row.last_modified) != snap.state:
            raise ConflictError(f"feed {row.name!r} was pulled by someone else meanwhile; "
                                "nothing stored by this pull")
        parsed, added, updated = outcome.parsed, 0, 0
        problems, ids = list(parsed.problems), tuple[str, ...]()
        if parsed.indicators:
            result = ingest_session(session, parsed.indicators, actor=actor, now=at,
                                    allowlists=active_lists(session, settings),
                                    default_confidence=settings.default_confidence,
                                    source=row.name)
            added, updated, ids = result.added, result.updated, tuple(result.ids)
            problems.extend(result.problems)
        status = FeedRunStatus.UNCHANGED if outcome.unchanged else FeedRunStatus.OK
        run = FeedRun(feed_id=row.id, started_at=at, finished_at=_finish(at, now),
                      status=status.value, fetched=outcome.fetched, added=added, updated=updated,
                      problems=len(problems), error=None)
        session.add(run)
        row.cursor, row.etag, row.last_modified = (outcome.state.cursor, outcome.state.etag,
                                                   outcome.state.last_modified)
        row.last_pull_at = row.last_ok_at = at
        row.last_error = None
        session.flush()
        return _run_view(run, row.name, tuple(problems[:MAX_MESSAGES]), ids)


def _failed(db: StateDB, snap: _Snapshot, error: str, *, at: datetime, now: datetime | None,
            mark_feed: bool = True) -> FeedRunView:
    message = error[:ERROR_CHARS]
    with db.session() as session:
        row = session.get(Feed, snap.id)
        if row is None:
            raise NotFoundError(f"feed {snap.source.name!r} was removed during the pull")
        run = FeedRun(feed_id=row.id, started_at=at, finished_at=_finish(at, now),
                      status=FeedRunStatus.FAILED.value, fetched=0, added=0, updated=0,
                      problems=0, error=message)
        session.add(run)
        if mark_feed:
            row.last_pull_at, row.last_error = at, message
        session.flush()
        return _run_view(run, row.name)


def _error_text(exc: Exception) -> str:
    if isinstance(exc, VigilError):
        return str(exc)
    return f"internal error: {type(exc).__name__}: {exc}"


def pull(db: StateDB, name: str, client: httpx.Client, *, actor: str,
         settings: IntelSettings | None = None, now: datetime | None = None,
         full: bool = False) -> FeedRunView:
    """Pull feed ``name`` now through ``client``: everything new since its state (everything
    when ``full``), stored in one transaction with the new state. A failure is a run with
    status ``failed`` (returned, not raised); NotFoundError when there is no such feed."""
    settings = settings or IntelSettings()
    at = to_utc(now) if now is not None else utcnow()
    snap = _snapshot(db, name)
    try:
        outcome = fetch(snap.source, client, snap.state, full=full,
                        max_bytes=settings.max_download_mb * MIB)
        return _store(db, snap, outcome, settings, actor=actor, at=at, now=now)
    except NotFoundError:
        raise
    except Exception as exc:
        if not isinstance(exc, VigilError):
            log.exception("feed pull failed", extra={"feed": name})
        view = _failed(db, snap, _error_text(exc), at=at, now=now,
                       mark_feed=not isinstance(exc, ConflictError))
        log.warning("feed pull failed", extra={"feed": name, "error": view.error})
        return view


def _due(row: Feed, now: datetime) -> bool:
    if row.last_pull_at is None:
        return True
    return to_utc(row.last_pull_at) + timedelta(minutes=row.interval_minutes) <= now


def pull_due(db: StateDB, client: httpx.Client, now: datetime | None = None, *,
             settings: IntelSettings | None = None) -> list[FeedRunView]:
    """Pull, one after another, every enabled feed whose last pull is at least its interval
    ago (or that was never pulled); returns the runs."""
    at = to_utc(now) if now is not None else utcnow()
    with db.session() as session:
        rows = session.scalars(select(Feed).where(Feed.enabled.is_(True)).order_by(Feed.name))
        names = [r.name for r in rows if _due(r, at)]
    runs = []
    for name in names:
        try:
            runs.append(pull(db, name, client, actor=SYSTEM.actor, settings=settings, now=now))
        except NotFoundError:
            continue
    return runs
