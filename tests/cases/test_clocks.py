"""Clocks on both databases: SLA targets, GDPR Art. 33 (72 h) and HIPAA (60 days) deadlines,
trigger changes, pause and resume, stopping, and the periodic check (once per clock)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from vigil.cases import (
    CaseCreate,
    CaseUpdate,
    ClockCreate,
    ClockPause,
    ClockStart,
    ClockStop,
    Policy,
    Stage,
)
from vigil.cases import service as cases
from vigil.core.config import CasesSettings, Settings
from vigil.core.db import StateDB
from vigil.core.errors import ConflictError, InputError
from vigil.core.outbox import Topic

from .conftest import Crew, audits, events, last_event_id, payload

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def _clock(db: StateDB, case_id: int, *, kind: str | None = None, regime: str | None = None,
           now: datetime = T0) -> object:
    return next(c for c in cases.list_clocks(db, case_id, now=now)
                if (kind is None or c.kind == kind) and (regime is None or c.regime == regime))


def test_sla_clocks_follow_severity_targets(state_db: StateDB, crew: Crew) -> None:
    detail = cases.create_case(state_db, CaseCreate(title="t", severity="high"), crew.alice, now=T0)
    due = {c.kind: c.due_at for c in detail.clocks}
    assert due == {"sla_ack": T0 + timedelta(hours=1), "sla_contain": T0 + timedelta(hours=24)}
    policy = Policy.from_settings(Settings(cases=CasesSettings(ack_targets={"high": "30m"})))
    other = cases.create_case(state_db, CaseCreate(title="t", severity="high"), crew.alice,
                              policy=policy, now=T0)
    assert {c.kind: c.due_at - T0 for c in other.clocks}["sla_ack"] == timedelta(minutes=30)
    assert policy.ack_targets["low"] == timedelta(hours=24)  # unset severities keep the default
    out = cases.update_case(state_db, detail.id, CaseUpdate(stage=Stage.ACKNOWLEDGED), crew.oscar,
                            now=T0 + timedelta(minutes=20))
    assert out.acknowledged_at == T0 + timedelta(minutes=20)
    ack = _clock(state_db, detail.id, kind="sla_ack", now=T0 + timedelta(hours=2))
    assert (ack.state, ack.status, ack.stopped_at) == ("stopped", "met", T0 + timedelta(minutes=20))


def test_gdpr_72_hours_from_awareness(state_db: StateDB, crew: Crew) -> None:
    aware = T0 - timedelta(hours=5)
    detail = cases.create_case(state_db, CaseCreate(title="Leaked CRM export", personal_data=True,
                                                    aware_at=aware), crew.alice, now=T0)
    gdpr = next(c for c in detail.clocks if c.regime == "GDPR-33")
    assert (gdpr.kind, gdpr.trigger_at, gdpr.due_at) == ("regulatory", aware,
                                                         aware + timedelta(hours=72))
    assert gdpr.name == "GDPR Art. 33 notification to the supervisory authority"
    corrected = T0 - timedelta(hours=30)
    cases.update_case(state_db, detail.id, CaseUpdate(aware_at=corrected), crew.alice, now=T0)
    gdpr = _clock(state_db, detail.id, regime="GDPR-33")
    assert (gdpr.trigger_at, gdpr.due_at) == (corrected, corrected + timedelta(hours=72))
    with pytest.raises(InputError, match="aware_at cannot be in the future"):
        cases.update_case(state_db, detail.id, CaseUpdate(aware_at=T0 + timedelta(days=1)),
                          crew.alice, now=T0)
    started = [a for a in audits(state_db, "case_clock", gdpr.id) if a.action == "start"]
    assert started and started[0].after is not None
    assert started[0].after["reason"] == "awareness time of the case changed"


def test_flag_on_an_existing_case_starts_hipaa_60_days(state_db: StateDB, crew: Crew) -> None:
    detail = cases.create_case(state_db, CaseCreate(title="Clinic share exposed"), crew.alice, now=T0)
    assert all(c.kind != "regulatory" for c in detail.clocks)
    later = T0 + timedelta(hours=3)
    cases.update_case(state_db, detail.id, CaseUpdate(health_data=True), crew.alice, now=later)
    hipaa = _clock(state_db, detail.id, regime="HIPAA-individual")
    assert hipaa.trigger_at == later and hipaa.due_at == later + timedelta(days=60)
    cases.update_case(state_db, detail.id, CaseUpdate(health_data=False), crew.alice, now=later)
    cases.update_case(state_db, detail.id, CaseUpdate(health_data=True), crew.alice, now=later)
    assert len([c for c in cases.list_clocks(state_db, detail.id) if c.regime]) == 1
    discovery = datetime(2026, 1, 30, 14, 0, tzinfo=UTC)
    moved = cases.start_clock(state_db, detail.id, hipaa.id, ClockStart(
        trigger_at=discovery, reason="Backup logs show access on 30 January"), crew.alice, now=later)
    assert moved.due_at == datetime(2026, 3, 31, 14, 0, tzinfo=UTC)  # 60 calendar days
    assert moved.status == "on_track"


def test_custom_and_added_obligations(state_db: StateDB, crew: Crew) -> None:
    case_id = cases.create_case(state_db, CaseCreate(title="t"), crew.alice, now=T0).id
    custom = cases.add_clock(state_db, case_id, ClockCreate(
        kind="custom", name="Customer contract: notify within 24h", due_in="24h"), crew.alice, now=T0)
    assert (custom.kind, custom.due_at) == ("custom", T0 + timedelta(hours=24))
    media = cases.add_clock(state_db, case_id, ClockCreate(regime="HIPAA-media"), crew.alice, now=T0)
    assert media.due_at == T0 + timedelta(days=60)
    nis2 = cases.add_clock(state_db, case_id, ClockCreate(
        regime="custom", name="NIS2 early warning", due_at=T0 + timedelta(hours=24)), crew.alice,
        now=T0)
    assert nis2.regime == "custom" and nis2.status == "due_soon"  # regulatory lead is 24h
    for bad, message in (({"kind": "custom"}, "needs due_at or due_in"),
                         ({"kind": "regulatory"}, "needs a regime"),
                         ({"regime": "custom"}, "needs due_at or due_in"),
                         ({"kind": "sla_ack"}, "SLA clocks start with the case"),
                         ({"kind": "custom", "due_at": T0 - timedelta(hours=1)}, "after the trigger")):
        with pytest.raises(InputError, match=message):
            cases.add_clock(state_db, case_id, ClockCreate.model_validate(bad), crew.alice, now=T0)


def test_pause_and_resume_move_the_deadline(state_db: StateDB, crew: Crew) -> None:
    case_id = cases.create_case(state_db, CaseCreate(title="t", severity="medium"), crew.alice,
                                now=T0).id
    ack = _clock(state_db, case_id, kind="sla_ack")
    assert ack.due_at == T0 + timedelta(hours=4)
    paused = cases.pause_clock(state_db, case_id, ack.id, ClockPause(reason="Waiting on the ISP"),
                               crew.alice, now=T0 + timedelta(hours=1))
    assert (paused.state, paused.status, paused.pause_reason) == ("paused", "paused",
                                                                  "Waiting on the ISP")
    with pytest.raises(ConflictError, match="not running"):
        cases.pause_clock(state_db, case_id, ack.id, ClockPause(reason="again"), crew.alice)
    with pytest.raises(ValueError, match="at least 1 character"):
        ClockPause(reason="  ")
    assert cases.check_clocks(state_db, T0 + timedelta(hours=10)) == (0, 0)  # paused: never due
    resumed = cases.resume_clock(state_db, case_id, ack.id, crew.alice, now=T0 + timedelta(hours=3))
    assert resumed.due_at == T0 + timedelta(hours=6) and resumed.paused_seconds == 7200
    assert resumed.state == "running" and resumed.pause_reason is None
    with pytest.raises(ConflictError, match="not paused"):
        cases.resume_clock(state_db, case_id, ack.id, crew.alice)
    actions = [a.action for a in audits(state_db, "case_clock", ack.id)][::-1]
    assert actions == ["create", "pause", "resume"]
    stopped = cases.stop_clock(state_db, case_id, ack.id, ClockStop(), crew.alice,
                               now=T0 + timedelta(hours=7))
    assert stopped.status == "met_late"
    with pytest.raises(ConflictError, match="already stopped"):
        cases.stop_clock(state_db, case_id, ack.id, ClockStop(), crew.alice)


def test_check_clocks_announces_once(state_db: StateDB, crew: Crew) -> None:
    case_id = cases.create_case(state_db, CaseCreate(title="Ransom note on file server",
                                                     severity="critical", assignees=["oscar"]),
                                crew.alice, now=T0).id
    start = last_event_id(state_db)
    assert cases.check_clocks(state_db, T0 - timedelta(hours=2)) == (0, 0)
    assert cases.check_clocks(state_db, T0 + timedelta(minutes=5)) == (1, 0)  # ack: 15m, lead 1h
    assert cases.check_clocks(state_db, T0 + timedelta(minutes=6)) == (0, 0)
    assert cases.check_clocks(state_db, T0 + timedelta(minutes=16)) == (0, 1)
    assert cases.check_clocks(state_db, T0 + timedelta(hours=3)) == (1, 0)  # contain: 4h
    assert cases.check_clocks(state_db, T0 + timedelta(hours=3)) == (0, 0)
    found = events(state_db, start)
    assert [e.topic for e in found] == [Topic.CLOCK_DUE, Topic.CLOCK_BREACHED, Topic.CLOCK_DUE]
    assert found[0].recipients == ("oscar",) and payload(found[0])["kind"] == "sla_ack"
    assert payload(found[2])["kind"] == "sla_contain"
    assert found[1].subject.startswith(f"CASE-{case_id} Time to acknowledge breached")


def test_breach_marking_is_idempotent(state_db: StateDB, crew: Crew) -> None:
    case_id = cases.create_case(state_db, CaseCreate(title="t", severity="critical",
                                                     assignees=["alice"]), crew.alice, now=T0).id
    start = last_event_id(state_db)
    now = T0 + timedelta(minutes=16)
    assert cases.check_clocks(state_db, now) == (0, 1)
    assert cases.check_clocks(state_db, now) == (0, 0)
    assert cases.check_clocks(state_db, now + timedelta(hours=1)) == (0, 0)
    found = events(state_db, start)
    assert [e.topic for e in found] == [Topic.CLOCK_BREACHED]
    details = payload(found[0])
    assert details["case_id"] == case_id and details["overdue_seconds"] == 60
    ack = _clock(state_db, case_id, kind="sla_ack", now=now)
    assert ack.breached and ack.breached_at == now and ack.status == "overdue"
    assert [a.actor for a in audits(state_db, "case_clock", ack.id) if a.action == "breach"] == [
        "system:vigil"]
    timeline = cases.case_timeline(state_db, case_id)
    assert any(i.kind == "clock" and "breached" in i.title for i in timeline)
    # a later deadline (severity lowered) re-arms the clock; acknowledging stops it as met late
    cases.update_case(state_db, case_id, CaseUpdate(severity="low"), crew.alice, now=now)
    ack = _clock(state_db, case_id, kind="sla_ack", now=now)
    assert not ack.breached and ack.due_at == T0 + timedelta(hours=24)
    cases.update_case(state_db, case_id, CaseUpdate(stage=Stage.ACKNOWLEDGED), crew.alice, now=now)
    assert _clock(state_db, case_id, kind="sla_ack", now=now).status == "met"


def test_a_backlog_of_breaches_is_worked_in_short_transactions(
        state_db: StateDB, crew: Crew, monkeypatch: pytest.MonkeyPatch) -> None:
    from vigil.cases import clocks

    monkeypatch.setattr(clocks, "CHECK_BATCH", 3)
    for number in range(5):
        cases.create_case(state_db, CaseCreate(title=f"backlog {number}", severity="critical"),
                          crew.alice, now=T0)
    start = last_event_id(state_db)
    assert cases.check_clocks(state_db, T0 + timedelta(days=1)) == (0, 10)  # ack and contain
    assert cases.check_clocks(state_db, T0 + timedelta(days=1)) == (0, 0)
    assert [e.topic for e in events(state_db, start)] == [Topic.CLOCK_BREACHED] * 10
