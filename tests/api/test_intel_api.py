"""``/api/v1/intel`` over a real ``vigil serve`` process: who may do what (a firewall's token
scoped to ``intel:export`` pulls its blocklist and nothing else), import → search → export
round trips, allowlists, feeds, and bad input (400 or 413, never a 500, nothing stored)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from helpers import free_port, server
from intel.factories import GREEN_MARKING as GREEN
from intel.factories import RED_MARKING as RED
from intel.factories import recent_indicator, stix_bundle
from vigil.api.intel import IndicatorOut, IndicatorPage
from vigil.app import Vigil
from vigil.core.auth import SYSTEM, Role
from vigil.core.config import load_settings
from vigil.core.timeutil import utcnow
from vigil.people import tokens

MAX_BODY = 65_536
FIREWALL = "firewall"
"""The key of the service token scoped to ``intel:export`` alone."""


@dataclass
class Api:
    client: httpx.Client
    tokens: dict[Role | str, str]
    folder: Path

    def call(self, method: str, path: str, who: Role | str | None = Role.ADMIN,
             headers: dict[str, str] | None = None, **kwargs: object) -> httpx.Response:
        auth = {"Authorization": f"Bearer {self.tokens[who]}"} if who else {}
        answer = self.client.request(method, f"/api/v1/intel{path}", headers={**auth, **(headers or {})},
                                     **kwargs)  # type: ignore[arg-type]
        assert answer.status_code < 500, answer.text
        return answer

    def ok(self, method: str, path: str, who: Role | str | None = Role.ADMIN,
           **kwargs: object) -> httpx.Response:
        answer = self.call(method, path, who, **kwargs)
        assert answer.status_code in (200, 201, 204), answer.text
        return answer

    def count(self) -> int:
        return int(self.ok("GET", "/stats").json()["indicators"])


def bundle(*items: tuple[str, str, str]) -> bytes:
    """A STIX 2.1 bundle of indicators given as (uuid suffix, pattern, marking)."""
    objects = [recent_indicator(f"indicator--{suffix}", pattern, marking, name=f"api {suffix[-4:]}",
                                confidence=90)
               for suffix, pattern, marking in items]
    return stix_bundle(*objects, bundle_id="bundle--7d1c2e3f-4a5b-4c6d-8e7f-9a0b1c2d3e4f")


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    folder = tmp_path_factory.mktemp("intel-api")
    data_dir = folder / "data"
    vigil = Vigil(load_settings(data_dir))
    issued: dict[Role | str, str] = {role: tokens.issue(vigil.db, SYSTEM, f"t-{role.value}", role=role).token
                                     for role in Role}
    issued[FIREWALL] = tokens.issue(vigil.db, SYSTEM, "edge-firewall", role=Role.SERVICE,
                                    scopes=["intel:export"]).token
    vigil.close()
    port = free_port()
    with server(data_dir, port, free_port(), VIGIL_INGEST__SYSLOG_ENABLED="false",
                VIGIL_SERVER__NOTIFICATIONS="false", VIGIL_INGEST__HTTP_MAX_BODY=str(MAX_BODY)), \
            httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) as client:
        yield Api(client, issued, folder)


def test_who_may_do_what(api: Api) -> None:
    body = b"37.120.233.17\n"
    for path, method, kwargs in (("/indicators", "GET", {}), ("/import", "POST", {"content": body}),
                                 ("/export/plain", "GET", {}), ("/feeds", "GET", {}),
                                 ("/allowlists", "GET", {}), ("/stats", "GET", {})):
        assert api.call(method, path, None, **kwargs).status_code == 401, path
        bad = api.client.request(method, f"/api/v1/intel{path}",
                                 headers={"Authorization": "Bearer vgl_not-a-token"}, **kwargs)
        assert bad.status_code == 401, path

    for role in (Role.AUDITOR, Role.RESPONDER):
        assert api.call("GET", "/indicators", role).status_code == 200
        assert api.call("GET", "/stats", role).status_code == 200
        assert api.call("GET", "/export/plain", role).status_code == 200
        assert api.call("POST", "/import", role, content=body).status_code == 403
        assert api.call("POST", "/indicators/x/revoke", role).status_code == 403
    for role in (Role.ANALYST, Role.SERVICE, Role.AUDITOR):
        assert api.call("POST", "/allowlists", role, json={"name": "n", "type": "string",
                                                           "list": ["a"]}).status_code == 403
        assert api.call("DELETE", "/allowlists/n", role).status_code == 403
        assert api.call("POST", "/feeds", role, json={"name": "f", "kind": "text",
                                                      "url": "/tmp/x"}).status_code == 403
        assert api.call("DELETE", "/feeds/f", role).status_code == 403
    assert api.call("POST", "/feeds/nope/pull", Role.ANALYST).status_code == 404
    assert api.call("POST", "/feeds/nope/pull", Role.AUDITOR).status_code == 403

    exported = api.call("GET", "/export/plain", FIREWALL)
    assert exported.status_code == 200
    assert exported.headers["content-type"].startswith("text/plain")
    assert exported.headers["content-disposition"] == 'attachment; filename="vigil.txt"'
    for method, path, kwargs in (("GET", "/indicators", {}), ("GET", "/search", {"params": {"value": "x"}}),
                                 ("POST", "/import", {"content": body}), ("GET", "/feeds", {}),
                                 ("GET", "/stats", {})):
        assert api.call(method, path, FIREWALL, **kwargs).status_code == 403, path
    analyst = api.call("POST", "/import", Role.ANALYST, content=body, params={"source": "analyst-notes"})
    assert analyst.status_code == 200 and analyst.json()["added"] == 1


def test_import_search_show_sight_revoke_and_export(api: Api) -> None:
    data = bundle(("5a1e0c3b-6a7d-4e2f-9b8c-1d2e3f4a5b01", "[ipv4-addr:value = '146.70.53.99']", GREEN),
                  ("5a1e0c3b-6a7d-4e2f-9b8c-1d2e3f4a5b02", "[domain-name:value = 'update-srv.top']", GREEN),
                  ("5a1e0c3b-6a7d-4e2f-9b8c-1d2e3f4a5b03", "[ipv4-addr:value = '146.70.53.100']", RED))
    answer = api.ok("POST", "/import", content=data, params={"source": "partner-cert"},
                    headers={"Content-Type": "application/json"}).json()
    assert answer == {"format": "stix", "source": "partner-cert", "read": 3, "skipped": 0, "added": 3,
                      "updated": 0, "unchanged": 0, "allowlisted": 0, "problem_count": 0, "problems": []}
    again = api.ok("POST", "/import", content=data, params={"source": "partner-cert", "format": "stix"})
    assert again.json()["unchanged"] == 3

    [found] = api.ok("GET", "/search", params={"value": "146[.]70.53.99"}).json()
    view = IndicatorOut.model_validate(found)
    assert (view.type, view.tlp, view.confidence, view.active) == ("ipv4", "green", 90, True)
    assert [s.name for s in view.sources] == ["partner-cert"]
    by_stix = api.ok("GET", "/indicators/indicator--5a1e0c3b-6a7d-4e2f-9b8c-1d2e3f4a5b01").json()
    assert by_stix == found
    assert api.ok("GET", f"/indicators/{view.id}").json()["stix_id"] == view.stix_id
    [parent] = api.ok("GET", "/search", params={"value": "cdn.update-srv.top"}).json()
    assert parent["value"] == "update-srv.top"

    page = IndicatorPage.model_validate(api.ok("GET", "/indicators", params={
        "source": "partner-cert", "type": ["ipv4", "domain"], "min_confidence": 80, "limit": 2}).json())
    assert len(page.items) == 2 and page.next_cursor
    rest = api.ok("GET", "/indicators", params={"source": "partner-cert", "after": page.next_cursor}).json()
    assert len(rest["items"]) == 1 and rest["next_cursor"] is None
    greens = api.ok("GET", "/indicators", params={"source": "partner-cert", "max_tlp": "green"}).json()
    assert len(greens["items"]) == 2

    stix = api.ok("GET", "/export/stix", params={"source": "partner-cert", "max_tlp": "red"})
    assert stix.headers["content-type"].startswith("application/stix+json")
    ids = {o["id"] for o in stix.json()["objects"] if o["type"] == "indicator"}
    assert ids == {"indicator--5a1e0c3b-6a7d-4e2f-9b8c-1d2e3f4a5b01",
                   "indicator--5a1e0c3b-6a7d-4e2f-9b8c-1d2e3f4a5b02"}, "TLP:RED never leaves"
    nft = api.ok("GET", "/export/nftables", FIREWALL, params={"name": "edge", "max_age_days": 30})
    assert nft.headers["content-disposition"] == 'attachment; filename="edge.nft"'
    assert "146.70.53.99" in nft.text and "146.70.53.100" not in nft.text
    assert int(nft.headers["x-vigil-count"]) >= 1
    plain = api.ok("GET", "/export/plain", FIREWALL, params={"type": "domain"}).text
    assert "update-srv.top" in plain.split() and "146.70.53.99" not in plain

    seen = api.ok("POST", f"/indicators/{view.id}/sightings", Role.ANALYST,
                  json={"kind": "false_positive", "note": "guest wifi"}).json()
    assert seen["sightings_false_positive"] == 1
    revoked = api.ok("POST", f"/indicators/{view.id}/revoke", Role.ANALYST, json={"reason": "sinkholed"})
    assert (revoked.json()["revoked"], revoked.json()["active"]) == (True, False)
    assert "146.70.53.99" not in api.ok("GET", "/export/plain", FIREWALL).text
    assert api.ok("POST", f"/indicators/{view.id}/revoke").json()["revoked"] is True


def test_csv_and_plain_list_imports(api: Api) -> None:
    day = utcnow().strftime("%Y-%m-%d")
    feodo = (f"first_seen_utc,dst_ip,dst_port,c2_status,last_online,malware\n"
             f"{day} 10:00:00,103.75.201.4,443,online,{day},Dridex\n").encode()
    answer = api.ok("POST", "/import", content=feodo, params={"preset": "feodo", "source": "feodo"},
                    headers={"Content-Type": "text/csv"}).json()
    assert (answer["format"], answer["added"]) == ("csv", 1)
    [found] = api.ok("GET", "/search", params={"value": "103.75.201.4", "type": "ipv4"}).json()
    assert found["malware"] == ["Dridex"]
    listed = api.ok("POST", "/import", content=b"# ours\n194.26.192.64/27\n203.0.113.80\n",
                    headers={"Content-Type": "text/plain"}).json()
    assert (listed["format"], listed["added"], listed["allowlisted"], listed["source"]) == (
        "text", 2, 1, "api:t-admin")


def test_bad_input_is_400_and_stores_nothing(api: Api) -> None:
    before = api.count()
    for content, params, fragment in (
            (b"<!DOCTYPE html><html><body>Login</body></html>", {}, "HTML"),
            (b"185.100.87.202\n", {"format": "stix"}, "not JSON"),
            (b'{"type": "bundle", "objects": 5}', {}, "not a list"),
            (b"", {}, "empty"),
            (b"a,b\n1,2\n", {"format": "csv"}, "preset"),
            (b"a,b\n1,2\n", {"format": "csv", "preset": "nope"}, "unknown preset"),
            (b"a,b\n1,2\n", {"format": "csv", "preset": "feodo"}, "dst_ip"),
            (b"185.100.87.202\n", {"format": "yaml"}, "format"),
            (b"185.100.87.202\n", {"source": "a\x00b"}, "NUL")):
        answer = api.call("POST", "/import", content=content, params=params)
        assert answer.status_code == 400, (params, answer.text)
        assert fragment.lower() in answer.json()["detail"].lower(), answer.text
    too_big = api.call("POST", "/import", content=b"185.100.87.202\n" * (MAX_BODY // 10))
    assert too_big.status_code == 413
    assert api.count() == before

    for path, params in (("/indicators", {"limit": 0}), ("/indicators", {"limit": 1001}),
                         ("/indicators", {"type": "shoe"}), ("/indicators", {"max_tlp": "purple"}),
                         ("/search", {}), ("/search", {"value": ""}),
                         ("/export/plain", {"min_confidence": 101}), ("/export/plain", {"max_age_days": 0}),
                         ("/export/nftables", {"name": "no spaces"}),
                         ("/export/pdf", {}), ("/feeds/x/runs", {"limit": 0})):
        answer = api.call("GET", path, params=params)
        assert answer.status_code == 400, (path, params, answer.text)
    assert api.call("GET", "/indicators/no-such-thing").status_code == 404
    assert api.call("POST", "/indicators/no-such-thing/revoke").status_code == 404
    assert api.call("POST", "/indicators/x/sightings", json={"kind": "maybe"}).status_code == 400
    assert api.call("POST", "/indicators/x/sightings", json={"kind": "seen", "extra": 1}).status_code == 400
    assert api.call("POST", "/allowlists", json={"name": "x", "type": "glob", "list": []}).status_code == 400
    assert api.call("POST", "/allowlists", json={"name": "x", "type": "regex",
                                                 "list": ["(unclosed"]}).status_code == 400
    assert api.call("POST", "/feeds", json={"name": "f", "kind": "gopher", "url": "/x"}).status_code == 400
    assert api.call("POST", "/feeds", json={"name": "bad name!", "kind": "text", "url": "/x"}
                    ).status_code == 400
    assert api.call("POST", "/feeds", json={"name": "f", "kind": "csv", "url": "/x"}).status_code == 400
    assert api.call("POST", "/feeds", json={"name": "f", "kind": "taxii", "url": "/x"}).status_code == 400
    assert api.count() == before


def test_allowlists(api: Api) -> None:
    api.ok("POST", "/import", content=b"cdn-telemetry.xyz\n", params={"source": "allowlist-test"})
    builtin = api.ok("GET", "/allowlists", Role.AUDITOR).json()
    assert len(builtin) >= 2 and all(a["builtin"] and a["id"] is None for a in builtin)
    created = api.ok("POST", "/allowlists", json={
        "name": "Vendor telemetry", "type": "hostname", "version": 2, "list": ["cdn-telemetry.xyz"],
        "matching_attributes": ["domain", "hostname"], "description": "seen in every proxy log"})
    assert created.status_code == 201
    assert (created.json()["entries"], created.json()["version"]) == (1, "2")
    [found] = api.ok("GET", "/search", params={"value": "cdn-telemetry.xyz"}).json()
    assert found["allowlisted"] == "Vendor telemetry" and found["active"] is False
    assert "cdn-telemetry.xyz" not in api.ok("GET", "/export/plain", FIREWALL).text
    off = api.ok("PATCH", "/allowlists/Vendor telemetry", json={"enabled": False}).json()
    assert off["enabled"] is False
    assert "cdn-telemetry.xyz" in api.ok("GET", "/export/plain", FIREWALL).text
    name = builtin[0]["name"]
    assert api.call("PATCH", f"/allowlists/{name}", json={"enabled": False}).status_code == 409
    assert api.call("DELETE", f"/allowlists/{name}").status_code == 409
    assert api.ok("DELETE", "/allowlists/Vendor telemetry").status_code == 204
    assert api.call("DELETE", "/allowlists/Vendor telemetry").status_code == 404


def test_feeds(api: Api) -> None:
    listing = api.folder / "drop.txt"
    listing.write_text("; Spamhaus-style\n45.142.120.0/24 ; SBL1\n", encoding="utf-8")
    created = api.ok("POST", "/feeds", json={
        "name": "drop", "kind": "text", "url": str(listing), "config": {"preset": "spamhaus-drop"},
        "interval_minutes": 1440, "secret": "s3cret-value"})
    assert created.status_code == 201
    feed = created.json()
    assert (feed["has_secret"], feed["config"], feed["interval_minutes"]) == (
        True, {"preset": "spamhaus-drop"}, 1440)
    assert "s3cret-value" not in created.text
    assert api.call("POST", "/feeds", json={"name": "drop", "kind": "text", "url": str(listing)}
                    ).status_code == 409
    assert [f["name"] for f in api.ok("GET", "/feeds", Role.AUDITOR).json()] == ["drop"]

    run = api.ok("POST", "/feeds/drop/pull", Role.ANALYST).json()
    assert (run["status"], run["fetched"], run["added"], run["error"]) == ("ok", 1, 1, None)
    [found] = api.ok("GET", "/search", params={"value": "45.142.120.77"}).json()
    assert found["value"] == "45.142.120.0/24" and found["sources"][0]["name"] == "drop"
    assert api.ok("POST", "/feeds/drop/pull", params={"full": True}).json()["status"] == "ok"
    runs = api.ok("GET", "/feeds/drop/runs", params={"limit": 5}).json()
    assert [r["status"] for r in runs] == ["ok", "ok"]

    changed = api.ok("PATCH", "/feeds/drop", json={"interval_minutes": 60, "enabled": False}).json()
    assert (changed["interval_minutes"], changed["enabled"], changed["has_secret"]) == (60, False, True)
    assert api.ok("PATCH", "/feeds/drop", json={"secret": None}).json()["has_secret"] is False
    listing.unlink()
    failed = api.ok("POST", "/feeds/drop/pull").json()
    assert failed["status"] == "failed" and failed["error"]
    assert api.ok("GET", "/feeds/drop").json()["last_error"] == failed["error"]
    assert api.ok("DELETE", "/feeds/drop").status_code == 204
    assert api.call("GET", "/feeds/drop").status_code == 404
    assert api.ok("GET", "/search", params={"value": "45.142.120.77"}).json(), "indicators stay"
