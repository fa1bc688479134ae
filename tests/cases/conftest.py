"""People and alerts for the cases tests: an analyst (security), a responder (operations), an
auditor, and a way to record alerts through the alerts service."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import pytest

from vigil.alerts import AlertInput, Source
from vigil.alerts import service as alerts
from vigil.audit.service import AuditEntry, listing
from vigil.core.auth import SYSTEM, Principal
from vigil.core.db import StateDB
from vigil.core.outbox import DomainEvent, read_after
from vigil.core.timeutil import utcnow
from vigil.people import service as people

PASSWORD = "correct horse battery staple 42"


@dataclass(frozen=True)
class Crew:
    """The people of a test: principals and user names."""

    alice: Principal
    """Analyst, security team."""
    oscar: Principal
    """Responder, operations team."""
    audrey: Principal
    """Auditor (reads only)."""


@pytest.fixture
def crew(state_db: StateDB) -> Crew:
    made = [people.add_user(state_db, SYSTEM, name, PASSWORD, role=role, team=team)
            for name, role, team in (("alice", "analyst", "security"),
                                     ("oscar", "responder", "operations"),
                                     ("audrey", "auditor", None))]
    return Crew(*(people.principal_of(info) for info in made))


def record_alerts(db: StateDB, count: int = 2, *, level: str = "high",
                  host: str = "web-1") -> list[int]:
    """Record ``count`` alerts (distinct dedup keys); their ids."""
    now = utcnow()
    items = [AlertInput(source=Source.SIGMA, rule_id=f"rule-{i}", rule_title=f"Rule {i}",
                        dedup_key=f"rule-{i}|{host}|{now.timestamp()}",
                        first_seen=now - timedelta(minutes=30 - i), last_seen=now, level=level,
                        host=host, event_ids=(f"evt-{i}",), count=1) for i in range(count)]
    with db.session() as session:
        result = alerts.record(session, items)
    return list(result.created)


def events(db: StateDB, after: int = 0) -> list[DomainEvent]:
    with db.session() as session:
        return read_after(session, after, limit=10_000)


def last_event_id(db: StateDB) -> int:
    found = events(db)
    return found[-1].id if found else 0


def audits(db: StateDB, object_type: str, object_id: int | str | None = None) -> list[AuditEntry]:
    return listing(db, object_type=object_type,
                   object_id=None if object_id is None else str(object_id), limit=1000)


def payload(event: DomainEvent) -> dict[str, Any]:
    return json.loads(json.dumps(dict(event.details), default=str))


def at(hours: float = 0, base: datetime | None = None) -> datetime:
    return (base or utcnow()) + timedelta(hours=hours)


def topics(found: Sequence[DomainEvent]) -> list[str]:
    return [e.topic.value for e in found]
