"""Event-to-alert latency of streaming detection at 5,000 events/s through the HTTP collector.

One rule is enabled; every 100th event matches it. The latency of an alert is the time from
the collector's 202 answer for the event's request to the alert's creation in the state
database. Prints the count and p50/p99 latency. Run with ``python bench/stream.py``.
"""

from __future__ import annotations

import hashlib
import statistics
import subprocess
import tempfile
import time
from datetime import datetime
from pathlib import Path

import httpx
import orjson
from sqlalchemy import create_engine, text

from common import VIGIL, free_port, start_server, token

RULE = """
title: Bench - failed logon of the attacker account
id: 0d6f3c7e-2b1a-4c5d-9e8f-7a6b5c4d3e2f
status: test
author: Vigil bench
logsource: {product: windows, service: security}
detection:
    selection: {EventID: 4625, TargetUserName|startswith: 'attacker-'}
    condition: selection
level: high
"""
RATE, SECONDS, EVERY, REQUEST = 5000, 30, 100, 500


def _line(i: int) -> bytes:
    user = f"attacker-{i}" if i % EVERY == 0 else f"user{i % 5000}"
    return orjson.dumps({"@timestamp": "2024-05-01T10:00:00Z", "EventID": 4625,
                         "Channel": "Security", "Hostname": f"dc{i % 3}",
                         "TargetUserName": user, "n": i})


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="vigil-bench-") as tmp:
        data_dir = Path(tmp) / "data"
        rule = Path(tmp) / "rule.yml"
        rule.write_text(RULE)
        subprocess.run([*VIGIL, "--data-dir", str(data_dir), "rules", "import", str(rule)],
                       check=True, capture_output=True)
        ingest = token(data_dir, "ingest")
        port = free_port()
        proc = start_server(data_dir, port, free_port(), VIGIL_DETECT__SUPPRESS_SECONDS="0")
        sent: dict[str, float] = {}
        try:
            client = httpx.Client(timeout=30, headers={"Authorization": f"Bearer {ingest}"})
            started = time.monotonic()
            for step in range(SECONDS * RATE // REQUEST):
                lines = [_line(step * REQUEST + i) for i in range(REQUEST)]
                client.post(f"http://127.0.0.1:{port}/api/v1/ingest", content=b"\n".join(lines))
                acked = time.time()
                for line in lines:
                    if b'"attacker-' in line:
                        sent[hashlib.blake2b(line, digest_size=16).hexdigest()] = acked
                pause = started + (step + 1) * REQUEST / RATE - time.monotonic()
                if pause > 0:
                    time.sleep(pause)
            time.sleep(5)
        finally:
            proc.terminate()
            proc.wait()
        engine = create_engine(f"sqlite:///{data_dir / 'state.db'}")
        with engine.connect() as connection:
            rows = connection.execute(text("SELECT event_ids, created_at FROM alerts")).all()
        engine.dispose()
    latencies = []
    for ids, created in rows:
        moment = created if isinstance(created, datetime) else datetime.fromisoformat(str(created))
        latencies += [moment.timestamp() - sent[i] for i in orjson.loads(ids) if i in sent]
    latencies.sort()
    p50 = statistics.median(latencies)
    p99 = latencies[int(len(latencies) * 0.99) - 1]
    print(f"streaming at {RATE:,} events/s for {SECONDS} s: {len(latencies):,} of {len(sent):,} "
          f"alerts, event-to-alert latency p50 {p50 * 1000:,.0f} ms, p99 {p99 * 1000:,.0f} ms")


if __name__ == "__main__":
    main()
