"""STIX 2.1 patterns: validation (with ``stix2patterns``), the values live matching can look for,
and the pattern of a simple indicator for an export.

A pattern that is exactly one equality on a supported object path (``[ipv4-addr:value =
'198.51.100.7']``, ``[file:hashes.'SHA-256' = '...']``, ``[ipv4-addr:value ISSUBSET
'10.0.0.0/8']``) is a simple indicator of that type. A pattern that is a pure disjunction of
equalities (``[a] OR [b]``, ``[x:value = 'a' OR x:value = 'b']``, ``IN ('a', 'b')``) keeps
every supported value as an observable: matching any one of them is a match of the whole
pattern. ``AND``, ``FOLLOWEDBY``, qualifiers and the other operators leave a pattern no event
field can match alone (no observables).

Most feed patterns are single equalities or disjunctions of them on supported paths; those are
read by a small tokenizer that accepts only that subset of the grammar, without the ANTLR
parser of ``stix2patterns``, which costs one to three milliseconds per pattern in Python (a
TAXII collection of 50,000 indicators would take minutes). Everything else is validated and
read by ``stix2patterns``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Final

from stix2patterns.v21.grammars.STIXPatternParser import STIXPatternParser as Grammar
from stix2patterns.v21.grammars.STIXPatternVisitor import STIXPatternVisitor
from stix2patterns.v21.pattern import Pattern
from stix2patterns.validator import run_validator

from vigil.core.errors import InputError
from vigil.intel.normalize import observable
from vigil.intel.types import IndicatorType, Observable

MAX_PATTERN: Final = 8192
"""The longest pattern read (the longest value an indicator may have)."""

_SIMPLE_PATHS: Final[dict[tuple[str, ...], IndicatorType]] = {
    ("ipv4-addr", "value"): IndicatorType.IPV4,
    ("ipv6-addr", "value"): IndicatorType.IPV6,
    ("domain-name", "value"): IndicatorType.DOMAIN,
    ("url", "value"): IndicatorType.URL,
    ("email-addr", "value"): IndicatorType.EMAIL,
    ("email-message", "from_ref", "value"): IndicatorType.EMAIL,
    ("email-message", "sender_ref", "value"): IndicatorType.EMAIL,
    ("file", "name"): IndicatorType.FILENAME,
    ("x-ja3", "value"): IndicatorType.JA3,
}
_HASHES: Final = {"MD5": IndicatorType.MD5, "SHA1": IndicatorType.SHA1, "SHA256": IndicatorType.SHA256,
                  "SHA512": IndicatorType.SHA512}
_USER_AGENT: Final = ("network-traffic", "extensions", "http-request-ext", "request_header")
_BUILD_PATHS: Final = {
    IndicatorType.IPV4: "ipv4-addr:value",
    IndicatorType.IPV6: "ipv6-addr:value",
    IndicatorType.DOMAIN: "domain-name:value",
    IndicatorType.URL: "url:value",
    IndicatorType.EMAIL: "email-addr:value",
    IndicatorType.MD5: "file:hashes.MD5",
    IndicatorType.SHA1: "file:hashes.'SHA-1'",
    IndicatorType.SHA256: "file:hashes.'SHA-256'",
    IndicatorType.SHA512: "file:hashes.'SHA-512'",
    IndicatorType.FILENAME: "file:name",
    IndicatorType.JA3: "x-ja3:value",
    IndicatorType.USER_AGENT: "network-traffic:extensions.'http-request-ext'.request_header.'User-Agent'",
}
_IP_PATHS: Final[dict[tuple[str, ...], int]] = {("ipv4-addr", "value"): 4, ("ipv6-addr", "value"): 6}

# The subset of the grammar read without the parser: observations `[...]` joined by OR, each a
# disjunction of `path = 'literal'` or `path IN ('literal', ...)` on a supported path.
# Identifiers, string literals (escaping only \' and \\) and keywords (upper case) as the STIX
# lexer defines them; spaces as its WS rule (the ASCII ones; anything else goes to the parser).
_COMPONENT = r"(?:[A-Za-z_][A-Za-z0-9_]*|'[^'\\]*')"
_TOKEN = re.compile(
    rf"[ \t\r\n]*(?:(?P<path>[A-Za-z_][A-Za-z0-9_-]*:{_COMPONENT}(?:\.{_COMPONENT})*)"
    r"|(?P<string>'(?:[^'\\]|\\['\\])*')|(?P<word>(?:OR|IN)\b)|(?P<mark>[\[\]()=,]))"
)
_END = re.compile(r"[ \t\r\n]*")
_ESCAPE = re.compile(r"\\(['\\])")


@dataclass(frozen=True, slots=True)
class PatternValues:
    """What a pattern means for matching: a simple indicator (``kind`` and its canonical
    ``value``) or a ``stix-pattern`` (``value`` is the pattern) with the ``observables`` that
    each match it on their own (none when no single value does)."""

    kind: IndicatorType
    value: str
    observables: tuple[Observable, ...]


@dataclass(frozen=True, slots=True)
class _Leaf:
    path: tuple[str, ...]
    value: str | None
    """The string compared with, None for a literal of another kind (number, boolean...)."""
    subset: bool = False


def analyse(pattern: str) -> PatternValues:
    """Validate a STIX 2.1 pattern and find the values it matches.

    :class:`InputError` when the pattern is invalid (``invalid pattern: ...``) or compares a
    supported object path with a value that is not valid for its type.
    """
    text = pattern.strip()
    if len(text) > MAX_PATTERN:
        raise InputError(f"invalid pattern: longer than {MAX_PATTERN} characters")
    leaves = _fast(text)
    if leaves is not None:
        return _values(text, leaves)
    return _values(text, _parse(text))


def validate(pattern: str) -> None:
    """:class:`InputError` (``invalid pattern: ...``) unless ``stix2patterns`` accepts the pattern."""
    if not pattern.strip():
        raise InputError("invalid pattern: empty")
    try:
        errors: list[str] = run_validator(pattern, stix_version="2.1")
    except RecursionError:
        errors = ["nested too deeply"]
    except Exception as exc:  # the generated ANTLR parser raises assorted errors on odd input
        errors = [f"{type(exc).__name__}: {exc}"]
    if errors:
        messages = "; ".join(str(error).removeprefix("FAIL: ") for error in errors)
        raise InputError(f"invalid pattern: {messages}")


def build(kind: IndicatorType, value: str) -> str:
    """The pattern of a simple indicator's canonical value (``[domain-name:value = 'x']``)."""
    if kind is IndicatorType.STIX_PATTERN:
        return value
    if kind is IndicatorType.CIDR:
        path = "ipv6-addr:value" if ":" in value else "ipv4-addr:value"
    else:
        path = _BUILD_PATHS[kind]
    return f"[{path} = {quote(value)}]"


def quote(value: str) -> str:
    """A STIX pattern string literal: quoted, with ``\\`` and ``'`` escaped."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _tokens(text: str) -> list[tuple[str, str]] | None:
    """The tokens of a pattern in the fast subset (kind: path, string, OR, IN or the mark
    itself), None when some text is outside it."""
    tokens: list[tuple[str, str]] = []
    position = 0
    while (end := _END.match(text, position)) is not None and end.end() < len(text):
        match = _TOKEN.match(text, position)
        if match is None or match.lastgroup is None:
            return None
        value = match.group(match.lastgroup)
        tokens.append((value if match.lastgroup in ("word", "mark") else match.lastgroup, value))
        position = match.end()
    return tokens


def _fast(text: str) -> list[_Leaf] | None:
    """The equalities of a pattern in the fast subset, None when the parser must read it."""
    tokens = _tokens(text) if len(text) < MAX_PATTERN else None
    if not tokens:
        return None
    tokens.append(("end", ""))
    leaves: list[_Leaf] = []
    position = 0
    while True:
        if tokens[position][0] != "[":
            return None
        position = _fast_comparisons(tokens, position + 1, leaves)
        if position < 0 or tokens[position][0] != "]":
            return None
        if tokens[position + 1][0] == "end":
            return leaves
        if tokens[position + 1][0] != "OR":
            return None
        position += 2


def _fast_comparisons(tokens: list[tuple[str, str]], position: int, leaves: list[_Leaf]) -> int:
    """Read ``path = 'x' OR path IN ('y', 'z') ...``; the position after it, -1 when it is not
    in the fast subset."""
    while True:
        kind, text = tokens[position]
        if kind != "path":
            return -1
        path = _split_path(text)
        if _path_kind(path) is None:
            return -1
        operator = tokens[position + 1][0]
        if operator == "=" and tokens[position + 2][0] == "string":
            leaves.append(_Leaf(path, _unquote(tokens[position + 2][1])))
            position += 3
        elif operator == "IN" and tokens[position + 2][0] == "(":
            position += 3
            while tokens[position][0] == "string" and tokens[position + 1][0] in (",", ")"):
                leaves.append(_Leaf(path, _unquote(tokens[position][1])))
                position += 2
                if tokens[position - 1][0] == ")":
                    break
            else:
                return -1
        else:
            return -1
        if tokens[position][0] != "OR":
            return position
        position += 1


def _split_path(text: str) -> tuple[str, ...]:
    """The object type and components of a path in the fast subset (quoted components there
    have no escapes)."""
    kind, _, rest = text.partition(":")
    parts = re.findall(r"'[^']*'|[^.']+", rest)
    return (kind, *(part[1:-1] if part.startswith("'") else part for part in parts))


def _path_kind(path: tuple[str, ...]) -> IndicatorType | None:
    """The indicator type an object path holds, None for a path Vigil does not match on."""
    kind = _SIMPLE_PATHS.get(path)
    if kind is not None:
        return kind
    if len(path) == 3 and path[:2] == ("file", "hashes"):
        return _HASHES.get(path[2].upper().replace("-", "").replace("_", ""))
    if len(path) == 5 and path[:4] == _USER_AGENT and path[4].lower() == "user-agent":
        return IndicatorType.USER_AGENT
    if len(path) == 4 and path[:3] == ("network-traffic", "extensions", "x-ja3"):
        return IndicatorType.JA3
    return None


def _values(pattern: str, leaves: list[_Leaf] | None) -> PatternValues:
    if leaves is None:
        return PatternValues(IndicatorType.STIX_PATTERN, pattern, ())
    found: dict[Observable, None] = {}
    unsupported = 0
    for leaf in leaves:
        item = _observable(leaf)
        if item is None:
            unsupported += 1
        else:
            found[item] = None
    observables = tuple(found)
    if len(observables) == 1 and not unsupported:
        only = observables[0]
        return PatternValues(only.type, only.value, observables)
    return PatternValues(IndicatorType.STIX_PATTERN, pattern, observables)


def _observable(leaf: _Leaf) -> Observable | None:
    kind = _path_kind(leaf.path)
    if kind is None:
        return None
    where = f"{leaf.path[0]}:{'.'.join(leaf.path[1:])}"
    if leaf.value is None:
        raise InputError(f"{where} is compared with a value that is not a string")
    if leaf.subset:
        kind = IndicatorType.CIDR
    try:
        found = observable(kind, leaf.value)
    except InputError as exc:
        raise InputError(f"invalid {kind.value} value for {where}: {exc.message}") from None
    version = _IP_PATHS.get(leaf.path)
    if version is not None and (":" in found.value) != (version == 6):
        raise InputError(f"invalid value for {where}: {leaf.value!r} is not an IPv{version} address")
    return found


class _Root(STIXPatternVisitor):  # type: ignore[misc]  # stix2patterns has no type hints
    """Hands back the root of the parse tree; the walk below is iterative."""

    def visitPattern(self, ctx: Any) -> Any:
        return ctx


def _parse(pattern: str) -> list[_Leaf] | None:
    """The equalities of a pattern that is a pure disjunction of them, None for any other
    valid pattern; :class:`InputError` for an invalid one."""
    validate(pattern)
    try:
        root = Pattern(pattern).visit(_Root())
        return _disjunction(root)
    except RecursionError:
        raise InputError("invalid pattern: nested too deeply") from None
    except InputError:
        raise
    except Exception as exc:  # validated above; anything else is a parser quirk on odd input
        raise InputError(f"invalid pattern: {type(exc).__name__}: {exc}") from None


def _disjunction(root: Any) -> list[_Leaf] | None:
    leaves: list[_Leaf] = []
    stack = [root]
    while stack:
        ctx = stack.pop()
        if isinstance(ctx, Grammar.PropTestContext) and not isinstance(ctx, Grammar.PropTestParenContext):
            found = _comparison(ctx)
            if found is None:
                return None
            leaves.extend(found)
            continue
        children = _children(ctx)
        if children is None:
            return None
        stack.extend(reversed(children))
    return leaves


def _children(ctx: Any) -> list[Any] | None:
    """The operands of an ``OR`` (or the one inner expression of a node that only wraps one);
    None for ``AND``, ``FOLLOWEDBY`` and qualifiers."""
    if isinstance(ctx, Grammar.PatternContext):
        return [ctx.observationExpressions()]
    if isinstance(ctx, Grammar.ObservationExpressionsContext):
        return None if ctx.FOLLOWEDBY() else [ctx.observationExpressionOr()]
    if isinstance(ctx, Grammar.ObservationExpressionOrContext):
        return list(ctx.observationExpressionOr()) if ctx.OR() else [ctx.observationExpressionAnd()]
    if isinstance(ctx, Grammar.ObservationExpressionAndContext):
        return None if ctx.AND() else [ctx.observationExpression()]
    if isinstance(ctx, Grammar.ObservationExpressionSimpleContext):
        return [ctx.comparisonExpression()]
    if isinstance(ctx, Grammar.ObservationExpressionCompoundContext):
        return [ctx.observationExpressions()]
    if isinstance(ctx, Grammar.ComparisonExpressionContext):
        return list(ctx.comparisonExpression()) if ctx.OR() else [ctx.comparisonExpressionAnd()]
    if isinstance(ctx, Grammar.ComparisonExpressionAndContext):
        return None if ctx.AND() else [ctx.propTest()]
    if isinstance(ctx, Grammar.PropTestParenContext):
        return [ctx.comparisonExpression()]
    return None


def _comparison(ctx: Any) -> list[_Leaf] | None:
    """The equalities of one comparison (``=``, ``IN``, ``ISSUBSET`` on an IP path)."""
    if ctx.NOT():
        return None
    if isinstance(ctx, Grammar.PropTestEqualContext):
        if ctx.NEQ():
            return None
        return [_Leaf(_path(ctx.objectPath()), _string(ctx.primitiveLiteral()))]
    if isinstance(ctx, Grammar.PropTestSetContext):
        path = _path(ctx.objectPath())
        return [_Leaf(path, _string(literal)) for literal in ctx.setLiteral().primitiveLiteral()]
    if isinstance(ctx, Grammar.PropTestIsSubsetContext):
        path = _path(ctx.objectPath())
        if path not in _IP_PATHS:
            return None
        return [_Leaf(path, _unquote(ctx.StringLiteral().getText()), subset=True)]
    return None


def _string(literal: Any) -> str | None:
    orderable = literal.orderableLiteral()
    if orderable is None or orderable.StringLiteral() is None:
        return None
    return _unquote(orderable.StringLiteral().getText())


def _unquote(token: str) -> str:
    return _ESCAPE.sub(r"\1", token[1:-1])


def _path(ctx: Any) -> tuple[str, ...]:
    first = ctx.firstPathComponent()
    parts = [ctx.objectType().getText(),
             _unquote(first.getText()) if first.StringLiteral() else first.getText()]
    pending = [ctx.objectPathComponent()] if ctx.objectPathComponent() is not None else []
    while pending:
        step = pending.pop()
        if isinstance(step, Grammar.PathStepContext):
            pending.extend(reversed(step.objectPathComponent()))
        elif isinstance(step, Grammar.KeyPathStepContext):
            key = step.StringLiteral()
            name = key.getText() if key is not None else step.IdentifierWithoutHyphen().getText()
            parts.append(_unquote(name) if key is not None else name)
        elif isinstance(step, Grammar.IndexPathStepContext):
            parts.append("[*]" if step.ASTERISK() else f"[{step.getText()[1:-1]}]")
    return tuple(parts)
