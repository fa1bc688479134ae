"""Generic JSON lines (or a JSON document): any object becomes an event.

The timestamp field and the log source can be configured (``--timestamp-field``,
``--source product/category/service``); otherwise common timestamp names are tried.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import orjson

from vigil.core.timeutil import parse_any
from vigil.events.flatten import flatten
from vigil.events.formats import Format, Framing, first_line, register
from vigil.events.jsondocs import load_documents
from vigil.events.models import Event, LogSource, ParseContext, ParseResult, Rejected, event_id

TIME_KEYS = ("@timestamp", "timestamp", "time", "ts", "eventTime", "event_time", "date",
             "datetime", "created", "logged_at")
HOST_KEYS = ("host.name", "hostname", "host", "Hostname", "computer", "device", "agent.name")
GENERIC_SOURCE = LogSource(None, None, "json")


def _first(fields: dict[str, Any], keys: Iterable[str]) -> Any:
    for key in keys:
        value = fields.get(key)
        if value not in (None, "") and not isinstance(value, dict | list):
            return value
    return None


def json_event(doc: dict[str, Any], raw: bytes, ctx: ParseContext, fmt: str,
               source: LogSource) -> Event:
    """An event from one JSON object (flattened), for this and other JSON formats."""
    fields = flatten(doc)
    stamp = fields.get(ctx.timestamp_field) if ctx.timestamp_field else _first(fields, TIME_KEYS)
    if stamp is None:
        if ctx.timestamp_field:
            raise ValueError(f"timestamp field {ctx.timestamp_field!r} missing")
        ts = ctx.received
    else:
        ts = parse_any(stamp)
    host = _first(fields, HOST_KEYS)
    return Event(id=event_id(raw), ts=ts, received=ctx.received,
                 host=str(host) if host is not None else ctx.host, source=ctx.source or source,
                 format=fmt, fields=fields, raw=raw.decode("utf-8", "replace"))


def parse_json_records(records: Iterable[bytes], ctx: ParseContext, fmt: str,
                       source: LogSource) -> Iterator[ParseResult]:
    """Each record a JSON object (or an array of objects, or a document of many lines)."""
    for number, record in enumerate(records, 1):
        try:
            docs = load_documents(record)
        except ValueError as exc:
            yield Rejected(f"invalid JSON: {exc}", record, ctx.origin, number, fmt)
            continue
        items = docs[0] if len(docs) == 1 and isinstance(docs[0], list) else docs
        for item in items:
            raw = record if len(items) == 1 else orjson.dumps(item)
            if not isinstance(item, dict):
                yield Rejected("not a JSON object", raw, ctx.origin, number, fmt)
                continue
            try:
                yield json_event(item, raw, ctx, fmt, source)
            except (ValueError, TypeError, OverflowError) as exc:
                yield Rejected(f"bad timestamp: {exc}", raw, ctx.origin, number, fmt)


def parse_json(records: Iterable[bytes], ctx: ParseContext) -> Iterator[ParseResult]:
    """Generic JSON: any object, flattened, with a configurable timestamp and log source."""
    return parse_json_records(records, ctx, "json", GENERIC_SOURCE)


def _sniff_json(head: bytes) -> bool:
    return first_line(head).startswith((b"{", b"["))


register(Format("json", Framing.JSON, parse_json, _sniff_json,
                "Generic JSON lines or JSON documents (configurable timestamp and source)",
                priority=90))
