"""Live intel matching inside ``vigil serve``: events posted to the HTTP collector that name
an imported indicator become intel alerts (a real server process on loopback)."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import httpx
import orjson
from sqlalchemy import create_engine, text

from helpers import VIGIL, create_token, free_port, server


def _alerts(data_dir: Path) -> list[tuple[str, str, str]]:
    engine = create_engine(f"sqlite:///{data_dir / 'state.db'}")
    try:
        with engine.connect() as connection:
            return [(a, b, c) for a, b, c in connection.execute(text(
                "SELECT rule_title, host, tags FROM alerts WHERE source = 'intel' ORDER BY rule_title"))]
    finally:
        engine.dispose()


def test_posted_events_matching_an_indicator_become_alerts(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    feed = tmp_path / "feed.txt"
    feed.write_text("# a plain list\nevil-c2.ru\n45.9.148.3\n")
    subprocess.run([*VIGIL, "--data-dir", str(data_dir), "intel", "import", str(feed), "--no-retro"],
                   check=True, capture_output=True)
    token = create_token(data_dir, "ingest")
    port = free_port()
    events = [
        {"@timestamp": "2026-11-29T10:00:00Z", "Channel": "Microsoft-Windows-Sysmon/Operational",
         "EventID": 22, "Hostname": "wks-1", "QueryName": "cdn.evil-c2.ru"},
        {"@timestamp": "2026-11-29T10:00:01Z", "Channel": "Microsoft-Windows-Sysmon/Operational",
         "EventID": 3, "Hostname": "wks-2", "DestinationIp": "45.9.148.3"},
        {"@timestamp": "2026-11-29T10:00:02Z", "Channel": "Microsoft-Windows-Sysmon/Operational",
         "EventID": 3, "Hostname": "wks-3", "DestinationIp": "45.9.148.4"},
    ]
    with server(data_dir, port, free_port()):
        answer = httpx.post(f"http://127.0.0.1:{port}/api/v1/ingest",
                            content=b"\n".join(orjson.dumps(e) for e in events),
                            headers={"Authorization": f"Bearer {token}"}, timeout=30)
        assert answer.status_code == 202
        deadline = time.monotonic() + 60
        found: list[tuple[str, str, str]] = []
        while time.monotonic() < deadline and len(found) < 2:
            time.sleep(0.5)
            found = _alerts(data_dir)
    assert [(title, host) for title, host, _ in found] == [
        ("Threat intel match: domain evil-c2.ru", "wks-1"),
        ("Threat intel match: ipv4 45.9.148.3", "wks-2"),
    ]
    assert all("intel" in orjson.loads(tags) for _, _, tags in found)
