"""The case timeline: manual entries analysts write, merged at read time with what Vigil
already knows, in time order: the changes of the case (its transition log), the linked
alerts (at their first event), events linked to observables (when their time is known), task
creation and completion, evidence acquisitions and clock breaches.

Only manual entries are stored here; everything else is read from where it lives, so the
timeline never disagrees with the record.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from vigil.cases.base import audit_change, get_case, lock_open_case, opt_utc
from vigil.cases.links import AlertMark
from vigil.cases.models import CaseEvent, CaseTask, Clock, Evidence, TimelineEntry
from vigil.cases.observables import event_links
from vigil.cases.schemas import TimelineCreate, TimelineEntryOut, TimelineItem
from vigil.cases.views import timeline_entry_view
from vigil.core.auth import Principal
from vigil.core.db import StateDB
from vigil.core.timeutil import to_utc, utcnow

OBJECT = "case_timeline"


def add_entry(db: StateDB, case_id: int, data: TimelineCreate, actor: Principal, *,
              now: datetime | None = None) -> TimelineEntryOut:
    """Add a manual timeline entry to an open case."""
    stamp = now or utcnow()
    with db.session() as session:
        lock_open_case(session, case_id, stamp)
        row = TimelineEntry(case_id=case_id, occurred_at=data.occurred_at, title=data.title,
                            description=data.description, category=data.category,
                            technique=data.technique, source=data.source, flagged=data.flagged,
                            created_by=actor.actor, created_at=stamp)
        session.add(row)
        session.flush()
        audit_change(session, actor, "create", OBJECT, row.id, None,
                     {"case_id": case_id, "occurred_at": data.occurred_at, "title": data.title,
                      "technique": data.technique})
        return timeline_entry_view(row)


def list_entries(db: StateDB, case_id: int) -> list[TimelineEntryOut]:
    """The manual entries of a case, in time order."""
    with db.session() as session:
        get_case(session, case_id)
        rows = session.scalars(select(TimelineEntry).where(TimelineEntry.case_id == case_id)
                               .order_by(TimelineEntry.occurred_at, TimelineEntry.id)).all()
        return [timeline_entry_view(row) for row in rows]


def _changes(session: Session, case_id: int) -> list[TimelineItem]:
    rows = session.scalars(select(CaseEvent).where(CaseEvent.case_id == case_id)
                           .order_by(CaseEvent.id)).all()
    items = []
    for row in rows:
        if row.old is None and row.field == "stage":
            title = "case opened"
        elif row.field == "assignee":
            title = f"assigned {row.new}" if row.new else f"unassigned {row.old}"
        else:
            title = f"{row.field}: {row.old or '-'} → {row.new or '-'}"
        items.append(TimelineItem(at=to_utc(row.at), kind="change", title=title, actor=row.actor,
                                  ref=f"event:{row.id}"))
    return items


def _manual(session: Session, case_id: int) -> list[TimelineItem]:
    rows = session.scalars(select(TimelineEntry).where(TimelineEntry.case_id == case_id)).all()
    return [TimelineItem(at=to_utc(r.occurred_at), kind="manual", title=r.title,
                         detail=r.description, actor=r.created_by, ref=f"timeline:{r.id}")
            for r in rows]


def _work(session: Session, case_id: int) -> list[TimelineItem]:
    items: list[TimelineItem] = []
    for task in session.scalars(select(CaseTask).where(CaseTask.case_id == case_id)):
        owner = task.owner_name or task.team or "unassigned"
        items.append(TimelineItem(at=to_utc(task.created_at), kind="task",
                                  title=f"task added: {task.title} ({owner})",
                                  actor=task.created_by, ref=f"task:{task.id}"))
        if task.completed_at is not None:
            items.append(TimelineItem(at=to_utc(task.completed_at), kind="task",
                                      title=f"task {task.status}: {task.title}",
                                      ref=f"task:{task.id}"))
    for item in session.scalars(select(Evidence).where(Evidence.case_id == case_id)):
        items.append(TimelineItem(at=to_utc(item.acquired_at), kind="evidence",
                                  title=f"evidence acquired: {item.name}",
                                  detail=f"sha256 {item.sha256}", actor=item.acquired_by,
                                  ref=f"evidence:{item.id}"))
    for clock in session.scalars(select(Clock).where(Clock.case_id == case_id)):
        breached = opt_utc(clock.breached_at)
        if breached is not None:
            items.append(TimelineItem(at=breached, kind="clock", title=f"{clock.name} breached",
                                      ref=f"clock:{clock.id}"))
        stopped = opt_utc(clock.stopped_at)
        if stopped is not None:
            items.append(TimelineItem(at=stopped, kind="clock",
                                      title=f"{clock.name} stopped ({clock.outcome})",
                                      detail=clock.note or "", ref=f"clock:{clock.id}"))
    return items


def _events(session: Session, case_id: int) -> list[TimelineItem]:
    items = []
    for observable, link in event_links(session, case_id):
        seen = opt_utc(link.seen_at)
        if link.kind != "event" or seen is None:
            continue
        items.append(TimelineItem(at=seen, kind="event",
                                  title=f"event {link.ref}: {observable.type} {observable.value}",
                                  ref=f"event:{link.ref}"))
    return items


def timeline_of(session: Session, case_id: int, alerts: Sequence[AlertMark] = ()) -> list[TimelineItem]:
    """The merged timeline of a case, oldest first."""
    items = [*_changes(session, case_id), *_manual(session, case_id), *_work(session, case_id),
             *_events(session, case_id)]
    items += [TimelineItem(at=a.at, kind="alert", title=f"alert {a.id}: {a.title}",
                           detail=f"severity {a.severity}" + (f", host {a.host}" if a.host else ""),
                           ref=f"alert:{a.id}") for a in alerts]
    return sorted(items, key=lambda item: item.at)
