"""Reading a feed: its kinds and typed settings, and one fetch-and-parse that touches no database.

:func:`fetch` takes a feed's kind, URL, settings, credentials and stored state (cursor,
ETag, Last-Modified), fetches what is new through the caller's ``httpx.Client`` (or reads a
local file), parses all of it and returns an :class:`Outcome`: the indicators, and the state
to store with them. Any failure raises (a :class:`~vigil.intel.taxii.FeedError` for the remote
end, a :class:`~vigil.core.errors.ParseError` for the content) before anything is stored, so
the caller stores everything or nothing.

Kinds:

- ``taxii``: a TAXII 2.1 collection (its objects URL, or the API root with ``collection`` in
  the settings), polled with ``added_after`` = the stored cursor;
- ``stix``: a STIX 2.1 bundle (URL or file);
- ``misp``: a MISP feed (base URL or folder with ``manifest.json`` and ``<uuid>.json``); the
  cursor maps each event uuid to its manifest timestamp, and only new or changed events are
  fetched;
- ``misp-event``: one MISP event JSON (URL or file);
- ``csv``: a table with a column ``preset`` or an inline ``mapping``;
- ``text``: a plain list, one value per line (preset ``plain`` unless another is named).

Documents fetched over HTTP send the stored ETag / Last-Modified; a 304 is an unchanged
pull. A local file is unchanged while its size and modification time are.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

import httpx
import orjson

from vigil.core.errors import InputError
from vigil.intel.formats.misp import parse_event, parse_manifest
from vigil.intel.formats.presets import preset
from vigil.intel.formats.stix import parse_bundle, parse_objects
from vigil.intel.formats.tabular import ColumnMapping, parse_table
from vigil.intel.taxii import (
    DEFAULT_MAX_BYTES,
    DEFAULT_MAX_PAGES,
    Credentials,
    Download,
    FeedError,
    TaxiiClient,
    download,
    excerpt,
    is_html,
    objects_url,
)
from vigil.intel.types import TLP, IndicatorInput, Parsed


class FeedKind(StrEnum):
    TAXII = "taxii"
    STIX = "stix"
    MISP = "misp"
    MISP_EVENT = "misp-event"
    CSV = "csv"
    TEXT = "text"

    @classmethod
    def parse(cls, text: str) -> FeedKind:
        try:
            return cls(text.strip().lower())
        except ValueError:
            names = ", ".join(k.value for k in cls)
            raise InputError(f"unknown feed kind {text!r} (use {names})") from None


REMOTE_ONLY = frozenset({FeedKind.TAXII})
"""Kinds that cannot read a local file."""
_COMMON = frozenset({"max_bytes", "timeout", "auth", "auth_header", "tlp", "confidence"})
_KEYS: dict[FeedKind, frozenset[str]] = {
    FeedKind.TAXII: _COMMON | {"collection", "page_size", "types", "max_pages"},
    FeedKind.STIX: _COMMON,
    FeedKind.MISP: _COMMON,
    FeedKind.MISP_EVENT: _COMMON,
    FeedKind.CSV: _COMMON | {"preset", "mapping"},
    FeedKind.TEXT: _COMMON | {"preset"},
}
SOURCE_KEYS = frozenset({"collection", "types", "preset", "mapping"})
"""Settings that change what a feed reads: changing one starts its state afresh."""
MAX_PAGE_SIZE = 100_000
_COLLECTION_ID = re.compile(r"^[A-Za-z0-9._~-]{1,200}$")


@dataclass(frozen=True, slots=True)
class FeedConfig:
    """A feed's settings (every key optional; ``to_json`` keeps only those given)."""

    max_bytes: int | None = None
    """The largest download (default: the server's ``intel.max_download_mb``)."""
    timeout: float | None = None
    """Seconds per HTTP request (default: the timeout of the caller's client)."""
    auth: str | None = None
    """How the secret is sent: ``basic``, ``bearer`` or ``header`` (default: basic for
    ``user:password``, bearer otherwise)."""
    auth_header: str | None = None
    tlp: TLP | None = None
    """The TLP of indicators the feed leaves unmarked."""
    confidence: int | None = None
    """The confidence of indicators the feed leaves without one."""
    collection: str | None = None
    page_size: int = 1000
    types: tuple[str, ...] = ()
    """TAXII ``match[type]`` (default: every type)."""
    max_pages: int = DEFAULT_MAX_PAGES
    preset: str | None = None
    mapping: Mapping[str, object] | None = None
    given: frozenset[str] = field(default=frozenset(), compare=False)

    @classmethod
    def parse(cls, kind: FeedKind, raw: Mapping[str, object] | None, *,
              check_mapping: bool = True) -> FeedConfig:
        """The settings of a ``kind`` feed; InputError naming the first bad key. The column
        mapping is built too unless ``check_mapping`` is false (showing stored settings)."""
        raw = dict(raw or {})
        unknown = sorted(set(raw) - _KEYS[kind])
        if unknown:
            allowed = ", ".join(sorted(_KEYS[kind]))
            raise InputError(f"config key {unknown[0]!r} does not apply to {kind.value} feeds "
                             f"(use {allowed})")
        values: dict[str, Any] = {}
        for key, value in raw.items():
            values[key] = _CHECKS[key](key, value)
        config = cls(**values, given=frozenset(raw))
        if kind is FeedKind.CSV and (config.preset is None) == (config.mapping is None):
            raise InputError("a csv feed needs exactly one of config preset (a preset name) or "
                             "mapping (the columns)")
        if check_mapping and (config.preset is not None or config.mapping is not None):
            config.column_mapping()
        return config

    def to_json(self) -> dict[str, object]:
        out: dict[str, object] = {}
        for name in sorted(self.given):
            value = getattr(self, name)
            out[name] = (list(value) if isinstance(value, tuple) else
                         dict(value) if isinstance(value, Mapping) else
                         value.value if isinstance(value, TLP) else value)
        return out

    def column_mapping(self) -> ColumnMapping:
        """The column mapping of a csv or text feed: the inline one, or a preset's
        (``plain`` for a text feed that names none)."""
        if self.mapping is not None:
            return mapping_from_json(self.mapping)
        return preset(self.preset or "plain")


_TUPLE_KEYS = frozenset({"label_columns", "comment_prefixes", "columns", "labels"})


def _mapping_value(key: str, value: object) -> object:
    if key in _TUPLE_KEYS and isinstance(value, list):
        return tuple(value)
    if key == "extra_values" and isinstance(value, list):
        if not all(isinstance(pair, list) and len(pair) == 2 for pair in value):
            raise InputError("config mapping: extra_values is a list of [column, type] pairs")
        return tuple((pair[0], pair[1]) for pair in value)
    if key == "empty_values" and isinstance(value, list):
        return frozenset(str(v).lower() for v in value)
    if key == "tlp" and isinstance(value, str):
        return TLP.parse(value)
    return value


def mapping_from_json(raw: Mapping[str, object]) -> ColumnMapping:
    """A :class:`ColumnMapping` from its JSON form (lists for tuples, ``extra_values`` as
    ``[[column, type], ...]``); InputError naming what is wrong."""
    values = {key: _mapping_value(key, value) for key, value in raw.items()}
    known = {f.name for f in dataclasses.fields(ColumnMapping)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise InputError(f"config mapping: unknown key {unknown[0]!r} (use {', '.join(sorted(known))})")
    try:
        return ColumnMapping(**values)  # type: ignore[arg-type]
    except (TypeError, ValueError) as exc:
        raise InputError(f"config mapping: {exc}") from None


def _positive_int(key: str, value: object, top: int = 1 << 40) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= top:
        raise InputError(f"config {key} must be a whole number from 1 to {top:,}")
    return value


def _timeout(key: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value <= 3600:
        raise InputError(f"config {key} must be a number of seconds above 0 and at most 3600")
    return float(value)


def _name(key: str, value: object) -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > 200:
        raise InputError(f"config {key} must be a non-empty text")
    if key == "collection" and not _COLLECTION_ID.match(value.strip()):
        raise InputError(f"config collection {value[:80]!r} is not a collection id")
    if key == "auth_header" and not re.match(r"^[A-Za-z0-9-]{1,100}$", value.strip()):
        raise InputError(f"config auth_header {value[:80]!r} is not a header name")
    return value.strip()


def _types(key: str, value: object) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise InputError(f"config {key} must be a list of STIX types, e.g. [\"indicator\"]")
    return tuple(v.strip() for v in value)


def _tlp(key: str, value: object) -> TLP:
    if not isinstance(value, str):
        raise InputError(f"config {key} must be a TLP level")
    return TLP.parse(value)


def _confidence(key: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 100:
        raise InputError(f"config {key} must be a whole number from 0 to 100")
    return value


def _mapping(key: str, value: object) -> Mapping[str, object]:
    if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
        raise InputError(f"config {key} must be a JSON object (the column mapping)")
    return dict(value)


_CHECKS: dict[str, Any] = {
    "max_bytes": _positive_int, "timeout": _timeout, "auth": _name, "auth_header": _name,
    "tlp": _tlp, "confidence": _confidence, "collection": _name,
    "page_size": lambda k, v: _positive_int(k, v, MAX_PAGE_SIZE),
    "types": _types, "max_pages": lambda k, v: _positive_int(k, v, 1_000_000),
    "preset": _name, "mapping": _mapping,
}


# -- state and outcome -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FeedState:
    """What a feed remembers between pulls."""

    cursor: str | None = None
    etag: str | None = None
    last_modified: str | None = None


@dataclass(frozen=True, slots=True)
class Source:
    """Everything a fetch needs to know about one feed."""

    name: str
    kind: FeedKind
    url: str
    config: FeedConfig
    credentials: Credentials | None = field(default=None, repr=False)


@dataclass(slots=True)
class Outcome:
    """What a fetch found: ``parsed`` is empty when ``unchanged``; ``state`` is to be stored
    together with the indicators."""

    unchanged: bool
    parsed: Parsed
    fetched: int
    state: FeedState


def is_remote(url: str) -> bool:
    return url.lower().startswith(("http://", "https://"))


def local_path(url: str) -> Path:
    """The file a non-HTTP feed URL names (``file:///x``, or a path)."""
    return Path(url[7:] if url.lower().startswith("file://") else url).expanduser()


def check_url(kind: FeedKind, url: str) -> str:
    """A feed URL as stored; InputError when it cannot be one for ``kind``."""
    url = url.strip()
    if not url:
        raise InputError("a feed needs a URL (or, except for taxii, a file path)")
    if is_remote(url):
        try:
            parsed = httpx.URL(url)
        except httpx.InvalidURL as exc:
            raise InputError(f"invalid feed URL: {exc}") from None
        if not parsed.host:
            raise InputError(f"invalid feed URL {url!r}: no host")
        return url
    if "://" in url and not url.lower().startswith("file://"):
        raise InputError(f"unsupported feed URL {url!r} (use http://, https:// or a file path)")
    if kind in REMOTE_ONLY:
        raise InputError(f"a {kind.value} feed needs an http:// or https:// URL")
    return url


def check_source(kind: FeedKind, url: str, config: FeedConfig) -> None:
    """InputError when a URL and settings cannot name a source of ``kind``."""
    if kind is FeedKind.TAXII and not config.collection and "/collections/" not in url:
        raise InputError("a taxii feed's URL is a collection (.../collections/<id>/ or its "
                         "objects/ URL), or an API root with config collection")


# -- fetching ----------------------------------------------------------------------------------


def _headers(source: Source, state: FeedState, conditional: bool) -> dict[str, str]:
    headers = {"Accept": "application/json, text/csv, text/plain, */*;q=0.5"}
    if source.credentials is not None:
        headers.update(source.credentials.headers())
    if conditional and state.etag:
        headers["If-None-Match"] = state.etag
    if conditional and state.last_modified:
        headers["If-Modified-Since"] = state.last_modified
    return headers


def _read_file(path: Path, max_bytes: int) -> bytes:
    try:
        size = path.stat().st_size
        if size > max_bytes:
            raise FeedError(f"{path}: the file is {size:,} bytes, over the limit of {max_bytes:,} "
                            "bytes (config max_bytes)")
        return path.read_bytes()
    except FileNotFoundError:
        raise FeedError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise FeedError(f"{path}: is a folder, not a file") from None
    except OSError as exc:
        raise FeedError(f"{path}: cannot read: {exc.strerror or exc}") from None


def _file_stamp(path: Path) -> str | None:
    try:
        info = path.stat()
    except OSError:
        return None
    return f"file:{info.st_size}:{info.st_mtime_ns}"


def _document(source: Source, client: httpx.Client, url: str, state: FeedState, *,
              conditional: bool, max_bytes: int) -> Download:
    """One document by URL (conditional GET) or from a file (unchanged while its size and
    modification time are); raises FeedError for HTML where data was expected."""
    if is_remote(url):
        got = download(client, url, headers=_headers(source, state, conditional),
                       timeout=source.config.timeout, max_bytes=max_bytes)
    else:
        path = local_path(url)
        stamp = _file_stamp(path)
        if conditional and stamp is not None and stamp == state.last_modified:
            return Download(str(path), 304, b"", "", None, stamp)
        got = Download(str(path), 200, _read_file(path, max_bytes), "", None, stamp)
    if not got.not_modified and is_html(got.body, got.content_type):
        raise FeedError(f"{got.url}: expected {source.kind.value} data, got "
                        f"{excerpt(got.body, got.content_type)}")
    return got


def _with_defaults(parsed: Parsed, config: FeedConfig) -> Parsed:
    if config.tlp is None and config.confidence is None:
        return parsed
    out: list[IndicatorInput] = []
    for item in parsed.indicators:
        changes: dict[str, Any] = {}
        if config.tlp is not None and item.tlp is None:
            changes["tlp"] = config.tlp
        if config.confidence is not None and item.confidence is None:
            changes["confidence"] = config.confidence
        out.append(dataclasses.replace(item, **changes) if changes else item)
    parsed.indicators = out
    return parsed


def _parse_document(source: Source, body: bytes) -> Parsed:
    if source.kind is FeedKind.STIX:
        return parse_bundle(body, source.name)
    if source.kind is FeedKind.MISP_EVENT:
        return parse_event(body, source.name)
    return parse_table(body, source.config.column_mapping(), source.name)


def fetch(source: Source, client: httpx.Client, state: FeedState, *, full: bool = False,
          max_bytes: int = DEFAULT_MAX_BYTES) -> Outcome:
    """Fetch and parse what is new in ``source`` since ``state`` (everything when ``full``)."""
    limit = source.config.max_bytes or max_bytes
    if source.kind is FeedKind.TAXII:
        outcome = _fetch_taxii(source, client, state, full=full, max_bytes=limit)
    elif source.kind is FeedKind.MISP:
        outcome = _fetch_misp(source, client, state, full=full, max_bytes=limit)
    else:
        got = _document(source, client, source.url, state, conditional=not full, max_bytes=limit)
        if got.not_modified:
            return Outcome(True, Parsed(), 0, state)
        parsed = _parse_document(source, got.body)
        fetched = len(parsed.indicators) + parsed.skipped + len(parsed.problems)
        outcome = Outcome(False, parsed, fetched, FeedState(None, got.etag, got.last_modified))
    outcome.parsed = _with_defaults(outcome.parsed, source.config)
    return outcome


def taxii_objects_url(source: Source) -> str:
    if source.config.collection:
        return objects_url(source.url, source.config.collection)
    url = source.url if source.url.endswith("/") else source.url + "/"
    return url if url.endswith("/objects/") else url + "objects/"


def _fetch_taxii(source: Source, client: httpx.Client, state: FeedState, *, full: bool,
                 max_bytes: int) -> Outcome:
    taxii = TaxiiClient(client, credentials=source.credentials, timeout=source.config.timeout,
                        max_bytes=max_bytes, max_pages=source.config.max_pages)
    polled = taxii.poll(taxii_objects_url(source), added_after=None if full else state.cursor,
                        limit=source.config.page_size, match_type=source.config.types)
    cursor = polled.cursor or state.cursor
    new_state = dataclasses.replace(state, cursor=cursor)
    if not polled.objects:
        return Outcome(True, Parsed(), 0, new_state)
    return Outcome(False, parse_objects(polled.objects, source.name), len(polled.objects), new_state)


def _misp_cursor(text: str | None) -> dict[str, int]:
    if not text:
        return {}
    try:
        loaded = orjson.loads(text)
    except orjson.JSONDecodeError:
        return {}
    if not isinstance(loaded, dict):
        return {}
    return {str(k): v for k, v in loaded.items() if isinstance(v, int) and not isinstance(v, bool)}


def _member(base: str, name: str) -> str:
    if is_remote(base):
        return base.rstrip("/") + "/" + name
    return str(local_path(base) / name)


def _fetch_misp(source: Source, client: httpx.Client, state: FeedState, *, full: bool,
                max_bytes: int) -> Outcome:
    base = source.url.removesuffix("manifest.json")
    got = _document(source, client, _member(base, "manifest.json"), state,
                    conditional=not full, max_bytes=max_bytes)
    if got.not_modified:
        return Outcome(True, Parsed(), 0, state)
    manifest = parse_manifest(got.body)
    known = {} if full else _misp_cursor(state.cursor)
    changed = sorted(uuid for uuid, entry in manifest.items() if known.get(uuid) != entry.timestamp)
    parsed = Parsed()
    for uuid in changed:
        event = _document(source, client, _member(base, f"{uuid}.json"), FeedState(),
                          conditional=False, max_bytes=max_bytes)
        try:
            one = parse_event(event.body, source.name)
        except InputError as exc:
            raise type(exc)(f"MISP event {uuid}: {exc}") from exc
        parsed.indicators.extend(one.indicators)
        parsed.problems.extend(f"event {uuid}: {p}" for p in one.problems)
        parsed.skipped += one.skipped
    cursor = orjson.dumps({u: e.timestamp for u, e in sorted(manifest.items())}).decode()
    return Outcome(not changed, parsed, len(changed), FeedState(cursor, got.etag, got.last_modified))
