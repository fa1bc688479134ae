"""The engine: routing by log source, field mappings, missing fields, failing rules, alerts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest
from sigma.collection import SigmaCollection

from vigil.core.db import StateDB
from vigil.detect import alerts
from vigil.detect.compiler import compile_rule, rule_meta
from vigil.detect.engine import Engine, EngineStats
from vigil.detect.routing import routes
from vigil.detect.stream import StreamDetector
from vigil.detect.types import CompiledRule
from vigil.events.models import Event, LogSource, event_id
from vigil.store.duck import EventStore

T0 = datetime(2024, 5, 1, 10, 0, tzinfo=UTC)
SYSMON_PC = LogSource("windows", "process_creation", "sysmon")
SECURITY_PC = LogSource("windows", "process_creation", "security")
SECURITY = LogSource("windows", None, "security")


def rule(body: str, rule_id: str = "11111111-2222-3333-4444-555555555555") -> CompiledRule:
    text = f"title: Test {rule_id[:4]}\nid: {rule_id}\nstatus: test\nauthor: Tester\n{body}"
    (parsed,) = SigmaCollection.from_yaml(text).rules
    return compile_rule(parsed, rule_meta(parsed, "test.yml"))


def event(source: LogSource, ts: datetime = T0, host: str = "pc1", **fields: object) -> Event:
    raw = orjson.dumps({"ts": ts.isoformat(), "host": host, **fields})
    return Event(event_id(raw), ts, ts, host, source, "test", dict(fields), raw.decode())  # type: ignore[arg-type]


PROC_RULE = """logsource: {product: windows, category: process_creation}
detection:
    selection: {Image|endswith: '\\whoami.exe'}
    condition: selection
level: high
"""


@pytest.fixture
def store() -> EventStore:
    events = [
        event(SYSMON_PC, Image="C:\\Windows\\System32\\whoami.exe"),
        event(SECURITY_PC, NewProcessName="C:\\Windows\\System32\\WHOAMI.EXE", EventID=4688),
        event(SECURITY, EventID=4624, TargetUserName="whoami.exe"),
        event(SYSMON_PC, Image="C:\\Windows\\explorer.exe"),
    ]
    store = EventStore(None)
    store.write(events)
    return store


def test_routing_by_log_source() -> None:
    assert routes(LogSource("windows", "process_creation", None), SYSMON_PC)
    assert routes(LogSource("windows", None, "security"), SECURITY_PC)
    assert not routes(LogSource("windows", None, "security"), SYSMON_PC)
    assert routes(LogSource("windows", "registry_event", None),
                  LogSource("windows", "registry_set", "sysmon"))
    assert not routes(LogSource("linux", None, None), SYSMON_PC)
    assert routes(LogSource(None, "webserver", None), LogSource(None, "webserver", None))


def test_rule_sees_its_partitions_and_mapped_fields(store: EventStore) -> None:
    found = list(Engine([rule(PROC_RULE)]).run(store))
    assert sorted(d.source for d in found) == ["windows/process_creation/security",
                                               "windows/process_creation/sysmon"]
    assert all(d.rule.author == "Tester" for d in found)


def test_missing_field_never_matches_and_not_matches(store: EventStore) -> None:
    body = """logsource: {product: windows}
detection:
    selection: {NoSuchField: 'x'}
    condition: not selection
level: low
"""
    stats = EngineStats()
    found = list(Engine([rule(body)]).run(store, stats=stats))
    assert len(found) == 4 and not stats.failures


def test_failing_rule_is_reported_and_others_run(store: EventStore) -> None:
    good = rule(PROC_RULE)
    bad = CompiledRule(rule(PROC_RULE, "99999999-2222-3333-4444-555555555555").meta,
                       "CAST('x' AS INTEGER) = 1", frozenset({"Image"}))
    stats = EngineStats()
    found = list(Engine([bad, good]).run(store, stats=stats))
    assert {d.rule.id for d in found} == {good.meta.id}
    assert bad.meta.id in stats.failures


def test_alerts_are_suppressed_per_rule_host_and_window(tmp_path: Path) -> None:
    db = StateDB(f"sqlite:///{tmp_path / 'state.db'}")
    db.upgrade()
    store = EventStore(None)
    store.write([event(SYSMON_PC, T0 + timedelta(minutes=i), host="pc1" if i < 3 else "pc2",
                       Image=f"C:\\x{i}\\whoami.exe") for i in range(5)])
    found = list(Engine([rule(PROC_RULE)]).run(store))
    assert alerts.record(db, found, window=3600) == 2
    assert alerts.record(db, found, window=3600) == 0  # the same detections again: no change
    views = alerts.listing(db)
    assert sorted(a.count for a in views) == [2, 3]
    assert all(a.rule_author == "Tester" for a in views)
    db.dispose()


def test_stream_detector_evaluates_only_the_new_batch(tmp_path: Path) -> None:
    db = StateDB(f"sqlite:///{tmp_path / 'state.db'}")
    db.upgrade()
    store = EventStore(None)
    old = event(SYSMON_PC, host="old", Image="C:\\whoami.exe")
    store.write([old])
    compiled = rule(PROC_RULE)
    detector = StreamDetector(db, store, suppress_seconds=0, rules=lambda: [compiled])
    new = event(SYSMON_PC, host="new", Image="C:\\bin\\whoami.exe")
    store.write([new])
    detector({"windows/process_creation/sysmon"}, [new.id])
    assert [a.host for a in alerts.listing(db)] == ["new"]
    db.dispose()
