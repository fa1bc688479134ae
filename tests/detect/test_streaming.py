"""Streaming detection through a real server: 5,000 events/s for 60 s, every alert arrives."""

from __future__ import annotations

import hashlib
import subprocess
import time
from pathlib import Path

import httpx
import orjson
from sqlalchemy import create_engine, text

from helpers import VIGIL, create_token, free_port, server

RULE = """
title: Streaming test - failed logon of the attacker account
id: 5f0c3a52-9d7e-4c1b-8a61-0d2f4e7b9a10
status: test
author: Vigil tests
logsource:
    product: windows
    service: security
detection:
    selection:
        EventID: 4625
        TargetUserName|startswith: 'attacker-'
    condition: selection
level: high
"""
RATE = 5000
SECONDS = 60
EVERY = 100


def _line(i: int) -> bytes:
    user = f"attacker-{i}" if i % EVERY == 0 else f"user{i % 5000}"
    return orjson.dumps({"@timestamp": "2024-05-01T10:00:00Z", "EventID": 4625,
                         "Channel": "Security", "Hostname": f"dc{i % 3}",
                         "TargetUserName": user, "n": i})


def _event_id(raw: bytes) -> str:
    return hashlib.blake2b(raw, digest_size=16).hexdigest()


def test_every_alert_arrives_at_5000_events_per_second(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    rule = tmp_path / "rule.yml"
    rule.write_text(RULE)
    subprocess.run([*VIGIL, "--data-dir", str(data_dir), "rules", "import", str(rule)],
                   check=True, capture_output=True)
    token = create_token(data_dir, "ingest")
    port = free_port()
    expected: set[str] = set()
    with server(data_dir, port, free_port(), VIGIL_DETECT__SUPPRESS_SECONDS="0"):
        client = httpx.Client(timeout=30, headers={"Authorization": f"Bearer {token}"})
        started = time.monotonic()
        for second in range(SECONDS):
            lines = [_line(second * RATE + i) for i in range(RATE)]
            expected.update(_event_id(line) for line in lines
                            if b'"attacker-' in line)
            for part in range(0, RATE, 1000):
                answer = client.post(f"http://127.0.0.1:{port}/api/v1/ingest",
                                     content=b"\n".join(lines[part:part + 1000]))
                assert answer.status_code == 202
            pause = started + second + 1 - time.monotonic()
            if pause > 0:
                time.sleep(pause)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if client.get(f"http://127.0.0.1:{port}/healthz").json()["spool_depth"] == 0:
                break
            time.sleep(0.2)
        time.sleep(1)
    engine = create_engine(f"sqlite:///{data_dir / 'state.db'}")
    with engine.connect() as connection:
        rows = connection.execute(text("SELECT event_ids FROM alerts")).all()
    engine.dispose()
    alerted = {i for (ids,) in rows for i in orjson.loads(ids)}
    assert len(expected) == SECONDS * RATE // EVERY
    assert alerted == expected
