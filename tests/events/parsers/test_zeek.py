"""Zeek: JSON and TSV logs, log names, typed TSV values, bad input."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from vigil.events import Event, LogSource, ParseContext, Rejected, event_id, get_format
from vigil.events.parsers.zeek import TsvState, log_from_keys, log_from_origin, unescape

RECEIVED = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)
T = "\t"


def parse(lines: list[bytes], origin: str = "-", timestamp_field: str | None = None,
          host: str | None = None) -> list[Event | Rejected]:
    ctx = ParseContext(origin=origin, received=RECEIVED, timestamp_field=timestamp_field,
                       host=host)
    return list(get_format("zeek").parse(lines, ctx))


def events(results: list[Event | Rejected]) -> list[Event]:
    assert all(isinstance(r, Event) for r in results), results
    return [r for r in results if isinstance(r, Event)]


def tsv(path: str, fields: str, types: str, *rows: str, separator: str = T) -> list[bytes]:
    sep_header = "\\x09" if separator == T else separator
    head = [f"#separator {sep_header}", f"#set_separator{separator},",
            f"#empty_field{separator}(empty)", f"#unset_field{separator}-",
            f"#path{separator}{path}", f"#open{separator}2024-01-15-10-00-00",
            "#fields" + separator + separator.join(fields.split()),
            "#types" + separator + separator.join(types.split())]
    return [line.encode() for line in [*head, *rows, f"#close{separator}2024-01-15-11-00-00"]]


# --- JSON -------------------------------------------------------------------------------


def test_json_with_path_and_float_ts() -> None:
    line = orjson.dumps({"_path": "dns", "ts": 1705312800.5, "uid": "C1", "id.orig_h": "10.0.0.1",
                         "id.resp_p": 53, "query": "example.com", "answers": ["1.2.3.4"]})
    (event,) = events(parse([line]))
    assert event.source == LogSource("zeek", None, "dns")
    assert event.ts == datetime(2024, 1, 15, 10, 0, 0, 500000, tzinfo=UTC)
    assert event.fields["id.resp_p"] == 53
    assert event.fields["answers"] == ["1.2.3.4"]
    assert event.id == event_id(line)
    assert event.raw == line.decode()
    assert event.format == "zeek"
    assert event.received == RECEIVED


def test_json_iso_ts_and_nested_ids_are_flattened() -> None:
    line = b'{"ts":"2024-01-15T10:00:00.123456Z","uid":"C1","id":{"orig_h":"10.0.0.1"}}'
    (event,) = events(parse([line], origin="conn.log"))
    assert event.ts == datetime(2024, 1, 15, 10, 0, 0, 123456, tzinfo=UTC)
    assert event.fields["id.orig_h"] == "10.0.0.1"
    assert event.source.service == "conn"


@pytest.mark.parametrize(("origin", "log"), [
    ("conn.log", "conn"),
    ("/var/log/zeek/2024-01-15/dns.10:00:00-11:00:00.log.gz", "dns"),
    ("C:\\zeek\\logs\\smb_files.log", "smb_files"),
    ("json_streaming_http.1.log", "http"),
    ("capture.json", None),
    ("-", None),
])
def test_log_from_origin(origin: str, log: str | None) -> None:
    assert log_from_origin(origin) == log


@pytest.mark.parametrize(("keys", "log"), [
    ({"conn_state": "SF"}, "conn"),
    ({"trans_id": 1, "rcode": 0}, "dns"),
    ({"trans_depth": 1, "uri": "/"}, "http"),
    ({"trans_depth": 1, "uri": "sip:x", "call_id": "a"}, "sip"),
    ({"request_type": "TGS", "cipher": "rc4-hmac"}, "kerberos"),
    ({"cipher": "TLS_AES_128_GCM_SHA256"}, "ssl"),
    ({"certificate.subject": "CN=x"}, "x509"),
    ({"note": "Scan::Port_Scan", "msg": "x"}, "notice"),
    ({"action": "SMB::FILE_OPEN", "path": "\\\\h\\c$", "name": "a.exe"}, "smb_files"),
    ({"endpoint": "svcctl", "operation": "CreateServiceW"}, "dce_rpc"),
    ({"security_protocol": "HYBRID"}, "rdp"),
    ({"uid": "C1"}, None),
])
def test_log_from_keys(keys: dict[str, object], log: str | None) -> None:
    assert log_from_keys(keys) == log


def test_path_field_beats_the_file_name() -> None:
    (event,) = events(parse([b'{"_path":"dns","ts":1705312800}'], origin="conn.log"))
    assert event.source.service == "dns"


def test_sensor_name_is_the_host() -> None:
    line = b'{"_path":"conn","_system_name":"sensor-7","ts":1705312800}'
    assert events(parse([line], host="collector"))[0].host == "sensor-7"
    assert events(parse([b'{"ts":1705312800}'], host="collector"))[0].host == "collector"


def test_missing_ts_uses_received_and_bad_ts_is_rejected() -> None:
    results = parse([b'{"_path":"loaded_scripts","name":"x.zeek"}', b'{"ts":"soon"}',
                     b'{"ts":true}'])
    assert isinstance(results[0], Event)
    assert results[0].ts == RECEIVED
    assert isinstance(results[1], Rejected)
    assert results[1].line == 2
    assert isinstance(results[2], Rejected)


def test_timestamp_field_option() -> None:
    line = b'{"ts":1705312800,"_write_ts":"2024-01-15T11:00:00Z"}'
    (event,) = events(parse([line], timestamp_field="_write_ts"))
    assert event.ts == datetime(2024, 1, 15, 11, 0, tzinfo=UTC)
    (result,) = parse([b'{"ts":1705312800}'], timestamp_field="_write_ts")
    assert isinstance(result, Rejected)


def test_bad_json_lines() -> None:
    results = parse([b'{"ts":1705312800,"uid":"C', b'["a"]', b"42", b'{"ts":1705312800}'])
    assert [type(r).__name__ for r in results] == ["Rejected", "Rejected", "Rejected", "Event"]
    assert [r.line for r in results if isinstance(r, Rejected)] == [1, 2, 3]


def test_invalid_utf8_in_json_is_replaced() -> None:
    (event,) = events(parse([b'{"ts":1705312800,"user_agent":"a\xffb"}']))
    assert event.fields["user_agent"] == "a\ufffdb"


# --- TSV --------------------------------------------------------------------------------


CONN_FIELDS = "ts uid id.orig_h id.orig_p proto duration local_orig tunnel_parents service"
CONN_TYPES = "time string addr port enum interval bool set[string] string"


def test_tsv_typed_values_unset_and_empty() -> None:
    rows = [T.join(["1705312800.250000", "C1", "10.0.0.1", "5353", "udp", "0.5", "T",
                    "(empty)", "-"]),
            T.join(["1705312801.000000", "C2", "10.0.0.2", "80", "tcp", "-", "F", "Ca,Cb",
                    "(empty)"])]
    first, second = events(parse(tsv("conn", CONN_FIELDS, CONN_TYPES, *rows)))
    assert first.fields == {"ts": 1705312800.25, "uid": "C1", "id.orig_h": "10.0.0.1",
                            "id.orig_p": 5353, "proto": "udp", "duration": 0.5,
                            "local_orig": True, "tunnel_parents": []}
    assert first.ts == datetime(2024, 1, 15, 10, 0, 0, 250000, tzinfo=UTC)
    assert first.source == LogSource("zeek", None, "conn")
    assert second.fields["tunnel_parents"] == ["Ca", "Cb"]
    assert second.fields["local_orig"] is False
    assert second.fields["service"] == ""
    assert "duration" not in second.fields


def test_tsv_escapes_and_custom_separator() -> None:
    lines = tsv("ssh", "data data2", "string string", "abc\\x0a\\xffdef|DATA2",
                "abc\\x7c\\xc3\\xa9|x", separator="|")
    first, second = events(parse(lines))
    assert first.fields["data"] == "abc\n\\xffdef"  # bytes that are no UTF-8 stay escaped
    assert second.fields["data"] == "abc|\u00e9"
    assert first.source.service == "ssh"


def test_tsv_vectors_of_numbers_and_bad_numbers() -> None:
    lines = tsv("dns", "ts TTLs qtype AA", "time vector[interval] count bool",
                T.join(["1705312800", "300.0,60.0", "x1", "?"]))
    (event,) = events(parse(lines))
    assert event.fields["TTLs"] == [300.0, 60.0]
    assert event.fields["qtype"] == "x1"
    assert event.fields["AA"] == "?"


def test_tsv_rows_without_headers_or_with_wrong_width() -> None:
    results = parse([b"1705312800\tC1\t10.0.0.1", *tsv("conn", "ts uid", "time string",
                                                       "1705312800\tC1\textra")])
    rejected = [r for r in results if isinstance(r, Rejected)]
    assert len(rejected) == 2
    assert "before any #fields" in rejected[0].reason
    assert "expected 2 columns, got 3" in rejected[1].reason


def test_tsv_concatenated_logs_switch_state() -> None:
    lines = [*tsv("conn", "ts uid", "time string", "1705312800\tC1"),
             *tsv("dns", "ts query", "time string", "1705312801\texample.com")]
    first, second = events(parse(lines))
    assert first.source.service == "conn"
    assert second.source.service == "dns"
    assert second.fields == {"ts": 1705312801.0, "query": "example.com"}


def test_tsv_without_types_keeps_text_and_origin_names_the_log() -> None:
    lines = [b"#separator \\x09", b"#fields\tts\tquery", b"1705312800\texample.com"]
    (event,) = events(parse(lines, origin="/logs/dns.log"))
    assert event.fields == {"ts": "1705312800", "query": "example.com"}
    assert event.ts == datetime(2024, 1, 15, 10, 0, tzinfo=UTC)
    assert event.source.service == "dns"


def test_tsv_state_headers() -> None:
    state = TsvState()
    state.header("#separator ,")
    state.header("#set_separator,;")
    state.header("#unset_field,NA")
    state.header("#fields,ts,a")
    assert state.separator == ","
    assert state.row("1,NA") == {"ts": "1"}
    assert unescape("no escapes") == "no escapes"


def test_tsv_invalid_utf8_row() -> None:
    lines = tsv("http", "ts user_agent", "time string", "placeholder")
    lines[-2] = b"1705312800\tbad \xff"
    (event,) = events(parse(lines))
    assert event.fields["user_agent"] == "bad \ufffd"


@given(st.lists(st.binary(max_size=120), max_size=6))
def test_arbitrary_lines_never_raise(lines: list[bytes]) -> None:
    header = tsv("conn", CONN_FIELDS, CONN_TYPES)[:-1]
    results = parse([*header, *lines])
    assert len(results) <= len(lines)


# --- sniffing ---------------------------------------------------------------------------


@pytest.mark.parametrize(("head", "expected"), [
    (b"#separator \\x09\n#set_separator\t,\n", True),
    (b'{"_path":"conn","ts":1}\n', True),
    (b'{"ts":1705312800.1,"uid":"C1","id.orig_h":"10.0.0.1"}\n', True),
    (b'{"ts":1705312800.1,"uid":"C1"}\n', False),
    (b'{"timestamp":"2024-01-15T10:00:00+0000","event_type":"alert"}\n', False),
    (b"127.0.0.1 - - [10/Oct/2000:13:55:36 -0700] \"GET / HTTP/1.0\" 200 1\n", False),
])
def test_sniff(head: bytes, expected: bool) -> None:
    assert get_format("zeek").sniff(head) is expected
