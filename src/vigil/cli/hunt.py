"""``vigil hunt``: run Sigma rules over log files or the stored history."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from vigil.cli.common import console, err_console, render_rows, state
from vigil.core.errors import InputError
from vigil.core.timeutil import when_option
from vigil.detect import alerts
from vigil.detect.correlation import correlation_base_rules, index_rules
from vigil.detect.engine import Detection
from vigil.detect.hunt import (
    LEVELS,
    HuntResult,
    RuleSet,
    compile_paths,
    hunt_files,
    hunt_store,
    select_rules,
)
from vigil.detect.types import CompiledRule

OUTPUTS = ("table", "json", "csv")


def _key_fields(detection: Detection, width: int = 160) -> str:
    text = " ".join(f"{k}={v}" for k, v in detection.fields.items())
    return text if len(text) <= width else text[: width - 1] + "…"


def _print(result: HuntResult, output: str) -> None:
    shown = result.detections
    if output == "json":
        for h in result.correlations:
            typer.echo(json.dumps({"ts": h.fired.isoformat(), "level": h.rule.level,
                                   "correlation": h.rule.title, "rule_id": h.rule.id,
                                   "author": h.rule.author, "type": h.type, "group": h.group,
                                   "value": h.value, "first": h.first.isoformat(),
                                   "last": h.last.isoformat(), "event_ids": list(h.event_ids)},
                                  default=str))
        for d in shown:
            typer.echo(json.dumps({"ts": d.ts.isoformat(), "level": d.rule.level,
                                   "rule": d.rule.title, "rule_id": d.rule.id,
                                   "author": d.rule.author, "host": d.host, "source": d.source,
                                   "event_id": d.event_id, "fields": d.fields}, default=str))
        return
    rows = [(d.ts.strftime("%Y-%m-%d %H:%M:%S"), d.rule.level, d.rule.title, d.host or "",
             _key_fields(d), d.rule.author or "") for d in shown]
    render_rows(["time (UTC)", "level", "rule", "host", "key fields", "rule author"], rows, output)
    if output == "table":
        _correlations(result)
        _summary(result)


def _correlations(result: HuntResult) -> None:
    if not result.correlations:
        return
    rows = [(h.fired.strftime("%Y-%m-%d %H:%M:%S"), h.rule.level, h.rule.title, h.type,
             " ".join(f"{k}={v}" for k, v in h.group.items()), h.value, h.count,
             h.rule.author or "") for h in result.correlations]
    render_rows(["fired (UTC)", "level", "correlation", "type", "group", "value", "events",
                 "rule author"], rows, "table", title="correlations")


def _summary(result: HuntResult) -> None:
    levels = result.by_level()
    console.print(
        f"\n{len(result.detections):,} detections on {result.stats.events:,} events "
        f"({result.stats.partitions} log sources) in {result.stats.seconds:.1f} s: "
        + ", ".join(f"{lv} {levels[lv]}" for lv in LEVELS if levels.get(lv)))
    top = result.by_rule().most_common(20)
    if top:
        render_rows(["level", "rule", "rule id", "detections"],
                    [(lv, title, rid[:8], n) for (lv, title, rid), n in top], "table")
    for rule_id, reason in result.stats.failures.items():
        err_console.print(f"rule {rule_id} failed at run time: {reason}")


def hunt(
    ctx: typer.Context,
    logs: Annotated[list[str] | None, typer.Argument(
        help="Log files, folders or globs to hunt in (without: the stored events).")] = None,
    rules: Annotated[list[str] | None, typer.Option(
        "--rules", "-r", help="Sigma rules: files, folders or zips (default: enabled rules).")] = None,
    since: Annotated[str | None, typer.Option(help="Stored events from (ISO, epoch or '24h').")] = None,
    until: Annotated[str | None, typer.Option(help="Stored events until (exclusive).")] = None,
    fmt: Annotated[str | None, typer.Option("--format", "-f", help="Format of the log files.")] = None,
    output: Annotated[str, typer.Option("--output", "-o", help="table, json or csv.")] = "table",
    min_level: Annotated[str, typer.Option(help="Run rules of this level and above.")]
    = "informational",
    status: Annotated[list[str] | None, typer.Option(
        help="Only rules of this status (stable, test, experimental...; repeatable).")] = None,
    write_alerts: Annotated[bool, typer.Option(
        "--alerts", help="Retro-hunt: also record the detections on stored events as alerts.")]
    = False,
) -> None:
    """Print a timeline of detections (time, level, rule, host, key fields) and a summary."""
    if output not in OUTPUTS:
        raise InputError(f"--output must be one of {', '.join(OUTPUTS)}")
    if min_level not in LEVELS:
        raise InputError(f"--min-level must be one of {', '.join(LEVELS)}")
    if logs and write_alerts:
        raise InputError("--alerts records detections on stored events; drop the log files")
    if rules:
        ruleset = compile_paths(rules)
    else:
        from vigil.detect.catalog import ruleset as catalog_ruleset

        ruleset = catalog_ruleset(state(ctx).db)
    for problem in ruleset.problems:
        err_console.print(f"skipped: {problem}")
    shown = select_rules(ruleset.rules, min_level, status or ())
    if not shown and not ruleset.correlations:
        raise InputError("no rules to run: give --rules, or import and enable rules first")
    compiled = _with_base_rules(shown, ruleset)
    if logs:
        result = hunt_files(compiled, logs, fmt=fmt, ruleset=ruleset)
    else:
        vigil = state(ctx)
        result = hunt_store(vigil.store, compiled, when_option(since, "--since"),
                            when_option(until, "--until"), ruleset)
    _select_output(result, shown, min_level)
    if write_alerts:
        vigil = state(ctx)
        created = alerts.record(vigil.db, result.detections,
                                vigil.settings.detect.suppress_seconds, vigil.grouping)
        created += alerts.record_correlations(vigil.db, result.correlations, vigil.grouping)
        err_console.print(f"{created} new alerts recorded")
    _print(result, output)


def _with_base_rules(shown: list[CompiledRule], ruleset: RuleSet) -> list[CompiledRule]:
    """The selected rules and the rules the correlations count, whatever their level."""
    if not ruleset.correlations:
        return shown
    index = index_rules(ruleset.rules, ruleset.names)
    have = {r.meta.id for r in shown}
    base = {r.meta.id for r in correlation_base_rules(ruleset.correlations, index)}
    return shown + [r for r in ruleset.rules if r.meta.id in base - have]


def _select_output(result: HuntResult, shown: list[CompiledRule], min_level: str) -> None:
    """Keep the detections of the selected rules, the hits of correlations of ``min_level``."""
    ids = {r.meta.id for r in shown}
    rank = LEVELS.index(min_level)
    result.detections = [d for d in result.detections if d.rule.id in ids]
    result.correlations = [h for h in result.correlations if h.rule.level not in LEVELS
                           or LEVELS.index(h.rule.level) <= rank]


def register(app: typer.Typer) -> None:
    app.command("hunt")(hunt)
