"""The search language of ``vigil search`` and ``GET /api/v1/events``, compiled to SQL.

    field=value            equality, case-insensitive; * and ? are wildcards
    field!=value           not equal
    field>10  field<=5     numeric comparison (text that is not a number never matches)
    field=*                the field is present
    word  "two words"      full-text: the raw record contains the text
    a AND b, a OR b, NOT a, (a OR b) c      implicit AND between terms

Values may be quoted with double quotes (``\\"`` and ``\\\\`` escape). An empty query is an
error: use ``*`` to match every event on purpose.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Union

from vigil.core.errors import QueryError
from vigil.store.schema import ENVELOPE_ALIASES, RAW, literal, quote

_TOKEN = re.compile(
    r'\s*(?:(?P<lp>\()|(?P<rp>\))|(?P<quoted>"(?:[^"\\]|\\.)*")'
    r'|(?P<op>!=|>=|<=|=|>|<)|(?P<word>[^\s()"=<>!]+|!))'
)
_NUMBER = re.compile(r"^-?\d+(\.\d+)?$", re.ASCII)
MAX_QUERY = 10_000
MAX_DEPTH = 64
"""Parentheses and NOT may nest this deep; deeper queries are refused (no recursion blow-up)."""


@dataclass(frozen=True, slots=True)
class Compare:
    field: str
    op: str
    value: str


@dataclass(frozen=True, slots=True)
class Text:
    value: str


@dataclass(frozen=True, slots=True)
class MatchAll:
    pass


@dataclass(frozen=True, slots=True)
class Not:
    inner: Node


@dataclass(frozen=True, slots=True)
class BoolOp:
    op: str
    items: tuple[Node, ...]


Node = Union[Compare, Text, MatchAll, Not, BoolOp]  # noqa: UP007


def _unquote(token: str) -> str:
    return re.sub(r"\\(.)", r"\1", token[1:-1])


def tokenize(text: str) -> list[tuple[str, str]]:
    """(kind, text) tokens; kinds: lp, rp, quoted, op, word."""
    tokens: list[tuple[str, str]] = []
    position = 0
    text = text.rstrip()
    while position < len(text):
        match = _TOKEN.match(text, position)
        if not match or match.end() == position:
            raise QueryError(f"unexpected character at position {position}: {text[position:]!r}")
        kind = match.lastgroup or "word"
        tokens.append((kind, match.group(kind)))
        position = match.end()
    return tokens


class _Parser:
    def __init__(self, tokens: list[tuple[str, str]]) -> None:
        self.tokens = tokens
        self.index = 0
        self.depth = 0

    def enter(self) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise QueryError(f"query nests deeper than {MAX_DEPTH} levels")

    def peek(self) -> tuple[str, str] | None:
        return self.tokens[self.index] if self.index < len(self.tokens) else None

    def take(self) -> tuple[str, str]:
        token = self.peek()
        if token is None:
            raise QueryError("unexpected end of query")
        self.index += 1
        return token

    def keyword(self, word: str) -> bool:
        token = self.peek()
        if token and token[0] == "word" and token[1].upper() == word:
            self.index += 1
            return True
        return False

    def parse_or(self) -> Node:
        items = [self.parse_and()]
        while self.keyword("OR"):
            items.append(self.parse_and())
        return items[0] if len(items) == 1 else BoolOp("OR", tuple(items))

    def parse_and(self) -> Node:
        items = [self.parse_not()]
        while True:
            if self.keyword("AND"):
                items.append(self.parse_not())
                continue
            token = self.peek()
            if token is None or token[0] == "rp" or (token[0] == "word"
                                                     and token[1].upper() == "OR"):
                break
            items.append(self.parse_not())
        return items[0] if len(items) == 1 else BoolOp("AND", tuple(items))

    def parse_not(self) -> Node:
        if self.keyword("NOT"):
            self.enter()
            node = Not(self.parse_not())
            self.depth -= 1
            return node
        return self.parse_term()

    def parse_term(self) -> Node:
        kind, text = self.take()
        if kind == "lp":
            self.enter()
            node = self.parse_or()
            if self.take()[0] != "rp":
                raise QueryError("missing ')'")
            self.depth -= 1
            return node
        if kind in {"rp", "op"}:
            raise QueryError(f"unexpected {text!r}")
        value = _unquote(text) if kind == "quoted" else text
        nxt = self.peek()
        if nxt is not None and nxt[0] == "op" and kind == "word":
            self.index += 1
            value_kind, raw = self.take()
            if value_kind not in ("word", "quoted"):
                raise QueryError(f"expected a value after {text}{nxt[1]}")
            compared = _unquote(raw) if value_kind == "quoted" else raw
            if nxt[1] not in ("=", "!=") and not _NUMBER.match(compared):
                raise QueryError(f"{text}{nxt[1]}{compared}: compare with a number")
            return Compare(text, nxt[1], compared)
        if kind == "word" and value.upper() in ("AND", "OR"):
            raise QueryError(f"{value} needs a condition on each side")
        if kind == "word" and value == "*":
            return MatchAll()
        return Text(value)


def parse(text: str) -> Node:
    """Parse a query; QueryError with a clear message when it is malformed or empty."""
    if len(text) > MAX_QUERY:
        raise QueryError(f"query longer than {MAX_QUERY} characters")
    if not text.strip():
        raise QueryError("empty query: give a condition, or '*' to match every event")
    parser = _Parser(tokenize(text))
    node = parser.parse_or()
    if parser.peek() is not None:
        raise QueryError(f"unexpected {parser.peek()[1]!r}")  # type: ignore[index]
    return node


def _like(value: str) -> str:
    escaped = value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped.replace("*", "%").replace("?", "_")


class Compiler:
    """Compiles a parsed query to a SQL condition for one partition's columns."""

    def __init__(self, columns: dict[str, str]) -> None:
        self.columns = columns

    def column(self, name: str) -> str | None:
        found = self.columns.get(name.lower())
        if found is None and name.lower() in ENVELOPE_ALIASES:
            found = ENVELOPE_ALIASES[name.lower()]
        return quote(found) if found is not None else None

    def compile(self, node: Node) -> str:
        if isinstance(node, MatchAll):
            return "TRUE"
        if isinstance(node, Text):
            return f"coalesce({quote(RAW)} ILIKE {literal('%' + _like(node.value) + '%')} " \
                   "ESCAPE '\\', FALSE)"
        if isinstance(node, Not):
            return f"NOT ({self.compile(node.inner)})"
        if isinstance(node, BoolOp):
            return "(" + f" {node.op} ".join(self.compile(i) for i in node.items) + ")"
        return self.compare(node)

    def compare(self, node: Compare) -> str:
        column = self.column(node.field)
        if column is None:
            return "TRUE" if node.op == "!=" else "FALSE"
        text = f"CAST({column} AS VARCHAR)"
        if node.op in ("=", "!="):
            if node.value == "*":
                condition = f"{column} IS NOT NULL"
            elif "*" in node.value or "?" in node.value:
                condition = f"coalesce({text} ILIKE {literal(_like(node.value))} ESCAPE '\\', FALSE)"
            else:
                condition = f"coalesce(lower({text}) = {literal(node.value.lower())}, FALSE)"
            return condition if node.op == "=" else f"NOT ({condition})"
        return f"coalesce(TRY_CAST({text} AS DOUBLE) {node.op} {node.value}, FALSE)"


def fields_of(node: Node) -> set[str]:
    """The field names a query refers to."""
    if isinstance(node, Compare):
        return {node.field}
    if isinstance(node, Not):
        return fields_of(node.inner)
    if isinstance(node, BoolOp):
        return set().union(*(fields_of(i) for i in node.items))
    return set()
