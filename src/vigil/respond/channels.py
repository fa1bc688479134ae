"""Sending one message over one channel: generic webhook, Slack, Teams, e-mail over SMTP.

Each send is bounded by a timeout and ends in an :class:`Outcome` (never an exception): what
the other side answered (HTTP status, SMTP reply) or the error, and whether trying again
may help. HTTP goes through one ``httpx.Client`` (its transport is injectable); SMTP through
``smtplib``.

Webhook requests carry ``X-Vigil-Timestamp`` (Unix seconds) and, when the channel has a
secret, ``X-Vigil-Signature: sha256=<hex>``: the HMAC-SHA256 of ``timestamp + "." + body``
keyed with the secret. A receiver recomputes it over the raw body, compares in constant
time and rejects stale timestamps.
"""

from __future__ import annotations

import contextlib
import email.policy
import hashlib
import hmac
import json
import smtplib
import ssl
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid, parsedate_to_datetime
from typing import Any

import httpx
import orjson

from vigil import __version__
from vigil.core import logging as vlog
from vigil.core.timeutil import parse_iso, to_utc, utcnow
from vigil.respond.models import ChannelKind
from vigil.respond.schemas import ChannelConfig, EmailConfig, SlackConfig, TeamsConfig, WebhookConfig

log = vlog.get("vigil.notify")
USER_AGENT = f"Vigil/{__version__}"
_REPLY_LIMIT = 500
_RETRYABLE_HTTP = frozenset({408, 425, 429})
_COLORS = {"critical": "B71C1C", "high": "E65100", "medium": "F9A825", "low": "1565C0",
           "informational": "607D8B"}


@dataclass(frozen=True, slots=True)
class Message:
    """What a delivery says: the domain event it comes from and the rule that matched it."""

    event_id: int | None
    topic: str
    subject: str
    severity: str | None
    object_type: str
    object_id: str
    recipients: tuple[str, ...]
    details: Mapping[str, Any]
    created_at: datetime
    rule: str | None = None
    test: bool = False

    def to_json(self) -> dict[str, Any]:
        return {"event_id": self.event_id, "topic": self.topic, "subject": self.subject,
                "severity": self.severity, "object_type": self.object_type,
                "object_id": self.object_id, "recipients": list(self.recipients),
                "details": dict(self.details), "created_at": self.created_at.isoformat(),
                "rule": self.rule, "test": self.test}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Message:
        return cls(data.get("event_id"), str(data["topic"]), str(data["subject"]),
                   data.get("severity"), str(data["object_type"]), str(data["object_id"]),
                   tuple(data.get("recipients", ())), dict(data.get("details", {})),
                   parse_iso(str(data["created_at"])), data.get("rule"), bool(data.get("test")))


@dataclass(frozen=True, slots=True)
class ChannelSpec:
    """A channel as the sender needs it: its typed settings and its secret."""

    id: int
    name: str
    kind: ChannelKind
    config: ChannelConfig
    secret: str | None = field(default=None, repr=False)


@dataclass(frozen=True, slots=True)
class Outcome:
    """The result of one attempt."""

    ok: bool
    status_code: int | None = None
    reply: str | None = None
    error: str | None = None
    retryable: bool = True
    retry_after: float | None = None
    duration_ms: int = 0


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """The ``X-Vigil-Signature`` value for ``body`` sent at ``timestamp``."""
    mac = hmac.new(secret.encode("utf-8"), timestamp.encode("ascii") + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def webhook_request(channel: ChannelSpec, message: Message, delivery_id: int,
                    now: datetime) -> tuple[bytes, dict[str, str]]:
    """The body and headers of a generic webhook POST."""
    body = orjson.dumps({"delivery_id": delivery_id, **message.to_json()})
    timestamp = str(int(to_utc(now).timestamp()))
    headers = {"Content-Type": "application/json", "User-Agent": USER_AGENT,
               "X-Vigil-Event": message.topic, "X-Vigil-Delivery": str(delivery_id),
               "X-Vigil-Timestamp": timestamp}
    if channel.secret:
        headers["X-Vigil-Signature"] = sign(channel.secret, timestamp, body)
    return body, headers


def _facts(message: Message, with_details: bool) -> list[tuple[str, str]]:
    facts = [("Severity", message.severity or "-"), ("Topic", message.topic),
             ("Object", f"{message.object_type} {message.object_id}")]
    if message.recipients:
        facts.append(("People", ", ".join(message.recipients)))
    facts.append(("When", message.created_at.isoformat(timespec="seconds")))
    if with_details:
        facts.extend(_details(message))
    return facts


def _details(message: Message) -> list[tuple[str, str]]:
    """The event's details as text, leaving out empty values."""
    return [(str(k), _text(v)) for k, v in message.details.items() if v not in (None, "", [], {})]


def _text(value: object) -> str:
    return value if isinstance(value, str) else json.dumps(value, default=str, ensure_ascii=False)


def _slack_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slack_body(config: SlackConfig, message: Message) -> dict[str, Any]:
    """A Slack-compatible message: ``text`` (what Mattermost and notifications show) and blocks."""
    level = f"[{message.severity.upper()}] " if message.severity else ""
    text = _slack_escape(f"{level}{message.subject}")
    facts = _facts(message, config.details)
    lines = "\n".join(f"*{_slack_escape(k)}:* {_slack_escape(v)}" for k, v in facts)
    return {"text": text, "blocks": [
        {"type": "section", "text": {"type": "mrkdwn", "text": f"*{text}*"[:3000]}},
        {"type": "section", "text": {"type": "mrkdwn", "text": lines[:3000]}},
    ]}


def teams_body(config: TeamsConfig, message: Message) -> dict[str, Any]:
    """A Teams-compatible message: an Adaptive Card in a message, or a legacy MessageCard."""
    facts = _facts(message, config.details)
    if config.card == "messagecard":
        return {"@type": "MessageCard", "@context": "https://schema.org/extensions",
                "summary": message.subject[:256],
                "themeColor": _COLORS.get(message.severity or "", "607D8B"),
                "title": message.subject,
                "sections": [{"facts": [{"name": k, "value": v} for k, v in facts]}]}
    card = {"$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
            "type": "AdaptiveCard", "version": "1.4",
            "body": [{"type": "TextBlock", "text": message.subject, "weight": "Bolder",
                      "size": "Medium", "wrap": True},
                     {"type": "FactSet", "facts": [{"title": k, "value": v} for k, v in facts]}]}
    return {"type": "message", "attachments": [
        {"contentType": "application/vnd.microsoft.card.adaptive", "contentUrl": None,
         "content": card}]}


def _header(text: str, limit: int = 900) -> str:
    """A header value: one line (no header injection), bounded."""
    return " ".join(text.split())[:limit]


def email_message(config: EmailConfig, message: Message, to: str, now: datetime) -> EmailMessage:
    """A plain-text e-mail for one recipient."""
    level = f"[{message.severity}] " if message.severity else ""
    mail = EmailMessage(policy=email.policy.SMTP)
    mail["From"] = config.from_address
    mail["To"] = to
    mail["Subject"] = _header(f"[Vigil] {level}{message.subject}")
    mail["Date"] = format_datetime(to_utc(now))
    mail["Message-ID"] = make_msgid("vigil", domain=config.from_address.rpartition("@")[2])
    mail["Auto-Submitted"] = "auto-generated"
    mail["X-Vigil-Event"] = _header(message.topic)
    facts = _facts(message, with_details=False)
    lines = [message.subject, "", *(f"{k + ':':<10} {v}" for k, v in facts)]
    if details := _details(message):
        lines += ["", "Details:", *(f"  {k}: {v}" for k, v in details)]
    if message.rule:
        lines += ["", f"-- Sent by Vigil because of the notification rule '{message.rule}'."]
    mail.set_content("\n".join(lines) + "\n")
    return mail


def send(channel: ChannelSpec, message: Message, recipient: str, delivery_id: int,
         client: httpx.Client, smtp_timeout: float) -> Outcome:
    """Deliver ``message`` over ``channel`` (to ``recipient`` for e-mail); never raises.

    The webhook timestamp and the e-mail date are the time of sending.
    """
    started, now = time.monotonic(), utcnow()
    config = channel.config
    try:
        if isinstance(config, EmailConfig):
            mail = email_message(config, message, recipient, now)
            outcome = send_email(config, channel.secret, mail, recipient, smtp_timeout)
        elif isinstance(config, WebhookConfig):
            body, headers = webhook_request(channel, message, delivery_id, now)
            outcome = post(client, config.url, body, headers)
        else:
            payload = slack_body(config, message) if isinstance(config, SlackConfig) else \
                teams_body(config, message)
            outcome = post(client, config.url, orjson.dumps(payload),
                           {"Content-Type": "application/json", "User-Agent": USER_AGENT})
    except Exception as exc:  # a message that cannot be built must not stop the others
        log.exception("notification over channel %s could not be sent", channel.name)
        outcome = Outcome(False, error=f"cannot send: {type(exc).__name__}: {exc}",
                          retryable=False)
    elapsed = int((time.monotonic() - started) * 1000)
    return Outcome(outcome.ok, outcome.status_code, outcome.reply, outcome.error,
                   outcome.retryable, outcome.retry_after, elapsed)


def post(client: httpx.Client, url: str, body: bytes, headers: dict[str, str]) -> Outcome:
    """POST ``body``; 2xx is success, 408/425/429/5xx and network errors may be retried."""
    try:
        response = client.post(url, content=body, headers=headers)
    except httpx.TimeoutException as exc:
        return Outcome(False, error=f"timeout: {type(exc).__name__}")
    except httpx.InvalidURL as exc:
        return Outcome(False, error=f"invalid URL: {exc}", retryable=False)
    except httpx.HTTPError as exc:
        return Outcome(False, error=f"{type(exc).__name__}: {exc}")
    code = response.status_code
    reply = response.text[:_REPLY_LIMIT] or None
    if 200 <= code < 300:
        return Outcome(True, code, reply)
    if 300 <= code < 400:
        where = response.headers.get("location", "?")
        return Outcome(False, code, reply, f"HTTP {code}: redirect to {where} not followed",
                       retryable=False)
    retryable = code >= 500 or code in _RETRYABLE_HTTP
    return Outcome(False, code, reply, f"HTTP {code}", retryable=retryable,
                   retry_after=_retry_after(response.headers.get("retry-after")))


def _retry_after(value: str | None) -> float | None:
    """Seconds from a ``Retry-After`` header (delta seconds or an HTTP date)."""
    if not value:
        return None
    if value.strip().isdigit():
        return float(value.strip())
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _reply(code: int, text: bytes | str) -> str:
    body = text.decode("utf-8", "replace") if isinstance(text, bytes) else text
    return f"{code} {body}"[:_REPLY_LIMIT]


def send_email(config: EmailConfig, password: str | None, mail: EmailMessage, to: str,
               timeout: float) -> Outcome:
    """One SMTP conversation; 4xx replies and network errors may be retried, 5xx may not."""
    smtp: smtplib.SMTP | None = None
    try:
        context = ssl.create_default_context()
        if config.tls:
            smtp = smtplib.SMTP_SSL(config.host, config.port, timeout=timeout, context=context)
        else:
            smtp = smtplib.SMTP(config.host, config.port, timeout=timeout)
        smtp.ehlo()
        if config.starttls:
            smtp.starttls(context=context)
            smtp.ehlo()
        if config.username:
            smtp.login(config.username, password or "")
        outcome = _transaction(smtp, config.from_address, to, mail)
    except smtplib.SMTPNotSupportedError as exc:
        outcome = Outcome(False, error=f"SMTP server does not support it: {exc}", retryable=False)
    except smtplib.SMTPResponseException as exc:
        outcome = Outcome(False, exc.smtp_code, _reply(exc.smtp_code, exc.smtp_error),
                          f"SMTP {exc.smtp_code}", retryable=exc.smtp_code < 500)
    except smtplib.SMTPException as exc:
        outcome = Outcome(False, error=f"SMTP: {exc}")
    except ssl.SSLCertVerificationError as exc:
        outcome = Outcome(False, error=f"TLS certificate: {exc.verify_message}", retryable=False)
    except OSError as exc:
        outcome = Outcome(False, error=f"{type(exc).__name__}: {exc}")
    finally:
        if smtp is not None:
            with contextlib.suppress(smtplib.SMTPException, OSError):
                smtp.quit()
            smtp.close()
    return outcome


def _transaction(smtp: smtplib.SMTP, sender: str, to: str, mail: EmailMessage) -> Outcome:
    """MAIL, RCPT and DATA, keeping the server's final reply."""
    code, text = smtp.mail(sender)
    if code != 250:
        return _refused("MAIL FROM", code, text)
    code, text = smtp.rcpt(to)
    if code not in (250, 251):
        return _refused("RCPT TO", code, text)
    code, text = smtp.data(mail.as_bytes())
    if code != 250:
        return _refused("DATA", code, text)
    return Outcome(True, code, _reply(code, text))


def _refused(command: str, code: int, text: bytes) -> Outcome:
    return Outcome(False, code, _reply(code, text), f"SMTP {command} refused: {code}",
                   retryable=400 <= code < 500)
