"""Threat intelligence: indicators (canonical, deduplicated, decayed when read), feeds
(STIX 2.1, TAXII 2.1, MISP, CSV and plain lists), allowlists in the MISP warninglist format,
live and retrospective matching against stored events, and exports to firewalls and IDS.
"""

from __future__ import annotations

from vigil.intel.types import (
    TLP,
    IndicatorInput,
    IndicatorType,
    IndicatorView,
    Observable,
    Parsed,
    SightingKind,
    SourceView,
)

__all__ = [
    "TLP",
    "IndicatorInput",
    "IndicatorType",
    "IndicatorView",
    "Observable",
    "Parsed",
    "SightingKind",
    "SourceView",
]
