"""Reading on both databases: filters, keyset pages in every sort order, offsets and totals,
bad cursors, related-alert suggestions, incidents, and the timings the metrics read."""

from __future__ import annotations

import random
from datetime import timedelta

import pytest

from vigil.alerts import AlertFilter, AlertSort, IncidentFilter, Severity, Status, service
from vigil.core.db import StateDB
from vigil.core.errors import InputError, NotFoundError

from .alerting import ALICE, T0, make, record

LEVELS = ["informational", "low", "medium", "high", "critical"]


@pytest.fixture
def many(state_db: StateDB) -> StateDB:
    """57 alerts: 3 hosts, 2 rules, every level, some with equal times (ties on the sort key)."""
    rng = random.Random(7)
    inputs = [make(rule=f"rule-{i % 2}", key=f"k{i}", host=f"h{i % 3}", user=f"u{i % 4}",
                   src_ip=f"10.0.0.{i % 5}", at=T0 + timedelta(minutes=rng.randrange(20)),
                   level=LEVELS[i % 5], events=(f"e{i}",)) for i in range(57)]
    record(state_db, *inputs)
    return state_db


def _walk(db: StateDB, sort: AlertSort, descending: bool, limit: int,
          filters: AlertFilter | None = None) -> list[int]:
    ids: list[int] = []
    cursor = None
    while True:
        with db.session() as session:
            page = service.list_alerts(session, filters or AlertFilter(), sort=sort, descending=descending,
                                       limit=limit, cursor=cursor)
        ids += [a.id for a in page.items]
        if page.next_cursor is None:
            return ids
        cursor = page.next_cursor


@pytest.mark.parametrize("sort", list(AlertSort))
@pytest.mark.parametrize("descending", [True, False])
def test_keyset_pages_cover_every_alert_once_in_order(many: StateDB, sort: AlertSort,
                                                      descending: bool) -> None:
    with many.session() as session:
        every = service.list_alerts(session, limit=1000).items
    key = {AlertSort.LAST_SEEN: lambda a: (a.last_seen, a.id),
           AlertSort.FIRST_SEEN: lambda a: (a.first_seen, a.id),
           AlertSort.SEVERITY: lambda a: (Severity.parse(a.severity), a.last_seen, a.id),
           AlertSort.ID: lambda a: (a.id,)}[sort]
    expected = [a.id for a in sorted(every, key=key, reverse=descending)]
    assert _walk(many, sort, descending, 7) == expected
    assert _walk(many, sort, descending, 1000) == expected


def test_filters(many: StateDB) -> None:
    def ids(**fields: object) -> set[int]:
        with many.session() as session:
            return {a.id for a in service.list_alerts(session, AlertFilter(**fields),  # type: ignore[arg-type]
                                                      limit=1000).items}

    with many.session() as session:
        every = service.list_alerts(session, limit=1000).items
    assert ids(host="h1") == {a.id for a in every if a.host == "h1"}
    assert ids(user="u2", src_ip="10.0.0.3") == {
        a.id for a in every if (a.user, a.src_ip) == ("u2", "10.0.0.3")}
    assert ids(severity=(Severity.HIGH, Severity.LOW)) == {
        a.id for a in every if a.severity in ("high", "low")}
    assert ids(min_severity=Severity.HIGH) == {a.id for a in every if a.severity in ("high", "critical")}
    assert ids(level=("critical",)) == {a.id for a in every if a.level == "critical"}
    assert ids(rule_id="rule-1") == {a.id for a in every if a.rule_id == "rule-1"}
    since = T0 + timedelta(minutes=10)
    assert ids(since=since) == {a.id for a in every if a.last_seen >= since}
    assert ids(until=since) == {a.id for a in every if a.last_seen < since}
    incident = every[0].incident_id
    assert ids(incident_id=incident) == {a.id for a in every if a.incident_id == incident}
    with many.session() as session:
        service.acknowledge(session, every[0].id, ALICE)
        service.assign(session, every[1].id, 3, ALICE)
    assert ids(status=(Status.ACKNOWLEDGED,)) == {every[0].id}
    assert ids(status=(Status.NEW, Status.ACKNOWLEDGED)) == {a.id for a in every}
    assert ids(assignee=3) == {every[1].id}
    assert len(ids(unassigned=True)) == len(every) - 1


def test_offset_total_and_bad_paging(many: StateDB) -> None:
    with many.session() as session:
        first = service.list_alerts(session, limit=10, with_total=True)
        third = service.list_alerts(session, limit=10, offset=20)
        walked = _walk(many, AlertSort.LAST_SEEN, True, 10)
        assert first.total == 57 and third.total is None
        assert [a.id for a in third.items] == walked[20:30]
        assert service.list_alerts(session, AlertFilter(host="nope"), with_total=True).total == 0
        for bad in ("!!!", "bm9wZQ", first.next_cursor[:-3] if first.next_cursor else ""):
            with pytest.raises(InputError):
                service.list_alerts(session, cursor=bad)
        with pytest.raises(InputError, match="another sort"):
            service.list_alerts(session, cursor=first.next_cursor, sort=AlertSort.ID)
        with pytest.raises(InputError, match="either a cursor or an offset"):
            service.list_alerts(session, cursor=first.next_cursor, offset=5)
        for limit in (0, 1001):
            with pytest.raises(InputError):
                service.list_alerts(session, limit=limit)
        with pytest.raises(InputError):
            service.list_alerts(session, offset=-1)


def test_related_alerts_share_an_entity_outside_the_incident(state_db: StateDB) -> None:
    base, = record(state_db, make(rule="r1", key="base", host="pc1", user="eve",
                                  src_ip="10.1.1.1")).created
    same_incident, = record(state_db, make(rule="r1", key="same", host="pc1", minutes=1)).created
    both, = record(state_db, make(rule="r2", key="both", host="pc1", user="eve")).created
    by_ip, = record(state_db, make(rule="r3", key="ip", host="pc9", src_ip="10.1.1.1")).created
    too_old, = record(state_db, make(rule="r4", key="old", host="pc1",
                                     at=T0 - timedelta(days=45))).created
    record(state_db, make(rule="r5", key="unrelated", host="pc7", user="zed"))
    with state_db.session() as session:
        found = service.related(session, base)
        detail = service.detail(session, base, related_limit=1)
    assert [(r.alert.id, r.shared) for r in found] == [(both, ("host", "user")), (by_ip, ("src_ip",))]
    assert same_incident not in {r.alert.id for r in found} and too_old not in {r.alert.id for r in found}
    assert [r.alert.id for r in detail.related] == [both]
    assert detail.alert.id == base and [h.new for h in detail.history] == ["new"]
    with state_db.session() as session, pytest.raises(NotFoundError):
        service.detail(session, 999)


def test_incidents_listing_and_detail(many: StateDB) -> None:
    with many.session() as session:
        page = service.list_incidents(session, limit=4, with_total=True)
        assert page.total == 6 and len(page.items) == 4 and page.next_cursor
        rest = service.list_incidents(session, limit=4, cursor=page.next_cursor)
        assert len(rest.items) == 2 and rest.next_cursor is None
        assert sum(i.alert_count for i in page.items + rest.items) == 57
        by_rule = service.list_incidents(session, IncidentFilter(rule_id="rule-0"), limit=100)
        assert {i.rule_id for i in by_rule.items} == {"rule-0"} and len(by_rule.items) == 3
        detail = service.get_incident(session, page.items[0].id, alert_limit=5)
        assert len(detail.alerts) == min(5, detail.incident.alert_count)
        assert {a.incident_id for a in detail.alerts} == {detail.incident.id}
        with pytest.raises(NotFoundError):
            service.get_incident(session, 999)


def test_timings_and_history_for_the_metrics(state_db: StateDB) -> None:
    first, second = record(state_db, make(key="a"), make(key="b")).created
    with state_db.session() as session:
        service.acknowledge(session, first, ALICE)
        service.close(session, first, ALICE, "false_positive_logic")
        service.link_case(session, [second], 3, ALICE)
    with state_db.session() as session:
        created = service.get_alert(session, first).created_at
        window = (created - timedelta(minutes=1), created + timedelta(minutes=5))
        timings = {t.id: t for t in service.timings(session, *window)}
        changes = service.history_between(session, *window, fields=("status",))
        paged = service.history_between(session, *window, after_id=changes[0].id, limit=1)
    one, two = timings[first], timings[second]
    assert one.event_time == T0 and one.acknowledged_at and one.closed_at
    assert one.acknowledged_at <= one.closed_at and one.disposition == "false_positive_logic"
    assert two.escalated_at and two.case_id == 3 and two.closed_at is None
    assert [(c.alert_id, c.new) for c in changes] == [
        (first, "new"), (second, "new"), (first, "acknowledged"), (first, "closed"),
        (second, "acknowledged")]
    assert len(paged) == 1 and paged[0].id > changes[0].id
