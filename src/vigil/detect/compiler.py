"""The Sigma compiler: one parsed Sigma rule to one DuckDB SQL boolean expression (pure).

pySigma parses the rule, applies its modifiers and resolves the condition (``1 of sel_*``,
``all of them``) into a tree of AND/OR/NOT over leaves that pair a field with one value. This
module walks that tree; :mod:`vigil.detect.compiler_values` turns each leaf into an atom and
joins them (an OR's values on one column become an ``IN`` list or ``regexp_matches``, see
:mod:`vigil.detect.compiler_merge`). The result refers to event fields only as ``"l:F"`` /
``"c:F"`` (see :mod:`vigil.detect.types`), is never NULL, and is checked to parse as DuckDB SQL
before it is returned.

Anything that cannot be compiled faithfully (an error pySigma recorded, an unresolved
``|expand`` placeholder, a regular expression RE2 cannot run, a value type without a meaning
here) raises :class:`RuleError` with the reason, rather than producing a rule that silently
matches something else.
"""

from __future__ import annotations

import sqlglot
import sqlglot.errors
from sigma.conditions import (
    ConditionAND,
    ConditionFieldEqualsValueExpression,
    ConditionItem,
    ConditionNOT,
    ConditionOR,
    ConditionValueExpression,
)
from sigma.exceptions import SigmaError
from sigma.rule import SigmaRule

from vigil.core.errors import Location, RuleError
from vigil.detect.compiler_values import AtomBuilder, Expr, combine, negate
from vigil.detect.types import CompiledRule, RuleMeta
from vigil.events.models import LogSource

__all__ = ["check_sql", "compile_rule", "rule_meta"]

ConditionNode = ConditionItem | ConditionFieldEqualsValueExpression | ConditionValueExpression


def rule_meta(rule: SigmaRule, path: str) -> RuleMeta:
    """What Vigil shows about ``rule``, read from pySigma's parsed rule (level defaults to medium)."""
    source = rule.logsource
    return RuleMeta(
        id=str(rule.id) if rule.id is not None else (rule.name or path),
        title=rule.title,
        level=str(rule.level) if rule.level is not None else "medium",
        status=str(rule.status) if rule.status is not None else None,
        author=rule.author,
        description=rule.description,
        references=tuple(str(r) for r in rule.references),
        tags=tuple(str(t) for t in rule.tags),
        falsepositives=tuple(str(f) for f in rule.falsepositives),
        logsource=LogSource(source.product, source.category, source.service),
        path=path,
    )


def compile_rule(rule: SigmaRule, meta: RuleMeta) -> CompiledRule:
    """Compile ``rule`` to one SQL boolean expression, or raise :class:`RuleError`."""
    location = Location(meta.path)
    if rule.errors:
        reasons = "; ".join(_sigma_reason(e) for e in rule.errors)
        raise RuleError(f"invalid Sigma rule: {reasons}", location=location)
    atoms = AtomBuilder()
    try:
        conditions = [_condition(c.parsed, atoms) for c in rule.detection.parsed_condition]
        sql = combine("OR", conditions).sql
        check_sql(sql)
    except RuleError as exc:
        raise RuleError(exc.message, location=location) from None
    except SigmaError as exc:
        raise RuleError(f"invalid Sigma rule: {_sigma_reason(exc)}", location=location) from None
    return CompiledRule(meta=meta, sql=sql, fields=frozenset(atoms.fields), warnings=tuple(atoms.warnings))


def check_sql(sql: str) -> None:
    """Raise :class:`RuleError` unless ``sql`` parses as a DuckDB boolean expression."""
    try:
        sqlglot.parse_one(f"SELECT 1 WHERE {sql}", read="duckdb")
    except sqlglot.errors.SqlglotError as exc:
        raise RuleError(f"compiled SQL does not parse: {exc}") from None


def _condition(node: ConditionNode | None, atoms: AtomBuilder) -> Expr:
    """The SQL of one condition (sub)tree."""
    if node is None:
        raise RuleError("the condition selects nothing (empty detection)")
    if isinstance(node, ConditionFieldEqualsValueExpression):
        try:
            return atoms.field_atom(node.field, node.value)
        except RuleError as exc:
            raise RuleError(f"field '{node.field}': {exc.message}") from None
    if isinstance(node, ConditionValueExpression):
        return atoms.keyword_atom(node.value)
    if isinstance(node, ConditionNOT):
        return negate(_condition(_child(node.args[0]), atoms))
    if isinstance(node, ConditionAND):
        return combine("AND", [_condition(_child(arg), atoms) for arg in node.args])
    if isinstance(node, ConditionOR):
        return combine("OR", [_condition(_child(arg), atoms) for arg in node.args])
    raise RuleError(f"unsupported condition element {type(node).__name__}")


def _child(arg: object) -> ConditionNode | None:
    """A condition argument as a node (pySigma resolves identifiers before we walk the tree)."""
    if arg is None or isinstance(arg, ConditionNode):
        return arg
    raise RuleError(f"unresolved condition element {arg!r}")


def _sigma_reason(error: Exception) -> str:
    """pySigma's message without the ``in <path>`` suffix it adds (the location says it)."""
    message = str(error.args[0]) if error.args else str(error)
    return message or type(error).__name__
