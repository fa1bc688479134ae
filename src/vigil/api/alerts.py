"""``GET /api/v1/alerts``: detections as alerts (read scope)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel

from vigil.api.deps import AlertReader, VigilDep
from vigil.detect import alerts

router = APIRouter(prefix="/api/v1", tags=["alerts"])


class AlertOut(BaseModel):
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


@router.get("/alerts", response_model=list[AlertOut])
def list_alerts(vigil: VigilDep, _caller: AlertReader,
                limit: Annotated[int, Query(ge=1, le=1000)] = 100,
                rule_id: str | None = None) -> list[AlertOut]:
    """The most recent alerts first; each shows the rule's author (Detection Rule License)."""
    return [AlertOut.model_validate(a, from_attributes=True)
            for a in alerts.listing(vigil.db, limit, rule_id)]
