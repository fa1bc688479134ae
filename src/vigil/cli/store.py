"""``vigil search`` and ``vigil store``: find events, keep and export them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from vigil.cli.common import console, render_rows, state
from vigil.core.errors import InputError
from vigil.core.timeutil import when_option
from vigil.store import retention
from vigil.store.search import SearchRequest, count, run_sql, search

store_app = typer.Typer(help="The event store: sources, retention, export.",
                        no_args_is_help=True)
OUTPUTS = ("table", "json", "csv")




def search_cmd(
    ctx: typer.Context,
    query: Annotated[str, typer.Argument(help="Query, e.g. 'EventID=4625 AND TargetUserName=adm*'; "
                                              "'*' for every event.")] = "",
    since: Annotated[str | None, typer.Option(help="From: ISO time, epoch, or '24h' ago.")] = None,
    until: Annotated[str | None, typer.Option(help="To (exclusive): ISO time, epoch, or '1h' ago.")] = None,
    source: Annotated[list[str] | None, typer.Option(
        "--source", "-s", help="Log source filter, e.g. windows/process_creation (repeatable).")] = None,
    limit: Annotated[int, typer.Option("--limit", "-n", help="At most this many events.")] = 50,
    count_only: Annotated[bool, typer.Option("--count", help="Print only the number of matches.")] = False,
    sql: Annotated[bool, typer.Option("--sql", help="QUERY is one read-only SQL statement.")] = False,
    output: Annotated[str, typer.Option("--output", "-o", help="table, json or csv.")] = "table",
    raw: Annotated[bool, typer.Option("--raw", help="Include the raw record (json output).")] = False,
) -> None:
    """Search stored events with the query language (or read-only SQL with --sql)."""
    if output not in OUTPUTS:
        raise InputError(f"--output must be one of {', '.join(OUTPUTS)}")
    store = state(ctx).store
    if sql:
        columns, rows = run_sql(store, query, limit)
        render_rows(columns, rows, output)
        return
    request = SearchRequest(query=query, since=when_option(since, "--since"),
                            until=when_option(until, "--until"), sources=tuple(source or ()),
                            limit=limit, with_raw=raw)
    if count_only:
        typer.echo(count(store, request))
        return
    hits = search(store, request)
    if output == "json":
        for hit in hits:
            typer.echo(json.dumps({"id": hit.id, "ts": hit.ts.isoformat(), "host": hit.host,
                                   "source": hit.source, "fields": hit.fields,
                                   **({"raw": hit.raw} if raw else {})}, default=str))
        return
    rows = [(h.ts.strftime("%Y-%m-%d %H:%M:%S"), h.host, h.source,
             " ".join(f"{k}={v}" for k, v in list(h.fields.items())[:12])[:300]) for h in hits]
    render_rows(["time (UTC)", "host", "source", "fields"], rows, output)


@store_app.command("sources")
def sources(ctx: typer.Context, output: Annotated[str, typer.Option("--output", "-o")] = "table") -> None:
    """Stored events per log source."""
    counts = state(ctx).store.counts()
    render_rows(["log source", "events"], sorted(counts.items()), output)


@store_app.command("export")
def export(ctx: typer.Context, parquet: Annotated[Path, typer.Option(
        "--parquet", help="Folder to write Parquet files to (one folder per source and day).")]) -> None:
    """Export every stored event as Parquet."""
    written = state(ctx).store.export_parquet(parquet)
    render_rows(["log source", "events"], sorted(written.items()), "table")
    console.print(f"{sum(written.values()):,} events written under {parquet}")


@store_app.command("retention")
def apply_retention(ctx: typer.Context) -> None:
    """Delete events older than their source's retention (store.retention_days and store.retention)."""
    vigil = state(ctx)
    results = retention.apply(vigil.store, vigil.settings.store.retention_days,
                              vigil.settings.store.retention)
    render_rows(["log source", "days", "deleted before", "deleted"],
                [(r.source, r.days, r.cutoff, r.deleted) for r in results], "table")


def register(app: typer.Typer) -> None:
    app.command("search")(search_cmd)
    app.add_typer(store_app, name="store")
