"""Rows to typed outputs: how each table of the cases context is shown to callers.

Times read back from SQLite come without a zone; every view returns them as UTC.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from enum import StrEnum
from typing import TypeVar

from vigil.cases.base import case_ref, loads_list, opt_utc
from vigil.cases.enums import (
    FINISHED_TASKS,
    ActionStatus,
    ClockKind,
    ClockOutcome,
    ClockState,
    CustodyAction,
    Disposition,
    FunctionalImpact,
    InformationImpact,
    LinkKind,
    ObservableType,
    Phase,
    Priority,
    Recoverability,
    ReviewStatus,
    Severity,
    Source,
    Stage,
    TaskStatus,
    Tlp,
)
from vigil.cases.models import (
    ActionItem,
    Case,
    CaseAssignee,
    CaseComment,
    CaseEvent,
    CaseObservable,
    Clock,
    CustodyEntry,
    Evidence,
    ObservableLink,
    Review,
    TimelineEntry,
)
from vigil.cases.models import CaseTask as TaskRow
from vigil.cases.policy import Policy
from vigil.cases.schemas import (
    ActionItemOut,
    AssigneeOut,
    CaseEventOut,
    CaseOut,
    CaseSummary,
    ClockOut,
    CommentOut,
    CustodyOut,
    EvidenceOut,
    LinkOut,
    ObservableOut,
    ReviewOut,
    TaskOut,
    TimelineEntryOut,
)
from vigil.core.timeutil import to_utc

E = TypeVar("E", bound=StrEnum)


def _opt(kind: type[E], value: str | None) -> E | None:
    return None if value is None else kind(value)


def assignee_view(row: CaseAssignee) -> AssigneeOut:
    return AssigneeOut(user_id=row.user_id, username=row.username, team=row.team,
                       assigned_at=to_utc(row.assigned_at))


def summary_view(case: Case, assignees: Sequence[CaseAssignee]) -> CaseSummary:
    return CaseSummary(id=case.id, ref=case_ref(case.id), title=case.title,
                       severity=Severity(case.severity), priority=Priority(case.priority),
                       stage=Stage(case.stage),
                       phase=Phase(case.phase), disposition=_opt(Disposition, case.disposition),
                       assignees=[assignee_view(a) for a in assignees],
                       created_at=to_utc(case.created_at), updated_at=to_utc(case.updated_at),
                       version=case.version)


def case_view(case: Case, assignees: Sequence[CaseAssignee]) -> CaseOut:
    summary = summary_view(case, assignees)
    return CaseOut(
        **summary.model_dump(), description=case.description, closing_note=case.closing_note,
        template=case.template, tlp=Tlp(case.tlp), tags=loads_list(case.tags),
        external_ref=case.external_ref, personal_data=case.personal_data,
        health_data=case.health_data, aware_at=opt_utc(case.aware_at),
        functional_impact=_opt(FunctionalImpact, case.functional_impact),
        information_impact=_opt(InformationImpact, case.information_impact),
        recoverability=_opt(Recoverability, case.recoverability), created_by=case.created_by,
        acknowledged_at=opt_utc(case.acknowledged_at), contained_at=opt_utc(case.contained_at),
        resolved_at=opt_utc(case.resolved_at), closed_at=opt_utc(case.closed_at))


def event_view(row: CaseEvent) -> CaseEventOut:
    return CaseEventOut(id=row.id, case_id=row.case_id, at=to_utc(row.at), actor=row.actor,
                        source=Source(row.source), field=row.field, old=row.old, new=row.new)


def task_view(row: TaskRow, now: datetime) -> TaskOut:
    due = opt_utc(row.due_at)
    overdue = (due is not None and due < now
               and TaskStatus(row.status) not in FINISHED_TASKS)
    return TaskOut(id=row.id, case_id=row.case_id, title=row.title, description=row.description,
                   status=TaskStatus(row.status), owner_id=row.owner_id, owner_name=row.owner_name,
                   team=row.team, due_at=due, overdue=overdue, mandatory=row.mandatory,
                   origin=row.origin, created_at=to_utc(row.created_at),
                   updated_at=to_utc(row.updated_at), completed_at=opt_utc(row.completed_at))


def comment_view(row: CaseComment, mentions: Sequence[str]) -> CommentOut:
    return CommentOut(id=row.id, case_id=row.case_id, parent_id=row.parent_id,
                      author=row.author, body=row.body, mentions=list(mentions),
                      created_at=to_utc(row.created_at))


def link_view(row: ObservableLink) -> LinkOut:
    return LinkOut(kind=LinkKind(row.kind), ref=row.ref, seen_at=opt_utc(row.seen_at),
                   linked_by=row.linked_by, linked_at=to_utc(row.linked_at))


def observable_view(row: CaseObservable, links: Sequence[ObservableLink]) -> ObservableOut:
    return ObservableOut(id=row.id, case_id=row.case_id, type=ObservableType(row.type), value=row.value,
                         description=row.description, tlp=Tlp(row.tlp), ioc=row.ioc,
                         sighted=row.sighted, tags=loads_list(row.tags),
                         links=[link_view(link) for link in links], created_by=row.created_by,
                         created_at=to_utc(row.created_at))


def custody_view(row: CustodyEntry, evidence_sha256: str) -> CustodyOut:
    matches = None if row.sha256 is None else row.sha256 == evidence_sha256
    return CustodyOut(id=row.id, at=to_utc(row.at), action=CustodyAction(row.action), holder=row.holder,
                      location=row.location, note=row.note, sha256=row.sha256,
                      hash_matches=matches, recorded_by=row.recorded_by,
                      recorded_at=to_utc(row.recorded_at))


def evidence_view(row: Evidence, custody: Sequence[CustodyEntry]) -> EvidenceOut:
    return EvidenceOut(id=row.id, case_id=row.case_id, name=row.name, kind=row.kind,
                       description=row.description, sha256=row.sha256, size=row.size,
                       acquired_at=to_utc(row.acquired_at), acquired_by=row.acquired_by,
                       holder=row.holder, location=row.location,
                       custody=[custody_view(c, row.sha256) for c in custody],
                       created_by=row.created_by, created_at=to_utc(row.created_at))


def clock_status(row: Clock, now: datetime, policy: Policy) -> str:
    """Where a clock stands at ``now`` (see :class:`ClockOut`)."""
    due = to_utc(row.due_at)
    if row.state == ClockState.STOPPED.value:
        if row.outcome == ClockOutcome.MET.value:
            stopped = opt_utc(row.stopped_at) or now
            return "met_late" if row.breached or stopped > due else "met"
        return row.outcome or "stopped"
    if row.state == ClockState.PAUSED.value:
        return "paused"
    if row.breached or now >= due:
        return "overdue"
    if now >= due - policy.lead(row.kind == ClockKind.REGULATORY.value):
        return "due_soon"
    return "on_track"


def clock_view(row: Clock, now: datetime, policy: Policy) -> ClockOut:
    return ClockOut(id=row.id, case_id=row.case_id, kind=ClockKind(row.kind), regime=row.regime,
                    name=row.name, trigger_at=to_utc(row.trigger_at), due_at=to_utc(row.due_at),
                    state=ClockState(row.state), status=clock_status(row, now, policy),
                    paused_at=opt_utc(row.paused_at), pause_reason=row.pause_reason,
                    paused_seconds=row.paused_seconds, stopped_at=opt_utc(row.stopped_at),
                    outcome=_opt(ClockOutcome, row.outcome), note=row.note, breached=row.breached,
                    breached_at=opt_utc(row.breached_at))


def timeline_entry_view(row: TimelineEntry) -> TimelineEntryOut:
    return TimelineEntryOut(id=row.id, case_id=row.case_id, occurred_at=to_utc(row.occurred_at),
                            title=row.title, description=row.description,
                            category=row.category, technique=row.technique, source=row.source,
                            flagged=row.flagged, created_by=row.created_by,
                            created_at=to_utc(row.created_at))


def action_view(row: ActionItem) -> ActionItemOut:
    return ActionItemOut(id=row.id, title=row.title, owner_id=row.owner_id,
                         owner_name=row.owner_name, due_at=opt_utc(row.due_at),
                         status=ActionStatus(row.status), link=row.link)


def review_view(row: Review, actions: Sequence[ActionItem]) -> ReviewOut:
    return ReviewOut(id=row.id, case_id=row.case_id, status=ReviewStatus(row.status),
                     summary=row.summary,
                     what_happened=row.what_happened, root_cause=row.root_cause,
                     went_well=row.went_well, went_badly=row.went_badly,
                     detection_gaps=row.detection_gaps, lessons=row.lessons,
                     first_compromise_at=opt_utc(row.first_compromise_at),
                     action_items=[action_view(a) for a in actions],
                     created_by=row.created_by, created_at=to_utc(row.created_at),
                     updated_at=to_utc(row.updated_at), completed_at=opt_utc(row.completed_at),
                     completed_by=row.completed_by)
