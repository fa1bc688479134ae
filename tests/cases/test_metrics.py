"""SOC metrics: durations (median, p90) per severity, FP rate per rule, workload."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from sqlalchemy import text

from vigil.alerts import service as alerts
from vigil.alerts.types import AlertInput, Source
from vigil.cases import metrics, service
from vigil.cases.enums import Phase, Severity, Stage
from vigil.cases.metrics_stats import describe, percentile
from vigil.cases.schemas import CaseCreate, CaseUpdate
from vigil.core.auth import SYSTEM
from vigil.core.db import StateDB
from vigil.core.timeutil import utcnow


def test_percentiles_interpolate() -> None:
    assert percentile([1.0], 0.9) == 1.0
    assert percentile([0.0, 10.0], 0.5) == 5.0
    stats = describe([float(v) for v in range(1, 11)])
    assert stats.count == 10 and stats.mean == 5.5 and stats.median == 5.5
    assert stats.p90 == pytest.approx(9.1)
    assert describe([]).median is None
    assert describe([-5.0]).median == 0.0


def _alert(db: StateDB, number: int, rule: str, level: str, seen: datetime) -> int:
    item = AlertInput(source=Source.SIGMA, rule_id=rule, rule_title=f"Rule {rule}",
                      dedup_key=f"{rule}|{number}", first_seen=seen, last_seen=seen, level=level,
                      host=f"host-{number}", event_ids=(f"e{number}",))
    with db.session() as session:
        alerts.record(session, [item])
    with db.session() as session:
        page = alerts.list_alerts(session, limit=1000)
    return next(a.id for a in page.items if a.host == f"host-{number}")


def _set(db: StateDB, table: str, row_id: int, **moments: datetime) -> None:
    assignments = ", ".join(f"{name} = :{name}" for name in moments)
    with db.engine.begin() as connection:
        connection.execute(text(f"UPDATE {table} SET {assignments} WHERE id = :id"),
                           {"id": row_id, **moments})


def test_alert_durations_fp_rate_and_incidents(state_db: StateDB) -> None:
    now = utcnow()
    created = now - timedelta(hours=2)
    ids = []
    for number in range(4):
        alert_id = _alert(state_db, number, "r-high" if number < 2 else "r-low",
                          "high" if number < 2 else "low", created - timedelta(minutes=10))
        _set(state_db, "alerts", alert_id, created_at=created)
        ids.append(alert_id)
    for offset, alert_id in enumerate(ids):
        with state_db.session() as session:
            alerts.acknowledge(session, alert_id, SYSTEM)
        _set(state_db, "alerts", alert_id, acknowledged_at=created + timedelta(minutes=offset + 1))
    with state_db.session() as session:
        alerts.close(session, ids[2], SYSTEM, "false_positive_logic")
        alerts.close(session, ids[3], SYSTEM, "true_positive_without_impact")
    report = metrics.report(state_db, now - timedelta(days=1), now + timedelta(minutes=1))
    assert report.alerts == 4 and report.alerts_by_severity == {"high": 2, "low": 2}
    assert report.incidents == 4 and report.alerts_per_incident == 1.0
    by_name = {(d.name, d.subject, d.severity): d.stats for d in report.durations}
    assert by_name[("mttd", "alerts", "all")].median == 600
    assert by_name[("mtta", "alerts", "all")].median == 150
    assert by_name[("mtta", "alerts", "high")].median == 90
    assert by_name[("mtta", "alerts", "low")].p90 == pytest.approx(234)
    low = next(r for r in report.rules if r.rule_id == "r-low")
    assert (low.alerts, low.closed, low.false_positives, low.false_positive_rate) == (2, 2, 1, 0.5)
    assert report.rules[0].rule_id == "r-low"


def test_case_durations_and_workload(state_db: StateDB) -> None:
    start = utcnow() - timedelta(days=2)
    case_id = service.create_case(state_db, CaseCreate(title="Ransomware on FS01",
                                                       severity=Severity.HIGH), SYSTEM, now=start).id
    service.update_case(state_db, case_id, CaseUpdate(stage=Stage.IN_PROGRESS), SYSTEM,
                        now=start + timedelta(minutes=30))
    service.update_case(state_db, case_id, CaseUpdate(phase=Phase.CONTAINMENT), SYSTEM,
                        now=start + timedelta(hours=1))
    service.update_case(state_db, case_id, CaseUpdate(phase=Phase.ERADICATION), SYSTEM,
                        now=start + timedelta(hours=4))
    service.update_case(state_db, case_id, CaseUpdate(stage=Stage.RESOLVED), SYSTEM,
                        now=start + timedelta(hours=10))
    report = metrics.report(state_db, start - timedelta(hours=1), utcnow(),
                            period=metrics.Period.DAY)
    by_name = {(d.name, d.subject, d.severity): d.stats for d in report.durations}
    assert report.cases == 1
    assert by_name[("mtta", "cases", "high")].median == 1800
    assert by_name[("mttc", "cases", "all")].median == 4 * 3600
    assert by_name[("mttr_from_open", "cases", "all")].median == 10 * 3600
    assert by_name[("mttr_from_ack", "cases", "all")].median == 9.5 * 3600
    assert [p.cases for p in report.periods] == [1]
    assert report.workload.unassigned_open_cases == 0


def test_empty_period_is_an_input_error(state_db: StateDB) -> None:
    now = utcnow()
    with pytest.raises(Exception, match="empty"):
        metrics.report(state_db, now, now)


def test_open_alerts_per_assignee(state_db: StateDB) -> None:
    from vigil.people import service as people

    now = utcnow()
    owner = people.add_user(state_db, SYSTEM, "carla", "a long enough password", role="analyst",
                            team="security")
    ids = [_alert(state_db, 100 + n, "r-assigned", "medium", now) for n in range(3)]
    with state_db.session() as session:
        for alert_id in ids:
            alerts.assign(session, alert_id, owner.id, SYSTEM)
        alerts.close(session, ids[0], SYSTEM, "duplicate")
    load = {p.username: p.open_alerts for p in metrics.report(
        state_db, now - timedelta(days=1), now + timedelta(minutes=1)).workload.people}
    assert load == {"carla": 2}
