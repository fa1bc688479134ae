"""Golden-file tests: every input under ``golden/<format>/`` parses to its ``.expected.json``.

Set ``VIGIL_UPDATE_GOLDEN=1`` to write the expected files after a deliberate change, then
read the diff before committing it.
"""

from __future__ import annotations

import io
import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from vigil.events import Event, ParseContext, Rejected, get_format
from vigil.events.framing import Oversized, frame

GOLDEN = Path(__file__).parent / "golden"
RECEIVED = datetime(2024, 1, 1, tzinfo=UTC)


def _cases() -> list[Path]:
    return sorted(p for p in GOLDEN.glob("*/*") if not p.name.endswith(".expected.json"))


def as_plain(result: Event | Rejected) -> dict[str, Any]:
    """A JSON-ready view of a parse result."""
    if isinstance(result, Rejected):
        return {"rejected": result.reason, "line": result.line}
    return {
        "id": result.id,
        "ts": result.ts.isoformat(),
        "host": result.host,
        "source": str(result.source),
        "format": result.format,
        "fields": result.fields,
    }


def parse_file(path: Path, format_name: str) -> list[dict[str, Any]]:
    fmt = get_format(format_name)
    data = path.read_bytes()
    ctx = ParseContext(origin=path.name, received=RECEIVED)
    records = [r for r in frame(io.BytesIO(data), fmt.framing, 1 << 20, 1 << 26, data[:65536])
               if not isinstance(r, Oversized)]
    return [as_plain(r) for r in fmt.parse(records, ctx)]


@pytest.mark.parametrize("case", _cases(), ids=lambda p: f"{p.parent.name}/{p.name}")
def test_golden(case: Path) -> None:
    expected_path = case.with_name(case.name.split(".")[0] + ".expected.json")
    actual = parse_file(case, case.parent.name)
    if os.environ.get("VIGIL_UPDATE_GOLDEN") == "1":
        expected_path.write_text(json.dumps(actual, indent=1, ensure_ascii=False) + "\n")
    assert expected_path.exists(), f"missing {expected_path.name}; run with VIGIL_UPDATE_GOLDEN=1"
    assert actual == json.loads(expected_path.read_text())
