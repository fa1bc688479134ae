"""Notifications for real case work: the cases service writes the events, the notifier sends."""

from __future__ import annotations

import json

from respond.servers import Mailbox, Receiver
from vigil.cases import service as cases
from vigil.cases.schemas import CaseCreate, CommentCreate
from vigil.core.auth import SYSTEM
from vigil.core.config import NotifySettings
from vigil.core.db import StateDB
from vigil.core.outbox import Topic
from vigil.people.service import add_user
from vigil.respond import service
from vigil.respond.notifier import Notifier
from vigil.respond.schemas import CHANNEL_IN, RuleIn


def test_case_assignment_and_mention_reach_people(state_db: StateDB, smtp: Mailbox,
                                                  receiver: Receiver) -> None:
    for name in ("alice", "bob"):
        add_user(state_db, SYSTEM, name, "correct horse battery", role="analyst",
                 email=f"{name}@example.org")
    mail = service.create_channel(state_db, SYSTEM, CHANNEL_IN.validate_python({
        "name": "mail", "kind": "email",
        "config": {"host": smtp.host, "port": smtp.port, "from_address": "vigil@example.org"}}))
    hook = service.create_channel(state_db, SYSTEM, CHANNEL_IN.validate_python({
        "name": "hook", "kind": "webhook", "config": {"url": receiver.url("/cases")}}))
    for rule in (RuleIn(name="assignee", topics=[Topic.CASE_ASSIGNED, Topic.TASK_ASSIGNED],
                        channel_id=mail.id, event_recipients=True),
                 RuleIn(name="mentions", topics=[Topic.MENTIONED], channel_id=mail.id,
                        event_recipients=True),
                 RuleIn(name="serious-cases", topics=[Topic.CASE_CREATED], min_severity="high",
                        channel_id=hook.id)):
        service.create_rule(state_db, SYSTEM, rule)

    case = cases.create_case(state_db, CaseCreate(title="Ransomware on fs1", severity="high",
                                                  assignees=["alice"]), SYSTEM)
    cases.add_comment(state_db, case.id, CommentCreate(body="@bob can you check the backups?"),
                      SYSTEM)
    report = Notifier(state_db, NotifySettings(settle_seconds=0)).run_once()
    assert report.failed == 0 and report.sent == 3

    [assigned] = smtp.to("alice@example.org")
    assert "assigned to you: Ransomware on fs1" in assigned["Subject"]
    [mentioned] = smtp.to("bob@example.org")
    assert "mentioned you" in mentioned["Subject"]
    assert "check the backups" in mentioned.get_content()
    [posted] = receiver.on("/cases")
    body = json.loads(posted.body)
    assert (body["topic"], body["object_id"]) == ("case.created", str(case.id))
