"""Linux security logs: ``auth.log``/``secure`` (format ``auth``) and auditd (format ``auditd``).

``auth`` lines are syslog lines (the header is parsed by :mod:`vigil.events.parsers.syslog`);
the messages of sshd, sudo, su, PAM, the shadow account tools, cron and systemd-logind add
named fields: ``user``, ``target_user``, ``src_ip``, ``src_port``, ``auth_method``,
``outcome`` (``success``/``failure``), ``action``, ``command``, ``tty``, ``pwd``...

``auditd`` records of one event (same ``msg=audit(time:serial)``) are joined into one event.
Fields keep the auditd names Sigma rules use (``type``, ``syscall``, ``exe``, ``comm``,
``key``, ``a0``..., ``name``, ``nametype``, ``cwd``, ``proctitle``), with quoted values
unquoted and hex-encoded values decoded. A plain name holds the value of the first record
that has it (``type`` is the first record's type, ``a0`` the SYSCALL argument when SYSCALL
comes first). The values of the records after the first also stay reachable as
``<TYPE>.<name>`` (``EXECVE.a0``, ``CWD.cwd``), as ``PATH.<item>.<name>`` for PATH records
(``PATH.1.name``), and as ``<TYPE>.<n>.<name>`` for other types that repeat.
``record_types`` lists the types joined; ``msg`` is ``audit(<time>:<serial>)``.
The interpreted fields of the enriched format (after ``\\x1d``: ``UID="root"``,
``SYSCALL=execve``...) are added under their upper-case names.
"""

from __future__ import annotations

import contextlib
import ipaddress
import re
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial

from vigil.core.timeutil import EPOCH, utcnow
from vigil.events.formats import Format, Framing, first_line, register
from vigil.events.models import (
    Event,
    FieldValue,
    LogSource,
    ParseContext,
    ParseResult,
    Rejected,
    event_id,
)
from vigil.events.parsers.syslog import (
    LINUX_SERVICES,
    SyslogRecord,
    looks_like_syslog,
    parse_line,
    syslog_events,
)

AUDITD_SOURCE = LogSource("linux", None, "auditd")
MAX_AUDIT_GROUP = 1000
"""Records joined into one auditd event at most (a guard against endless serials)."""

Fields = dict[str, FieldValue]
Handler = Callable[[str, Fields], None]


# -- auth.log ---------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class _Rule:
    """A message pattern: its named groups become fields, plus constant fields."""

    pattern: re.Pattern[str]
    constants: Fields = field(default_factory=dict)
    kv: bool = False
    """Also read ``key=value`` pairs after the match (PAM and shadow-utils messages)."""


def _rule(pattern: str, kv: bool = False, **constants: FieldValue) -> _Rule:
    return _Rule(re.compile(pattern), constants, kv)


_OUTCOMES = {"Accepted": "success", "Failed": "failure", "Successful": "success",
             "FAILED": "failure", "FAILED SU": "failure", "+": "success", "-": "failure"}
_INT_FIELDS = frozenset({"src_port", "dst_port"})
_KV = re.compile(r"(\w+)=([^\s,]*)")
_USER = r"(?P<user>[^\s(]+)(?:\(uid=(?P<uid>\d+)\))?"
_BY = r"(?: by (?P<by_user>[^\s(]*)(?:\(uid=(?P<by_uid>\d+)\))?)?"
_FROM = r" from (?P<src_ip>\S+) port (?P<src_port>\d+)"

_SSHD = (
    _rule(r"(?P<result>Accepted|Failed) (?P<auth_method>\S+) for (?P<invalid>invalid user )?"
          r"(?P<user>.*?)" + _FROM + r"(?: ssh2(?:: (?P<key_type>\S+) (?P<key_fingerprint>\S+))?)?",
          action="login"),
    _rule(r"Invalid user (?P<user>.*?) from (?P<src_ip>\S+)(?: port (?P<src_port>\d+))?",
          action="invalid_user", outcome="failure", invalid_user=True),
    _rule(r"(?:error: )?maximum authentication attempts exceeded for "
          r"(?P<invalid>invalid user )?(?P<user>.*?)" + _FROM,
          action="login", outcome="failure", reason="maximum authentication attempts exceeded"),
    _rule(r"(?:Disconnected from|Disconnecting|Connection closed by|Received disconnect from)"
          r"(?: (?:(?P<invalid>invalid user)|authenticating user|user) (?P<user>\S*))?"
          r" (?P<src_ip>\S+) port (?P<src_port>\d+)", action="disconnect"),
    _rule(r"Connection from (?P<src_ip>\S+) port (?P<src_port>\d+) on (?P<dst_ip>\S+) "
          r"port (?P<dst_port>\d+)", action="connect"),
    _rule(r"Did not receive identification string from (?P<src_ip>\S+)"
          r"(?: port (?P<src_port>\d+))?", action="connect", outcome="failure"),
    _rule(r"PAM \d+ more authentication failures?;", kv=True, action="auth_failure",
          outcome="failure"),
    _rule(r"Server listening on (?P<dst_ip>\S+) port (?P<dst_port>\d+)", action="listen"),
)
_SU = (
    _rule(r"(?:(?P<result>FAILED SU) )?\(to (?P<target_user>[^)]+)\) (?P<user>\S+) "
          r"on (?P<tty>\S+)", action="su", outcome="success"),
    _rule(r"(?P<result>Successful|FAILED) su for (?P<target_user>\S+) by (?P<user>\S+)",
          action="su"),
    _rule(r"(?P<result>[+-]) (?P<tty>\S+) (?P<user>[^\s:]+):(?P<target_user>\S+)$",
          action="su"),
)
_PAM = re.compile(r"(?P<pam_module>pam_\w+)\((?P<pam_service>[^:)]*):(?P<pam_type>[^)]*)\):? ")
_PAM_RULES = (
    _rule(r"session opened for user " + _USER + _BY, action="session_open"),
    _rule(r"session closed for user " + _USER, action="session_close"),
    _rule(r"authentication failure;", kv=True, action="auth_failure", outcome="failure"),
    _rule(r"password changed for (?P<target_user>\S+)", action="password_change",
          outcome="success"),
    _rule(r"check pass; user unknown", action="auth_failure", outcome="failure",
          reason="user unknown"),
)
_Q = r"'(?P<{}>[^']*)'"
_ACCOUNT = (
    _rule(r"new user: name=(?P<target_user>[^,\s]*)", kv=True, action="user_add"),
    _rule(r"new group: name=(?P<group>[^,\s]*)", kv=True, action="group_add"),
    _rule(r"group added to (?P<file>\S+): name=(?P<group>[^,\s]*)", kv=True,
          action="group_add"),
    _rule(r"add " + _Q.format("target_user") + r" to (?:shadow )?group " + _Q.format("group"),
          action="group_member_add"),
    _rule(r"delete " + _Q.format("target_user") + r" from (?:shadow )?group "
          + _Q.format("group"), action="group_member_delete"),
    _rule(r"delete user " + _Q.format("target_user"), action="user_delete"),
    _rule(r"removed (?:shadow )?group " + _Q.format("group") + r" owned by "
          + _Q.format("target_user"), action="group_delete"),
    _rule(r"group " + _Q.format("group") + r" removed", action="group_delete"),
    _rule(r"change user name " + _Q.format("target_user") + r" to " + _Q.format("new_name"),
          action="user_rename"),
    _rule(r"(?:change|lock|unlock) user " + _Q.format("target_user"), action="user_change"),
    _rule(r"user (?P<target_user>\S+) added by (?P<user>\S+) to group (?P<group>\S+)",
          action="group_member_add"),
    _rule(r"user (?P<target_user>\S+) removed by (?P<user>\S+) from group (?P<group>\S+)",
          action="group_member_delete"),
    _rule(r"password for " + _Q.format("target_user") + r" changed by " + _Q.format("user"),
          action="password_change", outcome="success"),
)
_CRON = (
    _rule(r"\((?P<user>[^)]*)\) CMD \((?P<command>.*)\)$", action="command"),
)
_LOGIND = (
    _rule(r"New session (?P<session_id>\S+) of user (?P<user>\S+?)\.?$", action="session_open"),
    _rule(r"Session (?P<session_id>\S+) logged out", action="session_logout"),
    _rule(r"Removed session (?P<session_id>\S+?)\.?$", action="session_close"),
)
_PKEXEC = (
    _rule(r"(?P<user>[^\s:]+): Executing command \[USER=(?P<target_user>[^\]]*)\] "
          r"\[TTY=(?P<tty>[^\]]*)\] \[CWD=(?P<pwd>[^\]]*)\] \[COMMAND=(?P<command>.*)\]$",
          action="command", outcome="success"),
)
_SUDO = re.compile(r"\s*(?P<user>\S+) : (?P<rest>.*)", re.S)
_SUDO_NAMES = {"TTY": "tty", "PWD": "pwd", "USER": "target_user", "GROUP": "target_group",
               "COMMAND": "command", "ENV": "env", "TSID": "tsid", "CHROOT": "chroot"}
AUTH_PROGRAMS = frozenset(
    name for name, service in LINUX_SERVICES.items() if service in ("sshd", "sudo", "auth"))
AUTH_COMPANIONS = frozenset({"systemd-logind", "polkitd", "gdm-password",
                             "lightdm", "sssd", "dbus-daemon"})
"""Programs that also write to auth.log (they count towards detecting the auth format)."""


def _add_kv(text: str, fields: Fields) -> None:
    """``key=value`` pairs (``logname= uid=0 rhost=...``, ``name=x, UID=1``) as fields."""
    for key, value in _KV.findall(text):
        if value and key != "name":
            fields.setdefault(key.lower(), value)
    rhost = fields.get("rhost")
    if isinstance(rhost, str) and "src_ip" not in fields:
        with contextlib.suppress(ValueError):
            fields["src_ip"] = str(ipaddress.ip_address(rhost))


def _apply(rules: Iterable[_Rule], message: str, fields: Fields) -> None:
    """Fields of the first rule that matches ``message`` (never overwriting a field)."""
    for rule in rules:
        match = rule.pattern.match(message)
        if match is None:
            continue
        for key, value in rule.constants.items():
            fields.setdefault(key, value)
        for key, text in match.groupdict().items():
            if not text:
                continue
            if key == "result":
                fields["outcome"] = _OUTCOMES[text]
            elif key == "invalid":
                fields.setdefault("invalid_user", True)
            else:
                fields.setdefault(key, int(text) if key in _INT_FIELDS else text)
        if rule.kv:
            _add_kv(message[match.end():], fields)
        return


def _pam(message: str, fields: Fields) -> bool:
    """``pam_unix(sshd:session): ...`` messages; False if ``message`` is no PAM message."""
    match = _PAM.match(message)
    if match is None:
        return False
    for key in ("pam_module", "pam_service", "pam_type"):
        fields.setdefault(key, match.group(key))
    _apply(_PAM_RULES, message[match.end():], fields)
    return True


def _sudo(message: str, fields: Fields) -> None:
    """``alice : TTY=pts/0 ; PWD=/home/alice ; USER=root ; COMMAND=/usr/bin/id``."""
    match = _SUDO.match(message)
    if match is None:
        return
    fields.setdefault("user", match.group("user"))
    rest = match.group("rest")
    cut = rest.find("COMMAND=")
    head, command = (rest, None) if cut == -1 else (rest[:cut], rest[cut + 8:])
    reasons = []
    for segment in head.split(" ; "):
        part = segment.strip(" ;")
        key, equals, value = part.partition("=")
        if equals and key.isalpha() and key.isupper():
            fields.setdefault(_SUDO_NAMES.get(key, key.lower()), value)
        elif part:
            reasons.append(part)
    if command is not None:
        fields.setdefault("command", command)
    fields.setdefault("action", "command")
    fields.setdefault("outcome", "failure" if reasons else "success")
    if reasons:
        fields.setdefault("reason", "; ".join(reasons))


_HANDLERS: dict[str, Handler] = {
    "sudo": _sudo,
    "cron": partial(_apply, _CRON), "crond": partial(_apply, _CRON),
    "systemd-logind": partial(_apply, _LOGIND),
    **{name: partial(_apply, _SSHD) for name in ("sshd", "sshd-session", "sshd-auth")},
    "su": partial(_apply, _SU),
    "pkexec": partial(_apply, _PKEXEC),
    **{name: partial(_apply, _ACCOUNT) for name in ("useradd", "groupadd", "usermod", "userdel",
                                                    "groupdel", "groupmod", "passwd",
                                                    "chpasswd", "chage", "gpasswd")},
}


def auth_fields(record: SyslogRecord) -> None:
    """Add the named fields of an auth.log message to its record."""
    message = record.message
    if _pam(message, record.fields):
        return
    handler = _HANDLERS.get((record.app or "").lower())
    if handler is not None:
        handler(message, record.fields)


def parse_auth(records: Iterable[bytes], ctx: ParseContext) -> Iterator[ParseResult]:
    """Lines of ``/var/log/auth.log`` or ``/var/log/secure``, one event per line."""
    return syslog_events(records, ctx, "auth", "auth", auth_fields)


def _sniff_auth(head: bytes) -> bool:
    """Syslog lines of which at least half of the first are from sshd, sudo, su, PAM..."""
    if not looks_like_syslog(first_line(head)):
        return False
    now = utcnow()
    parsed = auth = 0
    for line in [line for line in head.splitlines() if line.strip()][:16]:
        try:
            record = parse_line(line.decode("utf-8", "replace"), now)
        except ValueError:
            continue
        parsed += 1
        app = (record.app or "").lower()
        if app in AUTH_PROGRAMS or app in AUTH_COMPANIONS or record.message.startswith("pam_"):
            auth += 1
    return parsed > 0 and 2 * auth >= parsed


# -- auditd -----------------------------------------------------------------------------------

_AUDIT = re.compile(r"(?:node=(\S+) )?type=(\S+) msg=audit\((\d+)\.(\d+):(\d+)\):? ?")
_AUDIT_KV = re.compile(r"([\w\-\[\]]+)=(\"[^\"]*\"|'[^']*'|\S*)")
_HEX = re.compile(r"(?:[0-9A-F]{2})+")
_EXECVE_ARG = re.compile(r"a\d+")
_EXECVE_PART = re.compile(r"(a\d+)\[\d+\]")
ENRICHED_SEPARATOR = "\x1d"
ENCODED_FIELDS = frozenset({"acct", "cmd", "comm", "cwd", "data", "dir", "exe", "file", "key",
                            "name", "ocomm", "path", "proctitle", "root_dir", "watch"})
"""Fields auditd writes hex-encoded (unquoted) when they hold spaces, quotes or control bytes."""


@dataclass(slots=True)
class _AuditRecord:
    type: str
    node: str | None
    seconds: str
    fraction: str
    serial: str
    ts: datetime
    values: Fields
    raw: bytes
    text: str

    @property
    def key(self) -> tuple[str | None, str, str, str]:
        return self.node, self.seconds, self.fraction, self.serial


def _audit_value(key: str, value: str, record_type: str) -> FieldValue:
    """A value unquoted, or decoded if auditd hex-encoded it."""
    if value.startswith('"'):
        return value[1:-1] if len(value) > 1 and value.endswith('"') else value[1:]
    encoded = key in ENCODED_FIELDS or (
        record_type == "EXECVE" and _EXECVE_ARG.fullmatch(key) is not None)
    if not encoded or _HEX.fullmatch(value) is None:
        return value
    data = bytes.fromhex(value)
    if key == "proctitle":
        return data.replace(b"\x00", b" ").decode("utf-8", "replace").strip()
    text = data.decode("utf-8", "replace")
    if key == "key" and "\x01" in text:
        return list(text.split("\x01"))
    return text


def _audit_pairs(text: str, record_type: str, values: Fields) -> None:
    """The ``key=value`` pairs of a record body (the inner ``msg='...'`` ones too)."""
    parts: dict[str, list[bytes]] = {}
    for key, value in _AUDIT_KV.findall(text):
        if value.startswith("'"):
            _audit_pairs(value.strip("'"), record_type, values)
        elif record_type == "EXECVE" and (part := _EXECVE_PART.fullmatch(key)) is not None:
            chunk = (value.strip('"').encode() if value.startswith('"') or not _HEX.fullmatch(value)
                     else bytes.fromhex(value))
            parts.setdefault(part.group(1), []).append(chunk)
        else:
            values.setdefault(key, _audit_value(key, value, record_type))
    for name, chunks in parts.items():
        values.setdefault(name, b"".join(chunks).decode("utf-8", "replace"))


def _audit_record(text: str, raw: bytes) -> _AuditRecord:
    match = _AUDIT.match(text)
    if match is None:
        raise ValueError("not an auditd record (no 'type=... msg=audit(...)')")
    node, record_type, seconds, fraction, serial = match.groups()
    try:
        ts = EPOCH + timedelta(seconds=int(seconds), microseconds=int(fraction[:6].ljust(6, "0")))
    except OverflowError:
        raise ValueError(f"bad auditd timestamp {seconds}.{fraction}") from None
    body, _, enriched = text[match.end():].partition(ENRICHED_SEPARATOR)
    values: Fields = {}
    _audit_pairs(body, record_type, values)
    if enriched:
        _audit_pairs(enriched, record_type, values)
    return _AuditRecord(record_type, node, seconds, fraction, serial, ts, values, raw, text)


def _prefixes(group: list[_AuditRecord]) -> Iterator[tuple[_AuditRecord, str]]:
    """Each record after the first with the prefix of its namespaced fields."""
    counts = Counter(record.type for record in group)
    seen: Counter[str] = Counter({group[0].type: 1})
    for record in group[1:]:
        index = seen[record.type]
        seen[record.type] += 1
        if record.type == "PATH":
            yield record, f"PATH.{record.values.get('item', index)}."
        elif counts[record.type] > 1:
            yield record, f"{record.type}.{index}."
        else:
            yield record, f"{record.type}."


def _audit_event(group: list[_AuditRecord], ctx: ParseContext) -> Event | None:
    """One event of the records of one auditd event; None for a lone EOE."""
    records = [record for record in group if record.type != "EOE"]
    if not records:
        return None
    first = records[0]
    fields: Fields = {"type": first.type,
                      "msg": f"audit({first.seconds}.{first.fraction}:{first.serial})",
                      "record_types": [record.type for record in records]}
    if first.node is not None:
        fields["node"] = first.node
    for key, value in first.values.items():
        fields.setdefault(key, value)
    for record, prefix in _prefixes(records):
        for key, value in record.values.items():
            fields.setdefault(key, value)
            fields[prefix + key] = value
    raw = b"\n".join(record.raw for record in group)
    return Event(
        id=event_id(raw),
        ts=first.ts,
        received=ctx.received,
        host=first.node or ctx.host,
        source=ctx.source or AUDITD_SOURCE,
        format="auditd",
        fields=fields,
        raw="\n".join(record.text for record in group),
    )


def parse_auditd(records: Iterable[bytes], ctx: ParseContext) -> Iterator[ParseResult]:
    """auditd log lines; the records of one event (one serial) become one event."""
    group: list[_AuditRecord] = []
    for number, line in enumerate(records, 1):
        text = line.decode("utf-8", "replace").rstrip("\r\n\x00")
        try:
            record = _audit_record(text, line)
        except ValueError as exc:
            yield Rejected(str(exc), line, ctx.origin, number, "auditd")
            continue
        if group and (record.key != group[0].key or len(group) >= MAX_AUDIT_GROUP):
            if (event := _audit_event(group, ctx)) is not None:
                yield event
            group = []
        group.append(record)
        if record.type == "EOE":
            if (event := _audit_event(group, ctx)) is not None:
                yield event
            group = []
    if group and (event := _audit_event(group, ctx)) is not None:
        yield event


def _sniff_auditd(head: bytes) -> bool:
    line = first_line(head)
    return line.startswith((b"type=", b"node=")) and b" msg=audit(" in line


register(Format("auditd", Framing.LINES, parse_auditd, _sniff_auditd,
                "Linux auditd logs (records of one event joined, raw or enriched format)",
                priority=20))
register(Format("auth", Framing.LINES, parse_auth, _sniff_auth,
                "Linux auth.log / secure: sshd, sudo, su, PAM, account changes", priority=30))
