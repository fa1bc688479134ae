"""Windows parsers on real data: the SigmaHQ regression EVTX files and the OTRF recordings."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from helpers import datasets
from vigil.events import Event, ParseContext, Rejected, get_format
from vigil.events.jsondocs import load_documents
from vigil.events.parsers.windows import rendered_fields


def _evtx_files() -> list[Path]:
    return sorted((datasets() / "sigma" / "regression_data").rglob("*.evtx"))


def _parse_evtx(path: Path) -> list[Event | Rejected]:
    return list(get_format("evtx").parse([path.read_bytes()], ParseContext(origin=path.name)))


def _strip(fields: dict[str, object]) -> dict[str, object]:
    return {k: v.strip() if isinstance(v, str) else v for k, v in fields.items()}


def test_every_regression_evtx_record_parses() -> None:
    files = _evtx_files()
    assert len(files) >= 200
    total = 0
    for path in files:
        results = _parse_evtx(path)
        rejected = [r for r in results if isinstance(r, Rejected)]
        assert not rejected, f"{path}: {rejected[0].reason}"
        total += len(results)
        for event in results:
            assert isinstance(event, Event)
            assert event.source.product == "windows"
            assert event.fields["EventID"] is not None
            assert event.ts.tzinfo is not None
    assert total >= len(files)


def test_evtx_fields_match_their_json_renderings() -> None:
    compared = matched = 0
    for path in _evtx_files():
        rendering = path.with_suffix(".json")
        if not rendering.exists():
            continue
        got = [_strip(e.fields) for e in _parse_evtx(path) if isinstance(e, Event)]
        for document in load_documents(rendering.read_bytes()):
            compared += 1
            matched += _strip(rendered_fields(document)) in got
    assert compared >= 200
    # One SigmaHQ rendering was made from a different record than its EVTX file holds.
    assert matched >= compared - 1


def test_sysmon_log_sources_and_field_names() -> None:
    path = next(p for p in _evtx_files() if "proc_creation_win" in str(p))
    event = next(e for e in _parse_evtx(path) if isinstance(e, Event))
    assert str(event.source) == "windows/process_creation/sysmon"
    assert {"Image", "CommandLine", "ParentImage", "Channel", "Computer"} <= set(event.fields)
    assert event.host == event.fields["Computer"]


def test_defender_names_with_spaces_are_normalised() -> None:
    for path in _evtx_files():
        for event in _parse_evtx(path):
            if isinstance(event, Event):
                assert not any(" " in name for name in event.fields), path


def test_truncated_evtx_keeps_what_it_can_and_never_raises(tmp_path: Path) -> None:
    data = max(_evtx_files(), key=lambda p: p.stat().st_size).read_bytes()
    for cut in (len(data) // 2, 4096 + 100, 200):
        results = list(get_format("evtx").parse([data[:cut]], ParseContext(origin="cut.evtx")))
        assert all(isinstance(r, Event | Rejected) for r in results)


def test_garbage_instead_of_evtx_is_rejected() -> None:
    results = list(get_format("evtx").parse([b"\x00garbage" * 100], ParseContext()))
    assert len(results) == 1 and isinstance(results[0], Rejected)
    assert "EVTX" in results[0].reason


def test_otrf_recording_lines() -> None:
    archive = next((datasets() / "otrf-atomic-windows").rglob("*.zip"))
    with zipfile.ZipFile(archive) as zipped:
        member = next(n for n in zipped.namelist() if n.endswith(".json") and "MACOSX" not in n)
        lines = [line for line in zipped.read(member).splitlines() if line.strip()][:2000]
    results = list(get_format("windows-json").parse(lines, ParseContext(origin=member)))
    assert all(isinstance(r, Event) for r in results)
    events = [r for r in results if isinstance(r, Event)]
    assert len({e.id for e in events}) >= len(events) * 0.9
    sysmon = [e for e in events if e.fields.get("Channel") == "Microsoft-Windows-Sysmon/Operational"]
    assert sysmon and all(e.source.service == "sysmon" for e in sysmon)


@pytest.mark.parametrize("line", [b"{", b"[1,2]", b'{"EventID": 1}', b"\xff\xfe\x00"])
def test_bad_windows_json_lines_are_rejected(line: bytes) -> None:
    results = list(get_format("windows-json").parse([line], ParseContext(origin="x")))
    assert results and all(isinstance(r, Rejected) for r in results)


def test_winlogbeat_document() -> None:
    doc = (b'{"@timestamp":"2024-05-01T10:00:00.000Z","winlog":{"channel":"Security",'
           b'"event_id":4688,"computer_name":"DC1","provider_name":"Microsoft-Windows-Security-'
           b'Auditing","event_data":{"NewProcessName":"C:\\\\x.exe","SubjectUserName":"bob"}},'
           b'"message":"A new process has been created."}')
    (event,) = get_format("windows-json").parse([doc], ParseContext())
    assert isinstance(event, Event)
    assert str(event.source) == "windows/process_creation/security"
    assert event.fields["NewProcessName"] == "C:\\x.exe"
    assert event.host == "DC1"
