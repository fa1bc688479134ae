"""How a change to an alert is written: the field, a history row, and (for people) the audit.

Every field an analyst or a context can change goes through :func:`set_field`, which writes
one ``alert_history`` row per actual change (old and new value as text). The history is what
the SOC metrics read (time to acknowledge, to escalate, to close); the audit trail
(:func:`vigil.audit.service.record`) gets one record per operation with the changed fields.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from vigil.alerts.models import Alert, AlertHistory, Incident
from vigil.audit import service as audit
from vigil.core.auth import Principal
from vigil.core.errors import InputError, NotFoundError

TRACKED = ("status", "disposition", "assignee", "incident_id", "case_id")
"""The alert fields whose every change is kept in ``alert_history``."""

MAX_IDS = 1000
"""The most alerts one operation may name."""


def _text(value: object) -> str | None:
    return None if value is None else str(value)


def set_field(session: Session, alert: Alert, name: str, value: object, actor: Principal | str,
              at: datetime) -> bool:
    """Set a tracked field of ``alert``; record the change in its history. False when the
    field already had that value."""
    assert name in TRACKED, name
    old = getattr(alert, name)
    if old == value:
        return False
    setattr(alert, name, value)
    alert.updated_at = at
    session.add(AlertHistory(alert_id=alert.id, at=at, actor=actor_name(actor), field=name,
                             old=_text(old), new=_text(value)))
    return True


def actor_name(actor: Principal | str) -> str:
    return actor if isinstance(actor, str) else actor.actor


def audit_alert(session: Session, actor: Principal | str, action: str, alert_id: int,
                before: Mapping[str, Any], after: Mapping[str, Any]) -> None:
    audit.record(session, actor, action, "alert", alert_id, dict(before), dict(after))


def audit_incident(session: Session, actor: Principal | str, action: str, incident_id: int,
                   before: Mapping[str, Any] | None, after: Mapping[str, Any]) -> None:
    audit.record(session, actor, action, "incident", incident_id,
                 dict(before) if before is not None else None, dict(after))


def check_ids(ids: Iterable[int]) -> list[int]:
    """``ids`` without repeats, in order; :class:`InputError` when none or too many."""
    unique = list(dict.fromkeys(ids))
    if not unique:
        raise InputError("no alert ids given")
    if len(unique) > MAX_IDS:
        raise InputError(f"at most {MAX_IDS} alert ids at once (got {len(unique)})")
    return unique


def write_lock(session: Session, model: type[Alert] | type[Incident], ids: list[int]) -> None:
    """Hold the rows before reading them. PostgreSQL: ``SELECT ... FOR UPDATE`` does it. SQLite
    (pysqlite) reads outside any transaction until the first write, so two sessions could both
    read ``new`` and both acknowledge: a no-op ``UPDATE`` first takes the database write lock,
    and what is read next cannot change before this session commits."""
    if ids and session.get_bind().dialect.name == "sqlite":
        session.execute(update(model).where(model.id.in_(ids)).values(id=model.id)
                        .execution_options(synchronize_session=False))


def load_alerts(session: Session, ids: Iterable[int], *, lock: bool = True,
                missing_ok: bool = False) -> dict[int, Alert]:
    """The alerts with these ids (locked for update on PostgreSQL); :class:`NotFoundError`
    names the first unknown id unless ``missing_ok``."""
    wanted = list(ids)
    query = select(Alert).where(Alert.id.in_(wanted))
    if lock:
        write_lock(session, Alert, wanted)
        query = query.with_for_update().execution_options(populate_existing=True)
    found = {a.id: a for a in session.scalars(query)}
    if not missing_ok:
        for alert_id in wanted:
            if alert_id not in found:
                raise NotFoundError(f"no alert with id {alert_id}")
    return found


def load_alert(session: Session, alert_id: int, *, lock: bool = True) -> Alert:
    return load_alerts(session, [alert_id], lock=lock)[alert_id]


def load_incident(session: Session, incident_id: int, *, lock: bool = True) -> Incident:
    query = select(Incident).where(Incident.id == incident_id)
    if lock:
        write_lock(session, Incident, [incident_id])
        query = query.with_for_update().execution_options(populate_existing=True)
    incident = session.scalar(query)
    if incident is None:
        raise NotFoundError(f"no incident with id {incident_id}")
    return incident
