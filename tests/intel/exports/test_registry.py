"""The registry: format names, what each format says it carries (checked against what it
writes), the archive of the datasets bundle, and the defence-in-depth rule that holds for every
format: allowlisted, inactive and TLP:RED indicators never leave, and every indicator is either
written or counted as skipped."""

from __future__ import annotations

import base64
import csv
import gzip
import io
import tarfile
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from intel.factories import NOW, view
from vigil.core.errors import InputError, UnknownFormatError
from vigil.intel.exports.registry import FORMATS, Export, ExportFormat, ExportOptions, render
from vigil.intel.types import TLP, IndicatorType, IndicatorView, Observable

LOCAL = [f for f in ExportFormat if FORMATS[f].renderer is not None]


SAMPLES = {
    IndicatorType.IPV4: "198.51.100.7",
    IndicatorType.IPV6: "2001:db8::1",
    IndicatorType.CIDR: "10.0.0.0/8",
    IndicatorType.DOMAIN: "evil.example",
    IndicatorType.URL: "http://evil.example/gate.php",
    IndicatorType.EMAIL: "bob@evil.example",
    IndicatorType.MD5: "d41d8cd98f00b204e9800998ecf8427e",
    IndicatorType.SHA1: "da39a3ee5e6b4b0d3255bfef95601890afd80709",
    IndicatorType.SHA256: "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    IndicatorType.SHA512: "cf83e1357eefb8bdf1542850d66d8007d620e4050b5715dc83f4a921d36ce9ce47d0d13c5d85f2b0ff"
                          "8318d2877eec2f63b931bd47417a81a538327af927da3e",
    IndicatorType.FILENAME: "invoice.pdf.exe",
    IndicatorType.JA3: "e7d705a3286e19ea42f587b344ee6865",
    IndicatorType.USER_AGENT: "EvilAgent/1.0",
}


def test_format_names() -> None:
    assert [f.value for f in ExportFormat] == [
        "nftables", "iptables", "ipset", "suricata-rules", "suricata-dataset", "rpz", "zeek", "csv",
        "plain", "wazuh-cdb", "stix", "misp"]
    assert set(FORMATS) == set(ExportFormat)
    assert ExportFormat.parse(" Suricata-Rules ") is ExportFormat.SURICATA_RULES
    with pytest.raises(UnknownFormatError, match="unknown export format 'pdf'"):
        ExportFormat.parse("pdf")
    with pytest.raises(UnknownFormatError):
        render("pdf", [])


@pytest.mark.parametrize("fmt", ["stix", "misp"])
def test_stix_and_misp_are_routed_elsewhere(fmt: str) -> None:
    with pytest.raises(UnknownFormatError, match=r"vigil\.intel\.formats\."):
        render(fmt, [view("ipv4", "198.51.100.7")])


@pytest.mark.parametrize("fmt", LOCAL)
def test_each_format_carries_what_it_says(fmt: ExportFormat) -> None:
    info = FORMATS[fmt]
    for kind, value in SAMPLES.items():
        out = render(fmt, [view(kind.value, value)], ExportOptions(generated=NOW))
        assert (out.count, out.skipped) == ((1, 0) if kind in info.carries else (0, 1)), (fmt, kind)
    assert isinstance(out, Export) and out.media_type == info.media_type
    assert out.filename == info.filename.format(name="vigil", zone="rpz.vigil")


@pytest.mark.parametrize("fmt", LOCAL)
def test_pattern_observables_are_carried(fmt: ExportFormat) -> None:
    pattern = view("stix-pattern", "[ipv4-addr:value = '192.0.2.9'] OR [domain-name:value = 'c2.example']",
                   observables=(Observable(IndicatorType.IPV4, "192.0.2.9"),
                                Observable(IndicatorType.DOMAIN, "c2.example")))
    out = render(fmt, [pattern])
    assert (out.count, out.skipped) == (1, 0)


def test_datasets_bundle_is_a_reproducible_archive() -> None:
    given_views = [view(k.value, v) for k, v in SAMPLES.items()]
    first = render("suricata-dataset", given_views, ExportOptions(generated=NOW))
    again = render("suricata-dataset", list(reversed(given_views)), ExportOptions(generated=NOW))
    assert isinstance(first.content, bytes) and first.content == again.content
    assert first.body() == first.content and first.media_type == "application/gzip"
    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(first.content))) as tar:
        members: dict[str, str] = {}
        for member in tar.getmembers():
            data = tar.extractfile(member)
            assert data is not None and member.mtime == int(NOW.timestamp()) and member.mode == 0o644
            members[member.name] = data.read().decode()
    assert members == {f.name: f.content for f in first.files}
    assert next(iter(members)) == "vigil.rules"


def test_text_exports_encode_as_utf8() -> None:
    out = render("plain", [view("filename", "ünï.exe")])
    assert out.body() == "ünï.exe\n".encode()


def test_bad_options_are_input_errors() -> None:
    with pytest.raises(InputError):
        render("nftables", [], ExportOptions(name="no spaces"))


# -- defence in depth, for every format ---------------------------------------------------------

FLAGS = st.sampled_from(["ok", "ok", "red", "inactive", "allowlisted", "revoked"])


def flagged(kind: IndicatorType, i: int, flag: str) -> IndicatorView:
    good = flag == "ok"
    values = {
        IndicatorType.IPV6: f"2001:db8:{'1' if good else 'dead'}::{i + 1:x}",
        IndicatorType.CIDR: f"2001:db8:{'2' if good else 'dead'}:{i + 1:x}::/64",
        IndicatorType.DOMAIN: f"{'fine' if good else 'withheld'}-{i}.example",
        IndicatorType.URL: f"http://{'fine' if good else 'withheld'}-{i}.example/x",
        IndicatorType.USER_AGENT: f"{'Fine' if good else 'Withheld'}Agent/{i}",
    }
    changes: dict[str, Any] = {
        "ok": {}, "red": {"tlp": TLP.RED}, "inactive": {"active": False},
        "allowlisted": {"allowlisted": "list"}, "revoked": {"revoked": True, "active": False},
    }[flag]
    return view(kind.value, values[kind], **changes)


def leaked(out: Export) -> bool:
    texts = [out.content] if isinstance(out.content, str) else []
    for member in out.files:
        texts.append(member.content)
        if member.name.endswith(".lst") and "ip" not in member.name:
            texts += [base64.b64decode(line).decode() for line in member.content.splitlines()]
    if out.format is ExportFormat.CSV:
        texts = [row[2] for row in csv.reader(io.StringIO(str(out.content)))]
    return any(marker in text for text in texts
               for marker in ("withheld", "Withheld", "2001:db8:dead:", "dead.db8.2001"))


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.sampled_from([IndicatorType.IPV6, IndicatorType.CIDR, IndicatorType.DOMAIN,
                                           IndicatorType.URL, IndicatorType.USER_AGENT]), FLAGS),
                max_size=30))
def test_withheld_indicators_never_leave(items: list[tuple[IndicatorType, str]]) -> None:
    given_views = [flagged(kind, i, flag) for i, (kind, flag) in enumerate(items)]
    withheld = sum(1 for _, flag in items if flag != "ok")
    for fmt in LOCAL:
        out = render(fmt, given_views, ExportOptions(generated=NOW))
        assert not leaked(out), fmt
        assert out.count + out.skipped == len(given_views), fmt
        assert out.skipped >= withheld, fmt
        assert sum(int(note.split()[0]) for note in out.notes) == out.skipped, fmt
