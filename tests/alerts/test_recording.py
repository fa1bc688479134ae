"""Recording alerts on both databases: dedup, closed alerts, bursts, grouping into incidents
(windows, entity kinds, policies), audit records and outbox events of new alerts only."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from vigil.alerts import EntityKind, IncidentView, Severity, Source, service
from vigil.alerts.grouping import GroupingPolicy
from vigil.core.db import StateDB
from vigil.core.errors import InputError

from .alerting import ALICE, T0, alert, audits, every_alert, make, record, topics


def _incident(db: StateDB, incident_id: int | None) -> IncidentView:
    assert incident_id is not None
    with db.session() as session:
        return service.get_incident(session, incident_id).incident


def test_same_dedup_key_folds_into_one_alert(state_db: StateDB) -> None:
    first = record(state_db, make(key="k", events=("e1", "e2")))
    assert len(first.created) == 1 and first.updated == ()
    again = record(state_db, make(key="k", events=("e2", "e3"), at=T0 + timedelta(minutes=5)))
    assert again.created == () and again.updated == first.created
    [only] = every_alert(state_db)
    assert only.count == 3 and only.event_ids == ["e1", "e2", "e3"]
    assert (only.first_seen, only.last_seen) == (T0, T0 + timedelta(minutes=5))
    assert only.rule_author == "Jane Doe" and only.rule_references == ["https://example.org/r"]
    assert (only.source, only.severity, only.status) == ("sigma", "medium", "new")
    unchanged = record(state_db, make(key="k", events=("e1",)))
    assert unchanged.created == unchanged.updated == ()


def test_event_ids_are_capped_but_the_count_goes_on(state_db: StateDB) -> None:
    record(state_db, make(key="k", events=[f"e{i}" for i in range(90)]))
    record(state_db, make(key="k", events=[f"f{i}" for i in range(30)]))
    [only] = every_alert(state_db)
    assert only.count == 120 and len(only.event_ids) == 100


def test_a_closed_alert_is_not_extended(state_db: StateDB) -> None:
    [first] = record(state_db, make(key="k", events=("e1",))).created
    with state_db.session() as session:
        service.close(session, first, ALICE, "false_positive_data")
    assert record(state_db, make(key="k", events=("e1",))).created == ()
    [second] = record(state_db, make(key="k", events=("e2",))).created
    assert second != first
    assert alert(state_db, first).count == 1 and alert(state_db, second).event_ids == ["e2"]
    assert record(state_db, make(key="k", events=("e3",))).updated == (second,)


def test_overlapping_bursts_fold_and_distant_ones_do_not(state_db: StateDB) -> None:
    base = dict(rule="corr", source=Source.CORRELATION, burst_key='{"user":"x"}', host=None)
    [first] = record(state_db, make(key="c1", minutes=10, events=("a", "b"), **base)).created
    later = make(key="c2", at=T0 + timedelta(minutes=5), minutes=10, events=("b", "c"), **base)
    assert record(state_db, later).updated == (first,)
    distant = make(key="c3", at=T0 + timedelta(hours=3), events=("z",), **base)
    assert len(record(state_db, distant).created) == 1
    views = every_alert(state_db)
    assert [v.event_ids for v in views] == [["a", "b", "c"], ["z"]]
    assert views[0].last_seen == T0 + timedelta(minutes=15)


def test_bad_inputs_are_refused_long_entities_are_cut(state_db: StateDB) -> None:
    with pytest.raises(InputError):
        record(state_db, replace(make(), dedup_key=""))
    with pytest.raises(InputError):
        record(state_db, make(key="x" * 513))
    with pytest.raises(InputError):
        record(state_db, make(rule="r" * 129))
    [made] = record(state_db, make(key="long", host="h" * 400, src_ip="1" * 100)).created
    view = alert(state_db, made)
    assert len(view.host or "") == 255 and len(view.src_ip or "") == 64


def test_severity_follows_the_level_unless_given(state_db: StateDB) -> None:
    record(state_db, make(key="a", level="critical"), make(key="b", level="bogus"),
           make(key="c", level="low", severity=Severity.HIGH))
    assert [a.severity for a in every_alert(state_db)] == ["critical", "medium", "high"]


def test_alerts_of_one_rule_and_host_within_the_window_share_an_incident(state_db: StateDB) -> None:
    policy = GroupingPolicy(window_seconds=3600)
    a = record(state_db, make(key="a", level="low"), policy=policy)
    b = record(state_db, make(key="b", at=T0 + timedelta(minutes=50), level="high"), policy=policy)
    c = record(state_db, make(key="c", at=T0 + timedelta(hours=3)), policy=policy)
    other_host = record(state_db, make(key="d", host="pc2"), policy=policy)
    other_rule = record(state_db, make(key="e", rule="rule-2"), policy=policy)
    assert len(a.incidents_created) == 1 and b.incidents_created == ()
    views = {v.dedup_key: v for v in every_alert(state_db)}
    assert views["a"].incident_id == views["b"].incident_id
    assert len({views[k].incident_id for k in "acde"}) == 4
    assert len(c.incidents_created + other_host.incidents_created + other_rule.incidents_created) == 3
    incident = _incident(state_db, views["a"].incident_id)
    assert (incident.alert_count, incident.severity, incident.entity_kind) == (2, "high", "host")
    assert (incident.first_seen, incident.last_seen) == (T0, T0 + timedelta(minutes=50))
    assert incident.title == "Title of rule-1 on host pc1"


def test_an_updated_alert_stretches_its_incident(state_db: StateDB) -> None:
    record(state_db, make(key="a"))
    record(state_db, make(key="a", at=T0 + timedelta(hours=2), events=("e9",)))
    [view] = every_alert(state_db)
    assert _incident(state_db, view.incident_id).last_seen == T0 + timedelta(hours=2)


@pytest.mark.parametrize(("entities", "kind", "value"), [
    ({"host": None, "user": "alice"}, EntityKind.USER, "alice"),
    ({"host": None, "src_ip": "10.0.0.9"}, EntityKind.SRC_IP, "10.0.0.9"),
    ({"host": None}, EntityKind.NONE, ""),
    ({"host": "pc1", "user": "alice"}, EntityKind.HOST, "pc1"),
])
def test_the_grouping_entity_is_the_first_one_present(state_db: StateDB, entities: dict[str, str],
                                                      kind: EntityKind, value: str) -> None:
    record(state_db, make(key="a", **entities), make(key="b", minutes=1, **entities))
    first, second = every_alert(state_db)
    assert first.incident_id == second.incident_id
    incident = _incident(state_db, first.incident_id)
    assert (incident.entity_kind, incident.entity_value) == (kind.value, value)


def test_policy_order_and_zero_window(state_db: StateDB) -> None:
    by_user = GroupingPolicy.of(3600, ["user", "host"])
    record(state_db, make(key="a", host="pc1", user="eve"), make(key="b", host="pc2", user="eve"),
           policy=by_user)
    first, second = every_alert(state_db)
    assert first.incident_id == second.incident_id
    alone = GroupingPolicy(window_seconds=0)
    result = record(state_db, make(key="c"), make(key="d"), policy=alone)
    assert len(result.incidents_created) == 2


def test_a_retro_hunted_old_alert_does_not_join_a_later_incident(state_db: StateDB) -> None:
    policy = GroupingPolicy(window_seconds=3600)
    record(state_db, make(key="now", at=T0 + timedelta(days=3)), policy=policy)
    assert len(record(state_db, make(key="old"), policy=policy).incidents_created) == 1


def test_new_alerts_are_audited_and_announced_once(state_db: StateDB) -> None:
    [made] = record(state_db, make(key="a")).created
    record(state_db, make(key="a", events=("e2",)))
    assert audits(state_db) == [("system:vigil", "create", str(made))]
    [(actor, action, _)] = audits(state_db, "incident")
    assert (actor, action) == ("system:vigil", "create")
    view = alert(state_db, made)
    assert topics(state_db) == [("incident.created", str(view.incident_id)),
                                ("alert.created", str(made))]
    with state_db.session() as session:
        [entry] = service.history(session, made)
    assert (entry.field, entry.old, entry.new, entry.actor) == ("status", None, "new", "system:vigil")


def test_many_new_alerts_in_one_call(state_db: StateDB) -> None:
    inputs = [make(key=f"k{i}", host=f"h{i % 5}", events=(f"e{i}",)) for i in range(60)]
    result = record(state_db, *inputs)
    assert len(result.created) == 60 and len(result.incidents_created) == 5
    with state_db.session() as session:
        page = service.list_incidents(session, limit=10)
    assert sorted(i.alert_count for i in page.items) == [12] * 5


def test_events_at_the_ends_of_the_calendar(state_db: StateDB) -> None:
    early = datetime(1, 1, 1, 0, 5, tzinfo=UTC)
    late = datetime(9999, 12, 31, 23, 0, tzinfo=UTC)
    first, second = record(state_db, make(key="early", at=early), make(key="late", at=late)).created
    record(state_db, make(key="early2", at=early, events=("x",)))
    with state_db.session() as session:
        assert [r.alert.id for r in service.related(session, first)] == [second]
        assert service.related(session, second) == []
    assert alert(state_db, first).incident_id == every_alert(state_db)[-1].incident_id
