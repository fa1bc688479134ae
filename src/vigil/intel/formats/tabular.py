"""CSV files and plain lists read as Vigil indicators through a column mapping.

A :class:`ColumnMapping` says which column holds the value, how its type is known (a fixed
type, a type column with a vocabulary, or ``auto``: :func:`vigil.intel.normalize.guess_type`),
which columns give the context (times, confidence, tags, malware, reference, description), and
the shape of the file (delimiter, comment prefixes, header row). Named mappings of real feeds
are in :mod:`vigil.intel.formats.presets`.

:func:`parse_table` streams: it reads one line at a time and keeps only the indicators, so a
list of ten million lines costs the indicators it yields, not the file. The file as a whole is
refused (:class:`ParseError`, nothing to store) when it is HTML, JSON, compressed or binary,
when its header lacks the mapped columns, when more than ``max_problems`` lines are bad, or
when no line at all can be read; one bad line is a problem with its number (``line 12: ...``).

A header row may be a comment (abuse.ch files write ``# id,dateadded,url,...``): while no
header has been seen, a comment line naming every mapped column is taken as the header.

Pure code: bytes in, :class:`vigil.intel.types.Parsed` out.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from vigil.core.errors import InputError, ParseError
from vigil.intel.normalize import guess_type, make_input
from vigil.intel.types import TLP, IndicatorType, Parsed

ColumnRef = str | int
"""A column by its header name (case-insensitive) or its 0-based index."""

AUTO = "auto"
"""Type spec: guess each value's type (:func:`vigil.intel.normalize.guess_type`)."""
ANY_IP = "ip"
"""Type spec: an IPv4 or IPv6 address or network (each gets its own type)."""
TYPE_SPECS = frozenset({AUTO, ANY_IP} | {kind.value for kind in IndicatorType
                                         if kind is not IndicatorType.STIX_PATTERN})
"""What a mapping may name as a type: ``auto``, ``ip`` or an indicator type."""
EMPTY_VALUES = frozenset({"", "none", "n/a", "null", "-"})
_DOTTED_QUAD = re.compile(r"[0-9]{1,3}(?:\.[0-9]{1,3}){3}")
_HEX = re.compile(r"[0-9a-fA-F]+")
_HASH_LENGTHS = {32: IndicatorType.MD5, 40: IndicatorType.SHA1, 64: IndicatorType.SHA256,
                 128: IndicatorType.SHA512}


class ValueTransform(StrEnum):
    """How the value cell is turned into the indicator value."""

    NONE = "none"
    STRIP_PORT = "strip-port"
    """``198.51.100.7:443`` → ``198.51.100.7``, ``[2001:db8::1]:443`` → ``2001:db8::1``; a URL,
    a bare IPv6 address or a value without a port is left as it is."""
    FIRST_TOKEN = "first-token"
    """The text up to the first blank: ``192.0.2.0/24 ; note`` → ``192.0.2.0/24``."""


@dataclass(frozen=True)
class ColumnMapping:
    """Where the indicator and its context are in each row of a CSV file or a list."""

    value: ColumnRef = 0
    type: str = AUTO
    """The type of every value (a :data:`TYPE_SPECS` entry), or the fallback when the type
    column is empty."""
    type_column: ColumnRef | None = None
    type_map: Mapping[str, str | None] = field(default_factory=dict)
    """The type column's vocabulary (``"md5_hash": "md5"``); a value mapped to ``None`` or not
    listed is skipped (counted). Without a map the column holds type specs."""
    extra_values: tuple[tuple[ColumnRef, str], ...] = ()
    """Other columns of the same row that are indicators too, each with its type spec."""
    first_seen: ColumnRef | None = None
    last_seen: ColumnRef | None = None
    confidence: ColumnRef | None = None
    tags: ColumnRef | None = None
    """Labels, split by :attr:`tag_separator`."""
    label_columns: tuple[ColumnRef, ...] = ()
    """Columns whose whole value is one more label (``threat_type``)."""
    malware: ColumnRef | None = None
    reference: ColumnRef | None = None
    description: ColumnRef | None = None
    name: ColumnRef | None = None
    tag_separator: str = ","
    delimiter: str | None = ","
    """``None``: the whole line is the one column (a plain list; no CSV quoting)."""
    quotechar: str = '"'
    comment_prefixes: tuple[str, ...] = ("#",)
    header: bool = True
    """The file names its columns in a header row (or a comment, see the module docs)."""
    columns: tuple[str, ...] = ()
    """Column names for a file without a header, so that named references work."""
    transform: ValueTransform = ValueTransform.NONE
    empty_values: frozenset[str] = EMPTY_VALUES
    """Cell texts that mean "no value" (compared lower-case)."""
    labels: tuple[str, ...] = ()
    """Labels every indicator of the file gets."""
    tlp: TLP | None = None
    default_confidence: int | None = None

    def __post_init__(self) -> None:
        """Check the mapping (it may come from a configuration file) and normalise it;
        :class:`InputError` naming what is wrong."""
        _check_shape(self)
        specs = [self.type, *(spec for _, spec in self.extra_values),
                 *(spec for spec in self.type_map.values() if spec is not None)]
        for spec in specs:
            if spec not in TYPE_SPECS:
                raise InputError(f"unknown indicator type {spec!r} in a column mapping "
                                 f"(use {', '.join(sorted(TYPE_SPECS))})")
        try:
            transform = ValueTransform(self.transform)
        except ValueError:
            names = ", ".join(t.value for t in ValueTransform)
            raise InputError(f"unknown value transform {self.transform!r} (use {names})") from None
        tlp = TLP.parse(self.tlp) if isinstance(self.tlp, str) else self.tlp
        set_field = object.__setattr__
        set_field(self, "transform", transform)
        set_field(self, "tlp", tlp)
        set_field(self, "type_map", {k.strip().lower(): v for k, v in self.type_map.items()})
        set_field(self, "empty_values", frozenset(v.strip().lower() for v in self.empty_values))
        named = [ref for ref in self.references() if isinstance(ref, str)]
        known = {name.strip().lower() for name in self.columns}
        if not self.header and any(ref.strip().lower() not in known for ref in named):
            raise InputError("a mapping without a header row names its columns by index or lists "
                             "them in 'columns'")

    def references(self) -> list[ColumnRef]:
        """Every column the mapping reads (each must exist in the file)."""
        refs = [self.value, self.type_column, *(ref for ref, _ in self.extra_values), self.first_seen,
                self.last_seen, self.confidence, self.tags, *self.label_columns, self.malware,
                self.reference, self.description, self.name]
        return [ref for ref in refs if ref is not None]


def _check_shape(m: ColumnMapping) -> None:
    """The types of a mapping's fields, which a configuration file may get wrong."""

    def ref(value: object, optional: bool = True) -> bool:
        if value is None:
            return optional
        if isinstance(value, bool) or not isinstance(value, str | int):
            return False
        return value >= 0 if isinstance(value, int) else bool(value.strip())

    def texts(value: object) -> bool:
        return isinstance(value, tuple | frozenset) and all(isinstance(v, str) for v in value)

    checks: list[tuple[str, bool]] = [
        ("value", ref(m.value, optional=False)),
        ("type", isinstance(m.type, str)),
        ("type_map", isinstance(m.type_map, Mapping) and all(
            isinstance(k, str) and (v is None or isinstance(v, str)) for k, v in m.type_map.items())),
        ("extra_values", isinstance(m.extra_values, tuple) and all(
            isinstance(p, tuple) and len(p) == 2 and ref(p[0], optional=False) and isinstance(p[1], str)
            for p in m.extra_values)),
        ("label_columns", isinstance(m.label_columns, tuple)
         and all(ref(r, optional=False) for r in m.label_columns)),
        ("tag_separator", isinstance(m.tag_separator, str) and bool(m.tag_separator)),
        ("delimiter", m.delimiter is None or (isinstance(m.delimiter, str) and len(m.delimiter) == 1)),
        ("quotechar", isinstance(m.quotechar, str) and len(m.quotechar) == 1),
        ("comment_prefixes", texts(m.comment_prefixes) and all(m.comment_prefixes)),
        ("header", isinstance(m.header, bool)),
        ("columns", texts(m.columns)),
        ("empty_values", texts(m.empty_values)),
        ("labels", texts(m.labels)),
        ("tlp", m.tlp is None or isinstance(m.tlp, str)),
        ("default_confidence", m.default_confidence is None or (
            isinstance(m.default_confidence, int) and not isinstance(m.default_confidence, bool)
            and 0 <= m.default_confidence <= 100)),
    ]
    checks += [(name, ref(getattr(m, name))) for name in (
        "type_column", "first_seen", "last_seen", "confidence", "tags", "malware", "reference",
        "description", "name")]
    bad = [name for name, ok in checks if not ok]
    if bad:
        raise InputError(f"column mapping: bad {', '.join(bad)} (a column is a name or a 0-based "
                         "index; delimiter and quote are one character)")


@dataclass(frozen=True, slots=True)
class _Columns:
    """A mapping's column references resolved to indexes of one file."""

    value: int
    type: int | None
    extra: tuple[tuple[int, str], ...]
    first_seen: int | None
    last_seen: int | None
    confidence: int | None
    tags: int | None
    labels: tuple[int, ...]
    malware: int | None
    reference: int | None
    description: int | None
    name: int | None
    names: tuple[str, ...]

    @property
    def context(self) -> bool:
        """Whether rows have context columns (or only values)."""
        return bool(self.labels) or any(index is not None for index in (
            self.first_seen, self.last_seen, self.confidence, self.tags, self.malware, self.reference,
            self.description, self.name))


MAX_INDICATORS = 2_000_000
"""The most indicators one file may give (a larger list is refused whole, with a clear error,
rather than filling memory: split it, or raise ``intel.max_import_indicators``)."""


def parse_table(lines: Iterable[bytes] | bytes, mapping: ColumnMapping, source: str,
                *, max_problems: int = 1000, max_indicators: int = MAX_INDICATORS) -> Parsed:
    """The indicators of a CSV file or plain list (see the module docs for what is refused)."""
    reader = _TableReader(mapping, source, max_problems)
    reader.max_indicators = max_indicators
    raw_lines: Iterable[bytes] = io.BytesIO(lines) if isinstance(lines, bytes | bytearray) else lines
    return reader.read(iter(raw_lines))


class _TableReader:
    """One pass over one file: line numbers, header, problems and the result."""

    def __init__(self, mapping: ColumnMapping, source: str, max_problems: int) -> None:
        self.mapping = mapping
        self.source = source
        self.max_problems = max_problems
        self.max_indicators = MAX_INDICATORS
        self.parsed = Parsed()
        self.line = 0
        self.started = False
        self.columns: _Columns | None = None if mapping.header else self._resolve(mapping.columns)
        self.header_in_comment = False
        fixed: dict[str, Any] = {}
        if mapping.labels:
            fixed["labels"] = mapping.labels
        if mapping.tlp is not None:
            fixed["tlp"] = mapping.tlp
        if mapping.default_confidence is not None:
            fixed["confidence"] = mapping.default_confidence
        self.fixed = fixed
        """What every row gets (a row's own columns override it)."""

    def read(self, raw_lines: Iterator[bytes]) -> Parsed:
        texts = self._texts(raw_lines)
        if self.mapping.delimiter is None:
            for text in texts:
                self._row([text])
        else:
            self._csv_rows(texts, self.mapping.delimiter)
        parsed = self.parsed
        if parsed.problems and not parsed.indicators and not parsed.skipped:
            raise ParseError(f"no line could be read ({len(parsed.problems)} bad); "
                             f"first: {parsed.problems[0]}")
        return parsed

    def _csv_rows(self, texts: Iterator[str], delimiter: str) -> None:
        rows = csv.reader(texts, delimiter=delimiter, quotechar=self.mapping.quotechar,
                          skipinitialspace=True)
        while True:
            try:
                row = next(rows)
            except StopIteration:
                return
            except csv.Error as error:
                self._problem(f"not a CSV row: {error}")
                continue
            self._row(row)

    def _texts(self, raw_lines: Iterator[bytes]) -> Iterator[str]:
        """The data lines as text; comments, blank lines and the header are consumed here."""
        prefixes = self.mapping.comment_prefixes
        for number, raw in enumerate(raw_lines, 1):
            self.line = number
            if not self.started and raw.strip():
                _check_bytes(raw)
            if b"\x00" in raw:
                raise ParseError(f"binary data at line {number}, not a text list")
            try:
                text = raw.decode("utf-8").rstrip("\r\n")
            except UnicodeDecodeError:
                if not self.started:
                    raise ParseError(f"line {number} is not UTF-8 text: not a CSV file or list") from None
                self._problem("not UTF-8 text")
                continue
            stripped = text.strip().lstrip("\ufeff")
            if not stripped:
                continue
            if not self.started:
                self._check_start(stripped)
            if stripped.startswith(prefixes):
                if self.columns is None:
                    self._comment_header(stripped)
                continue
            if self.columns is None:
                self._header(stripped)
                continue
            if self.header_in_comment:
                self.header_in_comment = False
                if self._names(stripped) == self.columns.names:
                    continue
            yield stripped if self.mapping.delimiter is None else text.lstrip("\ufeff")

    def _check_start(self, text: str) -> None:
        """Refuse content that is plainly something else (an error page, JSON, an archive)."""
        self.started = True
        head = text[:64].lower()
        if head.startswith("<"):
            raise ParseError(f"HTML or XML, not a CSV file or list: {text[:60]!r}")
        if head.startswith("{") or head.startswith(("[{", '["', "[]")):
            raise ParseError(f"JSON, not a CSV file or list: {text[:60]!r}")

    def _comment_header(self, text: str) -> None:
        body = text
        for prefix in self.mapping.comment_prefixes:
            if body.startswith(prefix):
                body = body[len(prefix):]
                break
        names = self._names(body.strip())
        wanted = {ref.strip().lower() for ref in self.mapping.references() if isinstance(ref, str)}
        if wanted and wanted <= set(names):
            self.columns = self._resolve(names)
            self.header_in_comment = True

    def _header(self, text: str) -> None:
        names = self._names(text)
        self.columns = self._resolve(names)
        wanted = [ref for ref in self.mapping.references() if isinstance(ref, str)]
        missing = [ref for ref in wanted if ref.strip().lower() not in names]
        if missing:
            raise ParseError(f"the header lacks the mapped columns {', '.join(missing)} "
                             f"(found: {', '.join(names)[:300] or 'nothing'})")

    def _names(self, text: str) -> tuple[str, ...]:
        if self.mapping.delimiter is None:
            return (text.strip().lower(),)
        try:
            fields = next(csv.reader([text], delimiter=self.mapping.delimiter,
                                     quotechar=self.mapping.quotechar, skipinitialspace=True), [])
        except csv.Error:
            return ()
        return tuple(name.strip().strip('"').strip().lower() for name in fields)

    def _resolve(self, names: Iterable[str]) -> _Columns:
        """The mapping's columns as indexes of a file with these column names (a name the file
        lacks has been refused by :meth:`_header` before any row is read)."""
        names = tuple(name.strip().lower() for name in names)
        index = {name: position for position, name in reversed(list(enumerate(names)))}

        def at(ref: ColumnRef) -> int:
            return ref if isinstance(ref, int) else index.get(ref.strip().lower(), len(names))

        def optional(ref: ColumnRef | None) -> int | None:
            return None if ref is None else at(ref)

        m = self.mapping
        return _Columns(
            value=at(m.value), type=optional(m.type_column),
            extra=tuple((at(ref), spec) for ref, spec in m.extra_values),
            first_seen=optional(m.first_seen), last_seen=optional(m.last_seen),
            confidence=optional(m.confidence), tags=optional(m.tags),
            labels=tuple(at(ref) for ref in m.label_columns), malware=optional(m.malware),
            reference=optional(m.reference), description=optional(m.description), name=optional(m.name),
            names=names)

    def _problem(self, message: str) -> None:
        problems = self.parsed.problems
        problems.append(f"line {self.line}: {message}")
        if len(problems) > self.max_problems:
            raise ParseError(f"too many bad lines: more than {self.max_problems} in the first {self.line} "
                             f"lines; first: {problems[0]}")

    def _row(self, fields: list[str]) -> None:
        columns = self.columns
        assert columns is not None
        try:
            values = self._values(fields, columns)
            if not values:
                self.parsed.skipped += 1
                return
            details = self._details(fields, columns)
        except InputError as error:
            self._problem(error.message)
            return
        for spec, text in values:
            if len(self.parsed.indicators) >= self.max_indicators:
                raise ParseError(f"line {self.line}: more than {self.max_indicators:,} indicators in one "
                                 "file; nothing was imported (split the list or raise "
                                 "intel.max_import_indicators)")
            try:
                kind = _guess(text) if spec == AUTO else _kind(spec)
                self.parsed.indicators.append(make_input(kind, text, self.source, **details))
            except InputError as error:
                self._problem(error.message)

    def _cell(self, fields: list[str], index: int | None) -> str | None:
        """The text of a cell, ``None`` when absent or an empty marker."""
        if index is None or index >= len(fields):
            return None
        text = fields[index].strip()
        return None if text.lower() in self.mapping.empty_values else text

    def _values(self, fields: list[str], columns: _Columns) -> list[tuple[str, str]]:
        if columns.value >= len(fields):
            raise InputError(f"{len(fields)} field(s), the value is in column {columns.value + 1}")
        found: list[tuple[str, str]] = []
        text = self._cell(fields, columns.value)
        spec = self._spec(fields, columns) if text is not None else None
        if text is not None and spec is not None:
            found.append((spec, _transform(self.mapping.transform, text)))
        for index, extra_spec in columns.extra:
            extra = self._cell(fields, index)
            if extra is not None:
                found.append((extra_spec, extra))
        return found

    def _spec(self, fields: list[str], columns: _Columns) -> str | None:
        if columns.type is None:
            return self.mapping.type
        if columns.type >= len(fields):
            raise InputError(f"{len(fields)} field(s), the type is in column {columns.type + 1}")
        raw = self._cell(fields, columns.type)
        if raw is None:
            return self.mapping.type
        raw = raw.lower()
        if self.mapping.type_map:
            return self.mapping.type_map.get(raw)
        if raw not in TYPE_SPECS:
            raise InputError(f"unknown indicator type {raw[:40]!r}")
        return raw

    def _details(self, fields: list[str], columns: _Columns) -> dict[str, Any]:
        """The context of a row as keyword arguments of :func:`make_input`."""
        details = dict(self.fixed)
        if not columns.context:
            return details
        m = self.mapping
        cell = self._cell
        labels = list(m.labels)
        tags = cell(fields, columns.tags)
        if tags:
            labels.extend(tag.strip() for tag in tags.split(m.tag_separator)
                          if tag.strip().lower() not in m.empty_values)
        labels.extend(text for text in (cell(fields, index) for index in columns.labels) if text)
        if labels:
            details["labels"] = labels
        confidence = cell(fields, columns.confidence)
        if confidence is not None:
            details["confidence"] = _confidence(confidence)
        for key, index in (("first_seen", columns.first_seen), ("last_seen", columns.last_seen)):
            moment = cell(fields, index)
            if moment is not None:
                details[key] = parse_time(moment, key)
        malware = cell(fields, columns.malware)
        if malware is not None:
            details["malware"] = (malware,)
        for key, index in (("reference", columns.reference), ("description", columns.description),
                           ("name", columns.name)):
            text = cell(fields, index)
            if text is not None:
                details[key] = text
        return details


def _check_bytes(raw: bytes) -> None:
    head = raw.lstrip()[:8]
    if head.startswith((b"\x1f\x8b", b"PK\x03\x04", b"BZh", b"\xfd7zXZ", b"(\xb5/\xfd")):
        raise ParseError("compressed data, not a CSV file or list (decompress it first)")


def _guess(text: str) -> IndicatorType:
    """:func:`guess_type`, with a shortcut for the plain addresses and hashes most lists hold."""
    if _DOTTED_QUAD.fullmatch(text):
        return IndicatorType.IPV4
    kind = _HASH_LENGTHS.get(len(text))
    if kind is not None and _HEX.fullmatch(text):
        return kind
    return guess_type(text)


def _kind(spec: str) -> IndicatorType:
    return IndicatorType.CIDR if spec == ANY_IP else IndicatorType(spec)


def _transform(transform: ValueTransform, text: str) -> str:
    if transform is ValueTransform.STRIP_PORT:
        return strip_port(text)
    if transform is ValueTransform.FIRST_TOKEN:
        return text.split(None, 1)[0] if text else text
    return text


def strip_port(text: str) -> str:
    """A ``host:port`` value without its port (see :attr:`ValueTransform.STRIP_PORT`)."""
    if text.startswith("["):
        end = text.find("]")
        return text[1:end] if end > 1 else text
    if "://" in text:
        return text
    host, colon, port = text.rpartition(":")
    if colon and ":" not in host and port.isdigit():
        return host
    return text


def _confidence(text: str) -> int:
    try:
        return round(float(text))
    except (ValueError, OverflowError):
        raise InputError(f"confidence {text[:40]!r} is not a number") from None


def parse_time(text: str, what: str = "time") -> datetime:
    """A feed's time: ISO 8601 (``2024-07-16 06:45:19``, ``2024-07-16``, ``...Z``, ``... UTC``)
    or Unix seconds; a time without a zone is UTC."""
    value = text.strip()
    try:
        if value.isdigit():
            seconds = int(value)
            return datetime.fromtimestamp(seconds / 1000 if seconds > 100_000_000_000 else seconds, UTC)
        value = value.removesuffix("UTC").strip()
        moment = datetime.fromisoformat(value[:-1] + "+00:00" if value.endswith("Z") else value)
    except (ValueError, OverflowError, OSError):
        raise InputError(f"{what} {text[:40]!r} is not a time") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
