"""AWS CloudTrail: log files (``{"Records": [...]}``) and one record per line.

The files AWS delivers to S3 are one JSON document (the caller removes the gzip layer);
CloudTrail Lake and other exports write one record per line; EventBridge wraps a record in
``detail``. Every record becomes one event whose fields are flattened with dots, as Sigma's
AWS rules name them (``eventSource``, ``eventName``, ``userIdentity.type``,
``requestParameters.userName``, ``errorCode``...). The raw text of an event is the compact
JSON of its record alone, so its id is the same whichever file shape carried it.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import replace
from typing import Any

import orjson

from vigil.events.formats import Format, Framing, first_line, register
from vigil.events.models import LogSource, ParseContext, ParseResult, Rejected
from vigil.events.parsers.jsonlines import json_event
from vigil.events.parsers.suricata import load_json

FORMAT = "cloudtrail"
SOURCE = LogSource("aws", None, "cloudtrail")
TIME_FIELD = "eventTime"


def records_of(doc: Any) -> list[Any] | str:
    """The records of a parsed document, or why it holds none."""
    if isinstance(doc, list):
        return doc
    if not isinstance(doc, dict):
        return "not a JSON object"
    if "Records" in doc:
        records = doc["Records"]
        return records if isinstance(records, list) else "'Records' is not a list"
    detail = doc.get("detail")
    if isinstance(detail, dict) and "eventName" in detail:
        return [detail]  # an EventBridge event around a CloudTrail record
    return [doc]


def parse_cloudtrail(records: Iterable[bytes], ctx: ParseContext) -> Iterator[ParseResult]:
    """CloudTrail records from whole log files or from one-record-per-line exports."""
    record_ctx = ctx if ctx.timestamp_field else replace(ctx, timestamp_field=TIME_FIELD)
    for number, data in enumerate(records, 1):
        try:
            doc = load_json(data)
        except orjson.JSONDecodeError as exc:
            yield Rejected(f"invalid JSON: {exc}", data, ctx.origin, number, FORMAT)
            continue
        items = records_of(doc)
        if isinstance(items, str):
            yield Rejected(items, data, ctx.origin, number, FORMAT)
            continue
        for item in items:
            raw = orjson.dumps(item)
            if not isinstance(item, dict):
                yield Rejected("record is not a JSON object", raw, ctx.origin, number, FORMAT)
                continue
            if TIME_FIELD not in item and "eventName" not in item:
                yield Rejected("not a CloudTrail record (no eventTime, no eventName)", raw,
                               ctx.origin, number, FORMAT)
                continue
            try:
                yield json_event(item, raw, record_ctx if TIME_FIELD in item else ctx,
                                 FORMAT, SOURCE)
            except (ValueError, TypeError, OverflowError) as exc:
                yield Rejected(f"bad eventTime: {exc}", raw, ctx.origin, number, FORMAT)


def _sniff_cloudtrail(head: bytes) -> bool:
    start = head.lstrip()[:256]
    if start.startswith(b"{") and b'"Records"' in start:
        return True
    if first_line(head) == b"{":  # one pretty-printed record
        window = head[:8192]
        return b'"eventSource"' in window and b'"eventName"' in window
    line = first_line(head)
    return line.startswith(b"{") and b'"eventSource"' in line and b'"eventName"' in line


register(Format(FORMAT, Framing.JSON, parse_cloudtrail, _sniff_cloudtrail,
                "AWS CloudTrail log files and record-per-line exports (incl. EventBridge)",
                priority=12))
