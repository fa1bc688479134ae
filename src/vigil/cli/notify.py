"""``vigil notify``: notification channels and rules, the delivery log, one notifier pass.

Secrets (a webhook's HMAC key, an SMTP password) are never arguments: they are read from
standard input (``--secret-stdin``) or from an environment variable (``--secret-env``).
"""

from __future__ import annotations

import os
import sys
from typing import Annotated

import typer
from pydantic import ValidationError

from vigil.cli.common import console, render_rows, state
from vigil.core.auth import cli_principal
from vigil.core.errors import InputError
from vigil.core.outbox import Topic
from vigil.respond import service
from vigil.respond.models import ChannelKind, DeliveryStatus
from vigil.respond.notifier import Notifier
from vigil.respond.schemas import CHANNEL_IN, SEVERITIES, ChannelOut, RuleIn

notify_app = typer.Typer(help="Notifications: channels, rules, the delivery log.",
                         no_args_is_help=True)
channels_app = typer.Typer(help="Where notifications go: webhook, Slack, Teams, e-mail.",
                           no_args_is_help=True)
rules_app = typer.Typer(help="Which events go to which channel, and to whom.",
                        no_args_is_help=True)

OUTPUTS = ("table", "json", "csv")
OutputOption = Annotated[str, typer.Option("--format", "--output", "-o", help="table, json or csv.")]
_OPTION_OF = {"url": "--url", "details": "--details", "card": "--card", "host": "--smtp-host",
              "port": "--smtp-port", "starttls": "--starttls", "tls": "--tls",
              "username": "--username", "from_address": "--from", "to": "--to",
              "name": "NAME", "secret": "the secret", "kind": "--kind"}


def _format(output: str) -> str:
    value = output.strip().lower()
    if value not in OUTPUTS:
        raise InputError(f"--format must be one of {', '.join(OUTPUTS)}, not {output!r}")
    return value


def _secret(from_stdin: bool, env_name: str | None) -> str | None:
    if from_stdin and env_name:
        raise InputError("give the secret with --secret-stdin or --secret-env, not both")
    if from_stdin:
        secret = sys.stdin.readline().rstrip("\r\n")
        if not secret:
            raise InputError("--secret-stdin: no secret on standard input")
        return secret
    if env_name:
        secret = os.environ.get(env_name)
        if not secret:
            raise InputError(f"--secret-env: the environment variable {env_name} is not set")
        return secret
    return None


def _invalid(exc: ValidationError) -> InputError:
    first = exc.errors()[0]
    fields = [str(p) for p in first["loc"] if str(p) not in {k.value for k in ChannelKind}]
    named = [_OPTION_OF[f] for f in fields if f in _OPTION_OF]
    where = named[-1] if named else ".".join(fields) or "input"
    message = first["msg"]
    if first["type"] == "extra_forbidden":
        message = "not an option of this kind of channel"
    return InputError(f"{where}: {message}")


@channels_app.command("add")
def channels_add(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Channel name (letters, digits, '_', '.', '-').")],
    kind: Annotated[str, typer.Option(help="webhook, slack, teams or email.")],
    url: Annotated[str | None, typer.Option(help="Webhook URL (webhook, slack, teams).")] = None,
    details: Annotated[bool | None, typer.Option(
        "--details", help="Slack/Teams: include the event's details.")] = None,
    card: Annotated[str | None, typer.Option(help="Teams: adaptive or messagecard.")] = None,
    smtp_host: Annotated[str | None, typer.Option(help="E-mail: SMTP server.")] = None,
    smtp_port: Annotated[int | None, typer.Option(help="E-mail: SMTP port (25).")] = None,
    starttls: Annotated[bool | None, typer.Option("--starttls", help="E-mail: STARTTLS.")] = None,
    tls: Annotated[bool | None, typer.Option("--tls", help="E-mail: TLS from the start.")] = None,
    username: Annotated[str | None, typer.Option(help="E-mail: SMTP login.")] = None,
    from_address: Annotated[str | None, typer.Option("--from", help="E-mail: sender.")] = None,
    to: Annotated[list[str] | None, typer.Option(
        help="E-mail: an address every message goes to (repeat for more).")] = None,
    secret_stdin: Annotated[bool, typer.Option(
        "--secret-stdin", help="Read the HMAC key or SMTP password from standard input.")] = False,
    secret_env: Annotated[str | None, typer.Option(
        help="Read the HMAC key or SMTP password from this environment variable.")] = None,
    disabled: Annotated[bool, typer.Option("--disabled", help="Add it switched off.")] = False,
) -> None:
    """Add a channel, e.g. ``--kind webhook --url https://... --secret-env HOOK_KEY``."""
    if kind not in set(ChannelKind):
        raise InputError(f"--kind must be one of {', '.join(ChannelKind)}, not {kind!r}")
    options = {"url": url, "details": details, "card": card, "host": smtp_host,
               "port": smtp_port, "starttls": starttls, "tls": tls, "username": username,
               "from_address": from_address, "to": to}
    config = {k: v for k, v in options.items() if v is not None}
    try:
        data = CHANNEL_IN.validate_python({"name": name, "kind": kind, "config": config,
                                           "secret": _secret(secret_stdin, secret_env),
                                           "enabled": not disabled})
    except ValidationError as exc:
        raise _invalid(exc) from exc
    channel = service.create_channel(state(ctx).db, cli_principal(), data)
    typer.echo(f"channel {channel.name} added ({channel.kind.value}, id {channel.id})")


def _target(channel: ChannelOut) -> str:
    config = channel.config.model_dump()
    if channel.kind == ChannelKind.EMAIL:
        to = ", ".join(config["to"])
        return f"{config['host']}:{config['port']}" + (f" → {to}" if to else "")
    return str(config["url"])


@channels_app.command("list")
def channels_list(ctx: typer.Context, output: OutputOption = "table") -> None:
    """List the channels (secrets are never shown, only whether one is set)."""
    fmt = _format(output)
    found = service.list_channels(state(ctx).db)
    rows = [(c.id, c.name, c.kind.value, _target(c), "yes" if c.has_secret else "no",
             "yes" if c.enabled else "no") for c in found]
    render_rows(["id", "name", "kind", "target", "secret", "enabled"], rows, fmt)
    if fmt == "table" and not found:
        console.print("no channels: add one with 'vigil notify channels add NAME --kind ...'",
                      highlight=False)


@channels_app.command("remove")
def channels_remove(ctx: typer.Context, name: Annotated[str, typer.Argument(
        help="Channel name or id.")]) -> None:
    """Remove a channel that no rule uses."""
    service.delete_channel(state(ctx).db, cli_principal(), name)
    typer.echo(f"channel {name} removed")


@channels_app.command("test")
def channels_test(ctx: typer.Context,
                  name: Annotated[str, typer.Argument(help="Channel name or id.")],
                  to: Annotated[str | None, typer.Option(
                      help="E-mail: send the test here (default: the first fixed address).")]
                  = None) -> None:
    """Send a test message now and say how it went (exit code 1 when it failed)."""
    vigil = state(ctx)
    result = service.test_channel(vigil.db, cli_principal(), name, vigil.settings.notify, to=to)
    answer = result.reply or (f"HTTP {result.status_code}" if result.status_code else "")
    where = f" to {result.recipient}" if result.recipient else ""
    if result.ok:
        typer.echo(f"test message sent{where}: {answer}".rstrip(": "))
        return
    typer.echo(f"test message failed{where}: {result.error}"
               + (f" ({answer})" if answer and answer != result.error else ""), err=True)
    raise typer.Exit(1)


@rules_app.command("add")
def rules_add(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Rule name (letters, digits, '_', '.', '-').")],
    channel: Annotated[str, typer.Option(help="Channel name or id.")],
    topic: Annotated[list[str], typer.Option(
        help=f"Event topic (repeat for more): {', '.join(t.value for t in Topic)}.")],
    min_severity: Annotated[str | None, typer.Option(
        help=f"Only events of this severity or above: {', '.join(SEVERITIES)}.")] = None,
    event_recipients: Annotated[bool, typer.Option(
        "--event-recipients", help="E-mail the people the event names (assignee, mentioned).")]
    = False,
    to: Annotated[list[str] | None, typer.Option(
        help="E-mail this address too (repeat for more).")] = None,
    disabled: Annotated[bool, typer.Option("--disabled", help="Add it switched off.")] = False,
) -> None:
    """Add a rule, e.g. ``--topic alert.created --min-severity high --channel soc-hook``."""
    db = state(ctx).db
    target = service.get_channel(db, channel)
    try:
        data = RuleIn.model_validate({"name": name, "topics": topic, "min_severity": min_severity,
                                      "channel_id": target.id, "event_recipients": event_recipients,
                                      "addresses": to or [], "enabled": not disabled})
    except ValidationError as exc:
        first = exc.errors()[0]
        option = {"topics": "--topic", "min_severity": "--min-severity", "addresses": "--to",
                  "name": "NAME"}.get(str(first["loc"][0]), str(first["loc"][0]))
        raise InputError(f"{option}: {first['msg']}") from exc
    rule = service.create_rule(db, cli_principal(), data)
    typer.echo(f"rule {rule.name} added (id {rule.id}): {', '.join(rule.topics)} → {rule.channel}")


@rules_app.command("list")
def rules_list(ctx: typer.Context, output: OutputOption = "table") -> None:
    """List the rules."""
    fmt = _format(output)
    found = service.list_rules(state(ctx).db)
    rows = [(r.id, r.name, ", ".join(r.topics), r.min_severity or "", r.channel,
             ", ".join((["event recipients"] if r.event_recipients else []) + r.addresses),
             "yes" if r.enabled else "no") for r in found]
    render_rows(["id", "name", "topics", "min severity", "channel", "recipients", "enabled"],
                rows, fmt)
    if fmt == "table" and not found:
        console.print("no rules: add one with 'vigil notify rules add NAME --channel ... "
                      "--topic ...'", highlight=False)


@rules_app.command("remove")
def rules_remove(ctx: typer.Context, name: Annotated[str, typer.Argument(
        help="Rule name or id.")]) -> None:
    """Remove a rule (its deliveries stay in the log)."""
    service.delete_rule(state(ctx).db, cli_principal(), name)
    typer.echo(f"rule {name} removed")


def deliveries(
    ctx: typer.Context,
    status: Annotated[str | None, typer.Option(help="pending, sent or failed.")] = None,
    channel: Annotated[str | None, typer.Option(help="Channel name or id.")] = None,
    rule: Annotated[str | None, typer.Option(help="Rule name or id.")] = None,
    event: Annotated[int | None, typer.Option(help="Outbox event id.")] = None,
    limit: Annotated[int, typer.Option(help="At most this many, newest first.")] = 50,
    output: OutputOption = "table",
) -> None:
    """The delivery log: each message, its state, attempts and last error."""
    fmt = _format(output)
    try:
        wanted = DeliveryStatus(status) if status is not None else None
    except ValueError:
        raise InputError(f"--status must be one of {', '.join(DeliveryStatus)}") from None
    page = service.list_deliveries(state(ctx).db, status=wanted, channel=channel, rule=rule,
                                   event_id=event, limit=limit)
    rows = [(d.id, d.created_at.isoformat(timespec="seconds"), d.topic, d.event_id, d.rule,
             d.channel, d.recipient, d.status.value, d.attempts, d.last_error or "")
            for d in page.deliveries]
    render_rows(["id", "created", "topic", "event", "rule", "channel", "recipient", "status",
                 "attempts", "last error"], rows, fmt)


def retry(ctx: typer.Context, delivery_id: Annotated[int, typer.Argument(
        help="The id of a failed delivery.")]) -> None:
    """Send a failed delivery again at the next pass."""
    service.retry_delivery(state(ctx).db, cli_principal(), delivery_id)
    typer.echo(f"delivery {delivery_id} will be sent again")


def run(ctx: typer.Context) -> None:
    """One notifier pass: read new events, queue what the rules ask for, send what is due."""
    vigil = state(ctx)
    notifier = Notifier(vigil.db, vigil.settings.notify)
    try:
        report = notifier.run_once()
    finally:
        notifier.stop()
    typer.echo(f"{report.events} events read, {report.deliveries} deliveries queued; "
               f"{report.sent} sent, {report.retrying} to retry, {report.failed} failed")


def register(app: typer.Typer) -> None:
    """Add ``vigil notify``."""
    notify_app.add_typer(channels_app, name="channels")
    notify_app.add_typer(rules_app, name="rules")
    notify_app.command("deliveries")(deliveries)
    notify_app.command("retry")(retry)
    notify_app.command("run")(run)
    app.add_typer(notify_app, name="notify")
