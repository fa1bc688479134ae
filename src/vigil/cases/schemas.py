"""Typed inputs and outputs of the cases context (the API's bodies and the services' results).

People are named by user id or user name (:data:`UserRef`); times are ISO 8601 with a zone
(a naive time is taken as UTC); durations are ``30m``, ``4h``, ``7d``.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Generic, Self, TypeVar

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints, model_validator

from vigil.cases.enums import (
    ActionStatus,
    ClockKind,
    ClockOutcome,
    ClockState,
    CustodyAction,
    Disposition,
    FunctionalImpact,
    InformationImpact,
    LinkKind,
    ObservableType,
    Phase,
    Priority,
    Recoverability,
    ReviewStatus,
    Severity,
    Source,
    Stage,
    TaskStatus,
    Tlp,
)
from vigil.cases.regimes import RegimeCode
from vigil.core.timeutil import parse_duration, to_utc

T = TypeVar("T")

MAX_ID = 2**31 - 1
Id = Annotated[int, Field(ge=1, le=MAX_ID)]
"""A database id (32-bit: larger numbers are refused before they reach the database)."""
UserRef = Id | Annotated[str, StringConstraints(min_length=1, max_length=64)]
"""A person: user id, or user name."""
Title = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=300)]
Text = Annotated[str, Field(max_length=100_000)]
Tag = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)]
_SHA256 = re.compile(r"[0-9a-f]{64}")
_EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
_LATEST = datetime(2200, 1, 1, tzinfo=UTC)
_LONGEST = timedelta(days=3660)


def _utc(value: datetime) -> datetime:
    try:
        value = to_utc(value)
    except OverflowError:
        raise ValueError("times must fall between 1970 and 2200") from None
    if not _EARLIEST <= value < _LATEST:
        raise ValueError("times must fall between 1970 and 2200")
    return value


def _duration(value: str) -> str:
    try:
        span = parse_duration(value)
    except OverflowError:
        span = _LONGEST * 2
    if span > _LONGEST:
        raise ValueError("durations are at most 10 years")
    return value


def _no_nul(value: Any) -> None:
    """Refuse NUL characters anywhere in an input (PostgreSQL text cannot hold them)."""
    if isinstance(value, str):
        if "\x00" in value:
            raise ValueError("text must not contain NUL characters")
    elif isinstance(value, list | tuple):
        for item in value:
            _no_nul(item)
    elif isinstance(value, BaseModel):
        for item in value.__dict__.values():
            _no_nul(item)


def _sha256(value: str) -> str:
    value = value.strip().lower()
    if not _SHA256.fullmatch(value):
        raise ValueError("a SHA-256 is 64 hexadecimal digits")
    return value


When = Annotated[datetime, AfterValidator(_utc)]
Duration = Annotated[str, AfterValidator(_duration)]
Sha256 = Annotated[str, AfterValidator(_sha256)]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")

    @model_validator(mode="after")
    def _text_without_nul(self) -> Self:
        _no_nul(self)
        return self


class _Out(BaseModel):
    model_config = ConfigDict(from_attributes=True)


# -- inputs -------------------------------------------------------------------------------


class TaskCreate(_In):
    title: Title
    description: Text = ""
    owner: UserRef | None = None
    team: str | None = Field(default=None, max_length=64)
    due_at: When | None = None
    due_in: Duration | None = None
    mandatory: bool = False


class TaskUpdate(_In):
    title: Title | None = None
    description: Text | None = None
    status: TaskStatus | None = None
    owner: UserRef | None = None
    team: str | None = Field(default=None, max_length=64)
    due_at: When | None = None
    mandatory: bool | None = None


class CaseCreate(_In):
    title: Title
    description: Text = ""
    severity: Severity = Severity.MEDIUM
    priority: Priority | None = None
    phase: Phase = Phase.DETECTION_ANALYSIS
    template: str | None = Field(default=None, max_length=64)
    alert_ids: list[Id] = Field(default_factory=list, max_length=1000)
    incident_id: Id | None = None
    assignees: list[UserRef] = Field(default_factory=list, max_length=50)
    tasks: list[TaskCreate] = Field(default_factory=list, max_length=200)
    tags: list[Tag] = Field(default_factory=list, max_length=50)
    tlp: Tlp = Tlp.AMBER
    external_ref: str | None = Field(default=None, max_length=128)
    personal_data: bool = False
    health_data: bool = False
    aware_at: When | None = None
    functional_impact: FunctionalImpact | None = None
    information_impact: InformationImpact | None = None
    recoverability: Recoverability | None = None


class CaseUpdate(_In):
    """Fields to change; absent fields stay as they are. ``assignees`` replaces the list,
    ``add_assignees``/``remove_assignees`` edit it; ``version`` refuses the change (409) when
    the case changed since it was read."""

    title: Title | None = None
    description: Text | None = None
    severity: Severity | None = None
    priority: Priority | None = None
    stage: Stage | None = None
    phase: Phase | None = None
    disposition: Disposition | None = None
    closing_note: Text | None = None
    tags: list[Tag] | None = Field(default=None, max_length=50)
    tlp: Tlp | None = None
    external_ref: str | None = Field(default=None, max_length=128)
    personal_data: bool | None = None
    health_data: bool | None = None
    aware_at: When | None = None
    functional_impact: FunctionalImpact | None = None
    information_impact: InformationImpact | None = None
    recoverability: Recoverability | None = None
    assignees: list[UserRef] | None = Field(default=None, max_length=50)
    add_assignees: list[UserRef] = Field(default_factory=list, max_length=50)
    remove_assignees: list[UserRef] = Field(default_factory=list, max_length=50)
    version: Id | None = None


class AlertLink(_In):
    alert_ids: list[Id] = Field(default_factory=list, max_length=1000)
    incident_id: Id | None = None


class CloseCase(_In):
    disposition: Disposition
    closing_note: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1,
                                                   max_length=100_000)]


class CommentCreate(_In):
    body: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=20_000)]
    parent_id: Id | None = None


class LinkCreate(_In):
    kind: LinkKind
    ref: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=128)]
    seen_at: When | None = None


class ObservableCreate(_In):
    type: ObservableType
    value: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=8192)]
    description: Text = ""
    tlp: Tlp = Tlp.AMBER
    ioc: bool = False
    sighted: bool = False
    tags: list[Tag] = Field(default_factory=list, max_length=50)
    links: list[LinkCreate] = Field(default_factory=list, max_length=500)


class EvidenceCreate(_In):
    name: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=512)]
    kind: str = Field(default="file", min_length=1, max_length=32)
    description: Text = ""
    sha256: Sha256
    size: int | None = Field(default=None, ge=0, le=2**63 - 1)
    acquired_at: When | None = None
    acquired_by: str | None = Field(default=None, max_length=255)
    holder: str | None = Field(default=None, max_length=255)
    location: str | None = Field(default=None, max_length=4096)


class CustodyCreate(_In):
    action: CustodyAction
    holder: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=255)]
    at: When | None = None
    location: str | None = Field(default=None, max_length=4096)
    note: Text = ""
    sha256: Sha256 | None = None


class TimelineCreate(_In):
    occurred_at: When
    title: Title
    description: Text = ""
    category: str | None = Field(default=None, max_length=64)
    technique: str | None = Field(default=None, pattern=r"^T\d{4}(\.\d{3})?$")
    source: str | None = Field(default=None, max_length=255)
    flagged: bool = False


class ClockCreate(_In):
    """A regulatory obligation (``regime``) or a custom deadline (``due_at`` or ``due_in``),
    running from ``trigger_at`` (default: the case's awareness time, else now)."""

    kind: ClockKind = ClockKind.REGULATORY
    regime: RegimeCode | None = None
    name: str | None = Field(default=None, max_length=128)
    trigger_at: When | None = None
    due_at: When | None = None
    due_in: Duration | None = None


class ClockStart(_In):
    """Set (or correct) the trigger time a clock runs from; the reason is audited."""

    trigger_at: When
    reason: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2000)]


class ClockPause(_In):
    reason: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2000)]


class ClockStop(_In):
    outcome: ClockOutcome = ClockOutcome.MET
    note: str = Field(default="", max_length=20_000)


class ReviewUpdate(_In):
    summary: Text | None = None
    what_happened: Text | None = None
    root_cause: Text | None = None
    went_well: Text | None = None
    went_badly: Text | None = None
    detection_gaps: Text | None = None
    lessons: Text | None = None
    first_compromise_at: When | None = None


class ActionItemCreate(_In):
    title: Title
    owner: UserRef
    due_at: When | None = None
    link: str | None = Field(default=None, max_length=512)


class ActionItemUpdate(_In):
    title: Title | None = None
    owner: UserRef | None = None
    due_at: When | None = None
    status: ActionStatus | None = None
    link: str | None = Field(default=None, max_length=512)


# -- outputs ------------------------------------------------------------------------------


class Page(BaseModel, Generic[T]):
    """One page of a list, and how many items match in all."""

    items: list[T]
    total: int
    limit: int
    offset: int


class AssigneeOut(_Out):
    user_id: int
    username: str
    team: str | None
    assigned_at: datetime


class CaseSummary(_Out):
    """A case in a list."""

    id: int
    ref: str
    title: str
    severity: Severity
    priority: Priority
    stage: Stage
    phase: Phase
    disposition: Disposition | None
    assignees: list[AssigneeOut]
    created_at: datetime
    updated_at: datetime
    version: int


class CaseOut(CaseSummary):
    """A case's own fields (what an update returns)."""

    description: str
    closing_note: str | None
    template: str | None
    tlp: Tlp
    tags: list[str]
    external_ref: str | None
    personal_data: bool
    health_data: bool
    aware_at: datetime | None
    functional_impact: FunctionalImpact | None
    information_impact: InformationImpact | None
    recoverability: Recoverability | None
    created_by: str
    acknowledged_at: datetime | None
    contained_at: datetime | None
    resolved_at: datetime | None
    closed_at: datetime | None


class TaskOut(_Out):
    id: int
    case_id: int
    title: str
    description: str
    status: TaskStatus
    owner_id: int | None
    owner_name: str | None
    team: str | None
    due_at: datetime | None
    overdue: bool
    mandatory: bool
    origin: str | None
    created_at: datetime
    updated_at: datetime
    completed_at: datetime | None


class CommentOut(_Out):
    id: int
    case_id: int
    parent_id: int | None
    author: str
    body: str
    mentions: list[str]
    created_at: datetime


class LinkOut(_Out):
    kind: LinkKind
    ref: str
    seen_at: datetime | None
    linked_by: str
    linked_at: datetime


class ObservableOut(_Out):
    id: int
    case_id: int
    type: ObservableType
    value: str
    description: str
    tlp: Tlp
    ioc: bool
    sighted: bool
    tags: list[str]
    links: list[LinkOut]
    created_by: str
    created_at: datetime


class CustodyOut(_Out):
    id: int
    at: datetime
    action: CustodyAction
    holder: str
    location: str | None
    note: str
    sha256: str | None
    hash_matches: bool | None
    recorded_by: str
    recorded_at: datetime


class EvidenceOut(_Out):
    id: int
    case_id: int
    name: str
    kind: str
    description: str
    sha256: str
    size: int | None
    acquired_at: datetime
    acquired_by: str
    holder: str
    location: str | None
    custody: list[CustodyOut]
    created_by: str
    created_at: datetime


class ClockOut(_Out):
    id: int
    case_id: int
    kind: ClockKind
    regime: str | None
    name: str
    trigger_at: datetime
    due_at: datetime
    state: ClockState
    status: str
    """``on_track``, ``due_soon``, ``overdue``, ``paused``, ``met``, ``met_late``,
    ``not_required`` or ``canceled``."""
    paused_at: datetime | None
    pause_reason: str | None
    paused_seconds: int
    stopped_at: datetime | None
    outcome: ClockOutcome | None
    note: str | None
    breached: bool
    breached_at: datetime | None


class TimelineItem(BaseModel):
    """One line of the merged timeline: a change, an alert, an event, a task or a manual entry."""

    at: datetime
    kind: str
    title: str
    detail: str = ""
    actor: str | None = None
    ref: str | None = None


class TimelineEntryOut(_Out):
    id: int
    case_id: int
    occurred_at: datetime
    title: str
    description: str
    category: str | None
    technique: str | None
    source: str | None
    flagged: bool
    created_by: str
    created_at: datetime


class ActionItemOut(_Out):
    id: int
    title: str
    owner_id: int
    owner_name: str
    due_at: datetime | None
    status: ActionStatus
    link: str | None


class ReviewOut(_Out):
    id: int
    case_id: int
    status: ReviewStatus
    summary: str
    what_happened: str
    root_cause: str
    went_well: str
    went_badly: str
    detection_gaps: str
    lessons: str
    first_compromise_at: datetime | None
    action_items: list[ActionItemOut]
    created_by: str
    created_at: datetime
    updated_at: datetime
    completed_at: datetime | None
    completed_by: str | None


class CaseEventOut(_Out):
    """One change of one case field (``stage``, ``phase``, ``assignee`` ...): the SOC metrics'
    source. ``old`` is empty for the first value (the case opening)."""

    id: int
    case_id: int
    at: datetime
    actor: str
    source: Source
    field: str
    old: str | None
    new: str | None


class CaseDetail(CaseOut):
    """A case with everything attached to it."""

    alert_ids: list[int]
    tasks: list[TaskOut]
    comments: list[CommentOut]
    observables: list[ObservableOut]
    evidence: list[EvidenceOut]
    clocks: list[ClockOut]
    review: ReviewOut | None
    timeline: list[TimelineItem]


class TemplateTask(BaseModel):
    model_config = ConfigDict(extra="forbid")

    title: Title
    description: str = ""
    team: str | None = None
    due_in: Duration | None = None
    mandatory: bool = False


class CaseTemplate(BaseModel):
    """A case template (YAML): the fields it pre-fills and the tasks it adds."""

    model_config = ConfigDict(extra="forbid")

    name: Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$")]
    title: Title
    description: str = ""
    severity: Severity = Severity.MEDIUM
    priority: Priority | None = None
    phase: Phase = Phase.DETECTION_ANALYSIS
    tlp: Tlp = Tlp.AMBER
    tags: list[Tag] = Field(default_factory=list)
    personal_data: bool = False
    health_data: bool = False
    tasks: list[TemplateTask] = Field(default_factory=list)
    origin: str = "builtin"
