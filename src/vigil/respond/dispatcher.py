"""The dispatcher: reads the outbox, matches each event against the rules, writes deliveries.

It keeps a cursor per consumer (``notify_cursors``): every outbox id at or below it has been
dispatched. On PostgreSQL, ids are handed out before commit, so a transaction that commits
late makes its id appear *behind* ids already seen. The dispatcher therefore re-reads the
events past the cursor on each pass and only moves the cursor past events older than
``settle_seconds``; a delivery is unique per (event, rule, recipient), so reading an event
again never sends it twice. Within one process, events already dispatched are remembered
and not matched again.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from vigil.core import outbox
from vigil.core.config import NotifySettings
from vigil.core.db import StateDB
from vigil.core.outbox import DomainEvent
from vigil.respond.channels import Message
from vigil.respond.models import Channel, ChannelKind, Cursor, Delivery, DeliveryStatus, Rule
from vigil.respond.schemas import SEVERITIES, check_address

Resolver = Callable[[Sequence[str]], Mapping[str, str | None]]
"""User names to e-mail addresses; a name left out (or None) has none."""

_RANK = {name: rank for rank, name in enumerate(SEVERITIES)}


@dataclass(frozen=True, slots=True)
class RuleSpec:
    """An enabled rule on an enabled channel, as matching needs it."""

    id: int
    name: str
    topics: frozenset[str]
    min_severity: str | None
    channel_id: int
    channel_name: str
    kind: ChannelKind
    event_recipients: bool
    addresses: tuple[str, ...]

    def matches(self, event: DomainEvent) -> bool:
        if event.topic.value not in self.topics:
            return False
        if self.min_severity is None:
            return True
        rank = _RANK.get((event.severity or "").lower())
        return rank is not None and rank >= _RANK[self.min_severity]


@dataclass(frozen=True, slots=True)
class DispatchReport:
    events: int
    deliveries: int
    cursor: int


def active_rules(session: Session) -> list[RuleSpec]:
    """The enabled rules whose channel is enabled, with the channel's fixed addresses."""
    rows = session.execute(select(Rule, Channel).join(Channel, Rule.channel_id == Channel.id)
                           .where(Rule.enabled, Channel.enabled).order_by(Rule.id)).all()
    specs = []
    for rule, channel in rows:
        fixed = list(json.loads(rule.addresses))
        if channel.kind == ChannelKind.EMAIL:
            fixed += json.loads(channel.config).get("to", [])
        specs.append(RuleSpec(rule.id, rule.name, frozenset(json.loads(rule.topics)),
                              rule.min_severity, channel.id, channel.name,
                              ChannelKind(channel.kind), rule.event_recipients, tuple(fixed)))
    return specs


def message_for(event: DomainEvent, rule: str | None) -> Message:
    return Message(event.id, event.topic.value, event.subject, event.severity, event.object_type,
                   event.object_id, event.recipients, event.details, event.created_at, rule)


def plan(event: DomainEvent, rule: RuleSpec, resolve: Resolver,
         now: datetime) -> list[dict[str, Any]]:
    """The delivery rows of one event for one matching rule.

    Webhook and chat channels get one delivery. E-mail gets one per address: the people the
    event names (when the rule says so, resolved to their addresses) and the fixed addresses,
    each once (a name that is no user but an address is taken as the address). A person
    without an address gets a ``failed`` delivery that says so, so the
    gap shows in the delivery log instead of passing silently.
    """
    message = message_for(event, rule.name)
    base = {"event_id": event.id, "topic": event.topic.value, "rule_id": rule.id,
            "channel_id": rule.channel_id, "rule_name": rule.name,
            "channel_name": rule.channel_name, "subject": event.subject[:512],
            "event": json.dumps(message.to_json(), default=str), "attempts": 0,
            "next_attempt_at": now, "created_at": now, "last_error": None,
            "status": DeliveryStatus.PENDING.value}
    if rule.kind != ChannelKind.EMAIL:
        return [{**base, "recipient": ""}]
    rows: list[dict[str, Any]] = []
    addresses: dict[str, str] = {}
    people = event.recipients if rule.event_recipients else ()
    found = resolve(people) if people else {}
    for person in people:
        address = found.get(person) or (person if _is_address(person) else None)
        if address is not None and _is_address(address):
            addresses.setdefault(address.lower(), address)
            continue
        why = "is unknown or has no e-mail address" if address is None else \
            "has an e-mail address that cannot be used"
        rows.append({**base, "recipient": f"user:{person}"[:320],
                     "status": DeliveryStatus.FAILED.value, "last_error": f"user {person!r} {why}"})
    for address in rule.addresses:
        addresses.setdefault(address.lower(), address)
    rows.extend({**base, "recipient": address} for address in addresses.values())
    return rows


def _is_address(text: str) -> bool:
    try:
        check_address(text)
    except ValueError:
        return False
    return True


def _insert_new(session: Session, table: type[Delivery] | type[Cursor]) -> Any:
    """``INSERT ... ON CONFLICT DO NOTHING`` on SQLite and PostgreSQL."""
    if session.get_bind().dialect.name == "postgresql":
        return postgresql.insert(table).on_conflict_do_nothing()
    return sqlite.insert(table).on_conflict_do_nothing()


def insert_deliveries(session: Session, rows: Sequence[dict[str, Any]]) -> int:
    """Insert delivery rows, skipping any already there (same event, rule and recipient)."""
    if not rows:
        return 0
    result = session.execute(_insert_new(session, Delivery).returning(Delivery.id), list(rows))
    return len(result.all())


class Dispatcher:
    """Turns outbox events into deliveries for one consumer name."""

    def __init__(self, db: StateDB, settings: NotifySettings, resolve: Resolver,
                 consumer: str = "notify") -> None:
        self.db = db
        self.settings = settings
        self.resolve = resolve
        self.consumer = consumer
        self._done: set[int] = set()

    def run_once(self, now: datetime) -> DispatchReport:
        """One pass over the outbox past the cursor."""
        with self.db.session() as session:
            cursor = self._cursor(session, now)
            rules = active_rules(session)
        settle_before = now - timedelta(seconds=self.settings.settle_seconds)
        too_old = (now - timedelta(seconds=self.settings.max_event_age)
                   if self.settings.max_event_age else None)
        settled, after, open_seen, events_seen, written = cursor, cursor, False, 0, 0
        while True:
            with self.db.session() as session:
                events = outbox.read_after(session, after, self.settings.batch_size)
            for event in events:
                if not open_seen and event.created_at <= settle_before:
                    settled = event.id
                else:
                    open_seen = True
            fresh = [e for e in events if e.id not in self._done]
            written += self._dispatch(fresh, rules, too_old, now)
            events_seen += len(fresh)
            if len(events) < self.settings.batch_size:
                break
            after = events[-1].id
        if settled > cursor:
            self._advance(settled, now)
        self._done = {i for i in self._done if i > settled}
        return DispatchReport(events_seen, written, max(settled, cursor))

    def _dispatch(self, events: Iterable[DomainEvent], rules: Sequence[RuleSpec],
                  too_old: datetime | None, now: datetime) -> int:
        rows: list[dict[str, Any]] = []
        ids = []
        for event in events:
            ids.append(event.id)
            if too_old is not None and event.created_at < too_old:
                continue
            for rule in rules:
                if rule.matches(event):
                    rows.extend(plan(event, rule, self.resolve, now))
        with self.db.session() as session:
            written = insert_deliveries(session, rows)
        self._done.update(ids)
        return written

    def _cursor(self, session: Session, now: datetime) -> int:
        query = select(Cursor.last_id).where(Cursor.consumer == self.consumer)
        last_id = session.scalar(query)
        if last_id is None:
            session.execute(_insert_new(session, Cursor),
                            {"consumer": self.consumer, "last_id": 0, "updated_at": now})
            last_id = session.scalar(query)
        return int(last_id or 0)

    def _advance(self, last_id: int, now: datetime) -> None:
        """Move the cursor forward (never back, should two dispatchers race)."""
        with self.db.session() as session:
            session.execute(update(Cursor).where(Cursor.consumer == self.consumer,
                                                 Cursor.last_id < last_id)
                            .values(last_id=last_id, updated_at=now))
