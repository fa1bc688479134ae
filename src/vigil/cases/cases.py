"""Cases: open, change, list and read them.

Opening a case (optionally from a template and from alerts) starts its SLA clocks and, when
it involves personal or health data, its regulatory obligations. Every change of a case field
is recorded as an immutable case event and an audit record in the same transaction; stage and
phase changes and new assignees are announced on the outbox.

Stage moves follow :data:`vigil.cases.enums.TRANSITIONS` (a conflict otherwise). Closing
needs a disposition and a closing note, a completed post-incident review when the disposition
is a true positive, every mandatory task finished and every regulatory clock stopped.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete
from sqlalchemy.orm import Session

from vigil.cases import clocks, directory, links, review, tasks, templates
from vigil.cases.base import (
    CASE,
    assignee_names,
    audit_change,
    case_ref,
    lock_case,
    record_event,
    source_of,
)
from vigil.cases.directory import Person
from vigil.cases.enums import (
    ACKNOWLEDGED_STAGES,
    CONTAINED_PHASES,
    TRANSITIONS,
    TRUE_POSITIVES,
    ClockKind,
    ClockOutcome,
    Disposition,
    Phase,
    Priority,
    Source,
    Stage,
)
from vigil.cases.models import Case, CaseAssignee
from vigil.cases.policy import DEFAULT_POLICY, Policy
from vigil.cases.queries import assignees_of, detail_of
from vigil.cases.schemas import CaseCreate, CaseDetail, CaseOut, CaseTemplate, CaseUpdate, TaskCreate
from vigil.cases.views import case_view
from vigil.core.auth import Principal
from vigil.core.db import StateDB
from vigil.core.errors import ConflictError, InputError, NotFoundError
from vigil.core.outbox import Topic, emit
from vigil.core.timeutil import to_utc, utcnow

_PRIORITY_OF = {"informational": Priority.LOW, "low": Priority.LOW, "medium": Priority.MEDIUM,
                "high": Priority.HIGH, "critical": Priority.CRITICAL}
_PLAIN_FIELDS = ("title", "description", "severity", "priority", "phase", "disposition",
                 "closing_note", "tlp", "external_ref", "personal_data", "health_data", "aware_at",
                 "functional_impact", "information_impact", "recoverability")
_ANNOUNCED = ("stage", "phase")
_CLOCK_SKEW = timedelta(minutes=5)
Changes = dict[str, tuple[Any, Any]]


@dataclass(slots=True)
class _Pending:
    """What a change does besides setting fields: events to write, people to tell."""

    changes: Changes = field(default_factory=dict)
    added: list[Person] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)


# -- opening -------------------------------------------------------------------------------


def _template(name: str | None, policy: Policy) -> CaseTemplate | None:
    if name is None:
        return None
    try:
        return templates.get_template(name, policy)
    except NotFoundError as exc:
        raise InputError(str(exc)) from None


def _merged(data: CaseCreate, template: CaseTemplate | None) -> tuple[CaseCreate, list[TaskCreate]]:
    """The create request with the template's values where the request left them out, and
    the template's tasks."""
    if template is None:
        return data, []
    given = data.model_fields_set
    values = data.model_dump()
    for name in ("description", "severity", "priority", "phase", "tlp", "personal_data",
                 "health_data"):
        if name not in given:
            values[name] = getattr(template, name)
    values["tags"] = list(dict.fromkeys([*template.tags, *data.tags]))
    values["template"] = template.name
    template_tasks = [TaskCreate(title=t.title, description=t.description, team=t.team,
                                 due_in=t.due_in, mandatory=t.mandatory) for t in template.tasks]
    return CaseCreate.model_validate(values), template_tasks


def create_case(db: StateDB, data: CaseCreate, actor: Principal, *, policy: Policy = DEFAULT_POLICY,
                source: Source | None = None, now: datetime | None = None) -> CaseDetail:
    """Open a case: from a template when named, with its assignees, tasks and alerts."""
    stamp = now or utcnow()
    _check_awareness(data.aware_at, stamp)
    template = _template(data.template, policy)
    merged, template_tasks = _merged(data, template)
    people = directory.resolve_all(db, merged.assignees)
    origin = f"template:{template.name}" if template else None
    prepared = ([tasks.prepare(db, t, stamp, origin) for t in template_tasks]
                + [tasks.prepare(db, t, stamp) for t in merged.tasks])
    with db.session() as session:
        case = _insert(session, merged, actor, stamp)
        src = source_of(actor, source)
        record_event(session, case, actor, src, "stage", None, case.stage, stamp)
        record_event(session, case, actor, src, "phase", None, case.phase, stamp)
        _assign(session, case, _Pending(added=people), actor, src, stamp)
        audit_change(session, actor, "create", CASE, case.id, None,
                     {**_audit_view(case), "assignees": [p.username for p in people]})
        for task in prepared:
            tasks.insert(session, case, task, actor, stamp)
        clocks.start_sla(session, case, policy, actor, stamp)
        clocks.start_obligations(session, case, actor, stamp)
        alert_ids = links.attach(session, case, merged.alert_ids, actor, merged.incident_id)
        emit(session, Topic.CASE_CREATED, subject=f"{case_ref(case.id)} opened: {case.title}",
             severity=case.severity, object_type=CASE, object_id=case.id,
             recipients=[p.username for p in people],
             details={"case_id": case.id, "case_ref": case_ref(case.id), "title": case.title,
                      "stage": case.stage, "phase": case.phase, "priority": case.priority,
                      "template": case.template, "alert_ids": alert_ids})
        _announce_assignees(session, case, people, actor)
        session.flush()
        return detail_of(session, case, policy, stamp)


def _check_awareness(aware_at: datetime | None, now: datetime) -> None:
    """The awareness time starts legal deadlines: it is a moment that has happened."""
    if aware_at is not None and aware_at > now + _CLOCK_SKEW:
        raise InputError("aware_at cannot be in the future")


def _insert(session: Session, data: CaseCreate, actor: Principal, now: datetime) -> Case:
    priority = data.priority or _PRIORITY_OF[data.severity.value]
    case = Case(title=data.title, description=data.description, severity=data.severity.value,
                priority=priority.value, stage=Stage.NEW.value, phase=data.phase.value,
                template=data.template, tlp=data.tlp.value, tags=json.dumps(data.tags),
                external_ref=data.external_ref, personal_data=data.personal_data,
                health_data=data.health_data, aware_at=data.aware_at,
                functional_impact=_value(data.functional_impact),
                information_impact=_value(data.information_impact),
                recoverability=_value(data.recoverability), created_by=actor.actor,
                created_at=now, updated_at=now, version=1)
    session.add(case)
    session.flush()
    return case


def _value(item: Any) -> Any:
    return getattr(item, "value", item)


def _audit_view(case: Case) -> dict[str, Any]:
    return {"title": case.title, "severity": case.severity, "priority": case.priority,
            "stage": case.stage, "phase": case.phase, "template": case.template,
            "personal_data": case.personal_data, "health_data": case.health_data,
            "aware_at": case.aware_at, "tlp": case.tlp}


def open_from_alerts(db: StateDB, alert_ids: Sequence[int], actor: Principal, *,
                     template: str | None = None, title: str | None = None,
                     assignees: Sequence[int | str] = (), policy: Policy = DEFAULT_POLICY,
                     source: Source | None = None, now: datetime | None = None) -> CaseDetail:
    """Escalate alerts into a new case (from a template when named): the case takes the
    highest severity among the alerts and, without a title, one made from the first alert."""
    if not alert_ids:
        raise InputError("give at least one alert to open a case from")
    with db.session() as session:
        marks = links.check_alerts(session, alert_ids)
    severity = links.highest_severity(marks)
    values: dict[str, Any] = {"title": title or links.title_for(marks), "alert_ids": list(alert_ids),
                              "assignees": list(assignees), "template": template}
    if severity is not None:
        values["severity"] = severity
    return create_case(db, CaseCreate.model_validate(values), actor, policy=policy, source=source,
                       now=now)


# -- changing ------------------------------------------------------------------------------


def update_case(db: StateDB, case_id: int, data: CaseUpdate, actor: Principal, *,
                policy: Policy = DEFAULT_POLICY, source: Source | None = None,
                now: datetime | None = None) -> CaseOut:
    """Change a case; see the module docstring for the rules of stage moves and closing."""
    stamp = now or utcnow()
    _check_awareness(data.aware_at, stamp)
    fields = data.model_fields_set - {"version"}
    add, remove, replace = _people_of(db, data)
    with db.session() as session:
        case = lock_case(session, case_id, data.version, stamp)
        _refuse_closed(case, data, fields)
        src = source_of(actor, source)
        pending = _Pending()
        _set_plain(case, data, fields, pending)
        if data.tags is not None and json.loads(case.tags) != data.tags:
            pending.changes["tags"] = (json.loads(case.tags), data.tags)
            case.tags = json.dumps(data.tags)
        current = assignees_of(session, [case.id]).get(case.id, [])
        if add or remove or replace is not None:
            _plan_assignees(session, case, current, add, remove, replace, pending)
        if data.stage is not None and data.stage.value != case.stage:
            _move_stage(session, case, data.stage, pending, actor, stamp)
        _follow_up(session, case, pending, actor, policy, stamp)
        _assign(session, case, pending, actor, src, stamp)
        for name, (old, new) in pending.changes.items():
            record_event(session, case, actor, src, name, old, new, stamp)
        _announce(session, case, pending, actor)
        if pending.added or pending.removed:
            session.flush()
            current = assignees_of(session, [case.id]).get(case.id, [])
        view = case_view(case, current)
        _audit_update(session, case, pending, actor)  # last: the audit chain lock is held briefly
        return view


def _audit_update(session: Session, case: Case, pending: _Pending, actor: Principal) -> None:
    before = {k: v[0] for k, v in pending.changes.items()}
    after = {k: v[1] for k, v in pending.changes.items()}
    if pending.added or pending.removed:
        before["assignees_removed"] = pending.removed
        after["assignees_added"] = [p.username for p in pending.added]
    if after:
        audit_change(session, actor, "update", CASE, case.id, before, after)


def close_case(db: StateDB, case_id: int, disposition: Disposition, closing_note: str,
               actor: Principal, *, policy: Policy = DEFAULT_POLICY, source: Source | None = None,
               now: datetime | None = None) -> CaseOut:
    """Close a case with its disposition and closing note (the closing gates apply)."""
    update = CaseUpdate(stage=Stage.CLOSED, disposition=disposition, closing_note=closing_note)
    return update_case(db, case_id, update, actor, policy=policy, source=source, now=now)


def _people_of(db: StateDB, data: CaseUpdate) -> tuple[list[Person], list[Person], list[Person] | None]:
    add = directory.resolve_all(db, data.add_assignees)
    remove = directory.resolve_all(db, data.remove_assignees)
    replace = directory.resolve_all(db, data.assignees) if data.assignees is not None else None
    return add, remove, replace


def _refuse_closed(case: Case, data: CaseUpdate, fields: set[str]) -> None:
    """A closed case only reopens (stage ``in_progress``); nothing else changes on it."""
    if case.stage != Stage.CLOSED.value:
        return
    if data.stage is Stage.IN_PROGRESS and not fields - {"stage"}:
        return
    raise ConflictError(f"{case_ref(case.id)} is closed; reopen it (stage in_progress) before "
                        "changing it")


def _set_plain(case: Case, data: CaseUpdate, fields: set[str], pending: _Pending) -> None:
    for name in _PLAIN_FIELDS:
        if name not in fields:
            continue
        value = _value(getattr(data, name))
        if value is None and name in ("title", "severity", "priority", "phase", "tlp",
                                      "personal_data", "health_data", "description"):
            if name == "description":
                value = ""
            else:
                raise InputError(f"{name} cannot be empty")
        old = getattr(case, name)
        if isinstance(old, datetime):
            old = to_utc(old)
        if old != value:
            pending.changes[name] = (old, value)
            setattr(case, name, value)


def _move_stage(session: Session, case: Case, target: Stage, pending: _Pending, actor: Principal,
                now: datetime) -> None:
    current = Stage(case.stage)
    if target not in TRANSITIONS[current]:
        allowed = ", ".join(sorted(s.value for s in TRANSITIONS[current]))
        raise ConflictError(f"{case_ref(case.id)} cannot move from {current.value} to "
                            f"{target.value} (allowed: {allowed})")
    if target is Stage.CLOSED:
        _closing_gates(session, case)
    pending.changes["stage"] = (current.value, target.value)
    case.stage = target.value
    if target in ACKNOWLEDGED_STAGES and case.acknowledged_at is None:
        case.acknowledged_at = now
    if target is Stage.RESOLVED:
        case.resolved_at = now
    if target is Stage.CLOSED:
        case.closed_at = now
        case.resolved_at = case.resolved_at or now
    if target is Stage.IN_PROGRESS and current in (Stage.RESOLVED, Stage.CLOSED):
        pending.changes["reopened"] = (current.value, target.value)
        case.resolved_at, case.closed_at = None, None


def _closing_gates(session: Session, case: Case) -> None:
    ref = case_ref(case.id)
    missing = [what for what, ok in (("a disposition", case.disposition),
                                     ("a closing note", (case.closing_note or "").strip())) if not ok]
    if missing:
        raise ConflictError(f"closing {ref} needs {' and '.join(missing)}")
    if _is_true_positive(case) and not review.is_completed(session, case.id):
        raise ConflictError(f"{ref} is a true positive: complete its post-incident review before "
                            "closing it")
    open_tasks = tasks.open_mandatory(session, case.id)
    if open_tasks:
        raise ConflictError(f"{ref} has mandatory tasks still open: {'; '.join(open_tasks)}")
    obligations = clocks.running_obligations(session, case.id)
    if obligations:
        raise ConflictError(f"{ref} has regulatory clocks still running (stop each as met or "
                            f"not_required first): {'; '.join(obligations)}")


def _follow_up(session: Session, case: Case, pending: _Pending, actor: Principal, policy: Policy,
               now: datetime) -> None:
    """What changed fields set in motion: milestones stop clocks, flags start obligations."""
    changes = pending.changes
    if "stage" in changes and Stage(case.stage) in ACKNOWLEDGED_STAGES:
        clocks.stop_kind(session, case, ClockKind.SLA_ACK, ClockOutcome.MET, actor, now,
                         f"stage {case.stage}")
    if "phase" in changes and Phase(case.phase) in CONTAINED_PHASES and case.contained_at is None:
        case.contained_at = now
        clocks.stop_kind(session, case, ClockKind.SLA_CONTAIN, ClockOutcome.MET, actor, now,
                         f"phase {case.phase}")
    if "stage" in changes and case.stage in (Stage.RESOLVED.value, Stage.CLOSED.value):
        contained = case.contained_at is not None or _is_true_positive(case)
        clocks.stop_kind(session, case, ClockKind.SLA_CONTAIN,
                         ClockOutcome.MET if contained else ClockOutcome.NOT_REQUIRED, actor, now,
                         f"stage {case.stage}")
    if case.stage == Stage.CLOSED.value and "stage" in changes:
        clocks.stop_kind(session, case, ClockKind.CUSTOM, ClockOutcome.CANCELED, actor, now,
                         "case closed")
    if "severity" in changes:
        clocks.retarget_sla(session, case, policy, actor, now)
    if "aware_at" in changes and case.aware_at is not None:
        clocks.retrigger_obligations(session, case, to_utc(case.aware_at), actor, now, policy)
    if changes.keys() & {"personal_data", "health_data"}:
        clocks.start_obligations(session, case, actor, now)


def _is_true_positive(case: Case) -> bool:
    return case.disposition is not None and Disposition(case.disposition) in TRUE_POSITIVES


# -- assignees -----------------------------------------------------------------------------


def _plan_assignees(session: Session, case: Case, assigned: Sequence[CaseAssignee],
                    add: list[Person], remove: list[Person], replace: list[Person] | None,
                    pending: _Pending) -> None:
    current = {a.user_id: a.username for a in assigned}
    wanted = dict(current) if replace is None else {p.id: p.username for p in replace}
    for person in add:
        wanted[person.id] = person.username
    for person in remove:
        wanted.pop(person.id, None)
    people = {p.id: p for p in [*add, *(replace or [])]}
    pending.added = [people[uid] for uid in wanted if uid not in current]
    pending.removed = [current[uid] for uid in current if uid not in wanted]
    if pending.removed:
        session.execute(delete(CaseAssignee).where(CaseAssignee.case_id == case.id,
                                                   CaseAssignee.username.in_(pending.removed)))


def _assign(session: Session, case: Case, pending: _Pending, actor: Principal, src: Source,
            now: datetime) -> None:
    for person in pending.added:
        session.add(CaseAssignee(case_id=case.id, user_id=person.id, username=person.username,
                                 team=person.team, assigned_at=now, assigned_by=actor.actor))
        record_event(session, case, actor, src, "assignee", None, person.username, now)
    for name in pending.removed:
        record_event(session, case, actor, src, "assignee", name, None, now)


def _announce_assignees(session: Session, case: Case, people: Sequence[Person],
                        actor: Principal) -> None:
    if not people:
        return
    names = [p.username for p in people]
    emit(session, Topic.CASE_ASSIGNED, subject=f"{case_ref(case.id)} assigned to you: {case.title}",
         severity=case.severity, object_type=CASE, object_id=case.id, recipients=names,
         details={"case_id": case.id, "case_ref": case_ref(case.id), "title": case.title,
                  "assignees": names, "assigned_by": actor.actor,
                  "teams": sorted({p.team for p in people if p.team})})


def _announce(session: Session, case: Case, pending: _Pending, actor: Principal) -> None:
    _announce_assignees(session, case, pending.added, actor)
    moved = {k: [v[0], v[1]] for k, v in pending.changes.items() if k in _ANNOUNCED}
    if not moved:
        return
    words = ", ".join(f"{k} {old} → {new}" for k, (old, new) in moved.items())
    details: dict[str, Any] = {"case_id": case.id, "case_ref": case_ref(case.id),
                               "title": case.title, "changes": moved, "actor": actor.actor}
    if "stage" in moved and case.stage == Stage.CLOSED.value:
        details["disposition"] = case.disposition
    emit(session, Topic.CASE_UPDATED, subject=f"{case_ref(case.id)} {case.title}: {words}",
         severity=case.severity, object_type=CASE, object_id=case.id,
         recipients=assignee_names(session, case.id), details=details)
