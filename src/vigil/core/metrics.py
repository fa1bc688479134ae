"""Vigil's own health figures in the Prometheus text exposition format (version 0.0.4)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field

Labels = tuple[tuple[str, str], ...]


def _labels(labels: Labels) -> str:
    if not labels:
        return ""
    body = ",".join(
        f'{k}="{v.replace(chr(92), chr(92) * 2).replace(chr(10), "").replace(chr(34), chr(92) + chr(34))}"'
        for k, v in labels)
    return "{" + body + "}"


@dataclass
class Counter:
    name: str
    help: str
    values: dict[Labels, float] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def inc(self, amount: float = 1.0, **labels: str) -> None:
        key = tuple(sorted(labels.items()))
        with self.lock:
            self.values[key] = self.values.get(key, 0.0) + amount

    def render(self) -> list[str]:
        lines = [f"# HELP {self.name} {self.help}", f"# TYPE {self.name} counter"]
        with self.lock:
            lines += [f"{self.name}{_labels(k)} {v:g}" for k, v in sorted(self.values.items())]
        return lines


@dataclass
class Gauge:
    name: str
    help: str
    read: Callable[[], dict[Labels, float]]

    def render(self) -> list[str]:
        lines = [f"# HELP {self.name} {self.help}", f"# TYPE {self.name} gauge"]
        lines += [f"{self.name}{_labels(k)} {v:g}" for k, v in sorted(self.read().items())]
        return lines


@dataclass
class Histogram:
    name: str
    help: str
    buckets: tuple[float, ...] = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
    counts: list[int] = field(default_factory=list)
    total: float = 0.0
    count: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def observe(self, value: float) -> None:
        with self.lock:
            if not self.counts:
                self.counts = [0] * len(self.buckets)
            for index, bound in enumerate(self.buckets):
                if value <= bound:
                    self.counts[index] += 1
            self.total += value
            self.count += 1

    def render(self) -> list[str]:
        lines = [f"# HELP {self.name} {self.help}", f"# TYPE {self.name} histogram"]
        with self.lock:
            counts = self.counts or [0] * len(self.buckets)
            lines += [f'{self.name}_bucket{{le="{b:g}"}} {c}'
                      for b, c in zip(self.buckets, counts, strict=True)]
            lines += [f'{self.name}_bucket{{le="+Inf"}} {self.count}',
                      f"{self.name}_sum {self.total:g}", f"{self.name}_count {self.count}"]
        return lines


class Registry:
    """The metrics of one process."""

    def __init__(self) -> None:
        self._items: list[Counter | Gauge | Histogram] = []

    def counter(self, name: str, help_text: str) -> Counter:
        item = Counter(name, help_text)
        self._items.append(item)
        return item

    def gauge(self, name: str, help_text: str, read: Callable[[], dict[Labels, float]]) -> Gauge:
        item = Gauge(name, help_text, read)
        self._items.append(item)
        return item

    def histogram(self, name: str, help_text: str) -> Histogram:
        item = Histogram(name, help_text)
        self._items.append(item)
        return item

    def render(self) -> str:
        lines: list[str] = []
        for item in self._items:
            lines += item.render()
        return "\n".join(lines) + "\n"
