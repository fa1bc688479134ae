"""Kill -9 the server in the middle of a stream; every acknowledged event is stored once."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from pathlib import Path

import httpx
import orjson

from helpers import VIGIL, create_token, free_port, server


def batch(start: int, size: int) -> bytes:
    return b"\n".join(orjson.dumps({"@timestamp": "2024-05-01T00:00:00Z", "EventID": 1,
                                    "Channel": "Security", "Hostname": "h", "seq": str(i)})
                      for i in range(start, start + size))


def stream(port: int, token: str, acked: list[int], stop: threading.Event) -> None:
    """Send batches of 200 events until the server dies; remember acknowledged sequence ids."""
    client = httpx.Client(timeout=10, headers={"Authorization": f"Bearer {token}"})
    start = 0
    while not stop.is_set():
        try:
            answer = client.post(f"http://127.0.0.1:{port}/api/v1/ingest", content=batch(start, 200))
        except httpx.HTTPError:
            return
        if answer.status_code == 202:
            acked.extend(range(start, start + 200))
        start += 200


def stored_seqs(data_dir: Path) -> list[int]:
    out = subprocess.run([*VIGIL, "--data-dir", str(data_dir), "search", "--sql", "--output", "csv",
                          "--limit", "10000000", "SELECT seq FROM ev_windows__none__security"],
                         capture_output=True, check=True)
    lines = out.stdout.decode().split()[1:]
    return [int(x) for x in lines]


def test_kill9_mid_stream_loses_and_doubles_nothing(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    port, syslog_port = free_port(), free_port()
    token = create_token(data_dir, "ingest")
    acked: list[int] = []
    stop = threading.Event()
    with server(data_dir, port, syslog_port) as proc:
        sender = threading.Thread(target=stream, args=(port, token, acked, stop))
        sender.start()
        deadline = time.monotonic() + 60
        while len(acked) < 20_000 and time.monotonic() < deadline:
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        stop.set()
        sender.join(timeout=30)
    assert len(acked) >= 20_000
    with server(data_dir, port, syslog_port):
        client = httpx.Client(timeout=10)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            depth = client.get(f"http://127.0.0.1:{port}/healthz").json()["spool_depth"]
            if depth == 0:
                break
            time.sleep(0.2)
    seqs = stored_seqs(data_dir)
    assert len(seqs) == len(set(seqs)), "an event was stored twice"
    missing = set(acked) - set(seqs)
    assert not missing, f"{len(missing)} acknowledged events lost"
