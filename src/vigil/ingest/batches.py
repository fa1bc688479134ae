"""Parsed events to store-ready batches (worker side of ingestion).

A batch holds one Arrow table per log source, serialised as Arrow IPC so that worker
processes can hand it to the single store writer cheaply.
"""

from __future__ import annotations

import os
import tempfile
import uuid
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa

from vigil.core.errors import VigilError
from vigil.events.formats import Format, detect_format, get_format
from vigil.events.framing import Oversized, frame
from vigil.events.models import Event, LogSource, ParseContext, ParseResult, Rejected
from vigil.ingest.inputs import InputRef, open_input
from vigil.store.columns import to_tables


@dataclass(slots=True)
class Batch:
    """Store-ready events of one or more log sources, plus what was rejected."""

    tables: dict[LogSource, pa.Table] = field(default_factory=dict)
    rejected: list[Rejected] = field(default_factory=list)
    records: int = 0
    duplicates: int = 0
    bytes_read: int = 0
    origin: str = ""
    format: str | None = None
    spilled: dict[LogSource, str] = field(default_factory=dict)

    @property
    def events(self) -> int:
        return sum(t.num_rows for t in self.tables.values())


def spill(batch: Batch, folder: Path) -> Batch:
    """Move the tables of a batch into Arrow files in ``folder`` (shared memory when it is
    ``/dev/shm``), so another process can map them instead of receiving copies through a pipe.
    Measured on the OTRF corpus: two parser processes sending pickled tables reached 22,500
    events/s; one process parsing alone 38,500."""
    for source, table in batch.tables.items():
        path = folder / f"{uuid.uuid4().hex}.arrow"
        with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_file(sink, table.schema) as writer:
            writer.write_table(table)
        batch.spilled[source] = str(path)
    batch.tables = {}
    return batch


def unspill(batch: Batch) -> Batch:
    """Map the spilled tables of a batch back (zero copy) and remove their files."""
    for source, name in batch.spilled.items():
        with pa.memory_map(name) as source_file:
            batch.tables[source] = pa.ipc.open_file(source_file).read_all()
        os.unlink(name)
    batch.spilled = {}
    return batch


def spill_folder() -> Path:
    """Where spilled batches go: shared memory if the system has it."""
    shm = Path("/dev/shm")
    base = shm if shm.is_dir() and os.access(shm, os.W_OK) else Path(tempfile.gettempdir())
    return Path(tempfile.mkdtemp(prefix="vigil-ingest-", dir=base))


def make_batch(events: list[Event], rejected: list[Rejected]) -> Batch:
    """Group events by log source (dropping repeated ids) into Arrow tables."""
    tables, duplicates = to_tables(events)
    return Batch(tables=tables, rejected=rejected, records=len(events) + len(rejected),
                 duplicates=duplicates)


@dataclass(frozen=True, slots=True)
class ParseOptions:
    """How to read inputs: a forced format, limits, and parser context options."""

    format: str | None = None
    batch_size: int = 5_000
    max_record: int = 8 * 1024 * 1024
    max_document: int = 512 * 1024 * 1024
    timestamp_field: str | None = None
    source: str | None = None


def _records(results: Iterable[ParseResult], size: int) -> Iterator[list[ParseResult]]:
    chunk: list[ParseResult] = []
    for result in results:
        chunk.append(result)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _frames(stream: object, fmt: Format, options: ParseOptions, head: bytes,
            origin: str, rejected: list[Rejected]) -> Iterator[bytes]:
    for record in frame(stream, fmt.framing, options.max_record,  # type: ignore[arg-type]
                        options.max_document, head):
        if isinstance(record, Oversized):
            rejected.append(Rejected(
                f"record of {record.size} bytes is larger than the limit "
                f"({options.max_record} bytes)", record.head, origin, record.line, fmt.name))
        else:
            yield record


def parse_input(ref: InputRef, options: ParseOptions) -> Iterator[Batch]:
    """Batches of one input; whole-input failures become one rejected record."""
    try:
        with open_input(ref) as (head, stream):
            fmt = get_format(options.format) if options.format else detect_format(head, ref.name)
            ctx = ParseContext(origin=ref.name, timestamp_field=options.timestamp_field,
                               source=LogSource.parse(options.source) if options.source else None)
            pending: list[Rejected] = []
            results = fmt.parse(_frames(stream, fmt, options, head, ref.name, pending), ctx)
            for chunk in _records(results, options.batch_size):
                events = [r for r in chunk if isinstance(r, Event)]
                rejected = [r for r in chunk if isinstance(r, Rejected)] + pending
                pending.clear()
                batch = make_batch(events, rejected)
                batch.origin, batch.format = ref.name, fmt.name
                yield batch
            if pending:
                yield Batch(rejected=list(pending), records=len(pending), origin=ref.name)
    except (VigilError, OSError, EOFError, zlib.error) as exc:
        reason = exc.message if isinstance(exc, VigilError) else f"unreadable input: {exc}"
        yield Batch(rejected=[Rejected(reason, b"", ref.name, None, options.format)],
                    records=1, origin=ref.name)
