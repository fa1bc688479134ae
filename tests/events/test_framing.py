"""Framing: lines, documents and JSON, with bounded memory for oversized records."""

from __future__ import annotations

import io

from hypothesis import given
from hypothesis import strategies as st

from vigil.events.formats import Framing
from vigil.events.framing import Oversized, frame, iter_lines


def test_lines_crlf_and_blank_lines() -> None:
    data = b"a\r\n\r\nb\nc"
    assert list(iter_lines(io.BytesIO(data), 100)) == [b"a", b"b", b"c"]


def test_fifty_megabyte_line_is_reported_not_kept() -> None:
    big = b"x" * (50 * 1024 * 1024)
    records = list(iter_lines(io.BytesIO(b"first\n" + big + b"\nlast\n"), 8 * 1024 * 1024))
    assert records[0] == b"first" and records[-1] == b"last"
    oversized = records[1]
    assert isinstance(oversized, Oversized)
    assert oversized.size == len(big) and len(oversized.head) <= 4096 and oversized.line == 2


def test_invalid_utf8_passes_through_as_bytes() -> None:
    assert list(iter_lines(io.BytesIO(b"\xff\xfe bad\n"), 100)) == [b"\xff\xfe bad"]


def test_json_framing_picks_lines_or_document() -> None:
    lines = b'{"a": 1}\n{"a": 2}\n'
    assert len(list(frame(io.BytesIO(lines), Framing.JSON, 100, 1000, lines))) == 2
    pretty = b'{\n  "a": 1\n}\n'
    assert list(frame(io.BytesIO(pretty), Framing.JSON, 100, 1000, pretty)) == [pretty]


def test_oversized_document() -> None:
    data = b"y" * 5000
    (record,) = frame(io.BytesIO(data), Framing.DOCUMENT, 100, 1000)
    assert isinstance(record, Oversized) and record.size == 5000


@given(st.lists(st.binary(min_size=1, max_size=50).filter(lambda b: b"\n" not in b
                                                            and b.strip(b"\r \t\x0b\x0c")),
                max_size=30))
def test_lines_round_trip(lines: list[bytes]) -> None:
    data = b"\n".join(lines)
    got = list(iter_lines(io.BytesIO(data), 1000))
    assert got == [line.rstrip(b"\r") for line in lines if line.rstrip(b"\r").strip()]
