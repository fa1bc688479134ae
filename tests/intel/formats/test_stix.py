"""STIX 2.1 import and export: patterns, TLP, ATT&CK and malware context, bad input, round trips."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest
import stix2
from hypothesis import given, settings
from hypothesis import strategies as st
from stix2patterns.v21.pattern import Pattern
from stix2patterns.validator import run_validator

from intel.factories import stix_bundle, stix_indicator, stix_time, stored
from vigil.core.errors import InputError, ParseError
from vigil.intel.formats import stix_patterns, tlp
from vigil.intel.formats.stix import parse_bundle, parse_objects, to_bundle
from vigil.intel.normalize import canonical, indicator_id
from vigil.intel.types import TLP, IndicatorInput, IndicatorType, IndicatorView, Observable

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "stix"
T0 = datetime(2026, 1, 5, 10, 0, tzinfo=UTC)
IP_ID = "indicator--a773e2c5-c764-4da8-ab54-2fd3f417766d"
DOMAIN_ID = "indicator--aec13f53-9615-43c7-81d6-2a45ada79bd1"
URL_ID = "indicator--40021ea3-0804-49e9-8e7a-5b4def83abf9"
SHA256_ID = "indicator--765a6453-31e6-4cde-988f-c028b8baaf98"
OR_ID = "indicator--51735e17-2d1c-4cfb-9cdb-37c07484c080"
AND_ID = "indicator--c19d4ea9-05eb-49a1-b972-180e301b9181"
YARA_ID = "indicator--5fc0e605-41c2-47e2-918d-0c1b1681eaaf"
SHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"


def feed() -> bytes:
    return (FIXTURES / "feed.json").read_bytes()


def by_id(items: list[IndicatorInput]) -> dict[str | None, IndicatorInput]:
    return {item.stix_id: item for item in items}


def indicator(pattern: str, number: int = 1, /, **fields: object) -> dict[str, object]:
    stix_id = f"indicator--00000000-0000-4000-8000-{number:012d}"
    return stix_indicator(stix_id, pattern, stix_time(T0), **fields)


def one(pattern: str, /, **fields: object) -> IndicatorInput:
    parsed = parse_bundle(stix_bundle(indicator(pattern, **fields)), "test")
    assert parsed.problems == []
    assert len(parsed.indicators) == 1
    return parsed.indicators[0]


def problems(pattern: str, /, **fields: object) -> list[str]:
    parsed = parse_bundle(stix_bundle(indicator(pattern, **fields)), "test")
    assert parsed.indicators == []
    return parsed.problems


def view(item: IndicatorInput, **changes: object) -> IndicatorView:
    """The view the store would give back of an imported indicator."""
    return stored(item, seen=T0, **changes)


def new_view(kind: IndicatorType, value: str, **changes: object) -> IndicatorView:
    """A view of an indicator that did not come from STIX."""
    kind, value = canonical(kind, value)
    return view(IndicatorInput(type=kind, value=value, source="test",
                               observables=(Observable(kind, value),)), **changes)


def objects_of(data: bytes, kind: str) -> list[dict[str, object]]:
    return [item for item in orjson.loads(data)["objects"] if item["type"] == kind]


# --- the fixture feed --------------------------------------------------------------------------


def test_feed_imports_indicators_and_reports_bad_ones():
    parsed = parse_bundle(feed(), "example-cert")

    assert len(parsed.indicators) == 7
    assert {item.source for item in parsed.indicators} == {"example-cert"}
    assert len(parsed.problems) == 2
    assert parsed.problems[0].startswith("indicator--6bda99cf-380f-4a0f-ab7b-eeba719bf1d5: invalid pattern: ")
    assert parsed.problems[1] == ("indicator--bf1becb4-2c22-4d10-9a16-a54e09e99b74: "
                                  "indicator without valid_from (STIX requires it)")
    # identity, malware, attack-pattern, the `uses` relationship and the report
    assert parsed.skipped == 5


def test_feed_values_are_canonical():
    items = by_id(parse_bundle(feed(), "feed").indicators)

    found = {stix_id: (item.type, item.value) for stix_id, item in items.items()}
    assert found[IP_ID] == (IndicatorType.IPV4, "198.51.100.23")
    assert found[DOMAIN_ID] == (IndicatorType.DOMAIN, "update-check.example.com")
    assert found[URL_ID] == (IndicatorType.URL, "http://login.example.net/verify?id=7")
    assert found[SHA256_ID] == (IndicatorType.SHA256, SHA256)
    assert items[SHA256_ID].observables == (Observable(IndicatorType.SHA256, SHA256),)


def test_feed_keeps_what_a_round_trip_needs():
    item = by_id(parse_bundle(feed(), "feed").indicators)[IP_ID]

    assert item.stix_id == item.reference == IP_ID
    assert item.pattern == "[ipv4-addr:value = '198.51.100.23']"
    assert item.name == "C2 server"
    assert item.description == "Command and control of the Emotet botnet"
    assert item.confidence == 80
    assert item.labels == ("c2",)
    assert item.valid_from == T0
    assert item.valid_until == datetime(2026, 4, 5, 10, 0, tzinfo=UTC)
    assert item.first_seen == T0
    assert item.last_seen == datetime(2026, 1, 6, 11, 30, tzinfo=UTC)
    assert item.revoked is False
    assert item.markings == (tlp.TLP2_IDS[TLP.AMBER_STRICT],)
    kept = orjson.loads(item.stix or "")
    assert kept["id"] == IP_ID
    assert kept["kill_chain_phases"] == [{"kill_chain_name": "mitre-attack",
                                          "phase_name": "command-and-control"}]


def test_feed_tlp_levels():
    items = by_id(parse_bundle(feed(), "feed").indicators)

    assert items[IP_ID].tlp is TLP.AMBER_STRICT  # TLP 2.0 marking object in the bundle
    assert items[DOMAIN_ID].tlp is TLP.GREEN  # TLP 1.0 id, predefined (no object needed)
    assert items[URL_ID].tlp is TLP.RED  # a local TLP 1.0-style marking (definition_type tlp)
    assert items[SHA256_ID].tlp is TLP.CLEAR  # TLP 1.0 WHITE
    assert items[OR_ID].tlp is TLP.AMBER
    assert items[AND_ID].tlp is None
    # a statement marking is kept as a marking but is no TLP level
    assert len(items[DOMAIN_ID].markings) == 2


def test_feed_attack_and_malware_context():
    items = by_id(parse_bundle(feed(), "feed").indicators)

    assert items[IP_ID].malware == ("Emotet",)
    assert items[IP_ID].attack == ("T1071.001",)  # `indicates` an attack-pattern
    assert items[DOMAIN_ID].attack == ("T1566.002",)  # label attack.t1566.002
    assert items[SHA256_ID].attack == ("T1204.002",)  # its own external reference
    assert items[URL_ID].attack == () and items[URL_ID].malware == ()


def test_feed_compound_and_foreign_patterns():
    items = by_id(parse_bundle(feed(), "feed").indicators)

    either = items[OR_ID]
    assert either.type is IndicatorType.STIX_PATTERN
    assert either.value == either.pattern
    assert either.observables == (Observable(IndicatorType.IPV4, "203.0.113.5"),
                                  Observable(IndicatorType.DOMAIN, "cdn.example.org"),
                                  Observable(IndicatorType.DOMAIN, "files.example.org"))
    assert items[AND_ID].type is IndicatorType.STIX_PATTERN
    assert items[AND_ID].observables == ()
    yara = items[YARA_ID]
    assert yara.type is IndicatorType.STIX_PATTERN
    assert yara.value == yara.pattern == 'rule demo { strings: $a = "evil" condition: $a }'
    assert yara.observables == ()


# --- patterns ----------------------------------------------------------------------------------

MD5 = "d41d8cd98f00b204e9800998ecf8427e"
SHA1 = "da39a3ee5e6b4b0d3255bfef95601890afd80709"
SHA512 = "cf83e1357eefb8bdf1542850d66d8007d620e4050b5715dc83f4a921d36ce9ce" \
         "47d0d13c5d85f2b0ff8318d2877eec2f63b931bd47417a81a538327af927da3e"
JA3 = "e7d705a3286e19ea42f587b344ee6865"


@pytest.mark.parametrize(("pattern", "kind", "value"), [
    ("[ipv4-addr:value = '198.51.100.7']", IndicatorType.IPV4, "198.51.100.7"),
    ("[ipv4-addr:value = '198.51.100.0/24']", IndicatorType.CIDR, "198.51.100.0/24"),
    ("[ipv4-addr:value = '198.51.100.7/32']", IndicatorType.IPV4, "198.51.100.7"),
    ("[ipv4-addr:value ISSUBSET '10.0.0.0/8']", IndicatorType.CIDR, "10.0.0.0/8"),
    ("[ipv6-addr:value = '2001:DB8:0:0::1']", IndicatorType.IPV6, "2001:db8::1"),
    ("[ipv6-addr:value ISSUBSET '2001:db8::/32']", IndicatorType.CIDR, "2001:db8::/32"),
    ("[domain-name:value = 'Evil.Example.']", IndicatorType.DOMAIN, "evil.example"),
    ("[url:value = 'HTTPS://Evil.Example:443/a?b=c']", IndicatorType.URL, "https://evil.example/a?b=c"),
    ("[email-addr:value = 'phish@Evil.Example']", IndicatorType.EMAIL, "phish@evil.example"),
    ("[email-message:from_ref.value = 'phish@evil.example']", IndicatorType.EMAIL, "phish@evil.example"),
    (f"[file:hashes.MD5 = '{MD5.upper()}']", IndicatorType.MD5, MD5),
    (f"[file:hashes.'MD5' = '{MD5}']", IndicatorType.MD5, MD5),
    (f"[file:hashes.'SHA-1' = '{SHA1}']", IndicatorType.SHA1, SHA1),
    (f"[file:hashes.SHA1 = '{SHA1}']", IndicatorType.SHA1, SHA1),
    (f"[file:hashes.'SHA-256' = '{SHA256}']", IndicatorType.SHA256, SHA256),
    (f"[file:hashes.SHA256 = '{SHA256}']", IndicatorType.SHA256, SHA256),
    (f"[file:hashes.'SHA-512' = '{SHA512}']", IndicatorType.SHA512, SHA512),
    (f"[file:hashes.SHA512 = '{SHA512}']", IndicatorType.SHA512, SHA512),
    ("[file:name = 'invoice.pdf.exe']", IndicatorType.FILENAME, "invoice.pdf.exe"),
    ("[network-traffic:extensions.'http-request-ext'.request_header.'User-Agent' = 'Evil\\'s agent/1.0']",
     IndicatorType.USER_AGENT, "Evil's agent/1.0"),
    (f"[x-ja3:value = '{JA3.upper()}']", IndicatorType.JA3, JA3),
    (f"[network-traffic:extensions.'x-ja3'.hash = '{JA3}']", IndicatorType.JA3, JA3),
    ("[ domain-name : value  =  'spaced.example' ]", IndicatorType.DOMAIN, "spaced.example"),
    ("[domain-name:value IN ('only.example')]", IndicatorType.DOMAIN, "only.example"),
    ("([domain-name:value = 'paren.example'])", IndicatorType.DOMAIN, "paren.example"),
])
def test_simple_patterns(pattern, kind, value):
    item = one(pattern)

    assert (item.type, item.value) == (kind, value)
    assert item.observables == (Observable(kind, value),)
    assert item.pattern == pattern
    assert run_validator(pattern, stix_version="2.1") == []


@pytest.mark.parametrize("pattern", [
    "[ipv4-addr:value = '198.51.100.7']",
    f"[file:hashes.'SHA-256' = '{SHA256}']",
    "[network-traffic:extensions.'http-request-ext'.request_header.'User-Agent' = 'a \\\\ b \\'c\\'']",
    "[url:value = 'http://evil.example/a?b=c']",
    "[domain-name:value = 'a.example'] OR [domain-name:value = 'b.example' OR url:value = 'http://c.example/']",
    f"[file:hashes.MD5 = '{MD5}' OR file:hashes.SHA256 = '{SHA256}']",
    "[ipv4-addr:value IN ('198.51.100.1','198.51.100.2')]OR[domain-name:value IN ( 'x.example' )]",
])
def test_the_fast_reading_agrees_with_the_parser(pattern):
    assert stix_patterns._fast(pattern) is not None
    assert stix_patterns._fast(pattern) == stix_patterns._parse(pattern)


_PATHS = ["ipv4-addr:value", "domain-name:value", "url:value", "file:hashes.MD5", "file:hashes.'SHA-256'",
          "file:name", "network-traffic:extensions.'http-request-ext'.request_header.'User-Agent'"]
_GAPS = st.sampled_from(["", " ", "  ", "\n", "\t"])


@st.composite
def _disjunctions(draw: st.DrawFn) -> str:
    def literal() -> str:
        return stix_patterns.quote(draw(st.text(alphabet="ab.'\\ -/é", max_size=8)))

    def comparison() -> str:
        path = draw(st.sampled_from(_PATHS))
        if draw(st.booleans()):
            return f"{path}{draw(_GAPS)}={draw(_GAPS)}{literal()}"
        values = f"{draw(_GAPS)},{draw(_GAPS)}".join(literal() for _ in range(draw(st.integers(1, 3))))
        return f"{path} IN{draw(_GAPS)}({draw(_GAPS)}{values}{draw(_GAPS)})"

    def observation() -> str:
        inner = f" OR{draw(_GAPS)}".join(comparison() for _ in range(draw(st.integers(1, 3))))
        return f"[{draw(_GAPS)}{inner}{draw(_GAPS)}]"

    return f"{draw(_GAPS)}OR ".join(observation() for _ in range(draw(st.integers(1, 3))))


@settings(max_examples=200, deadline=None)
@given(_disjunctions())
def test_the_fast_reading_accepts_only_what_the_parser_accepts(pattern):
    fast = stix_patterns._fast(pattern)
    if fast is None:
        return
    tree = Pattern(pattern).visit(stix_patterns._Root())  # the grammar accepts it
    assert fast == stix_patterns._disjunction(tree)
    errors = run_validator(pattern, stix_version="2.1")
    if errors:  # a hash that is no hash is valid grammar; both readings refuse it
        assert all(error.endswith("hash") for error in errors)
        with pytest.raises(InputError):
            stix_patterns.analyse(pattern)


@pytest.mark.parametrize(("pattern", "observables"), [
    ("[domain-name:value = 'a.example'] OR [domain-name:value = 'b.example']",
     [(IndicatorType.DOMAIN, "a.example"), (IndicatorType.DOMAIN, "b.example")]),
    ("[domain-name:value = 'a.example' OR url:value = 'http://B.example/x']",
     [(IndicatorType.DOMAIN, "a.example"), (IndicatorType.URL, "http://b.example/x")]),
    ("[ipv4-addr:value IN ('198.51.100.1', '198.51.100.2')]",
     [(IndicatorType.IPV4, "198.51.100.1"), (IndicatorType.IPV4, "198.51.100.2")]),
    ("([ipv4-addr:value = '198.51.100.1'] OR ([ipv4-addr:value ISSUBSET '203.0.113.0/24']))",
     [(IndicatorType.IPV4, "198.51.100.1"), (IndicatorType.CIDR, "203.0.113.0/24")]),
    (f"[file:hashes.MD5 = '{MD5}' OR file:hashes.'SHA-256' = '{SHA256}']",
     [(IndicatorType.MD5, MD5), (IndicatorType.SHA256, SHA256)]),
    # a leg Vigil cannot match is left out; matching any other leg still matches the pattern
    ("[process:name = 'evil.exe'] OR [domain-name:value = 'c.example']",
     [(IndicatorType.DOMAIN, "c.example")]),
    # the same value twice is one observable, but still a pattern
    ("[domain-name:value = 'd.example'] OR [process:name = 'x.exe'] OR [domain-name:value = 'D.example']",
     [(IndicatorType.DOMAIN, "d.example")]),
])
def test_disjunctions_keep_every_value(pattern, observables):
    item = one(pattern)

    assert item.type is IndicatorType.STIX_PATTERN
    assert item.value == item.pattern == pattern
    assert [(o.type, o.value) for o in item.observables] == observables


@pytest.mark.parametrize("pattern", [
    "[domain-name:value = 'a.example' AND url:value = 'http://a.example/x']",
    "[domain-name:value = 'a.example'] AND [url:value = 'http://a.example/x']",
    "[domain-name:value = 'a.example'] FOLLOWEDBY [domain-name:value = 'b.example']",
    "[domain-name:value = 'a.example'] WITHIN 300 SECONDS",
    "[domain-name:value = 'a.example'] REPEATS 5 TIMES",
    "[domain-name:value = 'a.example'] START t'2026-01-01T00:00:00Z' STOP t'2026-02-01T00:00:00Z'",
    "([domain-name:value = 'a.example'] OR [domain-name:value = 'b.example']) AND [file:name = 'x.exe']",
    "[domain-name:value != 'a.example']",
    "[domain-name:value NOT IN ('a.example')]",
    "[domain-name:value LIKE '%.example']",
    "[domain-name:value MATCHES '^evil']",
    "[file:size > 1000]",
    "[process:name = 'evil.exe']",
])
def test_patterns_no_single_value_matches_have_no_observables(pattern):
    item = one(pattern)

    assert item.type is IndicatorType.STIX_PATTERN
    assert item.value == pattern
    assert item.observables == ()


@pytest.mark.parametrize("pattern_type", ["sigma", "yara", "snort", "suricata", "pcre"])
def test_other_pattern_languages_are_kept_as_patterns(pattern_type):
    rule = pattern_type in ("snort", "suricata")
    text = "alert tcp any any -> any 80 (msg:\"x\"; sid:1;)" if rule else "e.v.i.l"
    item = one(text, pattern_type=pattern_type)

    assert item.type is IndicatorType.STIX_PATTERN
    assert item.value == item.pattern == text
    assert item.observables == ()


@pytest.mark.parametrize(("pattern", "message"), [
    ("[ipv4-addr:value = 198.51.100.7]", "invalid pattern: "),
    ("ipv4-addr:value = '198.51.100.7'", "invalid pattern: "),
    ("[ipv4-addr:value = '198.51.100.7'", "invalid pattern: "),
    ("garbage", "invalid pattern: "),
    ("  ", "invalid pattern: empty"),
    ("[file:hashes.'SHA-256' = 'abc' AND file:name = 'x']", "invalid pattern: "),
    ("[domain-name:value = 'a.example'] WITHIN 5 SECONDS WITHIN 6 SECONDS", "invalid pattern: "),
    ("[ipv4-addr:value = 'not-an-ip']", "invalid ipv4 value for ipv4-addr:value: "),
    ("[ipv4-addr:value = '2001:db8::1']", "invalid ipv4 value for ipv4-addr:value: "),
    ("[ipv6-addr:value ISSUBSET '10.0.0.0/8']", "invalid value for ipv6-addr:value: "),
    ("[file:hashes.'SHA-256' = 'abc']", "invalid sha256 value for file:hashes.SHA-256: "),
    (f"[file:hashes.MD5 = '{SHA256}']", "invalid md5 value for file:hashes.MD5: "),
    ("[domain-name:value = 'a.example'] OR [domain-name:value = 'not a domain']", "invalid domain value"),
    ("[ipv4-addr:value = 5]", "ipv4-addr:value is compared with a value that is not a string"),
    ("[" + " OR ".join([f"domain-name:value = 'a{n}.example'" for n in range(400)]) + "]",
     "invalid pattern: longer than 8192 characters"),
])
def test_invalid_patterns_are_problems(pattern, message):
    found = problems(pattern)

    assert len(found) == 1
    assert found[0].startswith(f"indicator--00000000-0000-4000-8000-000000000001: {message}")


def test_an_invalid_pattern_does_not_stop_the_rest():
    parsed = parse_bundle(stix_bundle(indicator("[ipv4-addr:value = '198.51.100.1']", 1),
                                      indicator("[ipv4-addr:value = 198.51.100.2]", 2),
                                      indicator("[ipv4-addr:value = '198.51.100.3']", 3)), "test")

    assert [item.value for item in parsed.indicators] == ["198.51.100.1", "198.51.100.3"]
    assert len(parsed.problems) == 1
    assert parsed.problems[0].startswith("indicator--00000000-0000-4000-8000-000000000002: invalid pattern:")


def test_a_deep_pattern_is_a_problem_not_a_crash():
    pattern = "(" * 3000 + "[domain-name:value = 'a.example']" + ")" * 3000
    found = problems(pattern)

    assert len(found) == 1
    assert "invalid pattern" in found[0]


# --- indicator fields ---------------------------------------------------------------------------


@pytest.mark.parametrize(("stamp", "expected"), [
    ("2026-01-05T10:00:00Z", datetime(2026, 1, 5, 10, 0, tzinfo=UTC)),
    ("2026-01-05T10:00:00.1Z", datetime(2026, 1, 5, 10, 0, 0, 100000, tzinfo=UTC)),
    ("2026-01-05T10:00:00.123Z", datetime(2026, 1, 5, 10, 0, 0, 123000, tzinfo=UTC)),
    ("2026-01-05T10:00:00.123456Z", datetime(2026, 1, 5, 10, 0, 0, 123456, tzinfo=UTC)),
    ("2026-01-05T10:00:00.123456789Z", datetime(2026, 1, 5, 10, 0, 0, 123456, tzinfo=UTC)),
    ("2026-01-05T12:00:00+02:00", datetime(2026, 1, 5, 10, 0, tzinfo=UTC)),
])
def test_timestamps_are_aware_utc(stamp, expected):
    item = one("[domain-name:value = 'a.example']", valid_from=stamp)

    assert item.valid_from == expected
    assert item.valid_from is not None and item.valid_from.utcoffset() == timedelta(0)


@pytest.mark.parametrize(("fields", "message"), [
    ({"valid_from": "yesterday"}, "valid_from is not a STIX timestamp: 'yesterday'"),
    ({"valid_from": "2026-13-45T10:00:00Z"}, "valid_from is not a STIX timestamp"),
    ({"valid_from": 1767607200}, "valid_from is not a STIX timestamp"),
    ({"valid_until": "2026-01-01T00:00:00Z"}, "valid_until is not after valid_from"),
    ({"modified": "garbage"}, "modified is not a STIX timestamp"),
    ({"confidence": 101}, "confidence must be an integer from 0 to 100"),
    ({"confidence": "high"}, "confidence must be an integer from 0 to 100"),
    ({"revoked": "yes"}, "revoked must be true or false"),
    ({"labels": "c2"}, "labels must be a list of strings"),
    ({"name": 7}, "name must be a string"),
    ({"pattern": None}, "indicator without a pattern"),
])
def test_bad_fields_are_problems(fields, message):
    found = problems("[domain-name:value = 'a.example']", **fields)

    assert len(found) == 1
    assert message in found[0]


def test_indicator_without_an_id_is_a_problem():
    item = indicator("[domain-name:value = 'a.example']")
    item["id"] = "indicator--not-a-uuid"
    parsed = parse_objects([item, {"type": "indicator"}, "text"], "test")

    assert parsed.indicators == []
    assert parsed.problems == ["objects[0]: indicator without a valid id ('indicator--not-a-uuid')",
                               "objects[1]: indicator without a valid id (None)",
                               "objects[2]: not a JSON object"]


def test_the_latest_version_of_an_indicator_wins():
    old = indicator("[domain-name:value = 'old.example']", modified="2026-01-05T10:00:00.000Z")
    new = indicator("[domain-name:value = 'new.example']", modified="2026-01-06T10:00:00.000Z", revoked=True)
    parsed = parse_objects([new, old], "test")

    assert [(item.value, item.revoked) for item in parsed.indicators] == [("new.example", True)]


def test_taxii_objects_are_read_like_a_bundle():
    envelope = orjson.loads(feed())["objects"]
    parsed = parse_objects(envelope, "taxii")

    assert len(parsed.indicators) == 7
    assert by_id(parsed.indicators)[IP_ID].tlp is TLP.AMBER_STRICT


# --- TLP ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(("marking", "level"), [
    ("marking-definition--613f2e26-407d-48c7-9eca-b8e91df99dc9", TLP.CLEAR),
    ("marking-definition--34098fce-860f-48ae-8e50-ebd3cc5e41da", TLP.GREEN),
    ("marking-definition--f88d31f6-486f-44da-b317-01333bde0b82", TLP.AMBER),
    ("marking-definition--5e57c739-391a-4eb3-b6be-7d15ca92d5ed", TLP.RED),
    ("marking-definition--94868c89-83c2-464b-929b-a1a8aa3c8487", TLP.CLEAR),
    ("marking-definition--bab4a63c-aed9-4cf5-a766-dfca5abac2bb", TLP.GREEN),
    ("marking-definition--55d920b0-5e8b-4f79-9ee9-91f868d9b421", TLP.AMBER),
    ("marking-definition--939a9414-2ddd-4d32-a0cd-375ea402b003", TLP.AMBER_STRICT),
    ("marking-definition--e828b379-4e03-4974-9ac4-e53a884c97c1", TLP.RED),
])
def test_tlp_ids_are_known_without_their_objects(marking, level):
    assert one("[domain-name:value = 'a.example']", object_marking_refs=[marking]).tlp is level


def test_tlp2_marking_recognised_by_its_extension():
    marking = {"type": "marking-definition", "spec_version": "2.1",
               "id": "marking-definition--11111111-2222-4333-8444-555555555555",
               "created": "2024-01-01T00:00:00.000Z", "name": "TLP:AMBER+STRICT (mirror)",
               "extensions": {tlp.TLP2_EXTENSION_ID: {"extension_type": "property-extension",
                                                      "tlp_2_0": "amber+strict"}}}
    item = indicator("[domain-name:value = 'a.example']", object_marking_refs=[marking["id"]])
    parsed = parse_bundle(stix_bundle(marking, item), "test")

    assert parsed.indicators[0].tlp is TLP.AMBER_STRICT
    assert parsed.skipped == 0


@pytest.mark.parametrize(("definition", "level"), [
    ({"tlp": "white"}, TLP.CLEAR),
    ({"tlp": "amber"}, TLP.AMBER),
    ({"TLP": "TLP:RED"}, TLP.RED),
])
def test_tlp1_style_definitions(definition, level):
    marking = {"type": "marking-definition", "spec_version": "2.1",
               "id": "marking-definition--11111111-2222-4333-8444-666666666666",
               "created": "2024-01-01T00:00:00.000Z", "definition_type": "TLP", "definition": definition}
    item = indicator("[domain-name:value = 'a.example']", object_marking_refs=[marking["id"]])

    assert parse_bundle(stix_bundle(marking, item), "test").indicators[0].tlp is level


def test_the_strictest_tlp_marking_wins():
    item = one("[domain-name:value = 'a.example']",
               object_marking_refs=[tlp.TLP2_IDS[TLP.GREEN], tlp.TLP2_IDS[TLP.RED], tlp.TLP2_IDS[TLP.AMBER]])

    assert item.tlp is TLP.RED


def test_unknown_markings_are_kept_but_give_no_level():
    marking = "marking-definition--11111111-2222-4333-8444-777777777777"
    item = one("[domain-name:value = 'a.example']", object_marking_refs=[marking])

    assert item.markings == (marking,)
    assert item.tlp is None


# --- ATT&CK and malware -------------------------------------------------------------------------


def test_attack_and_malware_through_relationships():
    ind = indicator("[domain-name:value = 'a.example']")
    malware = {"type": "malware", "spec_version": "2.1",
               "id": "malware--11111111-2222-4333-8444-000000000001",
               "created": "2026-01-01T00:00:00.000Z", "modified": "2026-01-01T00:00:00.000Z",
               "name": "QakBot", "is_family": True}
    technique = {"type": "attack-pattern", "spec_version": "2.1",
                 "id": "attack-pattern--11111111-2222-4333-8444-000000000002",
                 "created": "2026-01-01T00:00:00.000Z", "modified": "2026-01-01T00:00:00.000Z",
                 "name": "PowerShell", "external_references": [
                     {"source_name": "capec", "external_id": "CAPEC-1"},
                     {"source_name": "mitre-attack", "external_id": "T1059.001"}]}
    links = [{"type": "relationship", "spec_version": "2.1",
              "id": f"relationship--11111111-2222-4333-8444-00000000001{n}",
              "created": "2026-01-01T00:00:00.000Z", "modified": "2026-01-01T00:00:00.000Z",
              "relationship_type": kind, "source_ref": source, "target_ref": target}
             for n, (kind, source, target) in enumerate([
                 ("indicates", ind["id"], malware["id"]),
                 ("indicates", ind["id"], technique["id"]),
                 # a target that is not in the bundle
                 ("indicates", ind["id"], "malware--11111111-2222-4333-8444-999999999999"),
                 ("uses", malware["id"], technique["id"]),
             ])]
    parsed = parse_bundle(stix_bundle(ind, malware, technique, *links), "test")

    item = parsed.indicators[0]
    assert item.malware == ("QakBot",)
    assert item.attack == ("T1059.001",)
    assert parsed.skipped == 3  # malware, attack-pattern, the `uses` relationship


def test_attack_ids_from_the_indicator_itself():
    item = one("[domain-name:value = 'a.example']",
               kill_chain_phases=[{"kill_chain_name": "mitre-attack", "phase_name": "t1071.004"},
                                  {"kill_chain_name": "mitre-attack", "phase_name": "execution"}],
               external_references=[{"source_name": "mitre-ics-attack", "external_id": "T0855"},
                                    {"source_name": "mitre-attack", "external_id": "TA0002"}],
               labels=["attack.t1566", "mitre-attack:T1204.002", "c2"])

    assert item.attack == ("T0855", "T1071.004", "T1566", "T1204.002")
    assert item.labels == ("attack.t1566", "mitre-attack:T1204.002", "c2")


# --- bad input as a whole -----------------------------------------------------------------------


@pytest.mark.parametrize(("data", "message"), [
    (b"", "empty input"),
    (b"   \n", "empty input"),
    (b'{"type": "bundle", "objects": [', "not JSON"),
    (b"<!DOCTYPE html><html><body>Service Unavailable</body></html>", "HTML or XML, not a STIX bundle"),
    (b"\xef\xbb\xbf  <html></html>", "HTML or XML, not a STIX bundle"),
    (b"[1, 2]", "not a STIX bundle: the JSON is an array"),
    (b'"bundle"', "not a STIX bundle: the JSON is a string"),
    (b'{"type": "indicator", "id": "indicator--x"}', "not a STIX bundle: type is 'indicator'"),
    (b'{"more": false, "objects": []}', "(a TAXII envelope?)"),
    (b'{"type": "bundle", "objects": {"a": 1}}', "not a STIX bundle: 'objects' is an object, not a list"),
    (b'{"type": "bundle", "objects": "x"}', "not a STIX bundle: 'objects' is a string, not a list"),
])
def test_input_that_is_no_bundle_is_a_parse_error(data, message):
    with pytest.raises(ParseError) as error:
        parse_bundle(data, "feeds/example")

    assert message in str(error.value)
    assert str(error.value).startswith("feeds/example: ")


def test_a_bundle_without_objects_is_empty():
    parsed = parse_bundle(b'{"type": "bundle", "id": "bundle--00000000-0000-4000-8000-000000000000"}', "x")

    assert (parsed.indicators, parsed.problems, parsed.skipped) == ([], [], 0)


def test_parse_objects_wants_a_list():
    with pytest.raises(ParseError, match="STIX objects must be a list"):
        parse_objects({"objects": []}, "taxii")  # type: ignore[arg-type]


# --- export -------------------------------------------------------------------------------------


def test_round_trip_keeps_ids_patterns_markings_and_validity():
    first = parse_bundle(feed(), "feed")
    exported = to_bundle([view(item) for item in first.indicators],
                         bundle_id="bundle--5d0a1b2c-3d4e-4f50-8a6b-7c8d9e0f1a2b")
    again = parse_bundle(exported, "export")

    assert orjson.loads(exported)["id"] == "bundle--5d0a1b2c-3d4e-4f50-8a6b-7c8d9e0f1a2b"
    assert again.problems == []
    before, after = by_id(first.indicators), by_id(again.indicators)
    assert before.keys() == after.keys()
    for stix_id, item in before.items():
        back = after[stix_id]
        assert (back.type, back.value, back.pattern) == (item.type, item.value, item.pattern)
        assert back.tlp == item.tlp
        if stix_id == URL_ID:
            # its TLP marking is the source's own: the TLP 2.0 marking of the level is added beside it
            assert back.markings == (*item.markings, tlp.TLP2_IDS[TLP.RED])
        else:
            assert back.markings == item.markings
        assert (back.valid_from, back.valid_until) == (item.valid_from, item.valid_until)
        assert back.observables == item.observables
        assert back.malware == item.malware
        assert set(back.attack) == set(item.attack)
        assert back.labels == item.labels


def test_export_carries_the_tlp2_markings_it_references():
    exported = to_bundle([view(item) for item in parse_bundle(feed(), "feed").indicators])

    markings = {item["id"]: item for item in objects_of(exported, "marking-definition")}
    # amber+strict and amber as the feed gave them, red for the indicator whose TLP marking was the
    # source's own; the TLP 1.0 ids are predefined and need no object
    assert set(markings) == {tlp.TLP2_IDS[TLP.AMBER_STRICT], tlp.TLP2_IDS[TLP.AMBER], tlp.TLP2_IDS[TLP.RED]}
    assert markings[tlp.TLP2_IDS[TLP.AMBER_STRICT]] == {
        "type": "marking-definition", "spec_version": "2.1",
        "id": "marking-definition--939a9414-2ddd-4d32-a0cd-375ea402b003",
        "created": "2022-10-01T00:00:00.000Z", "name": "TLP:AMBER+STRICT",
        "extensions": {"extension-definition--60a3c5c5-0d10-413e-aab3-9e08dde9e88d": {
            "extension_type": "property-extension", "tlp_2_0": "amber+strict"}},
    }
    assert [item["id"] for item in objects_of(exported, "extension-definition")] == [tlp.TLP2_EXTENSION_ID]


def test_export_of_tlp1_only_needs_no_marking_object():
    item = one("[domain-name:value = 'a.example']",
               object_marking_refs=["marking-definition--34098fce-860f-48ae-8e50-ebd3cc5e41da"])
    exported = to_bundle([view(item)])

    assert objects_of(exported, "marking-definition") == []
    assert objects_of(exported, "extension-definition") == []


def test_a_kept_object_is_emitted_as_it_came_when_nothing_changed():
    item = by_id(parse_bundle(feed(), "feed").indicators)[IP_ID]
    exported = to_bundle([view(item)])

    assert objects_of(exported, "indicator") == [orjson.loads(item.stix or "")]


def test_a_kept_object_follows_vigils_view():
    item = by_id(parse_bundle(feed(), "feed").indicators)[IP_ID]
    now = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
    until = datetime(2026, 2, 1, tzinfo=UTC)
    exported = to_bundle([view(item, revoked=True, confidence=20, valid_until=until)], now=now)

    (emitted,) = objects_of(exported, "indicator")
    original = orjson.loads(item.stix or "")
    assert emitted["revoked"] is True
    assert emitted["confidence"] == 20
    assert emitted["valid_until"] == "2026-02-01T00:00:00.000Z"
    assert emitted["modified"] == "2026-03-01T08:00:00.000Z"
    changed = ("revoked", "confidence", "valid_until", "modified")
    assert {k: v for k, v in emitted.items() if k not in changed} \
        == {k: v for k, v in original.items() if k not in changed}
    again = parse_bundle(exported, "export").indicators[0]
    assert (again.revoked, again.confidence, again.valid_until) == (True, 20, until)


def test_a_kept_object_takes_vigils_tlp_level():
    statement = "marking-definition--11111111-2222-4333-8444-777777777777"
    green = "marking-definition--34098fce-860f-48ae-8e50-ebd3cc5e41da"
    item = one("[domain-name:value = 'a.example']", object_marking_refs=[green, statement], confidence=50)
    (same,) = objects_of(to_bundle([view(item)]), "indicator")
    (stricter,) = objects_of(to_bundle([view(item, tlp=TLP.AMBER)]), "indicator")

    assert same["object_marking_refs"] == [green, statement]
    assert same["modified"] == "2026-01-05T10:00:00.000Z"
    assert stricter["object_marking_refs"] == [statement, tlp.TLP2_IDS[TLP.AMBER]]
    assert stricter["modified"] != "2026-01-05T10:00:00.000Z"


def test_a_kept_object_without_validity_loses_none():
    item = one("[domain-name:value = 'a.example']", valid_until="2026-06-01T00:00:00Z", confidence=40)
    (emitted,) = objects_of(to_bundle([view(item, valid_until=None)]), "indicator")

    assert "valid_until" not in emitted
    assert emitted["confidence"] == 40


def test_new_indicators_are_built_from_type_and_value():
    domain = new_view(IndicatorType.DOMAIN, "evil.example", tlp=TLP.AMBER_STRICT, labels=("c2",),
                      attack=("T1071.004",), confidence=75, name="DNS C2",
                      valid_until=datetime(2026, 6, 1, tzinfo=UTC))
    exported = to_bundle([domain])

    (item,) = objects_of(exported, "indicator")
    assert item["id"] == f"indicator--{domain.id}"
    assert item["spec_version"] == "2.1"
    assert item["pattern"] == "[domain-name:value = 'evil.example']"
    assert item["pattern_type"] == "stix"
    assert item["valid_from"] == item["created"] == "2026-01-05T10:00:00.000Z"
    assert item["valid_until"] == "2026-06-01T00:00:00.000Z"
    assert item["confidence"] == 75
    assert item["name"] == "DNS C2"
    assert item["labels"] == ["c2"]
    assert item["object_marking_refs"] == [tlp.TLP2_IDS[TLP.AMBER_STRICT]]
    assert item["external_references"] == [{"source_name": "mitre-attack", "external_id": "T1071.004",
                                             "url": "https://attack.mitre.org/techniques/T1071/004/"}]
    back = parse_bundle(exported, "export").indicators[0]
    assert (back.type, back.value, back.tlp, back.attack) == (IndicatorType.DOMAIN, "evil.example",
                                                             TLP.AMBER_STRICT, ("T1071.004",))


@pytest.mark.parametrize(("kind", "value", "pattern"), [
    (IndicatorType.IPV4, "198.51.100.7", "[ipv4-addr:value = '198.51.100.7']"),
    (IndicatorType.IPV6, "2001:db8::1", "[ipv6-addr:value = '2001:db8::1']"),
    (IndicatorType.CIDR, "198.51.100.0/24", "[ipv4-addr:value = '198.51.100.0/24']"),
    (IndicatorType.CIDR, "2001:db8::/32", "[ipv6-addr:value = '2001:db8::/32']"),
    (IndicatorType.URL, "http://evil.example/it's\\here", "[url:value = 'http://evil.example/it\\'s\\\\here']"),
    (IndicatorType.EMAIL, "o'brien@evil.example", "[email-addr:value = 'o\\'brien@evil.example']"),
    (IndicatorType.MD5, MD5, f"[file:hashes.MD5 = '{MD5}']"),
    (IndicatorType.SHA1, SHA1, f"[file:hashes.'SHA-1' = '{SHA1}']"),
    (IndicatorType.SHA256, SHA256, f"[file:hashes.'SHA-256' = '{SHA256}']"),
    (IndicatorType.SHA512, SHA512, f"[file:hashes.'SHA-512' = '{SHA512}']"),
    (IndicatorType.FILENAME, "C:\\Temp\\a'b.exe", "[file:name = 'C:\\\\Temp\\\\a\\'b.exe']"),
    (IndicatorType.USER_AGENT, "Mozilla/5.0 (x)",
     "[network-traffic:extensions.'http-request-ext'.request_header.'User-Agent' = 'Mozilla/5.0 (x)']"),
    (IndicatorType.JA3, JA3, f"[x-ja3:value = '{JA3}']"),
])
def test_every_type_exports_a_valid_pattern_that_reads_back(kind, value, pattern):
    exported = to_bundle([new_view(kind, value)])

    (item,) = objects_of(exported, "indicator")
    assert item["pattern"] == pattern
    assert run_validator(pattern, stix_version="2.1") == []
    back = parse_bundle(exported, "export").indicators[0]
    assert (back.type, back.value) == (kind, value)


def test_a_pattern_indicator_without_stix_object():
    pattern = "[domain-name:value = 'a.example'] OR [domain-name:value = 'b.example']"
    good = new_view(IndicatorType.STIX_PATTERN, pattern)
    bad = new_view(IndicatorType.STIX_PATTERN, "rule x { condition: true }")
    exported = to_bundle([good, bad])

    assert [item["pattern"] for item in objects_of(exported, "indicator")] == [pattern]


def test_malware_and_attack_context_become_objects_and_relationships():
    ip = new_view(IndicatorType.IPV4, "198.51.100.7", malware=("Emotet",), attack=("T1071.001",),
                  tlp=TLP.RED)
    domain = new_view(IndicatorType.DOMAIN, "evil.example", malware=("emotet",), tlp=TLP.GREEN,
                      first_seen=T0 - timedelta(days=3))
    exported = to_bundle([ip, domain])

    (malware,) = objects_of(exported, "malware")
    assert malware["name"] == "Emotet"
    assert malware["is_family"] is True
    assert malware["created"] == "2026-01-02T10:00:00.000Z"
    assert malware["object_marking_refs"] == [tlp.TLP2_IDS[TLP.RED]]
    relationships = objects_of(exported, "relationship")
    assert {(r["source_ref"], r["target_ref"]) for r in relationships} == {
        (f"indicator--{ip.id}", malware["id"]), (f"indicator--{domain.id}", malware["id"])}
    # ATT&CK of a built indicator is in its own external references: no attack-pattern object
    assert objects_of(exported, "attack-pattern") == []
    # ids are deterministic
    assert to_bundle([ip, domain]).count(str(malware["id"]).encode()) >= 3
    again = by_id(parse_bundle(exported, "export").indicators)
    assert again[f"indicator--{ip.id}"].malware == ("Emotet",)
    assert again[f"indicator--{domain.id}"].malware == ("Emotet",)


def test_two_versions_of_one_stix_object_export_the_latest():
    old = one("[domain-name:value = 'old.example']", modified="2026-01-05T10:00:00.000Z", confidence=50)
    new = one("[domain-name:value = 'new.example']", modified="2026-01-07T10:00:00.000Z", confidence=50)
    assert old.stix_id == new.stix_id
    for order in ([old, new], [new, old]):
        (item,) = objects_of(to_bundle([view(each) for each in order]), "indicator")
        assert item["pattern"] == "[domain-name:value = 'new.example']"


def test_granular_tlp2_markings_are_carried_too():
    amber = tlp.TLP2_IDS[TLP.AMBER]
    item = one("[domain-name:value = 'a.example']", description="x", confidence=50,
               granular_markings=[{"marking_ref": amber, "selectors": ["description"]}])
    exported = to_bundle([view(item)])

    assert [marking["id"] for marking in objects_of(exported, "marking-definition")] == [amber]


def test_the_same_context_twice_is_one_relationship():
    ip = new_view(IndicatorType.IPV4, "198.51.100.7", malware=("Emotet", "emotet"))
    exported = to_bundle([ip])

    assert len(objects_of(exported, "malware")) == 1
    assert len(objects_of(exported, "relationship")) == 1


def test_exported_bundles_validate_with_stix2():
    views = [view(item) for item in parse_bundle(feed(), "feed").indicators
             if item.stix_id != SHA256_ID]  # stix2 reads no more than 6 fraction digits (the fixture has 9)
    views += [new_view(IndicatorType.SHA256, SHA256, tlp=TLP.CLEAR, malware=("Dridex",),
                       attack=("T1204.002",)),
              new_view(IndicatorType.CIDR, "203.0.113.0/24", revoked=True, tlp=TLP.AMBER_STRICT)]
    exported = to_bundle(views)

    parsed = stix2.parse(exported, allow_custom=True)
    assert parsed.type == "bundle"
    for item in objects_of(exported, "indicator"):
        if item["pattern_type"] == "stix":
            assert run_validator(item["pattern"], stix_version="2.1") == []


def test_the_bundle_id_must_be_a_bundle_id():
    with pytest.raises(InputError, match="not a STIX bundle id"):
        to_bundle([], bundle_id="report--1")


def test_an_empty_export_is_an_empty_bundle():
    data = orjson.loads(to_bundle([]))

    assert data["type"] == "bundle"
    assert data["objects"] == []
    assert data["id"].startswith("bundle--")


# --- invariants ---------------------------------------------------------------------------------

_LABEL = st.from_regex(r"[a-z0-9]([a-z0-9-]{0,20}[a-z0-9])?", fullmatch=True)
_DOMAINS = st.builds(lambda labels, tld: ".".join([*labels, tld]),
                     st.lists(_LABEL, min_size=1, max_size=4), st.from_regex(r"[a-z]{2,10}", fullmatch=True))
_VALUES = st.one_of(
    st.tuples(st.just(IndicatorType.IPV4), st.ip_addresses(v=4).map(str)),
    st.tuples(st.just(IndicatorType.DOMAIN), _DOMAINS),
    st.tuples(st.just(IndicatorType.SHA256), st.binary(min_size=32, max_size=32).map(bytes.hex)),
)


@settings(max_examples=150, deadline=None)
@given(_VALUES)
def test_canonical_values_survive_export_and_import(pair):
    kind, value = pair
    assert canonical(kind, value) == (kind, value)
    exported = to_bundle([new_view(kind, value)])

    (back,) = parse_bundle(exported, "export").indicators
    assert (back.type, back.value) == (kind, value)
    assert back.stix_id == f"indicator--{indicator_id(kind, value)}"
