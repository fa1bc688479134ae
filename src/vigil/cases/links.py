"""Alerts in cases, through the alerts context's service: which alerts belong to a case is
kept there (``alert.case_id``); escalating an alert into a case acknowledges it and stamps its
escalation time (the alert-to-case metrics).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from vigil.alerts import AlertFilter, AlertSort, AlertView
from vigil.alerts import service as alerts
from vigil.cases.base import audit_change, case_ref, lock_open_case
from vigil.cases.enums import SEVERITY_RANK, Severity
from vigil.cases.models import Case
from vigil.core.auth import Principal
from vigil.core.db import StateDB
from vigil.core.errors import InputError, NotFoundError
from vigil.core.timeutil import to_utc, utcnow


@dataclass(frozen=True, slots=True)
class AlertMark:
    """What a case shows of one of its alerts (the timeline puts it at its first event)."""

    id: int
    at: datetime
    title: str
    severity: str
    host: str | None = None


MAX_SHOWN = 1000
"""Alerts shown with a case (its timeline and detail); a bigger case lists the rest through the
alerts API (``case_id`` filter)."""


def _mark(view: AlertView) -> AlertMark:
    return AlertMark(view.id, to_utc(view.first_seen), view.rule_title, view.severity, view.host)


def check_alerts(session: Session, alert_ids: Sequence[int]) -> list[AlertMark]:
    """The alerts with these ids; InputError naming the first unknown one."""
    ids = list(dict.fromkeys(alert_ids))
    found = {v.id: v for v in alerts.get_alerts(session, ids)} if ids else {}
    for alert_id in ids:
        if alert_id not in found:
            raise InputError(f"no alert with id {alert_id}")
    return [_mark(found[i]) for i in ids]


def highest_severity(marks: Sequence[AlertMark]) -> Severity | None:
    """The highest severity among alerts (None when none is known)."""
    known = [Severity(m.severity) for m in marks if m.severity in Severity.__members__.values()]
    return max(known, key=lambda s: SEVERITY_RANK[s]) if known else None


def title_for(marks: Sequence[AlertMark]) -> str:
    """A case title from its alerts: the first alert's rule (and host), and how many more."""
    first = marks[0]
    title = first.title + (f" on {first.host}" if first.host else "")
    if len(marks) > 1:
        title += f" (+{len(marks) - 1} more alerts)"
    return title[:300]


def attach(session: Session, case: Case, alert_ids: Sequence[int], actor: Principal,
           incident_id: int | None = None) -> list[int]:
    """Escalate alerts (and every alert of an incident) into the case; their ids."""
    linked: list[AlertView] = []
    try:
        if alert_ids:
            linked += alerts.link_case(session, list(alert_ids), case.id, actor)
        if incident_id is not None:
            linked += alerts.escalate_incident(session, incident_id, case.id, actor)
    except NotFoundError as exc:
        raise InputError(str(exc)) from None
    return list(dict.fromkeys(v.id for v in linked))


def marks_of(session: Session, case_id: int) -> list[AlertMark]:
    """The alerts of a case, oldest first event first (at most :data:`MAX_SHOWN`)."""
    page = alerts.list_alerts(session, AlertFilter(case_id=case_id), sort=AlertSort.FIRST_SEEN,
                              descending=False, limit=MAX_SHOWN)
    return [_mark(v) for v in page.items]


def link_alerts(db: StateDB, case_id: int, alert_ids: Sequence[int], actor: Principal, *,
                incident_id: int | None = None, now: datetime | None = None) -> list[int]:
    """Escalate more alerts (or an incident's alerts) into an open case; the case's alert ids."""
    if not alert_ids and incident_id is None:
        raise InputError("give alert ids or an incident id")
    stamp = now or utcnow()
    with db.session() as session:
        case = lock_open_case(session, case_id, stamp)
        added = attach(session, case, alert_ids, actor, incident_id)
        audit_change(session, actor, "link_alerts", "case", case.id, None,
                     {"alert_ids": added, "incident_id": incident_id})
        return [m.id for m in marks_of(session, case_id)]


def unlink_alert(db: StateDB, case_id: int, alert_id: int, actor: Principal, *,
                 now: datetime | None = None) -> list[int]:
    """Take an alert out of an open case; the case's remaining alert ids."""
    stamp = now or utcnow()
    with db.session() as session:
        case = lock_open_case(session, case_id, stamp)
        found = alerts.get_alerts(session, [alert_id])
        if not found or found[0].case_id != case.id:
            raise NotFoundError(f"no alert {alert_id} in {case_ref(case_id)}")
        alerts.unlink_case(session, [alert_id], actor, case_id=case.id)
        audit_change(session, actor, "unlink_alerts", "case", case.id, {"alert_ids": [alert_id]},
                     None)
        return [m.id for m in marks_of(session, case_id)]
