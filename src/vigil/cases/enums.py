"""The vocabularies of a case: stage, phase, disposition, severity, priority and the rest.

Stage, phase, disposition, severity and priority are kept apart on purpose: the stage is a
fixed enum that drives the metrics (MTTA, MTTR), the phase follows the incident-response
life cycle (NIST SP 800-61, SANS PICERL), the disposition says what the case turned out to be
and is required at close, severity is impact and priority is urgency.
"""

from __future__ import annotations

from enum import StrEnum

from vigil.alerts import types as _alert_types


class Stage(StrEnum):
    NEW = "new"
    ACKNOWLEDGED = "acknowledged"
    IN_PROGRESS = "in_progress"
    ON_HOLD = "on_hold"
    RESOLVED = "resolved"
    CLOSED = "closed"


TRANSITIONS: dict[Stage, frozenset[Stage]] = {
    Stage.NEW: frozenset({Stage.ACKNOWLEDGED, Stage.IN_PROGRESS, Stage.RESOLVED, Stage.CLOSED}),
    Stage.ACKNOWLEDGED: frozenset({Stage.IN_PROGRESS, Stage.ON_HOLD, Stage.RESOLVED, Stage.CLOSED}),
    Stage.IN_PROGRESS: frozenset({Stage.ON_HOLD, Stage.RESOLVED, Stage.CLOSED}),
    Stage.ON_HOLD: frozenset({Stage.IN_PROGRESS, Stage.RESOLVED, Stage.CLOSED}),
    Stage.RESOLVED: frozenset({Stage.CLOSED, Stage.IN_PROGRESS}),
    Stage.CLOSED: frozenset({Stage.IN_PROGRESS}),
}
"""Allowed stage moves. Leaving ``resolved`` or ``closed`` for ``in_progress`` is a reopening
(recorded as its own case event); every other move is refused with a conflict."""

OPEN_STAGES = frozenset({Stage.NEW, Stage.ACKNOWLEDGED, Stage.IN_PROGRESS, Stage.ON_HOLD})
ACKNOWLEDGED_STAGES = frozenset({Stage.ACKNOWLEDGED, Stage.IN_PROGRESS, Stage.ON_HOLD,
                                 Stage.RESOLVED, Stage.CLOSED})
"""Reaching any of these stages stops the time-to-acknowledge clock."""


class Phase(StrEnum):
    PREPARATION = "preparation"
    DETECTION_ANALYSIS = "detection_analysis"
    CONTAINMENT = "containment"
    ERADICATION = "eradication"
    RECOVERY = "recovery"
    POST_INCIDENT = "post_incident"


CONTAINED_PHASES = frozenset({Phase.ERADICATION, Phase.RECOVERY, Phase.POST_INCIDENT})
"""Reaching any of these phases means containment is done (stops the time-to-contain clock)."""

CSF_FUNCTION: dict[Phase, str] = {
    Phase.PREPARATION: "Identify/Protect", Phase.DETECTION_ANALYSIS: "Detect",
    Phase.CONTAINMENT: "Respond", Phase.ERADICATION: "Respond", Phase.RECOVERY: "Recover",
    Phase.POST_INCIDENT: "Improve",
}
"""The NIST CSF 2.0 function each phase belongs to (SP 800-61 Rev. 3)."""


Disposition = _alert_types.Disposition
"""What a case turned out to be: the same vocabulary as an alert's disposition."""

TRUE_POSITIVES = frozenset({Disposition.TRUE_POSITIVE_WITH_IMPACT,
                            Disposition.TRUE_POSITIVE_WITHOUT_IMPACT})
"""Dispositions that need a completed post-incident review before the case closes."""


class Severity(StrEnum):
    INFORMATIONAL = "informational"
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"


class Priority(StrEnum):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"


SEVERITY_RANK = {s: i for i, s in enumerate(Severity)}
PRIORITY_RANK = {p: i for i, p in enumerate(Priority)}


class FunctionalImpact(StrEnum):
    NONE = "none"
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"


class InformationImpact(StrEnum):
    NONE = "none"
    PRIVACY_BREACH = "privacy_breach"
    PROPRIETARY_BREACH = "proprietary_breach"
    INTEGRITY_LOSS = "integrity_loss"


class Recoverability(StrEnum):
    REGULAR = "regular"
    SUPPLEMENTED = "supplemented"
    EXTENDED = "extended"
    NOT_RECOVERABLE = "not_recoverable"


class Source(StrEnum):
    """Where a change came from (kept on every case event)."""

    USER = "user"
    API = "api"
    PLAYBOOK = "playbook"
    SYSTEM = "system"


class TaskStatus(StrEnum):
    TODO = "todo"
    IN_PROGRESS = "in_progress"
    ON_HOLD = "on_hold"
    DONE = "done"
    CANCELED = "canceled"


FINISHED_TASKS = frozenset({TaskStatus.DONE, TaskStatus.CANCELED})


class ObservableType(StrEnum):
    IP = "ip"
    DOMAIN = "domain"
    URL = "url"
    HASH = "hash"
    HOST = "host"
    USER = "user"
    FILE = "file"
    EMAIL = "email"


class LinkKind(StrEnum):
    ALERT = "alert"
    EVENT = "event"


class Tlp(StrEnum):
    CLEAR = "clear"
    GREEN = "green"
    AMBER = "amber"
    AMBER_STRICT = "amber+strict"
    RED = "red"


class CustodyAction(StrEnum):
    ACQUIRED = "acquired"
    TRANSFERRED = "transferred"
    ACCESSED = "accessed"
    ANALYZED = "analyzed"
    COPIED = "copied"
    STORED = "stored"
    RETURNED = "returned"
    DESTROYED = "destroyed"


class ClockKind(StrEnum):
    SLA_ACK = "sla_ack"
    SLA_CONTAIN = "sla_contain"
    REGULATORY = "regulatory"
    CUSTOM = "custom"


class ClockState(StrEnum):
    RUNNING = "running"
    PAUSED = "paused"
    STOPPED = "stopped"


class ClockOutcome(StrEnum):
    """Why a clock stopped: its goal was met (in time or late), or it no longer applies."""

    MET = "met"
    NOT_REQUIRED = "not_required"
    CANCELED = "canceled"


class ReviewStatus(StrEnum):
    DRAFT = "draft"
    COMPLETED = "completed"


class ActionStatus(StrEnum):
    OPEN = "open"
    IN_PROGRESS = "in_progress"
    DONE = "done"
    CANCELED = "canceled"
