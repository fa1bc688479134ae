"""Streaming detection: every batch the ingest worker commits is evaluated at once."""

from __future__ import annotations

import time
from collections.abc import Callable

from vigil.core import logging as vlog
from vigil.core.db import StateDB
from vigil.detect import alerts
from vigil.detect.engine import Engine, EngineStats
from vigil.detect.types import CompiledRule
from vigil.store.duck import EventStore
from vigil.store.schema import ID, quote

log = vlog.get("vigil.detect.stream")


class StreamDetector:
    """The hook the ingest runtime calls after each commit (see ``IngestRuntime.on_stored``)."""

    def __init__(self, db: StateDB, store: EventStore, *, suppress_seconds: int = 3600,
                 reload_seconds: float = 5.0,
                 rules: Callable[[], list[CompiledRule]] | None = None) -> None:
        self.db = db
        self._rules = rules
        self.store = store
        self.suppress_seconds = suppress_seconds
        self.reload_seconds = reload_seconds
        self.stats = EngineStats()
        self._engine: Engine | None = None
        self._loaded_at = 0.0

    def engine(self) -> Engine:
        """The engine with the enabled rules, reloaded every ``reload_seconds``."""
        now = time.monotonic()
        if self._engine is None or now - self._loaded_at >= self.reload_seconds:
            if self._rules is not None:
                self._engine = Engine(self._rules())
            else:
                from vigil.detect.catalog import enabled_compiled

                self._engine = Engine(enabled_compiled(self.db))
            self._loaded_at = now
        return self._engine

    def __call__(self, sources: set[str], ids: list[str]) -> None:
        engine = self.engine()
        if not engine.rules:
            return
        scope = f"{quote(ID)} IN (SELECT unnest(?::VARCHAR[]))"
        found = list(engine.run(self.store, scope, [ids], self.stats, sources))
        if found:
            created = alerts.record(self.db, found, self.suppress_seconds)
            log.info("%d detections, %d new alerts", len(found), created)
