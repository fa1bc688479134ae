"""Windows events: EVTX files and JSON exports (NXLog/OTRF flat, Winlogbeat, EVTX renderings).

All shapes end in the same flat field names Sigma rules use: the ``EventData``/``UserData``
names as they are, plus ``EventID``, ``Channel``, ``Computer``, ``Provider_Name`` and the
other ``System`` values.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import Any

import orjson

from vigil.core.timeutil import parse_any
from vigil.events.formats import Format, Framing, first_line, register
from vigil.events.jsondocs import load_documents
from vigil.events.models import (
    Event,
    FieldValue,
    ParseContext,
    ParseResult,
    Rejected,
    event_id,
)
from vigil.events.taxonomy import as_event_id, windows_source

FLAT_TIME_KEYS = ("@timestamp", "TimeCreated", "SystemTime", "EventTime", "UtcTime", "timestamp")
FLAT_HOST_KEYS = ("Hostname", "Computer", "computer_name", "host")
EVTX_MAGIC = b"ElfFile\x00"


def _scalar(value: Any) -> FieldValue:
    """The value of an XML-rendered element: its ``#text`` if it has attributes."""
    if isinstance(value, dict):
        if "#text" in value:
            text = value["#text"]
            return "\n".join(str(t) for t in text) if isinstance(text, list) else text
        attributes = value.get("#attributes")
        if isinstance(attributes, dict) and len(value) == 1:
            return orjson.dumps(attributes).decode()
        return orjson.dumps(value).decode()
    return value  # type: ignore[no-any-return]


def _field_name(name: str) -> str:
    """EventData names as rules use them: ``Source Name`` becomes ``SourceName``."""
    return name.replace(" ", "") if " " in name else name


def _flatten_data(data: Any, fields: dict[str, FieldValue]) -> None:
    """Flatten an ``EventData`` or ``UserData`` element into ``fields``."""
    if not isinstance(data, dict):
        if data is not None:
            fields.setdefault("Data", _scalar(data))
        return
    for key, value in data.items():
        if key == "#attributes":
            continue
        if key == "Data" and isinstance(value, dict) and "#text" in value:
            fields["Data"] = _scalar(value)
        elif key == "Data" and isinstance(value, list):
            fields["Data"] = "\n".join(str(_scalar(v)) for v in value)
        elif isinstance(value, dict) and "#text" not in value and "#attributes" not in value:
            _flatten_data(value, fields)  # UserData: one wrapper element around the values
        elif isinstance(value, dict) and "#attributes" in value and "#text" not in value:
            for attr, attr_value in value["#attributes"].items():
                fields[_field_name(attr)] = attr_value
            _flatten_data({k: v for k, v in value.items() if k != "#attributes"}, fields)
        else:
            fields[_field_name(key)] = _scalar(value)


def _system_fields(system: dict[str, Any], fields: dict[str, FieldValue]) -> None:
    provider = system.get("Provider", {}).get("#attributes", {})
    if "Name" in provider:
        fields["Provider_Name"] = provider["Name"]
    if "Guid" in provider:
        fields["Provider_Guid"] = provider["Guid"]
    fields["EventID"] = as_event_id(system.get("EventID"))
    for key in ("Version", "Level", "Task", "Opcode", "Keywords", "EventRecordID", "Channel",
                "Computer"):
        if key in system:
            fields[key] = _scalar(system[key])
    created = system.get("TimeCreated", {}).get("#attributes", {})
    if "SystemTime" in created:
        fields["TimeCreated"] = created["SystemTime"]
    execution = system.get("Execution", {}).get("#attributes", {})
    for key in ("ProcessID", "ThreadID"):
        if key in execution:
            fields[f"Execution_{key}"] = execution[key]
    security = (system.get("Security") or {}).get("#attributes", {})
    if "UserID" in security:
        fields["UserID"] = security["UserID"]


def rendered_fields(event: dict[str, Any]) -> dict[str, FieldValue]:
    """Flat fields of an EVTX record rendered as JSON (``{"Event": {"System": ...}}``)."""
    body = event.get("Event", event)
    fields: dict[str, FieldValue] = {}
    _system_fields(body.get("System") or {}, fields)
    for section in ("EventData", "UserData"):
        if section in body:
            _flatten_data(body[section], fields)
    return fields


def winlogbeat_fields(doc: dict[str, Any]) -> dict[str, FieldValue]:
    """Flat fields of a Winlogbeat/ECS document (``winlog.event_data`` and friends)."""
    winlog = doc.get("winlog") or {}
    fields: dict[str, FieldValue] = {}
    for section in ("event_data", "user_data"):
        if isinstance(winlog.get(section), dict):
            _flatten_data(winlog[section], fields)
    fields["EventID"] = as_event_id(winlog.get("event_id") or (doc.get("event") or {}).get("code"))
    fields["Channel"] = winlog.get("channel")
    fields["Computer"] = winlog.get("computer_name")
    fields["Provider_Name"] = winlog.get("provider_name")
    if "record_id" in winlog:
        fields["EventRecordID"] = winlog["record_id"]
    if "message" in doc:
        fields["Message"] = doc["message"]
    if "@timestamp" in doc:
        fields["@timestamp"] = doc["@timestamp"]
    return fields


def _first(fields: dict[str, FieldValue], keys: Iterable[str]) -> FieldValue:
    for key in keys:
        value = fields.get(key)
        if value not in (None, ""):
            return value
    return None


def _timestamp(fields: dict[str, FieldValue], ctx: ParseContext) -> datetime:
    value = fields.get(ctx.timestamp_field) if ctx.timestamp_field else None
    if value is None:
        value = _first(fields, FLAT_TIME_KEYS)
    if value is None:
        raise ValueError("no timestamp field (@timestamp, TimeCreated, EventTime, UtcTime)")
    return parse_any(value)


def build_event(fields: dict[str, FieldValue], raw: bytes, ctx: ParseContext,
                fmt: str) -> Event:
    """The envelope of one Windows event from its flat fields."""
    ts = _timestamp(fields, ctx)
    host = _first(fields, FLAT_HOST_KEYS)
    channel = fields.get("Channel")
    kind = fields.get("EventType")
    source = ctx.source or windows_source(
        channel if isinstance(channel, str) else None, as_event_id(fields.get("EventID")),
        kind if isinstance(kind, str) else None,
    )
    return Event(
        id=event_id(raw),
        ts=ts,
        received=ctx.received,
        host=str(host) if host is not None else ctx.host,
        source=source,
        format=fmt,
        fields=fields,
        raw=raw.decode("utf-8", "replace"),
    )


def windows_fields(doc: dict[str, Any]) -> dict[str, FieldValue]:
    """Flat fields of any Windows JSON shape (flat export, Winlogbeat, EVTX rendering)."""
    if "Event" in doc and isinstance(doc["Event"], dict):
        return rendered_fields(doc)
    if "winlog" in doc and isinstance(doc["winlog"], dict):
        return winlogbeat_fields(doc)
    if "System" in doc and isinstance(doc["System"], dict):
        return rendered_fields(doc)
    return doc


def parse_windows_json(records: Iterable[bytes], ctx: ParseContext) -> Iterator[ParseResult]:
    """Windows events as JSON lines; a record holding whole documents is accepted too."""
    for number, record in enumerate(records, 1):
        try:
            docs = load_documents(record)
        except ValueError as exc:
            yield Rejected(f"invalid JSON: {exc}", record, ctx.origin, number, "windows-json")
            continue
        if len(docs) == 1 and isinstance(docs[0], list):
            docs = docs[0]
        for item in docs:
            raw = record if len(docs) == 1 else orjson.dumps(item)
            if not isinstance(item, dict):
                yield Rejected("not a JSON object", raw, ctx.origin, number, "windows-json")
                continue
            try:
                yield build_event(windows_fields(item), raw, ctx, "windows-json")
            except (ValueError, TypeError, AttributeError) as exc:
                yield Rejected(str(exc), raw, ctx.origin, number, "windows-json")


def parse_evtx(records: Iterable[bytes], ctx: ParseContext) -> Iterator[ParseResult]:
    """Records of EVTX files (each record of ``records`` is one whole file)."""
    from evtx import PyEvtxParser

    for data in records:
        if not data.startswith(EVTX_MAGIC):
            yield Rejected("not an EVTX file (bad signature)", data[:4096], ctx.origin, None,
                           "evtx")
            continue
        try:
            parser = PyEvtxParser(io.BytesIO(data))
        except (RuntimeError, OSError, ValueError) as exc:
            yield Rejected(f"unreadable EVTX file: {exc}", data[:4096], ctx.origin, None, "evtx")
            continue
        yield from _evtx_records(parser, ctx)


def _evtx_records(parser: Any, ctx: ParseContext) -> Iterator[ParseResult]:
    iterator = parser.records_json()
    number = 0
    while True:
        number += 1
        try:
            record = next(iterator)
        except StopIteration:
            return
        except (RuntimeError, OSError, ValueError) as exc:
            yield Rejected(f"corrupt EVTX record: {exc}", b"", ctx.origin, number, "evtx")
            continue
        raw = record["data"].encode()
        try:
            fields = rendered_fields(orjson.loads(raw))
            yield build_event(fields, raw, ctx, "evtx")
        except (ValueError, TypeError, orjson.JSONDecodeError) as exc:
            yield Rejected(f"bad EVTX record: {exc}", raw, ctx.origin, number, "evtx")


def _sniff_windows_json(head: bytes) -> bool:
    line = first_line(head)
    if not line.startswith(b"{"):
        return False
    window = head[:8192]
    if b'"winlog"' in window or (b'"Event"' in window and b'"System"' in window):
        return True
    return b'"EventID"' in line and (b'"Channel"' in line or b'"SourceName"' in line)


register(Format("evtx", Framing.DOCUMENT, parse_evtx, lambda h: h.startswith(EVTX_MAGIC),
                "Windows EVTX event log files", priority=1))
register(Format("windows-json", Framing.JSON, parse_windows_json, _sniff_windows_json,
                "Windows events as JSON (NXLog/OTRF, Winlogbeat, EVTX JSON renderings)",
                priority=10))
