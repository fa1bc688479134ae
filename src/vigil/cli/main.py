"""The ``vigil`` command: one entry point for every context's commands.

User mistakes end in one clear line on stderr and exit code 2, never a traceback.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from vigil import __version__
from vigil.cli import (
    admin,
    alerts,
    audit,
    cases,
    hunt,
    ingest,
    intel,
    metrics,
    notify,
    rules,
    serve,
    store,
    users,
)
from vigil.cli.common import State
from vigil.core.errors import VigilError

app = typer.Typer(
    name="vigil",
    help="Vigil: collect logs, detect attacks, work incidents, prove compliance.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"vigil {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    ctx: typer.Context,
    data_dir: Annotated[Path | None, typer.Option(
        "--data-dir", "-d", envvar="VIGIL_DATA_DIR",
        help="Data folder (default ./vigil-data).")] = None,
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                          help="Print the version and exit.")] = False,
) -> None:
    """Vigil: one open-source SecOps platform for security and operations teams."""
    ctx.obj = State(data_dir)
    ctx.call_on_close(ctx.obj.close)


admin.register(app)
ingest.register(app)
store.register(app)
hunt.register(app)
rules.register(app)
alerts.register(app)
cases.register(app)
metrics.register(app)
users.register(app)
audit.register(app)
notify.register(app)
intel.register(app)
serve.register(app)


def run() -> None:
    """Console entry point."""
    try:
        app()
    except VigilError as exc:
        typer.secho(f"error: {exc}", err=True, fg="red")
        sys.exit(2)
    except KeyboardInterrupt:
        typer.secho("interrupted", err=True)
        sys.exit(130)


if __name__ == "__main__":
    run()
