"""The work attached to a case, on both databases: tasks, comments and mentions, observables,
evidence and its chain of custody, the merged timeline, templates, alerts escalated to cases."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from vigil.alerts import service as alerts
from vigil.cases import (
    CaseCreate,
    CommentCreate,
    CustodyCreate,
    EvidenceCreate,
    LinkCreate,
    ObservableCreate,
    ObservableType,
    Policy,
    TaskCreate,
    TaskStatus,
    TaskUpdate,
    TimelineCreate,
)
from vigil.cases import service as cases
from vigil.cases.templates import parse
from vigil.core.db import StateDB
from vigil.core.errors import ConflictError, InputError, NotFoundError
from vigil.core.outbox import Topic

from .conftest import Crew, audits, events, last_event_id, payload, record_alerts

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
SHA = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"


def _case(db: StateDB, crew: Crew, **fields: object) -> int:
    return cases.create_case(db, CaseCreate.model_validate({"title": "t", **fields}), crew.alice,
                             now=T0).id


def test_tasks_owners_due_dates_and_status(state_db: StateDB, crew: Crew) -> None:
    case_id = _case(state_db, crew)
    start = last_event_id(state_db)
    task = cases.add_task(state_db, case_id, TaskCreate(title="Isolate web-1", owner="oscar",
                                                        due_in="2h"), crew.alice, now=T0)
    assert (task.owner_name, task.team, task.due_at) == ("oscar", "operations", T0 + timedelta(hours=2))
    open_task = cases.add_task(state_db, case_id, TaskCreate(title="Triage", team="security"),
                               crew.alice, now=T0)
    assert open_task.owner_id is None and open_task.team == "security"
    moved = cases.update_task(state_db, case_id, open_task.id, TaskUpdate(owner="alice"), crew.alice)
    assert moved.owner_name == "alice"
    found = events(state_db, start)
    assert [(e.topic, e.recipients) for e in found] == [(Topic.TASK_ASSIGNED, ("oscar",)),
                                                        (Topic.TASK_ASSIGNED, ("alice",))]
    assert payload(found[0])["due_at"].startswith("2026-03-02 11:00")
    done = cases.update_task(state_db, case_id, task.id, TaskUpdate(status=TaskStatus.DONE),
                             crew.oscar, now=T0 + timedelta(hours=3))
    assert done.status is TaskStatus.DONE and done.completed_at == T0 + timedelta(hours=3)
    assert not done.overdue
    late = cases.list_tasks(state_db, case_id, now=T0 + timedelta(days=1))
    assert [t.overdue for t in late] == [False, False]
    audit = audits(state_db, "case_task", task.id)[0]
    assert audit.before == {"status": "todo"} and audit.after == {"status": "done"}
    with pytest.raises(NotFoundError):
        cases.update_task(state_db, case_id, 999, TaskUpdate(status=TaskStatus.DONE), crew.alice)
    with pytest.raises(InputError, match="no user 'ghost'"):
        cases.add_task(state_db, case_id, TaskCreate(title="x", owner="ghost"), crew.alice)


def test_comments_parse_mentions_and_notify(state_db: StateDB, crew: Crew) -> None:
    assert cases.parse_mentions("@alice, can you ask @Oscar. (cc bob@example.com, @alice)") == [
        "alice", "oscar"]
    assert cases.parse_mentions("mail me at x@y.org or @ghost_1-") == ["ghost_1"]
    case_id = _case(state_db, crew)
    start = last_event_id(state_db)
    comment = cases.add_comment(state_db, case_id, CommentCreate(
        body="@oscar please isolate web-1; @nobody will not be told"), crew.alice)
    assert comment.mentions == ["oscar"] and comment.author == "user:alice"
    reply = cases.add_comment(state_db, case_id, CommentCreate(body="done", parent_id=comment.id),
                              crew.oscar)
    assert reply.parent_id == comment.id and reply.mentions == []
    found = events(state_db, start)
    assert [(e.topic, e.recipients) for e in found] == [(Topic.MENTIONED, ("oscar",))]
    assert payload(found[0])["comment_id"] == comment.id
    assert [c.body for c in cases.list_comments(state_db, case_id)] == [comment.body, "done"]
    with pytest.raises(InputError, match="to reply to"):
        cases.add_comment(state_db, case_id, CommentCreate(body="x", parent_id=999), crew.alice)
    assert audits(state_db, "case_comment", comment.id)[0].after == {
        "case_id": case_id, "body": comment.body, "mentions": ["oscar"]}


def test_observables_normalised_deduplicated_and_linked(state_db: StateDB, crew: Crew) -> None:
    case_id = _case(state_db, crew)
    a, b = (str(i) for i in record_alerts(state_db, 2))
    first = cases.add_observable(state_db, case_id, ObservableCreate(
        type="domain", value="Evil.Example.COM.", ioc=True,
        links=[LinkCreate(kind="alert", ref=a), LinkCreate(kind="event", ref="evt-1",
                                                           seen_at=T0 - timedelta(hours=2))]),
        crew.alice)
    assert first.value == "evil.example.com" and len(first.links) == 2
    again = cases.add_observable(state_db, case_id, ObservableCreate(
        type="domain", value="evil.example.com", links=[LinkCreate(kind="alert", ref=a),
                                                         LinkCreate(kind="alert", ref=b)]),
        crew.alice)
    assert again.id == first.id and [f"{k.kind}:{k.ref}" for k in again.links] == [
        f"alert:{a}", "event:evt-1", f"alert:{b}"]
    for ref in ("99999", "web-1"):
        with pytest.raises(InputError, match="alert"):
            cases.link_observable(state_db, case_id, first.id, [LinkCreate(kind="alert", ref=ref)],
                                  crew.alice)
    ip = cases.add_observable(state_db, case_id, ObservableCreate(type="ip", value="2001:DB8::1"),
                              crew.alice)
    assert ip.value == "2001:db8::1"
    for kind, value in (("ip", "300.1.1.1"), ("hash", "abc"), ("domain", "bad domain")):
        with pytest.raises(InputError):
            cases.add_observable(state_db, case_id, ObservableCreate(type=kind, value=value),
                                 crew.alice)
    other = _case(state_db, crew)
    cases.add_observable(state_db, other, ObservableCreate(type="domain", value="EVIL.example.com"),
                         crew.alice)
    assert cases.cases_sharing(state_db, ObservableType.DOMAIN, "evil.example.com") == [other, case_id]
    linked = cases.link_observable(state_db, case_id, ip.id, [LinkCreate(kind="event", ref="e9")],
                                   crew.alice)
    assert [link.ref for link in linked.links] == ["e9"]
    assert [o.type for o in cases.list_observables(state_db, case_id)] == ["domain", "ip"]
    timeline = cases.case_timeline(state_db, case_id)
    assert any(i.kind == "event" and i.at == T0 - timedelta(hours=2) for i in timeline)


def test_evidence_sha256_and_chain_of_custody(state_db: StateDB, crew: Crew) -> None:
    case_id = _case(state_db, crew)
    item = cases.add_evidence(state_db, case_id, EvidenceCreate(
        name="web-1-memory.lime", kind="memory", sha256=SHA.upper(), size=8 << 30,
        acquired_at=T0, location="locker 3"), crew.oscar, now=T0 + timedelta(minutes=5))
    assert item.sha256 == SHA and item.holder == "oscar" and item.acquired_by == "oscar"
    assert [(c.action, c.holder, c.hash_matches) for c in item.custody] == [("acquired", "oscar", True)]
    moved = cases.add_custody(state_db, case_id, item.id, CustodyCreate(
        action="transferred", holder="alice", location="lab safe", note="for analysis"),
        crew.oscar)
    assert moved.holder == "alice" and moved.location == "lab safe"
    checked = cases.add_custody(state_db, case_id, item.id, CustodyCreate(
        action="analyzed", holder="alice", sha256="0" * 64, note="hash mismatch on copy"), crew.alice)
    assert [c.hash_matches for c in checked.custody] == [True, None, False]
    cases.add_custody(state_db, case_id, item.id, CustodyCreate(action="destroyed", holder="alice"),
                      crew.alice)
    with pytest.raises(ConflictError, match="destroyed"):
        cases.add_custody(state_db, case_id, item.id, CustodyCreate(action="returned", holder="x"),
                          crew.alice)
    second = cases.add_evidence(state_db, case_id, EvidenceCreate(name="disk.E01", sha256=SHA),
                                crew.alice)
    with pytest.raises(InputError, match="acquired once"):
        cases.add_custody(state_db, case_id, second.id, CustodyCreate(action="acquired", holder="x"),
                          crew.alice)
    with pytest.raises(ValueError, match="64 hexadecimal"):
        EvidenceCreate(name="x", sha256="1234")
    with pytest.raises(NotFoundError):
        cases.get_evidence(state_db, case_id, 999)
    log = [a.after["action"] for a in audits(state_db, "case_evidence", item.id)[::-1]
           if a.action == "custody" and a.after]
    assert log == ["acquired", "transferred", "analyzed", "destroyed"]


def test_timeline_merges_changes_alerts_tasks_and_manual_entries(state_db: StateDB,
                                                                   crew: Crew) -> None:
    alert_ids = record_alerts(state_db, 2)
    detail = cases.create_case(state_db, CaseCreate(title="Web shell", alert_ids=alert_ids,
                                                    tasks=[TaskCreate(title="Collect logs")]),
                               crew.alice)
    entry = cases.add_entry(state_db, detail.id, TimelineCreate(
        occurred_at=detail.created_at - timedelta(days=2), title="First web shell request",
        technique="T1505.003", source="access.log"), crew.alice)
    assert entry.technique == "T1505.003"
    with pytest.raises(ValueError):
        TimelineCreate(occurred_at=T0, title="x", technique="not-a-technique")
    items = cases.case_timeline(state_db, detail.id)
    assert items[0].kind == "manual" and items[0].title == "First web shell request"
    assert [i.kind for i in items if i.kind == "alert"] == ["alert", "alert"]
    assert {"change", "task"} <= {i.kind for i in items}
    assert [i.at for i in items] == sorted(i.at for i in items)
    assert cases.list_entries(state_db, detail.id)[0].id == entry.id


def test_alerts_escalated_into_cases(state_db: StateDB, crew: Crew) -> None:
    alert_ids = record_alerts(state_db, 3, level="critical", host="db-7")
    detail = cases.open_from_alerts(state_db, alert_ids[:2], crew.alice, template="ransomware",
                                    assignees=["oscar"])
    assert detail.title == "Rule 0 on db-7 (+1 more alerts)" and detail.severity == "critical"
    assert detail.alert_ids == alert_ids[:2] and detail.template == "ransomware"
    with state_db.session() as session:
        linked = alerts.get_alerts(session, alert_ids)
    assert [(a.case_id, a.status) for a in linked[:2]] == [(detail.id, "acknowledged")] * 2
    assert linked[2].case_id is None
    assert cases.link_alerts(state_db, detail.id, [alert_ids[2]], crew.alice) == alert_ids
    assert cases.unlink_alert(state_db, detail.id, alert_ids[0], crew.alice) == alert_ids[1:]
    with pytest.raises(NotFoundError):
        cases.unlink_alert(state_db, detail.id, alert_ids[0], crew.alice)
    other = _case(state_db, crew)
    with pytest.raises(ConflictError, match="already in case"):
        cases.link_alerts(state_db, other, [alert_ids[1]], crew.alice)
    with pytest.raises(InputError):
        cases.open_from_alerts(state_db, [], crew.alice)
    assert "escalate" in [a.action for a in audits(state_db, "alert", alert_ids[1])]


def test_templates_prefill_and_custom_folder(state_db: StateDB, crew: Crew, tmp_path: Path) -> None:
    names = set(cases.list_templates())
    assert {"ransomware", "phishing", "account-compromise"} <= names
    detail = cases.create_case(state_db, CaseCreate(title="Invoice lure", template="phishing",
                                                    severity="high", tags=["finance"]),
                               crew.alice, now=T0)
    assert detail.severity == "high" and detail.phase == "detection_analysis"  # request wins
    assert detail.tags == ["phishing", "attack.initial-access", "attack.t1566", "finance"]
    template = cases.get_template("phishing")
    assert [t.title for t in detail.tasks] == [t.title for t in template.tasks]
    assert {t.team for t in detail.tasks} == {"security", "operations"}
    assert all(t.origin == "template:phishing" and t.due_at is not None for t in detail.tasks)
    folder = tmp_path / "templates"
    folder.mkdir()
    (folder / "insider.yml").write_text(
        "name: insider\ntitle: Insider threat\nseverity: high\npersonal_data: true\n"
        "tasks:\n  - title: Preserve the mailbox\n    team: operations\n    mandatory: true\n")
    policy = Policy(templates_dir=folder)
    insider = cases.create_case(state_db, CaseCreate(title="Data taken home", template="insider"),
                                crew.alice, policy=policy, now=T0)
    assert insider.personal_data and any(c.regime == "GDPR-33" for c in insider.clocks)
    assert insider.tasks[0].mandatory and cases.list_templates(policy)["insider"].origin == "custom"
    (folder / "broken.yml").write_text("name: other\ntitle: x\n")
    with pytest.raises(InputError, match=r"name the file other\.yml"):
        cases.list_templates(policy)
    with pytest.raises(InputError, match=r"broken.yml:\d+: invalid YAML"):
        parse("name: x\ntitle: [unclosed\n", str(folder / "broken.yml"), "custom")
    with pytest.raises(InputError, match="severity"):
        parse("name: x\ntitle: y\nseverity: apocalyptic\n", "t.yml", "custom")
