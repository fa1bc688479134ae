"""Zeek logs: JSON (one object per line) and the classic TSV format with ``#`` headers.

Field names stay as Zeek writes them (``id.orig_h``, ``id.resp_p``, ``query``, ``uid``...),
and the TSV values get the types of their ``#types`` header, so both forms give the same
fields. The log source is ``zeek`` with the log name as service (``conn``, ``dns``,
``http``, ``smb_files``...), as Sigma's Zeek rules expect; the name comes from ``_path``,
the ``#path`` header, the file name (``conn.log``, ``dns.10:00:00-11:00:00.log.gz``) or,
last, from the fields a record holds.

The TSV parser is stateful over the lines of one input: the headers of a file apply to the
rows that follow them. The TSV reading is our own (about 100 lines): a parser here is a pure
function over line records that yields our field names and types.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson

from vigil.core.timeutil import parse_any
from vigil.events.flatten import flatten
from vigil.events.formats import Format, Framing, first_line, register
from vigil.events.models import (
    Event,
    FieldValue,
    LogSource,
    ParseContext,
    ParseResult,
    Rejected,
    event_id,
)
from vigil.events.parsers.suricata import load_json

FORMAT = "zeek"
HOST_KEYS = ("_system_name",)

ZEEK_LOGS = frozenset({
    "analyzer", "broker", "capture_loss", "cluster", "config", "conn", "conn_long", "dce_rpc",
    "dhcp", "dnp3", "dns", "dpd", "files", "ftp", "http", "intel", "irc", "kerberos",
    "known_certs", "known_hosts", "known_modbus", "known_services", "ldap", "ldap_search",
    "loaded_scripts", "modbus", "mqtt_connect", "mqtt_publish", "mqtt_subscribe", "mysql",
    "netcontrol", "notice", "notice_alarm", "ntlm", "ntp", "ocsp", "packet_filter", "pe",
    "quic", "radius", "rdp", "reporter", "rfb", "signatures", "sip", "smb_cmd", "smb_files",
    "smb_mapping", "smtp", "snmp", "socks", "software", "ssh", "ssl", "stats", "syslog",
    "traceroute", "tunnel", "websocket", "weird", "x509",
})
"""Log names Zeek and its common packages write (accepted from file names)."""

KEY_HINTS: tuple[tuple[str, frozenset[str]], ...] = tuple(
    (name, frozenset(keys.split())) for name, keys in (
        ("conn", "conn_state"),
        ("dns", "trans_id qtype_name"),
        ("dns", "trans_id rcode"),
        ("sip", "call_id"),
        ("smtp", "helo"),
        ("smtp", "mailfrom"),
        ("http", "trans_depth uri"),
        ("kerberos", "request_type"),
        ("ssl", "cipher"),
        ("ssl", "established server_name"),
        ("x509", "certificate.subject"),
        ("files", "fuid seen_bytes"),
        ("notice", "note msg"),
        ("weird", "name peer"),
        ("ssh", "auth_success"),
        ("ntlm", "server_nb_computer_name"),
        ("rdp", "security_protocol"),
        ("dce_rpc", "endpoint operation"),
        ("smb_files", "action path name"),
        ("smb_mapping", "share_type"),
        ("dhcp", "msg_types"),
        ("software", "software_type"),
        ("pe", "is_exe"),
        ("tunnel", "tunnel_type"),
        ("ftp", "command reply_code"),
        ("intel", "seen.indicator"),
        ("capture_loss", "percent_lost"),
        ("stats", "pkts_proc"),
    )
)
"""Keys that only one log type writes: the fallback when nothing else names the log."""

_ESCAPE = re.compile(rb"\\x([0-9a-fA-F]{2})")
_CONTAINER = re.compile(r"(?:set|vector|table)\[(.+)\]")


def log_from_origin(origin: str) -> str | None:
    """The log name of a file name: ``conn.log``, ``json_streaming_dns.1.log``..."""
    name = re.split(r"[/\\]", origin)[-1]
    name = name.removeprefix("json_streaming_").split(".", 1)[0]
    return name if name in ZEEK_LOGS else None


def log_from_keys(fields: Mapping[str, Any]) -> str | None:
    """The log name guessed from the keys of a record."""
    for name, keys in KEY_HINTS:
        if all(key in fields for key in keys):
            return name
    return None


def _event(fields: dict[str, FieldValue], raw: bytes, ctx: ParseContext,
           log: str | None) -> Event:
    stamp = fields.get(ctx.timestamp_field or "ts")
    if stamp is None and ctx.timestamp_field:
        raise ValueError(f"timestamp field {ctx.timestamp_field!r} missing")
    ts: datetime = ctx.received if stamp is None else parse_any(stamp)
    host = next((fields[k] for k in HOST_KEYS if isinstance(fields.get(k), str)), None)
    return Event(
        id=event_id(raw),
        ts=ts,
        received=ctx.received,
        host=str(host) if host else ctx.host,
        source=ctx.source or LogSource("zeek", None, log),
        format=FORMAT,
        fields=fields,
        raw=raw.decode("utf-8", "replace"),
    )


def _json_record(record: bytes, ctx: ParseContext, origin_log: str | None) -> Event | str:
    try:
        doc = load_json(record)
    except orjson.JSONDecodeError as exc:
        return f"invalid JSON: {exc}"
    if not isinstance(doc, dict):
        return "not a JSON object"
    fields = flatten(doc)
    path = fields.get("_path")
    log = path if isinstance(path, str) and path else origin_log or log_from_keys(fields)
    return _event(fields, record, ctx, log)


# --- TSV ----------------------------------------------------------------------------------


def unescape(value: str) -> str:
    """A TSV value with Zeek's ``\\xHH`` escapes undone (bytes that are no UTF-8 stay escaped)."""
    if "\\x" not in value:
        return value
    data = _ESCAPE.sub(lambda m: bytes([int(m.group(1), 16)]), value.encode("utf-8"))
    return data.decode("utf-8", "backslashreplace")


def _to_int(value: str) -> FieldValue:
    try:
        return int(value)
    except ValueError:
        return unescape(value)


def _to_float(value: str) -> FieldValue:
    try:
        return float(value)
    except ValueError:
        return unescape(value)


def _to_bool(value: str) -> FieldValue:
    return {"T": True, "F": False}.get(value, value)


_SCALARS: dict[str, Callable[[str], FieldValue]] = {
    "count": _to_int, "int": _to_int, "port": _to_int, "time": _to_float,
    "interval": _to_float, "double": _to_float, "bool": _to_bool,
}


@dataclass(slots=True)
class TsvState:
    """What the ``#`` headers of a Zeek TSV file have said so far."""

    separator: str = "\t"
    set_separator: str = ","
    empty: str = "(empty)"
    unset: str = "-"
    path: str | None = None
    fields: list[str] = field(default_factory=list)
    types: list[str] = field(default_factory=list)

    def header(self, line: str) -> None:
        """Take in one ``#`` line."""
        if line.startswith("#separator"):
            self.separator = unescape(line[len("#separator"):].strip() or "\\x09")
            return
        name, _, rest = line[1:].partition(self.separator)
        values = rest.split(self.separator) if rest else []
        if name == "set_separator" and values:
            self.set_separator = unescape(values[0])
        elif name == "empty_field" and values:
            self.empty = values[0]
        elif name == "unset_field" and values:
            self.unset = values[0]
        elif name == "path" and values:
            self.path = values[0]
        elif name == "fields":
            self.fields, self.types = values, []
        elif name == "types":
            self.types = values

    def value(self, text: str, zeek_type: str) -> FieldValue:
        """One typed value (``(empty)`` is an empty string or an empty list)."""
        container = _CONTAINER.fullmatch(zeek_type)
        if container:
            if text == self.empty:
                return []
            convert = _SCALARS.get(container.group(1), unescape)
            return [convert(item) for item in text.split(self.set_separator)]
        if text == self.empty:
            return ""
        return _SCALARS.get(zeek_type, unescape)(text)

    def row(self, line: str) -> dict[str, FieldValue] | str:
        """The fields of one data row, or why it cannot be read."""
        if not self.fields:
            return "Zeek TSV row before any #fields header"
        values = line.split(self.separator)
        if len(values) != len(self.fields):
            return f"expected {len(self.fields)} columns, got {len(values)}"
        types = self.types if len(self.types) == len(self.fields) else ["string"] * len(values)
        return {name: self.value(text, kind)
                for name, text, kind in zip(self.fields, values, types, strict=True)
                if text != self.unset}


def parse_zeek(records: Iterable[bytes], ctx: ParseContext) -> Iterator[ParseResult]:
    """Zeek JSON lines, or Zeek TSV lines with their headers (one record per line)."""
    origin_log = log_from_origin(ctx.origin)
    state = TsvState()
    for number, record in enumerate(records, 1):
        stripped = record.strip()
        if not stripped:
            continue
        try:
            if stripped.startswith((b"{", b"[")):
                result = _json_record(stripped, ctx, origin_log)
            elif stripped.startswith(b"#"):
                state.header(stripped.decode("utf-8", "replace"))
                continue
            else:
                result = _tsv_record(record.rstrip(b"\r\n"), state, ctx, origin_log)
        except (ValueError, TypeError, OverflowError) as exc:
            result = f"bad timestamp: {exc}"
        if isinstance(result, str):
            yield Rejected(result, record, ctx.origin, number, FORMAT)
        else:
            yield result


def _tsv_record(record: bytes, state: TsvState, ctx: ParseContext,
                origin_log: str | None) -> Event | str:
    fields = state.row(record.decode("utf-8", "replace"))
    if isinstance(fields, str):
        return fields
    return _event(fields, record, ctx, state.path or origin_log or log_from_keys(fields))


def _sniff_zeek(head: bytes) -> bool:
    line = first_line(head)
    if line.startswith(b"#separator"):
        return True
    if not line.startswith(b"{"):
        return False
    return b'"_path"' in line or (b'"uid"' in line and b'"id.orig_h"' in line)


register(Format(FORMAT, Framing.LINES, parse_zeek, _sniff_zeek,
                "Zeek logs (JSON or TSV with #fields headers): conn, dns, http, ssl, files...",
                priority=20))
