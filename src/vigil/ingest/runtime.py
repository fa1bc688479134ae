"""Ingestion inside ``vigil serve``: listeners append to the spool, one worker stores.

The worker reads durable spool records in order, parses them with their format, and commits
the events together with the spool position. Listeners ask :meth:`IngestRuntime.accept` to
take records; it raises ``OverloadedError`` when the store falls behind (back-pressure).
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import Future
from datetime import UTC, datetime
from itertools import groupby

import pyarrow as pa

from vigil.core import logging as vlog
from vigil.core.config import IngestSettings
from vigil.core.db import StateDB
from vigil.core.metrics import Registry
from vigil.core.timeutil import from_micros
from vigil.events.formats import get_format
from vigil.events.models import Event, LogSource, ParseContext, ParseResult, Rejected
from vigil.ingest import deadletters
from vigil.ingest.spool import Spool, SpoolRecord
from vigil.store.columns import to_tables
from vigil.store.duck import EventStore

STREAM = "spool"
log = vlog.get("vigil.ingest")

StoredHook = Callable[[set[str], list[str]], None]
"""Called after each committed batch with the log sources written and the event ids."""
TablesHook = Callable[[Mapping[LogSource, pa.Table]], object]
"""Called after each committed batch with its Arrow tables, one per log source."""


class IngestRuntime:
    """The spool and the worker that moves its records into the store."""

    def __init__(self, spool: Spool, store: EventStore, db: StateDB, settings: IngestSettings,
                 registry: Registry) -> None:
        self.spool = spool
        self.store = store
        self.db = db
        self.settings = settings
        self.on_stored: StoredHook | None = None
        self.on_tables: TablesHook | None = None
        self._tables: queue.Queue[Mapping[LogSource, pa.Table] | None] = queue.Queue(maxsize=4)
        self._hook: threading.Thread | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="ingest-worker", daemon=True)
        self.received = registry.counter("vigil_events_received_total",
                                         "Records accepted into the spool, by sender source.")
        self.stored = registry.counter("vigil_events_stored_total",
                                       "Events committed to the store, by log source.")
        self.rejected = registry.counter("vigil_events_rejected_total",
                                         "Records sent to the dead letters, by sender source.")
        self.dropped = registry.counter("vigil_events_dropped_total",
                                        "UDP datagrams dropped while the spool was full.")
        self.batch_seconds = registry.histogram("vigil_batch_seconds",
                                                "Time to parse and commit one batch.")
        registry.gauge("vigil_spool_depth", "Records accepted but not yet stored.",
                       lambda: {(): float(spool.pending())})
        registry.gauge("vigil_spool_oldest_seconds", "Age of the oldest record not yet stored.",
                       lambda: {(): spool.oldest_pending_age()})
        registry.gauge("vigil_store_bytes", "Size of the event store files.",
                       lambda: {(): float(store.size_bytes())})
        registry.gauge("vigil_store_events", "Events in the store, by log source.",
                       lambda: {(("source", k),): float(v) for k, v in store.counts().items()})

    def start(self) -> None:
        position = self.store.position(STREAM)
        if position is not None:
            self.spool.committed(position)
        if self.on_tables is not None:
            self._hook = threading.Thread(target=self._run_hook, args=(self.on_tables,),
                                          name="ingest-hook", daemon=True)
            self._hook.start()
        self._thread.start()

    def accept(self, records: list[SpoolRecord], source: str) -> Future[int]:
        """Append records to the spool; the future resolves once they are durable."""
        future = self.spool.append(records)
        self.received.inc(len(records), source=source)
        return future

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)
        if self._hook is not None:
            self._tables.put(None)
            self._hook.join(timeout=30)
        self.spool.close()

    def drain(self, timeout: float = 30.0) -> bool:
        """Wait until every accepted record is stored (tests, shutdown)."""
        deadline = time.monotonic() + timeout
        while self.spool.pending() and time.monotonic() < deadline:
            time.sleep(0.01)
        return self.spool.pending() == 0

    def _run(self) -> None:
        while not self._stop.is_set():
            after = self.spool.committed_seq
            if not self.spool.wait_for_data(after, timeout=0.2):
                continue
            try:
                self._step(after)
            except Exception:  # the worker must survive; the batch is retried
                log.exception("ingest batch failed; retrying")
                time.sleep(1.0)

    def _step(self, after: int) -> None:
        started = time.perf_counter()
        records = self.spool.read(after, self.settings.batch_size)
        if not records:
            return
        events: list[Event] = []
        rejected: list[Rejected] = []
        for result in _parse(records):
            (events if isinstance(result, Event) else rejected).append(result)  # type: ignore[arg-type]
        for item in rejected:
            self.rejected.inc(source=item.origin)
        deadletters.record(self.db, rejected)
        last = records[-1][0]
        tables, repeats = to_tables(events)
        written = self.store.write_tables(tables, stream=STREAM, position=last)
        written.duplicates += repeats
        self.spool.committed(last)
        for source, count in written.by_source.items():
            self.stored.inc(count, source=source)
        self.batch_seconds.observe(time.perf_counter() - started)
        if self.on_stored is not None and written.stored:
            try:
                self.on_stored(set(written.by_source), [e.id for e in events])
            except Exception:  # detection must never stop ingestion
                log.exception("detection on a stored batch failed")
        if self._hook is not None and written.stored:
            self._tables.put(tables)  # matched on the hook thread; waits when it is 4 behind

    def _run_hook(self, hook: TablesHook) -> None:
        """Intel matching of committed batches, beside the worker (the next batch is parsed
        and stored meanwhile)."""
        while (tables := self._tables.get()) is not None:
            try:
                hook(tables)
            except Exception:  # matching must never stop ingestion
                log.exception("intel matching on a stored batch failed")


def _parse(records: list[tuple[int, SpoolRecord]]) -> Iterator[ParseResult]:
    def key(item: tuple[int, SpoolRecord]) -> tuple[str, str]:
        return item[1].format, item[1].origin

    for (fmt_name, origin), group in groupby(records, key=key):
        items = [record for _, record in group]
        received = from_micros(items[0].received_us) if items[0].received_us \
            else datetime.now(UTC)
        ctx = ParseContext(origin=origin, received=received)
        yield from get_format(fmt_name).parse((r.raw for r in items), ctx)
