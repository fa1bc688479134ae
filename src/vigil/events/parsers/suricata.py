"""Suricata EVE JSON: one object per line, its kind in ``event_type``.

Fields are flattened with dots (``alert.signature``, ``dns.rrname``, ``http.hostname``,
``tls.sni``...); ``src_ip``, ``dest_ip`` and the other top-level names stay as they are. The
log source is ``suricata`` with the event type as service (``alert``, ``dns``, ``http``,
``tls``, ``flow``, ``fileinfo``, ``anomaly``, ``stats``...). The sensor name Suricata writes
as ``host`` becomes the event host.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import orjson

from vigil.events.formats import Format, Framing, first_line, register
from vigil.events.models import LogSource, ParseContext, ParseResult, Rejected
from vigil.events.parsers.jsonlines import json_event

FORMAT = "suricata"


def load_json(record: bytes) -> Any:
    """``orjson.loads``, but a record with bytes that are no UTF-8 is read with U+FFFD for them.

    Shared by the JSON-based security formats: one bad byte should not cost the event.
    """
    try:
        return orjson.loads(record)
    except orjson.JSONDecodeError:
        try:
            record.decode("utf-8")
        except UnicodeDecodeError:
            return orjson.loads(record.decode("utf-8", "replace"))
        raise


def eve_source(doc: dict[str, Any]) -> LogSource:
    """``suricata`` with the event type as service."""
    kind = doc.get("event_type")
    return LogSource("suricata", None, kind if isinstance(kind, str) and kind else None)


def parse_suricata(records: Iterable[bytes], ctx: ParseContext) -> Iterator[ParseResult]:
    """EVE records (JSON lines; a JSON array or one pretty-printed object is accepted too)."""
    for number, record in enumerate(records, 1):
        try:
            doc = load_json(record)
        except orjson.JSONDecodeError as exc:
            yield Rejected(f"invalid JSON: {exc}", record, ctx.origin, number, FORMAT)
            continue
        items = doc if isinstance(doc, list) else [doc]
        for item in items:
            raw = record if len(items) == 1 and not isinstance(doc, list) else orjson.dumps(item)
            if not isinstance(item, dict):
                yield Rejected("not a JSON object", raw, ctx.origin, number, FORMAT)
                continue
            try:
                yield json_event(item, raw, ctx, FORMAT, eve_source(item))
            except (ValueError, TypeError, OverflowError) as exc:
                yield Rejected(f"bad timestamp: {exc}", raw, ctx.origin, number, FORMAT)


def _sniff_suricata(head: bytes) -> bool:
    line = first_line(head)
    return line.startswith(b"{") and b'"event_type"' in line


register(Format(FORMAT, Framing.JSON, parse_suricata, _sniff_suricata,
                "Suricata EVE JSON (alert, dns, http, tls, flow, fileinfo, anomaly, stats...)",
                priority=20))
