"""Tests of the Sigma → DuckDB SQL compiler.

Golden files (``golden/<case>.yml``): a Sigma rule, then a second YAML document with sample
events that must (``match``) and must not (``no_match``) match; ``golden/<case>.sql`` holds the
expected SQL. Each case compiles the rule, compares the SQL, then runs it in DuckDB over a table
built from the samples, the way the engine lays events out (``"l:F"`` lower-cased text,
``"c:F"`` original text, NULL where an event lacks the field). Set ``VIGIL_UPDATE_GOLDEN=1`` to
rewrite the ``.sql`` files after a deliberate change, and review the diff.

The corpus test compiles every rule of the SigmaHQ snapshot and has DuckDB bind every result.
"""

from __future__ import annotations

import json
import os
import random
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from unittest import mock

import duckdb
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from sigma.collection import SigmaCollection
from sigma.policy.profiles import TrustedPolicy
from sigma.rule import SigmaRule

from helpers import datasets
from vigil.core.errors import InputError, RuleError
from vigil.detect import compiler_merge, compiler_values
from vigil.detect.compiler import check_sql, compile_rule, rule_meta
from vigil.detect.compiler_merge import regex_escape
from vigil.detect.compiler_values import like_pattern, sql_literal
from vigil.detect.types import RAW_FIELD, CompiledRule, cased_column, lower_column
from vigil.events.models import LogSource

GOLDEN = Path(__file__).parent / "golden"
CASES = sorted(p.stem for p in GOLDEN.glob("*.yml"))


# --- helpers -------------------------------------------------------------------------------


def compile_yaml(text: str, path: str = "test.yml", **kwargs: Any) -> CompiledRule:
    rule = SigmaRule.from_yaml(text, collect_errors=True, **kwargs)
    return compile_rule(rule, rule_meta(rule, path))


def as_text(value: Any) -> str | None:
    """A field value as the store keeps it: text, booleans as true/false, JSON for the rest."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    return json.dumps(value)


def event_table(con: duckdb.DuckDBPyConnection, events: list[dict[str, Any]], fields: set[str]) -> None:
    """Table ``events`` with a ``"c:F"``/``"l:F"`` pair per field (one spelling per case-folded name)."""
    names: dict[str, str] = {}
    for name in [*sorted(fields), *(k for e in events for k in e)]:
        names.setdefault(name.lower(), name)
    columns = list(names.values())
    cased = ", ".join(f"{cased_column(n)} VARCHAR" for n in columns)
    con.execute(f"CREATE TABLE raw_events (row_id INTEGER, {cased})")
    for row_id, event in enumerate(events):
        folded = {k.lower(): v for k, v in event.items()}
        folded.setdefault(RAW_FIELD, json.dumps(event, default=str))
        values = [as_text(folded.get(n.lower())) for n in columns]
        con.execute(f"INSERT INTO raw_events VALUES (?{', ?' * len(columns)})", [row_id, *values])
    selected = ", ".join(f"{cased_column(n)}, lower({cased_column(n)}) AS {lower_column(n)}" for n in columns)
    con.execute(f"CREATE TABLE events AS SELECT row_id, {selected} FROM raw_events")


def evaluate(compiled: CompiledRule, events: list[dict[str, Any]]) -> list[bool | None]:
    """The value of the rule's SQL for each event (a NULL would show up as None)."""
    con = duckdb.connect()
    try:
        event_table(con, events, set(compiled.fields))
        rows = con.execute(f"SELECT row_id, {compiled.sql} FROM events ORDER BY row_id").fetchall()
        return [row[1] for row in rows]
    finally:
        con.close()


# --- golden cases --------------------------------------------------------------------------


@pytest.mark.parametrize("case", CASES)
def test_golden(case: str) -> None:
    rule_doc, samples = list(yaml.safe_load_all((GOLDEN / f"{case}.yml").read_text()))
    rule = SigmaRule.from_dict(rule_doc, collect_errors=True)
    compiled = compile_rule(rule, rule_meta(rule, f"golden/{case}.yml"))
    expected_sql = GOLDEN / f"{case}.sql"
    if os.environ.get("VIGIL_UPDATE_GOLDEN") == "1":
        expected_sql.write_text(compiled.sql + "\n")
    assert compiled.sql == expected_sql.read_text().strip()

    events = [*samples.get("match", []), *samples.get("no_match", [])]
    expected = [True] * len(samples.get("match", [])) + [False] * len(samples.get("no_match", []))
    got = evaluate(compiled, events)
    wrong = [(e, want, have) for e, want, have in zip(events, expected, got, strict=True) if have != want]
    assert not wrong, f"{case}: (event, expected, got): {wrong}"
    assert all(isinstance(value, bool) for value in got), "a rule must never evaluate to NULL"


# --- specific behaviour --------------------------------------------------------------------

SIMPLE = """
title: Simple
id: 5f3c1f0e-6a2b-4c1d-9e8f-0a1b2c3d4e5f
status: test
description: A test rule
author: Vigil tests
references: [https://example.org/a]
tags: [attack.execution, attack.t1059.001, cve.2023-23397]
falsepositives: [Admins]
level: high
logsource: {product: windows, category: process_creation}
detection:
  selection:
    CommandLine|contains: 'x'
  condition: selection
"""


def test_rule_meta() -> None:
    rule = SigmaRule.from_yaml(SIMPLE)
    meta = rule_meta(rule, "rules/simple.yml")
    assert meta.id == "5f3c1f0e-6a2b-4c1d-9e8f-0a1b2c3d4e5f"
    assert (meta.title, meta.level, meta.status) == ("Simple", "high", "test")
    assert meta.author == "Vigil tests"
    assert meta.description == "A test rule"
    assert meta.references == ("https://example.org/a",)
    assert meta.tags == ("attack.execution", "attack.t1059.001", "cve.2023-23397")
    assert meta.techniques == ("T1059.001",)
    assert meta.falsepositives == ("Admins",)
    assert meta.logsource == LogSource("windows", "process_creation", None)
    assert meta.path == "rules/simple.yml"


def test_rule_meta_defaults() -> None:
    text = SIMPLE.replace("level: high\n", "").replace("status: test\n", "")
    meta = rule_meta(SigmaRule.from_yaml(text), "x.yml")
    assert meta.level == "medium"
    assert meta.status is None


def test_fields_include_raw_for_keywords_and_both_fieldref_sides() -> None:
    compiled = compile_yaml(SIMPLE.replace("CommandLine|contains: 'x'", "A|fieldref: B").replace(
        "condition: selection", "kw: ['evil']\n  condition: selection or kw"))
    assert compiled.fields == frozenset({"A", "B", RAW_FIELD})
    assert compiled.meta.title == "Simple"


def test_or_of_equalities_becomes_in_list() -> None:
    compiled = compile_yaml(SIMPLE.replace("CommandLine|contains: 'x'", "EventID: [1, 2, 1]"))
    assert compiled.sql == """coalesce("c:EventID" IN ('1', '2'), FALSE)"""


def test_double_negation_cancels() -> None:
    text = SIMPLE.replace("condition: selection", "condition: not not selection")
    assert compile_yaml(text).sql == """coalesce(contains("l:CommandLine", 'x'), FALSE)"""


def test_sql_literal_and_like_pattern() -> None:
    assert sql_literal("it's") == "'it''s'"
    assert sql_literal("a\x00b") == "('a' || chr(0) || 'b')"
    assert sql_literal("\x00x\x00") == "(chr(0) || 'x' || chr(0))"
    assert like_pattern(["50%_", "\\"]) == "50\\%\\_\\\\"


def test_check_sql_rejects_broken_sql() -> None:
    check_sql("""coalesce("l:a" = 'x', FALSE)""")
    with pytest.raises(RuleError, match="does not parse"):
        check_sql("coalesce(")


def test_ipv6_cidr_warns() -> None:
    compiled = compile_yaml(SIMPLE.replace("CommandLine|contains: 'x'", "Ip|cidr: 'fe80::/10'"))
    assert any("IPv6" in w for w in compiled.warnings)
    assert compile_yaml(SIMPLE).warnings == ()


def sigma_escape(text: str) -> str:
    """``text`` as a Sigma string that means exactly ``text`` (no wildcards)."""
    return text.replace("\\", "\\\\").replace("*", "\\*").replace("?", "\\?")


@settings(max_examples=150, deadline=None)
@given(st.text(min_size=1, max_size=12))
def test_any_text_matches_itself_and_nothing_else(text: str) -> None:
    """Escaping (Sigma, SQL literal, LIKE) is exact for arbitrary text, NUL and quotes included."""
    value = sigma_escape(text)
    rule = SigmaRule.from_dict({
        "title": "Property", "logsource": {"category": "test"},
        "detection": {
            "sel_eq": {"Kind": "eq", "F": value},
            "sel_contains": {"Kind": "contains", "F|contains": value},
            "sel_like": {"Kind": "like", "F": "x?" + value + "*"},
            "condition": "1 of sel_*",
        },
    })
    compiled = compile_rule(rule, rule_meta(rule, "property.yml"))
    events = [
        {"Kind": "eq", "F": text}, {"Kind": "contains", "F": f"<{text}>"},
        {"Kind": "like", "F": f"xy{text}z"},
        {"Kind": "eq", "F": text + "z"}, {"Kind": "contains", "F": text[1:]},
        {"Kind": "like", "F": f"x{text}"},
    ]
    assert evaluate(compiled, events) == [True, True, True, False, False, False]


# --- merged value lists (regexp_matches) ---------------------------------------------------

_TRICKY = [*"\\.+*?()|[]{}^$'\"%_-:# \n\r\t\x00\x01\x7faAzZ09", "é", "É", "İ", "ß", "€", "😀",
           "\u2028", "\u0301", "\u200b", "\x85"]
_META = "\\.+*?()|[]{}^$"
_CHARS = st.one_of(st.sampled_from(_META), st.sampled_from(_TRICKY),
                   st.characters(exclude_categories=["Cs"]))
_ONE_CHAR = st.one_of(st.sampled_from(["\n", "\r", "\x00", "x", "é", "😀"]), _CHARS)
_TEXTS = st.text(_CHARS, min_size=1, max_size=6)
_CASES = st.sampled_from([str.upper, str.lower, str.swapcase])
Segment = tuple[str, str]
"""A piece of a generated Sigma value: ("text", raw text) or a wildcard ("?", "") / ("*", "")."""


def _sigma(value: list[Segment]) -> str:
    return "".join(sigma_escape(text) if kind == "text" else kind for kind, text in value)


def _realize(value: list[Segment], draw: st.DrawFn) -> str:
    """A text that the value matches (wildcards filled in at random)."""
    fill = {"?": st.one_of(st.just("\n"), _ONE_CHAR), "*": st.text(_CHARS, max_size=3)}
    return "".join(text if kind == "text" else draw(fill[kind]) for kind, text in value)


def _near(text: str, draw: st.DrawFn) -> str:
    """``text`` or a near miss: a character replaced, dropped or added, the case changed, the
    regex metacharacters replaced (where an unescaped one would still match), more around it."""
    how = draw(st.sampled_from(["same", "case", "replace", "drop", "add", "meta", "meta", "wrap"]))
    at = draw(st.integers(0, len(text)))
    if how == "case":
        return draw(_CASES)(text)
    if how in ("replace", "drop", "add"):
        char = "" if how == "drop" else draw(_ONE_CHAR)
        return text[:at] + char + text[at + (how != "add"):]
    if how == "meta":
        return "".join("x" if c in _META else c for c in text)
    if how == "wrap":
        return draw(st.text(_CHARS, max_size=2)) + text + draw(st.text(_CHARS, max_size=2))
    return text


_SEGMENT = st.one_of(_TEXTS.map(lambda t: ("text", t)), st.sampled_from([("?", ""), ("*", "")]))
_VALUES = st.lists(st.lists(_SEGMENT, min_size=1, max_size=3), min_size=1, max_size=6)


@st.composite
def _merge_case(draw: st.DrawFn) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """A rule with lists on one field of every kind (>= 4 plain substrings), and events."""
    literals = draw(st.lists(_TEXTS, min_size=4, max_size=12, unique_by=compiler_values.fold_case))
    lists = {"F|contains": [[("text", t)] for t in literals] + draw(_VALUES),
             "F|startswith": draw(_VALUES), "F|endswith": draw(_VALUES), "F": draw(_VALUES),
             "G|cased|contains": draw(_VALUES)}
    detection: dict[str, Any] = {f"sel_{i}": {key: [_sigma(v) for v in values]}
                                 for i, (key, values) in enumerate(lists.items())}
    detection["condition"] = "1 of sel_*"
    samples = st.sampled_from([v for values in lists.values() for v in values])
    events = []
    for _ in range(draw(st.integers(8, 32))):
        text = _near(_realize(draw(samples), draw), draw) if draw(st.integers(0, 5)) else draw(_TEXTS)
        events.append({draw(st.sampled_from(["F", "G"])): text})
    return detection, events


@contextmanager
def _unmerged() -> Iterator[None]:
    """Compile without the regexp_matches merge (the reference form)."""
    with mock.patch.object(compiler_values, "MIN_ATOMS", 10**9):
        yield


@settings(max_examples=300, deadline=None)
@given(_merge_case(), st.sampled_from([6000, 40]))
def test_merged_lists_match_like_the_unmerged_atoms(
        case: tuple[dict[str, Any], list[dict[str, Any]]], max_pattern: int) -> None:
    """For random value lists (regex metacharacters, quotes, backslashes, NUL, newlines,
    unicode, wildcards) the regexp_matches form and the plain atoms agree on every event."""
    detection, events = case
    rule = SigmaRule.from_dict({"title": "Merge", "logsource": {"category": "test"},
                                "detection": detection})
    with mock.patch.object(compiler_merge, "MAX_PATTERN", max_pattern):
        merged = compile_rule(rule, rule_meta(rule, "merge.yml"))
    with _unmerged():
        plain = compile_rule(rule, rule_meta(rule, "merge.yml"))
    assert 'regexp_matches("l:F"' in merged.sql
    assert "regexp_matches" not in plain.sql
    assert evaluate(merged, events) == evaluate(plain, events)


@pytest.mark.parametrize("kind", ["contains", "startswith", "endswith"])
@pytest.mark.parametrize("meta", list(_META + "'\n\x00"))
def test_each_regex_metacharacter_is_literal(meta: str, kind: str) -> None:
    value = f"a{meta}b"
    values = [sigma_escape(value), "q1", "q2", "q3"]
    rule = SigmaRule.from_dict({"title": "Meta", "logsource": {"category": "test"},
                                "detection": {"sel": {f"F|{kind}": values}, "condition": "sel"}})
    compiled = compile_rule(rule, rule_meta(rule, "meta.yml"))
    assert "regexp_matches" in compiled.sql
    texts = [value, f"x{value}x", "axb", "ab", f"a{meta}{meta}b", "aab", "b", f"a\\{meta}b",
             "a\nb", value.upper()]
    test = {"contains": str.__contains__, "startswith": str.startswith, "endswith": str.endswith}
    expected = [test[kind](text.lower(), value) for text in texts]
    assert evaluate(compiled, [{"F": text} for text in texts]) == expected


def test_long_lists_are_split_into_bounded_regexes() -> None:
    values = [f"value-{i:05d}.exe" for i in range(2000)]
    rule = SigmaRule.from_dict({"title": "Long", "logsource": {"category": "test"},
                                "detection": {"sel": {"F|contains": values}, "condition": "sel"}})
    compiled = compile_rule(rule, rule_meta(rule, "long.yml"))
    sources = [sql_literal(s) for s in compiler_merge.regex_sources(
        [compiler_merge.Pattern('"l:F"', False, False, regex_escape(v)) for v in values])]
    assert len(sources) > 1
    assert all(len(s.encode()) <= compiler_merge.MAX_PATTERN for s in sources)
    assert compiled.sql.count("regexp_matches") == len(sources)
    events = [{"F": "x VALUE-01999.EXE y"}, {"F": "value-2000.exe"}, {"F": "value-00000.ex"}]
    assert evaluate(compiled, events) == [True, False, False]


def test_three_substrings_and_equalities_are_not_merged() -> None:
    compiled = compile_yaml(SIMPLE.replace("CommandLine|contains: 'x'", "CommandLine|contains: [a, b, c]"))
    assert "regexp_matches" not in compiled.sql
    compiled = compile_yaml(SIMPLE.replace("CommandLine|contains: 'x'", "CommandLine: [a, b, c, d, e]"))
    assert compiled.sql == """coalesce("l:CommandLine" IN ('a', 'b', 'c', 'd', 'e'), FALSE)"""


def test_lists_merge_across_selections() -> None:
    """An enclosing OR merges the members of the ORs it holds again (not those under an AND)."""
    ored = SIMPLE.replace("CommandLine|contains: 'x'", "A|contains: [a, b]").replace(
        "condition: selection", "other:\n    A|contains: [c, d]\n  more:\n    B: [1, 2]\n"
        "  more2:\n    B: [3]\n  condition: selection or other or more or more2")
    assert compile_yaml(ored).sql == (
        """(coalesce(regexp_matches("l:A", '(?:a|b|c|d)'), FALSE) OR """
        """coalesce("c:B" IN ('1', '2', '3'), FALSE))""")
    anded = SIMPLE.replace("CommandLine|contains: 'x'", "A|contains: [a, b]\n    C: z").replace(
        "condition: selection", "other:\n    A|contains: [c, d]\n    C: y\n"
        "  condition: selection or other")
    assert "regexp_matches" not in compile_yaml(anded).sql


def test_regex_escape() -> None:
    assert regex_escape(r"a.b*c?d+e(f)g|h[i]j{k}l^m$n\o") == (
        r"a\.b\*c\?d\+e\(f\)g\|h\[i\]j\{k\}l\^m\$n\\o")
    assert regex_escape("x\x00y\n\t\u2028é 'q'") == "x\\x{0}y\\x{a}\\x{9}\\x{2028}é 'q'"


# --- errors --------------------------------------------------------------------------------


def test_rule_error_is_an_input_error_with_location() -> None:
    text = SIMPLE.replace("CommandLine|contains", "CommandLine|sometimes")
    with pytest.raises(RuleError) as info:
        compile_yaml(text, path="rules/bad.yml")
    assert isinstance(info.value, InputError)
    assert "Unknown modifier" in info.value.message
    assert str(info.value).startswith("rules/bad.yml: ")


def test_lookahead_regex_is_refused_by_pysigma_policy() -> None:
    text = SIMPLE.replace("CommandLine|contains: 'x'", "CommandLine|re: 'a(?=b)'")
    with pytest.raises(RuleError, match="invalid"):
        compile_yaml(text)


def test_lookahead_regex_is_refused_by_compiler_re2_check() -> None:
    """Even when pySigma was told to accept Python regexes, RE2 (DuckDB's engine) decides."""
    text = SIMPLE.replace("CommandLine|contains: 'x'", "CommandLine|re: 'a(?=b)'")
    with pytest.raises(RuleError, match="not supported by RE2") as info:
        compile_yaml(text, policy=TrustedPolicy)
    assert "CommandLine" in info.value.message


def test_backreference_regex_is_refused() -> None:
    text = SIMPLE.replace("CommandLine|contains: 'x'", r"CommandLine|re: '(a)\1'")
    with pytest.raises(RuleError, match="RE2"):
        compile_yaml(text, policy=TrustedPolicy)


def test_unresolved_placeholder_is_refused() -> None:
    text = SIMPLE.replace("CommandLine|contains: 'x'", "User|expand: '%admins%'")
    with pytest.raises(RuleError, match="unresolved placeholder %admins%"):
        compile_yaml(text)


def test_unresolved_placeholder_in_regex_is_refused() -> None:
    text = SIMPLE.replace("CommandLine|contains: 'x'", "User|re|expand: '^%admins%$'")
    with pytest.raises(RuleError, match="placeholder"):
        compile_yaml(text)


def test_keyword_cidr_is_refused() -> None:
    text = SIMPLE.replace("CommandLine|contains: 'x'", "'|cidr': '10.0.0.0/8'")
    with pytest.raises(RuleError, match="needs a field"):
        compile_yaml(text)


def test_undefined_identifier_in_condition() -> None:
    text = SIMPLE.replace("condition: selection", "condition: selection and missing")
    with pytest.raises(RuleError, match="missing"):
        compile_yaml(text)


# --- the SigmaHQ corpus --------------------------------------------------------------------


def _corpus_rules() -> list[tuple[Path, SigmaRule | None, str]]:
    """Every rule of the snapshot: (path, rule or None, collection error)."""
    root = datasets() / "sigma"
    found: list[tuple[Path, SigmaRule | None, str]] = []
    for path in sorted(p for folder in root.glob("rules*") for p in folder.rglob("*.yml")):
        collection = SigmaCollection.from_yaml(path.read_text(), collect_errors=True)
        rules = [r for r in collection.rules if isinstance(r, SigmaRule)]
        if not rules:
            found.append((path, None, "; ".join(str(e) for e in collection.errors) or "no rule"))
        found.extend((path, rule, "") for rule in rules)
    return found


@pytest.mark.slow
def test_sigmahq_corpus_compiles_and_binds_in_duckdb() -> None:
    compiled: list[CompiledRule] = []
    failures: list[tuple[str, str]] = []
    for source, sigma_rule, error in _corpus_rules():
        if sigma_rule is None:
            failures.append((str(source), error))
            continue
        try:
            compiled.append(compile_rule(sigma_rule, rule_meta(sigma_rule, str(source))))
        except RuleError as exc:
            failures.append((str(source), exc.message))
    total = len(compiled) + len(failures)
    reasons = Counter(reason.split(": ", 1)[-1].split("%")[0].strip() for _, reason in failures)
    print(f"\nSigmaHQ corpus: {len(compiled)}/{total} rules compiled; failures by reason: {dict(reasons)}")
    for failed, reason in failures:
        print(f"  {failed}: {reason}")
    assert total >= 3000
    assert len(compiled) >= 0.99 * total

    fields = {f.lower(): f for rule in compiled for f in rule.fields}
    con = duckdb.connect()
    columns = ", ".join(f"{lower_column(f)} VARCHAR, {cased_column(f)} VARCHAR" for f in fields.values())
    con.execute(f"CREATE TABLE events ({columns})")
    sample = compiled if len(compiled) <= 5000 else random.Random(7).sample(compiled, 300)
    bad = []
    for rule in sample:
        try:
            con.execute(f"EXPLAIN SELECT 1 FROM events WHERE {rule.sql}")
        except duckdb.Error as exc:
            bad.append((rule.meta.path, str(exc)))
    con.close()
    print(f"DuckDB bound {len(sample) - len(bad)}/{len(sample)} compiled rules")
    assert not bad, bad[:10]
