"""Routing rules to store partitions by log source, and per-source field mappings.

A rule sees only the partitions its log source can match: each of its ``product``,
``category`` and ``service`` either is unset or equals the partition's. Sigma category
aliases widen the match (``registry_event`` covers the four Sysmon registry categories).
Field mappings are data (YAML files in ``pipelines/``): for one log source, the name a rule
uses and the name the source writes.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

import yaml

from vigil.events.models import LogSource

CATEGORY_ALIASES: dict[str, frozenset[str]] = {
    "registry_event": frozenset({"registry_add", "registry_delete", "registry_set",
                                 "registry_rename", "registry_event"}),
    "file_delete": frozenset({"file_delete", "file_delete_detected"}),
    "pipe_created": frozenset({"pipe_created"}),
}


def _same(wanted: str | None, have: str | None) -> bool:
    return wanted is None or (have is not None and wanted.lower() == have.lower())


def routes(rule: LogSource, partition: LogSource) -> bool:
    """True when events of ``partition`` can match a rule of log source ``rule``."""
    if not _same(rule.product, partition.product) or not _same(rule.service, partition.service):
        return False
    if rule.category is None:
        return True
    if partition.category is None:
        return False
    allowed = CATEGORY_ALIASES.get(rule.category.lower(), frozenset({rule.category.lower()}))
    return partition.category.lower() in allowed


@dataclass(frozen=True, slots=True)
class FieldMapping:
    """Sigma field name -> source field name, for the partitions of one log source."""

    name: str
    logsource: LogSource
    fields: dict[str, str]


@lru_cache(maxsize=1)
def builtin_mappings() -> tuple[FieldMapping, ...]:
    """The mappings shipped with Vigil (``vigil/detect/pipelines/*.yml``)."""
    found = []
    folder = resources.files("vigil.detect") / "pipelines"
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if entry.name.endswith((".yml", ".yaml")):
            data = yaml.safe_load(entry.read_text(encoding="utf-8"))
            source = data.get("logsource", {})
            found.append(FieldMapping(
                data["name"], LogSource(source.get("product"), source.get("category"),
                                        source.get("service")), dict(data.get("fields", {}))))
    return tuple(found)


def mapping_for(partition: LogSource,
                mappings: tuple[FieldMapping, ...] | None = None) -> dict[str, str]:
    """The field mapping that applies to a partition (merged, first file wins)."""
    merged: dict[str, str] = {}
    for mapping in mappings if mappings is not None else builtin_mappings():
        if routes(mapping.logsource, partition) and mapping.logsource.product == partition.product:
            for sigma_name, source_name in mapping.fields.items():
                merged.setdefault(sigma_name, source_name)
    return merged
