"""STIX 2.1 in and out: bundles (and TAXII envelopes' object lists) to indicators, and
indicators back to a bundle.

Import: every ``indicator`` becomes an :class:`IndicatorInput` (its pattern analysed by
:mod:`vigil.intel.formats.stix_patterns`); markings in the bundle resolve its TLP level;
``indicates`` relationships to ``malware`` and ``attack-pattern`` objects give its malware names
and ATT&CK techniques. A bad indicator is a problem of its own, the rest still imports; input
that is not a bundle at all is a :class:`ParseError`. The original object is kept (``stix``) so
that an export gives the same id, pattern, markings and validity back.

Export: :func:`to_bundle` emits the kept object (updated when Vigil's view of revocation,
confidence or validity differs) or builds one, with the TLP 2.0 marking objects the bundle
references and deterministic ``malware``/``attack-pattern`` objects and relationships for the
context Vigil holds.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Final

import orjson

from vigil.core.errors import InputError, Location, ParseError
from vigil.core.timeutil import parse_iso, utcnow
from vigil.intel.formats import stix_patterns, tlp
from vigil.intel.normalize import NAMESPACE, make_input
from vigil.intel.types import TLP, IndicatorInput, IndicatorType, IndicatorView, Parsed

_ATTACK_ID: Final = re.compile(r"^T\d{4}(?:\.\d{3})?$", re.IGNORECASE)
_ATTACK_LABEL: Final = re.compile(r"^(?:(?:mitre[-_]?)?attack[.:]\s*)?(T\d{4}(?:\.\d{3})?)$", re.IGNORECASE)
_TIMESTAMP: Final = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}")
_SUPPORTING: Final = frozenset({"marking-definition", "extension-definition"})
_BUNDLE_ID: Final = re.compile(r"^bundle--[0-9a-fA-F-]{36}$")
_JSON_KIND: Final = {list: "an array", str: "a string", int: "a number", float: "a number", bool: "a boolean"}


# --- import -------------------------------------------------------------------------------------


def parse_bundle(data: bytes, source: str) -> Parsed:
    """The indicators of a STIX 2.1 bundle. :class:`ParseError` when the input is not JSON, is
    a web page, or is not a bundle; a bad indicator is a problem in :attr:`Parsed.problems`."""
    where = Location(source)
    document = _load(data, where)
    if not isinstance(document, dict):
        kind = _JSON_KIND.get(type(document), "not an object")
        raise ParseError(f"not a STIX bundle: the JSON is {kind}, not an object", location=where)
    if document.get("type") != "bundle":
        hint = " (a TAXII envelope?)" if "type" not in document and "objects" in document else ""
        raise ParseError(f"not a STIX bundle: type is {document.get('type')!r}, not 'bundle'{hint}",
                         location=where)
    objects = document.get("objects", [])
    if not isinstance(objects, list):
        kind = _JSON_KIND.get(type(objects), "an object")
        raise ParseError(f"not a STIX bundle: 'objects' is {kind}, not a list", location=where)
    return parse_objects(objects, source)


def parse_objects(objects: list[object], source: str) -> Parsed:
    """The indicators among STIX 2.1 objects (a bundle's or a TAXII envelope's ``objects``).

    Objects other than indicators are counted in :attr:`Parsed.skipped`, except the marking
    and extension definitions and the ``indicates`` relationships, which give context. When an
    indicator comes in several versions, the latest ``modified`` wins.
    """
    if not isinstance(objects, list):
        raise ParseError("STIX objects must be a list", location=Location(source))
    parsed = Parsed()
    context = _Context()
    latest: dict[str, tuple[datetime | None, dict[str, object]]] = {}
    for index, item in enumerate(objects):
        if not isinstance(item, dict):
            parsed.problems.append(f"objects[{index}]: not a JSON object")
            continue
        kind = item.get("type")
        if kind == "indicator":
            _keep_latest(item, index, latest, parsed)
        elif not context.take(item):
            parsed.skipped += 1
    for _, indicator in latest.values():
        try:
            parsed.indicators.append(_indicator(indicator, source, context))
        except InputError as exc:
            parsed.problems.append(f"{indicator['id']}: {exc.message}")
    return parsed


def _load(data: bytes, where: Location) -> object:
    text = data.lstrip(b"\xef\xbb\xbf").lstrip()
    if not text:
        raise ParseError("empty input, not a STIX bundle", location=where)
    if text[:1] == b"<":
        raise ParseError("HTML or XML, not a STIX bundle (did the feed return a web page?)", location=where)
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise ParseError(f"not JSON: {exc}", location=where) from None


@dataclass(slots=True)
class _Context:
    """What the other objects of a bundle say about its indicators."""

    levels: dict[str, TLP] = field(default_factory=dict)
    """marking-definition id → TLP level."""
    targets: dict[str, dict[str, object]] = field(default_factory=dict)
    """``malware`` and ``attack-pattern`` objects by id."""
    indicates: dict[str, list[str]] = field(default_factory=dict)
    """indicator id → ids of what it indicates."""

    def take(self, item: dict[str, object]) -> bool:
        """Note an object; True when it is one that gives context (not a skipped item)."""
        kind, item_id = item.get("type"), item.get("id")
        if kind == "marking-definition" and isinstance(item_id, str):
            level = tlp.marking_level(item)
            if level is not None:
                self.levels[item_id] = level
        if kind in ("malware", "attack-pattern") and isinstance(item_id, str):
            self.targets[item_id] = item
        if kind == "relationship" and item.get("relationship_type") == "indicates":
            source, target = item.get("source_ref"), item.get("target_ref")
            if isinstance(source, str) and isinstance(target, str):
                self.indicates.setdefault(source, []).append(target)
                return True
        return kind in _SUPPORTING


def _keep_latest(item: dict[str, object], index: int,
                 latest: dict[str, tuple[datetime | None, dict[str, object]]], parsed: Parsed) -> None:
    item_id = item.get("id")
    if not isinstance(item_id, str) or not _is_stix_id(item_id, "indicator"):
        parsed.problems.append(f"objects[{index}]: indicator without a valid id ({item_id!r})")
        return
    try:
        modified = _time(item, "modified")
    except InputError:
        modified = None
    previous = latest.get(item_id)
    if previous is None or (modified is not None and (previous[0] is None or modified > previous[0])):
        latest[item_id] = (modified, item)


def _indicator(item: dict[str, object], source: str, context: _Context) -> IndicatorInput:
    stix_id = str(item["id"])
    pattern = _text(item, "pattern")
    if pattern is None:
        raise InputError("indicator without a pattern")
    valid_from = _time(item, "valid_from")
    if valid_from is None:
        raise InputError("indicator without valid_from (STIX requires it)")
    valid_until = _time(item, "valid_until")
    if valid_until is not None and valid_until <= valid_from:
        raise InputError("valid_until is not after valid_from")
    pattern_type = _text(item, "pattern_type") or "stix"
    if pattern_type.lower() == "stix":
        values = stix_patterns.analyse(pattern)
    else:
        values = stix_patterns.PatternValues(IndicatorType.STIX_PATTERN, pattern, ())
    markings = _texts(item, "object_marking_refs")
    labels = _texts(item, "labels")
    targets = [context.targets[ref] for ref in context.indicates.get(stix_id, ()) if ref in context.targets]
    return make_input(
        values.kind, values.value, source,
        observables=values.observables, pattern=pattern, stix_id=stix_id,
        name=_text(item, "name"), description=_text(item, "description"),
        confidence=_confidence(item), markings=markings, labels=labels,
        tlp=tlp.strictest(tlp.known_level(ref) or context.levels.get(ref) for ref in markings),
        attack=_attack(item, labels) + tuple(t for target in targets for t in _attack(target, ())),
        malware=tuple(str(t["name"]) for t in targets
                      if t.get("type") == "malware" and isinstance(t.get("name"), str)),
        valid_from=valid_from, valid_until=valid_until, revoked=_flag(item, "revoked"),
        first_seen=_time(item, "created"), last_seen=_time(item, "modified"),
        reference=stix_id, stix=_json(item),
    )


def _attack(item: Mapping[str, object], labels: Iterable[str]) -> tuple[str, ...]:
    """ATT&CK technique ids from an object's external references (``mitre-attack`` and the
    mobile/ICS variants), kill chain phases named by technique id, and labels like
    ``attack.t1059.001``."""
    found: list[str] = []
    for reference in _dicts(item.get("external_references")):
        name, external_id = reference.get("source_name"), reference.get("external_id")
        if (isinstance(name, str) and name.lower().startswith("mitre") and "attack" in name.lower()
                and isinstance(external_id, str) and _ATTACK_ID.match(external_id)):
            found.append(external_id.upper())
    for phase in _dicts(item.get("kill_chain_phases")):
        phase_name = phase.get("phase_name")
        if isinstance(phase_name, str) and _ATTACK_ID.match(phase_name):
            found.append(phase_name.upper())
    for label in labels:
        match = _ATTACK_LABEL.match(label.strip())
        if match:
            found.append(match.group(1).upper())
    return tuple(dict.fromkeys(found))


def _dicts(value: object) -> list[Mapping[str, object]]:
    return [entry for entry in value if isinstance(entry, Mapping)] if isinstance(value, list) else []


def _strings(value: object) -> list[str]:
    return [entry for entry in value if isinstance(entry, str)] if isinstance(value, list) else []


def _text(item: Mapping[str, object], key: str) -> str | None:
    value = item.get(key)
    if value is None or isinstance(value, str):
        return value
    raise InputError(f"{key} must be a string, not {type(value).__name__}")


def _texts(item: Mapping[str, object], key: str) -> list[str]:
    value = item.get(key)
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(entry, str) for entry in value):
        raise InputError(f"{key} must be a list of strings")
    return list(value)


def _flag(item: Mapping[str, object], key: str) -> bool:
    value = item.get(key, False)
    if not isinstance(value, bool):
        raise InputError(f"{key} must be true or false, not {value!r}")
    return value


def _confidence(item: Mapping[str, object]) -> int | None:
    value = item.get("confidence")
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or value != int(value) \
            or not 0 <= value <= 100:
        raise InputError(f"confidence must be an integer from 0 to 100, not {value!r}")
    return int(value)


def _time(item: Mapping[str, object], key: str) -> datetime | None:
    """A STIX timestamp (``2026-01-01T00:00:00.000Z``, any number of fraction digits) as UTC."""
    value = item.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or not _TIMESTAMP.match(value):
        raise InputError(f"{key} is not a STIX timestamp: {value!r}")
    try:
        return parse_iso(value)
    except (ValueError, OverflowError):
        raise InputError(f"{key} is not a STIX timestamp: {value!r}") from None


def _json(item: Mapping[str, object]) -> str:
    try:
        return orjson.dumps(item).decode()
    except (TypeError, orjson.JSONEncodeError) as exc:
        raise InputError(f"cannot keep the object as JSON: {exc}") from None


def _is_stix_id(value: str, kind: str) -> bool:
    prefix, _, rest = value.partition("--")
    if prefix != kind:
        return False
    try:
        uuid.UUID(rest)
    except ValueError:
        return False
    return True


# --- export -------------------------------------------------------------------------------------


def to_bundle(indicators: Iterable[IndicatorView], *, bundle_id: str | None = None,
              now: datetime | None = None) -> bytes:
    """A STIX 2.1 bundle of the indicators (JSON bytes).

    An indicator imported from STIX is emitted as it came, with ``revoked``, ``confidence`` and
    ``valid_until`` set to Vigil's view where they differ (and ``modified`` moved on, to ``now``);
    any other is built from its type and value. The bundle carries the TLP 2.0 marking objects
    (and the TLP 2.0 extension definition) its objects reference. A ``stix-pattern`` indicator
    whose pattern is no valid STIX pattern and that has no STIX object to emit is left out.
    """
    if bundle_id is not None and not _BUNDLE_ID.match(bundle_id):
        raise InputError(f"not a STIX bundle id: {bundle_id!r} (bundle--<uuid>)")
    export = _Export(now or utcnow())
    for view in indicators:
        export.add(view)
    bundle = {"type": "bundle", "id": bundle_id or f"bundle--{uuid.uuid4()}", "objects": export.objects()}
    return orjson.dumps(bundle)


@dataclass(slots=True)
class _Related:
    """A malware or attack-pattern object shared by the indicators that indicate it."""

    object: dict[str, object]
    first: datetime
    last: datetime
    levels: set[TLP] = field(default_factory=set)


@dataclass(slots=True)
class _Export:
    now: datetime
    indicators: dict[str, dict[str, object]] = field(default_factory=dict)
    related: dict[str, _Related] = field(default_factory=dict)
    relationships: dict[str, dict[str, object]] = field(default_factory=dict)

    def add(self, view: IndicatorView) -> None:
        item = _kept(view, self.now) if view.stix else None
        if item is None:
            item = _new(view)
            if item is None:
                return
        item_id = str(item["id"])
        previous = self.indicators.get(item_id)
        if previous is not None and _modified(previous) >= _modified(item):
            return  # two versions of one STIX object (its pattern changed): the latest one wins
        self.indicators[item_id] = item
        refs = _strings(item.get("object_marking_refs"))
        level = tlp.strictest([view.tlp, *(tlp.known_level(ref) for ref in refs)])
        own = set(_attack(item, _strings(item.get("labels"))))
        for name in view.malware:
            self._relate(view, item, refs, level, _malware(name))
        for technique in view.attack:
            if technique.upper() not in own:
                self._relate(view, item, refs, level, _attack_pattern(technique.upper()))

    def _relate(self, view: IndicatorView, item: dict[str, object], refs: list[str], level: TLP | None,
                target: dict[str, object]) -> None:
        target_id = str(target["id"])
        related = self.related.setdefault(target_id, _Related(target, view.first_seen, view.last_seen))
        related.first, related.last = min(related.first, view.first_seen), max(related.last, view.last_seen)
        if level is not None:
            related.levels.add(level)
        key = f"stix:{item['id']}:indicates:{target_id}"
        relationship: dict[str, object] = {
            "type": "relationship", "spec_version": "2.1",
            "id": f"relationship--{uuid.uuid5(NAMESPACE, key)}",
            "created": _stamp(view.first_seen), "modified": _stamp(max(view.first_seen, view.last_seen)),
            "relationship_type": "indicates", "source_ref": item["id"], "target_ref": target_id,
        }
        if refs:
            relationship["object_marking_refs"] = refs
        self.relationships[str(relationship["id"])] = relationship

    def objects(self) -> list[dict[str, object]]:
        related = [self._finish(entry) for entry in self.related.values()]
        used = [*self.indicators.values(), *related, *self.relationships.values()]
        levels = {tlp.known_level(ref) for item in used for ref in _marking_refs(item) if tlp.is_tlp2(ref)}
        markings = [tlp.tlp2_marking(level) for level in TLP if level in levels]
        extension = [tlp.tlp2_extension_definition()] if markings else []
        return [*extension, *markings, *used]

    @staticmethod
    def _finish(entry: _Related) -> dict[str, object]:
        item = dict(entry.object, created=_stamp(entry.first), modified=_stamp(max(entry.first, entry.last)))
        level = tlp.strictest(entry.levels)
        if level is not None:
            item["object_marking_refs"] = [tlp.TLP2_IDS[level]]
        return item


def _modified(item: Mapping[str, object]) -> datetime:
    return _time(item, "modified") or datetime.min.replace(tzinfo=UTC)


def _marking_refs(item: Mapping[str, object]) -> list[str]:
    granular = [marking.get("marking_ref") for marking in _dicts(item.get("granular_markings"))]
    return [*_strings(item.get("object_marking_refs")), *_strings(granular)]


def _kept(view: IndicatorView, now: datetime) -> dict[str, object] | None:
    """The indicator's original STIX object, updated to Vigil's view; None when there is none."""
    try:
        item = orjson.loads(view.stix or "")
    except orjson.JSONDecodeError:
        return None
    if not isinstance(item, dict) or item.get("type") != "indicator" or not isinstance(item.get("id"), str):
        return None
    try:
        modified = _time(item, "modified")
        changed = _follow(item, view)
    except InputError:
        return None
    if changed:
        later = modified + timedelta(milliseconds=1) if modified is not None else now
        item["modified"] = _stamp(max(now, later))
    return item


def _follow(item: dict[str, object], view: IndicatorView) -> bool:
    """Set revocation, confidence, validity and TLP of a STIX object to Vigil's view; True when
    something changed. The TLP marking is replaced when the object's own TLP markings (fixed
    ids) do not say the view's level, so that a consumer never sees a weaker or no TLP."""
    changed = False
    if item.get("revoked", False) != view.revoked:
        item["revoked"], changed = view.revoked, True
    if item.get("confidence") != view.confidence:
        item["confidence"], changed = view.confidence, True
    valid_from, valid_until = _time(item, "valid_from"), _time(item, "valid_until")
    if valid_until != view.valid_until and (view.valid_until is None or valid_from is None
                                            or view.valid_until > valid_from):
        changed = True
        if view.valid_until is None:
            item.pop("valid_until", None)
        else:
            item["valid_until"] = _stamp(view.valid_until)
    refs = _strings(item.get("object_marking_refs"))
    if view.tlp is not None and tlp.strictest(tlp.known_level(ref) for ref in refs) is not view.tlp:
        others = [ref for ref in refs if tlp.known_level(ref) is None]
        item["object_marking_refs"], changed = [*others, tlp.TLP2_IDS[view.tlp]], True
    return changed


def _new(view: IndicatorView) -> dict[str, object] | None:
    """A STIX indicator built from a view; None for a ``stix-pattern`` that is no STIX pattern."""
    if view.type is IndicatorType.STIX_PATTERN:
        pattern = view.pattern or view.value
        try:
            stix_patterns.validate(pattern)
        except InputError:
            return None
    else:
        pattern = stix_patterns.build(view.type, view.value)
    valid_from = view.valid_from or view.first_seen
    item: dict[str, object] = {
        "type": "indicator", "spec_version": "2.1", "id": f"indicator--{_uuid(view.id)}",
        "created": _stamp(view.first_seen), "modified": _stamp(max(view.first_seen, view.last_seen)),
        "pattern": pattern, "pattern_type": "stix", "pattern_version": "2.1",
        "valid_from": _stamp(valid_from), "confidence": view.confidence,
    }
    name = view.name or (view.value if view.type is not IndicatorType.STIX_PATTERN else None)
    if name:
        item["name"] = name
    if view.description:
        item["description"] = view.description
    if view.valid_until is not None and view.valid_until > valid_from:
        item["valid_until"] = _stamp(view.valid_until)
    if view.revoked:
        item["revoked"] = True
    if view.labels:
        item["labels"] = list(view.labels)
    markings = list(view.markings)
    if view.tlp is not None and not any(tlp.known_level(ref) for ref in markings):
        markings.append(tlp.TLP2_IDS[view.tlp])
    if markings:
        item["object_marking_refs"] = markings
    if view.attack:
        item["external_references"] = [_attack_reference(t.upper()) for t in dict.fromkeys(view.attack)]
    return item


def _malware(name: str) -> dict[str, object]:
    return {"type": "malware", "spec_version": "2.1",
            "id": f"malware--{uuid.uuid5(NAMESPACE, f'stix:malware:{name.strip().lower()}')}",
            "name": name, "is_family": True}


def _attack_pattern(technique: str) -> dict[str, object]:
    return {"type": "attack-pattern", "spec_version": "2.1",
            "id": f"attack-pattern--{uuid.uuid5(NAMESPACE, f'stix:attack-pattern:{technique}')}",
            "name": technique, "external_references": [_attack_reference(technique)]}


def _attack_reference(technique: str) -> dict[str, object]:
    return {"source_name": "mitre-attack", "external_id": technique,
            "url": f"https://attack.mitre.org/techniques/{technique.replace('.', '/')}/"}


def _uuid(value: str) -> uuid.UUID:
    """The view's id as a UUID (Vigil's ids are UUIDv5; anything else is hashed into one)."""
    try:
        return uuid.UUID(value)
    except ValueError:
        return uuid.uuid5(NAMESPACE, value)


def _stamp(moment: datetime) -> str:
    """A STIX timestamp: UTC, milliseconds (microseconds when the value has them)."""
    utc = moment.astimezone(UTC) if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
    fraction = f"{utc.microsecond // 1000:03d}" if utc.microsecond % 1000 == 0 else f"{utc.microsecond:06d}"
    return f"{utc:%Y-%m-%dT%H:%M:%S}.{fraction}Z"
