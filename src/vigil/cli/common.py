"""What every CLI command shares: the instance state and output helpers."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from vigil.app import Vigil
from vigil.core import logging as vlog

console = Console()
err_console = Console(stderr=True)


class State:
    """Lazily opened instance for one CLI invocation."""

    def __init__(self, data_dir: Path | None) -> None:
        self.data_dir = data_dir
        self._vigil: Vigil | None = None

    @property
    def vigil(self) -> Vigil:
        if self._vigil is None:
            self._vigil = Vigil.load(self.data_dir)
            vlog.setup(self._vigil.settings.log_level, self._vigil.settings.log_format)
        return self._vigil

    def close(self) -> None:
        if self._vigil is not None:
            self._vigil.close()


def state(ctx: typer.Context) -> Vigil:
    obj = ctx.obj
    assert isinstance(obj, State)
    return obj.vigil


def render_rows(columns: Sequence[str], rows: Sequence[Sequence[Any]], output: str,
                title: str | None = None) -> None:
    """Print rows as a table, JSON lines or CSV."""
    if output == "json":
        for row in rows:
            typer.echo(json.dumps(dict(zip(columns, row, strict=True)), default=str))
    elif output == "csv":
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(columns)
        writer.writerows(["" if v is None else v for v in row] for row in rows)
        typer.echo(buffer.getvalue(), nl=False)
    else:
        table = Table(title=title, show_lines=False)
        for column in columns:
            table.add_column(column, overflow="fold")
        for row in rows:
            table.add_row(*("" if v is None else str(v) for v in row))
        console.print(table)
