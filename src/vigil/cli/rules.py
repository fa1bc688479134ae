"""``vigil rules``: import Sigma rules, list and show them, enable or disable them, coverage."""

from __future__ import annotations

import dataclasses
import json
from collections import Counter
from pathlib import Path
from typing import Annotated

import typer

from vigil.cli.common import console, render_rows, state
from vigil.core.errors import InputError
from vigil.detect import catalog
from vigil.detect import coverage as coverage_layer
from vigil.detect.catalog import ImportReport, RuleDetail

rules_app = typer.Typer(help="Sigma detection rules: import, list, show, enable, test, coverage.",
                        no_args_is_help=True)
OUTPUTS = ("table", "json", "csv")
TOP_REASONS = 10
SHOWN_PROBLEMS = 10
_SPECS_HELP = "Ids, id prefixes, Sigma names, or globs on ids, names and titles."


def _output(output: str) -> str:
    if output not in OUTPUTS:
        raise InputError(f"--output must be one of {', '.join(OUTPUTS)}")
    return output


def _print_report(report: ImportReport, verbose: bool) -> None:
    typer.echo(f"{report.loaded:,} rules loaded from {report.files:,} files in "
               f"{report.seconds:.1f} s: {report.compiled:,} compiled, {report.failed:,} failed, "
               f"{len(report.problems):,} problems")
    typer.echo(f"catalog: {report.new:,} new, {report.updated:,} updated, "
               f"{report.unchanged:,} unchanged")
    if report.retired:
        typer.echo(f"{report.retired:,} rules are deprecated or unsupported (imported anyway)")
    if report.correlations or report.filters:
        changes = report.documents
        typer.echo(f"{report.filters:,} filters and {report.correlations:,} correlation rules "
                   f"imported: {changes['new']:,} new, {changes['updated']:,} updated, "
                   f"{changes['unchanged']:,} unchanged")
    reasons = report.reasons().most_common()
    if reasons:
        typer.echo("\nfailed by reason:")
        for reason, count in reasons[:TOP_REASONS]:
            typer.echo(f"  {count:>6,}  {reason}")
        if len(reasons) > TOP_REASONS:
            rest = sum(c for _, c in reasons[TOP_REASONS:])
            typer.echo(f"  {rest:>6,}  ({len(reasons) - TOP_REASONS} other reasons)")
    if verbose and report.failures:
        typer.echo("\nfailures:")
        for failure in sorted(report.failures, key=lambda f: (f.path, f.line or 0)):
            typer.echo(f"  {failure}")
    if report.problems:
        shown = report.problems if verbose else report.problems[:SHOWN_PROBLEMS]
        typer.echo("\nproblems:")
        for problem in shown:
            typer.echo(f"  {problem}")
        if len(shown) < len(report.problems):
            typer.echo(f"  ... {len(report.problems) - len(shown):,} more (--verbose lists all)")


@rules_app.command("import")
def import_cmd(
    ctx: typer.Context,
    paths: Annotated[list[str], typer.Argument(
        help="Rule files, folders, zip archives or globs (e.g. 'sigma/rules*').")],
    verbose: Annotated[bool, typer.Option("--verbose", "-v",
                                          help="List every failure and problem.")] = False,
) -> None:
    """Import Sigma rules, filters and correlation rules: load, compile and store them
    (re-importing is safe)."""
    report = catalog.import_rules(state(ctx).db, paths)
    _print_report(report, verbose)


@rules_app.command("list")
def list_cmd(
    ctx: typer.Context,
    level: Annotated[str | None, typer.Option(help="Only this level (critical, high, ...).")] = None,
    enabled: Annotated[bool | None, typer.Option("--enabled/--disabled",
                                                 help="Only enabled or only disabled rules.")] = None,
    search: Annotated[str | None, typer.Option(
        help="Text in the id, title, name, author, tags, log source or description.")] = None,
    kind: Annotated[str | None, typer.Option(
        help="Only rules, filters or correlations (rule, filter, correlation).")] = None,
    output: Annotated[str, typer.Option("--output", "-o", help="table, json or csv.")] = "table",
) -> None:
    """List the rules, filters and correlation rules of the catalog, most severe first."""
    output = _output(output)
    views = catalog.list_rules(state(ctx).db, level=level, enabled=enabled, search=search,
                               kind=kind)
    short = output == "table"
    rows = [(v.id[:8] if short else v.id, v.kind, v.level, v.title, v.author,
             str(v.logsource) if v.kind != "correlation" else "",
             "yes" if v.enabled else "no", "yes" if v.compiled else "no") for v in views]
    render_rows(["id", "kind", "level", "title", "author", "log source", "enabled", "compiled"],
                rows, output)
    if short:
        kinds = Counter(v.kind for v in views)
        console.print(", ".join([f"{kinds['rule']:,} rules"] + [
            f"{kinds[k]:,} {k}s" for k in ("filter", "correlation") if kinds[k]]))
        if not views and level is None and enabled is None and not search and kind is None:
            console.print("the catalog is empty: add rules with 'vigil rules import PATH...'",
                          highlight=False)


def _print_detail(rule: RuleDetail) -> None:
    lines = [("id", rule.id), ("kind", rule.kind), ("title", rule.title), ("level", rule.level),
             ("status", rule.status or "-"), ("author", rule.author or "-"),
             ("log source", str(rule.logsource)), ("tags", ", ".join(rule.tags) or "-"),
             ("enabled", "yes" if rule.enabled else "no"), ("path", rule.path),
             ("sha256", rule.sha256), ("imported", rule.imported_at.isoformat()),
             ("updated", rule.updated_at.isoformat())]
    for name, value in lines:
        typer.echo(f"{name + ':':<12}{value}")
    if rule.description:
        typer.echo(f"\ndescription:\n  {rule.description.strip()}")
    for title, items in (("references", rule.references), ("false positives", rule.falsepositives),
                         ("warnings", rule.warnings)):
        if items:
            typer.echo(f"\n{title}:")
            for item in items:
                typer.echo(f"  - {item}")
    if rule.sql is not None:
        typer.echo(f"\nSQL (fields: {', '.join(rule.fields)}):\n{rule.sql}")
    elif rule.compile_error is not None:
        typer.echo(f"\nnot {'compiled' if rule.kind != 'correlation' else 'usable'}: "
                   f"{rule.compile_error}")
    typer.echo(f"\nYAML:\n{rule.yaml.rstrip()}")


@rules_app.command("show")
def show_cmd(ctx: typer.Context, rule_id: Annotated[str, typer.Argument(
        metavar="ID", help="The rule id, or its first characters.")],
        as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
    """Show one rule (filter, correlation): metadata, author, references, SQL and YAML."""
    rule = catalog.get_rule(state(ctx).db, rule_id)
    if as_json:
        data = dataclasses.asdict(rule)
        data["logsource"] = str(rule.logsource)
        typer.echo(json.dumps(data, default=str, indent=2))
        return
    _print_detail(rule)


def _set(ctx: typer.Context, specs: list[str], enabled: bool) -> None:
    result = catalog.set_enabled(state(ctx).db, specs, enabled)
    word = "enabled" if enabled else "disabled"
    typer.echo(f"{len(result.matched):,} rules matched, {result.changed:,} {word}")


@rules_app.command("enable")
def enable_cmd(ctx: typer.Context, specs: Annotated[list[str], typer.Argument(
        metavar="ID|GLOB...", help=_SPECS_HELP)]) -> None:
    """Enable rules, filters or correlations (e.g. 'vigil rules enable 5f6b6a1e' or
    '*mimikatz*')."""
    _set(ctx, specs, True)


@rules_app.command("disable")
def disable_cmd(ctx: typer.Context, specs: Annotated[list[str], typer.Argument(
        metavar="ID|GLOB...", help=_SPECS_HELP)]) -> None:
    """Disable rules, filters or correlations (they stay in the catalog, the engine skips
    them; a correlation counting a disabled rule is skipped too)."""
    _set(ctx, specs, False)


@rules_app.command("coverage")
def coverage_cmd(
    ctx: typer.Context,
    layer: Annotated[Path | None, typer.Option(
        help="Write an ATT&CK Navigator layer (JSON) to this file.")] = None,
    output: Annotated[str, typer.Option("--output", "-o", help="table, json or csv.")] = "table",
) -> None:
    """ATT&CK techniques covered by the enabled rules, with rule counts."""
    output = _output(output)
    db = state(ctx).db
    covered = catalog.coverage(db)
    rows = sorted(((t, len(ids)) for t, ids in covered.items()), key=lambda r: (-r[1], r[0]))
    render_rows(["technique", "rules"], rows, output)
    if output == "table":
        rules = len({i for ids in covered.values() for i in ids})
        console.print(f"{len(covered):,} techniques covered by {rules:,} enabled rules")
    if layer is not None:
        names = catalog.titles(db, [i for ids in covered.values() for i in ids])
        document = coverage_layer.navigator_layer(covered, names)
        try:
            layer.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
        except OSError as exc:
            raise InputError(f"{layer}: cannot write the layer: {exc.strerror or exc}") from exc
        console.print(f"ATT&CK Navigator layer written to {layer}", highlight=False)


@rules_app.command("test")
def test_cmd(
    rule_paths: Annotated[list[Path], typer.Option(
        "--rule", "-r", help="Rule file(s) or folder(s) to test (repeatable).")],
    logs: Annotated[list[str], typer.Argument(help="Sample logs the rules must detect.")],
    expect: Annotated[int | None, typer.Option(
        help="Exact number of detections expected (default: at least one per rule).")] = None,
) -> None:
    """Run rules over sample logs and fail (exit 1) unless each rule detects something."""
    from vigil.detect.hunt import compile_paths, hunt_files

    ruleset = compile_paths([str(p) for p in rule_paths])
    for problem in ruleset.problems:
        console.print(f"[red]not compiled[/red]: {problem}", highlight=False)
    if not ruleset.rules:
        raise InputError("no rule compiled; nothing to test")
    result = hunt_files(ruleset.rules, logs)
    counts = {r.meta.id: 0 for r in ruleset.rules}
    for detection in result.detections:
        counts[detection.rule.id] = counts.get(detection.rule.id, 0) + 1
    failed = False
    for rule in ruleset.rules:
        found = counts[rule.meta.id]
        ok = found == expect if expect is not None else found > 0
        failed = failed or not ok
        mark = "[green]PASS[/green]" if ok else "[red]FAIL[/red]"
        console.print(f"{mark} {rule.meta.title} ({rule.meta.id}): {found} detections "
                      f"in {result.stats.events} events", highlight=False)
    if failed or ruleset.problems:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.add_typer(rules_app, name="rules")
