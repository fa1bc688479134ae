"""``vigil rules``, run as a real process on a temporary data folder."""

from __future__ import annotations

import csv
import io
import json
import re
import zipfile
from pathlib import Path

import pytest

from helpers import Run, assert_user_error, ok, run_vigil

WHOAMI = "3b1f6a52-0c3e-4d4b-9a55-000000000001"
MIMIKATZ = "3b2e7c41-0c3e-4d4b-9a55-000000000002"
PLACEHOLDER = "9c0d2e11-7f00-4a1b-8c3d-000000000003"
COUNTS = re.compile(r"(\d+) rules loaded from (\d+) files in .* s: (\d+) compiled, (\d+) failed, "
                    r"(\d+) problems")
CATALOG = re.compile(r"catalog: (\d+) new, (\d+) updated, (\d+) unchanged")


def vigil(data_dir: Path, *args: str) -> Run:
    return run_vigil(data_dir, *args)


def user_error(run: Run, *fragments: str) -> None:
    assert_user_error(run, *fragments)


def catalog_counts(out: str) -> tuple[int, ...]:
    """New, updated, unchanged from the output of ``vigil rules import``."""
    match = CATALOG.search(out)
    assert match, out
    return tuple(int(n) for n in match.groups())


def rule_text(rule_id: str, title: str, image: str, *, level: str = "high",
              modifier: str = "endswith", tag: str = "attack.t1033") -> str:
    return (f"title: {title}\n"
            f"id: {rule_id}\n"
            "status: test\n"
            "author: Jane Analyst\n"
            "references:\n"
            "    - https://example.org/ref\n"
            "logsource:\n"
            "    product: windows\n"
            "    category: process_creation\n"
            "detection:\n"
            "    selection:\n"
            f"        Image|{modifier}: '{image}'\n"
            "    condition: selection\n"
            f"tags:\n    - {tag}\n"
            f"level: {level}\n")


@pytest.fixture
def rules_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "rules"
    folder.mkdir()
    (folder / "whoami.yml").write_text(rule_text(WHOAMI, "Whoami Execution", "\\whoami.exe",
                                                 level="low"))
    (folder / "placeholder.yml").write_text(rule_text(PLACEHOLDER, "Admin Workstations",
                                                      "%admin_hosts%", modifier="expand"))
    (folder / "broken.yml").write_text("title: broken\nid: [unclosed\n")
    with zipfile.ZipFile(folder / "more.zip", "w") as archive:
        archive.writestr("mimikatz.yml", rule_text(MIMIKATZ, "Mimikatz Use", "\\mimikatz.exe",
                                                   level="critical", tag="attack.t1003.001"))
    return folder


@pytest.fixture
def imported(tmp_path: Path, rules_dir: Path) -> Path:
    data = tmp_path / "data"
    ok(vigil(data, "rules", "import", str(rules_dir), str(rules_dir / "more.zip")))
    return data


def test_import_prints_counts_reasons_and_problems(tmp_path: Path, rules_dir: Path) -> None:
    data = tmp_path / "data"
    run = ok(vigil(data, "rules", "import", str(rules_dir), str(rules_dir / "more.zip")))
    counts = COUNTS.search(run.out)
    assert counts, run.out
    loaded, files, compiled, failed, problems = map(int, counts.groups())
    assert (loaded, files, compiled, failed, problems) == (3, 4, 2, 1, 1)
    assert loaded == compiled + failed
    assert catalog_counts(run.out) == (3, 0, 0)
    assert "failed by reason:" in run.out
    assert re.search(r"^\s+1\s+field '…': unresolved placeholder %…%", run.out, re.M), run.out
    assert f"{rules_dir / 'broken.yml'}:2: invalid YAML" in run.out
    assert str(rules_dir / "placeholder.yml") not in run.out  # failures listed with --verbose only

    again = ok(vigil(data, "rules", "import", "-v", str(rules_dir / "*.yml"),
                     str(rules_dir / "more.zip")))
    assert catalog_counts(again.out) == (0, 0, 3)
    assert f"{rules_dir / 'placeholder.yml'}:12: field 'Image': unresolved placeholder" in again.out


def test_list_outputs(imported: Path) -> None:
    table = ok(vigil(imported, "rules", "list")).out
    lines = [line for line in table.splitlines() if "Mimikatz Use" in line]
    assert len(lines) == 1
    for cell in (MIMIKATZ[:8], "critical", "Jane Analyst", "windows/process_creation/-", "yes"):
        assert cell in lines[0]
    assert table.index("Mimikatz Use") < table.index("Admin Workstations") < table.index("Whoami")
    assert "3 rules" in table

    rows = [json.loads(line) for line in ok(vigil(imported, "rules", "list", "-o", "json")).out.splitlines()]
    assert [r["id"] for r in rows] == [MIMIKATZ, PLACEHOLDER, WHOAMI]
    assert rows[1]["compiled"] == "no" and rows[0]["enabled"] == "yes"

    out = ok(vigil(imported, "rules", "list", "--level", "low", "-o", "csv")).out
    parsed = list(csv.DictReader(io.StringIO(out)))
    assert [r["title"] for r in parsed] == ["Whoami Execution"]
    found = ok(vigil(imported, "rules", "list", "--search", "mimi", "-o", "json")).out
    assert [json.loads(line)["id"] for line in found.splitlines()] == [MIMIKATZ]


def test_show(imported: Path) -> None:
    out = ok(vigil(imported, "rules", "show", MIMIKATZ[:10])).out
    for text in (f"id:         {MIMIKATZ}", "author:     Jane Analyst", "https://example.org/ref",
                 "SQL (fields: Image)", "mimikatz.exe", "YAML:", "level: critical"):
        assert text in out, out
    failed = ok(vigil(imported, "rules", "show", PLACEHOLDER)).out
    assert "not compiled: field 'Image': unresolved placeholder %admin_hosts%" in failed
    data = json.loads(ok(vigil(imported, "rules", "show", WHOAMI, "--json")).out)
    assert data["id"] == WHOAMI and data["author"] == "Jane Analyst"
    assert data["logsource"] == "windows/process_creation/-" and data["sql"]


def test_enable_and_disable(imported: Path) -> None:
    out = ok(vigil(imported, "rules", "disable", "*mimikatz*", WHOAMI[:9])).out
    assert "2 rules matched, 2 disabled" in out
    disabled = ok(vigil(imported, "rules", "list", "--disabled", "-o", "json")).out
    assert sorted(json.loads(line)["id"] for line in disabled.splitlines()) == sorted([MIMIKATZ, WHOAMI])
    assert "1 rules matched, 0 disabled" in ok(vigil(imported, "rules", "disable", WHOAMI)).out
    assert "3 rules matched, 2 enabled" in ok(vigil(imported, "rules", "enable", "3b*", "9c*")).out
    assert ok(vigil(imported, "rules", "list", "--disabled", "-o", "json")).out == ""


def test_coverage_and_navigator_layer(imported: Path, tmp_path: Path) -> None:
    layer = tmp_path / "layer.json"
    out = ok(vigil(imported, "rules", "coverage", "--layer", str(layer))).out
    assert re.search(r"T1033\s+│\s+1", out) and re.search(r"T1003\.001\s+│\s+1", out), out
    assert "2 techniques covered by 2 enabled rules" in out
    document = json.loads(layer.read_text())
    assert document["versions"]["layer"] == "4.5"
    assert document["domain"] == "enterprise-attack"
    techniques = {t["techniqueID"]: t for t in document["techniques"]}
    assert techniques["T1033"]["score"] == 1
    assert "Whoami Execution" in techniques["T1033"]["comment"]
    ok(vigil(imported, "rules", "disable", WHOAMI))
    rows = ok(vigil(imported, "rules", "coverage", "-o", "json")).out.splitlines()
    assert [json.loads(r) for r in rows] == [{"technique": "T1003.001", "rules": 1}]


def test_empty_catalog(tmp_path: Path) -> None:
    out = ok(vigil(tmp_path / "data", "rules", "list")).out
    assert "0 rules" in out and "vigil rules import" in out
    assert "0 techniques covered" in ok(vigil(tmp_path / "data", "rules", "coverage")).out


def test_user_mistakes_are_one_line(imported: Path, tmp_path: Path) -> None:
    user_error(vigil(imported, "rules", "show", "ffffffff"), "no rule with id")
    user_error(vigil(imported, "rules", "show", "3b"), "several rules")
    user_error(vigil(imported, "rules", "enable", "*nothing*"), "no rule id or title matches")
    user_error(vigil(imported, "rules", "list", "--level", "severe"), "unknown level")
    user_error(vigil(imported, "rules", "list", "-o", "xml"), "--output")
    user_error(vigil(imported, "rules", "import", str(tmp_path / "missing")), "no such file")
    user_error(vigil(imported, "rules", "coverage", "--layer", str(tmp_path / "no" / "dir.json")),
               "cannot write")


def test_rules_test_passes_and_fails_on_sample_logs(tmp_path: Path) -> None:
    rule = tmp_path / "whoami.yml"
    rule.write_text(rule_text(WHOAMI, "Whoami Execution", "\\whoami.exe"))
    logs = tmp_path / "sample.json"
    logs.write_text(json.dumps({"@timestamp": "2024-05-01T10:00:00Z", "EventID": 1,
                                "Channel": "Microsoft-Windows-Sysmon/Operational",
                                "Hostname": "pc1", "Image": "C:\\Windows\\System32\\whoami.exe"})
                    + "\n")
    passed = ok(vigil(tmp_path / "d", "rules", "test", "--rule", str(rule), str(logs)))
    assert "PASS" in passed.out and "1 detections" in passed.out
    failed = vigil(tmp_path / "d", "rules", "test", "--rule", str(rule), str(logs), "--expect", "2")
    assert failed.code == 1 and "FAIL" in failed.out


FAILED = "53ba33fd-3a50-4468-a5ef-c583635cfa92"
SCANNER_FILTER = "6b1e4d2a-8f3c-4e1b-9a0d-2c3b4a5d6e7f"
MANY_FAILED = "0e95725d-7320-415d-80f7-004da920fc11"
PACK = f"""title: Failed logon
id: {FAILED}
name: failed_login
author: Jane Analyst
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
id: {SCANNER_FILTER}
logsource:
    product: windows
    service: security
filter:
    rules:
        - failed_login
    selection:
        TargetUserName: scanner
    condition: not selection
---
title: Many failed logons
id: {MANY_FAILED}
name: many_failed
author: Jane Analyst
level: high
correlation:
    type: event_count
    rules:
        - failed_login
    group-by:
        - TargetUserName
    timespan: 5m
    condition:
        gte: 3
"""


def _logons(path: Path, users: list[str]) -> Path:
    lines = [json.dumps({"@timestamp": f"2024-05-01T10:0{n}:00Z", "EventID": 4625,
                         "Channel": "Security", "Hostname": "dc1", "TargetUserName": user})
             for n, user in enumerate(users)]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_filters_and_correlations_in_the_catalog_and_the_retro_hunt(tmp_path: Path) -> None:
    data = tmp_path / "data"
    (tmp_path / "pack.yml").write_text(PACK)
    run = ok(vigil(data, "rules", "import", str(tmp_path / "pack.yml")))
    assert "1 filters and 1 correlation rules imported: 2 new, 0 updated, 0 unchanged" in run.out
    table = ok(vigil(data, "rules", "list")).out
    assert "1 rules, 1 filters, 1 correlations" in table
    rows = [json.loads(line) for line in ok(vigil(data, "rules", "list", "--kind", "correlation",
                                                    "-o", "json")).out.splitlines()]
    assert [(r["id"], r["kind"], r["compiled"]) for r in rows] == [(MANY_FAILED, "correlation",
                                                                    "yes")]
    shown = ok(vigil(data, "rules", "show", SCANNER_FILTER)).out
    assert "kind:       filter" in shown and "TargetUserName: scanner" in shown

    logs = _logons(tmp_path / "logons.json", ["bob", "scanner", "bob", "scanner", "bob",
                                              "scanner"])
    ok(vigil(data, "ingest", str(logs), "-q"))
    hits = [json.loads(line) for line in ok(vigil(data, "hunt", "-o", "json")).out.splitlines()]
    assert [(h["correlation"], h["group"]) for h in hits] == [
        ("Many failed logons", {"TargetUserName": "bob"})]  # the counted rule is silenced
    assert "1 new alerts recorded" in ok(vigil(data, "hunt", "--alerts", "-o", "json")).err
    assert "0 new alerts recorded" in ok(vigil(data, "hunt", "--alerts", "-o", "json")).err

    assert "1 rules matched, 1 disabled" in ok(vigil(data, "rules", "disable", "*scanner*")).out
    hits = [json.loads(line) for line in ok(vigil(data, "hunt", "-o", "json")).out.splitlines()]
    assert sorted(h["group"]["TargetUserName"] for h in hits) == ["bob", "scanner"]
    assert "1 rules matched, 1 disabled" in ok(vigil(data, "rules", "disable", "many_failed")).out
    found = [json.loads(line) for line in ok(vigil(data, "hunt", "-o", "json")).out.splitlines()]
    assert len(found) == 6 and all(f["rule_id"] == FAILED for f in found)
    disabled = ok(vigil(data, "rules", "list", "--disabled", "-o", "json")).out.splitlines()
    assert sorted(json.loads(line)["kind"] for line in disabled) == ["correlation", "filter"]
    user_error(vigil(data, "rules", "list", "--kind", "macro"), "unknown kind")
