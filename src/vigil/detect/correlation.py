"""Sigma correlation rules evaluated over the stored events.

A correlation names rules (by id or ``name``; other correlations too: chaining) and says what
must happen among their matches, per group of equal ``group-by`` values, within ``timespan``:

| type | a window's value |
|---|---|
| ``event_count`` | matched events |
| ``value_count`` | distinct values of ``condition.field`` (a tuple when it lists several) |
| ``temporal`` | distinct referenced rules that matched |
| ``temporal_ordered`` | referenced rules matched in their listed order, from the first |
| ``value_sum`` / ``value_avg`` | sum / mean of ``condition.field`` (exact decimals) |
| ``value_percentile`` / ``value_median`` | ``condition.percentile`` (linear interpolation) |

The condition compares the value with one of ``gt gte lt lte eq neq``; temporal types
default to "all referenced rules". How windows slide, where they end (inclusive), which of
them are evaluated and how hits are cut is in :mod:`vigil.detect.correlation_windows`.

Evaluation: the referenced detection rules run once through the :class:`Engine` (over the
``since``/``until`` range) with their ``fields`` widened to the group-by, alias and value
fields, so every :class:`Detection` carries what the correlation needs, read through the
partition's field mapping (field names compare case-insensitively, values as stored text:
``Bob`` and ``bob`` are two users). Matches whose group-by (or value) field is missing or,
for value types other than ``value_count``, not a number, are left out. One event matched by
several referenced rules counts once, except for temporal types. A referenced correlation's
hits are occurrences at their ``fired`` time whose fields are their group-by values. Windows
see only the events in ``[since, until)``: a burst straddling ``since`` is cut.

``generate``: a referenced rule (or correlation) still gives its own detections when at least
one correlation naming it says ``generate: true``; :func:`silenced_rules` lists the others.

Extended (boolean) temporal conditions and two-bound conditions are not supported (pySigma
2.0.1 rejects the latter itself); they raise :class:`RuleError`, as do malformed rules,
unknown references and cycles.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from sigma.correlations import (
    SigmaCorrelationCondition,
    SigmaCorrelationRule,
    SigmaCorrelationType,
)
from sigma.exceptions import SigmaError

from vigil.core.errors import Location, RuleError
from vigil.detect.correlation_windows import (
    KINDS,
    NUMERIC_KINDS,
    Occurrence,
    Window,
    WindowSpec,
    find_windows,
    order,
)
from vigil.detect.engine import Detection, Engine, time_scope
from vigil.detect.filters import normal_reference
from vigil.detect.types import CompiledRule, RuleMeta
from vigil.events.models import LogSource
from vigil.store.duck import EventStore

__all__ = ["MAX_EVENTS", "CorrelationHit", "check_correlation", "correlation_base_rules",
           "correlation_meta", "evaluate_correlations", "index_rules", "parse_correlation",
           "silenced_rules", "usable_correlations"]

MAX_EVENTS = 100
"""At most this many contributing event ids are kept per hit."""


@dataclass(frozen=True, slots=True)
class CorrelationHit:
    """One firing of a correlation rule for one group."""

    rule: RuleMeta
    """The correlation's metadata (its log source is empty)."""
    type: str
    group: dict[str, str]
    first: datetime
    """The earliest contributing event (through a referenced correlation's hits too)."""
    last: datetime
    """The last occurrence in the window."""
    fired: datetime
    """When the condition first held (see :mod:`vigil.detect.correlation_windows`)."""
    value: int | float
    """The window's count, distinct count, number of rules, sum, mean or percentile."""
    count: int
    """Occurrences in the window (events, or hits of a referenced correlation)."""
    event_ids: tuple[str, ...]
    """The contributing events, in time order (at most :data:`MAX_EVENTS`)."""
    rules: tuple[str, ...]
    """Ids of the referenced rules (or correlations) that matched in the window."""


@dataclass(frozen=True, slots=True)
class _Ref:
    reference: str
    target: str
    """The referenced rule's id, or the referenced correlation's key."""
    rule: CompiledRule | None


@dataclass(frozen=True, slots=True)
class _Plan:
    meta: RuleMeta
    refs: tuple[_Ref, ...]
    spec: WindowSpec
    group_by: tuple[str, ...]
    aliases: dict[str, dict[int, str]]
    """alias -> position in ``refs`` -> the field it stands for."""
    value_fields: tuple[str, ...]
    generate: bool

    def fields_of(self, ref: int) -> list[str]:
        """The event fields read from the matches of ``refs[ref]``."""
        group = [self.aliases.get(g, {}).get(ref, g) for g in self.group_by]
        return group + list(self.value_fields)


# --- metadata and checks -------------------------------------------------------------------


def _path(correlation: SigmaCorrelationRule) -> str:
    source = getattr(correlation, "source", None)
    path = getattr(source, "path", None)
    return str(path) if path is not None else "<correlation>"


def correlation_meta(correlation: SigmaCorrelationRule, path: str | None = None) -> RuleMeta:
    """What Vigil shows about a correlation (level defaults to medium, as for rules)."""
    path = path or _path(correlation)
    ident = str(correlation.id) if correlation.id is not None else (correlation.name or path)
    return RuleMeta(
        id=ident, title=correlation.title,
        level=str(correlation.level) if correlation.level is not None else "medium",
        status=str(correlation.status) if correlation.status is not None else None,
        author=correlation.author, description=correlation.description,
        references=tuple(str(r) for r in correlation.references),
        tags=tuple(str(t) for t in correlation.tags),
        falsepositives=tuple(str(f) for f in correlation.falsepositives),
        logsource=LogSource(), path=path)


def _reason(error: Exception) -> str:
    return str(error.args[0]) if error.args else str(error) or type(error).__name__


def check_correlation(correlation: SigmaCorrelationRule, path: str | None = None) -> None:
    """Raise :class:`RuleError` unless Vigil can evaluate ``correlation`` faithfully."""
    location = Location(path or _path(correlation))
    if correlation.errors:
        reasons = "; ".join(_reason(e) for e in correlation.errors)
        raise RuleError(f"invalid correlation rule: {reasons}", location=location)
    kind = str(correlation.type)
    if not isinstance(correlation.type, SigmaCorrelationType) or kind not in KINDS:
        raise RuleError(f"unsupported correlation type '{kind}'", location=location)
    condition = correlation.condition
    if not isinstance(condition, SigmaCorrelationCondition):
        raise RuleError("extended (boolean) temporal conditions are not supported",
                        location=location)
    if not correlation.rules:
        raise RuleError("the correlation refers to no rules", location=location)
    if kind in NUMERIC_KINDS | {"value_count"} and not condition.fieldref:
        raise RuleError(f"a {kind} correlation needs condition.field", location=location)
    if kind == "value_percentile" and not (
            condition.percentile is not None and 0 <= condition.percentile <= 100):
        raise RuleError("a value_percentile correlation needs condition.percentile "
                        "between 0 and 100", location=location)


def parse_correlation(text: str, path: str = "<correlation>") -> SigmaCorrelationRule:
    """Parse and check one correlation YAML document, or raise :class:`RuleError`."""
    try:
        correlation = SigmaCorrelationRule.from_yaml(text, collect_errors=True)
    except (SigmaError, ValueError, TypeError, AttributeError) as exc:
        raise RuleError(f"invalid correlation rule: {_reason(exc)}",
                        location=Location(path)) from None
    check_correlation(correlation, path)
    return correlation


# --- references and plans ------------------------------------------------------------------


def index_rules(rules: Iterable[CompiledRule],
                names: Mapping[str, str] | None = None) -> dict[str, CompiledRule]:
    """Rules by every reference a correlation may use: their id, and their Sigma ``name``
    (``names`` maps a rule id to it)."""
    index: dict[str, CompiledRule] = {}
    names = names or {}
    for rule in rules:
        index[normal_reference(rule.meta.id)] = rule
        name = names.get(rule.meta.id)
        if name:
            index[name] = rule
    return index


class _Planner:
    """Resolves references and orders correlations so that referenced ones come first."""

    def __init__(self, correlations: Sequence[SigmaCorrelationRule],
                 rules: Mapping[str, CompiledRule]) -> None:
        self.rules = {normal_reference(k): v for k, v in rules.items()}
        self.sources: dict[str, tuple[SigmaCorrelationRule, RuleMeta]] = {}
        self.keys: dict[str, str] = {}
        for number, correlation in enumerate(correlations, 1):
            meta = correlation_meta(correlation)
            check_correlation(correlation, meta.path)
            if correlation.id is None and not correlation.name:
                meta = replace(meta, id=f"{meta.path}#{number}")  # anonymous: one of a kind
            if meta.id in self.sources:
                raise RuleError(f"duplicate correlation id {meta.id}", location=Location(meta.path))
            self.sources[meta.id] = correlation, meta
            for alias in (meta.id, correlation.name):
                if alias:
                    self.keys[normal_reference(alias)] = meta.id
        self.plans: dict[str, _Plan] = {}
        self.visiting: set[str] = set()

    def resolve(self, reference: str, owner: RuleMeta) -> _Ref:
        wanted = normal_reference(reference)
        if wanted in self.rules:
            return _Ref(reference, self.rules[wanted].meta.id, self.rules[wanted])
        if wanted in self.keys:
            return _Ref(reference, self.plan(self.keys[wanted]).meta.id, None)
        raise RuleError(f"correlation '{owner.title}' refers to unknown rule '{reference}'",
                        location=Location(owner.path))

    def plan(self, key: str) -> _Plan:
        if key in self.plans:
            return self.plans[key]
        correlation, meta = self.sources[key]
        if key in self.visiting:
            raise RuleError(f"correlation '{meta.title}' refers to itself (a cycle)",
                            location=Location(meta.path))
        self.visiting.add(key)
        refs = tuple(self.resolve(r.reference, meta) for r in correlation.rules or [])
        self.visiting.discard(key)
        self.plans[key] = _build_plan(correlation, meta, refs, self)
        return self.plans[key]


def _aliases(correlation: SigmaCorrelationRule, meta: RuleMeta, refs: Sequence[_Ref],
             planner: _Planner) -> dict[str, dict[int, str]]:
    """Aliases as ``alias -> position of the referenced rule -> field``."""
    positions = {ref.target: index for index, ref in enumerate(refs)}
    result: dict[str, dict[int, str]] = {}
    for alias in correlation.aliases:
        for reference, field in alias.mapping.items():
            target = planner.resolve(reference.reference, meta).target
            if target not in positions:
                raise RuleError(f"alias '{alias.alias}' maps rule '{reference.reference}', "
                                "which the correlation does not refer to",
                                location=Location(meta.path))
            result.setdefault(alias.alias, {})[positions[target]] = str(field)
    return result


def _build_plan(correlation: SigmaCorrelationRule, meta: RuleMeta, refs: tuple[_Ref, ...],
                planner: _Planner) -> _Plan:
    condition = correlation.condition
    assert isinstance(condition, SigmaCorrelationCondition)  # check_correlation made sure
    fieldref = condition.fieldref
    value_fields = () if fieldref is None else (
        (fieldref,) if isinstance(fieldref, str) else tuple(str(f) for f in fieldref))
    percentile = Decimal(condition.percentile) if condition.percentile is not None else None
    spec = WindowSpec(kind=str(correlation.type), op=condition.op.name.lower(),
                      threshold=Decimal(str(condition.count)),
                      span=timedelta(seconds=correlation.timespan.seconds), refs=len(refs),
                      percentile=percentile)
    return _Plan(meta, refs, spec, tuple(correlation.group_by or ()),
                 _aliases(correlation, meta, refs, planner), value_fields,
                 bool(correlation.generate))


def usable_correlations(correlations: Sequence[SigmaCorrelationRule],
                        rules: Mapping[str, CompiledRule],
                        ) -> tuple[list[SigmaCorrelationRule], list[str]]:
    """The correlations that can be evaluated together, and one message per other one
    (malformed, a duplicate, an unknown reference, a cycle, or one of those further down a
    chain), so that one bad correlation does not stop the rest."""
    problems: list[str] = []
    checked: list[SigmaCorrelationRule] = []
    seen: set[str] = set()
    for correlation in correlations:
        try:
            check_correlation(correlation)
        except RuleError as exc:
            problems.append(str(exc))
            continue
        named = correlation.id is not None or bool(correlation.name)
        ident = correlation_meta(correlation).id
        if named and ident in seen:
            problems.append(f"{_path(correlation)}: duplicate correlation id {ident}")
            continue
        seen.add(ident)
        checked.append(correlation)
    usable = []
    for position, correlation in enumerate(checked):
        planner = _Planner(checked, rules)
        try:
            planner.plan(list(planner.sources)[position])
        except RuleError as exc:
            problems.append(str(exc))
            continue
        usable.append(correlation)
    return usable, problems


def _plans(correlations: Sequence[SigmaCorrelationRule],
           rules: Mapping[str, CompiledRule]) -> list[_Plan]:
    """Checked, resolved correlations, each after the correlations it refers to."""
    planner = _Planner(correlations, rules)
    for key in planner.sources:
        planner.plan(key)
    return list(planner.plans.values())


# --- base rules ----------------------------------------------------------------------------


def _widened(plans: Sequence[_Plan]) -> list[CompiledRule]:
    """The referenced detection rules, their ``fields`` widened to what the plans read."""
    wanted: dict[str, tuple[CompiledRule, set[str]]] = {}
    for plan in plans:
        for index, ref in enumerate(plan.refs):
            if ref.rule is not None:
                _, extra = wanted.setdefault(ref.rule.meta.id, (ref.rule, set()))
                extra.update(plan.fields_of(index))
    result = []
    for rule, extra in wanted.values():
        have = {f.lower() for f in rule.fields}
        # DuckDB folds case: a second spelling of a projected field would read as NULL.
        added = {f for f in extra if f.lower() not in have}
        folded = {f.lower(): f for f in sorted(added)}
        result.append(replace(rule, fields=rule.fields | frozenset(folded.values())))
    return result


def correlation_base_rules(correlations: Sequence[SigmaCorrelationRule],
                           rules: Mapping[str, CompiledRule]) -> list[CompiledRule]:
    """The detection rules the correlations need, widened to the fields they read: run them
    (e.g. with the hunt's own rules) and pass their detections to
    :func:`evaluate_correlations` to avoid a second pass over the events."""
    return _widened(_plans(correlations, rules))


# --- occurrences ---------------------------------------------------------------------------


def _value(plan: _Plan, values: Sequence[Any]) -> tuple[bool, Any]:
    """(usable, value) of a match for the plan's value fields."""
    if not plan.value_fields:
        return True, None
    if any(v is None for v in values):
        return False, None
    if plan.spec.kind == "value_count":
        return True, values[0] if len(values) == 1 else tuple(values)
    try:
        number = Decimal(str(values[0]).strip())
    except InvalidOperation:
        return False, None
    return number.is_finite(), number


def _occurrence(plan: _Plan, ref: int, fields: Mapping[str, Any], ts: datetime, key: str,
                events: tuple[str, ...], rule_id: str,
                since: datetime | None = None) -> Occurrence | None:
    lowered = {k.lower(): v for k, v in fields.items()}
    values = [lowered.get(f.lower()) for f in plan.fields_of(ref)]
    group = values[:len(plan.group_by)]
    usable, value = _value(plan, values[len(plan.group_by):])
    if not usable or any(v is None for v in group):
        return None
    return Occurrence(ts, ref, key, events, rule_id, tuple(str(v) for v in group), value, since)


def _occurrences(plan: _Plan, detections: Mapping[str, list[Detection]],
                 hits: Mapping[str, list[CorrelationHit]]) -> list[Occurrence]:
    found: list[Occurrence | None] = []
    for index, ref in enumerate(plan.refs):
        if ref.rule is not None:
            found += [_occurrence(plan, index, d.fields, d.ts, d.event_id, (d.event_id,),
                                  ref.target) for d in detections.get(ref.target, [])]
        else:
            found += [_occurrence(plan, index, h.group, h.fired,
                                  f"{ref.target}#{n}", h.event_ids, ref.target, h.first)
                      for n, h in enumerate(hits.get(ref.target, []))]
    return [o for o in found if o is not None]


def _groups(plan: _Plan, occurrences: Iterable[Occurrence]) -> dict[tuple[str, ...],
                                                                     list[Occurrence]]:
    groups: dict[tuple[str, ...], list[Occurrence]] = defaultdict(list)
    for item in sorted(occurrences, key=order):
        groups[item.group].append(item)
    if plan.spec.kind not in ("temporal", "temporal_ordered"):
        for key, items in groups.items():
            unique: dict[str, Occurrence] = {}
            for item in items:
                unique.setdefault(item.key, item)
            groups[key] = list(unique.values())
    return groups


def _hit(plan: _Plan, group: tuple[str, ...], window: Window) -> CorrelationHit:
    events: dict[str, None] = {}
    for item in window.items:
        for event in item.events:
            if len(events) < MAX_EVENTS:
                events.setdefault(event)
    rules = dict.fromkeys(item.rule_id for item in window.items)
    value: int | float = window.value if isinstance(window.value, int) else (
        int(window.value) if window.value == window.value.to_integral_value()
        else float(window.value))
    first = min(item.since or item.ts for item in window.items)
    return CorrelationHit(plan.meta, plan.spec.kind, dict(zip(plan.group_by, group, strict=True)),
                          first, window.items[-1].ts, window.fired, value,
                          len(window.items), tuple(events), tuple(rules))


# --- evaluation ----------------------------------------------------------------------------


def _silenced(plans: Sequence[_Plan]) -> set[str]:
    referenced: dict[str, bool] = {}
    for plan in plans:
        for ref in plan.refs:
            referenced[ref.target] = referenced.get(ref.target, False) or plan.generate
    return {target for target, generate in referenced.items() if not generate}


def silenced_rules(correlations: Sequence[SigmaCorrelationRule],
                   rules: Mapping[str, CompiledRule]) -> set[str]:
    """Ids of the rules and correlations that give no output of their own: every correlation
    that refers to them leaves ``generate`` false (the default)."""
    return _silenced(_plans(correlations, rules))


def evaluate_correlations(store: EventStore, correlations: Sequence[SigmaCorrelationRule],
                          rules: Mapping[str, CompiledRule], since: datetime | None = None,
                          until: datetime | None = None, *,
                          detections: Iterable[Detection] | None = None,
                          include_referenced: bool = False) -> list[CorrelationHit]:
    """The hits of ``correlations`` over the events of ``store`` in ``[since, until)``.

    ``rules`` maps references to detection rules (see :func:`index_rules`). ``detections``
    are the matches of :func:`correlation_base_rules` when the caller has run them already.
    Hits of correlations that another correlation refers to without ``generate: true`` are
    left out unless ``include_referenced``. Hits come in the order they fired.
    """
    plans = _plans(correlations, rules)
    if detections is None:
        scope, params = time_scope(since, until)
        detections = Engine(_widened(plans)).run(store, scope, params)
    by_rule: dict[str, list[Detection]] = defaultdict(list)
    for detection in detections:
        by_rule[detection.rule.id].append(detection)
    hits: dict[str, list[CorrelationHit]] = {}
    for plan in plans:
        groups = _groups(plan, _occurrences(plan, by_rule, hits))
        hits[plan.meta.id] = sorted(
            (_hit(plan, group, window) for group, items in groups.items()
             for window in find_windows(items, plan.spec)),
            key=lambda h: (h.fired, h.first))
    hidden = set() if include_referenced else _silenced(plans)
    return sorted((h for key, found in hits.items() if key not in hidden for h in found),
                  key=lambda h: (h.fired, h.rule.title, tuple(h.group.values())))
