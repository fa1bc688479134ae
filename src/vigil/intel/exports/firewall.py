"""Blocklists for Linux firewalls: an nftables file, an ``ipset restore`` file and an
iptables/ip6tables script backed by ipsets.

Only addresses and networks are carried. Overlapping and adjacent networks are merged
(:func:`vigil.intel.exports.nets.merge`), so ``nft`` never sees conflicting intervals and ipset
holds no redundant entries; the nftables sets also set ``auto-merge`` so that elements an
operator adds by hand never conflict either.

- ``nftables``: ``nft -f vigil.nft`` replaces table ``inet vigil`` atomically (the table is
  declared, deleted and declared again in one transaction), with interval sets ``vigil_v4``
  and ``vigil_v6`` and base chains on the input, forward and output hooks. Elements are added
  in chunks of ``options.chunk`` so that a large list never makes one huge statement.
- ``ipset``: ``ipset restore < vigil.ipset`` creates (or keeps) the ``hash:net`` sets, empties
  them and adds the list.
- ``iptables``: a POSIX shell script that fills new sets, swaps them in atomically
  (``ipset swap``), and points one ``vigil`` chain per family at them from INPUT, FORWARD and
  OUTPUT. Running it again replaces the list and keeps a single jump per chain.
"""

from __future__ import annotations

from collections.abc import Sequence

from vigil.intel.exports.common import (
    ExportOptions,
    FirewallAction,
    Rendered,
    Tally,
    collect,
    header,
    ip_entry,
)
from vigil.intel.exports.nets import Net, merge
from vigil.intel.types import IndicatorView, Observable

_PER_LINE = 8
_MIN_MAXELEM = 65_536


def _networks(fmt: str, indicators: Sequence[IndicatorView], options: ExportOptions,
              tally: Tally) -> tuple[list[Net], list[Net]]:
    """(IPv4, IPv6) networks, merged."""
    def convert(_: IndicatorView, observable: Observable) -> list[Net] | str:
        return ip_entry(fmt, options, observable)

    merged = merge(collect(indicators, tally, convert))
    return [n for n in merged if n.version == 4], [n for n in merged if n.version == 6]


def _nft_set(name: str, kind: str) -> list[str]:
    return [f"\tset {name} {{", f"\t\ttype {kind}", "\t\tflags interval", "\t\tauto-merge", "\t}"]


def _nft_chain(hook: str, matches: list[str], verdict: str) -> list[str]:
    lines = [f"\tchain {hook} {{",
             f"\t\ttype filter hook {hook} priority filter - 10; policy accept;"]
    lines += [f"\t\t{match} counter {verdict}" for match in matches]
    return [*lines, "\t}"]


def _nft_elements(table: str, name: str, nets: Sequence[Net], chunk: int) -> list[str]:
    lines: list[str] = []
    for start in range(0, len(nets), chunk):
        part = [n.text() for n in nets[start:start + chunk]]
        rows = [", ".join(part[i:i + _PER_LINE]) for i in range(0, len(part), _PER_LINE)]
        lines.append(f"add element inet {table} {name} {{")
        lines += [f"\t{row}," if i < len(rows) - 1 else f"\t{row}" for i, row in enumerate(rows)]
        lines.append("}")
    return lines


def nftables(indicators: Sequence[IndicatorView], options: ExportOptions) -> Rendered:
    """A complete ``nft -f`` file: table ``inet <name>``, sets ``<name>_v4``/``<name>_v6``,
    chains input (source), forward (both) and output (destination)."""
    tally = Tally()
    v4, v6 = _networks("nftables", indicators, options, tally)
    table, set4, set6 = options.name, f"{options.name}_v4", f"{options.name}_v6"
    verdict = "reject" if options.action is FirewallAction.REJECT else "drop"
    has4, has6 = 4 in options.ip_versions, 6 in options.ip_versions
    source = ([f"ip saddr @{set4}"] if has4 else []) + ([f"ip6 saddr @{set6}"] if has6 else [])
    dest = ([f"ip daddr @{set4}"] if has4 else []) + ([f"ip6 daddr @{set6}"] if has6 else [])
    lines = ["#!/usr/sbin/nft -f",
             *header(f"Vigil threat-intel blocklist for nftables: {len(v4)} IPv4 and {len(v6)} IPv6 "
                     "elements.", options, tally),
             f"# Load with: nft -f {options.name}.nft (replaces table inet {table} in one transaction).",
             "",
             f"table inet {table}",
             f"delete table inet {table}",
             "",
             f"table inet {table} {{"]
    if has4:
        lines += _nft_set(set4, "ipv4_addr")
    if has6:
        lines += _nft_set(set6, "ipv6_addr")
    lines += _nft_chain("input", source, verdict)
    lines += _nft_chain("forward", source + dest, verdict)
    lines += _nft_chain("output", dest, verdict)
    lines += ["}", ""]
    lines += _nft_elements(table, set4, v4, options.chunk)
    lines += _nft_elements(table, set6, v6, options.chunk)
    return tally.rendered("\n".join(lines) + "\n")


def _maxelem(count: int) -> int:
    return max(_MIN_MAXELEM, 1 << (count - 1).bit_length()) if count else _MIN_MAXELEM


def _families(v4: list[Net], v6: list[Net], options: ExportOptions) -> list[tuple[str, str, list[Net]]]:
    """(set name, ipset family, networks) per selected IP version."""
    out: list[tuple[str, str, list[Net]]] = []
    if 4 in options.ip_versions:
        out.append((f"{options.name}_v4", "inet", v4))
    if 6 in options.ip_versions:
        out.append((f"{options.name}_v6", "inet6", v6))
    return out


def ipset(indicators: Sequence[IndicatorView], options: ExportOptions) -> Rendered:
    """An ``ipset restore`` file: ``hash:net`` sets ``<name>_v4``/``<name>_v6``, emptied and
    filled with the list."""
    tally = Tally()
    v4, v6 = _networks("ipset", indicators, options, tally)
    lines = header(f"Vigil threat-intel blocklist for ipset: {len(v4)} IPv4 and {len(v6)} IPv6 entries.",
                   options, tally)
    lines.append(f"# Load with: ipset restore < {options.name}.ipset")
    for name, family, nets in _families(v4, v6, options):
        lines.append(f"create {name} hash:net family {family} hashsize 1024 "
                     f"maxelem {_maxelem(len(nets))} -exist")
        lines.append(f"flush {name}")
        lines += [f"add {name} {n.text()} -exist" for n in nets]
    return tally.rendered("\n".join(lines) + "\n")


def _script_sets(name: str, family: str, nets: Sequence[Net]) -> list[str]:
    spec = f"hash:net family {family} hashsize 1024 maxelem {_maxelem(len(nets))}"
    lines = [f"ipset list -n {name} >/dev/null 2>&1 || ipset create {name} {spec}",
             f"ipset destroy {name}_new >/dev/null 2>&1 || true",
             f"ipset create {name}_new {spec}"]
    if nets:
        lines.append("ipset restore -exist <<'VIGIL_SET'")
        lines += [f"add {name}_new {n.text()}" for n in nets]
        lines.append("VIGIL_SET")
    return [*lines, f"ipset swap {name}_new {name}", f"ipset destroy {name}_new"]


def _script_rules(tool: str, chain: str, name: str, target: str) -> list[str]:
    lines = [f"{tool} -w -N {chain} 2>/dev/null || {tool} -w -F {chain}",
             f"{tool} -w -A {chain} -m set --match-set {name} src -j {target}",
             f"{tool} -w -A {chain} -m set --match-set {name} dst -j {target}"]
    lines += [f"{tool} -w -C {hook} -j {chain} 2>/dev/null || {tool} -w -I {hook} 1 -j {chain}"
              for hook in ("INPUT", "FORWARD", "OUTPUT")]
    return lines


def iptables(indicators: Sequence[IndicatorView], options: ExportOptions) -> Rendered:
    """A POSIX shell script: ipsets swapped in atomically, a ``<name>`` chain per family that
    drops (or rejects) traffic from and to them, jumped to from INPUT, FORWARD and OUTPUT."""
    tally = Tally()
    v4, v6 = _networks("iptables", indicators, options, tally)
    target = "REJECT" if options.action is FirewallAction.REJECT else "DROP"
    lines = ["#!/bin/sh",
             *header(f"Vigil threat-intel blocklist for iptables and ipset: {len(v4)} IPv4 and "
                     f"{len(v6)} IPv6 entries.", options, tally),
             "# Run as root. Running it again replaces the lists and keeps one jump per chain.",
             "set -eu",
             ""]
    for name, family, nets in _families(v4, v6, options):
        tool = "iptables" if family == "inet" else "ip6tables"
        lines += _script_sets(name, family, nets)
        lines += _script_rules(tool, options.name, name, target)
        lines.append("")
    return tally.rendered("\n".join(lines))
