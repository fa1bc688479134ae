"""The alerts context's use cases: the one module other contexts and the front doors call.

Every function takes the caller's SQLAlchemy session and works inside it, so a change here
commits (or rolls back) together with the caller's own (the cases context escalating alerts
while it creates a case, detection recording alerts with its batch). The front doors open the
session with ``StateDB.session()``.

Recording: :func:`record` (any source, via :class:`AlertInput`). Analysts: :func:`acknowledge`,
:func:`close`, :func:`reopen`, :func:`assign`, :func:`bulk`; incidents: :func:`merge`,
:func:`split`. The cases context: :func:`link_case`, :func:`unlink_case`,
:func:`escalate_incident`, :func:`get_alerts`, ``list_alerts(AlertFilter(case_id=...))``.
Metrics: :func:`timings` and :func:`history_between`. Reading: :func:`list_alerts`,
:func:`detail`, :func:`related`, :func:`list_incidents`, :func:`get_incident`.
"""

from __future__ import annotations

from vigil.alerts.grouping import DEFAULT_POLICY, GroupingPolicy, merge, split
from vigil.alerts.lifecycle import (
    acknowledge,
    assign,
    bulk,
    close,
    escalate_incident,
    link_case,
    parse_disposition,
    reopen,
    unlink_case,
)
from vigil.alerts.queries import (
    dedup_keys,
    detail,
    get_alert,
    get_alerts,
    get_incident,
    history,
    history_between,
    list_alerts,
    list_incidents,
    open_by_assignee,
    related,
    timings,
)
from vigil.alerts.recording import record

__all__ = [
    "DEFAULT_POLICY",
    "GroupingPolicy",
    "acknowledge",
    "assign",
    "bulk",
    "close",
    "dedup_keys",
    "detail",
    "escalate_incident",
    "get_alert",
    "get_alerts",
    "get_incident",
    "history",
    "history_between",
    "link_case",
    "list_alerts",
    "list_incidents",
    "merge",
    "open_by_assignee",
    "parse_disposition",
    "record",
    "related",
    "reopen",
    "split",
    "timings",
    "unlink_case",
]
