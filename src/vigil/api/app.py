"""The FastAPI application: health, metrics, the collector and the event API."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.responses import PlainTextResponse

from vigil import __version__
from vigil.api import (
    alerts,
    audit,
    auth,
    cases,
    errors,
    events,
    incidents,
    ingest,
    intel,
    intel_feeds,
    notify,
    users,
)
from vigil.api import metrics as kpis
from vigil.app import Vigil
from vigil.core.metrics import Registry
from vigil.ingest.runtime import IngestRuntime


def create_app(vigil: Vigil, runtime: IngestRuntime, registry: Registry) -> FastAPI:
    """The application for one running instance."""
    app = FastAPI(title="Vigil", version=__version__,
                  description="Vigil REST API: events in, events out.")
    app.state.vigil = vigil
    app.state.runtime = runtime
    errors.install(app)
    app.include_router(ingest.router)
    app.include_router(events.router)
    for module in (alerts, incidents, cases, kpis, auth, users, audit, notify, intel, intel_feeds):
        app.include_router(module.router)

    @app.get("/healthz", tags=["health"])
    def health() -> dict[str, object]:
        """Liveness and the basic figures (no secrets; no token needed)."""
        return {"status": "ok", "version": __version__, "spool_depth": runtime.spool.pending()}

    @app.get("/metrics", tags=["health"], response_class=PlainTextResponse)
    def metrics() -> PlainTextResponse:
        """Vigil's own health in the Prometheus text format."""
        return PlainTextResponse(registry.render(),
                                 media_type="text/plain; version=0.0.4; charset=utf-8")

    return app
