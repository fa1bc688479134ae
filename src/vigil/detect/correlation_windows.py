"""Sliding time windows for Sigma correlations: per-group aggregates and hit selection (pure).

The input is one group's :class:`Occurrence` list (one event matched by one referenced rule,
or one hit of a referenced correlation), sorted by :func:`order`. The output is the windows
that fire, as :class:`Window` objects.

Semantics (see also :mod:`vigil.detect.correlation`):

* A window starts at an occurrence's time ``t`` and holds every occurrence of the group in
  ``[t, t + timespan]`` — **both ends inclusive**: occurrences exactly ``timespan`` apart are
  in one window. Windows start at every distinct time, so they slide rather than follow fixed
  buckets.
* Only *maximal* windows are evaluated: a window whose occurrences are all in the previous
  window (same last occurrence) is skipped. For ``gt``/``gte`` on counts, distinct counts and
  rule sets this loses nothing (any window is part of a maximal one, and those aggregates only
  grow); for ``lt``, ``lte``, ``eq``, ``neq`` and for sums, averages and percentiles it gives
  the condition its meaning: it is about *all* the group's occurrences within the timespan.
* When a window fires it is reported whole and its occurrences are consumed: the next window
  starts after it, so hits never share an occurrence.
* ``fired`` is when the condition first held inside the window: for ``gt``/``gte`` the time of
  the occurrence that completed it (shortest satisfying prefix), otherwise the window's last
  occurrence. Chained correlations see a hit as one occurrence at that time.
"""

from __future__ import annotations

import bisect
from collections import Counter
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Protocol

__all__ = ["KINDS", "Occurrence", "Window", "WindowSpec", "find_windows", "holds", "order"]

KINDS = frozenset({"event_count", "value_count", "temporal", "temporal_ordered", "value_sum",
                   "value_avg", "value_percentile", "value_median"})
NUMERIC_KINDS = frozenset({"value_sum", "value_avg", "value_percentile", "value_median"})
Number = int | Decimal


@dataclass(frozen=True, slots=True)
class Occurrence:
    """One match that a correlation counts."""

    ts: datetime
    ref: int
    """Position of the matching rule in the correlation's ``rules``."""
    key: str
    """Identity for de-duplication (the event id, or the id of a correlation hit)."""
    events: tuple[str, ...]
    rule_id: str
    group: tuple[str, ...]
    value: Hashable | Decimal | None = None
    """What value_* types aggregate: a text (or tuple of texts) or a number."""
    since: datetime | None = None
    """When what it stands for began (a correlation hit's first event), if before ``ts``."""


@dataclass(frozen=True, slots=True)
class WindowSpec:
    """What a correlation computes on each window, and when it fires."""

    kind: str
    op: str
    threshold: Decimal
    span: timedelta
    refs: int
    percentile: Decimal | None = None


@dataclass(frozen=True, slots=True)
class Window:
    """A window that fired."""

    items: tuple[Occurrence, ...]
    value: Number
    fired: datetime


def order(item: Occurrence) -> tuple[datetime, int, str]:
    """Sort key: time, then rule position (simultaneous matches count as in order), then id."""
    return item.ts, item.ref, item.key


def holds(spec: WindowSpec, value: Number) -> bool:
    """Whether a window's value satisfies the correlation condition."""
    limit = spec.threshold
    return {"gt": value > limit, "gte": value >= limit, "lt": value < limit,
            "lte": value <= limit, "eq": value == limit, "neq": value != limit}[spec.op]


class _Aggregate(Protocol):
    def add(self, item: Occurrence) -> None: ...

    def remove(self, item: Occurrence) -> None: ...

    def value(self, lo: int, hi: int) -> Number | None: ...


class _Count:
    def __init__(self) -> None:
        self.n = 0

    def add(self, item: Occurrence) -> None:
        self.n += 1

    def remove(self, item: Occurrence) -> None:
        self.n -= 1

    def value(self, lo: int, hi: int) -> Number | None:
        return self.n


class _Distinct:
    """Distinct values (value_count) or distinct referenced rules (temporal)."""

    def __init__(self, rules: bool) -> None:
        self.rules = rules
        self.seen: Counter[Hashable] = Counter()

    def _key(self, item: Occurrence) -> Hashable:
        return item.ref if self.rules else item.value

    def add(self, item: Occurrence) -> None:
        self.seen[self._key(item)] += 1

    def remove(self, item: Occurrence) -> None:
        key = self._key(item)
        self.seen[key] -= 1
        if self.seen[key] <= 0:
            del self.seen[key]

    def value(self, lo: int, hi: int) -> Number | None:
        return len(self.seen)


class _Sum:
    """Sum or average of exact decimal values."""

    def __init__(self, average: bool) -> None:
        self.average = average
        self.total = Decimal(0)
        self.n = 0

    def add(self, item: Occurrence) -> None:
        self.total += _number(item)
        self.n += 1

    def remove(self, item: Occurrence) -> None:
        self.total -= _number(item)
        self.n -= 1

    def value(self, lo: int, hi: int) -> Number | None:
        if not self.average:
            return self.total
        return self.total / self.n if self.n else None


class _Percentile:
    """A percentile with linear interpolation between closest ranks (numpy's default)."""

    def __init__(self, percentile: Decimal) -> None:
        self.fraction = percentile / 100
        self.values: list[Decimal] = []

    def add(self, item: Occurrence) -> None:
        bisect.insort(self.values, _number(item))

    def remove(self, item: Occurrence) -> None:
        del self.values[bisect.bisect_left(self.values, _number(item))]

    def value(self, lo: int, hi: int) -> Number | None:
        if not self.values:
            return None
        rank = self.fraction * (len(self.values) - 1)
        below = int(rank)
        above = min(below + 1, len(self.values) - 1)
        low, high = self.values[below], self.values[above]
        return low + (high - low) * (rank - below)


class _Ordered:
    """How many of the rules, from the first, occur in their listed order (greedy match)."""

    def __init__(self, items: Sequence[Occurrence], refs: int) -> None:
        self.positions: list[list[int]] = [[] for _ in range(refs)]
        for index, item in enumerate(items):
            self.positions[item.ref].append(index)

    def add(self, item: Occurrence) -> None:
        pass

    def remove(self, item: Occurrence) -> None:
        pass

    def value(self, lo: int, hi: int) -> Number | None:
        cursor, matched = lo, 0
        for positions in self.positions:
            found = bisect.bisect_left(positions, cursor)
            if found >= len(positions) or positions[found] >= hi:
                break
            matched += 1
            cursor = positions[found] + 1
        return matched


def _number(item: Occurrence) -> Decimal:
    if not isinstance(item.value, Decimal):
        raise TypeError("numeric correlation over an occurrence without a number")
    return item.value


def _aggregate(spec: WindowSpec, items: Sequence[Occurrence]) -> _Aggregate:
    if spec.kind == "event_count":
        return _Count()
    if spec.kind in ("value_count", "temporal"):
        return _Distinct(rules=spec.kind == "temporal")
    if spec.kind == "temporal_ordered":
        return _Ordered(items, spec.refs)
    if spec.kind in ("value_sum", "value_avg"):
        return _Sum(average=spec.kind == "value_avg")
    percentile = Decimal(50) if spec.kind == "value_median" else spec.percentile
    if spec.kind in ("value_percentile", "value_median") and percentile is not None:
        return _Percentile(percentile)
    raise ValueError(f"no aggregate for correlation type {spec.kind!r}")


def _fired(spec: WindowSpec, items: Sequence[Occurrence], lo: int, hi: int,
           state: _Aggregate) -> datetime:
    """When the condition first held in the window ``items[lo:hi]`` (see the module doc)."""
    if spec.op in ("gt", "gte"):
        # The ordered aggregate keeps no running state: reuse it rather than index again.
        prefix = state if isinstance(state, _Ordered) else _aggregate(spec, items)
        for index in range(lo, hi):
            prefix.add(items[index])
            value = prefix.value(lo, index + 1)
            if value is not None and holds(spec, value):
                return items[index].ts
    return items[hi - 1].ts


def find_windows(items: Sequence[Occurrence], spec: WindowSpec) -> list[Window]:
    """The windows of one group (``items`` sorted by :func:`order`) that fire, in time order."""
    state = _aggregate(spec, items)
    found: list[Window] = []
    lo = hi = 0
    previous = -1  # last occurrence (exclusive) of the previous evaluated window
    while lo < len(items):
        limit = items[lo].ts + spec.span
        while hi < len(items) and items[hi].ts <= limit:
            state.add(items[hi])
            hi += 1
        if hi != previous:
            previous = hi
            value = state.value(lo, hi)
            if value is not None and holds(spec, value):
                found.append(Window(tuple(items[lo:hi]), value, _fired(spec, items, lo, hi, state)))
                for index in range(lo, hi):
                    state.remove(items[index])
                lo, previous = hi, -1
                continue
        start = items[lo].ts
        while lo < hi and items[lo].ts == start:
            state.remove(items[lo])
            lo += 1
    return found
