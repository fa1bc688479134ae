"""``GET /api/v1/events``: the event search behind the API (read scope)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel

from vigil.api.deps import Reader, VigilDep
from vigil.core.timeutil import when_option
from vigil.store.search import MAX_LIMIT, SearchRequest, count, search

router = APIRouter(prefix="/api/v1", tags=["events"])


class EventOut(BaseModel):
    id: str
    ts: datetime
    host: str | None
    source: str
    fields: dict[str, Any]
    raw: str | None = None


class EventPage(BaseModel):
    count: int
    events: list[EventOut]




@router.get("/events", response_model=EventPage)
def list_events(
    vigil: VigilDep,
    _caller: Reader,
    q: Annotated[str, Query(description="Query, e.g. EventID=4625; '*' for every event.")],
    since: Annotated[str | None, Query(description="ISO time, epoch or '24h'.")] = None,
    until: Annotated[str | None, Query(description="ISO time, epoch or '1h'.")] = None,
    source: Annotated[list[str] | None, Query(description="Log source filter.")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 100,
    raw: bool = False,
    count_only: Annotated[bool, Query(alias="count")] = False,
) -> EventPage:
    """Search stored events; ``count=true`` returns only the number of matches."""
    request = SearchRequest(query=q, since=when_option(since, "since"), until=when_option(until, "until"),
                            sources=tuple(source or ()), limit=limit, with_raw=raw)
    if count_only:
        return EventPage(count=count(vigil.store, request), events=[])
    hits = search(vigil.store, request)
    return EventPage(count=len(hits), events=[
        EventOut(id=h.id, ts=h.ts, host=h.host, source=h.source, fields=h.fields, raw=h.raw)
        for h in hits])
