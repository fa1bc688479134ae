"""``vigil alerts``: the alerts detections produced."""

from __future__ import annotations

from typing import Annotated

import typer

from vigil.cli.common import render_rows, state
from vigil.detect import alerts


def alerts_cmd(
    ctx: typer.Context,
    limit: Annotated[int, typer.Option("--limit", "-n")] = 50,
    rule: Annotated[str | None, typer.Option(help="Only alerts of this rule id.")] = None,
    output: Annotated[str, typer.Option("--output", "-o", help="table, json or csv.")] = "table",
) -> None:
    """List alerts, newest first (with the rule author, as the rule license requires)."""
    rows = [(a.id, a.last_seen.strftime("%Y-%m-%d %H:%M:%S"), a.level, a.rule_title, a.host or "",
             a.count, a.status, a.rule_author or "") for a in alerts.listing(state(ctx).db, limit, rule)]
    render_rows(["id", "last seen (UTC)", "level", "rule", "host", "count", "status", "rule author"],
                rows, output)


def register(app: typer.Typer) -> None:
    app.command("alerts")(alerts_cmd)
