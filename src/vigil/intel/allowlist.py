"""Allowlists in the MISP warninglist format: values that must never raise an alert.

A warninglist is ``{"name", "version", "description", "type", "list", "matching_attributes"}``
with ``type`` one of ``string`` (exact, case-insensitive), ``substring``, ``hostname`` (the
name or any sub-domain of it, also the host of a URL or e-mail address), ``cidr`` (addresses
and networks inside) or ``regex``. ``matching_attributes`` (MISP attribute types) limits a
list to some indicator types; absent, it applies to all.

Two built-in lists are always on unless switched off (``intel.builtin_allowlists``): the
special-use and documentation address ranges (RFC 1918, 5737, 3849, 6598, loopback,
link-local, multicast...) and the reserved names (RFC 2606/6761: ``example.com``, ``.test``,
``.invalid``, ``.localhost``...). ``intel.own_infrastructure`` lists Vigil's own addresses and
names, never alerted on either.

:class:`AllowlistSet` answers "which list covers this value?" in constant time per value for
strings, hostnames and networks (a network lookup masks the address once per prefix length
present), so that a million indicators are checked in seconds.
"""

from __future__ import annotations

import ipaddress
import re
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any
from urllib.parse import urlsplit

from vigil.core.errors import InputError
from vigil.intel.types import HASH_TYPES, IndicatorType

MAX_ENTRIES = 2_000_000
_NETWORKISH = re.compile(r"^(?=.*[.:])[0-9a-fA-F.:/]+$")


class ListKind(StrEnum):
    STRING = "string"
    SUBSTRING = "substring"
    HOSTNAME = "hostname"
    CIDR = "cidr"
    REGEX = "regex"


_MISP_TYPES: dict[IndicatorType, frozenset[str]] = {
    IndicatorType.IPV4: frozenset({"ip-src", "ip-dst", "ip-src|port", "ip-dst|port", "domain|ip"}),
    IndicatorType.IPV6: frozenset({"ip-src", "ip-dst", "ip-src|port", "ip-dst|port", "domain|ip"}),
    IndicatorType.CIDR: frozenset({"ip-src", "ip-dst", "ip-src|port", "ip-dst|port", "domain|ip"}),
    IndicatorType.DOMAIN: frozenset({"domain", "hostname", "domain|ip", "hostname|port"}),
    IndicatorType.URL: frozenset({"url", "uri", "link"}),
    IndicatorType.EMAIL: frozenset({"email", "email-src", "email-dst"}),
    IndicatorType.FILENAME: frozenset({"filename"}),
    IndicatorType.JA3: frozenset({"ja3-fingerprint-md5"}),
    IndicatorType.USER_AGENT: frozenset({"user-agent"}),
}
for _hash in HASH_TYPES:
    _MISP_TYPES[_hash] = frozenset({_hash.value, f"filename|{_hash.value}"})

RESERVED_NETWORKS = (
    "0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16", "172.16.0.0/12",
    "192.0.0.0/24", "192.0.2.0/24", "192.88.99.0/24", "192.168.0.0/16", "198.18.0.0/15",
    "198.51.100.0/24", "203.0.113.0/24", "224.0.0.0/4", "240.0.0.0/4", "::/128", "::1/128",
    "64:ff9b:1::/48", "100::/64", "2001:db8::/32", "3fff::/20", "fc00::/7", "fe80::/10", "ff00::/8",
)
RESERVED_NAMES = ("example.com", "example.net", "example.org", "example", "test", "invalid",
                  "localhost", "local", "home.arpa", "in-addr.arpa", "ip6.arpa")


@dataclass(frozen=True, slots=True)
class Warninglist:
    """One list in the MISP warninglist format."""

    name: str
    kind: ListKind
    entries: tuple[str, ...]
    matching_attributes: tuple[str, ...] = ()
    description: str | None = None
    version: str | None = None

    def applies_to(self, kind: IndicatorType) -> bool:
        if not self.matching_attributes:
            return True
        return bool(_MISP_TYPES.get(kind, frozenset()) & set(self.matching_attributes))


def parse_warninglist(data: Mapping[str, Any], *, origin: str = "warninglist") -> Warninglist:
    """A warninglist from its JSON object; :class:`InputError` naming what is wrong."""
    if not isinstance(data, Mapping):
        raise InputError(f"{origin}: a warninglist is a JSON object")
    missing = [k for k in ("name", "type", "list") if k not in data]
    if missing:
        raise InputError(f"{origin}: not a MISP warninglist (missing {', '.join(missing)})")
    name, entries = data["name"], data["list"]
    if not isinstance(name, str) or not name.strip():
        raise InputError(f"{origin}: the warninglist name must be text")
    if len(name.strip()) > 200 or len(str(data.get("version") or "")) > 40:
        raise InputError(f"{origin}: the warninglist name (200 characters) or version (40) is too long")
    try:
        kind = ListKind(str(data["type"]))
    except ValueError:
        raise InputError(f"{origin}: unknown warninglist type {data['type']!r} "
                         f"(use {', '.join(k.value for k in ListKind)})") from None
    if not isinstance(entries, list) or not all(isinstance(e, str) for e in entries):
        raise InputError(f"{origin}: 'list' must be a list of text values")
    if len(entries) > MAX_ENTRIES:
        raise InputError(f"{origin}: more than {MAX_ENTRIES} entries")
    attributes = data.get("matching_attributes") or []
    if not isinstance(attributes, list):
        raise InputError(f"{origin}: 'matching_attributes' must be a list")
    warninglist = Warninglist(name.strip(), kind, tuple(e.strip() for e in entries if e.strip()),
                              tuple(str(a) for a in attributes),
                              str(data["description"]) if data.get("description") else None,
                              str(data["version"]) if data.get("version") is not None else None)
    if kind is ListKind.REGEX:
        for entry in warninglist.entries:
            _regex(entry, origin)
    return warninglist


def _regex(entry: str, origin: str) -> re.Pattern[str]:
    try:
        return re.compile(re.sub(r"^/(.*)/[a-z]*$", r"\1", entry, flags=re.DOTALL), re.IGNORECASE)
    except re.error as exc:
        raise InputError(f"{origin}: invalid regular expression {entry!r}: {exc}") from None


def builtin_lists(own_infrastructure: Sequence[str] = ()) -> list[Warninglist]:
    """The built-in lists: reserved networks, reserved names and the platform's own hosts."""
    lists = [
        Warninglist("Vigil: special-use and documentation networks", ListKind.CIDR, RESERVED_NETWORKS),
        Warninglist("Vigil: reserved and documentation names", ListKind.HOSTNAME, RESERVED_NAMES),
    ]
    own = [v.strip() for v in own_infrastructure if v.strip()]
    networks = [v for v in own if _is_network(v)]
    names = [v for v in own if not _is_network(v)]
    if networks:
        lists.append(Warninglist("Vigil: own infrastructure (addresses)", ListKind.CIDR, tuple(networks)))
    if names:
        lists.append(Warninglist("Vigil: own infrastructure (names)", ListKind.HOSTNAME, tuple(names)))
    return lists


def _is_network(value: str) -> bool:
    if not _NETWORKISH.match(value.strip()):
        return False  # cheap test first: a million host names are no networks
    try:
        ipaddress.ip_network(value.strip(), strict=False)
    except ValueError:
        return False
    return True


@dataclass(slots=True)
class _Scoped:
    """Entries of one kind, each with the list it came from."""

    strings: dict[str, list[Warninglist]] = field(default_factory=lambda: defaultdict(list))
    networks: dict[tuple[int, int], dict[int, list[Warninglist]]] = field(
        default_factory=lambda: defaultdict(lambda: defaultdict(list)))
    substrings: list[tuple[str, Warninglist]] = field(default_factory=list)
    regexes: list[tuple[re.Pattern[str], Warninglist]] = field(default_factory=list)


class AllowlistSet:
    """Fast membership over many warninglists."""

    def __init__(self, lists: Iterable[Warninglist]) -> None:
        self.lists = list(lists)
        self._exact = _Scoped()
        self._hosts = _Scoped()
        self._nets = _Scoped()
        self._other = _Scoped()
        for warninglist in self.lists:
            self._add(warninglist)

    def _add(self, warninglist: Warninglist) -> None:
        for entry in warninglist.entries:
            if warninglist.kind is ListKind.STRING:
                self._exact.strings[entry.lower()].append(warninglist)
                if _is_network(entry):
                    self._add_network(entry, warninglist)
            elif warninglist.kind is ListKind.HOSTNAME:
                self._hosts.strings[entry.lower().strip(".").removeprefix("*.")].append(warninglist)
            elif warninglist.kind is ListKind.CIDR:
                self._add_network(entry, warninglist)
            elif warninglist.kind is ListKind.SUBSTRING:
                self._other.substrings.append((entry.lower(), warninglist))
            else:
                self._other.regexes.append((_regex(entry, warninglist.name), warninglist))

    def _add_network(self, entry: str, warninglist: Warninglist) -> None:
        try:
            network = ipaddress.ip_network(entry, strict=False)
        except ValueError:
            return  # MISP lists hold a few malformed entries; they cannot match anything
        key = (network.version, network.prefixlen)
        self._nets.networks[key][int(network.network_address)].append(warninglist)

    def match(self, kind: IndicatorType, value: str) -> str | None:
        """The name of the first list covering ``value`` of type ``kind``, or None."""
        for found in self._candidates(kind, value):
            if found.applies_to(kind):
                return found.name
        return None

    def _candidates(self, kind: IndicatorType, value: str) -> Iterable[Warninglist]:
        lowered = value.lower()
        yield from self._exact.strings.get(lowered, ())
        if kind in (IndicatorType.IPV4, IndicatorType.IPV6, IndicatorType.CIDR):
            yield from self._network(lowered)
        host = _host_of(kind, lowered)
        if host is not None:
            yield from self._hostname(host)
            if kind is not IndicatorType.DOMAIN:
                yield from self._network(host.strip("[]"))
        for text, warninglist in self._other.substrings:
            if text in lowered:
                yield warninglist
        for pattern, warninglist in self._other.regexes:
            if pattern.search(value):
                yield warninglist

    def _hostname(self, host: str) -> Iterable[Warninglist]:
        labels = host.split(".")
        for start in range(len(labels)):
            yield from self._hosts.strings.get(".".join(labels[start:]), ())

    def _network(self, text: str) -> Iterable[Warninglist]:
        try:
            network = ipaddress.ip_network(text, strict=False)
        except ValueError:
            return
        address = int(network.network_address)
        width = network.max_prefixlen
        for (version, prefix), table in self._nets.networks.items():
            if version != network.version or prefix > network.prefixlen:
                continue
            masked = address >> (width - prefix) << (width - prefix) if prefix else 0
            yield from table.get(masked, ())


def _host_of(kind: IndicatorType, value: str) -> str | None:
    if kind is IndicatorType.DOMAIN:
        return value
    if kind is IndicatorType.URL:
        try:
            return urlsplit(value).hostname
        except ValueError:
            return None
    if kind is IndicatorType.EMAIL:
        return value.rpartition("@")[2]
    return None
