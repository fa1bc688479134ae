"""``vigil ingest`` and ``vigil tokens``: files in, bearer tokens out."""

from __future__ import annotations

import os
from datetime import datetime
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from vigil.cli.common import console, render_rows, state
from vigil.cli.users import OutputOption, output_format
from vigil.core.auth import Role, cli_principal
from vigil.core.errors import InputError
from vigil.events import get_format
from vigil.ingest import deadletters
from vigil.ingest.batches import ParseOptions
from vigil.ingest.files import IngestSummary, ingest_inputs
from vigil.ingest.inputs import expand
from vigil.people import tokens
from vigil.people.tokens import Scope

tokens_app = typer.Typer(help="Bearer tokens for the HTTP collector and the API.",
                         no_args_is_help=True)


def ingest(
    ctx: typer.Context,
    paths: Annotated[list[str] | None, typer.Argument(
        help="Files, folders or glob patterns (.gz and .zip are opened).")] = None,
    fmt: Annotated[str | None, typer.Option("--format", "-f",
                                            help="Input format (see `vigil formats`).")] = None,
    workers: Annotated[int, typer.Option(help="Parser processes (default: one per core).")] = 0,
    timestamp_field: Annotated[str | None, typer.Option(
        help="Field holding the event time (JSON formats).")] = None,
    source: Annotated[str | None, typer.Option(
        help="Log source product/category/service for every event.")] = None,
    show_rejected: Annotated[bool, typer.Option(
        "--show-rejected", help="List the dead letters instead of ingesting.")] = False,
    limit: Annotated[int, typer.Option(help="Rows for --show-rejected.")] = 50,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
    intel: Annotated[bool, typer.Option(
        "--intel/--no-intel", help="Match the stored events against the active threat-intel "
        "indicators (default: the intel.live_matching setting).")] = True,
) -> None:
    """Parse files and store their events; unparseable records go to the dead letters.
    Stored batches are matched against the active threat-intel indicators (hits are alerts)."""
    vigil = state(ctx)
    if show_rejected:
        _show_rejected(vigil.db, limit)
        return
    if not paths:
        raise InputError("give at least one file, folder or glob pattern to ingest")
    if fmt is not None:
        get_format(fmt)  # an unknown format is a mistake of the whole command, said at once
    refs = expand(paths)
    options = ParseOptions(format=fmt,
                           max_record=vigil.settings.ingest.max_record_bytes,
                           timestamp_field=timestamp_field, source=source)
    workers = workers or max(1, os.cpu_count() or 1)
    store, db = vigil.store, vigil.db
    with Progress(TextColumn("[bold]ingest"), BarColumn(), MofNCompleteColumn(),
                  TextColumn("{task.fields[events]:,} records · {task.fields[rate]:,.0f}/s"),
                  TimeElapsedColumn(), console=console, disable=quiet,
                  transient=False) as progress:
        task = progress.add_task("inputs", total=len(refs), events=0, rate=0.0)

        def advance(records: int, finished: int) -> None:
            elapsed = progress.tasks[0].elapsed or 1e-9
            progress.update(task, completed=finished, events=records, rate=records / elapsed)

        matcher = None
        if intel and vigil.settings.intel.live_matching:
            from vigil.intel.live import IntelMatcher

            matcher = IntelMatcher(db, store, vigil.settings.intel,
                                   suppress_seconds=vigil.settings.detect.suppress_seconds,
                                   grouping=vigil.grouping)
        summary = ingest_inputs(refs, store, db, options, workers=workers, progress=advance,
                                on_written=matcher)
    _print_summary(summary)
    if matcher is not None:
        found = matcher.totals
        if found.hits or found.alerts_created:
            console.print(f"threat intel: {found.hits:,} matches, {found.alerts_created:,} new alerts")
        matcher.close()


def _print_summary(summary: IngestSummary) -> None:
    console.print(
        f"{summary.inputs} inputs, {summary.records:,} records in {summary.seconds:.1f} s "
        f"({summary.rate:,.0f}/s): [green]{summary.stored:,} stored[/green], "
        f"{summary.duplicates:,} duplicates skipped, "
        f"[{'red' if summary.rejected else 'green'}]{summary.rejected:,} rejected[/]")
    if summary.by_source:
        rows = sorted(summary.by_source.items(), key=lambda kv: -kv[1])
        render_rows(["log source", "stored"], [(k, f"{v:,}") for k, v in rows], "table")
    if summary.rejected:
        console.print("see the rejected records with `vigil ingest --show-rejected`")


def _show_rejected(db: object, limit: int) -> None:
    rows = deadletters.listing(db, limit)  # type: ignore[arg-type]
    render_rows(
        ["id", "received", "origin", "line", "format", "size", "reason", "raw (start)"],
        [(d.id, d.received_at.strftime("%Y-%m-%d %H:%M:%S"), d.origin, d.line, d.format, d.size,
          d.reason, d.raw[:80].decode("utf-8", "replace")) for d in rows],
        "table", title=f"dead letters ({deadletters.count(db)} in all)")  # type: ignore[arg-type]


@tokens_app.command("create")
def token_create(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Who uses it, e.g. 'web-frontends'.")],
    scope: Annotated[list[str] | None, typer.Option(
        "--scope", "-s",
        help="What it may do, repeatable: ingest (send events), read (search events, read "
             "alerts and cases) or a permission such as alerts:write. Default: ingest for "
             "service tokens, the whole role otherwise.")] = None,
    role: Annotated[str, typer.Option(
        help="Role of the token: service, analyst, responder, auditor or admin "
             "(not with --user).")] = Role.SERVICE.value,
    user: Annotated[str | None, typer.Option(
        help="A personal token of this user: acts as them, with their role.")] = None,
    expires_days: Annotated[int | None, typer.Option(
        help="Days until the token ends on its own (default: never).")] = None,
) -> None:
    """Create a bearer token; it is shown once only (the last line printed)."""
    if user is not None and role != Role.SERVICE.value:
        raise InputError("--role and --user do not go together: a personal token has its user's role")
    scopes = scope or ([Scope.INGEST.value] if role == Role.SERVICE.value and user is None else None)
    created = tokens.issue(state(ctx).db, cli_principal(), name, role=role, scopes=scopes,
                           user=user, expires_days=expires_days)
    info = created.info
    holder = f"user {info.user}" if info.user else f"role {info.role.value}"
    console.print(f"token {info.id} [bold]{name}[/bold] ({holder}; {_scopes_text(info)}"
                  f"{'; expires ' + _when(info.expires_at) if info.expires_at else ''}) "
                  "shown once, keep it safe:", highlight=False)
    typer.echo(created.token)


def _when(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M") if moment else ""


def _scopes_text(info: tokens.TokenInfo) -> str:
    return "all of the role" if info.scopes is None else " ".join(info.scopes)


@tokens_app.command("list")
def token_list(
    ctx: typer.Context,
    output: OutputOption = "table",
    active: Annotated[bool, typer.Option("--active", help="Only tokens not revoked.")] = False,
) -> None:
    """List tokens (never the tokens themselves)."""
    rows = [(t.id, t.name, t.role.value, _scopes_text(t), t.user, _when(t.created_at),
             _when(t.expires_at), _when(t.last_used_at), _when(t.revoked_at))
            for t in tokens.listing(state(ctx).db) if t.revoked_at is None or not active]
    render_rows(["id", "name", "role", "scopes", "user", "created", "expires", "last used",
                 "revoked"], rows, output_format(output))


@tokens_app.command("revoke")
def token_revoke(ctx: typer.Context, token_id: Annotated[int, typer.Argument()]) -> None:
    """Revoke a token at once."""
    tokens.revoke(state(ctx).db, token_id, actor=cli_principal())
    console.print(f"token {token_id} revoked")


def register(app: typer.Typer) -> None:
    app.command("ingest")(ingest)
    app.add_typer(tokens_app, name="tokens")
