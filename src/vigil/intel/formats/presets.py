"""Column mappings of well-known CSV feeds and plain lists, by name.

Each :class:`Preset` names the real feed it reads (its URL is documentation: tests use small
fixtures, never the network) and the :class:`ColumnMapping` that reads it with
:func:`vigil.intel.formats.tabular.parse_table`.
"""

from __future__ import annotations

from dataclasses import dataclass

from vigil.core.errors import InputError
from vigil.intel.formats.tabular import ANY_IP, AUTO, ColumnMapping, ValueTransform


@dataclass(frozen=True, slots=True)
class Preset:
    name: str
    mapping: ColumnMapping
    doc: str
    url: str | None = None
    """Where the real feed is published."""


_THREATFOX_TYPES = {"ip:port": ANY_IP, "domain": "domain", "url": "url", "md5_hash": "md5",
                    "sha1_hash": "sha1", "sha256_hash": "sha256"}

PRESETS: dict[str, Preset] = {preset.name: preset for preset in (
    Preset(
        "urlhaus",
        ColumnMapping(value="url", type="url", first_seen="dateadded", last_seen="last_online",
                      tags="tags", label_columns=("threat",), reference="id"),
        "abuse.ch URLhaus CSV: malware URLs with their threat and tags; the header is the "
        "'# id,dateadded,url,...' comment.",
        "https://urlhaus.abuse.ch/downloads/csv_recent/"),
    Preset(
        "feodo",
        ColumnMapping(value="dst_ip", type=ANY_IP, first_seen="first_seen_utc", last_seen="last_online",
                      malware="malware", labels=("botnet_cc",)),
        "abuse.ch Feodo Tracker IP blocklist CSV: botnet C2 addresses and their malware.",
        "https://feodotracker.abuse.ch/downloads/ipblocklist.csv"),
    Preset(
        "threatfox",
        ColumnMapping(value="ioc_value", type_column="ioc_type", type_map=_THREATFOX_TYPES,
                      transform=ValueTransform.STRIP_PORT, first_seen="first_seen_utc",
                      last_seen="last_seen_utc", confidence="confidence_level", tags="tags",
                      label_columns=("threat_type",), malware="malware_printable", reference="ioc_id"),
        "abuse.ch ThreatFox CSV export: IOCs of every type (ip:port keeps the address; other "
        "ioc_type values are skipped), with confidence, malware and tags.",
        "https://threatfox.abuse.ch/export/csv/recent/"),
    Preset(
        "malwarebazaar",
        ColumnMapping(value="sha256_hash", type="sha256",
                      extra_values=(("md5_hash", "md5"), ("sha1_hash", "sha1")),
                      first_seen="first_seen_utc", malware="signature", name="file_name"),
        "abuse.ch MalwareBazaar CSV: each sample's SHA-256, MD5 and SHA-1 (three indicators), "
        "its signature as the malware.",
        "https://bazaar.abuse.ch/export/csv/recent/"),
    Preset(
        "spamhaus-drop",
        ColumnMapping(value=0, type=ANY_IP, reference=1, delimiter=";", comment_prefixes=(";",),
                      header=False, labels=("spamhaus-drop",)),
        "Spamhaus DROP/EDROP: 'CIDR ; SBLnnnn' lines, ';' comments; the SBL id is the reference.",
        "https://www.spamhaus.org/drop/drop.txt"),
    Preset(
        "plain",
        ColumnMapping(value=0, type=AUTO, delimiter=None, header=False,
                      transform=ValueTransform.FIRST_TOKEN),
        "One value per line ('#' comments, text after the first blank ignored), each value's "
        "type guessed: addresses, networks, hashes, e-mail, URLs, domains."),
)}


def preset(name: str) -> ColumnMapping:
    """The column mapping of a named preset; :class:`InputError` for an unknown name."""
    found = PRESETS.get(name.strip().lower())
    if found is None:
        raise InputError(f"unknown feed preset {name!r} (use {', '.join(sorted(PRESETS))})")
    return found.mapping
