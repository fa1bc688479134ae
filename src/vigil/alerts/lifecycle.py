"""What analysts (and the cases context) do to alerts: acknowledge, close, reopen, assign,
escalate to a case and take back out of it.

Status moves: ``new`` → ``acknowledged`` → ``closed``; ``new`` may close directly; a closed
alert reopens to ``acknowledged``. Any other move is a :class:`ConflictError` (HTTP 409).
Closing needs a disposition. Each function works in the caller's session, writes one history
row per changed field and one audit record per alert, and keeps the incidents of the alerts
it touched in step (an incident closes with its last open alert and reopens with it).

Escalating (:func:`link_case`) links alerts to a case of ``vigil.cases``, which calls it in
its own transaction; a ``new`` alert counts as triaged by that and is acknowledged. An alert
belongs to one case at a time.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from vigil.alerts import changes, grouping
from vigil.alerts.changes import set_field
from vigil.alerts.models import Alert
from vigil.alerts.types import AlertView, BulkResult, Disposition, Status
from vigil.alerts.views import alert_view
from vigil.core.auth import Principal
from vigil.core.errors import ConflictError, InputError, NotFoundError
from vigil.core.timeutil import utcnow

MAX_NOTE = 10_000


def _ack(session: Session, alert: Alert, actor: Principal, at: datetime) -> None:
    if alert.status != Status.NEW:
        raise ConflictError(f"alert {alert.id} is {alert.status}; only a new alert can be "
                            "acknowledged")
    set_field(session, alert, "status", Status.ACKNOWLEDGED.value, actor, at)
    if alert.acknowledged_at is None:
        alert.acknowledged_at = at
    changes.audit_alert(session, actor, "acknowledge", alert.id, {"status": Status.NEW.value},
                        {"status": Status.ACKNOWLEDGED.value})


def _note(note: str | None) -> str | None:
    text = (note or "").strip()
    if len(text) > MAX_NOTE:
        raise InputError(f"closing note longer than {MAX_NOTE} characters")
    return text or None


def _close(session: Session, alert: Alert, actor: Principal, at: datetime,
           disposition: Disposition, note: str | None) -> None:
    if alert.status == Status.CLOSED:
        raise ConflictError(f"alert {alert.id} is already closed")
    before = {"status": alert.status}
    set_field(session, alert, "status", Status.CLOSED.value, actor, at)
    set_field(session, alert, "disposition", disposition.value, actor, at)
    alert.closing_note, alert.closed_at = note, at
    changes.audit_alert(session, actor, "close", alert.id, before,
                        {"status": Status.CLOSED.value, "disposition": disposition.value,
                         "closing_note": note})


def _reopen(session: Session, alert: Alert, actor: Principal, at: datetime) -> None:
    if alert.status != Status.CLOSED:
        raise ConflictError(f"alert {alert.id} is {alert.status}; only a closed alert can be "
                            "reopened")
    before = {"status": alert.status, "disposition": alert.disposition,
              "closing_note": alert.closing_note}
    set_field(session, alert, "status", Status.ACKNOWLEDGED.value, actor, at)
    set_field(session, alert, "disposition", None, actor, at)
    alert.closing_note, alert.closed_at = None, None
    if alert.acknowledged_at is None:
        alert.acknowledged_at = at
    changes.audit_alert(session, actor, "reopen", alert.id, before,
                        {"status": Status.ACKNOWLEDGED.value})


def _one(session: Session, alert_id: int, step: Callable[[Alert, datetime], None]) -> AlertView:
    alert = changes.load_alert(session, alert_id)
    step(alert, utcnow())
    session.flush()
    grouping.refresh_ids(session, [alert.incident_id])
    return alert_view(alert)


def acknowledge(session: Session, alert_id: int, actor: Principal) -> AlertView:
    """``new`` → ``acknowledged``."""
    return _one(session, alert_id, lambda a, at: _ack(session, a, actor, at))


def close(session: Session, alert_id: int, actor: Principal, disposition: Disposition | str,
          note: str | None = None) -> AlertView:
    """``new``/``acknowledged`` → ``closed`` with a disposition (and an optional note)."""
    chosen, text = parse_disposition(disposition), _note(note)
    return _one(session, alert_id, lambda a, at: _close(session, a, actor, at, chosen, text))


def reopen(session: Session, alert_id: int, actor: Principal) -> AlertView:
    """``closed`` → ``acknowledged`` (the disposition and closing note are cleared; the
    history keeps them)."""
    return _one(session, alert_id, lambda a, at: _reopen(session, a, actor, at))


def parse_disposition(value: Disposition | str | None) -> Disposition:
    if value is None or value == "":
        raise InputError("closing an alert needs a disposition (" +
                         ", ".join(d.value for d in Disposition) + ")")
    try:
        return Disposition(value)
    except ValueError:
        raise InputError(f"unknown disposition {value!r} (use " +
                         ", ".join(d.value for d in Disposition) + ")") from None


def assign(session: Session, alert_id: int, assignee: int | None, actor: Principal) -> AlertView:
    """Give the alert to a user (by id), or to nobody (None)."""
    if assignee is not None and assignee <= 0:
        raise InputError("an assignee is a user id (a positive number)")

    def step(alert: Alert, at: datetime) -> None:
        before = alert.assignee
        if set_field(session, alert, "assignee", assignee, actor, at):
            changes.audit_alert(session, actor, "assign", alert.id, {"assignee": before},
                                {"assignee": assignee})

    return _one(session, alert_id, step)


def _bulk_step(session: Session, action: str, actor: Principal, disposition: Disposition | str | None,
               note: str | None) -> Callable[[Alert, datetime], None]:
    if action == "acknowledge":
        def ack(alert: Alert, at: datetime) -> None:
            _ack(session, alert, actor, at)
        return ack
    if action == "close":
        chosen, text = parse_disposition(disposition), _note(note)

        def close_one(alert: Alert, at: datetime) -> None:
            _close(session, alert, actor, at, chosen, text)
        return close_one
    if action == "reopen":
        def reopen_one(alert: Alert, at: datetime) -> None:
            _reopen(session, alert, actor, at)
        return reopen_one
    raise InputError(f"unknown bulk action {action!r} (use acknowledge, close or reopen)")


def bulk(session: Session, action: str, alert_ids: Sequence[int], actor: Principal,
         disposition: Disposition | str | None = None, note: str | None = None) -> BulkResult:
    """``acknowledge``, ``close`` or ``reopen`` many alerts; an alert that is unknown or not in
    a state the action applies to is skipped (with the reason), the others are changed."""
    ids = changes.check_ids(alert_ids)
    step = _bulk_step(session, action, actor, disposition, note)
    found = changes.load_alerts(session, ids, missing_ok=True)
    result = BulkResult()
    at = utcnow()
    for alert_id in ids:
        alert = found.get(alert_id)
        if alert is None:
            result.skipped[alert_id] = f"no alert with id {alert_id}"
            continue
        try:
            step(alert, at)
        except ConflictError as exc:
            result.skipped[alert_id] = str(exc)
            continue
        result.done.append(alert_id)
    session.flush()
    grouping.refresh_ids(session, [found[i].incident_id for i in result.done])
    return result


def link_case(session: Session, alert_ids: Sequence[int], case_id: int,
              actor: Principal) -> list[AlertView]:
    """Escalate alerts to case ``case_id`` (all or none: an unknown alert is a
    :class:`NotFoundError`, one already in another case a :class:`ConflictError`)."""
    if case_id <= 0:
        raise InputError("a case id is a positive number")
    ids = changes.check_ids(alert_ids)
    alerts = changes.load_alerts(session, ids)
    for alert_id in ids:
        current = alerts[alert_id].case_id
        if current is not None and current != case_id:
            raise ConflictError(f"alert {alert_id} is already in case {current}")
    at = utcnow()
    for alert_id in ids:
        alert = alerts[alert_id]
        if not set_field(session, alert, "case_id", case_id, actor, at):
            continue
        alert.escalated_at = alert.escalated_at or at
        before = {"case_id": None, "status": alert.status}
        if alert.status == Status.NEW:
            set_field(session, alert, "status", Status.ACKNOWLEDGED.value, actor, at)
            alert.acknowledged_at = alert.acknowledged_at or at
        changes.audit_alert(session, actor, "escalate", alert.id, before,
                            {"case_id": case_id, "status": alert.status})
    session.flush()
    grouping.refresh_ids(session, [a.incident_id for a in alerts.values()])
    return [alert_view(alerts[i]) for i in ids]


def unlink_case(session: Session, alert_ids: Sequence[int], actor: Principal,
                case_id: int | None = None) -> list[AlertView]:
    """Take alerts out of their case (of ``case_id`` only, when given: an alert in another
    case is a :class:`ConflictError`). Status and history stay as they are."""
    ids = changes.check_ids(alert_ids)
    alerts = changes.load_alerts(session, ids)
    for alert_id in ids:
        current = alerts[alert_id].case_id
        if case_id is not None and current is not None and current != case_id:
            raise ConflictError(f"alert {alert_id} is in case {current}, not {case_id}")
    at = utcnow()
    for alert_id in ids:
        alert = alerts[alert_id]
        before = alert.case_id
        if set_field(session, alert, "case_id", None, actor, at):
            changes.audit_alert(session, actor, "unlink", alert.id, {"case_id": before},
                                {"case_id": None})
    session.flush()
    grouping.refresh_ids(session, [a.incident_id for a in alerts.values()])
    return [alert_view(alerts[i]) for i in ids]


def escalate_incident(session: Session, incident_id: int, case_id: int,
                      actor: Principal) -> list[AlertView]:
    """Escalate every alert of an incident to case ``case_id``; later alerts grouped into
    the incident join the case too."""
    changes.load_incident(session, incident_id)
    ids = list(session.scalars(select(Alert.id).where(Alert.incident_id == incident_id)
                               .order_by(Alert.id)))
    if not ids:
        raise NotFoundError(f"incident {incident_id} has no alerts")
    linked: list[AlertView] = []
    for start in range(0, len(ids), changes.MAX_IDS):
        linked += link_case(session, ids[start:start + changes.MAX_IDS], case_id, actor)
    return linked
