"""Syslog: RFC 3164 (BSD) and RFC 5424 lines, and RFC 6587 octet-counted TCP framing.

One header parser serves every syslog-shaped format (``syslog`` here, ``auth`` in
:mod:`vigil.events.parsers.linux`): the PRI (optional), the timestamp (``Mmm dd hh:mm:ss``
with the year inferred from the receive time, an RFC 3339 timestamp as rsyslog writes it, or
the RFC 5424 header), the host, the program and its pid, RFC 5424 structured data as
``sd.<id>.<param>`` fields, and the message.

RFC 3164 timestamps carry no zone: they are read as UTC unless the parse context names one
(``ctx.options["timezone"]``, an IANA name such as ``Europe/Paris``).

Written here rather than taken from a library: the syslog packages on PyPI are senders or
handlers, not tolerant receivers of both RFCs, and this path is hot.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from functools import lru_cache
from zoneinfo import ZoneInfo

from vigil.core.errors import ParseError
from vigil.core.timeutil import parse_iso, to_utc
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

MAX_FRAME = 1 << 20
"""Default largest octet-counted frame accepted (bytes); larger lengths are a framing error."""

FACILITIES = ("kern", "user", "mail", "daemon", "auth", "syslog", "lpr", "news", "uucp", "cron",
              "authpriv", "ftp", "ntp", "security", "console", "solaris-cron", "local0",
              "local1", "local2", "local3", "local4", "local5", "local6", "local7")
SEVERITIES = ("emerg", "alert", "crit", "err", "warning", "notice", "info", "debug")

LINUX_SERVICES: dict[str, str] = {
    "sshd": "sshd", "sshd-session": "sshd", "sshd-auth": "sshd",
    "sudo": "sudo",
    "su": "auth", "login": "auth", "unix_chkpwd": "auth", "pkexec": "auth",
    "useradd": "auth", "groupadd": "auth", "usermod": "auth", "userdel": "auth",
    "groupdel": "auth", "groupmod": "auth", "passwd": "auth", "chpasswd": "auth",
    "chage": "auth", "gpasswd": "auth",
    "cron": "cron", "crond": "cron", "anacron": "cron",
    "auditd": "auditd", "audispd": "auditd",
    "clamd": "clamav", "freshclam": "clamav", "clamscan": "clamav",
    "clamav-daemon": "clamav", "clamav-freshclam": "clamav", "clamav-milter": "clamav",
    "vsftpd": "vsftpd",
    "guacd": "guacamole", "guacamole": "guacamole",
}
"""Program names (lower-cased) to the Sigma Linux services their logs belong to."""

_MONTHS = {name: number for number, name in enumerate(
    ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"), 1)}
_RFC5424 = re.compile(r"([1-9]\d{0,2}) (\S+) (\S+) (\S+) (\S+) (\S+)(?: |$)")
_RFC3164_TS = re.compile(
    r"([A-Za-z]{3}) {1,2}(\d{1,2})(?: (\d{4}))? (\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(?: |$)")
_ISO_TS = re.compile(r"(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,9})?)"
                     r"(Z|[+-]\d{2}:?\d{2})?(?: |$)")
_TAG = re.compile(r"([^\s\[\]:]{1,64}?)(?:\[([^\]\s]{0,32})\])?:(?: |$)")
_SD_ID = re.compile(r'[^\s="\]]{1,64}')
_SD_PARAM = re.compile(r' ([^\s="\]]{1,64})="((?:[^"\\]|\\.)*)"', re.S)
_SD_ESCAPE = re.compile(r'\\(["\\\]])')
_SNIFF = re.compile(
    rb"<\d{1,3}>[1-9]\d{0,2} \S+ \S+ \S+ |(?:<\d{1,3}>)?(?:[A-Za-z]{3} {1,2}\d{1,2}(?: \d{4})? "
    rb"\d\d:\d\d:\d\d[. ]|\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:?\d\d) \S)")


@dataclass(slots=True)
class SyslogRecord:
    """The parsed header of one syslog line; ``fields`` holds every header field by name."""

    ts: datetime
    host: str | None
    app: str | None
    message: str
    fields: dict[str, FieldValue]


Extractor = Callable[[SyslogRecord], None]
"""A hook that adds format-specific fields (from the message) to a parsed record."""


# -- framing (RFC 6587) -----------------------------------------------------------------------

def is_octet_counted(head: bytes) -> bool:
    """True when a TCP syslog stream uses octet counting (it starts with a length digit).

    Non-transparent (newline) framing starts with ``<`` (the PRI) instead. Give at least the
    first byte of the stream; an empty ``head`` is not octet counted.
    """
    return bool(head) and 0x31 <= head[0] <= 0x39


def split_octet_counted(buffer: bytes, max_frame: int = MAX_FRAME) -> tuple[list[bytes], bytes]:
    """Cut ``LEN SP MSG`` frames off ``buffer``: the complete frames and the unconsumed rest.

    The rest (a partial length or a partial frame) is to be prefixed to the next bytes read.
    Raises :class:`ParseError` on a malformed length or one larger than ``max_frame``: the
    stream cannot be resynchronised and must be closed.
    """
    frames: list[bytes] = []
    width = len(str(max_frame))
    pos, size = 0, len(buffer)
    while pos < size:
        space = buffer.find(b" ", pos, pos + width + 1)
        if space == -1:
            head = buffer[pos:pos + width + 1]
            if len(head) > width or not head.isdigit() or head[0] == 0x30:
                raise ParseError(f"malformed octet-counting length {head[:16]!r}")
            break
        digits = buffer[pos:space]
        if not digits.isdigit() or digits[0] == 0x30:
            raise ParseError(f"malformed octet-counting length {digits[:16]!r}")
        length = int(digits)
        if length > max_frame:
            raise ParseError(f"octet-counted frame of {length} bytes exceeds {max_frame}")
        end = space + 1 + length
        if end > size:
            break
        frames.append(buffer[space + 1:end])
        pos = end
    return frames, buffer[pos:]


# -- header parsing ---------------------------------------------------------------------------

@lru_cache(maxsize=64)
def zone(name: str | None) -> tzinfo:
    """The zone RFC 3164 timestamps are read in (UTC unless named); ``ValueError`` if unknown."""
    if not name or name.upper() == "UTC":
        return UTC
    try:
        return ZoneInfo(name)
    except (KeyError, ValueError, OSError) as exc:
        raise ValueError(f"unknown timezone {name!r}") from exc


def service_for(app: str | None, default: str) -> str:
    """The Sigma Linux service of a program (``sshd``, ``sudo``, ``cron``...) or ``default``."""
    if app is None:
        return default
    return LINUX_SERVICES.get(app.lower(), default)


@lru_cache(maxsize=1024)
def linux_source(app: str | None, default: str) -> LogSource:
    """The log source ``linux/-/<service>`` of a program's messages (cached: one per program)."""
    return LogSource("linux", None, service_for(app, default))


def _pri(text: str, fields: dict[str, FieldValue]) -> int:
    """Read ``<PRI>`` into facility/severity fields; the offset after it (0 without PRI)."""
    if not text.startswith("<"):
        return 0
    end = text.find(">", 1, 5)
    digits = text[1:end] if end > 1 else ""
    if not digits.isascii() or not digits.isdigit() or int(digits) > 191:
        raise ValueError(f"bad PRI {text[:5]!r}")
    pri = int(digits)
    fields["facility"] = FACILITIES[pri >> 3]
    fields["facility_code"] = pri >> 3
    fields["severity"] = SEVERITIES[pri & 7]
    fields["severity_code"] = pri & 7
    return end + 1


def _bsd_time(match: re.Match[str], tz: tzinfo, received: datetime) -> datetime:
    """An RFC 3164 timestamp; without a year, the latest year that is not in the future."""
    month = _MONTHS.get(match.group(1).lower())
    if month is None:
        raise ValueError(f"bad timestamp month {match.group(1)!r}")
    day, hour, minute, second = (int(match.group(i)) for i in (2, 4, 5, 6))
    micros = int((match.group(7) or "0")[:6].ljust(6, "0"))
    years = (int(match.group(3)),) if match.group(3) else (received.year, received.year - 1)
    limit = received + timedelta(days=1)
    for year in years:
        try:
            value = datetime(year, month, day, hour, minute, second, micros, tzinfo=tz)
            value = value.astimezone(UTC)
        except (ValueError, OverflowError):
            continue
        if len(years) == 1 or value <= limit:
            return value
    raise ValueError(f"bad timestamp {match.group(0).strip()!r}")


def _iso_time(match: re.Match[str], tz: tzinfo) -> datetime:
    try:
        value = parse_iso(match.group(1) + (match.group(2) or ""))
        if match.group(2) is None and tz is not UTC:
            value = value.replace(tzinfo=tz).astimezone(UTC)
    except (ValueError, OverflowError):
        raise ValueError(f"bad timestamp {match.group(0).strip()!r}") from None
    return value


def _tag(text: str, fields: dict[str, FieldValue]) -> tuple[str | None, str]:
    """The program (and pid) of ``tag[pid]: message``; no program if there is no tag."""
    match = _TAG.match(text)
    if match is None:
        return None, text
    app, pid = match.group(1), match.group(2)
    fields["app"] = app
    if pid:
        fields["pid"] = int(pid) if pid.isdigit() else pid
    return app, text[match.end():]


def _parse_bsd(text: str, fields: dict[str, FieldValue], tz: tzinfo,
               received: datetime) -> SyslogRecord:
    """Everything after the PRI of an RFC 3164 line (BSD or RFC 3339 timestamp)."""
    match = _RFC3164_TS.match(text)
    if match is not None:
        ts = _bsd_time(match, tz, received)
    elif (match := _ISO_TS.match(text)) is not None:
        ts = _iso_time(match, tz)
    else:
        raise ValueError("not a syslog line (no timestamp)")
    rest = text[match.end():]
    if not rest.strip():
        raise ValueError("syslog line without host or message")
    host: str | None = None
    first, _, after = rest.partition(" ")
    if not _TAG.fullmatch(first + " "):
        host, rest = first, after
        fields["host"] = host
    app, message = _tag(rest, fields)
    fields["message"] = message
    return SyslogRecord(ts, host, app, message, fields)


def _sd_value(raw: str) -> str:
    return _SD_ESCAPE.sub(r"\1", raw) if "\\" in raw else raw


def _add_sd(fields: dict[str, FieldValue], name: str, value: str) -> None:
    previous = fields.get(name)
    if previous is None:
        fields[name] = value
    elif isinstance(previous, list):
        previous.append(value)
    else:
        fields[name] = [previous, value]


def _structured_data(text: str, fields: dict[str, FieldValue]) -> int:
    """Parse ``[id param="value"...]...`` into ``sd.<id>.<param>``; the offset after it."""
    if text.startswith("-"):
        return 1
    pos = 0
    while pos < len(text) and text[pos] == "[":
        match = _SD_ID.match(text, pos + 1)
        if match is None:
            raise ValueError("bad structured data (SD-ID)")
        prefix = f"sd.{match.group(0)}."
        pos = match.end()
        while (param := _SD_PARAM.match(text, pos)) is not None:
            _add_sd(fields, prefix + param.group(1), _sd_value(param.group(2)))
            pos = param.end()
        if not text.startswith("]", pos):
            raise ValueError("bad structured data (unterminated element)")
        pos += 1
    if pos == 0:
        raise ValueError("bad structured data (neither '-' nor '[')")
    return pos


def _parse_5424(match: re.Match[str], text: str, fields: dict[str, FieldValue],
                received: datetime) -> SyslogRecord:
    """Everything after ``<PRI>VERSION`` of an RFC 5424 line."""
    stamp, host, app, procid, msgid = (None if v == "-" else v for v in match.groups()[1:])
    try:
        ts = received if stamp is None else parse_iso(stamp)
    except (ValueError, OverflowError):
        raise ValueError(f"bad timestamp {stamp!r}") from None
    for name, value in (("host", host), ("app", app)):
        if value is not None:
            fields[name] = value
    if procid is not None:
        fields["pid"] = int(procid) if procid.isdigit() else procid
    if msgid is not None:
        fields["msgid"] = msgid
    rest = text[match.end():]
    end = _structured_data(rest, fields)
    message = rest[end + 1:] if rest.startswith(" ", end) else rest[end:]
    if message.startswith("\ufeff"):
        message = message[1:]
    fields["message"] = message
    return SyslogRecord(ts, host, app, message, fields)


def parse_line(text: str, received: datetime, tz: tzinfo = UTC) -> SyslogRecord:
    """Parse one syslog line (RFC 5424, RFC 3164 with or without PRI, rsyslog RFC 3339).

    Raises ``ValueError`` with the reason when the line is no syslog line.
    """
    fields: dict[str, FieldValue] = {}
    start = _pri(text, fields)
    if start:
        match = _RFC5424.match(text, start)
        if match is not None and (match.group(2) == "-" or match.group(2)[:1].isdigit()):
            return _parse_5424(match, text, fields, received)
    return _parse_bsd(text[start:], fields, tz, received)


# -- events -----------------------------------------------------------------------------------

def syslog_events(records: Iterable[bytes], ctx: ParseContext, fmt: str, default_service: str,
                  extract: Extractor | None = None) -> Iterator[ParseResult]:
    """Events of syslog lines; ``extract`` adds the fields of a specific format."""
    received = to_utc(ctx.received)
    try:
        tz = zone(ctx.options.get("timezone"))
    except ValueError as exc:
        for number, record in enumerate(records, 1):
            yield Rejected(str(exc), record, ctx.origin, number, fmt)
        return
    for number, record in enumerate(records, 1):
        text = record.decode("utf-8", "replace").rstrip("\r\n\x00")
        try:
            parsed = parse_line(text, received, tz)
        except ValueError as exc:
            yield Rejected(str(exc), record, ctx.origin, number, fmt)
            continue
        if extract is not None:
            extract(parsed)
        yield Event(
            id=event_id(record),
            ts=parsed.ts,
            received=ctx.received,
            host=parsed.host or ctx.host,
            source=ctx.source or linux_source(parsed.app, default_service),
            format=fmt,
            fields=parsed.fields,
            raw=text,
        )


def parse_syslog(records: Iterable[bytes], ctx: ParseContext) -> Iterator[ParseResult]:
    """Syslog lines (RFC 3164, RFC 5424, rsyslog file formats), one event per line.

    Messages of sshd, sudo, su, PAM... get the same named fields as in the ``auth`` format:
    syslog received over the network carries them as often as auth.log does.
    """
    from vigil.events.parsers.linux import auth_fields  # linux builds on this module

    return syslog_events(records, ctx, "syslog", "syslog", auth_fields)


def looks_like_syslog(line: bytes) -> bool:
    """True when ``line`` starts like a syslog line (for sniffers)."""
    return _SNIFF.match(line) is not None


def _sniff_syslog(head: bytes) -> bool:
    line = first_line(head)
    return looks_like_syslog(line) and b"CEF:" not in line and b"LEEF:" not in line


register(Format("syslog", Framing.LINES, parse_syslog, _sniff_syslog,
                "Syslog lines: RFC 3164, RFC 5424, rsyslog file formats", priority=40))
