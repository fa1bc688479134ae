"""``vigil serve`` and ``vigil demo``: run the server (API, listeners, workers)."""

from __future__ import annotations

from typing import Annotated

import typer


def serve(
    ctx: typer.Context,
    host: Annotated[str | None, typer.Option(help="Address to listen on.")] = None,
    port: Annotated[int | None, typer.Option(help="HTTP port (default 8080).")] = None,
) -> None:
    """Run Vigil: REST API, HTTP collector, syslog listener and the ingest worker."""
    from vigil.api.server import run_server
    from vigil.cli.common import state

    run_server(state(ctx), host=host, port=port)


def demo(
    ctx: typer.Context,
    port: Annotated[int | None, typer.Option(help="HTTP port (default 8080).")] = None,
    no_serve: Annotated[bool, typer.Option("--no-serve", help="Load the demo data only.")] = False,
) -> None:
    """Load demo events into the data folder, then start the server."""
    from vigil.api.server import run_server
    from vigil.cli.common import console, state
    from vigil.demo import load_demo

    vigil = state(ctx)
    stored, created, token = load_demo(vigil)
    console.print(f"demo data: {stored:,} events stored in {vigil.settings.data_dir}, "
                  f"{created} alerts from the demo rules (see `vigil alerts`)")
    console.print(f"collector token for source 'demo': {token}")
    if not no_serve:
        run_server(vigil, host=None, port=port)


def register(app: typer.Typer) -> None:
    app.command("serve")(serve)
    app.command("demo")(demo)
