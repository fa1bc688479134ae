"""``vigil notify``: channels, rules, a pass, the delivery log, user errors (real processes)."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from helpers import assert_user_error, free_port, ok, run_vigil
from respond.servers import Mailbox, Receiver, mailbox, receiving
from vigil.app import Vigil
from vigil.audit.service import listing
from vigil.core.auth import SYSTEM
from vigil.core.config import load_settings
from vigil.core.outbox import Topic, emit
from vigil.people.service import add_user


@pytest.fixture
def hooks() -> Iterator[Receiver]:
    with receiving() as receiver:
        yield receiver


@pytest.fixture
def smtp() -> Iterator[Mailbox]:
    with mailbox() as box:
        yield box


def emit_events(data_dir: Path) -> None:
    vigil = Vigil(load_settings(data_dir))
    try:
        add_user(vigil.db, SYSTEM, "alice", "correct horse battery", role="analyst",
                 email="alice@example.org")
        with vigil.db.session() as session:
            emit(session, Topic.ALERT_CREATED, subject="Mimikatz on dc1", severity="critical",
                 object_type="alert", object_id=1)
            emit(session, Topic.ALERT_CREATED, subject="Port scan", severity="low",
                 object_type="alert", object_id=2)
            emit(session, Topic.CASE_ASSIGNED, subject="Case 3 assigned to you", severity="high",
                 object_type="case", object_id=3, recipients=["alice"])
    finally:
        vigil.close()


def test_configure_run_and_read_the_log(data_dir: Path, hooks: Receiver, smtp: Mailbox) -> None:
    env = {"HOOK_KEY": "cli-secret"}
    ok(run_vigil(data_dir, "notify", "channels", "add", "soc-hook", "--kind", "webhook",
                 "--url", hooks.url("/cli"), "--secret-env", "HOOK_KEY", env=env))
    ok(run_vigil(data_dir, "notify", "channels", "add", "mail", "--kind", "email",
                 "--smtp-host", smtp.host, "--smtp-port", str(smtp.port),
                 "--from", "vigil@example.org"))
    ok(run_vigil(data_dir, "notify", "rules", "add", "high-alerts", "--channel", "soc-hook",
                 "--topic", "alert.created", "--min-severity", "high"))
    added = ok(run_vigil(data_dir, "notify", "rules", "add", "assignee", "--channel", "mail",
                         "--topic", "case.assigned", "--topic", "task.assigned",
                         "--event-recipients"))
    assert "case.assigned, task.assigned → mail" in added.out
    listed = ok(run_vigil(data_dir, "notify", "channels", "list", "-o", "json")).out
    channels = [json.loads(line) for line in listed.splitlines()]
    assert [(c["name"], c["kind"], c["secret"]) for c in channels] == [
        ("mail", "email", "no"), ("soc-hook", "webhook", "yes")]
    assert "cli-secret" not in listed
    rules = ok(run_vigil(data_dir, "notify", "rules", "list")).out
    assert "high-alerts" in rules and "event recipients" in rules

    emit_events(data_dir)
    ran = ok(run_vigil(data_dir, "notify", "run"))
    assert "3 events read, 2 deliveries queued; 2 sent, 0 to retry, 0 failed" in ran.out
    [request] = hooks.on("/cli")
    stamp = request.headers["X-Vigil-Timestamp"]
    mac = hmac.new(b"cli-secret", f"{stamp}.".encode() + request.body, hashlib.sha256).hexdigest()
    assert request.headers["X-Vigil-Signature"] == f"sha256={mac}"
    assert json.loads(request.body)["subject"] == "Mimikatz on dc1"
    [mail] = smtp.to("alice@example.org")
    assert mail["Subject"] == "[Vigil] [high] Case 3 assigned to you"
    again = ok(run_vigil(data_dir, "notify", "run")).out  # recent events are read again ...
    assert "0 deliveries queued; 0 sent" in again  # ... but never sent twice

    log = ok(run_vigil(data_dir, "notify", "deliveries", "-o", "json")).out
    entries = [json.loads(line) for line in log.splitlines()]
    assert sorted((e["channel"], e["recipient"], e["status"]) for e in entries) == [
        ("mail", "alice@example.org", "sent"), ("soc-hook", "", "sent")]
    only = ok(run_vigil(data_dir, "notify", "deliveries", "--channel", "mail", "-o", "csv")).out
    assert len(only.strip().splitlines()) == 2
    assert ok(run_vigil(data_dir, "notify", "channels", "test", "soc-hook")).out.startswith(
        "test message sent")

    vigil = Vigil(load_settings(data_dir))
    try:
        actions = [(e.action, e.object_type) for e in listing(vigil.db, limit=50)
                   if e.object_type.startswith("notify")]
    finally:
        vigil.close()
    assert actions.count(("create", "notify_channel")) == 2
    assert actions.count(("create", "notify_rule")) == 2


def test_remove_and_failed_test(data_dir: Path, hooks: Receiver) -> None:
    ok(run_vigil(data_dir, "notify", "channels", "add", "chat", "--kind", "slack",
                 "--url", hooks.url("/services/T0/B0/SECRET")))
    listed = ok(run_vigil(data_dir, "notify", "channels", "list")).out
    assert "SECRET" not in listed
    ok(run_vigil(data_dir, "notify", "rules", "add", "breaches", "--channel", "chat",
                 "--topic", "clock.breached"))
    assert_user_error(run_vigil(data_dir, "notify", "channels", "remove", "chat"),
                      "used by the rules breaches")
    ok(run_vigil(data_dir, "notify", "rules", "remove", "breaches"))
    ok(run_vigil(data_dir, "notify", "channels", "remove", "chat"))
    assert "no channels" in ok(run_vigil(data_dir, "notify", "channels", "list")).out
    ok(run_vigil(data_dir, "notify", "channels", "add", "dead", "--kind", "webhook",
                 "--url", f"http://127.0.0.1:{free_port()}/x"))
    failed = run_vigil(data_dir, "notify", "channels", "test", "dead")
    assert failed.code == 1 and "test message failed" in failed.err
    assert "Traceback" not in failed.err
    log = ok(run_vigil(data_dir, "notify", "deliveries", "--status", "failed", "-o", "json")).out
    [entry] = [json.loads(line) for line in log.splitlines()]
    ok(run_vigil(data_dir, "notify", "retry", str(entry["id"])))
    assert_user_error(run_vigil(data_dir, "notify", "retry", str(entry["id"])), "only a failed")


@pytest.mark.parametrize(("args", "fragment"), [
    (("channels", "add", "x", "--kind", "pager", "--url", "http://a.org"), "--kind"),
    (("channels", "add", "x", "--kind", "webhook"), "--url"),
    (("channels", "add", "x", "--kind", "webhook", "--url", "ftp://a.org"), "--url"),
    (("channels", "add", "x", "--kind", "webhook", "--url", "http://a.org", "--smtp-host", "h"),
     "--smtp-host"),
    (("channels", "add", "x", "--kind", "email", "--smtp-host", "h", "--from", "nobody"), "--from"),
    (("channels", "add", "x", "--kind", "email", "--smtp-host", "h", "--from", "a@b.org",
      "--to", "bad address"), "--to"),
    (("channels", "add", "9lives", "--kind", "webhook", "--url", "http://a.org"), "NAME"),
    (("channels", "add", "x", "--kind", "webhook", "--url", "http://a.org", "--secret-env",
      "VIGIL_TEST_UNSET_VARIABLE"), "not set"),
    (("channels", "remove", "ghost"), "no notification channel"),
    (("channels", "test", "ghost"), "no notification channel"),
    (("rules", "add", "r", "--channel", "ghost", "--topic", "alert.created"), "ghost"),
    (("rules", "remove", "ghost"), "no notification rule"),
    (("deliveries", "--status", "lost"), "--status"),
    (("deliveries", "--limit", "0"), "limit"),
    (("deliveries", "--event", "99999999999999999999"), "event id"),
    (("deliveries", "-o", "xml"), "--format"),
    (("retry", "99999999999999999999"), "no delivery"),
    (("channels", "list", "-o", "yaml"), "--format"),
])
def test_user_errors(data_dir: Path, args: tuple[str, ...], fragment: str) -> None:
    assert_user_error(run_vigil(data_dir, "notify", *args), fragment)


def test_rule_errors_name_the_option(data_dir: Path) -> None:
    ok(run_vigil(data_dir, "notify", "channels", "add", "hook", "--kind", "webhook",
                 "--url", "http://127.0.0.1:9/x"))
    for args, fragment in ((("--topic", "alert.exploded"), "--topic"),
                           (("--topic", "alert.created", "--min-severity", "dire"), "--min-severity"),
                           (("--topic", "alert.created", "--to", "a@b.org"), "e-mail"),
                           (("--topic", "alert.created", "--event-recipients"), "e-mail")):
        assert_user_error(run_vigil(data_dir, "notify", "rules", "add", "r", "--channel", "hook",
                                    *args), fragment)
    ok(run_vigil(data_dir, "notify", "rules", "add", "r", "--channel", "hook", "--topic",
                 "alert.created"))
    assert_user_error(run_vigil(data_dir, "notify", "rules", "add", "r", "--channel", "hook",
                                "--topic", "alert.created"), "exists already")
