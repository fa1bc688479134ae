"""``GET /api/v1/metrics``: the SOC metrics (MTTD, MTTA, MTTQ, MTTC, MTTR, FP rate per rule,
workload) of a period."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel

from vigil.api.deps import VigilDep, requires
from vigil.cases import metrics
from vigil.core.auth import Permission, Principal
from vigil.core.timeutil import utcnow

router = APIRouter(prefix="/api/v1", tags=["metrics"])
MetricsReader = Annotated[Principal, requires(Permission.METRICS_READ)]


class DurationOut(BaseModel):
    name: str
    subject: str
    severity: str
    count: int
    mean_seconds: float | None
    median_seconds: float | None
    p90_seconds: float | None


class RuleOut(BaseModel):
    rule_id: str
    rule_title: str | None
    alerts: int
    closed: int
    false_positives: int
    false_positive_rate: float | None


class PeriodOut(BaseModel):
    start: datetime
    alerts: int
    cases: int
    mtta_alerts_median_seconds: float | None
    mttr_cases_median_seconds: float | None


class PersonOut(BaseModel):
    username: str
    team: str | None
    open_cases: int
    open_tasks: int
    open_alerts: int


class TeamOut(BaseModel):
    team: str
    open_cases: int
    open_tasks: int


class WorkloadOut(BaseModel):
    people: list[PersonOut]
    teams: list[TeamOut]
    unassigned_open_cases: int
    unowned_open_tasks: int


class MetricsOut(BaseModel):
    since: datetime
    until: datetime
    alerts: int
    alerts_by_severity: dict[str, int]
    escalated_alerts: int
    escalation_rate: float | None
    incidents: int
    alerts_per_incident: float | None
    cases: int
    durations: list[DurationOut]
    rules: list[RuleOut]
    periods: list[PeriodOut]
    workload: WorkloadOut


def to_out(report: metrics.MetricsReport) -> MetricsOut:
    durations = [DurationOut(name=d.name, subject=d.subject, severity=d.severity,
                             count=d.stats.count, mean_seconds=d.stats.mean,
                             median_seconds=d.stats.median, p90_seconds=d.stats.p90)
                 for d in report.durations]
    periods = [PeriodOut(start=p.start, alerts=p.alerts, cases=p.cases,
                         mtta_alerts_median_seconds=p.mtta_alerts_median,
                         mttr_cases_median_seconds=p.mttr_cases_median) for p in report.periods]
    load = report.workload
    workload = WorkloadOut(
        people=[PersonOut.model_validate(p, from_attributes=True) for p in load.people],
        teams=[TeamOut.model_validate(t, from_attributes=True) for t in load.teams],
        unassigned_open_cases=load.unassigned_open_cases, unowned_open_tasks=load.unowned_open_tasks)
    return MetricsOut(
        since=report.since, until=report.until, alerts=report.alerts,
        alerts_by_severity=report.alerts_by_severity, escalated_alerts=report.escalated_alerts,
        escalation_rate=report.escalation_rate, incidents=report.incidents,
        alerts_per_incident=report.alerts_per_incident, cases=report.cases, durations=durations,
        rules=[RuleOut.model_validate(r, from_attributes=True) for r in report.rules],
        periods=periods, workload=workload)


@router.get("/metrics", response_model=MetricsOut)
def get_metrics(vigil: VigilDep, _who: MetricsReader,
                since: datetime | None = None, until: datetime | None = None,
                period: metrics.Period | None = None,
                rules: Annotated[int, Query(ge=0, le=500)] = 20) -> MetricsOut:
    """SOC metrics of the alerts and cases created in ``[since, until)`` (default: the last 30
    days), durations as count, mean, median and p90 in seconds, per severity; optionally per
    day, week or month."""
    end = until or utcnow()
    start = since or end - timedelta(days=30)
    return to_out(metrics.report(vigil.db, start, end, period=period, rule_limit=rules))
