"""Retention: how many days of events each log source keeps, and applying it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from vigil.core.timeutil import utcnow
from vigil.store.duck import EventStore
from vigil.store.schema import PartitionInfo


@dataclass(frozen=True, slots=True)
class RetentionResult:
    source: str
    days: int
    cutoff: str
    deleted: int


def days_for(info: PartitionInfo, default: int, overrides: dict[str, int]) -> int:
    """The retention of a partition: the most specific matching override, else the default.

    Override keys are ``product``, ``product/category`` or ``product/category/service``.
    """
    parts = info.label.split("/")
    for depth in (3, 2, 1):
        key = "/".join(parts[:depth])
        if key in overrides:
            return overrides[key]
    return default


def apply(store: EventStore, default: int, overrides: dict[str, int],
          now: datetime | None = None) -> list[RetentionResult]:
    """Delete events older than each source's retention."""
    moment = now or utcnow()
    results = []
    for info in store.partitions():
        days = days_for(info, default, overrides)
        cutoff = (moment - timedelta(days=days)).date().isoformat()
        deleted = store.delete_before(info.partition, cutoff)
        results.append(RetentionResult(info.label, days, cutoff, deleted))
    return results
