"""Events: the typed envelope, the log-source taxonomy and the parsers."""

from vigil.events.formats import Format, Framing, all_formats, detect_format, get_format
from vigil.events.models import (
    Event,
    FieldValue,
    LogSource,
    ParseContext,
    ParseResult,
    Rejected,
    event_id,
)

__all__ = [
    "Event",
    "FieldValue",
    "Format",
    "Framing",
    "LogSource",
    "ParseContext",
    "ParseResult",
    "Rejected",
    "all_formats",
    "detect_format",
    "event_id",
    "get_format",
]
