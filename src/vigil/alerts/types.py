"""The vocabulary of alerts and incidents, the source-neutral alert input and the read views.

Pure definitions (no database): the enums an alert's fields take, :class:`AlertInput` (what a
detection, a correlation, an indicator match, an agent or a person hands to
:func:`vigil.alerts.service.record`), and the frozen views the service returns.

Severity is an ordered scale (``informational`` < ... < ``critical``) stored as its rank so
that filters (``at least high``) and sorting use an index; it is shown by name everywhere.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import IntEnum, StrEnum
from typing import Generic, TypeVar

from vigil.core.errors import InputError

T = TypeVar("T")


class Source(StrEnum):
    """Where an alert came from."""

    SIGMA = "sigma"
    CORRELATION = "correlation"
    INTEL = "intel"
    AGENT = "agent"
    MANUAL = "manual"


class Severity(IntEnum):
    """Impact, from the Sigma ``level`` scale (stored as the rank, shown as the name)."""

    INFORMATIONAL = 0
    LOW = 1
    MEDIUM = 2
    HIGH = 3
    CRITICAL = 4

    @property
    def label(self) -> str:
        return self.name.lower()

    @classmethod
    def parse(cls, text: str) -> Severity:
        """The severity named ``text`` (a Sigma level); :class:`InputError` when unknown."""
        try:
            return cls[text.strip().upper()]
        except KeyError:
            names = ", ".join(s.label for s in cls)
            raise InputError(f"unknown severity {text!r} (use {names})") from None

    @classmethod
    def from_level(cls, level: str | None) -> Severity:
        """The severity of a Sigma rule level (a rule without a valid level counts as medium,
        as the compiler does)."""
        if level is None:
            return cls.MEDIUM
        return cls.__members__.get(level.strip().upper(), cls.MEDIUM)


class Status(StrEnum):
    """Where an alert stands: ``new`` → ``acknowledged`` → ``closed`` (``new`` may close
    directly; ``closed`` reopens to ``acknowledged``)."""

    NEW = "new"
    ACKNOWLEDGED = "acknowledged"
    CLOSED = "closed"


class Disposition(StrEnum):
    """What an alert turned out to be; required when closing."""

    TRUE_POSITIVE_WITH_IMPACT = "true_positive_with_impact"
    TRUE_POSITIVE_WITHOUT_IMPACT = "true_positive_without_impact"
    BENIGN_TRUE_POSITIVE = "benign_true_positive"
    FALSE_POSITIVE_LOGIC = "false_positive_logic"
    FALSE_POSITIVE_DATA = "false_positive_data"
    DUPLICATE = "duplicate"
    NOT_APPLICABLE = "not_applicable"
    UNDETERMINED = "undetermined"


FALSE_POSITIVES = frozenset({Disposition.FALSE_POSITIVE_LOGIC, Disposition.FALSE_POSITIVE_DATA})
"""Dispositions that count against a rule's false-positive rate."""


class EntityKind(StrEnum):
    """What an incident groups its alerts by (``none``: the alerts carry no entity)."""

    HOST = "host"
    USER = "user"
    SRC_IP = "src_ip"
    NONE = "none"


class IncidentStatus(StrEnum):
    OPEN = "open"
    CLOSED = "closed"


class AlertSort(StrEnum):
    LAST_SEEN = "last_seen"
    FIRST_SEEN = "first_seen"
    SEVERITY = "severity"
    ID = "id"


def shift(moment: datetime, delta: timedelta) -> datetime:
    """``moment + delta``, held at the ends of the calendar instead of overflowing (events
    may carry any year from 1 to 9999)."""
    try:
        return moment + delta
    except OverflowError:
        return datetime.max.replace(tzinfo=UTC) if delta > timedelta(0) else \
            datetime.min.replace(tzinfo=UTC)


MAX_EVENT_IDS = 100
"""Event ids kept per alert (the count goes on past it)."""


@dataclass(frozen=True, slots=True)
class AlertInput:
    """One observation to record as an alert, whatever produced it.

    Inputs with the same ``dedup_key`` fold into one alert (its count grows, its time span
    widens, up to :data:`MAX_EVENT_IDS` event ids are kept). When ``burst_key`` is set, an
    input also folds into an alert of the same rule and burst key whose time span overlaps
    its own (a correlation seen again through a later window).
    """

    source: Source
    rule_id: str
    rule_title: str
    dedup_key: str
    first_seen: datetime
    """The time of the first event (the event time, for time-to-detect)."""
    last_seen: datetime
    level: str = "medium"
    """The rule's Sigma level (``informational`` ... ``critical``)."""
    severity: Severity | None = None
    """Defaults to the severity of ``level``."""
    rule_author: str | None = None
    """Shown with every alert (the Detection Rule License requires it)."""
    rule_references: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    host: str | None = None
    user: str | None = None
    src_ip: str | None = None
    event_ids: tuple[str, ...] = ()
    count: int = 0
    """Occurrences this input stands for (at least its number of new event ids)."""
    burst_key: str | None = None

    @property
    def effective_severity(self) -> Severity:
        return self.severity if self.severity is not None else Severity.from_level(self.level)


@dataclass(frozen=True, slots=True)
class RecordResult:
    """What :func:`vigil.alerts.service.record` did."""

    created: tuple[int, ...] = ()
    """Ids of the alerts it created."""
    updated: tuple[int, ...] = ()
    """Ids of existing alerts that new occurrences were folded into."""
    incidents_created: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True)
class AlertView:
    """An alert as the front doors and the other contexts see it."""

    id: int
    source: str
    rule_id: str
    rule_title: str
    level: str
    severity: str
    rule_author: str | None
    rule_references: list[str]
    tags: list[str]
    host: str | None
    user: str | None
    src_ip: str | None
    first_seen: datetime
    """The time of the first event (the event time)."""
    last_seen: datetime
    count: int
    event_ids: list[str]
    status: str
    disposition: str | None
    assignee: int | None
    incident_id: int | None
    case_id: int | None
    created_at: datetime
    acknowledged_at: datetime | None
    closed_at: datetime | None
    escalated_at: datetime | None
    closing_note: str | None
    dedup_key: str


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    """One change of one field of an alert (the source of MTTA/MTTR)."""

    id: int
    alert_id: int
    at: datetime
    actor: str
    field: str
    old: str | None
    new: str | None


@dataclass(frozen=True, slots=True)
class RelatedAlert:
    """An alert that shares an entity with another one, and which entities it shares."""

    alert: AlertView
    shared: tuple[str, ...]
    """``host``, ``user`` and/or ``src_ip``."""


@dataclass(frozen=True, slots=True)
class AlertDetail:
    alert: AlertView
    history: list[HistoryEntry]
    related: list[RelatedAlert]


@dataclass(frozen=True, slots=True)
class AlertFilter:
    """What to list (every field optional; lists mean any of)."""

    status: tuple[Status, ...] = ()
    severity: tuple[Severity, ...] = ()
    min_severity: Severity | None = None
    level: tuple[str, ...] = ()
    source: tuple[Source, ...] = ()
    rule_id: str | None = None
    host: str | None = None
    user: str | None = None
    src_ip: str | None = None
    incident_id: int | None = None
    case_id: int | None = None
    assignee: int | None = None
    unassigned: bool = False
    disposition: tuple[Disposition, ...] = ()
    since: datetime | None = None
    """Alerts whose last event is at or after this time."""
    until: datetime | None = None
    """Alerts whose last event is before this time."""


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    """One page of a listing: the items, and how to get the next page."""

    items: list[T]
    next_cursor: str | None
    """Pass back as ``cursor`` for the next page (None: this was the last page)."""
    total: int | None = None
    """How many items match in all (only when asked for: counting costs a scan)."""


@dataclass(frozen=True, slots=True)
class BulkResult:
    """What a bulk action did to each id."""

    done: list[int] = field(default_factory=list)
    skipped: dict[int, str] = field(default_factory=dict)
    """Ids left as they were, with the reason (unknown, already in that state...)."""


@dataclass(frozen=True, slots=True)
class IncidentView:
    id: int
    title: str
    rule_id: str
    entity_kind: str
    entity_value: str
    severity: str
    status: str
    alert_count: int
    first_seen: datetime
    last_seen: datetime
    case_id: int | None
    merged_into: int | None
    auto_group: bool
    created_at: datetime
    closed_at: datetime | None


@dataclass(frozen=True, slots=True)
class IncidentDetail:
    incident: IncidentView
    alerts: list[AlertView]
    """The incident's alerts, newest first (capped; ``incident.alert_count`` has the total)."""


@dataclass(frozen=True, slots=True)
class IncidentFilter:
    status: tuple[IncidentStatus, ...] = ()
    severity: tuple[Severity, ...] = ()
    rule_id: str | None = None
    entity_kind: EntityKind | None = None
    entity_value: str | None = None
    case_id: int | None = None
    since: datetime | None = None
    until: datetime | None = None


@dataclass(frozen=True, slots=True)
class AlertTiming:
    """The timestamps of one alert the SOC metrics need (MTTD, MTTA, MTTQ, MTTR, FP rate)."""

    id: int
    rule_id: str
    source: str
    severity: str
    assignee: int | None
    event_time: datetime
    """The first event (``created_at - event_time`` is the time to detect)."""
    created_at: datetime
    acknowledged_at: datetime | None
    """The first acknowledgement."""
    escalated_at: datetime | None
    """When the alert was first linked to a case."""
    closed_at: datetime | None
    status: str
    disposition: str | None
    case_id: int | None
    incident_id: int | None = None
