"""Reading alerts and incidents: listings, one alert with its history and related alerts, and
the timings the SOC metrics are computed from.

Listings filter on indexed columns and page by keyset (:mod:`vigil.alerts.paging`). Related
alerts (same host, user or source IP within ``related_days`` before the alert) are computed
here, when an alert is read, with one bounded index read per entity, never while recording.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.orm import InstrumentedAttribute, Session

from vigil.alerts.changes import load_incident
from vigil.alerts.models import Alert, AlertHistory, Incident
from vigil.alerts.paging import check_limit, fetch_page
from vigil.alerts.types import (
    AlertDetail,
    AlertFilter,
    AlertSort,
    AlertTiming,
    AlertView,
    HistoryEntry,
    IncidentDetail,
    IncidentFilter,
    IncidentView,
    Page,
    RelatedAlert,
    Status,
    shift,
)
from vigil.alerts.views import alert_view, history_view, incident_view, timing_view
from vigil.core.errors import InputError, NotFoundError
from vigil.core.timeutil import to_utc


def _utc(value: datetime, name: str) -> datetime:
    try:
        return to_utc(value)
    except OverflowError:
        raise InputError(f"{name}: {value.isoformat()} is out of range in UTC") from None


_ALERT_ORDER: dict[AlertSort, tuple[InstrumentedAttribute[Any], ...]] = {
    AlertSort.LAST_SEEN: (Alert.last_seen, Alert.id),
    AlertSort.FIRST_SEEN: (Alert.first_seen, Alert.id),
    AlertSort.SEVERITY: (Alert.severity, Alert.last_seen, Alert.id),
    AlertSort.ID: (Alert.id,),
}
_INCIDENT_ORDER: dict[AlertSort, tuple[InstrumentedAttribute[Any], ...]] = {
    AlertSort.LAST_SEEN: (Incident.last_seen, Incident.id),
    AlertSort.FIRST_SEEN: (Incident.first_seen, Incident.id),
    AlertSort.SEVERITY: (Incident.severity, Incident.last_seen, Incident.id),
    AlertSort.ID: (Incident.id,),
}


def _one_of(column: InstrumentedAttribute[Any], values: Sequence[Any]) -> ColumnElement[bool]:
    plain = [v.value if hasattr(v, "value") else v for v in values]
    return column == plain[0] if len(plain) == 1 else column.in_(plain)


def _alert_conditions(f: AlertFilter) -> list[ColumnElement[bool]]:
    where: list[ColumnElement[bool]] = []
    for column, values in ((Alert.status, f.status), (Alert.severity, [int(s) for s in f.severity]),
                           (Alert.level, f.level), (Alert.source, f.source),
                           (Alert.disposition, f.disposition)):
        if values:
            where.append(_one_of(column, list(values)))
    pairs: tuple[tuple[InstrumentedAttribute[Any], object], ...] = (
        (Alert.rule_id, f.rule_id), (Alert.host, f.host),
        (Alert.user_name, f.user), (Alert.src_ip, f.src_ip), (Alert.incident_id, f.incident_id),
        (Alert.case_id, f.case_id), (Alert.assignee, f.assignee))
    for column, value in pairs:
        if value is not None:
            where.append(column == value)
    if f.unassigned:
        where.append(Alert.assignee.is_(None))
    if f.min_severity is not None:
        where.append(Alert.severity >= int(f.min_severity))
    if f.since is not None:
        where.append(Alert.last_seen >= _utc(f.since, "since"))
    if f.until is not None:
        where.append(Alert.last_seen < _utc(f.until, "until"))
    return where


_ALL_ALERTS = AlertFilter()
_ALL_INCIDENTS = IncidentFilter()


def list_alerts(session: Session, filters: AlertFilter = _ALL_ALERTS, *,
                sort: AlertSort = AlertSort.LAST_SEEN, descending: bool = True, limit: int = 100,
                cursor: str | None = None, offset: int | None = None,
                with_total: bool = False) -> Page[AlertView]:
    """One page of alerts matching ``filters`` (newest last event first by default)."""
    columns = _ALERT_ORDER[sort]
    rows, next_cursor, total = fetch_page(
        session, select(Alert), _alert_conditions(filters), columns, sort=sort.value,
        descending=descending, limit=limit, cursor=cursor, offset=offset,
        key_of=lambda a: [getattr(a, c.key) for c in columns], with_total=with_total)
    return Page([alert_view(a) for a in rows], next_cursor, total)


def get_alert(session: Session, alert_id: int) -> AlertView:
    alert = session.get(Alert, alert_id)
    if alert is None:
        raise NotFoundError(f"no alert with id {alert_id}")
    return alert_view(alert)


def get_alerts(session: Session, alert_ids: Sequence[int]) -> list[AlertView]:
    """The alerts with these ids, in that order (unknown ids are left out)."""
    found = {a.id: a for a in session.scalars(select(Alert).where(Alert.id.in_(list(alert_ids))))}
    return [alert_view(found[i]) for i in alert_ids if i in found]


def history(session: Session, alert_id: int) -> list[HistoryEntry]:
    """Every change of one alert, oldest first."""
    rows = session.scalars(select(AlertHistory).where(AlertHistory.alert_id == alert_id)
                           .order_by(AlertHistory.id))
    return [history_view(r) for r in rows]


def history_between(session: Session, since: datetime, until: datetime, *,
                    fields: Sequence[str] = (), after_id: int = 0,
                    limit: int = 10_000) -> list[HistoryEntry]:
    """Changes of every alert made in ``[since, until)``, in order; page with ``after_id``
    (the last id of the previous call)."""
    query = (select(AlertHistory)
             .where(AlertHistory.at >= _utc(since, "since"), AlertHistory.at < _utc(until, "until"),
                    AlertHistory.id > after_id)
             .order_by(AlertHistory.id).limit(limit))
    if fields:
        query = query.where(AlertHistory.field.in_(list(fields)))
    return [history_view(r) for r in session.scalars(query)]


def timings(session: Session, since: datetime, until: datetime, *, rule_id: str | None = None,
            after_id: int = 0, limit: int = 10_000) -> list[AlertTiming]:
    """The timestamps of the alerts created in ``[since, until)`` (for MTTD, MTTA, MTTQ, MTTR
    and false-positive rates), by id; page with ``after_id``."""
    query = (select(Alert)
             .where(Alert.created_at >= _utc(since, "since"), Alert.created_at < _utc(until, "until"),
                    Alert.id > after_id)
             .order_by(Alert.id).limit(limit))
    if rule_id is not None:
        query = query.where(Alert.rule_id == rule_id)
    return [timing_view(a) for a in session.scalars(query)]


def open_by_assignee(session: Session) -> dict[int, int]:
    """How many open (new or acknowledged) alerts each assignee holds, in one grouped read of
    the ``(assignee, status)`` index."""
    query = (select(Alert.assignee, func.count()).where(
        Alert.assignee.is_not(None), Alert.status != Status.CLOSED.value).group_by(Alert.assignee))
    return {int(assignee or 0): int(count) for assignee, count in session.execute(query)}


def related(session: Session, alert_id: int, *, days: int = 30, limit: int = 20) -> list[RelatedAlert]:
    """Other alerts on the same host, user or source IP whose last event falls within ``days``
    before this alert's (or after it), outside its incident; most entities shared first, then
    newest first."""
    alert = session.get(Alert, alert_id)
    if alert is None:
        raise NotFoundError(f"no alert with id {alert_id}")
    check_limit(limit)
    since = shift(to_utc(alert.last_seen), -timedelta(days=days))
    shared: dict[int, list[str]] = {}
    rows: dict[int, Alert] = {}
    for name, column, value in (("host", Alert.host, alert.host),
                                ("user", Alert.user_name, alert.user_name),
                                ("src_ip", Alert.src_ip, alert.src_ip)):
        if not value:
            continue
        query = (select(Alert).where(column == value, Alert.last_seen >= since, Alert.id != alert.id)
                 .order_by(Alert.last_seen.desc(), Alert.id.desc()).limit(limit))
        if alert.incident_id is not None:
            query = query.where(Alert.incident_id != alert.incident_id)
        for row in session.scalars(query):
            rows[row.id] = row
            shared.setdefault(row.id, []).append(name)
    ranked = sorted(rows.values(), key=lambda r: (-len(shared[r.id]), -to_utc(r.last_seen).timestamp(),
                                                  -r.id))
    return [RelatedAlert(alert_view(r), tuple(shared[r.id])) for r in ranked[:limit]]


def detail(session: Session, alert_id: int, *, related_days: int = 30,
           related_limit: int = 20) -> AlertDetail:
    """One alert with its history and related alerts."""
    view = get_alert(session, alert_id)
    return AlertDetail(view, history(session, alert_id),
                       related(session, alert_id, days=related_days, limit=related_limit))


def _incident_conditions(f: IncidentFilter) -> list[ColumnElement[bool]]:
    where: list[ColumnElement[bool]] = []
    if f.status:
        where.append(_one_of(Incident.status, list(f.status)))
    if f.severity:
        where.append(_one_of(Incident.severity, [int(s) for s in f.severity]))
    for column, value in ((Incident.rule_id, f.rule_id),
                          (Incident.entity_kind, f.entity_kind.value if f.entity_kind else None),
                          (Incident.entity_value, f.entity_value), (Incident.case_id, f.case_id)):
        if value is not None:
            where.append(column == value)
    if f.since is not None:
        where.append(Incident.last_seen >= _utc(f.since, "since"))
    if f.until is not None:
        where.append(Incident.last_seen < _utc(f.until, "until"))
    return where


def list_incidents(session: Session, filters: IncidentFilter = _ALL_INCIDENTS, *,
                   sort: AlertSort = AlertSort.LAST_SEEN, descending: bool = True,
                   limit: int = 100, cursor: str | None = None, offset: int | None = None,
                   with_total: bool = False) -> Page[IncidentView]:
    """One page of incidents (most recent activity first by default)."""
    columns = _INCIDENT_ORDER[sort]
    rows, next_cursor, total = fetch_page(
        session, select(Incident), _incident_conditions(filters), columns, sort=sort.value,
        descending=descending, limit=limit, cursor=cursor, offset=offset,
        key_of=lambda i: [getattr(i, c.key) for c in columns], with_total=with_total)
    return Page([incident_view(i) for i in rows], next_cursor, total)


def get_incident(session: Session, incident_id: int, *, alert_limit: int = 200) -> IncidentDetail:
    """One incident with its alerts (the newest ``alert_limit``)."""
    if alert_limit < 0:
        raise InputError("alert_limit cannot be negative")
    incident = load_incident(session, incident_id, lock=False)
    alerts: list[AlertView] = []
    if alert_limit:
        alerts = list_alerts(session, AlertFilter(incident_id=incident_id),
                             limit=min(alert_limit, 1000)).items
    return IncidentDetail(incident_view(incident), alerts)


def dedup_keys(session: Session, ids: Sequence[int]) -> set[str]:
    """The dedup keys of the alerts ``ids`` (for a source that needs to know which of its
    inputs a :func:`record` call created or grew)."""
    keys: set[str] = set()
    for start in range(0, len(ids), 500):
        keys.update(session.execute(select(Alert.dedup_key).where(
            Alert.id.in_(ids[start:start + 500]))).scalars())
    return keys
