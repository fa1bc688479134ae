"""``vigil serve``: the API, the syslog listeners and the ingest worker in one process."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from typing import Any

import uvicorn

from vigil import __version__
from vigil.api.app import create_app
from vigil.app import Vigil
from vigil.core import logging as vlog
from vigil.core.metrics import Registry
from vigil.core.periodic import Periodic
from vigil.core.timeutil import utcnow
from vigil.detect.catalog import enabled_compiled
from vigil.detect.hunt import select_rules
from vigil.detect.stream import StreamDetector
from vigil.ingest.listeners import start_syslog
from vigil.ingest.runtime import IngestRuntime
from vigil.ingest.spool import Spool
from vigil.intel.live import IntelMatcher
from vigil.respond.notifier import Notifier

log = vlog.get("vigil.server")


def build_runtime(vigil: Vigil, registry: Registry) -> IngestRuntime:
    """Migrate the state database, open the store and the spool, start the worker."""
    vigil.db.upgrade()
    settings = vigil.settings.ingest
    spool = Spool(vigil.settings.spool_dir, max_pending=settings.spool_max_pending,
                  group_commit_ms=settings.spool_group_commit_ms)
    runtime = IngestRuntime(spool, vigil.store, vigil.db, settings, registry)
    detect = vigil.settings.detect
    if detect.streaming:
        runtime.on_stored = StreamDetector(
            vigil.db, vigil.store, suppress_seconds=detect.suppress_seconds,
            reload_seconds=detect.reload_seconds, grouping=vigil.grouping,
            rules=lambda: select_rules(enabled_compiled(vigil.db), detect.min_level,
                                       detect.statuses))
    if vigil.settings.intel.live_matching:
        matcher = IntelMatcher(
            vigil.db, vigil.store, vigil.settings.intel, suppress_seconds=detect.suppress_seconds,
            grouping=vigil.grouping, reload_seconds=detect.reload_seconds)
        matcher.warm()
        runtime.on_tables = matcher
    runtime.start()
    return runtime


def _intel_jobs(vigil: Vigil, runtime: IngestRuntime | None) -> list[Periodic]:
    """Feed pulls when due, false-positive dispositions of intel alerts fed back as sightings,
    and retro-hunts of new indicators (when matching runs)."""
    from vigil.intel import feeds

    intel = vigil.settings.intel

    def pull() -> None:
        import httpx

        with httpx.Client(timeout=httpx.Timeout(60.0, connect=10.0), follow_redirects=True,
                          headers={"User-Agent": f"Vigil/{__version__}"}) as client:
            feeds.pull_due(vigil.db, client, utcnow(), settings=intel)

    from vigil.intel.feedback import record_false_positives

    jobs = [Periodic("intel-feeds", intel.feed_check_seconds, pull, run_at_start=True).start(),
            Periodic("intel-feedback", 60, lambda: record_false_positives(vigil.db)).start()]
    matcher = runtime.on_tables if runtime is not None else None
    if isinstance(matcher, IntelMatcher) and intel.retro_days > 0:
        jobs.append(Periodic("intel-retro", 60, matcher.retro, run_at_start=True).start())
    return jobs


def start_background(vigil: Vigil, runtime: IngestRuntime | None = None) -> list[Periodic | Notifier]:
    """The server's background work: case clocks, audit checkpoints, notifications, feed
    pulls and retro-hunts."""
    from vigil.audit import service as audit
    from vigil.cases import service as cases
    from vigil.cases.policy import Policy

    server = vigil.settings.server
    policy = Policy.from_settings(vigil.settings)
    jobs: list[Periodic | Notifier] = [
        Periodic("clocks", server.clock_check_seconds,
                 lambda: cases.check_clocks(vigil.db, policy=policy), run_at_start=True).start(),
        Periodic("audit-checkpoint", server.audit_checkpoint_minutes * 60,
                 lambda: audit.checkpoint(vigil.db, vigil.key_folder)).start(),
        *_intel_jobs(vigil, runtime),
    ]
    if server.notifications:
        notifier = Notifier(vigil.db, vigil.settings.notify)
        notifier.start()
        jobs.append(notifier)
    return jobs


async def serve_async(vigil: Vigil, host: str, port: int) -> None:
    registry = Registry()
    runtime = build_runtime(vigil, registry)
    background = start_background(vigil, runtime)
    app = create_app(vigil, runtime, registry)
    settings = vigil.settings.ingest
    handles: list[Any] = []
    if settings.syslog_enabled:
        handles = await start_syslog(
            runtime, settings.syslog_host, settings.syslog_port, udp=settings.syslog_udp,
            tcp=settings.syslog_tcp, max_frame=settings.syslog_max_frame,
            tls_cert=settings.syslog_tls_cert, tls_key=settings.syslog_tls_key)
    config = uvicorn.Config(app, host=host, port=port, log_config=None, access_log=False,
                            lifespan="off", http="httptools")
    server = uvicorn.Server(config)
    import anyio.to_thread

    anyio.to_thread.current_default_thread_limiter().total_tokens = vigil.settings.server.threads
    log.info("Vigil listening on http://%s:%s", host, port)
    try:
        await server.serve()
    finally:
        for handle in handles:
            handle.close()
        for job in background:
            job.stop()
        runtime.stop()
        vigil.store.checkpoint()
        vigil.close()


def run_server(vigil: Vigil, host: str | None, port: int | None) -> None:
    """Run until interrupted (SIGINT/SIGTERM stop gracefully)."""
    import uvloop

    server = vigil.settings.server
    with contextlib.suppress(KeyboardInterrupt), asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(serve_async(vigil, host or server.host, port if port is not None else server.port))
    signal.signal(signal.SIGINT, signal.SIG_DFL)
