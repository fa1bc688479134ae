"""Flat exports: plain lists, CSV, the Zeek intel file and the Wazuh CDB list, read back the
way their consumers read them."""

from __future__ import annotations

import csv
import io
import re

from intel.factories import NOW, view
from vigil.intel.exports.lists import CSV_FIELDS, ZEEK_FIELDS, cdb_keys, plain, to_csv, wazuh_cdb, zeek
from vigil.intel.exports.nets import parse
from vigil.intel.exports.registry import ExportOptions
from vigil.intel.types import TLP, IndicatorType, Observable, SourceView

WITHHELD = [view("ipv4", "203.0.113.1", tlp=TLP.RED), view("ipv4", "203.0.113.2", active=False),
            view("ipv4", "203.0.113.3", allowlisted="rfc5737"),
            view("domain", "revoked.example", revoked=True, active=False)]
PATTERN = view("stix-pattern", "[ipv4-addr:value = '192.0.2.9'] OR [domain-name:value = 'c2.example']",
               observables=(Observable(IndicatorType.IPV4, "192.0.2.9"),
                            Observable(IndicatorType.DOMAIN, "c2.example")))
COMPOUND = view("stix-pattern", "[a:b = 'c'] AND [d:e = 'f']", observables=())


# -- plain -----------------------------------------------------------------------------------


def test_plain_one_value_per_line() -> None:
    given_views = [view("domain", "b.example"), view("ipv4", "198.51.100.7"), view("domain", "a.example"),
                   view("cidr", "10.0.0.0/8"), view("ipv6", "2001:db8::1"), PATTERN, COMPOUND,
                   view("url", "http://evil.example/x\ny"), view("domain", "a.example"), *WITHHELD]
    out = plain(given_views, ExportOptions())
    assert out.content == ("192.0.2.9\n198.51.100.7\n2001:db8::1\n10.0.0.0/8\n"
                           "a.example\nb.example\nc2.example\n")
    assert out.count == 7 and out.skipped == 6
    assert "203.0.113" not in out.content and "revoked" not in out.content
    only4 = plain([view("ipv4", "198.51.100.7"), view("ipv4", "25.0.0.1"), view("ipv6", "2001:db8::1")],
                  ExportOptions(ip_versions=(4,)))
    assert only4.content == "25.0.0.1\n198.51.100.7\n"              # numeric order, not text order
    assert plain([], ExportOptions()).content == ""


# -- CSV -------------------------------------------------------------------------------------


def test_csv_rows_read_back_exactly() -> None:
    hostile = view("url", 'http://evil.example/a,"b";c\nd', labels=("phishing", "c2"),
                   sources=(SourceView("urlhaus", NOW, NOW), SourceView("misp", NOW, NOW)), tlp=None)
    given_views = [view("ipv4", "198.51.100.7"), hostile, PATTERN, COMPOUND, *WITHHELD]
    out = to_csv(given_views, ExportOptions())
    rows = list(csv.reader(io.StringIO(out.content, newline="")))
    assert tuple(rows[0]) == CSV_FIELDS
    assert [r[2] for r in rows[1:]] == ["198.51.100.7", hostile.value, PATTERN.value, COMPOUND.value]
    assert rows[2] == [hostile.id, "url", hostile.value, "80", "72.5", "", "2025-03-01T12:00:00Z",
                       "2025-03-01T12:00:00Z", "phishing;c2", "urlhaus;misp"]
    assert rows[1][5] == "green"
    assert (out.count, out.skipped) == (4, 4)
    assert "203.0.113" not in out.content


# -- Zeek ------------------------------------------------------------------------------------


def zeek_unescape(field: str) -> str:
    return re.sub(r"\\x([0-9a-f]{2})", lambda m: chr(int(m.group(1), 16)), field)


def zeek_items(text: str) -> list[list[str]]:
    lines = text.splitlines()
    assert lines[0] == "#fields\t" + "\t".join(ZEEK_FIELDS)
    items = [line.split("\t") for line in lines[1:]]
    assert all(len(item) == len(ZEEK_FIELDS) for item in items)
    return items


def test_zeek_types_and_fields() -> None:
    given_views = [
        view("ipv4", "198.51.100.7", name="Feodo C2"), view("cidr", "10.0.0.0/8"),
        view("ipv6", "2001:db8::1"), view("domain", "evil.example"),
        view("url", "https://evil.example/gate.php?id=1"), view("email", "Bob@evil.example"),
        view("md5", "D41D8CD98F00B204E9800998ECF8427E"), view("sha256", "e3b0c44298fc1c149afbf4c8996fb92427ae"
                                                           "41e4649b934ca495991b7852b855"),
        view("filename", "invoice.pdf.exe"), view("user-agent", "Mozilla/4.0 (compatible; Evil)"),
        view("ja3", "e7d705a3286e19ea42f587b344ee6865"), PATTERN, COMPOUND, *WITHHELD]
    out = zeek(given_views, ExportOptions(link="https://vigil.example/intel/{id}"))
    items = {(i[0], i[1]): i for i in zeek_items(out.content)}
    assert set(items) == {
        ("198.51.100.7", "Intel::ADDR"), ("10.0.0.0/8", "Intel::SUBNET"), ("2001:db8::1", "Intel::ADDR"),
        ("evil.example", "Intel::DOMAIN"), ("evil.example/gate.php?id=1", "Intel::URL"),
        ("bob@evil.example", "Intel::EMAIL"), ("d41d8cd98f00b204e9800998ecf8427e", "Intel::FILE_HASH"),
        ("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", "Intel::FILE_HASH"),
        ("invoice.pdf.exe", "Intel::FILE_NAME"), ("Mozilla/4.0 (compatible; Evil)", "Intel::SOFTWARE"),
        ("192.0.2.9", "Intel::ADDR"), ("c2.example", "Intel::DOMAIN")}
    feodo = items[("198.51.100.7", "Intel::ADDR")]
    assert feodo[2:] == ["vigil", "Feodo C2", f"https://vigil.example/intel/{given_views[0].id}"]
    assert items[("10.0.0.0/8", "Intel::SUBNET")][3] == "-"
    assert "1 skipped: ja3 cannot be expressed in a Zeek intel file" in out.notes
    assert (out.count, out.skipped) == (11, 6)


def test_zeek_escapes_what_would_break_a_line() -> None:
    odd = ["a\tb.exe", "line\nbreak.exe", "back\\slash.exe", "-", "(empty)", "ünï.exe", "\\x41.exe"]
    given_views = [view("filename", v, description="two\tcolumns\nand lines") for v in odd]
    out = zeek(given_views, ExportOptions(source="feed\\one"))
    items = zeek_items(out.content)
    assert sorted(zeek_unescape(i[0]) for i in items) == sorted(odd)
    assert all(i[0] not in ("-", "(empty)") for i in items)
    assert {zeek_unescape(i[2]) for i in items} == {"feed\\one"}
    assert {i[3] for i in items} == {"two columns and lines"}
    assert zeek([], ExportOptions()).content == "#fields\t" + "\t".join(ZEEK_FIELDS) + "\n"


# -- Wazuh CDB -------------------------------------------------------------------------------


def cdb_read(text: str) -> dict[str, str]:
    """Keys and values the way Wazuh splits them (a quoted key may hold ``:``)."""
    out: dict[str, str] = {}
    for line in text.splitlines():
        if line.startswith('"'):
            end = line.index('"', 1)
            key, rest = line[1:end], line[end + 1:]
            assert rest.startswith(":")
            value = rest[1:]
        else:
            key, _, value = line.partition(":")
            assert ":" not in key
        assert key not in out, f"duplicate key {key}"
        out[key] = value
    return out


def test_cdb_keys_on_octet_boundaries() -> None:
    def keys(text: str, limit: int = 65_536) -> list[str] | None:
        net = parse(text)
        assert net is not None
        return cdb_keys(net, limit)

    assert keys("10.0.0.0/8") == ["10."]
    assert keys("192.168.0.0/16") == ["192.168."]
    assert keys("172.16.19.0/24") == ["172.16.19."]
    assert keys("198.51.100.7") == ["198.51.100.7"]
    assert keys("172.16.0.0/12") == [f"172.{i}." for i in range(16, 32)]
    assert keys("10.0.0.0/7") == ["10.", "11."]
    assert keys("192.0.2.0/30") == ["192.0.2.0", "192.0.2.1", "192.0.2.2", "192.0.2.3"]
    assert keys("192.0.2.0/23") == ["192.0.2.", "192.0.3."]
    assert keys("2001:db8::/126") == ["2001:db8::", "2001:db8::1", "2001:db8::2", "2001:db8::3"]
    assert keys("2001:db8::/64") is None
    assert keys("10.0.0.0/12", limit=8) is None


def test_wazuh_cdb_list() -> None:
    given_views = [view("ipv4", "198.51.100.7"), view("cidr", "172.16.0.0/12"), view("cidr", "10.0.0.0/8"),
                   view("cidr", "10.1.0.0/16"), view("ipv6", "2001:db8::1"), view("cidr", "2001:db8::/64"),
                   view("domain", "evil.example"), view("url", "http://evil.example/a:b"),
                   view("md5", "d41d8cd98f00b204e9800998ecf8427e"), view("user-agent", 'say "hi"'),
                   view("filename", "a\nb.exe"), PATTERN, COMPOUND, *WITHHELD]
    out = wazuh_cdb(given_views, ExportOptions())
    read = cdb_read(out.content)
    assert read["198.51.100.7"] == "ipv4" and read["10."] == "cidr" and read["10.1."] == "cidr"
    assert [k for k in read if k.startswith("172.")] == [f"172.{i}." for i in range(16, 32)]
    assert read["2001:db8::1"] == "ipv6" and '"2001:db8::1":ipv6' in out.content.splitlines()
    assert read["http://evil.example/a:b"] == "url" and read["evil.example"] == "domain"
    assert read["192.0.2.9"] == "ipv4" and read["c2.example"] == "domain"
    assert "1 skipped: network expands to more than 65536 CDB keys" in out.notes
    assert "2 skipped: key has a quote or a control character" in out.notes
    assert (out.count, out.skipped) == (9, 8)
    assert "203.0.113" not in out.content
