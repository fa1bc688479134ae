"""Recording alerts: inputs from any source folded into alerts, new alerts grouped.

Inputs with the dedup key of an open alert fold into it: its count grows, its time span
widens, up to :data:`~vigil.alerts.types.MAX_EVENT_IDS` event ids are kept, and its incident
stretches to cover it. A closed alert is never extended: an input that brings events it does
not hold opens a new alert (the analyst closed what they saw, not what came after); one that
brings nothing new changes nothing, so evaluating the same events again is harmless.

An input with a ``burst_key`` also folds into an alert of the same rule and burst key whose
time span overlaps its own (correlations: the same burst seen through a later window).

A new alert is grouped into an incident (:mod:`vigil.alerts.grouping`); one that joins an
incident escalated to a case is linked to that case too (still ``new``: nobody has looked at
it). It gets its first history row, an audit record naming the principal that recorded it
(the system, for detections) and an ``alert.created`` domain event; a new incident an
``incident.created`` event and an audit record. All of it is written in the caller's session,
in one transaction, with the new rows inserted together. Related alerts are not looked for
here (they are computed when an alert is read).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from vigil.alerts import changes, grouping
from vigil.alerts.grouping import DEFAULT_POLICY, GroupingPolicy
from vigil.alerts.models import Alert, AlertHistory, Incident
from vigil.alerts.types import MAX_EVENT_IDS, AlertInput, RecordResult, Severity, Status
from vigil.core.auth import SYSTEM, Principal
from vigil.core.errors import InputError
from vigil.core.outbox import Topic, emit
from vigil.core.timeutil import to_utc, utcnow

_CHUNK = 500
_KEY_LIMITS = {"rule_id": 128, "dedup_key": 512, "burst_key": 512}


def _check(item: AlertInput) -> None:
    if not item.rule_id or not item.dedup_key:
        raise InputError("an alert needs a rule id and a dedup key")
    for name, limit in _KEY_LIMITS.items():
        value = getattr(item, name)
        if value is not None and len(value) > limit:
            raise InputError(f"alert {name} is longer than {limit} characters")
    if to_utc(item.last_seen) < to_utc(item.first_seen):
        raise InputError("an alert's last event cannot be before its first")


def _clip(value: str | None, limit: int) -> str | None:
    """Entities are shown and grouped on, not keys: an over-long value is cut, not refused
    (refusing would lose the detection)."""
    return value[:limit] if value else None


def _existing(session: Session, keys: Sequence[str]) -> dict[str, list[Alert]]:
    """The alerts of each dedup key, oldest first."""
    found: dict[str, list[Alert]] = {}
    for start in range(0, len(keys), _CHUNK):
        chunk = list(keys[start:start + _CHUNK])
        for alert in session.scalars(select(Alert).where(Alert.dedup_key.in_(chunk))
                                     .order_by(Alert.id)):
            found.setdefault(alert.dedup_key, []).append(alert)
    return found


def _overlaps(alert: Alert, item: AlertInput) -> bool:
    return (to_utc(alert.first_seen) <= to_utc(item.last_seen)
            and to_utc(alert.last_seen) >= to_utc(item.first_seen))


def _burst(session: Session, item: AlertInput) -> list[Alert]:
    """Alerts of the same rule and burst key that overlap ``item`` in time, oldest first."""
    rows = session.scalars(
        select(Alert).where(Alert.group_key == item.burst_key, Alert.rule_id == item.rule_id,
                            Alert.last_seen >= to_utc(item.first_seen))
        .order_by(Alert.id))
    return [a for a in rows if _overlaps(a, item)]


def _fresh(alert: Alert, item: AlertInput) -> list[str]:
    known = set(json.loads(alert.event_ids))
    return [e for e in dict.fromkeys(item.event_ids) if e not in known]


def _target(candidates: Iterable[Alert], item: AlertInput) -> tuple[Alert | None, bool]:
    """The alert ``item`` folds into (None: a new one) and whether to skip it altogether
    (a closed alert that already holds everything ``item`` brings)."""
    closed: list[Alert] = []
    for alert in candidates:
        if alert.status != Status.CLOSED:
            return alert, False
        closed.append(alert)
    for alert in closed:
        if not _fresh(alert, item) and to_utc(alert.first_seen) <= to_utc(item.first_seen) \
                and to_utc(alert.last_seen) >= to_utc(item.last_seen):
            return None, True
    return None, False


def _new_alert(item: AlertInput, now: datetime) -> Alert:
    return Alert(source=item.source.value, rule_id=item.rule_id, rule_title=item.rule_title,
                 level=item.level[:32] or "medium", severity=int(item.effective_severity),
                 rule_author=item.rule_author, rule_references=json.dumps(list(item.rule_references)),
                 tags=json.dumps(list(item.tags)), host=_clip(item.host, 255),
                 user_name=_clip(item.user, 255), src_ip=_clip(item.src_ip, 64),
                 first_seen=to_utc(item.first_seen), last_seen=to_utc(item.last_seen), count=0,
                 event_ids="[]",
                 group_key=item.burst_key, dedup_key=item.dedup_key, status=Status.NEW.value,
                 created_at=now, updated_at=now)


def _fold(alert: Alert, item: AlertInput, now: datetime) -> bool:
    """Add ``item``'s occurrences to ``alert``; False when that changed nothing."""
    ids: list[str] = json.loads(alert.event_ids)
    fresh = _fresh(alert, item)
    count = max(alert.count + len(fresh), item.count)
    first = min(to_utc(alert.first_seen), to_utc(item.first_seen))
    last = max(to_utc(alert.last_seen), to_utc(item.last_seen))
    if (count, first, last) == (alert.count, to_utc(alert.first_seen), to_utc(alert.last_seen)) \
            and not fresh:
        return False
    alert.count = count
    if fresh and len(ids) < MAX_EVENT_IDS:
        alert.event_ids = json.dumps((ids + fresh)[:MAX_EVENT_IDS])
    alert.first_seen, alert.last_seen, alert.updated_at = first, last, now
    return True


def _announce(session: Session, alert: Alert, actor: Principal, now: datetime) -> None:
    """The first history row and the domain event of a new alert (its audit record is
    written by :func:`_audit_new`, after every row of the call is added)."""
    session.add(AlertHistory(alert_id=alert.id, at=now, actor=actor.actor, field="status",
                             old=None, new=Status.NEW.value))
    if alert.case_id is not None:
        session.add(AlertHistory(alert_id=alert.id, at=now, actor=actor.actor, field="case_id",
                                 old=None, new=str(alert.case_id)))
    emit(session, Topic.ALERT_CREATED, subject=f"Alert #{alert.id}: {alert.rule_title}",
         severity=Severity(alert.severity).label, object_type="alert", object_id=alert.id,
         details={"rule_id": alert.rule_id, "rule_author": alert.rule_author, "host": alert.host,
                  "user": alert.user_name, "src_ip": alert.src_ip,
                  "incident_id": alert.incident_id, "case_id": alert.case_id})


def _audit_new(session: Session, alert: Alert, actor: Principal) -> None:
    changes.audit_alert(session, actor, "create", alert.id, {}, {
        "source": alert.source, "rule_id": alert.rule_id, "severity": Severity(alert.severity).label,
        "host": alert.host, "user": alert.user_name, "src_ip": alert.src_ip,
        "incident_id": alert.incident_id, "dedup_key": alert.dedup_key})


def _audit_incident(session: Session, incident: Incident, actor: Principal) -> None:
    changes.audit_incident(session, actor, "create", incident.id, None, {
        "title": incident.title, "rule_id": incident.rule_id,
        "entity_kind": incident.entity_kind, "entity_value": incident.entity_value})


def record(session: Session, inputs: Iterable[AlertInput],
           policy: GroupingPolicy = DEFAULT_POLICY, actor: Principal = SYSTEM) -> RecordResult:
    """Record ``inputs`` as alerts (see the module docstring), in ``session``."""
    items = list(inputs)
    for item in items:
        _check(item)
    if not items:
        return RecordResult()
    known = _existing(session, list(dict.fromkeys(i.dedup_key for i in items)))
    now = utcnow()
    created: list[Alert] = []
    fresh: set[int] = set()
    updated: dict[int, Alert] = {}
    for item in items:
        candidates = known.get(item.dedup_key, [])
        if item.burst_key is not None:
            candidates = candidates + [a for a in _burst(session, item) if a not in candidates]
        alert, skip = _target(candidates, item)
        if skip:
            continue
        if alert is None:
            alert = _new_alert(item, now)
            session.add(alert)
            known.setdefault(item.dedup_key, []).append(alert)
            created.append(alert)
            fresh.add(id(alert))
            _fold(alert, item, now)
        elif _fold(alert, item, now) and id(alert) not in fresh:
            updated[alert.id] = alert
    session.flush()
    return _finish(session, created, list(updated.values()), policy, actor, now)


def _finish(session: Session, created: list[Alert], updated: list[Alert], policy: GroupingPolicy,
            actor: Principal, now: datetime) -> RecordResult:
    """Stretch the incidents of updated alerts, group the new ones; then the history rows
    and domain events (added together), then the audit records (appended one by one)."""
    ids = {a.incident_id for a in updated if a.incident_id is not None}
    held = {i.id: i for i in session.scalars(select(Incident).where(Incident.id.in_(list(ids))))} \
        if ids else {}
    for alert in updated:
        if alert.incident_id in held:
            grouping.widen(held[alert.incident_id], alert)
    placed = grouping.attach(session, created, policy) if created else []
    new_incidents = list({id(i): i for _, i, made in placed if made}.values())
    for alert, incident, _ in placed:
        if incident.case_id is not None:
            alert.case_id, alert.escalated_at = incident.case_id, now
    for incident in new_incidents:
        grouping.announce(session, incident)
    for alert in created:
        _announce(session, alert, actor, now)
    for incident in new_incidents:
        _audit_incident(session, incident, actor)
    for alert in created:
        _audit_new(session, alert, actor)
    session.flush()
    return RecordResult(tuple(a.id for a in created), tuple(a.id for a in updated),
                        tuple(i.id for i in new_incidents))
