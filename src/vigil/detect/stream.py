"""Streaming detection: every batch the ingest worker commits is evaluated at once.

Single-event rules run on the batch's events only. Correlations run after them when the batch
holds a match of a rule they count: over a look-back window that ends at the newest event of
the batch and starts as far back as the correlations reach (the longest ``timespan``; a chain
of correlations adds up its timespans). Overlapping windows find the same hits again;
:func:`vigil.detect.alerts.record_correlations` folds those into the alert already made.
Rules that correlations count without ``generate: true`` give no alerts of their own.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sigma.correlations import SigmaCorrelationRule

from vigil.alerts import GroupingPolicy
from vigil.core import logging as vlog
from vigil.core.db import StateDB
from vigil.core.timeutil import to_utc
from vigil.detect import alerts
from vigil.detect.correlation import (
    correlation_base_rules,
    evaluate_correlations,
    index_rules,
    silenced_rules,
)
from vigil.detect.engine import Detection, Engine, EngineStats
from vigil.detect.filters import normal_reference
from vigil.detect.hunt import RuleSet
from vigil.detect.types import CompiledRule
from vigil.store.duck import EventStore
from vigil.store.schema import ID, TS, quote

log = vlog.get("vigil.detect.stream")
_BATCH_SCOPE = f"{quote(ID)} IN (SELECT unnest(?::VARCHAR[]))"


@dataclass(slots=True)
class _Loaded:
    """What the detector runs until the next reload."""

    engine: Engine
    """The rules to alert on and the rules correlations count (widened to their fields)."""
    alerting: frozenset[str] = frozenset()
    """Ids of the rules whose detections become alerts."""
    base: frozenset[str] = frozenset()
    """Ids of the rules the correlations count."""
    correlations: list[SigmaCorrelationRule] = field(default_factory=list)
    index: dict[str, CompiledRule] = field(default_factory=dict)
    reach: timedelta = timedelta(0)
    problems: tuple[str, ...] = ()


def correlation_reach(correlations: Sequence[SigmaCorrelationRule]) -> timedelta:
    """How far back events can matter to ``correlations``: the longest chain of timespans."""
    by_reference: dict[str, SigmaCorrelationRule] = {}
    for correlation in correlations:
        for alias in (str(correlation.id) if correlation.id is not None else None,
                      correlation.name):
            if alias:
                by_reference[normal_reference(alias)] = correlation
    memo: dict[int, timedelta] = {}

    def reach(correlation: SigmaCorrelationRule, seen: frozenset[int]) -> timedelta:
        if id(correlation) not in memo:
            inner = [by_reference.get(normal_reference(r.reference))
                     for r in correlation.rules or []]
            deeper = [reach(c, seen | {id(c)}) for c in inner
                      if c is not None and id(c) not in seen]
            memo[id(correlation)] = (timedelta(seconds=correlation.timespan.seconds)
                                     + max(deeper, default=timedelta(0)))
        return memo[id(correlation)]

    return max((reach(c, frozenset({id(c)})) for c in correlations), default=timedelta(0))


def _load(ruleset: RuleSet, rules: list[CompiledRule]) -> _Loaded:
    """``rules`` to alert on, and ``ruleset``'s correlations over ``ruleset``'s rules."""
    correlations = ruleset.correlations
    if not correlations:
        return _Loaded(Engine(rules), frozenset(r.meta.id for r in rules),
                       problems=tuple(ruleset.problems))
    index = index_rules(ruleset.rules, ruleset.names)
    base = correlation_base_rules(correlations, index)
    silenced = silenced_rules(correlations, index)
    merged = {r.meta.id: r for r in rules}
    merged.update((r.meta.id, r) for r in base)
    return _Loaded(Engine(list(merged.values())),
                   frozenset(r.meta.id for r in rules) - silenced,
                   frozenset(r.meta.id for r in base), list(correlations), index,
                   correlation_reach(correlations), tuple(ruleset.problems))


class StreamDetector:
    """The hook the ingest runtime calls after each commit (see ``IngestRuntime.on_stored``).

    ``rules`` gives the rules to alert on (default: the catalog's enabled rules), ``ruleset``
    the correlations and the rules they refer to (default: :func:`catalog.ruleset`). Both are
    called again only when the catalog has changed (``rules`` is meant to read the catalog).
    """

    def __init__(self, db: StateDB, store: EventStore, *, suppress_seconds: int = 3600,
                 reload_seconds: float = 5.0,
                 rules: Callable[[], list[CompiledRule]] | None = None,
                 ruleset: Callable[[], RuleSet] | None = None,
                 grouping: GroupingPolicy | None = None) -> None:
        self.db = db
        self.grouping = grouping
        self._rules = rules
        self._ruleset = ruleset
        self.store = store
        self.suppress_seconds = suppress_seconds
        self.reload_seconds = reload_seconds
        self.stats = EngineStats()
        self._loaded: _Loaded | None = None
        self._loaded_at = 0.0
        self._revision: tuple[object, ...] | None = None

    def loaded(self) -> _Loaded:
        """What runs: reloaded when the catalog has changed (checked every
        ``reload_seconds``; always, when ``ruleset`` is given)."""
        from vigil.detect import catalog

        now = time.monotonic()
        if self._loaded is not None and now - self._loaded_at < self.reload_seconds:
            return self._loaded
        self._loaded_at = now
        revision = catalog.revision(self.db) if self._ruleset is None else None
        if self._loaded is not None and revision is not None and revision == self._revision:
            return self._loaded
        found = self._ruleset() if self._ruleset is not None else catalog.ruleset(self.db)
        loaded = _load(found, self._rules() if self._rules is not None else found.rules)
        if self._loaded is None or loaded.problems != self._loaded.problems:
            for problem in loaded.problems:
                log.warning("not used: %s", problem)
        self._loaded, self._revision = loaded, revision
        return loaded

    def engine(self) -> Engine:
        """The engine with the enabled rules (and the rules correlations count)."""
        return self.loaded().engine

    def __call__(self, sources: set[str], ids: list[str]) -> None:
        loaded = self.loaded()
        if not loaded.engine.rules:
            return
        found = list(loaded.engine.run(self.store, _BATCH_SCOPE, [ids], self.stats, sources))
        shown = [d for d in found if d.rule.id in loaded.alerting]
        if shown:
            created = alerts.record(self.db, shown, self.suppress_seconds, self.grouping)
            log.info("%d detections, %d new alerts", len(shown), created)
        if loaded.correlations and any(d.rule.id in loaded.base for d in found):
            self._correlate(loaded, sources, ids, found)

    def _newest(self, sources: set[str], ids: list[str], found: list[Detection]) -> datetime:
        """The time of the newest event of the batch."""
        newest = max(to_utc(d.ts) for d in found)
        with self.store.reader() as cursor:
            for info in self.store.partitions():
                if info.label in sources:
                    row = cursor.execute(f"SELECT max({quote(TS)}) FROM {quote(info.table)} "
                                         f"WHERE {_BATCH_SCOPE}", [ids]).fetchone()
                    if row and isinstance(row[0], datetime):
                        newest = max(newest, to_utc(row[0]))
        return newest

    def _correlate(self, loaded: _Loaded, sources: set[str], ids: list[str],
                   found: list[Detection]) -> None:
        until = self._newest(sources, ids, found)
        hits = evaluate_correlations(self.store, loaded.correlations, loaded.index,
                                     until - loaded.reach, until + timedelta(microseconds=1))
        if hits:
            created = alerts.record_correlations(self.db, hits, self.grouping)
            log.info("%d correlation hits, %d new alerts", len(hits), created)
