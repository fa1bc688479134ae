"""Canonical indicator values: refanging, per-type normal forms, type guessing, stable ids,
``make_input``; canonical forms are idempotent, and hostile input is an InputError."""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.provisional import domains

from vigil.core.errors import InputError
from vigil.intel.normalize import (
    MAX_VALUE,
    canonical,
    domain,
    guess_type,
    indicator_id,
    make_input,
    observable,
    refang,
)
from vigil.intel.types import IndicatorType, Observable

T = IndicatorType
MD5_EMPTY = "d41d8cd98f00b204e9800998ecf8427e"


@pytest.mark.parametrize(("defanged", "plain"), [
    ("hxxp://evil-c2.ru/gate.php", "http://evil-c2.ru/gate.php"),
    ("hxxps://evil-c2.ru/gate.php", "https://evil-c2.ru/gate.php"),
    ("HXXPS://evil-c2.ru/", "https://evil-c2.ru/"),
    ("fxp://evil-c2.ru/drop.bin", "ftp://evil-c2.ru/drop.bin"),
    ("evil-c2[.]ru", "evil-c2.ru"),
    ("evil-c2[ . ]ru", "evil-c2.ru"),
    ("evil-c2(.)ru", "evil-c2.ru"),
    ("evil-c2(dot)ru", "evil-c2.ru"),
    ("evil-c2[dot]ru", "evil-c2.ru"),
    ("evil-c2{.}ru", "evil-c2.ru"),
    ("45.9.148[.]3", "45.9.148.3"),
    ("billing[at]evil-c2[.]ru", "billing@evil-c2.ru"),
    ("billing(at)evil-c2(dot)ru", "billing@evil-c2.ru"),
    ("billing[@]evil-c2.ru", "billing@evil-c2.ru"),
    ("http[:]//evil-c2.ru[/]x", "http://evil-c2.ru/x"),
    ("http[://]evil-c2.ru/x", "http://evil-c2.ru/x"),
    ("  evil-c2.ru\n", "evil-c2.ru"),
])
def test_refang(defanged: str, plain: str) -> None:
    assert refang(defanged) == plain


def test_refanged_values_are_canonical() -> None:
    assert canonical(T.URL, "hxxps://Evil-C2[.]RU/Gate.php") == (T.URL, "https://evil-c2.ru/Gate.php")
    assert canonical(T.IPV4, "45.9.148[.]3") == (T.IPV4, "45.9.148.3")
    assert canonical(T.EMAIL, "billing[at]evil-c2(dot)ru") == (T.EMAIL, "billing@evil-c2.ru")
    assert canonical(T.DOMAIN, "evil-c2[.]ru") == (T.DOMAIN, "evil-c2.ru")


def test_user_agents_and_file_names_are_not_refanged() -> None:
    agent = "Mozilla/5.0 (compatible; CrawlBot/2.1; ops(at)crawl(dot)io)"
    assert canonical(T.USER_AGENT, f"  {agent} ") == (T.USER_AGENT, agent)
    assert canonical(T.FILENAME, "invoice[.]pdf.exe") == (T.FILENAME, "invoice[.]pdf.exe")
    assert canonical(T.FILENAME, " payload.DLL ") == (T.FILENAME, "payload.DLL")


@pytest.mark.parametrize(("kind", "given", "expected"), [
    (T.IPV4, "45.9.148.3", (T.IPV4, "45.9.148.3")),
    (T.IPV4, " 45.9.148.3 ", (T.IPV4, "45.9.148.3")),
    (T.IPV6, "2A03:2880:F12F:0083:0000:0000:0000:0001", (T.IPV6, "2a03:2880:f12f:83::1")),
    (T.IPV6, "2a03:2880:f12f:83:0:0:0:1", (T.IPV6, "2a03:2880:f12f:83::1")),
    (T.IPV6, "::ffff:45.9.148.3", (T.IPV6, "::ffff:2d09:9403")),
    (T.CIDR, "91.240.118.77/24", (T.CIDR, "91.240.118.0/24")),
    (T.CIDR, "91.240.118.0/24", (T.CIDR, "91.240.118.0/24")),
    (T.CIDR, "2a03:2880:F12F::1/48", (T.CIDR, "2a03:2880:f12f::/48")),
    (T.CIDR, "45.9.148.3/32", (T.IPV4, "45.9.148.3")),
    (T.CIDR, "45.9.148.3", (T.IPV4, "45.9.148.3")),
    (T.CIDR, "2a03:2880:f12f:83::1/128", (T.IPV6, "2a03:2880:f12f:83::1")),
    (T.IPV4, "45.9.148.3/32", (T.IPV4, "45.9.148.3")),
    (T.IPV4, "91.240.118.9/24", (T.CIDR, "91.240.118.0/24")),
])
def test_addresses_and_networks(kind: IndicatorType, given: str, expected: tuple[IndicatorType, str]) -> None:
    assert canonical(kind, given) == expected


@pytest.mark.parametrize(("kind", "value"), [
    (T.IPV4, "2a03:2880:f12f:83::1"),
    (T.IPV6, "45.9.148.3"),
    (T.IPV4, "45.9.148"),
    (T.IPV4, "45.9.148.256"),
    (T.IPV4, "evil-c2.ru"),
    (T.CIDR, "91.240.118.0/33"),
    (T.CIDR, "91.240.118.0/-1"),
    (T.CIDR, "91.240.118.0/x"),
    (T.CIDR, "2a03:2880::/129"),
])
def test_bad_addresses(kind: IndicatorType, value: str) -> None:
    with pytest.raises(InputError):
        canonical(kind, value)


@pytest.mark.parametrize(("given", "expected"), [
    ("Evil-C2.RU", "evil-c2.ru"),
    ("evil-c2.ru.", "evil-c2.ru"),
    ("*.evil-c2.ru", "evil-c2.ru"),
    ("Cdn.Evil-C2.ru", "cdn.evil-c2.ru"),
    ("bücher-shop.ru", "xn--bcher-shop-9db.ru"),
    ("пример.рф", "xn--e1afmkfd.xn--p1ai"),
    ("xn--e1afmkfd.xn--p1ai", "xn--e1afmkfd.xn--p1ai"),
    ("update_srv.evil-c2.ru", "update_srv.evil-c2.ru"),
    ("a" * 63 + ".ru", "a" * 63 + ".ru"),
])
def test_domains(given: str, expected: str) -> None:
    assert canonical(T.DOMAIN, given) == (T.DOMAIN, expected)
    assert domain(given) == expected


@pytest.mark.parametrize("value", [
    "localhost", "evil-c2", "-evil.ru", "evil-.ru", "evil..ru", "evil c2.ru", "a" * 64 + ".ru",
    ".".join(["abcdefgh"] * 30) + ".ru", "45.9.148.3", "10.1.2", "evil.123", "evil/c2.ru", "", " ",
    ".", "ev!l.ru",
])
def test_bad_domains(value: str) -> None:
    with pytest.raises(InputError):
        canonical(T.DOMAIN, value)


@pytest.mark.parametrize(("given", "expected"), [
    ("HTTP://Evil-C2.RU/Gate.PHP", "http://evil-c2.ru/Gate.PHP"),
    ("http://evil-c2.ru:80/a", "http://evil-c2.ru/a"),
    ("https://evil-c2.ru:443/a", "https://evil-c2.ru/a"),
    ("ftp://evil-c2.ru:21/a", "ftp://evil-c2.ru/a"),
    ("http://evil-c2.ru:8080/a", "http://evil-c2.ru:8080/a"),
    ("https://evil-c2.ru:80/a", "https://evil-c2.ru:80/a"),
    ("http://evil-c2.ru/p/q.php?id=7&X=Y", "http://evil-c2.ru/p/q.php?id=7&X=Y"),
    ("http://evil-c2.ru/a#section", "http://evil-c2.ru/a"),
    ("http://evil-c2.ru/a?b=1#frag", "http://evil-c2.ru/a?b=1"),
    ("http://evil-c2.ru", "http://evil-c2.ru/"),
    ("evil-c2.ru/gate.php", "http://evil-c2.ru/gate.php"),
    ("evil-c2.ru:8443/x", "http://evil-c2.ru:8443/x"),
    ("http://45.9.148.3/x", "http://45.9.148.3/x"),
    ("http://[2A03:2880:F12F:83::1]/x", "http://[2a03:2880:f12f:83::1]/x"),
    ("http://[2a03:2880:f12f:83::1]:8080/x", "http://[2a03:2880:f12f:83::1]:8080/x"),
    ("http://bücher-shop.ru/x", "http://xn--bcher-shop-9db.ru/x"),
    ("http://Admin:S3cret@Evil-C2.ru/", "http://Admin:S3cret@evil-c2.ru/"),
    ("http://evil-c2.ru/a ?", "http://evil-c2.ru/a"),
    ("http://evil-c2.ru/a? #x", "http://evil-c2.ru/a"),
])
def test_urls(given: str, expected: str) -> None:
    assert canonical(T.URL, given) == (T.URL, expected)


@pytest.mark.parametrize("value", ["http://", "http:///path", "http://evil-c2.ru:99999/",
                                   "http://evil-c2.ru:port/", "http://[2a03::zz]/", "://",
                                   "http://ev il.ru/"])
def test_bad_urls(value: str) -> None:
    with pytest.raises(InputError):
        canonical(T.URL, value)


@pytest.mark.parametrize(("given", "expected"), [
    ("Billing@Evil-C2.RU", "Billing@evil-c2.ru"),
    ("mailto:billing@evil-c2.ru", "billing@evil-c2.ru"),
    ("MAILTO:billing@evil-c2.ru.", "billing@evil-c2.ru"),
    ("pay@bücher-shop.ru", "pay@xn--bcher-shop-9db.ru"),
])
def test_emails(given: str, expected: str) -> None:
    assert canonical(T.EMAIL, given) == (T.EMAIL, expected)


@pytest.mark.parametrize("value", ["billing", "@evil-c2.ru", "billing@", "a@b@evil-c2.ru",
                                   "bill ing@evil-c2.ru", "billing@localhost", "x" * 65 + "@evil-c2.ru"])
def test_bad_emails(value: str) -> None:
    with pytest.raises(InputError):
        canonical(T.EMAIL, value)


@pytest.mark.parametrize(("kind", "value"), [
    (T.MD5, MD5_EMPTY.upper()),
    (T.SHA1, "da39a3ee5e6b4b0d3255bfef95601890afd80709"),
    (T.SHA256, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
    (T.SHA512, "cf83e1357eefb8bdf1542850d66d8007d620e4050b5715dc83f4a921d36ce9ce"
               "47d0d13c5d85f2b0ff8318d2877eec2f63b931bd47417a81a538327af927da3e"),
])
def test_hashes(kind: IndicatorType, value: str) -> None:
    assert canonical(kind, f" {value} ") == (kind, value.lower())


def test_hash_length_must_fit_the_declared_type() -> None:
    with pytest.raises(InputError, match="a sha1 has 40 hex digits, not 32"):
        canonical(T.SHA1, MD5_EMPTY)
    with pytest.raises(InputError, match="a md5 has 32 hex digits, not 64"):
        canonical(T.MD5, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
    with pytest.raises(InputError, match="not a hash"):
        canonical(T.MD5, "z" * 32)
    with pytest.raises(InputError, match="not a hash"):
        canonical(T.SHA256, "a" * 63)


def test_ja3() -> None:
    assert canonical(T.JA3, "E7D705A3286E19EA42F587B344EE6865") == (T.JA3, "e7d705a3286e19ea42f587b344ee6865")
    for bad in ("e7d705a3286e19ea42f587b344ee686", "g7d705a3286e19ea42f587b344ee6865", "771,4865-4866,0"):
        with pytest.raises(InputError, match="JA3"):
            canonical(T.JA3, bad)


def test_stix_patterns_are_kept_as_given_but_trimmed() -> None:
    pattern = "[ipv4-addr:value = '45.9.148.3'] OR [domain-name:value = 'evil-c2[.]ru']"
    assert canonical(T.STIX_PATTERN, f"  {pattern}\n") == (T.STIX_PATTERN, pattern)


@pytest.mark.parametrize(("value", "kind"), [
    ("45.9.148.3", T.IPV4),
    ("45.9.148[.]3", T.IPV4),
    ("2a03:2880:f12f:83::1", T.IPV6),
    ("91.240.118.0/24", T.CIDR),
    ("45.9.148.3/32", T.IPV4),
    ("evil-c2.ru", T.DOMAIN),
    ("evil-c2[.]ru", T.DOMAIN),
    ("http://evil-c2.ru/gate.php", T.URL),
    ("hxxp://evil-c2[.]ru", T.URL),
    ("evil-c2.ru/gate.php", T.URL),
    ("billing@evil-c2.ru", T.EMAIL),
    ("billing[at]evil-c2.ru", T.EMAIL),
    (MD5_EMPTY, T.MD5),
    (MD5_EMPTY.upper(), T.MD5),
    ("a" * 40, T.SHA1),
    ("a" * 64, T.SHA256),
    ("a" * 128, T.SHA512),
])
def test_guess_type(value: str, kind: IndicatorType) -> None:
    assert guess_type(value) is kind
    canonical(kind, value)  # what is guessed is accepted as that type


@pytest.mark.parametrize("value", ["", "   ", "not an indicator", "a" * 33, "evil-c2", "\x00"])
def test_guess_type_rejects(value: str) -> None:
    with pytest.raises(InputError):
        guess_type(value)


@pytest.mark.parametrize(("kind", "spellings"), [
    (T.URL, ["http://evil-c2.ru/gate.php", "HTTP://EVIL-C2.RU:80/gate.php", "hxxp://evil-c2[.]ru/gate.php",
             "evil-c2.ru/gate.php", "http://evil-c2.ru/gate.php#top"]),
    (T.DOMAIN, ["evil-c2.ru", "EVIL-C2.RU.", "evil-c2[.]ru", "evil-c2(dot)ru"]),
    (T.IPV6, ["2a03:2880:f12f:83::1", "2A03:2880:F12F:0083:0:0:0:1", "2a03:2880:f12f:83::1/128"]),
    (T.CIDR, ["91.240.118.0/24", "91.240.118.200/24", "91.240.118[.]0/24"]),
    (T.MD5, [MD5_EMPTY, MD5_EMPTY.upper(), f"  {MD5_EMPTY}"]),
])
def test_stable_ids_for_equivalent_spellings(kind: IndicatorType, spellings: list[str]) -> None:
    ids = {make_input(kind, spelling, "feed").value for spelling in spellings}
    assert len(ids) == 1
    ids = {indicator_id(*canonical(kind, spelling)) for spelling in spellings}
    assert len(ids) == 1


def test_ids_are_uuid5_of_type_and_value() -> None:
    first = indicator_id(T.IPV4, "45.9.148.3")
    assert first == indicator_id(T.IPV4, "45.9.148.3")
    assert first[14] == "5"  # version nibble
    assert first != indicator_id(T.IPV4, "45.9.148.4")
    assert indicator_id(T.MD5, MD5_EMPTY) != indicator_id(T.JA3, MD5_EMPTY)


def test_make_input() -> None:
    item = make_input("IPv4", "45.9.148[.]3", "feodo", confidence=250,
                      labels=["c2", "botnet", "c2", ""], attack=("T1071", "T1071"),
                      malware=["Emotet", "Emotet"], markings=["m1", "m1"],
                      first_seen=datetime(2026, 1, 1, tzinfo=UTC), reference="row-1")
    assert (item.type, item.value, item.source) == (T.IPV4, "45.9.148.3", "feodo")
    assert item.confidence == 100
    assert item.labels == ("c2", "botnet")
    assert (item.attack, item.malware, item.markings) == (("T1071",), ("Emotet",), ("m1",))
    assert item.observables == (Observable(T.IPV4, "45.9.148.3"),)
    assert item.reference == "row-1"
    assert make_input(T.IPV4, "45.9.148.3", "f", confidence=-20).confidence == 0
    assert make_input(T.IPV4, "45.9.148.3", "f", confidence="70").confidence == 70
    assert make_input(T.IPV4, "45.9.148.3", "f").confidence is None
    # A CIDR that is one address becomes that address (type included), its observable too.
    single = make_input(T.CIDR, "45.9.148.3/32", "f")
    assert (single.type, single.observables) == (T.IPV4, (Observable(T.IPV4, "45.9.148.3"),))


def test_make_input_patterns_and_observables() -> None:
    pattern = "[ipv4-addr:value = '45.9.148.3'] OR [domain-name:value = 'evil-c2.ru']"
    assert make_input(T.STIX_PATTERN, pattern, "stix").observables == ()
    given = (Observable(T.IPV4, "45.9.148.3"), Observable(T.DOMAIN, "evil-c2.ru"))
    assert make_input(T.STIX_PATTERN, pattern, "stix", observables=given).observables == given


def test_make_input_rejects() -> None:
    with pytest.raises(InputError, match="unknown indicator type"):
        make_input("hostname", "evil-c2.ru", "f")
    with pytest.raises(InputError, match="first_seen must be a datetime"):
        make_input(T.DOMAIN, "evil-c2.ru", "f", first_seen="2026-01-01")
    with pytest.raises(InputError):
        make_input(T.DOMAIN, "evil c2", "f")


def test_observable() -> None:
    assert observable("domain", "Evil-C2[.]RU") == Observable(T.DOMAIN, "evil-c2.ru")
    assert observable(T.CIDR, "45.9.148.3/32") == Observable(T.IPV4, "45.9.148.3")
    with pytest.raises(InputError):
        observable(T.IPV4, "evil-c2.ru")


# Hostile input: whatever it is, the answer is a value or an InputError, nothing else.

HOSTILE: list[object] = [
    "x" * 10_000, "a." * 5_000 + "ru", "http://" + "a" * 10_000 + ".ru/", "1" * 10_000,
    "evil-c2\x00.ru", "45.9.148.3\x00", "http://evil-c2.ru/\x00", "\x00" * 100, "Mozilla\x00",
    "\ud800", "http://[", "http://[::1", "]]]]", "[.]" * 3000, "%00", "\u202e", "\t\r\n",
    b"evil-c2.ru", 45, 4.5, None, ["evil-c2.ru"], {"value": "evil-c2.ru"},
]


def _storable(kind: IndicatorType, value: str) -> None:
    """What is accepted can be stored: it has an id and encodes as UTF-8."""
    indicator_id(kind, value)
    value.encode("utf-8")
    assert len(value) <= MAX_VALUE + 16


@pytest.mark.parametrize("kind", list(IndicatorType))
def test_hostile_values_are_input_errors(kind: IndicatorType) -> None:
    for value in HOSTILE:
        with contextlib.suppress(InputError):
            _storable(*canonical(kind, value))  # type: ignore[arg-type]
        with contextlib.suppress(InputError):
            found = observable(kind, value)  # type: ignore[arg-type]
            _storable(found.type, found.value)
        with contextlib.suppress(InputError):
            item = make_input(kind, value, "feed")  # type: ignore[arg-type]
            _storable(item.type, item.value)


def test_nul_surrogates_and_oversized_values_are_refused_for_every_type() -> None:
    for kind in IndicatorType:
        for bad in ("http://evil-c2.ru/\x00", "Mozilla/5.0\x00", "evil\ud800.exe", "http://evil-c2.ru/\udcff"):
            with pytest.raises(InputError, match="NUL character or an unpaired surrogate"):
                canonical(kind, bad)
        with pytest.raises(InputError, match="longer than"):
            canonical(kind, "a" * (MAX_VALUE + 1))
        with pytest.raises(InputError, match="must be text"):
            canonical(kind, b"evil-c2.ru")  # type: ignore[arg-type]


def test_hostile_values_for_guess_type() -> None:
    for value in HOSTILE:
        with contextlib.suppress(InputError):
            guess_type(value)  # type: ignore[arg-type]


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(list(IndicatorType)), st.text(max_size=80))
def test_any_text_is_a_value_or_an_input_error(kind: IndicatorType, text: str) -> None:
    try:
        found = canonical(kind, text)
    except InputError:
        return
    assert canonical(*found) == found
    _storable(*found)


# Idempotence: the canonical form of a canonical form is itself.

@settings(max_examples=200, deadline=None)
@given(st.ip_addresses(), st.booleans())
def test_canonical_ips_are_idempotent(address: object, as_cidr: bool) -> None:
    kind = T.CIDR if as_cidr else (T.IPV4 if getattr(address, "version", 4) == 4 else T.IPV6)
    once = canonical(kind, str(address).upper())
    assert canonical(*once) == once
    assert once[0] in (T.IPV4, T.IPV6)


@settings(max_examples=200, deadline=None)
@given(st.ip_addresses(), st.data())
def test_canonical_networks_are_idempotent(address: object, data: st.DataObject) -> None:
    width = 32 if getattr(address, "version", 4) == 4 else 128
    prefix = data.draw(st.integers(0, width))
    once = canonical(T.CIDR, f"{address}/{prefix}")
    assert canonical(*once) == once
    assert once[0] is (T.CIDR if prefix < width else (T.IPV4 if width == 32 else T.IPV6))


_LABEL = st.from_regex(r"[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,10}[a-zA-Z0-9])?|[a-zäöüéçßи]{1,8}", fullmatch=True)
_NAMES = st.one_of(domains(), st.builds(
    lambda labels, tld: ".".join([*labels, tld]), st.lists(_LABEL, min_size=1, max_size=4),
    st.sampled_from(["ru", "COM", "io", "рф", "xn--p1ai"])))


@settings(max_examples=200, deadline=None)
@given(_NAMES, st.booleans())
def test_canonical_domains_are_idempotent(name: str, trailing_dot: bool) -> None:
    once = canonical(T.DOMAIN, name + ("." if trailing_dot else ""))
    assert canonical(*once) == once
    assert once[1] == once[1].lower() and once[1].isascii() and not once[1].endswith(".")


@st.composite
def _urls(draw: st.DrawFn) -> str:
    scheme = draw(st.sampled_from(["http", "HTTPS", "ftp", "hxxp", "hXXps", "tcp"]))
    host = draw(st.one_of(_NAMES, st.ip_addresses(v=4).map(str),
                          st.ip_addresses(v=6).map(lambda a: f"[{a}]")))
    port = draw(st.one_of(st.none(), st.integers(0, 65535)))
    path = draw(st.text(st.characters(codec="utf-8", exclude_characters="#\x00"), max_size=20))
    query = draw(st.one_of(st.none(), st.text(st.characters(codec="utf-8", exclude_characters="\x00"),
                                                max_size=12)))
    fragment = draw(st.one_of(st.none(), st.text(max_size=5)))
    text = f"{scheme}://{host}" + (f":{port}" if port is not None else "") + "/" + path
    text += "" if query is None else "?" + query
    return text + ("" if fragment is None else "#" + fragment)


@settings(max_examples=300, deadline=None)
@given(_urls())
def test_canonical_urls_are_idempotent(text: str) -> None:
    try:
        once = canonical(T.URL, text)
    except InputError:
        return
    assert canonical(*once) == once
    assert "#" not in once[1]
