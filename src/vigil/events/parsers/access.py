"""Web server access logs: the common and combined formats of nginx and Apache.

::

    203.0.113.9 - frank [10/Oct/2000:13:55:36 -0700] "GET /a.gif?x=1 HTTP/1.1" 200 2326 "ref" "ua"

A leading virtual host (Apache ``vhost_combined``) and trailing extra fields (request time,
upstream time...) are accepted; the extra text is kept in ``extra``. A request line that is
no ``METHOD target VERSION`` (``"-"``, a TLS handshake sent to the HTTP port) is kept in
``request`` only. Field names follow Sigma's ``webserver`` category (the W3C names):
``c-ip``, ``cs-username``, ``cs-method``, ``cs-uri-stem``, ``cs-uri-query`` (the query
without ``?``), ``cs-version``, ``sc-status``, ``sc-bytes``, ``cs-referer``,
``cs-user-agent``, ``cs-host``; ``cs-uri`` holds the whole request target. A ``-``
placeholder becomes an absent value (None).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from datetime import datetime, timedelta, timezone

from vigil.core.timeutil import to_utc
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

FORMAT = "access"
SOURCE = LogSource(None, "webserver", None)


def _quoted(name: str) -> str:
    """A double-quoted value with backslash escapes, captured as ``name``."""
    return rf'"(?P<{name}>[^"\\]*(?:\\.[^"\\]*)*)"'


_LINE = re.compile(
    r"(?:(?P<vhost>\S+) )?(?P<ip>\S+) (?P<ident>\S+) (?P<user>\S+) \[(?P<time>[^\]]+)\] "
    + _quoted("request") + r" (?P<status>\d{3}|-) (?P<bytes>\d+|-)"
    + r"(?: " + _quoted("referer") + " " + _quoted("agent") + r")?(?P<extra>.*)",
    re.S,
)
_ESCAPE = re.compile(r'\\(["\\])')
_TIME = re.compile(
    r"(\d{1,2})/([A-Za-z]{3})/(\d{4}):(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,6}))?"
    r" ?([+-])(\d{2}):?(\d{2})"
)
_REQUEST = re.compile(r"([A-Za-z][A-Za-z_-]{0,31}) (\S.*?)(?: (HTTP/\d+(?:\.\d+)?))?")
_SNIFF = re.compile(
    rb"^(?:\S+ )?\S+ \S+ \S+ \[\d{1,2}/[A-Za-z]{3}/\d{4}:\d{2}:\d{2}:\d{2}(?:\.\d+)?"
    rb" ?[+-]\d{2}:?\d{2}\] \""
)
MONTHS = {name: number for number, name in enumerate(
    ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"), 1)}


def parse_time(text: str) -> datetime:
    """``10/Oct/2000:13:55:36 -0700`` (the Apache ``%t`` / nginx ``$time_local`` form) to UTC."""
    match = _TIME.fullmatch(text.strip())
    if match is None:
        raise ValueError(f"not an access-log time: {text!r}")
    day, mon, year, hour, minute, second, fraction, sign, off_h, off_m = match.groups()
    month = MONTHS.get(mon.lower())
    if month is None:
        raise ValueError(f"unknown month {mon!r}")
    offset = timedelta(hours=int(off_h), minutes=int(off_m))
    zone = timezone(-offset if sign == "-" else offset)
    micro = int((fraction or "0").ljust(6, "0"))
    return to_utc(datetime(int(year), month, int(day), int(hour), int(minute), int(second),
                           micro, tzinfo=zone))


def _dash(value: str | None) -> str | None:
    return None if value in (None, "-", "") else value


def _unescape(value: str) -> str:
    """Apache writes ``\\"`` and ``\\\\`` in quoted values; nginx ``\\x22`` (kept as written)."""
    if "\\" not in value:
        return value
    return _ESCAPE.sub(r"\1", value)


def request_fields(request: str) -> dict[str, FieldValue]:
    """Method, URI stem and query, and version of a request line (nothing when malformed)."""
    match = _REQUEST.fullmatch(request)
    if match is None:
        return {}
    method, target, version = match.groups()
    stem, question, query = target.partition("?")
    return {
        "cs-method": method,
        "cs-uri": target,
        "cs-uri-stem": stem,
        "cs-uri-query": query if question else None,
        "cs-version": version,
    }


def line_fields(text: str) -> tuple[dict[str, FieldValue], str] | None:
    """The fields and the time text of one access-log line (None when it is none)."""
    match = _LINE.fullmatch(text)
    if match is None:
        return None
    request = _unescape(match.group("request"))
    status, size = match.group("status"), match.group("bytes")
    fields: dict[str, FieldValue] = {
        "c-ip": match.group("ip"),
        "cs-username": _dash(match.group("user")),
        "request": request,
        **request_fields(request),
        "sc-status": int(status) if status != "-" else None,
        "sc-bytes": int(size) if size != "-" else 0,
        "cs-referer": _dash(_unescape(match.group("referer") or "")),
        "cs-user-agent": _dash(_unescape(match.group("agent") or "")),
    }
    ident = _dash(match.group("ident"))
    if ident is not None:
        fields["ident"] = ident
    if match.group("vhost"):
        fields["cs-host"] = match.group("vhost")
    extra = match.group("extra").strip()
    if extra:
        fields["extra"] = extra
    return fields, match.group("time")


def _parse_line(record: bytes, ctx: ParseContext) -> Event | str:
    text = record.decode("utf-8", "replace").rstrip("\r\n")
    parsed = line_fields(text)
    if parsed is None:
        return "not a common/combined access-log line"
    fields, time_text = parsed
    ts = parse_time(time_text)
    return Event(id=event_id(record), ts=ts, received=ctx.received, host=ctx.host,
                 source=ctx.source or SOURCE, format=FORMAT, fields=fields, raw=text)


def parse_access(records: Iterable[bytes], ctx: ParseContext) -> Iterator[ParseResult]:
    """Access-log lines (common, combined, vhost_combined, with extra trailing fields)."""
    for number, record in enumerate(records, 1):
        try:
            result = _parse_line(record, ctx)
        except (ValueError, OverflowError) as exc:
            result = f"bad time: {exc}"
        if isinstance(result, str):
            yield Rejected(result, record, ctx.origin, number, FORMAT)
        else:
            yield result


def _sniff_access(head: bytes) -> bool:
    return _SNIFF.match(first_line(head)) is not None


register(Format(FORMAT, Framing.LINES, parse_access, _sniff_access,
                "Web server access logs (nginx/Apache common and combined formats)",
                priority=50))
