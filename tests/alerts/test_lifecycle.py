"""Analyst work on both databases: status moves (and the refused ones), history, audit,
incidents closing and reopening with their alerts, bulk actions, merge, split, case links."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest

from vigil.alerts import AlertFilter, IncidentView, service
from vigil.core.db import StateDB
from vigil.core.errors import ConflictError, InputError, NotFoundError, StateError

from .alerting import ALICE, BOB, T0, alert, audits, every_alert, make, record, topics


def _incident(db: StateDB, incident_id: int | None) -> IncidentView:
    assert incident_id is not None
    with db.session() as session:
        return service.get_incident(session, incident_id).incident


def _changes(db: StateDB, alert_id: int) -> list[tuple[str, str | None, str | None, str]]:
    with db.session() as session:
        return [(h.field, h.old, h.new, h.actor) for h in service.history(session, alert_id)]


def test_acknowledge_then_close_then_reopen(state_db: StateDB) -> None:
    [made] = record(state_db, make()).created
    with state_db.session() as session:
        acked = service.acknowledge(session, made, ALICE)
    assert acked.status == "acknowledged" and acked.acknowledged_at is not None
    with state_db.session() as session:
        closed = service.close(session, made, BOB, "benign_true_positive", "  admin testing ")
    assert (closed.status, closed.disposition, closed.closing_note) == (
        "closed", "benign_true_positive", "admin testing")
    assert closed.closed_at is not None
    with state_db.session() as session:
        reopened = service.reopen(session, made, ALICE)
    assert (reopened.status, reopened.disposition, reopened.closed_at) == ("acknowledged", None, None)
    assert reopened.acknowledged_at == acked.acknowledged_at
    assert _changes(state_db, made) == [
        ("status", None, "new", "system:vigil"),
        ("status", "new", "acknowledged", "user:alice"),
        ("status", "acknowledged", "closed", "user:bob"),
        ("disposition", None, "benign_true_positive", "user:bob"),
        ("status", "closed", "acknowledged", "user:alice"),
        ("disposition", "benign_true_positive", None, "user:alice"),
    ]
    assert [(actor, action) for actor, action, _ in audits(state_db)] == [
        ("system:vigil", "create"), ("user:alice", "acknowledge"), ("user:bob", "close"),
        ("user:alice", "reopen")]


def test_refused_transitions(state_db: StateDB) -> None:
    [made] = record(state_db, make()).created
    with state_db.session() as session, pytest.raises(ConflictError, match="closed alert"):
        service.reopen(session, made, ALICE)
    with state_db.session() as session, pytest.raises(InputError, match="needs a disposition"):
        service.close(session, made, ALICE, "")
    with state_db.session() as session, pytest.raises(InputError, match="unknown disposition"):
        service.close(session, made, ALICE, "fine")
    with state_db.session() as session:
        service.close(session, made, ALICE, "duplicate")
    with state_db.session() as session, pytest.raises(ConflictError, match="already closed"):
        service.close(session, made, ALICE, "duplicate")
    with state_db.session() as session, pytest.raises(ConflictError, match="only a new alert"):
        service.acknowledge(session, made, ALICE)
    with state_db.session() as session, pytest.raises(NotFoundError):
        service.acknowledge(session, 999, ALICE)
    with state_db.session() as session, pytest.raises(InputError):
        service.close(session, made, ALICE, "duplicate", "x" * 10_001)
    assert [a for _, a, _ in audits(state_db)] == ["create", "close"]


def test_assign_and_unassign(state_db: StateDB) -> None:
    [made] = record(state_db, make()).created
    with state_db.session() as session:
        assert service.assign(session, made, 7, ALICE).assignee == 7
    with state_db.session() as session:
        service.assign(session, made, 7, ALICE)  # no change: nothing written
    with state_db.session() as session:
        assert service.assign(session, made, None, ALICE).assignee is None
    with state_db.session() as session, pytest.raises(InputError):
        service.assign(session, made, 0, ALICE)
    assert [c[:3] for c in _changes(state_db, made)][1:] == [
        ("assignee", None, "7"), ("assignee", "7", None)]
    assert [a for _, a, _ in audits(state_db)] == ["create", "assign", "assign"]


def test_an_incident_closes_with_its_last_alert_and_reopens_with_one(state_db: StateDB) -> None:
    first, second = record(state_db, make(key="a"), make(key="b", minutes=3)).created
    incident_id = alert(state_db, first).incident_id
    with state_db.session() as session:
        service.close(session, first, ALICE, "false_positive_logic")
    assert _incident(state_db, incident_id).status == "open"
    with state_db.session() as session:
        service.close(session, second, ALICE, "false_positive_logic")
    closed = _incident(state_db, incident_id)
    assert closed.status == "closed" and closed.closed_at is not None
    later = record(state_db, make(key="c", minutes=5))
    assert len(later.incidents_created) == 1
    with state_db.session() as session:
        service.reopen(session, second, ALICE)
    assert _incident(state_db, incident_id).status == "open"


def test_bulk_changes_what_it_can_and_says_why_not(state_db: StateDB) -> None:
    ids = list(record(state_db, *(make(key=f"k{i}") for i in range(3))).created)
    with state_db.session() as session:
        service.acknowledge(session, ids[0], ALICE)
    with state_db.session() as session:
        result = service.bulk(session, "acknowledge", [*ids, 404, ids[1]], ALICE)
    assert result.done == ids[1:]
    assert set(result.skipped) == {ids[0], 404}
    with state_db.session() as session:
        closed = service.bulk(session, "close", ids, BOB, "undetermined", "batch")
    assert closed.done == ids
    assert {a.status for a in every_alert(state_db)} == {"closed"}
    with state_db.session() as session, pytest.raises(InputError):
        service.bulk(session, "close", ids, BOB)
    with state_db.session() as session, pytest.raises(InputError):
        service.bulk(session, "delete", ids, BOB)
    with state_db.session() as session, pytest.raises(InputError):
        service.bulk(session, "acknowledge", [], BOB)
    with state_db.session() as session, pytest.raises(InputError):
        service.bulk(session, "acknowledge", list(range(1, 1002)), BOB)


def test_merge_moves_alerts_and_closes_the_sources(state_db: StateDB) -> None:
    a = record(state_db, make(key="a", host="pc1", level="low")).created[0]
    b = record(state_db, make(key="b", host="pc2", level="critical")).created[0]
    c = record(state_db, make(key="c", rule="rule-9", host="pc3",
                              at=T0 - timedelta(hours=1))).created[0]
    target, src1, src2 = (alert(state_db, x).incident_id for x in (a, b, c))
    assert target and src1 and src2
    with state_db.session() as session:
        merged = service.merge(session, target, [src1, src2], ALICE)
    assert (merged.alert_count, merged.severity, merged.status) == (3, "critical", "open")
    assert merged.first_seen == T0 - timedelta(hours=1)
    assert {alert(state_db, x).incident_id for x in (a, b, c)} == {target}
    gone = _incident(state_db, src1)
    assert (gone.status, gone.merged_into, gone.alert_count) == ("closed", target, 0)
    assert ("incident_id", str(src1), str(target), "user:alice") in _changes(state_db, b)
    assert [a for _, a, _ in audits(state_db, "incident")].count("merge") == 3
    with state_db.session() as session, pytest.raises(ConflictError, match="already merged"):
        service.merge(session, target, [src1], ALICE)
    with state_db.session() as session, pytest.raises(ConflictError):
        service.merge(session, src1, [target], ALICE)
    with state_db.session() as session, pytest.raises(InputError, match="itself"):
        service.merge(session, target, [target], ALICE)
    with state_db.session() as session, pytest.raises(InputError):
        service.merge(session, target, [], ALICE)
    with state_db.session() as session, pytest.raises(NotFoundError):
        service.merge(session, target, [999], ALICE)
    # a new alert of the target's rule and host still joins it
    record(state_db, make(key="d", host="pc1", minutes=1))
    assert _incident(state_db, target).alert_count == 4


def test_split_moves_alerts_into_an_incident_grouping_leaves_alone(state_db: StateDB) -> None:
    ids = list(record(state_db, *(make(key=f"k{i}", minutes=i, level="high" if i == 2 else "low")
                                  for i in range(4))).created)
    source = alert(state_db, ids[0]).incident_id
    assert source is not None
    with state_db.session() as session:
        new = service.split(session, source, ids[2:], ALICE, title="Second wave")
    assert (new.title, new.alert_count, new.severity, new.auto_group) == ("Second wave", 2, "high", False)
    remaining = _incident(state_db, source)
    assert (remaining.alert_count, remaining.severity) == (2, "low")
    assert remaining.last_seen == T0 + timedelta(minutes=1)
    record(state_db, make(key="later", minutes=10))
    assert alert(state_db, ids[-1] + 1).incident_id == source
    assert ("incident.created", str(new.id)) in topics(state_db)
    with state_db.session() as session, pytest.raises(InputError, match="not in incident"):
        service.split(session, source, [ids[2]], ALICE)
    with state_db.session() as session, pytest.raises(InputError, match="leave at least one"):
        service.split(session, new.id, ids[2:], ALICE)
    with state_db.session() as session, pytest.raises(NotFoundError):
        service.split(session, source, [999], ALICE)
    with state_db.session() as session, pytest.raises(NotFoundError):
        service.split(session, 999, [ids[0]], ALICE)


def test_link_case_escalates_and_acknowledges(state_db: StateDB) -> None:
    first, second = record(state_db, make(key="a"), make(key="b", minutes=2)).created
    incident_id = alert(state_db, first).incident_id
    with state_db.session() as session:
        [linked] = service.link_case(session, [first], 41, ALICE)
    assert (linked.case_id, linked.status) == (41, "acknowledged")
    assert linked.escalated_at is not None and linked.acknowledged_at == linked.escalated_at
    assert _incident(state_db, incident_id).case_id is None  # only one of its two alerts
    with state_db.session() as session:
        service.link_case(session, [second, first], 41, ALICE)
    assert _incident(state_db, incident_id).case_id == 41
    with state_db.session() as session, pytest.raises(ConflictError, match="already in case 41"):
        service.link_case(session, [first], 42, ALICE)
    with state_db.session() as session, pytest.raises(NotFoundError):
        service.link_case(session, [first, 999], 41, ALICE)
    # a new alert grouped into the escalated incident joins the case
    [third] = record(state_db, make(key="c", minutes=4)).created
    assert alert(state_db, third).case_id == 41 and alert(state_db, third).status == "new"
    with state_db.session() as session:
        assert [v.id for v in service.list_alerts(
            session, AlertFilter(case_id=41)).items] == [third, second, first]
    with state_db.session() as session, pytest.raises(ConflictError):
        service.unlink_case(session, [first], ALICE, case_id=7)
    with state_db.session() as session:
        [out] = service.unlink_case(session, [first], ALICE, case_id=41)
    assert out.case_id is None and out.status == "acknowledged"
    assert _incident(state_db, incident_id).case_id is None
    actions = [a for _, a, _ in audits(state_db)]
    assert actions.count("escalate") == 2 and actions.count("unlink") == 1
    assert ("case_id", "41", None, "user:alice") in _changes(state_db, first)


def test_escalate_incident_links_all_its_alerts(state_db: StateDB) -> None:
    ids = list(record(state_db, *(make(key=f"k{i}", minutes=i) for i in range(3))).created)
    incident_id = alert(state_db, ids[0]).incident_id
    assert incident_id is not None
    with state_db.session() as session:
        linked = service.escalate_incident(session, incident_id, 5, ALICE)
    assert sorted(v.id for v in linked) == ids
    assert _incident(state_db, incident_id).case_id == 5
    with state_db.session() as session, pytest.raises(NotFoundError):
        service.escalate_incident(session, 999, 5, ALICE)



def test_concurrent_acknowledgements_change_the_alert_once(state_db: StateDB) -> None:
    ids = list(record(state_db, *(make(key=f"k{i}") for i in range(5))).created)
    barrier = threading.Barrier(4)

    def ack_all(who: int) -> int:
        barrier.wait()
        done = 0
        for alert_id in ids:
            try:
                with state_db.session() as session:
                    service.acknowledge(session, alert_id, ALICE if who % 2 else BOB)
                done += 1
            except (ConflictError, StateError):
                pass
        return done

    with ThreadPoolExecutor(4) as pool:
        total = sum(pool.map(ack_all, range(4)))
    assert total == len(ids)
    for alert_id in ids:
        assert [c[2] for c in _changes(state_db, alert_id)] == ["new", "acknowledged"]
