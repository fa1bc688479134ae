"""Streaming detection with the catalog's filters and correlation rules, on SQLite and
PostgreSQL: batches that together cross a correlation's threshold make one alert, evaluating
again (overlapping look-back windows, the same batch twice) never makes another."""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sigma.collection import SigmaCollection
from sigma.correlations import SigmaCorrelationRule

from vigil.core.db import StateDB
from vigil.detect import alerts, catalog
from vigil.detect.stream import StreamDetector, correlation_reach
from vigil.events.models import Event, LogSource
from vigil.store.duck import EventStore

T0 = datetime(2024, 5, 1, 10, 0, tzinfo=UTC)
SECURITY = LogSource("windows", None, "security")
FAILED = "53ba33fd-3a50-4468-a5ef-c583635cfa92"
CORRELATION = "0e95725d-7320-415d-80f7-004da920fc11"

RULES = f"""title: Failed logon
id: {FAILED}
name: failed_login
status: test
author: Vigil tests
logsource:
    product: windows
    service: security
detection:
    selection:
        EventID: 4625
    condition: selection
level: low
---
title: Ignore the scanner account
id: 6b1e4d2a-8f3c-4e1b-9a0d-2c3b4a5d6e7f
logsource:
    product: windows
    service: security
filter:
    rules:
        - failed_login
    selection:
        User: scanner
    condition: not selection
---
title: Many failed logons
id: {CORRELATION}
name: many_failed
author: Vigil tests
level: high
correlation:
    type: event_count
    rules:
        - failed_login
    group-by:
        - User
    timespan: 5m
    condition:
        gte: 3
"""
SUCCESS = """title: Logon
id: 4d0a2c83-c62c-4ed4-b475-c7e23a9269b8
name: logon
logsource:
    product: windows
    service: security
detection:
    selection:
        EventID: 4624
    condition: selection
level: informational
"""


def logon(minutes: float, user: str, code: int = 4625) -> Event:
    values: dict[str, Any] = {"EventID": code, "User": user}
    return Event(uuid.uuid4().hex, T0 + timedelta(minutes=minutes), T0, "dc1", SECURITY, "json",
                 values, json.dumps(values))


@pytest.fixture
def detector(state_db: StateDB, tmp_path: Path) -> StreamDetector:
    folder = tmp_path / "rules"
    folder.mkdir()
    (folder / "pack.yml").write_text(RULES, encoding="utf-8")
    (folder / "logon.yml").write_text(SUCCESS, encoding="utf-8")
    report = catalog.import_rules(state_db, [folder])
    assert (report.compiled, report.filters, report.correlations, report.problems) == (2, 1, 1, [])
    return StreamDetector(state_db, EventStore(None), suppress_seconds=0, reload_seconds=0)


def store_batch(detector: StreamDetector, events: Sequence[Event]) -> None:
    """What the ingest runtime does with a batch: store it, then call the hook."""
    written = detector.store.write(list(events))
    detector(set(written.by_source), [e.id for e in events])


def correlation_alerts(db: StateDB) -> list[alerts.AlertView]:
    return [a for a in alerts.listing(db) if a.rule_id == CORRELATION]


def test_two_batches_crossing_the_threshold_make_one_alert(detector: StreamDetector) -> None:
    db = detector.db
    first = [logon(0, "bob"), logon(1, "bob")]
    store_batch(detector, first)
    assert alerts.listing(db) == []  # below the threshold; the counted rule is silenced
    second = [logon(2, "bob"), logon(2, "alice"), logon(3, "x", code=4624)]
    store_batch(detector, second)
    [alert] = correlation_alerts(db)
    assert (alert.rule_id, alert.level, alert.rule_author) == (CORRELATION, "high", "Vigil tests")
    assert alert.count == 3 and alert.event_ids == [e.id for e in [*first, second[0]]]
    assert (alert.first_seen, alert.last_seen) == (T0, T0 + timedelta(minutes=2))
    assert [a.event_ids for a in alerts.listing(db) if a.rule_id != CORRELATION] == [
        [second[2].id]]  # a rule no correlation counts alerts as before

    every = alerts.listing(db)
    detector(set(detector.store.counts()), [e.id for e in second])  # the same batch again
    assert alerts.listing(db) == every


def test_overlapping_windows_extend_the_alert(detector: StreamDetector) -> None:
    db = detector.db
    store_batch(detector, [logon(0, "bob"), logon(1, "bob"), logon(2, "bob")])
    # The look-back window of this batch starts after the first event: the hit it finds
    # starts later, but it is the same burst.
    late = logon(6, "bob")
    store_batch(detector, [late])
    [alert] = correlation_alerts(db)
    assert alert.count == 4 and alert.event_ids[-1] == late.id
    assert alert.last_seen == T0 + timedelta(minutes=6)
    store_batch(detector, [logon(30, "bob"), logon(31, "bob"), logon(32, "bob")])
    assert len(correlation_alerts(db)) == 2  # a new burst, well after the first


def test_filtered_events_never_count(detector: StreamDetector) -> None:
    store_batch(detector, [logon(0, "scanner"), logon(1, "scanner")])
    store_batch(detector, [logon(2, "scanner"), logon(3, "scanner")])
    assert alerts.listing(detector.db) == []
    loaded = detector.loaded()
    assert detector.loaded() is loaded  # the catalog has not changed: nothing reloaded
    catalog.set_enabled(detector.db, "6b1e4d2a*", False)
    assert detector.loaded() is not loaded
    store_batch(detector, [logon(4, "scanner")])
    [alert] = alerts.listing(detector.db)
    assert alert.count == 5


def test_generate_keeps_the_rule_alerts_and_disabling_stops_the_correlation(
        detector: StreamDetector, tmp_path: Path) -> None:
    folder = tmp_path / "rules"
    (folder / "pack.yml").write_text(RULES.replace("    condition:\n        gte: 3",
                                                   "    generate: true\n    condition:\n"
                                                   "        gte: 3"), encoding="utf-8")
    assert catalog.import_rules(detector.db, [folder]).documents["updated"] == 1
    store_batch(detector, [logon(0, "bob")])
    assert [a.rule_id for a in alerts.listing(detector.db)] == [FAILED]
    catalog.set_enabled(detector.db, "many_failed", False)
    store_batch(detector, [logon(1, "bob"), logon(2, "bob")])
    assert correlation_alerts(detector.db) == []
    assert {a.rule_id for a in alerts.listing(detector.db)} == {FAILED}


def test_reach_of_chained_correlations() -> None:
    text = RULES.split("---\n")[2] + """---
title: Repeated bursts
name: repeated
correlation:
    type: event_count
    rules:
        - many_failed
    timespan: 1h
    condition:
        gte: 2
"""
    correlations = [r for r in SigmaCollection.from_yaml(text, resolve_references=False).rules
                    if isinstance(r, SigmaCorrelationRule)]
    assert correlation_reach(correlations[:1]) == timedelta(minutes=5)
    assert correlation_reach(correlations) == timedelta(hours=1, minutes=5)
    assert correlation_reach([]) == timedelta(0)
