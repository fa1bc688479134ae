"""Firewall exports (nftables, ipset, iptables) and the integer network helpers, checked by
content and by the real tools: ``nft -c -f`` always; ``ipset restore``, the iptables script
and a real ``nft -f`` load inside a private network namespace when ``unshare`` can make one."""

from __future__ import annotations

import ipaddress
import itertools
import os
import random
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from intel.factories import NOW, view
from vigil.core.errors import InputError
from vigil.intel.exports import nets
from vigil.intel.exports.firewall import ipset, iptables, nftables
from vigil.intel.exports.registry import ExportOptions, FirewallAction
from vigil.intel.types import TLP

SBIN = os.environ.get("PATH", "") + ":/usr/sbin:/sbin"


def tool(name: str) -> str:
    found = shutil.which(name, path=SBIN)
    if found is None:
        pytest.skip(f"{name} is not installed (make install adds it)")
    return found


def nft_check(path: Path) -> None:
    result = subprocess.run([tool("nft"), "-c", "-f", str(path)], capture_output=True, text=True,
                            timeout=120, check=False)
    assert result.returncode == 0, result.stderr[:2000]


def in_netns(script: str) -> subprocess.CompletedProcess[str]:
    """Run a shell script in a fresh network namespace (skip when one cannot be made)."""
    unshare = shutil.which("unshare", path=SBIN)
    if unshare is None or subprocess.run([unshare, "--net", "true"], capture_output=True,
                                         check=False).returncode != 0:
        pytest.skip("cannot create a network namespace here (unshare --net needs CAP_SYS_ADMIN)")
    env = {**os.environ, "PATH": SBIN}
    return subprocess.run([unshare, "--net", "sh", "-c", script], capture_output=True, text=True,
                          timeout=120, check=False, env=env)


MIXED = [
    view("cidr", "10.0.0.0/8"),
    view("cidr", "10.1.0.0/16"),          # inside 10.0.0.0/8
    view("ipv4", "10.1.2.3"),             # inside both
    view("cidr", "192.0.2.0/25"),
    view("cidr", "192.0.2.128/25"),       # adjacent: merges into 192.0.2.0/24
    view("ipv4", "198.51.100.7"),
    view("ipv6", "2001:db8::1"),
    view("cidr", "2001:db8::/32"),        # covers 2001:db8::1
    view("cidr", "2001:db8:ffff::/48"),
    view("ipv6", "2001:db9::5"),
    view("domain", "evil.example"),
    view("md5", "d41d8cd98f00b204e9800998ecf8427e"),
    view("ipv4", "203.0.113.1", tlp=TLP.RED),
    view("ipv4", "203.0.113.2", active=False),
    view("ipv4", "203.0.113.3", allowlisted="rfc5737"),
]


def elements(text: str) -> list[str]:
    """The elements of every ``add element`` statement, in order."""
    found: list[str] = []
    for block in re.findall(r"add element inet \S+ \S+ \{\n(.*?)\n\}", text, re.S):
        found += [e.strip() for e in block.replace("\n", " ").split(",") if e.strip()]
    return found


# -- nets ------------------------------------------------------------------------------------


def test_parse_reads_addresses_and_networks_and_clears_host_bits() -> None:
    assert nets.parse("10.1.2.3/8") == nets.Net(4, int(ipaddress.IPv4Address("10.0.0.0")), 8)
    assert nets.parse("2001:db8::1").text() == "2001:db8::1"
    assert nets.parse(" 192.0.2.1 ").text() == "192.0.2.1"
    assert nets.parse("2001:db8::/32").text() == "2001:db8::/32"
    for bad in ("", "evil.example", "10.0.0.256", "10.0.0.0/33", "2001:db8::/129", "1.2.3.4/x",
                "1.2.3.4/-1", "fe80::1%eth0", "1.2.3.4\n5.6.7.8"):
        assert nets.parse(bad) is None, bad


def test_merge_never_makes_a_slash_zero() -> None:
    halves = [nets.parse("0.0.0.0/1"), nets.parse("128.0.0.0/1")]
    assert [n.text() for n in nets.merge(n for n in halves if n)] == ["0.0.0.0/1", "128.0.0.0/1"]


networks = st.one_of(
    st.builds(lambda a, p: ipaddress.IPv4Network((a, p), strict=False),
              st.integers(0, 2**32 - 1), st.integers(1, 32)),
    st.builds(lambda a, p: ipaddress.IPv6Network((a, p), strict=False),
              st.integers(0, 2**128 - 1), st.integers(1, 128)),
)


@settings(max_examples=200, deadline=None)
@given(st.lists(networks, max_size=40))
def test_merge_covers_exactly_what_collapse_addresses_covers(given_nets: list[Any]) -> None:
    merged = nets.merge(n for n in (nets.parse(str(g)) for g in given_nets) if n)
    for version in (4, 6):
        expected = list(ipaddress.collapse_addresses(n for n in given_nets if n.version == version))
        got = [ipaddress.ip_network(n.text()) for n in merged if n.version == version]
        assert list(ipaddress.collapse_addresses(got)) == expected
        assert all(n.prefix > 0 for n in merged)
        ordered = [(n.address, n.last) for n in merged if n.version == version]
        assert all(a[1] < b[0] for a, b in itertools.pairwise(ordered))          # sorted, disjoint


# -- nftables ---------------------------------------------------------------------------------


def test_nftables_file_merges_overlaps_and_withholds_what_must_not_leave(tmp_path: Path) -> None:
    out = nftables(MIXED, ExportOptions(generated=NOW))
    assert elements(out.content) == ["10.0.0.0/8", "192.0.2.0/24", "198.51.100.7",
                                     "2001:db8::/32", "2001:db9::5"]
    assert "203.0.113" not in out.content
    assert (out.count, out.skipped) == (10, 5)
    assert "1 skipped: withheld: TLP:RED" in out.notes
    assert "1 skipped: md5 cannot be expressed in nftables" in out.notes
    text = out.content
    assert text.startswith("#!/usr/sbin/nft -f\n")
    assert "table inet vigil\ndelete table inet vigil\n" in text
    for line in ("set vigil_v4 {", "type ipv4_addr", "flags interval", "auto-merge", "set vigil_v6 {",
                 "type filter hook input priority filter - 10; policy accept;",
                 "ip saddr @vigil_v4 counter drop", "ip6 daddr @vigil_v6 counter drop"):
        assert line in text
    chains = dict(re.findall(r"chain (\w+) \{\n(.*?)\n\t\}", text, re.S))
    assert "saddr" in chains["input"] and "daddr" not in chains["input"]
    assert "daddr" in chains["output"] and "saddr" not in chains["output"]
    assert "saddr" in chains["forward"] and "daddr" in chains["forward"]
    path = tmp_path / "vigil.nft"
    path.write_text(text)
    nft_check(path)


def test_nftables_accepts_overlaps_given_raw_too(tmp_path: Path) -> None:
    """Even elements an operator adds by hand cannot conflict: the sets auto-merge."""
    out = nftables([view("cidr", "10.0.0.0/8")], ExportOptions())
    path = tmp_path / "vigil.nft"
    path.write_text(out.content + "add element inet vigil vigil_v4 { 10.1.0.0/16, 10.1.2.3 }\n")
    nft_check(path)


def test_empty_sets_still_make_a_valid_file(tmp_path: Path) -> None:
    for given_views in ([], [view("domain", "evil.example")], [view("ipv4", "192.0.2.1", tlp=TLP.RED)]):
        out = nftables(given_views, ExportOptions())
        assert out.count == 0 and "add element" not in out.content
        path = tmp_path / "empty.nft"
        path.write_text(out.content)
        nft_check(path)


def test_reject_ipv4_only_and_another_name(tmp_path: Path) -> None:
    options = ExportOptions(name="blocklist", ip_versions=(4,), action=FirewallAction.REJECT)
    out = nftables(MIXED, options)
    assert "table inet blocklist {" in out.content and "blocklist_v6" not in out.content
    assert "ip saddr @blocklist_v4 counter reject" in out.content and " drop" not in out.content
    assert "4 skipped: IPv6 not selected (ip_versions)" in out.notes
    path = tmp_path / "blocklist.nft"
    path.write_text(out.content)
    nft_check(path)


def test_hundred_thousand_addresses_in_chunks(tmp_path: Path) -> None:
    rnd = random.Random(5)
    many = [view("ipv4", str(ipaddress.IPv4Address(rnd.randrange(2**24, 2**32 - 2**28))))
            for _ in range(100_000)]
    many += [view("cidr", f"{rnd.randrange(11, 220)}.{rnd.randrange(256)}.0.0/16") for _ in range(300)]
    many += [view("ipv6", str(ipaddress.IPv6Address((0x20010DB8 << 96) | rnd.getrandbits(64))))
             for _ in range(1000)]
    out = nftables(many, ExportOptions(chunk=5000))
    assert out.count == len(many)
    expected = nets.merge(n for n in (nets.parse(v.value) for v in many) if n)
    assert elements(out.content) == [n.text() for n in expected]
    assert out.content.count("add element inet vigil vigil_v4 {") == -(-sum(
        1 for n in expected if n.version == 4) // 5000)
    path = tmp_path / "big.nft"
    path.write_text(out.content)
    nft_check(path)
    loaded = in_netns(f"nft -f {path} && nft list set inet vigil vigil_v6")
    assert loaded.returncode == 0, loaded.stderr
    assert loaded.stdout.count("2001:db8:") == 1000


def test_loaded_for_real_the_file_replaces_the_previous_table(tmp_path: Path) -> None:
    first, second = tmp_path / "first.nft", tmp_path / "second.nft"
    first.write_text(nftables([view("ipv4", "192.0.2.1")], ExportOptions()).content)
    second.write_text(nftables([view("ipv4", "198.51.100.9")], ExportOptions()).content)
    result = in_netns(f"nft -f {first} && nft -f {second} && nft list set inet vigil vigil_v4")
    assert result.returncode == 0, result.stderr
    assert "198.51.100.9" in result.stdout and "192.0.2.1" not in result.stdout


def test_options_are_checked() -> None:
    for bad in ({"name": "bad name"}, {"name": "x" * 30}, {"name": "1abc"}, {"ip_versions": ()},
                {"ip_versions": (5,)}, {"chunk": 0}):
        with pytest.raises(InputError):
            ExportOptions(**bad)


# -- ipset and iptables -----------------------------------------------------------------------


def test_ipset_restore_file(tmp_path: Path) -> None:
    out = ipset(MIXED, ExportOptions())
    lines = [line for line in out.content.splitlines() if line and not line.startswith("#")]
    assert lines == [
        "create vigil_v4 hash:net family inet hashsize 1024 maxelem 65536 -exist",
        "flush vigil_v4",
        "add vigil_v4 10.0.0.0/8 -exist",
        "add vigil_v4 192.0.2.0/24 -exist",
        "add vigil_v4 198.51.100.7 -exist",
        "create vigil_v6 hash:net family inet6 hashsize 1024 maxelem 65536 -exist",
        "flush vigil_v6",
        "add vigil_v6 2001:db8::/32 -exist",
        "add vigil_v6 2001:db9::5 -exist",
    ]
    path = tmp_path / "vigil.ipset"
    path.write_text(out.content)
    tool("ipset")
    result = in_netns(f"ipset restore < {path} && ipset restore < {path} && ipset list vigil_v4")
    assert result.returncode == 0, result.stderr
    assert "Number of entries: 3" in result.stdout


def test_ipset_maxelem_grows_with_the_list() -> None:
    many = [view("ipv4", str(ipaddress.IPv4Address(2**24 + 2 * i))) for i in range(70_000)]
    out = ipset(many, ExportOptions(ip_versions=(4,)))
    assert "maxelem 131072" in out.content and "vigil_v6" not in out.content


def test_iptables_script_structure_and_shell_syntax(tmp_path: Path) -> None:
    out = iptables(MIXED, ExportOptions(action=FirewallAction.REJECT))
    text = out.content
    assert text.startswith("#!/bin/sh\n") and "set -eu" in text
    assert "ipset swap vigil_v4_new vigil_v4" in text and "ipset swap vigil_v6_new vigil_v6" in text
    assert "iptables -w -A vigil -m set --match-set vigil_v4 src -j REJECT" in text
    assert "ip6tables -w -A vigil -m set --match-set vigil_v6 dst -j REJECT" in text
    for hook in ("INPUT", "FORWARD", "OUTPUT"):
        assert f"iptables -w -C {hook} -j vigil 2>/dev/null || iptables -w -I {hook} 1 -j vigil" in text
    assert re.findall(r"^add vigil_v4_new (\S+)$", text, re.M) == ["10.0.0.0/8", "192.0.2.0/24",
                                                                    "198.51.100.7"]
    script = tmp_path / "vigil.sh"
    script.write_text(text)
    syntax = subprocess.run(["sh", "-n", str(script)], capture_output=True, text=True, check=False)
    assert syntax.returncode == 0, syntax.stderr


def test_iptables_script_runs_twice_for_real(tmp_path: Path) -> None:
    tool("ipset")
    tool("iptables")
    script = tmp_path / "vigil.sh"
    script.write_text(iptables(MIXED, ExportOptions()).content)
    again = tmp_path / "again.sh"
    again.write_text(iptables([view("ipv4", "198.51.100.9")], ExportOptions()).content)
    result = in_netns(f"sh {script} && sh {again} && iptables -S && ipset list vigil_v4 && "
                      "ipset list -n")
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("-A INPUT -j vigil") == 1
    assert "198.51.100.9" in result.stdout and "10.0.0.0/8" not in result.stdout
    assert "vigil_v4_new" not in result.stdout


def test_empty_iptables_script_is_valid(tmp_path: Path) -> None:
    out = iptables([], ExportOptions())
    assert "ipset restore" not in out.content and "ipset swap vigil_v4_new vigil_v4" in out.content
    script = tmp_path / "empty.sh"
    script.write_text(out.content)
    assert subprocess.run(["sh", "-n", str(script)], check=False).returncode == 0
