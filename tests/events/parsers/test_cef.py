"""CEF and LEEF: header and extension escaping, custom labels, times, syslog headers, bad input."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vigil.events import Event, LogSource, ParseContext, Rejected, event_id, get_format
from vigil.events.parsers.cef import (
    escape_value,
    java_time_pattern,
    leef_delimiter,
    parse_device_time,
    parse_extension,
    parse_leef_time,
    syslog_prefix,
)

RECEIVED = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)


def parse(*lines: bytes, fmt: str = "cef", host: str | None = None,
          source: LogSource | None = None) -> list[Event | Rejected]:
    ctx = ParseContext(origin="test.log", received=RECEIVED, host=host, source=source)
    return list(get_format(fmt).parse(list(lines), ctx))


def one(line: bytes, fmt: str = "cef", host: str | None = None,
        source: LogSource | None = None) -> Event:
    results = parse(line, fmt=fmt, host=host, source=source)
    assert len(results) == 1
    assert isinstance(results[0], Event), results[0]
    return results[0]


# --- extension --------------------------------------------------------------------------


def test_extension_values_with_spaces_and_escapes() -> None:
    fields = parse_extension(r"msg=hello big world src=10.0.0.1 q=a\=b c\\d act=blocked  ")
    assert fields == {"msg": "hello big world", "src": "10.0.0.1", "q": r"a=b c\d",
                      "act": "blocked"}


def test_extension_newlines_and_unknown_escapes() -> None:
    fields = parse_extension(r"msg=one\ntwo\rthree path=C:\temp")
    assert fields["msg"] == "one\ntwo\rthree"
    assert fields["path"] == r"C:\temp"  # an unknown escape stays as written


def test_extension_equals_inside_a_word_is_no_key() -> None:
    fields = parse_extension("request=http://x.example/?a=b&c=d msg=ok")
    assert fields == {"request": "http://x.example/?a=b&c=d", "msg": "ok"}


def test_extension_empty_values_and_text() -> None:
    assert parse_extension("") == {}
    assert parse_extension("duser= suser=bob") == {"duser": "", "suser": "bob"}


_KEYS = st.from_regex(r"[A-Za-z][A-Za-z0-9_]{0,15}", fullmatch=True)
_VALUES = st.text(max_size=40).filter(lambda v: v == v.rstrip())


@given(st.dictionaries(_KEYS, _VALUES, max_size=8))
def test_extension_escaping_round_trip(pairs: dict[str, str]) -> None:
    text = " ".join(f"{key}={escape_value(value)}" for key, value in pairs.items())
    assert parse_extension(text) == pairs


@given(st.binary(max_size=300))
def test_arbitrary_bytes_never_raise(data: bytes) -> None:
    for fmt in ("cef", "leef"):
        results = parse(data, b"CEF:0|" + data, b"LEEF:2.0|a|b|c|d|" + data, fmt=fmt)
        assert len(results) == 3


# --- CEF events -------------------------------------------------------------------------


def test_cef_header_fields_and_escapes() -> None:
    event = one(rb"CEF:0|Acme\|Corp|Fire\\Wall|1.0|sig-1|Name with \| pipe|7|src=10.0.0.1")
    assert event.fields["deviceVendor"] == "Acme|Corp"
    assert event.fields["deviceProduct"] == "Fire\\Wall"
    assert event.fields["name"] == "Name with | pipe"
    assert event.fields["severity"] == "7"
    assert event.fields["cefVersion"] == "0"
    assert event.source == LogSource("fire\\wall", None, "cef")
    assert event.format == "cef"


def test_cef_integer_keys_and_custom_labels() -> None:
    event = one(b"CEF:0|V|P|1|s|n|3|spt=1234 dpt=abc cn1Label=Session cn1=42 cs1Label=Rule "
                b"cs1=allow web cs2Label=src cs2=shadowed")
    assert event.fields["spt"] == 1234
    assert event.fields["dpt"] == "abc"  # not digits: kept as text
    assert event.fields["Session"] == 42
    assert event.fields["Rule"] == "allow web"
    assert event.fields["src"] == "shadowed"  # a label may name a key that is not there


def test_cef_label_never_overrides_a_field() -> None:
    event = one(b"CEF:0|V|P|1|s|n|3|src=1.2.3.4 cs1Label=src cs1=9.9.9.9")
    assert event.fields["src"] == "1.2.3.4"


def test_cef_header_without_extension() -> None:
    event = one(b"CEF:0|V|P|1|s|n|3")
    assert event.fields["severity"] == "3"
    event = one(b"CEF:0|V|P|1|s|n|3|")
    assert event.fields["name"] == "n"


@pytest.mark.parametrize(("ext", "expected"), [
    ("rt=1705312800000", datetime(2024, 1, 15, 10, 0, tzinfo=UTC)),
    ("rt=1705312800", datetime(2024, 1, 15, 10, 0, tzinfo=UTC)),
    ("rt=Jan 15 2024 10:00:00", datetime(2024, 1, 15, 10, 0, tzinfo=UTC)),
    ("rt=Jan 15 2024 10:00:00.250 UTC", datetime(2024, 1, 15, 10, 0, 0, 250000, tzinfo=UTC)),
    ("rt=Jan 15 2024 11:00:00 CET", datetime(2024, 1, 15, 10, 0, tzinfo=UTC)),
    ("rt=Jan 15 2024 05:00:00 -0500", datetime(2024, 1, 15, 10, 0, tzinfo=UTC)),
    ("rt=Jan 15 10:00:00", datetime(2024, 1, 15, 10, 0, tzinfo=UTC)),
    ("rt=Dec 31 10:00:00", datetime(2023, 12, 31, 10, 0, tzinfo=UTC)),
    ("rt=2024-01-15T10:00:00.1234567Z", datetime(2024, 1, 15, 10, 0, 0, 123456, tzinfo=UTC)),
    ("end=Jan 15 2024 10:00:00 GMT start=Jan 15 2024 09:00:00 GMT",
     datetime(2024, 1, 15, 10, 0, tzinfo=UTC)),
    ("start=Jan 15 2024 09:00:00 GMT", datetime(2024, 1, 15, 9, 0, tzinfo=UTC)),
    ("rt=garbage end=1705312800000", datetime(2024, 1, 15, 10, 0, tzinfo=UTC)),
    ("rt=Feb 30 2024 10:00:00", RECEIVED),
    ("src=1.2.3.4", RECEIVED),
])
def test_cef_timestamps(ext: str, expected: datetime) -> None:
    assert one(f"CEF:0|V|P|1|s|n|3|{ext}".encode()).ts == expected


@pytest.mark.parametrize(("line", "host", "ts"), [
    (b"<134>Jan 15 10:00:00 fw01 CEF:0|V|P|1|s|n|3|src=1.2.3.4", "fw01",
     datetime(2024, 1, 15, 10, 0, tzinfo=UTC)),
    (b"Jan  5 10:00:00 fw02 app[12]: CEF:0|V|P|1|s|n|3|", "fw02",
     datetime(2024, 1, 5, 10, 0, tzinfo=UTC)),
    (b"<134>1 2024-01-15T11:00:00+01:00 ids - - - - CEF:0|V|P|1|s|n|3|", "ids",
     datetime(2024, 1, 15, 10, 0, tzinfo=UTC)),
    (b"2024-01-15T10:00:00Z relay CEF:0|V|P|1|s|n|3|", "relay",
     datetime(2024, 1, 15, 10, 0, tzinfo=UTC)),
    (b"<13>CEF:0|V|P|1|s|n|3|", None, RECEIVED),
    (b"<134>1 - - - - - - CEF:0|V|P|1|s|n|3|", None, RECEIVED),
])
def test_syslog_header_host_and_time(line: bytes, host: str | None, ts: datetime) -> None:
    event = one(line)
    assert event.host == host
    assert event.ts == ts
    assert event.raw == line.decode()


def test_dvchost_wins_over_the_syslog_host_and_ctx_host_is_last() -> None:
    assert one(b"Jan 15 10:00:00 relay CEF:0|V|P|1|s|n|3|dvchost=ws01").host == "ws01"
    assert one(b"CEF:0|V|P|1|s|n|3|", host="collector").host == "collector"


def test_ctx_source_overrides() -> None:
    event = one(b"CEF:0|V|P|1|s|n|3|", source=LogSource("p", "c", "s"))
    assert event.source == LogSource("p", "c", "s")


def test_event_envelope() -> None:
    line = b"CEF:0|V|P|1|s|n|3|src=1.2.3.4"
    event = one(line)
    assert event.id == event_id(line)
    assert event.received == RECEIVED
    assert event.ts.tzinfo is not None


# --- bad input --------------------------------------------------------------------------


def test_garbage_truncated_and_empty_are_rejected() -> None:
    results = parse(b"hello world", b"<14>Jan 15 10:00:00 fw CEF:0|V|P", b"CEF:", b"\x00\xff")
    assert all(isinstance(r, Rejected) for r in results)
    assert [r.line for r in results if isinstance(r, Rejected)] == [1, 2, 3, 4]
    first = results[0]
    assert isinstance(first, Rejected)
    assert first.format == "cef"
    assert first.origin == "test.log"
    assert first.raw == b"hello world"


def test_invalid_utf8_is_read_as_latin1() -> None:
    event = one(b"CEF:0|V|P|1|s|n|3|suser=J\xfcrgen msg=caf\xe9")
    assert event.fields["suser"] == "J\u00fcrgen"
    assert event.fields["msg"] == "caf\u00e9"


def test_mixed_cef_and_leef_lines_parse_in_either_format() -> None:
    results = parse(b"CEF:0|V|P|1|s|n|3|src=1.1.1.1", b"LEEF:1.0|V|P|1|e|src=2.2.2.2",
                    fmt="leef")
    assert [r.format for r in results if isinstance(r, Event)] == ["cef", "leef"]


# --- LEEF -------------------------------------------------------------------------------


@pytest.mark.parametrize(("rest", "delimiter", "body"), [
    ("^|a=1^b=2", "^", "a=1^b=2"),
    ("x09|a=1\tb=2", "\t", "a=1\tb=2"),
    ("0x7C|a=1", "|", "a=1"),
    ("\\t|a=1", "\t", "a=1"),
    ("|a=1", "\t", "a=1"),
    ("a=1\tb=2", "\t", "a=1\tb=2"),
])
def test_leef_delimiter(rest: str, delimiter: str, body: str) -> None:
    assert leef_delimiter(rest) == (delimiter, body)


def test_leef_1_tab_separated() -> None:
    event = one(b"LEEF:1.0|Microsoft|MSExchange|2016|15345|src=10.50.1.1\tdst=2.10.20.20\t"
                b"usrName=joe black\tsrcPort=443", fmt="leef")
    assert event.fields["usrName"] == "joe black"
    assert event.fields["srcPort"] == 443
    assert event.fields["eventId"] == "15345"
    assert event.source == LogSource("msexchange", None, "leef")
    assert event.ts == RECEIVED


def test_leef_2_caret_and_values_with_the_delimiter() -> None:
    event = one(b"LEEF:2.0|V|P|1|41|^|src=10.0.1.8^msg=a^b^sev=5", fmt="leef")
    assert event.fields["msg"] == "a^b"
    assert event.fields["sev"] == 5


@pytest.mark.parametrize(("value", "fmt", "expected"), [
    ("Jan 15 2024 10:00:00", None, datetime(2024, 1, 15, 10, 0, tzinfo=UTC)),
    ("1705312800000", None, datetime(2024, 1, 15, 10, 0, tzinfo=UTC)),
    ("2024-01-15 11:00:00.5 +0100", "yyyy-MM-dd HH:mm:ss.S Z",
     datetime(2024, 1, 15, 10, 0, 0, 500000, tzinfo=UTC)),
    ("15/01/24 10:00", "dd/MM/yy HH:mm", datetime(2024, 1, 15, 10, 0, tzinfo=UTC)),
    ("01/15/2024 12:30:00 AM", "MM/dd/yyyy hh:mm:ss a", datetime(2024, 1, 15, 0, 30,
                                                                  tzinfo=UTC)),
    ("01/15/2024 12:30:00 PM", "MM/dd/yyyy hh:mm:ss a", datetime(2024, 1, 15, 12, 30,
                                                                  tzinfo=UTC)),
    ("Mon, 15 January 2024 10:00:00 America/New_York", "EEE, dd MMMM yyyy HH:mm:ss z",
     datetime(2024, 1, 15, 15, 0, tzinfo=UTC)),
    ("2024-01-15T10:00:00Z", "yyyy-MM-dd'T'HH:mm:ssX", datetime(2024, 1, 15, 10, 0, tzinfo=UTC)),
])
def test_leef_times(value: str, fmt: str | None, expected: datetime) -> None:
    assert parse_leef_time(value, fmt, RECEIVED) == expected


def test_unsupported_java_pattern_falls_back() -> None:
    with pytest.raises(ValueError, match="unsupported"):
        java_time_pattern("yyyy-QQ")
    line = b"LEEF:2.0|V|P|1|e|^|devTime=Jan 15 2024 10:00:00^devTimeFormat=garbage"
    assert one(line, fmt="leef").ts == datetime(2024, 1, 15, 10, 0, tzinfo=UTC)


def test_leef_bad_devtime_uses_the_syslog_time() -> None:
    line = b"<13>Jan 15 10:00:00 host LEEF:1.0|V|P|1|e|devTime=nonsense"
    event = one(line, fmt="leef")
    assert event.ts == datetime(2024, 1, 15, 10, 0, tzinfo=UTC)
    assert event.host == "host"


def test_truncated_leef_is_rejected() -> None:
    (result,) = parse(b"LEEF:2.0|V|P", fmt="leef")
    assert isinstance(result, Rejected)
    assert result.format == "leef"


# --- helpers and sniffing ---------------------------------------------------------------


def test_device_time_errors() -> None:
    with pytest.raises(ValueError):
        parse_device_time("not a time", RECEIVED)
    with pytest.raises(KeyError):
        parse_device_time("Foo 15 2024 10:00:00", RECEIVED)


def test_syslog_prefix_without_header() -> None:
    assert syslog_prefix("", RECEIVED) == (None, None)
    assert syslog_prefix("random text ", RECEIVED) == (None, None)


@pytest.mark.parametrize(("head", "cef", "leef"), [
    (b"CEF:0|V|P|1|s|n|3|src=1.2.3.4\n", True, False),
    (b"\n<134>Jan 15 10:00:00 fw CEF:0|V|P|1|s|n|3|\n", True, False),
    (b"LEEF:2.0|V|P|1|e|^|a=1\n", False, True),
    (b"Jan 15 10:00:00 zscaler-nss: LEEF:1.0|Z|NSS|4.1|Allowed|cat=x\n", False, True),
    (b'{"msg": "CEF:0|V|P|1|s|n|3|"}\n', False, False),
    (b"Jan 15 10:00:00 host sshd[1]: Accepted password\n", False, False),
])
def test_sniffers(head: bytes, cef: bool, leef: bool) -> None:
    assert get_format("cef").sniff(head) is cef
    assert get_format("leef").sniff(head) is leef
