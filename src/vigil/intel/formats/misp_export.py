"""Vigil indicators written as a MISP feed (``manifest.json``, one event file, ``hashes.csv``).

The feed holds one event: every indicator is an attribute with ``to_ids`` set, carrying its
TLP (``tlp:*``), labels, ATT&CK ids (``misp-galaxy:mitre-attack-pattern="T1059"``), malware
(``misp-galaxy:malpedia="..."``) and confidence (``vigil:confidence="80"``) as tags, its first
and last seen times and its description as the comment. The event uuid is a UUIDv5 of the
organisation and the event title, so a MISP instance pulling the feed again updates the same
event; attribute uuids are UUIDv5s of the event uuid and the indicator id. What goes in is the
caller's choice: filter by TLP (no TLP:RED leaving the tenant), score and allowlists first.

The output reads back with :func:`vigil.intel.formats.misp.parse_event` and with PyMISP
(``MISPEvent().load``). Pure code: indicators in, file contents out.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

import orjson

from vigil.core.errors import InputError
from vigil.intel.formats.misp import ATTACK_TAG, CONFIDENCE_TAG, MALWARE_TAG
from vigil.intel.types import IndicatorType, IndicatorView

VIGIL_ORG_UUID = "ed8d5dd5-8c47-485b-b883-5cce8539f676"
"""The default organisation uuid of Vigil's MISP exports (fixed, so event uuids are stable)."""

EXPORT_TYPES: dict[IndicatorType, tuple[str, str]] = {
    IndicatorType.IPV4: ("ip-dst", "Network activity"),
    IndicatorType.IPV6: ("ip-dst", "Network activity"),
    IndicatorType.CIDR: ("ip-dst", "Network activity"),
    IndicatorType.DOMAIN: ("domain", "Network activity"),
    IndicatorType.URL: ("url", "Network activity"),
    IndicatorType.EMAIL: ("email-src", "Payload delivery"),
    IndicatorType.MD5: ("md5", "Payload delivery"),
    IndicatorType.SHA1: ("sha1", "Payload delivery"),
    IndicatorType.SHA256: ("sha256", "Payload delivery"),
    IndicatorType.SHA512: ("sha512", "Payload delivery"),
    IndicatorType.FILENAME: ("filename", "Payload delivery"),
    IndicatorType.JA3: ("ja3-fingerprint-md5", "Network activity"),
    IndicatorType.USER_AGENT: ("user-agent", "Network activity"),
    IndicatorType.STIX_PATTERN: ("stix2-pattern", "Payload installation"),
}
"""The MISP attribute type and category of each Vigil indicator type."""


def event_uuid(org_uuid: str, event_info: str) -> str:
    """The uuid of the exported event: UUIDv5 of the event title in the organisation's uuid."""
    try:
        namespace = uuid.UUID(org_uuid)
    except (ValueError, TypeError, AttributeError):
        raise InputError(f"not an organisation uuid: {str(org_uuid)[:60]!r}") from None
    return str(uuid.uuid5(namespace, event_info))


def to_feed(indicators: Iterable[IndicatorView], *, org_name: str = "Vigil",
            org_uuid: str = VIGIL_ORG_UUID, event_info: str = "Vigil indicators",
            timestamp: datetime | None = None) -> dict[str, bytes]:
    """A MISP feed of one event holding ``indicators``: file name → content
    (``manifest.json``, ``<event uuid>.json``, ``hashes.csv``).

    ``timestamp`` is when the event changed (default: now); a MISP feed puller fetches the event
    again when it grows.
    """
    if not event_info.strip():
        raise InputError("a MISP event needs a title (event_info)")
    uid = event_uuid(org_uuid, event_info)
    moment = _utc(timestamp or datetime.now(UTC))
    seconds = int(moment.timestamp())
    attributes = sorted((_attribute(view, uid) for view in indicators),
                        key=lambda item: (item["type"], item["value"]))
    org = {"name": org_name, "uuid": str(uuid.UUID(org_uuid))}
    event: dict[str, Any] = {
        "uuid": uid, "info": event_info, "date": moment.date().isoformat(),
        "timestamp": str(seconds), "publish_timestamp": str(seconds), "published": True,
        "analysis": "2", "threat_level_id": "4", "Orgc": org, "Tag": [], "Attribute": attributes}
    manifest = {uid: {"Orgc": org, "Tag": [], "info": event_info, "date": event["date"],
                      "analysis": 2, "threat_level_id": 4, "timestamp": seconds}}
    hashes = "".join(f"{hashlib.md5(item['value'].encode(), usedforsecurity=False).hexdigest()},{uid}\n"
                     for item in attributes)
    return {
        "manifest.json": orjson.dumps(manifest, option=orjson.OPT_INDENT_2) + b"\n",
        f"{uid}.json": orjson.dumps({"Event": event}, option=orjson.OPT_INDENT_2) + b"\n",
        "hashes.csv": hashes.encode(),
    }


def _attribute(view: IndicatorView, event_uid: str) -> dict[str, Any]:
    misp_type, category = EXPORT_TYPES[view.type]
    value = (view.pattern or view.value) if view.type is IndicatorType.STIX_PATTERN else view.value
    first_seen, last_seen = sorted((_utc(view.first_seen), _utc(view.last_seen)))
    attribute: dict[str, Any] = {
        "uuid": str(uuid.uuid5(uuid.UUID(event_uid), view.id)),
        "type": misp_type, "category": category, "value": value, "to_ids": True,
        "comment": view.description or "", "disable_correlation": False,
        "timestamp": str(int(last_seen.timestamp())),
        "first_seen": first_seen.isoformat(), "last_seen": last_seen.isoformat(),
    }
    tags = _tags(view)
    if tags:
        attribute["Tag"] = [{"name": name} for name in tags]
    return attribute


def _tags(view: IndicatorView) -> list[str]:
    names: list[str] = []
    if view.tlp is not None:
        names.append(f"tlp:{view.tlp.value}")
    names.extend(view.labels)
    names.extend(f'{ATTACK_TAG}="{technique}"' for technique in view.attack)
    names.extend(f'{MALWARE_TAG}="{_quoted(name)}"' for name in view.malware)
    names.append(f'{CONFIDENCE_TAG}="{view.confidence}"')
    return list(dict.fromkeys(names))


def _quoted(text: str) -> str:
    return text.replace('"', "'")


def _utc(moment: datetime) -> datetime:
    """Stored times without a zone are UTC."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
