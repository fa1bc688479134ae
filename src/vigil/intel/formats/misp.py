"""MISP events and feeds read as Vigil indicators.

- :func:`parse_event` reads MISP event JSON (``{"Event": {...}}``, a bare event object, a list
  of events or a ``{"response": [...]}`` search result). Every attribute with ``to_ids`` set,
  at the top level or inside an object, becomes one indicator, or two for composite types
  (``domain|ip``, ``filename|sha256``...). Attributes without ``to_ids``, deleted ones and
  types Vigil has no indicator type for are counted in :attr:`Parsed.skipped`; a value that is
  not of its type (an ``ip-dst`` that is no address) is a problem of that attribute alone.
- Context comes from tags, event tags first and attribute tags over them: ``tlp:*`` gives the
  TLP, ATT&CK galaxy tags the technique ids, malware galaxies the malware names, confidence
  taxonomies the confidence (else the event's threat level); the other tags become labels.
- :func:`parse_manifest` reads a MISP feed's ``manifest.json``: a feed puller compares each
  event's timestamp with what it holds and fetches only the changed ``<uuid>.json`` files.

Pure code: bytes in, :class:`vigil.intel.types.Parsed` out. The export side (Vigil indicators
to a MISP feed) is :mod:`vigil.intel.formats.misp_export`.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

from vigil.core.errors import InputError, ParseError
from vigil.intel.normalize import make_input
from vigil.intel.types import TLP, IndicatorType, Parsed

ANY_IP = IndicatorType.CIDR
"""Passed to :func:`make_input`, ``cidr`` accepts an address or a network and gives each its
own type (``ipv4``, ``ipv6`` or ``cidr``)."""

SIMPLE_TYPES: dict[str, IndicatorType] = {
    "ip-src": ANY_IP,
    "ip-dst": ANY_IP,
    "domain": IndicatorType.DOMAIN,
    "hostname": IndicatorType.DOMAIN,
    "url": IndicatorType.URL,
    "uri": IndicatorType.URL,
    "email": IndicatorType.EMAIL,
    "email-src": IndicatorType.EMAIL,
    "email-dst": IndicatorType.EMAIL,
    "email-reply-to": IndicatorType.EMAIL,
    "md5": IndicatorType.MD5,
    "sha1": IndicatorType.SHA1,
    "sha256": IndicatorType.SHA256,
    "sha512": IndicatorType.SHA512,
    "filename": IndicatorType.FILENAME,
    "ja3-fingerprint-md5": IndicatorType.JA3,
    "user-agent": IndicatorType.USER_AGENT,
}
"""MISP attribute types that are one Vigil indicator (``uri`` only when it is a full URL)."""

_HASHED_FILENAMES = ("authentihash", "impfuzzy", "imphash", "pehash", "sha224", "sha384", "sha3-224",
                     "sha3-256", "sha3-384", "sha3-512", "sha512/224", "sha512/256", "ssdeep", "tlsh",
                     "vhash")
COMPOSITE_TYPES: dict[str, tuple[IndicatorType | None, IndicatorType | None]] = {
    "ip-src|port": (ANY_IP, None),
    "ip-dst|port": (ANY_IP, None),
    "hostname|port": (IndicatorType.DOMAIN, None),
    "domain|ip": (IndicatorType.DOMAIN, ANY_IP),
    "filename|md5": (IndicatorType.FILENAME, IndicatorType.MD5),
    "filename|sha1": (IndicatorType.FILENAME, IndicatorType.SHA1),
    "filename|sha256": (IndicatorType.FILENAME, IndicatorType.SHA256),
    "filename|sha512": (IndicatorType.FILENAME, IndicatorType.SHA512),
    "malware-sample": (IndicatorType.FILENAME, IndicatorType.MD5),
    **{f"filename|{name}": (IndicatorType.FILENAME, None) for name in _HASHED_FILENAMES},
}
"""MISP types whose value is ``a|b``: the Vigil type of each half (``None``: not kept, such as
a port or a hash kind Vigil does not match on)."""

THREAT_LEVEL_CONFIDENCE = {1: 80, 2: 60, 3: 40, 4: 50}
"""Confidence from an event's ``threat_level_id`` when no tag states one."""

_CONFIDENCE_TAGS: dict[tuple[str, str], dict[str, int]] = {
    ("admiralty-scale", "source-reliability"): {"a": 100, "b": 75, "c": 50, "d": 25, "e": 0},
    ("admiralty-scale", "information-credibility"): {"1": 100, "2": 75, "3": 50, "4": 25, "5": 0},
    ("misp", "confidence-level"): {"completely-confident": 100, "usually-confident": 75,
                                   "fairly-confident": 50, "rarely-confident": 25, "unconfident": 0},
    # The middle of each ICD 203 range.
    ("estimative-language", "likelihood-probability"): {
        "almost-no-chance": 3, "very-unlikely": 12, "unlikely": 32, "roughly-even-chance": 50,
        "likely": 68, "very-likely": 88, "almost-certain": 97},
}
_NUMERIC_CONFIDENCE_TAGS = {("osint", "certainty"), ("vigil", "confidence"), ("", "confidence")}
"""Tags whose value is the confidence itself (0-100): ``osint:certainty="75"``,
``vigil:confidence="80"`` (what the export writes), ``confidence:80``, ``confidence=80``."""
CONFIDENCE_TAG = "vigil:confidence"

MALWARE_GALAXIES = frozenset({
    "malpedia", "mitre-malware", "mitre-tool", "mitre-enterprise-attack-malware",
    "mitre-mobile-attack-malware", "ransomware", "rat", "banker", "botnet", "stealer", "backdoor",
    "android", "tool"})
"""Galaxies (``misp-galaxy:<name>="..."``) whose clusters are malware families or tools."""
ATTACK_TAG = "misp-galaxy:mitre-attack-pattern"
MALWARE_TAG = "misp-galaxy:malpedia"

_ATTACK_ID = re.compile(r"\b(T\d{4}(?:\.\d{3})?)\b", re.IGNORECASE)
_CLUSTER_SUFFIX = re.compile(r"\s+-\s+[STG]\d{4}$")
_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")


@dataclass(frozen=True, slots=True)
class ManifestEntry:
    """One event of a MISP feed's ``manifest.json``."""

    uuid: str
    info: str
    timestamp: int
    """When the event last changed (Unix seconds): fetch ``<uuid>.json`` again when it grows."""
    date: str
    org: str


@dataclass(frozen=True, slots=True)
class TagContext:
    """What a set of MISP tags says about the indicators they are on."""

    tlp: TLP | None = None
    confidence: int | None = None
    labels: tuple[str, ...] = ()
    attack: tuple[str, ...] = ()
    malware: tuple[str, ...] = ()

    def under(self, outer: TagContext) -> TagContext:
        """This (attribute) context over an ``outer`` (event) one: TLP and confidence from
        here when stated, labels, techniques and malware from both."""
        return TagContext(
            tlp=self.tlp or outer.tlp,
            confidence=self.confidence if self.confidence is not None else outer.confidence,
            labels=tuple(dict.fromkeys(outer.labels + self.labels)),
            attack=tuple(dict.fromkeys(outer.attack + self.attack)),
            malware=tuple(dict.fromkeys(outer.malware + self.malware)))


@dataclass(frozen=True, slots=True)
class _Event:
    """What an event gives each of its attributes."""

    name: str | None
    tags: TagContext
    threat_confidence: int | None
    timestamp: datetime | None


def parse_event(data: bytes, source: str) -> Parsed:
    """The ``to_ids`` attributes of MISP event JSON as indicators (see the module docs).

    :class:`ParseError` when the data is not JSON or holds no MISP event.
    """
    parsed = Parsed()
    for number, event in enumerate(_events(load_json(data, "MISP event")), 1):
        if not isinstance(event, dict):
            parsed.problems.append(f"event {number}: not a JSON object")
            continue
        _read_event(event, source, parsed)
    return parsed


def parse_manifest(data: bytes) -> dict[str, ManifestEntry]:
    """A MISP feed's ``manifest.json``: event uuid → :class:`ManifestEntry`.

    :class:`ParseError` when it is not a manifest, or an entry has no uuid key or timestamp
    (the uuids become file names to fetch, so they are checked strictly).
    """
    document = load_json(data, "MISP feed manifest")
    if not isinstance(document, dict):
        raise ParseError("not a MISP feed manifest: expected a JSON object of event uuids")
    entries: dict[str, ManifestEntry] = {}
    for key, entry in document.items():
        if not _UUID.match(key):
            raise ParseError(f"MISP feed manifest: {key[:80]!r} is not an event uuid")
        if not isinstance(entry, dict):
            raise ParseError(f"MISP feed manifest: event {key} is not a JSON object")
        timestamp = _integer(entry.get("timestamp"))
        if timestamp is None:
            raise ParseError(f"MISP feed manifest: event {key} has no valid timestamp")
        org = entry.get("Orgc")
        entries[key] = ManifestEntry(
            uuid=key, info=_text(entry.get("info")), timestamp=timestamp, date=_text(entry.get("date")),
            org=_text(org.get("name")) if isinstance(org, dict) else "")
    return entries


def load_json(data: bytes, what: str) -> Any:
    """JSON from bytes, with a one-line :class:`ParseError` naming ``what`` was expected when
    the data is empty, HTML, compressed or not JSON."""
    if not isinstance(data, bytes | bytearray | memoryview):
        raise ParseError(f"{what}: expected bytes, not {type(data).__name__}")
    head = bytes(data[:64]).lstrip(b"\xef\xbb\xbf \t\r\n")
    if not head:
        raise ParseError(f"empty {what}")
    if head.startswith(b"\x1f\x8b"):
        raise ParseError(f"gzip-compressed data, not a {what} (decompress it first)")
    if head.startswith(b"<"):
        raise ParseError(f"HTML or XML, not a {what} (JSON): {head[:40].decode('utf-8', 'replace')!r}")
    try:
        return orjson.loads(bytes(data).lstrip(b"\xef\xbb\xbf"))
    except orjson.JSONDecodeError as error:
        raise ParseError(f"not JSON, so not a {what}: {error}") from None


def _events(document: Any) -> list[Any]:
    """The event objects of a document, in the shapes MISP produces (an empty list or
    ``{"response": []}`` has none; anything else without an event is refused)."""
    items: list[Any]
    if isinstance(document, list):
        items = document
    elif isinstance(document, dict) and isinstance(document.get("response"), list):
        items = document["response"]
    else:
        items = [document]
    if not items:
        return []  # a search that found nothing
    events = [_event_of(item) for item in items]
    if all(event is None for event in events):
        if isinstance(document, dict) and isinstance(document.get("message"), str):
            raise ParseError(f"no MISP event (the server said: {document['message'][:200]})")
        raise ParseError('no MISP event found (expected {"Event": {...}}, a list of events or '
                         '{"response": [...]})')
    return events


def _event_of(item: Any) -> Any:
    if not isinstance(item, dict):
        return item
    if "Event" in item:
        return item["Event"]
    if any(key in item for key in ("Attribute", "Object")) or ("info" in item and "uuid" in item):
        return item
    return None


def _read_event(event: dict[str, Any], source: str, parsed: Parsed) -> None:
    try:
        timestamp = _time(event.get("timestamp"))
    except InputError:
        timestamp = None
    level = _integer(event.get("threat_level_id"))
    context = _Event(
        name=_text(event.get("info")) or None,
        tags=read_tags(_tag_names(event)),
        threat_confidence=THREAT_LEVEL_CONFIDENCE.get(level) if level is not None else None,
        timestamp=timestamp)
    for attribute in _list(event.get("Attribute")):
        _read_attribute(attribute, context, source, parsed)
    for obj in _list(event.get("Object")):
        attributes = _list(obj.get("Attribute")) if isinstance(obj, dict) else []
        if isinstance(obj, dict) and _flag(obj.get("deleted")):
            parsed.skipped += len(attributes)
            continue
        for attribute in attributes:
            _read_attribute(attribute, context, source, parsed)


def _read_attribute(attribute: Any, event: _Event, source: str, parsed: Parsed) -> None:
    if not isinstance(attribute, dict):
        parsed.problems.append("attribute: not a JSON object")
        return
    if _flag(attribute.get("deleted")) or not _flag(attribute.get("to_ids")):
        parsed.skipped += 1
        return
    name = f"attribute {_text(attribute.get('uuid')) or '(no uuid)'}"
    try:
        parts = list(_typed_values(_text(attribute.get("type")), attribute.get("value")))
        if not parts:
            parsed.skipped += 1
            return
        tags = read_tags(_tag_names(attribute)).under(event.tags)
        moment = _time(attribute.get("timestamp")) or event.timestamp
        first_seen = _time(attribute.get("first_seen")) or moment
        last_seen = _time(attribute.get("last_seen")) or moment
    except InputError as error:
        parsed.problems.append(f"{name}: {error.message}")
        return
    confidence = tags.confidence if tags.confidence is not None else event.threat_confidence
    for kind, value in parts:
        try:
            parsed.indicators.append(make_input(
                kind, value, source, name=event.name, description=_text(attribute.get("comment")) or None,
                confidence=confidence, tlp=tags.tlp, labels=tags.labels, attack=tags.attack,
                malware=tags.malware, first_seen=first_seen, last_seen=last_seen,
                reference=_text(attribute.get("uuid")) or None))
        except InputError as error:
            parsed.problems.append(f"{name}: {error.message}")


def _typed_values(misp_type: str, value: Any) -> Iterator[tuple[IndicatorType, str]]:
    """(Vigil type, text) for each indicator in an attribute; nothing for a type Vigil does not
    keep; :class:`InputError` for a value that does not fit its type's shape."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str):
        raise InputError(f"{misp_type} value must be text, not {type(value).__name__}")
    if misp_type in SIMPLE_TYPES:
        if misp_type == "uri" and "://" not in value:
            return
        yield SIMPLE_TYPES[misp_type], value
        return
    halves = COMPOSITE_TYPES.get(misp_type)
    if halves is None:
        return
    left, sep, right = value.partition("|")
    if not sep:
        raise InputError(f"a {misp_type} value has two parts separated by '|': {value[:200]!r}")
    for kind, part in zip(halves, (left, right), strict=True):
        if kind is not None:
            yield kind, part


def read_tags(names: list[str]) -> TagContext:
    """TLP, confidence, ATT&CK ids, malware and the remaining labels of a list of tag names."""
    tlp: TLP | None = None
    confidences: list[int] = []
    labels: list[str] = []
    attack: list[str] = []
    malware: list[str] = []
    for name in names:
        namespace, predicate, value = split_tag(name)
        if namespace == "tlp" and not value:
            try:
                tlp = TLP.parse(predicate)
                continue
            except InputError:
                pass
        confidence = _confidence(namespace, predicate, value)
        if confidence is not None:
            confidences.append(confidence)
        elif _is_attack(namespace, predicate):
            attack.extend(found.upper() for found in _ATTACK_ID.findall(name))
        elif namespace == "misp-galaxy" and predicate in MALWARE_GALAXIES and value:
            malware.append(_CLUSTER_SUFFIX.sub("", value).strip())
        else:
            labels.append(name)
    return TagContext(
        tlp=tlp, confidence=round(sum(confidences) / len(confidences)) if confidences else None,
        labels=tuple(dict.fromkeys(labels)), attack=tuple(dict.fromkeys(attack)),
        malware=tuple(dict.fromkeys(m for m in malware if m)))


def split_tag(name: str) -> tuple[str, str, str]:
    """A machine tag ``namespace:predicate="value"`` as its three parts (lower-case namespace
    and predicate; the value unquoted, as given). A free tag is all predicate."""
    namespace, colon, rest = name.partition(":")
    if not colon:
        namespace, rest = "", name
    predicate, equals, value = rest.partition("=")
    if not equals and not colon:
        return "", name.strip(), ""
    return namespace.strip().lower(), predicate.strip().lower(), value.strip().strip('"').strip()


def _confidence(namespace: str, predicate: str, value: str) -> int | None:
    table = _CONFIDENCE_TAGS.get((namespace, predicate))
    if table is not None:
        return table.get(value.lower())
    if (namespace, predicate) in _NUMERIC_CONFIDENCE_TAGS or (
            namespace == "confidence" and predicate.isdigit()):
        number = _integer(value or predicate)
        return None if number is None else max(0, min(100, number))
    return None


def _is_attack(namespace: str, predicate: str) -> bool:
    return namespace == "mitre-attack" or (namespace == "misp-galaxy" and "attack-pattern" in predicate)


def _tag_names(item: dict[str, Any]) -> list[str]:
    """The tag names of an event or attribute, galaxy clusters included."""
    names = [tag["name"] for tag in _list(item.get("Tag"))
             if isinstance(tag, dict) and isinstance(tag.get("name"), str)]
    for galaxy in _list(item.get("Galaxy")):
        if not isinstance(galaxy, dict):
            continue
        for cluster in _list(galaxy.get("GalaxyCluster")):
            if not isinstance(cluster, dict):
                continue
            tag_name = cluster.get("tag_name")
            if isinstance(tag_name, str) and tag_name:
                names.append(tag_name)
            elif isinstance(cluster.get("value"), str):
                names.append(f'misp-galaxy:{_text(cluster.get("type") or galaxy.get("type"))}='
                             f'"{cluster["value"]}"')
    return list(dict.fromkeys(names))


def _time(value: Any) -> datetime | None:
    """A MISP time: Unix seconds (number or text) or ISO 8601; ``None`` when absent."""
    if value is None or value == "":
        return None
    number = _integer(value)
    try:
        if number is not None:
            return datetime.fromtimestamp(number, UTC)
        if isinstance(value, str):
            moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
            return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    except (ValueError, OverflowError, OSError):
        pass
    raise InputError(f"not a time: {str(value)[:60]!r}")


def _integer(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value.strip())
    return None


def _flag(value: Any) -> bool:
    return value is True or value == 1 or (isinstance(value, str) and value.strip().lower() in ("1", "true"))


def _text(value: Any) -> str:
    return value if isinstance(value, str) else "" if value is None else str(value)


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []
