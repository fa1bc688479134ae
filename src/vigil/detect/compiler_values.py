"""Sigma values to SQL atoms: the leaves of a compiled rule, and how they combine.

pySigma applies a rule's modifiers when it parses the rule, so each leaf of a condition is a
field (or none, for keywords) and one value object: a :class:`SigmaString` with wildcards, a
regular expression, a CIDR network, a number comparison and so on. This module turns one such
leaf into one DuckDB boolean expression, following the Sigma specification:

* strings match case-insensitively on the lower-cased column (``"l:F"``) with the value
  lower-cased; ``|cased`` matches the original text (``"c:F"``) as written;
* ``|re`` matches the original text with RE2 (DuckDB's regex engine), flags as inline groups;
* numbers, comparisons, time parts, ``|exists`` and ``null`` read the original text.

Every atom is TRUE or FALSE, never NULL (``coalesce(<atom>, FALSE)``), so that ``NOT`` keeps the
meaning the specification gives it: a missing field never matches a positive condition, and
``not selection`` is TRUE for an event without the field. Field names reach the SQL only
through :func:`lower_column` / :func:`cased_column`, values only through :func:`sql_literal`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import re2  # type: ignore[import-untyped]
from sigma.types import (
    CompareOperators,
    Placeholder,
    SigmaBool,
    SigmaCasedString,
    SigmaCIDRExpression,
    SigmaCompareExpression,
    SigmaExists,
    SigmaExpansion,
    SigmaFieldReference,
    SigmaNull,
    SigmaNumber,
    SigmaRegularExpression,
    SigmaRegularExpressionFlag,
    SigmaString,
    SigmaTimestampPart,
    SigmaType,
    SpecialChars,
    TimestampPart,
)

from vigil.core.errors import RuleError
from vigil.detect.compiler_merge import MIN_ATOMS, Pattern, regex_sources, to_pattern
from vigil.detect.types import RAW_FIELD, cased_column, lower_column

Op = Literal["AND", "OR", "NOT"]
Part = str | SpecialChars

STAR = SpecialChars.WILDCARD_MULTI
ONE = SpecialChars.WILDCARD_SINGLE

_REGEX_FLAGS = {
    SigmaRegularExpressionFlag.IGNORECASE: "i",
    SigmaRegularExpressionFlag.MULTILINE: "m",
    SigmaRegularExpressionFlag.DOTALL: "s",
}
_COMPARE_OPS = {
    CompareOperators.LT: "<",
    CompareOperators.LTE: "<=",
    CompareOperators.GT: ">",
    CompareOperators.GTE: ">=",
    CompareOperators.NEQ: "<>",
}
_TIME_PARTS = {
    TimestampPart.MINUTE: "minute",
    TimestampPart.HOUR: "hour",
    TimestampPart.DAY: "day",
    TimestampPart.WEEK: "week",
    TimestampPart.MONTH: "month",
    TimestampPart.YEAR: "year",
}
_RE2_OPTIONS = re2.Options()
_RE2_OPTIONS.log_errors = False


@dataclass(frozen=True, slots=True)
class Expr:
    """A self-contained SQL boolean expression (a call, or parenthesised) that is never NULL."""

    sql: str
    op: Op | None = None
    """``AND``/``OR``/``NOT`` for a compound (its members in ``items``), None for an atom."""
    items: tuple[Expr, ...] = ()
    """The members of a compound. ``sql`` is equivalent to them joined by ``op`` but need not
    spell them out: an OR's equalities and string matches are merged (see :func:`combine`)."""
    eq: tuple[str, str] | None = None
    """``(column, literal)`` when the atom is a plain equality: OR'ed equalities become ``IN``."""
    pattern: Pattern | None = None
    """The atom as a regular expression when it is a string match that an OR may merge."""


def sql_literal(text: str) -> str:
    """A SQL string literal holding ``text`` exactly (quotes doubled, NUL through ``chr(0)``)."""
    if "\x00" not in text:
        return "'" + text.replace("'", "''") + "'"
    terms: list[str] = []
    for index, piece in enumerate(text.split("\x00")):
        if index:
            terms.append("chr(0)")
        if piece:
            terms.append("'" + piece.replace("'", "''") + "'")
    return "(" + " || ".join(terms) + ")"


def fold_case(text: str) -> str:
    """Lower-case ``text`` the way DuckDB's ``lower()`` does (Python differs only on U+0130)."""
    return text.replace("\u0130", "i").lower()


def not_null(sql: str) -> str:
    """``sql`` with NULL read as FALSE."""
    return f"coalesce({sql}, FALSE)"


def combine(op: Literal["AND", "OR"], exprs: Sequence[Expr]) -> Expr:
    """``exprs`` joined by ``op``; nested groups of the same operator are flattened.

    In an OR, equalities on one column become one ``IN`` list and string matches on one column
    become ``regexp_matches`` (:func:`_merge_patterns`). The result keeps the unmerged members
    as its ``items``, so that an enclosing OR merges them again with its own.
    """
    flat: list[Expr] = []
    for expr in exprs:
        flat.extend(expr.items if expr.op == op else (expr,))
    if not flat:
        raise RuleError(f"empty {op} group")
    if len(flat) == 1:
        return flat[0]
    shown = _merge_patterns(_merge_equalities(flat)) if op == "OR" else flat
    if len(shown) == 1:
        return Expr(shown[0].sql, op, tuple(flat))
    return Expr("(" + f" {op} ".join(e.sql for e in shown) + ")", op, tuple(flat))


def negate(expr: Expr) -> Expr:
    """``NOT expr`` (a double negation cancels out)."""
    if expr.op == "NOT":
        return expr.items[0]
    return Expr(f"(NOT {expr.sql})", "NOT", (expr,))


def _merge_equalities(exprs: list[Expr]) -> list[Expr]:
    """Turn OR'ed equalities on one column into one ``IN`` list, at the first one's place."""
    literals: dict[str, list[str]] = {}
    for expr in exprs:
        if expr.eq is not None:
            found = literals.setdefault(expr.eq[0], [])
            if expr.eq[1] not in found:
                found.append(expr.eq[1])
    result: list[Expr] = []
    done: set[str] = set()
    for expr in exprs:
        if expr.eq is None or len(literals[expr.eq[0]]) < 2:
            result.append(expr)
        elif expr.eq[0] not in done:
            column = expr.eq[0]
            done.add(column)
            result.append(Expr(not_null(f"{column} IN ({', '.join(literals[column])})")))
    return result


def _merge_patterns(exprs: list[Expr]) -> list[Expr]:
    """Turn OR'ed string matches into ``regexp_matches``, at the first one's place.

    A column with at least :data:`MIN_ATOMS` distinct string matches (contains, startswith,
    endswith, wildcards without an inner ``*``) gets one regular expression (or more, when
    long) per anchoring that holds two or more of them: an anchored expression lets RE2 stop
    early, where one alternation over all of them would scan the whole text. Plain equalities
    are left to ``IN``, which DuckDB evaluates faster than a regular expression.
    """
    columns: dict[str, set[Pattern]] = {}
    for expr in exprs:
        if expr.pattern is not None:
            columns.setdefault(expr.pattern.column, set()).add(expr.pattern)
    groups: dict[tuple[str, bool, bool], set[Pattern]] = {}
    for patterns in columns.values():
        if len(patterns) >= MIN_ATOMS:
            for pattern in patterns:
                groups.setdefault(pattern.group, set()).add(pattern)
    result: list[Expr] = []
    done: set[tuple[str, bool, bool]] = set()
    for expr in exprs:
        key = expr.pattern.group if expr.pattern is not None else None
        if key is None or len(groups.get(key, ())) < 2:
            result.append(expr)
        elif key not in done:
            done.add(key)
            result.append(_regex_expr(key[0], groups[key]))
    return result


def _regex_expr(column: str, patterns: set[Pattern]) -> Expr:
    sources = regex_sources(list(patterns))
    calls = [not_null(f"regexp_matches({column}, {sql_literal(source)})") for source in sources]
    return Expr(calls[0] if len(calls) == 1 else "(" + " OR ".join(calls) + ")")


def _equality(column: str, literal: str) -> Expr:
    return Expr(not_null(f"{column} = {literal}"), eq=(column, literal))


# --- strings -------------------------------------------------------------------------------


def string_parts(value: SigmaString, *, fold: bool) -> list[Part]:
    """The parts of a Sigma string: text merged, runs of ``*`` collapsed, placeholders refused."""
    parts: list[Part] = []
    for part in value.s:
        if isinstance(part, Placeholder):
            raise RuleError(
                f"unresolved placeholder %{part.name}% (|expand needs its values from configuration)"
            )
        if isinstance(part, str):
            text = fold_case(part) if fold else part
            if not text:
                continue
            if parts and isinstance(parts[-1], str):
                parts[-1] += text
            else:
                parts.append(text)
        elif not (part is STAR and parts and parts[-1] is STAR):
            parts.append(part)
    return parts


def string_atom(column: str, parts: Sequence[Part]) -> Expr:
    """Match ``column`` against a Sigma string: equality, prefix, suffix, substring or LIKE."""
    if not parts:
        return _equality(column, "''")
    if list(parts) == [STAR]:
        return Expr(f"({column} IS NOT NULL)")
    shape = tuple("text" if isinstance(p, str) else p for p in parts)
    texts = [p for p in parts if isinstance(p, str)]
    calls = {("text", STAR): "starts_with", (STAR, "text"): "ends_with", (STAR, "text", STAR): "contains"}
    if shape == ("text",):
        return _equality(column, sql_literal(texts[0]))
    merge = to_pattern(column, parts)
    if shape in calls:
        return Expr(not_null(f"{calls[shape]}({column}, {sql_literal(texts[0])})"), pattern=merge)
    pattern = sql_literal(like_pattern(parts))
    return Expr(not_null(f"{column} LIKE {pattern} ESCAPE '\\'"), pattern=merge)


def like_pattern(parts: Sequence[Part]) -> str:
    """A LIKE pattern (escape character ``\\``) for a Sigma string."""
    out: list[str] = []
    for part in parts:
        if part is STAR:
            out.append("%")
        elif part is ONE:
            out.append("_")
        elif isinstance(part, str):
            out.append(part.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_"))
    return "".join(out)


def _surround(parts: list[Part]) -> list[Part]:
    """Keyword values match anywhere in the raw record."""
    if not parts or parts[0] is not STAR:
        parts = [STAR, *parts]
    if parts[-1] is not STAR:
        parts = [*parts, STAR]
    return parts


# --- other value types ---------------------------------------------------------------------


def regex_atom(column: str, value: SigmaRegularExpression) -> Expr:
    """``regexp_matches`` (a search, not anchored) with the Sigma flags as an inline group."""
    if value.regexp.contains_placeholder():
        raise RuleError(f"unresolved placeholder in regular expression '{value.regexp}'")
    pattern = str(value.regexp)
    flags = "".join(sorted(_REGEX_FLAGS[flag] for flag in value.flags))
    full = f"(?{flags}){pattern}" if flags else pattern
    try:
        re2.compile(full, _RE2_OPTIONS)
    except re2.error as exc:
        reason = exc.args[0].decode() if exc.args and isinstance(exc.args[0], bytes) else str(exc)
        raise RuleError(f"regular expression '{pattern}' is not supported by RE2: {reason}") from None
    return Expr(not_null(f"regexp_matches({column}, {sql_literal(full)})"))


def number_atom(column: str, value: SigmaNumber) -> Expr:
    """Integers compare as their text (fields are stored as text), other numbers as numbers."""
    number = value.number
    if isinstance(number, int):
        return _equality(column, sql_literal(str(number)))
    return Expr(not_null(f"TRY_CAST({column} AS DOUBLE) = {number!r}"))


def compare_atom(column: str, value: SigmaCompareExpression) -> Expr:
    """``|lt``, ``|lte``, ``|gt``, ``|gte``: a numeric comparison; text that is no number fails."""
    return Expr(not_null(f"TRY_CAST({column} AS DOUBLE) {_COMPARE_OPS[value.op]} {value.number.number!r}"))


def timestamp_sql(column: str) -> str:
    """The field read as a UTC timestamp: an explicit offset is honoured, naive text is UTC."""
    return (
        f"CASE WHEN regexp_matches({column}, '[+-][0-9][0-9]:?[0-9][0-9]$') "
        f"THEN timezone('UTC', TRY_CAST({column} AS TIMESTAMPTZ)) "
        f"ELSE TRY_CAST({column} AS TIMESTAMP) END"
    )


def time_part_atom(column: str, value: SigmaTimestampPart) -> Expr:
    """``|minute`` ... ``|year``: a part of the field read as a timestamp (ISO week for week)."""
    part = _TIME_PARTS[value.timestamp_part]
    return Expr(not_null(f"date_part('{part}', {timestamp_sql(column)}) = {int(value.number)}"))


def fieldref_atom(field: str, value: SigmaFieldReference) -> Expr:
    """``|fieldref``: compare two fields of one event, case-insensitively."""
    left, right = lower_column(field), lower_column(value.field)
    if value.starts_with and value.ends_with:
        return Expr(not_null(f"contains({left}, {right})"))
    if value.starts_with:
        return Expr(not_null(f"starts_with({left}, {right})"))
    if value.ends_with:
        return Expr(not_null(f"ends_with({left}, {right})"))
    return Expr(not_null(f"{left} = {right}"))


# --- the builder ---------------------------------------------------------------------------


class AtomBuilder:
    """Builds the atoms of one rule and remembers the fields they read and any warnings."""

    def __init__(self) -> None:
        self.fields: set[str] = set()
        self.warnings: list[str] = []

    def field_atom(self, field: str, value: SigmaType) -> Expr:
        """The atom for ``field`` matching ``value``."""
        self.fields.add(field)
        if isinstance(value, SigmaExpansion):
            return combine("OR", [self.field_atom(field, item) for item in value.values])
        if isinstance(value, SigmaCasedString):
            return string_atom(cased_column(field), string_parts(value, fold=False))
        if isinstance(value, SigmaString):
            return string_atom(lower_column(field), string_parts(value, fold=True))
        if isinstance(value, SigmaRegularExpression):
            return regex_atom(cased_column(field), value)
        if isinstance(value, SigmaCIDRExpression):
            return self._cidr(field, value)
        if isinstance(value, SigmaTimestampPart):
            return time_part_atom(cased_column(field), value)
        if isinstance(value, SigmaNumber):
            return number_atom(cased_column(field), value)
        return self._other_atom(field, value)

    def _other_atom(self, field: str, value: SigmaType) -> Expr:
        column = cased_column(field)
        if isinstance(value, SigmaBool):
            return _equality(lower_column(field), sql_literal("true" if value.boolean else "false"))
        if isinstance(value, SigmaNull):
            return Expr(f"({column} IS NULL)")
        if isinstance(value, SigmaExists):
            return Expr(f"({column} IS NOT NULL)" if value.exists else f"({column} IS NULL)")
        if isinstance(value, SigmaCompareExpression):
            return compare_atom(column, value)
        if isinstance(value, SigmaFieldReference):
            self.fields.add(value.field)
            return fieldref_atom(field, value)
        raise RuleError(f"value type {type(value).__name__} is not supported")

    def keyword_atom(self, value: SigmaType) -> Expr:
        """The atom for a keyword (no field): the value anywhere in the raw record."""
        self.fields.add(RAW_FIELD)
        if isinstance(value, SigmaExpansion):
            return combine("OR", [self.keyword_atom(item) for item in value.values])
        if isinstance(value, SigmaCasedString):
            return string_atom(cased_column(RAW_FIELD), _surround(string_parts(value, fold=False)))
        if isinstance(value, SigmaString):
            return string_atom(lower_column(RAW_FIELD), _surround(string_parts(value, fold=True)))
        if isinstance(value, SigmaRegularExpression):
            return regex_atom(cased_column(RAW_FIELD), value)
        if isinstance(value, SigmaNumber) and not isinstance(value, SigmaTimestampPart):
            return string_atom(lower_column(RAW_FIELD), [STAR, str(value.number), STAR])
        if isinstance(value, SigmaBool):
            return string_atom(lower_column(RAW_FIELD), [STAR, str(value.boolean).lower(), STAR])
        raise RuleError(f"a {type(value).__name__} value needs a field (keyword detections take strings)")

    def _cidr(self, field: str, value: SigmaCIDRExpression) -> Expr:
        """pySigma's wildcard prefixes of the network; IPv4 also in its IPv4-mapped IPv6 form.

        Windows writes IPv4 peers as ``::ffff:10.1.2.3`` in many events (4624 ``IpAddress``), so
        ``10.0.0.0/8`` also matches that spelling of the same address.
        """
        texts = value.expand()
        if value.network.version == 4:
            texts += [f"::ffff:{text}" for text in texts]
        else:
            self.warnings.append(
                f"field '{field}': IPv6 network {value.cidr} is matched by text patterns, which can "
                "also match some addresses outside it"
            )
        column = lower_column(field)
        return combine("OR", [string_atom(column, string_parts(SigmaString(t), fold=True)) for t in texts])
