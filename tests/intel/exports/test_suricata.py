"""Suricata rules and the datasets bundle.

Suricata is not in this machine's Debian repositories, so ``suricata -T`` cannot judge the
files here; instead every rule goes through a strict structural parser: the header, balanced
quotes, each option closed by ``;``, known keywords only, content strings whose special bytes
are all ``|xx|`` hex (and that decode back to the value), safe messages, unique sids in
Vigil's range, lines under Suricata's 8,192 bytes. When ``suricata`` is installed, ``-T``
runs as well.
"""

from __future__ import annotations

import base64
import ipaddress
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from intel.factories import NOW, view
from vigil.core.errors import InputError
from vigil.intel.exports.registry import ExportOptions
from vigil.intel.exports.suricata import MAX_RULE, RESERVED_SIDS, content, message, rules
from vigil.intel.exports.suricata_datasets import datasets
from vigil.intel.types import TLP, IndicatorType, Observable

SBIN = os.environ.get("PATH", "") + ":/usr/sbin:/sbin"


# -- the structural checker -------------------------------------------------------------------

HEADER = re.compile(r"^alert (ip|dns|tls|http) (\S+) any (->|<>) (\S+) any \((.*)\)$")
FLAGS = {"nocase", "startswith", "endswith", "dotprefix", "dns.query", "tls.sni", "http.host",
         "http.uri", "http.uri.raw", "http.user_agent", "file.name", "ja3.hash", "ip.src", "ip.dst"}
VALUED = {"msg", "content", "flow", "metadata", "sid", "rev", "dataset", "filemd5", "filesha1",
          "filesha256"}
HEX_BLOCK = re.compile(r"\|([0-9A-F]{2}(?: [0-9A-F]{2})*)\|")


def options_of(body: str) -> list[tuple[str, str | None]]:
    """Split a rule's options the way Suricata does: ``;`` ends an option unless escaped or
    inside quotes; every option must end with ``;``."""
    found: list[tuple[str, str | None]] = []
    i = 0
    while i < len(body):
        while body[i] == " ":
            i += 1
        end = i
        while body[end] not in ":;":
            end += 1
        key = body[i:end]
        if body[end] == ";":
            found.append((key, None))
            i = end + 1
            continue
        k, quoted = end + 1, False
        while True:
            assert k < len(body), f"option {key} is not closed by ';'"
            char = body[k]
            assert char != "\\", "no backslash escapes are needed or written"
            if char == '"':
                quoted = not quoted
            elif char == ";" and not quoted:
                break
            k += 1
        found.append((key, body[end + 1:k]))
        i = k + 1
    return found


def decode_content(value: str) -> bytes:
    assert value.startswith('"') and value.endswith('"') and len(value) > 2
    inner = value[1:-1]
    assert '"' not in inner and ";" not in inner and "\\" not in inner
    out = b""
    pos = 0
    for block in HEX_BLOCK.finditer(inner):
        literal = inner[pos:block.start()]
        assert "|" not in literal, "a | outside a hex block"
        out += literal.encode("ascii") + bytes.fromhex(block.group(1))
        pos = block.end()
    tail = inner[pos:]
    assert "|" not in tail
    return out + tail.encode("ascii")


def address_ok(text: str) -> bool:
    if text == "any":
        return True
    items = text[1:-1].split(",") if text.startswith("[") and text.endswith("]") else [text]
    for item in items:
        ipaddress.ip_network(item)
    return True


def check_rules(text: str, options: ExportOptions | None = None) -> list[dict[str, Any]]:
    """Parse every rule strictly; return them as dicts (header parts, options, contents)."""
    options = options or ExportOptions()
    parsed: list[dict[str, Any]] = []
    sids: set[int] = set()
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        assert len(line.encode()) <= MAX_RULE
        assert line.isascii() and "\t" not in line and "\r" not in line
        match = HEADER.match(line)
        assert match, line
        proto, src, direction, dst, body = match.groups()
        assert address_ok(src) and address_ok(dst)
        opts = options_of(body)
        keys = [k for k, _ in opts]
        for key, value in opts:
            assert (key in FLAGS and value is None) or (key in VALUED and value is not None), key
        msg = dict(opts)["msg"]
        assert msg is not None and msg.startswith('"') and msg.endswith('"')
        assert not set(msg[1:-1]) & set('";\\|') and msg[1:-1].isprintable()
        sid = int(dict(opts)["sid"] or "")
        assert dict(opts)["rev"] == "1" and keys[-2:] == ["sid", "rev"]
        assert options.sid_base <= sid < options.sid_base + options.sid_span
        assert sid not in sids, f"duplicate sid {sid}"
        sids.add(sid)
        contents = [decode_content(v) for k, v in opts if k == "content" and v is not None]
        parsed.append({"proto": proto, "src": src, "dir": direction, "dst": dst, "keys": keys,
                       "opts": opts, "contents": contents, "sid": sid})
    return parsed


def suricata_test(path: Path) -> None:
    """``suricata -T`` when Suricata is installed (it is not in this machine's repositories)."""
    binary = shutil.which("suricata", path=SBIN)
    if binary is None:
        return
    result = subprocess.run([binary, "-T", "-S", str(path), "-l", str(path.parent)],
                            capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]


# -- per-value rules --------------------------------------------------------------------------

MIXED = [
    view("ipv4", "198.51.100.7"),
    view("cidr", "10.0.0.0/8"),
    view("ipv6", "2001:db8::1"),
    view("domain", "evil.example"),
    view("domain", "bücher.example"),
    view("url", "http://evil.example/gate.php?id=1"),
    view("url", "https://[2001:db8::5]/p%20q"),
    view("url", "ftp://evil.example/x"),
    view("ja3", "e7d705a3286e19ea42f587b344ee6865"),
    view("user-agent", "Mozilla/4.0 (compatible; Evil)"),
    view("filename", "invoice.pdf.exe"),
    view("md5", "d41d8cd98f00b204e9800998ecf8427e"),
    view("email", "bob@evil.example"),
    view("ipv4", "203.0.113.1", tlp=TLP.RED),
    view("ipv4", "203.0.113.2", allowlisted="rfc5737"),
    view("ipv4", "203.0.113.3", active=False),
]


def test_rules_for_every_kind_of_value(tmp_path: Path) -> None:
    out = rules(MIXED, ExportOptions(generated=NOW))
    parsed = check_rules(out.content)
    assert (out.count, out.skipped) == (10, 6)
    assert "1 skipped: only http and https URLs can be matched by Suricata" in out.notes
    assert any("file hashes need the suricata-dataset export" in n for n in out.notes)
    assert "203.0.113" not in out.content
    by_text = {p["src"] if p["proto"] == "ip" else p["contents"][0]: p for p in parsed if p["contents"]
               or p["proto"] == "ip"}
    assert by_text["198.51.100.7"]["dir"] == "<>" and by_text["10.0.0.0/8"]["dst"] == "any"
    assert "2001:db8::1" in by_text
    dns = [p for p in parsed if p["proto"] == "dns"]
    assert sorted(p["contents"][0] for p in dns) == [b".evil.example", b".xn--bcher-kva.example"]
    assert all(p["keys"][1:6] == ["dns.query", "dotprefix", "content", "nocase", "endswith"] for p in dns)
    assert len([p for p in parsed if "tls.sni" in p["keys"]]) == 2
    url = next(p for p in parsed if b"/gate.php?id=1" in p["contents"])
    assert url["contents"] == [b"evil.example", b"/gate.php?id=1"]
    assert url["keys"].index("http.host") < url["keys"].index("http.uri")
    raw = next(p for p in parsed if p["dst"] == "2001:db8::5")
    assert "http.uri.raw" in raw["keys"] and raw["contents"] == [b"/p%20q"]
    assert any(p["contents"] == [b"Mozilla/4.0 (compatible; Evil)"] for p in parsed)
    path = tmp_path / "vigil.rules"
    path.write_text(out.content)
    suricata_test(path)


def test_content_escaping_round_trips_any_text() -> None:
    for text in ['a"b', "a;b", "a\\b", "a|b", "line\nbreak", "tab\there", "ünï€ode", "|41|", "\x00\x7f",
                 '"; sid:1; rev:1;) alert ip any any -> any any (msg:"x']:
        escaped = content(text)
        assert decode_content(f'"{escaped}"') == text.encode("utf-8")
    assert content("a;b") == "a|3B|b" and content('"|\\') == "|22 7C 5C|"
    assert message('x"; alert;\n\\|é') == "x?? alert?????"
    assert len(message("m" * 500)) == 100


HOSTILE = ['evil".example', "a;b.example", "x.example\nalert ip any any -> any any (sid:1;)",
           "foo bar.example", "|41|.example"]


def test_hostile_values_never_break_a_rule() -> None:
    given_views = [view("domain", h) for h in HOSTILE]
    given_views += [
        view("url", 'http://evil.example/a";b|c\\d?e=f g'),
        view("url", "http://evil.example/x\nalert ip any any -> any any (sid:1;)"),
        view("url", 'http://ev"il.example/'),
        view("user-agent", 'UA"; sid:1; rev:1;) alert ip any any -> any any (msg:"pwn'),
        view("filename", "a\x00b|c;d\"e\\f\u00e9.exe"),
        view("ja3", 'e7d705a3286e19ea42f587b344ee68";'),
    ]
    out = rules(given_views, ExportOptions())
    parsed = check_rules(out.content)
    assert len(parsed) == 3                        # the URL with odd bytes, the UA, the file name
    contents = [c for p in parsed for c in p["contents"]]
    assert b'/a";b|c\\d?e=f g' in contents
    assert b'UA"; sid:1; rev:1;) alert ip any any -> any any (msg:"pwn' in contents
    assert "a\x00b|c;d\"e\\f\u00e9.exe".encode() in contents
    assert out.skipped == len(given_views) - 3


def test_sids_are_stable_unique_and_in_range() -> None:
    first = {p["contents"][0] if p["contents"] else p["src"]: p["sid"]
             for p in check_rules(rules(MIXED, ExportOptions()).content)}
    more = [*MIXED, *(view("ipv4", f"192.0.2.{i}") for i in range(200)), view("domain", "new.example")]
    second = {p["contents"][0] if p["contents"] else p["src"]: p["sid"]
              for p in check_rules(rules(list(reversed(more)), ExportOptions()).content)}
    assert all(second[key] == sid for key, sid in first.items())
    options = ExportOptions(sid_base=3_000_000, sid_span=20_000)
    parsed = check_rules(rules(more, options).content, options)
    assert all(3_000_000 + RESERVED_SIDS <= p["sid"] < 3_020_000 for p in parsed)
    with pytest.raises(InputError):
        rules([view("ipv4", str(ipaddress.IPv4Address(2**24 + i))) for i in range(10_001)], options)


def test_duplicates_and_pattern_observables() -> None:
    pattern = view("stix-pattern", "[ipv4-addr:value = '192.0.2.9'] OR [ipv4-addr:value = '192.0.2.10']",
                   observables=(Observable(IndicatorType.IPV4, "192.0.2.9"),
                                Observable(IndicatorType.IPV4, "192.0.2.10")))
    compound = view("stix-pattern", "[a:b = 'c'] AND [d:e = 'f']", observables=())
    out = rules([pattern, compound, view("ipv4", "192.0.2.9")], ExportOptions())
    parsed = check_rules(out.content)
    assert sorted(p["src"] for p in parsed) == ["192.0.2.10", "192.0.2.9"]
    assert (out.count, out.skipped) == (2, 1)


def test_overlong_rules_are_skipped() -> None:
    out = rules([view("url", "http://evil.example/" + ";" * 3000)], ExportOptions())
    assert out.count == 0 and out.notes == ("1 skipped: rule longer than Suricata's 8192-byte limit",)


# -- datasets bundle --------------------------------------------------------------------------


def test_datasets_bundle(tmp_path: Path) -> None:
    given_views = [*MIXED, view("sha256", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
                   view("sha1", "da39a3ee5e6b4b0d3255bfef95601890afd80709"),
                   view("sha512", "cf83e1357eefb8bdf1542850d66d8007d620e4050b5715dc83f4a921d36ce9ce"
                                  "47d0d13c5d85f2b0ff8318d2877eec2f63b931bd47417a81a538327af927da3e"),
                   view("user-agent", 'UA"; sid:1;\nx')]
    out = datasets(given_views, ExportOptions())
    files = {f.name: f.content for f in out.files}
    assert sorted(files) == ["vigil-domains.lst", "vigil-filenames.lst", "vigil-ja3.lst", "vigil-md5.lst",
                             "vigil-sha1.lst", "vigil-sha256.lst", "vigil-ua.lst", "vigil.rules"]
    assert files["vigil.rules"] == out.content
    decoded = {name: [base64.b64decode(line).decode() for line in text.splitlines()]
               for name, text in files.items() if name in ("vigil-domains.lst", "vigil-ua.lst",
                                                           "vigil-filenames.lst", "vigil-ja3.lst")}
    assert decoded["vigil-domains.lst"] == ["evil.example", "xn--bcher-kva.example"]
    assert decoded["vigil-ua.lst"] == ["Mozilla/4.0 (compatible; Evil)", 'UA"; sid:1;\nx']
    assert decoded["vigil-ja3.lst"] == ["e7d705a3286e19ea42f587b344ee6865"]
    assert files["vigil-md5.lst"] == "d41d8cd98f00b204e9800998ecf8427e\n"
    parsed = check_rules(out.content)
    datasets_used = [v for p in parsed for k, v in p["opts"] if k == "dataset"]
    assert "isset,vigil-domains, type string, load vigil-domains.lst" in datasets_used
    assert sum(1 for d in datasets_used if "vigil-domains" in d) == 3
    assert any(k == "filesha256" and v == "vigil-sha256.lst" for p in parsed for k, v in p["opts"])
    group = next(p for p in parsed if p["proto"] == "ip")
    assert group["src"] == "[10.0.0.0/8,198.51.100.7,2001:db8::1]" and group["sid"] == 1_000_100
    assert {p["sid"] for p in parsed if p["proto"] != "ip"} <= set(range(1_000_000, 1_000_100))
    assert any("URLs need the suricata-rules export" in n for n in out.notes)
    assert any("sha512 cannot be expressed" in n for n in out.notes)
    (tmp_path / "vigil.rules").write_text(out.content)
    suricata_test(tmp_path / "vigil.rules")


def test_datasets_split_large_address_lists_and_ip_datasets() -> None:
    many = [view("ipv4", str(ipaddress.IPv4Address(2**24 + 2 * i))) for i in range(5000)]
    many.append(view("cidr", "172.16.0.0/12"))
    out = datasets(many, ExportOptions())
    groups = [p for p in check_rules(out.content) if p["proto"] == "ip"]
    assert len(groups) > 1 and all(len(p["src"]) < MAX_RULE - 300 for p in groups)
    assert sum(len(p["src"][1:-1].split(",")) for p in groups) == 5001
    with_sets = datasets(many, ExportOptions(suricata_ip_datasets=True))
    files = {f.name: f.content for f in with_sets.files}
    assert len(files["vigil-ip.lst"].splitlines()) == 5000
    parsed = check_rules(with_sets.content)
    assert [p["src"] for p in parsed if p["proto"] == "ip" and p["src"] != "any"] == ["[172.16.0.0/12]"]
    assert sum(1 for p in parsed if "ip.src" in p["keys"] or "ip.dst" in p["keys"]) == 2


def test_empty_bundle() -> None:
    out = datasets([], ExportOptions())
    assert [f.name for f in out.files] == ["vigil.rules"]
    assert check_rules(out.content) == []
