"""Feedback from the analysts: an intel alert closed as a false positive becomes a
false-positive sighting of its indicator (MISP sighting type 1), which halves the indicator's
score (see :mod:`vigil.intel.decay`). Each alert counts once, however often this runs.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from vigil.alerts import AlertFilter, Source, Status, service
from vigil.alerts.types import FALSE_POSITIVES
from vigil.core.db import StateDB
from vigil.core.timeutil import utcnow
from vigil.intel.models import Indicator, Sighting
from vigil.intel.types import SightingKind
from vigil.intel.writing import bump_revision

LOOK_BACK = timedelta(days=90)
"""Alerts whose last event is older than this are not looked at again."""


def record_false_positives(db: StateDB) -> int:
    """Record a false-positive sighting for every intel alert closed as a false positive that
    has none yet; returns how many were recorded."""
    wanted = AlertFilter(status=(Status.CLOSED,), source=(Source.INTEL,),
                         disposition=tuple(FALSE_POSITIVES), since=utcnow() - LOOK_BACK)
    recorded = 0
    with db.session() as session:
        cursor: str | None = None
        while True:
            page = service.list_alerts(session, wanted, limit=500, cursor=cursor)
            for alert in page.items:
                recorded += _record(session, alert.id, alert.rule_id.removeprefix("intel:"))
            cursor = page.next_cursor
            if cursor is None:
                break
        if recorded:
            bump_revision(session)
    return recorded


def _record(session: object, alert_id: int, indicator_id: str) -> int:
    from sqlalchemy.orm import Session

    assert isinstance(session, Session)
    seen = session.execute(select(Sighting.id).where(
        Sighting.alert_id == alert_id, Sighting.kind == SightingKind.FALSE_POSITIVE.value)).first()
    row = session.get(Indicator, indicator_id)
    if seen is not None or row is None:
        return 0
    session.add(Sighting(indicator_id=row.id, kind=SightingKind.FALSE_POSITIVE.value, at=utcnow(),
                         count=1, actor="system:alert-disposition", alert_id=alert_id,
                         note=f"alert {alert_id} closed as a false positive"))
    row.sightings_fp += 1
    row.updated_at = utcnow()
    return 1
