"""Clocks: SLA targets and regulatory deadlines as one generic timer.

A clock runs from a trigger time (set by a person and audited) to ``due_at``. It can be
paused (a reason is required; the time paused is added to the deadline), resumed and stopped
(met, not required, canceled). Every case gets two SLA clocks per its severity: time to
acknowledge (stops when the case is acknowledged) and time to contain (stops when the phase
moves past containment, or the case is resolved). ``personal_data`` starts a GDPR Art. 33
obligation (72 hours from awareness), ``health_data`` a HIPAA one (60 calendar days from
discovery). :func:`check_clocks` announces due and breached clocks, once each.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import and_, or_, select, update
from sqlalchemy.orm import Session

from vigil.cases.base import (
    assignee_names,
    audit_change,
    case_ref,
    get_case,
    lock_case,
    lock_open_case,
)
from vigil.cases.enums import ClockKind, ClockOutcome, ClockState, Severity
from vigil.cases.models import Case, Clock
from vigil.cases.policy import DEFAULT_POLICY, Policy
from vigil.cases.regimes import REGIMES, RegimeCode
from vigil.cases.schemas import ClockCreate, ClockOut, ClockPause, ClockStart, ClockStop
from vigil.cases.views import clock_view
from vigil.core.auth import SYSTEM, Principal
from vigil.core.db import StateDB
from vigil.core.errors import ConflictError, InputError, NotFoundError
from vigil.core.outbox import Topic, emit
from vigil.core.timeutil import parse_duration, to_utc, utcnow

OBJECT = "case_clock"
_SLA_NAMES = {ClockKind.SLA_ACK: "Time to acknowledge", ClockKind.SLA_CONTAIN: "Time to contain"}
_DATA_REGIMES = {"personal_data": RegimeCode.GDPR_33, "health_data": RegimeCode.HIPAA_INDIVIDUAL}


def _audit(row: Clock) -> dict[str, object]:
    return {"case_id": row.case_id, "kind": row.kind, "regime": row.regime, "name": row.name,
            "trigger_at": row.trigger_at, "due_at": row.due_at, "state": row.state,
            "pause_reason": row.pause_reason, "outcome": row.outcome, "note": row.note}


def _new(session: Session, case: Case, kind: ClockKind, name: str, trigger_at: datetime,
         due_at: datetime, actor: Principal, now: datetime, regime: RegimeCode | None = None) -> Clock:
    row = Clock(case_id=case.id, kind=kind.value, regime=regime.value if regime else None,
                name=name[:128], trigger_at=trigger_at, due_at=due_at,
                state=ClockState.RUNNING.value, paused_seconds=0, breached=False,
                due_notified=False, created_by=actor.actor, created_at=now)
    session.add(row)
    session.flush()
    audit_change(session, actor, "create", OBJECT, row.id, None, _audit(row))
    return row


def start_sla(session: Session, case: Case, policy: Policy, actor: Principal, now: datetime) -> None:
    """Start the time-to-acknowledge and time-to-contain clocks of a new case."""
    severity = Severity(case.severity)
    for kind, targets in ((ClockKind.SLA_ACK, policy.ack_targets),
                          (ClockKind.SLA_CONTAIN, policy.contain_targets)):
        _new(session, case, kind, _SLA_NAMES[kind], now, now + targets[severity], actor, now)


def start_obligations(session: Session, case: Case, actor: Principal, now: datetime) -> None:
    """Start the regulatory clocks the case's data flags call for (once per regime)."""
    for flag, code in _DATA_REGIMES.items():
        if not getattr(case, flag):
            continue
        exists = session.scalar(select(Clock.id).where(Clock.case_id == case.id,
                                                       Clock.regime == code.value))
        if exists is None:
            trigger = to_utc(case.aware_at) if case.aware_at else now
            regime = REGIMES[code]
            _new(session, case, ClockKind.REGULATORY, regime.title, trigger, regime.due(trigger),
                 actor, now, code)


def _running(session: Session, case_id: int, *kinds: ClockKind) -> list[Clock]:
    query = select(Clock).where(Clock.case_id == case_id,
                                Clock.state != ClockState.STOPPED.value)
    if kinds:
        query = query.where(Clock.kind.in_([k.value for k in kinds]))
    return list(session.scalars(query.order_by(Clock.id)).all())


def running_obligations(session: Session, case_id: int) -> list[str]:
    """Names of the regulatory clocks still running or paused (they block closing)."""
    return [row.name for row in _running(session, case_id, ClockKind.REGULATORY)]


def stop_kind(session: Session, case: Case, kind: ClockKind, outcome: ClockOutcome,
              actor: Principal, now: datetime, note: str) -> None:
    """Stop the case's running clocks of one kind (a milestone was reached)."""
    for row in _running(session, case.id, kind):
        _stop(session, row, outcome, note, actor, now)


def _stop(session: Session, row: Clock, outcome: ClockOutcome, note: str, actor: Principal,
          now: datetime) -> None:
    before = _audit(row)
    if row.state == ClockState.PAUSED.value:
        _unpause(row, now)
    row.state, row.stopped_at, row.outcome, row.note = ClockState.STOPPED.value, now, outcome.value, note
    audit_change(session, actor, "stop", OBJECT, row.id, before, _audit(row))


def _unpause(row: Clock, now: datetime) -> None:
    assert row.paused_at is not None
    paused = max(timedelta(0), now - to_utc(row.paused_at))
    row.paused_seconds += int(paused.total_seconds())
    row.due_at = to_utc(row.due_at) + paused
    row.paused_at, row.pause_reason = None, None


def retarget_sla(session: Session, case: Case, policy: Policy, actor: Principal,
                 now: datetime) -> None:
    """Move the running SLA deadlines to the targets of the case's (new) severity."""
    severity = Severity(case.severity)
    targets = {ClockKind.SLA_ACK: policy.ack_targets, ClockKind.SLA_CONTAIN: policy.contain_targets}
    for row in _running(session, case.id, ClockKind.SLA_ACK, ClockKind.SLA_CONTAIN):
        before = _audit(row)
        row.due_at = (to_utc(row.trigger_at) + targets[ClockKind(row.kind)][severity]
                      + timedelta(seconds=row.paused_seconds))
        _rearm(row, now, policy)
        audit_change(session, actor, "retarget", OBJECT, row.id, before, _audit(row))


def retrigger_obligations(session: Session, case: Case, aware_at: datetime, actor: Principal,
                          now: datetime, policy: Policy) -> None:
    """Run the built-in regulatory clocks of a case from a corrected awareness time."""
    for row in _running(session, case.id, ClockKind.REGULATORY):
        if row.regime in (None, RegimeCode.CUSTOM.value):
            continue
        _retrigger(session, row, aware_at, "awareness time of the case changed", actor, now, policy)


def _retrigger(session: Session, row: Clock, trigger_at: datetime, reason: str, actor: Principal,
               now: datetime, policy: Policy) -> None:
    before = _audit(row)
    span = to_utc(row.due_at) - to_utc(row.trigger_at)
    if row.regime not in (None, RegimeCode.CUSTOM.value):
        span = REGIMES[RegimeCode(row.regime)].due(trigger_at) - trigger_at
        span += timedelta(seconds=row.paused_seconds)
    row.trigger_at, row.due_at = trigger_at, trigger_at + span
    _rearm(row, now, policy)
    audit_change(session, actor, "start", OBJECT, row.id, {**before, "reason": None},
                 {**_audit(row), "reason": reason})


def _rearm(row: Clock, now: datetime, policy: Policy) -> None:
    """After a deadline moved: a clock no longer due may be announced (and breached) again."""
    due = to_utc(row.due_at)
    if due > now:
        row.breached, row.breached_at = False, None
    if due - policy.lead(row.kind == ClockKind.REGULATORY.value) > now:
        row.due_notified = False


# -- the public use cases ------------------------------------------------------------------


def _clock(session: Session, case_id: int, clock_id: int) -> Clock:
    row = session.get(Clock, clock_id)
    if row is None or row.case_id != case_id:
        raise NotFoundError(f"no clock {clock_id} in {case_ref(case_id)}")
    return row


def _deadline(case: Case, data: ClockCreate, trigger: datetime) -> tuple[str, datetime, RegimeCode | None]:
    """Name, due time and regime of a clock a person adds."""
    explicit = data.due_at or (trigger + parse_duration(data.due_in) if data.due_in else None)
    if data.kind is ClockKind.REGULATORY:
        if data.regime is None:
            raise InputError("a regulatory clock needs a regime (e.g. GDPR-33, HIPAA-individual, custom)")
        regime = REGIMES[data.regime]
        if regime.period is None and explicit is None:
            raise InputError(f"a {data.regime.value} obligation needs due_at or due_in")
        due = explicit if regime.period is None else regime.due(trigger)
        assert due is not None
        return data.name or regime.title, due, data.regime
    if data.kind is not ClockKind.CUSTOM:
        raise InputError("SLA clocks start with the case; add regulatory or custom clocks")
    if explicit is None:
        raise InputError("a custom clock needs due_at or due_in")
    return data.name or f"Deadline of {case_ref(case.id)}", explicit, None


def add_clock(db: StateDB, case_id: int, data: ClockCreate, actor: Principal, *,
              policy: Policy = DEFAULT_POLICY, now: datetime | None = None) -> ClockOut:
    """Add a regulatory obligation or a custom deadline to an open case."""
    stamp = now or utcnow()
    with db.session() as session:
        case = lock_open_case(session, case_id, stamp)
        trigger = data.trigger_at or (to_utc(case.aware_at) if case.aware_at else stamp)
        name, due, regime = _deadline(case, data, trigger)
        if due <= trigger:
            raise InputError("the deadline must come after the trigger time")
        row = _new(session, case, data.kind, name, trigger, due, actor, stamp, regime)
        _rearm(row, stamp, policy)
        return clock_view(row, stamp, policy)


def start_clock(db: StateDB, case_id: int, clock_id: int, data: ClockStart, actor: Principal, *,
                policy: Policy = DEFAULT_POLICY, now: datetime | None = None) -> ClockOut:
    """Set the time a clock runs from (e.g. when the organisation became aware of a breach);
    the deadline moves with it, and the change and its reason are audited."""
    stamp = now or utcnow()
    with db.session() as session:
        lock_case(session, case_id, now=stamp)
        row = _clock(session, case_id, clock_id)
        if row.state == ClockState.STOPPED.value:
            raise ConflictError(f"clock {clock_id} is stopped")
        if data.trigger_at > stamp + timedelta(minutes=5):
            raise InputError("the trigger time cannot be in the future")
        _retrigger(session, row, data.trigger_at, data.reason, actor, stamp, policy)
        return clock_view(row, stamp, policy)


def pause_clock(db: StateDB, case_id: int, clock_id: int, data: ClockPause, actor: Principal, *,
                policy: Policy = DEFAULT_POLICY, now: datetime | None = None) -> ClockOut:
    """Pause a running clock (the reason is kept and audited)."""
    stamp = now or utcnow()
    with db.session() as session:
        lock_case(session, case_id, now=stamp)
        row = _clock(session, case_id, clock_id)
        if row.state != ClockState.RUNNING.value:
            raise ConflictError(f"clock {clock_id} is {row.state}, not running")
        before = _audit(row)
        row.state, row.paused_at, row.pause_reason = ClockState.PAUSED.value, stamp, data.reason
        audit_change(session, actor, "pause", OBJECT, row.id, before, _audit(row))
        return clock_view(row, stamp, policy)


def resume_clock(db: StateDB, case_id: int, clock_id: int, actor: Principal, *,
                 policy: Policy = DEFAULT_POLICY, now: datetime | None = None) -> ClockOut:
    """Resume a paused clock; its deadline moves by the time it was paused."""
    stamp = now or utcnow()
    with db.session() as session:
        lock_case(session, case_id, now=stamp)
        row = _clock(session, case_id, clock_id)
        if row.state != ClockState.PAUSED.value:
            raise ConflictError(f"clock {clock_id} is {row.state}, not paused")
        before = _audit(row)
        _unpause(row, stamp)
        row.state = ClockState.RUNNING.value
        _rearm(row, stamp, policy)
        audit_change(session, actor, "resume", OBJECT, row.id, before, _audit(row))
        return clock_view(row, stamp, policy)


def stop_clock(db: StateDB, case_id: int, clock_id: int, data: ClockStop, actor: Principal, *,
               policy: Policy = DEFAULT_POLICY, now: datetime | None = None) -> ClockOut:
    """Stop a clock: its goal was met (e.g. the authority was notified) or no longer applies.
    Stopping a regulatory clock as ``not_required`` needs a note (the decision record)."""
    stamp = now or utcnow()
    if (data.outcome is not ClockOutcome.MET) and not data.note.strip():
        raise InputError(f"stopping a clock as {data.outcome.value} needs a note saying why")
    with db.session() as session:
        lock_case(session, case_id, now=stamp)
        row = _clock(session, case_id, clock_id)
        if row.state == ClockState.STOPPED.value:
            raise ConflictError(f"clock {clock_id} is already stopped")
        _stop(session, row, data.outcome, data.note, actor, stamp)
        return clock_view(row, stamp, policy)


def list_clocks(db: StateDB, case_id: int, *, policy: Policy = DEFAULT_POLICY,
                now: datetime | None = None) -> list[ClockOut]:
    """The clocks of a case and where each stands now."""
    with db.session() as session:
        get_case(session, case_id)
        return clocks_of(session, case_id, now or utcnow(), policy)


def clocks_of(session: Session, case_id: int, now: datetime, policy: Policy) -> list[ClockOut]:
    """The clocks of a case, read in ``session``."""
    rows = session.scalars(select(Clock).where(Clock.case_id == case_id).order_by(Clock.id)).all()
    return [clock_view(row, now, policy) for row in rows]


# -- the periodic check --------------------------------------------------------------------


def check_clocks(db: StateDB, now: datetime | None = None, *,
                 policy: Policy = DEFAULT_POLICY) -> tuple[int, int]:
    """Mark and announce the running clocks past their deadline (``clock.breached``) and
    announce the ones due soon (``clock.due``); returns the (due, breached) counts.

    Idempotent and safe to run from several processes at once: the clocks to announce are
    claimed by one conditional ``UPDATE ... RETURNING`` each (breaches, then reminders), so
    every announcement happens once per clock (again only after its deadline moved, see
    :func:`_rearm`), and on SQLite the check takes the write lock with its first statement.
    """
    stamp = to_utc(now or utcnow())
    due = breached = 0
    while True:
        batch_due, batch_breached, claimed = _check_batch(db, stamp, policy)
        due, breached = due + batch_due, breached + batch_breached
        if claimed < CHECK_BATCH:
            return due, breached


CHECK_BATCH = 200
"""Clocks claimed per transaction: a backlog (thousands of clocks breached while the server
was down) is worked through in short transactions, so other writers never wait long."""


def _check_batch(db: StateDB, stamp: datetime, policy: Policy) -> tuple[int, int, int]:
    """One transaction: claim and announce up to :data:`CHECK_BATCH` breaches and reminders."""
    running = Clock.state == ClockState.RUNNING.value
    regulatory = Clock.kind == ClockKind.REGULATORY.value
    breaching = and_(running, Clock.breached.is_(False), Clock.due_at <= stamp)
    reminding = and_(running, Clock.due_notified.is_(False), or_(
        and_(regulatory, Clock.due_at <= stamp + policy.lead(True)),
        and_(~regulatory, Clock.due_at <= stamp + policy.lead(False))))
    with db.session() as session:
        breached_ids = session.scalars(
            update(Clock).where(Clock.id.in_(
                select(Clock.id).where(breaching).order_by(Clock.due_at).limit(CHECK_BATCH)
                .scalar_subquery()))
            .values(breached=True, breached_at=stamp).returning(Clock.id)).all()
        due_ids = session.scalars(
            update(Clock).where(Clock.id.in_(
                select(Clock.id).where(reminding).order_by(Clock.due_at).limit(CHECK_BATCH)
                .scalar_subquery()))
            .values(due_notified=True).returning(Clock.id)).all()
        claimed = {row.id: row for row in session.scalars(
            select(Clock).where(Clock.id.in_([*breached_ids, *due_ids]))
            .execution_options(populate_existing=True))}
        for clock_id in sorted(breached_ids, key=lambda i: to_utc(claimed[i].due_at)):
            _announce(session, claimed[clock_id], Topic.CLOCK_BREACHED, stamp)
        due = [claimed[i] for i in due_ids if to_utc(claimed[i].due_at) > stamp]
        for row in sorted(due, key=lambda r: to_utc(r.due_at)):
            _announce(session, row, Topic.CLOCK_DUE, stamp)
        return len(due), len(breached_ids), max(len(breached_ids), len(due_ids))


def _announce(session: Session, row: Clock, topic: Topic, now: datetime) -> None:
    case = session.get(Case, row.case_id)
    assert case is not None
    due = to_utc(row.due_at)
    word = "breached" if topic is Topic.CLOCK_BREACHED else "due"
    emit(session, topic, subject=f"{case_ref(case.id)} {row.name} {word} at {due:%Y-%m-%d %H:%M} UTC",
         severity=case.severity, object_type=OBJECT, object_id=row.id,
         recipients=assignee_names(session, case.id),
         details={"case_id": case.id, "case_ref": case_ref(case.id), "clock_id": row.id,
                  "kind": row.kind, "regime": row.regime, "name": row.name, "due_at": due,
                  "trigger_at": to_utc(row.trigger_at),
                  "overdue_seconds": max(0, int((now - due).total_seconds()))})
    if topic is Topic.CLOCK_BREACHED:
        audit_change(session, SYSTEM, "breach", OBJECT, row.id, {"breached": False},
                     {"breached": True, "due_at": due})
