"""``vigil config``, ``vigil db`` and ``vigil formats``."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from vigil.cli.common import console, render_rows, state
from vigil.core.db import current_revision
from vigil.events import all_formats

config_app = typer.Typer(help="Show the configuration.", no_args_is_help=True)
db_app = typer.Typer(help="The state database (migrations).", no_args_is_help=True)


@config_app.command("show")
def config_show(ctx: typer.Context, as_json: Annotated[bool, typer.Option(
        "--json", help="Print JSON instead of TOML-like text.")] = False) -> None:
    """Print the settings in force (defaults, vigil.toml, VIGIL_* variables)."""
    settings = state(ctx).settings
    data = settings.model_dump(mode="json")
    data["state_url"] = settings.resolved_state_url
    if as_json:
        typer.echo(json.dumps(data, indent=2))
        return
    for key, value in data.items():
        if isinstance(value, dict):
            typer.echo(f"\n[{key}]")
            for sub, subvalue in value.items():
                typer.echo(f"{sub} = {json.dumps(subvalue)}")
        else:
            typer.echo(f"{key} = {json.dumps(value)}")


@db_app.command("upgrade")
def db_upgrade(ctx: typer.Context) -> None:
    """Apply every pending migration to the state database."""
    vigil = state(ctx)
    revision = vigil.db.upgrade()
    console.print(f"state database at revision [bold]{revision}[/bold]")


@db_app.command("status")
def db_status(ctx: typer.Context) -> None:
    """Show the migration revision of the state database."""
    vigil = state(ctx)
    from vigil.core.db import make_engine

    engine = make_engine(vigil.settings.resolved_state_url)
    console.print(f"revision: {current_revision(engine) or 'none (run vigil db upgrade)'}")
    engine.dispose()


def formats(output: Annotated[str, typer.Option("--output", "-o",
                                                help="table, json or csv")] = "table") -> None:
    """List the input formats Vigil can parse (for --format)."""
    rows = [(f.name, f.framing.value, f.description) for f in all_formats()]
    render_rows(["format", "framing", "description"], rows, output)


def register(app: typer.Typer) -> None:
    app.add_typer(config_app, name="config")
    app.add_typer(db_app, name="db")
    app.command("formats")(formats)
