"""Helpers for the benchmarks: peak memory of a process tree, servers, figures."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import psutil

ROOT = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("VIGIL_SHARED", ROOT.parent / "shared")).resolve()
DATASETS = SHARED / "datasets"
VIGIL = [sys.executable, "-m", "vigil"]


class PeakRss:
    """Samples the resident memory of a process and its children; keeps the peak (bytes)."""

    def __init__(self, pid: int | None = None, interval: float = 0.1) -> None:
        self.process = psutil.Process(pid or os.getpid())
        self.interval = interval
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _sample(self) -> int:
        total = 0
        try:
            procs = [self.process, *self.process.children(recursive=True)]
        except psutil.Error:
            return 0
        for proc in procs:
            with contextlib.suppress(psutil.Error):
                total += proc.memory_info().rss
        return total

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self._sample())
            time.sleep(self.interval)

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._sample())


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server(data_dir: Path, port: int, syslog_port: int,
                 **settings: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, "VIGIL_SERVER__PORT": str(port),
           "VIGIL_INGEST__SYSLOG_PORT": str(syslog_port), "VIGIL_LOG_LEVEL": "WARNING",
           **settings}
    proc = subprocess.Popen([*VIGIL, "--data-dir", str(data_dir), "serve"], env=env)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.1)
    proc.kill()
    raise SystemExit("server did not start")


def token(data_dir: Path, scope: str) -> str:
    out = subprocess.run([*VIGIL, "--data-dir", str(data_dir), "tokens", "create", "bench",
                          "--scope", scope], capture_output=True, check=True)
    return out.stdout.decode().strip().splitlines()[-1]


def stored(port: int, read_token: str) -> int:
    answer = httpx.get(f"http://127.0.0.1:{port}/api/v1/events", timeout=30,
                       params={"q": "*", "count": "true"},
                       headers={"Authorization": f"Bearer {read_token}"})
    return int(answer.json()["count"])


def figure(name: str, events: int, seconds: float, rss: int | None = None, note: str = "") -> None:
    rate = events / seconds if seconds else 0.0
    memory = f"  peak RSS {rss / 2**20:,.0f} MiB" if rss is not None else ""
    print(f"{name:<38} {events:>9,} events {seconds:>7.1f} s {rate:>9,.0f} ev/s{memory}  {note}",
          flush=True)
