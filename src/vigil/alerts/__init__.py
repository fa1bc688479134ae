"""Alerts and incidents: alerts from any source (dedup, status, disposition, assignee, history)
grouped into incidents, escalated to cases by ``vigil.cases``.

The use cases are in :mod:`vigil.alerts.service`; the types they take and return are here.
"""

from __future__ import annotations

from vigil.alerts.grouping import GroupingPolicy
from vigil.alerts.types import (
    AlertDetail,
    AlertFilter,
    AlertInput,
    AlertSort,
    AlertTiming,
    AlertView,
    BulkResult,
    Disposition,
    EntityKind,
    HistoryEntry,
    IncidentDetail,
    IncidentFilter,
    IncidentStatus,
    IncidentView,
    Page,
    RecordResult,
    RelatedAlert,
    Severity,
    Source,
    Status,
)

__all__ = [
    "AlertDetail",
    "AlertFilter",
    "AlertInput",
    "AlertSort",
    "AlertTiming",
    "AlertView",
    "BulkResult",
    "Disposition",
    "EntityKind",
    "GroupingPolicy",
    "HistoryEntry",
    "IncidentDetail",
    "IncidentFilter",
    "IncidentStatus",
    "IncidentView",
    "Page",
    "RecordResult",
    "RelatedAlert",
    "Severity",
    "Source",
    "Status",
]
