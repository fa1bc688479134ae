"""Channels and rules: validation, secrets kept out of outputs and the audit trail, audit records."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from vigil.audit.service import listing
from vigil.core.auth import SYSTEM, PrincipalKind, Role, principal_for
from vigil.core.db import StateDB
from vigil.core.errors import ConflictError, ForbiddenError, InputError, NotFoundError
from vigil.core.outbox import Topic
from vigil.respond import service
from vigil.respond.schemas import CHANNEL_IN, ChannelPatch, RuleIn, RulePatch

HOOK = {"name": "hook", "kind": "webhook", "config": {"url": "https://hooks.example.org/in?token=abc"},
        "secret": "hmac-key-123"}
SLACK = {"name": "slack", "kind": "slack",
         "config": {"url": "https://hooks.slack.com/services/T000/B000/XXXXSECRET"}}
MAIL = {"name": "mail", "kind": "email", "secret": "smtp-pass-456",
        "config": {"host": "smtp.example.org", "port": 587, "starttls": True, "username": "vigil",
                   "from_address": "vigil@example.org"}}


def make(db: StateDB, data: dict[str, object]) -> service.ChannelOut:
    return service.create_channel(db, SYSTEM, CHANNEL_IN.validate_python(data))


def audit_text(db: StateDB) -> str:
    return json.dumps([(e.action, e.object_type, e.before, e.after) for e in listing(db, limit=1000)])


def test_channels_keep_secrets_and_are_audited(state_db: StateDB) -> None:
    hook, slack, mail = make(state_db, HOOK), make(state_db, SLACK), make(state_db, MAIL)
    assert hook.has_secret and mail.has_secret and not slack.has_secret
    shown = json.dumps([c.model_dump(mode="json") for c in service.list_channels(state_db)])
    for secret in ("hmac-key-123", "smtp-pass-456", "XXXXSECRET", "token=abc"):
        assert secret not in shown
    assert slack.config.model_dump()["url"] == "https://hooks.slack.com/…"
    assert hook.config.model_dump()["url"] == "https://hooks.example.org/in?…"
    entries = listing(state_db, object_type="notify_channel")
    assert [e.action for e in entries] == ["create"] * 3
    assert entries[0].actor == "system:vigil"
    assert entries[0].after is not None and entries[0].after["secret"] == "set"
    updated = service.update_channel(state_db, SYSTEM, "mail", ChannelPatch(
        config={"port": 2525, "to": ["soc@example.org"]}, secret="new-pass-789"))
    assert updated.config.model_dump()["port"] == 2525
    assert updated.config.model_dump()["host"] == "smtp.example.org"  # merged, not replaced
    change = listing(state_db, object_type="notify_channel", limit=1)[0]
    assert change.action == "update"
    assert change.before == {"config": {**MAIL["config"], "tls": False, "to": []},  # type: ignore[dict-item]
                             "secret": "set"}
    assert change.after is not None and change.after["secret"] == "changed"
    service.update_channel(state_db, SYSTEM, hook.id, ChannelPatch.model_validate({"secret": None}))
    assert not service.get_channel(state_db, "hook").has_secret
    text = audit_text(state_db)
    for secret in ("hmac-key-123", "smtp-pass-456", "new-pass-789", "XXXXSECRET"):
        assert secret not in text
    service.delete_channel(state_db, SYSTEM, "slack")
    assert listing(state_db, object_type="notify_channel", limit=1)[0].action == "delete"
    assert [c.name for c in service.list_channels(state_db)] == ["hook", "mail"]


def test_an_unchanged_update_writes_no_audit_record(state_db: StateDB) -> None:
    make(state_db, HOOK)
    service.update_channel(state_db, SYSTEM, "hook", ChannelPatch(enabled=True))
    assert len(listing(state_db, object_type="notify_channel")) == 1


@pytest.mark.parametrize(("data", "fragment"), [
    ({**HOOK, "config": {"url": "ftp://example.org/x"}}, "url"),
    ({**HOOK, "config": {"url": "not a url"}}, "url"),
    ({**HOOK, "config": {}}, "url"),
    ({**HOOK, "config": {"url": "https://x.org", "password": "p"}}, "password"),
    ({**HOOK, "kind": "pager"}, "kind"),
    ({**HOOK, "name": "bad name!"}, "name"),
    ({**HOOK, "secret": ""}, "secret"),
    ({**HOOK, "secret": "a\x00b"}, "NUL"),
    ({**MAIL, "config": {**MAIL["config"], "from_address": "nobody"}}, "from_address"),  # type: ignore[dict-item]
    ({**MAIL, "config": {**MAIL["config"], "port": 70000}}, "port"),  # type: ignore[dict-item]
    ({**MAIL, "config": {**MAIL["config"], "to": ["a@b.org", "x y@z"]}}, "to"),  # type: ignore[dict-item]
    ({**SLACK, "config": {**SLACK["config"], "card": "adaptive"}}, "card"),  # type: ignore[dict-item]
])
def test_bad_channels_are_refused(data: dict[str, object], fragment: str) -> None:
    with pytest.raises(ValidationError, match=fragment):
        CHANNEL_IN.validate_python(data)


def test_channel_conflicts_and_bad_patches(state_db: StateDB) -> None:
    make(state_db, HOOK)
    make(state_db, MAIL)
    with pytest.raises(ConflictError, match="exists already"):
        make(state_db, HOOK)
    with pytest.raises(ConflictError, match="exists already"):
        service.update_channel(state_db, SYSTEM, "mail", ChannelPatch(name="hook"))
    with pytest.raises(InputError, match=r"config\.url"):
        service.update_channel(state_db, SYSTEM, "hook", ChannelPatch(config={"url": "nope"}))
    with pytest.raises(InputError, match=r"config\.card"):
        service.update_channel(state_db, SYSTEM, "hook", ChannelPatch(config={"card": "x"}))
    with pytest.raises(NotFoundError):
        service.update_channel(state_db, SYSTEM, "ghost", ChannelPatch(enabled=False))
    with pytest.raises(NotFoundError):
        service.delete_channel(state_db, SYSTEM, 999)


def test_only_notify_admins_change_anything(state_db: StateDB) -> None:
    analyst = principal_for(PrincipalKind.USER, 5, "ann", Role.ANALYST)
    with pytest.raises(ForbiddenError):
        service.create_channel(state_db, analyst, CHANNEL_IN.validate_python(HOOK))
    hook = make(state_db, HOOK)
    with pytest.raises(ForbiddenError):
        service.delete_channel(state_db, analyst, hook.id)
    with pytest.raises(ForbiddenError):
        service.create_rule(state_db, analyst, RuleIn(name="r", topics=[Topic.ALERT_CREATED],
                                                      channel_id=hook.id))
    assert len(service.list_channels(state_db)) == 1


def test_rules_express_the_usual_notifications(state_db: StateDB) -> None:
    hook, slack, mail = make(state_db, HOOK), make(state_db, SLACK), make(state_db, MAIL)
    rules = [
        RuleIn(name="high-alerts", topics=[Topic.ALERT_CREATED], min_severity="high",
               channel_id=hook.id),
        RuleIn(name="assignee", topics=[Topic.CASE_ASSIGNED, Topic.TASK_ASSIGNED],
               channel_id=mail.id, event_recipients=True),
        RuleIn(name="mentions", topics=[Topic.MENTIONED], channel_id=mail.id,
               event_recipients=True),
        RuleIn(name="breaches", topics=[Topic.CLOCK_BREACHED], channel_id=slack.id),
    ]
    for rule in rules:
        service.create_rule(state_db, SYSTEM, rule)
    listed = {r.name: r for r in service.list_rules(state_db)}
    assert listed["high-alerts"].min_severity == "high"
    assert listed["assignee"].topics == [Topic.CASE_ASSIGNED, Topic.TASK_ASSIGNED]
    assert listed["breaches"].channel == "slack"
    assert [e.action for e in listing(state_db, object_type="notify_rule")] == ["create"] * 4
    service.update_rule(state_db, SYSTEM, "high-alerts",
                        RulePatch.model_validate({"min_severity": None, "enabled": False}))
    changed = service.get_rule(state_db, "high-alerts")
    assert changed.min_severity is None and not changed.enabled
    change = listing(state_db, object_type="notify_rule", limit=1)[0]
    assert change.before == {"min_severity": "high", "enabled": True}
    assert change.after == {"min_severity": None, "enabled": False}
    with pytest.raises(ConflictError, match="used by the rules breaches"):
        service.delete_channel(state_db, SYSTEM, "slack")
    service.delete_rule(state_db, SYSTEM, "breaches")
    service.delete_channel(state_db, SYSTEM, "slack")
    assert [e.action for e in listing(state_db, object_type="notify_rule", limit=1)] == ["delete"]


def test_bad_rules_are_refused(state_db: StateDB) -> None:
    hook, mail = make(state_db, HOOK), make(state_db, MAIL)
    with pytest.raises(InputError, match="names no recipient"):
        service.create_rule(state_db, SYSTEM, RuleIn(name="r", topics=[Topic.CASE_CREATED],
                                                     channel_id=mail.id))
    with pytest.raises(InputError, match="for e-mail channels"):
        service.create_rule(state_db, SYSTEM, RuleIn(name="r", topics=[Topic.CASE_CREATED],
                                                     channel_id=hook.id, addresses=["a@b.org"]))
    with pytest.raises(InputError, match="channel_id"):
        service.create_rule(state_db, SYSTEM, RuleIn(name="r", topics=[Topic.CASE_CREATED],
                                                     channel_id=4242))
    ok = service.create_rule(state_db, SYSTEM, RuleIn(name="r", topics=[Topic.CASE_CREATED],
                                                      channel_id=mail.id, addresses=["a@b.org"]))
    with pytest.raises(InputError, match="names no recipient"):
        service.update_rule(state_db, SYSTEM, ok.id, RulePatch(addresses=[]))
    with pytest.raises(ConflictError):
        service.create_rule(state_db, SYSTEM, RuleIn(name="r", topics=[Topic.CASE_CREATED],
                                                     channel_id=hook.id))
    for bad in ({"topics": []}, {"topics": ["case.exploded"]}, {"min_severity": "urgent"},
                {"addresses": ["nobody"]}, {"channel_id": 10**12}):
        with pytest.raises(ValidationError):
            RuleIn.model_validate({"name": "x", "topics": ["case.created"], "channel_id": 1, **bad})
    assert service.get_rule(state_db, ok.id).addresses == ["a@b.org"]
