"""The export formats and the one entry point that renders them.

:func:`render` takes the indicators the caller selected (by type, confidence, TLP, age...)
and returns an :class:`Export`: the file content, its media type and file name, how many
indicators it carries and how many were skipped, and why. Whatever the caller passes,
allowlisted, inactive and TLP:RED indicators are never written (see
:mod:`vigil.intel.exports.common`).

``stix`` and ``misp`` are listed so that one vocabulary names every export (the API path
``/api/v1/intel/export/{format}``), but they are made by
``vigil.intel.formats.stix.to_bundle`` and ``vigil.intel.formats.misp.to_feed``: the intel
service routes them there, and :func:`render` refuses them.
"""

from __future__ import annotations

import gzip
import io
import tarfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum

from vigil.core.errors import InputError, UnknownFormatError
from vigil.intel.exports import dns, firewall, lists, suricata, suricata_datasets
from vigil.intel.exports.common import (
    ExportFile,
    ExportOptions,
    FirewallAction,
    Rendered,
    RpzPolicy,
    epoch,
)
from vigil.intel.types import HASH_TYPES, NETWORK_TYPES, IndicatorType, IndicatorView

__all__ = [
    "FORMATS",
    "Export",
    "ExportFile",
    "ExportFormat",
    "ExportOptions",
    "FirewallAction",
    "FormatInfo",
    "RpzPolicy",
    "render",
]


class ExportFormat(StrEnum):
    NFTABLES = "nftables"
    IPTABLES = "iptables"
    IPSET = "ipset"
    SURICATA_RULES = "suricata-rules"
    SURICATA_DATASET = "suricata-dataset"
    RPZ = "rpz"
    ZEEK = "zeek"
    CSV = "csv"
    PLAIN = "plain"
    WAZUH_CDB = "wazuh-cdb"
    STIX = "stix"
    """A STIX 2.1 bundle: made by ``vigil.intel.formats.stix.to_bundle``, not :func:`render`."""
    MISP = "misp"
    """A MISP feed: made by ``vigil.intel.formats.misp.to_feed``, not :func:`render`."""

    @classmethod
    def parse(cls, text: str) -> ExportFormat:
        try:
            return cls(text.strip().lower())
        except ValueError:
            names = ", ".join(f.value for f in cls)
            raise UnknownFormatError(f"unknown export format {text!r} (use {names})") from None


Renderer = Callable[[Sequence[IndicatorView], ExportOptions], Rendered]


@dataclass(frozen=True, slots=True)
class FormatInfo:
    """What a format is for, what it can carry, and how its file is named and served."""

    format: ExportFormat
    title: str
    media_type: str
    filename: str
    """File name template; ``{name}`` is ``options.name``, ``{zone}`` the RPZ zone."""
    carries: frozenset[IndicatorType]
    """The value types it can express (a pattern is carried through its observables)."""
    renderer: Renderer | None
    """None for the formats made outside this package (STIX, MISP)."""


_TEXT = "text/plain; charset=utf-8"
_ALL = frozenset(IndicatorType)
_SIMPLE = _ALL - {IndicatorType.STIX_PATTERN}
_NET = frozenset(NETWORK_TYPES)
_RULE_TYPES = _NET | {IndicatorType.DOMAIN, IndicatorType.URL, IndicatorType.JA3,
                      IndicatorType.USER_AGENT, IndicatorType.FILENAME}
_DATASET_TYPES = _NET | {IndicatorType.DOMAIN, IndicatorType.JA3, IndicatorType.USER_AGENT,
                         IndicatorType.FILENAME, IndicatorType.MD5, IndicatorType.SHA1,
                         IndicatorType.SHA256}
_ZEEK_TYPES = _NET | HASH_TYPES | {IndicatorType.DOMAIN, IndicatorType.URL, IndicatorType.EMAIL,
                                   IndicatorType.USER_AGENT, IndicatorType.FILENAME}


def _info(fmt: ExportFormat, title: str, media_type: str, filename: str, carries: frozenset[IndicatorType],
          renderer: Renderer | None) -> tuple[ExportFormat, FormatInfo]:
    return fmt, FormatInfo(fmt, title, media_type, filename, carries, renderer)


FORMATS: dict[ExportFormat, FormatInfo] = dict([
    _info(ExportFormat.NFTABLES, "nftables table with interval sets (nft -f)", _TEXT, "{name}.nft",
          _NET, firewall.nftables),
    _info(ExportFormat.IPTABLES, "iptables/ip6tables script backed by ipsets",
          "text/x-shellscript; charset=utf-8", "{name}-iptables.sh", _NET, firewall.iptables),
    _info(ExportFormat.IPSET, "ipset restore file (hash:net sets)", _TEXT, "{name}.ipset", _NET,
          firewall.ipset),
    _info(ExportFormat.SURICATA_RULES, "Suricata rules, one per value", _TEXT, "{name}.rules", _RULE_TYPES,
          suricata.rules),
    _info(ExportFormat.SURICATA_DATASET, "Suricata datasets bundle (rules and list files, tar.gz)",
          "application/gzip", "{name}-suricata-datasets.tar.gz", _DATASET_TYPES, suricata_datasets.datasets),
    _info(ExportFormat.RPZ, "BIND response policy zone", "text/dns; charset=utf-8", "db.{zone}",
          _NET | {IndicatorType.DOMAIN}, dns.rpz),
    _info(ExportFormat.ZEEK, "Zeek Intel framework file", "text/tab-separated-values; charset=utf-8",
          "{name}.intel", _ZEEK_TYPES, lists.zeek),
    _info(ExportFormat.CSV, "CSV, one row per indicator", "text/csv; charset=utf-8", "{name}.csv", _ALL,
          lists.to_csv),
    _info(ExportFormat.PLAIN, "plain list, one value per line", _TEXT, "{name}.txt", _SIMPLE, lists.plain),
    _info(ExportFormat.WAZUH_CDB, "Wazuh CDB list (key:value)", _TEXT, "{name}-wazuh", _SIMPLE,
          lists.wazuh_cdb),
    _info(ExportFormat.STIX, "STIX 2.1 bundle", "application/stix+json;version=2.1", "{name}-stix.json",
          _ALL, None),
    _info(ExportFormat.MISP, "MISP feed", "application/json", "{name}-misp.json", _ALL, None),
])


@dataclass(frozen=True, slots=True)
class Export:
    """A rendered export, ready to be served or written."""

    format: ExportFormat
    content: str | bytes
    """Text, or bytes for an archive (the Suricata datasets bundle)."""
    media_type: str
    filename: str
    count: int
    """Indicators written."""
    skipped: int
    """Indicators not written: withheld (allowlisted, inactive, TLP:RED) or not expressible."""
    notes: tuple[str, ...] = ()
    """One line per reason for skipping, with its count."""
    files: tuple[ExportFile, ...] = ()
    """The members of a multi-file export (the archive's content, as text)."""

    def body(self) -> bytes:
        return self.content if isinstance(self.content, bytes) else self.content.encode("utf-8")


def _archive(files: Sequence[ExportFile], mtime: int) -> bytes:
    """A reproducible tar.gz: fixed owner, mode and time, members in the given order."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for member in files:
            data = member.content.encode("utf-8")
            info = tarfile.TarInfo(member.name)
            info.size, info.mtime, info.mode = len(data), mtime, 0o644
            info.uname = info.gname = "root"
            tar.addfile(info, io.BytesIO(data))
    return gzip.compress(raw.getvalue(), mtime=mtime)


def render(fmt: ExportFormat | str, indicators: Sequence[IndicatorView],
           options: ExportOptions | None = None) -> Export:
    """Render indicators in a format. :class:`UnknownFormatError` for an unknown name or for
    ``stix``/``misp`` (made in ``vigil.intel.formats``); :class:`InputError` for bad options."""
    kind = ExportFormat.parse(fmt) if isinstance(fmt, str) else fmt
    options = options or ExportOptions()
    info = FORMATS[kind]
    if info.renderer is None:
        target = "stix.to_bundle" if kind is ExportFormat.STIX else "misp.to_feed"
        raise UnknownFormatError(f"{kind.value} exports are made by vigil.intel.formats.{target}, "
                                 "not by the exports registry")
    if not isinstance(indicators, Sequence):
        raise InputError("indicators must be a sequence of IndicatorView")
    result = info.renderer(indicators, options)
    filename = info.filename.format(name=options.name, zone=options.rpz_zone)
    content: str | bytes = result.content
    if kind is ExportFormat.SURICATA_DATASET:
        mtime = epoch(options.generated) if options.generated is not None else 0
        content = _archive(result.files, mtime)
    return Export(format=kind, content=content, media_type=info.media_type, filename=filename,
                  count=result.count, skipped=result.skipped, notes=result.notes, files=result.files)
