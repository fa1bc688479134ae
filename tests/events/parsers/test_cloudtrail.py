"""CloudTrail: log files, record-per-line exports, EventBridge, stable ids, bad input."""

from __future__ import annotations

import io
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from vigil.events import Event, LogSource, ParseContext, Rejected, event_id, get_format
from vigil.events.framing import Oversized, frame

RECEIVED = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)

RECORD: dict[str, Any] = {
    "eventVersion": "1.09",
    "userIdentity": {"type": "IAMUser", "principalId": "AIDAEXAMPLE",
                     "arn": "arn:aws:iam::123456789012:user/alice",
                     "accountId": "123456789012", "userName": "alice"},
    "eventTime": "2024-01-15T10:01:03Z",
    "eventSource": "iam.amazonaws.com",
    "eventName": "CreateAccessKey",
    "awsRegion": "us-east-1",
    "sourceIPAddress": "203.0.113.50",
    "userAgent": "aws-cli/2.15.10",
    "requestParameters": {"userName": "backup-svc"},
    "responseElements": None,
    "errorCode": "AccessDenied",
    "resources": [{"type": "AWS::IAM::User", "ARN": "arn:aws:iam::123456789012:user/x"}],
}
OTHER = {**RECORD, "eventName": "DeleteTrail", "eventTime": "2024-01-15T10:02:00Z"}


def parse(records: list[bytes], timestamp_field: str | None = None) -> list[Event | Rejected]:
    ctx = ParseContext(origin="ct.json", received=RECEIVED, timestamp_field=timestamp_field)
    return list(get_format("cloudtrail").parse(records, ctx))


def framed(data: bytes) -> list[bytes]:
    fmt = get_format("cloudtrail")
    return [r for r in frame(io.BytesIO(data), fmt.framing, 1 << 20, 1 << 24, data[:65536])
            if not isinstance(r, Oversized)]


def only_events(results: list[Event | Rejected]) -> list[Event]:
    assert all(isinstance(r, Event) for r in results), results
    return [r for r in results if isinstance(r, Event)]


def test_log_file_fields_as_sigma_names_them() -> None:
    first, second = only_events(parse(framed(orjson.dumps({"Records": [RECORD, OTHER]}))))
    assert first.fields["eventSource"] == "iam.amazonaws.com"
    assert first.fields["userIdentity.type"] == "IAMUser"
    assert first.fields["userIdentity.arn"] == "arn:aws:iam::123456789012:user/alice"
    assert first.fields["requestParameters.userName"] == "backup-svc"
    assert first.fields["errorCode"] == "AccessDenied"
    assert first.fields["responseElements"] is None
    assert isinstance(first.fields["resources"], list)
    assert first.ts == datetime(2024, 1, 15, 10, 1, 3, tzinfo=UTC)
    assert first.source == LogSource("aws", None, "cloudtrail")
    assert first.format == "cloudtrail"
    assert second.fields["eventName"] == "DeleteTrail"


def test_raw_is_the_record_and_ids_are_stable_across_shapes() -> None:
    compact = parse(framed(orjson.dumps({"Records": [RECORD, OTHER]})))
    pretty = parse(framed(orjson.dumps({"Records": [RECORD, OTHER]},
                                       option=orjson.OPT_INDENT_2)))
    lines = parse(framed(orjson.dumps(RECORD) + b"\n" + orjson.dumps(OTHER) + b"\n"))
    ids = [[e.id for e in only_events(r)] for r in (compact, pretty, lines)]
    assert ids[0] == ids[1] == ids[2]
    assert ids[0][0] == event_id(orjson.dumps(RECORD))
    assert only_events(compact)[0].raw == orjson.dumps(RECORD).decode()


def test_eventbridge_wrapper_is_unwrapped_and_arrays_accepted() -> None:
    wrapped = {"version": "0", "detail-type": "AWS API Call via CloudTrail", "source": "aws.iam",
               "time": "2024-01-15T10:01:05Z", "detail": RECORD}
    (event,) = only_events(parse([orjson.dumps(wrapped)]))
    assert event.fields["eventName"] == "CreateAccessKey"
    assert event.id == event_id(orjson.dumps(RECORD))
    assert len(only_events(parse([orjson.dumps([RECORD, OTHER])]))) == 2


def test_bad_documents_and_records() -> None:
    results = parse([
        b'{"Records": 5}',
        b'{"Records": [5, {"eventName": "X", "eventTime": "2024-01-15T10:00:00Z"}]}',
        b'{"Records": [{"eventTime": "2024-01-15T10:00:00Z", "eventName": "Tru',
        b'"text"',
        b'{"awsAccountId": "1", "digestStartTime": "2024-01-15T09:00:00Z"}',
        b'{"eventTime": "2024-99-15T10:00:00Z", "eventName": "X"}',
        b'{"eventTime": null, "eventName": "X"}',
        b'{"Records": []}',
    ])
    kinds = [type(r).__name__ for r in results]
    assert kinds == ["Rejected", "Rejected", "Event", "Rejected", "Rejected", "Rejected",
                     "Rejected", "Rejected"]
    rejected = [r for r in results if isinstance(r, Rejected)]
    assert [r.line for r in rejected] == [1, 2, 3, 4, 5, 6, 7]
    assert "'Records' is not a list" in rejected[0].reason
    assert rejected[1].raw == b"5"
    assert rejected[2].reason.startswith("invalid JSON")
    assert "not a CloudTrail record" in rejected[4].reason
    assert "eventTime" in rejected[5].reason


def test_missing_event_time_uses_received_time() -> None:
    (event,) = only_events(parse([b'{"eventSource":"kms.amazonaws.com","eventName":"Decrypt"}']))
    assert event.ts == RECEIVED


def test_timestamp_field_option() -> None:
    record = {**RECORD, "deliveredAt": "2024-01-15T11:00:00Z"}
    (event,) = only_events(parse([orjson.dumps(record)], timestamp_field="deliveredAt"))
    assert event.ts == datetime(2024, 1, 15, 11, 0, tzinfo=UTC)


def test_invalid_utf8_is_replaced() -> None:
    line = orjson.dumps({**RECORD, "userAgent": "X"}).replace(b'"X"', b'"caf\xe9"')
    (event,) = only_events(parse([line]))
    assert event.fields["userAgent"] == "caf\ufffd"


@given(st.binary(max_size=200))
def test_arbitrary_bytes_never_raise(data: bytes) -> None:
    parse([data])


@pytest.mark.parametrize(("head", "expected"), [
    (b'{"Records": [{"eventVersion": "1.09"}]}', True),
    (b'{\n    "Records": [\n        {\n', True),
    (orjson.dumps(RECORD) + b"\n", True),
    (orjson.dumps(RECORD, option=orjson.OPT_INDENT_2), True),
    (b'{"timestamp":"2024-01-15T10:00:00+0000","event_type":"alert"}\n', False),
    (b'{"eventName": "x"}\n', False),
    (b"[1, 2]\n", False),
])
def test_sniff(head: bytes, expected: bool) -> None:
    assert get_format("cloudtrail").sniff(head) is expected
