"""The typed event envelope and the Sigma log-source triple.

Events are the one schemaless thing in Vigil: the source's own fields keep their original
names (``Image``, ``CommandLine``, ``TargetUserName``...) inside a typed envelope that carries
a stable id, the event time, the receive time, the host and the Sigma log source.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

FieldValue = str | int | float | bool | None | list[Any] | dict[str, Any]
"""What a source field may hold once parsed (JSON-like)."""

_PARTITION_UNSAFE = re.compile(r"[^a-z0-9]+")


@dataclass(frozen=True, slots=True)
class LogSource:
    """A Sigma log source: ``product`` / ``category`` / ``service`` (each optional)."""

    product: str | None = None
    category: str | None = None
    service: str | None = None

    @property
    def partition(self) -> str:
        """The name of the store partition that holds events of this log source."""
        parts = [self.product or "none", self.category or "none", self.service or "none"]
        return "__".join(_PARTITION_UNSAFE.sub("_", p.lower()).strip("_") or "none" for p in parts)

    def __str__(self) -> str:
        return "/".join(p or "-" for p in (self.product, self.category, self.service))

    @classmethod
    def parse(cls, text: str) -> LogSource:
        """Parse ``product/category/service`` (``-`` or empty for none)."""
        parts = [p.strip() or None for p in text.split("/")]
        parts = [None if p == "-" else p for p in parts] + [None, None]
        return cls(parts[0], parts[1], parts[2])


UNKNOWN_SOURCE = LogSource()


def event_id(raw: bytes) -> str:
    """The stable id of an event: a content hash of its raw record, so a replay is no duplicate."""
    return hashlib.blake2b(raw, digest_size=16).hexdigest()


@dataclass(slots=True)
class Event:
    """One event in its typed envelope."""

    id: str
    ts: datetime
    received: datetime
    host: str | None
    source: LogSource
    format: str
    fields: dict[str, FieldValue]
    raw: str


@dataclass(frozen=True, slots=True)
class Rejected:
    """A record that could not be parsed: it goes to the dead letters, never silently away."""

    reason: str
    raw: bytes
    origin: str
    line: int | None = None
    format: str | None = None


ParseResult = Event | Rejected


@dataclass(slots=True)
class ParseContext:
    """What a parser knows besides the bytes: where they came from and when they arrived."""

    origin: str = "-"
    received: datetime = field(default_factory=lambda: datetime.now(UTC))
    host: str | None = None
    timestamp_field: str | None = None
    source: LogSource | None = None
    options: dict[str, str] = field(default_factory=dict)
