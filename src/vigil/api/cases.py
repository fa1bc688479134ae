"""``/api/v1/cases``: cases and everything attached to them; ``/api/v1/case-templates``.

Reading needs ``cases:read``, every change ``cases:write``. Lists are paged with ``limit`` and
``offset`` and return the total; ``sort`` names a field, ``-`` in front for descending. A
stage move the case does not allow, or a closing gate not met, is a 409 with the reason; an
update carrying a ``version`` older than the case's is a 409 too.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel, Field

from vigil.api.deps import VigilDep, requires
from vigil.cases import (
    ActionItemCreate,
    ActionItemOut,
    ActionItemUpdate,
    AlertLink,
    CaseCreate,
    CaseDetail,
    CaseEventOut,
    CaseOut,
    CaseSummary,
    CaseTemplate,
    CaseUpdate,
    ClockCreate,
    ClockOut,
    ClockPause,
    ClockStart,
    ClockStop,
    CloseCase,
    CommentCreate,
    CommentOut,
    CustodyCreate,
    EvidenceCreate,
    EvidenceOut,
    LinkCreate,
    ObservableCreate,
    ObservableOut,
    Page,
    Phase,
    Policy,
    Priority,
    ReviewOut,
    ReviewUpdate,
    Severity,
    Stage,
    TaskCreate,
    TaskOut,
    TaskUpdate,
    TimelineCreate,
    TimelineEntryOut,
    TimelineItem,
)
from vigil.cases import service as cases
from vigil.cases.schemas import MAX_ID
from vigil.core.auth import Permission, Principal

router = APIRouter(prefix="/api/v1", tags=["cases"])

Reader = Annotated[Principal, requires(Permission.CASES_READ)]
Writer = Annotated[Principal, requires(Permission.CASES_WRITE)]
CaseId = Annotated[int, Path(ge=1, le=MAX_ID, description="The case number (CASE-<n>).")]
ItemId = Annotated[int, Path(ge=1, le=MAX_ID)]
Name = Annotated[str | None, Query(max_length=64)]


class AlertIds(BaseModel):
    """The alerts of a case after a change."""

    case_id: int
    alert_ids: list[int]


class LinksIn(BaseModel):
    links: list[LinkCreate] = Field(min_length=1, max_length=500)


def _policy(vigil: VigilDep) -> Policy:
    return Policy.from_settings(vigil.settings)


# -- cases ---------------------------------------------------------------------------------


@router.get("/cases", response_model=Page[CaseSummary])
def list_cases(vigil: VigilDep, _who: Reader,
               stage: Annotated[list[Stage] | None, Query()] = None,
               severity: Annotated[list[Severity] | None, Query()] = None,
               priority: Annotated[list[Priority] | None, Query()] = None,
               phase: Annotated[list[Phase] | None, Query()] = None,
               assignee: Annotated[str | None, Query(max_length=64,
                                                     description="User name, or 'none'.")] = None,
               team: Name = None,
               q: Annotated[str | None, Query(max_length=200, description="Title contains.")] = None,
               open_only: Annotated[bool, Query(alias="open")] = False,
               sort: Annotated[str, Query(max_length=32)] = "-updated_at",
               limit: Annotated[int, Query(ge=1, le=500)] = 50,
               offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0) -> Page[CaseSummary]:
    """Cases matching every filter given (repeat a filter for any of several values)."""
    order, descending = cases.parse_sort(sort)
    filters = cases.CaseFilter(stage=tuple(stage or ()), severity=tuple(severity or ()),
                               priority=tuple(priority or ()), phase=tuple(phase or ()),
                               assignee=assignee, team=team, q=q, open_only=open_only)
    return cases.list_cases(vigil.db, filters, sort=order, descending=descending, limit=limit,
                            offset=offset)


@router.post("/cases", response_model=CaseDetail, status_code=201)
def create_case(body: CaseCreate, vigil: VigilDep, who: Writer) -> CaseDetail:
    """Open a case, optionally from a template (``template``) and from alerts (``alert_ids``,
    ``incident_id``), with assignees and first tasks."""
    return cases.create_case(vigil.db, body, who, policy=_policy(vigil))


@router.get("/cases/{case_id}", response_model=CaseDetail)
def get_case(case_id: CaseId, vigil: VigilDep, _who: Reader) -> CaseDetail:
    """A case with its tasks, comments, observables, evidence, clocks, review and timeline."""
    return cases.get_case_detail(vigil.db, case_id, policy=_policy(vigil))


@router.patch("/cases/{case_id}", response_model=CaseOut)
def update_case(case_id: CaseId, body: CaseUpdate, vigil: VigilDep, who: Writer) -> CaseOut:
    """Change a case (stage, phase, severity, priority, assignees, flags ...)."""
    return cases.update_case(vigil.db, case_id, body, who, policy=_policy(vigil))


@router.post("/cases/{case_id}/close", response_model=CaseOut)
def close_case(case_id: CaseId, body: CloseCase, vigil: VigilDep, who: Writer) -> CaseOut:
    """Close a case with its disposition and closing note."""
    return cases.close_case(vigil.db, case_id, body.disposition, body.closing_note, who,
                            policy=_policy(vigil))


@router.get("/cases/{case_id}/events", response_model=list[CaseEventOut])
def case_events(case_id: CaseId, vigil: VigilDep, _who: Reader) -> list[CaseEventOut]:
    """The transition log of a case (every field change: who, when, old → new, source)."""
    return cases.case_events(vigil.db, case_id)


@router.post("/cases/{case_id}/alerts", response_model=AlertIds)
def link_alerts(case_id: CaseId, body: AlertLink, vigil: VigilDep, who: Writer) -> AlertIds:
    """Escalate alerts (or every alert of an incident) into the case."""
    ids = cases.link_alerts(vigil.db, case_id, body.alert_ids, who, incident_id=body.incident_id)
    return AlertIds(case_id=case_id, alert_ids=ids)


@router.delete("/cases/{case_id}/alerts/{alert_id}", response_model=AlertIds)
def unlink_alert(case_id: CaseId, alert_id: ItemId, vigil: VigilDep, who: Writer) -> AlertIds:
    """Take an alert out of the case."""
    return AlertIds(case_id=case_id, alert_ids=cases.unlink_alert(vigil.db, case_id, alert_id, who))


@router.get("/case-templates", response_model=list[CaseTemplate])
def list_templates(vigil: VigilDep, _who: Reader) -> list[CaseTemplate]:
    """The case templates: built-in ones and those of the instance's templates folder."""
    return list(cases.list_templates(_policy(vigil)).values())


# -- tasks, comments, timeline -------------------------------------------------------------


@router.get("/cases/{case_id}/tasks", response_model=list[TaskOut])
def list_tasks(case_id: CaseId, vigil: VigilDep, _who: Reader) -> list[TaskOut]:
    return cases.list_tasks(vigil.db, case_id)


@router.post("/cases/{case_id}/tasks", response_model=TaskOut, status_code=201)
def add_task(case_id: CaseId, body: TaskCreate, vigil: VigilDep, who: Writer) -> TaskOut:
    """Add a task; its owner (a user, or a team to pick it up) is told."""
    return cases.add_task(vigil.db, case_id, body, who)


@router.patch("/cases/{case_id}/tasks/{task_id}", response_model=TaskOut)
def update_task(case_id: CaseId, task_id: ItemId, body: TaskUpdate, vigil: VigilDep,
                who: Writer) -> TaskOut:
    return cases.update_task(vigil.db, case_id, task_id, body, who)


@router.get("/cases/{case_id}/comments", response_model=list[CommentOut])
def list_comments(case_id: CaseId, vigil: VigilDep, _who: Reader) -> list[CommentOut]:
    return cases.list_comments(vigil.db, case_id)


@router.post("/cases/{case_id}/comments", response_model=CommentOut, status_code=201)
def add_comment(case_id: CaseId, body: CommentCreate, vigil: VigilDep, who: Writer) -> CommentOut:
    """Comment on a case; people named with ``@username`` are told."""
    return cases.add_comment(vigil.db, case_id, body, who)


@router.get("/cases/{case_id}/timeline", response_model=list[TimelineItem])
def timeline(case_id: CaseId, vigil: VigilDep, _who: Reader) -> list[TimelineItem]:
    """Changes, alerts, events, tasks, evidence, clocks and manual entries, in time order."""
    return cases.case_timeline(vigil.db, case_id)


@router.post("/cases/{case_id}/timeline", response_model=TimelineEntryOut, status_code=201)
def add_timeline_entry(case_id: CaseId, body: TimelineCreate, vigil: VigilDep,
                       who: Writer) -> TimelineEntryOut:
    return cases.add_entry(vigil.db, case_id, body, who)


# -- observables and evidence --------------------------------------------------------------


@router.get("/cases/{case_id}/observables", response_model=list[ObservableOut])
def list_observables(case_id: CaseId, vigil: VigilDep, _who: Reader) -> list[ObservableOut]:
    return cases.list_observables(vigil.db, case_id)


@router.post("/cases/{case_id}/observables", response_model=ObservableOut, status_code=201)
def add_observable(case_id: CaseId, body: ObservableCreate, vigil: VigilDep,
                   who: Writer) -> ObservableOut:
    """Record an observable (the same one again merges its links)."""
    return cases.add_observable(vigil.db, case_id, body, who)


@router.post("/cases/{case_id}/observables/{observable_id}/links", response_model=ObservableOut)
def link_observable(case_id: CaseId, observable_id: ItemId, body: LinksIn, vigil: VigilDep,
                    who: Writer) -> ObservableOut:
    """Record alerts and events an observable was seen in."""
    return cases.link_observable(vigil.db, case_id, observable_id, body.links, who)


@router.get("/cases/{case_id}/evidence", response_model=list[EvidenceOut])
def list_evidence(case_id: CaseId, vigil: VigilDep, _who: Reader) -> list[EvidenceOut]:
    return cases.list_evidence(vigil.db, case_id)


@router.post("/cases/{case_id}/evidence", response_model=EvidenceOut, status_code=201)
def add_evidence(case_id: CaseId, body: EvidenceCreate, vigil: VigilDep, who: Writer) -> EvidenceOut:
    """Register evidence by its SHA-256; its chain of custody starts with the acquisition."""
    return cases.add_evidence(vigil.db, case_id, body, who)


@router.get("/cases/{case_id}/evidence/{evidence_id}", response_model=EvidenceOut)
def get_evidence(case_id: CaseId, evidence_id: ItemId, vigil: VigilDep, _who: Reader) -> EvidenceOut:
    return cases.get_evidence(vigil.db, case_id, evidence_id)


@router.post("/cases/{case_id}/evidence/{evidence_id}/custody", response_model=EvidenceOut,
             status_code=201)
def add_custody(case_id: CaseId, evidence_id: ItemId, body: CustodyCreate, vigil: VigilDep,
                who: Writer) -> EvidenceOut:
    """Append to the chain of custody (entries are never changed or removed)."""
    return cases.add_custody(vigil.db, case_id, evidence_id, body, who)


# -- clocks and review ---------------------------------------------------------------------


@router.get("/cases/{case_id}/clocks", response_model=list[ClockOut])
def list_clocks(case_id: CaseId, vigil: VigilDep, _who: Reader) -> list[ClockOut]:
    """SLA and regulatory clocks, with where each stands (on track, due soon, overdue ...)."""
    return cases.list_clocks(vigil.db, case_id, policy=_policy(vigil))


@router.post("/cases/{case_id}/clocks", response_model=ClockOut, status_code=201)
def add_clock(case_id: CaseId, body: ClockCreate, vigil: VigilDep, who: Writer) -> ClockOut:
    """Add a regulatory obligation (``regime``) or a custom deadline."""
    return cases.add_clock(vigil.db, case_id, body, who, policy=_policy(vigil))


@router.post("/cases/{case_id}/clocks/{clock_id}/start", response_model=ClockOut)
def start_clock(case_id: CaseId, clock_id: ItemId, body: ClockStart, vigil: VigilDep,
                who: Writer) -> ClockOut:
    """Set the time the clock runs from (awareness, discovery ...); the reason is audited."""
    return cases.start_clock(vigil.db, case_id, clock_id, body, who, policy=_policy(vigil))


@router.post("/cases/{case_id}/clocks/{clock_id}/pause", response_model=ClockOut)
def pause_clock(case_id: CaseId, clock_id: ItemId, body: ClockPause, vigil: VigilDep,
                who: Writer) -> ClockOut:
    return cases.pause_clock(vigil.db, case_id, clock_id, body, who, policy=_policy(vigil))


@router.post("/cases/{case_id}/clocks/{clock_id}/resume", response_model=ClockOut)
def resume_clock(case_id: CaseId, clock_id: ItemId, vigil: VigilDep, who: Writer) -> ClockOut:
    return cases.resume_clock(vigil.db, case_id, clock_id, who, policy=_policy(vigil))


@router.post("/cases/{case_id}/clocks/{clock_id}/stop", response_model=ClockOut)
def stop_clock(case_id: CaseId, clock_id: ItemId, body: ClockStop, vigil: VigilDep,
               who: Writer) -> ClockOut:
    """Stop a clock as met, not required (with a note) or canceled."""
    return cases.stop_clock(vigil.db, case_id, clock_id, body, who, policy=_policy(vigil))


@router.get("/cases/{case_id}/review", response_model=ReviewOut | None)
def get_review(case_id: CaseId, vigil: VigilDep, _who: Reader) -> ReviewOut | None:
    """The post-incident review (null until someone starts it)."""
    return cases.get_review(vigil.db, case_id)


@router.put("/cases/{case_id}/review", response_model=ReviewOut)
def update_review(case_id: CaseId, body: ReviewUpdate, vigil: VigilDep, who: Writer) -> ReviewOut:
    """Write parts of the review (a completed review edited becomes a draft again)."""
    return cases.update_review(vigil.db, case_id, body, who)


@router.post("/cases/{case_id}/review/complete", response_model=ReviewOut)
def complete_review(case_id: CaseId, vigil: VigilDep, who: Writer) -> ReviewOut:
    return cases.complete_review(vigil.db, case_id, who)


@router.post("/cases/{case_id}/review/actions", response_model=ActionItemOut, status_code=201)
def add_action(case_id: CaseId, body: ActionItemCreate, vigil: VigilDep,
               who: Writer) -> ActionItemOut:
    return cases.add_action(vigil.db, case_id, body, who)


@router.patch("/cases/{case_id}/review/actions/{action_id}", response_model=ActionItemOut)
def update_action(case_id: CaseId, action_id: ItemId, body: ActionItemUpdate, vigil: VigilDep,
                  who: Writer) -> ActionItemOut:
    return cases.update_action(vigil.db, case_id, action_id, body, who)
