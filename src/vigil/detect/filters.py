"""Sigma filters (meta filters): environment tuning applied to compiled rules.

A filter is its own YAML document: a log source, the rules it tunes (``filter.rules``: ids,
``name`` s or titles; ``any`` or an empty list for every rule of the log source) and
selections with a condition. The filter's detection is compiled like a rule's (through
:func:`~vigil.detect.compiler.compile_rule` on a synthetic rule), and every rule it targets
becomes a new :class:`CompiledRule` whose SQL is ``(<rule SQL>) AND (<filter SQL>)``, with
the fields of both.

**The filter's condition says what to keep.** This is how pySigma (the reference
implementation) applies a filter — it appends ``and (<filter condition>)`` to the rule's
condition — and why published filters exclude with ``condition: not selection``. A filter
whose condition has no ``not`` therefore narrows its rules to the events it selects; such a
rule carries a warning saying so, since it is most often a filter written the other way.

A filter applies to a rule only when the log sources agree: each of the filter's
``product``, ``category`` and ``service`` is unset or equals the rule's (case-insensitive;
pySigma's containment test). A rule with no id of its own is matched by title only.
"""

from __future__ import annotations

import copy
import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

from sigma.exceptions import SigmaError
from sigma.filters import SigmaFilter
from sigma.rule import SigmaDetections, SigmaRule

from vigil.core.errors import Location, RuleError
from vigil.detect.compiler import check_sql, compile_rule, rule_meta
from vigil.detect.types import CompiledRule, RuleMeta
from vigil.events.models import LogSource

__all__ = ["CompiledFilter", "apply_filters", "compile_filter", "filter_applies",
           "normal_reference", "unused_filters"]

_NOT = re.compile(r"\bnot\b", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class CompiledFilter:
    """A Sigma filter compiled to the SQL of what its targeted rules keep."""

    id: str
    title: str
    logsource: LogSource
    targets: tuple[str, ...] | None
    """The rule references it names (normalised), or None for ``any``."""
    sql: str
    fields: frozenset[str]
    path: str
    excludes: bool
    """Whether the condition negates something (the usual ``not selection`` form)."""
    warnings: tuple[str, ...] = ()


def normal_reference(reference: str) -> str:
    """A rule reference as compared: UUIDs in canonical lower-case form, names as written."""
    try:
        return str(uuid.UUID(reference.strip()))
    except ValueError:
        return reference.strip()


def compile_filter(sigma_filter: SigmaFilter, path: str | None = None) -> CompiledFilter:
    """Compile a parsed filter, or raise :class:`RuleError` (with the filter's location:
    ``path``, else the file pySigma recorded)."""
    source = getattr(getattr(sigma_filter, "source", None), "path", None)
    path = path or (str(source) if source is not None else "<filter>")
    location = Location(path)
    if sigma_filter.errors:
        reasons = "; ".join(str(e.args[0]) if e.args else str(e) for e in sigma_filter.errors)
        raise RuleError(f"invalid Sigma filter: {reasons}", location=location)
    body = sigma_filter.filter
    try:
        detection = SigmaDetections(detections=copy.deepcopy(body.detections),
                                    condition=list(body.condition))
        synthetic = SigmaRule(title=sigma_filter.title, logsource=sigma_filter.logsource,
                              detection=detection)
    except SigmaError as exc:
        raise RuleError(f"invalid Sigma filter: {exc.args[0] if exc.args else exc}",
                        location=location) from None
    try:
        compiled = compile_rule(synthetic, rule_meta(synthetic, path))
    except RuleError as exc:
        message = exc.message.replace("invalid Sigma rule", "invalid Sigma filter", 1)
        raise RuleError(message, location=location) from None
    logsource = sigma_filter.logsource
    targets = None if isinstance(body.rules, str) else tuple(
        normal_reference(r.reference) for r in body.rules)
    ident = str(sigma_filter.id) if sigma_filter.id is not None else (sigma_filter.name or path)
    return CompiledFilter(
        id=ident, title=sigma_filter.title,
        logsource=LogSource(logsource.product, logsource.category, logsource.service),
        targets=targets, sql=compiled.sql, fields=compiled.fields, path=path,
        excludes=any(_NOT.search(c) for c in body.condition), warnings=compiled.warnings)


def _same(wanted: str | None, have: str | None) -> bool:
    return wanted is None or (have is not None and wanted.lower() == have.lower())


def filter_applies(compiled: CompiledFilter, meta: RuleMeta, name: str | None = None) -> bool:
    """True when ``compiled`` tunes the rule ``meta`` (whose Sigma ``name`` is ``name``)."""
    wanted, have = compiled.logsource, meta.logsource
    if not (_same(wanted.product, have.product) and _same(wanted.category, have.category)
            and _same(wanted.service, have.service)):
        return False
    if compiled.targets is None:
        return True
    known = {normal_reference(meta.id), meta.title}
    if name:
        known.add(name)
    return any(target in known for target in compiled.targets)


def _filtered(rule: CompiledRule, filters: Sequence[CompiledFilter]) -> CompiledRule:
    """``rule`` with the conditions of ``filters`` added."""
    sql = " AND ".join([f"({rule.sql})", *(f"({f.sql})" for f in filters)])
    check_sql(sql)
    notes = [w for f in filters for w in f.warnings]
    notes += [f"filter '{f.title}' ({f.id}) has no 'not' in its condition: it keeps only the "
              "events it selects" for f in filters if not f.excludes]
    return replace(rule, sql=sql, fields=rule.fields.union(*(f.fields for f in filters)),
                   warnings=(*rule.warnings, *notes))


def apply_filters(rules: Sequence[CompiledRule],
                  filters: Sequence[SigmaFilter | CompiledFilter],
                  names: Mapping[str, str] | None = None) -> list[CompiledRule]:
    """``rules`` with every applicable filter added (the others unchanged, same order).

    ``names`` maps a rule id to its Sigma ``name``, so that filters can name rules that way.
    A :class:`SigmaFilter` that cannot be compiled raises :class:`RuleError`.
    """
    compiled = [f if isinstance(f, CompiledFilter) else compile_filter(f) for f in filters]
    names = names or {}
    result = []
    for rule in rules:
        chosen = [f for f in compiled if filter_applies(f, rule.meta, names.get(rule.meta.id))]
        result.append(_filtered(rule, chosen) if chosen else rule)
    return result


def unused_filters(rules: Sequence[CompiledRule], filters: Sequence[CompiledFilter],
                   names: Mapping[str, str] | None = None) -> list[str]:
    """One message per filter that applies to none of ``rules`` (a likely typo to report)."""
    names = names or {}
    return [f"{f.path}: filter '{f.title}' applies to none of the loaded rules"
            for f in filters
            if not any(filter_applies(f, r.meta, names.get(r.meta.id)) for r in rules)]
