"""Grouping alerts into incidents: automatically on recording, and by hand (merge, split).

An alert's grouping entity is the first of the policy's kinds (default host, then user, then
source IP) it has a value for, or ``none``. A new alert joins the open incident of the same
rule and entity whose event-time span comes within the window of its own; otherwise it opens
a new incident. The lookup is one range read of the ``ix_incidents_key`` index per grouping
key and recording call, done in the recording transaction (no scan, nothing computed over
other alerts).

By hand: :func:`merge` moves every alert of some incidents into another one (the emptied
incidents are closed and point at the one they were merged into); :func:`split` moves some
alerts of an incident into a new incident that automatic grouping leaves alone.

An incident's aggregates (alert count, time span, severity, status, case) follow its alerts:
they are updated in place on recording and recomputed (:func:`refresh`, one indexed
aggregate query) after a manual change. An incident is closed when all its alerts are, and
open again when one of them reopens.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from vigil.alerts import changes
from vigil.alerts.models import Alert, Incident
from vigil.alerts.types import EntityKind, IncidentStatus, IncidentView, Severity, Status, shift
from vigil.alerts.views import incident_view
from vigil.core.auth import Principal
from vigil.core.errors import ConflictError, InputError
from vigil.core.outbox import Topic, emit
from vigil.core.timeutil import to_utc, utcnow

_ENTITY_LENGTH = 255


@dataclass(frozen=True, slots=True)
class GroupingPolicy:
    """How recorded alerts are grouped (see the module docstring)."""

    window_seconds: int = 86_400
    """0: every alert opens its own incident."""
    entity_order: tuple[EntityKind, ...] = (EntityKind.HOST, EntityKind.USER, EntityKind.SRC_IP)

    @classmethod
    def of(cls, window_seconds: int, entity_order: Iterable[str]) -> GroupingPolicy:
        """A policy from settings (``alerts.group_window_seconds``, ``alerts.group_by``)."""
        return cls(window_seconds, tuple(EntityKind(kind) for kind in entity_order))


DEFAULT_POLICY = GroupingPolicy()

GroupKey = tuple[str, str, str]
"""Rule id, entity kind and entity value."""


def grouping_entity(alert: Alert, order: Sequence[EntityKind]) -> tuple[EntityKind, str]:
    """The kind and value ``alert`` is grouped by."""
    values = {EntityKind.HOST: alert.host, EntityKind.USER: alert.user_name,
              EntityKind.SRC_IP: alert.src_ip}
    for kind in order:
        value = values.get(kind)
        if value:
            return kind, value[:_ENTITY_LENGTH]
    return EntityKind.NONE, ""


def _title(alert: Alert, kind: EntityKind, value: str) -> str:
    if kind is EntityKind.NONE:
        return alert.rule_title
    label = {EntityKind.HOST: "host", EntityKind.USER: "user", EntityKind.SRC_IP: "source IP"}[kind]
    return f"{alert.rule_title} on {label} {value}"


def _fits(incident: Incident, alert: Alert, window: timedelta) -> bool:
    return (incident.status == IncidentStatus.OPEN and incident.auto_group
            and to_utc(incident.last_seen) >= shift(to_utc(alert.first_seen), -window)
            and to_utc(incident.first_seen) <= shift(to_utc(alert.last_seen), window))


def _candidates(session: Session, key: GroupKey, since: datetime) -> list[Incident]:
    """Open incidents of ``key`` that automatic grouping may add to, seen since ``since``
    (one range read of ``ix_incidents_key``), most recent first."""
    rule_id, kind, value = key
    with session.no_autoflush:
        return list(session.scalars(
            select(Incident)
            .where(Incident.rule_id == rule_id, Incident.entity_kind == kind,
                   Incident.entity_value == value, Incident.status == IncidentStatus.OPEN.value,
                   Incident.last_seen >= since, Incident.auto_group.is_(True))
            .order_by(Incident.last_seen.desc()).limit(50)))


def _new_incident(alert: Alert, key: GroupKey) -> Incident:
    now = utcnow()
    kind, value = EntityKind(key[1]), key[2]
    return Incident(title=_title(alert, kind, value), rule_id=alert.rule_id, entity_kind=kind.value,
                    entity_value=value, severity=alert.severity, status=IncidentStatus.OPEN.value,
                    alert_count=0, first_seen=alert.first_seen, last_seen=alert.last_seen,
                    case_id=None, auto_group=True, merged_into=None, created_at=now, updated_at=now)


def attach(session: Session, alerts: Sequence[Alert],
           policy: GroupingPolicy) -> list[tuple[Alert, Incident, bool]]:
    """Put new ``alerts`` (flushed, with their ids) in incidents: each alert, its incident
    and whether that incident was created. One index read per grouping key, one flush."""
    window = timedelta(seconds=policy.window_seconds)
    keyed: dict[GroupKey, list[Alert]] = {}
    for alert in alerts:
        kind, value = grouping_entity(alert, policy.entity_order)
        keyed.setdefault((alert.rule_id, kind.value, value), []).append(alert)
    placed: list[tuple[Alert, Incident, bool]] = []
    for key, members in keyed.items():
        members.sort(key=lambda a: (to_utc(a.first_seen), a.id))
        known: list[Incident] = []
        if policy.window_seconds > 0:
            known = _candidates(session, key, shift(to_utc(members[0].first_seen), -window))
        for alert in members:
            incident = next((i for i in known if _fits(i, alert, window)), None)
            created = incident is None
            if incident is None:
                incident = _new_incident(alert, key)
                session.add(incident)
                if policy.window_seconds > 0:
                    known.insert(0, incident)
            incident.alert_count += 1
            widen(incident, alert)
            placed.append((alert, incident, created))
    session.flush()
    for alert, incident, _ in placed:
        alert.incident_id = incident.id
    return placed


def widen(incident: Incident, alert: Alert) -> None:
    """Stretch ``incident``'s span and severity to cover ``alert`` (on recording)."""
    incident.first_seen = min(to_utc(incident.first_seen), to_utc(alert.first_seen))
    incident.last_seen = max(to_utc(incident.last_seen), to_utc(alert.last_seen))
    incident.severity = max(incident.severity, alert.severity)
    incident.updated_at = utcnow()


def announce(session: Session, incident: Incident) -> None:
    """The domain event and audit record of an incident opened automatically."""
    severity = Severity(incident.severity).label
    emit(session, Topic.INCIDENT_CREATED, subject=f"Incident #{incident.id}: {incident.title}",
         severity=severity, object_type="incident", object_id=incident.id,
         details={"rule_id": incident.rule_id, "entity_kind": incident.entity_kind,
                  "entity_value": incident.entity_value})


def refresh(session: Session, incident: Incident) -> None:
    """Recompute ``incident``'s aggregates from its alerts (after a manual change)."""
    open_expr = case((Alert.status != Status.CLOSED.value, 1), else_=0)
    row = session.execute(
        select(func.count(Alert.id), func.min(Alert.first_seen), func.max(Alert.last_seen),
               func.max(Alert.severity), func.count(Alert.case_id), func.min(Alert.case_id),
               func.max(Alert.case_id), func.coalesce(func.sum(open_expr), 0))
        .where(Alert.incident_id == incident.id)).one()
    count, first, last, severity, linked, low_case, high_case, still_open = row
    now = utcnow()
    incident.alert_count = int(count)
    incident.updated_at = now
    if count:
        incident.first_seen, incident.last_seen = to_utc(first), to_utc(last)
        incident.severity = int(severity)
    same_case = linked == count and count and low_case == high_case
    incident.case_id = int(low_case) if same_case else None
    should_be_open = bool(still_open) and incident.merged_into is None
    if should_be_open and incident.status != IncidentStatus.OPEN:
        incident.status, incident.closed_at = IncidentStatus.OPEN.value, None
    elif not should_be_open and incident.status != IncidentStatus.CLOSED:
        incident.status, incident.closed_at = IncidentStatus.CLOSED.value, now


def refresh_ids(session: Session, incident_ids: Iterable[int | None]) -> None:
    for incident_id in sorted({i for i in incident_ids if i is not None}):
        incident = session.get(Incident, incident_id)
        if incident is not None:
            refresh(session, incident)


def _move(session: Session, alerts: Iterable[Alert], target: Incident, actor: Principal,
          at: datetime) -> list[int]:
    moved = []
    for alert in alerts:
        if changes.set_field(session, alert, "incident_id", target.id, actor, at):
            moved.append(alert.id)
    return moved


def merge(session: Session, target_id: int, source_ids: Sequence[int],
          actor: Principal) -> IncidentView:
    """Move every alert of the ``source_ids`` incidents into ``target_id``; the sources are
    closed and marked as merged into the target."""
    sources = list(dict.fromkeys(source_ids))
    if not sources:
        raise InputError("name at least one incident to merge")
    if target_id in sources:
        raise InputError(f"incident {target_id} cannot be merged into itself")
    target = changes.load_incident(session, target_id)
    if target.merged_into is not None:
        raise ConflictError(f"incident {target_id} was merged into {target.merged_into}")
    absorbed = [changes.load_incident(session, i) for i in sources]
    for incident in absorbed:
        if incident.merged_into is not None:
            raise ConflictError(f"incident {incident.id} was already merged into "
                                f"{incident.merged_into}")
    before = {"alert_count": target.alert_count}
    now = utcnow()
    for incident in absorbed:
        alerts = session.scalars(select(Alert).where(Alert.incident_id == incident.id)
                                 .order_by(Alert.id).with_for_update()).all()
        moved = _move(session, alerts, target, actor, now)
        incident.merged_into = target.id
        session.flush()
        refresh(session, incident)
        changes.audit_incident(session, actor, "merge", incident.id,
                               {"status": "open"}, {"merged_into": target.id, "alerts": moved})
    session.flush()
    refresh(session, target)
    changes.audit_incident(session, actor, "merge", target.id, before,
                           {"alert_count": target.alert_count, "merged": sources})
    return incident_view(target)


def split(session: Session, incident_id: int, alert_ids: Sequence[int], actor: Principal,
          title: str | None = None) -> IncidentView:
    """Move ``alert_ids`` out of ``incident_id`` into a new incident (which automatic grouping
    leaves alone); returns the new incident."""
    ids = changes.check_ids(alert_ids)
    source = changes.load_incident(session, incident_id)
    if source.merged_into is not None:
        raise ConflictError(f"incident {incident_id} was merged into {source.merged_into}")
    alerts = changes.load_alerts(session, ids)
    for alert_id in ids:
        if alerts[alert_id].incident_id != incident_id:
            raise InputError(f"alert {alert_id} is not in incident {incident_id}")
    if len(ids) >= source.alert_count:
        raise InputError("splitting off every alert leaves the incident empty; "
                         "leave at least one")
    now = utcnow()
    first = alerts[ids[0]]
    new = Incident(title=(title or "").strip()[:2000] or f"{source.title} (split from #{source.id})",
                   rule_id=source.rule_id, entity_kind=source.entity_kind,
                   entity_value=source.entity_value, severity=first.severity,
                   status=IncidentStatus.OPEN.value, alert_count=0, first_seen=first.first_seen,
                   last_seen=first.last_seen, case_id=None, auto_group=False, merged_into=None,
                   created_at=now, updated_at=now)
    session.add(new)
    session.flush()
    _move(session, (alerts[i] for i in ids), new, actor, now)
    session.flush()
    refresh(session, new)
    refresh(session, source)
    changes.audit_incident(session, actor, "split", source.id, None,
                           {"alerts": ids, "new_incident": new.id})
    changes.audit_incident(session, actor, "create", new.id, None,
                           {"title": new.title, "split_from": source.id, "alerts": ids})
    emit(session, Topic.INCIDENT_CREATED, subject=f"Incident #{new.id}: {new.title}",
         severity=Severity(new.severity).label, object_type="incident", object_id=new.id,
         details={"split_from": source.id})
    return incident_view(new)
