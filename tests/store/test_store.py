"""The DuckDB event store: writing, de-duplication, schema growth, search, SQL, retention,
Parquet export, concurrent readers, reopening and the one-writer lock."""

from __future__ import annotations

import contextlib
import itertools
import subprocess
import sys
import threading
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from vigil.core.errors import QueryError, StoreBusyError, VigilError
from vigil.events.models import Event, FieldValue, LogSource, event_id
from vigil.store import retention
from vigil.store.columns import to_tables
from vigil.store.duck import EventStore
from vigil.store.schema import table_name
from vigil.store.search import SearchRequest, count, run_sql, search

SYSMON = LogSource("windows", "process_creation", "sysmon")
SECURITY = LogSource("windows", None, "security")
SSHD = LogSource("linux", None, "sshd")
T0 = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)

_serial = iter(range(10**9))


def make_event(ts: datetime, source: LogSource = SYSMON, host: str | None = "WKS-1",
               raw: str | None = None, **fields: FieldValue) -> Event:
    """An event as a parser would make it; the id is the content hash of its raw record."""
    if raw is None:
        raw = f"#{next(_serial)} " + " ".join(f"{k}={v}" for k, v in fields.items())
    return Event(id=event_id(raw.encode()), ts=ts, received=ts + timedelta(seconds=1), host=host,
                 source=source, format="test", fields=dict(fields), raw=raw)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[EventStore]:
    instance = EventStore(tmp_path / "events.duckdb", memory_limit="256MB", threads=1)
    yield instance
    instance.close()


def q(store: EventStore, query: str, **kwargs: Any) -> int:
    return count(store, SearchRequest(query=query, **kwargs))


def raws(store: EventStore, query: str, **kwargs: Any) -> list[str]:
    hits = search(store, SearchRequest(query=query, with_raw=True, **kwargs))
    return [h.raw or "" for h in hits]


@pytest.fixture
def sample(store: EventStore) -> EventStore:
    """Six events in three sources over three days."""
    store.write([
        make_event(T0, raw="proc cmd", Image=r"C:\Windows\System32\cmd.exe",
                   CommandLine="cmd /c whoami", EventID=1, User="CORP\\anna"),
        make_event(T0 + timedelta(hours=1), host="WKS-2", raw="proc powershell",
                   Image=r"C:\Windows\System32\WindowsPowerShell\v1.0\powershell.exe",
                   CommandLine="powershell -nop -w hidden", EventID=1, User="CORP\\ben"),
        make_event(T0 - timedelta(days=1), raw="proc notepad",
                   Image=r"C:\Windows\notepad.exe", CommandLine="notepad 50%_report.txt",
                   EventID=1, User="CORP\\anna"),
        make_event(T0 + timedelta(minutes=30), SECURITY, host="DC-1", raw="logon failed admin",
                   EventID=4625, TargetUserName="admin", LogonType=3),
        make_event(T0 - timedelta(days=2), SECURITY, host="DC-1", raw="logon ok carla",
                   EventID=4624, TargetUserName="carla", LogonType=10),
        make_event(T0 + timedelta(hours=2), SSHD, host="bastion",
                   raw="Failed password for invalid user admin from 203.0.113.50",
                   user="admin", src_ip="203.0.113.50", outcome="failure"),
    ])
    return store


# -- writing -------------------------------------------------------------------------------


def test_write_counts_by_source(store: EventStore) -> None:
    events = [make_event(T0 + timedelta(seconds=i), EventID=1) for i in range(5)]
    events += [make_event(T0, SECURITY, EventID=4625) for _ in range(3)]
    events += [make_event(T0, SSHD, user="root")]
    result = store.write(events)
    assert result.stored == 9
    assert result.duplicates == 0
    assert dict(result.by_source) == {"windows/process_creation/sysmon": 5,
                                      "windows/-/security": 3, "linux/-/sshd": 1}
    assert store.counts() == dict(result.by_source)
    assert store.total() == 9
    assert [p.partition for p in store.partitions()] == sorted(
        s.partition for s in (SYSMON, SECURITY, SSHD))
    assert [p.label for p in store.partitions()] == [
        "linux/-/sshd", "windows/-/security", "windows/process_creation/sysmon"]


def test_empty_store(store: EventStore) -> None:
    assert store.total() == 0
    assert store.counts() == {}
    assert store.partitions() == []
    assert store.write([]).stored == 0
    assert q(store, "*") == 0
    assert search(store, SearchRequest("*")) == []


def test_writing_the_same_events_again_stores_nothing(store: EventStore) -> None:
    events = [make_event(T0 + timedelta(minutes=i), EventID=i) for i in range(10)]
    events.append(make_event(T0, SSHD, user="x"))
    assert store.write(events).stored == 11
    again = store.write(events)
    assert again.stored == 0
    assert again.duplicates == 11
    assert sum(again.by_source.values()) == 0
    assert store.total() == 11
    # A batch mixing old and new events stores only the new ones.
    fresh = [make_event(T0 + timedelta(hours=5), EventID=99)]
    mixed = store.write(events[:4] + fresh)
    assert (mixed.stored, mixed.duplicates) == (1, 4)
    assert store.total() == 12


def test_duplicates_inside_one_batch(store: EventStore) -> None:
    event = make_event(T0, EventID=1)
    result = store.write([event, event, event, make_event(T0, EventID=2)])
    assert (result.stored, result.duplicates) == (2, 2)
    assert store.total() == 2


def test_schema_grows_with_new_fields(store: EventStore) -> None:
    partition = SYSMON.partition
    store.write([make_event(T0, EventID=1, Image="a.exe")])
    assert set(store.columns(partition)) >= {"eventid", "image"}
    assert "parentimage" not in store.columns(partition)
    store.write([make_event(T0 + timedelta(seconds=1), EventID=1, Image="b.exe",
                            ParentImage="explorer.exe", Hashes={"MD5": "00"})])
    columns = store.columns(partition)
    assert columns["parentimage"] == "ParentImage"
    assert columns["hashes"] == "Hashes"
    assert q(store, "ParentImage=explorer.exe") == 1
    assert q(store, "ParentImage=*") == 1
    assert q(store, "ParentImage!=*") == 1  # the first event has no such field
    assert q(store, "Image=*") == 2
    hit = search(store, SearchRequest("ParentImage=*"))[0]
    assert hit.fields["ParentImage"] == "explorer.exe"
    assert hit.fields["Hashes"] == '{"MD5":"00"}'  # nested values are stored as JSON
    assert hit.fields["EventID"] == "1"  # fields are stored as text


def test_fields_differing_in_case_share_a_column(store: EventStore) -> None:
    partition = SYSMON.partition
    store.write([make_event(T0, Image="first.exe")])
    store.write([make_event(T0 + timedelta(seconds=1), image="second.exe"),
                 make_event(T0 + timedelta(seconds=2), IMAGE="third.exe")])
    store.write([make_event(T0 + timedelta(seconds=3), Image="fourth.exe"),
                 make_event(T0 + timedelta(seconds=4), iMaGe="fifth.exe")])
    assert store.columns(partition)["image"] == "Image"
    _columns, rows = run_sql(store, "SELECT column_name FROM duckdb_columns() WHERE table_name = "
                            f"'{table_name(partition)}' AND lower(column_name) = 'image'")
    assert rows == [("Image",)]
    for query in ("Image=*.exe", "image=*.exe", "IMAGE=*.exe"):
        assert q(store, query) == 5
    assert q(store, "image=THIRD.EXE") == 1
    assert {h.fields["Image"] for h in search(store, SearchRequest("*"))} == {
        "first.exe", "second.exe", "third.exe", "fourth.exe", "fifth.exe"}


def test_case_variants_in_a_new_partition_share_a_column(store: EventStore) -> None:
    store.write([make_event(T0, SSHD, User="a"), make_event(T0, SSHD, user="b")])
    assert [k for k in store.columns(SSHD.partition) if k == "user"] == ["user"]
    assert q(store, "USER=*") == 2


def test_arrow_tables_are_grouped_by_source() -> None:
    tables, duplicates = to_tables([make_event(T0, EventID=1), make_event(T0, SSHD, user="x")])
    assert duplicates == 0
    assert set(tables) == {SYSMON, SSHD}
    assert all(isinstance(t, pa.Table) and t.num_rows == 1 for t in tables.values())


# -- search --------------------------------------------------------------------------------


def test_field_equals_value(sample: EventStore) -> None:
    assert q(sample, "EventID=1") == 3
    assert q(sample, "EventID=4625") == 1
    assert q(sample, "TargetUserName=ADMIN") == 1  # values compare case-insensitively
    assert q(sample, "targetusername=admin") == 1  # and so do field names
    assert q(sample, 'CommandLine="cmd /c whoami"') == 1
    assert q(sample, "User=CORP\\anna") == 2
    assert q(sample, "EventID!=1") == 3
    assert q(sample, "NoSuchField=1") == 0
    assert q(sample, "NoSuchField!=1") == 6


def test_wildcards(sample: EventStore) -> None:
    assert q(sample, "Image=*\\powershell.exe") == 1
    assert q(sample, "Image=*.EXE") == 3
    assert q(sample, "Image=C:\\Windows\\*") == 3
    assert q(sample, "TargetUserName=?arla") == 1
    assert q(sample, "TargetUserName=?dmi") == 0
    assert q(sample, "CommandLine=*50%_report*") == 1
    assert q(sample, "CommandLine=*50%%report*") == 0  # % and _ are literal, not SQL patterns
    assert q(sample, "CommandLine=notepad_50*") == 0


def test_numeric_comparison(sample: EventStore) -> None:
    assert q(sample, "EventID>4000") == 2
    assert q(sample, "EventID>=4625") == 1
    assert q(sample, "EventID<2") == 3
    assert q(sample, "LogonType<=3") == 1
    with pytest.raises(QueryError, match="compare with a number"):
        q(sample, "EventID>abc")


def test_full_text_search(sample: EventStore) -> None:
    assert raws(sample, "powershell") == ["proc powershell"]
    assert q(sample, "PROC") == 3  # case-insensitive
    assert q(sample, '"password for invalid"') == 1
    assert q(sample, "logon admin") == 1
    assert q(sample, "203.0.113.50") == 1
    assert q(sample, "nothing-like-this") == 0


def test_boolean_queries(sample: EventStore) -> None:
    assert q(sample, "NOT EventID=1") == 3
    assert q(sample, "EventID=1 AND NOT User=*ben") == 2
    assert q(sample, "EventID=4625 OR user=admin") == 2
    assert q(sample, "(EventID=4625 OR EventID=4624) TargetUserName=carla") == 1
    assert q(sample, "NOT (EventID=1 OR EventID=4624)") == 2
    assert q(sample, "*") == 6


def test_envelope_names(sample: EventStore) -> None:
    assert q(sample, "host=DC-1") == 2
    assert q(sample, "@host=dc-1") == 2
    assert q(sample, "host=WKS-*") == 3


def test_since_and_until(sample: EventStore) -> None:
    assert q(sample, "*", since=T0) == 4
    assert q(sample, "*", since=T0 + timedelta(minutes=30)) == 3  # since is inclusive
    assert q(sample, "*", until=T0) == 2  # until is exclusive
    assert q(sample, "*", since=T0 - timedelta(days=1), until=T0 + timedelta(hours=1)) == 3
    assert q(sample, "*", since=T0 + timedelta(days=1)) == 0
    assert q(sample, "EventID=1", since=T0 - timedelta(days=3), until=T0) == 1
    # A window inside one day, crossing no day boundary.
    assert q(sample, "*", since=T0 + timedelta(minutes=1), until=T0 + timedelta(minutes=90)) == 2


def test_since_just_before_midnight(store: EventStore) -> None:
    late = datetime(2024, 5, 1, 23, 59, 59, 999000, tzinfo=UTC)
    store.write([make_event(late, EventID=1), make_event(late + timedelta(seconds=1), EventID=2)])
    assert q(store, "*", since=late) == 2
    assert q(store, "*", since=late + timedelta(milliseconds=1)) == 1
    assert q(store, "*", until=late + timedelta(milliseconds=1)) == 1


def test_since_with_an_offset(store: EventStore) -> None:
    store.write([make_event(datetime(2024, 5, 1, 20, 30, tzinfo=UTC), EventID=1)])
    since = datetime(2024, 5, 2, 1, 0, tzinfo=timezone(timedelta(hours=5)))  # 2024-05-01T20:00Z
    assert q(store, "*", since=since) == 1


@pytest.mark.parametrize(("sources", "expected"), [
    (("windows",), 5),
    (("windows/process_creation",), 3),
    (("windows/process_creation/sysmon",), 3),
    (("WINDOWS/-/security",), 2),
    (("*/*/sysmon",), 3),
    (("*/-",), 3),
    (("linux/-/sshd",), 1),
    (("linux", "windows/-"), 3),
    (("macos",), 0),
    (("windows/process_creation/other",), 0),
])
def test_source_filters(sample: EventStore, sources: tuple[str, ...], expected: int) -> None:
    assert q(sample, "*", sources=sources) == expected
    hits = search(sample, SearchRequest("*", sources=sources))
    assert len(hits) == expected


def test_search_is_newest_first_and_limited(sample: EventStore) -> None:
    hits = search(sample, SearchRequest("*"))
    assert [h.ts for h in hits] == sorted((h.ts for h in hits), reverse=True)
    assert len(hits) == 6
    top = search(sample, SearchRequest("*", limit=2))
    assert [h.ts for h in top] == [T0 + timedelta(hours=2), T0 + timedelta(hours=1)]
    assert [h.source for h in top] == ["linux/-/sshd", "windows/process_creation/sysmon"]
    assert len(search(sample, SearchRequest("*", limit=0))) == 1  # at least one
    assert len(search(sample, SearchRequest("EventID=1", limit=100))) == 3


def test_hits(sample: EventStore) -> None:
    (hit,) = search(sample, SearchRequest("EventID=4625"))
    assert hit.host == "DC-1"
    assert hit.source == "windows/-/security"
    assert hit.ts == T0 + timedelta(minutes=30)
    assert hit.fields == {"EventID": "4625", "TargetUserName": "admin", "LogonType": "3"}
    assert hit.raw is None
    (with_raw,) = search(sample, SearchRequest("EventID=4625", with_raw=True))
    assert with_raw.raw == "logon failed admin"
    assert with_raw.id == hit.id == event_id(b"logon failed admin")


def test_malformed_query_is_a_query_error(sample: EventStore) -> None:
    for query in ("", "(EventID=1", "EventID=1 AND", "OR x"):
        with pytest.raises(QueryError):
            count(sample, SearchRequest(query))
        with pytest.raises(QueryError):
            search(sample, SearchRequest(query))


def test_malformed_query_is_an_error_on_an_empty_store(store: EventStore) -> None:
    with pytest.raises(QueryError):
        count(store, SearchRequest("(a"))


# -- raw SQL -------------------------------------------------------------------------------


@pytest.mark.parametrize("sql", [
    f"SELECT count(*) FROM {table_name(SYSMON.partition)}",
    f"select \"EventID\", count(*) AS n FROM {table_name(SECURITY.partition)} GROUP BY 1 "
    "ORDER BY 1",
    f"WITH x AS (SELECT * FROM {table_name(SYSMON.partition)}) SELECT count(*) FROM x",
    f"  SELECT count(*) FROM {table_name(SSHD.partition)} ;  ",
    f"EXPLAIN SELECT * FROM {table_name(SYSMON.partition)}",
    f"DESCRIBE {table_name(SYSMON.partition)}",
    "SHOW TABLES",
    f"SUMMARIZE {table_name(SSHD.partition)}",
])
def test_run_sql_allows_read_only_statements(sample: EventStore, sql: str) -> None:
    columns, rows = run_sql(sample, sql)
    assert columns
    assert rows


def test_run_sql_results(sample: EventStore) -> None:
    columns, rows = run_sql(sample, f'SELECT "EventID", count(*) AS n FROM '
                                    f'{table_name(SECURITY.partition)} GROUP BY 1 ORDER BY 1')
    assert columns == ["EventID", "n"]
    assert rows == [("4624", 1), ("4625", 1)]
    _, limited = run_sql(sample, "SELECT * FROM range(100)", limit=7)
    assert len(limited) == 7


@pytest.mark.parametrize(("sql", "message"), [
    (f"DROP TABLE {table_name(SYSMON.partition)}", "not DROP"),
    (f"drop table {table_name(SYSMON.partition)}", "not DROP"),
    (f"INSERT INTO {table_name(SSHD.partition)} SELECT * FROM {table_name(SSHD.partition)}",
     "not INSERT"),
    (f"DELETE FROM {table_name(SYSMON.partition)}", "not DELETE"),
    (f"UPDATE {table_name(SYSMON.partition)} SET \"EventID\" = '0'", "not UPDATE"),
    ("CREATE TABLE evil (x INT)", "not CREATE"),
    (f"ALTER TABLE {table_name(SYSMON.partition)} ADD COLUMN x INT", "not ALTER"),
    ("ATTACH ':memory:' AS other", "only read-only statements"),
    ("COPY _partitions TO '/tmp/x.csv'", "only read-only statements"),
    ("PRAGMA database_list", "only read-only statements"),
    ("SET threads = 1", "only read-only statements"),
    ("CHECKPOINT", "only read-only statements"),
    (f"SELECT 1; DROP TABLE {table_name(SYSMON.partition)}", "exactly one SQL statement"),
    ("SELECT 1; SELECT 2", "exactly one SQL statement"),
    ("", "exactly one SQL statement"),
    ("   ", "exactly one SQL statement"),
    ("SELEC 1", "invalid SQL"),
    ("SELECT * FROM", "invalid SQL"),
    ("SELECT * FROM no_such_table", "SQL error"),
    ("SELECT no_such_column FROM _partitions", "SQL error"),
])
def test_run_sql_rejects(sample: EventStore, sql: str, message: str) -> None:
    with pytest.raises(QueryError, match=message):
        run_sql(sample, sql)
    assert sample.total() == 6
    assert sample.counts()["windows/process_creation/sysmon"] == 3


def test_run_sql_explain_analyze_cannot_write(sample: EventStore) -> None:
    with contextlib.suppress(QueryError):
        run_sql(sample, f"EXPLAIN ANALYZE DELETE FROM {table_name(SYSMON.partition)}")
    assert sample.total() == 6


# -- retention -----------------------------------------------------------------------------


def test_retention_deletes_old_days_only(store: EventStore) -> None:
    now = datetime(2024, 5, 31, 12, 0, tzinfo=UTC)
    ages = [0, 1, 9, 10, 11, 40]
    store.write([make_event(now - timedelta(days=d), EventID=d) for d in ages])
    results = retention.apply(store, 10, {}, now=now)
    assert [(r.source, r.days, r.cutoff, r.deleted) for r in results] == [
        ("windows/process_creation/sysmon", 10, "2024-05-21", 2)]
    remaining = sorted(int(h.fields["EventID"]) for h in search(store, SearchRequest("*")))
    assert remaining == [0, 1, 9, 10]
    # Applying again deletes nothing more.
    assert [r.deleted for r in retention.apply(store, 10, {}, now=now)] == [0]


def test_retention_cutoff_is_by_utc_day(store: EventStore) -> None:
    now = datetime(2024, 5, 31, 0, 30, tzinfo=UTC)
    store.write([make_event(datetime(2024, 5, 30, 0, 1, tzinfo=UTC), EventID=1),
                 make_event(datetime(2024, 5, 29, 23, 59, tzinfo=UTC), EventID=2)])
    (result,) = retention.apply(store, 1, {}, now=now)
    assert (result.cutoff, result.deleted) == ("2024-05-30", 1)
    assert [h.fields["EventID"] for h in search(store, SearchRequest("*"))] == ["1"]


def test_retention_per_source_overrides(store: EventStore) -> None:
    now = datetime(2024, 5, 31, 12, 0, tzinfo=UTC)
    other = LogSource("windows", "network_connection", "sysmon")
    ages = [1, 5, 20, 100]
    events = [make_event(now - timedelta(days=d), source, Age=d)
              for source in (SYSMON, SECURITY, SSHD, other) for d in ages]
    store.write(events)
    overrides = {"windows": 30, "windows/process_creation": 3, "linux/-/sshd": 10}
    results = {r.source: (r.days, r.deleted) for r in retention.apply(store, 365, overrides,
                                                                       now=now)}
    assert results == {
        "windows/process_creation/sysmon": (3, 3),  # product/category beats product
        "windows/network_connection/sysmon": (30, 1),
        "windows/-/security": (30, 1),
        "linux/-/sshd": (10, 2),
    }
    assert store.counts() == {"windows/process_creation/sysmon": 1,
                              "windows/network_connection/sysmon": 3,
                              "windows/-/security": 3, "linux/-/sshd": 2}


def test_retention_days_for_most_specific_override(store: EventStore) -> None:
    store.write([make_event(T0, SYSMON, x=1), make_event(T0, SSHD, x=1)])
    info = {p.label: p for p in store.partitions()}
    sysmon, sshd = info["windows/process_creation/sysmon"], info["linux/-/sshd"]
    assert retention.days_for(sysmon, 365, {}) == 365
    assert retention.days_for(sysmon, 365, {"windows": 90}) == 90
    assert retention.days_for(sysmon, 365, {"windows": 90, "windows/process_creation": 30}) == 30
    assert retention.days_for(sysmon, 365, {"windows": 90, "windows/process_creation/sysmon": 7,
                                            "windows/process_creation": 30}) == 7
    assert retention.days_for(sysmon, 365, {"linux": 5, "sysmon": 5}) == 365
    assert retention.days_for(sshd, 365, {"linux/-": 14}) == 14


# -- Parquet export ------------------------------------------------------------------------


def test_export_parquet(sample: EventStore, tmp_path: Path) -> None:
    target = tmp_path / "export"
    written = sample.export_parquet(target)
    assert written == {"windows/process_creation/sysmon": 3, "windows/-/security": 2,
                       "linux/-/sshd": 1}
    files = sorted(target.rglob("*.parquet"))
    assert files
    assert sum(pq.read_metadata(f).num_rows for f in files) == 6
    # One folder per log source, then one per day.
    sysmon = target / SYSMON.partition
    days = sorted(p.name for p in sysmon.iterdir())
    assert days == ["vigil_day=2024-04-30", "vigil_day=2024-05-01"]
    table = pq.read_table(sysmon)
    assert table.num_rows == 3
    assert {"@id", "@ts", "@raw", "Image", "CommandLine"} <= set(table.column_names)
    assert r"C:\Windows\System32\cmd.exe" in table.column("Image").to_pylist()
    assert pq.read_table(target / SECURITY.partition).num_rows == 2


def test_export_parquet_of_an_empty_store(store: EventStore, tmp_path: Path) -> None:
    assert store.export_parquet(tmp_path / "empty") == {}
    assert (tmp_path / "empty").is_dir()
    assert not list((tmp_path / "empty").rglob("*.parquet"))


# -- concurrency ---------------------------------------------------------------------------


def test_concurrent_reader_sees_growing_counts(store: EventStore) -> None:
    store.write([make_event(T0, EventID=0)])  # the partition exists before readers start
    batches, per_batch = 30, 300
    seen: list[int] = []
    errors: list[BaseException] = []
    writer_done = threading.Event()

    def reader() -> None:
        while True:
            finished = writer_done.is_set()
            try:
                seen.append(count(store, SearchRequest("*")))
                seen.append(store.total())
            except BaseException as exc:
                errors.append(exc)
                return
            if finished:
                return

    def writer() -> None:
        try:
            for b in range(batches):
                store.write([make_event(T0 + timedelta(seconds=i), EventID=b, Extra=str(i))
                             for i in range(per_batch)])
        except BaseException as exc:
            errors.append(exc)
        finally:
            writer_done.set()

    threads = [threading.Thread(target=reader), threading.Thread(target=writer)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(t.is_alive() for t in threads)
    assert errors == []
    assert seen
    assert all(a <= b for a, b in itertools.pairwise(seen))
    assert seen[-1] == 1 + batches * per_batch
    # Every count is a whole number of batches: a reader never sees half a transaction.
    assert all((n - 1) % per_batch == 0 for n in seen)


class _PausingTables(Mapping[LogSource, pa.Table]):
    """Tables for write_tables that run a callback between two sources (inside the
    writer's open transaction)."""

    def __init__(self, tables: dict[LogSource, pa.Table], between: Any) -> None:
        self._tables = tables
        self._between = between

    def __getitem__(self, key: LogSource) -> pa.Table:
        return self._tables[key]

    def __len__(self) -> int:
        return len(self._tables)

    def __iter__(self) -> Iterator[LogSource]:
        return iter(self._tables)

    def items(self) -> Any:
        for index, item in enumerate(self._tables.items()):
            if index:
                self._between()
            yield item


def test_reader_during_a_write_that_creates_a_partition(store: EventStore) -> None:
    tables, _ = to_tables([make_event(T0, SSHD, user="a"), make_event(T0, SYSMON, EventID=1)])
    observed: list[int] = []
    store.write_tables(_PausingTables(tables, lambda: observed.append(store.total())))
    assert observed == [0]
    assert store.total() == 2


def test_failed_write_leaves_the_store_usable(store: EventStore) -> None:
    tables, _ = to_tables([make_event(T0, SSHD, user="a"), make_event(T0, SYSMON, EventID=1)])

    def fail() -> None:
        raise RuntimeError("the writer dies mid-batch")

    with pytest.raises(RuntimeError):
        store.write_tables(_PausingTables(tables, fail))
    assert store.total() == 0
    assert store.write_tables(tables).stored == 2


# -- durability and the writer lock --------------------------------------------------------


def test_reopen_keeps_data_and_spool_position(tmp_path: Path) -> None:
    path = tmp_path / "data" / "events.duckdb"
    first = EventStore(path)
    assert first.position("spool") is None
    first.write([make_event(T0, EventID=1, Image="a.exe")], stream="spool", position=41)
    first.write([make_event(T0, SSHD, user="root")], stream="spool", position=1234)
    first.write([], stream="other", position=7)
    assert first.position("spool") == 1234
    first.close()

    second = EventStore(path)
    try:
        assert second.position("spool") == 1234
        assert second.position("other") == 7
        assert second.position("never") is None
        assert second.total() == 2
        assert second.counts() == {"windows/process_creation/sysmon": 1, "linux/-/sshd": 1}
        assert second.columns(SYSMON.partition)["image"] == "Image"
        assert q(second, "Image=A.EXE") == 1
        # Writing after reopening still de-duplicates and grows the schema.
        result = second.write([make_event(T0, EventID=1, Image="a.exe", raw="x"),
                               make_event(T0, EventID=2, NewField="n")],
                              stream="spool", position=2000)
        assert result.stored == 2
        assert second.position("spool") == 2000
        assert q(second, "NewField=n") == 1
    finally:
        second.close()


def test_position_is_committed_with_the_events(store: EventStore) -> None:
    event = make_event(T0, EventID=1)
    store.write([event], stream="spool", position=10)
    # A replay of the same batch after a crash stores nothing but still moves the position.
    result = store.write([event], stream="spool", position=11)
    assert (result.stored, result.duplicates) == (0, 1)
    assert store.position("spool") == 11


def test_store_in_memory() -> None:
    memory = EventStore(None)
    try:
        memory.write([make_event(T0, EventID=1)], stream="s", position=3)
        assert memory.total() == 1
        assert memory.position("s") == 3
        assert memory.size_bytes() == 0
    finally:
        memory.close()


def test_size_bytes_of_a_file_store(store: EventStore) -> None:
    store.write([make_event(T0, EventID=i) for i in range(10)])
    store.checkpoint()
    assert store.size_bytes() > 0


_CHILD = """
import sys
from pathlib import Path
from vigil.core.errors import StoreBusyError
from vigil.store.duck import EventStore
try:
    EventStore(Path(sys.argv[1]))
except StoreBusyError as exc:
    print("StoreBusyError:", exc)
    sys.exit(3)
print("opened")
"""


def test_second_process_gets_a_clear_busy_error(store: EventStore) -> None:
    store.write([make_event(T0, EventID=1)])
    assert store.path is not None
    child = subprocess.run([sys.executable, "-c", _CHILD, str(store.path)],
                           capture_output=True, text=True, timeout=120, check=False)
    assert child.returncode == 3, child.stdout + child.stderr
    message = child.stdout.strip()
    assert message.startswith("StoreBusyError: the event store ")
    assert str(store.path) in message
    assert "in use by another Vigil process" in message
    assert "Traceback" not in child.stderr
    # The holder is unaffected.
    assert store.total() == 1


def test_second_process_can_open_after_close(tmp_path: Path) -> None:
    path = tmp_path / "events.duckdb"
    holder = EventStore(path)
    holder.write([make_event(T0, EventID=1)])
    holder.close()
    child = subprocess.run([sys.executable, "-c", _CHILD, str(path)],
                           capture_output=True, text=True, timeout=120, check=False)
    assert child.returncode == 0, child.stdout + child.stderr
    assert child.stdout.strip() == "opened"


def test_unopenable_path_is_a_vigil_error(tmp_path: Path) -> None:
    folder = tmp_path / "a-folder.duckdb"
    folder.mkdir()
    with pytest.raises(VigilError, match="event store"):
        EventStore(folder)


def test_busy_error_is_a_vigil_error() -> None:
    assert issubclass(StoreBusyError, VigilError)
    assert StoreBusyError.http_status == 503
