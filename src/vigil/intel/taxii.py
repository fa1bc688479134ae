"""The HTTP side of feeds: a bounded download with clear errors, and a TAXII 2.1 client.

Every request goes through an ``httpx.Client`` the caller passes in (the server's client, a
test's client pointed at loopback): nothing here opens a network client of its own.

:func:`download` streams one response with a size limit and turns every way a remote can
fail (connection refused, timeout, HTTP 4xx/5xx, a body over the limit) into a
:class:`FeedError` naming the URL and, for HTTP errors, the status and a short excerpt.

:class:`TaxiiClient` speaks TAXII 2.1 (discovery, API root, collections, objects, manifest)
with the media type ``application/taxii+json;version=2.1``. :meth:`TaxiiClient.objects`
follows the paging rules of the specification: ``more`` with ``next`` asks again with
``next`` (and the same filters); ``more`` without ``next`` asks again with ``added_after`` set
to the ``X-TAXII-Date-Added-Last`` header of the page. A server that does not make progress
(``more`` with an empty page, a page of objects already received, a date that does not
advance) or that goes past the page limit is stopped with an error rather than followed
forever. :meth:`TaxiiClient.poll` gathers every page and the new cursor for the next poll.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import httpx
import orjson

from vigil.core.errors import InputError, VigilError
from vigil.core.timeutil import parse_iso

MEDIA_TYPE = "application/taxii+json;version=2.1"
STIX_MEDIA_TYPE = "application/stix+json;version=2.1"
DEFAULT_MAX_BYTES = 256 * 1024 * 1024
"""The largest response accepted by default (a feed document, or one TAXII page)."""
DEFAULT_TIMEOUT = 60.0
DEFAULT_MAX_PAGES = 10_000
EXCERPT = 160
"""How much of an error body a message quotes."""

_TITLE = re.compile(rb"<title[^>]*>(.*?)</title>", re.IGNORECASE | re.DOTALL)
_SPACE = re.compile(r"\s+")


class FeedError(VigilError):
    """A feed's remote end failed or sent something that is not what the feed claims.

    Mapped to 502 (Bad Gateway): the fault is upstream, not in the caller's request.
    """

    http_status = 502


# -- credentials -------------------------------------------------------------------------------


class AuthScheme(StrEnum):
    """How a feed's secret is sent: ``basic`` (``user:password``), ``bearer`` (a token), or
    ``header`` (an API key in a header of its own, e.g. ``X-API-Key``)."""

    BASIC = "basic"
    BEARER = "bearer"
    HEADER = "header"


@dataclass(frozen=True, slots=True)
class Credentials:
    secret: str = field(repr=False)
    scheme: AuthScheme
    header: str = "Authorization"

    def headers(self) -> dict[str, str]:
        if self.scheme is AuthScheme.BASIC:
            token = base64.b64encode(self.secret.encode("utf-8")).decode("ascii")
            return {"Authorization": f"Basic {token}"}
        if self.scheme is AuthScheme.BEARER:
            return {"Authorization": f"Bearer {self.secret}"}
        return {self.header: self.secret}


def credentials(secret: str | None, scheme: str | None = None,
                header: str | None = None) -> Credentials | None:
    """The credentials for ``secret``: basic auth when it reads ``user:password`` and no
    scheme is given, a bearer token otherwise. InputError on an unusable combination."""
    if not secret:
        return None
    if scheme is None:
        chosen = AuthScheme.HEADER if header else (
            AuthScheme.BASIC if ":" in secret else AuthScheme.BEARER)
    else:
        try:
            chosen = AuthScheme(scheme.strip().lower())
        except ValueError:
            raise InputError(f"unknown auth scheme {scheme!r} (use basic, bearer or header)") from None
    if chosen is AuthScheme.BASIC and ":" not in secret:
        raise InputError("basic auth needs a secret of the form user:password")
    if chosen is AuthScheme.HEADER and not header:
        raise InputError("auth scheme 'header' needs the header name (config auth_header)")
    if any(c in secret for c in "\r\n"):
        raise InputError("the secret may not contain line breaks")
    return Credentials(secret, chosen, header or "Authorization")


# -- bounded download --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Download:
    """One response: its body (empty for 304), content type and cache validators."""

    url: str
    status: int
    body: bytes
    content_type: str
    etag: str | None = None
    last_modified: str | None = None
    date_added_first: str | None = None
    date_added_last: str | None = None

    @property
    def not_modified(self) -> bool:
        return self.status == 304


def shown_url(url: str | httpx.URL) -> str:
    """``url`` without user information (a password in a URL never reaches a message)."""
    parsed = httpx.URL(str(url))
    if parsed.userinfo:
        parsed = parsed.copy_with(username=None, password=None)
    return str(parsed)


def excerpt(body: bytes, content_type: str = "") -> str:
    """A short one-line quote of a response body (an HTML page by its title)."""
    if is_html(body, content_type):
        match = _TITLE.search(body[:65536])
        if match:
            title = _SPACE.sub(" ", match.group(1).decode("utf-8", "replace")).strip()
            return f"an HTML page titled {title[:EXCERPT]!r}"
        return "an HTML page"
    text = _SPACE.sub(" ", body[: EXCERPT * 4].decode("utf-8", "replace")).strip()
    return repr(text[:EXCERPT] + ("…" if len(text) > EXCERPT else ""))


def is_html(body: bytes, content_type: str = "") -> bool:
    """Whether a response is a web page (a login portal, an error page) rather than data."""
    if content_type.split(";", 1)[0].strip().lower() in ("text/html", "application/xhtml+xml"):
        return True
    head = body[:512].lstrip().lower()
    return head.startswith((b"<!doctype html", b"<html", b"<head", b"<body"))


def _status_error(url: str, status: int, reason: str, body: bytes, content_type: str,
                  location: str | None = None) -> FeedError:
    hint = ""
    if 300 <= status < 400:
        hint = f" (redirect to {shown_url(location) if location else 'nowhere'}, not followed)"
    elif status in (401, 403):
        hint = " (check the feed's credentials)"
    elif status == 404:
        hint = " (check the URL)"
    quoted = f": {excerpt(body, content_type)}" if body.strip() else ""
    return FeedError(f"{url}: HTTP {status} {reason}{hint}{quoted}")


def _transport_error(url: str, exc: httpx.RequestError, timeout: float | None) -> FeedError:
    if isinstance(exc, httpx.TimeoutException):
        after = f" after {timeout:g} s" if timeout else ""
        return FeedError(f"{url}: timed out{after} ({type(exc).__name__})")
    if isinstance(exc, httpx.ConnectError):
        text = str(exc) or type(exc).__name__
        if "refused" in text.lower():
            text = "connection refused"
        return FeedError(f"{url}: cannot connect: {text}")
    return FeedError(f"{url}: {type(exc).__name__}: {exc}")


def _read_bounded(response: httpx.Response, url: str, max_bytes: int) -> bytes:
    declared = response.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > max_bytes:
        raise FeedError(f"{url}: the response is {int(declared):,} bytes, over the limit of "
                        f"{max_bytes:,} bytes (config max_bytes)")
    body = bytearray()
    for chunk in response.iter_bytes():
        body += chunk
        if len(body) > max_bytes:
            raise FeedError(f"{url}: the response is over the limit of {max_bytes:,} bytes "
                            "(config max_bytes)")
    return bytes(body)


def download(client: httpx.Client, url: str, *, headers: Mapping[str, str] | None = None,
             params: Mapping[str, str] | None = None, timeout: float | None = DEFAULT_TIMEOUT,
             max_bytes: int = DEFAULT_MAX_BYTES) -> Download:
    """GET ``url`` (streamed, at most ``max_bytes``); a 304 is returned, every other status
    outside 2xx, and every transport failure, raise :class:`FeedError`."""
    shown = shown_url(url)
    extra: dict[str, Any] = {} if timeout is None else {"timeout": httpx.Timeout(timeout)}
    try:
        with client.stream("GET", url, headers=dict(headers or {}), params=dict(params or {}),
                           **extra) as response:
            shown = shown_url(response.request.url)
            content_type = response.headers.get("content-type", "")
            if response.status_code == 304:
                return Download(shown, 304, b"", content_type, response.headers.get("etag"),
                                response.headers.get("last-modified"))
            body = _read_bounded(response, shown, max_bytes)
            if not 200 <= response.status_code < 300:
                raise _status_error(shown, response.status_code, response.reason_phrase, body,
                                    content_type, response.headers.get("location"))
            return Download(shown, response.status_code, body, content_type,
                            response.headers.get("etag"), response.headers.get("last-modified"),
                            response.headers.get("x-taxii-date-added-first"),
                            response.headers.get("x-taxii-date-added-last"))
    except httpx.RequestError as exc:
        raise _transport_error(shown, exc, timeout) from exc
    except httpx.InvalidURL as exc:
        raise FeedError(f"{shown}: invalid URL: {exc}") from exc


def load_json(data: bytes, where: str) -> object:
    """Decode JSON; FeedError (with line and column) when it is not."""
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise FeedError(f"{where}: malformed JSON (line {exc.lineno}, column {exc.colno}): "
                        f"{exc.msg}") from exc


# -- TAXII 2.1 ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Discovery:
    title: str
    description: str | None
    default: str | None
    api_roots: tuple[str, ...]
    """Absolute URLs (relative ones are resolved against the discovery URL)."""


@dataclass(frozen=True, slots=True)
class ApiRoot:
    url: str
    title: str
    versions: tuple[str, ...]
    max_content_length: int | None


@dataclass(frozen=True, slots=True)
class Collection:
    id: str
    title: str
    description: str | None
    can_read: bool
    can_write: bool
    media_types: tuple[str, ...]
    objects_url: str


@dataclass(frozen=True, slots=True)
class Page:
    """One envelope: its items (STIX objects, or manifest records), paging and dates."""

    objects: list[object]
    more: bool
    next: str | None
    date_added_first: str | None
    date_added_last: str | None


@dataclass(frozen=True, slots=True)
class PollResult:
    """Every object of a poll, and the cursor (``added_after``) for the next one."""

    objects: list[object]
    cursor: str | None
    pages: int


def _text(doc: Mapping[str, object], key: str, where: str, *, required: bool = False) -> str | None:
    value = doc.get(key)
    if value is None:
        if required:
            raise FeedError(f"{where}: the TAXII resource has no {key!r}")
        return None
    if not isinstance(value, str):
        raise FeedError(f"{where}: {key!r} is not a string")
    return value


def _strings(doc: Mapping[str, object], key: str, where: str) -> tuple[str, ...]:
    value = doc.get(key) or []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise FeedError(f"{where}: {key!r} is not a list of strings")
    return tuple(str(v) for v in value)


def _object_key(item: object) -> tuple[str, str] | None:
    if not isinstance(item, dict) or not isinstance(item.get("id"), str):
        return None
    version = item.get("modified") or item.get("version") or item.get("created") or ""
    return str(item["id"]), str(version)


def _later(a: str | None, b: str | None) -> str | None:
    if a is None or b is None:
        return a or b
    try:
        return a if parse_iso(a) >= parse_iso(b) else b
    except ValueError:
        return b


class TaxiiClient:
    """A TAXII 2.1 client over the caller's ``httpx.Client``.

    ``credentials`` are sent with every request; ``timeout`` (seconds) bounds each request,
    ``max_bytes`` each response and ``max_pages`` one listing.
    """

    def __init__(self, client: httpx.Client, *, credentials: Credentials | None = None,
                 timeout: float | None = DEFAULT_TIMEOUT, max_bytes: int = DEFAULT_MAX_BYTES,
                 max_pages: int = DEFAULT_MAX_PAGES) -> None:
        self.client = client
        self.credentials = credentials
        self.timeout = timeout
        self.max_bytes = max_bytes
        self.max_pages = max_pages

    # -- requests ------------------------------------------------------------------------------

    def get(self, url: str, params: Mapping[str, str] | None = None) -> tuple[dict[str, object], Download]:
        """GET a TAXII resource: a JSON object served as ``application/taxii+json``."""
        headers = {"Accept": MEDIA_TYPE}
        if self.credentials is not None:
            headers.update(self.credentials.headers())
        got = download(self.client, url, headers=headers, params=params, timeout=self.timeout,
                       max_bytes=self.max_bytes)
        if is_html(got.body, got.content_type):
            raise FeedError(f"{got.url}: expected TAXII JSON, got {excerpt(got.body, got.content_type)}")
        self._check_media_type(got)
        doc = load_json(got.body, got.url)
        if not isinstance(doc, dict):
            raise FeedError(f"{got.url}: expected a TAXII resource (a JSON object), got a JSON "
                            f"{type(doc).__name__}")
        return doc, got

    @staticmethod
    def _check_media_type(got: Download) -> None:
        parts = [p.strip().lower() for p in got.content_type.split(";")]
        if parts[0] != "application/taxii+json":
            shown = got.content_type or "no Content-Type"
            raise FeedError(f"{got.url}: wrong media type {shown!r} (expected {MEDIA_TYPE}; "
                            "is this a TAXII 2.1 server?)")
        for param in parts[1:]:
            name, _, value = param.partition("=")
            if name.strip() == "version" and value.strip().strip('"') != "2.1":
                raise FeedError(f"{got.url}: the server speaks TAXII {value.strip()}, not 2.1")

    # -- server information --------------------------------------------------------------------

    def discovery(self, url: str) -> Discovery:
        """``GET /taxii2/``: the server's title and API roots. ``url`` is the discovery URL or
        the server's base URL (``/taxii2/`` is added)."""
        if not url.rstrip("/").endswith("/taxii2"):
            url = url.rstrip("/") + "/taxii2/"
        doc, got = self.get(url)
        roots = tuple(str(httpx.URL(got.url).join(r)) for r in _strings(doc, "api_roots", got.url))
        default = _text(doc, "default", got.url)
        return Discovery(_text(doc, "title", got.url) or "", _text(doc, "description", got.url),
                         str(httpx.URL(got.url).join(default)) if default else None, roots)

    def api_root(self, url: str) -> ApiRoot:
        doc, got = self.get(_slash(url))
        size = doc.get("max_content_length")
        return ApiRoot(_slash(url), _text(doc, "title", got.url) or "",
                       _strings(doc, "versions", got.url),
                       size if isinstance(size, int) and not isinstance(size, bool) else None)

    def collections(self, api_root_url: str) -> list[Collection]:
        base = _slash(api_root_url)
        doc, got = self.get(base + "collections/")
        items = doc.get("collections") or []
        if not isinstance(items, list):
            raise FeedError(f"{got.url}: 'collections' is not a list")
        found = []
        for item in items:
            if not isinstance(item, dict):
                raise FeedError(f"{got.url}: a collection is not a JSON object")
            cid = _text(item, "id", got.url, required=True) or ""
            found.append(Collection(
                cid, _text(item, "title", got.url) or "", _text(item, "description", got.url),
                item.get("can_read") is True, item.get("can_write") is True,
                _strings(item, "media_types", got.url), objects_url(base, cid)))
        return found

    # -- listings ------------------------------------------------------------------------------

    def objects(self, collection_url: str, *, added_after: str | None = None,
                limit: int | None = None, match_type: Sequence[str] = ()) -> Iterator[Page]:
        """The pages of ``GET {collection}/objects/``, following ``next`` and
        ``X-TAXII-Date-Added-Last`` until ``more`` is false."""
        return self._pages(_objects_url(collection_url), added_after, limit, match_type)

    def manifest(self, collection_url: str, *, added_after: str | None = None,
                 limit: int | None = None, match_type: Sequence[str] = ()) -> Iterator[Page]:
        """The pages of ``GET {collection}/manifest/`` (same paging as :meth:`objects`)."""
        url = _objects_url(collection_url).removesuffix("objects/") + "manifest/"
        return self._pages(url, added_after, limit, match_type)

    def _pages(self, url: str, added_after: str | None, limit: int | None,
               match_type: Sequence[str]) -> Iterator[Page]:
        after, token = added_after, None
        seen: set[tuple[str, str]] = set()
        pages = 0
        while True:
            if pages >= self.max_pages:
                raise FeedError(f"{url}: stopped after {pages:,} pages (config max_pages); the "
                                "server keeps saying there is more")
            page = self._page(url, _params(after, limit, match_type, token))
            pages += 1
            keys = [_object_key(o) for o in page.objects]
            new = sum(1 for k in keys if k is None or k not in seen)
            seen.update(k for k in keys if k is not None)
            if page.more and new == 0:
                what = "an empty page" if not page.objects else "only objects it sent already"
                raise FeedError(f"{url}: the server loops: page {pages} says there is more but "
                                f"brings {what} (next={page.next!r})")
            yield page
            if not page.more:
                return
            if page.next:
                token = page.next
                continue
            after, token = self._advance(url, after, page, pages), None

    @staticmethod
    def _advance(url: str, after: str | None, page: Page, number: int) -> str:
        last = page.date_added_last
        if not last:
            raise FeedError(f"{url}: page {number} says there is more but gives neither 'next' "
                            "nor an X-TAXII-Date-Added-Last header")
        try:
            stuck = after is not None and parse_iso(last) <= parse_iso(after)
        except ValueError:
            raise FeedError(f"{url}: bad X-TAXII-Date-Added-Last header {last!r}") from None
        if stuck:
            raise FeedError(f"{url}: the server loops: X-TAXII-Date-Added-Last {last} does not "
                            f"advance past added_after {after}")
        return last

    def _page(self, url: str, params: Mapping[str, str]) -> Page:
        doc, got = self.get(url, params)
        objects = doc.get("objects")
        if objects is None:
            other = sorted(k for k in doc if k not in ("more", "next"))
            if other:
                raise FeedError(f"{got.url}: not a TAXII envelope: no 'objects' (has "
                                f"{', '.join(repr(k) for k in other[:5])})")
            objects = []
        if not isinstance(objects, list):
            raise FeedError(f"{got.url}: 'objects' is not a list")
        more = doc.get("more", False)
        if not isinstance(more, bool):
            raise FeedError(f"{got.url}: 'more' is not true or false")
        token = doc.get("next")
        if token is not None and not isinstance(token, str | int):
            raise FeedError(f"{got.url}: 'next' is not a string")
        return Page(objects, more, str(token) if token not in (None, "") else None,
                    got.date_added_first, got.date_added_last)

    def poll(self, collection_url: str, *, added_after: str | None = None,
             limit: int | None = None, match_type: Sequence[str] = ()) -> PollResult:
        """Every object added after ``added_after``, and the new cursor: the last
        ``X-TAXII-Date-Added-Last`` seen, or (a server that leaves the header out) the latest
        ``date_added`` of the received objects in the collection's manifest. With nothing new
        the cursor stays ``added_after``."""
        objects: list[object] = []
        cursor, headerless, pages = added_after, False, 0
        for page in self.objects(collection_url, added_after=added_after, limit=limit,
                                 match_type=match_type):
            pages += 1
            objects.extend(page.objects)
            if page.objects and page.date_added_last is None:
                headerless = True
            cursor = _later(cursor, page.date_added_last)
        if headerless:
            cursor = _later(cursor, self._manifest_cursor(collection_url, objects, added_after,
                                                          limit, match_type))
        return PollResult(objects, cursor, pages)

    def _manifest_cursor(self, collection_url: str, objects: list[object], added_after: str | None,
                         limit: int | None, match_type: Sequence[str]) -> str | None:
        """The latest ``date_added`` of ``objects`` (only those: anything added since the
        objects were listed must not be skipped by the next poll)."""
        wanted = {k[0] for k in map(_object_key, objects) if k is not None}
        latest: str | None = None
        for page in self.manifest(collection_url, added_after=added_after, limit=limit,
                                  match_type=match_type):
            for record in page.objects:
                if (isinstance(record, dict) and record.get("id") in wanted
                        and isinstance(record.get("date_added"), str)):
                    latest = _later(latest, str(record["date_added"]))
        return latest


def _slash(url: str) -> str:
    return url if url.endswith("/") else url + "/"


def objects_url(api_root_url: str, collection_id: str) -> str:
    """The objects URL of collection ``collection_id`` under an API root."""
    return f"{_slash(api_root_url)}collections/{collection_id}/objects/"


def _objects_url(url: str) -> str:
    """A collection URL (``.../collections/{id}/``) or its objects URL, as the objects URL."""
    url = _slash(url)
    return url if url.endswith("/objects/") else url + "objects/"


def _params(added_after: str | None, limit: int | None, match_type: Sequence[str],
            token: str | None) -> dict[str, str]:
    params: dict[str, str] = {}
    if added_after:
        params["added_after"] = added_after
    if limit is not None:
        params["limit"] = str(limit)
    if match_type:
        params["match[type]"] = ",".join(match_type)
    if token:
        params["next"] = token
    return params
