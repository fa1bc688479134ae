"""Helpers for tests: where the shared corpora are, and how to run the ``vigil`` command."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("VIGIL_SHARED", ROOT.parent / "shared")).resolve()
DATASETS = SHARED / "datasets"
VIGIL = [sys.executable, "-m", "vigil"]


def datasets() -> Path:
    """The shared corpora (SigmaHQ, OTRF, scanner outputs); they must be present."""
    assert DATASETS.is_dir(), f"shared datasets not found at {DATASETS}"
    return DATASETS


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def server(data_dir: Path, port: int, syslog_port: int,
           **settings: str) -> Iterator[subprocess.Popen[bytes]]:
    """A real ``vigil serve`` process on loopback ports; extra settings as VIGIL_* names."""
    env = {**os.environ, "VIGIL_SERVER__PORT": str(port),
           "VIGIL_INGEST__SYSLOG_PORT": str(syslog_port), "VIGIL_INGEST__BATCH_SIZE": "500",
           **settings}
    proc = subprocess.Popen([*VIGIL, "--data-dir", str(data_dir), "serve"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        wait_healthy(port, proc)
        yield proc
    finally:
        if proc.poll() is None:
            proc.terminate()
            proc.wait(timeout=30)


def wait_healthy(port: int, proc: subprocess.Popen[bytes], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"server exited: {proc.stderr.read().decode() if proc.stderr else ''}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise AssertionError("server did not become healthy")


def create_token(data_dir: Path, scope: str, name: str = "test") -> str:
    out = subprocess.run([*VIGIL, "--data-dir", str(data_dir), "tokens", "create", name,
                          "--scope", scope], capture_output=True, check=True)
    return out.stdout.decode().strip().splitlines()[-1]


CLI_ENV = {**{k: v for k, v in os.environ.items() if not k.upper().startswith("VIGIL_")},
           "COLUMNS": "250", "NO_COLOR": "1", "TERM": "dumb"}
"""The environment of CLI tests: no VIGIL_* settings of the caller, wide plain output."""


@dataclass(frozen=True)
class Run:
    """One finished ``vigil`` process."""

    args: tuple[str, ...]
    code: int
    out: str
    err: str


def run_vigil(data_dir: Path | None, *args: str, env: dict[str, str] | None = None,
              cwd: Path | None = None) -> Run:
    """Run the ``vigil`` command as a real process (on ``data_dir`` when given)."""
    prefix = ["--data-dir", str(data_dir)] if data_dir is not None else []
    done = subprocess.run([*VIGIL, *prefix, *args], capture_output=True, text=True, timeout=180,
                          env={**CLI_ENV, **(env or {})}, cwd=cwd, check=False)
    return Run(tuple(args), done.returncode, done.stdout, done.stderr)


def ok(run: Run) -> Run:
    """The run succeeded without a traceback."""
    assert run.code == 0, f"{run.args} exited {run.code}\n{run.out}\n{run.err}"
    assert "Traceback" not in run.err
    return run


def assert_user_error(run: Run, *fragments: str) -> None:
    """A user mistake: one line on stderr starting with 'error:', exit code 2, no traceback."""
    assert "Traceback" not in run.err + run.out, run.err
    lines = [line for line in run.err.splitlines() if line.strip()]
    assert len(lines) == 1, f"{run.args}: expected one line on stderr, got:\n{run.err}"
    assert lines[0].startswith("error: "), lines[0]
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    assert run.code == 2, f"{run.args} exited {run.code}"
