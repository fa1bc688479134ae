"""Hunting: rules over files (no server needed) or over the stored history.

``hunt_files`` ingests the given logs into a throw-away store, then runs the rules on it:
Vigil's answer to the incident responder with a folder of EVTX files.
"""

from __future__ import annotations

import os
import tempfile
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from sigma.correlations import SigmaCorrelationRule
from sigma.filters import SigmaFilter

from vigil.core.config import load_settings
from vigil.core.db import StateDB
from vigil.core.errors import RuleError
from vigil.detect.correlation import (
    CorrelationHit,
    evaluate_correlations,
    index_rules,
    silenced_rules,
    usable_correlations,
)
from vigil.detect.engine import Detection, Engine, EngineStats, time_scope
from vigil.detect.filters import apply_filters, compile_filter, unused_filters
from vigil.detect.types import CompiledRule
from vigil.store.duck import EventStore

LEVELS = ("critical", "high", "medium", "low", "informational")


@dataclass(slots=True)
class RuleSet:
    """Compiled rules (filters applied), usable correlations, and what could not be used."""

    rules: list[CompiledRule] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    correlations: list[SigmaCorrelationRule] = field(default_factory=list)
    names: dict[str, str] = field(default_factory=dict)
    """Rule id -> Sigma ``name`` (correlations and filters may refer to rules by name)."""


@dataclass(slots=True)
class HuntResult:
    """Detections in time order, with the figures of the run."""

    detections: list[Detection]
    stats: EngineStats
    correlations: list[CorrelationHit] = field(default_factory=list)
    events: int = 0
    rejected: int = 0
    ingest_seconds: float = 0.0

    def by_level(self) -> Counter[str]:
        return Counter(d.rule.level for d in self.detections)

    def by_rule(self) -> Counter[tuple[str, str, str]]:
        return Counter((d.rule.level, d.rule.title, d.rule.id) for d in self.detections)


def select_rules(rules: Sequence[CompiledRule], min_level: str = "informational",
                 statuses: Sequence[str] = ()) -> list[CompiledRule]:
    """Rules of at least ``min_level`` and, when ``statuses`` is given, of those statuses."""
    rank = LEVELS.index(min_level) if min_level in LEVELS else len(LEVELS)
    wanted = {s.lower() for s in statuses}
    return [r for r in rules
            if (r.meta.level not in LEVELS or LEVELS.index(r.meta.level) <= rank)
            and (not wanted or (r.meta.status or "").lower() in wanted)]


def compile_paths(paths: Sequence[str]) -> RuleSet:
    """Load and compile Sigma rules, filters and correlations from files, folders and zips."""
    from vigil.detect.compiler import compile_rule, rule_meta
    from vigil.detect.loader import load

    loaded = load(list(paths))
    result = RuleSet(problems=[str(p) for p in loaded.problems])
    for item in loaded.rules:
        try:
            result.rules.append(compile_rule(item.rule, rule_meta(item.rule, item.path)))
        except RuleError as exc:
            result.problems.append(f"{item.path}: {exc}")
    result.names = {str(i.rule.id): i.rule.name for i in loaded.rules if i.rule.name}
    _add_filters(result, loaded.filters)
    result.correlations, problems = usable_correlations(
        loaded.correlations, index_rules(result.rules, result.names))
    result.problems += problems
    return result


def _add_filters(result: RuleSet, filters: Sequence[SigmaFilter]) -> None:
    compiled = []
    for sigma_filter in filters:
        try:
            compiled.append(compile_filter(sigma_filter))
        except RuleError as exc:
            result.problems.append(str(exc))
    if compiled:
        result.problems += unused_filters(result.rules, compiled, result.names)
        result.rules = apply_filters(result.rules, compiled, result.names)


def _sorted(detections: list[Detection]) -> list[Detection]:
    return sorted(detections, key=lambda d: (d.ts, LEVELS.index(d.rule.level)
                                             if d.rule.level in LEVELS else 9, d.rule.title))


def hunt_store(store: EventStore, rules: Sequence[CompiledRule], since: datetime | None = None,
               until: datetime | None = None, ruleset: RuleSet | None = None) -> HuntResult:
    """Run rules (and the correlations of ``ruleset``) over the stored events of a range."""
    scope, params = time_scope(since, until)
    stats = EngineStats()
    found = list(Engine(rules).run(store, scope, params, stats))
    result = HuntResult(_sorted(found), stats, events=stats.events)
    if ruleset is not None and ruleset.correlations:
        index = index_rules(rules, ruleset.names)
        result.correlations = evaluate_correlations(store, ruleset.correlations, index,
                                                    since, until)
        silenced = silenced_rules(ruleset.correlations, index)
        result.detections = [d for d in result.detections if d.rule.id not in silenced]
    return result


def hunt_files(rules: Sequence[CompiledRule], paths: Sequence[str], *, fmt: str | None = None,
               workers: int = 0, ruleset: RuleSet | None = None) -> HuntResult:
    """Ingest ``paths`` into a temporary store, run the rules, and forget the store."""
    from vigil.ingest.batches import ParseOptions
    from vigil.ingest.files import ingest_inputs
    from vigil.ingest.inputs import expand

    refs = expand(list(paths))
    with tempfile.TemporaryDirectory(prefix="vigil-hunt-") as folder:
        settings = load_settings(Path(folder))
        db = StateDB(settings.resolved_state_url)
        db.upgrade()
        store = EventStore(settings.events_path, memory_limit=settings.store.memory_limit)
        try:
            summary = ingest_inputs(refs, store, db, ParseOptions(format=fmt),
                                    workers=workers or min(len(refs), os.cpu_count() or 1))
            result = hunt_store(store, rules, ruleset=ruleset)
        finally:
            store.close()
            db.dispose()
    result.rejected = summary.rejected
    result.ingest_seconds = summary.seconds
    return result
