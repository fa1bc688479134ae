"""Dispatch and delivery against real receivers on loopback, on SQLite and PostgreSQL."""

from __future__ import annotations

import hashlib
import hmac
import json
import random
import socket
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from sqlalchemy import select

from helpers import free_port
from respond.servers import Mailbox, Receiver
from vigil.core.auth import SYSTEM
from vigil.core.config import NotifySettings
from vigil.core.db import StateDB
from vigil.core.outbox import OutboxRow, Topic, emit
from vigil.core.timeutil import utcnow
from vigil.people.service import add_user
from vigil.respond import service
from vigil.respond.models import Cursor, DeliveryStatus
from vigil.respond.notifier import Notifier
from vigil.respond.schemas import CHANNEL_IN, ChannelOut, RuleIn, RuleOut

FAST = NotifySettings(backoff_base=10, backoff_max=60, max_attempts=4, http_timeout=5,
                      smtp_timeout=5, settle_seconds=0)


def channel(db: StateDB, name: str, kind: str, secret: str | None = None,
            **config: object) -> ChannelOut:
    return service.create_channel(db, SYSTEM, CHANNEL_IN.validate_python(
        {"name": name, "kind": kind, "config": config, "secret": secret}))


def rule(db: StateDB, name: str, channel_id: int, *topics: Topic, **fields: object) -> RuleOut:
    return service.create_rule(db, SYSTEM, RuleIn.model_validate(
        {"name": name, "channel_id": channel_id, "topics": list(topics), **fields}))


def event(db: StateDB, topic: Topic, subject: str, severity: str | None = None,
          recipients: tuple[str, ...] = (), **details: object) -> None:
    with db.session() as session:
        emit(session, topic, subject=subject, object_type=topic.value.split(".")[0],
             object_id=7, severity=severity, recipients=recipients, details=details)


def deliveries(db: StateDB, **filters: object) -> list[service.DeliveryOut]:
    return service.list_deliveries(db, limit=500, **filters).deliveries  # type: ignore[arg-type]


def notifier(db: StateDB, settings: NotifySettings = FAST) -> Notifier:
    return Notifier(db, settings, rng=random.Random(7))


def test_high_alert_to_signed_webhook(state_db: StateDB, receiver: Receiver) -> None:
    hook = channel(state_db, "soc-hook", "webhook", secret="k3y", url=receiver.url("/hook"))
    rule(state_db, "high-alerts", hook.id, Topic.ALERT_CREATED, min_severity="high")
    event(state_db, Topic.ALERT_CREATED, "Mimikatz on dc1", "critical", rule_title="Mimikatz")
    event(state_db, Topic.ALERT_CREATED, "Port scan", "medium")
    event(state_db, Topic.ALERT_CREATED, "No severity")
    event(state_db, Topic.CASE_CREATED, "Case 7", "critical")
    report = notifier(state_db).run_once()
    assert (report.events, report.deliveries, report.sent) == (4, 1, 1)
    [request] = receiver.on("/hook")
    timestamp = request.headers["X-Vigil-Timestamp"]
    expected = hmac.new(b"k3y", timestamp.encode() + b"." + request.body, hashlib.sha256).hexdigest()
    assert request.headers["X-Vigil-Signature"] == f"sha256={expected}"
    assert abs(int(timestamp) - time.time()) < 60
    assert request.headers["X-Vigil-Event"] == "alert.created"
    body = json.loads(request.body)
    assert body["subject"] == "Mimikatz on dc1"
    assert body["severity"] == "critical"
    assert body["details"] == {"rule_title": "Mimikatz"}
    assert body["rule"] == "high-alerts"
    [sent] = deliveries(state_db)
    assert (sent.status, sent.attempts, sent.channel, sent.rule) == ("sent", 1, "soc-hook",
                                                                     "high-alerts")
    assert request.headers["X-Vigil-Delivery"] == str(sent.id) == str(body["delivery_id"])
    [attempt] = service.get_delivery(state_db, sent.id).attempt_log
    assert (attempt.ok, attempt.status_code, attempt.reply) == (True, 200, "ok")


def test_unsigned_webhook_without_secret(state_db: StateDB, receiver: Receiver) -> None:
    hook = channel(state_db, "plain", "webhook", url=receiver.url("/plain"))
    rule(state_db, "all-cases", hook.id, Topic.CASE_CREATED)
    event(state_db, Topic.CASE_CREATED, "Case 1", "low")
    notifier(state_db).run_once()
    [request] = receiver.on("/plain")
    assert "X-Vigil-Signature" not in request.headers
    assert "X-Vigil-Timestamp" in request.headers


def test_retry_with_backoff_then_success(state_db: StateDB, receiver: Receiver) -> None:
    hook = channel(state_db, "flaky", "webhook", url=receiver.url("/flaky"))
    rule(state_db, "r", hook.id, Topic.CASE_ASSIGNED)
    receiver.script = [500, 503]
    event(state_db, Topic.CASE_ASSIGNED, "Case 3 assigned to you", "high", ("alice",))
    notes = notifier(state_db)
    now = utcnow()
    first = notes.run_once(now)
    assert (first.sent, first.retrying) == (0, 1)
    [pending] = deliveries(state_db)
    assert pending.status == "pending" and pending.attempts == 1
    assert pending.last_error == "HTTP 500"
    assert pending.next_attempt_at is not None
    wait = (pending.next_attempt_at - now).total_seconds()
    assert 5 <= wait <= 10, wait  # base 10 s, equal jitter
    assert notes.run_once(now + timedelta(seconds=4)).retrying == 0  # not due yet
    assert len(receiver.on("/flaky")) == 1
    later = now + timedelta(seconds=11)
    assert notes.run_once(later).retrying == 1
    [pending] = deliveries(state_db)
    assert pending.next_attempt_at is not None
    wait = (pending.next_attempt_at - later).total_seconds()
    assert 10 <= wait <= 20, wait  # doubled
    done = notes.run_once(later + timedelta(seconds=21))
    assert done.sent == 1
    [sent] = deliveries(state_db)
    assert (sent.status, sent.attempts, sent.last_error) == ("sent", 3, None)
    log = service.get_delivery(state_db, sent.id).attempt_log
    assert [(a.number, a.status_code, a.ok) for a in log] == [(1, 500, False), (2, 503, False),
                                                              (3, 200, True)]
    assert len(receiver.on("/flaky")) == 3


def test_gives_up_after_max_attempts(state_db: StateDB, receiver: Receiver) -> None:
    down = channel(state_db, "down", "webhook", url=receiver.url("/down"))
    rule(state_db, "to-down", down.id, Topic.INCIDENT_CREATED)
    receiver.default = 500
    event(state_db, Topic.INCIDENT_CREATED, "Incident 1", "high")
    notes = notifier(state_db, FAST.model_copy(update={"max_attempts": 2}))
    now = utcnow()
    assert notes.run_once(now).retrying == 1
    assert notes.run_once(now + timedelta(minutes=5)).failed == 1
    assert notes.run_once(now + timedelta(minutes=10)).failed == 0
    [failed] = deliveries(state_db)
    assert (failed.status, failed.attempts, failed.last_error) == ("failed", 2, "HTTP 500")
    assert failed.next_attempt_at is None
    assert len(receiver.on("/down")) == 2


def test_client_error_is_not_retried(state_db: StateDB, receiver: Receiver) -> None:
    hook = channel(state_db, "wrong", "webhook", url=receiver.url("/wrong"))
    rule(state_db, "r", hook.id, Topic.INCIDENT_CREATED)
    receiver.default = 404
    event(state_db, Topic.INCIDENT_CREATED, "Incident 2", "high")
    report = notifier(state_db).run_once()
    assert report.failed == 1
    [failed] = deliveries(state_db)
    assert (failed.status, failed.attempts, failed.last_error) == ("failed", 1, "HTTP 404")


def test_unreachable_channel_does_not_block_others(state_db: StateDB, receiver: Receiver) -> None:
    dead = channel(state_db, "dead", "webhook", url=f"http://127.0.0.1:{free_port()}/x")
    live = channel(state_db, "live", "webhook", url=receiver.url("/live"))
    rule(state_db, "to-dead", dead.id, Topic.ALERT_CREATED)
    rule(state_db, "to-live", live.id, Topic.ALERT_CREATED)
    for i in range(3):
        event(state_db, Topic.ALERT_CREATED, f"Alert {i}", "high")
    started = time.monotonic()
    report = notifier(state_db).run_once()
    assert time.monotonic() - started < 5
    assert report.sent == 3
    assert len(receiver.on("/live")) == 3
    dead_ones = deliveries(state_db, channel="dead")
    assert {d.status for d in dead_ones} == {"pending"}
    assert sorted(d.attempts for d in dead_ones) == [0, 0, 1]  # the rest wait for the next pass
    [tried] = [d for d in dead_ones if d.attempts]
    assert tried.last_error is not None and "Connect" in tried.last_error
    for waiting in dead_ones:  # put off, not tried again at every pass
        assert waiting.next_attempt_at is not None and waiting.next_attempt_at > utcnow()


def test_a_backlog_on_one_channel_does_not_starve_another(state_db: StateDB,
                                                          receiver: Receiver) -> None:
    dead = channel(state_db, "dead", "webhook", url=f"http://127.0.0.1:{free_port()}/x")
    live = channel(state_db, "live", "webhook", url=receiver.url("/starve"))
    rule(state_db, "to-dead", dead.id, Topic.ALERT_CREATED)
    notes = notifier(state_db, FAST.model_copy(update={"batch_size": 20}))  # 2 per channel
    for i in range(30):
        event(state_db, Topic.ALERT_CREATED, f"Alert {i}", "high")
    notes.dispatcher.run_once(utcnow())
    rule(state_db, "to-live", live.id, Topic.CASE_CREATED)
    event(state_db, Topic.CASE_CREATED, "Case 1", "high")
    report = notes.run_once()
    assert report.sent == 1
    assert len(receiver.on("/starve")) == 1


def test_dispatching_again_never_sends_twice(state_db: StateDB, receiver: Receiver) -> None:
    hook = channel(state_db, "once", "webhook", url=receiver.url("/once"))
    rule(state_db, "r", hook.id, Topic.CASE_UPDATED)
    event(state_db, Topic.CASE_UPDATED, "Case 9 updated")
    settings = FAST.model_copy(update={"settle_seconds": 3600})  # the cursor stays behind
    for _ in range(3):
        Notifier(state_db, settings).run_once()  # a new process each time: nothing remembered
    assert len(receiver.on("/once")) == 1
    assert len(deliveries(state_db)) == 1


def test_event_committed_late_is_still_dispatched(state_db: StateDB, receiver: Receiver) -> None:
    """Ids are handed out before commit: id 3 may become visible after id 5 was read."""
    hook = channel(state_db, "late", "webhook", url=receiver.url("/late"))
    rule(state_db, "r", hook.id, Topic.CASE_CREATED)
    settings = NotifySettings(settle_seconds=10)

    def outbox_row(id_: int, subject: str) -> None:
        payload = {"subject": subject, "severity": "low", "object_type": "case",
                   "object_id": str(id_), "recipients": [], "details": {}}
        with state_db.session() as session:
            session.add(OutboxRow(id=id_, topic="case.created", payload=json.dumps(payload),
                                  created_at=utcnow()))

    notes = Notifier(state_db, settings)
    outbox_row(5, "five")
    now = utcnow()
    assert notes.run_once(now).cursor == 0  # five is younger than the settle window
    outbox_row(3, "three")  # its transaction commits now
    assert notes.run_once(now + timedelta(seconds=1)).cursor == 0
    assert sorted(json.loads(r.body)["subject"] for r in receiver.on("/late")) == ["five", "three"]
    report = notes.run_once(now + timedelta(seconds=30))
    assert report.cursor == 5
    with state_db.session() as session:
        assert session.get_one(Cursor, "notify").last_id == 5
    assert len(receiver.on("/late")) == 2


def test_old_events_are_not_notified(state_db: StateDB, receiver: Receiver) -> None:
    hook = channel(state_db, "h", "webhook", url=receiver.url("/old"))
    rule(state_db, "r", hook.id, Topic.CASE_CREATED)
    event(state_db, Topic.CASE_CREATED, "long ago")
    report = notifier(state_db, FAST.model_copy(update={"max_event_age": 60})).run_once(
        utcnow() + timedelta(hours=2))
    assert (report.deliveries, report.cursor > 0) == (0, True)
    assert receiver.on("/old") == []


def test_disabled_rules_and_channels(state_db: StateDB, receiver: Receiver) -> None:
    hook = channel(state_db, "h", "webhook", url=receiver.url("/off"))
    on = rule(state_db, "on", hook.id, Topic.CASE_CREATED)
    rule(state_db, "off", hook.id, Topic.CASE_CREATED, enabled=False)
    notes = notifier(state_db)
    event(state_db, Topic.CASE_CREATED, "one")
    notes.dispatcher.run_once(utcnow())
    service.update_channel(state_db, SYSTEM, hook.id,
                           service.ChannelPatch(enabled=False))
    report = notes.run_once()
    assert report.failed == 1
    [failed] = deliveries(state_db)
    assert (failed.rule, failed.status, failed.last_error) == (on.name, "failed",
                                                               "channel is disabled")
    event(state_db, Topic.CASE_CREATED, "two")
    assert notes.run_once().deliveries == 0  # a disabled channel gets nothing new
    assert receiver.on("/off") == []


def test_slack_on_clock_breach_and_teams_cards(state_db: StateDB, receiver: Receiver) -> None:
    slack = channel(state_db, "slack", "slack", url=receiver.url("/slack"))
    teams = channel(state_db, "teams", "teams", url=receiver.url("/teams"), details=True)
    legacy = channel(state_db, "legacy", "teams", url=receiver.url("/legacy"), card="messagecard")
    for c in (slack, teams, legacy):
        rule(state_db, f"breach-{c.name}", c.id, Topic.CLOCK_BREACHED)
    event(state_db, Topic.CLOCK_BREACHED, "Case 4: <ack> deadline breached", "high",
          ("bob",), clock="time_to_acknowledge")
    assert notifier(state_db).run_once().sent == 3
    [posted] = receiver.on("/slack")
    body = json.loads(posted.body)
    assert body["text"] == "[HIGH] Case 4: &lt;ack&gt; deadline breached"
    assert body["blocks"][0]["type"] == "section"
    assert "time_to_acknowledge" not in posted.body.decode()  # details stay out of chat
    assert "bob" in body["blocks"][1]["text"]["text"]
    card = json.loads(receiver.on("/teams")[0].body)
    assert card["type"] == "message"
    content = card["attachments"][0]["content"]
    assert card["attachments"][0]["contentType"] == "application/vnd.microsoft.card.adaptive"
    assert content["type"] == "AdaptiveCard"
    facts = {f["title"]: f["value"] for f in content["body"][1]["facts"]}
    assert facts["Severity"] == "high" and facts["clock"] == "time_to_acknowledge"
    old = json.loads(receiver.on("/legacy")[0].body)
    assert old["@type"] == "MessageCard" and old["themeColor"] == "E65100"


def test_email_to_assignee_and_mentioned_users(state_db: StateDB, smtp: Mailbox) -> None:
    add_user(state_db, SYSTEM, "alice", "correct horse battery", role="analyst",
             email="alice@example.org")
    add_user(state_db, SYSTEM, "bob", "correct horse battery", role="responder",
             email="bob@example.org")
    add_user(state_db, SYSTEM, "carol", "correct horse battery", role="responder")
    mail = channel(state_db, "mail", "email", host=smtp.host, port=smtp.port,
                   from_address="vigil@example.org")
    rule(state_db, "assignee", mail.id, Topic.CASE_ASSIGNED, Topic.TASK_ASSIGNED,
         event_recipients=True)
    rule(state_db, "mentions", mail.id, Topic.MENTIONED, event_recipients=True,
         addresses=["soc-lead@example.org", "Bob@example.org"])
    event(state_db, Topic.CASE_ASSIGNED, "Case 12 assigned to you", "high", ("alice",),
          title="Ransomware on fs1")
    event(state_db, Topic.MENTIONED, "alice mentioned you on case 12", None,
          ("bob", "carol", "nobody"))
    report = notifier(state_db).run_once()
    assert report.sent == 3 and report.failed == 0
    [assigned] = smtp.to("alice@example.org")
    assert assigned["Subject"] == "[Vigil] [high] Case 12 assigned to you"
    assert assigned["From"] == "vigil@example.org"
    assert assigned["To"] == "alice@example.org"
    assert assigned["Auto-Submitted"] == "auto-generated"
    text = assigned.get_content()
    assert "Ransomware on fs1" in text and "case.assigned" in text
    assert "assignee" in text  # the rule is named
    assert len(smtp.to("bob@example.org")) == 1  # an address named twice gets one mail
    assert len(smtp.to("soc-lead@example.org")) == 1
    by_recipient = {d.recipient: d for d in deliveries(state_db)}
    assert by_recipient["user:carol"].status == "failed"
    assert "no e-mail address" in (by_recipient["user:carol"].last_error or "")
    assert by_recipient["user:nobody"].status == "failed"
    sent = by_recipient["alice@example.org"]
    [attempt] = service.get_delivery(state_db, sent.id).attempt_log
    assert attempt.status_code == 250
    assert attempt.reply is not None and "accepted" in attempt.reply


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
def test_email_login_and_refused_login(state_db: StateDB, smtp_login: Mailbox) -> None:
    config = {"host": smtp_login.host, "port": smtp_login.port, "username": "vigil",
              "from_address": "vigil@example.org", "to": ["ops@example.org"]}
    good = channel(state_db, "good", "email", secret="s3cret-pass", **config)
    bad = channel(state_db, "bad", "email", secret="wrong", **config)
    for c in (good, bad):
        rule(state_db, f"r-{c.name}", c.id, Topic.INCIDENT_CREATED)
    event(state_db, Topic.INCIDENT_CREATED, "Incident 5", "critical")
    report = notifier(state_db).run_once()
    assert (report.sent, report.failed) == (1, 1)
    assert len(smtp_login.to("ops@example.org")) == 1
    [refused] = deliveries(state_db, channel="bad")
    assert refused.status == "failed" and refused.attempts == 1  # 535 is not retried
    assert refused.last_error == "SMTP 535"


def test_starttls_refused_by_server_fails_clearly(state_db: StateDB, smtp: Mailbox) -> None:
    mail = channel(state_db, "tls", "email", host=smtp.host, port=smtp.port, starttls=True,
                   from_address="vigil@example.org", to=["ops@example.org"])
    result = service.test_channel(state_db, SYSTEM, mail.id, FAST)
    assert not result.ok
    assert result.error is not None and "STARTTLS" in result.error.upper()
    assert smtp.mails == []


def test_unreachable_smtp_is_retried(state_db: StateDB) -> None:
    mail = channel(state_db, "nowhere", "email", host="127.0.0.1", port=free_port(),
                   from_address="vigil@example.org", to=["ops@example.org"])
    rule(state_db, "r", mail.id, Topic.INCIDENT_CREATED)
    event(state_db, Topic.INCIDENT_CREATED, "Incident 6", "critical")
    report = notifier(state_db).run_once()
    assert report.retrying == 1
    [pending] = deliveries(state_db)
    assert pending.status == DeliveryStatus.PENDING and "ConnectionRefused" in (pending.last_error or "")


def test_background_notifier_delivers_and_stops(state_db: StateDB, receiver: Receiver) -> None:
    hook = channel(state_db, "bg", "webhook", url=receiver.url("/bg"))
    rule(state_db, "r", hook.id, Topic.ALERT_CREATED)
    notes = Notifier(state_db, FAST.model_copy(update={"poll_interval": 0.05}))
    notes.start()
    try:
        event(state_db, Topic.ALERT_CREATED, "Background alert", "high")
        deadline = time.monotonic() + 10
        while not receiver.on("/bg") and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        notes.stop()
    assert len(receiver.on("/bg")) == 1
    assert notes.failures == 0 and notes.passes >= 1
    assert notes._thread is None


def test_test_message_lands_in_the_delivery_log(state_db: StateDB, receiver: Receiver,
                                                smtp: Mailbox) -> None:
    hook = channel(state_db, "hook", "webhook", secret="abc", url=receiver.url("/test"))
    result = service.test_channel(state_db, SYSTEM, "hook", FAST)
    assert result.ok and result.status_code == 200
    body = json.loads(receiver.on("/test")[0].body)
    assert body["test"] is True and body["topic"] == "test"
    mail = channel(state_db, "mail", "email", host=smtp.host, port=smtp.port,
                   from_address="vigil@example.org")
    sent = service.test_channel(state_db, SYSTEM, mail.id, FAST, to="me@example.org")
    assert sent.ok and sent.recipient == "me@example.org"
    assert len(smtp.to("me@example.org")) == 1
    log = deliveries(state_db)
    assert {(d.channel, d.topic, d.status) for d in log} == {("hook", "test", "sent"),
                                                              ("mail", "test", "sent")}
    with state_db.session() as session:
        assert session.scalar(select(Cursor)) is None  # a test reads no outbox
    assert hook.has_secret


def test_retry_after_is_honoured(state_db: StateDB, receiver: Receiver) -> None:
    hook = channel(state_db, "busy", "webhook", url=receiver.url("/busy"))
    rule(state_db, "r", hook.id, Topic.ALERT_CREATED)
    receiver.script = [(429, {"Retry-After": "45"})]
    event(state_db, Topic.ALERT_CREATED, "Alert", "high")
    now = utcnow()
    assert notifier(state_db).run_once(now).retrying == 1
    [pending] = deliveries(state_db)
    assert pending.next_attempt_at is not None
    assert (pending.next_attempt_at - now).total_seconds() >= 45  # above the 5-10 s back-off
    assert pending.last_error == "HTTP 429"


def test_a_silent_server_times_out_without_holding_up_others(state_db: StateDB,
                                                            receiver: Receiver) -> None:
    with socket.socket() as silent:  # accepts connections, never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(16)
        mute = channel(state_db, "mute", "webhook",
                       url=f"http://127.0.0.1:{silent.getsockname()[1]}/x")
        live = channel(state_db, "live", "webhook", url=receiver.url("/alive"))
        rule(state_db, "to-mute", mute.id, Topic.ALERT_CREATED)
        rule(state_db, "to-live", live.id, Topic.ALERT_CREATED)
        for i in range(3):
            event(state_db, Topic.ALERT_CREATED, f"Alert {i}", "high")
        started = time.monotonic()
        report = notifier(state_db, FAST.model_copy(update={"http_timeout": 0.5})).run_once()
        elapsed = time.monotonic() - started
    assert report.sent == 3 and len(receiver.on("/alive")) == 3
    assert elapsed < 3, elapsed  # one timeout, not one per delivery
    timed_out = [d for d in deliveries(state_db, channel="mute") if d.attempts]
    assert len(timed_out) == 1 and "timeout" in (timed_out[0].last_error or "")


def test_two_notifiers_on_one_database_send_each_message_once(state_db: StateDB,
                                                              receiver: Receiver) -> None:
    hook = channel(state_db, "shared", "webhook", url=receiver.url("/shared"))
    rule(state_db, "r", hook.id, Topic.ALERT_CREATED)
    for i in range(20):
        event(state_db, Topic.ALERT_CREATED, f"Alert {i}", "high")
    first, second = Notifier(state_db, FAST), Notifier(state_db, FAST)
    with ThreadPoolExecutor(2) as pool:
        reports = list(pool.map(lambda n: n.run_once(), (first, second)))
    assert sum(r.sent for r in reports) == 20
    posted = [r.headers["X-Vigil-Delivery"] for r in receiver.on("/shared")]
    assert len(posted) == 20 and len(set(posted)) == 20
    assert {d.status for d in deliveries(state_db)} == {"sent"}
