"""What every export shares: the options, the rendered result, the defence-in-depth gate and
the tally of what was skipped and why.

Filtering (type, confidence, TLP, age, allowlists, decay) is the caller's job. An export takes
exactly the indicators it is given, with two exceptions that no caller can switch off: an
indicator that is allowlisted, not active or marked TLP:RED is never written, and a value the
format cannot express is skipped. (Revoked indicators are withheld too, even if a caller
marks them active.) Both are counted, with the reason, in :class:`Tally`.

A simple indicator exports its own value; a ``stix-pattern`` indicator exports the single
values it can match (its observables), and is skipped when it has none.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import TypeVar

from vigil.core.errors import InputError
from vigil.intel.exports.nets import Net, parse
from vigil.intel.types import TLP, IndicatorType, IndicatorView, Observable

T = TypeVar("T")

_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,23}$")
_DNS_LABEL = re.compile(r"^(?!-)[A-Za-z0-9_-]{1,63}(?<!-)$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_MAX_TTL = 2**31 - 1


class FirewallAction(StrEnum):
    """What a firewall does with listed traffic."""

    DROP = "drop"
    REJECT = "reject"


class RpzPolicy(StrEnum):
    """The RPZ answer for a listed name or address (draft-vixie-dnsop-dns-rpz)."""

    NXDOMAIN = "nxdomain"
    """``CNAME .``: the name does not exist."""
    NODATA = "nodata"
    """``CNAME *.``: the name exists but has no records of the type asked."""
    DROP = "drop"
    """``CNAME rpz-drop.``: no answer at all (the client times out)."""


def _absolute_name(text: str, what: str) -> str:
    name = text.strip()
    labels = name.rstrip(".").split(".")
    if not name.endswith(".") or len(name) > 254 or not all(_DNS_LABEL.match(x) for x in labels):
        raise InputError(f"{what} must be an absolute DNS name ending with a dot, not {text!r}")
    return name


@dataclass(frozen=True, slots=True)
class ExportOptions:
    """How an export is shaped. Every field has a default a firewall or IDS accepts as is."""

    name: str = "vigil"
    """Base name of the nftables table and sets, the ipsets, the iptables chain, the Suricata
    datasets and the files (letters, digits and ``_``, at most 24 characters)."""
    ip_versions: tuple[int, ...] = (4, 6)
    """Which IP versions network exports carry (an address of another version is skipped)."""
    action: FirewallAction = FirewallAction.DROP
    sid_base: int = 1_000_000
    """First Suricata signature id of Vigil's range (1,000,000-1,999,999 is the local-use range)."""
    sid_span: int = 1_000_000
    """How many sids the range holds: list rules use the first 10,000, per-indicator rules the rest."""
    suricata_ip_datasets: bool = False
    """Suricata datasets export: match addresses with ``ip.src``/``ip.dst`` datasets (Suricata 8)
    instead of address-group rules (any Suricata)."""
    rpz_zone: str = "rpz.vigil"
    """The origin the RPZ zone is loaded under (names are written relative to it)."""
    rpz_policy: RpzPolicy = RpzPolicy.NXDOMAIN
    rpz_ttl: int = 300
    soa_mname: str = "localhost."
    soa_rname: str = "hostmaster.localhost."
    soa_refresh: int = 3600
    soa_retry: int = 600
    soa_expire: int = 604_800
    soa_minimum: int = 60
    serial: int | None = None
    """The RPZ SOA serial; by default the ``generated`` time (or the newest ``last_seen``) in
    seconds since the epoch, so that a newer export has a higher serial."""
    generated: datetime | None = None
    """When the export is made (written in file headers; the default RPZ serial)."""
    source: str = "vigil"
    """How consumers name this feed (Zeek ``meta.source``)."""
    link: str | None = None
    """A URL template for Zeek ``meta.url``, with ``{id}`` for the indicator id."""
    cdb_max_keys: int = 65_536
    """Wazuh CDB: a network that would expand to more keys than this is skipped."""
    chunk: int = 1000
    """Elements per ``add element`` statement (nftables) or addresses per rule (Suricata)."""

    def __post_init__(self) -> None:
        if not _NAME.match(self.name):
            raise InputError(f"export name {self.name!r} must be a letter then letters, digits or _ "
                             "(at most 24 characters)")
        if not self.ip_versions or not set(self.ip_versions) <= {4, 6}:
            raise InputError(f"ip_versions must be 4, 6 or both, not {self.ip_versions!r}")
        if self.sid_base < 1 or self.sid_span < 20_000 or self.sid_base + self.sid_span > 2**32:
            raise InputError("sid_base must be at least 1 and sid_span at least 20,000 sids "
                             "within 32 bits")
        zone = self.rpz_zone.strip().rstrip(".")
        _absolute_name(zone + ".", "rpz_zone")
        object.__setattr__(self, "rpz_zone", zone.lower())
        _absolute_name(self.soa_mname, "soa_mname")
        _absolute_name(self.soa_rname, "soa_rname")
        for what in ("rpz_ttl", "soa_refresh", "soa_retry", "soa_expire", "soa_minimum"):
            value = getattr(self, what)
            if not isinstance(value, int) or not 0 <= value <= _MAX_TTL:
                raise InputError(f"{what} must be a number of seconds (0 to {_MAX_TTL})")
        if self.serial is not None and not 0 <= self.serial < 2**32:
            raise InputError("serial must be between 0 and 4294967295")
        if _CONTROL.search(self.source) or "\t" in self.source or not self.source.strip():
            raise InputError("source must be one line of text")
        if self.link is not None and (_CONTROL.search(self.link) or "{id}" not in self.link):
            raise InputError("link must be one line with {id} where the indicator id goes")
        if self.cdb_max_keys < 1 or self.chunk < 1:
            raise InputError("cdb_max_keys and chunk must be positive")


@dataclass(frozen=True, slots=True)
class ExportFile:
    """One file of a multi-file export (the Suricata datasets bundle)."""

    name: str
    content: str


@dataclass(frozen=True, slots=True)
class Rendered:
    """What a format function produced: the text and the tally."""

    content: str
    count: int
    """Indicators written (at least one of their values is in the content)."""
    skipped: int
    """Indicators not written: withheld, or of a type or value the format cannot carry."""
    notes: tuple[str, ...] = ()
    """Why indicators were skipped, one line per reason with its count."""
    files: tuple[ExportFile, ...] = ()


@dataclass(slots=True)
class Tally:
    """Counts written and skipped indicators, and why they were skipped."""

    count: int = 0
    reasons: Counter[str] = field(default_factory=Counter)

    def skip(self, reason: str) -> None:
        self.reasons[reason] += 1

    def rendered(self, content: str, files: Sequence[ExportFile] = ()) -> Rendered:
        notes = tuple(f"{n} skipped: {reason}" for reason, n in sorted(self.reasons.items()))
        return Rendered(content=content, count=self.count, skipped=sum(self.reasons.values()),
                        notes=notes, files=tuple(files))


def withheld(indicator: IndicatorView) -> str | None:
    """Why an indicator must never leave in an export (None when it may)."""
    if indicator.allowlisted:
        return "withheld: allowlisted"
    if indicator.revoked:
        return "withheld: revoked"
    if not indicator.active:
        return "withheld: not active (expired or decayed)"
    if indicator.tlp is TLP.RED:
        return "withheld: TLP:RED"
    return None


def values_of(indicator: IndicatorView) -> tuple[Observable, ...]:
    """The single values an indicator stands for (a pattern's observables, or itself)."""
    if indicator.type is IndicatorType.STIX_PATTERN:
        return tuple(o for o in indicator.observables if o.type is not IndicatorType.STIX_PATTERN)
    return (Observable(indicator.type, indicator.value),)


def collect(indicators: Iterable[IndicatorView], tally: Tally,
            convert: Callable[[IndicatorView, Observable], Sequence[T] | str]) -> list[T]:
    """Run ``convert`` over each value of each exportable indicator and gather what it makes.

    ``convert`` returns the entries for a value, or the reason it cannot be exported. An
    indicator counts as written when at least one of its values made an entry.
    """
    entries: list[T] = []
    for indicator in indicators:
        reason = withheld(indicator)
        observables = values_of(indicator) if reason is None else ()
        if reason is None and not observables:
            reason = "a STIX pattern with no single value to match"
        made = False
        for observable in observables:
            result = convert(indicator, observable)
            if isinstance(result, str):
                reason = reason or result
            elif result:
                entries.extend(result)
                made = True
        if made:
            tally.count += 1
        else:
            tally.skip(reason or "nothing to write")
    return entries


def cannot(fmt: str, kind: IndicatorType) -> str:
    return f"{kind.value} cannot be expressed in {fmt}"


def ip_entry(fmt: str, options: ExportOptions, observable: Observable) -> list[Net] | str:
    """The network of an IP or CIDR value, or why a network export cannot carry it."""
    if observable.type not in (IndicatorType.IPV4, IndicatorType.IPV6, IndicatorType.CIDR):
        return cannot(fmt, observable.type)
    net = parse(observable.value)
    if net is None:
        return "not an IP address or network"
    if net.version not in options.ip_versions:
        return f"IPv{net.version} not selected (ip_versions)"
    if net.prefix == 0:
        return "a /0 network (every address) is never exported"
    return [net]


def one_line(text: str) -> bool:
    """True when the text has no control characters (no tab, newline, NUL...)."""
    return not _CONTROL.search(text)


def epoch(moment: datetime) -> int:
    """Seconds since the epoch (a naive time is taken as UTC)."""
    return int((moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp())


def iso(moment: datetime | None) -> str:
    """ISO 8601 in UTC with a ``Z`` (naive times are taken as UTC); empty for None."""
    if moment is None:
        return ""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def header(title: str, options: ExportOptions, tally: Tally, comment: str = "#") -> list[str]:
    """Comment lines that open a generated file: what it is, when, and how much it holds."""
    lines = [f"{comment} {title}", f"{comment} Generated by Vigil; do not edit, it is replaced on export."]
    if options.generated is not None:
        lines.append(f"{comment} Generated at {iso(options.generated)}.")
    skipped = sum(tally.reasons.values())
    lines.append(f"{comment} {tally.count} indicators written, {skipped} skipped.")
    return lines
