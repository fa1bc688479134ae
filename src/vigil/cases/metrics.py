"""SOC metrics: how fast alerts are detected, acknowledged, contained and resolved, how many
are false positives, and who carries the open work.

Definitions (all durations in seconds, reported as count, mean, median and p90; items are
those *created* in the period ``[since, until)``):

- **MTTD** time to detect: alert created - its first event.
- **MTTA** time to acknowledge: alert first acknowledged - alert created; for cases, the
  first stage past ``new`` - case created.
- **MTTQ** time to qualify: alert closed or escalated to a case (whichever first) - created.
- **MTTC** time to contain: case reached eradication, recovery or post-incident - created.
- **MTTR** time to resolve, two named variants: ``mttr_from_open`` (case resolved -
  created, as Splunk counts it) and ``mttr_from_ack`` (case resolved - acknowledged, as
  TheHive's TTR counts work time).

Also: alerts per severity, escalation rate (alerts escalated to a case ÷ alerts), alerts per
incident, false-positive rate per rule (false-positive dispositions ÷ closed alerts with a
disposition, the feedback detection engineers tune with), and the open workload per person
and per team (open cases assigned, open tasks owned, open alerts assigned).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import TypeVar

from vigil.alerts.types import FALSE_POSITIVES, AlertTiming
from vigil.cases.metrics_facts import CaseFact, Workload, alert_facts, case_facts, workload
from vigil.cases.metrics_stats import DurationStats, describe
from vigil.core.db import StateDB
from vigil.core.errors import InputError
from vigil.core.timeutil import to_utc
from vigil.detect.catalog import titles

T = TypeVar("T")
SEVERITIES = ("informational", "low", "medium", "high", "critical")


class Period(StrEnum):
    DAY = "day"
    WEEK = "week"
    MONTH = "month"


@dataclass(frozen=True, slots=True)
class DurationMetric:
    name: str
    """mttd, mtta, mttq (alerts); mtta, mttc, mttr_from_open, mttr_from_ack (cases)."""
    subject: str
    """``alerts`` or ``cases``."""
    severity: str
    """A severity, or ``all``."""
    stats: DurationStats


@dataclass(frozen=True, slots=True)
class RuleQuality:
    rule_id: str
    rule_title: str | None
    alerts: int
    closed: int
    false_positives: int
    false_positive_rate: float | None


@dataclass(frozen=True, slots=True)
class PeriodSummary:
    start: datetime
    alerts: int
    cases: int
    mtta_alerts_median: float | None
    mttr_cases_median: float | None


@dataclass(frozen=True, slots=True)
class MetricsReport:
    since: datetime
    until: datetime
    alerts: int
    alerts_by_severity: dict[str, int]
    escalated_alerts: int
    escalation_rate: float | None
    incidents: int
    alerts_per_incident: float | None
    cases: int
    durations: list[DurationMetric]
    rules: list[RuleQuality]
    periods: list[PeriodSummary]
    workload: Workload


def _seconds(start: datetime | None, end: datetime | None) -> float | None:
    if start is None or end is None:
        return None
    return (to_utc(end) - to_utc(start)).total_seconds()


def _grouped(items: Sequence[T], severity: Callable[[T], str], name: str, subject: str,
             measure: Callable[[T], float | None]) -> list[DurationMetric]:
    """One metric over every item, then per severity that has items."""
    def stats(subset: Iterable[T]) -> DurationStats:
        return describe([v for v in (measure(i) for i in subset) if v is not None])

    result = [DurationMetric(name, subject, "all", stats(items))]
    for level in SEVERITIES:
        subset = [i for i in items if severity(i) == level]
        if subset:
            result.append(DurationMetric(name, subject, level, stats(subset)))
    return result


def _qualified(alert: AlertTiming) -> datetime | None:
    moments = [m for m in (alert.closed_at, alert.escalated_at) if m is not None]
    return min(moments, key=to_utc) if moments else None


def _alert_durations(alerts: Sequence[AlertTiming]) -> list[DurationMetric]:
    def sev(a: AlertTiming) -> str:
        return a.severity

    return [*_grouped(alerts, sev, "mttd", "alerts", lambda a: _seconds(a.event_time, a.created_at)),
            *_grouped(alerts, sev, "mtta", "alerts",
                      lambda a: _seconds(a.created_at, a.acknowledged_at)),
            *_grouped(alerts, sev, "mttq", "alerts", lambda a: _seconds(a.created_at, _qualified(a)))]


def _case_durations(cases: Sequence[CaseFact]) -> list[DurationMetric]:
    def sev(c: CaseFact) -> str:
        return c.severity

    return [*_grouped(cases, sev, "mtta", "cases", lambda c: _seconds(c.created_at, c.acknowledged_at)),
            *_grouped(cases, sev, "mttc", "cases", lambda c: _seconds(c.created_at, c.contained_at)),
            *_grouped(cases, sev, "mttr_from_open", "cases",
                      lambda c: _seconds(c.created_at, c.resolved_at)),
            *_grouped(cases, sev, "mttr_from_ack", "cases",
                      lambda c: _seconds(c.acknowledged_at, c.resolved_at))]


def _rules(db: StateDB, alerts: Sequence[AlertTiming], limit: int) -> list[RuleQuality]:
    total = Counter(a.rule_id for a in alerts)
    closed = Counter(a.rule_id for a in alerts if a.disposition is not None)
    false = Counter(a.rule_id for a in alerts if a.disposition in FALSE_POSITIVES)
    ranked = sorted(total, key=lambda r: (-(false[r] / closed[r] if closed[r] else -1), -total[r], r))
    chosen = ranked[:limit]
    names = titles(db, chosen) if chosen else {}
    return [RuleQuality(r, names.get(r), total[r], closed[r], false[r],
                        false[r] / closed[r] if closed[r] else None) for r in chosen]


def period_start(moment: datetime, period: Period) -> datetime:
    """The start (UTC midnight) of the day, ISO week or month holding ``moment``."""
    day = to_utc(moment).replace(hour=0, minute=0, second=0, microsecond=0)
    if period is Period.WEEK:
        return day - timedelta(days=day.weekday())
    if period is Period.MONTH:
        return day.replace(day=1)
    return day


def _periods(alerts: Sequence[AlertTiming], cases: Sequence[CaseFact],
             period: Period | None) -> list[PeriodSummary]:
    if period is None:
        return []
    buckets: dict[datetime, tuple[list[AlertTiming], list[CaseFact]]] = {}
    for alert in alerts:
        buckets.setdefault(period_start(alert.created_at, period), ([], []))[0].append(alert)
    for case in cases:
        buckets.setdefault(period_start(case.created_at, period), ([], []))[1].append(case)
    summaries = []
    for start in sorted(buckets):
        in_alerts, in_cases = buckets[start]
        acked = describe([s for s in (_seconds(a.created_at, a.acknowledged_at) for a in in_alerts)
                          if s is not None])
        resolved = describe([s for s in (_seconds(c.created_at, c.resolved_at) for c in in_cases)
                             if s is not None])
        summaries.append(PeriodSummary(start, len(in_alerts), len(in_cases), acked.median,
                                       resolved.median))
    return summaries


def report(db: StateDB, since: datetime, until: datetime, *, period: Period | None = None,
           rule_limit: int = 20) -> MetricsReport:
    """The SOC metrics of the alerts and cases created in ``[since, until)``."""
    if to_utc(until) <= to_utc(since):
        raise InputError("the period is empty: 'until' must be after 'since'")
    alerts, incidents = alert_facts(db, since, until)
    cases = case_facts(db, since, until)
    escalated = sum(1 for a in alerts if a.case_id is not None)
    return MetricsReport(
        since=to_utc(since), until=to_utc(until), alerts=len(alerts),
        alerts_by_severity=dict(Counter(a.severity for a in alerts)),
        escalated_alerts=escalated, escalation_rate=escalated / len(alerts) if alerts else None,
        incidents=incidents, alerts_per_incident=len(alerts) / incidents if incidents else None,
        cases=len(cases), durations=[*_alert_durations(alerts), *_case_durations(cases)],
        rules=_rules(db, alerts, rule_limit), periods=_periods(alerts, cases, period),
        workload=workload(db))
