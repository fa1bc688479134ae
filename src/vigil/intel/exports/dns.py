"""A BIND response policy zone (RPZ) for DNS firewalls (BIND, Unbound, Knot Resolver,
PowerDNS Recursor read the same zone format).

Names are written relative to the zone, so the file loads under whatever origin the server
gives it; ``options.rpz_zone`` is only used to check lengths. Each domain gets two records,
the name and ``*.`` under it, so subdomains are caught too. Addresses and networks become
``rpz-ip`` triggers (they act on the addresses in answers): ``<prefix>.<reversed octets>`` for
IPv4 and ``<prefix>.<reversed 16-bit words>`` for IPv6 with ``zz`` for the longest run of zero
words, in the canonical form BIND checks (``lib/dns/rpz.c``).

A name that is not a valid host name, or that would be longer than 253 characters with the
zone appended (wildcard included), is skipped and counted; so is a domain under an RPZ
trigger label (``rpz-ip``, ``rpz-nsdname``...), which the server would read as a trigger.
"""

from __future__ import annotations

from collections.abc import Sequence

from vigil.core.errors import InputError
from vigil.intel import normalize
from vigil.intel.exports.common import (
    ExportOptions,
    Rendered,
    RpzPolicy,
    Tally,
    cannot,
    collect,
    epoch,
    header,
    ip_entry,
)
from vigil.intel.exports.nets import Net
from vigil.intel.types import IndicatorType, IndicatorView, Observable

_TARGETS = {RpzPolicy.NXDOMAIN: ".", RpzPolicy.NODATA: "*.", RpzPolicy.DROP: "rpz-drop."}
_TRIGGER_LABELS = frozenset({"rpz-ip", "rpz-nsip", "rpz-nsdname", "rpz-client-ip"})
_MAX_NAME = 253
_MAPPED = 0xFFFF << 32


def _words(address: int) -> list[int]:
    return [(address >> (112 - 16 * i)) & 0xFFFF for i in range(8)]


def _zero_run(words: list[int]) -> tuple[int, int]:
    """(start, length) of the first longest run of at least two zero words; (-1, 0) if none."""
    best, best_len, start = -1, 0, -1
    for i, word in enumerate([*words, 1]):
        if word == 0:
            start = i if start < 0 else start
            continue
        if start >= 0 and i - start > best_len and i - start >= 2:
            best, best_len = start, i - start
        start = -1
    return best, best_len


def rpz_ip_name(net: Net) -> str:
    """The ``rpz-ip`` owner name of a network, relative to the zone (``24.0.2.0.192.rpz-ip``);
    an IPv4-mapped IPv6 network (``::ffff:0:0/96`` and longer) is named as IPv4, as BIND does."""
    address, prefix = net.address, net.prefix
    if net.version == 6 and prefix >= 96 and address >> 32 == _MAPPED >> 32:
        net = Net(4, address & 0xFFFFFFFF, prefix - 96)
        address, prefix = net.address, net.prefix
    if net.version == 4:
        octets = [(address >> shift) & 0xFF for shift in (0, 8, 16, 24)]
        return f"{prefix}." + ".".join(str(o) for o in octets) + ".rpz-ip"
    words = _words(address)
    start, length = _zero_run(words)
    labels = [f"{w:x}" for w in words]
    if start >= 0:
        labels[start:start + length] = ["zz"]
    return f"{prefix}." + ".".join(reversed(labels)) + ".rpz-ip"


def _fits(name: str, zone: str) -> bool:
    return len(name) + 1 + len(zone) <= _MAX_NAME


def _entry(options: ExportOptions, observable: Observable) -> list[str] | str:
    kind = observable.type
    if kind in (IndicatorType.IPV4, IndicatorType.IPV6, IndicatorType.CIDR):
        nets = ip_entry("an RPZ zone", options, observable)
        return nets if isinstance(nets, str) else [rpz_ip_name(nets[0])]
    if kind is not IndicatorType.DOMAIN:
        return cannot("an RPZ zone", kind)
    try:
        name = normalize.domain(observable.value)
    except InputError:
        return "not a valid DNS name"
    if name.rsplit(".", 1)[-1] in _TRIGGER_LABELS:
        return "a domain under an RPZ trigger label (rpz-ip, rpz-nsdname...)"
    if not _fits("*." + name, options.rpz_zone):
        return "name longer than 253 characters with the zone appended"
    return [name, "*." + name]


def _serial(indicators: Sequence[IndicatorView], options: ExportOptions) -> int:
    if options.serial is not None:
        return options.serial
    if options.generated is not None:
        return epoch(options.generated) % 2**32
    return max((epoch(i.last_seen) for i in indicators), default=1) % 2**32


def _order(name: str) -> tuple[bool, str, bool]:
    """Domains before IP triggers; a name just before its wildcard."""
    return name.endswith(".rpz-ip"), name.removeprefix("*."), name.startswith("*.")


def rpz(indicators: Sequence[IndicatorView], options: ExportOptions) -> Rendered:
    """A complete RPZ zone file: ``$TTL``, SOA, NS, then one CNAME per trigger name."""
    tally = Tally()
    names = collect(indicators, tally, lambda _, observable: _entry(options, observable))
    unique = sorted(set(names), key=_order)
    target = _TARGETS[options.rpz_policy]
    o = options
    lines = [*header(f"Vigil threat-intel response policy zone for {o.rpz_zone}. "
                     f"(policy {o.rpz_policy.value}): {len(unique)} trigger names.", o, tally, ";"),
             f"$TTL {o.rpz_ttl}",
             f"@\tIN\tSOA\t{o.soa_mname} {o.soa_rname} ( {_serial(indicators, o)} {o.soa_refresh} "
             f"{o.soa_retry} {o.soa_expire} {o.soa_minimum} )",
             f"@\tIN\tNS\t{o.soa_mname}",
             ""]
    lines += [f"{name}\tCNAME\t{target}" for name in unique]
    return tally.rendered("\n".join(lines) + "\n")
