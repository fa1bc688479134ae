"""Loading Sigma rules: files, folders, zips, globs; every problem with its file and line."""

from __future__ import annotations

import hashlib
import zipfile
from pathlib import Path

import pytest
from sigma.correlations import SigmaCorrelationRule
from sigma.filters import SigmaFilter

from vigil.core.errors import InputError
from vigil.detect.loader import LoadResult, RuleProblem, load, locate

GOOD_ID = "0d9f7e5a-1c2b-4d3e-8f40-5a6b7c8d9e01"
OTHER_ID = "0d9f7e5a-1c2b-4d3e-8f40-5a6b7c8d9e02"


def rule_text(rule_id: str = GOOD_ID, title: str = "Whoami run", *, status: str = "test",
              detection: str | None = None, tags: str = "") -> str:
    detection = detection if detection is not None else (
        "detection:\n"
        "    selection:\n"
        "        Image|endswith: '\\whoami.exe'\n"
        "    condition: selection\n")
    return (f"title: {title}\n"
            f"id: {rule_id}\n"
            f"status: {status}\n"
            "author: Vigil tests\n"
            "logsource:\n"
            "    product: windows\n"
            "    category: process_creation\n"
            f"{detection}"
            f"{tags}"
            "level: medium\n")


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def only_problem(result: LoadResult) -> RuleProblem:
    assert len(result.problems) == 1, result.problems
    return result.problems[0]


def test_one_rule_with_its_text_and_hash(tmp_path: Path) -> None:
    text = rule_text()
    path = write(tmp_path / "whoami.yml", text)
    result = load([path])
    assert result.problems == []
    assert result.files == 1
    [loaded] = result.rules
    assert loaded.id == GOOD_ID
    assert loaded.path == str(path)
    assert loaded.yaml == text
    assert loaded.sha256 == hashlib.sha256(text.encode()).hexdigest()
    assert loaded.line == 1
    assert loaded.rule.title == "Whoami run"
    assert loaded.status == "test"


def test_invalid_yaml_reports_the_line(tmp_path: Path) -> None:
    text = rule_text().replace("    condition: selection\n", "    condition: [selection\n")
    path = write(tmp_path / "broken.yml", text)
    result = load([path])
    problem = only_problem(result)
    assert result.rules == []
    assert problem.path == str(path)
    assert problem.reason.startswith("invalid YAML")
    condition_line = text.splitlines().index("    condition: [selection") + 1
    assert problem.line is not None and condition_line <= problem.line <= condition_line + 1
    assert str(problem).startswith(f"{path}:{problem.line}: invalid YAML")


def test_bad_indentation_is_reported_at_its_line(tmp_path: Path) -> None:
    path = write(tmp_path / "indent.yml", "title: x\n  id: y\nlevel: low\n")
    problem = only_problem(load([path]))
    assert problem.line == 2
    assert "mapping values are not allowed" in problem.reason


def test_unclosed_at_end_of_file_points_where_it_began(tmp_path: Path) -> None:
    path = write(tmp_path / "eof.yml", "title: broken\nid: [unclosed\n")
    problem = only_problem(load([path]))
    assert problem.line == 2
    quoted = write(tmp_path / "quote.yml", "title: x\ndetection:\n    sel: 'open\n")
    assert only_problem(load([quoted])).line == 3


def test_unknown_modifier_points_at_its_key(tmp_path: Path) -> None:
    detection = ("detection:\n"
                 "    selection:\n"
                 "        Image|endswith: '\\cmd.exe'\n"
                 "        CommandLine|frobnicate: 'whoami'\n"
                 "    condition: selection\n")
    text = rule_text(detection=detection)
    path = write(tmp_path / "modifier.yml", text)
    result = load([path])
    problem = only_problem(result)
    assert result.rules == []
    assert "Unknown modifier 'frobnicate'" in problem.reason
    assert problem.line == text.splitlines().index("        CommandLine|frobnicate: 'whoami'") + 1
    assert " in " not in problem.reason  # pySigma's own location suffix is dropped


def test_rule_without_detection(tmp_path: Path) -> None:
    path = write(tmp_path / "nodetect.yml", "# a comment first\n" + rule_text(detection=""))
    problem = only_problem(load([path]))
    assert "detection" in problem.reason
    assert problem.line == 2  # where the rule starts


def test_schema_errors_point_at_their_keys(tmp_path: Path) -> None:
    text = rule_text().replace("level: medium", "level: extreme").replace("status: test",
                                                                          "status: whenever")
    path = write(tmp_path / "schema.yml", text)
    result = load([path])
    lines = {p.reason: p.line for p in result.problems}
    assert result.rules == []
    lines_of = {line.split(":")[0]: n for n, line in enumerate(text.splitlines(), 1)}
    assert lines["'extreme' is not a valid Sigma rule level"] == lines_of["level"]
    assert lines["'whenever' is not a valid Sigma rule status"] == lines_of["status"]


def test_rule_without_id_and_duplicate_ids(tmp_path: Path) -> None:
    write(tmp_path / "a.yml", rule_text(title="First"))
    write(tmp_path / "b.yml", rule_text(title="Second"))
    write(tmp_path / "c.yml", rule_text().replace(f"id: {GOOD_ID}\n", ""))
    result = load([tmp_path])
    assert [r.rule.title for r in result.rules] == ["First"]
    reasons = {Path(p.path).name: (p.line, p.reason) for p in result.problems}
    assert reasons["b.yml"][0] == 2
    assert f"duplicate rule id {GOOD_ID} (first in {tmp_path / 'a.yml'})" in reasons["b.yml"][1]
    assert reasons["c.yml"] == (1, "the rule has no id (Vigil needs one)")


def test_not_a_mapping_and_not_utf8(tmp_path: Path) -> None:
    write(tmp_path / "list.yml", "- one\n- two\n")
    (tmp_path / "latin1.yml").write_bytes(b"title: caf\xe9\nid: x\n")
    result = load([tmp_path])
    problems = {Path(p.path).name: p for p in result.problems}
    assert problems["list.yml"].line == 1
    assert "must be a YAML mapping" in problems["list.yml"].reason
    assert problems["latin1.yml"].line == 1
    assert "not UTF-8" in problems["latin1.yml"].reason


def test_a_folder_with_good_and_bad_files(tmp_path: Path) -> None:
    write(tmp_path / "good" / "one.yml", rule_text(GOOD_ID, "One"))
    write(tmp_path / "good" / "deeper" / "two.yaml", rule_text(OTHER_ID, "Two"))
    write(tmp_path / "bad" / "yaml.yml", "title: [unclosed\n")
    write(tmp_path / "bad" / "nodetect.yml", rule_text("0d9f7e5a-1c2b-4d3e-8f40-5a6b7c8d9e03",
                                                       detection=""))
    write(tmp_path / "README.md", "not a rule")
    write(tmp_path / ".git" / "hidden.yml", "title: [unclosed\n")
    result = load([tmp_path])
    assert sorted(r.rule.title for r in result.rules) == ["One", "Two"]
    assert sorted(Path(p.path).name for p in result.problems) == ["nodetect.yml", "yaml.yml"]
    assert all(p.line is not None for p in result.problems)
    assert result.files == 4


def test_zip_archive(tmp_path: Path) -> None:
    archive = tmp_path / "rules.zip"
    with zipfile.ZipFile(archive, "w") as zipped:
        zipped.writestr("sigma/one.yml", rule_text(GOOD_ID, "One"))
        zipped.writestr("sigma/sub/two.yaml", rule_text(OTHER_ID, "Two"))
        zipped.writestr("sigma/broken.yml", "title: x\n  bad: indent\n")
        zipped.writestr("sigma/notes.txt", "ignored")
        zipped.writestr("__MACOSX/sigma/._one.yml", "ignored")
    result = load([archive])
    assert sorted(r.rule.title for r in result.rules) == ["One", "Two"]
    assert {r.path for r in result.rules} == {f"{archive}!sigma/one.yml", f"{archive}!sigma/sub/two.yaml"}
    problem = only_problem(result)
    assert (problem.path, problem.line) == (f"{archive}!sigma/broken.yml", 2)
    assert str(problem).startswith(f"{archive}!sigma/broken.yml:2: invalid YAML")


def test_a_damaged_zip_is_a_problem_not_a_crash(tmp_path: Path) -> None:
    (tmp_path / "bad.zip").write_bytes(b"PK\x03\x04" + b"\0" * 40)
    write(tmp_path / "good.yml", rule_text())
    result = load([tmp_path / "bad.zip", tmp_path / "good.yml"])
    assert len(result.rules) == 1
    assert "zip" in only_problem(result).reason


def test_globs_and_missing_paths(tmp_path: Path) -> None:
    write(tmp_path / "rules-a" / "one.yml", rule_text(GOOD_ID, "One"))
    write(tmp_path / "rules-b" / "two.yml", rule_text(OTHER_ID, "Two"))
    write(tmp_path / "other" / "three.yml", rule_text("0d9f7e5a-1c2b-4d3e-8f40-5a6b7c8d9e03"))
    result = load([str(tmp_path / "rules-*")])
    assert sorted(r.rule.title for r in result.rules) == ["One", "Two"]
    assert len(load([str(tmp_path / "**" / "*.yml")]).rules) == 3
    same_twice = load([tmp_path / "rules-a", str(tmp_path / "rules-a" / "*.yml"),
                       tmp_path / "rules-b" / ".." / "rules-a" / "one.yml"])
    assert len(same_twice.rules) == 1 and same_twice.problems == []
    with pytest.raises(InputError, match="no such file or folder"):
        load([tmp_path / "missing"])
    with pytest.raises(InputError, match="no such file or folder"):
        load([str(tmp_path / "nothing-*")])


def test_multi_document_file_splits_rules_correlations_and_filters(tmp_path: Path) -> None:
    text = (rule_text(GOOD_ID, "Base").replace("status: test\n", "status: test\nname: base_rule\n")
            + "---\n"
            "title: Many whoami\n"
            "id: 0d9f7e5a-1c2b-4d3e-8f40-5a6b7c8d9e10\n"
            "correlation:\n"
            "    type: event_count\n"
            "    rules: [base_rule]\n"
            "    group-by: [User]\n"
            "    timespan: 5m\n"
            "    condition: {gte: 10}\n"
            "---\n"
            "title: Not for admins\n"
            "id: 0d9f7e5a-1c2b-4d3e-8f40-5a6b7c8d9e11\n"
            "logsource: {product: windows, category: process_creation}\n"
            "filter:\n"
            "    rules: [base_rule]\n"
            "    selection: {User: admin}\n"
            "    condition: not selection\n"
            "---\n"
            + rule_text(OTHER_ID, "Second"))
    path = write(tmp_path / "multi.yml", text)
    result = load([path])
    assert result.problems == []
    assert [r.rule.title for r in result.rules] == ["Base", "Second"]
    assert [type(c) for c in result.correlations] == [SigmaCorrelationRule]
    assert [type(f) for f in result.filters] == [SigmaFilter]
    second = result.rules[1]
    assert second.yaml == rule_text(OTHER_ID, "Second")
    assert text.splitlines()[second.line - 1] == "title: Second"
    assert second.sha256 == hashlib.sha256(second.yaml.encode()).hexdigest()


def test_problem_in_second_document_has_its_line(tmp_path: Path) -> None:
    bad = rule_text(OTHER_ID, "Bad").replace("Image|endswith", "Image|nonsense")
    text = rule_text(GOOD_ID, "Good") + "---\n" + bad
    path = write(tmp_path / "two.yml", text)
    result = load([path])
    assert [r.rule.title for r in result.rules] == ["Good"]
    problem = only_problem(result)
    assert text.splitlines()[(problem.line or 0) - 1].strip().startswith("Image|nonsense")


def test_a_document_that_breaks_pysigma_keeps_the_others(tmp_path: Path) -> None:
    text = rule_text(GOOD_ID, "Good") + "---\n- not\n- a rule\n"
    path = write(tmp_path / "mixed.yml", text)
    result = load([path])
    assert [r.rule.title for r in result.rules] == ["Good"]
    problem = only_problem(result)
    assert problem.line == len(rule_text().splitlines()) + 2
    assert "mapping" in problem.reason


def test_deprecated_rules_are_loaded_and_reported(tmp_path: Path) -> None:
    write(tmp_path / "old.yml", rule_text(GOOD_ID, "Old", status="deprecated"))
    write(tmp_path / "new.yml", rule_text(OTHER_ID, "New"))
    result = load([tmp_path])
    assert len(result.rules) == 2
    assert [r.rule.title for r in result.retired] == ["Old"]


def test_locate_finds_the_line_a_message_names(tmp_path: Path) -> None:
    detection = ("detection:\n"
                 "    selection:\n"
                 "        Image|endswith: '\\cmd.exe'\n"
                 "    filter:\n"
                 "        User|expand: '%admins%'\n"
                 "    condition: selection and not filter\n")
    text = rule_text(OTHER_ID, "Second", detection=detection)
    path = write(tmp_path / "two.yml", rule_text(GOOD_ID, "First") + "---\n" + text)
    second = load([path]).rules[1]
    line = locate(second, "field 'User': unresolved placeholder %admins%")
    assert path.read_text().splitlines()[line - 1].strip() == "User|expand: '%admins%'"
    assert locate(second, "something without specifics") == second.line + text.splitlines().index(
        "detection:")


@pytest.mark.slow
def test_sigmahq_corpus_loads_cleanly() -> None:
    from helpers import datasets

    result = load([str(datasets() / "sigma" / "rules*")])
    print(f"SigmaHQ: {result.files} files, {len(result.rules)} rules, "
          f"{len(result.problems)} problems")
    assert result.problems == []
    assert len(result.rules) == result.files >= 3700
