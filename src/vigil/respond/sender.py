"""The sender: delivers what is due, records every attempt, retries with back-off.

A pass takes the pending deliveries whose time has come (a bounded share per channel), groups
them by channel and works the channels side by side, each channel's deliveries one after the
other. A delivery is claimed before it is sent (its next attempt moves past a lease), so two
senders on one database never send it twice at once. When a channel cannot be reached, the rest of its
deliveries are put off by one back-off without counting an attempt: a dead channel costs at
most one timeout per pass and never delays the other channels.

After a failed attempt the delivery waits ``backoff_base * 2**(attempts - 1)`` seconds (at
most ``backoff_max``, at least what a ``Retry-After`` asks), of which a random half is
taken off ("equal jitter") so that retries spread out; after ``max_attempts``, or an answer
that retrying cannot change (HTTP 4xx, SMTP 5xx), it is ``failed``.
"""

from __future__ import annotations

import json
import random
from collections import defaultdict
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta

import httpx
from sqlalchemy import Select, func, select, update

from vigil.core import logging as vlog
from vigil.core.config import NotifySettings
from vigil.core.db import StateDB
from vigil.respond import channels
from vigil.respond.channels import ChannelSpec, Message, Outcome
from vigil.respond.models import Attempt, Channel, ChannelKind, Delivery, DeliveryStatus
from vigil.respond.schemas import CONFIG_TYPES, ChannelConfig

log = vlog.get("vigil.notify")
MAX_PARALLEL_CHANNELS = 4
_ERROR_LIMIT = 2000


@dataclass(frozen=True, slots=True)
class SendReport:
    sent: int = 0
    retrying: int = 0
    failed: int = 0

    def __add__(self, other: SendReport) -> SendReport:
        return SendReport(self.sent + other.sent, self.retrying + other.retrying,
                          self.failed + other.failed)


@dataclass(frozen=True, slots=True)
class _Due:
    id: int
    attempts: int
    recipient: str
    event: str


def channel_spec(row: Channel) -> ChannelSpec:
    kind = ChannelKind(row.kind)
    config = CONFIG_TYPES[kind].model_validate(json.loads(row.config))
    assert isinstance(config, ChannelConfig)
    return ChannelSpec(row.id, row.name, kind, config, row.secret)


def _usable(row: Channel) -> ChannelSpec | str:
    """The channel ready to send, or why its deliveries cannot be sent."""
    if not row.enabled:
        return "channel is disabled"
    try:
        return channel_spec(row)
    except ValueError as exc:  # settings stored by an older version, edited by hand
        return f"channel settings are invalid: {exc}"


def backoff(settings: NotifySettings, attempts: int, rng: random.Random,
            retry_after: float | None = None) -> float:
    """Seconds to wait after ``attempts`` failed attempts."""
    delay = min(settings.backoff_max, settings.backoff_base * float(2 ** min(attempts - 1, 30)))
    delay = delay / 2 + rng.random() * delay / 2
    if retry_after is not None:
        delay = max(delay, min(retry_after, settings.backoff_max))
    return delay


class Sender:
    """Sends due deliveries over one shared HTTP client."""

    def __init__(self, db: StateDB, settings: NotifySettings, client: httpx.Client,
                 rng: random.Random | None = None) -> None:
        self.db = db
        self.settings = settings
        self.client = client
        self.rng = rng or random.Random()
        self.lease = timedelta(seconds=4 * max(settings.http_timeout, settings.smtp_timeout) + 30)

    def run_once(self, now: datetime) -> SendReport:
        """Send every delivery due at ``now`` (up to ``batch_size``)."""
        with self.db.session() as session:
            rows = session.execute(self._due(now)).all()
            ids = {r.channel_id for r in rows if r.channel_id is not None}
            found = session.scalars(select(Channel).where(Channel.id.in_(ids))).all() if ids else []
            specs: dict[int | None, ChannelSpec | str] = {c.id: _usable(c) for c in found}
        groups: dict[int | None, list[_Due]] = defaultdict(list)
        for row in rows:
            groups[row.channel_id].append(_Due(row.id, row.attempts, row.recipient, row.event))
        report, work = SendReport(), []
        for channel_id, due in groups.items():
            spec = specs.get(channel_id, "channel was removed")
            if isinstance(spec, ChannelSpec):
                work.append((spec, due))
            else:
                report += self._abandon(due, spec, now)
        if not work:
            return report
        with ThreadPoolExecutor(min(MAX_PARALLEL_CHANNELS, len(work)),
                                thread_name_prefix="vigil-notify-send") as pool:
            for result in pool.map(lambda job: self._send_channel(job[0], job[1], now), work):
                report += result
        return report

    def _due(self, now: datetime) -> Select[tuple[int, int | None, int, str, str]]:
        """The oldest due deliveries, at most ``batch_size // 10`` of any one channel, so that
        a channel with a backlog never crowds the others out of a pass."""
        rank = func.row_number().over(partition_by=Delivery.channel_id,
                                      order_by=(Delivery.next_attempt_at, Delivery.id))
        due = (select(Delivery.id, Delivery.channel_id, Delivery.attempts, Delivery.recipient,
                      Delivery.event, Delivery.next_attempt_at, rank.label("rank"))
               .where(Delivery.status == DeliveryStatus.PENDING.value,
                      Delivery.next_attempt_at <= now).subquery())
        return (select(due.c.id, due.c.channel_id, due.c.attempts, due.c.recipient, due.c.event)
                .where(due.c.rank <= max(1, self.settings.batch_size // 10))
                .order_by(due.c.next_attempt_at, due.c.id).limit(self.settings.batch_size))

    def _send_channel(self, spec: ChannelSpec, due: Sequence[_Due], now: datetime) -> SendReport:
        report = SendReport()
        for index, item in enumerate(due):
            if not self._claim(item, now):
                continue
            try:
                message = Message.from_json(json.loads(item.event))
            except (ValueError, KeyError, TypeError) as exc:
                outcome = Outcome(False, error=f"unreadable event snapshot: {exc}", retryable=False)
            else:
                outcome = channels.send(spec, message, item.recipient, item.id, self.client,
                                        self.settings.smtp_timeout)
            status = self.record(item.id, outcome, now)
            report += SendReport(status == DeliveryStatus.SENT, status == DeliveryStatus.PENDING,
                                 status == DeliveryStatus.FAILED)
            if not outcome.ok and outcome.status_code is None and outcome.retryable:
                rest = due[index + 1:]
                log.warning("notification channel %s unreachable (%s); %d other deliveries wait",
                            spec.name, outcome.error, len(rest))
                self._postpone(rest, now)
                break
        return report

    def _postpone(self, due: Sequence[_Due], now: datetime) -> None:
        """Put off deliveries not tried because their channel is unreachable (no attempt
        counted): they come back after the first back-off, not at every pass."""
        if not due:
            return
        later = now + timedelta(seconds=backoff(self.settings, 1, self.rng))
        with self.db.session() as session:
            session.execute(update(Delivery)
                            .where(Delivery.id.in_([d.id for d in due]),
                                   Delivery.status == DeliveryStatus.PENDING.value,
                                   Delivery.next_attempt_at <= now)
                            .values(next_attempt_at=later))

    def _claim(self, item: _Due, now: datetime) -> bool:
        """Take the delivery for this sender: false when another sender took it first."""
        with self.db.session() as session:
            result = session.execute(
                update(Delivery)
                .where(Delivery.id == item.id, Delivery.status == DeliveryStatus.PENDING.value,
                       Delivery.attempts == item.attempts, Delivery.next_attempt_at <= now)
                .values(next_attempt_at=now + self.lease))
            return bool(getattr(result, "rowcount", 0) == 1)

    def record(self, delivery_id: int, outcome: Outcome, now: datetime,
               max_attempts: int | None = None) -> DeliveryStatus:
        """Keep the attempt and move the delivery on: sent, pending again later, or failed."""
        limit = max_attempts or self.settings.max_attempts
        with self.db.session() as session:
            delivery = session.get_one(Delivery, delivery_id)
            delivery.attempts += 1
            number = 1 + (session.scalar(select(func.count()).select_from(Attempt)
                                         .where(Attempt.delivery_id == delivery_id)) or 0)
            session.add(Attempt(delivery_id=delivery_id, number=number, at=now,
                                ok=outcome.ok, status_code=outcome.status_code,
                                reply=outcome.reply, error=_clip(outcome.error),
                                duration_ms=outcome.duration_ms))
            if outcome.ok:
                delivery.status, delivery.sent_at = DeliveryStatus.SENT.value, now
                delivery.last_error = None
            elif outcome.retryable and delivery.attempts < limit:
                delivery.status = DeliveryStatus.PENDING.value
                delivery.last_error = _clip(outcome.error)
                wait = backoff(self.settings, delivery.attempts, self.rng, outcome.retry_after)
                delivery.next_attempt_at = now + timedelta(seconds=wait)
            else:
                delivery.status = DeliveryStatus.FAILED.value
                delivery.last_error = _clip(outcome.error)
            return DeliveryStatus(delivery.status)

    def _abandon(self, due: Sequence[_Due], why: str, now: datetime) -> SendReport:
        with self.db.session() as session:
            session.execute(update(Delivery)
                            .where(Delivery.id.in_([d.id for d in due]),
                                   Delivery.status == DeliveryStatus.PENDING.value)
                            .values(status=DeliveryStatus.FAILED.value, last_error=why,
                                    next_attempt_at=now))
        return SendReport(failed=len(due))


def _clip(text: str | None) -> str | None:
    return None if text is None else text[:_ERROR_LIMIT]
