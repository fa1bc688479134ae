"""The registry of input formats: how to frame, sniff and parse each one.

A parser is a pure function from records (bytes) to events. Line formats get one record per
line; document formats (EVTX, a JSON document) get the whole input as one record.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from enum import StrEnum

from vigil.core.errors import UnknownFormatError
from vigil.events.models import ParseContext, ParseResult

Parser = Callable[[Iterable[bytes], ParseContext], Iterator[ParseResult]]
Sniffer = Callable[[bytes], bool]


class Framing(StrEnum):
    """How an input is cut into records."""

    LINES = "lines"
    DOCUMENT = "document"
    JSON = "json"
    """JSON lines, or one JSON document (object or array) spread over many lines."""


@dataclass(frozen=True, slots=True)
class Format:
    """One supported input format."""

    name: str
    framing: Framing
    parse: Parser
    sniff: Sniffer
    description: str
    priority: int = 100


_FORMATS: dict[str, Format] = {}


def register(fmt: Format) -> Format:
    """Add a format to the registry (plugins may add their own)."""
    _FORMATS[fmt.name] = fmt
    return fmt


def _ensure_loaded() -> None:
    if not _FORMATS:
        from vigil.events import parsers  # noqa: F401  (registers the built-in formats)


def all_formats() -> list[Format]:
    """Every registered format, in sniffing order."""
    _ensure_loaded()
    return sorted(_FORMATS.values(), key=lambda f: (f.priority, f.name))


def get_format(name: str) -> Format:
    """The format called ``name``; a clear error listing the known ones otherwise."""
    _ensure_loaded()
    try:
        return _FORMATS[name]
    except KeyError:
        known = ", ".join(sorted(_FORMATS))
        raise UnknownFormatError(f"unknown format {name!r}; known formats: {known}") from None


def detect_format(head: bytes, name: str = "-") -> Format:
    """Guess the format of an input from its first bytes."""
    if not head.strip():
        raise UnknownFormatError(f"{name}: empty input, cannot detect its format")
    for fmt in all_formats():
        if fmt.sniff(head):
            return fmt
    raise UnknownFormatError(
        f"{name}: cannot detect the format; give it with --format (see `vigil formats`)"
    )


def first_line(head: bytes) -> bytes:
    """The first non-empty line of ``head`` (for sniffers)."""
    for line in head.splitlines():
        if line.strip():
            return line.strip()
    return b""
