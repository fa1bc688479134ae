"""Duration statistics for the SOC metrics: count, mean, median and 90th percentile.

Pure functions over lists of seconds. Means hide tails, so every duration is reported with
its median and p90 as well; the percentile interpolates linearly between the two nearest
ranks (the "inclusive" method: p90 of one value is that value).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class DurationStats:
    """One duration metric over a set of items (seconds)."""

    count: int
    mean: float | None
    median: float | None
    p90: float | None


def percentile(sorted_values: Sequence[float], fraction: float) -> float:
    """The ``fraction`` percentile of non-empty, sorted values (linear interpolation)."""
    if not sorted_values:
        raise ValueError("no values")
    position = (len(sorted_values) - 1) * fraction
    low = math.floor(position)
    high = math.ceil(position)
    if low == high:
        return float(sorted_values[low])
    weight = position - low
    return float(sorted_values[low] * (1 - weight) + sorted_values[high] * weight)


def describe(seconds: Sequence[float]) -> DurationStats:
    """Count, mean, median and p90 of durations (negative ones, from clock skew, count as 0)."""
    values = sorted(max(0.0, value) for value in seconds)
    if not values:
        return DurationStats(0, None, None, None)
    return DurationStats(len(values), sum(values) / len(values), percentile(values, 0.5),
                         percentile(values, 0.9))
