"""Feeds end to end: configuration (audited, secrets never shown), each kind pulled from a
loopback HTTP server or a file, per-feed state (ETag, MISP event timestamps), broken feeds that
leave everything as it was, and the scheduler's due feeds. On SQLite and PostgreSQL (the
tables of cases that only exercise parsing and validation on SQLite alone)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import orjson
import pytest
from pymisp import MISPEvent, MISPOrganisation
from sqlalchemy import func, select, update

from intel.factories import stix_bundle
from intel.peers import HttpPeer, indicators, sha256_of
from vigil.audit.models import AuditRecord
from vigil.core.config import IntelSettings
from vigil.core.db import StateDB
from vigil.core.errors import ConflictError, InputError, NotFoundError
from vigil.intel import feeds
from vigil.intel.feeds import (
    FeedKind,
    FeedRunStatus,
    add_feed,
    feed_runs,
    get_feed,
    list_feeds,
    pull,
    pull_due,
    remove_feed,
    update_feed,
)
from vigil.intel.models import Feed, FeedRun, Indicator, IndicatorSource

ACTOR = "user:tester"
JSON = "application/json"
T0 = datetime(2026, 10, 1, 8, 0, tzinfo=UTC)


@pytest.fixture
def peer() -> Iterator[HttpPeer]:
    with HttpPeer() as made:
        yield made


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=10) as made:
        yield made


def values(db: StateDB, source: str) -> set[str]:
    with db.session() as session:
        rows = session.execute(select(Indicator.value).join(
            IndicatorSource, IndicatorSource.indicator_id == Indicator.id)
            .where(IndicatorSource.source == source))
        return {r[0] for r in rows}


def indicator_count(db: StateDB) -> int:
    with db.session() as session:
        return int(session.scalar(select(func.count()).select_from(Indicator)) or 0)


def hashes(count: int, first: int = 0, prefix: str = "ioc") -> set[str]:
    return {sha256_of(f"{prefix}-{n}") for n in range(first, first + count)}


# -- MISP feed fixtures (made with PyMISP, as a MISP instance publishes them) --------------------


ORG = MISPOrganisation()
ORG.from_dict(name="Test CERT", uuid="5a6c3e0e-2222-4222-8222-222222222222")


def misp_event(number: int, timestamp: int, extra: int = 0) -> tuple[str, bytes, dict[str, object]]:
    """An event with two ``to_ids`` attributes (+ ``extra``), one without; its uuid, file and
    manifest entry."""
    event = MISPEvent()
    event.uuid = f"5a6c3e0e-1111-4111-8111-{number:012d}"
    event.info = f"campaign {number}"
    event.Orgc = ORG
    event.add_tag("tlp:green")
    for n in range(2 + extra):
        event.add_attribute("sha256", sha256_of(f"misp-{number}-{n}"), to_ids=True)
    event.add_attribute("comment", "context only", to_ids=False)
    event.timestamp = timestamp
    feed = event.to_feed(with_meta=True)
    manifest = feed["Event"].pop("_manifest")
    feed["Event"].pop("_hashes")
    return event.uuid, orjson.dumps(feed), manifest[event.uuid]


def serve_misp(peer: HttpPeer, events: list[tuple[str, bytes, dict[str, object]]], *,
               etag: bool = False) -> None:
    for uuid, body, _ in events:
        peer.serve(f"/misp/{uuid}.json", body, content_type=JSON)
    manifest = {uuid: entry for uuid, _, entry in events}
    peer.serve("/misp/manifest.json", orjson.dumps(manifest), content_type=JSON, etag=etag)


def event_requests(peer: HttpPeer, since: int) -> list[str]:
    return sorted(p.rsplit("/", 1)[1] for p in peer.paths()[since:] if not p.endswith("manifest.json"))


# -- configuration -----------------------------------------------------------------------------


def audit(db: StateDB) -> list[AuditRecord]:
    with db.session() as session:
        return list(session.scalars(select(AuditRecord).where(AuditRecord.object_type == "intel_feed")
                                    .order_by(AuditRecord.seq)))


def test_feeds_are_configured_audited_and_never_show_their_secret(state_db: StateDB) -> None:
    made = add_feed(state_db, "abuse-urlhaus", "csv", "https://user:pw@feeds.example/csv_recent/",
                    config={"preset": "urlhaus", "timeout": 20}, secret="api-key-123",
                    interval_minutes=30, actor=ACTOR)
    assert made.kind is FeedKind.CSV and made.has_secret
    assert made.url == "https://feeds.example/csv_recent/"
    assert made.config.preset == "urlhaus" and made.config.timeout == 20
    assert made.next_pull_at is not None
    assert [f.name for f in list_feeds(state_db)] == ["abuse-urlhaus"]

    changed = update_feed(state_db, "abuse-urlhaus", secret="other-key", interval_minutes=120,
                          config={"timeout": None}, actor=ACTOR)
    assert changed.interval_minutes == 120 and changed.config.timeout is None
    assert "timeout" not in changed.config.to_json()
    unchanged = update_feed(state_db, "abuse-urlhaus", enabled=True, actor=ACTOR)
    assert unchanged.updated_at == changed.updated_at
    update_feed(state_db, "abuse-urlhaus", secret=None, actor=ACTOR)
    assert not get_feed(state_db, "abuse-urlhaus").has_secret
    remove_feed(state_db, "abuse-urlhaus", actor=ACTOR)
    assert list_feeds(state_db) == []

    records = audit(state_db)
    assert [r.action for r in records] == ["create", "update", "update", "delete"]
    assert all(r.actor == ACTOR for r in records)
    text = " ".join(f"{r.before} {r.after}" for r in records)
    assert "api-key-123" not in text and "other-key" not in text and ":pw@" not in text
    assert orjson.loads(records[1].after or "{}") == {
        "interval_minutes": 120, "config": {"preset": "urlhaus"}, "secret": "changed"}


@pytest.mark.parametrize("state_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize(("kind", "url", "config", "secret", "message"), [
    ("rss", "https://x.example/", {}, None, "unknown feed kind 'rss'"),
    ("taxii", "/srv/feed.json", {}, None, "needs an http:// or https:// URL"),
    ("stix", "ftp://x.example/b.json", {}, None, "unsupported feed URL"),
    ("stix", "  ", {}, None, "needs a URL"),
    ("csv", "https://x.example/a.csv", {}, None, "exactly one of config preset"),
    ("csv", "https://x.example/a.csv", {"preset": "nope"}, None, "unknown feed preset 'nope'"),
    ("csv", "https://x.example/a.csv", {"mapping": {"value": "ioc", "type": "bogus"}}, None,
     "unknown indicator type 'bogus'"),
    ("csv", "https://x.example/a.csv", {"mapping": {"valu": 0}}, None, "unknown key 'valu'"),
    ("stix", "https://x.example/b.json", {"preset": "urlhaus"}, None, "'preset' does not apply"),
    ("taxii", "https://x.example/api1/", {"page_size": 0}, None, "page_size must be"),
    ("taxii", "https://x.example/api1/", {"timeout": "soon"}, None, "timeout must be"),
    ("taxii", "https://x.example/api1/", {"collection": "../x"}, None, "not a collection id"),
    ("taxii", "https://x.example/api1/", {}, None, "or an API root with config collection"),
    ("stix", "https://x.example/b.json", {"tlp": "purple"}, None, "unknown TLP level"),
    ("stix", "https://x.example/b.json", {"auth": "basic"}, "token-only", "user:password"),
    ("stix", "https://x.example/b.json", {"auth": "header"}, "k", "header name"),
])
def test_bad_configuration_is_refused(state_db: StateDB, kind: str, url: str,
                                      config: dict[str, object], secret: str | None,
                                      message: str) -> None:
    with pytest.raises(InputError, match=message.replace("(", r"\(")):
        add_feed(state_db, "f", kind, url, config=config, secret=secret, actor=ACTOR)
    assert list_feeds(state_db) == []


def test_names_are_unique_and_checked(state_db: StateDB) -> None:
    add_feed(state_db, "one", "stix", "https://x.example/b.json", actor=ACTOR)
    with pytest.raises(ConflictError):
        add_feed(state_db, "one", "stix", "https://x.example/c.json", actor=ACTOR)
    with pytest.raises(InputError, match="invalid feed name"):
        add_feed(state_db, "has space", "stix", "https://x.example/b.json", actor=ACTOR)
    with pytest.raises(InputError, match="interval_minutes"):
        add_feed(state_db, "two", "stix", "https://x.example/b.json", interval_minutes=0, actor=ACTOR)
    with pytest.raises(NotFoundError):
        get_feed(state_db, "missing")
    with pytest.raises(NotFoundError):
        pull(state_db, "missing", httpx.Client(), actor=ACTOR)


# -- STIX --------------------------------------------------------------------------------------


def test_stix_bundle_with_etag(state_db: StateDB, peer: HttpPeer, client: httpx.Client) -> None:
    url = peer.serve("/stix/bundle.json", stix_bundle(*indicators(5)), content_type=JSON, etag=True)
    add_feed(state_db, "stix", "stix", url, actor=ACTOR)
    first = pull(state_db, "stix", client, actor=ACTOR)
    assert (first.status, first.fetched, first.added) == (FeedRunStatus.OK, 5, 5)
    assert values(state_db, "stix") == hashes(5)
    etag = get_feed(state_db, "stix").etag
    assert etag

    second = pull(state_db, "stix", client, actor=ACTOR)
    assert (second.status, second.fetched, second.added) == (FeedRunStatus.UNCHANGED, 0, 0)
    assert peer.requests[-1].headers["if-none-match"] == etag

    peer.serve("/stix/bundle.json", stix_bundle(*indicators(8)), content_type=JSON, etag=True)
    third = pull(state_db, "stix", client, actor=ACTOR)
    assert (third.status, third.added) == (FeedRunStatus.OK, 3)
    assert get_feed(state_db, "stix").etag != etag

    full = pull(state_db, "stix", client, actor=ACTOR, full=True)
    assert full.status is FeedRunStatus.OK and "if-none-match" not in peer.requests[-1].headers


def test_last_modified_is_sent_back(state_db: StateDB, peer: HttpPeer, client: httpx.Client) -> None:
    stamp = "Wed, 01 Oct 2026 06:00:00 GMT"
    url = peer.serve("/b.json", stix_bundle(*indicators(2)), content_type=JSON, last_modified=stamp)
    add_feed(state_db, "lm", "stix", url, actor=ACTOR)
    assert pull(state_db, "lm", client, actor=ACTOR).added == 2
    assert pull(state_db, "lm", client, actor=ACTOR).status is FeedRunStatus.UNCHANGED
    assert peer.requests[-1].headers["if-modified-since"] == stamp


def test_stix_bundle_from_a_file(state_db: StateDB, tmp_path: Path, client: httpx.Client) -> None:
    path = tmp_path / "bundle.json"
    path.write_bytes(stix_bundle(*indicators(4)))
    add_feed(state_db, "file", "stix", str(path), actor=ACTOR)
    assert pull(state_db, "file", client, actor=ACTOR).added == 4
    assert pull(state_db, "file", client, actor=ACTOR).status is FeedRunStatus.UNCHANGED
    path.write_bytes(stix_bundle(*indicators(6)))
    assert pull(state_db, "file", client, actor=ACTOR).added == 2

    update_feed(state_db, "file", url=f"file://{tmp_path / 'gone.json'}", actor=ACTOR)
    failed = pull(state_db, "file", client, actor=ACTOR)
    assert failed.status is FeedRunStatus.FAILED
    assert failed.error == f"{tmp_path / 'gone.json'}: no such file"
    assert len(values(state_db, "file")) == 6


# -- MISP --------------------------------------------------------------------------------------


def test_misp_feed_fetches_only_changed_events(state_db: StateDB, peer: HttpPeer,
                                               client: httpx.Client) -> None:
    events = [misp_event(n, 1_700_000_000 + n) for n in range(1, 4)]
    serve_misp(peer, events)
    add_feed(state_db, "misp", "misp", peer.url + "/misp/", actor=ACTOR)

    first = pull(state_db, "misp", client, actor=ACTOR)
    assert (first.status, first.fetched, first.added) == (FeedRunStatus.OK, 3, 6)
    assert get_feed(state_db, "misp").cursor == "3 events"
    with state_db.session() as session:
        tlps = set(session.scalars(select(Indicator.tlp)))
    assert tlps == {"green"}

    seen = len(peer.paths())
    assert pull(state_db, "misp", client, actor=ACTOR).status is FeedRunStatus.UNCHANGED
    assert event_requests(peer, seen) == []

    changed = misp_event(2, 1_700_000_100, extra=1)
    new = misp_event(4, 1_700_000_200)
    serve_misp(peer, [events[0], changed, events[2], new])
    seen = len(peer.paths())
    second = pull(state_db, "misp", client, actor=ACTOR)
    assert (second.status, second.fetched, second.added) == (FeedRunStatus.OK, 2, 3)
    assert event_requests(peer, seen) == sorted([f"{changed[0]}.json", f"{new[0]}.json"])
    assert len(values(state_db, "misp")) == 9

    serve_misp(peer, [events[0], new])
    seen = len(peer.paths())
    third = pull(state_db, "misp", client, actor=ACTOR)
    assert (third.status, third.fetched) == (FeedRunStatus.UNCHANGED, 0)
    assert get_feed(state_db, "misp").cursor == "2 events"
    assert len(values(state_db, "misp")) == 9


def test_misp_manifest_etag_and_a_failing_event(state_db: StateDB, peer: HttpPeer,
                                                client: httpx.Client) -> None:
    events = [misp_event(n, 1_700_000_000 + n) for n in range(1, 3)]
    serve_misp(peer, events, etag=True)
    add_feed(state_db, "misp", "misp", peer.url + "/misp", actor=ACTOR)
    assert pull(state_db, "misp", client, actor=ACTOR).added == 4
    seen = len(peer.paths())
    assert pull(state_db, "misp", client, actor=ACTOR).status is FeedRunStatus.UNCHANGED
    assert peer.paths()[seen:] == ["/misp/manifest.json"]
    state = get_feed(state_db, "misp")

    updated = [misp_event(1, 1_700_000_500, extra=2), misp_event(2, 1_700_000_500, extra=2)]
    serve_misp(peer, updated, etag=True)
    peer.serve(f"/misp/{updated[1][0]}.json", "upstream broke", status=500, content_type="text/plain")
    failed = pull(state_db, "misp", client, actor=ACTOR)
    assert failed.status is FeedRunStatus.FAILED
    assert failed.error and "HTTP 500" in failed.error and "upstream broke" in failed.error
    after = get_feed(state_db, "misp")
    assert (after.cursor, after.etag) == (state.cursor, state.etag)
    assert len(values(state_db, "misp")) == 4

    serve_misp(peer, updated, etag=True)
    assert pull(state_db, "misp", client, actor=ACTOR).added == 4
    assert len(values(state_db, "misp")) == 8


def test_misp_feed_from_a_folder(state_db: StateDB, tmp_path: Path, client: httpx.Client) -> None:
    events = [misp_event(n, 1_700_000_000 + n) for n in range(1, 3)]
    for uuid, body, _ in events:
        (tmp_path / f"{uuid}.json").write_bytes(body)
    (tmp_path / "manifest.json").write_bytes(orjson.dumps({u: e for u, _, e in events}))
    add_feed(state_db, "folder", "misp", str(tmp_path / "manifest.json"), actor=ACTOR)
    assert pull(state_db, "folder", client, actor=ACTOR).added == 4


def test_one_misp_event(state_db: StateDB, peer: HttpPeer, client: httpx.Client) -> None:
    _, body, _ = misp_event(7, 1_700_000_000, extra=1)
    url = peer.serve("/event.json", body, content_type=JSON)
    add_feed(state_db, "event", "misp-event", url, actor=ACTOR)
    run = pull(state_db, "event", client, actor=ACTOR)
    assert (run.status, run.added, run.fetched) == (FeedRunStatus.OK, 3, 4)


# -- CSV and lists -----------------------------------------------------------------------------

def table(*lines: str) -> bytes:
    return ("\n".join(lines) + "\n").encode()


URLHAUS = table(
    "################################################################",
    "# abuse.ch URLhaus Database Dump (CSV - recent URLs only)      #",
    "################################################################",
    "#",
    "# id,dateadded,url,url_status,last_online,threat,tags,urlhaus_link,reporter",
    '"3100004","2026-10-01 07:58:12","http://198.51.100.23:39001/bin.sh","online",'
    '"2026-10-01 07:58:12","malware_download","elf,Mozi","https://urlhaus.abuse.ch/url/3100004/","r"',
    '"3100003","2026-10-01 07:41:09","https://payload.example/dl/invoice.zip","online","",'
    '"malware_download","zip","https://urlhaus.abuse.ch/url/3100003/","r"')
FEODO = table(
    "# abuse.ch Feodo Tracker Botnet C2 IP Blocklist (CSV)",
    "#",
    '"first_seen_utc","dst_ip","dst_port","c2_status","last_online","malware"',
    '"2026-01-17 07:30:05","192.0.2.45","443","offline","2026-09-28","Dridex"',
    '"2026-02-03 11:44:46","198.51.100.77","4643","online","2026-10-01","QakBot"',
    '"2026-04-21 02:00:00","2001:db8::c2","443","online","2026-10-01","Pikabot"')
THREATFOX = table(
    "# ThreatFox IOCs: recent additions - CSV format",
    "#",
    '# "first_seen_utc","ioc_id","ioc_value","ioc_type","threat_type","fk_malware","malware_alias",'
    '"malware_printable","last_seen_utc","confidence_level","reference","tags","anonymous","reporter"',
    '"2026-10-01 07:59:01", "1500006", "198.51.100.9:8443", "ip:port", "botnet_cc", "win.cobalt_strike", '
    '"BEACON", "Cobalt Strike", "", "100", "None", "c2", "0", "r"',
    '"2026-10-01 07:50:33", "1500005", "c2.malware.example", "domain", "botnet_cc", "win.lokipws", '
    '"Loki", "Loki Password Stealer (PWS)", "", "75", "None", "lokibot", "0", "r"',
    '"2026-10-01 07:30:00", "1500003", "44d88612fea8a8f36de82e1278abb02f", "md5_hash", "payload", '
    '"win.agent_tesla", "None", "Agent Tesla", "", "75", "None", "exe", "0", "r"')
BAZAAR = table(
    "# MalwareBazaar recent malware samples (CSV)",
    "#",
    '# "first_seen_utc","sha256_hash","md5_hash","sha1_hash","reporter","file_name","file_type_guess",'
    '"mime_type","signature","clamav","vtpercent","imphash","ssdeep","tlsh"',
    '"2026-10-01 07:46:57", "1e768ef07fb5576fd1e0e0f0795e9d2232d0d329fc86ef6e654a5a52318bd335", '
    '"60151c2dfd54f09522181f197cb21092", "db165c79f4e206c8aee9234299eb456b9d986c9a", "r", "invoice.exe", '
    '"exe", "application/x-dosexec", "AgentTesla", "n/a", "n/a", "n/a", "3072:abc", "T1A2"')
DROP = table(
    "; Spamhaus DROP List 2026/10/01",
    "; https://www.spamhaus.org/drop/drop.txt",
    "192.0.2.0/24 ; SBL000001",
    "198.51.100.0/25 ; SBL000002")
PLAIN = b"""# one value per line
192.0.2.10
evil.example
hxxps://phish.example[.]com/login
44d88612fea8a8f36de82e1278abb02f
"""


@pytest.mark.parametrize("state_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize(("kind", "preset", "body", "expected"), [
    ("csv", "urlhaus", URLHAUS, {"http://198.51.100.23:39001/bin.sh",
                                 "https://payload.example/dl/invoice.zip"}),
    ("csv", "feodo", FEODO, {"192.0.2.45", "198.51.100.77", "2001:db8::c2"}),
    ("csv", "threatfox", THREATFOX, {"198.51.100.9", "c2.malware.example",
                                     "44d88612fea8a8f36de82e1278abb02f"}),
    ("csv", "malwarebazaar", BAZAAR, {"1e768ef07fb5576fd1e0e0f0795e9d2232d0d329fc86ef6e654a5a52318bd335",
                                      "60151c2dfd54f09522181f197cb21092",
                                      "db165c79f4e206c8aee9234299eb456b9d986c9a"}),
    ("text", "spamhaus-drop", DROP, {"192.0.2.0/24", "198.51.100.0/25"}),
    ("text", None, PLAIN, {"192.0.2.10", "evil.example", "https://phish.example.com/login",
                           "44d88612fea8a8f36de82e1278abb02f"}),
])
def test_csv_presets_and_lists(state_db: StateDB, peer: HttpPeer, client: httpx.Client, kind: str,
                               preset: str | None, body: bytes, expected: set[str]) -> None:
    url = peer.serve("/feed.csv", body, content_type="text/csv")
    add_feed(state_db, "tab", kind, url, config={"preset": preset} if preset else {}, actor=ACTOR)
    run = pull(state_db, "tab", client, actor=ACTOR)
    assert (run.status, run.error, run.problems) == (FeedRunStatus.OK, None, 0)
    assert run.added == len(expected)
    assert values(state_db, "tab") == expected


def test_csv_with_an_inline_mapping_and_defaults(state_db: StateDB, peer: HttpPeer,
                                                 client: httpx.Client) -> None:
    body = b"indicator,kind,score\nbad.example.net,domain,90\n203.0.113.9,ipv4,40\n"
    url = peer.serve("/mine.csv", body, content_type="text/csv")
    add_feed(state_db, "mine", "csv", url, actor=ACTOR, config={
        "mapping": {"value": "indicator", "type_column": "kind", "confidence": "score",
                    "labels": ["internal"]},
        "tlp": "amber"})
    assert pull(state_db, "mine", client, actor=ACTOR).added == 2
    with state_db.session() as session:
        rows = {r.value: r for r in session.scalars(select(Indicator))}
    assert rows["bad.example.net"].confidence == 90 and rows["203.0.113.9"].confidence == 40
    assert {r.tlp for r in rows.values()} == {"amber"}
    assert all("internal" in r.labels for r in rows.values())


def test_credentials_are_sent(state_db: StateDB, peer: HttpPeer, client: httpx.Client) -> None:
    url = peer.serve("/list.txt", PLAIN, content_type="text/plain")
    add_feed(state_db, "keyed", "text", url, secret="k-123", actor=ACTOR,
             config={"auth": "header", "auth_header": "X-API-Key"})
    add_feed(state_db, "bearer", "text", url, secret="t-456", actor=ACTOR)
    add_feed(state_db, "basic", "text", url, secret="u:p", actor=ACTOR)
    pull(state_db, "keyed", client, actor=ACTOR)
    pull(state_db, "bearer", client, actor=ACTOR)
    pull(state_db, "basic", client, actor=ACTOR)
    keyed, bearer, basic = (r.headers for r in peer.requests[-3:])
    assert keyed["x-api-key"] == "k-123" and "authorization" not in keyed
    assert bearer["authorization"] == "Bearer t-456"
    assert basic["authorization"] == "Basic dTpw"


# -- broken feeds ------------------------------------------------------------------------------


@pytest.mark.parametrize("state_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize(("kind", "config", "status", "body", "content_type", "message"), [
    ("stix", {}, 500, b"Internal Server Error", "text/plain", "HTTP 500 Internal Server Error"),
    ("stix", {}, 200, b"<html><head><title>Login</title></head><body>x</body></html>", "text/html",
     "HTML page titled 'Login'"),
    ("stix", {}, 200, b'{"type": "bundle", "objects": [', JSON, "JSON"),
    ("stix", {}, 404, b"", "text/plain", "HTTP 404 Not Found (check the URL)"),
    ("csv", {"preset": "feodo"}, 200, b"ip,port\n192.0.2.1,80\n", "text/csv", "dst_ip"),
    ("stix", {"max_bytes": 100}, 200, b"{" + b" " * 200 + b"}", JSON, "over the limit of 100 bytes"),
])
def test_a_broken_feed_changes_nothing(state_db: StateDB, peer: HttpPeer, client: httpx.Client,
                                       kind: str, config: dict[str, object], status: int, body: bytes,
                                       content_type: str, message: str) -> None:
    good = stix_bundle(*indicators(3)) if kind == "stix" else FEODO
    url = peer.serve("/feed", good, content_type=JSON, etag=True)
    add_feed(state_db, "f", kind, url, config=config if "max_bytes" not in config else {}, actor=ACTOR)
    assert pull(state_db, "f", client, actor=ACTOR).added == 3
    before = get_feed(state_db, "f")
    if "max_bytes" in config:
        update_feed(state_db, "f", config=config, actor=ACTOR)

    peer.serve("/feed", body, status=status, content_type=content_type)
    failed = pull(state_db, "f", client, actor=ACTOR)
    assert failed.status is FeedRunStatus.FAILED
    assert failed.error and message in failed.error
    assert (failed.fetched, failed.added) == (0, 0)
    after = get_feed(state_db, "f")
    assert after.last_error == failed.error
    assert (after.etag, after.cursor, after.last_ok_at) == (before.etag, before.cursor, before.last_ok_at)
    assert len(values(state_db, "f")) == 3 and indicator_count(state_db) == 3
    assert [r.status for r in feed_runs(state_db, "f")] == [FeedRunStatus.FAILED, FeedRunStatus.OK]


def test_redirects_are_not_followed_unless_the_client_says_so(state_db: StateDB, peer: HttpPeer,
                                                              client: httpx.Client) -> None:
    target = peer.serve("/real.json", stix_bundle(*indicators(2)), content_type=JSON)
    url = peer.serve("/moved.json", b"", status=302, headers={"Location": target})
    add_feed(state_db, "moved", "stix", url, actor=ACTOR)
    failed = pull(state_db, "moved", client, actor=ACTOR)
    assert failed.error == f"{url}: HTTP 302 Found (redirect to {target}, not followed)"
    with httpx.Client(follow_redirects=True) as following:
        assert pull(state_db, "moved", following, actor=ACTOR).added == 2


def test_a_feed_timing_out(state_db: StateDB, peer: HttpPeer, client: httpx.Client) -> None:
    url = peer.serve("/slow.json", stix_bundle(*indicators(2)), content_type=JSON, delay=1.5)
    add_feed(state_db, "slow", "stix", url, config={"timeout": 0.3}, actor=ACTOR)
    failed = pull(state_db, "slow", client, actor=ACTOR)
    assert failed.status is FeedRunStatus.FAILED
    assert failed.error == f"{url}: timed out after 0.3 s (ReadTimeout)"
    update_feed(state_db, "slow", config={"timeout": None}, actor=ACTOR)
    with httpx.Client(timeout=0.2) as impatient:
        failed = pull(state_db, "slow", impatient, actor=ACTOR)
    assert failed.error == f"{url}: timed out (ReadTimeout)"


def test_the_server_download_limit_applies(state_db: StateDB, peer: HttpPeer, client: httpx.Client) -> None:
    url = peer.serve("/big.json", stix_bundle(*indicators(3000)), content_type=JSON)
    add_feed(state_db, "big", "stix", url, actor=ACTOR)
    failed = pull(state_db, "big", client, actor=ACTOR, settings=IntelSettings(max_download_mb=1))
    assert failed.error and "over the limit of 1,048,576 bytes" in failed.error


# -- the scheduler -----------------------------------------------------------------------------


def test_pull_due(state_db: StateDB, peer: HttpPeer, client: httpx.Client) -> None:
    url = peer.serve("/list.txt", PLAIN, content_type="text/plain")
    add_feed(state_db, "hourly", "text", url, interval_minutes=60, actor=ACTOR)
    add_feed(state_db, "daily", "text", url, interval_minutes=1440, actor=ACTOR)
    add_feed(state_db, "off", "text", url, enabled=False, actor=ACTOR)
    assert get_feed(state_db, "off").next_pull_at is None

    assert [r.feed for r in pull_due(state_db, client, T0)] == ["daily", "hourly"]
    assert pull_due(state_db, client, T0 + timedelta(minutes=59)) == []
    hourly = get_feed(state_db, "hourly")
    assert hourly.last_pull_at == T0 and hourly.next_pull_at == T0 + timedelta(minutes=60)
    assert [r.feed for r in pull_due(state_db, client, T0 + timedelta(minutes=60))] == ["hourly"]
    assert [r.feed for r in pull_due(state_db, client, T0 + timedelta(days=1))] == ["daily", "hourly"]

    peer.serve("/list.txt", "down", status=503, content_type="text/plain")
    runs = pull_due(state_db, client, T0 + timedelta(days=2))
    assert [r.status for r in runs] == [FeedRunStatus.FAILED] * 2
    assert pull_due(state_db, client, T0 + timedelta(days=2, minutes=30)) == []
    with state_db.session() as session:
        assert session.scalar(select(func.count()).select_from(FeedRun)) == 7


def test_changing_the_source_starts_afresh(state_db: StateDB, peer: HttpPeer, client: httpx.Client) -> None:
    url = peer.serve("/a.json", stix_bundle(*indicators(2)), content_type=JSON, etag=True)
    add_feed(state_db, "s", "stix", url, actor=ACTOR)
    pull(state_db, "s", client, actor=ACTOR)
    assert get_feed(state_db, "s").etag
    other = peer.serve("/b.json", stix_bundle(*indicators(3)), content_type=JSON, etag=True)
    assert update_feed(state_db, "s", url=other, actor=ACTOR).etag is None
    assert pull(state_db, "s", client, actor=ACTOR).added == 1


def test_removing_a_feed_keeps_its_indicators(state_db: StateDB, peer: HttpPeer,
                                              client: httpx.Client) -> None:
    url = peer.serve("/a.json", stix_bundle(*indicators(2)), content_type=JSON)
    add_feed(state_db, "s", "stix", url, actor=ACTOR)
    pull(state_db, "s", client, actor=ACTOR)
    remove_feed(state_db, "s", actor=ACTOR)
    with state_db.session() as session:
        assert session.scalar(select(func.count()).select_from(FeedRun)) == 0
    assert len(values(state_db, "s")) == 2


def test_a_pull_overtaken_by_another_stores_nothing(state_db: StateDB, peer: HttpPeer,
                                                    client: httpx.Client,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    url = peer.serve("/a.json", stix_bundle(*indicators(2)), content_type=JSON, etag=True)
    add_feed(state_db, "s", "stix", url, actor=ACTOR)
    real_fetch = feeds.fetch

    def fetch_then_overtaken(*args: object, **kwargs: object) -> object:
        outcome = real_fetch(*args, **kwargs)  # type: ignore[arg-type]
        with state_db.session() as session:
            session.execute(update(Feed).where(Feed.name == "s").values(etag='"other"'))
        return outcome

    monkeypatch.setattr(feeds, "fetch", fetch_then_overtaken)
    run = pull(state_db, "s", client, actor=ACTOR)
    assert run.status is FeedRunStatus.FAILED
    assert run.error and "pulled by someone else meanwhile" in run.error
    view = get_feed(state_db, "s")
    assert (view.etag, view.last_error) == ('"other"', None)
    assert indicator_count(state_db) == 0


def test_pull_time_is_recorded(state_db: StateDB, peer: HttpPeer, client: httpx.Client) -> None:
    url = peer.serve("/a.json", stix_bundle(*indicators(1)), content_type=JSON)
    add_feed(state_db, "s", "stix", url, actor=ACTOR)
    started = datetime.now(UTC)
    run = pull(state_db, "s", client, actor=ACTOR)
    assert run.started_at >= started and run.finished_at and run.finished_at >= run.started_at
    assert get_feed(state_db, "s").last_ok_at == run.started_at
