"""Alerts: detections written to the state database, suppressed per rule, host and window.

Detections of one rule on one host within ``suppress_seconds`` share one alert: its count
grows, ``last_seen`` moves, and up to 100 event ids are kept. Every alert carries the rule's
author and references (the Detection Rule License requires showing the author).

A correlation hit is an alert of its own, keyed by the correlation, the group-by values
(kept in ``group_key``) and the time of the hit's first event, so that evaluating the same
events again (streaming evaluates overlapping look-back windows) updates that alert instead
of adding one. A hit that overlaps in time an alert of the same correlation and group is the
same burst seen through a window that starts later: it is merged into that alert too (the
evaluation never reports two hits of one group that share an occurrence).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from vigil.core.db import StateDB
from vigil.core.timeutil import to_utc, utcnow
from vigil.detect.correlation import CorrelationHit
from vigil.detect.engine import Detection
from vigil.detect.models import Alert

MAX_EVENT_IDS = 100
_KEY_LENGTH = 512


@dataclass(frozen=True, slots=True)
class AlertView:
    id: int
    rule_id: str
    rule_title: str
    level: str
    rule_author: str | None
    host: str | None
    first_seen: datetime
    last_seen: datetime
    count: int
    event_ids: list[str]
    status: str


def dedup_key(detection: Detection, window: int) -> str:
    """Rule, host and time window: detections sharing it share an alert."""
    bucket = int(to_utc(detection.ts).timestamp()) // window if window else detection.event_id
    return f"{detection.rule.id}|{detection.host or '-'}|{bucket}"


def _new_alert(detection: Detection, key: str) -> Alert:
    rule = detection.rule
    return Alert(rule_id=rule.id, rule_title=rule.title, level=rule.level,
                 rule_author=rule.author, rule_references=json.dumps(list(rule.references)),
                 tags=json.dumps(list(rule.tags)), host=detection.host,
                 first_seen=detection.ts, last_seen=detection.ts, count=0, event_ids="[]",
                 group_key=None, dedup_key=key, status="new", created_at=utcnow())


def record(db: StateDB, detections: Iterable[Detection], window: int = 3600) -> int:
    """Write detections as alerts; returns how many alerts were created."""
    grouped: dict[str, list[Detection]] = {}
    for detection in detections:
        grouped.setdefault(dedup_key(detection, window), []).append(detection)
    if not grouped:
        return 0
    created = 0
    with db.session() as session:
        existing = {a.dedup_key: a for a in session.scalars(
            select(Alert).where(Alert.dedup_key.in_(list(grouped)))).all()}
        for key, group in grouped.items():
            alert = existing.get(key)
            if alert is None:
                alert = _new_alert(group[0], key)
                session.add(alert)
                created += 1
            ids: list[str] = json.loads(alert.event_ids)
            fresh = [d for d in group if d.event_id not in ids]
            alert.count += len(fresh)
            alert.event_ids = json.dumps((ids + [d.event_id for d in fresh])[:MAX_EVENT_IDS])
            alert.first_seen = min([to_utc(alert.first_seen), *(to_utc(d.ts) for d in group)])
            alert.last_seen = max([to_utc(alert.last_seen), *(to_utc(d.ts) for d in group)])
    return created


def _fit(text: str, limit: int = _KEY_LENGTH) -> str:
    """``text``, or its digest when too long for a key column."""
    if len(text) <= limit:
        return text
    return "sha256:" + hashlib.sha256(text.encode("utf-8")).hexdigest()


def correlation_keys(hit: CorrelationHit) -> tuple[str, str]:
    """The group key (group-by values as JSON) and the dedup key of a correlation hit."""
    group = _fit(json.dumps(hit.group, sort_keys=True, ensure_ascii=False, default=str))
    first = to_utc(hit.first).isoformat()
    key = f"{hit.rule.id}|{first}|{group}"
    if len(key) > _KEY_LENGTH:
        key = f"{hit.rule.id}|{first}|{_fit(group, 0)}"
    return group, key


def _burst(session: Session, hit: CorrelationHit, group: str, key: str) -> Alert | None:
    """The alert of the same hit (same key), else one of the same group it overlaps."""
    first, last = to_utc(hit.first), to_utc(hit.last)
    candidates = list(session.scalars(
        select(Alert).where(Alert.rule_id == hit.rule.id, Alert.group_key == group,
                            or_(Alert.dedup_key == key, Alert.last_seen >= first))
        .order_by(Alert.id)))
    same = [a for a in candidates if a.dedup_key == key]
    overlapping = [a for a in candidates
                   if to_utc(a.first_seen) <= last and to_utc(a.last_seen) >= first]
    found = same or overlapping
    return found[0] if found else None


def _correlation_alert(hit: CorrelationHit, group: str, key: str) -> Alert:
    rule = hit.rule
    return Alert(rule_id=rule.id, rule_title=rule.title, level=rule.level,
                 rule_author=rule.author, rule_references=json.dumps(list(rule.references)),
                 tags=json.dumps(list(rule.tags)), host=None, first_seen=to_utc(hit.first),
                 last_seen=to_utc(hit.last), count=0, event_ids="[]", group_key=group,
                 dedup_key=key, status="new", created_at=utcnow())


def record_correlations(db: StateDB, hits: Iterable[CorrelationHit]) -> int:
    """Write correlation hits as alerts (see the module docstring); returns how many alerts
    were created."""
    created = 0
    with db.session() as session:
        for hit in hits:
            group, key = correlation_keys(hit)
            alert = _burst(session, hit, group, key)
            if alert is None:
                alert = _correlation_alert(hit, group, key)
                session.add(alert)
                session.flush()
                created += 1
            ids: list[str] = json.loads(alert.event_ids)
            known = set(ids)
            fresh = [e for e in hit.event_ids if e not in known]
            alert.count = max(alert.count + len(fresh), hit.count)
            alert.event_ids = json.dumps((ids + fresh)[:MAX_EVENT_IDS])
            alert.first_seen = min(to_utc(alert.first_seen), to_utc(hit.first))
            alert.last_seen = max(to_utc(alert.last_seen), to_utc(hit.last))
    return created


def listing(db: StateDB, limit: int = 100, rule_id: str | None = None) -> list[AlertView]:
    """The most recent alerts first."""
    with db.session() as session:
        query = select(Alert).order_by(Alert.last_seen.desc()).limit(limit)
        if rule_id:
            query = query.where(Alert.rule_id == rule_id)
        return [AlertView(a.id, a.rule_id, a.rule_title, a.level, a.rule_author, a.host,
                          to_utc(a.first_seen), to_utc(a.last_seen), a.count,
                          json.loads(a.event_ids), a.status)
                for a in session.scalars(query).all()]
