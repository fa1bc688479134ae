"""Time helpers: everything in Vigil is UTC; parsing of the timestamp shapes sources use."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MIN_PLAUSIBLE = datetime(1990, 1, 1, tzinfo=UTC)
_FRACTION = re.compile(r"\.(\d+)")
_ISO_WITH_SPACE = re.compile(r"^\d{4}-\d{2}-\d{2} ")


def utcnow() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(UTC)


def to_utc(value: datetime) -> datetime:
    """A timezone-aware UTC datetime (naive values are taken as UTC)."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def _trim_fraction(text: str) -> str:
    """Python accepts at most 6 fraction digits; Windows writes 7, some tools 9."""
    match = _FRACTION.search(text)
    if match and len(match.group(1)) > 6:
        return text[: match.start(1) + 6] + text[match.end(1) :]
    return text


def parse_iso(text: str) -> datetime:
    """Parse an ISO 8601 / RFC 3339 timestamp (``Z``, offsets, 0-9 fraction digits) to UTC.

    Raises ``ValueError`` when the text is not a timestamp.
    """
    text = text.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        return to_utc(datetime.fromisoformat(text))
    except ValueError:
        return to_utc(datetime.fromisoformat(_trim_fraction(text)))


def parse_epoch(value: float | int | str) -> datetime:
    """Seconds (or milliseconds, for values past year 5000) since the epoch, to UTC."""
    seconds = float(value)
    if seconds > 1e11:
        seconds /= 1000.0
    return EPOCH + timedelta(seconds=seconds)


def parse_any(value: object) -> datetime:
    """Parse a timestamp given as ISO text or as epoch seconds/milliseconds."""
    if isinstance(value, datetime):
        return to_utc(value)
    if isinstance(value, int | float) and not isinstance(value, bool):
        return parse_epoch(value)
    if isinstance(value, str):
        stripped = value.strip()
        if stripped.replace(".", "", 1).isdigit():
            return parse_epoch(stripped)
        return parse_iso(stripped)
    raise ValueError(f"not a timestamp: {value!r}")


def is_plausible(value: datetime, now: datetime | None = None) -> bool:
    """False for timestamps before 1990 or more than a day in the future (clock errors)."""
    reference = now or utcnow()
    return _MIN_PLAUSIBLE <= value <= reference + timedelta(days=1)


def to_micros(value: datetime) -> int:
    """Microseconds since the epoch."""
    delta = to_utc(value) - EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def from_micros(value: int) -> datetime:
    """The inverse of :func:`to_micros`."""
    return EPOCH + timedelta(microseconds=value)


def parse_duration(text: str) -> timedelta:
    """Parse ``30s``, ``15m``, ``24h``, ``7d``, ``2w`` into a timedelta."""
    match = re.fullmatch(r"\s*(\d+)\s*([smhdw])\s*", text)
    if not match:
        raise ValueError(f"not a duration: {text!r} (use e.g. 30s, 15m, 24h, 7d, 2w)")
    amount, unit = int(match.group(1)), match.group(2)
    seconds = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}[unit]
    return timedelta(seconds=amount * seconds)


def parse_when(text: str, now: datetime | None = None) -> datetime:
    """A point in time for ``--since``/``--until``: ISO text, epoch, or a duration ago (``24h``)."""
    try:
        return (now or utcnow()) - parse_duration(text)
    except ValueError:
        pass
    if _ISO_WITH_SPACE.match(text):
        text = text.replace(" ", "T", 1)
    return parse_any(text)


def when_option(text: str | None, name: str) -> datetime | None:
    """``parse_when`` for a user-given option: None stays None, a bad value is an InputError."""
    from vigil.core.errors import InputError

    if text is None:
        return None
    try:
        return parse_when(text)
    except (ValueError, OverflowError) as exc:
        raise InputError(f"{name}: {exc}") from exc
