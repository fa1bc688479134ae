"""Rows of the alerts context turned into the frozen views the service hands out."""

from __future__ import annotations

from datetime import datetime

import orjson

from vigil.alerts.models import Alert, AlertHistory, Incident
from vigil.alerts.types import AlertTiming, AlertView, HistoryEntry, IncidentView, Severity
from vigil.core.timeutil import to_utc


def _utc(value: datetime | None) -> datetime | None:
    return to_utc(value) if value is not None else None


def severity_label(rank: int) -> str:
    try:
        return Severity(rank).label
    except ValueError:
        return Severity.MEDIUM.label


def alert_view(row: Alert) -> AlertView:
    return AlertView(
        id=row.id, source=row.source, rule_id=row.rule_id, rule_title=row.rule_title,
        level=row.level, severity=severity_label(row.severity), rule_author=row.rule_author,
        rule_references=orjson.loads(row.rule_references), tags=orjson.loads(row.tags),
        host=row.host, user=row.user_name, src_ip=row.src_ip,
        first_seen=to_utc(row.first_seen), last_seen=to_utc(row.last_seen), count=row.count,
        event_ids=orjson.loads(row.event_ids), status=row.status, disposition=row.disposition,
        assignee=row.assignee, incident_id=row.incident_id, case_id=row.case_id,
        created_at=to_utc(row.created_at), acknowledged_at=_utc(row.acknowledged_at),
        closed_at=_utc(row.closed_at), escalated_at=_utc(row.escalated_at),
        closing_note=row.closing_note, dedup_key=row.dedup_key)


def incident_view(row: Incident) -> IncidentView:
    return IncidentView(
        id=row.id, title=row.title, rule_id=row.rule_id, entity_kind=row.entity_kind,
        entity_value=row.entity_value, severity=severity_label(row.severity), status=row.status,
        alert_count=row.alert_count, first_seen=to_utc(row.first_seen),
        last_seen=to_utc(row.last_seen), case_id=row.case_id, merged_into=row.merged_into,
        auto_group=row.auto_group, created_at=to_utc(row.created_at), closed_at=_utc(row.closed_at))


def history_view(row: AlertHistory) -> HistoryEntry:
    return HistoryEntry(row.id, row.alert_id, to_utc(row.at), row.actor, row.field, row.old, row.new)


def timing_view(row: Alert) -> AlertTiming:
    return AlertTiming(
        id=row.id, rule_id=row.rule_id, source=row.source, severity=severity_label(row.severity),
        assignee=row.assignee, event_time=to_utc(row.first_seen), created_at=to_utc(row.created_at),
        acknowledged_at=_utc(row.acknowledged_at), escalated_at=_utc(row.escalated_at),
        closed_at=_utc(row.closed_at), status=row.status, disposition=row.disposition,
        case_id=row.case_id, incident_id=row.incident_id)
