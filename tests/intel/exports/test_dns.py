"""The RPZ zone: content, canonical rpz-ip names, limits, hostile names, and ``named-checkzone``
as the judge of every file."""

from __future__ import annotations

import ipaddress
import os
import shutil
import subprocess
from datetime import timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from intel.factories import NOW, view
from vigil.core.errors import InputError
from vigil.intel.exports.dns import rpz, rpz_ip_name
from vigil.intel.exports.nets import parse
from vigil.intel.exports.registry import ExportOptions, RpzPolicy
from vigil.intel.types import TLP

SBIN = os.environ.get("PATH", "") + ":/usr/sbin:/sbin"


def checkzone(origin: str, path: Path) -> list[str]:
    """Run ``named-checkzone`` (it must accept the zone) and return the loaded records."""
    binary = shutil.which("named-checkzone", path=SBIN)
    if binary is None:
        pytest.skip("named-checkzone is not installed (make install adds bind9-utils)")
    result = subprocess.run([binary, "-D", "-o", "-", origin, str(path)], capture_output=True,
                            text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    return [line for line in result.stdout.splitlines() if line and not line.startswith(";")]


def cnames(records: list[str], origin: str) -> dict[str, str]:
    """owner (relative, as written) -> CNAME target, from named-checkzone's dump."""
    out: dict[str, str] = {}
    for line in records:
        parts = line.split()
        if len(parts) >= 5 and parts[3] == "CNAME":
            out[parts[0].removesuffix(f".{origin}.")] = parts[4]
    return out


def test_zone_with_domains_idna_and_ip_triggers(tmp_path: Path) -> None:
    given_views = [
        view("domain", "evil.example"),
        view("domain", "bücher.example"),                       # IDNA on the way out too
        view("domain", "Sub.Evil.Example."),                    # not canonical: normalised
        view("ipv4", "198.51.100.7"),
        view("cidr", "192.0.2.0/24"),
        view("ipv6", "2001:db8::1"),
        view("cidr", "2001:db8:0:1::/64"),
        view("url", "http://evil.example/x"),
        view("domain", "red.example", tlp=TLP.RED),
        view("domain", "gone.example", active=False),
        view("domain", "allowed.example", allowlisted="tranco"),
    ]
    out = rpz(given_views, ExportOptions(generated=NOW))
    assert (out.count, out.skipped) == (7, 4)
    assert "$TTL 300\n" in out.content
    assert f"( {int(NOW.timestamp())} 3600 600 604800 60 )" in out.content
    assert "red.example" not in out.content and "gone.example" not in out.content
    path = tmp_path / "db.rpz.vigil"
    path.write_text(out.content)
    loaded = cnames(checkzone("rpz.vigil", path), "rpz.vigil")
    assert loaded == {
        "evil.example": ".", "*.evil.example": ".",
        "xn--bcher-kva.example": ".", "*.xn--bcher-kva.example": ".",
        "sub.evil.example": ".", "*.sub.evil.example": ".",
        "32.7.100.51.198.rpz-ip": ".", "24.0.2.0.192.rpz-ip": ".",
        "128.1.zz.db8.2001.rpz-ip": ".", "64.zz.1.0.db8.2001.rpz-ip": ".",
    }


@pytest.mark.parametrize(("policy", "target"), [(RpzPolicy.NXDOMAIN, "."), (RpzPolicy.NODATA, "*."),
                                                (RpzPolicy.DROP, "rpz-drop.")])
def test_policies(tmp_path: Path, policy: RpzPolicy, target: str) -> None:
    out = rpz([view("domain", "evil.example"), view("ipv4", "192.0.2.1")],
              ExportOptions(rpz_policy=policy, rpz_zone="rpz.example.org.", serial=7))
    assert f"evil.example\tCNAME\t{target}\n" in out.content
    path = tmp_path / "zone"
    path.write_text(out.content)
    assert set(cnames(checkzone("rpz.example.org", path), "rpz.example.org").values()) == {target}


@pytest.mark.parametrize(("network", "name"), [
    ("198.51.100.7/32", "32.7.100.51.198.rpz-ip"),
    ("10.0.0.0/8", "8.0.0.0.10.rpz-ip"),
    ("2001:db8::1/128", "128.1.zz.db8.2001.rpz-ip"),
    ("2001:db8::/32", "32.zz.db8.2001.rpz-ip"),
    ("2001:db8:0:0:1:0:0:1/128", "128.1.0.0.1.zz.db8.2001.rpz-ip"),   # BIND's own example
    ("2001:db8:0:1:0:0:0:1/128", "128.1.zz.1.0.db8.2001.rpz-ip"),     # a single zero stays
    ("2001:db8:1:2:3:4:5:6/128", "128.6.5.4.3.2.1.db8.2001.rpz-ip"),
    ("::/1", "1.zz.rpz-ip"),
    ("::ffff:192.0.2.1/128", "32.1.2.0.192.rpz-ip"),                  # mapped: named as IPv4
    ("::ffff:192.0.2.0/120", "24.0.2.0.192.rpz-ip"),
])
def test_rpz_ip_names_are_canonical(network: str, name: str) -> None:
    net = parse(network)
    assert net is not None
    assert rpz_ip_name(net) == name


def decode(name: str) -> ipaddress.IPv6Network:
    """BIND's reading of an IPv6 rpz-ip name (``lib/dns/rpz.c`` name2ipkey)."""
    prefix, *labels = name.removesuffix(".rpz-ip").split(".")
    words: list[int] = []
    for label in reversed(labels):
        words += [0] * (8 - len(labels) + 1) if label == "zz" else [int(label, 16)]
    return ipaddress.IPv6Network((sum(w << (112 - 16 * i) for i, w in enumerate(words)), int(prefix)))


words = st.lists(st.one_of(st.just(0), st.integers(0, 0xFFFF)), min_size=8, max_size=8)


@settings(max_examples=300, deadline=None)
@given(words, st.integers(1, 128))
def test_ipv6_names_decode_back_to_the_network(given_words: list[int], prefix: int) -> None:
    address = sum(w << (112 - 16 * i) for i, w in enumerate(given_words))
    network = ipaddress.IPv6Network((address, prefix), strict=False)
    if network.network_address.ipv4_mapped is not None and prefix >= 96:
        return                                              # named as IPv4, tested above
    net = parse(str(network))
    assert net is not None
    name = rpz_ip_name(net)
    labels = name.split(".")[1:-1]
    assert labels.count("zz") <= 1
    assert all(label == "zz" or label == f"{int(label, 16):x}" for label in labels)
    assert decode(name) == network


def test_long_names_fit_or_are_skipped(tmp_path: Path) -> None:
    def name_of(length: int) -> str:
        labels, left = [], length
        while left > 0:
            size = min(63, left - 2) if left > 63 else left   # keep room for the next dot
            labels.append(("a" * size)[:size])
            left -= size + 1
        text = ".".join(labels)
        assert len(text) == length
        return text

    zone = "rpz.vigil"
    longest = 253 - 1 - len(zone) - 2                          # "*." + name + "." + zone = 253
    fits, too_long = name_of(longest), name_of(longest + 1)
    out = rpz([view("domain", fits), view("domain", too_long),
               view("domain", "a" * 64 + ".example")], ExportOptions(rpz_zone=zone))
    assert (out.count, out.skipped) == (1, 2)
    assert "1 skipped: name longer than 253 characters with the zone appended" in out.notes
    assert "1 skipped: not a valid DNS name" in out.notes
    path = tmp_path / "zone"
    path.write_text(out.content)
    assert set(cnames(checkzone(zone, path), zone)) == {fits, f"*.{fits}"}


def test_hostile_names_never_reach_the_zone(tmp_path: Path) -> None:
    hostile = ['evil".example', "a;b.example", "x.example\n@ IN NS attacker.example.",
               "foo bar.example", "$INCLUDE /etc/passwd", "evil.example. IN A 1.2.3.4",
               "x.rpz-ip", "32.1.2.0.192.rpz-ip", "-bad.example", "", "..", "*.wild.example"]
    out = rpz([view("domain", h) for h in hostile] + [view("domain", "good.example")], ExportOptions())
    path = tmp_path / "zone"
    path.write_text(out.content)
    loaded = cnames(checkzone("rpz.vigil", path), "rpz.vigil")
    # "*.wild.example" is read as the domain wild.example (its wildcard is implied).
    assert set(loaded) == {"good.example", "*.good.example", "wild.example", "*.wild.example"}
    assert out.count == 2 and out.skipped == len(hostile) - 1
    for text in ("attacker", "INCLUDE", "passwd", "1.2.3.4", '"', ";b"):
        assert text not in out.content


def test_empty_zone_and_serials(tmp_path: Path) -> None:
    out = rpz([], ExportOptions())
    assert "( 1 3600" in out.content
    path = tmp_path / "zone"
    path.write_text(out.content)
    assert cnames(checkzone("rpz.vigil", path), "rpz.vigil") == {}
    newest = NOW + timedelta(days=3)
    by_data = rpz([view("domain", "a.example"), view("domain", "b.example", last_seen=newest)],
                  ExportOptions())
    assert f"( {int(newest.timestamp())} " in by_data.content
    assert "( 42 " in rpz([], ExportOptions(serial=42, generated=NOW)).content


def test_soa_options_are_checked() -> None:
    for bad in ({"soa_mname": "localhost"}, {"soa_rname": "bad name."}, {"rpz_zone": "bad zone"},
                {"rpz_ttl": -1}, {"serial": 2**32}, {"rpz_zone": "x" * 64 + ".example"}):
        with pytest.raises(InputError):
            ExportOptions(**bad)
