"""Canonical indicator values: refanging, per-type normal forms, type guessing, stable ids.

The canonical form decides deduplication, so every importer goes through :func:`make_input`:

- IPs in ``ipaddress`` form (``::ffff:0:0/96``-mapped IPv4 stays IPv6); a CIDR keeps its
  network address (``10.1.2.3/8`` becomes ``10.0.0.0/8``); a ``/32`` or ``/128`` is an address.
- Domains lower-case, IDNA (``bücher.example`` → ``xn--bcher-kva.example``), no trailing dot.
- URLs: scheme and host lower-case and IDNA, default port dropped, path and query kept as
  given, fragment dropped; a URL without a scheme gets ``http://``.
- E-mail: the domain part as a domain; the local part as given.
- Hashes lower-case hex, the algorithm checked against the length.
- File names, JA3 and user agents trimmed (JA3 lower-case).

Defanged text (``hxxp://evil[.]example``, ``1.2.3[.]4``, ``user[at]example(dot)com``) is
refanged first. The id of an indicator is a UUIDv5 of ``type:value``.
"""

from __future__ import annotations

import ipaddress
import re
import uuid
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from vigil.core.errors import InputError
from vigil.intel.types import HASH_TYPES, IndicatorInput, IndicatorType, Observable

NAMESPACE = uuid.UUID("6f1c3d52-0b7e-5c4a-9a51-7e1f0c3b2a90")
"""The UUIDv5 namespace of Vigil's indicator ids."""
MAX_VALUE = 8192
"""The longest value accepted (a longer one is not an indicator but a document)."""

_HASH_LENGTHS = {32: IndicatorType.MD5, 40: IndicatorType.SHA1, 64: IndicatorType.SHA256,
                 128: IndicatorType.SHA512}
_HEX = re.compile(r"^[0-9a-f]+$")
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
_LABEL = re.compile(r"^(?!-)[a-z0-9_-]{1,63}(?<!-)$")
_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]{1,255}$")
_DEFANG = (
    (re.compile(r"^hxxps", re.IGNORECASE), "https"),
    (re.compile(r"^hxxp", re.IGNORECASE), "http"),
    (re.compile(r"^fxp", re.IGNORECASE), "ftp"),
    (re.compile(r"\[\s*(?:\.|dot)\s*\]|\(\s*(?:\.|dot)\s*\)|\{\s*(?:\.|dot)\s*\}", re.IGNORECASE), "."),
    (re.compile(r"\[\s*(?:@|at)\s*\]|\(\s*(?:@|at)\s*\)|\{\s*(?:@|at)\s*\}", re.IGNORECASE), "@"),
    (re.compile(r"\[\s*:\s*\]"), ":"),
    (re.compile(r"\[\s*/\s*\]"), "/"),
    (re.compile(r"\[://\]"), "://"),
)
_DEFAULT_PORTS = {"http": 80, "https": 443, "ftp": 21}


def _shown(value: object, limit: int = 80) -> str:
    """A value as error messages quote it: its repr, cut short (a rejected value may be huge)."""
    text = repr(value)
    return text if len(text) <= limit else f"{text[:limit]}... ({len(str(value)):,} characters)"


def refang(text: str) -> str:
    """``hxxp://evil[.]example`` → ``http://evil.example`` (and the other common forms)."""
    value = text.strip()
    for pattern, replacement in _DEFANG:
        value = pattern.sub(replacement, value)
    return value


def indicator_id(kind: IndicatorType, value: str) -> str:
    """The stable id of an indicator: UUIDv5 of ``type:canonical value``."""
    return str(uuid.uuid5(NAMESPACE, f"{kind.value}:{value}"))


def _ip(value: str) -> tuple[IndicatorType, str]:
    try:
        address = ipaddress.ip_address(value)
    except ValueError:
        raise InputError(f"not an IP address: {_shown(value)}") from None
    return (IndicatorType.IPV4 if address.version == 4 else IndicatorType.IPV6), str(address)


def _cidr(value: str) -> tuple[IndicatorType, str]:
    try:
        network = ipaddress.ip_network(value, strict=False)
    except ValueError:
        raise InputError(f"not an IP network: {_shown(value)}") from None
    if network.prefixlen == network.max_prefixlen:
        return _ip(str(network.network_address))
    return IndicatorType.CIDR, str(network)


def domain(value: str) -> str:
    """A host name in canonical form (lower-case, IDNA, no trailing dot); InputError if not one."""
    text = value.strip().rstrip(".").lower()
    if text.startswith("*."):
        text = text[2:]
    if not text or len(text) > 253:
        raise InputError(f"not a domain name: {_shown(value)}")
    try:
        text = text.encode("idna").decode("ascii") if not text.isascii() else text
    except UnicodeError:
        raise InputError(f"not a domain name (IDNA): {_shown(value)}") from None
    labels = text.split(".")
    if len(labels) < 2 or not all(_LABEL.match(label) for label in labels):
        raise InputError(f"not a domain name: {_shown(value)}")
    if labels[-1].isdigit():
        raise InputError(f"not a domain name (an IP address?): {_shown(value)}")
    return text


def url(value: str) -> str:
    """A URL in canonical form; InputError when it has no host."""
    text = value.partition("#")[0].strip()
    if "://" not in text:
        text = "http://" + text
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError:
        raise InputError(f"not a URL: {_shown(value)}") from None
    scheme = parts.scheme.lower()
    host = parts.hostname or ""
    if not scheme or not host:
        raise InputError(f"not a URL (no host): {_shown(value)}")
    try:
        host = str(ipaddress.ip_address(host.strip("[]")))
        if ":" in host:
            host = f"[{host}]"
    except ValueError:
        host = domain(host) if "." in host else host.lower()
    netloc = host
    if parts.username or parts.password:
        netloc = f"{parts.username or ''}{':' + parts.password if parts.password else ''}@{host}"
    if port is not None and _DEFAULT_PORTS.get(scheme) != port:
        netloc += f":{port}"
    path = parts.path if parts.query else parts.path.rstrip()  # no trailing blank once "?" is gone
    return urlunsplit((scheme, netloc, path or "/", parts.query, ""))


def email(value: str) -> str:
    text = value.strip()
    if text.lower().startswith("mailto:"):
        text = text[7:]
    if not _EMAIL.match(text):
        raise InputError(f"not an e-mail address: {_shown(value)}")
    local, _, host = text.rpartition("@")
    return f"{local}@{domain(host)}"


def hash_value(kind: IndicatorType, value: str) -> str:
    text = value.strip().lower()
    expected = _HASH_LENGTHS.get(len(text))
    if not _HEX.match(text) or expected is None:
        raise InputError(f"not a hash: {_shown(value)}")
    if expected is not kind:
        raise InputError(f"a {kind.value} has {_length(kind)} hex digits, not {len(text)}: {_shown(value)}")
    return text


def _length(kind: IndicatorType) -> int:
    return next(n for n, k in _HASH_LENGTHS.items() if k is kind)


def canonical(kind: IndicatorType, value: str) -> tuple[IndicatorType, str]:
    """The canonical (type, value) of a value of the given type. An IP given as ``cidr`` or a
    ``/32`` becomes an address; an address given with a prefix becomes a ``cidr``.
    :class:`InputError` when the value is not of the type."""
    if not isinstance(value, str):
        raise InputError(f"a {kind.value} value must be text, not {type(value).__name__}")
    if len(value) > MAX_VALUE:
        raise InputError(f"value longer than {MAX_VALUE} characters")
    if _UNSTORABLE.search(value):
        raise InputError(f"a {kind.value} value cannot hold a NUL character or an unpaired surrogate")
    verbatim = kind in (IndicatorType.STIX_PATTERN, IndicatorType.USER_AGENT, IndicatorType.FILENAME)
    text = value.strip() if verbatim else refang(value)  # "(at)" in a user agent is no defanging
    if not text:
        raise InputError(f"empty {kind.value} value")
    if kind in (IndicatorType.IPV4, IndicatorType.IPV6, IndicatorType.CIDR):
        found = _cidr(text) if "/" in text else _ip(text)
        if kind is not IndicatorType.CIDR and found[0] is not kind and found[0] is not IndicatorType.CIDR:
            raise InputError(f"not an {kind.value} address: {_shown(value)}")
        return found
    if kind is IndicatorType.DOMAIN:
        return kind, domain(text)
    if kind is IndicatorType.URL:
        return kind, url(text)
    if kind is IndicatorType.EMAIL:
        return kind, email(text)
    if kind in HASH_TYPES:
        return kind, hash_value(kind, text)
    if kind is IndicatorType.JA3:
        ja3 = text.lower()
        if len(ja3) != 32 or not _HEX.match(ja3):
            raise InputError(f"a JA3 fingerprint is an MD5 (32 hex digits): {_shown(value)}")
        return kind, ja3
    return kind, text


def guess_type(value: str) -> IndicatorType:
    """The type of a bare value (a line of a plain list): IP, CIDR, hash, e-mail, URL or
    domain; :class:`InputError` when it is none of them."""
    if not isinstance(value, str):
        raise InputError(f"a value must be text, not {type(value).__name__}")
    text = refang(value)
    if not text:
        raise InputError("empty value")
    try:
        return (_cidr(text) if "/" in text and "://" not in text else _ip(text))[0]
    except InputError:
        pass
    lowered = text.lower()
    if _HEX.match(lowered) and len(lowered) in _HASH_LENGTHS:
        return _HASH_LENGTHS[len(lowered)]
    if "://" in text:
        return IndicatorType.URL
    if "@" in text and _EMAIL.match(text):
        return IndicatorType.EMAIL
    if "/" in text:
        return IndicatorType.URL
    domain(text)
    return IndicatorType.DOMAIN


def make_input(kind: IndicatorType | str, value: str, source: str, **details: Any) -> IndicatorInput:
    """An :class:`IndicatorInput` in canonical form (``details`` are its other fields).

    A simple indicator's only observable is itself, unless ``observables`` is given (a STIX
    pattern's values). Confidence is clamped to 0-100; ``labels``, ``attack`` and ``malware``
    are deduplicated. :class:`InputError` when the value is not of the type.
    """
    kind = IndicatorType.parse(kind) if isinstance(kind, str) else kind
    kind, canonical_value = canonical(kind, value)
    observables = details.pop("observables", None)
    if observables is None:
        observables = () if kind is IndicatorType.STIX_PATTERN else (Observable(kind, canonical_value),)
    confidence = details.pop("confidence", None)
    if confidence is not None:
        confidence = max(0, min(100, int(confidence)))
    for name in ("labels", "attack", "malware", "markings"):
        if name in details:
            details[name] = tuple(dict.fromkeys(str(v) for v in details[name] if v))
    for name in ("valid_from", "valid_until", "first_seen", "last_seen"):
        moment = details.get(name)
        if moment is not None and not isinstance(moment, datetime):
            raise InputError(f"{name} must be a datetime")
    return IndicatorInput(type=kind, value=canonical_value, source=source,
                          observables=tuple(observables), confidence=confidence, **details)


def observable(kind: IndicatorType | str, value: str) -> Observable:
    """A matchable value in canonical form."""
    kind = IndicatorType.parse(kind) if isinstance(kind, str) else kind
    found_kind, found = canonical(kind, value)
    return Observable(found_kind, found)
