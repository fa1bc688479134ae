"""The durable spool: order, durability across reopen, torn tails, segment clean-up, limits."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vigil.core.errors import OverloadedError
from vigil.ingest.spool import Spool, SpoolRecord


def _records(count: int, start: int = 0) -> list[SpoolRecord]:
    return [SpoolRecord("syslog", "test", 1_700_000_000_000_000, b"line %d" % i)
            for i in range(start, start + count)]


def test_append_read_commit_and_reopen(tmp_path: Path) -> None:
    spool = Spool(tmp_path, segment_bytes=4096)
    last = spool.append_sync(_records(500))
    assert last == 499
    got = spool.read(-1, 10_000)
    assert [seq for seq, _ in got] == list(range(500))
    assert got[42][1].raw == b"line 42" and got[42][1].format == "syslog"
    spool.committed(299)
    assert spool.pending() == 200
    spool.close()
    reopened = Spool(tmp_path, segment_bytes=4096)
    reopened.committed(299)
    assert reopened.next_seq == 500
    assert [seq for seq, _ in reopened.read(299, 10_000)] == list(range(300, 500))
    reopened.close()


def test_committed_segments_are_deleted(tmp_path: Path) -> None:
    spool = Spool(tmp_path, segment_bytes=1024)
    for start in range(0, 400, 10):
        spool.append_sync(_records(10, start))
    before = len(list(tmp_path.glob("seg-*.log")))
    spool.committed(399)
    after = len(list(tmp_path.glob("seg-*.log")))
    assert before > 3 and after == 1
    spool.close()


def test_torn_tail_is_cut_on_open(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    spool.append_sync(_records(10))
    spool.close()
    segment = next(tmp_path.glob("seg-*.log"))
    with segment.open("ab") as handle:
        handle.write(b"VS\xff\x00\x00\x00garbage")
    reopened = Spool(tmp_path)
    assert reopened.next_seq == 10
    reopened.append_sync(_records(1, 10))
    assert [r.raw for _, r in reopened.read(-1, 100)][-1] == b"line 10"
    reopened.close()


def test_full_spool_refuses(tmp_path: Path) -> None:
    spool = Spool(tmp_path, max_pending=1000)
    spool.append_sync(_records(1000))
    with pytest.raises(OverloadedError) as info:
        spool.append(_records(1))
    assert info.value.retry_after >= 1
    spool.committed(999)
    spool.append_sync(_records(1))
    spool.close()


@settings(max_examples=25, deadline=None)
@given(st.lists(st.binary(max_size=300), min_size=1, max_size=60))
def test_records_round_trip(tmp_path_factory: pytest.TempPathFactory, raws: list[bytes]) -> None:
    folder = tmp_path_factory.mktemp("spool")
    spool = Spool(folder, segment_bytes=2048)
    spool.append_sync([SpoolRecord("json", "o", 5, raw) for raw in raws])
    assert [r.raw for _, r in spool.read(-1, 1000)] == raws
    spool.close()
