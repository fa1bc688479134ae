"""The facts the SOC metrics are computed from: alert timings (from the alerts context), case
milestones and the open work per person and team.

Alerts are read through the alerts service in pages of 10,000; cases and tasks are this
context's own tables (only the columns the metrics need).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import func, select

from vigil.alerts import service as alerts
from vigil.alerts.types import AlertTiming
from vigil.cases.enums import FINISHED_TASKS, OPEN_STAGES
from vigil.cases.models import Case, CaseAssignee, CaseTask
from vigil.core.db import StateDB
from vigil.core.timeutil import to_utc
from vigil.people import service as people

_PAGE = 10_000


@dataclass(frozen=True, slots=True)
class CaseFact:
    id: int
    severity: str
    stage: str
    disposition: str | None
    created_at: datetime
    acknowledged_at: datetime | None
    contained_at: datetime | None
    resolved_at: datetime | None
    closed_at: datetime | None


@dataclass(frozen=True, slots=True)
class PersonLoad:
    username: str
    team: str | None
    open_cases: int = 0
    open_tasks: int = 0
    open_alerts: int = 0


@dataclass(frozen=True, slots=True)
class TeamLoad:
    team: str
    open_cases: int = 0
    open_tasks: int = 0


@dataclass(frozen=True, slots=True)
class Workload:
    people: list[PersonLoad] = field(default_factory=list)
    teams: list[TeamLoad] = field(default_factory=list)
    unassigned_open_cases: int = 0
    unowned_open_tasks: int = 0


def alert_facts(db: StateDB, since: datetime, until: datetime) -> tuple[list[AlertTiming], int]:
    """The timings of the alerts created in the period, and how many incidents they form."""
    facts: list[AlertTiming] = []
    after = 0
    while True:
        with db.session() as session:
            page = alerts.timings(session, since, until, after_id=after, limit=_PAGE)
        facts.extend(page)
        if len(page) < _PAGE:
            break
        after = page[-1].id
    incidents = len({a.incident_id for a in facts if a.incident_id is not None})
    return facts, incidents


def _utc(moment: datetime | None) -> datetime | None:
    return to_utc(moment) if moment is not None else None


def case_facts(db: StateDB, since: datetime, until: datetime) -> list[CaseFact]:
    """The milestones of the cases created in the period."""
    query = (select(Case.id, Case.severity, Case.stage, Case.disposition, Case.created_at,
                    Case.acknowledged_at, Case.contained_at, Case.resolved_at, Case.closed_at)
             .where(Case.created_at >= to_utc(since), Case.created_at < to_utc(until))
             .order_by(Case.id))
    with db.session() as session:
        return [CaseFact(r.id, r.severity, r.stage, r.disposition, to_utc(r.created_at),
                         _utc(r.acknowledged_at), _utc(r.contained_at), _utc(r.resolved_at),
                         _utc(r.closed_at)) for r in session.execute(query)]


def _open_alerts_by_user(db: StateDB) -> dict[str, int]:
    with db.session() as session:
        counts = alerts.open_by_assignee(session)
    names = {user.id: user.username for user in people.list_users(db, limit=500).users}
    return {names[user_id]: count for user_id, count in counts.items() if user_id in names}


def workload(db: StateDB) -> Workload:
    """Open cases, tasks and alerts per person, and open cases and tasks per team."""
    open_stages = [s.value for s in OPEN_STAGES]
    finished = [s.value for s in FINISHED_TASKS]
    with db.session() as session:
        assigned = session.execute(
            select(CaseAssignee.username, CaseAssignee.team, func.count())
            .join(Case, Case.id == CaseAssignee.case_id).where(Case.stage.in_(open_stages))
            .group_by(CaseAssignee.username, CaseAssignee.team)).all()
        tasks = session.execute(
            select(CaseTask.owner_name, CaseTask.team, func.count())
            .join(Case, Case.id == CaseTask.case_id)
            .where(Case.stage.in_(open_stages), CaseTask.status.not_in(finished))
            .group_by(CaseTask.owner_name, CaseTask.team)).all()
        unassigned = session.scalar(
            select(func.count()).select_from(Case).where(
                Case.stage.in_(open_stages),
                ~select(CaseAssignee.case_id).where(CaseAssignee.case_id == Case.id).exists())) or 0
    person_cases: Counter[tuple[str, str | None]] = Counter()
    person_tasks: Counter[tuple[str, str | None]] = Counter()
    team_cases: Counter[str] = Counter()
    team_tasks: Counter[str] = Counter()
    unowned = 0
    for username, team, count in assigned:
        person_cases[(username, team)] += count
        team_cases[team or "(no team)"] += count
    for owner, team, count in tasks:
        team_tasks[team or "(no team)"] += count
        if owner:
            person_tasks[(owner, team)] += count
        else:
            unowned += count
    open_alerts = _open_alerts_by_user(db)
    teams_of = {name: team for name, team in (*person_cases, *person_tasks)}
    names = sorted({*teams_of, *open_alerts})
    loads = [PersonLoad(n, teams_of.get(n), person_cases[(n, teams_of.get(n))],
                        person_tasks[(n, teams_of.get(n))], open_alerts.get(n, 0)) for n in names]
    teams = [TeamLoad(t, team_cases[t], team_tasks[t]) for t in sorted({*team_cases, *team_tasks})]
    return Workload(loads, teams, int(unassigned), unowned)
