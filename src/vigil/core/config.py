"""Configuration: defaults, then ``vigil.toml`` in the data folder, then ``VIGIL_*`` variables.

Everything works with no file at all. Nested settings use ``__`` in environment variables,
for example ``VIGIL_INGEST__SYSLOG_PORT=6514``.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    SettingsError,
)

from vigil.core.errors import ConfigError
from vigil.core.timeutil import parse_duration

DEFAULT_DATA_DIR = Path("vigil-data")
CONFIG_FILE_NAME = "vigil.toml"


class IngestSettings(BaseModel):
    """Listeners, spool and batching."""

    model_config = ConfigDict(extra="forbid")

    syslog_enabled: bool = True
    syslog_host: str = "127.0.0.1"
    syslog_port: int = Field(default=5514, ge=0, le=65535)
    syslog_udp: bool = True
    syslog_tcp: bool = True
    syslog_tls_cert: Path | None = None
    syslog_tls_key: Path | None = None
    syslog_max_frame: int = Field(default=1024 * 1024, ge=1024)
    http_max_body: int = Field(default=16 * 1024 * 1024, ge=1024)
    batch_size: int = Field(default=20_000, ge=1)
    batch_interval: float = Field(default=0.5, gt=0)
    spool_max_pending: int = Field(default=2_000_000, ge=1000)
    spool_group_commit_ms: float = Field(default=5.0, ge=0)
    max_record_bytes: int = Field(default=8 * 1024 * 1024, ge=1024)


class StoreSettings(BaseModel):
    """The DuckDB event store."""

    model_config = ConfigDict(extra="forbid")

    retention_days: int = Field(default=365, ge=1)
    retention: dict[str, int] = Field(default_factory=dict)
    memory_limit: str = "512MB"
    threads: int = Field(default=2, ge=1)


class DetectSettings(BaseModel):
    """Detection: streaming on ingest, alert suppression."""

    model_config = ConfigDict(extra="forbid")

    streaming: bool = True
    suppress_seconds: int = Field(default=3600, ge=0)
    """Detections of one rule on one host within this window share one alert (0: never)."""
    reload_seconds: float = Field(default=5.0, gt=0)
    """How often the streaming engine looks for changed rules."""
    min_level: str = Field(default="informational",
                           pattern="^(informational|low|medium|high|critical)$")
    """Streaming runs enabled rules of this level and above."""
    statuses: list[str] = Field(default_factory=list)
    """Streaming runs only rules of these statuses (empty: every status)."""


_SEVERITIES = ("informational", "low", "medium", "high", "critical")


def _durations(value: dict[str, str]) -> dict[str, str]:
    """Check a per-severity map of durations (``15m``, ``4h``, ``7d``)."""
    for severity, text in value.items():
        if severity not in _SEVERITIES:
            raise ValueError(f"unknown severity {severity!r} (use {', '.join(_SEVERITIES)})")
        parse_duration(text)
    return value


def _duration(value: str) -> str:
    parse_duration(value)
    return value


class CasesSettings(BaseModel):
    """Cases: SLA targets per severity, reminder lead times, custom case templates."""

    model_config = ConfigDict(extra="forbid")

    ack_targets: dict[str, str] = Field(default_factory=lambda: {
        "critical": "15m", "high": "1h", "medium": "4h", "low": "24h", "informational": "72h"})
    """Time to acknowledge a case, per severity (``15m``, ``4h``, ``7d``)."""
    contain_targets: dict[str, str] = Field(default_factory=lambda: {
        "critical": "4h", "high": "24h", "medium": "3d", "low": "7d", "informational": "14d"})
    """Time to contain (phase past containment), per severity."""
    due_soon: str = "1h"
    """An SLA clock is announced as due this long before its deadline."""
    regulatory_due_soon: str = "24h"
    """A regulatory deadline is announced as due this long before it falls."""
    templates_dir: Path | None = None
    """Folder of custom case templates (``*.yml``); default ``case-templates`` in the data folder."""

    _check_targets = field_validator("ack_targets", "contain_targets")(_durations)
    _check_lead = field_validator("due_soon", "regulatory_due_soon")(_duration)


class NotifySettings(BaseModel):
    """Notifications: how often the outbox is read, how deliveries are retried and timed out."""

    model_config = ConfigDict(extra="forbid")

    poll_interval: float = Field(default=2.0, gt=0, le=3600)
    """Seconds between two passes (read the outbox, send what is due)."""
    max_attempts: int = Field(default=8, ge=1, le=100)
    """Attempts per delivery before it is marked failed."""
    backoff_base: float = Field(default=30.0, gt=0)
    """Seconds before the first retry; doubled for each further attempt (with jitter)."""
    backoff_max: float = Field(default=3600.0, gt=0)
    """The longest wait between two attempts, in seconds."""
    http_timeout: float = Field(default=10.0, gt=0, le=300)
    """Seconds for a webhook, Slack or Teams request (connect, write and read)."""
    smtp_timeout: float = Field(default=20.0, gt=0, le=300)
    """Seconds for each step of an SMTP conversation."""
    settle_seconds: float = Field(default=10.0, ge=0, le=3600)
    """The outbox cursor only moves past events older than this, so an event whose transaction
    commits late (PostgreSQL hands out ids before commit) is still seen."""
    max_event_age: int = Field(default=86_400, ge=0)
    """Events older than this many seconds are not notified (after an outage, or when the
    notifier first runs on an old database); 0: no limit."""
    batch_size: int = Field(default=200, ge=1, le=10_000)
    """Outbox events read, and deliveries sent, per step of a pass."""


class AlertsSettings(BaseModel):
    """Alerts: grouping into incidents and related-alert suggestions."""

    model_config = ConfigDict(extra="forbid")

    group_window_seconds: int = Field(default=86_400, ge=0)
    """A new alert joins the open incident of the same rule and entity seen within this many
    seconds (of event time); 0: every alert opens its own incident."""
    group_by: list[str] = Field(default_factory=lambda: ["host", "user", "src_ip"], min_length=1)
    """The entity an alert is grouped by: the first of these kinds it has a value for."""
    related_days: int = Field(default=30, ge=1, le=3650)
    """Related alerts (same host, user or source IP) are looked for this many days back."""
    related_limit: int = Field(default=20, ge=1, le=200)
    """At most this many related alerts are suggested."""

    @field_validator("group_by")
    @classmethod
    def _known_kinds(cls, value: list[str]) -> list[str]:
        for kind in value:
            if kind not in ("host", "user", "src_ip"):
                raise ValueError(f"unknown entity kind {kind!r} (use host, user, src_ip)")
        return value


class ServerSettings(BaseModel):
    """The HTTP server."""

    model_config = ConfigDict(extra="forbid")

    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    threads: int = Field(default=4, ge=1, le=256)
    """Requests handled at once (the rest wait their turn): a few threads keep one Python
    process busy without the contention of many."""
    clock_check_seconds: float = Field(default=30, gt=0)
    """How often case clocks (SLA and regulatory deadlines) are checked for due and breached."""
    audit_checkpoint_minutes: float = Field(default=60, gt=0)
    """How often the end of the audit chain is signed while the server runs."""
    notifications: bool = True
    """Whether the server sends notifications (the outbox is kept either way)."""


class AuthSettings(BaseModel):
    """Sign-in sessions and the login rate limit."""

    model_config = ConfigDict(extra="forbid")

    session_hours: int = Field(default=12, ge=1, le=24 * 31)
    """A session ends this many hours after sign-in, however active it is."""
    idle_minutes: int = Field(default=60, ge=1, le=24 * 60 * 31)
    """A session also ends after this many minutes without a request."""
    login_max_failures: int = Field(default=5, ge=1)
    """Failed sign-ins allowed per user name, and per client address, within the window."""
    login_window_seconds: int = Field(default=300, ge=1, le=7 * 24 * 3600)
    """The sliding window of the login rate limit."""


class IntelSettings(BaseModel):
    """Threat intelligence: decay, allowlists, matching and feeds."""

    model_config = ConfigDict(extra="forbid")

    live_matching: bool = True
    """Match every stored batch against the active indicators."""
    retro_days: int = Field(default=90, ge=0, le=3650)
    """New indicators are matched against this many days of stored events (0: no retro-hunt)."""
    builtin_allowlists: bool = True
    """Never alert on special-use and documentation addresses and reserved names."""
    own_infrastructure: list[str] = Field(default_factory=list)
    """Addresses, networks and host names of the platform itself: never alerted on."""
    decay_threshold: float = Field(default=20, ge=0, le=100)
    """An indicator whose decayed score falls below this is no longer matched or exported."""
    default_confidence: int = Field(default=50, ge=0, le=100)
    """The base score of an indicator whose source gives no confidence."""
    lifetime_days: dict[str, float] = Field(default_factory=dict)
    """Decay lifetimes per family (``network``, ``domain``, ``file``, ``default``)."""
    decay_speed: dict[str, float] = Field(default_factory=dict)
    """Decay speeds per family (higher: the score holds longer, then drops faster)."""

    @field_validator("lifetime_days", "decay_speed")
    @classmethod
    def _decay_families(cls, value: dict[str, float]) -> dict[str, float]:
        for family, number in value.items():
            if family not in ("network", "domain", "file", "default"):
                raise ValueError(f"unknown decay family {family!r} (use network, domain, file, default)")
            if not number > 0:
                raise ValueError(f"{family}: must be greater than 0")
        return value
    fields: dict[str, list[str]] = Field(default_factory=dict)
    """Extra event fields to match per indicator type (``ipv4`` also covers ``ipv6``/``cidr``)."""
    feed_check_seconds: float = Field(default=60, gt=0)
    """How often the server looks for feeds due for a pull."""
    max_import_indicators: int = Field(default=2_000_000, ge=1)
    """The most indicators one file or feed pull may give (a larger one is refused whole)."""
    max_download_mb: int = Field(default=256, ge=1)
    """The largest feed download accepted."""
    export_max_tlp: str = Field(default="amber+strict", pattern="^(clear|green|amber|amber\\+strict)$")
    """The most restrictive TLP an export may carry (TLP:RED never leaves)."""
    alert_severity: str = Field(default="high", pattern="^(informational|low|medium|high|critical)$")
    """The severity of an alert raised by an indicator match."""


class Settings(BaseSettings):
    """All of Vigil's settings."""

    model_config = SettingsConfigDict(
        env_prefix="VIGIL_", env_nested_delimiter="__", extra="forbid"
    )

    data_dir: Path = DEFAULT_DATA_DIR
    state_url: str | None = None
    log_level: str = "INFO"
    log_format: str = Field(default="text", pattern="^(text|json)$")
    server: ServerSettings = Field(default_factory=ServerSettings)
    ingest: IngestSettings = Field(default_factory=IngestSettings)
    store: StoreSettings = Field(default_factory=StoreSettings)
    detect: DetectSettings = Field(default_factory=DetectSettings)
    auth: AuthSettings = Field(default_factory=AuthSettings)
    notify: NotifySettings = Field(default_factory=NotifySettings)
    cases: CasesSettings = Field(default_factory=CasesSettings)
    alerts: AlertsSettings = Field(default_factory=AlertsSettings)
    intel: IntelSettings = Field(default_factory=IntelSettings)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (env_settings, init_settings)

    @property
    def resolved_state_url(self) -> str:
        """The SQLAlchemy URL of the state database (SQLite in the data folder by default)."""
        if self.state_url:
            return self.state_url
        return f"sqlite:///{(self.data_dir / 'state.db').resolve()}"

    @property
    def events_path(self) -> Path:
        return self.data_dir / "events.duckdb"

    @property
    def spool_dir(self) -> Path:
        return self.data_dir / "spool"


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: invalid TOML: {exc}") from exc
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from exc


def load_settings(data_dir: Path | None = None, **overrides: Any) -> Settings:
    """Load the settings: defaults, then the data folder's ``vigil.toml``, then the environment.

    ``data_dir`` (from ``--data-dir``) wins over ``VIGIL_DATA_DIR``.
    """
    folder = data_dir or Path(os.environ.get("VIGIL_DATA_DIR", DEFAULT_DATA_DIR))
    file_values: dict[str, Any] = {}
    config_path = folder / CONFIG_FILE_NAME
    if config_path.is_file():
        file_values = _read_toml(config_path)
    file_values.update(overrides)
    try:
        settings = Settings(**file_values)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise ConfigError(f"invalid setting {where}: {first['msg']}") from exc
    except SettingsError as exc:
        raise ConfigError(f"invalid VIGIL_* environment variable: {exc}") from exc
    return settings.model_copy(update={"data_dir": folder})
