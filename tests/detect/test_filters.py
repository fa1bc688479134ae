"""Tests of Sigma filters applied to compiled rules, run through the engine on a real store.

A filter tunes only the rules it names (by id, ``name`` or title, or ``any``), only when its
log source agrees, and adds its condition as what the rule keeps (pySigma's semantics: an
exclusion is written ``not selection``). The result must match what pySigma itself does
when it applies the filter to the Sigma rule before compilation.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from sigma.collection import SigmaCollection
from sigma.filters import SigmaFilter
from sigma.rule import SigmaRule

from vigil.core.errors import RuleError
from vigil.detect.compiler import compile_rule, rule_meta
from vigil.detect.engine import Engine
from vigil.detect.filters import apply_filters, compile_filter, filter_applies, unused_filters
from vigil.detect.loader import load
from vigil.detect.types import CompiledRule
from vigil.events.models import Event, LogSource
from vigil.store.duck import EventStore

T0 = datetime(2024, 5, 1, 10, 0, tzinfo=UTC)
PROCESS = LogSource("windows", "process_creation", None)
WHOAMI_ID = "6f3e2987-db24-4c78-a860-b4f4095a7095"
RAR_ID = "df0841c0-9846-4e9f-ad8a-7df91571771b"

RULES = f"""
title: Whoami execution
id: {WHOAMI_ID}
name: whoami_exec
logsource: {{product: windows, category: process_creation}}
detection:
    sel: {{Image|endswith: '\\\\whoami.exe'}}
    condition: sel
level: high
---
title: Suspicious tool
id: {RAR_ID}
name: suspicious_tool
logsource: {{product: windows, category: process_creation}}
detection:
    sel: {{Image|endswith: ['\\\\whoami.exe', '\\\\rar.exe']}}
    condition: sel
level: medium
"""


def _filter(rules: Any, condition: str = "not admins", logsource: dict[str, str] | None = None,
            **selections: Any) -> str:
    body = {"rules": rules, **(selections or {"admins": {"User|startswith": "adm_"}}),
            "condition": condition}
    return yaml.safe_dump({"title": "Tune admins", "id": "0e95725d-7320-415d-80f7-004da920fc11",
                           "logsource": logsource or {"product": "windows"}, "filter": body})


def _compiled(text: str = RULES) -> tuple[list[CompiledRule], dict[str, str]]:
    collection = SigmaCollection.from_yaml(text, collect_filters=True, resolve_references=False)
    rules = [r for r in collection.rules if isinstance(r, SigmaRule)]
    compiled = [compile_rule(r, rule_meta(r, "rules.yml")) for r in rules]
    return compiled, {c.meta.id: str(r.name) for c, r in zip(compiled, rules, strict=True)}


def _events() -> list[Event]:
    rows = [("C:\\Windows\\System32\\whoami.exe", "adm_root"),
            ("C:\\Windows\\System32\\whoami.exe", "bob"),
            ("C:\\Tools\\rar.exe", "adm_root"),
            ("C:\\Windows\\System32\\whoami.exe", None)]
    events = []
    for index, (image, user) in enumerate(rows):
        fields: dict[str, Any] = {"Image": image}
        if user is not None:
            fields["User"] = user
        events.append(Event(f"p{index}", T0 + timedelta(seconds=index), T0, "ws1", PROCESS,
                            "json", fields, repr(fields)))
    return events


def _matches(rules: Sequence[CompiledRule]) -> set[tuple[str, str]]:
    store = EventStore(None)
    store.write(_events())
    return {(d.rule.title, d.event_id) for d in Engine(rules).run(store)}


def _sigma_filter(text: str) -> SigmaFilter:
    return SigmaFilter.from_yaml(text)


BASELINE = {("Whoami execution", "p0"), ("Whoami execution", "p1"), ("Whoami execution", "p3"),
            ("Suspicious tool", "p0"), ("Suspicious tool", "p1"), ("Suspicious tool", "p2"),
            ("Suspicious tool", "p3")}


def test_unfiltered_baseline() -> None:
    assert _matches(_compiled()[0]) == BASELINE


@pytest.mark.parametrize("reference", [WHOAMI_ID, WHOAMI_ID.upper(), "whoami_exec",
                                       "Whoami execution"])
def test_filter_suppresses_matches_of_the_named_rule_only(reference: str) -> None:
    rules, names = _compiled()
    filtered = apply_filters(rules, [_sigma_filter(_filter([reference]))], names)
    assert filtered[1] is rules[1]
    assert filtered[0].meta == rules[0].meta
    assert filtered[0].fields == {"Image", "User"}
    assert _matches(filtered) == BASELINE - {("Whoami execution", "p0")}


def test_filter_for_any_rule_of_the_log_source() -> None:
    rules, names = _compiled()
    choices: list[str | list[str]] = ["any", []]
    for rules_field in choices:
        filtered = apply_filters(rules, [_sigma_filter(_filter(rules_field))], names)
        assert _matches(filtered) == BASELINE - {("Whoami execution", "p0"),
                                                 ("Suspicious tool", "p0"),
                                                 ("Suspicious tool", "p2")}


@pytest.mark.parametrize("logsource", [{"product": "linux"},
                                       {"product": "windows", "category": "file_event"},
                                       {"product": "windows", "service": "security"}])
def test_filter_with_another_log_source_does_not_apply(logsource: dict[str, str]) -> None:
    rules, names = _compiled()
    filtered = apply_filters(rules, [_sigma_filter(_filter("any", logsource=logsource))], names)
    assert filtered == rules


def test_log_source_comparison_ignores_case() -> None:
    rules, names = _compiled()
    text = _filter([RAR_ID], logsource={"product": "Windows", "category": "PROCESS_CREATION"})
    compiled = compile_filter(_sigma_filter(text), "tune.yml")
    assert [filter_applies(compiled, r.meta, names[r.meta.id]) for r in rules] == [False, True]


def test_missing_filter_field_keeps_the_event() -> None:
    rules, names = _compiled()
    filtered = apply_filters(rules, [_sigma_filter(_filter([WHOAMI_ID]))], names)
    assert ("Whoami execution", "p3") in _matches(filtered)  # p3 has no User field


def test_several_filters_combine() -> None:
    rules, names = _compiled()
    second = _filter([RAR_ID], "not bob", bob={"User": "bob"})
    filtered = apply_filters(rules, [_sigma_filter(_filter([RAR_ID])), _sigma_filter(second)],
                             names)
    assert _matches(filtered) == BASELINE - {("Suspicious tool", "p0"), ("Suspicious tool", "p1"),
                                             ("Suspicious tool", "p2")}


def test_same_result_as_pysigma_applying_the_filter() -> None:
    text = _filter(["whoami_exec"], "not 1 of admin*", admin_a={"User|startswith": "adm_"},
                   admin_b={"User": "bob"})
    applied = SigmaCollection.from_yaml(RULES + "---\n" + text)  # pySigma applies it here
    by_pysigma = [compile_rule(r, rule_meta(r, "rules.yml"))
                  for r in applied.rules if isinstance(r, SigmaRule)]
    rules, names = _compiled()
    ours = apply_filters(rules, [_sigma_filter(text)], names)
    assert _matches(ours) == _matches(by_pysigma)
    assert _matches(ours) == BASELINE - {("Whoami execution", "p0"), ("Whoami execution", "p1")}


def test_filter_without_not_narrows_and_warns() -> None:
    rules, names = _compiled()
    filtered = apply_filters(rules, [_sigma_filter(_filter([WHOAMI_ID], "admins"))], names)
    assert _matches(filtered) == BASELINE - {("Whoami execution", "p1"), ("Whoami execution", "p3")}
    assert any("keeps only the events it selects" in w for w in filtered[0].warnings)
    assert not filtered[1].warnings


def test_invalid_filters_raise_rule_errors() -> None:
    missing_condition = yaml.safe_dump({"title": "Broken", "logsource": {"product": "windows"},
                                        "filter": {"rules": "any", "sel": {"User": "x"}}})
    with pytest.raises(RuleError, match="condition"):
        compile_filter(SigmaFilter.from_yaml(missing_condition, collect_errors=True), "bad.yml")
    bad_modifier = _filter("any", "not sel", sel={"User|nonsense": "x"})
    with pytest.raises(RuleError, match="nonsense") as caught:
        compile_filter(SigmaFilter.from_yaml(bad_modifier, collect_errors=True), "bad.yml")
    assert str(caught.value).startswith("bad.yml")
    unknown_identifier = _filter("any", "not other")
    with pytest.raises(RuleError, match="invalid Sigma filter: Detection 'other' not defined"):
        compile_filter(SigmaFilter.from_yaml(unknown_identifier, collect_errors=True), "bad.yml")


def test_unused_filters_are_reported() -> None:
    rules, names = _compiled()
    used = compile_filter(_sigma_filter(_filter([WHOAMI_ID])), "used.yml")
    unused = compile_filter(_sigma_filter(_filter(["no_such_rule"])), "unused.yml")
    assert unused_filters(rules, [used, unused], names) == [
        "unused.yml: filter 'Tune admins' applies to none of the loaded rules"]


def test_filters_from_the_loader_keep_their_file(tmp_path: Path) -> None:
    path = tmp_path / "mf_admins.yml"
    path.write_text(_filter([WHOAMI_ID]))
    loaded = load([str(path)])
    (compiled,) = [compile_filter(f) for f in loaded.filters]
    assert compiled.path == str(path)
    assert compiled.targets == (WHOAMI_ID,)
