"""Reading cases: the filtered, sorted, paged list; one case with everything attached; the
transition log (for the SOC metrics).

Every list filter is a single indexed column (stage, severity, priority, phase) or a probe of
the assignee index (user or team); sorting by severity or priority sorts by rank, not name.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from sqlalchemy import Select, case, func, or_, select
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from vigil.cases import links
from vigil.cases.base import get_case
from vigil.cases.clocks import clocks_of
from vigil.cases.comments import comments_of
from vigil.cases.enums import PRIORITY_RANK, SEVERITY_RANK, Phase, Priority, Severity, Stage
from vigil.cases.evidence import evidence_of
from vigil.cases.models import Case, CaseAssignee, CaseEvent
from vigil.cases.observables import observables_of
from vigil.cases.policy import DEFAULT_POLICY, Policy
from vigil.cases.review import review_of
from vigil.cases.schemas import CaseDetail, CaseEventOut, CaseSummary, Page, TimelineItem
from vigil.cases.tasks import tasks_of
from vigil.cases.timeline import timeline_of
from vigil.cases.views import case_view, event_view, summary_view
from vigil.core.db import StateDB
from vigil.core.errors import InputError
from vigil.core.timeutil import utcnow

MAX_LIMIT = 500


class CaseSort(StrEnum):
    ID = "id"
    CREATED_AT = "created_at"
    UPDATED_AT = "updated_at"
    SEVERITY = "severity"
    PRIORITY = "priority"
    STAGE = "stage"
    TITLE = "title"


@dataclass(frozen=True, slots=True)
class CaseFilter:
    """What to list (every field optional; tuples mean any of)."""

    stage: tuple[Stage, ...] = ()
    severity: tuple[Severity, ...] = ()
    priority: tuple[Priority, ...] = ()
    phase: tuple[Phase, ...] = ()
    assignee: str | None = None
    """A user name (or ``none`` for unassigned cases)."""
    team: str | None = None
    q: str | None = None
    """Text the title contains (any case)."""
    open_only: bool = False


def assignees_of(session: Session, case_ids: Sequence[int]) -> dict[int, list[CaseAssignee]]:
    """The assignees of each of these cases, by user name."""
    found: dict[int, list[CaseAssignee]] = defaultdict(list)
    if case_ids:
        for row in session.scalars(select(CaseAssignee).where(CaseAssignee.case_id.in_(list(case_ids)))
                                   .order_by(CaseAssignee.username)):
            found[row.case_id].append(row)
    return found


def _rank(column: ColumnElement[str], ranks: dict[Severity, int] | dict[Priority, int]) -> ColumnElement[int]:
    return case({key.value: rank for key, rank in ranks.items()}, value=column, else_=-1)


_ORDER: dict[CaseSort, ColumnElement[object]] = {
    CaseSort.ID: Case.id,  # type: ignore[dict-item]
    CaseSort.CREATED_AT: Case.created_at,  # type: ignore[dict-item]
    CaseSort.UPDATED_AT: Case.updated_at,  # type: ignore[dict-item]
    CaseSort.SEVERITY: _rank(Case.severity, SEVERITY_RANK),  # type: ignore[arg-type,dict-item]
    CaseSort.PRIORITY: _rank(Case.priority, PRIORITY_RANK),  # type: ignore[arg-type,dict-item]
    CaseSort.STAGE: Case.stage,  # type: ignore[dict-item]
    CaseSort.TITLE: Case.title,  # type: ignore[dict-item]
}


def parse_sort(text: str) -> tuple[CaseSort, bool]:
    """``updated_at`` (ascending) or ``-updated_at`` (descending); InputError when unknown."""
    name = text.strip()
    descending = name.startswith("-")
    try:
        return CaseSort(name.lstrip("-+")), descending
    except ValueError:
        names = ", ".join(s.value for s in CaseSort)
        raise InputError(f"cannot sort by {name!r} (use {names}, with - for descending)") from None


def _conditions(f: CaseFilter) -> list[ColumnElement[bool]]:
    where: list[ColumnElement[bool]] = []
    for column, values in ((Case.stage, f.stage), (Case.severity, f.severity),
                           (Case.priority, f.priority), (Case.phase, f.phase)):
        if values:
            where.append(column.in_([v.value for v in values]))
    if f.open_only:
        where.append(Case.stage != Stage.CLOSED.value)
    if f.assignee is not None:
        if f.assignee.lower() == "none":
            where.append(~select(CaseAssignee.case_id).where(CaseAssignee.case_id == Case.id).exists())
        else:
            where.append(select(CaseAssignee.case_id).where(
                CaseAssignee.case_id == Case.id,
                CaseAssignee.username == f.assignee.strip().lower()).exists())
    if f.team is not None:
        where.append(select(CaseAssignee.case_id).where(
            CaseAssignee.case_id == Case.id, CaseAssignee.team == f.team.strip().lower()).exists())
    if f.q:
        pattern = "%" + f.q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        where.append(or_(func.lower(Case.title).like(pattern.lower(), escape="\\")))
    return where


def list_cases(db: StateDB, filters: CaseFilter = CaseFilter(), *,
               sort: CaseSort = CaseSort.UPDATED_AT, descending: bool = True, limit: int = 50,
               offset: int = 0) -> Page[CaseSummary]:
    """One page of cases matching ``filters``, and how many match in all."""
    if not 1 <= limit <= MAX_LIMIT or offset < 0:
        raise InputError(f"limit must be 1..{MAX_LIMIT} and offset at least 0")
    if any("\x00" in (text or "") for text in (filters.assignee, filters.team, filters.q)):
        raise InputError("filters must not contain NUL characters")
    where = _conditions(filters)
    order = _ORDER[sort]
    query: Select[Case] = select(Case).where(*where).order_by(
        order.desc() if descending else order.asc(), Case.id.desc() if descending else Case.id.asc())
    with db.session() as session:
        total = session.scalar(select(func.count()).select_from(Case).where(*where)) or 0
        rows = session.scalars(query.limit(limit).offset(offset)).all()
        people = assignees_of(session, [row.id for row in rows])
        items = [summary_view(row, people.get(row.id, [])) for row in rows]
    return Page[CaseSummary](items=items, total=total, limit=limit, offset=offset)


def detail_of(session: Session, row: Case, policy: Policy, now: datetime) -> CaseDetail:
    """A case with everything attached, read in ``session``."""
    base = case_view(row, assignees_of(session, [row.id]).get(row.id, []))
    marks = links.marks_of(session, row.id)
    return CaseDetail(
        **base.model_dump(), alert_ids=[m.id for m in marks],
        tasks=tasks_of(session, row.id, now), comments=comments_of(session, row.id),
        observables=observables_of(session, row.id), evidence=evidence_of(session, row.id),
        clocks=clocks_of(session, row.id, now, policy), review=review_of(session, row.id),
        timeline=timeline_of(session, row.id, marks))


def get_case_detail(db: StateDB, case_id: int, *, policy: Policy = DEFAULT_POLICY,
                    now: datetime | None = None) -> CaseDetail:
    """One case with its tasks, comments, observables, evidence, clocks, review and timeline."""
    with db.session() as session:
        return detail_of(session, get_case(session, case_id), policy, now or utcnow())


def case_timeline(db: StateDB, case_id: int) -> list[TimelineItem]:
    """The merged timeline of one case, oldest first."""
    with db.session() as session:
        get_case(session, case_id)
        return timeline_of(session, case_id, links.marks_of(session, case_id))


def case_events(db: StateDB, case_id: int) -> list[CaseEventOut]:
    """The transition log of one case, oldest first."""
    with db.session() as session:
        get_case(session, case_id)
        rows = session.scalars(select(CaseEvent).where(CaseEvent.case_id == case_id)
                               .order_by(CaseEvent.id)).all()
        return [event_view(row) for row in rows]


def events_between(db: StateDB, since: datetime, until: datetime, *,
                   fields: Sequence[str] = ()) -> list[CaseEventOut]:
    """Case events of every case in ``[since, until)``, oldest first (for the SOC metrics:
    ``stage`` and ``phase`` transitions carry the times MTTA, MTTC and MTTR are made of)."""
    query = select(CaseEvent).where(CaseEvent.at >= since, CaseEvent.at < until)
    if fields:
        query = query.where(CaseEvent.field.in_(list(fields)))
    with db.session() as session:
        return [event_view(row) for row in session.scalars(query.order_by(CaseEvent.at, CaseEvent.id))]
