"""Tests of Sigma correlation rules over hand-built event streams in an in-memory store.

Every correlation type is checked at its window edges (occurrences exactly ``timespan`` apart
are in one window; one second more and they are not), with group-by separation, aliases,
each threshold operator, order sensitivity, distinctness, exact sums, averages and
percentiles, chaining and ``generate``, and malformed rules.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
import yaml
from sigma.collection import SigmaCollection
from sigma.correlations import SigmaCorrelationRule
from sigma.rule import SigmaRule

from vigil.core.errors import RuleError
from vigil.detect.compiler import compile_rule, rule_meta
from vigil.detect.correlation import (
    MAX_EVENTS,
    CorrelationHit,
    correlation_base_rules,
    evaluate_correlations,
    index_rules,
    parse_correlation,
    silenced_rules,
    usable_correlations,
)
from vigil.detect.correlation_windows import Occurrence, WindowSpec, find_windows
from vigil.detect.engine import Engine
from vigil.detect.filters import apply_filters
from vigil.detect.types import CompiledRule
from vigil.events.models import Event, LogSource
from vigil.store.duck import EventStore

T0 = datetime(2024, 5, 1, 10, 0, tzinfo=UTC)
SECURITY = LogSource("windows", None, "security")
_IDS = itertools.count()

BASE_RULES = {  # Sigma name -> (id, EventID)
    "failed_login": ("53ba33fd-3a50-4468-a5ef-c583635cfa92", 4625),
    "successful_login": ("4d0a2c83-c62c-4ed4-b475-c7e23a9269b8", 4624),
    "recon_a": ("0a7c1f3e-2b4d-4e5f-8a9b-0c1d2e3f4a51", 1001),
    "recon_b": ("0a7c1f3e-2b4d-4e5f-8a9b-0c1d2e3f4a52", 1002),
    "recon_c": ("0a7c1f3e-2b4d-4e5f-8a9b-0c1d2e3f4a53", 1003),
    "transfer": ("0a7c1f3e-2b4d-4e5f-8a9b-0c1d2e3f4a54", 5156),
}
FAILED = BASE_RULES["failed_login"][0]


def _base_yaml() -> str:
    docs = [{"title": f"Base {name}", "id": ident, "name": name, "author": "Vigil tests",
             "logsource": {"product": "windows", "service": "security"},
             "detection": {"sel": {"EventID": code}, "condition": "sel"}}
            for name, (ident, code) in BASE_RULES.items()]
    return yaml.safe_dump_all(docs, sort_keys=False)


def ev(seconds: float, code: int, **fields: Any) -> Event:
    """An event ``seconds`` after T0 with EventID ``code``."""
    values = {"EventID": code, **fields}
    return Event(f"ev{next(_IDS)}", T0 + timedelta(seconds=seconds), T0, "host1", SECURITY,
                 "json", values, repr(values))


def corr(kind: str, rules: Sequence[str], timespan: str = "1m",
         condition: dict[str, Any] | None = None, group_by: Sequence[str] | None = None,
         **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"type": kind, "rules": list(rules), "timespan": timespan}
    if condition is not None:
        body["condition"] = condition
    if group_by is not None:
        body["group-by"] = list(group_by)
    body.update({k.replace("_", "-"): v for k, v in extra.items() if k != "meta"})
    meta = {"title": f"Correlation {kind}", "author": "Vigil tests", "level": "high",
            **extra.get("meta", {})}
    return {**meta, "correlation": body}


def load(correlations: Sequence[dict[str, Any]], extra: str = "",
         ) -> tuple[list[CompiledRule], dict[str, str], list[SigmaCorrelationRule], SigmaCollection]:
    text = _base_yaml() + "---\n" + yaml.safe_dump_all(list(correlations), sort_keys=False)
    collection = SigmaCollection.from_yaml(text + extra, collect_errors=True,
                                           collect_filters=True, resolve_references=False)
    rules, names = [], {}
    for item in collection.rules:
        if isinstance(item, SigmaRule):
            compiled = compile_rule(item, rule_meta(item, "base.yml"))
            rules.append(compiled)
            names[compiled.meta.id] = str(item.name)
    found = [c for c in collection.rules if isinstance(c, SigmaCorrelationRule)]
    return rules, names, found, collection


def store_of(events: Sequence[Event]) -> EventStore:
    store = EventStore(None)
    store.write(list(events))
    return store


def run(correlations: dict[str, Any] | Sequence[dict[str, Any]], events: Sequence[Event],
        **kwargs: Any) -> list[CorrelationHit]:
    listed = [correlations] if isinstance(correlations, dict) else list(correlations)
    rules, names, found, _ = load(listed)
    return evaluate_correlations(store_of(events), found, index_rules(rules, names), **kwargs)


def fired(correlation: dict[str, Any], events: Sequence[Event]) -> bool:
    return bool(run(correlation, events))


# --- event_count ---------------------------------------------------------------------------


EVENT_COUNT = corr("event_count", ["failed_login"], "1m", {"gte": 3}, ["User"])


def test_event_count_window_edge_is_inclusive() -> None:
    inside = [ev(0, 4625, User="bob"), ev(30, 4625, User="bob"), ev(60, 4625, User="bob")]
    hits = run(EVENT_COUNT, inside)
    assert len(hits) == 1
    hit = hits[0]
    assert (hit.value, hit.count, hit.group) == (3, 3, {"User": "bob"})
    assert (hit.first, hit.last, hit.fired) == (T0, T0 + timedelta(seconds=60),
                                                 T0 + timedelta(seconds=60))
    assert hit.event_ids == tuple(e.id for e in inside)
    assert hit.rules == (FAILED,)
    assert (hit.rule.title, hit.rule.level, hit.rule.author) == (
        "Correlation event_count", "high", "Vigil tests")
    outside = [ev(0, 4625, User="bob"), ev(30, 4625, User="bob"), ev(61, 4625, User="bob")]
    assert run(EVENT_COUNT, outside) == []


def test_event_count_windows_slide_across_minute_boundaries() -> None:
    # 10:00:50, 10:01:10, 10:01:30: no fixed one-minute bucket holds three of them.
    events = [ev(50, 4625, User="bob"), ev(70, 4625, User="bob"), ev(90, 4625, User="bob")]
    assert fired(EVENT_COUNT, events)


def test_event_count_separates_groups() -> None:
    events = [ev(0, 4625, User="bob"), ev(1, 4625, User="alice"), ev(2, 4625, User="bob"),
              ev(3, 4625, User="alice")]
    assert run(EVENT_COUNT, events) == []
    hits = run(EVENT_COUNT, [*events, ev(4, 4625, User="bob")])
    assert [h.group for h in hits] == [{"User": "bob"}]


def test_event_count_ignores_matches_without_the_group_field_and_other_rules() -> None:
    events = [ev(0, 4625, User="bob"), ev(1, 4625), ev(2, 4625, Other="x"),
              ev(3, 4624, User="bob"), ev(4, 4625, User="bob")]
    assert run(EVENT_COUNT, events) == []


def test_event_count_without_group_by_counts_everything() -> None:
    correlation = corr("event_count", ["failed_login"], "1m", {"gte": 3})
    hits = run(correlation, [ev(0, 4625, User="a"), ev(1, 4625, User="b"), ev(2, 4625)])
    assert [(h.group, h.value) for h in hits] == [({}, 3)]


@pytest.mark.parametrize(("op", "threshold", "expected"), [
    ("gt", 2, True), ("gt", 3, False), ("gte", 3, True), ("gte", 4, False),
    ("lt", 4, True), ("lt", 3, False), ("lte", 3, True), ("lte", 2, False),
    ("eq", 3, True), ("eq", 2, False), ("neq", 2, True), ("neq", 3, False),
])
def test_event_count_operators(op: str, threshold: int, expected: bool) -> None:
    correlation = corr("event_count", ["failed_login"], "1m", {op: threshold}, ["User"])
    events = [ev(0, 4625, User="bob"), ev(20, 4625, User="bob"), ev(40, 4625, User="bob")]
    assert fired(correlation, events) is expected


def test_lower_bounds_see_all_occurrences_within_the_timespan() -> None:
    # A burst of 5 within the minute: its sub-windows hold fewer, but "lt 3" is about all.
    correlation = corr("event_count", ["failed_login"], "1m", {"lt": 3}, ["User"])
    burst = [ev(i, 4625, User="bob") for i in range(5)]
    assert run(correlation, burst) == []
    sparse = [ev(0, 4625, User="bob"), ev(100, 4625, User="bob"), ev(200, 4625, User="bob")]
    assert [h.value for h in run(correlation, sparse)] == [1, 1, 1]


def test_event_count_hits_report_the_whole_window_and_never_overlap() -> None:
    burst = [ev(i * 5, 4625, User="bob") for i in range(6)]
    later = [ev(300 + i, 4625, User="bob") for i in range(3)]
    hits = run(EVENT_COUNT, burst + later)
    assert [(h.value, h.fired) for h in hits] == [
        (6, T0 + timedelta(seconds=10)), (3, T0 + timedelta(seconds=302))]
    assert not set(hits[0].event_ids) & set(hits[1].event_ids)


def test_event_count_keeps_at_most_max_events_ids() -> None:
    events = [ev(i * 0.1, 4625, User="bob") for i in range(MAX_EVENTS + 50)]
    (hit,) = run(EVENT_COUNT, events)
    assert hit.value == hit.count == MAX_EVENTS + 50
    assert hit.event_ids == tuple(e.id for e in events[:MAX_EVENTS])


def test_an_event_matched_by_two_rules_counts_once_except_for_temporal_types() -> None:
    also_failed = """---
title: Also failed
id: 9b2f4c1d-5e6f-4a7b-8c9d-0e1f2a3b4c5d
name: also_failed
logsource: {product: windows, service: security}
detection: {sel: {EventID: 4625}, condition: sel}
"""
    counting = corr("event_count", ["failed_login", "also_failed"], "1m", {"gte": 2})
    both = corr("temporal", ["failed_login", "also_failed"], "1m", meta={"title": "Both"})
    rules, names, found, _ = load([counting, both], also_failed)
    hits = evaluate_correlations(store_of([ev(0, 4625, User="bob")]), found,
                                 index_rules(rules, names))
    assert [(h.rule.title, h.value, h.count) for h in hits] == [("Both", 2, 2)]


def test_since_and_until_limit_the_events() -> None:
    events = [ev(0, 4625, User="bob"), ev(10, 4625, User="bob"), ev(20, 4625, User="bob")]
    assert len(run(EVENT_COUNT, events, since=T0, until=T0 + timedelta(seconds=21))) == 1
    assert run(EVENT_COUNT, events, since=T0 + timedelta(seconds=5)) == []
    assert run(EVENT_COUNT, events, until=T0 + timedelta(seconds=20)) == []


# --- value_count ---------------------------------------------------------------------------


VALUE_COUNT = corr("value_count", ["failed_login"], "1m", {"gte": 3, "field": "User"},
                   ["Computer"])


def test_value_count_counts_distinct_values() -> None:
    same = [ev(i, 4625, Computer="dc1", User="bob") for i in range(5)]
    assert run(VALUE_COUNT, same) == []
    users = [ev(0, 4625, Computer="dc1", User="bob"), ev(1, 4625, Computer="dc1", User="bob"),
             ev(2, 4625, Computer="dc1", User="alice"), ev(3, 4625, Computer="dc1", User="eve")]
    (hit,) = run(VALUE_COUNT, users)
    assert (hit.value, hit.count, hit.group) == (3, 4, {"Computer": "dc1"})


def test_value_count_window_edges_and_groups() -> None:
    edge = [ev(0, 4625, Computer="dc1", User="a"), ev(30, 4625, Computer="dc1", User="b"),
            ev(60, 4625, Computer="dc1", User="c")]
    assert fired(VALUE_COUNT, edge)
    past = [ev(0, 4625, Computer="dc1", User="a"), ev(30, 4625, Computer="dc1", User="b"),
            ev(61, 4625, Computer="dc1", User="c")]
    assert not fired(VALUE_COUNT, past)
    split = [ev(0, 4625, Computer="dc1", User="a"), ev(1, 4625, Computer="dc2", User="b"),
             ev(2, 4625, Computer="dc1", User="c")]
    assert not fired(VALUE_COUNT, split)


def test_value_count_is_case_sensitive_and_skips_missing_values() -> None:
    events = [ev(0, 4625, Computer="dc1", User="Bob"), ev(1, 4625, Computer="dc1", User="bob"),
              ev(2, 4625, Computer="dc1")]
    correlation = corr("value_count", ["failed_login"], "1m", {"eq": 2, "field": "User"},
                       ["Computer"])
    (hit,) = run(correlation, events)
    assert (hit.value, hit.count) == (2, 2)


# --- temporal and temporal_ordered ---------------------------------------------------------


RECON = ["recon_a", "recon_b", "recon_c"]


@pytest.mark.parametrize("kind", ["temporal", "temporal_ordered"])
def test_temporal_types_in_order_and_window_edges(kind: str) -> None:
    correlation = corr(kind, RECON, "5m", group_by=["User"])
    in_order = [ev(0, 1001, User="bob"), ev(100, 1002, User="bob"), ev(300, 1003, User="bob")]
    (hit,) = run(correlation, in_order)
    assert (hit.value, hit.type, hit.fired) == (3, kind, T0 + timedelta(seconds=300))
    assert len(hit.rules) == 3
    late = [ev(0, 1001, User="bob"), ev(100, 1002, User="bob"), ev(301, 1003, User="bob")]
    assert not fired(correlation, late)
    missing = [ev(0, 1001, User="bob"), ev(100, 1002, User="bob"), ev(101, 1002, User="bob")]
    assert not fired(correlation, missing)
    other_user = [ev(0, 1001, User="bob"), ev(1, 1002, User="bob"), ev(2, 1003, User="eve")]
    assert not fired(correlation, other_user)


def test_temporal_ignores_order_and_temporal_ordered_does_not() -> None:
    reverse = [ev(0, 1003, User="bob"), ev(10, 1002, User="bob"), ev(20, 1001, User="bob")]
    assert fired(corr("temporal", RECON, "5m", group_by=["User"]), reverse)
    assert not fired(corr("temporal_ordered", RECON, "5m", group_by=["User"]), reverse)
    # The order can be found among other matches: c, a, c, b, a, c holds a -> b -> c.
    mixed = [ev(i, code, User="bob") for i, code in enumerate([1003, 1001, 1003, 1002, 1001, 1003])]
    (hit,) = run(corr("temporal_ordered", RECON, "5m", group_by=["User"]), mixed)
    assert hit.value == 3


def test_temporal_ordered_counts_simultaneous_matches_as_in_order() -> None:
    same_time = [ev(0, 1002, User="bob"), ev(0, 1001, User="bob")]
    assert fired(corr("temporal_ordered", ["recon_a", "recon_b"], "1m", group_by=["User"]),
                 same_time)
    assert not fired(corr("temporal_ordered", ["recon_a", "recon_b"], "1m", group_by=["User"]),
                     [ev(0, 1002, User="bob"), ev(1, 1001, User="bob")])


def test_temporal_condition_counts_distinct_rules() -> None:
    correlation = corr("temporal", RECON, "5m", {"gte": 2}, ["User"])
    (hit,) = run(correlation, [ev(0, 1001, User="bob"), ev(1, 1001, User="bob"),
                               ev(2, 1003, User="bob")])
    assert (hit.value, hit.count) == (2, 3)
    ordered = corr("temporal_ordered", RECON, "5m", {"gte": 2}, ["User"])
    assert fired(ordered, [ev(0, 1001, User="bob"), ev(1, 1002, User="bob")])
    assert not fired(ordered, [ev(0, 1002, User="bob"), ev(1, 1003, User="bob")])


def test_aliases_join_differently_named_fields() -> None:
    correlation = corr("temporal", ["failed_login", "successful_login"], "1m",
                       group_by=["user"],
                       aliases={"user": {"failed_login": "TargetUserName",
                                         "successful_login": "SubjectUserName"}})
    joined = [ev(0, 4625, TargetUserName="bob", SubjectUserName="SYSTEM"),
              ev(10, 4624, SubjectUserName="bob", TargetUserName="svc")]
    (hit,) = run(correlation, joined)
    assert hit.group == {"user": "bob"}
    apart = [ev(0, 4625, TargetUserName="bob"), ev(10, 4624, SubjectUserName="eve")]
    assert not fired(correlation, apart)


def test_alias_for_a_rule_the_correlation_does_not_use_is_an_error() -> None:
    correlation = corr("temporal", ["failed_login", "successful_login"], "1m",
                       group_by=["user"], aliases={"user": {"recon_a": "User"}})
    with pytest.raises(RuleError, match="does not refer to"):
        run(correlation, [])


# --- value_sum, value_avg, value_percentile ------------------------------------------------


def _numeric(kind: str, condition: dict[str, Any]) -> dict[str, Any]:
    return corr(kind, ["transfer"], "1m", {**condition, "field": "Bytes"}, ["Computer"])


def test_value_sum_thresholds_and_edges() -> None:
    events = [ev(0, 5156, Computer="ws1", Bytes=100), ev(30, 5156, Computer="ws1", Bytes=200),
              ev(60, 5156, Computer="ws1", Bytes=300), ev(1, 5156, Computer="ws2", Bytes=900)]
    hits = run(_numeric("value_sum", {"gte": 600}), events)
    assert [(h.group, h.value, h.count) for h in hits] == [({"Computer": "ws2"}, 900, 1),
                                                           ({"Computer": "ws1"}, 600, 3)]
    assert [h.group for h in run(_numeric("value_sum", {"gt": 900}), events)] == []
    late = [ev(0, 5156, Computer="ws1", Bytes=100), ev(30, 5156, Computer="ws1", Bytes=200),
            ev(61, 5156, Computer="ws1", Bytes=300)]
    assert run(_numeric("value_sum", {"gte": 600}), late) == []


def test_value_sum_is_exact_and_skips_non_numbers() -> None:
    events = [ev(0, 5156, Computer="ws1", Bytes="0.1"), ev(1, 5156, Computer="ws1", Bytes="0.2"),
              ev(2, 5156, Computer="ws1", Bytes="n/a"), ev(3, 5156, Computer="ws1")]
    (hit,) = run(_numeric("value_sum", {"eq": 0.3}), events)
    assert hit.value == 0.3  # exact decimals: 0.1 + 0.2 is 0.3, not 0.30000000000000004
    assert hit.count == 2


def test_value_sum_fires_when_the_running_sum_crosses() -> None:
    events = [ev(i * 10, 5156, Computer="ws1", Bytes=250) for i in range(5)]
    (hit,) = run(_numeric("value_sum", {"gt": 500}), events)
    assert (hit.value, hit.fired, hit.last) == (1250, T0 + timedelta(seconds=20),
                                                T0 + timedelta(seconds=40))


@pytest.mark.parametrize(("condition", "expected"), [
    ({"gte": 30}, True), ({"gt": 30}, False), ({"eq": 30}, True), ({"lt": 31}, True),
    ({"lte": 29}, False), ({"neq": 30}, False),
])
def test_value_avg(condition: dict[str, Any], expected: bool) -> None:
    events = [ev(0, 5156, Computer="ws1", Bytes=10), ev(20, 5156, Computer="ws1", Bytes=20),
              ev(40, 5156, Computer="ws1", Bytes=60)]
    assert fired(_numeric("value_avg", condition), events) is expected


def test_value_avg_window_edge() -> None:
    events = [ev(0, 5156, Computer="ws1", Bytes=100), ev(60, 5156, Computer="ws1", Bytes=0)]
    (hit,) = run(_numeric("value_avg", {"lte": 50}), events)
    assert hit.value == 50
    apart = [ev(0, 5156, Computer="ws1", Bytes=100), ev(61, 5156, Computer="ws1", Bytes=0)]
    assert [h.value for h in run(_numeric("value_avg", {"lte": 50}), apart)] == [0]


def test_value_percentile_interpolates_linearly() -> None:
    events = [ev(i, 5156, Computer="ws1", Bytes=v) for i, v in enumerate(range(10, 0, -1))]
    (hit,) = run(_numeric("value_percentile", {"gt": 9, "percentile": 90}), events)
    assert hit.value == pytest.approx(9.1)
    assert run(_numeric("value_percentile", {"gte": 9.2, "percentile": 90}), events) == []
    (median,) = run(_numeric("value_percentile", {"eq": 5.5, "percentile": 50}), events)
    assert median.count == 10


def test_value_percentile_window_edge() -> None:
    inside = [ev(0, 5156, Computer="ws1", Bytes=1), ev(60, 5156, Computer="ws1", Bytes=3)]
    (hit,) = run(_numeric("value_percentile", {"eq": 2, "percentile": 50}), inside)
    assert hit.count == 2
    outside = [ev(0, 5156, Computer="ws1", Bytes=1), ev(61, 5156, Computer="ws1", Bytes=3)]
    assert run(_numeric("value_percentile", {"eq": 2, "percentile": 50}), outside) == []


# --- chaining and generate -----------------------------------------------------------------


MANY_FAILED = corr("event_count", ["failed_login"], "10m", {"gte": 3}, ["User"],
                   meta={"title": "Many failed logons", "name": "many_failed",
                         "id": "a8418a5a-5fc4-46b5-b23b-6c73beb19d41", "level": "medium"})
BRUTE_FORCE = corr("temporal_ordered", ["many_failed", "successful_login"], "10m",
                   group_by=["User"],
                   meta={"title": "Brute force success", "id": "b180ead8-d58f-40b2-ae54-c8940995b9b6"})


def test_chained_correlation_failed_logons_then_success() -> None:
    failures = [ev(i * 30, 4625, User="bob") for i in range(4)]
    success = ev(200, 4624, User="bob")
    hits = run([BRUTE_FORCE, MANY_FAILED], [*failures, success])
    assert [h.rule.title for h in hits] == ["Brute force success"]
    (hit,) = hits
    assert hit.group == {"User": "bob"}
    assert (hit.first, hit.last) == (T0, success.ts)
    assert hit.event_ids == (*(e.id for e in failures), success.id)
    assert hit.rules == ("a8418a5a-5fc4-46b5-b23b-6c73beb19d41", BASE_RULES["successful_login"][0])
    both = run([BRUTE_FORCE, MANY_FAILED], [*failures, success], include_referenced=True)
    assert [h.rule.title for h in both] == ["Many failed logons", "Brute force success"]


def test_chained_correlation_needs_the_inner_hit_first_and_the_same_group() -> None:
    early_success = [ev(0, 4624, User="bob"), *(ev(10 + i, 4625, User="bob") for i in range(3))]
    assert run([BRUTE_FORCE, MANY_FAILED], early_success) == []
    other_user = [*(ev(i, 4625, User="bob") for i in range(3)), ev(10, 4624, User="eve")]
    assert run([BRUTE_FORCE, MANY_FAILED], other_user) == []


def test_generate_decides_which_rules_stay_silent() -> None:
    rules, names, found, _ = load([BRUTE_FORCE, MANY_FAILED])
    index = index_rules(rules, names)
    assert silenced_rules(found, index) == {FAILED, BASE_RULES["successful_login"][0],
                                           "a8418a5a-5fc4-46b5-b23b-6c73beb19d41"}
    loud = corr("event_count", ["failed_login"], "1m", {"gte": 3}, ["User"], generate=True,
                meta={"title": "Loud"})
    rules, names, found, _ = load([BRUTE_FORCE, MANY_FAILED, loud])
    assert FAILED not in silenced_rules(found, index_rules(rules, names))


def test_precomputed_detections_give_the_same_hits() -> None:
    rules, names, found, _ = load([BRUTE_FORCE, MANY_FAILED])
    index = index_rules(rules, names)
    events = [*(ev(i * 30, 4625, User="bob") for i in range(4)), ev(200, 4624, User="bob")]
    store = store_of(events)
    detections = list(Engine(correlation_base_rules(found, index)).run(store))
    assert evaluate_correlations(store, found, index, detections=detections) \
        == evaluate_correlations(store, found, index)


def test_filters_suppress_matches_of_the_named_rule_only() -> None:
    filter_yaml = """---
title: Service accounts fail by design
logsource: {product: windows, service: security}
filter:
    rules: [failed_login]
    svc: {User|startswith: 'svc_'}
    condition: not svc
"""
    count_both = corr("event_count", ["failed_login", "successful_login"], "1m", {"gte": 3},
                      ["User"])
    rules, names, found, collection = load([count_both], filter_yaml)
    filtered = apply_filters(rules, collection.filters, names)
    events = [ev(0, 4625, User="svc_backup"), ev(1, 4625, User="svc_backup"),
              ev(2, 4624, User="svc_backup"), ev(3, 4624, User="svc_backup"),
              ev(4, 4624, User="svc_backup")]
    hits = evaluate_correlations(store_of(events), found, index_rules(filtered, names))
    assert [(h.value, h.rules) for h in hits] == [(3, (BASE_RULES["successful_login"][0],))]
    unfiltered = evaluate_correlations(store_of(events), found, index_rules(rules, names))
    assert [h.value for h in unfiltered] == [5]


# --- fields through the partition mapping --------------------------------------------------


def test_group_by_reads_mapped_and_differently_cased_fields() -> None:
    audit = LogSource("windows", "process_creation", "security")
    rule = SigmaRule.from_yaml("""
title: Whoami
id: 6f3e2987-db24-4c78-a860-b4f4095a7095
name: whoami
logsource: {product: windows, category: process_creation}
detection: {sel: {Image|endswith: '\\\\whoami.exe', Computer: ws1}, condition: sel}
""")
    compiled = compile_rule(rule, rule_meta(rule, "whoami.yml"))
    correlation = SigmaCorrelationRule.from_yaml(yaml.safe_dump(
        corr("event_count", ["whoami"], "1m", {"gte": 2}, ["User", "COMPUTER"])))
    events = [Event(f"audit{i}", T0 + timedelta(seconds=i), T0, "h", audit, "json",
                    {"NewProcessName": "C:\\Windows\\System32\\whoami.exe",
                     "SubjectUserName": "alice", "Computer": "ws1"}, f"raw{i}") for i in range(2)]
    (hit,) = evaluate_correlations(store_of(events), [correlation],
                                   index_rules([compiled], {compiled.meta.id: "whoami"}))
    assert hit.group == {"User": "alice", "COMPUTER": "ws1"}


# --- the window algorithm on its own -------------------------------------------------------


def test_find_windows_directly() -> None:
    spec = WindowSpec("event_count", "gte", threshold=Decimal(2),
                      span=timedelta(seconds=10), refs=1)
    items = [Occurrence(T0 + timedelta(seconds=s), 0, f"k{s}", (f"k{s}",), "r", ())
             for s in (0, 10, 21, 31, 45)]
    windows = find_windows(items, spec)
    assert [[i.key for i in w.items] for w in windows] == [["k0", "k10"], ["k21", "k31"]]
    assert find_windows([], spec) == []


# --- malformed correlations ----------------------------------------------------------------


@pytest.mark.parametrize(("body", "message"), [
    ({"type": "event_burst", "rules": ["a"], "timespan": "5m", "condition": {"gte": 3}},
     "no valid Sigma correlation type"),
    ({"type": "event_count", "timespan": "5m", "condition": {"gte": 3}},
     "without rule references"),
    ({"type": "event_count", "rules": ["a"], "timespan": "5 minutes", "condition": {"gte": 3}},
     "Timespan '5 minutes' is invalid"),
    ({"type": "event_count", "rules": ["a"], "timespan": "0m", "condition": {"gte": 3}},
     "greater than zero"),
    ({"type": "event_count", "rules": ["a"], "condition": {"gte": 3}}, "without timespan"),
    ({"type": "event_count", "rules": ["a"], "timespan": "5m", "condition": {"gte": 1, "lt": 5}},
     "exactly one condition item"),
    ({"type": "value_count", "rules": ["a"], "timespan": "5m", "condition": {"gte": 3}},
     "without field reference"),
    ({"type": "value_percentile", "rules": ["a"], "timespan": "5m",
      "condition": {"gte": 3, "field": "x"}}, "percentile between 0 and 100"),
    ({"type": "value_percentile", "rules": ["a"], "timespan": "5m",
      "condition": {"gte": 3, "field": "x", "percentile": 120}}, "percentile between 0 and 100"),
    ({"type": "temporal", "rules": ["a", "b"], "timespan": "5m", "condition": "a and not b"},
     "extended"),
    ({"type": "event_count", "rules": "a", "timespan": "5m", "condition": {"gte": "many"}},
     "no valid Sigma correlation condition count"),
])
def test_malformed_correlations_raise_rule_errors(body: dict[str, Any], message: str) -> None:
    text = yaml.safe_dump({"title": "Broken", "correlation": body})
    with pytest.raises(RuleError, match=message) as caught:
        parse_correlation(text, "broken.yml")
    assert str(caught.value).startswith("broken.yml: ")


def test_parse_correlation_accepts_a_valid_rule() -> None:
    parsed = parse_correlation(yaml.safe_dump(EVENT_COUNT))
    assert str(parsed.type) == "event_count"


def test_unknown_references_and_cycles_raise_rule_errors() -> None:
    with pytest.raises(RuleError, match="unknown rule 'nope'"):
        run(corr("event_count", ["nope"], "1m", {"gte": 1}), [])
    first = corr("event_count", ["second"], "1m", {"gte": 1}, meta={"name": "first"})
    second = corr("event_count", ["first"], "1m", {"gte": 1}, meta={"name": "second",
                                                                      "title": "Second"})
    with pytest.raises(RuleError, match="cycle"):
        run([first, second], [])
    with pytest.raises(RuleError, match="duplicate correlation id"):
        run([first, corr("event_count", ["failed_login"], "1m", {"gte": 1},
                         meta={"name": "first"})], [])


def test_usable_correlations_sets_aside_the_bad_ones() -> None:
    good = corr("event_count", ["failed_login"], "1m", {"gte": 3}, ["User"],
                meta={"title": "Good", "name": "good"})
    unknown = corr("event_count", ["nope"], "1m", {"gte": 1}, meta={"title": "Unknown",
                                                                     "name": "unknown"})
    chained = corr("temporal", ["unknown", "good"], "1m", meta={"title": "Chained"})
    duplicate = corr("event_count", ["failed_login"], "1m", {"gte": 1},
                     meta={"title": "Again", "name": "good"})
    rules, names, found, _ = load([good, unknown, chained, duplicate])
    found.append(SigmaCorrelationRule.from_yaml(yaml.safe_dump(
        {"title": "Broken", "correlation": {"type": "nope", "rules": ["a"], "timespan": "1m"}}),
        collect_errors=True))
    usable, problems = usable_correlations(found, index_rules(rules, names))
    assert [c.title for c in usable] == ["Good"]
    assert len(problems) == 4
    assert sum("unknown rule 'nope'" in p for p in problems) == 2
    assert any("duplicate correlation id good" in p for p in problems)
    assert any("no valid Sigma correlation type" in p for p in problems)
