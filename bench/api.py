"""The REST API under load: 100,000 alerts and 5,000 cases stored, 50 concurrent clients.

Seeds a fresh data folder through the services (alerts grouped into incidents, cases with
assignees), starts a real ``vigil serve`` on loopback, then runs 50 concurrent clients for a
fixed time, each signed in with a personal token of an analyst or a responder. A client's mix:
list alerts with a random filter (status, severity, host, rule, sort), follow a cursor to the
next page, open one alert, list cases with a filter, update a case (priority, phase or tags:
each update writes its case event and its audit record).

Two runs: *interactive* (each client waits 0.2-1.0 s between requests, like a person at a
console) and *saturated* (no pause: the server's throughput limit). Prints throughput and
p50/p99 latency per kind of request and overall, and checks that no request failed.

Run with ``python bench/api.py [--state-url URL] [--seconds N]``; default SQLite in a temp folder.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import tempfile
import time
from collections import defaultdict
from datetime import timedelta
from pathlib import Path

import httpx
import psutil

from common import free_port, start_server
from vigil.alerts import service as alerts
from vigil.alerts.types import AlertInput, Source
from vigil.app import Vigil
from vigil.cases import service as cases
from vigil.cases.schemas import CaseCreate
from vigil.core.auth import SYSTEM
from vigil.core.config import load_settings
from vigil.core.timeutil import utcnow
from vigil.people import service as people
from vigil.people import tokens

ALERTS = 100_000
CASES = 5_000
CLIENTS = 50
HOSTS = [f"host-{i:04d}" for i in range(2000)]
RULES = [f"rule-{i:03d}" for i in range(300)]
LEVELS = ["informational", "low", "medium", "high", "critical"]


def seed_alerts(vigil: Vigil, count: int) -> None:
    rng = random.Random(1)
    now = utcnow()
    batch: list[AlertInput] = []
    for number in range(count):
        seen = now - timedelta(seconds=rng.randint(0, 30 * 86400))
        rule = rng.choice(RULES)
        batch.append(AlertInput(
            source=Source.SIGMA, rule_id=rule, rule_title=f"Bench rule {rule}",
            dedup_key=f"{rule}|{number}", first_seen=seen, last_seen=seen,
            level=rng.choice(LEVELS), rule_author="Vigil bench", host=rng.choice(HOSTS),
            user=f"user{rng.randint(0, 500)}", src_ip=f"10.0.{rng.randint(0, 255)}.{rng.randint(1, 254)}",
            event_ids=(f"ev-{number}",)))
        if len(batch) == 2000:
            with vigil.db.session() as session:
                alerts.record(session, batch)
            batch = []
    if batch:
        with vigil.db.session() as session:
            alerts.record(session, batch)


def seed_cases(vigil: Vigil, count: int) -> None:
    rng = random.Random(2)
    for number in range(count):
        cases.create_case(vigil.db, CaseCreate(
            title=f"Bench case {number}", severity=rng.choice(["low", "medium", "high", "critical"]),
            assignees=[rng.choice(["alice", "oscar"])]), SYSTEM)


def seed(data_dir: Path, state_url: str | None) -> dict[str, str]:
    settings = load_settings(data_dir)
    if state_url:
        settings = settings.model_copy(update={"state_url": state_url})
    vigil = Vigil(settings)
    try:
        people.add_user(vigil.db, SYSTEM, "alice", "bench password alice", role="analyst",
                        team="security", email="alice@example.org")
        people.add_user(vigil.db, SYSTEM, "oscar", "bench password oscar", role="responder",
                        team="operations", email="oscar@example.org")
        started = time.perf_counter()
        seed_alerts(vigil, ALERTS)
        middle = time.perf_counter()
        seed_cases(vigil, CASES)
        done = time.perf_counter()
        print(f"seeded {ALERTS:,} alerts in {middle - started:.1f} s "
              f"({ALERTS / (middle - started):,.0f}/s), {CASES:,} cases in {done - middle:.1f} s",
              flush=True)
        return {name: tokens.issue(vigil.db, SYSTEM, f"bench-{name}", user=name).token
                for name in ("alice", "oscar")}
    finally:
        vigil.close()


class Load:
    """What the clients measured: latency per kind of request, failures."""

    def __init__(self) -> None:
        self.latency: dict[str, list[float]] = defaultdict(list)
        self.failures: list[str] = []


def _alert_query(rng: random.Random) -> dict[str, str | int]:
    params: dict[str, str | int] = {"limit": 50}
    choice = rng.randrange(5)
    if choice == 0:
        params["status"] = "new"
    elif choice == 1:
        params["min_severity"] = rng.choice(["high", "critical"])
    elif choice == 2:
        params["host"] = rng.choice(HOSTS)
    elif choice == 3:
        params["rule_id"] = rng.choice(RULES)
    if rng.random() < 0.3:
        params["sort"] = "severity"
    return params


async def _request(client: httpx.AsyncClient, load: Load, kind: str, method: str, url: str,
                   **kwargs: object) -> httpx.Response | None:
    started = time.perf_counter()
    try:
        answer = await client.request(method, url, **kwargs)  # type: ignore[arg-type]
    except httpx.HTTPError as exc:
        load.failures.append(f"{kind}: {type(exc).__name__}: {exc}")
        return None
    load.latency[kind].append(time.perf_counter() - started)
    if answer.status_code >= 400:
        load.failures.append(f"{kind}: HTTP {answer.status_code} {answer.text[:200]}")
        return None
    return answer


async def _one_round(client: httpx.AsyncClient, load: Load, rng: random.Random) -> None:
    kind = rng.choices(["list", "case-update", "list-cases", "detail"], [5, 2, 2, 1])[0]
    if kind == "list":
        query = _alert_query(rng)
        answer = await _request(client, load, "list alerts", "GET", "/api/v1/alerts", params=query)
        if answer is not None and answer.json()["next_cursor"] and rng.random() < 0.5:
            await _request(client, load, "next page", "GET", "/api/v1/alerts",
                           params={**query, "cursor": answer.json()["next_cursor"]})
    elif kind == "detail":
        await _request(client, load, "alert detail", "GET", f"/api/v1/alerts/{rng.randint(1, ALERTS)}")
    elif kind == "list-cases":
        params = {"severity": rng.choice(["high", "critical"]), "limit": 50}
        await _request(client, load, "list cases", "GET", "/api/v1/cases", params=params)
    else:
        body = rng.choice([{"priority": rng.choice(["low", "medium", "high"])},
                           {"tags": [f"t{rng.randint(0, 9)}"]},
                           {"phase": rng.choice(["detection_analysis", "containment"])}])
        await _request(client, load, "update case", "PATCH",
                       f"/api/v1/cases/{rng.randint(1, CASES)}", json=body)


async def _client(base: str, token: str, seconds: float, think: tuple[float, float], seed_: int,
                  load: Load) -> None:
    rng = random.Random(seed_)
    headers = {"Authorization": f"Bearer {token}"}
    deadline = time.monotonic() + seconds
    async with httpx.AsyncClient(base_url=base, headers=headers, timeout=60) as client:
        await asyncio.sleep(rng.uniform(0, 1))
        while time.monotonic() < deadline:
            await _one_round(client, load, rng)
            if think[1]:
                await asyncio.sleep(rng.uniform(*think))


def _pct(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] * 1000


def run(base: str, keys: dict[str, str], seconds: float, think: tuple[float, float], title: str,
        server_pid: int | None = None) -> bool:
    load = Load()
    server = psutil.Process(server_pid) if server_pid else None
    cpu_before = sum(server.cpu_times()[:2]) if server else 0.0
    names = list(keys)

    async def main() -> None:
        await asyncio.gather(*(_client(base, keys[names[i % 2]], seconds, think, i, load)
                               for i in range(CLIENTS)))

    started = time.perf_counter()
    asyncio.run(main())
    elapsed = time.perf_counter() - started
    everything = [v for values in load.latency.values() for v in values]
    busy = (sum(server.cpu_times()[:2]) - cpu_before) / elapsed if server else 0.0
    print(f"\n{title}: {CLIENTS} clients, {elapsed:.0f} s, {len(everything):,} requests, "
          f"{len(everything) / elapsed:,.0f} req/s, failures {len(load.failures)}, "
          f"server CPU {busy:.0%} of one core")
    print(f"  {'request':<14} {'count':>7} {'p50 ms':>8} {'p99 ms':>8}")
    for kind, values in sorted(load.latency.items()):
        print(f"  {kind:<14} {len(values):>7,} {_pct(values, 0.5):>8.1f} {_pct(values, 0.99):>8.1f}")
    print(f"  {'all':<14} {len(everything):>7,} {_pct(everything, 0.5):>8.1f} "
          f"{_pct(everything, 0.99):>8.1f}", flush=True)
    for failure in load.failures[:5]:
        print(f"  FAILED {failure}")
    return not load.failures and statistics.fmean(everything) > 0


def settle(pid: int, limit: float = 300) -> float:
    """Wait until the server is idle (the seeded outbox read by the notifier, the seeded clocks
    checked once); returns the seconds waited."""
    process = psutil.Process(pid)
    started = time.monotonic()
    process.cpu_percent(None)
    while time.monotonic() - started < limit:
        time.sleep(2)
        if process.cpu_percent(None) < 10:
            break
    return time.monotonic() - started


def main() -> None:
    global ALERTS, CASES
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--state-url", help="State database URL (default SQLite in the data folder).")
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--alerts", type=int, default=ALERTS)
    parser.add_argument("--cases", type=int, default=CASES)
    args = parser.parse_args()
    ALERTS, CASES = args.alerts, args.cases
    with tempfile.TemporaryDirectory(prefix="vigil-bench-api-") as folder:
        data_dir = Path(folder) / "vigil-data"
        keys = seed(data_dir, args.state_url)
        port = free_port()
        extra = {"VIGIL_STATE_URL": args.state_url} if args.state_url else {}
        server = start_server(data_dir, port, free_port(), VIGIL_INGEST__SYSLOG_ENABLED="false",
                              VIGIL_DETECT__STREAMING="false", **extra)
        try:
            base = f"http://127.0.0.1:{port}"
            print(f"server idle after {settle(server.pid):.0f} s (seeded backlog processed)", flush=True)
            ok = run(base, keys, args.seconds, (0.2, 1.0), "interactive (0.2-1.0 s between requests)",
                     server.pid)
            ok = run(base, keys, args.seconds, (0, 0), "saturated (no pause)", server.pid) and ok
        finally:
            server.terminate()
            server.wait(timeout=60)
    if not ok:
        raise SystemExit("some requests failed")


if __name__ == "__main__":
    main()
