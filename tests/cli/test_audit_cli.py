"""``vigil audit``: list, checkpoint and verify as a user runs them."""

from __future__ import annotations

import json
from pathlib import Path

from sqlalchemy import text

from helpers import ok, run_vigil
from vigil.app import Vigil
from vigil.audit import service
from vigil.core.auth import SYSTEM
from vigil.core.config import load_settings


def _seed(data_dir: Path, count: int) -> None:
    vigil = Vigil(load_settings(data_dir))
    try:
        for number in range(1, count + 1):
            with vigil.db.session() as session:
                service.record(session, SYSTEM, "update", "case", number, None, {"n": number})
    finally:
        vigil.close()


def _tamper(data_dir: Path, *statements: str) -> None:
    vigil = Vigil(load_settings(data_dir))
    try:
        with vigil.db.engine.begin() as connection:
            for statement in statements:
                connection.execute(text(statement))
    finally:
        vigil.close()


def test_verify_intact_then_each_tampering_reported(data_dir: Path) -> None:
    _seed(data_dir, 10)
    assert "signed record 10" in ok(run_vigil(data_dir, "audit", "checkpoint")).out
    intact = ok(run_vigil(data_dir, "audit", "verify"))
    assert "audit chain intact: 10 record(s), 1 checkpoint(s)" in intact.out
    _tamper(data_dir,
            "UPDATE audit_log SET after = '{\"n\": 99}' WHERE seq = 2",
            "DELETE FROM audit_log WHERE seq = 5",
            "UPDATE audit_log SET seq = 100 WHERE seq = 7",
            "UPDATE audit_log SET seq = 7 WHERE seq = 8",
            "UPDATE audit_log SET seq = 8 WHERE seq = 100")
    broken = run_vigil(data_dir, "audit", "verify")
    assert broken.code == 1, broken.err
    assert "record 2: edited" in broken.out
    assert "record 5: missing" in broken.out
    assert "record 7: reordered" in broken.out and "record 8: reordered" in broken.out
    assert "Traceback" not in broken.err


def test_list_as_json(data_dir: Path) -> None:
    _seed(data_dir, 3)
    out = ok(run_vigil(data_dir, "audit", "list", "--format", "json", "-n", "2")).out
    rows = [json.loads(line) for line in out.splitlines()]
    assert [r["seq"] for r in rows] == [3, 2]
    assert rows[0]["actor"] == "system:vigil" and rows[0]["object"] == "case"


def test_checkpoint_on_an_empty_chain(data_dir: Path) -> None:
    assert "nothing new to sign" in ok(run_vigil(data_dir, "audit", "checkpoint")).out
    assert "audit chain intact: 0 record(s)" in ok(run_vigil(data_dir, "audit", "verify")).out
