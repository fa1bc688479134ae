"""Flat lists: plain values, CSV, the Zeek intel file and the Wazuh CDB list.

- ``plain``: one value per line and nothing else, the shape pfSense and OPNsense "URL Table"
  aliases and most blocklist readers expect (export one type per list).
- ``csv``: one row per indicator with its context (RFC 4180 quoting by :mod:`csv`).
- ``zeek``: an Intel framework file (``Intel::read_files``): a ``#fields`` header and one
  tab-separated item per value. Types follow Zeek's ``Intel::Type``: ``ADDR``, ``SUBNET``,
  ``DOMAIN``, ``URL`` (without the scheme, as Zeek's HTTP scripts see it), ``EMAIL``,
  ``SOFTWARE`` (user agents, as Zeek's HTTP header script reports them), ``FILE_HASH`` and
  ``FILE_NAME``. JA3 has no standard Intel type and is skipped. Zeek's ASCII reader decodes
  ``\\xNN`` escapes, so tabs, newlines and backslashes in values are written that way; empty
  meta fields are ``-``.
- ``wazuh-cdb``: ``key:value`` lines for a Wazuh CDB list (the value is the indicator type).
  CDB has no CIDR: IPv4 networks become the dot-prefix keys ``address_match_key`` understands
  (``10.``, ``192.168.``, ``172.16.19.``), rounded to the next octet boundary; a network that
  would need more than ``options.cdb_max_keys`` keys (an IPv6 network beyond a few thousand
  addresses) is skipped. Keys containing ``:`` are quoted; keys containing ``"`` cannot be
  written and are skipped.

Values with control characters are skipped wherever the format has no escape for them.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Sequence

from vigil.intel.exports.common import (
    ExportOptions,
    Rendered,
    Tally,
    cannot,
    collect,
    iso,
    one_line,
    withheld,
)
from vigil.intel.exports.nets import Net, parse
from vigil.intel.types import HASH_TYPES, IndicatorType, IndicatorView, Observable

_ORDER = {kind: i for i, kind in enumerate(IndicatorType)}
_NO_NET = Net(0, 0, 0)
"""Sort key of values that are not addresses (they sort by text after it)."""


def _version_ok(options: ExportOptions, observable: Observable) -> str | None:
    if observable.type in (IndicatorType.IPV4, IndicatorType.IPV6, IndicatorType.CIDR):
        net = parse(observable.value)
        if net is None:
            return "not an IP address or network"
        if net.version not in options.ip_versions:
            return f"IPv{net.version} not selected (ip_versions)"
    return None


def plain(indicators: Sequence[IndicatorView], options: ExportOptions) -> Rendered:
    """One value per line, grouped by type, addresses in numeric order, the rest by text; no
    header, no comments."""
    tally = Tally()

    def convert(_: IndicatorView, observable: Observable) -> list[tuple[int, Net, str]] | str:
        problem = _version_ok(options, observable)
        if problem:
            return problem
        value = observable.value.strip()
        if not value or not one_line(value):
            return "value is empty or spans lines"
        return [(_ORDER[observable.type], parse(value) or _NO_NET, value)]

    lines = sorted(set(collect(indicators, tally, convert)))
    return tally.rendered("".join(f"{value}\n" for _, _, value in lines))


CSV_FIELDS = ("id", "type", "value", "confidence", "score", "tlp", "first_seen", "last_seen",
              "labels", "sources")


def to_csv(indicators: Sequence[IndicatorView], options: ExportOptions) -> Rendered:
    """One row per indicator, every type (a compound STIX pattern as its pattern text); list
    columns joined with ``;``; quoting by :mod:`csv`, so any value is safe."""
    tally = Tally()
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_FIELDS)
    seen: set[str] = set()
    for ind in indicators:
        reason = withheld(ind)
        if reason is not None:
            tally.skip(reason)
            continue
        tally.count += 1
        if ind.id in seen:
            continue
        seen.add(ind.id)
        writer.writerow([ind.id, ind.type.value, ind.value, ind.confidence, f"{ind.score:.1f}",
                         ind.tlp.value if ind.tlp else "", iso(ind.first_seen), iso(ind.last_seen),
                         ";".join(ind.labels), ";".join(s.name for s in ind.sources)])
    return tally.rendered(out.getvalue())


# -- Zeek -------------------------------------------------------------------------------------

ZEEK_FIELDS = ("indicator", "indicator_type", "meta.source", "meta.desc", "meta.url")
_ZEEK_TYPES = {
    IndicatorType.IPV4: "Intel::ADDR",
    IndicatorType.IPV6: "Intel::ADDR",
    IndicatorType.CIDR: "Intel::SUBNET",
    IndicatorType.DOMAIN: "Intel::DOMAIN",
    IndicatorType.URL: "Intel::URL",
    IndicatorType.EMAIL: "Intel::EMAIL",
    IndicatorType.USER_AGENT: "Intel::SOFTWARE",
    IndicatorType.FILENAME: "Intel::FILE_NAME",
    **{kind: "Intel::FILE_HASH" for kind in HASH_TYPES},
}
_ZEEK_ESCAPE = re.compile(r"[\x00-\x1f\x7f\\]")
_ZEEK_MARKERS = frozenset({"-", "(empty)"})
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


def zeek_field(text: str) -> str:
    """A value as Zeek's ASCII reader needs it: control bytes and ``\\`` as ``\\xNN``; the
    unset (``-``) and empty (``(empty)``) markers escaped too; nothing at all as ``-``."""
    if not text:
        return "-"
    value = _ZEEK_ESCAPE.sub(lambda m: f"\\x{ord(m.group()):02x}", text)
    if value in _ZEEK_MARKERS:
        value = f"\\x{ord(value[0]):02x}{value[1:]}"
    return value


def _zeek_value(observable: Observable) -> str | None:
    kind, value = observable.type, observable.value.strip()
    if kind in (IndicatorType.IPV4, IndicatorType.IPV6, IndicatorType.CIDR):
        net = parse(value)
        return None if net is None else net.text()
    if kind is IndicatorType.URL:
        value = _SCHEME.sub("", value)
    elif kind in (IndicatorType.DOMAIN, IndicatorType.EMAIL) or kind in HASH_TYPES:
        value = value.lower()
    return value or None


def zeek(indicators: Sequence[IndicatorView], options: ExportOptions) -> Rendered:
    """A Zeek Intel framework file."""
    tally = Tally()

    def convert(ind: IndicatorView, observable: Observable) -> list[tuple[str, str, str, str]] | str:
        kind = _ZEEK_TYPES.get(observable.type)
        if kind is None:
            return cannot("a Zeek intel file", observable.type)
        problem = _version_ok(options, observable)
        if problem:
            return problem
        value = _zeek_value(observable)
        if value is None:
            return f"not a valid {observable.type.value}"
        desc = ind.name or ind.description or ""
        link = options.link.replace("{id}", ind.id) if options.link else ""
        return [(value, kind, " ".join(desc.split()), link)]

    items = collect(indicators, tally, convert)
    unique = {(value, kind): (desc, link) for value, kind, desc, link in items}
    lines = ["#fields\t" + "\t".join(ZEEK_FIELDS)]
    lines += [f"{zeek_field(value)}\t{kind}\t{zeek_field(options.source)}\t{zeek_field(desc)}\t"
              f"{zeek_field(link)}" for (value, kind), (desc, link) in sorted(unique.items())]
    return tally.rendered("\n".join(lines) + "\n")


# -- Wazuh CDB --------------------------------------------------------------------------------

_OCTETS = (8, 16, 24, 32)


def cdb_keys(net: Net, limit: int) -> list[str] | None:
    """The CDB keys that cover a network, or None when it would take more than ``limit``:
    IPv4 rounded to the next octet boundary (``10.``, ``192.168.``, ``172.16.19.``, or
    addresses), IPv6 as its addresses."""
    if net.version == 6:
        if net.size > limit:
            return None
        return [net.address_text(net.address + i) for i in range(net.size)]
    boundary = next(b for b in _OCTETS if b >= net.prefix)
    count = 1 << (boundary - net.prefix)
    if count > limit:
        return None
    keep, step = boundary // 8, 1 << (32 - boundary)
    keys = []
    for i in range(count):
        address = net.address + i * step
        octets = [str((address >> shift) & 0xFF) for shift in (24, 16, 8, 0)][:keep]
        keys.append(".".join(octets) + ("." if keep < 4 else ""))
    return keys


def _cdb_key(key: str) -> str | None:
    if not key or '"' in key or not one_line(key) or key != key.strip():
        return None
    return f'"{key}"' if ":" in key else key


def wazuh_cdb(indicators: Sequence[IndicatorView], options: ExportOptions) -> Rendered:
    """A Wazuh CDB list: one unique ``key:type`` line per value."""
    tally = Tally()

    def convert(_: IndicatorView, observable: Observable) -> list[tuple[str, str]] | str:
        kind = observable.type
        if kind in (IndicatorType.IPV4, IndicatorType.IPV6, IndicatorType.CIDR):
            problem = _version_ok(options, observable)
            net = parse(observable.value)
            if problem or net is None:
                return problem or "not an IP address or network"
            keys = cdb_keys(net, options.cdb_max_keys)
            if keys is None:
                return f"network expands to more than {options.cdb_max_keys} CDB keys"
        else:
            keys = [observable.value]
        quoted = [q for q in (_cdb_key(k) for k in keys) if q is not None]
        return [(q, kind.value) for q in quoted] if quoted else "key has a quote or a control character"

    pairs = collect(indicators, tally, convert)
    unique: dict[str, str] = {}
    for key, value in pairs:
        unique.setdefault(key, value)
    return tally.rendered("".join(f"{key}:{value}\n" for key, value in sorted(unique.items())))
