"""``vigil intel``: threat intelligence from the command line.

Import feed files (STIX 2.1 bundles, MISP events, CSV with a preset, plain lists), search,
show and list indicators, record sightings, revoke, count, run retro-hunts over the stored
events, export blocklists for firewalls and IDS, and manage allowlists (``vigil intel
allowlists``) and feeds (``vigil intel feeds``). Whoever runs the command holds the data
folder and acts as an admin; the audit trail names them by their operating-system account.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer

from vigil.app import Vigil
from vigil.cli import intel_feeds
from vigil.cli.common import console, err_console, render_rows, state
from vigil.core.auth import cli_principal
from vigil.core.errors import InputError, StoreBusyError, VigilError
from vigil.intel import lists
from vigil.intel import service as intel
from vigil.intel.reading import IndicatorFilter
from vigil.intel.service import ImportFormat, ImportReport
from vigil.intel.types import TLP, IndicatorType, IndicatorView, SightingKind

intel_app = typer.Typer(help="Threat intelligence: import, search, show, list, sightings, "
                        "retro-hunts, exports, allowlists and feeds.", no_args_is_help=True)
allowlists_app = typer.Typer(help="Allowlists (MISP warninglist format): values never alerted "
                             "on nor exported.", no_args_is_help=True)

MAX_PROBLEMS = 20
EXPORT_FORMATS = ("nftables", "iptables", "ipset", "suricata-rules", "suricata-dataset", "rpz", "zeek",
                  "csv", "plain", "wazuh-cdb", "stix", "misp")
"""For the help text only (the exports registry is loaded by the export command alone)."""
MIB = 1024 * 1024
Json = Annotated[bool, typer.Option("--json", help="JSON instead of a table.")]
Types = Annotated[list[str] | None, typer.Option(
    "--type", "-t", help=f"Indicator type (repeat for more): {', '.join(t.value for t in IndicatorType)}.")]


def _types(values: Sequence[str] | None) -> tuple[IndicatorType, ...]:
    return tuple(IndicatorType.parse(v) for v in values or ())


def _when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S") if value else ""


def _yes(flag: bool) -> str:
    return "yes" if flag else "no"


def _read(path: Path, max_bytes: int) -> bytes:
    """The bytes of a file given on the command line; InputError when it cannot be read."""
    try:
        size = path.stat().st_size
        if size > max_bytes:
            raise InputError(f"{path}: larger than {max_bytes // MIB} MiB (intel.max_download_mb)")
        return path.read_bytes()
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise InputError(f"{path}: is a folder, not a file") from None
    except OSError as exc:
        raise InputError(f"{path}: cannot read: {exc.strerror or exc}") from None


def _print_views(views: Sequence[IndicatorView], as_json: bool) -> None:
    if as_json:
        for view in views:
            typer.echo(json.dumps(intel.view_json(view)))
        return
    rows = [(v.id, v.type.value, v.value, f"{v.score:.0f}", _yes(v.active), v.confidence,
             v.tlp.value if v.tlp else "", ", ".join(s.name for s in v.sources),
             v.allowlisted or "") for v in views]
    render_rows(["id", "type", "value", "score", "active", "confidence", "tlp", "sources",
                 "allowlisted"], rows, "table")


# -- import ------------------------------------------------------------------------------------


def _print_report(path: Path, report: ImportReport) -> None:
    result = report.result
    typer.echo(f"{path.name} ({report.format.value}): {report.read} read, {result.added} added, "
               f"{result.updated} updated, {result.unchanged} unchanged, {result.allowlisted} "
               f"allowlisted, {report.skipped} skipped, "
               f"{len(report.problems) + len(result.problems)} problems")
    problems = [*report.problems, *result.problems]
    for line in problems[:MAX_PROBLEMS]:
        typer.echo(f"  problem: {line}")
    if len(problems) > MAX_PROBLEMS:
        typer.echo(f"  ... and {len(problems) - MAX_PROBLEMS} more problems")


def _import_format(value: str | None) -> ImportFormat | None:
    if value is None:
        return None
    try:
        return ImportFormat(value.strip().lower())
    except ValueError:
        raise InputError(f"--format must be one of {', '.join(f.value for f in ImportFormat)}, "
                         f"not {value!r}") from None


def _retro_hunt(vigil: Vigil, *, days: int | None = None, since_last: bool = True) -> None:
    """Match indicators against the stored events and print what it found."""
    from vigil.intel.live import IntelMatcher

    store = vigil.store
    matcher = IntelMatcher(vigil.db, store, vigil.settings.intel,
                           suppress_seconds=vigil.settings.detect.suppress_seconds,
                           grouping=vigil.grouping)
    try:
        result = matcher.retro(days=days, since_last=since_last)
    finally:
        matcher.close()
    typer.echo(f"retro-hunt: {result.hits} hits on {len(result.indicators)} indicators, "
               f"{result.alerts_created} alerts created, {result.alerts_updated} updated "
               f"({result.seconds:.1f} s)")


def retro_after_import(vigil: Vigil) -> None:
    """The retro-hunt after an import or a pull: now if the event store is free, else by the
    running server."""
    if vigil.settings.intel.retro_days <= 0:
        typer.echo("retro-hunt: off (intel.retro_days is 0)")
        return
    if not vigil.settings.events_path.exists():
        typer.echo("retro-hunt: no events stored yet")
        return
    try:
        _retro_hunt(vigil)
    except StoreBusyError:
        typer.echo("retro-hunt: the event store is in use by the running server, which runs the "
                   "retro-hunt of new indicators within a minute")


@intel_app.command("import")
def import_cmd(
    ctx: typer.Context,
    files: Annotated[list[Path], typer.Argument(
        help="Feed files to import (each stored whole or not at all).", show_default=False)],
    fmt: Annotated[str | None, typer.Option(
        "--format", "-f", help="stix, misp, csv or text (default: detected).")] = None,
    preset: Annotated[str | None, typer.Option(
        help="Column mapping of a CSV or list: urlhaus, feodo, threatfox, malwarebazaar, "
             "spamhaus-drop, plain.")] = None,
    source: Annotated[str | None, typer.Option(
        help="The source the indicators are recorded under (default: the file name).")] = None,
    retro: Annotated[bool, typer.Option(
        "--retro/--no-retro", help="Then match new indicators against the stored events.")] = True,
) -> None:
    """Import feed files: STIX 2.1 bundles, MISP events, CSV (with --preset) or plain lists.

    A file that does not parse as its format stores nothing and ends the command with exit
    code 2 (the other files are still imported)."""
    vigil = state(ctx)
    settings, kind, failed, changed = vigil.settings.intel, _import_format(fmt), 0, 0
    for path in files:
        try:
            data = _read(path, settings.max_download_mb * MIB)
            report = intel.import_bytes(vigil.db, data, settings, actor=cli_principal(),
                                        source=source or path.name, fmt=kind, preset=preset)
        except VigilError as exc:
            message = str(exc)
            shown = message if message.startswith((str(path), path.name)) else f"{path.name}: {message}"
            typer.secho(f"error: {shown}", err=True, fg="red")
            failed += 1
            continue
        _print_report(path, report)
        changed += report.result.added + report.result.updated
    if retro and changed:
        retro_after_import(vigil)
    if failed:
        raise typer.Exit(2)


# -- reading -----------------------------------------------------------------------------------


@intel_app.command("search")
def search_cmd(
    ctx: typer.Context,
    value: Annotated[str, typer.Argument(help="An address, domain, URL, hash... (defanged is fine).")],
    kind: Annotated[str | None, typer.Option("--type", "-t", help="The value's type (default: guessed).")]
    = None,
    as_json: Json = False,
) -> None:
    """Find the indicators that would match a value: the value itself, networks containing an
    address, parent domains of a name; or indicators named like it."""
    vigil = state(ctx)
    found = intel.search(vigil.db, value, vigil.settings.intel,
                         kind=IndicatorType.parse(kind) if kind else None)
    _print_views(found, as_json)
    if not found and not as_json:
        console.print(f"no indicator matches {value!r}", highlight=False)


def _detail_rows(view: IndicatorView) -> list[tuple[str, object]]:
    rows: list[tuple[str, object]] = [
        ("id", view.id), ("type", view.type.value), ("value", view.value), ("pattern", view.pattern),
        ("stix id", view.stix_id), ("name", view.name), ("description", view.description),
        ("confidence", view.confidence), ("base score", view.base_score),
        ("score", f"{view.score:.1f}"), ("active", _yes(view.active)),
        ("tlp", view.tlp.value if view.tlp else None), ("markings", ", ".join(view.markings)),
        ("labels", ", ".join(view.labels)), ("att&ck", ", ".join(view.attack)),
        ("malware", ", ".join(view.malware)), ("valid from", _when(view.valid_from)),
        ("valid until", _when(view.valid_until)), ("revoked", _yes(view.revoked)),
        ("first seen", _when(view.first_seen)), ("last seen", _when(view.last_seen)),
        ("last sighting", _when(view.last_sighting)),
        ("sightings", f"{view.sightings_seen} seen, {view.sightings_false_positive} false positive, "
                      f"{view.sightings_expired} expired"),
        ("allowlisted", view.allowlisted)]
    return [(k, "" if v is None else v) for k, v in rows]


@intel_app.command("show")
def show_cmd(ctx: typer.Context,
             ref: Annotated[str, typer.Argument(help="Indicator id or STIX id.")],
             as_json: Json = False) -> None:
    """One indicator: every field, its decayed score, its sources (first/last seen each), its
    observables and sightings."""
    vigil = state(ctx)
    view = intel.get(vigil.db, ref, vigil.settings.intel)
    if as_json:
        typer.echo(json.dumps(intel.view_json(view)))
        return
    render_rows(["field", "value"], _detail_rows(view), "table")
    render_rows(["source", "first seen (UTC)", "last seen (UTC)", "confidence", "reference"],
                [(s.name, _when(s.first_seen), _when(s.last_seen), s.confidence, s.reference)
                 for s in view.sources], "table", title="sources")
    if view.observables:
        render_rows(["type", "value"], [(o.type.value, o.value) for o in view.observables], "table",
                    title="observables (what matching looks for)")


@intel_app.command("list")
def list_cmd(
    ctx: typer.Context,
    types: Types = None,
    source: Annotated[str | None, typer.Option(help="Only indicators stated by this source.")] = None,
    active: Annotated[bool, typer.Option("--active", help="Only active indicators.")] = False,
    min_confidence: Annotated[int | None, typer.Option(
        min=0, max=100, help="Only this confidence and above.")] = None,
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, max=1000, help="At most this many.")] = 50,
    after: Annotated[str | None, typer.Option(help="Continue after this id (printed as 'more:').")] = None,
    as_json: Json = False,
) -> None:
    """List indicators in id order, a page at a time."""
    vigil = state(ctx)
    wanted = IndicatorFilter(types=_types(types), source=source, min_confidence=min_confidence,
                             active_only=active)
    found, cursor = intel.page(vigil.db, wanted, vigil.settings.intel, limit=limit, after=after)
    _print_views(found, as_json)
    if cursor and len(found) == limit:
        err_console.print(f"more: --after {cursor}", highlight=False, soft_wrap=True)


@intel_app.command("stats")
def stats_cmd(ctx: typer.Context, as_json: Json = False) -> None:
    """How many indicators are stored, by type, and how many allowlists and feeds there are."""
    from vigil.intel import feeds

    vigil = state(ctx)
    counts = intel.summary(vigil.db)
    with vigil.db.session() as session:
        allowlists = lists.list_allowlists(session, vigil.settings.intel)
    feed_count = len(feeds.list_feeds(vigil.db))
    if as_json:
        typer.echo(json.dumps({"indicators": sum(counts.values()), "by_type": counts,
                               "allowlists": len(allowlists), "feeds": feed_count}))
        return
    rows = [(kind, n) for kind, n in sorted(counts.items())] + [("total", sum(counts.values()))]
    render_rows(["type", "indicators"], rows, "table")
    typer.echo(f"{len(allowlists)} allowlists ({sum(1 for a in allowlists if a.enabled)} enabled), "
               f"{feed_count} feeds")


# -- changes -----------------------------------------------------------------------------------


@intel_app.command("sight")
def sight_cmd(
    ctx: typer.Context,
    ref: Annotated[str, typer.Argument(help="Indicator id or STIX id.")],
    kind: Annotated[str, typer.Option(
        "--kind", "-k", help="seen (resets the decay), false_positive (halves the score) or "
                             "expired (no longer matched nor exported).")],
    note: Annotated[str | None, typer.Option(help="Why, for the record.")] = None,
) -> None:
    """Record a sighting of an indicator."""
    try:
        chosen = SightingKind(kind.strip().lower().replace("-", "_"))
    except ValueError:
        raise InputError(f"--kind must be one of {', '.join(SightingKind)}, not {kind!r}") from None
    vigil = state(ctx)
    view = intel.sight(vigil.db, ref, chosen, vigil.settings.intel, actor=cli_principal(), note=note)
    typer.echo(f"indicator {view.id} ({view.type.value} {view.value}): {chosen.value} recorded; "
               f"score {view.score:.0f}, active {_yes(view.active)}")


@intel_app.command("revoke")
def revoke_cmd(
    ctx: typer.Context,
    ref: Annotated[str, typer.Argument(help="Indicator id or STIX id.")],
    reason: Annotated[str | None, typer.Option(help="Why, for the audit trail.")] = None,
) -> None:
    """Revoke an indicator: never matched nor exported again (until a feed states it anew)."""
    vigil = state(ctx)
    view = intel.revoke(vigil.db, ref, vigil.settings.intel, actor=cli_principal(), reason=reason)
    typer.echo(f"indicator {view.id} ({view.type.value} {view.value}) revoked")


@intel_app.command("retro")
def retro_cmd(
    ctx: typer.Context,
    days: Annotated[int | None, typer.Option(
        min=1, max=3650, help="Look back this many days (default: intel.retro_days).")] = None,
    every: Annotated[bool, typer.Option(
        "--all", help="Every indicator, not only those new or changed since the last retro-hunt.")]
    = False,
) -> None:
    """Match indicators against the stored events now; hits become alerts marked intel.retro.

    The event store must be free: while the server runs, it does this itself every minute."""
    _retro_hunt(state(ctx), days=days, since_last=not every)


# -- export ------------------------------------------------------------------------------------


@intel_app.command("export")
def export_cmd(
    ctx: typer.Context,
    fmt: Annotated[str, typer.Argument(metavar="FORMAT", help=f"One of {', '.join(EXPORT_FORMATS)}.")],
    output: Annotated[Path | None, typer.Option(
        "--output", "-o", help="Write to this file (default: standard output).")] = None,
    types: Types = None,
    min_confidence: Annotated[int | None, typer.Option(help="Only this confidence and above.")] = None,
    min_score: Annotated[float | None, typer.Option(help="Only this decayed score and above.")] = None,
    max_tlp: Annotated[str | None, typer.Option(
        help="Most restrictive TLP to include (capped at intel.export_max_tlp; never red).")] = None,
    max_age_days: Annotated[int | None, typer.Option(help="Only indicators seen within this many days.")]
    = None,
    source: Annotated[str | None, typer.Option(help="Only indicators stated by this source.")] = None,
    label: Annotated[str | None, typer.Option(help="Only indicators with this label.")] = None,
    name: Annotated[str, typer.Option(help="Name of the table, sets, chain or files.")] = "vigil",
) -> None:
    """Export active indicators for a firewall, DNS server or IDS (allowlisted, revoked,
    decayed and TLP:RED indicators never leave)."""
    from vigil.intel.export import ExportOptions, export, selection

    vigil = state(ctx)
    wanted = selection(_types(types), min_confidence=min_confidence, min_score=min_score,
                       max_tlp=TLP.parse(max_tlp) if max_tlp else None, max_age_days=max_age_days,
                       source=source, label=label)
    done = export(vigil.db, fmt, wanted, ExportOptions(name=name), vigil.settings.intel)
    summary = f"{done.count} indicators exported as {done.format.value}, {done.skipped} skipped"
    if output is None:
        if isinstance(done.content, bytes) and sys.stdout.isatty():
            raise InputError(f"a {done.format.value} export is an archive: write it to a file with -o FILE")
        sys.stdout.buffer.write(done.body())
        sys.stdout.buffer.flush()
        err_console.print(summary, highlight=False)
    else:
        try:
            output.write_bytes(done.body())
        except OSError as exc:
            raise InputError(f"{output}: cannot write: {exc.strerror or exc}") from None
        typer.echo(f"{summary}: {output}")
    for note in done.notes:
        err_console.print(f"  {note}", highlight=False)


# -- allowlists --------------------------------------------------------------------------------


@allowlists_app.command("list")
def allowlists_list(ctx: typer.Context, as_json: Json = False) -> None:
    """The allowlists: built in (special-use networks, reserved names) and imported."""
    vigil = state(ctx)
    with vigil.db.session() as session:
        found = lists.list_allowlists(session, vigil.settings.intel)
    if as_json:
        for item in found:
            typer.echo(json.dumps({"name": item.name, "kind": item.kind.value, "entries": item.entries,
                                   "matching_attributes": list(item.matching_attributes),
                                   "enabled": item.enabled, "builtin": item.builtin,
                                   "description": item.description, "version": item.version}))
        return
    render_rows(["name", "kind", "entries", "enabled", "built in", "applies to", "description"],
                [(a.name, a.kind.value, a.entries, _yes(a.enabled), _yes(a.builtin),
                  ", ".join(a.matching_attributes) or "all types", a.description or "")
                 for a in found], "table")


@allowlists_app.command("import")
def allowlists_import(ctx: typer.Context, file: Annotated[Path, typer.Argument(
        help="A MISP warninglist JSON file (name, type, list, matching_attributes).")]) -> None:
    """Add a list, or replace the list of the same name; stored indicators are checked again."""
    vigil = state(ctx)
    data = _read(file, vigil.settings.intel.max_download_mb * MIB)
    with vigil.db.session() as session:
        view = lists.import_allowlist(session, data, vigil.settings.intel, actor=cli_principal(),
                                      origin=file.name)
    typer.echo(f"allowlist {view.name!r} imported: {view.entries} {view.kind.value} entries")


def _switch(ctx: typer.Context, name: str, enabled: bool) -> None:
    vigil = state(ctx)
    with vigil.db.session() as session:
        view = lists.set_enabled(session, name, enabled, vigil.settings.intel, actor=cli_principal())
    typer.echo(f"allowlist {view.name!r} {'enabled' if view.enabled else 'disabled'}")


@allowlists_app.command("enable")
def allowlists_enable(ctx: typer.Context, name: Annotated[str, typer.Argument(help="List name.")]) -> None:
    """Switch a list on (the indicators it covers are no longer matched nor exported)."""
    _switch(ctx, name, True)


@allowlists_app.command("disable")
def allowlists_disable(ctx: typer.Context, name: Annotated[str, typer.Argument(help="List name.")]) -> None:
    """Switch a list off (the values it covered are matched and exported again)."""
    _switch(ctx, name, False)


@allowlists_app.command("remove")
def allowlists_remove(ctx: typer.Context, name: Annotated[str, typer.Argument(help="List name.")]) -> None:
    """Remove an imported list (built-in lists are switched off with intel.builtin_allowlists)."""
    vigil = state(ctx)
    with vigil.db.session() as session:
        lists.remove_allowlist(session, name, vigil.settings.intel, actor=cli_principal())
    typer.echo(f"allowlist {name!r} removed")


def register(app: typer.Typer) -> None:
    """Add ``vigil intel``."""
    intel_app.add_typer(allowlists_app, name="allowlists")
    intel_feeds.register(intel_app)
    app.add_typer(intel_app, name="intel")
