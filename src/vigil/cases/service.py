"""The cases context's use cases: the one module the front doors and other contexts call.

Every function takes the state database and opens its own transaction; people are looked up
before the case is locked. Each change writes its audit record (and, for case fields, its
case event) in the same transaction, and announces itself on the outbox.

Cases: :func:`create_case`, :func:`open_from_alerts`, :func:`update_case`, :func:`close_case`,
:func:`list_cases`, :func:`get_case_detail`, :func:`link_alerts`, :func:`unlink_alert`.
Work: tasks, comments (with @mentions), observables, evidence and custody, timeline entries,
clocks (:func:`check_clocks` runs periodically), the post-incident review. Metrics:
:func:`case_events` and :func:`events_between` (the transition log).
"""

from __future__ import annotations

from vigil.cases.cases import close_case, create_case, open_from_alerts, update_case
from vigil.cases.clocks import (
    add_clock,
    check_clocks,
    list_clocks,
    pause_clock,
    resume_clock,
    start_clock,
    stop_clock,
)
from vigil.cases.comments import add_comment, list_comments, parse_mentions
from vigil.cases.evidence import add_custody, add_evidence, get_evidence, list_evidence
from vigil.cases.links import link_alerts, unlink_alert
from vigil.cases.observables import add_observable, cases_sharing, link_observable, list_observables
from vigil.cases.queries import (
    CaseFilter,
    CaseSort,
    case_events,
    case_timeline,
    events_between,
    get_case_detail,
    list_cases,
    parse_sort,
)
from vigil.cases.review import add_action, complete_review, get_review, update_action, update_review
from vigil.cases.tasks import add_task, list_tasks, update_task
from vigil.cases.templates import catalog as list_templates
from vigil.cases.templates import get_template
from vigil.cases.timeline import add_entry, list_entries

__all__ = [
    "CaseFilter",
    "CaseSort",
    "add_action",
    "add_clock",
    "add_comment",
    "add_custody",
    "add_entry",
    "add_evidence",
    "add_observable",
    "add_task",
    "case_events",
    "case_timeline",
    "cases_sharing",
    "check_clocks",
    "close_case",
    "complete_review",
    "create_case",
    "events_between",
    "get_case_detail",
    "get_evidence",
    "get_review",
    "get_template",
    "link_alerts",
    "link_observable",
    "list_cases",
    "list_clocks",
    "list_comments",
    "list_entries",
    "list_evidence",
    "list_observables",
    "list_tasks",
    "list_templates",
    "open_from_alerts",
    "parse_mentions",
    "parse_sort",
    "pause_clock",
    "resume_clock",
    "start_clock",
    "stop_clock",
    "unlink_alert",
    "update_action",
    "update_case",
    "update_review",
    "update_task",
]
