"""Periodic background jobs of the server (checkpoints, clocks, housekeeping).

Each job runs in its own daemon thread every ``interval`` seconds; an exception is logged and
the job runs again at its next turn, so one failing job never stops the others or the server.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from vigil.core import logging as vlog

log = vlog.get("vigil.periodic")


class Periodic:
    """Run ``job`` every ``interval`` seconds until :meth:`stop`."""

    def __init__(self, name: str, interval: float, job: Callable[[], object],
                 run_at_start: bool = False) -> None:
        self.name = name
        self.interval = interval
        self._job = job
        self._run_at_start = run_at_start
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=f"vigil-{name}", daemon=True)
        self.runs = 0
        self.failures = 0

    def start(self) -> Periodic:
        self._thread.start()
        return self

    def _loop(self) -> None:
        if not self._run_at_start and self._stop.wait(self.interval):
            return
        while True:
            self.run_once()
            if self._stop.wait(self.interval):
                return

    def run_once(self) -> None:
        try:
            self._job()
        except Exception:
            self.failures += 1
            log.exception("periodic job %s failed", self.name)
        finally:
            self.runs += 1

    def stop(self, timeout: float = 10) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)
