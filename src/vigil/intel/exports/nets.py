"""Addresses and networks as integers, fast enough for blocklists of millions of entries.

:mod:`ipaddress` parses a network in about 15 µs and :func:`ipaddress.collapse_addresses`
spends several seconds on 100,000 addresses; a firewall export must stay well under that. A
:class:`Net` is a (version, network address, prefix) tuple parsed with
:func:`socket.inet_pton`, and :func:`merge` joins overlapping and adjacent networks with one
sort over integer ranges, then cuts each range back into CIDR blocks.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable
from typing import NamedTuple

_BITS = {4: 32, 6: 128}


class Net(NamedTuple):
    """An address (full prefix) or a network, host bits cleared; sorts by version then address."""

    version: int
    address: int
    prefix: int

    @property
    def bits(self) -> int:
        return _BITS[self.version]

    @property
    def is_host(self) -> bool:
        return self.prefix == self.bits

    @property
    def last(self) -> int:
        return self.address | ((1 << (self.bits - self.prefix)) - 1)

    @property
    def size(self) -> int:
        return 1 << (self.bits - self.prefix)

    def address_text(self, address: int | None = None) -> str:
        value = self.address if address is None else address
        if self.version == 4:
            return str(ipaddress.IPv4Address(value))
        return str(ipaddress.IPv6Address(value))

    def text(self) -> str:
        """``198.51.100.7`` for an address, ``10.0.0.0/8`` for a network."""
        return self.address_text() if self.is_host else f"{self.address_text()}/{self.prefix}"


def parse(value: str) -> Net | None:
    """An address (``1.2.3.4``, ``2001:db8::1``) or network (``10.1.2.3/8`` becomes
    ``10.0.0.0/8``); None when the text is neither."""
    address, slash, length = value.strip().partition("/")
    version = 6 if ":" in address else 4
    try:
        raw = socket.inet_pton(socket.AF_INET6 if version == 6 else socket.AF_INET, address)
    except (OSError, ValueError):
        return None
    bits = _BITS[version]
    if slash:
        if not length.isdigit() or len(length) > 3 or not 0 <= int(length) <= bits:
            return None
        prefix = int(length)
    else:
        prefix = bits
    number = int.from_bytes(raw, "big") & ~((1 << (bits - prefix)) - 1)
    return Net(version, number, prefix)


def _blocks(version: int, first: int, last: int) -> Iterable[Net]:
    """The CIDR blocks covering ``first..last`` exactly (never a /0: it splits into two /1s)."""
    bits = _BITS[version]
    while first <= last:
        align = (first & -first).bit_length() - 1 if first else bits
        fits = (last - first + 1).bit_length() - 1
        step = min(align, fits, bits - 1)
        yield Net(version, first, bits - step)
        first += 1 << step


def merge(nets: Iterable[Net]) -> list[Net]:
    """Overlapping and adjacent networks joined, in (version, address) order."""
    ranges = sorted((n.version, n.address, n.last) for n in nets)
    out: list[Net] = []
    current: list[int] = []
    for version, first, last in ranges:
        if current and version == current[0] and first <= current[2] + 1:
            current[2] = max(current[2], last)
            continue
        if current:
            out.extend(_blocks(*current))
        current = [version, first, last]
    if current:
        out.extend(_blocks(*current))
    return out
