"""The REST API over a real connection to a real ``vigil serve`` process."""

from __future__ import annotations

import gzip
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson
import pytest

from helpers import create_token, free_port, server

EVENT = {"@timestamp": "2024-05-01T10:00:00Z", "EventID": 4625, "Channel": "Security",
         "Hostname": "dc1", "TargetUserName": "alice"}


class Api:
    def __init__(self, port: int, syslog_port: int, ingest: str, read: str) -> None:
        self.base = f"http://127.0.0.1:{port}"
        self.syslog_port = syslog_port
        self.ingest_token = ingest
        self.read_token = read
        self.client = httpx.Client(base_url=self.base, timeout=20)

    def send(self, body: bytes, token: str | None = None, **headers: str) -> httpx.Response:
        auth = {"Authorization": f"Bearer {token or self.ingest_token}"}
        return self.client.post("/api/v1/ingest", content=body, headers={**auth, **headers})

    def events(self, **params: object) -> httpx.Response:
        return self.client.get("/api/v1/events", params=params,
                               headers={"Authorization": f"Bearer {self.read_token}"})

    def drained(self) -> None:
        deadline = time.monotonic() + 30
        while self.client.get("/healthz").json()["spool_depth"] and time.monotonic() < deadline:
            time.sleep(0.05)


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    data_dir: Path = tmp_path_factory.mktemp("api") / "data"
    ingest, read = create_token(data_dir, "ingest"), create_token(data_dir, "read")
    port, syslog_port = free_port(), free_port()
    with server(data_dir, port, syslog_port, VIGIL_INGEST__HTTP_MAX_BODY="100000",
                VIGIL_INGEST__SPOOL_MAX_PENDING="1000"):
        yield Api(port, syslog_port, ingest, read)


def test_health_and_metrics(api: Api) -> None:
    assert api.client.get("/healthz").json()["status"] == "ok"
    api.send(orjson.dumps(EVENT))
    api.drained()
    text = api.client.get("/metrics").text
    for name in ("vigil_events_received_total", "vigil_events_stored_total", "vigil_spool_depth",
                 "vigil_spool_oldest_seconds", "vigil_batch_seconds_bucket", "vigil_store_bytes"):
        assert name in text


def test_ndjson_array_and_gzip_bodies_are_stored(api: Api) -> None:
    lines = [orjson.dumps({**EVENT, "TargetUserName": f"u{i}"}) for i in range(10)]
    assert api.send(b"\n".join(lines[:4])).json() == {"accepted": 4, "source": "test"}
    assert api.send(b"[" + b",".join(lines[4:7]) + b"]").status_code == 202
    zipped = gzip.compress(b"\n".join(lines[7:]))
    assert api.send(zipped, **{"Content-Encoding": "gzip"}).status_code == 202
    api.drained()
    found = api.events(q="TargetUserName=u*", limit=100).json()
    assert found["count"] == 10
    assert {e["fields"]["TargetUserName"] for e in found["events"]} == {f"u{i}" for i in range(10)}


def test_search_count_and_source_filter(api: Api) -> None:
    api.send(orjson.dumps({**EVENT, "TargetUserName": "zed"}))
    api.drained()
    assert api.events(q="TargetUserName=zed", count="true").json()["count"] == 1
    assert api.events(q="TargetUserName=zed", source="linux", count="true").json()["count"] == 0


@pytest.mark.parametrize("body", [b"not json", b"{\"a\": 1}\n{broken", b"[1, 2", b"", b"\xff\xfe"])
def test_body_that_is_not_json_is_400(api: Api, body: bytes) -> None:
    answer = api.send(body)
    assert answer.status_code == 400
    assert answer.json()["error"] == "InputError"


def test_bad_gzip_is_400(api: Api) -> None:
    assert api.send(b"\x1f\x8bnot gzip", **{"Content-Encoding": "gzip"}).status_code == 400


def test_missing_wrong_and_misscoped_tokens(api: Api) -> None:
    body = orjson.dumps(EVENT)
    assert api.client.post("/api/v1/ingest", content=body).status_code == 401
    assert api.send(body, token="vgt_wrong").status_code == 401
    wrong_scheme = api.client.post("/api/v1/ingest", content=body,
                                   headers={"Authorization": f"Basic {api.ingest_token}"})
    assert wrong_scheme.status_code == 401
    assert api.send(body, token=api.read_token).status_code == 403
    assert api.client.get("/api/v1/events", params={"q": "*"}).status_code == 401
    misscoped = api.client.get("/api/v1/events", params={"q": "*"},
                               headers={"Authorization": f"Bearer {api.ingest_token}"})
    assert misscoped.status_code == 403


def test_oversized_request_is_413(api: Api) -> None:
    assert api.send(b"[" + b" " * 200_000 + b"]").status_code == 413
    bomb = gzip.compress(b"[" + b" " * 5_000_000 + b"]")
    assert api.send(bomb, **{"Content-Encoding": "gzip"}).status_code == 413


def test_full_spool_is_429_with_retry_after(api: Api) -> None:
    # The server runs with a spool of 1000 records: a batch that cannot fit is refused.
    body = b"\n".join(b'{"n":%d}' % i for i in range(1001))
    answer = api.send(body, **{"Content-Type": "application/x-ndjson"})
    assert answer.status_code == 429
    assert int(answer.headers["Retry-After"]) >= 1
    assert api.send(orjson.dumps(EVENT)).status_code == 202


def test_bad_query_is_400_not_500(api: Api) -> None:
    for query in ["", "a=(", "(x", "n>abc"]:
        assert api.events(q=query).status_code == 400
    assert api.events(q="*", since="not a time").status_code == 400


def test_syslog_tcp_and_udp(api: Api) -> None:
    with socket.create_connection(("127.0.0.1", api.syslog_port)) as conn:
        conn.sendall(b"<34>Oct 11 22:14:15 mymachine su: 'su root' failed for lonvick on /dev/pts/8\n")
        frame = b"<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 - octet"
        conn.sendall(f"{len(frame)} ".encode() + frame)
    with socket.create_connection(("127.0.0.1", api.syslog_port)) as conn:
        frame = b"<165>1 2003-10-11T22:14:15.003Z host2 app - - - counted frame"
        conn.sendall(f"{len(frame)} ".encode() + frame)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        udp.sendto(b"<13>Oct 11 22:14:16 udphost app: over udp", ("127.0.0.1", api.syslog_port))
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        api.drained()
        if api.events(q="lonvick OR \"counted frame\" OR \"over udp\"", count="true").json()["count"] == 3:
            break
        time.sleep(0.2)
    assert api.events(q="lonvick OR \"counted frame\" OR \"over udp\"", count="true").json()["count"] == 3


def test_malformed_syslog_frame_closes_connection_only(api: Api) -> None:
    with socket.create_connection(("127.0.0.1", api.syslog_port)) as conn:
        conn.sendall(b"99999999999 garbage")
        conn.settimeout(5)
        assert conn.recv(10) == b""
    assert api.client.get("/healthz").status_code == 200
