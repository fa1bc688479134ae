"""``vigil audit``: read the audit trail, verify it has not been tampered with, sign checkpoints."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from vigil.audit import keys, service
from vigil.cli.common import console, render_rows, state
from vigil.core.timeutil import when_option

audit_app = typer.Typer(help="The tamper-evident audit trail: list, verify, checkpoint.",
                        no_args_is_help=True)

Format = Annotated[str, typer.Option("--format", "-o", help="table, json or csv.")]


@audit_app.command("list")
def list_cmd(
    ctx: typer.Context,
    object_type: Annotated[str | None, typer.Option("--type", help="Only this kind of object.")] = None,
    object_id: Annotated[str | None, typer.Option("--id", help="Only this object id.")] = None,
    actor: Annotated[str | None, typer.Option(help="Only this actor, e.g. user:alice.")] = None,
    since: Annotated[str | None, typer.Option(help="Only records at or after this time.")] = None,
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, max=100000)] = 50,
    output: Format = "table",
) -> None:
    """List audit records, newest first."""
    entries = service.listing(state(ctx).db, object_type=object_type, object_id=object_id,
                              actor=actor, since=when_option(since, "--since"), limit=limit)
    rows = [(e.seq, e.at.strftime("%Y-%m-%d %H:%M:%S"), e.actor, e.action, e.object_type,
             e.object_id, json.dumps(e.before) if e.before else "",
             json.dumps(e.after) if e.after else "") for e in entries]
    render_rows(["seq", "at (UTC)", "actor", "action", "object", "id", "before", "after"], rows,
                output)


@audit_app.command("verify")
def verify_cmd(
    ctx: typer.Context,
    public_key: Annotated[Path | None, typer.Option(
        "--public-key", help="Verify checkpoint signatures with this public key "
        "(default: the instance's own key, when present).")] = None,
) -> None:
    """Check that no audit record was edited, deleted or reordered; exit 1 when one was."""
    vigil = state(ctx)
    default = vigil.key_folder / keys.PUBLIC_NAME
    path = public_key or (default if default.exists() else None)
    public = keys.load_public(path) if path is not None else None
    report = service.verify(vigil.db, public)
    for problem in report.problems:
        console.print(f"[red]TAMPERED[/red] {problem}", highlight=False)
    signed = f"{report.checkpoints} checkpoint(s)" + ("" if public else " (signatures not checked)")
    if report.ok:
        console.print(f"audit chain intact: {report.records} record(s), {signed}", highlight=False)
        return
    console.print(f"audit chain broken: {len(report.problems)} problem(s) in {report.records} "
                  f"record(s), {signed}", highlight=False)
    raise typer.Exit(1)


@audit_app.command("checkpoint")
def checkpoint_cmd(ctx: typer.Context) -> None:
    """Sign the current end of the chain with the instance's key."""
    vigil = state(ctx)
    point = service.checkpoint(vigil.db, vigil.key_folder)
    if point is None:
        console.print("nothing new to sign")
    else:
        console.print(f"signed record {point.seq} ({point.hash[:16]}…) with key {point.key_id}",
                      highlight=False)


def register(app: typer.Typer) -> None:
    app.add_typer(audit_app, name="audit")
