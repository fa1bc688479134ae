"""Ingest throughput and memory: OTRF zips, EVTX, syslog over TCP, HTTP NDJSON.

Run with ``make bench`` (or ``python bench/ingest.py [otrf|duckdb|evtx|syslog|http]``). Prints
one line per figure: events, seconds, events/s and the peak RSS of the whole process tree.
"""

from __future__ import annotations

import socket
import sys
import tempfile
import threading
import time
import zipfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import httpx

from common import DATASETS, PeakRss, figure, free_port, start_server, stored, token
from vigil.app import Vigil
from vigil.core.config import load_settings
from vigil.events import ParseContext, get_format
from vigil.ingest.batches import ParseOptions
from vigil.ingest.files import ingest_inputs
from vigil.ingest.inputs import expand
from vigil.store.search import SearchRequest, count

OTRF = DATASETS / "otrf-atomic-windows"
EVTX = DATASETS / "sigma" / "regression_data"


def bench_otrf(workdir: Path) -> None:
    vigil = Vigil(load_settings(workdir / "otrf"))
    refs = expand([str(OTRF)])
    with PeakRss() as rss:
        started = time.perf_counter()
        summary = ingest_inputs(refs, vigil.store, vigil.db, ParseOptions(), workers=2)
        seconds = time.perf_counter() - started
    figure("OTRF zips -> store (end to end)", summary.records, seconds, rss.peak,
           f"stored {summary.stored:,}, duplicates {summary.duplicates:,}, "
           f"rejected inputs {summary.rejected}")
    day = datetime(2022, 8, 8, tzinfo=UTC)
    request = SearchRequest("TargetImage=*lsass.exe", since=day, until=day + timedelta(days=1))
    started = time.perf_counter()
    matches = count(vigil.store, request)
    print(f"search, one field filter over one day: {matches:,} matches in "
          f"{(time.perf_counter() - started) * 1000:,.0f} ms", flush=True)
    vigil.close()


def bench_duckdb_reader(workdir: Path) -> None:
    folder = workdir / "otrf-json"
    folder.mkdir()
    lines = 0
    for number, archive in enumerate(sorted(OTRF.rglob("*.zip"))):
        with zipfile.ZipFile(archive) as zipped:
            for name in zipped.namelist():
                if name.endswith(".json") and "MACOSX" not in name:
                    data = zipped.read(name)
                    lines += data.count(b"\n")
                    # Numbered: some recordings share a name in two folders.
                    (folder / f"{number:03d}-{Path(name).name}").write_bytes(data)
    con = duckdb.connect(str(workdir / "reader.duckdb"), config={
        "threads": 2, "preserve_insertion_order": False, "memory_limit": "8GB"})
    with PeakRss() as rss:
        started = time.perf_counter()
        con.execute(f"CREATE TABLE t AS SELECT * FROM read_json('{folder}/*.json', "
                    "format='newline_delimited', union_by_name=true, "
                    "map_inference_threshold=-1)")
        rows = con.execute("SELECT count(*) FROM t").fetchone()[0]  # type: ignore[index]
        con.execute("CHECKPOINT")
        seconds = time.perf_counter() - started
    figure("DuckDB read_json, same JSON (reference)", rows, seconds, rss.peak,
           "unzipped beforehand, not timed")


def bench_evtx(workdir: Path) -> None:
    files = sorted(EVTX.rglob("*.evtx"))
    datas = [p.read_bytes() for p in files]
    fmt = get_format("evtx")
    rounds = 20
    started = time.perf_counter()
    records = sum(1 for _ in range(rounds) for data in datas
                  for _ in fmt.parse([data], ParseContext()))
    figure("EVTX parse (regression files x20)", records, time.perf_counter() - started)
    vigil = Vigil(load_settings(workdir / "evtx"))
    with PeakRss() as rss:
        started = time.perf_counter()
        summary = ingest_inputs(expand([str(EVTX / "**" / "*.evtx")]), vigil.store, vigil.db,
                                ParseOptions(), workers=2)
        seconds = time.perf_counter() - started
    vigil.close()
    figure("EVTX files -> store (end to end)", summary.records, seconds, rss.peak,
           f"{len(files)} files")


SYSLOG_TOTAL = 300_000


def _syslog_sender(port: int, start: int, count: int) -> None:
    with socket.create_connection(("127.0.0.1", port)) as conn:
        chunk = []
        for i in range(start, start + count):
            chunk.append(b"<38>Nov 29 10:%02d:%02d web%d sshd[%d]: Failed password for invalid user "
                         b"u%d from 203.0.113.%d port %d ssh2\n"
                         % (i // 60 % 60, i % 60, i % 7, 1000 + i % 5000, i, i % 250, i))
            if len(chunk) == 2000:
                conn.sendall(b"".join(chunk))
                chunk = []
        conn.sendall(b"".join(chunk))


def _wait_stored(port: int, read: str, expected: int, started: float, timeout: float = 600) -> float:
    while time.perf_counter() - started < timeout:
        if stored(port, read) >= expected:
            return time.perf_counter() - started
        time.sleep(0.25)
    raise SystemExit(f"only {stored(port, read)} of {expected} stored")


def bench_syslog(workdir: Path) -> None:
    data_dir = workdir / "syslog"
    read = token(data_dir, "read")
    port, syslog_port = free_port(), free_port()
    proc = start_server(data_dir, port, syslog_port)
    try:
        with PeakRss(proc.pid) as rss:
            started = time.perf_counter()
            senders = [threading.Thread(target=_syslog_sender,
                                        args=(syslog_port, n * SYSLOG_TOTAL // 2, SYSLOG_TOTAL // 2))
                       for n in range(2)]
            for sender in senders:
                sender.start()
            for sender in senders:
                sender.join()
            seconds = _wait_stored(port, read, SYSLOG_TOTAL, started)
        figure("syslog TCP -> spool -> store", SYSLOG_TOTAL, seconds, rss.peak,
               "2 connections, durable spool on; RSS of the server")
    finally:
        proc.terminate()
        proc.wait()


HTTP_TOTAL = 300_000
HTTP_BATCH = 1000


def _http_sender(port: int, ingest: str, start: int, count: int) -> None:
    client = httpx.Client(timeout=60, headers={"Authorization": f"Bearer {ingest}"})
    for offset in range(start, start + count, HTTP_BATCH):
        body = b"\n".join(
            b'{"@timestamp":"2024-05-01T10:%02d:%02dZ","EventID":4625,"Channel":"Security",'
            b'"Hostname":"dc%d","TargetUserName":"user%d","IpAddress":"198.51.100.%d"}'
            % (i // 60 % 60, i % 60, i % 3, i, i % 250) for i in range(offset, offset + HTTP_BATCH))
        while client.post(f"http://127.0.0.1:{port}/api/v1/ingest", content=body).status_code == 429:
            time.sleep(0.05)


def bench_http(workdir: Path) -> None:
    data_dir = workdir / "http"
    ingest, read = token(data_dir, "ingest"), token(data_dir, "read")
    port, syslog_port = free_port(), free_port()
    proc = start_server(data_dir, port, syslog_port)
    try:
        with PeakRss(proc.pid) as rss:
            started = time.perf_counter()
            senders = [threading.Thread(target=_http_sender,
                                        args=(port, ingest, n * HTTP_TOTAL // 4, HTTP_TOTAL // 4))
                       for n in range(4)]
            for sender in senders:
                sender.start()
            for sender in senders:
                sender.join()
            seconds = _wait_stored(port, read, HTTP_TOTAL, started)
        figure("HTTP NDJSON -> spool -> store", HTTP_TOTAL, seconds, rss.peak,
               f"4 clients, {HTTP_BATCH} events/request; RSS of the server")
    finally:
        proc.terminate()
        proc.wait()


BENCHES = {"otrf": bench_otrf, "duckdb": bench_duckdb_reader, "evtx": bench_evtx,
           "syslog": bench_syslog, "http": bench_http}


def main() -> None:
    chosen = sys.argv[1:] or list(BENCHES)
    with tempfile.TemporaryDirectory(prefix="vigil-bench-") as tmp:
        for name in chosen:
            BENCHES[name](Path(tmp))


if __name__ == "__main__":
    main()
