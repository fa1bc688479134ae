"""``vigil metrics``: the SOC metrics of a period (MTTD, MTTA, MTTQ, MTTC, MTTR, FP rates,
workload)."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Annotated

import typer

from vigil.cli.common import console, render_rows, state
from vigil.core.timeutil import utcnow, when_option


def _human(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 120:
        return f"{seconds:.0f}s"
    if seconds < 7200:
        return f"{seconds / 60:.1f}m"
    if seconds < 172800:
        return f"{seconds / 3600:.1f}h"
    return f"{seconds / 86400:.1f}d"


def metrics_cmd(
    ctx: typer.Context,
    since: Annotated[str | None, typer.Option(
        help="Start of the period (ISO time or e.g. 30d, 12h; default 30 days ago).")] = None,
    until: Annotated[str | None, typer.Option(help="End of the period (default now).")] = None,
    period: Annotated[str | None, typer.Option(help="Also per day, week or month.")] = None,
    output: Annotated[str, typer.Option("--format", "-o", help="table or json.")] = "table",
) -> None:
    """SOC metrics of the alerts and cases created in a period (median and p90, per severity)."""
    from vigil.api.metrics import to_out
    from vigil.cases import metrics
    from vigil.core.errors import InputError

    end = when_option(until, "--until") or utcnow()
    start = when_option(since, "--since") or end - timedelta(days=30)
    try:
        chosen = metrics.Period(period) if period else None
    except ValueError:
        raise InputError("--period: use day, week or month") from None
    if output not in {"table", "json"}:
        raise InputError("--format: use table or json")
    report = metrics.report(state(ctx).db, start, end, period=chosen)
    if output == "json":
        typer.echo(json.dumps(to_out(report).model_dump(mode="json"), indent=2))
        return
    _print(report)


def _print(report: object) -> None:
    from vigil.cases.metrics import MetricsReport

    assert isinstance(report, MetricsReport)
    rate = f"{report.escalation_rate:.0%}" if report.escalation_rate is not None else "-"
    per = f"{report.alerts_per_incident:.1f}" if report.alerts_per_incident is not None else "-"
    console.print(f"{report.since:%Y-%m-%d %H:%M} → {report.until:%Y-%m-%d %H:%M} UTC: "
                  f"{report.alerts} alerts ({per} per incident, {rate} escalated), "
                  f"{report.cases} cases", highlight=False)
    render_rows(["metric", "of", "severity", "n", "median", "p90", "mean"],
                [(d.name, d.subject, d.severity, d.stats.count, _human(d.stats.median),
                  _human(d.stats.p90), _human(d.stats.mean)) for d in report.durations
                 if d.stats.count], "table", title="Durations")
    if report.rules:
        render_rows(["rule", "title", "alerts", "closed", "false positives", "FP rate"],
                    [(r.rule_id, r.rule_title or "", r.alerts, r.closed, r.false_positives,
                      f"{r.false_positive_rate:.0%}" if r.false_positive_rate is not None else "-")
                     for r in report.rules], "table", title="Rules")
    if report.periods:
        render_rows(["from", "alerts", "cases", "MTTA alerts (median)", "MTTR cases (median)"],
                    [(f"{p.start:%Y-%m-%d}", p.alerts, p.cases, _human(p.mtta_alerts_median),
                      _human(p.mttr_cases_median)) for p in report.periods], "table",
                    title="Per period")
    load = report.workload
    render_rows(["person", "team", "open cases", "open tasks", "open alerts"],
                [(p.username, p.team or "", p.open_cases, p.open_tasks, p.open_alerts)
                 for p in load.people], "table", title="Open work")


def register(app: typer.Typer) -> None:
    app.command("metrics")(metrics_cmd)
