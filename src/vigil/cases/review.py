"""Post-incident review: what happened, the root cause, what went well and badly, the
detection gaps and lessons, and action items with an owner tracked to closure.

A review is a draft until someone completes it; completing needs what happened, the root
cause, what went well and what went badly. A case with a true-positive disposition closes
only once its review is completed. Editing a completed review makes it a draft again.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from vigil.cases import directory
from vigil.cases.base import audit_change, case_ref, get_case, lock_case, lock_open_case, opt_utc
from vigil.cases.enums import ReviewStatus
from vigil.cases.models import ActionItem, Case, Review
from vigil.cases.schemas import (
    ActionItemCreate,
    ActionItemOut,
    ActionItemUpdate,
    ReviewOut,
    ReviewUpdate,
)
from vigil.cases.views import action_view, review_view
from vigil.core.auth import Principal
from vigil.core.db import StateDB
from vigil.core.errors import ConflictError, NotFoundError
from vigil.core.outbox import Topic, emit
from vigil.core.timeutil import to_utc, utcnow

OBJECT = "case_review"
ACTION_OBJECT = "case_review_action"
TEXT_FIELDS = ("summary", "what_happened", "root_cause", "went_well", "went_badly",
               "detection_gaps", "lessons")
REQUIRED = ("what_happened", "root_cause", "went_well", "went_badly")


def _review(session: Session, case: Case, actor: Principal, now: datetime) -> Review:
    """The case's review, started as an empty draft when there is none."""
    row = session.scalar(select(Review).where(Review.case_id == case.id))
    if row is None:
        row = Review(case_id=case.id, status=ReviewStatus.DRAFT.value, created_by=actor.actor,
                     created_at=now, updated_at=now)
        session.add(row)
        session.flush()
        audit_change(session, actor, "create", OBJECT, row.id, None, {"case_id": case.id})
    return row


def _view(session: Session, row: Review) -> ReviewOut:
    actions = session.scalars(select(ActionItem).where(ActionItem.review_id == row.id)
                              .order_by(ActionItem.id)).all()
    return review_view(row, actions)


def update_review(db: StateDB, case_id: int, data: ReviewUpdate, actor: Principal, *,
                  now: datetime | None = None) -> ReviewOut:
    """Write the review's fields (the review starts on first write)."""
    stamp = now or utcnow()
    with db.session() as session:
        case = lock_open_case(session, case_id, stamp)
        row = _review(session, case, actor, stamp)
        before: dict[str, object] = {}
        after: dict[str, object] = {}
        for name in (*TEXT_FIELDS, "first_compromise_at"):
            if name not in data.model_fields_set:
                continue
            value = getattr(data, name)
            if name in TEXT_FIELDS and value is None:
                value = ""
            old = getattr(row, name)
            if isinstance(old, datetime):
                old = to_utc(old)
            if old != value:
                before[name], after[name] = old, value
                setattr(row, name, value)
        if after and row.status == ReviewStatus.COMPLETED.value:
            before["status"], after["status"] = row.status, ReviewStatus.DRAFT.value
            row.status, row.completed_at, row.completed_by = ReviewStatus.DRAFT.value, None, None
        if after:
            row.updated_at = stamp
            audit_change(session, actor, "update", OBJECT, row.id, before, after)
        return _view(session, row)


def complete_review(db: StateDB, case_id: int, actor: Principal, *,
                    now: datetime | None = None) -> ReviewOut:
    """Mark the review completed; refused (409) while a required part is empty."""
    stamp = now or utcnow()
    with db.session() as session:
        case = lock_open_case(session, case_id, stamp)
        row = session.scalar(select(Review).where(Review.case_id == case.id))
        if row is None:
            raise ConflictError(f"{case_ref(case_id)} has no post-incident review yet")
        missing = [name for name in REQUIRED if not getattr(row, name).strip()]
        if missing:
            raise ConflictError(f"the review of {case_ref(case_id)} still needs: {', '.join(missing)}")
        if row.status != ReviewStatus.COMPLETED.value:
            row.status, row.completed_at, row.completed_by = (ReviewStatus.COMPLETED.value, stamp,
                                                               actor.actor)
            row.updated_at = stamp
            audit_change(session, actor, "complete", OBJECT, row.id,
                         {"status": ReviewStatus.DRAFT.value},
                         {"status": ReviewStatus.COMPLETED.value})
        return _view(session, row)


def get_review(db: StateDB, case_id: int) -> ReviewOut | None:
    """The review of a case (None until someone starts it)."""
    with db.session() as session:
        get_case(session, case_id)
        return review_of(session, case_id)


def review_of(session: Session, case_id: int) -> ReviewOut | None:
    """The review of a case, read in ``session``."""
    row = session.scalar(select(Review).where(Review.case_id == case_id))
    return None if row is None else _view(session, row)


def is_completed(session: Session, case_id: int) -> bool:
    """Whether the case's review is completed (the gate for closing a true positive)."""
    status = session.scalar(select(Review.status).where(Review.case_id == case_id))
    return status == ReviewStatus.COMPLETED.value


def _announce(session: Session, case: Case, row: ActionItem) -> None:
    emit(session, Topic.TASK_ASSIGNED,
         subject=f"{case_ref(case.id)} review action assigned to {row.owner_name}: {row.title}",
         severity=case.severity, object_type=ACTION_OBJECT, object_id=row.id,
         recipients=[row.owner_name],
         details={"case_id": case.id, "case_ref": case_ref(case.id), "action_item_id": row.id,
                  "title": row.title, "due_at": row.due_at, "kind": "review_action"})


def add_action(db: StateDB, case_id: int, data: ActionItemCreate, actor: Principal, *,
               now: datetime | None = None) -> ActionItemOut:
    """Add an action item to the review (starting the review if needed); its owner is told."""
    stamp = now or utcnow()
    owner = directory.resolve(db, data.owner)
    with db.session() as session:
        case = lock_open_case(session, case_id, stamp)
        review = _review(session, case, actor, stamp)
        row = ActionItem(review_id=review.id, case_id=case_id, title=data.title, owner_id=owner.id,
                         owner_name=owner.username, due_at=data.due_at, status="open",
                         link=data.link, created_at=stamp, updated_at=stamp)
        session.add(row)
        session.flush()
        audit_change(session, actor, "create", ACTION_OBJECT, row.id, None,
                     {"case_id": case_id, "title": row.title, "owner": row.owner_name,
                      "due_at": row.due_at, "link": row.link})
        _announce(session, case, row)
        return action_view(row)


def update_action(db: StateDB, case_id: int, action_id: int, data: ActionItemUpdate,
                  actor: Principal, *, now: datetime | None = None) -> ActionItemOut:
    """Change an action item (also after the case closed: actions are tracked to closure)."""
    stamp = now or utcnow()
    fields = data.model_fields_set
    owner = directory.resolve(db, data.owner) if data.owner is not None else None
    with db.session() as session:
        case = lock_case(session, case_id, now=stamp)
        row = session.get(ActionItem, action_id)
        if row is None or row.case_id != case_id:
            raise NotFoundError(f"no review action {action_id} in {case_ref(case_id)}")
        before = {"title": row.title, "owner": row.owner_name, "due_at": opt_utc(row.due_at),
                  "status": row.status, "link": row.link}
        if data.title is not None:
            row.title = data.title
        if "due_at" in fields:
            row.due_at = data.due_at
        if "link" in fields:
            row.link = data.link
        if data.status is not None:
            row.status = data.status.value
        reassigned = owner is not None and owner.id != row.owner_id
        if owner is not None:
            row.owner_id, row.owner_name = owner.id, owner.username
        after = {"title": row.title, "owner": row.owner_name, "due_at": row.due_at,
                 "status": row.status, "link": row.link}
        changed = {k: v for k, v in after.items() if before[k] != v}
        if changed:
            row.updated_at = stamp
            audit_change(session, actor, "update", ACTION_OBJECT, row.id,
                         {k: before[k] for k in changed}, changed)
        if reassigned:
            _announce(session, case, row)
        return action_view(row)
