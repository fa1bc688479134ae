"""Cutting a byte stream into records: lines, whole documents, or JSON lines/documents.

Memory stays bounded by the largest record allowed: a longer record is cut off and reported
as an oversized record, never held whole.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

import orjson

from vigil.events.formats import Framing

CHUNK = 1 << 20


@dataclass(frozen=True, slots=True)
class Oversized:
    """A record longer than the limit: its first bytes and its full size."""

    head: bytes
    size: int
    line: int


Record = bytes | Oversized


def iter_lines(stream: BinaryIO, max_record: int) -> Iterator[Record]:
    """Non-empty lines of ``stream`` without their line ends (``\\n`` or ``\\r\\n``)."""
    pending = b""
    skipping: Oversized | None = None
    number = 0
    while chunk := stream.read(CHUNK):
        start = 0
        while (end := chunk.find(b"\n", start)) != -1:
            number += 1
            piece = chunk[start:end]
            start = end + 1
            if skipping is not None:
                yield Oversized(skipping.head, skipping.size + len(piece), skipping.line)
                skipping = None
                continue
            line = pending + piece if pending else piece
            pending = b""
            if len(line) > max_record:
                yield Oversized(line[:4096], len(line), number)
                continue
            line = line.rstrip(b"\r")
            if line.strip():
                yield line
        rest = chunk[start:]
        if skipping is not None:
            skipping = Oversized(skipping.head, skipping.size + len(rest), skipping.line)
        else:
            pending += rest
            if len(pending) > max_record:
                skipping = Oversized(pending[:4096], len(pending), number + 1)
                pending = b""
    if skipping is not None:
        yield skipping
    elif pending.strip():
        if len(pending) > max_record:
            yield Oversized(pending[:4096], len(pending), number + 1)
        else:
            yield pending.rstrip(b"\r")


def read_document(stream: BinaryIO, max_record: int) -> Iterator[Record]:
    """The whole stream as one record (EVTX files, JSON documents)."""
    data = stream.read(max_record + 1)
    if len(data) > max_record:
        size = len(data)
        while chunk := stream.read(CHUNK):
            size += len(chunk)
        yield Oversized(data[:4096], size, 1)
    elif data:
        yield data


def _is_json_lines(head: bytes) -> bool:
    """True when the first non-empty line is a complete JSON value on its own."""
    for line in head.split(b"\n"):
        if line.strip():
            try:
                orjson.loads(line)
            except orjson.JSONDecodeError:
                return False
            return True
    return True


def frame(stream: BinaryIO, framing: Framing, max_record: int, max_document: int,
          head: bytes = b"") -> Iterator[Record]:
    """Records of ``stream`` for the given framing; ``head`` helps to decide JSON framing."""
    if framing is Framing.LINES:
        return iter_lines(stream, max_record)
    if framing is Framing.DOCUMENT:
        return read_document(stream, max_document)
    if _is_json_lines(head):
        return iter_lines(stream, max_record)
    return read_document(stream, max_document)
