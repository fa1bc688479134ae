"""Cases on both databases: opening, stage moves, closing gates, the review gate, reopening,
concurrent-change refusal, the transition log, audit records and outbox events, listing."""

from __future__ import annotations

import pytest

from vigil.cases import (
    ActionItemCreate,
    CaseCreate,
    CaseUpdate,
    ClockStop,
    Disposition,
    Phase,
    ReviewUpdate,
    Stage,
    TaskCreate,
    TaskStatus,
    TaskUpdate,
)
from vigil.cases import service as cases
from vigil.cases.service import CaseFilter, CaseSort
from vigil.core.db import StateDB
from vigil.core.errors import ConflictError, InputError, NotFoundError
from vigil.core.outbox import Topic

from .conftest import Crew, audits, events, last_event_id, payload, topics


def _open(db: StateDB, crew: Crew, **fields: object) -> int:
    data = CaseCreate.model_validate({"title": "Suspicious logins", **fields})
    return cases.create_case(db, data, crew.alice).id


def test_create_records_events_audit_and_outbox(state_db: StateDB, crew: Crew) -> None:
    detail = cases.create_case(state_db, CaseCreate(
        title="Beaconing from web-1", severity="high", assignees=["alice", "oscar"],
        tasks=[TaskCreate(title="Pull proxy logs", owner="oscar", due_in="4h")]), crew.alice)
    assert detail.ref == f"CASE-{detail.id}"
    assert (detail.stage, detail.phase, detail.priority) == (Stage.NEW, Phase.DETECTION_ANALYSIS, "high")
    assert [(a.username, a.team) for a in detail.assignees] == [("alice", "security"),
                                                                 ("oscar", "operations")]
    assert detail.tasks[0].owner_name == "oscar" and detail.tasks[0].team == "operations"
    assert {c.kind for c in detail.clocks} == {"sla_ack", "sla_contain"}
    log = cases.case_events(state_db, detail.id)
    assert [(e.field, e.old, e.new, e.source) for e in log] == [
        ("stage", None, "new", "user"), ("phase", None, "detection_analysis", "user"),
        ("assignee", None, "alice", "user"), ("assignee", None, "oscar", "user")]
    created = audits(state_db, "case", detail.id)
    assert created[-1].action == "create" and created[-1].after is not None
    assert created[-1].after["assignees"] == ["alice", "oscar"]
    assert audits(state_db, "case_task", detail.tasks[0].id)[0].action == "create"
    found = events(state_db)
    assert topics(found) == ["task.assigned", "case.created", "case.assigned"]
    assigned = found[2]
    assert assigned.recipients == ("alice", "oscar") and assigned.severity == "high"
    assert payload(found[0])["task_id"] == detail.tasks[0].id
    assert found[0].recipients == ("oscar",)


def test_stage_moves_follow_the_transition_table(state_db: StateDB, crew: Crew) -> None:
    case_id = _open(state_db, crew)
    with pytest.raises(ConflictError, match="cannot move from new to on_hold"):
        cases.update_case(state_db, case_id, CaseUpdate(stage=Stage.ON_HOLD), crew.alice)
    out = cases.update_case(state_db, case_id, CaseUpdate(stage=Stage.ACKNOWLEDGED), crew.oscar)
    assert out.acknowledged_at is not None and out.version == 2
    for stage in (Stage.IN_PROGRESS, Stage.ON_HOLD, Stage.IN_PROGRESS, Stage.RESOLVED):
        out = cases.update_case(state_db, case_id, CaseUpdate(stage=stage), crew.oscar)
    assert out.stage is Stage.RESOLVED and out.resolved_at is not None
    with pytest.raises(ConflictError):
        cases.update_case(state_db, case_id, CaseUpdate(stage=Stage.ACKNOWLEDGED), crew.oscar)
    stages = [(e.old, e.new) for e in cases.case_events(state_db, case_id) if e.field == "stage"]
    assert stages[1:] == [("new", "acknowledged"), ("acknowledged", "in_progress"),
                          ("in_progress", "on_hold"), ("on_hold", "in_progress"),
                          ("in_progress", "resolved")]
    assert all(e.actor == "user:oscar" for e in cases.case_events(state_db, case_id)[4:])


def test_closing_needs_disposition_and_note(state_db: StateDB, crew: Crew) -> None:
    case_id = _open(state_db, crew)
    with pytest.raises(ConflictError, match="needs a disposition and a closing note"):
        cases.update_case(state_db, case_id, CaseUpdate(stage=Stage.CLOSED), crew.alice)
    with pytest.raises(ConflictError, match="a closing note"):
        cases.update_case(state_db, case_id, CaseUpdate(
            stage=Stage.CLOSED, disposition=Disposition.FALSE_POSITIVE_LOGIC), crew.alice)
    assert cases.get_case_detail(state_db, case_id).disposition is None  # rolled back
    before = last_event_id(state_db)
    out = cases.close_case(state_db, case_id, Disposition.FALSE_POSITIVE_LOGIC,
                           "Scanner of the IT team", crew.alice)
    assert out.stage is Stage.CLOSED and out.closed_at is not None and out.resolved_at is not None
    updated = [e for e in events(state_db, before) if e.topic is Topic.CASE_UPDATED]
    assert payload(updated[0])["changes"] == {"stage": ["new", "closed"]}
    assert payload(updated[0])["disposition"] == "false_positive_logic"
    detail = cases.get_case_detail(state_db, case_id)
    statuses = {c.kind: c.status for c in detail.clocks}
    assert statuses == {"sla_ack": "met", "sla_contain": "not_required"}
    with pytest.raises(ConflictError, match="is closed"):
        cases.update_case(state_db, case_id, CaseUpdate(title="renamed"), crew.alice)
    with pytest.raises(ConflictError, match="is closed"):
        cases.add_task(state_db, case_id, TaskCreate(title="late"), crew.alice)


def test_true_positive_needs_a_completed_review(state_db: StateDB, crew: Crew) -> None:
    case_id = _open(state_db, crew, severity="critical")
    close = CaseUpdate(stage=Stage.CLOSED, disposition=Disposition.TRUE_POSITIVE_WITH_IMPACT,
                       closing_note="Contained and rebuilt")
    with pytest.raises(ConflictError, match="post-incident review"):
        cases.update_case(state_db, case_id, close, crew.alice)
    cases.update_review(state_db, case_id, ReviewUpdate(what_happened="Phish, then VPN login",
                                                        root_cause="No MFA on VPN"), crew.alice)
    with pytest.raises(ConflictError, match="still needs: went_well, went_badly"):
        cases.complete_review(state_db, case_id, crew.alice)
    cases.update_review(state_db, case_id, ReviewUpdate(went_well="Fast isolation",
                                                        went_badly="Late escalation"), crew.alice)
    item = cases.add_action(state_db, case_id, ActionItemCreate(title="MFA on VPN", owner="oscar"),
                            crew.alice)
    assert item.owner_name == "oscar" and item.status == "open"
    review = cases.complete_review(state_db, case_id, crew.alice)
    assert review.status == "completed" and review.completed_by == "user:alice"
    edited = cases.update_review(state_db, case_id, ReviewUpdate(lessons="Drill quarterly"),
                                 crew.alice)
    assert edited.status == "draft"  # an edit re-opens the review
    with pytest.raises(ConflictError, match="post-incident review"):
        cases.update_case(state_db, case_id, close, crew.alice)
    cases.complete_review(state_db, case_id, crew.alice)
    out = cases.update_case(state_db, case_id, close, crew.alice)
    assert out.stage is Stage.CLOSED
    clocks = {c.kind: c.status for c in cases.list_clocks(state_db, case_id)}
    assert clocks["sla_contain"] in ("met", "met_late")
    assert [a.action for a in audits(state_db, "case_review")][::-1][:3] == ["create", "update", "update"]
    done = cases.update_action(state_db, case_id, item.id,
                               cases_action_update(status="done"), crew.oscar)
    assert done.status == "done"  # action items are tracked after closure


def cases_action_update(**fields: object) -> object:
    from vigil.cases import ActionItemUpdate

    return ActionItemUpdate.model_validate(fields)


def test_mandatory_tasks_and_obligations_block_closing(state_db: StateDB, crew: Crew) -> None:
    case_id = _open(state_db, crew, personal_data=True,
                    tasks=[{"title": "Image the laptop", "mandatory": True}])
    close = CaseUpdate(stage=Stage.CLOSED, disposition=Disposition.BENIGN_TRUE_POSITIVE,
                       closing_note="Expected admin activity")
    with pytest.raises(ConflictError, match="mandatory tasks still open: Image the laptop"):
        cases.update_case(state_db, case_id, close, crew.alice)
    task = cases.list_tasks(state_db, case_id)[0]
    cases.update_task(state_db, case_id, task.id, TaskUpdate(status=TaskStatus.CANCELED), crew.alice)
    with pytest.raises(ConflictError, match="regulatory clocks still running"):
        cases.update_case(state_db, case_id, close, crew.alice)
    gdpr = next(c for c in cases.list_clocks(state_db, case_id) if c.regime == "GDPR-33")
    with pytest.raises(InputError, match="needs a note"):
        cases.stop_clock(state_db, case_id, gdpr.id, ClockStop(outcome="not_required"), crew.alice)
    cases.stop_clock(state_db, case_id, gdpr.id, ClockStop(
        outcome="not_required", note="Only pseudonymised test data was exposed"), crew.alice)
    assert cases.update_case(state_db, case_id, close, crew.alice).stage is Stage.CLOSED


def test_reopen_is_recorded(state_db: StateDB, crew: Crew) -> None:
    case_id = _open(state_db, crew)
    cases.close_case(state_db, case_id, Disposition.DUPLICATE, "Same as CASE-1", crew.alice)
    with pytest.raises(ConflictError, match="reopen"):
        cases.update_case(state_db, case_id, CaseUpdate(stage=Stage.IN_PROGRESS, title="x"),
                          crew.alice)
    out = cases.update_case(state_db, case_id, CaseUpdate(stage=Stage.IN_PROGRESS), crew.alice)
    assert out.stage is Stage.IN_PROGRESS and out.closed_at is None
    fields = [(e.field, e.old, e.new) for e in cases.case_events(state_db, case_id)[-2:]]
    assert fields == [("stage", "closed", "in_progress"), ("reopened", "closed", "in_progress")]


def test_phase_severity_and_assignee_changes(state_db: StateDB, crew: Crew) -> None:
    case_id = _open(state_db, crew, severity="low", assignees=["alice"])
    before = last_event_id(state_db)
    out = cases.update_case(state_db, case_id, CaseUpdate(
        phase=Phase.CONTAINMENT, severity="critical", priority="high", add_assignees=["oscar"],
        remove_assignees=["alice"]), crew.alice)
    assert [a.username for a in out.assignees] == ["oscar"]
    assert (out.severity, out.priority) == ("critical", "high")
    found = events(state_db, before)
    assert topics(found) == ["case.assigned", "case.updated"]
    assert found[0].recipients == ("oscar",)
    assert payload(found[1])["changes"] == {"phase": ["detection_analysis", "containment"]}
    ack = next(c for c in cases.list_clocks(state_db, case_id) if c.kind == "sla_ack")
    assert (ack.due_at - ack.trigger_at).total_seconds() == 15 * 60  # critical target
    out = cases.update_case(state_db, case_id, CaseUpdate(phase=Phase.ERADICATION), crew.oscar)
    assert out.contained_at is not None
    contain = next(c for c in cases.list_clocks(state_db, case_id) if c.kind == "sla_contain")
    assert contain.state == "stopped" and contain.status == "met"
    log = {(e.field, e.old, e.new) for e in cases.case_events(state_db, case_id)}
    assert {("assignee", None, "oscar"), ("assignee", "alice", None),
            ("severity", "low", "critical"), ("phase", "containment", "eradication")} <= log
    update_audit = next(a for a in audits(state_db, "case", case_id) if a.action == "update")
    assert update_audit.after == {"phase": "eradication"}


def test_version_conflicts_and_bad_input(state_db: StateDB, crew: Crew) -> None:
    case_id = _open(state_db, crew)
    cases.update_case(state_db, case_id, CaseUpdate(title="v2", version=1), crew.alice)
    with pytest.raises(ConflictError, match="changed since version 1"):
        cases.update_case(state_db, case_id, CaseUpdate(title="v3", version=1), crew.alice)
    with pytest.raises(NotFoundError):
        cases.update_case(state_db, 9999, CaseUpdate(title="x"), crew.alice)
    with pytest.raises(InputError, match="no user 'nobody'"):
        cases.update_case(state_db, case_id, CaseUpdate(add_assignees=["nobody"]), crew.alice)
    with pytest.raises(InputError, match="title cannot be empty"):
        cases.update_case(state_db, case_id, CaseUpdate.model_validate({"title": None}), crew.alice)
    with pytest.raises(InputError, match="no case template 'nope'"):
        cases.create_case(state_db, CaseCreate(title="t", template="nope"), crew.alice)
    with pytest.raises(InputError, match="no alert with id 4242"):
        cases.create_case(state_db, CaseCreate(title="t", alert_ids=[4242]), crew.alice)
    unchanged = cases.update_case(state_db, case_id, CaseUpdate(title="v2"), crew.alice)
    assert [a.action for a in audits(state_db, "case", case_id)].count("update") == 1
    assert unchanged.version == 3  # the lock bumps the version even when nothing changed


def test_listing_filters_sorting_and_pages(state_db: StateDB, crew: Crew) -> None:
    ids = [_open(state_db, crew, title=f"case {i}", severity=sev, assignees=who)
           for i, (sev, who) in enumerate([("low", ["alice"]), ("critical", ["oscar"]),
                                           ("medium", []), ("high", ["alice", "oscar"])])]
    cases.update_case(state_db, ids[2], CaseUpdate(stage=Stage.IN_PROGRESS,
                                                   phase=Phase.CONTAINMENT), crew.alice)
    page = cases.list_cases(state_db, sort=CaseSort.SEVERITY, descending=True, limit=2)
    assert page.total == 4 and [c.id for c in page.items] == [ids[1], ids[3]]
    page = cases.list_cases(state_db, sort=CaseSort.SEVERITY, descending=True, limit=2, offset=2)
    assert [c.id for c in page.items] == [ids[2], ids[0]]
    assert {c.id for c in cases.list_cases(state_db, CaseFilter(team="operations")).items} == {
        ids[1], ids[3]}
    assert [c.id for c in cases.list_cases(state_db, CaseFilter(assignee="none")).items] == [ids[2]]
    assert {c.id for c in cases.list_cases(state_db, CaseFilter(assignee="Alice")).items} == {
        ids[0], ids[3]}
    assert [c.id for c in cases.list_cases(state_db, CaseFilter(
        stage=(Stage.IN_PROGRESS,), phase=(Phase.CONTAINMENT,))).items] == [ids[2]]
    assert [c.id for c in cases.list_cases(state_db, CaseFilter(q="CASE 3")).items] == [ids[3]]
    assert [c.id for c in cases.list_cases(state_db, CaseFilter(q="100%")).items] == []
    asc = cases.list_cases(state_db, sort=CaseSort.ID, descending=False)
    assert [c.id for c in asc.items] == ids
    with pytest.raises(InputError):
        cases.list_cases(state_db, limit=0)
    assert cases.parse_sort("-priority") == (CaseSort.PRIORITY, True)
    with pytest.raises(InputError, match="cannot sort by"):
        cases.parse_sort("colour")
