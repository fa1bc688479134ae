"""The notifier: dispatch (outbox → deliveries) and send (deliveries → channels), in a loop.

``vigil serve`` runs one :class:`Notifier` in a background thread::

    notifier = Notifier(vigil.db, vigil.settings.notify)
    notifier.start()
    ...
    notifier.stop()

Tests and ``vigil notify run`` call :meth:`Notifier.run_once` instead. A failing pass (the
database away, a bug) is logged and the next pass runs as usual: the notifier never stops
the server, and the server never waits for a channel.
"""

from __future__ import annotations

import random
import threading
from dataclasses import dataclass
from datetime import datetime
from functools import partial

import httpx

from vigil.core import logging as vlog
from vigil.core.config import NotifySettings
from vigil.core.db import StateDB
from vigil.core.timeutil import utcnow
from vigil.people.service import emails_of
from vigil.respond.dispatcher import Dispatcher, Resolver
from vigil.respond.sender import Sender

log = vlog.get("vigil.notify")


@dataclass(frozen=True, slots=True)
class PassReport:
    """What one pass did."""

    events: int
    deliveries: int
    sent: int
    retrying: int
    failed: int
    cursor: int


def http_client(settings: NotifySettings, transport: httpx.BaseTransport | None = None) -> httpx.Client:
    """The HTTP client of the channels: bounded by ``http_timeout``, no redirects followed."""
    return httpx.Client(transport=transport, timeout=httpx.Timeout(settings.http_timeout),
                        follow_redirects=False)


class Notifier:
    """Dispatches outbox events to deliveries and sends them, for one consumer name."""

    def __init__(self, db: StateDB, settings: NotifySettings | None = None, *,
                 transport: httpx.BaseTransport | None = None, resolve: Resolver | None = None,
                 consumer: str = "notify", rng: random.Random | None = None) -> None:
        self.settings = settings or NotifySettings()
        self.client = http_client(self.settings, transport)
        self.dispatcher = Dispatcher(db, self.settings, resolve or partial(emails_of, db), consumer)
        self.sender = Sender(db, self.settings, self.client, rng)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self.passes = 0
        self.failures = 0

    def run_once(self, now: datetime | None = None) -> PassReport:
        """One dispatch pass, then one send pass, at ``now`` (default: the current time)."""
        at = now or utcnow()
        with self._lock:
            dispatched = self.dispatcher.run_once(at)
            sent = self.sender.run_once(at)
        return PassReport(dispatched.events, dispatched.deliveries, sent.sent, sent.retrying,
                          sent.failed, dispatched.cursor)

    def start(self) -> None:
        """Run a pass every ``poll_interval`` seconds in a daemon thread until :meth:`stop`."""
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="vigil-notifier", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.run_once()
            except Exception:
                self.failures += 1
                log.exception("notification pass failed; the next pass runs as usual")
            self.passes += 1
            self._stop.wait(self.settings.poll_interval)

    def stop(self, timeout: float = 30.0) -> None:
        """Stop the loop (a pass under way finishes first) and close the HTTP client."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        self.client.close()

    def close(self) -> None:
        self.stop()
