"""``vigil cases``: list, show, open, update and close cases; tasks, comments, clocks, templates.

Cases are named ``CASE-12`` or ``12``. Whoever runs the command holds the data folder and acts
as an admin; the audit trail and the case history name them by their operating-system account.
Every listing prints as a table, JSON lines (``--format json``) or CSV (``--format csv``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from datetime import datetime
from typing import Annotated, Any, TypeVar

import typer
from pydantic import BaseModel, ValidationError

from vigil.app import Vigil
from vigil.cases import (
    CaseCreate,
    CaseDetail,
    CaseOut,
    CaseUpdate,
    ClockCreate,
    ClockPause,
    ClockStop,
    CommentCreate,
    Disposition,
    Phase,
    Policy,
    Priority,
    Severity,
    Stage,
    TaskCreate,
    TaskOut,
    TaskUpdate,
)
from vigil.cases import service as cases
from vigil.cli.common import console, render_rows, state
from vigil.core.auth import cli_principal
from vigil.core.errors import InputError
from vigil.core.timeutil import parse_duration, parse_iso, utcnow

cases_app = typer.Typer(help="Cases: investigations, their tasks, clocks and reviews.",
                        no_args_is_help=True)
task_app = typer.Typer(help="Tasks of a case.", no_args_is_help=True)
clock_app = typer.Typer(help="SLA and regulatory clocks of a case.", no_args_is_help=True)
cases_app.add_typer(task_app, name="task")
cases_app.add_typer(clock_app, name="clock")

M = TypeVar("M", bound=BaseModel)
FORMATS = ("table", "json", "csv")
_REF = re.compile(r"(?:case-)?(\d{1,9})", re.IGNORECASE)
Format = Annotated[str, typer.Option("--format", "--output", "-o", help="table, json or csv.")]
CaseRef = Annotated[str, typer.Argument(help="The case: CASE-12 or 12.", show_default=False)]
Many = Annotated[list[str] | None, typer.Option(help="Repeat for any of several values.")]


def _format(value: str) -> str:
    chosen = value.strip().lower()
    if chosen not in FORMATS:
        raise InputError(f"--format must be one of {', '.join(FORMATS)}, not {value!r}")
    return chosen


def case_id(ref: str) -> int:
    """The id in ``CASE-12`` or ``12``; InputError otherwise."""
    match = _REF.fullmatch(ref.strip())
    if not match or int(match.group(1)) < 1:
        raise InputError(f"not a case: {ref!r} (use CASE-12 or 12)")
    return int(match.group(1))


def _model(kind: type[M], values: dict[str, Any]) -> M:
    """Build an input model; a bad value is one InputError line naming the option."""
    try:
        return kind.model_validate({k: v for k, v in values.items() if v is not None})
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "input"
        raise InputError(f"{where.replace('_', '-')}: {first['msg']}") from None


def _choices(kind: type[Any], values: Sequence[str] | None, option: str) -> tuple[Any, ...]:
    try:
        return tuple(kind(v.strip().lower()) for v in values or ())
    except ValueError:
        names = ", ".join(m.value for m in kind)
        raise InputError(f"{option}: use {names}") from None


def _when(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M") if moment else ""


def _due(text: str | None) -> dict[str, Any]:
    """``--due``: a duration from now (``4h``, ``2d``) or a time (ISO 8601)."""
    if text is None:
        return {}
    try:
        parse_duration(text)
        return {"due_in": text}
    except ValueError:
        pass
    try:
        return {"due_at": parse_iso(text)}
    except ValueError:
        raise InputError(f"--due: use a duration (4h, 2d) or an ISO time, not {text!r}") from None


def _time(text: str | None, option: str) -> datetime | None:
    if text is None:
        return None
    try:
        return parse_iso(text)
    except ValueError:
        raise InputError(f"{option}: not an ISO 8601 time: {text!r}") from None


def _setup(ctx: typer.Context) -> tuple[Vigil, Policy]:
    vigil = state(ctx)
    return vigil, Policy.from_settings(vigil.settings)


def _case_line(case: CaseOut) -> str:
    people = ", ".join(a.username for a in case.assignees) or "unassigned"
    return (f"{case.ref} [{case.stage.value}/{case.phase.value}] {case.severity.value}/"
            f"{case.priority.value} {case.title} ({people})")


def _emit_json(model: BaseModel) -> None:
    typer.echo(json.dumps(model.model_dump(mode="json"), indent=2, ensure_ascii=False))


# -- cases ---------------------------------------------------------------------------------


@cases_app.command("list")
def list_cmd(ctx: typer.Context, stage: Many = None, severity: Many = None, priority: Many = None,
             phase: Many = None,
             assignee: Annotated[str | None, typer.Option(help="User name, or 'none'.")] = None,
             team: Annotated[str | None, typer.Option(help="security, operations ...")] = None,
             search: Annotated[str | None, typer.Option("--search", "-q",
                                                        help="Text in the title.")] = None,
             open_only: Annotated[bool, typer.Option("--open", help="Leave out closed cases.")] = False,
             sort: Annotated[str, typer.Option(help="Field, - in front for descending.")]
             = "-updated_at",
             limit: Annotated[int, typer.Option("--limit", "-n")] = 50,
             offset: int = 0, output: Format = "table") -> None:
    """List cases (newest change first), filtered and paged."""
    fmt = _format(output)
    order, descending = cases.parse_sort(sort)
    filters = cases.CaseFilter(
        stage=_choices(Stage, stage, "--stage"), severity=_choices(Severity, severity, "--severity"),
        priority=_choices(Priority, priority, "--priority"), phase=_choices(Phase, phase, "--phase"),
        assignee=assignee, team=team, q=search, open_only=open_only)
    page = cases.list_cases(state(ctx).db, filters, sort=order, descending=descending, limit=limit,
                            offset=offset)
    rows = [(c.ref, c.stage.value, c.phase.value, c.severity.value, c.priority.value, c.title,
             " ".join(a.username for a in c.assignees), _when(c.updated_at)) for c in page.items]
    render_rows(["case", "stage", "phase", "severity", "priority", "title", "assignees",
                 "updated (UTC)"], rows, fmt, title=f"{page.total} cases" if fmt == "table" else None)


@cases_app.command("show")
def show_cmd(ctx: typer.Context, ref: CaseRef, output: Format = "table") -> None:
    """Show a case with its tasks, clocks, observables, evidence and timeline."""
    fmt = _format(output)
    vigil, policy = _setup(ctx)
    detail = cases.get_case_detail(vigil.db, case_id(ref), policy=policy)
    if fmt == "json":
        _emit_json(detail)
    elif fmt == "csv":
        fields = detail.model_dump(mode="json", exclude={"tasks", "comments", "observables",
                                                         "evidence", "clocks", "review", "timeline"})
        render_rows(["field", "value"], [(k, json.dumps(v) if isinstance(v, list | dict) else v)
                                         for k, v in fields.items()], "csv")
    else:
        _print_detail(detail)


def _print_detail(detail: CaseDetail) -> None:
    console.print(_case_line(detail), markup=False, highlight=False)
    facts = [("disposition", detail.disposition.value if detail.disposition else ""),
             ("template", detail.template or ""), ("alerts", " ".join(map(str, detail.alert_ids))),
             ("opened", f"{_when(detail.created_at)} by {detail.created_by}"),
             ("personal data", "yes" if detail.personal_data else "no"),
             ("health data", "yes" if detail.health_data else "no")]
    for name, value in facts:
        if value:
            console.print(f"  {name}: {value}", markup=False, highlight=False)
    if detail.tasks:
        render_rows(["task", "status", "owner", "team", "due (UTC)", "title"],
                    [(t.id, t.status.value, t.owner_name or "", t.team or "", _when(t.due_at),
                      t.title + (" (overdue)" if t.overdue else "")) for t in detail.tasks],
                    "table", title="Tasks")
    render_rows(["clock", "name", "due (UTC)", "status"],
                [(c.id, c.name, _when(c.due_at), c.status) for c in detail.clocks], "table",
                title="Clocks")
    if detail.observables:
        render_rows(["type", "value", "links"],
                    [(o.type.value, o.value, len(o.links)) for o in detail.observables], "table",
                    title="Observables")
    render_rows(["when (UTC)", "kind", "what"],
                [(_when(i.at), i.kind, i.title) for i in detail.timeline], "table", title="Timeline")


@cases_app.command("create")
def create_cmd(
    ctx: typer.Context,
    title: Annotated[str, typer.Option(help="What the case is about.")],
    description: Annotated[str | None, typer.Option()] = None,
    severity: Annotated[str | None, typer.Option(help="informational, low, medium, high, critical.")]
    = None,
    priority: Annotated[str | None, typer.Option(help="low, medium, high, critical.")] = None,
    phase: Annotated[str | None, typer.Option(help="IR phase, e.g. containment.")] = None,
    template: Annotated[str | None, typer.Option(help="ransomware, phishing ... (see templates).")]
    = None,
    assignee: Annotated[list[str] | None, typer.Option(help="User name (repeat).")] = None,
    alert: Annotated[list[int] | None, typer.Option(help="Alert id to escalate (repeat).")] = None,
    incident: Annotated[int | None, typer.Option(help="Escalate every alert of this incident.")]
    = None,
    task: Annotated[list[str] | None, typer.Option(help="A first task's title (repeat).")] = None,
    tag: Annotated[list[str] | None, typer.Option(help="Tag (repeat).")] = None,
    personal_data: Annotated[bool, typer.Option(help="Personal data involved (GDPR Art. 33).")]
    = False,
    health_data: Annotated[bool, typer.Option(help="Health data involved (HIPAA).")] = False,
    aware_at: Annotated[str | None, typer.Option(help="When the breach became known (ISO).")] = None,
    output: Format = "table",
) -> None:
    """Open a case (from a template, from alerts); prints its reference."""
    fmt = _format(output)
    vigil, policy = _setup(ctx)
    values: dict[str, Any] = {
        "title": title, "description": description, "severity": severity, "priority": priority,
        "phase": phase, "template": template, "assignees": assignee, "alert_ids": alert,
        "incident_id": incident, "tasks": [{"title": t} for t in task or []] or None,
        "tags": tag, "aware_at": _time(aware_at, "--aware-at")}
    if personal_data:
        values["personal_data"] = True
    if health_data:
        values["health_data"] = True
    detail = cases.create_case(vigil.db, _model(CaseCreate, values), cli_principal(), policy=policy)
    if fmt == "json":
        _emit_json(detail)
    elif fmt == "csv":
        render_rows(["case", "title", "stage", "severity"],
                    [(detail.ref, detail.title, detail.stage.value, detail.severity.value)], "csv")
    else:
        console.print(f"opened {_case_line(detail)}", markup=False, highlight=False)
        for item in detail.tasks:
            console.print(f"  task {item.id}: {item.title} ({item.owner_name or item.team or '-'})",
                          markup=False, highlight=False)


def _print_case(case: CaseOut, fmt: str) -> None:
    if fmt == "json":
        _emit_json(case)
    elif fmt == "csv":
        render_rows(["case", "stage", "phase", "severity", "priority", "version"],
                    [(case.ref, case.stage.value, case.phase.value, case.severity.value,
                      case.priority.value, case.version)], "csv")
    else:
        console.print(_case_line(case), markup=False, highlight=False)


@cases_app.command("update")
def update_cmd(
    ctx: typer.Context, ref: CaseRef,
    title: Annotated[str | None, typer.Option()] = None,
    description: Annotated[str | None, typer.Option()] = None,
    stage: Annotated[str | None, typer.Option(help="acknowledged, in_progress, on_hold ...")] = None,
    phase: Annotated[str | None, typer.Option()] = None,
    severity: Annotated[str | None, typer.Option()] = None,
    priority: Annotated[str | None, typer.Option()] = None,
    assign: Annotated[list[str] | None, typer.Option(help="Add an assignee (repeat).")] = None,
    unassign: Annotated[list[str] | None, typer.Option(help="Remove an assignee (repeat).")] = None,
    personal_data: Annotated[bool | None, typer.Option("--personal-data/--no-personal-data")]
    = None,
    health_data: Annotated[bool | None, typer.Option("--health-data/--no-health-data")] = None,
    aware_at: Annotated[str | None, typer.Option(help="When the breach became known (ISO).")] = None,
    version: Annotated[int | None, typer.Option(help="Refuse if the case changed since.")] = None,
    output: Format = "table",
) -> None:
    """Change a case: stage, phase, severity, priority, assignees, data flags."""
    fmt = _format(output)
    vigil, policy = _setup(ctx)
    values: dict[str, Any] = {
        "title": title, "description": description, "stage": stage, "phase": phase,
        "severity": severity, "priority": priority, "add_assignees": assign,
        "remove_assignees": unassign, "personal_data": personal_data, "health_data": health_data,
        "aware_at": _time(aware_at, "--aware-at"), "version": version}
    if all(v is None for v in values.values()):
        raise InputError("nothing to change: give at least one option (see --help)")
    out = cases.update_case(vigil.db, case_id(ref), _model(CaseUpdate, values), cli_principal(),
                            policy=policy)
    _print_case(out, fmt)


@cases_app.command("close")
def close_cmd(ctx: typer.Context, ref: CaseRef,
              disposition: Annotated[str, typer.Option(help=", ".join(d.value for d in Disposition))],
              note: Annotated[str, typer.Option(help="The closing note.")],
              output: Format = "table") -> None:
    """Close a case with its disposition and closing note."""
    fmt = _format(output)
    vigil, policy = _setup(ctx)
    chosen = _choices(Disposition, [disposition], "--disposition")[0]
    if not note.strip():
        raise InputError("--note: a closing note is required")
    _print_case(cases.close_case(vigil.db, case_id(ref), chosen, note, cli_principal(),
                                 policy=policy), fmt)


@cases_app.command("comment")
def comment_cmd(ctx: typer.Context, ref: CaseRef,
                text: Annotated[str, typer.Argument(help="The comment; @name tells that person.")],
                ) -> None:
    """Comment on a case."""
    out = cases.add_comment(state(ctx).db, case_id(ref), _model(CommentCreate, {"body": text}),
                            cli_principal())
    mentioned = f" (told {', '.join(out.mentions)})" if out.mentions else ""
    typer.echo(f"comment {out.id} added{mentioned}")


@cases_app.command("templates")
def templates_cmd(ctx: typer.Context, output: Format = "table") -> None:
    """List the case templates (built-in and from the templates folder)."""
    fmt = _format(output)
    _vigil, policy = _setup(ctx)
    rows = [(t.name, t.title, t.severity.value, t.phase.value, len(t.tasks), t.origin)
            for t in cases.list_templates(policy).values()]
    render_rows(["name", "title", "severity", "phase", "tasks", "origin"], rows, fmt)


@cases_app.command("check-clocks")
def check_clocks_cmd(ctx: typer.Context) -> None:
    """Announce due and breached clocks now (the server does this periodically)."""
    vigil, policy = _setup(ctx)
    due, breached = cases.check_clocks(vigil.db, utcnow(), policy=policy)
    typer.echo(f"{due} clocks due soon, {breached} breached")


# -- tasks ---------------------------------------------------------------------------------


def _task_rows(items: Sequence[TaskOut]) -> list[tuple[Any, ...]]:
    return [(t.id, t.status.value, t.owner_name or "", t.team or "", _when(t.due_at),
             "yes" if t.overdue else "", t.title) for t in items]


_TASK_COLUMNS = ["task", "status", "owner", "team", "due (UTC)", "overdue", "title"]


@task_app.command("list")
def task_list_cmd(ctx: typer.Context, ref: CaseRef, output: Format = "table") -> None:
    """The tasks of a case."""
    fmt = _format(output)
    render_rows(_TASK_COLUMNS, _task_rows(cases.list_tasks(state(ctx).db, case_id(ref))), fmt)


@task_app.command("add")
def task_add_cmd(ctx: typer.Context, ref: CaseRef,
                 title: Annotated[str, typer.Argument(help="What to do.")],
                 owner: Annotated[str | None, typer.Option(help="User name.")] = None,
                 team: Annotated[str | None, typer.Option(help="Team to pick it up.")] = None,
                 due: Annotated[str | None, typer.Option(help="4h, 2d or an ISO time.")] = None,
                 mandatory: Annotated[bool, typer.Option(help="Must be done before closing.")]
                 = False, output: Format = "table") -> None:
    """Add a task to a case; its owner is told."""
    fmt = _format(output)
    data = _model(TaskCreate, {"title": title, "owner": owner, "team": team,
                               "mandatory": mandatory, **_due(due)})
    out = cases.add_task(state(ctx).db, case_id(ref), data, cli_principal())
    render_rows(_TASK_COLUMNS, _task_rows([out]), fmt)


@task_app.command("update")
def task_update_cmd(ctx: typer.Context, ref: CaseRef, task_id: Annotated[int, typer.Argument()],
                    status: Annotated[str | None, typer.Option(
                        help="todo, in_progress, on_hold, done, canceled.")] = None,
                    owner: Annotated[str | None, typer.Option()] = None,
                    due: Annotated[str | None, typer.Option(help="An ISO time.")] = None,
                    output: Format = "table") -> None:
    """Change a task's status, owner or due time."""
    fmt = _format(output)
    values: dict[str, Any] = {"status": status, "owner": owner,
                              "due_at": _time(due, "--due")}
    if all(v is None for v in values.values()):
        raise InputError("nothing to change: give --status, --owner or --due")
    out = cases.update_task(state(ctx).db, case_id(ref), task_id, _model(TaskUpdate, values),
                            cli_principal())
    render_rows(_TASK_COLUMNS, _task_rows([out]), fmt)


# -- clocks --------------------------------------------------------------------------------


@clock_app.command("list")
def clock_list_cmd(ctx: typer.Context, ref: CaseRef, output: Format = "table") -> None:
    """The clocks of a case and where each stands."""
    fmt = _format(output)
    vigil, policy = _setup(ctx)
    rows = [(c.id, c.kind.value, c.regime or "", c.name, _when(c.trigger_at), _when(c.due_at),
             c.status) for c in cases.list_clocks(vigil.db, case_id(ref), policy=policy)]
    render_rows(["clock", "kind", "regime", "name", "from (UTC)", "due (UTC)", "status"], rows, fmt)


@clock_app.command("add")
def clock_add_cmd(ctx: typer.Context, ref: CaseRef,
                  regime: Annotated[str | None, typer.Option(
                      help="GDPR-33, HIPAA-individual, HIPAA-media, HIPAA-business-associate, "
                           "custom.")] = None,
                  name: Annotated[str | None, typer.Option()] = None,
                  since: Annotated[str | None, typer.Option(
                      "--from", help="Trigger time (ISO; default the case's awareness time).")]
                  = None,
                  due: Annotated[str | None, typer.Option(help="For custom: 24h or an ISO time.")]
                  = None) -> None:
    """Add a regulatory obligation (--regime) or a custom deadline (--due)."""
    vigil, policy = _setup(ctx)
    values = {"kind": "regulatory" if regime else "custom", "regime": regime, "name": name,
              "trigger_at": _time(since, "--from"), **_due(due)}
    out = cases.add_clock(vigil.db, case_id(ref), _model(ClockCreate, values), cli_principal(),
                          policy=policy)
    typer.echo(f"clock {out.id}: {out.name}, due {_when(out.due_at)} UTC ({out.status})")


@clock_app.command("pause")
def clock_pause_cmd(ctx: typer.Context, ref: CaseRef, clock_id: Annotated[int, typer.Argument()],
                    reason: Annotated[str, typer.Option(help="Why (required, audited).")]) -> None:
    """Pause a clock; its deadline moves by the time it stays paused."""
    vigil, policy = _setup(ctx)
    out = cases.pause_clock(vigil.db, case_id(ref), clock_id, _model(ClockPause, {"reason": reason}),
                            cli_principal(), policy=policy)
    typer.echo(f"clock {out.id} paused: {out.pause_reason}")


@clock_app.command("resume")
def clock_resume_cmd(ctx: typer.Context, ref: CaseRef,
                     clock_id: Annotated[int, typer.Argument()]) -> None:
    """Resume a paused clock."""
    vigil, policy = _setup(ctx)
    out = cases.resume_clock(vigil.db, case_id(ref), clock_id, cli_principal(), policy=policy)
    typer.echo(f"clock {out.id} running, due {_when(out.due_at)} UTC")


@clock_app.command("stop")
def clock_stop_cmd(ctx: typer.Context, ref: CaseRef, clock_id: Annotated[int, typer.Argument()],
                   outcome: Annotated[str, typer.Option(help="met, not_required or canceled.")]
                   = "met",
                   note: Annotated[str, typer.Option(help="Why (required unless met).")] = "") -> None:
    """Stop a clock: met (e.g. the authority was notified), not required, or canceled."""
    vigil, policy = _setup(ctx)
    out = cases.stop_clock(vigil.db, case_id(ref), clock_id,
                           _model(ClockStop, {"outcome": outcome, "note": note}), cli_principal(),
                           policy=policy)
    typer.echo(f"clock {out.id} stopped: {out.status}")


def register(app: typer.Typer) -> None:
    """Add ``vigil cases`` to ``app``."""
    app.add_typer(cases_app, name="cases")
