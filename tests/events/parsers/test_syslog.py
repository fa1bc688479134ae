"""Syslog parsing and RFC 6587 framing: the edge cases the golden files do not show."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vigil.core.errors import ParseError
from vigil.events import Event, LogSource, ParseContext, Rejected, detect_format, event_id
from vigil.events.parsers.syslog import (
    MAX_FRAME,
    is_octet_counted,
    parse_line,
    parse_syslog,
    split_octet_counted,
)

RECEIVED = datetime(2024, 1, 1, 12, 0, tzinfo=UTC)


def parse(*lines: bytes, **ctx_args: object) -> list[Event | Rejected]:
    ctx = ParseContext(origin="test", received=RECEIVED, **ctx_args)  # type: ignore[arg-type]
    return list(parse_syslog(list(lines), ctx))


def one_event(line: bytes, **ctx_args: object) -> Event:
    results = parse(line, **ctx_args)
    assert len(results) == 1
    result = results[0]
    assert isinstance(result, Event), result
    return result


def frame(*messages: bytes) -> bytes:
    return b"".join(b"%d %s" % (len(m), m) for m in messages)


# -- octet counting ---------------------------------------------------------------------------

def test_split_complete_frames() -> None:
    frames, rest = split_octet_counted(frame(b"<13>Jan  1 00:00:00 h a: one", b"two words"))
    assert frames == [b"<13>Jan  1 00:00:00 h a: one", b"two words"]
    assert rest == b""


def test_split_keeps_a_partial_frame() -> None:
    data = frame(b"first") + b"12 <13>partial"
    frames, rest = split_octet_counted(data)
    assert frames == [b"first"]
    assert rest == b"12 <13>partial"
    more, rest = split_octet_counted(rest + b"!3 ab")
    assert more == [b"<13>partial!"]
    assert rest == b"3 ab"
    more, rest = split_octet_counted(rest + b"c")
    assert more == [b"abc"]
    assert rest == b""


@pytest.mark.parametrize("partial", [b"", b"1", b"12", b"123 "])
def test_split_keeps_a_partial_length(partial: bytes) -> None:
    assert split_octet_counted(partial) == ([], partial)


def test_frames_may_hold_newlines_and_spaces() -> None:
    frames, _ = split_octet_counted(frame(b"a b\nc", b" "))
    assert frames == [b"a b\nc", b" "]


@pytest.mark.parametrize("data", [
    b"abc <13>msg",          # not a number
    b"<13>Jan 1 no count",   # newline framing sent to an octet-counting reader
    b"05 hello",             # leading zero
    b"0 ",                   # zero length
    b"-5 hello",
    b"12345678901234567890",  # too many digits, no space
    b"3 abc4x def",          # garbage after a good frame
])
def test_split_rejects_malformed_lengths(data: bytes) -> None:
    with pytest.raises(ParseError):
        split_octet_counted(data)


def test_split_rejects_oversized_frames() -> None:
    with pytest.raises(ParseError, match="exceeds"):
        split_octet_counted(b"2000 x", max_frame=1024)
    assert split_octet_counted(b"1024 x", max_frame=1024) == ([], b"1024 x")
    with pytest.raises(ParseError):
        split_octet_counted(str(MAX_FRAME + 1).encode() + b" x")


@given(st.lists(st.binary(max_size=300), max_size=20), st.data())
def test_split_never_loses_bytes(messages: list[bytes], data: st.DataObject) -> None:
    messages = [m for m in messages if m]
    stream = frame(*messages)
    cut = data.draw(st.integers(0, len(stream)))
    frames, rest = split_octet_counted(stream[:cut])
    assert frame(*frames) + rest == stream[:cut]
    assert frames == messages[:len(frames)]
    tail, rest = split_octet_counted(rest + stream[cut:])
    assert frames + tail == messages
    assert rest == b""


def test_is_octet_counted() -> None:
    assert is_octet_counted(b"57 <34>1 ...")
    assert not is_octet_counted(b"<34>Oct 11 22:14:15 host su: x")
    assert not is_octet_counted(b"0 x")
    assert not is_octet_counted(b"")


# -- header parsing ---------------------------------------------------------------------------

@pytest.mark.parametrize("line", [b"<192>Jan  1 00:00:00 h a: x", b"<abc>Jan  1 00:00:00 h a: x",
                                  b"<>Jan  1 00:00:00 h a: x", b"<1234>Jan  1 00:00:00 h a: x",
                                  b"<\xd9\xa1>Jan  1 00:00:00 h a: x"])
def test_bad_pri_is_rejected(line: bytes) -> None:
    [result] = parse(line)
    assert isinstance(result, Rejected)
    assert result.reason.startswith("bad PRI")
    assert result.raw == line
    assert (result.origin, result.line, result.format) == ("test", 1, "syslog")


@pytest.mark.parametrize("line", [
    b"<34>Feb 30 10:00:00 h a: x", b"<34>Foo 11 10:00:00 h a: x", b"Jan  1 24:00:00 h a: x",
    b"<34>1 2024-02-30T00:00:00Z h a - - -", b"<34>1 yesterday h a - - -",
    b"Feb 29 10:00:00 h a: x",  # 2024-02-29 is in the future, 2023 had none
])
def test_wrong_timestamp_is_rejected(line: bytes) -> None:
    [result] = parse(line)
    assert isinstance(result, Rejected)
    assert "timestamp" in result.reason


@pytest.mark.parametrize("line", [b"0001-01-01T00:00:00+01:00 h a: x",
                                  b"<13>1 0001-01-01T00:00:00+01:00 h a - - - x",
                                  b"9999-12-31T23:59:59-01:00 h a: x"])
def test_timestamps_out_of_range_are_rejected(line: bytes) -> None:
    [result] = parse(line, options={"timezone": "Europe/Paris"})
    assert isinstance(result, Rejected)
    assert "timestamp" in result.reason


def test_garbage_is_rejected_never_raised() -> None:
    lines = [b"\x00\xff\xfe garbage", b"", b"<", b"<13>", b"<13>1", b"\x1b[31mred", b"   "]
    results = parse(*lines)
    assert len(results) == len(lines)
    assert [r.line for r in results if isinstance(r, Rejected)] == list(range(1, len(lines) + 1))


@given(st.binary(max_size=200))
def test_any_bytes_give_one_result(data: bytes) -> None:
    results = parse(data)
    assert len(results) == 1
    if isinstance(results[0], Rejected):
        assert results[0].raw == data


@given(st.from_regex(r"\A(<\d{1,3}>)?((1 \S+ )|([A-Z][a-z]{2} [ \d]\d( \d{4})? \d\d:\d\d:\d\d )"
                     r"|(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?([+-]\d\d:\d\d)? ))"
                     r"[^\n]{0,60}\Z"),
       st.sampled_from(["UTC", "Europe/Paris", "Pacific/Kiritimati"]))
def test_header_like_lines_give_one_result(line: str, timezone: str) -> None:
    results = parse(line.encode(), options={"timezone": timezone})
    assert len(results) == 1
    if isinstance(results[0], Event):
        assert results[0].ts.tzinfo is UTC


def test_invalid_utf8_is_replaced_and_the_raw_bytes_kept() -> None:
    line = b"<14>Jan  1 10:00:00 web01 app[1]: caf\xe9 \xff end"
    event = one_event(line)
    assert event.fields["message"] == "caf\ufffd \ufffd end"
    assert event.id == event_id(line)
    assert event.raw.endswith("caf\ufffd \ufffd end")


def test_year_is_inferred_from_the_receive_time() -> None:
    assert one_event(b"Jan  1 11:00:00 h a: x").ts == datetime(2024, 1, 1, 11, tzinfo=UTC)
    # up to one day ahead of the receive time is clock skew, not last year
    assert one_event(b"Jan  2 11:00:00 h a: x").ts == datetime(2024, 1, 2, 11, tzinfo=UTC)
    assert one_event(b"Jan  3 11:00:00 h a: x").ts == datetime(2023, 1, 3, 11, tzinfo=UTC)
    assert one_event(b"Dec 31 23:59:59 h a: x").ts == datetime(2023, 12, 31, 23, 59, 59,
                                                                 tzinfo=UTC)


def test_leap_day_goes_to_the_last_year_that_had_one() -> None:
    received = datetime(2025, 3, 1, tzinfo=UTC)
    assert parse_line("Feb 29 10:00:00 h a: x", received).ts == datetime(2024, 2, 29, 10,
                                                                        tzinfo=UTC)


def test_explicit_year_and_fraction() -> None:
    event = one_event(b"Mar  7 2023 10:00:00.250 h a: x")
    assert event.ts == datetime(2023, 3, 7, 10, 0, 0, 250000, tzinfo=UTC)


def test_timezone_option_applies_to_zoneless_timestamps() -> None:
    ctx = {"options": {"timezone": "Europe/Paris"}}
    assert one_event(b"Jan  1 11:00:00 h a: x", **ctx).ts == datetime(2024, 1, 1, 10, tzinfo=UTC)
    assert one_event(b"2023-07-01T12:00:00 h a: x", **ctx).ts == datetime(2023, 7, 1, 10,
                                                                          tzinfo=UTC)
    # a timestamp with its own offset keeps it
    assert one_event(b"2023-07-01T12:00:00Z h a: x", **ctx).ts == datetime(2023, 7, 1, 12,
                                                                           tzinfo=UTC)


def test_unknown_timezone_rejects_every_record() -> None:
    results = parse(b"Jan  1 11:00:00 h a: x", b"Jan  1 11:00:01 h a: y",
                    options={"timezone": "Mars/Olympus"})
    assert [type(r) for r in results] == [Rejected, Rejected]
    assert "timezone" in results[0].reason  # type: ignore[union-attr]


def test_host_and_tag_variants() -> None:
    event = one_event(b"<13>Jan  1 10:00:00 logger[12]: no host")
    assert event.host is None
    assert event.fields["app"] == "logger"
    assert event.fields["pid"] == 12
    assert one_event(b"Jan  1 10:00:00 h app[abc]: x").fields["pid"] == "abc"
    event = one_event(b"Jan  1 10:00:00 fe80::1 kernel: x")
    assert event.host == "fe80::1"
    event = one_event(b"Jan  1 10:00:00 h just a message")
    assert "app" not in event.fields
    assert event.fields["message"] == "just a message"


def test_context_host_and_source_fallbacks() -> None:
    event = one_event(b"<13>Jan  1 10:00:00 logger: x", host="collector-7")
    assert event.host == "collector-7"
    forced = LogSource("linux", None, "custom")
    assert one_event(b"Jan  1 10:00:00 h sshd[1]: x", source=forced).source == forced


@pytest.mark.parametrize(("app", "service"), [
    ("sshd", "sshd"), ("sshd-session", "sshd"), ("sudo", "sudo"), ("CRON", "cron"),
    ("crond", "cron"), ("su", "auth"), ("useradd", "auth"), ("passwd", "auth"),
    ("auditd", "auditd"), ("clamd", "clamav"), ("freshclam", "clamav"), ("vsftpd", "vsftpd"),
    ("guacd", "guacamole"), ("nginx", "syslog"), ("systemd", "syslog"),
])
def test_log_source_follows_the_program(app: str, service: str) -> None:
    event = one_event(f"Jan  1 10:00:00 h {app}[1]: x".encode())
    assert event.source == LogSource("linux", None, service)
    assert event.format == "syslog"


def test_syslog_messages_of_sshd_get_auth_fields() -> None:
    event = one_event(b"<38>Jan  1 10:00:00 h sshd[7]: Failed password for root from "
                      b"198.51.100.2 port 2222 ssh2")
    assert event.fields["outcome"] == "failure"
    assert event.fields["src_ip"] == "198.51.100.2"
    assert event.fields["src_port"] == 2222


def test_rfc5424_nil_values_and_bom() -> None:
    event = one_event(b"<13>1 - - - - - - \xef\xbb\xbfhello")
    assert event.ts == RECEIVED
    assert event.host is None
    assert event.fields == {"facility": "user", "facility_code": 1, "severity": "notice",
                            "severity_code": 5, "message": "hello"}


def test_rfc5424_structured_data_escapes() -> None:
    line = (b'<14>1 2024-01-01T00:00:00Z h app 1 ID [a@1 q="say \\"hi\\"" b="back\\\\slash" '
            b'c="close\\]" d="other\\x"][b@2 e=""] msg')
    event = one_event(line)
    assert event.fields["sd.a@1.q"] == 'say "hi"'
    assert event.fields["sd.a@1.b"] == "back\\slash"
    assert event.fields["sd.a@1.c"] == "close]"
    assert event.fields["sd.a@1.d"] == "other\\x"
    assert event.fields["sd.b@2.e"] == ""
    assert event.fields["message"] == "msg"


@pytest.mark.parametrize("line", [
    b'<14>1 2024-01-01T00:00:00Z h app 1 ID [a@1 q="unterminated] msg',
    b"<14>1 2024-01-01T00:00:00Z h app 1 ID [a@1 q=unquoted] msg",
    b"<14>1 2024-01-01T00:00:00Z h app 1 ID [] msg",
    b"<14>1 2024-01-01T00:00:00Z h app 1 ID msg",
])
def test_rfc5424_bad_structured_data_is_rejected(line: bytes) -> None:
    [result] = parse(line)
    assert isinstance(result, Rejected)
    assert "structured data" in result.reason


def test_sniffing() -> None:
    assert detect_format(b"<34>1 2003-10-11T22:14:15.003Z host app - ID47 - x\n").name == "syslog"
    assert detect_format(b"Jan  1 10:00:00 web01 systemd[1]: Started x.\n").name == "syslog"
    assert detect_format(b"2024-01-01T10:00:00.1+01:00 web01 kernel: x\n").name == "syslog"
    head = b"Jan  1 10:00:00 web01 sshd[1]: Accepted password for a from 192.0.2.1 port 1 ssh2\n"
    assert detect_format(head).name == "auth"
    assert detect_format(b"<13>Jan  1 10:00:00 fw CEF:0|V|P|1|1|n|1|src=1.2.3.4\n").name != "syslog"
