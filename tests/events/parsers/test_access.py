"""Web access logs: combined/common/vhost lines, request splitting, times, bad input."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vigil.events import Event, LogSource, ParseContext, Rejected, event_id, get_format
from vigil.events.parsers.access import parse_time, request_fields

RECEIVED = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)
COMBINED = (b'203.0.113.9 - frank [10/Oct/2000:13:55:36 -0700] "GET /a.php?x=1&y=../etc '
            b'HTTP/1.1" 200 2326 "http://www.example.com/start.html" "Mozilla/4.08 [en]"')


def parse(*lines: bytes, host: str | None = None) -> list[Event | Rejected]:
    ctx = ParseContext(origin="access.log", received=RECEIVED, host=host)
    return list(get_format("access").parse(list(lines), ctx))


def one(line: bytes, host: str | None = None) -> Event:
    (result,) = parse(line, host=host)
    assert isinstance(result, Event), result
    return result


def test_combined_line() -> None:
    event = one(COMBINED, host="web01")
    assert event.fields == {
        "c-ip": "203.0.113.9", "cs-username": "frank",
        "request": "GET /a.php?x=1&y=../etc HTTP/1.1", "cs-method": "GET",
        "cs-uri": "/a.php?x=1&y=../etc", "cs-uri-stem": "/a.php", "cs-uri-query": "x=1&y=../etc",
        "cs-version": "HTTP/1.1", "sc-status": 200, "sc-bytes": 2326,
        "cs-referer": "http://www.example.com/start.html", "cs-user-agent": "Mozilla/4.08 [en]",
    }
    assert event.ts == datetime(2000, 10, 10, 20, 55, 36, tzinfo=UTC)
    assert event.source == LogSource(None, "webserver", None)
    assert event.host == "web01"
    assert event.id == event_id(COMBINED)
    assert event.raw == COMBINED.decode()
    assert event.format == "access"


def test_common_line_and_dash_bytes() -> None:
    event = one(b'::1 - - [15/Jan/2024:10:00:00 +0000] "OPTIONS * HTTP/1.0" 200 -')
    assert event.fields["sc-bytes"] == 0
    assert event.fields["cs-referer"] is None
    assert event.fields["cs-user-agent"] is None
    assert event.fields["cs-username"] is None
    assert event.fields["c-ip"] == "::1"


def test_vhost_prefix_and_extra_fields() -> None:
    event = one(b'shop.example.com:443 10.0.0.1 - - [15/Jan/2024:10:00:00 +0000] "GET / HTTP/2.0"'
                b' 200 5 "-" "curl/8.5.0" 0.012 "10.0.0.2:8080" rt=0.010')
    assert event.fields["cs-host"] == "shop.example.com:443"
    assert event.fields["c-ip"] == "10.0.0.1"
    assert event.fields["extra"] == '0.012 "10.0.0.2:8080" rt=0.010'


def test_identd_field_is_kept_when_set() -> None:
    event = one(b'10.0.0.1 ident42 bob [15/Jan/2024:10:00:00 +0000] "GET / HTTP/1.1" 200 1')
    assert event.fields["ident"] == "ident42"
    assert event.fields["cs-username"] == "bob"


@pytest.mark.parametrize("request_line", [
    "-", "", "\\x16\\x03\\x01\\x02\\x00\\x01", "GET", "\\x00GET / HTTP/1.1",
])
def test_malformed_requests_are_kept_raw(request_line: str) -> None:
    line = f'1.2.3.4 - - [15/Jan/2024:10:00:00 +0000] "{request_line}" 400 0 "-" "-"'
    event = one(line.encode())
    assert event.fields["request"] == request_line
    assert "cs-method" not in event.fields


def test_request_splitting() -> None:
    assert request_fields("GET /a b?c=d HTTP/1.1") == {
        "cs-method": "GET", "cs-uri": "/a b?c=d", "cs-uri-stem": "/a b", "cs-uri-query": "c=d",
        "cs-version": "HTTP/1.1"}
    assert request_fields("GET /legacy")["cs-version"] is None
    assert request_fields("GET /?") ["cs-uri-query"] == ""


def test_apache_escaped_quotes() -> None:
    event = one(rb'1.2.3.4 - - [15/Jan/2024:10:00:00 +0000] "GET /q?\"x\"\\y HTTP/1.1" 200 1 '
                rb'"-" "agent \"quoted\""')
    assert event.fields["cs-uri-query"] == '"x"\\y'
    assert event.fields["cs-user-agent"] == 'agent "quoted"'


@pytest.mark.parametrize(("text", "expected"), [
    ("10/Oct/2000:13:55:36 -0700", datetime(2000, 10, 10, 20, 55, 36, tzinfo=UTC)),
    ("01/Jan/2024:00:30:00 +0100", datetime(2023, 12, 31, 23, 30, tzinfo=UTC)),
    ("15/jan/2024:10:00:00.250 +00:00", datetime(2024, 1, 15, 10, 0, 0, 250000, tzinfo=UTC)),
])
def test_times(text: str, expected: datetime) -> None:
    assert parse_time(text) == expected


def test_bad_lines_are_rejected() -> None:
    results = parse(
        b"garbage",
        b'1.2.3.4 - - [15/Foo/2024:10:00:00 +0000] "GET / HTTP/1.1" 200 1',
        b'1.2.3.4 - - [31/Feb/2024:10:00:00 +0000] "GET / HTTP/1.1" 200 1',
        b'1.2.3.4 - - [15/Jan/2024:10:00:00] "GET / HTTP/1.1" 200 1',
        b'1.2.3.4 - - [15/Jan/2024:10:00:00 +0000] "GET / HTTP/1.1" OK 1',
        b'1.2.3.4 - - [15/Jan/2024:10:00:00 +0000] "GET / HTTP/1.1',
    )
    assert all(isinstance(r, Rejected) for r in results)
    assert [r.line for r in results if isinstance(r, Rejected)] == [1, 2, 3, 4, 5, 6]
    assert all(r.format == "access" for r in results if isinstance(r, Rejected))


def test_invalid_utf8_is_replaced() -> None:
    event = one(b'1.2.3.4 - - [15/Jan/2024:10:00:00 +0000] "GET /caf\xe9 HTTP/1.1" 404 1')
    assert event.fields["cs-uri-stem"] == "/caf\ufffd"
    assert event.id == event_id(b'1.2.3.4 - - [15/Jan/2024:10:00:00 +0000] "GET /caf\xe9 '
                                b'HTTP/1.1" 404 1')


@given(st.binary(max_size=200))
def test_arbitrary_bytes_never_raise(data: bytes) -> None:
    assert len(parse(data)) == 1


@pytest.mark.parametrize(("head", "expected"), [
    (COMBINED + b"\n", True),
    (b"\nvhost:80 " + COMBINED, True),
    (b'{"remote_addr": "1.2.3.4"}\n', False),
    (b"Jan 15 10:00:00 host sshd[1]: Accepted password for root\n", False),
    (b"CEF:0|V|P|1|s|n|3|\n", False),
])
def test_sniff(head: bytes, expected: bool) -> None:
    assert get_format("access").sniff(head) is expected
