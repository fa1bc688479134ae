"""CSV files and plain lists: the presets of real feeds on fixtures with their real layouts,
custom mappings, and input that must be refused as a whole (wrong columns, HTML, binary,
too many bad lines), streaming over ten million lines."""

from __future__ import annotations

import gzip
import random
import resource
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vigil.core.errors import InputError, ParseError
from vigil.intel.formats.presets import PRESETS, preset
from vigil.intel.formats.tabular import ColumnMapping, ValueTransform, parse_table, parse_time, strip_port
from vigil.intel.types import TLP, IndicatorType

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "tabular"
FIXTURE_OF = {"urlhaus": "urlhaus.csv", "feodo": "feodo.csv", "threatfox": "threatfox.csv",
              "malwarebazaar": "malwarebazaar.csv", "spamhaus-drop": "spamhaus-drop.txt",
              "plain": "plain.txt"}
EXPECTED = {
    "urlhaus": [("url", "http://198.51.100.23:39001/bin.sh"), ("url", "https://payload.example/dl/invoice.zip"),
                ("url", "http://files.example.net/a,b.exe")],
    "feodo": [("ipv4", "192.0.2.45"), ("ipv4", "198.51.100.77"), ("ipv4", "203.0.113.200"),
              ("ipv6", "2001:db8::c2")],
    "threatfox": [("ipv4", "198.51.100.9"), ("domain", "c2.malware.example"),
                  ("url", "http://203.0.113.50:8080/gate.php"), ("md5", "44d88612fea8a8f36de82e1278abb02f"),
                  ("sha256", "275a021bbfb6489e54d471899f7db9d1663fc695ec2fe2a2c4538aabf651fd0f"),
                  ("sha1", "3395856ce81f2b7382dee72602f798b642f14140"), ("ipv6", "2001:db8::beef")],
    "malwarebazaar": [("sha256", "1e768ef07fb5576fd1e0e0f0795e9d2232d0d329fc86ef6e654a5a52318bd335"),
                      ("md5", "60151c2dfd54f09522181f197cb21092"),
                      ("sha1", "db165c79f4e206c8aee9234299eb456b9d986c9a"),
                      ("sha256", "3687aa4cf981d249fa36cc6ba10c7b3f258cbb7fd0f63a6e6536a7aa69daf98d"),
                      ("md5", "7c1309c2a371a9f9d2f250cbc8cd2be3"),
                      ("sha1", "79ced6811afcf526f0886d232021dadbf51781df")],
    "spamhaus-drop": [("cidr", "192.0.2.0/24"), ("cidr", "198.51.100.0/25"), ("cidr", "203.0.113.128/25")],
    "plain": [("ipv4", "192.0.2.10"), ("cidr", "198.51.100.0/24"), ("ipv6", "2001:db8::1"),
              ("domain", "evil.example"), ("url", "https://phish.example.com/login?session=1"),
              ("md5", "44d88612fea8a8f36de82e1278abb02f"), ("email", "abuse@spam.example"),
              ("ipv4", "203.0.113.7")],
}
SKIPPED = {"urlhaus": 1, "threatfox": 1}


def fixture(name: str) -> bytes:
    return (FIXTURES / FIXTURE_OF[name]).read_bytes()


def at(hour: int, minute: int, second: int = 0, day: int = 1, month: int = 10) -> datetime:
    return datetime(2026, month, day, hour, minute, second, tzinfo=UTC)


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_every_preset_parses_its_fixture(name: str) -> None:
    parsed = parse_table(fixture(name), PRESETS[name].mapping, name)
    assert [(i.type.value, i.value) for i in parsed.indicators] == EXPECTED[name]
    assert parsed.problems == []
    assert parsed.skipped == SKIPPED.get(name, 0)
    assert all(i.source == name for i in parsed.indicators)
    assert PRESETS[name].doc and preset(name) is PRESETS[name].mapping


def test_urlhaus_header_is_a_comment_and_context_comes_from_columns() -> None:
    first, second, third = parse_table(fixture("urlhaus"), preset("urlhaus"), "urlhaus").indicators
    assert first.labels == ("32-bit", "elf", "mips", "Mozi", "malware_download")
    assert first.reference == "3100004"
    assert (first.first_seen, first.last_seen) == (at(7, 58, 12), at(7, 58, 12))
    assert second.last_seen == at(7, 50)
    assert third.last_seen is None  # empty last_online


def test_feodo_addresses_with_malware_and_dates() -> None:
    indicators = parse_table(fixture("feodo"), preset("feodo"), "feodo").indicators
    assert [i.malware for i in indicators] == [("Dridex",), ("QakBot",), ("Emotet",), ("Pikabot",)]
    assert indicators[0].first_seen == at(7, 30, 5, day=17, month=1)
    assert indicators[0].last_seen == at(0, 0, day=28, month=9)
    assert all(i.labels == ("botnet_cc",) for i in indicators)


def test_threatfox_types_ports_confidence_and_empty_markers() -> None:
    parsed = parse_table(fixture("threatfox"), preset("threatfox"), "threatfox")
    by_value = {i.value: i for i in parsed.indicators}
    c2 = by_value["198.51.100.9"]
    assert (c2.confidence, c2.malware, c2.reference) == (100, ("Cobalt Strike",), "1500006")
    assert c2.labels == ("c2", "CobaltStrike", "botnet_cc")
    assert c2.last_seen is None  # "" in last_seen_utc
    assert by_value["c2.malware.example"].last_seen == at(7, 55)
    assert by_value["http://203.0.113.50:8080/gate.php"].labels == ("botnet_cc",)  # "None" tags
    assert by_value["2001:db8::beef"].confidence == 90
    assert parsed.skipped == 1  # sha3_384_hash is no Vigil type


def test_malwarebazaar_gives_three_hashes_per_sample() -> None:
    indicators = parse_table(fixture("malwarebazaar"), preset("malwarebazaar"), "bazaar").indicators
    assert [i.malware for i in indicators[:3]] == [("AgentTesla",)] * 3
    assert {i.name for i in indicators[:3]} == {"invoice.exe"}
    assert indicators[3].malware == ()  # "n/a"


def test_spamhaus_drop_keeps_the_sbl_reference() -> None:
    indicators = parse_table(fixture("spamhaus-drop"), preset("spamhaus-drop"), "drop").indicators
    assert [i.reference for i in indicators] == ["SBL000001", "SBL000002", "SBL000003"]


def test_unknown_preset() -> None:
    with pytest.raises(InputError, match="unknown feed preset 'nope'"):
        preset("nope")


def test_wrong_columns_name_the_missing_and_the_found() -> None:
    with pytest.raises(ParseError) as caught:
        parse_table(fixture("feodo"), preset("urlhaus"), "urlhaus")
    message = str(caught.value)
    assert "lacks the mapped columns url, dateadded, tags, threat, id (" in message
    assert "found: first_seen_utc, dst_ip, dst_port, c2_status, last_online, malware" in message


def test_a_header_repeated_after_its_comment_is_not_a_row() -> None:
    data = b"# value,kind\nvalue,kind\n192.0.2.1,ipv4\n"
    parsed = parse_table(data, ColumnMapping(value="value", type_column="kind"), "t")
    assert [(i.type, i.value) for i in parsed.indicators] == [(IndicatorType.IPV4, "192.0.2.1")]
    assert parsed.problems == []


@pytest.mark.parametrize(("data", "message"), [
    (b"<!DOCTYPE html>\n<html><body>Rate limited</body></html>\n", "HTML or XML"),
    (b"\n  <html>\n<head><title>502 Bad Gateway</title></head>\n", "HTML or XML"),
    (b'{"query_status": "no_results"}\n', "JSON, not a CSV"),
    (gzip.compress(b"192.0.2.1\n" * 100, mtime=0), "compressed data"),
    (bytes(range(256)) * 16, "binary data|not UTF-8"),
    (random.Random(7).randbytes(65536), "binary data|not UTF-8"),
])
def test_content_that_is_something_else_is_refused(data: bytes, message: str) -> None:
    for name in ("plain", "urlhaus"):
        with pytest.raises(ParseError, match=message):
            parse_table(data, preset(name), name)


def test_bad_rows_are_problems_with_their_line_numbers() -> None:
    data = b"# list\n192.0.2.1\nnot a value!\n\n198.51.100.300\n203.0.113.9\n"
    parsed = parse_table(data, preset("plain"), "t")
    assert [i.value for i in parsed.indicators] == ["192.0.2.1", "203.0.113.9"]
    assert [p.split(":")[0] for p in parsed.problems] == ["line 3", "line 5"]
    assert parsed.problems[1] == "line 5: not an IP address: '198.51.100.300'"


def test_bad_times_and_confidence_are_row_problems() -> None:
    mapping = ColumnMapping(value="v", type="ipv4", first_seen="seen", confidence="conf")
    data = b"v,seen,conf\n192.0.2.1,yesterday,50\n192.0.2.2,2026-10-01,high\n192.0.2.3,1790000000,70.4\n"
    parsed = parse_table(data, mapping, "t")
    assert parsed.problems == ["line 2: first_seen 'yesterday' is not a time",
                               "line 3: confidence 'high' is not a number"]
    (good,) = parsed.indicators
    assert (good.value, good.confidence) == ("192.0.2.3", 70)
    assert good.first_seen == datetime.fromtimestamp(1790000000, UTC)


def test_short_rows_are_problems() -> None:
    data = fixture("threatfox") + b'"2026-10-01 06:00:00", "1499990"\n'
    parsed = parse_table(data, preset("threatfox"), "t")
    last_line = len(data.splitlines())
    assert parsed.problems == [f"line {last_line}: 2 field(s), the value is in column 3"]


def test_too_many_bad_lines_stop_the_import_early() -> None:
    read = 0

    def lines() -> Iterator[bytes]:
        nonlocal read
        yield b"192.0.2.1\n"
        for number in range(1_000_000):
            read += 1
            yield f"garbage-{number}!\n".encode()

    with pytest.raises(ParseError) as caught:
        parse_table(lines(), preset("plain"), "t", max_problems=50)
    message = str(caught.value)
    assert message.startswith("too many bad lines: more than 50 in the first 52 lines; first: line 2: ")
    assert read == 51


def test_a_file_where_no_line_reads_is_refused() -> None:
    with pytest.raises(ParseError, match=r"no line could be read \(2 bad\); first: line 1: "):
        parse_table(b"hello world!\nsome prose, here.\n", preset("plain"), "t")


def test_an_empty_or_comment_only_feed_is_empty() -> None:
    for data in (b"", b"\n\n", b"# nothing today\n"):
        parsed = parse_table(data, preset("urlhaus"), "t")
        assert (parsed.indicators, parsed.problems, parsed.skipped) == ([], [], 0)


def test_quoted_fields_keep_delimiters_and_newlines() -> None:
    mapping = ColumnMapping(value="indicator", type_column="type", description="note", tags="tags",
                            tag_separator="|")
    data = (b'indicator,type,note,tags\r\n'
            b'"http://198.51.100.4/a,b?c=""d""",url,"first, second",x|y\r\n'
            b'"evil.example",domain,"spans\r\ntwo lines",\r\n'
            b'192.0.2.8,ipv4,plain,\r\n')
    parsed = parse_table(data, mapping, "t")
    assert parsed.problems == []
    first, second, third = parsed.indicators
    assert first.value == 'http://198.51.100.4/a,b?c="d"'
    assert (first.description, first.labels) == ("first, second", ("x", "y"))
    assert second.description is not None and second.description.startswith("spans")
    assert third.value == "192.0.2.8"


def test_headerless_file_by_index_and_by_listed_names() -> None:
    data = b"2026-10-01T08:00:00Z\t192.0.2.5\tbotnet\n2026-10-01T09:00:00Z\t192.0.2.6\tscanner\n"
    by_index = ColumnMapping(value=1, type="ip", first_seen=0, label_columns=(2,), delimiter="\t",
                             header=False)
    by_name = ColumnMapping(value="ip", type="ip", first_seen="when", label_columns=("what",), delimiter="\t",
                            header=False, columns=("when", "ip", "what"))
    for mapping in (by_index, by_name):
        parsed = parse_table(data, mapping, "t")
        assert [(i.value, i.labels, i.first_seen) for i in parsed.indicators] == [
            ("192.0.2.5", ("botnet",), at(8, 0)), ("192.0.2.6", ("scanner",), at(9, 0))]


def test_fixed_context_and_type_column_without_a_map() -> None:
    mapping = ColumnMapping(value=0, type_column=1, header=False, labels=("partner",), tlp=TLP.AMBER,
                            default_confidence=40)
    data = b"192.0.2.1,ipv4\nevil.example,auto\n198.51.100.0/24,ip\nx.example,sha1\nq,weird\n"
    parsed = parse_table(data, mapping, "t")
    assert [(i.type.value, i.value) for i in parsed.indicators] == [
        ("ipv4", "192.0.2.1"), ("domain", "evil.example"), ("cidr", "198.51.100.0/24")]
    assert {(i.labels, i.tlp, i.confidence) for i in parsed.indicators} == {(("partner",), TLP.AMBER, 40)}
    assert parsed.problems == ["line 4: not a hash: 'x.example'", "line 5: unknown indicator type 'weird'"]


def test_bom_crlf_and_a_line_iterable() -> None:
    lines = [b"\xef\xbb\xbf# list\r\n", b"192.0.2.1\r\n", b"evil.example"]
    parsed = parse_table(iter(lines), preset("plain"), "t")
    assert [i.value for i in parsed.indicators] == ["192.0.2.1", "evil.example"]


def test_invalid_utf8_after_the_start_is_a_line_problem() -> None:
    parsed = parse_table(b"192.0.2.1\n\xff\xfe\n192.0.2.2\n", preset("plain"), "t")
    assert parsed.problems == ["line 2: not UTF-8 text"]
    assert len(parsed.indicators) == 2


@pytest.mark.parametrize(("settings", "message"), [
    ({"type": "ipv5"}, "unknown indicator type 'ipv5'"),
    ({"type_map": {"x": "nope"}}, "unknown indicator type 'nope'"),
    ({"value": "v", "header": False}, "names its columns by index"),
    ({"delimiter": ";;"}, "bad delimiter"),
    ({"value": -1}, "bad value"),
    ({"value": 1.5}, "bad value"),
    ({"transform": "rot13"}, "unknown value transform 'rot13'"),
    ({"comment_prefixes": ("#", "")}, "bad comment_prefixes"),
    ({"default_confidence": 101}, "bad default_confidence"),
    ({"tlp": "purple"}, "unknown TLP level"),
    ({"type_map": ["x"]}, "bad type_map"),
])
def test_bad_mappings_are_input_errors(settings: dict[str, object], message: str) -> None:
    with pytest.raises(InputError, match=message):
        ColumnMapping(**settings)  # type: ignore[arg-type]


def test_mapping_from_configuration_text_is_normalised() -> None:
    mapping = ColumnMapping(tlp="TLP:GREEN", transform="strip-port",  # type: ignore[arg-type]
                            type_map={" IP:Port ": "ip"}, empty_values=frozenset({"N/A "}))
    assert mapping.tlp is TLP.GREEN and mapping.transform is ValueTransform.STRIP_PORT
    assert mapping.type_map == {"ip:port": "ip"} and mapping.empty_values == frozenset({"n/a"})


@pytest.mark.parametrize(("text", "expected"), [
    ("198.51.100.7:443", "198.51.100.7"), ("[2001:db8::1]:443", "2001:db8::1"),
    ("2001:db8::1", "2001:db8::1"),
    ("http://evil.example:8080/x", "http://evil.example:8080/x"), ("evil.example", "evil.example"),
    ("evil.example:80", "evil.example"), ("a:b", "a:b"),
])
def test_strip_port(text: str, expected: str) -> None:
    assert strip_port(text) == expected


@pytest.mark.parametrize(("text", "expected"), [
    ("2026-10-01 08:00:00", at(8, 0)), ("2026-10-01", at(0, 0)), ("2026-10-01T08:00:00Z", at(8, 0)),
    ("2026-10-01 08:00:00 UTC", at(8, 0)), ("2026-10-01T10:00:00+02:00", at(8, 0)),
    ("1790000000", datetime.fromtimestamp(1790000000, UTC)),
    ("1790000000000", datetime.fromtimestamp(1790000000, UTC)),
])
def test_parse_time(text: str, expected: datetime) -> None:
    assert parse_time(text) == expected


@given(st.lists(st.ip_addresses(v=4), max_size=50))
def test_a_plain_list_of_addresses_reads_back_in_order(addresses: list[object]) -> None:
    data = "".join(f"{address}\n" for address in addresses).encode()
    parsed = parse_table(data, preset("plain"), "t")
    assert [i.value for i in parsed.indicators] == [str(a) for a in addresses]


def _addresses(count: int, every: int = 1) -> Iterator[bytes]:
    """``count`` short lines; one in ``every`` is an address, the others comments."""
    for number in range(count):
        if number % every:
            yield b"# c\n"
        else:
            yield b"10.%d.%d.%d\n" % (number >> 16 & 255, number >> 8 & 255, number & 255)


def test_ten_million_lines_stream_without_holding_the_file() -> None:
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    parsed = parse_table(_addresses(10_000_000, every=1000), preset("plain"), "t")
    grown_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
    assert len(parsed.indicators) == 10_000 and parsed.problems == []
    assert grown_kib < 100 * 1024  # ten million lines held as text would take several hundred MB


def test_ten_million_values_are_refused_whole_with_a_clear_error() -> None:
    """A list past the per-file limit stops at the limit with an error that says so (nothing
    is stored: the caller stores only a complete parse)."""
    with pytest.raises(ParseError, match=r"more than 100,000 indicators in one file; nothing was imported"):
        parse_table(_addresses(10_000_000), preset("plain"), "t", max_indicators=100_000)


def test_the_limit_counts_indicators_not_lines() -> None:
    parsed = parse_table(_addresses(50_000), preset("plain"), "t", max_indicators=50_000)
    assert len(parsed.indicators) == 50_000
    with pytest.raises(ParseError, match="more than 49,999"):
        parse_table(_addresses(50_000), preset("plain"), "t", max_indicators=49_999)
