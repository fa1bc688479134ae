"""The durable spool: accepted records are on disk before the sender hears "accepted".

Records are appended to segment files and made durable with ``fsync`` in grouped commits
(many appenders share one ``fsync``). Each record has a sequence number; the store commits
the number of the last record of each batch in the same transaction as the events, so after a
crash the consumer resumes right after what the store holds: nothing lost, nothing doubled.

Frame: ``b"VS" | length u32 | crc32 u32 | payload``; payload: ``format | origin | received
(µs) | raw``. A torn or corrupt tail (a crash mid-write) is cut off on open.
"""

from __future__ import annotations

import os
import struct
import threading
import time
import zlib
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path

from vigil.core.errors import OverloadedError

MAGIC = b"VS"
_HEADER = struct.Struct("<2sII")
_META = struct.Struct("<BHq")
SEGMENT_BYTES = 64 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class SpoolRecord:
    """One accepted record, as it arrived."""

    format: str
    origin: str
    received_us: int
    raw: bytes

    def encode(self) -> bytes:
        fmt, origin = self.format.encode()[:255], self.origin.encode()[:65535]
        payload = _META.pack(len(fmt), len(origin), self.received_us) + fmt + origin + self.raw
        return _HEADER.pack(MAGIC, len(payload), zlib.crc32(payload)) + payload

    @classmethod
    def decode(cls, payload: bytes) -> SpoolRecord:
        fmt_len, origin_len, received = _META.unpack_from(payload)
        start = _META.size
        fmt = payload[start:start + fmt_len].decode()
        origin = payload[start + fmt_len:start + fmt_len + origin_len].decode()
        return cls(fmt, origin, received, payload[start + fmt_len + origin_len:])


def _segment_name(first_seq: int) -> str:
    return f"seg-{first_seq:020d}.log"


def _scan(path: Path) -> tuple[int, int]:
    """(number of valid records, byte length of the valid prefix) of a segment."""
    count = offset = 0
    with path.open("rb") as handle:
        data = handle.read()
    while offset + _HEADER.size <= len(data):
        magic, length, crc = _HEADER.unpack_from(data, offset)
        end = offset + _HEADER.size + length
        if magic != MAGIC or end > len(data) or zlib.crc32(data[offset + _HEADER.size:end]) != crc:
            break
        count += 1
        offset = end
    return count, offset


class Spool:
    """Append-only, crash-safe record log with grouped fsync."""

    def __init__(self, folder: Path, *, max_pending: int = 2_000_000,
                 group_commit_ms: float = 5.0, segment_bytes: int = SEGMENT_BYTES) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self.max_pending = max_pending
        self.segment_bytes = segment_bytes
        self._group_wait = group_commit_ms / 1000.0
        self._lock = threading.Lock()
        self._flushed = threading.Condition(self._lock)
        self._new_data = threading.Condition(threading.Lock())
        self._segments: list[int] = sorted(int(p.name[4:24]) for p in folder.glob("seg-*.log"))
        self.next_seq = self._recover()
        self.durable_seq = self.next_seq - 1
        self.committed_seq = -1
        self._oldest_pending: float | None = None
        self._handle = self._open_tail()
        self._closed = False
        self._flusher = threading.Thread(target=self._flush_loop, name="spool-fsync", daemon=True)
        self._waiting: list[tuple[int, Future[int]]] = []
        self._cursor: tuple[int, int, int] = (0, -1, -1)
        """(byte offset, next sequence number, segment) where the last read stopped."""
        self._flusher.start()

    # -- recovery ----------------------------------------------------------------------------

    def _recover(self) -> int:
        if not self._segments:
            self._segments = [0]
            (self.folder / _segment_name(0)).touch()
            return 0
        last = self.folder / _segment_name(self._segments[-1])
        count, valid = _scan(last)
        if valid < last.stat().st_size:
            with last.open("r+b") as handle:
                handle.truncate(valid)
                os.fsync(handle.fileno())
        return self._segments[-1] + count

    def _open_tail(self) -> object:
        return (self.folder / _segment_name(self._segments[-1])).open("ab")

    # -- appending ---------------------------------------------------------------------------

    def pending(self) -> int:
        """Records accepted but not yet committed by the store."""
        return max(0, self.next_seq - 1 - self.committed_seq)

    def oldest_pending_age(self) -> float:
        return 0.0 if self._oldest_pending is None else time.monotonic() - self._oldest_pending

    def append(self, records: list[SpoolRecord]) -> Future[int]:
        """Write records; the future resolves with the last sequence number once durable."""
        if self.pending() + len(records) > self.max_pending:
            raise OverloadedError("ingest spool is full; retry later", retry_after=2)
        future: Future[int] = Future()
        data = b"".join(r.encode() for r in records)
        with self._lock:
            if self._closed:
                raise OverloadedError("spool is closed (server stopping)", retry_after=5)
            self._handle.write(data)  # type: ignore[attr-defined]
            self.next_seq += len(records)
            last = self.next_seq - 1
            if self._oldest_pending is None:
                self._oldest_pending = time.monotonic()
            self._waiting.append((last, future))
            self._flushed.notify_all()
            if self._handle.tell() >= self.segment_bytes:  # type: ignore[attr-defined]
                self._rotate()
        return future

    def append_sync(self, records: list[SpoolRecord], timeout: float = 30.0) -> int:
        return self.append(records).result(timeout)

    def _rotate(self) -> None:
        self._sync_locked()
        self._handle.close()  # type: ignore[attr-defined]
        self._segments.append(self.next_seq)
        self._handle = self._open_tail()

    def _sync_locked(self) -> None:
        self._handle.flush()  # type: ignore[attr-defined]
        os.fsync(self._handle.fileno())  # type: ignore[attr-defined]
        self.durable_seq = self.next_seq - 1
        done = [f for seq, f in self._waiting if seq <= self.durable_seq]
        self._waiting = [(s, f) for s, f in self._waiting if s > self.durable_seq]
        for future in done:
            future.set_result(self.durable_seq)
        with self._new_data:
            self._new_data.notify_all()

    def _flush_loop(self) -> None:
        while True:
            with self._lock:
                while not self._waiting and not self._closed:
                    self._flushed.wait()
                if self._closed and not self._waiting:
                    return
            time.sleep(self._group_wait)  # let more appenders join this fsync
            with self._lock:
                if self._waiting:
                    self._sync_locked()

    # -- consuming ---------------------------------------------------------------------------

    def wait_for_data(self, after: int, timeout: float) -> bool:
        """Wait until a durable record with a sequence number above ``after`` exists."""
        with self._new_data:
            if self.durable_seq > after:
                return True
            self._new_data.wait(timeout)
        return self.durable_seq > after

    def read(self, after: int, limit: int) -> list[tuple[int, SpoolRecord]]:
        """Durable records with sequence numbers above ``after``, at most ``limit``."""
        out: list[tuple[int, SpoolRecord]] = []
        durable = self.durable_seq
        with self._lock:
            segments = list(self._segments)
        for index, first in enumerate(segments):
            following = segments[index + 1] if index + 1 < len(segments) else None
            if following is not None and following <= after + 1:
                continue
            self._read_segment(first, after, min(durable, after + limit), out)
            if len(out) >= limit or (following is not None and following > durable):
                break
        return out

    def _read_segment(self, first: int, after: int, last: int,
                      out: list[tuple[int, SpoolRecord]]) -> None:
        offset, seq, segment = self._cursor
        if segment != first or seq > after + 1:
            offset, seq = 0, first
        try:
            handle = (self.folder / _segment_name(first)).open("rb")
        except FileNotFoundError:
            return
        with handle:
            handle.seek(offset)
            while seq <= last:
                header = handle.read(_HEADER.size)
                if len(header) < _HEADER.size:
                    break
                _, length, _ = _HEADER.unpack(header)
                payload = handle.read(length)
                if len(payload) < length:
                    break
                if seq > after:
                    out.append((seq, SpoolRecord.decode(payload)))
                offset += _HEADER.size + length
                seq += 1
                self._cursor = (offset, seq, first)

    def committed(self, seq: int) -> None:
        """The store holds everything up to ``seq``: drop whole segments below it."""
        self.committed_seq = max(self.committed_seq, seq)
        if self.pending() == 0:
            self._oldest_pending = None
        with self._lock:
            while len(self._segments) > 1 and self._segments[1] <= self.committed_seq + 1:
                (self.folder / _segment_name(self._segments[0])).unlink(missing_ok=True)
                self._segments.pop(0)

    def close(self) -> None:
        with self._lock:
            if self._waiting:
                self._sync_locked()
            self._closed = True
            self._flushed.notify_all()
            self._handle.close()  # type: ignore[attr-defined]
        self._flusher.join(timeout=5)
