"""``vigil ingest``: files in, events stored, rejects to the dead letters.

Parsing runs in worker processes (one per core by default), each turning whole inputs into
Arrow batches; the one store writer in this process commits them. The queue between them is
bounded, so memory stays flat however large the input.
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import multiprocessing as mp
import queue
import shutil
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vigil.core.db import StateDB
from vigil.ingest import deadletters
from vigil.ingest.batches import Batch, ParseOptions, parse_input, spill, spill_folder, unspill
from vigil.ingest.inputs import InputRef
from vigil.store.buffer import BackgroundWriter, TableBuffer, Tables
from vigil.store.duck import EventStore

Progress = Callable[[int, int], None]
"""Called with (events handled so far, inputs finished so far)."""


@dataclass(slots=True)
class IngestSummary:
    """What an ingestion did."""

    inputs: int = 0
    records: int = 0
    stored: int = 0
    duplicates: int = 0
    rejected: int = 0
    seconds: float = 0.0
    by_source: Counter[str] = field(default_factory=Counter)
    by_format: Counter[str] = field(default_factory=Counter)

    @property
    def rate(self) -> float:
        return self.records / self.seconds if self.seconds > 0 else 0.0


def _release_memory() -> None:
    """Give freed heap back to the system between inputs (glibc keeps it otherwise)."""
    gc.collect()
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def _worker(tasks: Any, results: Any, options: ParseOptions, folder: Path) -> None:
    for ref in iter(tasks.get, None):
        for batch in parse_input(ref, options):
            results.put(("batch", spill(batch, folder)))
        results.put(("done", ref.name))
        _release_memory()
    results.put(("exit", None))


def _parallel(refs: list[InputRef], options: ParseOptions,
              workers: int) -> Iterator[tuple[str, Any]]:
    context = mp.get_context("spawn")
    tasks: Any = context.Queue()
    results: Any = context.Queue(maxsize=max(4, workers * 2))
    for ref in refs:
        tasks.put(ref)
    for _ in range(workers):
        tasks.put(None)
    folder = spill_folder()
    procs = [context.Process(target=_worker, args=(tasks, results, options, folder), daemon=True)
             for _ in range(workers)]
    for proc in procs:
        proc.start()
    running = workers
    try:
        while running:
            try:
                kind, payload = results.get(timeout=1.0)
            except queue.Empty:
                if not any(p.is_alive() for p in procs):
                    raise RuntimeError("ingest workers stopped unexpectedly") from None
                continue
            if kind == "exit":
                running -= 1
            else:
                yield kind, unspill(payload) if kind == "batch" else payload
    finally:
        for proc in procs:
            if proc.is_alive():
                proc.terminate()
            proc.join(timeout=5)
        shutil.rmtree(folder, ignore_errors=True)


def _inline(refs: list[InputRef], options: ParseOptions) -> Iterator[tuple[str, Any]]:
    for ref in refs:
        for batch in parse_input(ref, options):
            yield "batch", batch
        yield "done", ref.name


def _apply(batch: Batch, buffer: TableBuffer, writer: BackgroundWriter, db: StateDB,
           summary: IngestSummary) -> None:
    writer.submit(buffer.add(batch.tables))
    summary.records += batch.records
    summary.duplicates += batch.duplicates
    summary.rejected += deadletters.record(db, batch.rejected)
    if batch.format:
        summary.by_format[batch.format] += batch.records


def ingest_inputs(refs: list[InputRef], store: EventStore, db: StateDB,
                  options: ParseOptions, *, workers: int = 1,
                  progress: Progress | None = None,
                  on_written: Callable[[Tables], object] | None = None) -> IngestSummary:
    """Parse and store every input; returns the counts (they add up to the records read)."""
    summary = IngestSummary(inputs=len(refs))
    started = time.perf_counter()
    workers = max(1, min(workers, len(refs)))
    stream = _parallel(refs, options, workers) if workers > 1 else _inline(refs, options)
    finished = 0
    buffer, writer = TableBuffer(max_bytes=192 * 1024 * 1024), BackgroundWriter(store, on_written)
    try:
        for kind, payload in stream:
            if kind == "batch":
                _apply(payload, buffer, writer, db, summary)
            else:
                finished += 1
            if progress is not None:
                progress(summary.records, finished)
        writer.submit(buffer.flush())
    finally:
        written = writer.close()
    summary.stored += written.stored
    summary.duplicates += written.duplicates + buffer.duplicates
    summary.by_source.update(written.by_source)
    summary.seconds = time.perf_counter() - started
    return summary
