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
    result = load_demo(vigil)
    console.print(f"demo data: {result.stored:,} events stored in {vigil.settings.data_dir}, "
                  f"{result.alerts} new alerts from the demo rules (see `vigil alerts list`)")
    if result.case_id is not None:
        console.print(f"a case mid-investigation: `vigil cases show {result.case_id}`")
    console.print("demo users (sign in with POST /api/v1/auth/login):")
    for user in result.users:
        console.print(f"  {user.username:<7} {user.role:<9} {user.team:<10} password "
                      f"{user.password}", highlight=False)
    typer.echo(f"collector token for source 'demo': {result.token}")
    if not no_serve:
        run_server(vigil, host=None, port=port)


def register(app: typer.Typer) -> None:
    app.command("serve")(serve)
    app.command("demo")(demo)
