"""``/api/v1/alerts``: list, read, acknowledge, close, reopen, assign and bulk-change alerts.

Reading needs ``alerts:read``, changing ``alerts:write``. Listings filter on indexed columns
and page by cursor (``next_cursor``) or offset; ``count=true`` adds the total. Every change is
audited under the caller's name; errors map to HTTP in ``vigil.api.errors`` (404 unknown id,
409 a move the alert's status does not allow, 400 bad input).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

import orjson
from fastapi import APIRouter, Path, Query, Response

from vigil.alerts import AlertFilter, AlertSort, Disposition, Severity, Source, Status, assignees, service
from vigil.alerts.schemas import (
    MAX_ID,
    AlertDetailOut,
    AlertOut,
    AlertPage,
    AssignIn,
    BulkIn,
    BulkOut,
    CloseIn,
    HistoryOut,
    RelatedOut,
    SeverityName,
    SkippedOut,
)
from vigil.api.deps import VigilDep, requires
from vigil.core.auth import Permission, Principal

router = APIRouter(prefix="/api/v1", tags=["alerts"])

AlertReader = Annotated[Principal, requires(Permission.ALERTS_READ)]
AlertWriter = Annotated[Principal, requires(Permission.ALERTS_WRITE)]
AlertId = Annotated[int, Path(ge=1, le=MAX_ID)]
QueryId = Annotated[int | None, Query(ge=1, le=MAX_ID)]
Text = Annotated[str | None, Query(max_length=255)]
Order = Literal["asc", "desc"]


def page_response(items: object, next_cursor: str | None, total: int | None) -> Response:
    """A page serialised straight from the service's views (they have exactly the fields of
    the declared response model): a listing of 1,000 alerts skips two rounds of validation."""
    body = {"items": items, "next_cursor": next_cursor, "total": total}
    return Response(orjson.dumps(body, option=orjson.OPT_UTC_Z), media_type="application/json")


def alert_filter(status: list[Status] | None, severity: list[SeverityName] | None,
                 min_severity: SeverityName | None, **fields: object) -> AlertFilter:
    """The service filter of the query parameters shared by the alert listings."""
    return AlertFilter(status=tuple(status or ()),
                       severity=tuple(Severity.parse(s) for s in severity or ()),
                       min_severity=Severity.parse(min_severity) if min_severity else None,
                       **fields)  # type: ignore[arg-type]


@router.get("/alerts", response_model=AlertPage)
def list_alerts(
    vigil: VigilDep, _who: AlertReader,
    status: Annotated[list[Status] | None, Query()] = None,
    severity: Annotated[list[SeverityName] | None, Query()] = None,
    min_severity: SeverityName | None = None,
    level: Annotated[list[SeverityName] | None, Query(description="The rule's Sigma level.")] = None,
    source: Annotated[list[Source] | None, Query()] = None,
    disposition: Annotated[list[Disposition] | None, Query()] = None,
    rule_id: Annotated[str | None, Query(max_length=128)] = None,
    host: Text = None, user: Text = None, src_ip: Annotated[str | None, Query(max_length=64)] = None,
    incident_id: QueryId = None, case_id: QueryId = None, assignee: QueryId = None,
    unassigned: bool = False,
    since: Annotated[datetime | None, Query(description="Last event at or after.")] = None,
    until: Annotated[datetime | None, Query(description="Last event before.")] = None,
    sort: AlertSort = AlertSort.LAST_SEEN, order: Order = "desc",
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    cursor: Annotated[str | None, Query(max_length=2000)] = None,
    offset: Annotated[int | None, Query(ge=0, le=1_000_000)] = None,
    count: Annotated[bool, Query(description="Also count every match (costs a scan).")] = False,
) -> Response:
    """Alerts, most recent last event first; each shows the rule's author (Detection Rule
    License)."""
    filters = alert_filter(status, severity, min_severity, level=tuple(level or ()),
                           source=tuple(source or ()), disposition=tuple(disposition or ()),
                           rule_id=rule_id, host=host, user=user, src_ip=src_ip,
                           incident_id=incident_id, case_id=case_id, assignee=assignee,
                           unassigned=unassigned, since=since, until=until)
    with vigil.db.session() as session:
        page = service.list_alerts(session, filters, sort=sort, descending=order == "desc",
                                   limit=limit, cursor=cursor, offset=offset, with_total=count)
    return page_response(page.items, page.next_cursor, page.total)


@router.get("/alerts/{alert_id}", response_model=AlertDetailOut)
def get_alert(vigil: VigilDep, _who: AlertReader, alert_id: AlertId) -> AlertDetailOut:
    """One alert with its rule author and references, event ids, history and related-alert
    suggestions (same host, user or source IP)."""
    settings = vigil.settings.alerts
    with vigil.db.session() as session:
        found = service.detail(session, alert_id, related_days=settings.related_days,
                               related_limit=settings.related_limit)
    return AlertDetailOut(**AlertOut.model_validate(found.alert).model_dump(),
                          history=[HistoryOut.model_validate(h) for h in found.history],
                          related=[RelatedOut.model_validate(r) for r in found.related])


@router.post("/alerts/{alert_id}/ack", response_model=AlertOut)
def acknowledge(vigil: VigilDep, who: AlertWriter, alert_id: AlertId) -> AlertOut:
    """``new`` → ``acknowledged`` (409 from any other status)."""
    with vigil.db.session() as session:
        return AlertOut.model_validate(service.acknowledge(session, alert_id, who))


@router.post("/alerts/{alert_id}/close", response_model=AlertOut)
def close(vigil: VigilDep, who: AlertWriter, alert_id: AlertId, body: CloseIn) -> AlertOut:
    """Close with a disposition (required) and an optional note (409 when already closed)."""
    with vigil.db.session() as session:
        return AlertOut.model_validate(service.close(session, alert_id, who, body.disposition,
                                                     body.note))


@router.post("/alerts/{alert_id}/reopen", response_model=AlertOut)
def reopen(vigil: VigilDep, who: AlertWriter, alert_id: AlertId) -> AlertOut:
    """``closed`` → ``acknowledged`` (409 unless closed)."""
    with vigil.db.session() as session:
        return AlertOut.model_validate(service.reopen(session, alert_id, who))


@router.post("/alerts/{alert_id}/assign", response_model=AlertOut)
def assign(vigil: VigilDep, who: AlertWriter, alert_id: AlertId, body: AssignIn) -> AlertOut:
    """Give the alert to a user (id or name; 400 when unknown or disabled), or to nobody."""
    user_id = assignees.resolve(vigil.db, body.assignee)
    with vigil.db.session() as session:
        return AlertOut.model_validate(service.assign(session, alert_id, user_id, who))


@router.post("/alerts/bulk", response_model=BulkOut)
def bulk(vigil: VigilDep, who: AlertWriter, body: BulkIn) -> BulkOut:
    """Acknowledge, close or reopen up to 1,000 alerts; the ones that are unknown or not in a
    state the action applies to are listed with the reason, the others are changed."""
    with vigil.db.session() as session:
        result = service.bulk(session, body.action, body.ids, who, body.disposition, body.note)
    return BulkOut(done=result.done,
                   skipped=[SkippedOut(id=i, reason=r) for i, r in result.skipped.items()])
