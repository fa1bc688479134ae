"""``vigil alerts`` and ``vigil incidents``: list, show and work alerts and the incidents that
group them.

``vigil alerts`` alone lists the newest alerts. Whoever runs the command holds the data folder
and acts as an admin; the audit trail names them by their operating-system account. Several
ids may be given to ``ack``, ``close`` and ``reopen``: the ones that cannot change are listed
on stderr with the reason, and the command then exits 1.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Annotated, Any

import typer

from vigil.alerts import (
    AlertFilter,
    AlertSort,
    AlertView,
    EntityKind,
    IncidentFilter,
    IncidentStatus,
    IncidentView,
    Severity,
    Source,
    Status,
    assignees,
    service,
)
from vigil.alerts.schemas import AlertDetailOut, AlertOut, HistoryOut, IncidentOut, RelatedOut
from vigil.app import Vigil
from vigil.cli.common import console, err_console, render_rows, state
from vigil.core.auth import cli_principal
from vigil.core.errors import InputError
from vigil.core.timeutil import when_option

alerts_app = typer.Typer(help="Alerts: list, show, acknowledge, close, reopen, assign.",
                         invoke_without_command=True)
incidents_app = typer.Typer(help="Incidents (alerts grouped by rule and entity): list, show, "
                            "merge, split.", no_args_is_help=True)

OUTPUTS = ("table", "json", "csv")
Format = Annotated[str, typer.Option("--format", "--output", "-o", help="table, json or csv.")]
Limit = Annotated[int, typer.Option("--limit", "-n", help="At most this many (1-1000).")]
Cursor = Annotated[str | None, typer.Option(help="Continue after the page that printed it.")]
Ascending = Annotated[bool, typer.Option("--asc", help="Oldest (lowest) first.")]
Since = Annotated[str | None, typer.Option(help="Last event at or after (ISO time or e.g. 24h).")]
Until = Annotated[str | None, typer.Option(help="Last event before (ISO time or e.g. 24h).")]

_ALERT_TABLE = ("id", "last_seen", "severity", "status", "rule_title", "host", "user", "src_ip",
                "count", "incident_id", "assignee", "rule_author")
_ALERT_FULL = tuple(AlertOut.model_fields)
_INCIDENT_COLUMNS = ("id", "last_seen", "severity", "status", "title", "entity_kind",
                     "entity_value", "alert_count", "case_id", "merged_into")


def _format(output: str) -> str:
    value = output.strip().lower()
    if value not in OUTPUTS:
        raise InputError(f"--format must be one of {', '.join(OUTPUTS)}, not {output!r}")
    return value


def _enum_values(kind: Any, values: Sequence[str] | None, option: str) -> tuple[Any, ...]:
    found = []
    for value in values or ():
        try:
            found.append(kind(value.strip().lower()))
        except ValueError:
            names = ", ".join(str(k.value) for k in kind)
            raise InputError(f"{option}: unknown value {value!r} (use {names})") from None
    return tuple(found)


def _severities(values: Sequence[str] | None) -> tuple[Severity, ...]:
    return tuple(Severity.parse(v) for v in values or ())


def _sort(value: str) -> AlertSort:
    return _enum_values(AlertSort, [value], "--sort")[0]  # type: ignore[no-any-return]


def _cell(value: object, output: str) -> object:
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S") if output == "table" else value.isoformat()
    if isinstance(value, list) and output != "json":
        return ", ".join(str(v) for v in value)
    return value


_HEADERS = {"last_seen": "last seen (UTC)", "rule_title": "rule", "incident_id": "incident",
            "rule_author": "rule author", "entity_kind": "entity", "entity_value": "value",
            "alert_count": "alerts", "case_id": "case", "merged_into": "merged into"}


def _headers(columns: Sequence[str], output: str) -> list[str]:
    """Column names: readable in a table, the field names in JSON and CSV."""
    return [_HEADERS.get(c, c) for c in columns] if output == "table" else list(columns)


def _rows(items: Sequence[Any], columns: Sequence[str], output: str) -> list[list[object]]:
    return [[_cell(getattr(item, c), output) for c in columns] for item in items]


def _print_alerts(items: Sequence[AlertView], output: str, next_cursor: str | None = None) -> None:
    columns = _ALERT_TABLE if output == "table" else _ALERT_FULL
    render_rows(_headers(columns, output), _rows(items, columns, output), output)
    if next_cursor:
        err_console.print(f"more: --cursor {next_cursor}", highlight=False, soft_wrap=True)


def _list(vigil: Vigil, filters: AlertFilter, *, sort: str = "last_seen", ascending: bool = False,
          limit: int = 50, cursor: str | None = None, output: str = "table") -> None:
    output = _format(output)
    with vigil.db.session() as session:
        page = service.list_alerts(session, filters, sort=_sort(sort), descending=not ascending,
                                   limit=limit, cursor=cursor)
    _print_alerts(page.items, output, page.next_cursor)


@alerts_app.callback()
def alerts_default(ctx: typer.Context) -> None:
    """Alerts, newest first (``vigil alerts list`` with its defaults when no command is given)."""
    if ctx.invoked_subcommand is None:
        _list(state(ctx), AlertFilter())


@alerts_app.command("list")
def list_cmd(
    ctx: typer.Context,
    status: Annotated[list[str] | None, typer.Option(help="new, acknowledged, closed.")] = None,
    severity: Annotated[list[str] | None, typer.Option(
        help="informational, low, medium, high, critical.")] = None,
    min_severity: Annotated[str | None, typer.Option(help="This severity and above.")] = None,
    source: Annotated[list[str] | None, typer.Option(
        help="sigma, correlation, intel, agent, manual.")] = None,
    rule: Annotated[str | None, typer.Option(help="Only alerts of this rule id.")] = None,
    host: Annotated[str | None, typer.Option()] = None,
    user: Annotated[str | None, typer.Option()] = None,
    src_ip: Annotated[str | None, typer.Option("--src-ip")] = None,
    incident: Annotated[int | None, typer.Option(help="Only alerts of this incident.")] = None,
    case: Annotated[int | None, typer.Option(help="Only alerts escalated to this case.")] = None,
    assignee: Annotated[str | None, typer.Option(help="User name or id.")] = None,
    since: Since = None, until: Until = None,
    sort: Annotated[str, typer.Option(help="last_seen, first_seen, severity or id.")] = "last_seen",
    ascending: Ascending = False, limit: Limit = 50, cursor: Cursor = None, output: Format = "table",
) -> None:
    """List alerts, newest first (with the rule author, as the rule license requires)."""
    vigil = state(ctx)
    filters = AlertFilter(
        status=_enum_values(Status, status, "--status"), severity=_severities(severity),
        min_severity=Severity.parse(min_severity) if min_severity else None,
        source=_enum_values(Source, source, "--source"), rule_id=rule, host=host, user=user,
        src_ip=src_ip, incident_id=incident, case_id=case,
        assignee=assignees.resolve(vigil.db, _user_ref(assignee), active_only=False),
        since=when_option(since, "--since"), until=when_option(until, "--until"))
    _list(vigil, filters, sort=sort, ascending=ascending, limit=limit, cursor=cursor, output=output)


def _user_ref(value: str | None) -> int | str | None:
    if value is None:
        return None
    return int(value) if value.strip().isdigit() else value


def _detail_rows(detail: AlertDetailOut) -> list[tuple[str, object]]:
    data = detail.model_dump(exclude={"history", "related"})
    return [(k, _cell(v, "table") if v is not None else "") for k, v in data.items()]


@alerts_app.command("show")
def show_cmd(ctx: typer.Context, alert_id: Annotated[int, typer.Argument(help="Alert id.")],
             output: Format = "table") -> None:
    """One alert: its fields (rule author and references, event ids), history and related
    alerts (same host, user or source IP)."""
    output, vigil = _format(output), state(ctx)
    settings = vigil.settings.alerts
    with vigil.db.session() as session:
        found = service.detail(session, alert_id, related_days=settings.related_days,
                               related_limit=settings.related_limit)
    detail = AlertDetailOut(**AlertOut.model_validate(found.alert).model_dump(),
                            history=[HistoryOut.model_validate(h) for h in found.history],
                            related=[RelatedOut.model_validate(r) for r in found.related])
    if output == "json":
        typer.echo(detail.model_dump_json())
        return
    render_rows(["field", "value"], _detail_rows(detail), output)
    if output == "table":
        render_rows(["at (UTC)", "actor", "field", "old", "new"],
                    [(_cell(h.at, "table"), h.actor, h.field, h.old, h.new) for h in detail.history],
                    output, title="history")
        if detail.related:
            render_rows(["id", "shared", "last seen", "severity", "rule", "host", "user", "src_ip"],
                        [(r.alert.id, ", ".join(r.shared), _cell(r.alert.last_seen, "table"),
                          r.alert.severity, r.alert.rule_title, r.alert.host, r.alert.user,
                          r.alert.src_ip) for r in detail.related], output, title="related alerts")


def _change(ctx: typer.Context, action: str, ids: list[int], output: str,
            disposition: str | None = None, note: str | None = None) -> None:
    """Apply ``action`` to ``ids``; one id fails loudly, several report what was skipped."""
    output, vigil, who = _format(output), state(ctx), cli_principal()
    with vigil.db.session() as session:
        if len(ids) == 1:
            steps = {"acknowledge": lambda: service.acknowledge(session, ids[0], who),
                     "close": lambda: service.close(session, ids[0], who, disposition or "", note),
                     "reopen": lambda: service.reopen(session, ids[0], who)}
            views = [steps[action]()]
            skipped: dict[int, str] = {}
        else:
            result = service.bulk(session, action, ids, who, disposition, note)
            views, skipped = service.get_alerts(session, result.done), result.skipped
    _print_alerts(views, output)
    for alert_id, reason in skipped.items():
        err_console.print(f"skipped {alert_id}: {reason}", highlight=False, soft_wrap=True)
    if skipped:
        raise typer.Exit(1)


Ids = Annotated[list[int], typer.Argument(help="Alert ids.")]


@alerts_app.command("ack")
def ack_cmd(ctx: typer.Context, ids: Ids, output: Format = "table") -> None:
    """Acknowledge new alerts."""
    _change(ctx, "acknowledge", ids, output)


@alerts_app.command("close")
def close_cmd(
    ctx: typer.Context, ids: Ids,
    disposition: Annotated[str, typer.Option(
        "--disposition", "-d", help="true_positive_with_impact, true_positive_without_impact, "
        "benign_true_positive, false_positive_logic, false_positive_data, duplicate, "
        "not_applicable or undetermined.")],
    note: Annotated[str | None, typer.Option("--note", "-m", help="Closing note.")] = None,
    output: Format = "table",
) -> None:
    """Close alerts with a disposition."""
    _change(ctx, "close", ids, output, service.parse_disposition(disposition).value, note)


@alerts_app.command("reopen")
def reopen_cmd(ctx: typer.Context, ids: Ids, output: Format = "table") -> None:
    """Reopen closed alerts (they become acknowledged)."""
    _change(ctx, "reopen", ids, output)


@alerts_app.command("assign")
def assign_cmd(
    ctx: typer.Context, alert_id: Annotated[int, typer.Argument(help="Alert id.")],
    to: Annotated[str, typer.Option("--to", help="User name or id; 'none' to unassign.")],
    output: Format = "table",
) -> None:
    """Give an alert to a user (or to nobody)."""
    output, vigil = _format(output), state(ctx)
    who = None if to.strip().lower() == "none" else assignees.resolve(vigil.db, _user_ref(to))
    with vigil.db.session() as session:
        view = service.assign(session, alert_id, who, cli_principal())
    _print_alerts([view], output)


def _print_incidents(items: Sequence[IncidentView], output: str, next_cursor: str | None) -> None:
    columns = _INCIDENT_COLUMNS if output == "table" else tuple(IncidentOut.model_fields)
    render_rows(_headers(columns, output), _rows(items, columns, output), output)
    if next_cursor:
        err_console.print(f"more: --cursor {next_cursor}", highlight=False, soft_wrap=True)


@incidents_app.command("list")
def incidents_list_cmd(
    ctx: typer.Context,
    status: Annotated[list[str] | None, typer.Option(help="open or closed.")] = None,
    severity: Annotated[list[str] | None, typer.Option()] = None,
    rule: Annotated[str | None, typer.Option(help="Only incidents of this rule id.")] = None,
    entity_kind: Annotated[str | None, typer.Option(help="host, user, src_ip or none.")] = None,
    entity: Annotated[str | None, typer.Option(help="The entity's value.")] = None,
    case: Annotated[int | None, typer.Option(help="Only incidents escalated to this case.")] = None,
    since: Since = None, until: Until = None, ascending: Ascending = False, limit: Limit = 50,
    cursor: Cursor = None, output: Format = "table",
) -> None:
    """List incidents, most recent activity first."""
    output, vigil = _format(output), state(ctx)
    kind = _enum_values(EntityKind, [entity_kind], "--entity-kind")[0] if entity_kind else None
    filters = IncidentFilter(status=_enum_values(IncidentStatus, status, "--status"),
                             severity=_severities(severity), rule_id=rule, entity_kind=kind,
                             entity_value=entity, case_id=case,
                             since=when_option(since, "--since"), until=when_option(until, "--until"))
    with vigil.db.session() as session:
        page = service.list_incidents(session, filters, descending=not ascending, limit=limit,
                                      cursor=cursor)
    _print_incidents(page.items, output, page.next_cursor)


@incidents_app.command("show")
def incidents_show_cmd(ctx: typer.Context,
                       incident_id: Annotated[int, typer.Argument(help="Incident id.")],
                       limit: Annotated[int, typer.Option("--limit", "-n",
                                                          help="Alerts shown (0-1000).")] = 50,
                       output: Format = "table") -> None:
    """One incident and its newest alerts."""
    output, vigil = _format(output), state(ctx)
    with vigil.db.session() as session:
        found = service.get_incident(session, incident_id, alert_limit=limit)
    if output == "json":
        body: dict[str, Any] = IncidentOut.model_validate(found.incident).model_dump(mode="json")
        body["alerts"] = [AlertOut.model_validate(a).model_dump(mode="json") for a in found.alerts]
        typer.echo(json.dumps(body))
        return
    data = IncidentOut.model_validate(found.incident).model_dump()
    render_rows(["field", "value"], [(k, _cell(v, "table") if v is not None else "")
                                     for k, v in data.items()], output)
    if output == "table":
        console.print(f"{len(found.alerts)} of {found.incident.alert_count} alerts:", highlight=False)
        _print_alerts(found.alerts, output)


@incidents_app.command("merge")
def incidents_merge_cmd(
    ctx: typer.Context, target: Annotated[int, typer.Argument(help="The incident to keep.")],
    sources: Annotated[list[int], typer.Argument(help="Incidents whose alerts move into it.")],
    output: Format = "table",
) -> None:
    """Move every alert of some incidents into another (the emptied ones are closed)."""
    output, vigil = _format(output), state(ctx)
    with vigil.db.session() as session:
        merged = service.merge(session, target, sources, cli_principal())
    _print_incidents([merged], output, None)


@incidents_app.command("split")
def incidents_split_cmd(
    ctx: typer.Context, incident_id: Annotated[int, typer.Argument(help="Incident id.")],
    alert_ids: Annotated[list[int], typer.Argument(help="Alerts to move to a new incident.")],
    title: Annotated[str | None, typer.Option(help="Title of the new incident.")] = None,
    output: Format = "table",
) -> None:
    """Move some alerts of an incident into a new incident."""
    output, vigil = _format(output), state(ctx)
    with vigil.db.session() as session:
        new = service.split(session, incident_id, alert_ids, cli_principal(), title)
    _print_incidents([new], output, None)


def register(app: typer.Typer) -> None:
    app.add_typer(alerts_app, name="alerts")
    app.add_typer(incidents_app, name="incidents")
