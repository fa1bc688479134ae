"""``POST /api/v1/ingest``: the HTTP collector (NDJSON or a JSON array, gzip accepted).

The answer 202 comes only once every record is durable in the spool. A body past the limit
gets 413, a full spool 429 with ``Retry-After``, a body that is not JSON 400.
"""

from __future__ import annotations

import asyncio
import zlib
from typing import Annotated

import orjson
from fastapi import APIRouter, Query, Request
from pydantic import BaseModel

from vigil.api.deps import RuntimeDep, Sender, VigilDep, read_body
from vigil.core.errors import InputError, TooLargeError
from vigil.core.timeutil import to_micros, utcnow
from vigil.events.formats import Framing, detect_format, get_format
from vigil.ingest.spool import SpoolRecord

router = APIRouter(prefix="/api/v1", tags=["ingest"])


class IngestAccepted(BaseModel):
    accepted: int
    source: str


def _gunzip(body: bytes, limit: int) -> bytes:
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        data = inflater.decompress(body, limit + 1)
    except zlib.error as exc:
        raise InputError(f"body is not valid gzip: {exc}") from exc
    if len(data) > limit or inflater.unconsumed_tail:
        raise TooLargeError(f"decompressed body larger than {limit} bytes")
    return data


def _split_json(body: bytes) -> list[bytes]:
    """Records of an NDJSON body or a JSON array body; InputError if it is not JSON."""
    stripped = body.strip()
    if not stripped:
        raise InputError("empty body: send NDJSON or a JSON array")
    if stripped.startswith(b"["):
        try:
            items = orjson.loads(stripped)
        except orjson.JSONDecodeError as exc:
            raise InputError(f"body is not valid JSON: {exc}") from exc
        return [orjson.dumps(item) for item in items]
    lines = [line for line in stripped.split(b"\n") if line.strip()]
    for number, line in enumerate(lines, 1):
        try:
            orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            raise InputError(f"line {number} is not valid JSON: {exc}") from exc
    return lines


@router.post("/ingest", status_code=202, response_model=IngestAccepted)
async def ingest(
    request: Request,
    source: Sender,
    vigil: VigilDep,
    runtime: RuntimeDep,
    fmt: Annotated[str | None, Query(alias="format",
                                     description="Format of the records (default: detected).")] = None,
) -> IngestAccepted:
    """Accept events as NDJSON or a JSON array (optionally gzip-compressed)."""
    limit = vigil.settings.ingest.http_max_body
    body = await read_body(request, limit)
    if request.headers.get("content-encoding", "").lower() == "gzip":
        body = _gunzip(body, limit)
    records = _split_json(body)
    chosen = get_format(fmt) if fmt else detect_format(records[0], "request body")
    if chosen.framing is Framing.DOCUMENT:
        raise InputError(f"format {chosen.name} cannot be sent to the HTTP collector")
    now = to_micros(utcnow())
    origin = f"http:{source.name}"
    spooled = [SpoolRecord(chosen.name, origin, now, r) for r in records]
    await asyncio.wrap_future(runtime.accept(spooled, source.name))
    return IngestAccepted(accepted=len(spooled), source=source.name)
