"""Typed shapes of notifications: channel settings per kind, and the API's in and out models.

Secrets (a webhook's HMAC key, an SMTP password) travel in, never out: outputs say only
whether one is set. Slack and Teams webhook URLs are credentials too, so outputs show their
host only.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Literal

import httpx
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, TypeAdapter, field_validator

from vigil.core.outbox import Topic
from vigil.respond.models import ChannelKind, DeliveryStatus

SEVERITIES = ("informational", "low", "medium", "high", "critical")
"""The outbox's severities, lowest first."""
Severity = Literal["informational", "low", "medium", "high", "critical"]
NAME_PATTERN = r"^[A-Za-z][A-Za-z0-9_.-]{0,63}$"
_ADDRESS = re.compile(r"[^@\s\x00-\x1f<>,;:\"()\[\]\\]+@[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?")
Name = Annotated[str, Field(pattern=NAME_PATTERN, description=(
    "A letter, then letters, digits, '_', '.', '-' (so a name never reads as an id)."))]
Id = Annotated[int, Field(ge=1, le=2_147_483_647)]
MAX_ID = 2_147_483_647


def check_text(value: str) -> str:
    """Text the databases can store (PostgreSQL refuses NUL characters)."""
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    return value


Secret = Annotated[str, Field(min_length=1, max_length=4096,
                              description="HMAC key (webhook) or SMTP password (email)."),
                   AfterValidator(check_text)]


def check_address(value: str) -> str:
    """An e-mail address (``local@domain``, ASCII: SMTPUTF8 is not used), trimmed; ValueError
    when it is not one."""
    address = value.strip()
    if len(address) > 254 or not address.isascii() or not _ADDRESS.fullmatch(address):
        raise ValueError(f"not an e-mail address: {value!r}")
    return address


def check_url(value: str) -> str:
    """An absolute ``http``/``https`` URL; ValueError otherwise."""
    text = check_text(value.strip())
    try:
        url = httpx.URL(text)
    except (httpx.InvalidURL, TypeError) as exc:
        raise ValueError(f"not a URL: {value!r}") from exc
    if url.scheme not in ("http", "https") or not url.host or len(text) > 2048:
        raise ValueError(f"not an http(s) URL: {value!r}")
    return text


class _Config(BaseModel):
    model_config = ConfigDict(extra="forbid")


class WebhookConfig(_Config):
    """A generic webhook: the JSON event is POSTed, signed with HMAC-SHA256 when a secret is set."""

    url: str

    _url = field_validator("url")(check_url)


class ChatConfig(_Config):
    """A Slack- or Teams-compatible incoming webhook. ``details`` adds the event's details to the
    message (off by default: chat rooms are read by more people than the case)."""

    url: str
    details: bool = False

    _url = field_validator("url")(check_url)


class SlackConfig(ChatConfig):
    """A Slack-compatible incoming webhook (Slack, Mattermost, Rocket.Chat): ``{"text": ...}``
    with blocks."""


class TeamsConfig(ChatConfig):
    """A Teams-compatible webhook: an Adaptive Card (Teams workflows) or a legacy MessageCard
    (Office 365 connectors)."""

    card: Literal["adaptive", "messagecard"] = "adaptive"


class EmailConfig(_Config):
    """An SMTP server. ``tls``: TLS from the first byte (port 465); ``starttls``: upgrade a plain
    connection (port 587). ``to``: addresses every message of this channel goes to."""

    host: str = Field(min_length=1, max_length=253)
    port: int = Field(default=25, ge=1, le=65535)
    starttls: bool = False
    tls: bool = False
    username: Annotated[str, AfterValidator(check_text)] | None = Field(default=None,
                                                                         max_length=255)
    from_address: str
    to: list[str] = Field(default_factory=list, max_length=100)

    @field_validator("from_address")
    @classmethod
    def _from(cls, value: str) -> str:
        return check_address(value)

    @field_validator("to")
    @classmethod
    def _to(cls, value: list[str]) -> list[str]:
        return [check_address(v) for v in value]

    @field_validator("host")
    @classmethod
    def _host(cls, value: str) -> str:
        host = value.strip()
        if not host or any(c.isspace() or c in "/@\x00" for c in host):
            raise ValueError(f"not a host name: {value!r}")
        return host


ChannelConfig = WebhookConfig | SlackConfig | TeamsConfig | EmailConfig
CONFIG_TYPES: dict[ChannelKind, type[_Config]] = {
    ChannelKind.WEBHOOK: WebhookConfig, ChannelKind.SLACK: SlackConfig,
    ChannelKind.TEAMS: TeamsConfig, ChannelKind.EMAIL: EmailConfig,
}


class _ChannelIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Name
    secret: Secret | None = None
    enabled: bool = True


class WebhookChannelIn(_ChannelIn):
    kind: Literal["webhook"]
    config: WebhookConfig


class SlackChannelIn(_ChannelIn):
    kind: Literal["slack"]
    config: SlackConfig


class TeamsChannelIn(_ChannelIn):
    kind: Literal["teams"]
    config: TeamsConfig


class EmailChannelIn(_ChannelIn):
    kind: Literal["email"]
    config: EmailConfig


NewChannel = WebhookChannelIn | SlackChannelIn | TeamsChannelIn | EmailChannelIn
ChannelIn = Annotated[NewChannel, Field(discriminator="kind")]
"""A new channel: its kind says which settings ``config`` holds."""
CHANNEL_IN: TypeAdapter[NewChannel] = TypeAdapter(ChannelIn)


class ChannelPatch(BaseModel):
    """A change to a channel: only the fields given change. ``config`` keys are merged into the
    current settings; ``secret: null`` removes the secret."""

    model_config = ConfigDict(extra="forbid")

    name: Name | None = None
    config: dict[str, object] | None = None
    secret: Secret | None = None
    enabled: bool | None = None


class ChannelOut(BaseModel):
    id: int
    name: str
    kind: ChannelKind
    config: ChannelConfig
    has_secret: bool
    enabled: bool
    created_at: datetime
    updated_at: datetime


class RuleIn(BaseModel):
    """A new rule: events of these topics (and at least this severity, when given) go to the
    channel, for the people the event names and/or fixed addresses (e-mail channels)."""

    model_config = ConfigDict(extra="forbid")

    name: Name
    topics: list[Topic] = Field(min_length=1, max_length=len(Topic))
    min_severity: Severity | None = None
    channel_id: Id
    event_recipients: bool = False
    addresses: list[str] = Field(default_factory=list, max_length=100)
    enabled: bool = True

    @field_validator("addresses")
    @classmethod
    def _addresses(cls, value: list[str]) -> list[str]:
        return [check_address(v) for v in value]


class RulePatch(BaseModel):
    """A change to a rule: only the fields given change (``min_severity: null`` removes it)."""

    model_config = ConfigDict(extra="forbid")

    name: Name | None = None
    topics: list[Topic] | None = Field(default=None, min_length=1, max_length=len(Topic))
    min_severity: Severity | None = None
    channel_id: Id | None = None
    event_recipients: bool | None = None
    addresses: list[str] | None = Field(default=None, max_length=100)
    enabled: bool | None = None

    @field_validator("addresses")
    @classmethod
    def _addresses(cls, value: list[str] | None) -> list[str] | None:
        return None if value is None else [check_address(v) for v in value]


class RuleOut(BaseModel):
    id: int
    name: str
    topics: list[Topic]
    min_severity: Severity | None
    channel_id: int
    channel: str
    event_recipients: bool
    addresses: list[str]
    enabled: bool
    created_at: datetime
    updated_at: datetime


class AttemptOut(BaseModel):
    number: int
    at: datetime
    ok: bool
    status_code: int | None
    reply: str | None
    error: str | None
    duration_ms: int


class DeliveryOut(BaseModel):
    id: int
    event_id: int | None
    topic: str
    rule_id: int | None
    rule: str | None
    channel_id: int | None
    channel: str
    recipient: str
    subject: str
    status: DeliveryStatus
    attempts: int
    next_attempt_at: datetime | None
    last_error: str | None
    created_at: datetime
    sent_at: datetime | None


class DeliveryDetail(DeliveryOut):
    attempt_log: list[AttemptOut]


class DeliveryPage(BaseModel):
    """One page of deliveries, newest first; pass ``next_before`` as ``before`` for the next."""

    deliveries: list[DeliveryOut]
    next_before: int | None


class TestResult(BaseModel):
    """The outcome of a test message (also kept in the delivery log)."""

    ok: bool
    delivery_id: int
    recipient: str
    status_code: int | None
    reply: str | None
    error: str | None
