"""Time helpers: ISO and epoch parsing, durations, micros round trip; everything is UTC."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vigil.core.timeutil import (
    EPOCH,
    from_micros,
    is_plausible,
    parse_any,
    parse_duration,
    parse_epoch,
    parse_iso,
    parse_when,
    to_micros,
    to_utc,
    utcnow,
)

NOW = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)


# -- parse_iso -----------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "expected"), [
    ("2024-05-01T10:20:30Z", datetime(2024, 5, 1, 10, 20, 30, tzinfo=UTC)),
    ("2024-05-01T10:20:30z", datetime(2024, 5, 1, 10, 20, 30, tzinfo=UTC)),
    ("2024-05-01T10:20:30+00:00", datetime(2024, 5, 1, 10, 20, 30, tzinfo=UTC)),
    ("2024-05-01T12:20:30+02:00", datetime(2024, 5, 1, 10, 20, 30, tzinfo=UTC)),
    ("2024-05-01T05:50:30-04:30", datetime(2024, 5, 1, 10, 20, 30, tzinfo=UTC)),
    ("2024-05-01T00:30:00+01:00", datetime(2024, 4, 30, 23, 30, 0, tzinfo=UTC)),
    ("2024-05-01T10:20:30.5Z", datetime(2024, 5, 1, 10, 20, 30, 500000, tzinfo=UTC)),
    ("2024-05-01T10:20:30.123456Z", datetime(2024, 5, 1, 10, 20, 30, 123456, tzinfo=UTC)),
    # Windows writes 7 fraction digits, some tools 9: extra digits are cut, not rounded.
    ("2024-05-01T10:20:30.1234567Z", datetime(2024, 5, 1, 10, 20, 30, 123456, tzinfo=UTC)),
    ("2024-05-01T10:20:30.123456789Z", datetime(2024, 5, 1, 10, 20, 30, 123456, tzinfo=UTC)),
    ("2024-05-01T10:20:30.9999999+01:00", datetime(2024, 5, 1, 9, 20, 30, 999999, tzinfo=UTC)),
    ("2024-05-01T10:20:30.123456789-05:00",
     datetime(2024, 5, 1, 15, 20, 30, 123456, tzinfo=UTC)),
    ("2024-05-01 10:20:30Z", datetime(2024, 5, 1, 10, 20, 30, tzinfo=UTC)),
    ("  2024-05-01T10:20:30Z \n", datetime(2024, 5, 1, 10, 20, 30, tzinfo=UTC)),
    # No offset: taken as UTC.
    ("2024-05-01T10:20:30", datetime(2024, 5, 1, 10, 20, 30, tzinfo=UTC)),
    ("2024-05-01", datetime(2024, 5, 1, tzinfo=UTC)),
])
def test_parse_iso(text: str, expected: datetime) -> None:
    parsed = parse_iso(text)
    assert parsed == expected
    assert parsed.utcoffset() == timedelta(0)


@pytest.mark.parametrize("text", [
    "", "yesterday", "2024-13-01T00:00:00Z", "2024-05-01T25:00:00Z", "12:00", "2024/05/01",
])
def test_parse_iso_rejects_non_timestamps(text: str) -> None:
    with pytest.raises(ValueError):
        parse_iso(text)


# -- epochs and parse_any ------------------------------------------------------------------


@pytest.mark.parametrize(("value", "expected"), [
    (0, EPOCH),
    (1714558830, datetime(2024, 5, 1, 10, 20, 30, tzinfo=UTC)),
    (1714558830.25, datetime(2024, 5, 1, 10, 20, 30, 250000, tzinfo=UTC)),
    (1714558830123, datetime(2024, 5, 1, 10, 20, 30, 123000, tzinfo=UTC)),  # milliseconds
    ("1714558830", datetime(2024, 5, 1, 10, 20, 30, tzinfo=UTC)),
    ("1714558830.5", datetime(2024, 5, 1, 10, 20, 30, 500000, tzinfo=UTC)),
    ("1714558830123", datetime(2024, 5, 1, 10, 20, 30, 123000, tzinfo=UTC)),
    (" 1714558830 ", datetime(2024, 5, 1, 10, 20, 30, tzinfo=UTC)),
    ("2024-05-01T10:20:30Z", datetime(2024, 5, 1, 10, 20, 30, tzinfo=UTC)),
    ("2024-05-01T12:20:30.1234567+02:00", datetime(2024, 5, 1, 10, 20, 30, 123456, tzinfo=UTC)),
    (datetime(2024, 5, 1, 10, 20, 30), datetime(2024, 5, 1, 10, 20, 30, tzinfo=UTC)),
    (datetime(2024, 5, 1, 12, 20, 30, tzinfo=timezone(timedelta(hours=2))),
     datetime(2024, 5, 1, 10, 20, 30, tzinfo=UTC)),
])
def test_parse_any(value: object, expected: datetime) -> None:
    parsed = parse_any(value)
    assert parsed == expected
    assert parsed.utcoffset() == timedelta(0)


def test_seconds_and_milliseconds_agree() -> None:
    assert parse_epoch(1714558830) == parse_epoch(1714558830000)
    assert parse_epoch("1714558830") == parse_any(1714558830)


@pytest.mark.parametrize("value", [None, True, [1], {"t": 1}, "not a time", "1.2.3", b"1714558830"])
def test_parse_any_rejects_other_values(value: object) -> None:
    with pytest.raises(ValueError):
        parse_any(value)


@pytest.mark.parametrize("value", [10**20, "99999999999999999", float("inf")])
def test_parse_any_out_of_range_epochs_raise(value: object) -> None:
    # Callers (the parsers) catch OverflowError next to ValueError for these.
    with pytest.raises((ValueError, OverflowError)):
        parse_any(value)


# -- durations and --since/--until ---------------------------------------------------------


@pytest.mark.parametrize(("text", "expected"), [
    ("30s", timedelta(seconds=30)),
    ("15m", timedelta(minutes=15)),
    ("24h", timedelta(hours=24)),
    ("7d", timedelta(days=7)),
    ("2w", timedelta(weeks=2)),
    ("0s", timedelta(0)),
    (" 3 h ", timedelta(hours=3)),
])
def test_parse_duration(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["", "h", "10", "10y", "1.5h", "-1h", "24H", "1h30m", "one hour"])
def test_parse_duration_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="not a duration"):
        parse_duration(text)


@pytest.mark.parametrize(("text", "expected"), [
    ("24h", NOW - timedelta(hours=24)),
    ("15m", NOW - timedelta(minutes=15)),
    ("7d", NOW - timedelta(days=7)),
    ("2024-04-30T08:00:00Z", datetime(2024, 4, 30, 8, tzinfo=UTC)),
    ("2024-04-30T10:00:00+02:00", datetime(2024, 4, 30, 8, tzinfo=UTC)),
    ("2024-04-30 08:00:00", datetime(2024, 4, 30, 8, tzinfo=UTC)),
    ("2024-04-30 08:00:00.1234567Z", datetime(2024, 4, 30, 8, 0, 0, 123456, tzinfo=UTC)),
    ("2024-04-30", datetime(2024, 4, 30, tzinfo=UTC)),
    ("1714464000", datetime(2024, 4, 30, 8, tzinfo=UTC)),
    ("1714464000000", datetime(2024, 4, 30, 8, tzinfo=UTC)),
])
def test_parse_when(text: str, expected: datetime) -> None:
    assert parse_when(text, now=NOW) == expected


def test_parse_when_without_now_is_relative_to_the_present() -> None:
    before = utcnow()
    value = parse_when("1h")
    after = utcnow()
    assert before - timedelta(hours=1) <= value <= after - timedelta(hours=1)
    assert value.tzinfo is not None


@pytest.mark.parametrize("text", ["yesterday", "", "last week", "-1h"])
def test_parse_when_rejects(text: str) -> None:
    with pytest.raises(ValueError):
        parse_when(text, now=NOW)


# -- UTC helpers ---------------------------------------------------------------------------


def test_utcnow_is_aware_utc() -> None:
    assert utcnow().utcoffset() == timedelta(0)


def test_to_utc() -> None:
    naive = datetime(2024, 5, 1, 10)
    assert to_utc(naive) == datetime(2024, 5, 1, 10, tzinfo=UTC)
    aware = datetime(2024, 5, 1, 10, tzinfo=timezone(timedelta(hours=-3)))
    converted = to_utc(aware)
    assert converted == datetime(2024, 5, 1, 13, tzinfo=UTC)
    assert converted.tzinfo == UTC


@pytest.mark.parametrize(("value", "plausible"), [
    (datetime(1989, 12, 31, 23, 59, tzinfo=UTC), False),
    (datetime(1990, 1, 1, tzinfo=UTC), True),
    (NOW, True),
    (NOW + timedelta(hours=23), True),
    (NOW + timedelta(days=2), False),
])
def test_is_plausible(value: datetime, plausible: bool) -> None:
    assert is_plausible(value, now=NOW) is plausible


# -- micros --------------------------------------------------------------------------------


def test_micros_known_values() -> None:
    assert to_micros(EPOCH) == 0
    assert to_micros(datetime(2024, 5, 1, 10, 20, 30, 123456, tzinfo=UTC)) == 1714558830123456
    assert to_micros(datetime(1969, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)) == -1
    assert from_micros(1714558830123456) == datetime(2024, 5, 1, 10, 20, 30, 123456, tzinfo=UTC)
    # An offset changes the representation, not the instant.
    assert to_micros(datetime(2024, 5, 1, 12, tzinfo=timezone(timedelta(hours=2)))) == \
        to_micros(datetime(2024, 5, 1, 10, tzinfo=UTC))


@given(st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30),
                    timezones=st.sampled_from([UTC, timezone(timedelta(hours=5, minutes=30)),
                                               timezone(timedelta(hours=-8))])))
def test_micros_round_trip(value: datetime) -> None:
    micros = to_micros(value)
    back = from_micros(micros)
    assert back == value
    assert back.utcoffset() == timedelta(0)
    assert to_micros(back) == micros


@given(st.integers(min_value=to_micros(datetime(1, 1, 2, tzinfo=UTC)),
                   max_value=to_micros(datetime(9999, 12, 30, tzinfo=UTC))))
def test_micros_round_trip_from_integers(micros: int) -> None:
    assert to_micros(from_micros(micros)) == micros


@given(st.datetimes(min_value=datetime(1990, 1, 1), max_value=datetime(2100, 1, 1),
                    timezones=st.just(UTC)))
def test_isoformat_round_trips_through_parse_iso(value: datetime) -> None:
    assert parse_iso(value.isoformat()) == value
    assert parse_iso(value.isoformat().replace("+00:00", "Z")) == value
