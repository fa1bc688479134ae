"""``/api/v1/intel/feeds``: configured feeds, their runs, and pulls on demand.

Reading needs ``intel:read``; pulling a feed now ``intel:write``; adding, changing and
removing feeds ``intel:admin``. A feed's secret goes in (``secret``) and never comes out: a
feed shows ``has_secret``. A pull that fails is a run with status ``failed`` and its error
(the answer is still 200: the request worked, the feed did not), and stores nothing.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Path, Query, Response
from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from vigil import __version__
from vigil.api.deps import VigilDep
from vigil.api.intel import IntelAdmin, IntelReader, IntelWriter, check_text
from vigil.intel import feeds
from vigil.intel.feed_sources import FeedKind
from vigil.intel.feeds import KEEP, MAX_INTERVAL, MAX_RUNS, FeedRunStatus, FeedRunView, FeedView

router = APIRouter(prefix="/api/v1/intel", tags=["intel feeds"])

FeedName = Annotated[str, Path(min_length=1, max_length=100), AfterValidator(check_text)]
Secret = Annotated[str, Field(min_length=1, max_length=4096), AfterValidator(check_text)]
Url = Annotated[str, Field(min_length=1, max_length=4096), AfterValidator(check_text)]
Interval = Annotated[int, Field(ge=1, le=MAX_INTERVAL)]


class FeedIn(BaseModel):
    """A new feed: ``kind`` taxii, stix, misp, misp-event, csv or text; ``config`` its settings
    (``preset`` or ``mapping`` for csv, ``collection`` for a TAXII API root, ``auth``, ``tlp``,
    ``confidence``, ``timeout``, ``max_bytes``...)."""

    model_config = ConfigDict(extra="forbid")

    name: Annotated[str, Field(min_length=1, max_length=100)]
    kind: FeedKind
    url: Url
    config: dict[str, object] = {}
    secret: Secret | None = None
    interval_minutes: Interval = 60
    enabled: bool = True


class FeedPatch(BaseModel):
    """Fields to change; ``config`` keys merge into the settings (null removes one);
    ``"secret": null`` removes the secret, an absent ``secret`` keeps it."""

    model_config = ConfigDict(extra="forbid")

    url: Url | None = None
    config: dict[str, object] | None = None
    secret: Secret | None = None
    interval_minutes: Interval | None = None
    enabled: bool | None = None


class FeedOut(BaseModel):
    id: int
    name: str
    kind: FeedKind
    url: str
    config: dict[str, object]
    has_secret: bool
    interval_minutes: int
    enabled: bool
    cursor: str | None
    etag: str | None
    last_modified: str | None
    last_pull_at: datetime | None
    last_ok_at: datetime | None
    last_error: str | None
    next_pull_at: datetime | None
    created_at: datetime
    updated_at: datetime


class FeedRunOut(BaseModel):
    id: int
    feed: str
    started_at: datetime
    finished_at: datetime | None
    status: FeedRunStatus
    fetched: int
    added: int
    updated: int
    problems: int
    error: str | None
    messages: list[str]
    """The first problems of this pull (on the answer of a pull only)."""


def _feed(view: FeedView) -> FeedOut:
    return FeedOut(id=view.id, name=view.name, kind=view.kind, url=view.url, config=view.config.to_json(),
                   has_secret=view.has_secret, interval_minutes=view.interval_minutes,
                   enabled=view.enabled, cursor=view.cursor, etag=view.etag,
                   last_modified=view.last_modified, last_pull_at=view.last_pull_at,
                   last_ok_at=view.last_ok_at, last_error=view.last_error,
                   next_pull_at=view.next_pull_at, created_at=view.created_at,
                   updated_at=view.updated_at)


def _run(view: FeedRunView) -> FeedRunOut:
    return FeedRunOut(id=view.id, feed=view.feed, started_at=view.started_at,
                      finished_at=view.finished_at, status=view.status, fetched=view.fetched,
                      added=view.added, updated=view.updated, problems=view.problems,
                      error=view.error, messages=list(view.messages))


@router.get("/feeds", response_model=list[FeedOut])
def list_feeds(vigil: VigilDep, _who: IntelReader) -> list[FeedOut]:
    """The feeds, by name, with their state and last error."""
    return [_feed(v) for v in feeds.list_feeds(vigil.db)]


@router.post("/feeds", response_model=FeedOut, status_code=201)
def add_feed(vigil: VigilDep, who: IntelAdmin, body: FeedIn) -> FeedOut:
    """Configure a feed (409 when the name is taken); the server pulls it at its next check."""
    return _feed(feeds.add_feed(vigil.db, body.name, body.kind, body.url, config=body.config,
                                secret=body.secret, interval_minutes=body.interval_minutes,
                                enabled=body.enabled, actor=who.actor))


@router.get("/feeds/{name}", response_model=FeedOut)
def get_feed(vigil: VigilDep, _who: IntelReader, name: FeedName) -> FeedOut:
    return _feed(feeds.get_feed(vigil.db, name))


@router.patch("/feeds/{name}", response_model=FeedOut)
def update_feed(vigil: VigilDep, who: IntelAdmin, name: FeedName, body: FeedPatch) -> FeedOut:
    """Change a feed; a new URL, collection, types, preset or mapping makes the next pull read
    everything again."""
    secret = body.secret if "secret" in body.model_fields_set else KEEP
    return _feed(feeds.update_feed(vigil.db, name, url=body.url, config=body.config, secret=secret,
                                   interval_minutes=body.interval_minutes, enabled=body.enabled,
                                   actor=who.actor))


@router.delete("/feeds/{name}", status_code=204, response_class=Response)
def remove_feed(vigil: VigilDep, who: IntelAdmin, name: FeedName) -> Response:
    """Remove a feed and its runs; its indicators stay, with their sources."""
    feeds.remove_feed(vigil.db, name, actor=who.actor)
    return Response(status_code=204)


@router.get("/feeds/{name}/runs", response_model=list[FeedRunOut])
def feed_runs(vigil: VigilDep, _who: IntelReader, name: FeedName,
              limit: Annotated[int, Query(ge=1, le=MAX_RUNS)] = 20) -> list[FeedRunOut]:
    """The feed's pulls, newest first."""
    return [_run(v) for v in feeds.feed_runs(vigil.db, name, limit=limit)]


@router.post("/feeds/{name}/pull", response_model=FeedRunOut)
def pull_feed(vigil: VigilDep, who: IntelWriter, name: FeedName,
              full: Annotated[bool, Query(description="Read everything again.")] = False) -> FeedRunOut:
    """Pull the feed now and say how it went (``status`` failed with ``error`` when the feed
    failed: nothing is stored then)."""
    import httpx

    with httpx.Client(timeout=httpx.Timeout(60.0, connect=10.0), follow_redirects=True,
                      headers={"User-Agent": f"Vigil/{__version__}"}) as client:
        run = feeds.pull(vigil.db, name, client, actor=who.actor, settings=vigil.settings.intel,
                         full=full)
    return _run(run)
