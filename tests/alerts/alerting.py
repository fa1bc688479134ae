"""What the alerts tests share: inputs, principals and one-call helpers over a state database."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from vigil.alerts import AlertInput, AlertSort, AlertView, RecordResult, Source, service
from vigil.alerts.grouping import DEFAULT_POLICY, GroupingPolicy
from vigil.audit import service as audit
from vigil.core import outbox
from vigil.core.auth import PrincipalKind, Role, principal_for
from vigil.core.db import StateDB

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
ALICE = principal_for(PrincipalKind.USER, 7, "alice", Role.ANALYST)
BOB = principal_for(PrincipalKind.USER, 8, "bob", Role.RESPONDER)


def make(rule: str = "rule-1", key: str | None = None, *, at: datetime = T0, minutes: int = 0,
         host: str | None = "pc1", user: str | None = None, src_ip: str | None = None,
         events: Sequence[str] = ("e1",), level: str = "medium", source: Source = Source.SIGMA,
         **extra: Any) -> AlertInput:
    first = at
    last = at + timedelta(minutes=minutes)
    return AlertInput(source=source, rule_id=rule, rule_title=f"Title of {rule}",
                      dedup_key=key or f"{rule}|{host}|{user}|{src_ip}|{at.isoformat()}",
                      first_seen=first, last_seen=last, level=level, rule_author="Jane Doe",
                      rule_references=("https://example.org/r",), tags=("attack.t1059",),
                      host=host, user=user, src_ip=src_ip, event_ids=tuple(events),
                      count=len(events), **extra)


def record(db: StateDB, *inputs: AlertInput, policy: GroupingPolicy = DEFAULT_POLICY) -> RecordResult:
    with db.session() as session:
        return service.record(session, list(inputs), policy)


def alert(db: StateDB, alert_id: int) -> AlertView:
    with db.session() as session:
        return service.get_alert(session, alert_id)


def every_alert(db: StateDB) -> list[AlertView]:
    with db.session() as session:
        return service.list_alerts(session, limit=1000, descending=False, sort=AlertSort.ID).items


def topics(db: StateDB) -> list[tuple[str, str]]:
    with db.session() as session:
        return [(e.topic.value, e.object_id) for e in outbox.read_after(session, 0)]


def audits(db: StateDB, object_type: str = "alert") -> list[tuple[str, str, str]]:
    """(actor, action, object id) of the audit records on ``object_type``, oldest first."""
    entries = audit.listing(db, object_type=object_type, limit=10_000)
    return [(e.actor, e.action, e.object_id) for e in reversed(entries)]
