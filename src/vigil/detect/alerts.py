"""Detections and correlation hits handed to the alerts context as source-neutral inputs.

Detections of one rule on one host within ``suppress_seconds`` share one dedup key, so they
share one alert: its count grows, ``last_seen`` moves, and up to 100 event ids are kept.
Every alert carries the rule's author and references (the Detection Rule License requires
showing the author). The user and source IP of an alert are read from the event fields the
rule looked at (``TargetUserName``, ``User``, ``IpAddress``, ``SourceIp``...), when it has
them; a correlation's host, user and source IP from its group-by values.

A correlation hit is an alert of its own, keyed by the correlation, the group-by values
(its burst key) and the time of the hit's first event, so that evaluating the same events
again (streaming evaluates overlapping look-back windows) updates that alert instead of
adding one. A hit that overlaps in time an alert of the same correlation and group is the
same burst seen through a window that starts later: it is merged into that alert too (the
evaluation never reports two hits of one group that share an occurrence).

Writing, deduplication and grouping into incidents are the alerts context's
(:func:`vigil.alerts.service.record`).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from vigil.alerts import AlertFilter, AlertInput, AlertView, GroupingPolicy, Source, service
from vigil.core.db import StateDB
from vigil.core.timeutil import to_utc
from vigil.detect.correlation import CorrelationHit
from vigil.detect.engine import Detection
from vigil.detect.types import RuleMeta

__all__ = ["AlertView", "correlation_input", "correlation_keys", "dedup_key", "detection_input",
           "entities", "listing", "record", "record_correlations"]

_KEY_LENGTH = 512
_HOST_FIELDS = ("computer", "computername", "hostname", "host.name", "host", "workstationname")
_USER_FIELDS = ("targetusername", "user", "subjectusername", "username", "user.name",
                "accountname", "useridentity.username", "targetuser", "user_name")
_IP_FIELDS = ("ipaddress", "sourceip", "src_ip", "source.ip", "sourceaddress", "clientip",
              "c-ip", "sourceipaddress", "src", "client.ip", "id.orig_h")
_NO_VALUE = frozenset({"", "-", "none", "null", "n/a"})


def _first(fields: Mapping[str, str], names: Sequence[str]) -> str | None:
    for name in names:
        value = fields.get(name)
        if value is not None and value.strip().lower() not in _NO_VALUE:
            return value.strip()
    return None


def entities(fields: Mapping[str, Any]) -> tuple[str | None, str | None, str | None]:
    """The host, user and source IP named by event fields (field names in any case)."""
    lowered = {str(k).lower(): str(v) for k, v in fields.items()
               if v is not None and not isinstance(v, list | dict)}
    return _first(lowered, _HOST_FIELDS), _first(lowered, _USER_FIELDS), _first(lowered, _IP_FIELDS)


def dedup_key(detection: Detection, window: int) -> str:
    """Rule, host and time window: detections sharing it share an alert."""
    bucket = int(to_utc(detection.ts).timestamp()) // window if window else detection.event_id
    return f"{detection.rule.id}|{detection.host or '-'}|{bucket}"


def _rule_fields(rule: RuleMeta) -> dict[str, Any]:
    return {"rule_id": rule.id, "rule_title": rule.title, "level": rule.level,
            "rule_author": rule.author, "rule_references": tuple(rule.references),
            "tags": tuple(rule.tags)}


def detection_input(key: str, group: Sequence[Detection]) -> AlertInput:
    """The alert input of detections that share ``key`` (one rule, host and window)."""
    first = group[0]
    user = next((u for d in group if (u := entities(d.fields)[1])), None)
    src_ip = next((i for d in group if (i := entities(d.fields)[2])), None)
    ids = tuple(dict.fromkeys(d.event_id for d in group))
    times = [to_utc(d.ts) for d in group]
    return AlertInput(source=Source.SIGMA, dedup_key=key, first_seen=min(times),
                      last_seen=max(times), host=first.host, user=user, src_ip=src_ip,
                      event_ids=ids, count=len(ids), **_rule_fields(first.rule))


def record(db: StateDB, detections: Iterable[Detection], window: int = 3600,
           policy: GroupingPolicy | None = None) -> int:
    """Write detections as alerts; returns how many alerts were created."""
    grouped: dict[str, list[Detection]] = {}
    for detection in detections:
        grouped.setdefault(dedup_key(detection, window), []).append(detection)
    if not grouped:
        return 0
    inputs = [detection_input(key, group) for key, group in grouped.items()]
    with db.session() as session:
        result = service.record(session, inputs, policy or service.DEFAULT_POLICY)
    return len(result.created)


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


def correlation_input(hit: CorrelationHit) -> AlertInput:
    """The alert input of one correlation hit."""
    group, key = correlation_keys(hit)
    host, user, src_ip = entities(hit.group)
    return AlertInput(source=Source.CORRELATION, dedup_key=key, burst_key=group,
                      first_seen=to_utc(hit.first), last_seen=to_utc(hit.last), host=host,
                      user=user, src_ip=src_ip, event_ids=tuple(hit.event_ids), count=hit.count,
                      **_rule_fields(hit.rule))


def record_correlations(db: StateDB, hits: Iterable[CorrelationHit],
                        policy: GroupingPolicy | None = None) -> int:
    """Write correlation hits as alerts (see the module docstring); returns how many alerts
    were created."""
    inputs = [correlation_input(hit) for hit in hits]
    if not inputs:
        return 0
    with db.session() as session:
        result = service.record(session, inputs, policy or service.DEFAULT_POLICY)
    return len(result.created)


def listing(db: StateDB, limit: int = 100, rule_id: str | None = None) -> list[AlertView]:
    """The most recent alerts first."""
    with db.session() as session:
        return service.list_alerts(session, AlertFilter(rule_id=rule_id), limit=limit).items
