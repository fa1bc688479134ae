"""The TAXII 2.1 client against medallion on loopback, and TAXII feeds end to end.

The acceptance test: 50,000 indicators across 50 pages are polled fully, and a second poll,
after more objects were added to the server, fetches only those.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import flask
import httpx
import orjson
import pytest
from sqlalchemy import func, select

from helpers import free_port
from intel.peers import COLLECTION_ID, TAXII, TaxiiPeer, indicators, taxii_response
from vigil.core.db import StateDB
from vigil.intel.feeds import FeedRunStatus, add_feed, feed_runs, get_feed, pull
from vigil.intel.models import IndicatorSource
from vigil.intel.taxii import FeedError, TaxiiClient, credentials

ACTOR = "user:tester"
SECRET = "reader:secret"


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=30) as made:
        yield made


def taxii(client: httpx.Client, **options: object) -> TaxiiClient:
    return TaxiiClient(client, credentials=credentials(SECRET), **options)  # type: ignore[arg-type]


def stored(db: StateDB, source: str) -> int:
    with db.session() as session:
        return int(session.scalar(select(func.count()).select_from(IndicatorSource)
                                  .where(IndicatorSource.source == source)) or 0)


# -- acceptance --------------------------------------------------------------------------------


@pytest.mark.parametrize("state_url", ["sqlite"], indirect=True)
def test_50000_indicators_polled_fully_then_only_what_was_added(state_db: StateDB,
                                                                 client: httpx.Client) -> None:
    with TaxiiPeer(page_size=1000) as peer:
        last = peer.add(indicators(50_000))
        add_feed(state_db, "big", "taxii", peer.api_root_url, secret=SECRET, actor=ACTOR,
                 config={"collection": COLLECTION_ID, "page_size": 1000})

        first = pull(state_db, "big", client, actor=ACTOR)
        assert (first.status, first.error) == (FeedRunStatus.OK, None)
        assert (first.fetched, first.added, first.problems) == (50_000, 50_000, 0)
        assert len(peer.object_requests()) == 50
        assert get_feed(state_db, "big").cursor == last
        assert stored(state_db, "big") == 50_000

        newest = peer.add(indicators(1_234, first=50_000))
        before = len(peer.object_requests())
        second = pull(state_db, "big", client, actor=ACTOR)
        assert (second.status, second.fetched, second.added) == (FeedRunStatus.OK, 1_234, 1_234)
        asked = peer.object_requests()[before:]
        assert len(asked) == 2
        assert asked[0]["added_after"] == last
        assert get_feed(state_db, "big").cursor == newest
        assert stored(state_db, "big") == 51_234

        third = pull(state_db, "big", client, actor=ACTOR)
        assert (third.status, third.fetched, third.added) == (FeedRunStatus.UNCHANGED, 0, 0)
        assert get_feed(state_db, "big").cursor == newest
        assert [r.fetched for r in feed_runs(state_db, "big")] == [0, 1_234, 50_000]


# -- the client --------------------------------------------------------------------------------


def test_discovery_api_root_and_collections(client: httpx.Client) -> None:
    with TaxiiPeer() as peer:
        found = taxii(client).discovery(peer.url)
        assert found.api_roots == (peer.api_root_url,)
        assert found.default == peer.api_root_url
        root = taxii(client).api_root(peer.api_root_url)
        assert root.versions == (TAXII,)
        (collection,) = taxii(client).collections(peer.api_root_url)
        assert collection.id == COLLECTION_ID
        assert collection.can_read and not collection.can_write
        assert collection.objects_url == peer.objects_url


def test_medallion_paging_with_next(client: httpx.Client) -> None:
    """Medallion's own memory backend keeps one ``next`` token for the whole listing."""
    with TaxiiPeer(page_size=100, indexed=False) as peer:
        last = peer.add(indicators(250))
        pages = list(taxii(client).objects(peer.objects_url, limit=100))
        assert [len(p.objects) for p in pages] == [100, 100, 50]
        assert [p.more for p in pages] == [True, True, False]
        assert pages[0].next and pages[1].next
        result = taxii(client).poll(peer.objects_url, limit=100)
        assert len({o["id"] for o in result.objects}) == 250  # type: ignore[index]
        assert result.cursor == last


def test_paging_without_next_follows_date_added_last(client: httpx.Client) -> None:
    with TaxiiPeer(page_size=40, next_tokens=False) as peer:
        last = peer.add(indicators(100))
        result = taxii(client).poll(peer.objects_url, limit=40)
        assert len({o["id"] for o in result.objects}) == 100  # type: ignore[index]
        assert result.pages == 3 and result.cursor == last
        asked = peer.object_requests()
        assert "added_after" not in asked[0]
        assert asked[1]["added_after"] < asked[2]["added_after"] < last
        assert all("next" not in a for a in asked)


def test_match_type_is_sent(client: httpx.Client) -> None:
    with TaxiiPeer() as peer:
        peer.add(indicators(5))
        peer.add([{"type": "identity", "spec_version": "2.1",
                   "id": "identity--11111111-1111-4111-8111-111111111111", "name": "someone",
                   "created": "2024-01-01T00:00:00.000Z", "modified": "2024-01-01T00:00:00.000Z"}])
        result = taxii(client).poll(peer.objects_url, match_type=["indicator"])
        assert len(result.objects) == 5
        assert peer.object_requests()[-1]["match[type]"] == "indicator"


def test_cursor_from_the_manifest_when_the_header_is_missing(client: httpx.Client) -> None:
    with TaxiiPeer() as peer:
        peer.date_headers = False
        last = peer.add(indicators(30))
        result = taxii(client).poll(peer.objects_url, limit=1000)
        assert len(result.objects) == 30
        assert result.cursor == last
        assert any(path.endswith("/manifest/") for path, _ in peer.requests)


def test_nothing_new_keeps_the_cursor(client: httpx.Client) -> None:
    with TaxiiPeer() as peer:
        last = peer.add(indicators(3))
        result = taxii(client).poll(peer.objects_url, added_after=last)
        assert (result.objects, result.cursor) == ([], last)


# -- errors ------------------------------------------------------------------------------------


def error_of(client: httpx.Client, url: str, **options: object) -> str:
    with pytest.raises(FeedError) as caught:
        taxii(client, **options).poll(url, limit=10)
    assert caught.value.http_status == 502
    return str(caught.value)


def test_server_error_is_reported_with_status_and_excerpt(client: httpx.Client) -> None:
    with TaxiiPeer() as peer:
        peer.add(indicators(3))
        peer.intercept = lambda _r: taxii_response(500, b'{"title": "database on fire"}')
        message = error_of(client, peer.objects_url)
        assert "HTTP 500" in message and "database on fire" in message


def test_html_instead_of_json(client: httpx.Client) -> None:
    with TaxiiPeer() as peer:
        peer.intercept = lambda _r: taxii_response(
            200, "<!DOCTYPE html><html><head><title>Sign in - Portal</title></head></html>", "text/html")
        message = error_of(client, peer.objects_url)
        assert "HTML page titled 'Sign in - Portal'" in message


def test_wrong_credentials(client: httpx.Client) -> None:
    with TaxiiPeer() as peer:
        with pytest.raises(FeedError, match=r"HTTP 401 .*credentials"):
            TaxiiClient(client, credentials=credentials("reader:wrong")).poll(peer.objects_url)
        with pytest.raises(FeedError, match=r"HTTP 401"):
            TaxiiClient(client).discovery(peer.url)


def test_unknown_collection(client: httpx.Client) -> None:
    with TaxiiPeer() as peer:
        message = error_of(client, peer.api_root_url + "collections/no-such-collection/objects/")
        assert "HTTP 404" in message and "no-such-collection" in message


def test_connection_refused(client: httpx.Client) -> None:
    message = error_of(client, f"http://127.0.0.1:{free_port()}/api1/collections/x/objects/")
    assert "cannot connect" in message and "refused" in message


@pytest.mark.parametrize(("status", "body", "content_type", "expected"), [
    (200, b'{"objects": []}', "application/json", "wrong media type 'application/json'"),
    (200, b'{"objects": []}', "application/taxii+json;version=2.0", "speaks TAXII 2.0"),
    (200, b'{"data": [1, 2]}', TAXII, "not a TAXII envelope: no 'objects'"),
    (200, b'[{"type": "indicator"}]', TAXII, "got a JSON list"),
    (200, b'{"objects": {"a": 1}}', TAXII, "'objects' is not a list"),
    (200, b'{"objects": [], "more": "yes"}', TAXII, "'more' is not true or false"),
    (200, b'{"objects": [', TAXII, "malformed JSON"),
    (200, b'{"objects": [], "more": true}', TAXII, "brings an empty page"),
    (200, b'{"objects": [{"id": "indicator--1"}], "more": true}', TAXII,
     "neither 'next' nor an X-TAXII-Date-Added-Last"),
])
def test_bad_envelopes(client: httpx.Client, status: int, body: bytes, content_type: str,
                       expected: str) -> None:
    with TaxiiPeer() as peer:
        peer.intercept = lambda _r: taxii_response(status, body, content_type)
        assert expected in error_of(client, peer.objects_url)


def test_empty_envelope_is_an_empty_page(client: httpx.Client) -> None:
    with TaxiiPeer() as peer:
        peer.intercept = lambda _r: taxii_response(200, b"{}")
        assert taxii(client).poll(peer.objects_url).objects == []


def test_a_server_repeating_its_page_is_stopped(client: httpx.Client) -> None:
    page = orjson.dumps({"objects": indicators(2), "more": True, "next": "same"})
    with TaxiiPeer() as peer:
        peer.intercept = lambda _r: taxii_response(200, page)
        message = error_of(client, peer.objects_url)
        assert "loops" in message and "only objects it sent already" in message
        assert len(peer.object_requests()) == 2


def test_a_date_that_does_not_advance_is_stopped(client: httpx.Client) -> None:
    calls = iter(range(1000))

    def same_date(_request: flask.Request) -> flask.Response:
        response = taxii_response(200, orjson.dumps({"objects": indicators(1, first=next(calls)),
                                                     "more": True}))
        response.headers["X-TAXII-Date-Added-Last"] = "2024-01-01T00:00:00.000000Z"
        return response

    with TaxiiPeer() as peer:
        peer.intercept = same_date
        assert "does not advance" in error_of(client, peer.objects_url)


def test_page_limit(client: httpx.Client) -> None:
    with TaxiiPeer(page_size=10) as peer:
        peer.add(indicators(50))
        message = error_of(client, peer.objects_url, max_pages=3)
        assert "stopped after 3 pages" in message


def test_size_limit(client: httpx.Client) -> None:
    with TaxiiPeer() as peer:
        peer.add(indicators(50))
        assert "over the limit of 2,000 bytes" in error_of(client, peer.objects_url, max_bytes=2000)


def test_timeout(client: httpx.Client) -> None:
    def slow(_request: flask.Request) -> None:
        time.sleep(1.5)

    with TaxiiPeer() as peer:
        peer.intercept = slow
        assert "timed out after 0.3 s" in error_of(client, peer.objects_url, timeout=0.3)


# -- TAXII feeds -------------------------------------------------------------------------------


def test_a_feed_failing_half_way_stores_nothing_and_keeps_its_cursor(state_db: StateDB,
                                                                     client: httpx.Client) -> None:
    with TaxiiPeer(page_size=10) as peer:
        last = peer.add(indicators(25))
        add_feed(state_db, "t", "taxii", peer.collection_url, secret=SECRET, actor=ACTOR,
                 config={"page_size": 10, "timeout": 0.5})
        assert pull(state_db, "t", client, actor=ACTOR).added == 25
        peer.add(indicators(30, first=25))

        def hang_on_third_page(_request: flask.Request) -> None:
            if len(peer.object_requests()) >= 4 and _request.path.endswith("/objects/"):
                time.sleep(1.5)

        peer.intercept = hang_on_third_page
        failed = pull(state_db, "t", client, actor=ACTOR)
        assert failed.status is FeedRunStatus.FAILED
        assert failed.error and "timed out" in failed.error
        view = get_feed(state_db, "t")
        assert view.cursor == last and view.last_error == failed.error
        assert stored(state_db, "t") == 25

        peer.intercept = None
        again = pull(state_db, "t", client, actor=ACTOR)
        assert (again.status, again.fetched, again.added) == (FeedRunStatus.OK, 30, 30)
        assert stored(state_db, "t") == 55
        assert get_feed(state_db, "t").last_error is None


def test_full_pull_ignores_the_cursor(state_db: StateDB, client: httpx.Client) -> None:
    with TaxiiPeer() as peer:
        peer.add(indicators(7))
        add_feed(state_db, "t", "taxii", peer.objects_url, secret=SECRET, actor=ACTOR)
        assert pull(state_db, "t", client, actor=ACTOR).fetched == 7
        assert pull(state_db, "t", client, actor=ACTOR).status is FeedRunStatus.UNCHANGED
        full = pull(state_db, "t", client, actor=ACTOR, full=True)
        assert (full.status, full.fetched, full.added) == (FeedRunStatus.OK, 7, 0)
