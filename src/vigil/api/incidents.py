"""``/api/v1/incidents``: alerts grouped by rule and entity; list, read, merge and split.

Reading needs ``alerts:read``, merging and splitting ``alerts:write`` (audited under the
caller's name). Escalating an incident to a case goes through ``/api/v1/cases``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query, Response

from vigil.alerts import AlertSort, EntityKind, IncidentFilter, IncidentStatus, Severity, service
from vigil.alerts.schemas import (
    MAX_ID,
    AlertOut,
    IncidentDetailOut,
    IncidentOut,
    IncidentPage,
    MergeIn,
    SeverityName,
    SplitIn,
)
from vigil.api.alerts import page_response
from vigil.api.deps import VigilDep, requires
from vigil.core.auth import Permission, Principal

router = APIRouter(prefix="/api/v1", tags=["incidents"])

Reader = Annotated[Principal, requires(Permission.ALERTS_READ)]
Writer = Annotated[Principal, requires(Permission.ALERTS_WRITE)]
IncidentId = Annotated[int, Path(ge=1, le=MAX_ID)]


@router.get("/incidents", response_model=IncidentPage)
def list_incidents(
    vigil: VigilDep, _who: Reader,
    status: Annotated[list[IncidentStatus] | None, Query()] = None,
    severity: Annotated[list[SeverityName] | None, Query()] = None,
    rule_id: Annotated[str | None, Query(max_length=128)] = None,
    entity_kind: EntityKind | None = None,
    entity_value: Annotated[str | None, Query(max_length=255)] = None,
    case_id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
    since: Annotated[datetime | None, Query(description="Last alert event at or after.")] = None,
    until: Annotated[datetime | None, Query(description="Last alert event before.")] = None,
    sort: AlertSort = AlertSort.LAST_SEEN, order: Literal["asc", "desc"] = "desc",
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    cursor: Annotated[str | None, Query(max_length=2000)] = None,
    offset: Annotated[int | None, Query(ge=0, le=1_000_000)] = None,
    count: bool = False,
) -> Response:
    """Incidents, most recent activity first."""
    filters = IncidentFilter(status=tuple(status or ()),
                             severity=tuple(Severity.parse(s) for s in severity or ()),
                             rule_id=rule_id, entity_kind=entity_kind, entity_value=entity_value,
                             case_id=case_id, since=since, until=until)
    with vigil.db.session() as session:
        page = service.list_incidents(session, filters, sort=sort, descending=order == "desc",
                                      limit=limit, cursor=cursor, offset=offset, with_total=count)
    return page_response(page.items, page.next_cursor, page.total)


@router.get("/incidents/{incident_id}", response_model=IncidentDetailOut)
def get_incident(vigil: VigilDep, _who: Reader, incident_id: IncidentId,
                 alert_limit: Annotated[int, Query(ge=0, le=1000)] = 100) -> IncidentDetailOut:
    """One incident with its newest alerts."""
    with vigil.db.session() as session:
        found = service.get_incident(session, incident_id, alert_limit=alert_limit)
    return IncidentDetailOut(**IncidentOut.model_validate(found.incident).model_dump(),
                             alerts=[AlertOut.model_validate(a) for a in found.alerts])


@router.post("/incidents/merge", response_model=IncidentOut)
def merge(vigil: VigilDep, who: Writer, body: MergeIn) -> IncidentOut:
    """Move every alert of ``sources`` into ``target``; the sources are closed as merged."""
    with vigil.db.session() as session:
        return IncidentOut.model_validate(service.merge(session, body.target, body.sources, who))


@router.post("/incidents/{incident_id}/split", response_model=IncidentOut, status_code=201)
def split(vigil: VigilDep, who: Writer, incident_id: IncidentId, body: SplitIn) -> IncidentOut:
    """Move some alerts of an incident into a new incident (returned)."""
    with vigil.db.session() as session:
        return IncidentOut.model_validate(service.split(session, incident_id, body.alert_ids, who,
                                                        body.title))
