"""Loopback peers for feed tests: a TAXII 2.1 server (medallion) and a plain HTTP server.

:class:`TaxiiPeer` runs the medallion reference server (its Flask views: discovery, API
root, collections, objects, manifest, basic auth, media-type checks, error envelopes) on
127.0.0.1 in a background thread, with one API root ``api1`` and one collection::

    with TaxiiPeer(users={"reader": "secret"}, page_size=1000) as peer:
        peer.add(indicators(50_000))
        peer.objects_url  # http://127.0.0.1:PORT/api1/collections/<id>/objects/

Medallion's own memory backend filters and pages in quadratic time (every object is compared
with every manifest record, and each request deep-copies the whole collection twice): a 2,000
object collection takes 15 s per page. :class:`IndexedBackend` keeps medallion's views and
answers but serves ``get_objects`` from a list sorted by ``date_added`` (``added_after`` by
bisection, pages sliced, ``next`` sessions holding the rest), so 50,000 objects page in
milliseconds. ``indexed=False`` runs medallion's own paging (small collections only).
``next_tokens=False`` makes the indexed backend page without ``next`` (``more`` and the
``X-TAXII-Date-Added-Last`` header only), the other paging rule of TAXII 2.1.
``peer.intercept`` can answer any request itself (a 500, an HTML page, a hang);
``peer.date_headers = False`` leaves out the ``X-TAXII-Date-Added-*`` headers.

:class:`HttpPeer` is a threaded ``http.server`` that serves a dict of path → :class:`Route`
(status, headers, body), which tests change between pulls; a route with an ``etag`` or
``last_modified`` answers a matching ``If-None-Match`` / ``If-Modified-Since`` with 304.
Every request is recorded in ``peer.requests``.
"""

from __future__ import annotations

import bisect
import contextlib
import copy
import hashlib
import http.server
import socketserver
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import Any, Self
from urllib.parse import parse_qsl, urlsplit

import flask
import medallion
from medallion.backends.memory_backend import MemoryBackend
from medallion.common import create_resource
from medallion.exceptions import BackendError, ProcessingError
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

from intel.factories import stix_indicator, stix_time

TAXII = "application/taxii+json;version=2.1"
STIX = "application/stix+json;version=2.1"
API_ROOT = "api1"
COLLECTION_ID = "91a7b528-80eb-42ed-a74d-c6fbd5a26116"
NAMESPACE = uuid.UUID("0a4c5b8e-6c1e-4d55-8a0c-52b1a3c7e001")
START = datetime(2024, 1, 1, tzinfo=UTC)


def stamp(moment: datetime) -> str:
    """A TAXII timestamp (``2024-01-01T00:00:00.000000Z``), as medallion writes them."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _parse(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def sha256_of(seed: str) -> str:
    return hashlib.sha256(seed.encode()).hexdigest()


def indicators(count: int, *, first: int = 0, prefix: str = "ioc") -> list[dict[str, Any]]:
    """``count`` STIX 2.1 indicators, each a distinct SHA-256 (values no allowlist covers)."""
    made: list[dict[str, Any]] = []
    for number in range(first, first + count):
        seed = f"{prefix}-{number}"
        made.append(stix_indicator(f"indicator--{uuid.uuid5(NAMESPACE, seed)}",
                                   f"[file:hashes.'SHA-256' = '{sha256_of(seed)}']",
                                   stix_time(START + timedelta(seconds=number)),
                                   name=f"{prefix} sample {number}", indicator_types=["malicious-activity"]))
    return made


# -- TAXII 2.1 ---------------------------------------------------------------------------------


class QuietMemoryBackend(MemoryBackend):
    """Medallion's memory backend over a dict, without its session-expiry timer thread, and
    without deep-copying every object of a collection when only its metadata is asked for."""

    def __init__(self, data: dict[str, Any]) -> None:
        self.data = data
        self.next = {}
        self.timeout = 300

    @staticmethod
    def _metadata(collection: Mapping[str, Any]) -> dict[str, Any]:
        return {k: copy.deepcopy(v) for k, v in collection.items()
                if k not in ("objects", "manifest", "responses")}

    def get_collections(self, api_root: str) -> dict[str, Any] | None:
        if api_root not in self.data:
            return None
        found = [self._metadata(c) for c in self.data[api_root].get("collections", [])]
        return create_resource("collections", found)

    def get_collection(self, api_root: str, collection_id: str) -> dict[str, Any] | None:
        if api_root not in self.data:
            return None
        for collection in self.data[api_root].get("collections", []):
            if collection["id"] == collection_id:
                return self._metadata(collection)
        return None


@dataclass
class _Session:
    args: dict[str, str]
    rest: list[tuple[str, dict[str, Any]]]


class IndexedBackend(QuietMemoryBackend):
    """``get_objects`` from a per-collection list sorted by ``date_added``."""

    def __init__(self, data: dict[str, Any], *, next_tokens: bool = True) -> None:
        super().__init__(data)
        self.next_tokens = next_tokens
        self.index: dict[str, list[tuple[datetime, str, dict[str, Any]]]] = {}
        self.sessions: dict[str, _Session] = {}
        self.lock = threading.Lock()

    def add(self, collection_id: str, entries: Iterable[tuple[str, dict[str, Any]]]) -> None:
        with self.lock:
            rows = self.index.setdefault(collection_id, [])
            for added, obj in entries:
                bisect.insort(rows, (_parse(added), added, obj), key=lambda r: r[0])

    def get_objects(self, api_root: str, collection_id: str, filter_args: dict[str, str],
                    allowed_filters: tuple[str, ...], limit: int) -> tuple[dict[str, Any], dict[str, str]]:
        with self.lock:
            args = {k: v for k, v in filter_args.items() if k not in ("limit", "next")}
            if "next" in filter_args:
                session = self.sessions.pop(filter_args["next"], None)
                if session is None:
                    raise ProcessingError("The server did not understand the request or filter "
                                          "parameters: 'next' not valid", 400)
                if session.args != args:
                    raise ProcessingError("The server did not understand the request or filter "
                                          "parameters: params changed over subsequent transaction",
                                          400)
                selected = session.rest
            else:
                selected = self._select(collection_id, args)
            page, rest = selected[:limit], selected[limit:]
            token = None
            if rest and self.next_tokens:
                token = str(uuid.uuid4())
                self.sessions[token] = _Session(args, rest)
        headers = {}
        if page:
            headers = {"X-TAXII-Date-Added-First": page[0][0], "X-TAXII-Date-Added-Last": page[-1][0]}
        objects = [copy.deepcopy(obj) for _, obj in page]
        return create_resource("objects", objects, bool(rest), token), headers

    def _select(self, collection_id: str, args: Mapping[str, str]) -> list[tuple[str, dict[str, Any]]]:
        rows = self.index.get(collection_id, [])
        start = 0
        if args.get("added_after"):
            try:
                after = _parse(args["added_after"])
            except ValueError:
                raise ProcessingError("The server did not understand the request or filter "
                                      "parameters: bad added_after", 400) from None
            start = bisect.bisect_right(rows, after, key=lambda r: r[0])
        types = set(args["match[type]"].split(",")) if args.get("match[type]") else None
        ids = set(args["match[id]"].split(",")) if args.get("match[id]") else None
        return [(added, obj) for _, added, obj in rows[start:]
                if (types is None or obj.get("type") in types) and (ids is None or obj["id"] in ids)]


Intercept = Callable[[flask.Request], flask.Response | None]


class _Served:
    """A peer whose server answers on a daemon thread until :meth:`close` or the end of a
    ``with`` block."""

    def _serve(self, server: socketserver.BaseServer, name: str) -> None:
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, name=name, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


class _QuietHandler(WSGIRequestHandler):
    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass


class TaxiiPeer(_Served):
    """Medallion on 127.0.0.1 with one API root and one collection (see the module doc)."""

    def __init__(self, *, users: Mapping[str, str] | None = None, page_size: int = 1000,
                 indexed: bool = True, next_tokens: bool = True) -> None:
        self.users = dict(users or {"reader": "secret"})
        self.collection: dict[str, Any] = {
            "id": COLLECTION_ID, "title": "Test indicators", "description": "generated",
            "can_read": True, "can_write": False, "media_types": [STIX],
            "objects": [], "manifest": []}
        self.data: dict[str, Any] = {
            "/discovery": {"title": "Vigil test TAXII server", "api_roots": []},
            API_ROOT: {"information": {"title": "Test API root", "versions": [TAXII],
                                      "max_content_length": 10_000_000},
                       "status": [], "collections": [self.collection]},
        }
        self.backend: QuietMemoryBackend = (IndexedBackend(self.data, next_tokens=next_tokens)
                                            if indexed else QuietMemoryBackend(self.data))
        self.intercept: Intercept | None = None
        self.date_headers = True
        """False: answers leave out X-TAXII-Date-Added-First/Last (clients must use the manifest)."""
        self.requests: list[tuple[str, dict[str, str]]] = []
        self._clock = START
        self.app = self._app(page_size)
        self.server: BaseWSGIServer = make_server("127.0.0.1", 0, self.app, threaded=True,
                                                  request_handler=_QuietHandler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.api_root_url = f"{self.url}/{API_ROOT}/"
        self.data["/discovery"].update(api_roots=[self.api_root_url], default=self.api_root_url)
        self.collection_url = f"{self.api_root_url}collections/{COLLECTION_ID}/"
        self.objects_url = f"{self.collection_url}objects/"
        self._serve(self.server, "taxii-peer")

    def _app(self, page_size: int) -> flask.Flask:
        app = flask.Flask("vigil-taxii-peer")
        medallion.set_config(app, "users", {"users": self.users})
        medallion.set_config(app, "taxii", {"taxii": {"max_page_size": page_size}})
        app.medallion_backend = self.backend
        medallion.register_blueprints(app)
        app.register_error_handler(ProcessingError, medallion.handle_processing_error)
        app.register_error_handler(BackendError, medallion.handle_backend_error)
        app.before_request(self._before)
        app.after_request(self._after)
        return app

    def _before(self) -> flask.Response | None:
        request = flask.request
        self.requests.append((request.path, dict(request.args)))
        return self.intercept(request) if self.intercept is not None else None

    def _after(self, response: flask.Response) -> flask.Response:
        if not self.date_headers:
            response.headers.pop("X-TAXII-Date-Added-First", None)
            response.headers.pop("X-TAXII-Date-Added-Last", None)
        return response

    def object_requests(self) -> list[dict[str, str]]:
        """The query of every objects request so far."""
        return [args for path, args in self.requests if path.endswith("/objects/")]

    def add(self, objects: Iterable[dict[str, Any]], *, step: timedelta = timedelta(milliseconds=1)) -> str:
        """Add objects, each ``step`` after the previous one; returns the last ``date_added``."""
        entries = []
        for obj in objects:
            self._clock += step
            added = stamp(self._clock)
            entries.append((added, obj))
            self.collection["objects"].append(obj)
            self.collection["manifest"].append({"id": obj["id"], "date_added": added,
                                                "version": obj.get("modified", added),
                                                "media_type": STIX})
        if isinstance(self.backend, IndexedBackend):
            self.backend.add(COLLECTION_ID, entries)
        return stamp(self._clock)

    @property
    def size(self) -> int:
        return len(self.collection["objects"])


def taxii_response(status: int, body: bytes | str, content_type: str = TAXII) -> flask.Response:
    """A canned response for :attr:`TaxiiPeer.intercept`."""
    return flask.Response(body, status=status, content_type=content_type)


# -- plain HTTP --------------------------------------------------------------------------------


@dataclass
class Route:
    """What a path answers. ``etag`` / ``last_modified`` enable 304 answers; ``delay`` waits
    (seconds) before answering."""

    body: bytes = b""
    status: int = 200
    content_type: str = "application/octet-stream"
    headers: dict[str, str] = field(default_factory=dict)
    etag: str | None = None
    last_modified: str | None = None
    delay: float = 0.0


@dataclass(frozen=True)
class Seen:
    """One request the HTTP peer received."""

    path: str
    query: dict[str, str]
    headers: dict[str, str]


class HttpPeer(_Served):
    """A threaded HTTP server on 127.0.0.1 serving :attr:`routes` (see the module doc)."""

    def __init__(self, routes: Mapping[str, Route] | None = None) -> None:
        self.routes: dict[str, Route] = dict(routes or {})
        self.requests: list[Seen] = []
        self.lock = threading.Lock()
        peer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                peer._answer(self)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._serve(self.server, "http-peer")

    def serve(self, path: str, body: bytes | str, *, status: int = 200,
              content_type: str = "application/octet-stream", etag: bool | str = False,
              last_modified: str | None = None, headers: Mapping[str, str] | None = None,
              delay: float = 0.0) -> str:
        """Serve ``body`` at ``path`` (``etag=True``: an ETag from the body's hash); returns
        the full URL."""
        data = body.encode() if isinstance(body, str) else body
        tag = f'"{hashlib.sha1(data).hexdigest()}"' if etag is True else (etag or None)
        with self.lock:
            self.routes[path] = Route(data, status, content_type, dict(headers or {}), tag,
                                      last_modified, delay)
        return self.url + path

    def paths(self) -> list[str]:
        """The path of every request so far, in order."""
        with self.lock:
            return [seen.path for seen in self.requests]

    def _answer(self, handler: http.server.BaseHTTPRequestHandler) -> None:
        parts = urlsplit(handler.path)
        with self.lock:
            self.requests.append(Seen(parts.path, dict(parse_qsl(parts.query)),
                                      {k.lower(): v for k, v in handler.headers.items()}))
            route = self.routes.get(parts.path)
        if route is None:
            route = Route(b"<html><head><title>404 Not Found</title></head></html>", 404,
                          "text/html")
        if route.delay:
            time.sleep(route.delay)
        status, body = route.status, route.body
        fresh = ((route.etag and handler.headers.get("If-None-Match") == route.etag)
                 or (route.last_modified
                     and handler.headers.get("If-Modified-Since") == route.last_modified))
        if fresh and status == 200:
            status, body = 304, b""
        handler.send_response(status)
        if status != 304:
            handler.send_header("Content-Type", route.content_type)
        handler.send_header("Content-Length", str(len(body)))
        if route.etag:
            handler.send_header("ETag", route.etag)
        if route.last_modified:
            handler.send_header("Last-Modified", route.last_modified)
        for name, value in route.headers.items():
            handler.send_header(name, value)
        handler.end_headers()
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            handler.wfile.write(body)
