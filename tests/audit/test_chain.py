"""The audit chain: appends, and tampering of every kind detected (SQLite and PostgreSQL)."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from sqlalchemy import text

from vigil.audit import keys, service
from vigil.audit.verify import ProblemKind
from vigil.core.auth import SYSTEM
from vigil.core.db import StateDB


def _append(db: StateDB, count: int, start: int = 1) -> None:
    for number in range(start, start + count):
        with db.session() as session:
            service.record(session, SYSTEM, "update", "case", number, {"stage": "new"},
                           {"stage": "acknowledged", "n": number})


def _kinds(db: StateDB, folder: Path | None = None) -> list[tuple[ProblemKind, int]]:
    public = keys.load_public(folder / keys.PUBLIC_NAME) if folder else None
    return [(p.kind, p.seq) for p in service.verify(db, public).problems]


def test_records_chain_and_verify(state_db: StateDB) -> None:
    _append(state_db, 5)
    report = service.verify(state_db)
    assert report.ok and report.records == 5 and report.last_seq == 5
    entries = service.listing(state_db, limit=2)
    assert [e.seq for e in entries] == [5, 4]
    assert entries[0].actor == "system:vigil"
    assert entries[0].after == {"stage": "acknowledged", "n": 5}
    assert [e.seq for e in service.listing(state_db, before_seq=2)] == [1]
    assert [e.object_id for e in service.listing(state_db, object_id="3")] == ["3"]


def test_a_rolled_back_change_leaves_no_record(state_db: StateDB) -> None:
    _append(state_db, 2)
    with pytest.raises(RuntimeError), state_db.session() as session:
        service.record(session, "user:alice", "delete", "case", 9)
        raise RuntimeError("the change failed")
    _append(state_db, 1, start=3)
    report = service.verify(state_db)
    assert report.ok and report.records == 3


def test_edited_record(state_db: StateDB) -> None:
    _append(state_db, 6)
    with state_db.engine.begin() as connection:
        connection.execute(text("UPDATE audit_log SET actor = 'user:mallory' WHERE seq = 3"))
    assert _kinds(state_db) == [(ProblemKind.EDITED, 3)]


def test_deleted_record_in_the_middle(state_db: StateDB) -> None:
    _append(state_db, 6)
    with state_db.engine.begin() as connection:
        connection.execute(text("DELETE FROM audit_log WHERE seq = 4"))
    assert _kinds(state_db) == [(ProblemKind.MISSING, 4)]


def test_deleted_records_at_the_end(state_db: StateDB) -> None:
    _append(state_db, 6)
    with state_db.engine.begin() as connection:
        connection.execute(text("DELETE FROM audit_log WHERE seq >= 5"))
    assert _kinds(state_db) == [(ProblemKind.MISSING, 5)]


def test_reordered_records(state_db: StateDB) -> None:
    _append(state_db, 6)
    with state_db.engine.begin() as connection:
        connection.execute(text("UPDATE audit_log SET seq = 100 WHERE seq = 2"))
        connection.execute(text("UPDATE audit_log SET seq = 2 WHERE seq = 3"))
        connection.execute(text("UPDATE audit_log SET seq = 3 WHERE seq = 100"))
    problems = _kinds(state_db)
    assert (ProblemKind.REORDERED, 2) in problems and (ProblemKind.REORDERED, 3) in problems
    assert all(kind is ProblemKind.REORDERED for kind, _ in problems), problems


def test_edit_delete_and_reorder_together_each_reported(state_db: StateDB) -> None:
    _append(state_db, 12)
    with state_db.engine.begin() as connection:
        connection.execute(text("UPDATE audit_log SET after = '{}' WHERE seq = 2"))
        connection.execute(text("DELETE FROM audit_log WHERE seq = 6"))
        connection.execute(text("UPDATE audit_log SET seq = 100 WHERE seq = 9"))
        connection.execute(text("UPDATE audit_log SET seq = 9 WHERE seq = 10"))
        connection.execute(text("UPDATE audit_log SET seq = 10 WHERE seq = 100"))
    problems = set(_kinds(state_db))
    assert (ProblemKind.EDITED, 2) in problems
    assert (ProblemKind.MISSING, 6) in problems
    assert (ProblemKind.REORDERED, 9) in problems and (ProblemKind.REORDERED, 10) in problems


def test_signed_checkpoints_catch_a_rebuilt_chain(state_db: StateDB, tmp_path: Path) -> None:
    _append(state_db, 4)
    point = service.checkpoint(state_db, tmp_path)
    assert point is not None and point.seq == 4
    assert service.checkpoint(state_db, tmp_path) is None
    assert service.verify(state_db, keys.load_public(tmp_path / keys.PUBLIC_NAME)).ok
    with state_db.engine.begin() as connection:
        connection.execute(text("DELETE FROM audit_log"))
        connection.execute(text("UPDATE audit_head SET seq = 0, hash = :h"), {"h": "0" * 64})
    _append(state_db, 4, start=50)
    assert (ProblemKind.CHECKPOINT, 4) in _kinds(state_db, tmp_path)


def test_forged_checkpoint_signature(state_db: StateDB, tmp_path: Path) -> None:
    _append(state_db, 3)
    service.checkpoint(state_db, tmp_path)
    with state_db.engine.begin() as connection:
        connection.execute(text("UPDATE audit_checkpoints SET signature = 'AAAA'"))
    assert _kinds(state_db, tmp_path) == [(ProblemKind.CHECKPOINT, 3)]
    assert service.verify(state_db).ok  # without the public key, signatures are not checked


def test_concurrent_appends_keep_one_chain(state_db: StateDB) -> None:
    errors: list[BaseException] = []

    def worker(offset: int) -> None:
        try:
            _append(state_db, 15, start=offset)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(i * 100,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    report = service.verify(state_db)
    assert report.ok and report.records == 60


def test_key_is_private_and_stable(tmp_path: Path) -> None:
    first = keys.load_or_create(tmp_path)
    second = keys.load_or_create(tmp_path)
    assert keys.key_id(first.public_key()) == keys.key_id(second.public_key())
    assert (tmp_path / keys.PRIVATE_NAME).stat().st_mode & 0o077 == 0
