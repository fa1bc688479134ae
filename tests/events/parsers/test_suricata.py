"""Suricata EVE JSON: flattening, event types as services, timestamps, bad input."""

from __future__ import annotations

import io
from datetime import UTC, datetime

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from vigil.events import Event, LogSource, ParseContext, Rejected, event_id, get_format
from vigil.events.framing import frame
from vigil.events.parsers.suricata import load_json

RECEIVED = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)

ALERT = {
    "timestamp": "2024-01-15T10:00:06.412345+0000", "flow_id": 1479536178935742,
    "in_iface": "eth1", "event_type": "alert", "src_ip": "198.51.100.77", "src_port": 80,
    "dest_ip": "192.168.1.23", "dest_port": 50321, "proto": "TCP", "host": "ids-01",
    "alert": {"action": "allowed", "gid": 1, "signature_id": 2018959, "rev": 5,
              "signature": "ET POLICY PE EXE or DLL Windows file download HTTP",
              "category": "Potential Corporate Privacy Violation", "severity": 1,
              "metadata": {"signature_severity": ["Informational"]}},
    "http": {"hostname": "198.51.100.77", "url": "/update/agent.exe", "status": 200},
}


def parse(records: list[bytes], host: str | None = None,
          source: LogSource | None = None) -> list[Event | Rejected]:
    ctx = ParseContext(origin="eve.json", received=RECEIVED, host=host, source=source)
    return list(get_format("suricata").parse(records, ctx))


def test_alert_is_flattened_with_dots() -> None:
    line = orjson.dumps(ALERT)
    (event,) = parse([line])
    assert isinstance(event, Event)
    assert event.fields["alert.signature_id"] == 2018959
    assert event.fields["alert.metadata.signature_severity"] == ["Informational"]
    assert event.fields["http.url"] == "/update/agent.exe"
    assert event.fields["src_ip"] == "198.51.100.77"
    assert event.source == LogSource("suricata", None, "alert")
    assert event.ts == datetime(2024, 1, 15, 10, 0, 6, 412345, tzinfo=UTC)
    assert event.host == "ids-01"
    assert event.id == event_id(line)
    assert event.format == "suricata"


@pytest.mark.parametrize("kind", ["dns", "http", "tls", "flow", "fileinfo", "anomaly", "stats"])
def test_event_type_is_the_service(kind: str) -> None:
    line = orjson.dumps({"timestamp": "2024-01-15T10:00:00.000000+0000", "event_type": kind})
    (event,) = parse([line], host="collector")
    assert isinstance(event, Event)
    assert event.source.service == kind
    assert event.host == "collector"


def test_offsets_other_than_utc() -> None:
    line = b'{"timestamp":"2024-01-15T12:00:00.000001+0200","event_type":"dns"}'
    (event,) = parse([line])
    assert isinstance(event, Event)
    assert event.ts == datetime(2024, 1, 15, 10, 0, 0, 1, tzinfo=UTC)


def test_pretty_printed_document_and_arrays() -> None:
    pretty = orjson.dumps(ALERT, option=orjson.OPT_INDENT_2)
    records = [r for r in frame(io.BytesIO(pretty), get_format("suricata").framing, 1 << 20,
                                1 << 24, pretty[:100]) if isinstance(r, bytes)]
    (event,) = parse(records)
    assert isinstance(event, Event)
    assert event.raw == pretty.decode()
    array = orjson.dumps([ALERT, {**ALERT, "event_type": "drop"}])
    first, second = parse([array])
    assert isinstance(first, Event) and isinstance(second, Event)
    assert first.id == event_id(orjson.dumps(ALERT))
    assert second.source.service == "drop"


def test_bad_records() -> None:
    results = parse([
        b'{"timestamp":"2024-01-15T10:00:00+0000","event_type":"al',
        b'"a string"',
        b'{"timestamp":"yesterday","event_type":"dns"}',
        b'{"timestamp":12,"event_type":5}',
        b'{"event_type":"dns"}',
        b"[1, {}]",
    ])
    kinds = [type(r).__name__ for r in results]
    assert kinds == ["Rejected", "Rejected", "Rejected", "Event", "Event", "Rejected", "Event"]
    rejected = [r for r in results if isinstance(r, Rejected)]
    assert [r.line for r in rejected] == [1, 2, 3, 6]
    assert rejected[0].reason.startswith("invalid JSON")
    assert all(r.format == "suricata" and r.origin == "eve.json" for r in rejected)
    wrong_type, no_time = results[3], results[4]
    assert isinstance(wrong_type, Event) and wrong_type.source.service is None
    assert isinstance(no_time, Event) and no_time.ts == RECEIVED


def test_invalid_utf8_is_replaced() -> None:
    (event,) = parse([b'{"timestamp":"2024-01-15T10:00:00+0000","event_type":"http",'
                      b'"http":{"http_user_agent":"caf\xe9"}}'])
    assert isinstance(event, Event)
    assert event.fields["http.http_user_agent"] == "caf\ufffd"


def test_load_json_still_fails_on_broken_utf8_json() -> None:
    with pytest.raises(orjson.JSONDecodeError):
        load_json(b'{"a": 1')
    with pytest.raises(orjson.JSONDecodeError):
        load_json(b'{"a": \xff')


def test_ctx_source_overrides() -> None:
    (event,) = parse([orjson.dumps(ALERT)], source=LogSource("x", "y", "z"))
    assert isinstance(event, Event)
    assert event.source == LogSource("x", "y", "z")


@given(st.binary(max_size=200))
def test_arbitrary_bytes_never_raise(data: bytes) -> None:
    assert len(parse([data])) >= 1


@pytest.mark.parametrize(("head", "expected"), [
    (orjson.dumps(ALERT) + b"\n", True),
    (b'\n{"timestamp":"2024-01-15T10:00:00+0000","event_type":"stats"}\n', True),
    (b'{"_path":"conn","ts":1}\n', False),
    (b'{\n  "timestamp": "2024", "event_type": "alert"\n}\n', False),
    (b"CEF:0|V|P|1|s|n|3|\n", False),
])
def test_sniff(head: bytes, expected: bool) -> None:
    assert get_format("suricata").sniff(head) is expected
