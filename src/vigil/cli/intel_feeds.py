"""``vigil intel feeds``: configured feeds (TAXII 2.1, STIX, MISP, CSV, plain lists), pulled now
or on the server's schedule, and their run history.

A feed's secret (a TAXII password, an API key) is never an argument: it is read from an
environment variable (``--secret-env``) and never shown again.
"""

from __future__ import annotations

import json
import os
from typing import TYPE_CHECKING, Annotated

import orjson
import typer

from vigil import __version__
from vigil.cli.common import console, render_rows, state
from vigil.core.auth import cli_principal
from vigil.core.errors import InputError

if TYPE_CHECKING:  # the feed machinery (httpx, TAXII, parsers) loads when a feed command runs
    import httpx

    from vigil.intel.feeds import FeedRunView, FeedView

feeds_app = typer.Typer(help="Feeds: TAXII 2.1 collections, STIX bundles, MISP feeds, CSV and "
                        "plain lists, pulled on a schedule.", no_args_is_help=True)

Json = Annotated[bool, typer.Option("--json", help="JSON instead of a table.")]
Name = Annotated[str, typer.Argument(help="Feed name.")]


def http_client() -> httpx.Client:
    """The client feed pulls go through: bounded waits, redirects followed, Vigil's agent."""
    import httpx

    return httpx.Client(timeout=httpx.Timeout(60.0, connect=10.0), follow_redirects=True,
                        headers={"User-Agent": f"Vigil/{__version__}"})


def _when(value: object) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S") if hasattr(value, "strftime") else ""


def feed_json(view: FeedView) -> dict[str, object]:
    """A JSON-ready mapping of a feed (settings as given; the secret only as ``has_secret``)."""
    data: dict[str, object] = orjson.loads(orjson.dumps({
        "id": view.id, "name": view.name, "kind": view.kind.value, "url": view.url,
        "config": view.config.to_json(), "has_secret": view.has_secret,
        "interval_minutes": view.interval_minutes, "enabled": view.enabled, "cursor": view.cursor,
        "etag": view.etag, "last_modified": view.last_modified, "last_pull_at": view.last_pull_at,
        "last_ok_at": view.last_ok_at, "last_error": view.last_error,
        "next_pull_at": view.next_pull_at, "created_at": view.created_at,
        "updated_at": view.updated_at}, option=orjson.OPT_UTC_Z))
    return data


def _secret(env_name: str | None) -> str | None:
    if not env_name:
        return None
    secret = os.environ.get(env_name)
    if not secret:
        raise InputError(f"--secret-env: the environment variable {env_name} is not set")
    return secret


@feeds_app.command("add")
def add_cmd(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Feed name (letters, digits, '.', '_', '-').")],
    kind: Annotated[str, typer.Argument(help="taxii, stix, misp, misp-event, csv or text.")],
    url: Annotated[str, typer.Argument(help="URL (or a local file or folder, except for taxii).")],
    preset: Annotated[str | None, typer.Option(
        help="csv/text: column mapping (urlhaus, feodo, threatfox, malwarebazaar, spamhaus-drop, "
             "plain).")] = None,
    collection: Annotated[str | None, typer.Option(
        help="taxii: the collection id, when URL is the API root.")] = None,
    interval: Annotated[int, typer.Option(help="Minutes between scheduled pulls.")] = 60,
    secret_env: Annotated[str | None, typer.Option(
        help="Read the password or API key ('user:password' for basic auth) from this "
             "environment variable.")] = None,
    auth: Annotated[str | None, typer.Option(help="How the secret is sent: basic, bearer or header.")]
    = None,
    auth_header: Annotated[str | None, typer.Option(help="The header name for --auth header.")] = None,
    tlp: Annotated[str | None, typer.Option(help="TLP of indicators the feed leaves unmarked.")] = None,
    confidence: Annotated[int | None, typer.Option(
        help="Confidence (0-100) of indicators the feed gives none.")] = None,
    disabled: Annotated[bool, typer.Option("--disabled", help="Add it switched off.")] = False,
) -> None:
    """Configure a feed, e.g. ``feeds add feodo csv https://.../ipblocklist.csv --preset feodo``."""
    from vigil.intel import feeds

    options = {"preset": preset, "collection": collection, "auth": auth, "auth_header": auth_header,
               "tlp": tlp, "confidence": confidence}
    config = {k: v for k, v in options.items() if v is not None}
    view = feeds.add_feed(state(ctx).db, name, kind, url, config=config, secret=_secret(secret_env),
                          interval_minutes=interval, enabled=not disabled, actor=cli_principal().actor)
    typer.echo(f"feed {view.name} added ({view.kind.value}, every {view.interval_minutes} min"
               f"{', disabled' if not view.enabled else ''})")


@feeds_app.command("list")
def list_cmd(ctx: typer.Context, as_json: Json = False) -> None:
    """The feeds, with their last pull and error."""
    from vigil.intel import feeds

    found = feeds.list_feeds(state(ctx).db)
    if as_json:
        for view in found:
            typer.echo(json.dumps(feed_json(view)))
        return
    render_rows(["name", "kind", "url", "every (min)", "enabled", "last pull (UTC)", "last ok (UTC)",
                 "last error"],
                [(f.name, f.kind.value, f.url, f.interval_minutes, "yes" if f.enabled else "no",
                  _when(f.last_pull_at), _when(f.last_ok_at), f.last_error or "") for f in found],
                "table")
    if not found:
        console.print("no feeds: add one with 'vigil intel feeds add NAME KIND URL'", highlight=False)


@feeds_app.command("show")
def show_cmd(ctx: typer.Context, name: Name, as_json: Json = False) -> None:
    """One feed: its settings (never the secret), state and last runs."""
    from vigil.intel import feeds

    vigil = state(ctx)
    view = feeds.get_feed(vigil.db, name)
    data = feed_json(view)
    if as_json:
        typer.echo(json.dumps(data))
        return
    rows = [(k, json.dumps(v) if isinstance(v, dict) else "" if v is None else
             ("yes" if v else "no") if isinstance(v, bool) else v) for k, v in data.items()]
    render_rows(["field", "value"], rows, "table")
    _print_runs(feeds.feed_runs(vigil.db, name, limit=5), title="last runs")


def _print_runs(runs: list[FeedRunView], title: str | None = None) -> None:
    render_rows(["id", "started (UTC)", "status", "fetched", "added", "updated", "problems", "error"],
                [(r.id, _when(r.started_at), r.status.value, r.fetched, r.added, r.updated, r.problems,
                  r.error or "") for r in runs], "table", title=title)


@feeds_app.command("runs")
def runs_cmd(ctx: typer.Context, name: Name,
             limit: Annotated[int, typer.Option("--limit", "-n", help="At most this many, newest first.")]
             = 20, as_json: Json = False) -> None:
    """A feed's pulls, newest first: status, counts and errors."""
    from vigil.intel import feeds

    runs = feeds.feed_runs(state(ctx).db, name, limit=limit)
    if as_json:
        for run in runs:
            typer.echo(orjson.dumps({"id": run.id, "feed": run.feed, "started_at": run.started_at,
                                     "finished_at": run.finished_at, "status": run.status.value,
                                     "fetched": run.fetched, "added": run.added,
                                     "updated": run.updated, "problems": run.problems,
                                     "error": run.error}, option=orjson.OPT_UTC_Z).decode())
        return
    _print_runs(runs)


@feeds_app.command("pull")
def pull_cmd(
    ctx: typer.Context,
    names: Annotated[list[str] | None, typer.Argument(help="Feeds to pull (default: every enabled feed).",
                                                      show_default=False)] = None,
    full: Annotated[bool, typer.Option("--full", help="Read everything again, not only what is new.")]
    = False,
    retro: Annotated[bool, typer.Option(
        "--retro/--no-retro", help="Then match new indicators against the stored events.")] = True,
) -> None:
    """Pull feeds now. A feed that fails keeps what it had (its error is recorded); the command
    then exits with code 1."""
    from vigil.cli.intel import retro_after_import
    from vigil.intel import feeds
    from vigil.intel.feeds import FeedRunStatus

    vigil = state(ctx)
    chosen = names or [f.name for f in feeds.list_feeds(vigil.db) if f.enabled]
    if not chosen:
        typer.echo("no enabled feeds to pull")
        return
    failed, changed = 0, 0
    with http_client() as client:
        for name in chosen:
            run = feeds.pull(vigil.db, name, client, actor=cli_principal().actor,
                             settings=vigil.settings.intel, full=full)
            if run.status is FeedRunStatus.FAILED:
                failed += 1
                typer.secho(f"feed {name}: failed: {run.error}", err=True, fg="red")
                continue
            changed += len(run.indicator_ids)
            typer.echo(f"feed {name}: {run.status.value}, {run.fetched} fetched, {run.added} added, "
                       f"{run.updated} updated, {run.problems} problems")
            for message in run.messages:
                typer.echo(f"  problem: {message}")
    if retro and changed:
        retro_after_import(vigil)
    if failed:
        raise typer.Exit(1)


@feeds_app.command("remove")
def remove_cmd(ctx: typer.Context, name: Name) -> None:
    """Remove a feed and its run history (its indicators stay, with their sources)."""
    from vigil.intel import feeds

    feeds.remove_feed(state(ctx).db, name, actor=cli_principal().actor)
    typer.echo(f"feed {name} removed")


def register(app: typer.Typer) -> None:
    """Add ``feeds`` to ``vigil intel``."""
    app.add_typer(feeds_app, name="feeds")
