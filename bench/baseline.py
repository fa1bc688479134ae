"""A Zircolite-style baseline: pySigma's SQLite backend over an in-memory SQLite table.

Rules are converted with the SQLite backend after a small pipeline that turns a rule's Windows
log source into Channel/EventID conditions (what the Sysmon and Windows pipelines do), events
are flattened into one ``logs`` table with a column per field, and each rule is one query.
"""

from __future__ import annotations

import contextlib
import sqlite3
import time
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import orjson
from sigma.backends.sqlite import sqliteBackend
from sigma.collection import SigmaCollection
from sigma.processing.conditions import LogsourceCondition
from sigma.processing.pipeline import ProcessingItem, ProcessingPipeline
from sigma.processing.transformations import AddConditionTransformation

from vigil.events.taxonomy import POWERSHELL_CATEGORIES, SYSMON_CATEGORIES, WINDOWS_SERVICES

SYSMON = "Microsoft-Windows-Sysmon/Operational"


def logsource_pipeline() -> ProcessingPipeline:
    items = []
    by_category: dict[str, list[int]] = {}
    for event_id, category in SYSMON_CATEGORIES.items():
        by_category.setdefault(category, []).append(event_id)
    for category, ids in by_category.items():
        items.append(ProcessingItem(
            AddConditionTransformation({"Channel": SYSMON, "EventID": ids}),
            rule_conditions=[LogsourceCondition(product="windows", category=category)]))
    channels: dict[str, str] = {}
    for channel, service in WINDOWS_SERVICES.items():
        channels.setdefault(service, channel)
    for service, channel in channels.items():
        items.append(ProcessingItem(
            AddConditionTransformation({"Channel": channel}),
            rule_conditions=[LogsourceCondition(product="windows", service=service)]))
    for (service, event_id), category in POWERSHELL_CATEGORIES.items():
        if service != "security":
            items.append(ProcessingItem(
                AddConditionTransformation({"EventID": event_id}),
                rule_conditions=[LogsourceCondition(product="windows", category=category)]))
    return ProcessingPipeline(name="baseline log sources", priority=10, items=items)


def convert(paths: list[Path]) -> tuple[list[str], int]:
    """SQL of every rule that converts; also how many failed."""
    backend = sqliteBackend(processing_pipeline=logsource_pipeline())
    queries, failed = [], 0
    for path in paths:
        try:
            collection = SigmaCollection.from_yaml(path.read_text(encoding="utf-8"))
            queries += backend.convert(collection)
        except Exception:  # the baseline skips what it cannot convert, as Zircolite does
            failed += 1
    return queries, failed


def otrf_lines(root: Path) -> Iterator[bytes]:
    for archive in sorted(root.rglob("*.zip")):
        with zipfile.ZipFile(archive) as zipped:
            for name in zipped.namelist():
                if name.endswith(".json") and "MACOSX" not in name:
                    with zipped.open(name) as member:
                        yield from (line for line in member if line.strip())


def _text(value: object) -> object:
    return value if isinstance(value, str | int | float) or value is None else \
        orjson.dumps(value).decode()


@dataclass
class BaselineRun:
    events: int
    load_seconds: float
    query_seconds: float
    matches: int
    rules: int


def run(root: Path, queries: list[str]) -> BaselineRun:
    started = time.perf_counter()
    docs = [orjson.loads(line) for line in otrf_lines(root)]
    columns = sorted({k for d in docs for k in d}, key=str.lower)
    seen: dict[str, str] = {}
    unique = [seen.setdefault(c.lower(), c) for c in columns if c.lower() not in seen]
    db = sqlite3.connect(":memory:")
    db.execute("CREATE TABLE logs (" + ", ".join(f'"{c}" TEXT COLLATE NOCASE' for c in unique) + ")")
    marks = ", ".join("?" for _ in unique)
    db.executemany(f"INSERT INTO logs VALUES ({marks})",
                   ([_text(d.get(c)) for c in unique] for d in docs))
    db.execute("CREATE INDEX idx_channel ON logs(Channel)")
    db.execute("CREATE INDEX idx_eventid ON logs(EventID)")
    del docs
    load = time.perf_counter() - started
    started = time.perf_counter()
    matches = 0
    for query in queries:
        with contextlib.suppress(sqlite3.Error):
            matches += len(db.execute(query).fetchall())
    count = db.execute("SELECT count(*) FROM logs").fetchone()[0]
    return BaselineRun(count, load, time.perf_counter() - started, matches, len(queries))
