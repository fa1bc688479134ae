"""Suricata signatures, one per indicator value (the ``suricata-rules`` export).

One signature per value: addresses and networks in the rule header
(``alert ip <addr> any <> any any``), domains on ``dns.query`` and ``tls.sni`` with
``dotprefix`` (the domain and its subdomains, not look-alikes), URLs on ``http.host`` plus
``http.uri`` (``http.uri.raw`` when the path holds ``%`` escapes), JA3 on ``ja3.hash``, user
agents on ``http.user_agent`` and file names on ``file.name``. File hashes cannot be matched by
a per-value rule and go to the datasets bundle.

The datasets bundle for large lists is :mod:`vigil.intel.exports.suricata_datasets`.

Every string goes into ``content`` with the bytes Suricata treats specially (``"``, ``;``,
``\\``, ``|``, control and non-ASCII bytes) written as ``|xx|`` hex, so no value can break a
rule. Messages keep only safe printable characters. Signature ids are stable: a per-value rule
gets ``sid_base + 10,000 + hash(indicator id, rule kind, value) mod (sid_span - 10,000)`` (linear
probing on a collision), so the same indicator keeps its sid from one export to the next;
list rules use fixed ids in the first 10,000. No rule is longer than Suricata's 8,192 bytes.
"""

from __future__ import annotations

import hashlib
import ipaddress
import re
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

from vigil.core.errors import InputError
from vigil.intel import normalize
from vigil.intel.exports.common import (
    ExportOptions,
    Rendered,
    Tally,
    cannot,
    collect,
    header,
    ip_entry,
    one_line,
)
from vigil.intel.types import HASH_TYPES, IndicatorType, IndicatorView, Observable

RESERVED_SIDS = 10_000
"""Sids at the start of the range kept for list rules (the datasets bundle)."""
MAX_RULE = 8192
"""Suricata reads at most this many bytes of one rule line."""
_SPECIAL = frozenset(b'";\\|')
_ID = re.compile(r"[^A-Za-z0-9_.-]")
_MSG_LENGTH = 100
_WIDEST_SID = 2**32 - 1
_MD5 = re.compile(r"[0-9A-Fa-f]{32}")
_UNSAFE_MSG = re.compile(r'[^\x20-\x7e]|[";\\|]')
_NETWORK = (IndicatorType.IPV4, IndicatorType.IPV6, IndicatorType.CIDR)


def content(text: str) -> str:
    """The inside of ``content:"..."`` for a string: safe ASCII as is, other bytes as hex."""
    out: list[str] = []
    run: list[str] = []
    for byte in text.encode("utf-8"):
        if 0x20 <= byte < 0x7F and byte not in _SPECIAL:
            if run:
                out.append("|" + " ".join(run) + "|")
                run = []
            out.append(chr(byte))
        else:
            run.append(f"{byte:02X}")
    if run:
        out.append("|" + " ".join(run) + "|")
    return "".join(out)


def message(text: str) -> str:
    """A ``msg`` text: printable ASCII without ``"``, ``;``, ``\\`` or ``|`` (others become ``?``)."""
    safe = _UNSAFE_MSG.sub("?", text)
    return safe if len(safe) <= _MSG_LENGTH else safe[:_MSG_LENGTH - 3] + "..."


@dataclass(frozen=True, slots=True)
class _Rule:
    key: str
    """What the sid is derived from: indicator id, rule kind and value."""
    head: str
    msg: str
    body: tuple[str, ...]
    meta: str

    def size(self) -> int:
        """An upper bound of the line's length in bytes, whatever its sid."""
        rough = len(self.head) + len(self.msg) + len(self.meta) + sum(len(b) + 2 for b in self.body) + 60
        return rough if rough < MAX_RULE - 1000 else len(self.line(_WIDEST_SID).encode())

    def line(self, sid: int) -> str:
        options = [f'msg:"{message(self.msg)}"', *self.body, self.meta, f"sid:{sid}", "rev:1"]
        return f"alert {self.head} (" + "; ".join(options) + ";)"


def _metadata(indicator: IndicatorView, kind: IndicatorType) -> str:
    return f"metadata:vigil_indicator {_ID.sub('_', indicator.id)[:64]}, vigil_type {kind.value}"


def _domain_rules(indicator: IndicatorView, value: str, meta: str) -> list[_Rule] | str:
    try:
        name = normalize.domain(value)
    except InputError:
        return "not a valid DNS name"
    match = ("dotprefix", f'content:".{content(name)}"', "nocase", "endswith")
    return [_Rule(f"{indicator.id}/dns/{name}", "dns any any -> any any",
                  f"Vigil intel: DNS query for listed domain {name}", ("dns.query", *match), meta),
            _Rule(f"{indicator.id}/sni/{name}", "tls any any -> any any",
                  f"Vigil intel: TLS to listed domain {name}",
                  ("flow:established,to_server", "tls.sni", *match), meta)]


def _url_rule(indicator: IndicatorView, value: str, meta: str) -> list[_Rule] | str:
    if not one_line(value):
        return "URL with control characters"
    try:
        parts = urlsplit(value.strip())
        host = parts.hostname or ""
    except ValueError:
        return "not a valid URL"
    if parts.scheme.lower() not in ("http", "https") or not host:
        return "only http and https URLs can be matched by Suricata"
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    buffer = "http.uri.raw" if "%" in path else "http.uri"
    uri = (buffer, f'content:"{content(path)}"', "startswith", "endswith")
    host_match: tuple[str, ...] = ()
    try:
        head = f"http any any -> {ipaddress.ip_address(host)} any"
    except ValueError:
        try:
            name = normalize.domain(host)
        except InputError:
            return "not a valid URL host"
        head = "http any any -> any any"
        host_match = ("http.host", f'content:"{content(name)}"', "startswith", "endswith")
    return [_Rule(f"{indicator.id}/url/{value}", head, "Vigil intel: HTTP request for a listed URL",
                  ("flow:established,to_server", *host_match, *uri), meta)]


def _value_rule(indicator: IndicatorView, kind: IndicatorType, value: str, meta: str) -> list[_Rule]:
    if kind is IndicatorType.JA3:
        return [_Rule(f"{indicator.id}/ja3/{value}", "tls any any -> any any",
                      f"Vigil intel: listed JA3 fingerprint {value}",
                      ("ja3.hash", f'content:"{value.strip().lower()}"'), meta)]
    if kind is IndicatorType.USER_AGENT:
        return [_Rule(f"{indicator.id}/ua/{value}", "http any any -> any any",
                      "Vigil intel: listed user agent",
                      ("flow:established,to_server", "http.user_agent", f'content:"{content(value)}"',
                       "startswith", "endswith"), meta)]
    return [_Rule(f"{indicator.id}/file/{value}", "http any any -> any any",
                  f"Vigil intel: listed file name {value}",
                  ("file.name", f'content:"{content(value)}"', "nocase", "startswith", "endswith"), meta)]


def _rules_for(options: ExportOptions, indicator: IndicatorView,
               observable: Observable) -> list[_Rule] | str:
    made = _make_rules(options, indicator, observable)
    if not isinstance(made, str) and any(r.size() > MAX_RULE for r in made):
        return f"rule longer than Suricata's {MAX_RULE}-byte limit"
    return made


def _make_rules(options: ExportOptions, indicator: IndicatorView,
                observable: Observable) -> list[_Rule] | str:
    kind, value = observable.type, observable.value
    meta = _metadata(indicator, kind)
    if kind in _NETWORK:
        nets = ip_entry("Suricata rules", options, observable)
        if isinstance(nets, str):
            return nets
        address = nets[0].text()
        return [_Rule(f"{indicator.id}/ip/{address}", f"ip {address} any <> any any",
                      f"Vigil intel: traffic with listed address {address}", (), meta)]
    if not value.strip():
        return "empty value"
    if kind is IndicatorType.DOMAIN:
        return _domain_rules(indicator, value, meta)
    if kind is IndicatorType.URL:
        return _url_rule(indicator, value, meta)
    if kind is IndicatorType.JA3 and not _MD5.fullmatch(value.strip()):
        return "not a JA3 fingerprint (32 hex digits)"
    if kind in (IndicatorType.JA3, IndicatorType.USER_AGENT, IndicatorType.FILENAME):
        return _value_rule(indicator, kind, value, meta)
    if kind in HASH_TYPES:
        return "file hashes need the suricata-dataset export (filemd5/filesha256 lists)"
    return cannot("Suricata rules", kind)


def _sids(keys: Sequence[str], options: ExportOptions) -> dict[str, int]:
    """Stable sids for per-value rules: hashed into the range, probing past collisions."""
    span = options.sid_span - RESERVED_SIDS
    if len(keys) > span:
        raise InputError(f"{len(keys)} rules do not fit in sid_span {options.sid_span}; raise sid_span")
    used: set[int] = set()
    out: dict[str, int] = {}
    for key in sorted(keys):
        slot = int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big") % span
        while slot in used:
            slot = (slot + 1) % span
        used.add(slot)
        out[key] = options.sid_base + RESERVED_SIDS + slot
    return out


def rules(indicators: Sequence[IndicatorView], options: ExportOptions) -> Rendered:
    """One Suricata signature per value (two per domain: DNS and TLS SNI)."""
    tally = Tally()
    made = collect(indicators, tally, lambda ind, obs: _rules_for(options, ind, obs))
    unique: dict[str, _Rule] = {}
    seen: set[tuple[str, tuple[str, ...]]] = set()
    for rule in sorted(made, key=lambda r: r.key):
        match = (rule.head, rule.body)
        if match not in seen:
            seen.add(match)
            unique[rule.key] = rule
    sids = _sids(list(unique), options)
    lines = [rule.line(sids[key]) for key, rule in sorted(unique.items(), key=lambda item: sids[item[0]])]
    head = header(f"Vigil threat-intel signatures for Suricata: {len(lines)} rules.", options, tally)
    return tally.rendered("\n".join([*head, *lines]) + "\n")
