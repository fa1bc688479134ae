"""``vigil intel``: imports (STIX, plain list, CSV with a preset), search, show, list, exports,
allowlists, sightings, revocation, counts, feeds, retro-hunts and bad files (real processes)."""

from __future__ import annotations

import io
import json
import zipfile
from datetime import timedelta
from pathlib import Path

from helpers import Run, assert_user_error, free_port, ok, run_vigil, server
from intel.factories import GREEN_MARKING, RED_MARKING, recent_indicator, stix_bundle
from vigil.core.timeutil import utcnow

C2_ID = "indicator--6f0ab0a4-6c9e-4d3a-9a57-2b3a3f4e6b11"
DOMAIN_ID = "indicator--0d0c0f63-1c7e-4a52-8f0f-5b2a7e4c9d22"
SECRET_ID = "indicator--9b8e7a61-3d2c-4b1a-8e9f-0a1b2c3d4e33"


def _indicator(stix_id: str, pattern: str, marking: str, name: str) -> dict[str, object]:
    return recent_indicator(stix_id, pattern, marking, name=name, confidence=85,
                            indicator_types=["malicious-activity"])


def write_bundle(folder: Path) -> Path:
    """A STIX 2.1 bundle: a C2 address and a domain (TLP:GREEN), an address marked TLP:RED."""
    path = folder / "bundle.json"
    path.write_bytes(stix_bundle(
        _indicator(C2_ID, "[ipv4-addr:value = '45.9.148.3']", GREEN_MARKING, "QakBot C2"),
        _indicator(DOMAIN_ID, "[domain-name:value = 'evil-c2.ru']", GREEN_MARKING, "QakBot domain"),
        _indicator(SECRET_ID, "[ipv4-addr:value = '91.240.118.50']", RED_MARKING, "Partner-only C2"),
        bundle_id="bundle--3a2d1c0b-9e8f-4a7b-8c6d-5e4f3a2b1c00"))
    return path


def write_list(folder: Path) -> Path:
    path = folder / "blocklist.txt"
    path.write_text("# our own list\n185.220.101.45\nhxxp://bad-cdn[.]su/drop.exe\n"
                    "2a0e:97c0:3e0::/48\n192.0.2.9\n", encoding="utf-8")
    return path


def write_feodo(folder: Path) -> Path:
    day = utcnow().strftime("%Y-%m-%d")
    path = folder / "ipblocklist.csv"
    path.write_text("# Feodo Tracker\nfirst_seen_utc,dst_ip,dst_port,c2_status,last_online,malware\n"
                    f"{day} 08:00:00,62.182.84.61,443,online,{day},Emotet\n"
                    f"{day} 09:00:00,5.188.206.14,8080,online,{day},QakBot\n", encoding="utf-8")
    return path


def intel(data_dir: Path, *args: str, env: dict[str, str] | None = None) -> Run:
    return run_vigil(data_dir, "intel", *args, env=env)


def lines_json(text: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def stored(data_dir: Path) -> dict[str, object]:
    result: dict[str, object] = json.loads(ok(intel(data_dir, "stats", "--json")).out)
    return result


def test_import_search_show_list_and_export(data_dir: Path, tmp_path: Path) -> None:
    imported = ok(intel(data_dir, "import", str(write_bundle(tmp_path))))
    assert ("bundle.json (stix): 3 read, 3 added, 0 updated, 0 unchanged, 0 allowlisted, 0 skipped, "
            "0 problems") in imported.out
    assert "retro-hunt: no events stored yet" in imported.out
    again = ok(intel(data_dir, "import", str(write_bundle(tmp_path)), "--no-retro")).out
    assert "0 added" in again and "retro-hunt" not in again

    listed = ok(intel(data_dir, "import", str(write_list(tmp_path)))).out
    assert "blocklist.txt (text): 4 read, 4 added" in listed and "1 allowlisted" in listed
    feodo = ok(intel(data_dir, "import", str(write_feodo(tmp_path)), "--preset", "feodo",
                     "--source", "feodo")).out
    assert "ipblocklist.csv (csv): 2 read, 2 added" in feodo
    assert stored(data_dir)["indicators"] == 9

    [found] = lines_json(ok(intel(data_dir, "search", "45[.]9.148.3", "--json")).out)
    assert (found["value"], found["name"], found["tlp"], found["active"]) == (
        "45.9.148.3", "QakBot C2", "green", True)
    network = ok(intel(data_dir, "search", "2a0e:97c0:3e0::1")).out
    assert "2a0e:97c0:3e0::/48" in network
    assert "no indicator matches" in ok(intel(data_dir, "search", "8.8.4.4")).out

    shown = json.loads(ok(intel(data_dir, "show", C2_ID, "--json")).out)
    assert shown["stix_id"] == C2_ID and shown["confidence"] == 85
    assert [s["name"] for s in shown["sources"]] == ["bundle.json"]
    assert shown["observables"] == [{"type": "ipv4", "value": "45.9.148.3"}]
    table = ok(intel(data_dir, "show", str(found["id"]))).out
    assert "QakBot C2" in table and "sources" in table and "first seen" in table

    cidrs = lines_json(ok(intel(data_dir, "list", "--type", "cidr", "--json")).out)
    assert [c["value"] for c in cidrs] == ["2a0e:97c0:3e0::/48"]
    first = intel(data_dir, "list", "--limit", "4", "--json")
    assert len(lines_json(ok(first).out)) == 4 and "more: --after" in first.err
    cursor = first.err.split("--after", 1)[1].split()[0]
    rest = lines_json(ok(intel(data_dir, "list", "--after", cursor, "--json")).out)
    assert len(rest) == 5
    active = lines_json(ok(intel(data_dir, "list", "--active", "--json")).out)
    assert "192.0.2.9" not in {a["value"] for a in active} and len(active) == 8
    by_source = lines_json(ok(intel(data_dir, "list", "--source", "feodo", "--json")).out)
    assert {s["value"] for s in by_source} == {"62.182.84.61", "5.188.206.14"}

    nft = ok(intel(data_dir, "export", "nftables"))
    assert "table inet vigil" in nft.out and "45.9.148.3" in nft.out and "62.182.84.61" in nft.out
    assert "91.240.118.50" not in nft.out, "TLP:RED never leaves"
    assert "192.0.2.9" not in nft.out, "allowlisted values never leave"
    assert "indicators exported as nftables" in nft.err

    target = tmp_path / "out.stix.json"
    written = ok(intel(data_dir, "export", "stix", "-o", str(target), "--min-confidence", "80",
                       "--max-tlp", "red"))
    assert f"2 indicators exported as stix, 0 skipped: {target}" in written.out
    bundle = json.loads(target.read_text())
    ids = {o["id"] for o in bundle["objects"] if o["type"] == "indicator"}
    assert ids == {C2_ID, DOMAIN_ID}

    plain = ok(intel(data_dir, "export", "plain", "--type", "ipv4", "--name", "edge")).out
    assert set(plain.split()) >= {"45.9.148.3", "185.220.101.45", "62.182.84.61"}
    assert "evil-c2.ru" not in plain
    misp = tmp_path / "feed.zip"
    ok(intel(data_dir, "export", "misp", "-o", str(misp), "--max-age-days", "30"))
    with zipfile.ZipFile(io.BytesIO(misp.read_bytes())) as archive:
        names = archive.namelist()
        assert "manifest.json" in names and "hashes.csv" in names
        [event_file] = [n for n in names if n not in ("manifest.json", "hashes.csv")]
        values = {a["value"] for a in json.loads(archive.read(event_file))["Event"]["Attribute"]}
    assert "45.9.148.3" in values and "91.240.118.50" not in values
    assert_user_error(intel(data_dir, "export", "pdf"), "unknown export format 'pdf'", "nftables")


def write_warninglist(folder: Path) -> Path:
    path = folder / "partners.json"
    path.write_text(json.dumps({
        "name": "Partner infrastructure", "version": 3, "type": "hostname",
        "description": "Domains of partners that feeds keep listing by mistake",
        "matching_attributes": ["domain", "hostname", "url"], "list": ["evil-c2.ru"]}), encoding="utf-8")
    return path


def test_allowlists_revoke_sight_and_stats(data_dir: Path, tmp_path: Path) -> None:
    ok(intel(data_dir, "import", str(write_bundle(tmp_path)), "--no-retro"))
    builtin = lines_json(ok(intel(data_dir, "allowlists", "list", "--json")).out)
    assert all(b["builtin"] for b in builtin) and len(builtin) == 2

    imported = ok(intel(data_dir, "allowlists", "import", str(write_warninglist(tmp_path)))).out
    assert "allowlist 'Partner infrastructure' imported: 1 hostname entries" in imported
    [domain] = lines_json(ok(intel(data_dir, "search", "www.evil-c2.ru", "--json")).out)
    assert (domain["allowlisted"], domain["active"]) == ("Partner infrastructure", False)
    assert "evil-c2.ru" not in ok(intel(data_dir, "export", "plain")).out
    assert "disabled" in ok(intel(data_dir, "allowlists", "disable", "Partner infrastructure")).out
    assert "evil-c2.ru" in ok(intel(data_dir, "export", "plain")).out
    ok(intel(data_dir, "allowlists", "enable", "Partner infrastructure"))
    table = ok(intel(data_dir, "allowlists", "list")).out
    assert "Partner infrastructure" in table and "domain, hostname, url" in table
    ok(intel(data_dir, "allowlists", "remove", "Partner infrastructure"))
    assert "evil-c2.ru" in ok(intel(data_dir, "export", "plain")).out
    assert_user_error(intel(data_dir, "allowlists", "remove", "Partner infrastructure"), "no allowlist")
    bad = tmp_path / "bad.json"
    bad.write_text('{"name": "x", "type": "glob", "list": []}')
    assert_user_error(intel(data_dir, "allowlists", "import", str(bad)), "unknown warninglist type")

    sighted = ok(intel(data_dir, "sight", C2_ID, "--kind", "false_positive", "--note", "our proxy")).out
    assert "false_positive recorded" in sighted
    view = json.loads(ok(intel(data_dir, "show", C2_ID, "--json")).out)
    assert view["sightings_false_positive"] == 1
    ok(intel(data_dir, "sight", C2_ID, "--kind", "seen"))
    assert_user_error(intel(data_dir, "sight", C2_ID, "--kind", "maybe"), "--kind must be one of")

    assert "revoked" in ok(intel(data_dir, "revoke", C2_ID, "--reason", "sinkholed")).out
    view = json.loads(ok(intel(data_dir, "show", C2_ID, "--json")).out)
    assert (view["revoked"], view["active"], view["score"]) == (True, False, 0)
    assert "45.9.148.3" not in ok(intel(data_dir, "export", "plain")).out
    assert_user_error(intel(data_dir, "revoke", "no-such-indicator"), "no indicator")

    stats = ok(intel(data_dir, "stats")).out
    assert "ipv4" in stats and "domain" in stats and "total" in stats and "0 feeds" in stats
    counts = stored(data_dir)
    assert counts["by_type"] == {"ipv4": 2, "domain": 1} and counts["allowlists"] == 2


def test_bad_files_store_nothing(data_dir: Path, tmp_path: Path) -> None:
    page = tmp_path / "feed.json"
    page.write_text("<!DOCTYPE html><html><body>Sign in to continue</body></html>")
    assert_user_error(intel(data_dir, "import", str(page)), "feed.json", "HTML")
    broken = tmp_path / "broken.json"
    broken.write_text('{"type": "bundle", "objects": [{"type": "indicator", ')
    assert_user_error(intel(data_dir, "import", str(broken), "--format", "stix"), "broken.json")
    csv_file = tmp_path / "wrong.csv"
    csv_file.write_text("a,b,c\n1,2,3\n")
    assert_user_error(intel(data_dir, "import", str(csv_file), "--preset", "feodo"), "wrong.csv")
    assert_user_error(intel(data_dir, "import", str(tmp_path / "missing.txt")), "no such file")
    assert_user_error(intel(data_dir, "import", str(page), "--format", "yaml"), "--format must be one of")
    assert stored(data_dir)["indicators"] == 0

    mixed = intel(data_dir, "import", str(page), str(write_list(tmp_path)))
    assert mixed.code == 2 and "Traceback" not in mixed.err
    assert "blocklist.txt (text): 4 read, 4 added" in mixed.out
    assert stored(data_dir)["indicators"] == 4


def test_retro_hunt_after_an_import(data_dir: Path, tmp_path: Path) -> None:
    stamp = (utcnow() - timedelta(hours=2)).isoformat().replace("+00:00", "Z")
    events = tmp_path / "sysmon.json"
    events.write_text(json.dumps({
        "@timestamp": stamp, "EventID": 3, "Channel": "Microsoft-Windows-Sysmon/Operational",
        "Hostname": "WKS-7", "Image": r"C:\Users\bob\AppData\Local\Temp\upd.exe",
        "SourceIp": "10.1.2.3", "DestinationIp": "45.9.148.3", "DestinationPort": 443}) + "\n")
    ok(run_vigil(data_dir, "ingest", str(events), "-q"))
    imported = ok(intel(data_dir, "import", str(write_bundle(tmp_path)))).out
    assert "retro-hunt: 1 hits on 1 indicators, 1 alerts created" in imported
    alerts = lines_json(ok(run_vigil(data_dir, "alerts", "list", "-o", "json")).out)
    [alert] = alerts
    assert alert["rule_title"] == "Threat intel match: ipv4 45.9.148.3 (QakBot C2)"
    assert "intel.retro" in alert["tags"] and alert["host"] == "WKS-7"
    again = ok(intel(data_dir, "retro", "--all", "--days", "30")).out
    assert "1 hits" in again and "0 alerts created" in again


def test_import_while_the_server_holds_the_event_store(data_dir: Path, tmp_path: Path) -> None:
    with server(data_dir, free_port(), free_port(), VIGIL_INGEST__SYSLOG_ENABLED="false",
                VIGIL_SERVER__NOTIFICATIONS="false"):
        imported = ok(intel(data_dir, "import", str(write_list(tmp_path))))
        assert "4 added" in imported.out
        assert "in use by the running server, which runs the retro-hunt" in imported.out
        assert_user_error(intel(data_dir, "retro"), "in use by another Vigil process")


def test_feeds_from_a_local_file(data_dir: Path, tmp_path: Path) -> None:
    source = write_feodo(tmp_path)
    env = {"FEED_KEY": "not-shown-anywhere"}
    added = ok(intel(data_dir, "feeds", "add", "feodo", "csv", str(source), "--preset", "feodo",
                     "--interval", "30", "--confidence", "70"))
    assert "feed feodo added (csv, every 30 min)" in added.out
    ok(intel(data_dir, "feeds", "add", "spare", "text", str(tmp_path / "later.txt"), "--disabled",
             "--secret-env", "FEED_KEY", env=env))
    assert_user_error(intel(data_dir, "feeds", "add", "feodo", "csv", str(source), "--preset", "feodo"),
                      "exists already")
    assert_user_error(intel(data_dir, "feeds", "add", "x", "gopher", str(source)), "unknown feed kind")
    assert_user_error(intel(data_dir, "feeds", "add", "y", "text", str(source), "--secret-env", "NOPE"),
                      "NOPE is not set")

    feeds = lines_json(ok(intel(data_dir, "feeds", "list", "--json")).out)
    assert [(f["name"], f["enabled"], f["has_secret"]) for f in feeds] == [
        ("feodo", True, False), ("spare", False, True)]
    assert "not-shown-anywhere" not in json.dumps(feeds)

    pulled = ok(intel(data_dir, "feeds", "pull"))
    assert "feed feodo: ok, 2 fetched, 2 added, 0 updated, 0 problems" in pulled.out
    [found] = lines_json(ok(intel(data_dir, "search", "5.188.206.14", "--json")).out)
    assert found["confidence"] == 70 and found["malware"] == ["QakBot"]
    again = ok(intel(data_dir, "feeds", "pull", "feodo")).out
    assert "feed feodo: unchanged" in again

    missing = intel(data_dir, "feeds", "pull", "spare")
    assert missing.code == 1 and "feed spare: failed" in missing.err
    runs = lines_json(ok(intel(data_dir, "feeds", "runs", "feodo", "--json")).out)
    assert [r["status"] for r in runs] == ["unchanged", "ok"]
    shown = ok(intel(data_dir, "feeds", "show", "spare")).out
    assert "last_error" in shown and "failed" in shown
    ok(intel(data_dir, "feeds", "remove", "spare"))
    assert_user_error(intel(data_dir, "feeds", "show", "spare"), "no feed named")
    assert "1 feeds" in ok(intel(data_dir, "stats")).out
