"""auth.log and auditd parsing: message variants and the joining of auditd records."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vigil.events import Event, LogSource, ParseContext, Rejected, detect_format, event_id
from vigil.events.parsers import linux
from vigil.events.parsers.linux import parse_auditd, parse_auth

RECEIVED = datetime(2024, 1, 1, 12, 0, tzinfo=UTC)


def ctx(**args: object) -> ParseContext:
    return ParseContext(origin="test", received=RECEIVED, **args)  # type: ignore[arg-type]


def auth(message: str, app: str = "sshd[42]") -> dict[str, object]:
    [event] = parse_auth([f"Jan  1 10:00:00 web01 {app}: {message}".encode()], ctx())
    assert isinstance(event, Event)
    fields: dict[str, object] = dict(event.fields)
    for key in ("host", "app", "pid", "message"):
        fields.pop(key, None)
    return fields


def audit(*lines: str, **ctx_args: object) -> list[Event | Rejected]:
    return list(parse_auditd([line.encode() for line in lines], ctx(**ctx_args)))


def hexed(text: str) -> str:
    return text.encode().hex().upper()


# -- auth.log ---------------------------------------------------------------------------------

def test_ssh_logins() -> None:
    assert auth("Accepted password for alice from 192.0.2.1 port 5000 ssh2") == {
        "action": "login", "outcome": "success", "auth_method": "password", "user": "alice",
        "src_ip": "192.0.2.1", "src_port": 5000}
    fields = auth("Failed none for invalid user odd name from 2001:db8::1 port 22 ssh2")
    assert fields["user"] == "odd name"
    assert fields["invalid_user"] is True
    assert fields["src_ip"] == "2001:db8::1"
    assert fields["outcome"] == "failure"
    assert auth("Invalid user test from 203.0.113.1")["src_ip"] == "203.0.113.1"  # OpenSSH < 7.5
    assert "user" not in auth("Invalid user  from 203.0.113.1 port 7")


def test_unknown_messages_keep_the_header_fields_only() -> None:
    assert auth("Server has received SIGHUP; restarting.") == {}
    assert auth("something", app="nginx[1]") == {}


def test_sudo_variants() -> None:
    fields = auth("alice : TTY=pts/0 ; PWD=/srv ; USER=postgres ; GROUP=dba ; "
                  "COMMAND=/usr/bin/psql -c select 1 ; drop table x", app="sudo")
    assert fields == {"user": "alice", "tty": "pts/0", "pwd": "/srv", "target_user": "postgres",
                      "target_group": "dba", "command": "/usr/bin/psql -c select 1 ; drop table x",
                      "action": "command", "outcome": "success"}
    fields = auth("eve : command not allowed ; TTY=pts/3 ; PWD=/ ; USER=root ; COMMAND=/bin/su",
                  app="sudo")
    assert fields["outcome"] == "failure"
    assert fields["reason"] == "command not allowed"
    # a HOST= item never replaces the header host
    [event] = parse_auth([b"Jan  1 10:00:00 web01 sudo: bob : HOST=evil ; TTY=pts/1 ; "
                          b"PWD=/ ; USER=root ; COMMAND=/bin/id"], ctx())
    assert isinstance(event, Event)
    assert event.fields["host"] == "web01"
    assert event.host == "web01"
    assert auth("unable to resolve host web01: Name or service not known", app="sudo") == {}


@pytest.mark.parametrize(("message", "outcome"), [
    ("(to root) alice on pts/0", "success"),
    ("FAILED SU (to root) alice on pts/0", "failure"),
    ("Successful su for root by alice", "success"),
    ("FAILED su for root by alice", "failure"),
    ("+ pts/0 alice:root", "success"),
    ("- pts/0 alice:root", "failure"),
])
def test_su_variants(message: str, outcome: str) -> None:
    fields = auth(message, app="su")
    assert (fields["user"], fields["target_user"], fields["outcome"]) == ("alice", "root", outcome)


def test_pam_messages() -> None:
    fields = auth("pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh "
                  "ruser= rhost=attacker.example.net  user=root")
    assert fields["rhost"] == "attacker.example.net"
    assert "src_ip" not in fields  # a host name is no IP address
    assert fields["user"] == "root"
    fields = auth("pam_sss(login:session): session opened for user dave by LOGIN(uid=0)",
                  app="login")
    assert fields["pam_module"] == "pam_sss"
    assert (fields["user"], fields["by_user"], fields["by_uid"]) == ("dave", "LOGIN", "0")


@pytest.mark.parametrize(("app", "message", "expected"), [
    ("usermod", "change user 'bob' shell from '/bin/sh' to '/bin/bash'",
     {"action": "user_change", "target_user": "bob"}),
    ("usermod", "lock user 'bob' password", {"action": "user_change", "target_user": "bob"}),
    ("usermod", "change user name 'bob' to 'rob'",
     {"action": "user_rename", "target_user": "bob", "new_name": "rob"}),
    ("gpasswd", "delete 'bob' from group 'sudo'",
     {"action": "group_member_delete", "target_user": "bob", "group": "sudo"}),
    ("groupdel", "group 'old' removed from /etc/group", {"action": "group_delete", "group": "old"}),
    ("passwd", "password for 'bob' changed by 'root'",
     {"action": "password_change", "outcome": "success", "target_user": "bob", "user": "root"}),
])
def test_account_tools(app: str, message: str, expected: dict[str, object]) -> None:
    assert auth(message, app=f"{app}[9]") == expected


def test_auth_log_sources_and_rejects() -> None:
    lines = [b"Jan  1 10:00:00 h sshd[1]: x", b"Jan  1 10:00:00 h sudo: x",
             b"Jan  1 10:00:00 h systemd-logind[1]: x", b"Jan  1 10:00:00 h CRON[1]: x",
             b"not a syslog line"]
    results = list(parse_auth(lines, ctx()))
    services = [r.source.service for r in results if isinstance(r, Event)]
    assert services == ["sshd", "sudo", "auth", "cron"]
    assert all(r.format == "auth" for r in results if isinstance(r, Event))
    rejected = results[-1]
    assert isinstance(rejected, Rejected)
    assert (rejected.format, rejected.line, rejected.raw) == ("auth", 5, b"not a syslog line")


@given(st.binary(max_size=200))
def test_auth_never_raises(data: bytes) -> None:
    assert len(list(parse_auth([b"Jan  1 10:00:00 h sshd[1]: " + data, data], ctx()))) == 2


def test_auth_sniffing() -> None:
    syslog = b"Jan  1 10:00:00 h systemd[1]: a\nJan  1 10:00:00 h kernel: b\n"
    assert detect_format(syslog).name == "syslog"
    # one sudo line among many others does not make a file an auth.log
    assert detect_format(syslog + b"Jan  1 10:00:00 h sudo: x\n").name == "syslog"
    auth_log = b"Jan  1 10:00:00 h CRON[1]: pam_unix(cron:session): session closed for user r\n"
    assert detect_format(auth_log + syslog[:33]).name == "auth"


# -- auditd -----------------------------------------------------------------------------------

SYSCALL = ('type=SYSCALL msg=audit(1700000000.123:456): arch=c000003e syscall=59 success=yes '
           'exit=0 a0=55d0 a1=55d1 a2=55d2 a3=0 items=1 ppid=1 pid=2 auid=1000 uid=0 '
           'comm="ls" exe="/usr/bin/ls" key="exec"')
EXECVE = 'type=EXECVE msg=audit(1700000000.123:456): argc=2 a0="ls" a1="-la"'
PATH = ('type=PATH msg=audit(1700000000.123:456): item=0 name="/usr/bin/ls" inode=1 '
        'nametype=NORMAL')
EOE = "type=EOE msg=audit(1700000000.123:456): "


def test_records_of_one_serial_are_joined() -> None:
    [event] = audit(SYSCALL, EXECVE, PATH, EOE)
    assert isinstance(event, Event)
    assert event.ts == datetime(2023, 11, 14, 22, 13, 20, 123000, tzinfo=UTC)
    assert event.source == LogSource("linux", None, "auditd")
    assert event.format == "auditd"
    assert event.received == RECEIVED
    assert event.id == event_id("\n".join((SYSCALL, EXECVE, PATH, EOE)).encode())
    assert event.raw == "\n".join((SYSCALL, EXECVE, PATH, EOE))
    fields = event.fields
    assert fields["type"] == "SYSCALL"
    assert fields["msg"] == "audit(1700000000.123:456)"
    assert fields["record_types"] == ["SYSCALL", "EXECVE", "PATH"]
    assert (fields["a0"], fields["EXECVE.a0"], fields["EXECVE.a1"]) == ("55d0", "ls", "-la")
    assert (fields["name"], fields["PATH.0.name"], fields["nametype"]) == (
        "/usr/bin/ls", "/usr/bin/ls", "NORMAL")
    assert (fields["exe"], fields["comm"], fields["key"]) == ("/usr/bin/ls", "ls", "exec")
    assert "SYSCALL.a0" not in fields  # the first record's values are the plain ones


def test_events_end_at_a_new_serial_or_the_end_of_input() -> None:
    other = "type=USER_END msg=audit(1700000001.000:457): pid=3 uid=0 msg='op=x res=success'"
    events = audit(SYSCALL, EXECVE, other, SYSCALL)
    assert [e.fields["record_types"] for e in events if isinstance(e, Event)] == [
        ["SYSCALL", "EXECVE"], ["USER_END"], ["SYSCALL"]]
    assert events[1].fields["op"] == "x"  # type: ignore[union-attr]


def test_lone_eoe_and_bad_lines() -> None:
    results = audit(EOE, SYSCALL, "garbage", "type=X msg=nope", EXECVE)
    assert [type(r).__name__ for r in results] == ["Rejected", "Rejected", "Event"]
    assert [r.line for r in results if isinstance(r, Rejected)] == [3, 4]
    event = results[-1]
    assert isinstance(event, Event)
    assert event.fields["record_types"] == ["SYSCALL", "EXECVE"]
    assert all(r.format == "auditd" for r in results)


def test_timestamp_out_of_range_is_rejected() -> None:
    [result] = audit("type=SYSCALL msg=audit(99999999999999999999.1:1): a0=1")
    assert isinstance(result, Rejected)
    assert "timestamp" in result.reason


def test_same_serial_on_another_node_is_another_event() -> None:
    events = audit("node=a " + SYSCALL, "node=b " + SYSCALL)
    assert [e.host for e in events if isinstance(e, Event)] == ["a", "b"]
    assert audit(SYSCALL, host="collector")[0].host == "collector"  # type: ignore[union-attr]


def test_hex_encoded_values_are_decoded() -> None:
    msg = "msg=audit(1700000000.123:456):"
    script = hexed('echo "hi" ; id')
    lines = [
        f"type=SYSCALL {msg} a0=41 old=64 comm={hexed('my prog')} exe={hexed('/tmp/a b')} "
        f"key={hexed('k1')}01{hexed('k2')}",
        f"type=EXECVE {msg} argc=3 a0={hexed('sh')} a1=\"-c\" a2={script}",
        f"type=CWD {msg} cwd={hexed('/home/é')}",
        f"type=PATH {msg} item=0 name=(null) nametype=UNKNOWN",
        f"type=PATH {msg} item=1 name={hexed('/x y')} nametype=CREATE",
        f"type=PROCTITLE {msg} proctitle={hexed('sh')}00{hexed('-c')}00{hexed('echo')}",
    ]
    [event] = audit(*lines)
    fields = event.fields  # type: ignore[union-attr]
    assert fields["a0"] == "41"  # SYSCALL arguments are numbers, not encoded text
    assert fields["old"] == "64"  # so are CONFIG_CHANGE values
    assert (fields["comm"], fields["exe"]) == ("my prog", "/tmp/a b")
    assert fields["key"] == ["k1", "k2"]
    assert fields["EXECVE.a0"] == "sh"
    assert fields["EXECVE.a2"] == 'echo "hi" ; id'
    assert fields["cwd"] == "/home/é"
    assert (fields["name"], fields["PATH.1.name"]) == ("(null)", "/x y")
    assert fields["proctitle"] == "sh -c echo"


def test_long_execve_arguments_are_reassembled() -> None:
    arg = "import os; os.system('id') # é"
    data = hexed(arg)
    line = (f"type=EXECVE msg=audit(1700000000.123:456): argc=3 a0=\"python3\" a1=\"-c\" "
            f"a2_len={len(data)} a2[0]={data[:20]} a2[1]={data[20:-2]} a2[2]={data[-2:]}")
    [event] = audit(SYSCALL, line)
    fields = event.fields  # type: ignore[union-attr]
    assert fields["EXECVE.a2"] == arg  # the two bytes of "é" were in two chunks
    assert fields["EXECVE.a2_len"] == str(len(data))


def test_enriched_format() -> None:
    line = SYSCALL + '\x1dARCH=x86_64 SYSCALL=execve AUID="alice" UID="root"'
    [event] = audit(line)
    fields = event.fields  # type: ignore[union-attr]
    assert (fields["syscall"], fields["SYSCALL"]) == ("59", "execve")
    assert (fields["auid"], fields["AUID"], fields["UID"]) == ("1000", "alice", "root")


def test_repeated_record_types_are_numbered() -> None:
    avc = "type=AVC msg=audit(1700000000.123:456): avc:  denied  {{ {} }} for pid=2 comm=\"x\""
    [event] = audit(SYSCALL, avc.format("read"), avc.format("open"))
    fields = event.fields  # type: ignore[union-attr]
    assert fields["record_types"] == ["SYSCALL", "AVC", "AVC"]
    assert fields["AVC.0.pid"] == fields["AVC.1.pid"] == "2"


def test_endless_serial_is_cut() -> None:
    events = audit(*([EXECVE] * (linux.MAX_AUDIT_GROUP + 5)))
    assert [len(e.fields["record_types"]) for e in events] == [  # type: ignore[union-attr, arg-type]
        linux.MAX_AUDIT_GROUP, 5]


def test_invalid_utf8_in_auditd() -> None:
    line = SYSCALL.encode().replace(b'"ls"', b'"l\xffs"')
    [event] = list(parse_auditd([line], ctx()))
    assert isinstance(event, Event)
    assert event.fields["comm"] == "l\ufffds"
    assert event.id == event_id(line)


RECORD_LIKE = (r"\A(node=\S+ )?type=[A-Z_]{1,12} msg=audit\(\d{1,25}\.\d{1,6}:\d{1,3}\):"
               r"( [a-z0-9\[\]_]{1,5}=(\"[^\"]*\"|'[^']*'|[0-9A-F]{0,8}|\S{0,8})){0,6}\Z")


@given(st.lists(st.from_regex(RECORD_LIKE), max_size=8))
def test_record_like_lines_never_raise(lines: list[str]) -> None:
    results = list(parse_auditd([line.encode() for line in lines], ctx()))
    assert all(isinstance(r, Event | Rejected) for r in results)


@given(st.lists(st.binary(max_size=120), max_size=6))
def test_auditd_never_raises(lines: list[bytes]) -> None:
    prefixed = [b"type=SYSCALL msg=audit(1.2:3): " + line for line in lines]
    results = list(parse_auditd(prefixed + lines, ctx()))
    assert all(isinstance(r, Event | Rejected) for r in results)


def test_auditd_sniffing() -> None:
    assert detect_format((SYSCALL + "\n" + EXECVE + "\n").encode()).name == "auditd"
    assert detect_format(("node=web01 " + SYSCALL + "\n").encode()).name == "auditd"
