"""CEF and LEEF: the one-line event formats of ArcSight (CEF) and QRadar (LEEF).

Both usually arrive behind a syslog header, which is stripped (its host and time are kept as
fallbacks). CEF::

    CEF:0|Vendor|Product|Version|SignatureID|Name|Severity|key=value key=value ...

LEEF 1.0 (tab-separated attributes) and 2.0 (a delimiter given in the header)::

    LEEF:2.0|Vendor|Product|Version|EventID|^|key=value^key=value

The field names stay those of the source (``src``, ``dst``, ``spt``, ``suser``, ``act``...),
plus the header values (``deviceVendor``, ``deviceProduct``, ``signatureId``, ``name``...).
Either parser accepts a line of the other format, so mixed syslog streams parse whole.
Our own code: the CEF parsers on PyPI (``cefp``, ``pourover``) are small, unmaintained for
years and know no LEEF.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from vigil.core.timeutil import parse_epoch, parse_iso, to_utc
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

_START = re.compile(r"(CEF|LEEF):")
_HEADER_FIELD = r"([^|\\]*(?:\\.[^|\\]*)*)"
_CEF_HEADER = re.compile(
    r"CEF:\s*(\d+(?:\.\d+)?)\|" + (_HEADER_FIELD + r"\|") * 5 + _HEADER_FIELD + r"(?:\||$)",
    re.S,
)
_LEEF_HEADER = re.compile(r"LEEF:\s*(\d+(?:\.\d+)?)\|" + (_HEADER_FIELD + r"\|") * 4, re.S)
_LEEF_DELIMITER = re.compile(r"(0?x[0-9A-Fa-f]{2,4}|\\t|[^|=]?)\|")
_HEADER_ESCAPE = re.compile(r"\\([|\\])")
_EXT_KEY = re.compile(r"[A-Za-z0-9_.\[\]-]+")
_EXT_SPLIT = re.compile(r"\s+(?=[A-Za-z0-9_.\[\]-]+=)")
_EXT_ESCAPE = re.compile(r"\\([=\\nr|])")
_EXT_UNESCAPED = {"=": "=", "\\": "\\", "n": "\n", "r": "\r", "|": "|"}
_INTEGER = re.compile(r"-?\d{1,18}")

_SYSLOG_5424 = re.compile(r"^(?:<\d{1,3}>)?\d{1,2} (?P<ts>\S+) (?P<host>\S+) ")
_SYSLOG_ISO = re.compile(
    r"^(?:<\d{1,3}>)?(?P<ts>\d{4}-\d{2}-\d{2}T\S+) (?:(?P<host>[^\s:\[\]]+)\s)?"
)
_SYSLOG_3164 = re.compile(
    r"^(?:<\d{1,3}>)?(?P<ts>[A-Z][a-z]{2} +\d{1,2}(?: \d{4})? \d{1,2}:\d{2}:\d{2}(?:\.\d+)?) +"
    r"(?:(?P<host>[^\s:\[\]]+)\s)?"
)
_DEVICE_TIME = re.compile(
    r"(?P<mon>[A-Za-z]{3}) +(?P<day>\d{1,2})(?: (?P<year>\d{4}))? "
    r"(?P<h>\d{1,2}):(?P<m>\d{2}):(?P<s>\d{2})(?:\.(?P<frac>\d{1,9}))?(?: (?P<tz>\S+))?"
)
_OFFSET = re.compile(r"(?:GMT|UTC)?([+-])(\d{1,2}):?(\d{2})?")
_JAVA_TOKEN = re.compile(r"'(?P<lit>[^']*)'|(?P<tok>(?P<ch>[A-Za-z])(?P=ch)*)|(?P<other>.)", re.S)

MONTHS = {name: number for number, name in enumerate(
    ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"), 1)}
ZONE_ABBREVIATIONS = {"UTC": 0, "GMT": 0, "UT": 0, "Z": 0, "WET": 0, "BST": 1, "CET": 1,
                      "CEST": 2, "EET": 2, "EEST": 3, "MSK": 3, "IST": 5.5, "JST": 9,
                      "AEST": 10, "EST": -5, "EDT": -4, "CST": -6, "CDT": -5, "MST": -7,
                      "MDT": -6, "PST": -8, "PDT": -7}
"""Time-zone names devices write; unknown names are read as UTC."""

INTEGER_KEYS = frozenset({
    "cnt", "cn1", "cn2", "cn3", "dpid", "dpt", "dvcpid", "fsize", "in", "oldFileSize", "out",
    "spid", "spt", "type", "sourceTranslatedPort", "destinationTranslatedPort", "flexNumber1",
    "flexNumber2", "srcPort", "dstPort", "srcPreNATPort", "dstPreNATPort", "srcPostNATPort",
    "dstPostNATPort", "srcBytes", "dstBytes", "totalBytes", "srcPackets", "dstPackets",
    "totalPackets", "sev",
})
"""Keys whose values the CEF and LEEF specifications type as integers."""

CEF_TIME_KEYS = ("rt", "end", "start")
CEF_HOST_KEYS = ("dvchost",)

_JAVA_PARTS: dict[str, str] = {
    "d": r"(?P<day>\d{1,2})", "H": r"(?P<h>\d{1,2})", "k": r"(?P<h>\d{1,2})",
    "h": r"(?P<h12>\d{1,2})", "K": r"(?P<h12>\d{1,2})", "m": r"(?P<m>\d{1,2})",
    "s": r"(?P<s>\d{1,2})", "S": r"(?P<frac>\d{1,9})", "a": r"(?P<ampm>[AaPp]\.?[Mm]\.?)",
    "E": r"[A-Za-z]+", "z": r"(?P<tz>[A-Za-z][\w/+:-]*)", "Z": r"(?P<tz>[+-]\d{4}|Z)",
    "X": r"(?P<tz>Z|[+-]\d{2}(?::?\d{2})?)",
}


def decode(record: bytes) -> str:
    """UTF-8 text, or Latin-1 for the legacy devices that still send it (never fails)."""
    try:
        return record.decode("utf-8")
    except UnicodeDecodeError:
        return record.decode("latin-1")


def _unescape_header(value: str) -> str:
    return _HEADER_ESCAPE.sub(r"\1", value) if "\\" in value else value


def _unescape_value(value: str) -> str:
    if "\\" not in value:
        return value
    return _EXT_ESCAPE.sub(lambda m: _EXT_UNESCAPED[m.group(1)], value)


def parse_extension(text: str, unescape: bool = True) -> dict[str, str]:
    """The ``key=value`` pairs of a CEF extension: a key starts at `` key=`` (unescaped ``=``).

    Values may hold spaces; ``\\=``, ``\\\\``, ``\\n`` and ``\\r`` are unescaped.
    """
    fields: dict[str, str] = {}
    for index, piece in enumerate(_EXT_SPLIT.split(text)):
        key, sep, value = piece.partition("=")
        if not sep or (index == 0 and not _EXT_KEY.fullmatch(key)):
            continue  # text before the first key
        value = value.rstrip()
        fields[key] = _unescape_value(value) if unescape else value
    return fields


def escape_value(value: str) -> str:
    """A value escaped for a CEF extension (the inverse of the extension unescaping)."""
    return (value.replace("\\", "\\\\").replace("=", "\\=").replace("\n", "\\n")
            .replace("\r", "\\r"))


def _typed(fields: Mapping[str, str]) -> dict[str, FieldValue]:
    """Integer-typed keys become ints when they hold digits; custom labels name their values."""
    out: dict[str, FieldValue] = {}
    labels: list[tuple[str, str]] = []
    for key, value in fields.items():
        if key in INTEGER_KEYS and _INTEGER.fullmatch(value):
            out[key] = int(value)
        else:
            out[key] = value
        if key.endswith("Label") and value:
            labels.append((key[:-5], value))
    for base, label in labels:
        if base in out and label not in out:
            out[label] = out[base]
    return out


# --- time -------------------------------------------------------------------------------


def _zone(name: str | None) -> tzinfo:
    if not name:
        return UTC
    offset = _OFFSET.fullmatch(name)
    if offset:
        sign = -1 if offset.group(1) == "-" else 1
        minutes = int(offset.group(2)) * 60 + int(offset.group(3) or 0)
        return timezone(sign * timedelta(minutes=minutes))
    hours = ZONE_ABBREVIATIONS.get(name.upper())
    if hours is not None:
        return timezone(timedelta(hours=hours))
    if "/" in name:
        try:
            return ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            return UTC
    return UTC


def _month(text: str) -> int:
    if text.isdigit():
        return int(text)
    return MONTHS[text[:3].lower()]


def _hour(parts: Mapping[str, str | None]) -> int:
    if parts.get("h12"):
        hour = int(parts["h12"] or 0) % 12
        ampm = (parts.get("ampm") or "").lower()
        return hour + 12 if ampm.startswith("p") else hour
    return int(parts.get("h") or 0)


def assemble_time(parts: Mapping[str, str | None], received: datetime) -> datetime:
    """A UTC datetime from named parts (``year``/``yy``, ``mon``, ``day``, ``h``, ``tz``...).

    A missing year is the one that puts the time closest before ``received``.
    """
    month, day = _month(parts.get("mon") or ""), int(parts.get("day") or "")
    fraction = (parts.get("frac") or "0")[:6].ljust(6, "0")
    zone = _zone(parts.get("tz"))
    year_text, short_year = parts.get("year"), parts.get("yy")
    year = int(year_text) if year_text else 2000 + int(short_year) if short_year else None
    value = datetime(year or received.year, month, day, _hour(parts), int(parts.get("m") or 0),
                     int(parts.get("s") or 0), int(fraction), tzinfo=zone)
    if year is None and to_utc(value) > received + timedelta(days=1):
        value = value.replace(year=received.year - 1)
    return to_utc(value)


def parse_device_time(value: str, received: datetime) -> datetime:
    """CEF ``rt`` forms: epoch milliseconds, ``MMM dd [yyyy] HH:mm:ss[.SSS] [zone]``, ISO 8601."""
    text = value.strip()
    if text.replace(".", "", 1).isdigit():
        return parse_epoch(text)
    match = _DEVICE_TIME.fullmatch(text)
    if match:
        return assemble_time(match.groupdict(), received)
    return parse_iso(text)


@lru_cache(maxsize=64)
def java_time_pattern(fmt: str) -> re.Pattern[str]:
    """A regex with named parts for a Java ``SimpleDateFormat`` pattern (LEEF ``devTimeFormat``)."""
    pieces: list[str] = []
    used: set[str] = set()
    for token in _JAVA_TOKEN.finditer(fmt):
        if token.group("lit") is not None:
            pieces.append(re.escape(token.group("lit")) if token.group("lit") else "'")
        elif token.group("other") is not None:
            pieces.append(r"\s+" if token.group("other").isspace() else re.escape(token.group(0)))
        else:
            pieces.append(_java_part(token.group("ch"), len(token.group("tok"))))
            name = re.match(r"\(\?P<(\w+)>", pieces[-1])
            if name and name.group(1) in used:
                pieces[-1] = pieces[-1].replace(f"?P<{name.group(1)}>", "?:", 1)
            elif name:
                used.add(name.group(1))
    return re.compile("".join(pieces))


def _java_part(char: str, length: int) -> str:
    if char == "y":
        return r"(?P<yy>\d{2})" if length == 2 else r"(?P<year>\d{4})"
    if char == "M":
        return r"(?P<mon>[A-Za-z]+)" if length >= 3 else r"(?P<mon>\d{1,2})"
    try:
        return _JAVA_PARTS[char]
    except KeyError:
        raise ValueError(f"unsupported date pattern letter {char!r}") from None


def parse_leef_time(value: str, fmt: str | None, received: datetime) -> datetime:
    """LEEF ``devTime``, read with ``devTimeFormat`` when given."""
    if fmt:
        try:
            match = java_time_pattern(fmt).fullmatch(value.strip())
        except (ValueError, re.error):
            match = None  # a pattern we cannot read: try the usual forms
        if match:
            return assemble_time(match.groupdict(), received)
    return parse_device_time(value, received)


# --- syslog header ----------------------------------------------------------------------


def syslog_prefix(prefix: str, received: datetime) -> tuple[datetime | None, str | None]:
    """The time and host of a syslog header in front of ``CEF:``/``LEEF:`` (when readable)."""
    if not prefix.strip():
        return None, None
    for pattern in (_SYSLOG_5424, _SYSLOG_ISO, _SYSLOG_3164):
        match = pattern.match(prefix)
        if match:
            host = match.group("host")
            return _header_time(match.group("ts"), received), host if host != "-" else None
    return None, None


def _header_time(text: str, received: datetime) -> datetime | None:
    try:
        return parse_device_time(" ".join(text.split()), received)
    except (ValueError, KeyError, OverflowError):
        return None


def _first_time(candidates: Iterable[str | None], received: datetime,
                fmt: str | None = None) -> datetime | None:
    for value in candidates:
        if not value:
            continue
        try:
            return parse_leef_time(value, fmt, received)
        except (ValueError, KeyError, OverflowError):
            continue
    return None


# --- CEF and LEEF bodies ----------------------------------------------------------------


def cef_fields(text: str) -> dict[str, FieldValue] | None:
    """The fields of a CEF message starting at ``CEF:``; None when its header is truncated."""
    match = _CEF_HEADER.match(text)
    if match is None:
        return None
    header = [_unescape_header(value) for value in match.groups()]
    fields: dict[str, FieldValue] = {
        "cefVersion": header[0], "deviceVendor": header[1], "deviceProduct": header[2],
        "deviceVersion": header[3], "signatureId": header[4], "name": header[5],
        "severity": header[6].strip(),
    }
    for key, value in _typed(parse_extension(text[match.end():])).items():
        fields.setdefault(key, value)
    return fields


def leef_delimiter(rest: str) -> tuple[str, str]:
    """The attribute delimiter of a LEEF 2.0 body and the attributes after it."""
    match = _LEEF_DELIMITER.match(rest)
    if match is None:
        return "\t", rest
    spec = match.group(1)
    if not spec or spec == "\\t":
        return "\t", rest[match.end():]
    if len(spec) > 1:
        return chr(int(spec[spec.index("x") + 1:], 16)), rest[match.end():]
    return spec, rest[match.end():]


def leef_attributes(text: str, delimiter: str) -> dict[str, str]:
    """``key=value`` attributes split on ``delimiter`` (a piece without ``=`` continues a value)."""
    if delimiter not in text and text.count("=") > 1:
        return parse_extension(text, unescape=False)  # senders that use spaces, not tabs
    fields: dict[str, str] = {}
    last: str | None = None
    for piece in text.split(delimiter):
        key, sep, value = piece.partition("=")
        if sep and key.strip() and " " not in key.strip():
            last = key.strip()
            fields[last] = value
        elif last is not None and piece:
            fields[last] += delimiter + piece
    return fields


def leef_fields(text: str) -> dict[str, FieldValue] | None:
    """The fields of a LEEF message starting at ``LEEF:``; None when its header is truncated."""
    match = _LEEF_HEADER.match(text)
    if match is None:
        return None
    version, vendor, product, product_version, event = (
        _unescape_header(value) for value in match.groups())
    rest = text[match.end():]
    delimiter, body = leef_delimiter(rest) if version.startswith("2") else ("\t", rest)
    fields: dict[str, FieldValue] = {
        "leefVersion": version, "deviceVendor": vendor, "deviceProduct": product,
        "deviceVersion": product_version, "eventId": event,
    }
    for key, value in _typed(leef_attributes(body, delimiter)).items():
        fields.setdefault(key, value)
    return fields


def _text(fields: Mapping[str, FieldValue], key: str) -> str | None:
    value = fields.get(key)
    return None if value is None else str(value)


def parse_line(record: bytes, ctx: ParseContext) -> Event | str:
    """One CEF or LEEF line (with or without a syslog header): an event, or why not."""
    text = decode(record)
    start = _START.search(text)
    if start is None:
        return "no CEF: or LEEF: header"
    kind = "cef" if start.group(1) == "CEF" else "leef"
    body = text[start.start():]
    fields = cef_fields(body) if kind == "cef" else leef_fields(body)
    if fields is None:
        return f"truncated {kind.upper()} header"
    header_time, header_host = syslog_prefix(text[:start.start()], ctx.received)
    if kind == "cef":
        ts = _first_time((_text(fields, key) for key in CEF_TIME_KEYS), ctx.received)
        host = _text(fields, "dvchost")
    else:
        ts = _first_time([_text(fields, "devTime")], ctx.received, _text(fields, "devTimeFormat"))
        host = None
    product = str(fields.get("deviceProduct") or "").strip().lower() or None
    return Event(
        id=event_id(record),
        ts=ts or header_time or ctx.received,
        received=ctx.received,
        host=host or header_host or ctx.host,
        source=ctx.source or LogSource(product, None, kind),
        format=kind,
        fields=fields,
        raw=text,
    )


def _parse(records: Iterable[bytes], ctx: ParseContext, fmt: str) -> Iterator[ParseResult]:
    for number, record in enumerate(records, 1):
        try:
            result = parse_line(record, ctx)
        except (ValueError, TypeError, KeyError, OverflowError) as exc:
            result = f"unreadable {fmt.upper()} record: {exc}"
        if isinstance(result, str):
            yield Rejected(result, record, ctx.origin, number, fmt)
        else:
            yield result


def parse_cef(records: Iterable[bytes], ctx: ParseContext) -> Iterator[ParseResult]:
    """CEF lines (LEEF lines mixed in are parsed too)."""
    return _parse(records, ctx, "cef")


def parse_leef(records: Iterable[bytes], ctx: ParseContext) -> Iterator[ParseResult]:
    """LEEF 1.0/2.0 lines (CEF lines mixed in are parsed too)."""
    return _parse(records, ctx, "leef")


_SNIFF_CEF = re.compile(rb"(?:^|[\s>:])CEF:\s?\d+(?:\.\d+)?\|")
_SNIFF_LEEF = re.compile(rb"(?:^|[\s>:])LEEF:\s?[12]\.0\|")


def _sniff_cef(head: bytes) -> bool:
    line = first_line(head)
    return not line.startswith(b"{") and _SNIFF_CEF.search(line) is not None


def _sniff_leef(head: bytes) -> bool:
    line = first_line(head)
    return not line.startswith(b"{") and _SNIFF_LEEF.search(line) is not None


register(Format("cef", Framing.LINES, parse_cef, _sniff_cef,
                "ArcSight Common Event Format (CEF), with or without a syslog header",
                priority=15))
register(Format("leef", Framing.LINES, parse_leef, _sniff_leef,
                "IBM QRadar Log Event Extended Format (LEEF 1.0 and 2.0)", priority=15))
