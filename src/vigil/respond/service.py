"""Notification use cases: channels and rules (each change audited), the delivery log, tests.

Every change is made on behalf of a principal holding ``notify:admin`` and writes an audit
record in the same transaction; secrets never reach the audit trail or an output, only
whether one is set.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import httpx
from pydantic import ValidationError
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from vigil.audit.service import record
from vigil.core.auth import Permission, Principal
from vigil.core.config import NotifySettings
from vigil.core.db import StateDB
from vigil.core.errors import ConflictError, InputError, NotFoundError
from vigil.core.timeutil import to_utc, utcnow
from vigil.respond import channels
from vigil.respond.channels import ChannelSpec, Message
from vigil.respond.models import Attempt, Channel, ChannelKind, Delivery, DeliveryStatus, Rule
from vigil.respond.notifier import http_client
from vigil.respond.schemas import (
    CONFIG_TYPES,
    MAX_ID,
    AttemptOut,
    ChannelConfig,
    ChannelOut,
    ChannelPatch,
    DeliveryDetail,
    DeliveryOut,
    DeliveryPage,
    EmailConfig,
    NewChannel,
    RuleIn,
    RuleOut,
    RulePatch,
    TestResult,
    check_address,
)
from vigil.respond.sender import Sender, channel_spec

MAX_PAGE = 500
_CHANNEL, _RULE, _DELIVERY = "notify_channel", "notify_rule", "notify_delivery"


def _invalid(exc: ValidationError, prefix: str) -> InputError:
    first = exc.errors()[0]
    where = ".".join(str(p) for p in (prefix, *first["loc"]) if p != "")
    return InputError(f"{where}: {first['msg']}")


def validate_config(kind: ChannelKind, config: Mapping[str, object]) -> ChannelConfig:
    """The typed settings of a ``kind`` channel; InputError naming the first bad field."""
    try:
        typed = CONFIG_TYPES[kind].model_validate(dict(config))
    except ValidationError as exc:
        raise _invalid(exc, "config") from exc
    assert isinstance(typed, ChannelConfig)
    return typed


def _shown_url(url: str, keep_path: bool) -> str:
    parsed = httpx.URL(url)
    if keep_path and not parsed.query:
        return url
    base = f"{parsed.scheme}://{parsed.netloc.decode('ascii')}"
    return f"{base}{parsed.path}?…" if keep_path else f"{base}/…"


def shown_config(kind: ChannelKind, config: ChannelConfig) -> ChannelConfig:
    """The settings as outputs show them: a Slack or Teams URL (a credential) by its host only,
    a webhook URL without its query string."""
    if isinstance(config, EmailConfig):
        return config
    return config.model_copy(update={"url": _shown_url(config.url, kind == ChannelKind.WEBHOOK)})


def _channel_out(row: Channel) -> ChannelOut:
    kind = ChannelKind(row.kind)
    config = shown_config(kind, validate_config(kind, json.loads(row.config)))
    return ChannelOut(id=row.id, name=row.name, kind=kind, config=config,
                      has_secret=bool(row.secret), enabled=row.enabled,
                      created_at=to_utc(row.created_at), updated_at=to_utc(row.updated_at))


def _channel_audit(row: Channel) -> dict[str, Any]:
    view = _channel_out(row)
    return {"name": row.name, "kind": row.kind, "enabled": row.enabled,
            "config": view.config.model_dump(), "secret": "set" if row.secret else None}


def _changes(before: dict[str, Any], after: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    keys = [k for k in after if before.get(k) != after[k]]
    return {k: before.get(k) for k in keys}, {k: after[k] for k in keys}


def _id(ref: int | str) -> int | None:
    """``ref`` as a row id (a name is never all digits), or None when it is a name."""
    if isinstance(ref, str) and not (ref.isascii() and ref.isdigit()):
        return None
    value = int(ref)
    return value if 1 <= value <= MAX_ID else 0


def _channel_row(session: Session, ref: int | str) -> Channel:
    if (row_id := _id(ref)) is not None:
        row = session.get(Channel, row_id) if row_id else None
    else:
        row = session.scalar(select(Channel).where(Channel.name == ref))
    if row is None:
        raise NotFoundError(f"no notification channel {ref!r}")
    return row


def _unique(session: Session, table: type[Channel] | type[Rule], name: str, other: int | None) -> None:
    found = session.scalar(select(table.id).where(table.name == name))
    if found is not None and found != other:
        what = "channel" if table is Channel else "rule"
        raise ConflictError(f"a notification {what} named {name!r} exists already")


def _flush(session: Session, name: str) -> None:
    try:
        session.flush()
    except IntegrityError as exc:
        raise ConflictError(f"{name!r} exists already") from exc


# -- channels --------------------------------------------------------------------------------


def list_channels(db: StateDB) -> list[ChannelOut]:
    with db.session() as session:
        return [_channel_out(r) for r in session.scalars(select(Channel).order_by(Channel.name))]


def get_channel(db: StateDB, ref: int | str) -> ChannelOut:
    """A channel by id or name."""
    with db.session() as session:
        return _channel_out(_channel_row(session, ref))


def create_channel(db: StateDB, who: Principal, data: NewChannel) -> ChannelOut:
    who.require(Permission.NOTIFY_ADMIN)
    now = utcnow()
    with db.session() as session:
        _unique(session, Channel, data.name, None)
        row = Channel(name=data.name, kind=data.kind, config=data.config.model_dump_json(),
                      secret=data.secret, enabled=data.enabled, created_at=now, updated_at=now)
        session.add(row)
        _flush(session, data.name)
        record(session, who, "create", _CHANNEL, row.id, None, _channel_audit(row))
        return _channel_out(row)


def update_channel(db: StateDB, who: Principal, ref: int | str, patch: ChannelPatch) -> ChannelOut:
    """Change the fields given; ``config`` keys merge into the current settings."""
    who.require(Permission.NOTIFY_ADMIN)
    with db.session() as session:
        row = _channel_row(session, ref)
        before, old_secret = _channel_audit(row), row.secret
        if patch.name is not None:
            _unique(session, Channel, patch.name, row.id)
            row.name = patch.name
        if patch.config is not None:
            merged = {**json.loads(row.config), **patch.config}
            row.config = validate_config(ChannelKind(row.kind), merged).model_dump_json()
        if "secret" in patch.model_fields_set:
            row.secret = patch.secret
        if patch.enabled is not None:
            row.enabled = patch.enabled
        old, new = _changes(before, _channel_audit(row))
        if row.secret != old_secret:
            old["secret"], new["secret"] = before["secret"], "changed" if row.secret else None
        if new:
            row.updated_at = utcnow()
            _flush(session, row.name)
            record(session, who, "update", _CHANNEL, row.id, old, new)
        return _channel_out(row)


def delete_channel(db: StateDB, who: Principal, ref: int | str) -> None:
    """Remove a channel no rule uses; its pending deliveries fail ("channel was removed")."""
    who.require(Permission.NOTIFY_ADMIN)
    with db.session() as session:
        row = _channel_row(session, ref)
        users = session.scalars(select(Rule.name).where(Rule.channel_id == row.id)
                                .order_by(Rule.name)).all()
        if users:
            raise ConflictError(f"channel {row.name!r} is used by the rules {', '.join(users)}; "
                                "remove or move them first")
        session.execute(update(Delivery).where(Delivery.channel_id == row.id,
                                               Delivery.status == DeliveryStatus.PENDING.value)
                        .values(status=DeliveryStatus.FAILED.value,
                                last_error="channel was removed"))
        record(session, who, "delete", _CHANNEL, row.id, _channel_audit(row), None)
        session.delete(row)


def test_channel(db: StateDB, who: Principal, ref: int | str, settings: NotifySettings, *,
                 to: str | None = None, transport: httpx.BaseTransport | None = None,
                 now: datetime | None = None) -> TestResult:
    """Send a test message now (one attempt, kept in the delivery log) and say how it went.

    An e-mail channel sends to ``to``, or else to its first fixed address.
    """
    who.require(Permission.NOTIFY_ADMIN)
    at = now or utcnow()
    with db.session() as session:
        spec = channel_spec(_channel_row(session, ref))
    recipient = _test_recipient(spec, to)
    message = Message(None, "test", f"Test message from Vigil for channel {spec.name}", "low",
                      "notify_channel", str(spec.id), (), {"requested_by": who.actor}, at,
                      test=True)
    with db.session() as session:
        delivery = Delivery(event_id=None, topic="test", rule_id=None, channel_id=spec.id,
                            rule_name=None, channel_name=spec.name, recipient=recipient,
                            subject=message.subject, event=json.dumps(message.to_json()),
                            status=DeliveryStatus.PENDING.value, attempts=0, next_attempt_at=at,
                            created_at=at)
        session.add(delivery)
        session.flush()
        delivery_id = delivery.id
    with http_client(settings, transport) as client:
        outcome = channels.send(spec, message, recipient, delivery_id, client,
                                settings.smtp_timeout)
        Sender(db, settings, client).record(delivery_id, outcome, at, max_attempts=1)
    return TestResult(ok=outcome.ok, delivery_id=delivery_id, recipient=recipient,
                      status_code=outcome.status_code, reply=outcome.reply, error=outcome.error)


def _test_recipient(spec: ChannelSpec, to: str | None) -> str:
    if not isinstance(spec.config, EmailConfig):
        if to is not None:
            raise InputError(f"channel {spec.name!r} is a {spec.kind.value} channel: "
                             "a test recipient is only for e-mail channels")
        return ""
    if to is None:
        if not spec.config.to:
            raise InputError(f"channel {spec.name!r} has no fixed address: "
                             "give an address to send the test to")
        return spec.config.to[0]
    try:
        return check_address(to)
    except ValueError as exc:
        raise InputError(str(exc)) from exc


# -- rules -----------------------------------------------------------------------------------


def _rule_out(row: Rule, channel: str) -> RuleOut:
    return RuleOut.model_validate({
        "id": row.id, "name": row.name, "topics": json.loads(row.topics),
        "min_severity": row.min_severity, "channel_id": row.channel_id, "channel": channel,
        "event_recipients": row.event_recipients, "addresses": json.loads(row.addresses),
        "enabled": row.enabled, "created_at": to_utc(row.created_at),
        "updated_at": to_utc(row.updated_at)})


def _rule_audit(row: Rule, channel: str) -> dict[str, Any]:
    return _rule_out(row, channel).model_dump(mode="json",
                                              exclude={"id", "created_at", "updated_at"})


def _check_rule(row: Rule, channel: Channel) -> None:
    """A rule must be able to reach someone on its channel."""
    addresses = json.loads(row.addresses)
    if channel.kind != ChannelKind.EMAIL.value:
        if addresses or row.event_recipients:
            raise InputError(
                f"channel {channel.name!r} is a {channel.kind} channel: recipients (event "
                "recipients, addresses) are for e-mail channels; its messages name the "
                "event's people already")
        return
    fixed = json.loads(channel.config).get("to", [])
    if not (addresses or row.event_recipients or fixed):
        raise InputError(f"the rule names no recipient: e-mail channel {channel.name!r} has no "
                         "fixed address, so give addresses or event_recipients")


def list_rules(db: StateDB) -> list[RuleOut]:
    with db.session() as session:
        rows = session.execute(select(Rule, Channel.name).join(Channel, Rule.channel_id == Channel.id)
                               .order_by(Rule.name)).all()
        return [_rule_out(rule, name) for rule, name in rows]


def _rule_row(session: Session, ref: int | str) -> Rule:
    if (row_id := _id(ref)) is not None:
        row = session.get(Rule, row_id) if row_id else None
    else:
        row = session.scalar(select(Rule).where(Rule.name == ref))
    if row is None:
        raise NotFoundError(f"no notification rule {ref!r}")
    return row


def get_rule(db: StateDB, ref: int | str) -> RuleOut:
    """A rule by id or name."""
    with db.session() as session:
        row = _rule_row(session, ref)
        return _rule_out(row, session.get_one(Channel, row.channel_id).name)


def _input_channel(session: Session, channel_id: int) -> Channel:
    row = session.get(Channel, channel_id) if _id(channel_id) else None
    if row is None:
        raise InputError(f"channel_id: no notification channel with id {channel_id}")
    return row


def create_rule(db: StateDB, who: Principal, data: RuleIn) -> RuleOut:
    who.require(Permission.NOTIFY_ADMIN)
    now = utcnow()
    with db.session() as session:
        channel = _input_channel(session, data.channel_id)
        _unique(session, Rule, data.name, None)
        row = Rule(name=data.name, topics=json.dumps(sorted({t.value for t in data.topics})),
                   min_severity=data.min_severity, channel_id=channel.id,
                   event_recipients=data.event_recipients, addresses=json.dumps(data.addresses),
                   enabled=data.enabled, created_at=now, updated_at=now)
        _check_rule(row, channel)
        session.add(row)
        _flush(session, data.name)
        record(session, who, "create", _RULE, row.id, None, _rule_audit(row, channel.name))
        return _rule_out(row, channel.name)


def update_rule(db: StateDB, who: Principal, ref: int | str, patch: RulePatch) -> RuleOut:
    who.require(Permission.NOTIFY_ADMIN)
    with db.session() as session:
        row = _rule_row(session, ref)
        channel = session.get_one(Channel, row.channel_id)
        before = _rule_audit(row, channel.name)
        given = patch.model_fields_set
        if patch.name is not None:
            _unique(session, Rule, patch.name, row.id)
            row.name = patch.name
        if patch.topics is not None:
            row.topics = json.dumps(sorted({t.value for t in patch.topics}))
        if "min_severity" in given:
            row.min_severity = patch.min_severity
        if patch.channel_id is not None:
            channel = _input_channel(session, patch.channel_id)
            row.channel_id = channel.id
        if patch.event_recipients is not None:
            row.event_recipients = patch.event_recipients
        if patch.addresses is not None:
            row.addresses = json.dumps(patch.addresses)
        if patch.enabled is not None:
            row.enabled = patch.enabled
        _check_rule(row, channel)
        after = _rule_audit(row, channel.name)
        if after != before:
            row.updated_at = utcnow()
            _flush(session, row.name)
            record(session, who, "update", _RULE, row.id, *_changes(before, after))
        return _rule_out(row, channel.name)


def delete_rule(db: StateDB, who: Principal, ref: int | str) -> None:
    """Remove a rule; its deliveries stay in the log (pending ones are still sent)."""
    who.require(Permission.NOTIFY_ADMIN)
    with db.session() as session:
        row = _rule_row(session, ref)
        channel = session.get_one(Channel, row.channel_id)
        record(session, who, "delete", _RULE, row.id, _rule_audit(row, channel.name), None)
        session.delete(row)


# -- deliveries ------------------------------------------------------------------------------


def _delivery_out(row: Delivery) -> DeliveryOut:
    pending = row.status == DeliveryStatus.PENDING.value
    return DeliveryOut(id=row.id, event_id=row.event_id, topic=row.topic, rule_id=row.rule_id,
                       rule=row.rule_name, channel_id=row.channel_id, channel=row.channel_name,
                       recipient=row.recipient, subject=row.subject,
                       status=DeliveryStatus(row.status), attempts=row.attempts,
                       next_attempt_at=to_utc(row.next_attempt_at) if pending else None,
                       last_error=row.last_error, created_at=to_utc(row.created_at),
                       sent_at=to_utc(row.sent_at) if row.sent_at else None)


def list_deliveries(db: StateDB, *, status: DeliveryStatus | None = None,
                    channel: int | str | None = None, rule: int | str | None = None,
                    event_id: int | None = None, before: int | None = None,
                    limit: int = 100) -> DeliveryPage:
    """Deliveries newest first, filtered; page on with ``before`` = the page's ``next_before``."""
    if not 1 <= limit <= MAX_PAGE:
        raise InputError(f"limit must be 1..{MAX_PAGE}")
    for name, value in (("event id", event_id), ("before", before)):
        if value is not None and not 1 <= value <= MAX_ID:
            raise InputError(f"{name} must be 1..{MAX_ID}")
    query = select(Delivery).order_by(Delivery.id.desc()).limit(limit + 1)
    with db.session() as session:
        if status is not None:
            query = query.where(Delivery.status == DeliveryStatus(status).value)
        if channel is not None:
            query = query.where(Delivery.channel_id == _channel_row(session, channel).id)
        if rule is not None:
            query = query.where(Delivery.rule_id == _rule_row(session, rule).id)
        if event_id is not None:
            query = query.where(Delivery.event_id == event_id)
        if before is not None:
            query = query.where(Delivery.id < before)
        rows = session.scalars(query).all()
    page = [_delivery_out(r) for r in rows[:limit]]
    return DeliveryPage(deliveries=page, next_before=page[-1].id if len(rows) > limit else None)


def get_delivery(db: StateDB, delivery_id: int) -> DeliveryDetail:
    """A delivery with every attempt, oldest first."""
    with db.session() as session:
        row = session.get(Delivery, delivery_id) if _id(delivery_id) else None
        if row is None:
            raise NotFoundError(f"no delivery with id {delivery_id}")
        attempts = session.scalars(select(Attempt).where(Attempt.delivery_id == delivery_id)
                                   .order_by(Attempt.id)).all()
        log = [AttemptOut(number=a.number, at=to_utc(a.at), ok=a.ok, status_code=a.status_code,
                          reply=a.reply, error=a.error, duration_ms=a.duration_ms)
               for a in attempts]
        return DeliveryDetail(**_delivery_out(row).model_dump(), attempt_log=log)


def retry_delivery(db: StateDB, who: Principal, delivery_id: int,
                   now: datetime | None = None) -> DeliveryOut:
    """Send a failed delivery again (with a fresh count of attempts) at the next pass."""
    who.require(Permission.NOTIFY_ADMIN)
    with db.session() as session:
        row = session.get(Delivery, delivery_id) if _id(delivery_id) else None
        if row is None:
            raise NotFoundError(f"no delivery with id {delivery_id}")
        if row.status != DeliveryStatus.FAILED.value:
            raise ConflictError(f"delivery {delivery_id} is {row.status}: only a failed delivery "
                                "is retried")
        if row.channel_id is None:
            raise ConflictError(f"delivery {delivery_id}: its channel was removed")
        row.status, row.attempts = DeliveryStatus.PENDING.value, 0
        row.next_attempt_at, row.last_error = now or utcnow(), None
        record(session, who, "retry", _DELIVERY, row.id, {"status": "failed"},
               {"status": "pending"})
        return _delivery_out(row)

