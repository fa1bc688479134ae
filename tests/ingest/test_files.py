"""``vigil ingest`` internals on real corpora and on hostile inputs."""

from __future__ import annotations

import gzip
import zipfile
from pathlib import Path

import pytest

from helpers import datasets
from vigil.app import Vigil
from vigil.core.errors import InputError
from vigil.events import Event, ParseContext, get_format
from vigil.ingest import deadletters
from vigil.ingest.batches import ParseOptions
from vigil.ingest.files import IngestSummary, ingest_inputs
from vigil.ingest.inputs import expand

SYSMON_LINE = (b'{"@timestamp":"2024-03-01T10:00:0%dZ","EventID":1,"Hostname":"pc1",'
               b'"Channel":"Microsoft-Windows-Sysmon/Operational","Image":"C:\\\\x%d.exe"}')


def _ingest(vigil: Vigil, paths: list[str], workers: int = 1, **options: object) -> IngestSummary:
    return ingest_inputs(expand(paths), vigil.store, vigil.db, ParseOptions(**options),  # type: ignore[arg-type]
                         workers=workers)


def _adds_up(summary: IngestSummary) -> None:
    assert summary.records == summary.stored + summary.duplicates + summary.rejected


def test_folder_with_zip_gzip_and_plain_files(vigil: Vigil, tmp_path: Path) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "a.json").write_bytes(b"\n".join(SYSMON_LINE % (i, i) for i in range(3)))
    (folder / "b.log.gz").write_bytes(gzip.compress(b"\n".join(SYSMON_LINE % (i, 10 + i)
                                                               for i in range(3))))
    with zipfile.ZipFile(folder / "c.zip", "w") as archive:
        archive.writestr("inner/c.json", b"\n".join(SYSMON_LINE % (i, 20 + i) for i in range(3)))
        archive.writestr("__MACOSX/._c.json", b"\x00\x05junk")
    (folder / ".hidden").write_bytes(b"ignored")
    summary = _ingest(vigil, [str(folder)])
    assert summary.inputs == 3 and summary.stored == 9 and summary.rejected == 0
    _adds_up(summary)
    assert vigil.store.counts() == {"windows/process_creation/sysmon": 9}


def test_replay_creates_no_duplicates(vigil: Vigil, tmp_path: Path) -> None:
    path = tmp_path / "a.json"
    path.write_bytes(b"\n".join(SYSMON_LINE % (i, i) for i in range(5)))
    assert _ingest(vigil, [str(path)]).stored == 5
    again = _ingest(vigil, [str(path)])
    assert again.stored == 0 and again.duplicates == 5
    assert vigil.store.total() == 5


def test_hostile_inputs_go_to_dead_letters(vigil: Vigil, tmp_path: Path) -> None:
    (tmp_path / "garbage.bin").write_bytes(bytes(range(256)) * 40)
    (tmp_path / "empty.log").write_bytes(b"")
    (tmp_path / "trunc.evtx").write_bytes(b"ElfFile\x00" + b"\x00" * 50)
    (tmp_path / "badtime.json").write_bytes(
        b'{"@timestamp":"yesterday-ish","EventID":1,"Channel":"Security"}\n'
        b'{"@timestamp":"2024-13-45T99:00:00Z","EventID":1,"Channel":"Security"}\n')
    (tmp_path / "bad.gz").write_bytes(gzip.compress(b"x" * 1000)[:30])
    summary = _ingest(vigil, [str(tmp_path)])
    _adds_up(summary)
    assert summary.stored == 0 and summary.rejected >= 5
    reasons = " | ".join(d.reason for d in deadletters.listing(vigil.db, 50))
    assert "cannot detect the format" in reasons
    assert "timestamp" in reasons.lower() or "isoformat" in reasons.lower() or "invalid" in reasons


def test_huge_single_line_is_rejected_with_its_size(vigil: Vigil, tmp_path: Path) -> None:
    path = tmp_path / "big.json"
    with path.open("wb") as handle:
        handle.write(SYSMON_LINE % (1, 1) + b"\n")
        handle.write(b'{"EventID": "' + b"A" * (50 * 1024 * 1024) + b'"}\n')
        handle.write(SYSMON_LINE % (2, 2) + b"\n")
    summary = _ingest(vigil, [str(path)], format="windows-json")
    assert summary.stored == 2 and summary.rejected == 1
    (letter,) = deadletters.listing(vigil.db)
    assert "larger than the limit" in letter.reason and letter.line == 2


def test_invalid_utf8_is_kept_not_lost(vigil: Vigil, tmp_path: Path) -> None:
    path = tmp_path / "u.json"
    path.write_bytes(b'{"@timestamp":"2024-03-01T10:00:00Z","EventID":1,"Channel":"Security",'
                     b'"Message":"\xff\xfe bad"}\n')
    summary = _ingest(vigil, [str(path)], format="windows-json")
    _adds_up(summary)
    assert summary.records == 1


def test_unknown_forced_format_and_missing_path(vigil: Vigil, tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such file"):
        expand([str(tmp_path / "nope")])
    (tmp_path / "a.log").write_bytes(b"hello\n")
    summary = _ingest(vigil, [str(tmp_path / "a.log")], format="no-such-format")
    assert summary.rejected == 1
    assert "unknown format" in deadletters.listing(vigil.db)[0].reason


def _evtx_record_count() -> int:
    total = 0
    for path in (datasets() / "sigma" / "regression_data").rglob("*.evtx"):
        results = get_format("evtx").parse([path.read_bytes()], ParseContext(origin=path.name))
        total += sum(isinstance(r, Event) for r in results)
    return total


def test_sigma_regression_data_every_evtx_record_stored(vigil: Vigil) -> None:
    folder = datasets() / "sigma" / "regression_data"
    summary = _ingest(vigil, [str(folder / "**" / "*.evtx")], workers=2)
    _adds_up(summary)
    assert summary.rejected == 0
    assert summary.records == _evtx_record_count()
    assert vigil.store.total() == summary.stored


@pytest.mark.slow
def test_otrf_corpus_counts_add_up(vigil: Vigil) -> None:
    summary = _ingest(vigil, [str(datasets() / "otrf-atomic-windows")], workers=2)
    _adds_up(summary)
    assert summary.stored > 600_000
    assert vigil.store.total() == summary.stored
    # Every JSON line is stored or a duplicate of a stored event (same content, same id).
    assert summary.by_format["windows-json"] == summary.stored + summary.duplicates
    # The other files (packet captures, metadata YAML, LICENSE) are rejected as whole inputs.
    reasons = {d.reason.rsplit(":", 1)[-1] for d in deadletters.listing(vigil.db, 1000)}
    assert summary.rejected == deadletters.count(vigil.db)
    assert reasons == {" cannot detect the format; give it with --format (see `vigil formats`)"}
