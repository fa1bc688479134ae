"""Suricata datasets bundle (the ``suricata-dataset`` export): one rule per list and the list
files, for lists too large for one signature per value.

Files (``<name>`` is ``options.name``), all meant for Suricata's default rule path:

- ``<name>.rules``: the rules below.
- ``<name>-domains.lst``, ``<name>-ja3.lst``, ``<name>-ua.lst``, ``<name>-filenames.lst``:
  ``string`` datasets, one base64-encoded value per line (Suricata's dataset file format),
  matched exactly on ``dns.query``, ``tls.sni`` and ``http.host`` (domains; a dataset cannot
  match subdomains, use the per-value rules for that), ``ja3.hash``, ``http.user_agent`` and
  ``file.name``. ``load`` paths are relative to the rules file.
- ``<name>-md5.lst``, ``<name>-sha1.lst``, ``<name>-sha256.lst``: hex lists for ``filemd5``,
  ``filesha1`` and ``filesha256`` (read from the default rule path).
- Addresses and networks: address-group rules (``alert ip [a,b,...] any <> any any``, each
  under Suricata's 8,192-byte rule limit), which every Suricata version loads; with
  ``options.suricata_ip_datasets`` single addresses go to ``<name>-ip.lst`` instead, matched
  with ``ip.src``/``ip.dst`` datasets (Suricata 8).

List rules have fixed sids ``sid_base + 0..99``; address groups ``sid_base + 100...``.
"""

from __future__ import annotations

import base64
import re
from collections import defaultdict
from collections.abc import Sequence

from vigil.core.errors import InputError
from vigil.intel import normalize
from vigil.intel.exports.common import (
    ExportFile,
    ExportOptions,
    Rendered,
    Tally,
    cannot,
    collect,
    header,
    ip_entry,
)
from vigil.intel.exports.nets import Net, merge, parse
from vigil.intel.exports.suricata import MAX_RULE, RESERVED_SIDS
from vigil.intel.types import IndicatorType, IndicatorView, Observable

_LISTS = {
    IndicatorType.DOMAIN: "domains",
    IndicatorType.JA3: "ja3",
    IndicatorType.USER_AGENT: "ua",
    IndicatorType.FILENAME: "filenames",
    IndicatorType.MD5: "md5",
    IndicatorType.SHA1: "sha1",
    IndicatorType.SHA256: "sha256",
}
_HEX = {IndicatorType.MD5: 32, IndicatorType.SHA1: 40, IndicatorType.SHA256: 64}
_NETWORK = (IndicatorType.IPV4, IndicatorType.IPV6, IndicatorType.CIDR)
_GROUP_BUDGET = MAX_RULE - 400
"""Bytes of addresses per group rule (the rest of the line stays under 400)."""
_FIRST_GROUP_SID = 100

# list name -> (sid offset, header, message, match options before the dataset keyword)
_STRING_RULES: dict[str, list[tuple[int, str, str, tuple[str, ...]]]] = {
    "domains": [(0, "dns any any -> any any", "DNS query for a listed domain", ("dns.query",)),
                (1, "tls any any -> any any", "TLS to a listed domain",
                 ("flow:established,to_server", "tls.sni")),
                (2, "http any any -> any any", "HTTP to a listed host",
                 ("flow:established,to_server", "http.host"))],
    "ja3": [(3, "tls any any -> any any", "listed JA3 fingerprint", ("ja3.hash",))],
    "ua": [(4, "http any any -> any any", "listed user agent",
            ("flow:established,to_server", "http.user_agent"))],
    "filenames": [(5, "http any any -> any any", "listed file name", ("file.name",))],
}
_HASH_RULES = {"md5": (6, "filemd5"), "sha1": (7, "filesha1"), "sha256": (8, "filesha256")}


def _entry(options: ExportOptions, observable: Observable) -> list[tuple[str, str]] | str:
    """(list, line) for one value, or why the bundle cannot carry it."""
    kind, value = observable.type, observable.value
    if kind in _NETWORK:
        nets = ip_entry("Suricata datasets", options, observable)
        return nets if isinstance(nets, str) else [("ip", nets[0].text())]
    if kind is IndicatorType.URL:
        return "URLs need the suricata-rules export (no Suricata buffer holds a whole URL)"
    if kind not in _LISTS:
        return cannot("Suricata datasets", kind)
    if kind in _HEX:
        text = value.strip().lower()
        if len(text) != _HEX[kind] or not re.fullmatch(r"[0-9a-f]+", text):
            return f"not a {kind.value} hash"
        return [(_LISTS[kind], text)]
    if kind is IndicatorType.JA3:
        value = value.strip().lower()
        if not re.fullmatch(r"[0-9a-f]{32}", value):
            return "not a JA3 fingerprint (32 hex digits)"
    if kind is IndicatorType.DOMAIN:
        try:
            value = normalize.domain(value)
        except InputError:
            return "not a valid DNS name"
    if not value:
        return "empty value"
    return [(_LISTS[kind], base64.b64encode(value.encode("utf-8")).decode("ascii"))]


def _rule(sid: int, head: str, msg: str, body: Sequence[str]) -> str:
    options = [f'msg:"Vigil intel: {msg}"', *body, f"sid:{sid}", "rev:1"]
    return f"alert {head} (" + "; ".join(options) + ";)"


def _groups(nets: Sequence[Net]) -> list[list[str]]:
    groups: list[list[str]] = []
    current: list[str] = []
    size = 0
    for net in nets:
        text = net.text()
        if current and size + len(text) + 1 > _GROUP_BUDGET:
            groups.append(current)
            current, size = [], 0
        current.append(text)
        size += len(text) + 1
    return [*groups, current] if current else groups


def _ip_rules(nets: Sequence[Net], options: ExportOptions,
              files: dict[str, list[str]]) -> list[str]:
    base, name = options.sid_base, options.name
    lines: list[str] = []
    if options.suricata_ip_datasets:
        singles = [n for n in nets if n.is_host]
        nets = [n for n in nets if not n.is_host]
        if singles:
            files["ip"] = [n.text() for n in singles]
            spec = f"dataset:isset,{name}-ip, type ip, load {name}-ip.lst"
            lines += [_rule(base + 9, "ip any any -> any any", "traffic from a listed address",
                            ("ip.src", spec)),
                      _rule(base + 10, "ip any any -> any any", "traffic to a listed address",
                            ("ip.dst", spec))]
    groups = _groups(nets)
    if len(groups) > RESERVED_SIDS - _FIRST_GROUP_SID:
        raise InputError(f"{len(groups)} address groups do not fit in the reserved sids; use "
                         "suricata_ip_datasets or the nftables export")
    for i, group in enumerate(groups):
        lines.append(_rule(base + _FIRST_GROUP_SID + i, f"ip [{','.join(group)}] any <> any any",
                           f"traffic with listed addresses (group {i + 1})", ()))
    return lines


def _list_rules(files: dict[str, list[str]], options: ExportOptions) -> list[str]:
    base, name = options.sid_base, options.name
    lines: list[str] = []
    for list_name, specs in _STRING_RULES.items():
        if list_name not in files:
            continue
        dataset = f"dataset:isset,{name}-{list_name}, type string, load {name}-{list_name}.lst"
        lines += [_rule(base + offset, head, msg, (*body, dataset)) for offset, head, msg, body in specs]
    for list_name, (offset, keyword) in _HASH_RULES.items():
        if list_name in files:
            lines.append(_rule(base + offset, "http any any -> any any", f"file with a listed {list_name}",
                               (f"{keyword}:{name}-{list_name}.lst",)))
    return lines


def datasets(indicators: Sequence[IndicatorView], options: ExportOptions) -> Rendered:
    """The rules file (as ``content``) and every file of the bundle (as ``files``)."""
    tally = Tally()
    entries = collect(indicators, tally, lambda _, observable: _entry(options, observable))
    values: dict[str, set[str]] = defaultdict(set)
    for list_name, line in entries:
        values[list_name].add(line)
    files = {k: sorted(v) for k, v in values.items() if k != "ip"}
    found = merge(net for net in (parse(v) for v in values.get("ip", ())) if net is not None)
    rule_lines = _list_rules(files, options) + _ip_rules(found, options, files)
    head = header(f"Vigil threat-intel datasets for Suricata: {len(rule_lines)} rules. Put this file "
                  "and the .lst files in the default rule path.", options, tally)
    text = "\n".join([*head, *rule_lines]) + "\n"
    bundle = [ExportFile(f"{options.name}.rules", text)]
    bundle += [ExportFile(f"{options.name}-{k}.lst", "\n".join(v) + "\n") for k, v in sorted(files.items())]
    return tally.rendered(text, bundle)
