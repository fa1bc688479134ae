"""The rule catalog: import Sigma rules, list them, enable or disable them, ATT&CK coverage.

An import loads rules (``vigil.detect.loader``), compiles each one (``vigil.detect.compiler``)
and upserts it into the ``rules`` table with its SQL or the reason it failed. Re-importing is
idempotent: a rule whose text, location and compiled form are unchanged is left alone, and an
existing rule keeps its ``enabled`` flag. Rules absent from a later import are kept (imports
add and update, they never delete). The engine gets its rules from :func:`enabled_compiled`,
which rebuilds them from the stored SQL without compiling again.
"""

from __future__ import annotations

import fnmatch
import glob as globbing
import json
import re
import time
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from sigma.exceptions import SigmaError
from sqlalchemy import Select, func, or_, select
from sqlalchemy.orm import Session

from vigil.core.db import StateDB
from vigil.core.errors import InputError, Location, NotFoundError, RuleError
from vigil.core.timeutil import to_utc, utcnow
from vigil.detect.loader import LoadedRule, RuleProblem, load, locate
from vigil.detect.models import Rule
from vigil.detect.types import CompiledRule, RuleMeta
from vigil.events.models import LogSource

LEVELS = ("critical", "high", "medium", "low", "informational")
LAYER_TITLES = 30
"""At most this many rule titles in a Navigator technique comment."""
_CHUNK = 500
_SPECIFIC = re.compile(r"'[^']*'|\"[^\"]*\"|`[^`]*`|%[^%\s]+%")


@dataclass(frozen=True, slots=True)
class RuleFailure:
    """A rule that was loaded but could not be compiled."""

    id: str
    title: str
    path: str
    line: int | None
    reason: str

    def __str__(self) -> str:
        return f"{Location(self.path, self.line)}: {self.reason} [{self.title}, {self.id[:8]}]"


@dataclass(slots=True)
class ImportReport:
    """What an import did. ``loaded`` = ``compiled`` + ``failed``."""

    files: int = 0
    loaded: int = 0
    compiled: int = 0
    failures: list[RuleFailure] = field(default_factory=list)
    problems: list[RuleProblem] = field(default_factory=list)
    new: int = 0
    updated: int = 0
    unchanged: int = 0
    retired: int = 0
    """Rules loaded although deprecated or unsupported."""
    correlations: int = 0
    filters: int = 0
    seconds: float = 0.0

    @property
    def failed(self) -> int:
        return len(self.failures)

    def reasons(self) -> Counter[str]:
        """Compile failures grouped by reason (quoted specifics folded together)."""
        return Counter(reason_group(f.reason) for f in self.failures)


@dataclass(frozen=True, slots=True)
class RuleView:
    """A rule of the catalog as listed."""

    id: str
    title: str
    level: str
    status: str | None
    author: str | None
    logsource: LogSource
    tags: tuple[str, ...]
    enabled: bool
    compiled: bool
    compile_error: str | None
    path: str


@dataclass(frozen=True, slots=True)
class RuleDetail(RuleView):
    """A rule with everything kept about it."""

    description: str | None
    references: tuple[str, ...]
    falsepositives: tuple[str, ...]
    sql: str | None
    fields: tuple[str, ...]
    warnings: tuple[str, ...]
    yaml: str
    sha256: str
    imported_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class EnableResult:
    """Rules an enable/disable named, and how many actually changed."""

    matched: tuple[str, ...]
    changed: int


def reason_group(reason: str) -> str:
    """A failure reason with its specifics folded (``'x'`` -> ``'…'``, ``%p%`` -> ``%…%``)."""
    return _SPECIFIC.sub(lambda m: m.group(0)[0] + "…" + m.group(0)[-1], reason)


# --- import -------------------------------------------------------------------------------


def _compile(item: LoadedRule, report: ImportReport) -> dict[str, Any]:
    """The column values of one loaded rule, compiled or with its compile error."""
    from vigil.detect.compiler import compile_rule, rule_meta

    meta = rule_meta(item.rule, item.path)
    values: dict[str, Any] = {"sql": None, "compile_error": None, "fields": "[]", "warnings": "[]"}
    try:
        compiled = compile_rule(item.rule, meta)
    except (RuleError, SigmaError) as exc:
        reason = exc.message if isinstance(exc, RuleError) else str(exc.args[0] if exc.args else exc)
        where = exc.location if isinstance(exc, RuleError) else None
        line = where.line if where is not None and where.line is not None else locate(item, reason)
        report.failures.append(RuleFailure(meta.id, meta.title, item.path, line, reason))
        values["compile_error"] = reason
    else:
        report.compiled += 1
        values.update(sql=compiled.sql, fields=json.dumps(sorted(compiled.fields)),
                      warnings=json.dumps(list(compiled.warnings)))
    values.update(
        id=meta.id, title=meta.title, level=meta.level, status=meta.status, author=meta.author,
        description=meta.description, product=meta.logsource.product,
        category=meta.logsource.category, service=meta.logsource.service,
        tags=json.dumps(list(meta.tags)), refs=json.dumps(list(meta.references)),
        falsepositives=json.dumps(list(meta.falsepositives)), path=item.path, yaml=item.yaml,
        sha256=item.sha256)
    return values


def _chunks(items: Sequence[str]) -> Iterator[Sequence[str]]:
    for start in range(0, len(items), _CHUNK):
        yield items[start:start + _CHUNK]


def _upsert(db: StateDB, rows: list[dict[str, Any]], report: ImportReport) -> None:
    now = utcnow()
    with db.session() as session:
        existing: dict[str, Rule] = {}
        for chunk in _chunks([r["id"] for r in rows]):
            existing.update((r.id, r) for r in session.scalars(select(Rule).where(Rule.id.in_(chunk))))
        for values in rows:
            row = existing.get(values["id"])
            if row is None:
                session.add(Rule(**values, enabled=True, imported_at=now, updated_at=now))
                report.new += 1
            elif any(getattr(row, name) != value for name, value in values.items()):
                for name, value in values.items():
                    setattr(row, name, value)
                row.updated_at = now
                report.updated += 1
            else:
                report.unchanged += 1


def import_rules(db: StateDB, paths: Sequence[str | Path]) -> ImportReport:
    """Load, compile and store the Sigma rules under ``paths`` (files, folders, zips, globs)."""
    started = time.perf_counter()
    loaded = load(paths)
    report = ImportReport(files=loaded.files, loaded=len(loaded.rules), problems=loaded.problems,
                          retired=len(loaded.retired), correlations=len(loaded.correlations),
                          filters=len(loaded.filters))
    rows = [_compile(item, report) for item in loaded.rules]
    _upsert(db, rows, report)
    report.seconds = time.perf_counter() - started
    return report


# --- reading ------------------------------------------------------------------------------


def _tuple(text: str | None) -> tuple[str, ...]:
    value = json.loads(text) if text else []
    return tuple(str(v) for v in value) if isinstance(value, list) else ()


def _view(row: Rule) -> RuleView:
    return RuleView(row.id, row.title, row.level, row.status, row.author,
                    LogSource(row.product, row.category, row.service), _tuple(row.tags),
                    row.enabled, row.sql is not None, row.compile_error, row.path)


def _detail(row: Rule) -> RuleDetail:
    return RuleDetail(row.id, row.title, row.level, row.status, row.author,
                      LogSource(row.product, row.category, row.service), _tuple(row.tags),
                      row.enabled, row.sql is not None, row.compile_error, row.path,
                      row.description, _tuple(row.refs), _tuple(row.falsepositives), row.sql,
                      _tuple(row.fields), _tuple(row.warnings), row.yaml, row.sha256,
                      to_utc(row.imported_at), to_utc(row.updated_at))


def _level_rank(level: str) -> int:
    return LEVELS.index(level) if level in LEVELS else len(LEVELS)


def _search(query: Select[Rule], text: str) -> Select[Rule]:
    needle = text.strip().lower()
    columns = (Rule.id, Rule.title, Rule.author, Rule.tags, Rule.product, Rule.category,
               Rule.service, Rule.description)
    return query.where(or_(*(func.lower(c).contains(needle, autoescape=True) for c in columns)))


def list_rules(db: StateDB, level: str | None = None, enabled: bool | None = None,
               search: str | None = None) -> list[RuleView]:
    """Rules of the catalog, most severe first, filtered by level, state and a search text."""
    query = select(Rule)
    if level is not None:
        if level.lower() not in LEVELS:
            raise InputError(f"unknown level {level!r} (use one of {', '.join(LEVELS)})")
        query = query.where(func.lower(Rule.level) == level.lower())
    if enabled is not None:
        query = query.where(Rule.enabled.is_(enabled))
    if search:
        query = _search(query, search)
    with db.session() as session:
        views = [_view(r) for r in session.scalars(query)]
    return sorted(views, key=lambda v: (_level_rank(v.level), v.title.lower(), v.id))


def _find(session: Session, id_or_prefix: str) -> Rule:
    prefix = id_or_prefix.strip().lower()
    if not prefix:
        raise InputError("a rule id (or the start of one) is needed")
    row = session.get(Rule, prefix)
    if row is not None:
        return row
    rows = list(session.scalars(select(Rule).where(Rule.id.startswith(prefix, autoescape=True))
                                .order_by(Rule.id).limit(6)))
    if not rows:
        raise NotFoundError(f"no rule with id {id_or_prefix!r}")
    if len(rows) > 1:
        shown = ", ".join(r.id for r in rows[:5]) + (", ..." if len(rows) > 5 else "")
        raise InputError(f"{id_or_prefix!r} names several rules ({shown}): give more of the id")
    return rows[0]


def get_rule(db: StateDB, id_or_prefix: str) -> RuleDetail:
    """The rule with this id, or the only one whose id starts with it."""
    with db.session() as session:
        return _detail(_find(session, id_or_prefix))


def _matching(session: Session, spec: str) -> list[Rule]:
    if not globbing.has_magic(spec):
        return [_find(session, spec)]
    pattern = spec.strip().lower()
    rows = [r for r in session.scalars(select(Rule))
            if fnmatch.fnmatchcase(r.id.lower(), pattern) or fnmatch.fnmatchcase(r.title.lower(), pattern)]
    if not rows:
        raise NotFoundError(f"no rule id or title matches {spec!r}")
    return rows


def set_enabled(db: StateDB, ids_or_globs: str | Sequence[str], enabled: bool) -> EnableResult:
    """Enable or disable rules named by id, id prefix, or glob on ids and titles.

    Nothing changes when one of the names matches no rule (:class:`NotFoundError`).
    """
    specs = [ids_or_globs] if isinstance(ids_or_globs, str) else list(ids_or_globs)
    if not specs:
        raise InputError("name at least one rule id or glob")
    now = utcnow()
    with db.session() as session:
        rows = {r.id: r for spec in specs for r in _matching(session, spec)}
        changed = 0
        for row in rows.values():
            if row.enabled != enabled:
                row.enabled = enabled
                row.updated_at = now
                changed += 1
    return EnableResult(tuple(sorted(rows)), changed)


def _meta(row: Rule) -> RuleMeta:
    return RuleMeta(id=row.id, title=row.title, level=row.level, status=row.status,
                    author=row.author, description=row.description,
                    references=_tuple(row.refs), tags=_tuple(row.tags),
                    falsepositives=_tuple(row.falsepositives),
                    logsource=LogSource(row.product, row.category, row.service), path=row.path)


def enabled_compiled(db: StateDB) -> list[CompiledRule]:
    """The enabled rules that compiled, rebuilt from the stored SQL (no compiling)."""
    query = select(Rule).where(Rule.enabled.is_(True), Rule.sql.is_not(None)).order_by(Rule.id)
    with db.session() as session:
        return [CompiledRule(_meta(r), r.sql or "", frozenset(_tuple(r.fields)), _tuple(r.warnings))
                for r in session.scalars(query)]


# --- ATT&CK coverage ----------------------------------------------------------------------


def coverage(db: StateDB) -> dict[str, list[str]]:
    """ATT&CK technique id -> ids of the enabled, compiled rules tagged with it."""
    found: dict[str, set[str]] = {}
    query = select(Rule).where(Rule.enabled.is_(True), Rule.sql.is_not(None))
    with db.session() as session:
        for row in session.scalars(query):
            for technique in _meta(row).techniques:
                found.setdefault(technique, set()).add(row.id)
    return {t: sorted(found[t]) for t in sorted(found)}


def titles(db: StateDB, ids: Sequence[str] | None = None) -> dict[str, str]:
    """Rule id -> title (of every rule when ``ids`` is None)."""
    query = select(Rule.id, Rule.title)
    with db.session() as session:
        if ids is None:
            return {rule_id: title for rule_id, title in session.execute(query)}
        result: dict[str, str] = {}
        for chunk in _chunks(sorted(set(ids))):
            result.update((rule_id, title) for rule_id, title
                          in session.execute(query.where(Rule.id.in_(chunk))))
        return result


def _comment(ids: list[str], names: Mapping[str, str]) -> str:
    shown = sorted(names.get(i, i) for i in ids)
    text = f"{len(ids)} rule{'s' if len(ids) != 1 else ''}: " + "; ".join(shown[:LAYER_TITLES])
    return text + (f"; … and {len(shown) - LAYER_TITLES} more" if len(shown) > LAYER_TITLES else "")


def navigator_layer(covered: Mapping[str, Sequence[str]], names: Mapping[str, str] | None = None,
                    name: str = "Vigil detection coverage") -> dict[str, object]:
    """An ATT&CK Navigator layer (format 4.5): score = rules per technique, titles in comments."""
    names = names or {}
    top = max((len(ids) for ids in covered.values()), default=0)
    techniques = [{"techniqueID": technique, "score": len(ids), "enabled": True,
                   "comment": _comment(list(ids), names)}
                  for technique, ids in sorted(covered.items()) if ids]
    return {
        "name": name,
        "versions": {"navigator": "5.1.0", "layer": "4.5"},
        "domain": "enterprise-attack",
        "description": f"Enabled Vigil detection rules per ATT&CK technique "
                       f"({len(techniques)} techniques).",
        "sorting": 3,
        "layout": {"layout": "side", "showID": True, "showName": True,
                   "expandedSubtechniques": "annotated"},
        "hideDisabled": False,
        "techniques": techniques,
        "gradient": {"colors": ["#dbeafe", "#1e40af"], "minValue": 0, "maxValue": max(top, 1)},
        "legendItems": [],
        "metadata": [{"name": "generated by", "value": "Vigil"},
                     {"name": "generated at", "value": utcnow().strftime("%Y-%m-%dT%H:%M:%SZ")}],
    }
