"""The vocabulary of threat intelligence: indicator types, TLP 2.0, sightings, and the
source-neutral :class:`IndicatorInput` every importer produces.

Pure definitions (no database, no network). Importers (``vigil.intel.formats``) turn feed
content into :class:`Parsed` batches; :func:`vigil.intel.service.ingest` stores a batch
atomically; exports read :class:`IndicatorView` records.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from vigil.core.errors import InputError


class IndicatorType(StrEnum):
    """What an indicator's value is. ``stix-pattern`` holds a STIX pattern that is more than
    one comparison (its matchable values, if any, are kept apart)."""

    IPV4 = "ipv4"
    IPV6 = "ipv6"
    CIDR = "cidr"
    DOMAIN = "domain"
    URL = "url"
    EMAIL = "email"
    MD5 = "md5"
    SHA1 = "sha1"
    SHA256 = "sha256"
    SHA512 = "sha512"
    FILENAME = "filename"
    JA3 = "ja3"
    USER_AGENT = "user-agent"
    STIX_PATTERN = "stix-pattern"

    @classmethod
    def parse(cls, text: str) -> IndicatorType:
        try:
            return cls(text.strip().lower())
        except ValueError:
            names = ", ".join(t.value for t in cls)
            raise InputError(f"unknown indicator type {text!r} (use {names})") from None


HASH_TYPES = frozenset({IndicatorType.MD5, IndicatorType.SHA1, IndicatorType.SHA256,
                        IndicatorType.SHA512})
NETWORK_TYPES = frozenset({IndicatorType.IPV4, IndicatorType.IPV6, IndicatorType.CIDR})


class TLP(StrEnum):
    """Traffic Light Protocol 2.0 (TLP 1.0 WHITE is read as CLEAR)."""

    CLEAR = "clear"
    GREEN = "green"
    AMBER = "amber"
    AMBER_STRICT = "amber+strict"
    RED = "red"

    @property
    def rank(self) -> int:
        return list(TLP).index(self)

    @classmethod
    def parse(cls, text: str) -> TLP:
        """``clear``, ``TLP:AMBER+STRICT``, ``white`` (TLP 1.0)... as a TLP 2.0 level."""
        value = text.strip().lower().removeprefix("tlp:").strip()
        if value == "white":
            return cls.CLEAR
        try:
            return cls(value)
        except ValueError:
            raise InputError(f"unknown TLP level {text!r} (use clear, green, amber, "
                             "amber+strict, red)") from None


class SightingKind(StrEnum):
    """MISP's sighting types: 0 seen, 1 false positive, 2 expired."""

    SEEN = "seen"
    FALSE_POSITIVE = "false_positive"
    EXPIRED = "expired"


@dataclass(frozen=True, slots=True)
class Observable:
    """One matchable value of an indicator (a simple indicator has exactly one: itself)."""

    type: IndicatorType
    value: str


@dataclass(frozen=True, slots=True)
class IndicatorInput:
    """One indicator as a feed states it, already in canonical form (see
    :func:`vigil.intel.normalize.make_input`, which every importer uses to build it).

    ``value`` is the canonical value (for ``stix-pattern``: the pattern). ``observables``
    are the values live matching looks for (for a simple indicator: its own type and value;
    for an ``OR`` of equalities: each of them; for a pattern no event field can match alone:
    none). ``stix`` keeps the original STIX object (JSON text) so that an export gives the same
    ids, patterns, markings and validity back.
    """

    type: IndicatorType
    value: str
    source: str
    """The feed (or importer) it came from."""
    observables: tuple[Observable, ...] = ()
    pattern: str | None = None
    stix_id: str | None = None
    name: str | None = None
    description: str | None = None
    confidence: int | None = None
    tlp: TLP | None = None
    markings: tuple[str, ...] = ()
    """STIX marking-definition ids (TLP and others) as the source gave them."""
    labels: tuple[str, ...] = ()
    attack: tuple[str, ...] = ()
    """ATT&CK technique ids (``T1059.001``)."""
    malware: tuple[str, ...] = ()
    valid_from: datetime | None = None
    valid_until: datetime | None = None
    revoked: bool = False
    first_seen: datetime | None = None
    last_seen: datetime | None = None
    reference: str | None = None
    """The id of the item in its source (MISP attribute uuid, CSV row id, URL...)."""
    stix: str | None = None


@dataclass(slots=True)
class Parsed:
    """What an importer read: the indicators and, per bad item, a message with its place.

    An importer raises :class:`vigil.core.errors.ParseError` when the input as a whole is not
    what it claims to be (HTML instead of JSON, wrong CSV columns): nothing is stored then.
    Items it can skip (one bad pattern among many) go to ``problems``.
    """

    indicators: list[IndicatorInput] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    skipped: int = 0
    """Items that are not indicators at all (reports, identities, attributes without
    ``to_ids``...)."""


@dataclass(frozen=True, slots=True)
class SourceView:
    name: str
    first_seen: datetime
    last_seen: datetime
    reference: str | None = None
    confidence: int | None = None


@dataclass(frozen=True, slots=True)
class IndicatorView:
    """An indicator as stored, with its decay score computed at read time."""

    id: str
    type: IndicatorType
    value: str
    pattern: str | None
    stix_id: str | None
    name: str | None
    description: str | None
    confidence: int
    base_score: int
    score: float
    """The decayed score now (0 when revoked)."""
    active: bool
    """Not revoked, within its validity, scored at or above the threshold, not allowlisted."""
    tlp: TLP | None
    markings: tuple[str, ...]
    labels: tuple[str, ...]
    attack: tuple[str, ...]
    malware: tuple[str, ...]
    valid_from: datetime | None
    valid_until: datetime | None
    revoked: bool
    first_seen: datetime
    last_seen: datetime
    last_sighting: datetime | None
    sightings_seen: int
    sightings_false_positive: int
    sightings_expired: int
    allowlisted: str | None
    """The allowlist that covers the value, if any."""
    observables: tuple[Observable, ...]
    sources: tuple[SourceView, ...]
    stix: str | None
