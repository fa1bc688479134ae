"""Allowlists in the MISP warninglist format: parsing and its errors, every list kind,
``matching_attributes`` scoping, the built-in lists, and every real MISP warninglist shipped
with ``pymispwarninglists`` (each one parses; the known values hit the lists the reference
sheet names)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from importlib import resources
from importlib.resources.abc import Traversable
from typing import Any

import pytest

from vigil.core.errors import InputError
from vigil.intel.allowlist import (
    AllowlistSet,
    ListKind,
    Warninglist,
    builtin_lists,
    parse_warninglist,
)
from vigil.intel.types import IndicatorType

T = IndicatorType
MD5_EMPTY = "d41d8cd98f00b204e9800998ecf8427e"


def _list(kind: str, entries: list[str], **extra: Any) -> Warninglist:
    return parse_warninglist({"name": f"test {kind}", "version": 3, "description": "d", "type": kind,
                              "list": entries, **extra})


# Parsing

def test_parse_a_warninglist() -> None:
    found = parse_warninglist({"name": " Example ", "version": 20240101, "description": "Some hosts",
                               "type": "hostname", "list": ["evil-c2.ru", " ", "cdn.evil-c2.ru "],
                               "matching_attributes": ["domain", "hostname"]})
    assert found == Warninglist("Example", ListKind.HOSTNAME, ("evil-c2.ru", "cdn.evil-c2.ru"),
                                ("domain", "hostname"), "Some hosts", "20240101")
    bare = parse_warninglist({"name": "n", "type": "string", "list": []})
    assert (bare.matching_attributes, bare.description, bare.version) == ((), None, None)


@pytest.mark.parametrize(("data", "message"), [
    ([], "a warninglist is a JSON object"),
    ("evil-c2.ru", "a warninglist is a JSON object"),
    (None, "a warninglist is a JSON object"),
    ({}, "missing name, type, list"),
    ({"name": "n", "type": "string"}, "missing list"),
    ({"name": "n", "list": []}, "missing type"),
    ({"name": "", "type": "string", "list": []}, "name must be text"),
    ({"name": 7, "type": "string", "list": []}, "name must be text"),
    ({"name": "n", "type": "exact", "list": []}, "unknown warninglist type 'exact'"),
    ({"name": "n", "type": ["cidr"], "list": []}, "unknown warninglist type"),
    ({"name": "n", "type": "string", "list": "evil-c2.ru"}, "'list' must be a list of text values"),
    ({"name": "n", "type": "string", "list": {"a": 1}}, "'list' must be a list of text values"),
    ({"name": "n", "type": "string", "list": ["a", 5]}, "'list' must be a list of text values"),
    ({"name": "n", "type": "string", "list": [], "matching_attributes": "ip-dst"},
     "'matching_attributes' must be a list"),
    ({"name": "n", "type": "regex", "list": ["^ok$", "(unclosed"]},
     "invalid regular expression '\\(unclosed'"),
    ({"name": "n", "type": "regex", "list": ["/[z-a]/i"]}, "invalid regular expression"),
    ({"name": "n" * 201, "type": "string", "list": []},
     "name \\(200 characters\\) or version \\(40\\) is too long"),
    ({"name": "n", "version": "v" * 41, "type": "string", "list": []}, "is too long"),
])
def test_parse_errors(data: Any, message: str) -> None:
    with pytest.raises(InputError, match=message) as caught:
        parse_warninglist(data, origin="lists/bad.json")
    assert str(caught.value).startswith("lists/bad.json: ")


# Every kind

def test_string_lists_are_exact_and_case_insensitive() -> None:
    found = AllowlistSet([_list("string", ["Evil-C2.ru", MD5_EMPTY.upper(), "45.9.148.3"])])
    assert found.match(T.DOMAIN, "evil-c2.ru") == "test string"
    assert found.match(T.MD5, MD5_EMPTY) == "test string"
    assert found.match(T.IPV4, "45.9.148.3") == "test string"
    assert found.match(T.DOMAIN, "cdn.evil-c2.ru") is None
    assert found.match(T.DOMAIN, "evil-c2.ru.com") is None


def test_string_entries_that_are_networks_cover_their_addresses() -> None:
    found = AllowlistSet([_list("string", ["91.240.118.0/24", "2a03:2880::/32"])])
    assert found.match(T.IPV4, "91.240.118.77") == "test string"
    assert found.match(T.IPV6, "2a03:2880:f12f:83::1") == "test string"
    assert found.match(T.IPV4, "91.240.119.1") is None


def test_substring_lists() -> None:
    found = AllowlistSet([_list("substring", ["Mobiseclab", "docdelivery"])])
    assert found.match(T.DOMAIN, "akana.mobiseclab.org") == "test substring"
    assert found.match(T.URL, "https://portal.docdeliveryapp.com/x") == "test substring"
    assert found.match(T.DOMAIN, "evil-c2.ru") is None


def test_hostname_lists_cover_subdomains_and_hosts_of_urls_and_emails() -> None:
    found = AllowlistSet([_list("hostname", ["Evil-C2.ru.", "*.cdn-edge.net"])])
    for kind, value in [(T.DOMAIN, "evil-c2.ru"), (T.DOMAIN, "a.b.evil-c2.ru"),
                        (T.URL, "http://login.evil-c2.ru:8080/x?y=1"), (T.EMAIL, "billing@evil-c2.ru"),
                        (T.URL, "https://user:pw@evil-c2.ru/"), (T.DOMAIN, "img.cdn-edge.net"),
                        (T.DOMAIN, "cdn-edge.net")]:
        assert found.match(kind, value) == "test hostname", value
    for kind, value in [(T.DOMAIN, "notevil-c2.ru"), (T.DOMAIN, "evil-c2.ru.attacker.io"),
                        (T.URL, "http://attacker.io/evil-c2.ru"), (T.EMAIL, "evil-c2.ru@attacker.io"),
                        (T.IPV4, "45.9.148.3"), (T.FILENAME, "evil-c2.ru")]:
        assert found.match(kind, value) is None, value


def test_cidr_lists_cover_addresses_and_networks_inside() -> None:
    found = AllowlistSet([_list("cidr", ["91.240.118.0/24", "45.9.148.3", "2a03:2880::/32", "not a net",
                                         "91.240.116.5/23"])])
    covered = [(T.IPV4, "91.240.118.1"), (T.IPV4, "91.240.118.255"), (T.CIDR, "91.240.118.128/25"),
               (T.CIDR, "91.240.118.0/24"), (T.IPV4, "45.9.148.3"), (T.IPV6, "2a03:2880:f12f:83::1"),
               (T.CIDR, "2a03:2880:f000::/36"), (T.URL, "http://91.240.118.9/gate"),
               (T.URL, "http://[2a03:2880::5]:8080/"), (T.IPV4, "91.240.117.200")]
    for kind, value in covered:
        assert found.match(kind, value) == "test cidr", value
    outside = [(T.IPV4, "91.240.119.1"), (T.CIDR, "91.240.0.0/16"), (T.IPV4, "45.9.148.4"),
               (T.IPV6, "2a03:2881::1"), (T.URL, "http://45.9.148.4/"), (T.DOMAIN, "evil-c2.ru")]
    for kind, value in outside:
        assert found.match(kind, value) is None, value


def test_regex_lists_in_misp_slash_notation() -> None:
    entries = [r"/^(security|noc|abuse)\@.*\..*$/i", r"^update\d+\.", "/x-ray/g"]
    found = AllowlistSet([_list("regex", entries)])
    assert found.match(T.EMAIL, "Abuse@evil-c2.ru") == "test regex"
    assert found.match(T.EMAIL, "billing@evil-c2.ru") is None
    assert found.match(T.DOMAIN, "update12.evil-c2.ru") == "test regex"
    assert found.match(T.DOMAIN, "cdn.update12.evil-c2.ru") is None
    assert found.match(T.FILENAME, "X-Ray.exe") == "test regex"


def test_the_first_list_that_covers_a_value_is_named() -> None:
    found = AllowlistSet([_list("hostname", ["evil-c2.ru"]) , Warninglist("second", ListKind.STRING,
                                                                            ("evil-c2.ru",))])
    assert found.match(T.DOMAIN, "evil-c2.ru") in {"test hostname", "second"}
    assert AllowlistSet([]).match(T.DOMAIN, "evil-c2.ru") is None


# matching_attributes

def test_matching_attributes_scope_a_list() -> None:
    ips_only = _list("string", ["45.9.148.3", "evil-c2.ru"], matching_attributes=["ip-dst", "ip-src"])
    found = AllowlistSet([ips_only])
    assert found.match(T.IPV4, "45.9.148.3") == "test string"
    assert found.match(T.DOMAIN, "evil-c2.ru") is None
    assert ips_only.applies_to(T.CIDR) and ips_only.applies_to(T.IPV6)
    assert not ips_only.applies_to(T.URL)


@pytest.mark.parametrize(("attributes", "applies", "not_applies"), [
    (["domain"], [T.DOMAIN], [T.URL, T.IPV4, T.EMAIL]),
    (["hostname", "url"], [T.DOMAIN, T.URL], [T.EMAIL, T.MD5]),
    (["email-src"], [T.EMAIL], [T.DOMAIN]),
    (["md5", "filename|sha256"], [T.MD5, T.SHA256], [T.SHA1, T.FILENAME]),
    (["filename"], [T.FILENAME], [T.MD5]),
    (["ja3-fingerprint-md5"], [T.JA3], [T.MD5]),
    (["user-agent"], [T.USER_AGENT], [T.DOMAIN]),
    (["phone-number"], [], [T.IPV4, T.DOMAIN, T.STIX_PATTERN]),
    ([], list(IndicatorType), []),
])
def test_applies_to(attributes: list[str], applies: list[IndicatorType],
                    not_applies: list[IndicatorType]) -> None:
    warninglist = _list("string", [], matching_attributes=attributes)
    assert all(warninglist.applies_to(k) for k in applies)
    assert not any(warninglist.applies_to(k) for k in not_applies)


def test_a_list_scoped_elsewhere_does_not_hide_another_that_applies() -> None:
    found = AllowlistSet([_list("string", ["evil-c2.ru"], matching_attributes=["email-src"]),
                          Warninglist("domains", ListKind.STRING, ("evil-c2.ru",), ("domain",))])
    assert found.match(T.DOMAIN, "evil-c2.ru") == "domains"


# Built-in lists

def test_builtin_lists_cover_documentation_and_special_use_ranges() -> None:
    found = AllowlistSet(builtin_lists())
    for kind, value in [(T.IPV4, "198.51.100.7"), (T.IPV4, "192.0.2.1"), (T.IPV4, "203.0.113.200"),
                        (T.IPV4, "10.1.2.3"), (T.IPV4, "172.20.0.1"), (T.IPV4, "192.168.1.1"),
                        (T.IPV4, "127.0.0.1"), (T.IPV4, "169.254.1.1"), (T.IPV4, "100.64.3.3"),
                        (T.IPV4, "224.0.0.251"), (T.CIDR, "198.51.100.0/25"), (T.IPV6, "2001:db8::1"),
                        (T.IPV6, "::1"), (T.IPV6, "fe80::1"), (T.IPV6, "fd00::5"),
                        (T.URL, "http://192.0.2.10/x"), (T.URL, "http://[2001:db8::2]/")]:
        assert found.match(kind, value) == "Vigil: special-use and documentation networks", value
    for kind, value in [(T.IPV4, "8.8.8.8"), (T.IPV4, "45.9.148.3"), (T.CIDR, "91.240.118.0/24"),
                        (T.IPV6, "2a03:2880:f12f:83::1"), (T.CIDR, "198.51.0.0/16"),
                        (T.IPV4, "198.51.101.1")]:
        assert found.match(kind, value) is None, value


def test_builtin_lists_cover_reserved_names() -> None:
    found = AllowlistSet(builtin_lists())
    name = "Vigil: reserved and documentation names"
    for kind, value in [(T.DOMAIN, "example.com"), (T.DOMAIN, "www.example.com"),
                        (T.DOMAIN, "a.b.example.org"),
                        (T.DOMAIN, "evil.example"), (T.DOMAIN, "c2.test"), (T.DOMAIN, "db.localhost"),
                        (T.DOMAIN, "nas.home.arpa"), (T.URL, "https://login.example.net/x"),
                        (T.EMAIL, "user@example.com"), (T.DOMAIN, "printer.local")]:
        assert found.match(kind, value) == name, value
    for kind, value in [(T.DOMAIN, "evil-c2.ru"), (T.DOMAIN, "example.com.evil-c2.ru"),
                        (T.DOMAIN, "notexample.com"), (T.URL, "http://evil-c2.ru/example.com")]:
        assert found.match(kind, value) is None, value


def test_own_infrastructure() -> None:
    lists = builtin_lists(["185.220.101.0/24", " 46.4.12.9 ", "2a01:4f8:1c1c::/48", "vigil.acme-corp.io",
                           "siem.acme-corp.io"])
    names = [w.name for w in lists]
    assert "Vigil: own infrastructure (addresses)" in names and "Vigil: own infrastructure (names)" in names
    found = AllowlistSet(lists)
    assert found.match(T.IPV4, "185.220.101.17") == "Vigil: own infrastructure (addresses)"
    assert found.match(T.IPV4, "46.4.12.9") == "Vigil: own infrastructure (addresses)"
    assert found.match(T.IPV6, "2a01:4f8:1c1c::9") == "Vigil: own infrastructure (addresses)"
    assert found.match(T.URL, "https://vigil.acme-corp.io/api") == "Vigil: own infrastructure (names)"
    assert found.match(T.DOMAIN, "eu.siem.acme-corp.io") == "Vigil: own infrastructure (names)"
    assert found.match(T.DOMAIN, "acme-corp.io") is None
    assert found.match(T.IPV4, "46.4.12.10") is None
    assert [w.name for w in builtin_lists()] == names[:2]


# The real MISP warninglists

def _misp_lists() -> Iterator[Traversable]:
    root = resources.files("pymispwarninglists") / "data" / "misp-warninglists" / "lists"
    for folder in sorted(root.iterdir(), key=lambda f: f.name):
        if folder.is_dir():
            yield folder / "list.json"


@pytest.fixture(scope="module")
def misp_lists() -> list[Warninglist]:
    return [parse_warninglist(json.loads(path.read_text(encoding="utf-8")), origin=str(path))
            for path in _misp_lists()]


def test_every_misp_warninglist_parses(misp_lists: list[Warninglist]) -> None:
    assert len(misp_lists) == len(list(_misp_lists())) >= 100
    assert {w.kind for w in misp_lists} == set(ListKind)
    assert sum(len(w.entries) for w in misp_lists) > 1_000_000
    assert len({w.name for w in misp_lists}) == len(misp_lists)


BIG = 300_000
"""Lists above this many entries (Tranco and CrUX, a million each) are parsed above but left
out of the hit checks: building their index costs seconds and adds no case."""


@pytest.fixture(scope="module")
def per_type(misp_lists: list[Warninglist]) -> dict[IndicatorType, list[tuple[Warninglist, AllowlistSet]]]:
    kinds = (T.IPV4, T.DOMAIN, T.MD5, T.EMAIL)
    wanted = [w for w in misp_lists if len(w.entries) < BIG and any(w.applies_to(k) for k in kinds)]
    built = {w.name: AllowlistSet([w]) for w in wanted}
    return {kind: [(w, built[w.name]) for w in wanted if w.applies_to(kind)] for kind in kinds}


def _hits(per_type: dict[IndicatorType, list[tuple[Warninglist, AllowlistSet]]], kind: IndicatorType,
          value: str) -> list[str]:
    return [w.name for w, found in per_type[kind] if found.match(kind, value)]


def test_misp_public_dns(per_type: dict[IndicatorType, list[tuple[Warninglist, AllowlistSet]]]) -> None:
    hits = _hits(per_type, T.IPV4, "8.8.8.8")
    assert any("public dns" in h.lower() for h in hits), hits
    assert any("vpn" in h.lower() for h in hits), hits


def test_misp_private_ranges(per_type: dict[IndicatorType, list[tuple[Warninglist, AllowlistSet]]]) -> None:
    hits = _hits(per_type, T.IPV4, "10.1.2.3")
    assert any("RFC 1918" in h for h in hits), hits
    assert any("RFC 5735" in h for h in hits), hits
    assert any("RFC 5735" in h for h in _hits(per_type, T.IPV4, "198.51.100.7"))


def test_misp_top_sites(per_type: dict[IndicatorType, list[tuple[Warninglist, AllowlistSet]]]) -> None:
    hits = " | ".join(_hits(per_type, T.DOMAIN, "google.com")).lower()
    assert "top" in hits and any(name in hits for name in ("tranco", "majestic", "alexa", "cisco")), hits


def test_misp_empty_file_hash(per_type: dict[IndicatorType, list[tuple[Warninglist, AllowlistSet]]]) -> None:
    hits = _hits(per_type, T.MD5, MD5_EMPTY)
    assert any("empty" in h.lower() for h in hits), hits
    assert len(hits) >= 3, hits


def test_misp_regex_list(per_type: dict[IndicatorType, list[tuple[Warninglist, AllowlistSet]]]) -> None:
    assert _hits(per_type, T.EMAIL, "abuse@evil-c2.ru"), "the common contact e-mail regex list"
    assert not _hits(per_type, T.EMAIL, "x7.payments@evil-c2.ru")


def test_misp_lists_leave_malicious_values_alone(
        per_type: dict[IndicatorType, list[tuple[Warninglist, AllowlistSet]]]) -> None:
    assert _hits(per_type, T.IPV4, "45.9.148.3") == []
    assert _hits(per_type, T.DOMAIN, "evil-c2.ru") == []
    assert _hits(per_type, T.MD5, "5f2b7f9c1e0d4a3b8c6e2d1f0a9b8c7d") == []
