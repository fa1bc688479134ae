"""Case tasks: a piece of work with an owner (a person, or a team until someone takes it),
a due date and a status. Assigning a task to someone tells them (``task.assigned``)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from vigil.cases import directory
from vigil.cases.base import audit_change, case_ref, get_case, lock_open_case, opt_utc
from vigil.cases.directory import Person
from vigil.cases.enums import FINISHED_TASKS, TaskStatus
from vigil.cases.models import Case, CaseTask
from vigil.cases.schemas import TaskCreate, TaskOut, TaskUpdate
from vigil.cases.views import task_view
from vigil.core.auth import Principal
from vigil.core.db import StateDB
from vigil.core.errors import NotFoundError
from vigil.core.outbox import Topic, emit
from vigil.core.timeutil import parse_duration, utcnow

OBJECT = "case_task"


@dataclass(frozen=True, slots=True)
class PreparedTask:
    """A task with its owner looked up and its due date fixed, ready to insert."""

    data: TaskCreate
    owner: Person | None
    due_at: datetime | None
    origin: str | None = None


def prepare(db: StateDB, data: TaskCreate, now: datetime, origin: str | None = None) -> PreparedTask:
    """Look up the owner and work out the due date (``due_in`` counts from ``now``)."""
    owner = directory.resolve(db, data.owner) if data.owner is not None else None
    due = data.due_at
    if due is None and data.due_in is not None:
        due = now + parse_duration(data.due_in)
    return PreparedTask(data, owner, due, origin)


def insert(session: Session, case: Case, task: PreparedTask, actor: Principal,
           now: datetime) -> CaseTask:
    """Add a prepared task to a (locked) case; audit it and tell its owner."""
    data = task.data
    row = CaseTask(case_id=case.id, title=data.title, description=data.description,
                   status=TaskStatus.TODO.value, owner_id=task.owner.id if task.owner else None,
                   owner_name=task.owner.username if task.owner else None,
                   team=data.team or (task.owner.team if task.owner else None),
                   due_at=task.due_at, mandatory=data.mandatory, origin=task.origin,
                   created_by=actor.actor, created_at=now, updated_at=now)
    session.add(row)
    session.flush()
    audit_change(session, actor, "create", OBJECT, row.id, None, _audit(row))
    if task.owner is not None:
        _announce(session, case, row)
    return row


def _audit(row: CaseTask) -> dict[str, object]:
    return {"case_id": row.case_id, "title": row.title, "status": row.status,
            "owner": row.owner_name, "team": row.team, "due_at": opt_utc(row.due_at),
            "mandatory": row.mandatory}


def _announce(session: Session, case: Case, row: CaseTask) -> None:
    assert row.owner_name is not None
    emit(session, Topic.TASK_ASSIGNED,
         subject=f"{case_ref(case.id)} task assigned to {row.owner_name}: {row.title}",
         severity=case.severity, object_type=OBJECT, object_id=row.id,
         recipients=[row.owner_name],
         details={"case_id": case.id, "case_ref": case_ref(case.id), "task_id": row.id,
                  "title": row.title, "due_at": opt_utc(row.due_at), "team": row.team})


def add_task(db: StateDB, case_id: int, data: TaskCreate, actor: Principal, *,
             origin: str | None = None, now: datetime | None = None) -> TaskOut:
    """Add a task to an open case."""
    stamp = now or utcnow()
    prepared = prepare(db, data, stamp, origin)
    with db.session() as session:
        case = lock_open_case(session, case_id, stamp)
        row = insert(session, case, prepared, actor, stamp)
        return task_view(row, stamp)


def _task(session: Session, case_id: int, task_id: int) -> CaseTask:
    row = session.get(CaseTask, task_id)
    if row is None or row.case_id != case_id:
        raise NotFoundError(f"no task {task_id} in {case_ref(case_id)}")
    return row


def update_task(db: StateDB, case_id: int, task_id: int, data: TaskUpdate, actor: Principal, *,
                now: datetime | None = None) -> TaskOut:
    """Change a task's fields; a new owner is told, ``done``/``canceled`` stamp completion."""
    stamp = now or utcnow()
    fields = data.model_fields_set
    owner = directory.resolve(db, data.owner) if "owner" in fields and data.owner is not None else None
    with db.session() as session:
        case = lock_open_case(session, case_id, stamp)
        row = _task(session, case_id, task_id)
        before = _audit(row)
        for name in ("title", "description", "team", "due_at", "mandatory"):
            if name in fields and (name != "title" or data.title is not None):
                setattr(row, name, getattr(data, name))
        if "description" in fields and data.description is None:
            row.description = ""
        if "mandatory" in fields and data.mandatory is None:
            row.mandatory = False
        if data.status is not None and data.status.value != row.status:
            row.status = data.status.value
            row.completed_at = stamp if data.status in FINISHED_TASKS else None
        reassigned = "owner" in fields and (owner.id if owner else None) != row.owner_id
        if reassigned:
            row.owner_id, row.owner_name = (owner.id, owner.username) if owner else (None, None)
            if owner is not None and "team" not in fields:
                row.team = owner.team
        row.updated_at = stamp
        after = _audit(row)
        changed = {k: v for k, v in after.items() if before[k] != v}
        if changed:
            audit_change(session, actor, "update", OBJECT, row.id,
                         {k: before[k] for k in changed}, changed)
        if reassigned and owner is not None:
            _announce(session, case, row)
        return task_view(row, stamp)


def list_tasks(db: StateDB, case_id: int, *, now: datetime | None = None) -> list[TaskOut]:
    """The tasks of a case, oldest first."""
    with db.session() as session:
        get_case(session, case_id)
        return tasks_of(session, case_id, now or utcnow())


def tasks_of(session: Session, case_id: int, now: datetime) -> list[TaskOut]:
    """The tasks of a case, read in ``session``."""
    rows = session.scalars(select(CaseTask).where(CaseTask.case_id == case_id)
                           .order_by(CaseTask.id)).all()
    return [task_view(row, now) for row in rows]


def open_mandatory(session: Session, case_id: int) -> list[str]:
    """Titles of the mandatory tasks not yet done or canceled (they block closing)."""
    rows = session.scalars(select(CaseTask).where(CaseTask.case_id == case_id,
                                                  CaseTask.mandatory.is_(True))).all()
    return [row.title for row in rows if TaskStatus(row.status) not in FINISHED_TASKS]
