"""The search language: parsing (precedence, quoting, errors) and compiling to SQL."""

from __future__ import annotations

import re

import duckdb
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from vigil.core.errors import InputError, QueryError
from vigil.store.query import (
    MAX_QUERY,
    BoolOp,
    Compare,
    Compiler,
    MatchAll,
    Node,
    Not,
    Text,
    fields_of,
    parse,
    tokenize,
)
from vigil.store.schema import RAW


def a(field: str, value: str, op: str = "=") -> Compare:
    return Compare(field, op, value)


def AND(*items: Node) -> BoolOp:
    return BoolOp("AND", items)


def OR(*items: Node) -> BoolOp:
    return BoolOp("OR", items)


# -- tokens --------------------------------------------------------------------------------


def test_tokenize() -> None:
    assert tokenize('(a=1 OR b!="x y") NOT c>=2 word') == [
        ("lp", "("), ("word", "a"), ("op", "="), ("word", "1"), ("word", "OR"), ("word", "b"),
        ("op", "!="), ("quoted", '"x y"'), ("rp", ")"), ("word", "NOT"), ("word", "c"),
        ("op", ">="), ("word", "2"), ("word", "word"),
    ]


def test_tokenize_ignores_surrounding_whitespace() -> None:
    assert tokenize("  \ta=1 \n ") == [("word", "a"), ("op", "="), ("word", "1")]


# -- simple terms --------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "expected"), [
    ("EventID=4625", a("EventID", "4625")),
    ("EventID = 4625", a("EventID", "4625")),
    ("Image=*\\powershell.exe", a("Image", "*\\powershell.exe")),
    ("user!=root", a("user", "root", "!=")),
    ("bytes>10", a("bytes", "10", ">")),
    ("bytes>=10", a("bytes", "10", ">=")),
    ("bytes<10", a("bytes", "10", "<")),
    ("bytes<=-2.5", a("bytes", "-2.5", "<=")),
    ("CommandLine=*", a("CommandLine", "*")),
    ("@host=web1", a("@host", "web1")),
    ("mimikatz", Text("mimikatz")),
    ('"two words"', Text("two words")),
    ("*", MatchAll()),
    ('"*"', Text("*")),
    ("!", Text("!")),
    ("a.b-c:d/e", Text("a.b-c:d/e")),
])
def test_single_terms(text: str, expected: Node) -> None:
    assert parse(text) == expected


# -- precedence ----------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "expected"), [
    ("a=1 AND b=2", AND(a("a", "1"), a("b", "2"))),
    ("a=1 b=2", AND(a("a", "1"), a("b", "2"))),
    ("a=1 and b=2 And c=3", AND(a("a", "1"), a("b", "2"), a("c", "3"))),
    ("a=1 OR b=2", OR(a("a", "1"), a("b", "2"))),
    ("a=1 or b=2 OR c=3", OR(a("a", "1"), a("b", "2"), a("c", "3"))),
    # AND binds tighter than OR, implicit AND too.
    ("a=1 OR b=2 AND c=3", OR(a("a", "1"), AND(a("b", "2"), a("c", "3")))),
    ("a=1 AND b=2 OR c=3", OR(AND(a("a", "1"), a("b", "2")), a("c", "3"))),
    ("a=1 OR b=2 c=3", OR(a("a", "1"), AND(a("b", "2"), a("c", "3")))),
    ("a=1 b=2 OR c=3 d=4", OR(AND(a("a", "1"), a("b", "2")), AND(a("c", "3"), a("d", "4")))),
    # NOT binds tightest.
    ("NOT a=1", Not(a("a", "1"))),
    ("not a=1 b=2", AND(Not(a("a", "1")), a("b", "2"))),
    ("NOT a=1 OR b=2", OR(Not(a("a", "1")), a("b", "2"))),
    ("NOT NOT a=1", Not(Not(a("a", "1")))),
    ("a=1 AND NOT b=2", AND(a("a", "1"), Not(a("b", "2")))),
    # Parentheses override.
    ("(a=1 OR b=2) AND c=3", AND(OR(a("a", "1"), a("b", "2")), a("c", "3"))),
    ("(a=1 OR b=2) c=3", AND(OR(a("a", "1"), a("b", "2")), a("c", "3"))),
    ("NOT (a=1 OR b=2)", Not(OR(a("a", "1"), a("b", "2")))),
    ("((a=1))", a("a", "1")),
    ("a=1 (b=2 OR (c=3 d=4))", AND(a("a", "1"), OR(a("b", "2"), AND(a("c", "3"), a("d", "4"))))),
    ("powershell Image=*cmd.exe", AND(Text("powershell"), a("Image", "*cmd.exe"))),
])
def test_precedence(text: str, expected: Node) -> None:
    assert parse(text) == expected


# -- quoting -------------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "expected"), [
    ('CommandLine="cmd /c whoami"', a("CommandLine", "cmd /c whoami")),
    ('msg="say \\"hi\\""', a("msg", 'say "hi"')),
    ('path="C:\\\\Windows\\\\System32"', a("path", "C:\\Windows\\System32")),
    ('q="a AND b OR (c)"', a("q", "a AND b OR (c)")),
    ('q="x=1"', a("q", "x=1")),
    ('q=""', a("q", "")),
    ('"AND"', Text("AND")),
    ('"NOT" "OR"', AND(Text("NOT"), Text("OR"))),
    ('"ends with backslash \\\\"', Text("ends with backslash \\")),
])
def test_quoted_values(text: str, expected: Node) -> None:
    assert parse(text) == expected


# -- errors --------------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "message"), [
    ("", "empty query"),
    ("   \t\n", "empty query"),
    ("(a=1", "unexpected end of query"),
    ("(a=1 OR b=2", "unexpected end of query"),
    ("a=1)", "unexpected ')'"),
    (")", "unexpected ')'"),
    ("()", "unexpected ')'"),
    ("((a=1)", "unexpected end of query"),
    ("a=1 AND", "unexpected end of query"),
    ("a=1 OR", "unexpected end of query"),
    ("NOT", "unexpected end of query"),
    ("a=1 AND NOT", "unexpected end of query"),
    ("AND a=1", "AND needs a condition"),
    ("OR a=1", "OR needs a condition"),
    ("a=1 AND OR b=2", "OR needs a condition"),
    ("a=1 OR AND b=2", "AND needs a condition"),
    ("(a=1 OR) b=2", "unexpected ')'"),
    ("a=", "unexpected end of query"),
    ("a==1", "expected a value"),
    ("a=(b)", "expected a value"),
    ("=1", "unexpected '='"),
    ("!=x", "unexpected '!='"),
    ('"unterminated', "unexpected character"),
    ('a="unterminated', "unexpected character"),
    ('a="b" "c', "unexpected character"),
])
def test_malformed_queries(text: str, message: str) -> None:
    with pytest.raises(QueryError, match=re.escape(message)) as info:
        parse(text)
    assert isinstance(info.value, InputError)
    assert info.value.http_status == 400
    assert "\n" not in str(info.value)


def test_too_long_query() -> None:
    with pytest.raises(QueryError, match="longer than"):
        parse("a" * (MAX_QUERY + 1))
    assert parse("a" * MAX_QUERY) == Text("a" * MAX_QUERY)


@pytest.mark.parametrize("text", ["x>abc", "x<=1.2.3", "x>1e5", "x>*", 'x>"٣"', "x>.5",
                                  "x<5x", 'x>="5 "', "x>+5"])
def test_numeric_compare_with_text_is_a_query_error(text: str) -> None:
    with pytest.raises(QueryError, match="compare with a number"):
        parse(text)


@pytest.mark.parametrize("text", ["x>5", "x>=-5", "x<0.25", 'x<="10"'])
def test_numeric_compare_with_numbers(text: str) -> None:
    assert isinstance(parse(text), Compare)


def test_text_compare_is_allowed_for_equality() -> None:
    assert parse("x=abc") == a("x", "abc")
    assert parse("x!=1.2.3") == a("x", "1.2.3", "!=")


@pytest.mark.parametrize("text", ["(" * 400 + "a" + ")" * 400, "NOT " * 1200 + "a",
                                  "(NOT " * 300 + "a" + ")" * 300, "(" * 3000])
def test_deep_nesting_is_a_query_error(text: str) -> None:
    assert len(text) <= MAX_QUERY
    with pytest.raises(QueryError, match="nests deeper than"):
        parse(text)


def test_moderate_nesting_is_fine() -> None:
    assert parse("(" * 30 + "a=1" + ")" * 30) == a("a", "1")
    assert parse("NOT " * 30 + "a=1") is not None
    # Depth counts nesting, not how many groups a query has.
    wide = " OR ".join(f"(NOT f{i}=1)" for i in range(200))
    assert isinstance(parse(wide), BoolOp)


# -- hypothesis: never anything but a node or a QueryError ---------------------------------

QUERYISH = st.lists(
    st.sampled_from(["(", ")", " ", "AND", "OR", "NOT", "and", "a", "Image", "=", "!=", ">",
                     ">=", "<", "<=", '"', '\\', '"x y"', "*", "?", "5", "-1.5", "!", "٣",
                     "\t", "'", "%", "_", "@ts", "é"]),
    max_size=40,
).map("".join)

ANY_NODE = (Compare, Text, MatchAll, Not, BoolOp)


def _check_parse(text: str) -> Node | None:
    try:
        node = parse(text)
    except QueryError:
        return None
    assert isinstance(node, ANY_NODE)
    return node


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=200))
@example("x>\"٣\"")
@example('a="\\')
@example("\x1c a")
@example("a\u00a0=\u00a0b")
def test_parse_arbitrary_text(text: str) -> None:
    _check_parse(text)


@settings(max_examples=300, deadline=None)
@given(QUERYISH)
def test_parse_query_like_text(text: str) -> None:
    _check_parse(text)


@pytest.fixture(scope="module")
def duck() -> duckdb.DuckDBPyConnection:
    connection = duckdb.connect()
    connection.execute(f'CREATE TABLE t ("@ts" TIMESTAMPTZ, "{RAW}" VARCHAR, "Image" VARCHAR, '
                       '"a" VARCHAR)')
    connection.execute("""INSERT INTO t VALUES (now(), 'raw "x y" 5', 'C:\\cmd.exe', '5'),
                          (now(), NULL, NULL, NULL)""")
    return connection


@settings(max_examples=300, deadline=None)
@given(QUERYISH)
@example('a>"٣"')
@example("Image=\"it's\"")
@example('Image="%"')
def test_compiled_sql_is_valid_duckdb(duck: duckdb.DuckDBPyConnection, text: str) -> None:
    """Whatever parses compiles to SQL that DuckDB runs."""
    node = _check_parse(text)
    if node is None:
        return
    condition = Compiler({"image": "Image", "a": "a"}).compile(node)
    result = duck.execute(f"SELECT count(*) FROM t WHERE {condition}").fetchone()
    assert result is not None
    assert 0 <= result[0] <= 2


# -- compiling -----------------------------------------------------------------------------

COLUMNS = {"eventid": "EventID", "image": "Image", "@host": "@host", "@raw": "@raw",
           "@ts": "@ts"}


def compile_(text: str, columns: dict[str, str] | None = None) -> str:
    return Compiler(COLUMNS if columns is None else columns).compile(parse(text))


def test_missing_column() -> None:
    assert compile_("Missing=1") == "FALSE"
    assert compile_("Missing=*") == "FALSE"
    assert compile_("Missing=abc*") == "FALSE"
    assert compile_("Missing>5") == "FALSE"
    assert compile_("Missing<=5") == "FALSE"
    assert compile_("Missing!=1") == "TRUE"
    # Absent everywhere, so "not present" holds for every event (same as NOT Missing=*).
    assert compile_("Missing!=*") == "TRUE"
    assert compile_("NOT Missing=*") == "NOT (FALSE)"


def test_missing_column_inside_a_larger_query() -> None:
    assert compile_("Missing=1 OR EventID=4625") == \
        "(FALSE OR coalesce(lower(CAST(\"EventID\" AS VARCHAR)) = '4625', FALSE))"


def test_field_names_are_case_insensitive() -> None:
    assert compile_("eventid=1") == compile_("EVENTID=1") == compile_("EventID=1")
    assert '"EventID"' in compile_("eventid=1")


def test_equality_is_case_insensitive() -> None:
    assert compile_("Image=CMD.EXE") == \
        "coalesce(lower(CAST(\"Image\" AS VARCHAR)) = 'cmd.exe', FALSE)"


def test_wildcards_become_like_with_escapes() -> None:
    sql = compile_("Image=*50%_off?.exe")
    assert sql == ("coalesce(CAST(\"Image\" AS VARCHAR) ILIKE '%50\\%\\_off_.exe' "
                   "ESCAPE '\\', FALSE)")


def test_present_and_absent() -> None:
    assert compile_("Image=*") == '"Image" IS NOT NULL'
    assert compile_("Image!=*") == 'NOT ("Image" IS NOT NULL)'


def test_not_equal() -> None:
    assert compile_("Image!=a") == "NOT (coalesce(lower(CAST(\"Image\" AS VARCHAR)) = 'a', FALSE))"


def test_numeric_compare() -> None:
    assert compile_("EventID>=4624") == \
        'coalesce(TRY_CAST(CAST("EventID" AS VARCHAR) AS DOUBLE) >= 4624, FALSE)'


def test_full_text_searches_the_raw_record() -> None:
    assert compile_('"50% off"') == f"coalesce(\"{RAW}\" ILIKE '%50\\% off%' ESCAPE '\\', FALSE)"


def test_quotes_in_values_are_escaped() -> None:
    assert compile_('Image="it\'s"') == \
        "coalesce(lower(CAST(\"Image\" AS VARCHAR)) = 'it''s', FALSE)"
    assert compile_("it's") == "coalesce(\"@raw\" ILIKE '%it''s%' ESCAPE '\\', FALSE)"


def test_match_all_and_boolean_structure() -> None:
    assert compile_("*") == "TRUE"
    assert compile_("NOT *") == "NOT (TRUE)"
    assert compile_("* OR *") == "(TRUE OR TRUE)"


@pytest.mark.parametrize(("alias", "column"), [("host", "@host"), ("HOST", "@host"),
                                               ("ts", "@ts"), ("raw", "@raw")])
def test_envelope_aliases(alias: str, column: str) -> None:
    assert f'"{column}"' in compile_(f"{alias}=x")


def test_a_field_wins_over_an_envelope_alias() -> None:
    columns = {**COLUMNS, "host": "Host"}
    assert '"Host"' in compile_("host=x", columns)


def test_fields_of() -> None:
    assert fields_of(parse("a=1 (b=2 OR NOT c>3) word *")) == {"a", "b", "c"}
    assert fields_of(parse("word")) == set()
