"""The rule catalog: import Sigma rules, list them, enable or disable them, ATT&CK coverage.

An import loads rules (``vigil.detect.loader``), compiles each one (``vigil.detect.compiler``)
and upserts it into the ``rules`` table with its SQL or the reason it failed. Re-importing is
idempotent: a rule whose text, location and compiled form are unchanged is left alone, and an
existing rule keeps its ``enabled`` flag. Rules absent from a later import are kept (imports
add and update, they never delete). The engine gets its rules from :func:`enabled_compiled`,
which rebuilds them from the stored SQL without compiling again.

Sigma filters and correlation rules are kept the same way in ``rule_documents`` (keyed by
their id, else their ``name``), with their YAML as written in the file (one document of a
multi-document file). A filter that does not compile, or a malformed correlation, is stored
with its error and reported. Whether a correlation's references resolve depends on the
other rules, so that is checked (and reported) at import against the whole catalog and again
whenever the engine loads: :func:`ruleset` gives the enabled rules with the enabled filters
applied and the enabled correlations that can be evaluated over them; :func:`enabled_compiled`
gives the same rules (filters take effect everywhere). Disabling a rule that a correlation
refers to makes that correlation unusable too.
"""

from __future__ import annotations

import fnmatch
import glob as globbing
import hashlib
import json
import re
import time
import zipfile
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import yaml
from sigma.collection import SigmaCollection
from sigma.correlations import SigmaCorrelationRule
from sigma.exceptions import SigmaError, SigmaRuleLocation
from sigma.filters import SigmaFilter
from sqlalchemy import Select, func, or_, select
from sqlalchemy.orm import Session

from vigil.core.db import StateDB
from vigil.core.errors import InputError, Location, NotFoundError, RuleError
from vigil.core.timeutil import to_utc, utcnow
from vigil.detect.loader import LoadedRule, LoadResult, RuleProblem, load, locate
from vigil.detect.models import Rule, RuleDocument
from vigil.detect.types import CompiledRule, RuleMeta
from vigil.events.models import LogSource

if TYPE_CHECKING:
    from vigil.detect.filters import CompiledFilter
    from vigil.detect.hunt import RuleSet

LEVELS = ("critical", "high", "medium", "low", "informational")
KINDS = ("rule", "filter", "correlation")
_Model = TypeVar("_Model", Rule, RuleDocument)
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
    """Correlation rules stored (malformed ones too, with their error)."""
    filters: int = 0
    """Filters stored (ones that do not compile too, with their error)."""
    documents: Counter[str] = field(default_factory=Counter)
    """``new``, ``updated``, ``unchanged``: what the import did to filters and correlations."""
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
    """Usable: a rule that compiled, a filter that compiled, a well-formed correlation."""
    compile_error: str | None
    path: str
    kind: str
    """``rule``, ``filter`` or ``correlation``."""


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
    """Rules (filters, correlations) an enable/disable named, and how many actually changed."""

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
        id=meta.id, title=meta.title, name=str(item.rule.name) if item.rule.name else None,
        level=meta.level, status=meta.status, author=meta.author,
        description=meta.description, product=meta.logsource.product,
        category=meta.logsource.category, service=meta.logsource.service,
        tags=json.dumps(list(meta.tags)), refs=json.dumps(list(meta.references)),
        falsepositives=json.dumps(list(meta.falsepositives)), path=item.path, yaml=item.yaml,
        sha256=item.sha256)
    return values


def _chunks(items: Sequence[str]) -> Iterator[Sequence[str]]:
    for start in range(0, len(items), _CHUNK):
        yield items[start:start + _CHUNK]


def _upsert(db: StateDB, model: type[_Model], rows: list[dict[str, Any]]) -> Counter[str]:
    """Insert or update rows by id (an existing row keeps ``enabled``): new/updated/unchanged."""
    now = utcnow()
    counts: Counter[str] = Counter(new=0, updated=0, unchanged=0)
    with db.session() as session:
        existing: dict[str, _Model] = {}
        for chunk in _chunks([r["id"] for r in rows]):
            existing.update((r.id, r) for r in session.scalars(
                select(model).where(model.id.in_(chunk))))
        for values in rows:
            row = existing.get(values["id"])
            if row is None:
                session.add(model(**values, enabled=True, imported_at=now, updated_at=now))
                counts["new"] += 1
            elif any(getattr(row, name) != value for name, value in values.items()):
                for name, value in values.items():
                    setattr(row, name, value)
                row.updated_at = now
                counts["updated"] += 1
            else:
                counts["unchanged"] += 1
    return counts


def import_rules(db: StateDB, paths: Sequence[str | Path]) -> ImportReport:
    """Load and store the Sigma rules, filters and correlations under ``paths`` (files,
    folders, zips, globs); rules are compiled, filters too."""
    started = time.perf_counter()
    loaded = load(paths)
    report = ImportReport(files=loaded.files, loaded=len(loaded.rules), problems=loaded.problems,
                          retired=len(loaded.retired))
    rows = [_compile(item, report) for item in loaded.rules]
    counts = _upsert(db, Rule, rows)
    report.new, report.updated, report.unchanged = (counts["new"], counts["updated"],
                                                    counts["unchanged"])
    documents = _document_rows(loaded, report)
    report.documents = _upsert(db, RuleDocument, documents)
    report.filters = sum(1 for d in documents if d["kind"] == "filter")
    report.correlations = len(documents) - report.filters
    if documents:
        report.problems += _catalog_problems(db, documents)
    report.seconds = time.perf_counter() - started
    return report


# --- filters and correlations: import -------------------------------------------------------


Document = SigmaFilter | SigmaCorrelationRule


def _origin(item: Document) -> str:
    path = getattr(getattr(item, "source", None), "path", None)
    return str(path) if path is not None else "<unknown>"


def _read_origin(name: str) -> str | None:
    """The text of a loaded input: a file, or ``archive!member`` of a zip archive."""
    try:
        if Path(name).is_file():
            return Path(name).read_bytes().decode("utf-8-sig")
        for at in (i for i, c in enumerate(name) if c == "!"):
            archive = Path(name[:at])
            if archive.is_file() and zipfile.is_zipfile(archive):
                with zipfile.ZipFile(archive) as opened:
                    return opened.read(name[at + 1:]).decode("utf-8-sig")
    except (OSError, UnicodeDecodeError, zipfile.BadZipFile, KeyError, RuntimeError,
            NotImplementedError):
        return None
    return None


def _matches(node: yaml.Node, item: Document) -> bool:
    if not isinstance(node, yaml.MappingNode):
        return False
    top = {str(k.value): str(v.value).strip() for k, v in node.value
           if isinstance(v, yaml.ScalarNode)}
    if item.id is not None:
        return top.get("id", "").lower() == str(item.id)
    if item.name:
        return top.get("name") == item.name
    return top.get("title") == item.title


def _document_text(text: str, item: Document) -> tuple[str, int] | None:
    """The YAML document of ``text`` that ``item`` was parsed from, and its first line."""
    try:
        nodes = list(yaml.compose_all(text, Loader=yaml.CSafeLoader))
    except yaml.YAMLError:
        return None
    if len(nodes) == 1:
        return (text, 1) if _matches(nodes[0], item) else None
    for node in nodes:
        if _matches(node, item):
            lines = text.splitlines(keepends=True)
            end = node.end_mark.line + (1 if node.end_mark.column else 0)
            return "".join(lines[node.start_mark.line:end]).rstrip() + "\n", node.start_mark.line + 1
    return None


def _dumped(item: Document) -> str:
    """A YAML text for ``item`` rebuilt by pySigma (when its file cannot be read again)."""
    document = item.to_dict()
    if isinstance(item, SigmaCorrelationRule) and item.generate:
        document["correlation"]["generate"] = True  # to_dict leaves it out
    return yaml.safe_dump(document, sort_keys=False, allow_unicode=True)


def _source_text(item: Document, texts: dict[str, str | None]) -> tuple[str, int | None]:
    """The item's YAML as written (else as pySigma rebuilds it) and the line it starts at."""
    name = _origin(item)
    if name not in texts:
        texts[name] = _read_origin(name)
    text = texts[name]
    found = _document_text(text, item) if text is not None else None
    if found is not None and _parsed_kind(found[0], name) is type(item):
        return found
    return _dumped(item), None


def _parsed_kind(text: str, path: str) -> type | None:
    try:
        return type(parse_document(text, path))
    except RuleError:
        return None


def _document_error(item: Document, path: str) -> str | None:
    """Why the filter does not compile or the correlation is malformed (None: usable)."""
    from vigil.detect.correlation import check_correlation
    from vigil.detect.filters import compile_filter

    try:
        if isinstance(item, SigmaFilter):
            compile_filter(item, path)
        else:
            check_correlation(item, path)
    except RuleError as exc:
        return exc.message
    return None


def _document_row(item: Document, texts: dict[str, str | None],
                  report: ImportReport) -> dict[str, Any] | None:
    kind = "filter" if isinstance(item, SigmaFilter) else "correlation"
    path = _origin(item)
    text, line = _source_text(item, texts)
    ident = str(item.id) if item.id is not None else (item.name or "")
    if not ident:
        report.problems.append(RuleProblem(path, line, f"the {kind} '{item.title}' has neither "
                                           "an id nor a name (Vigil needs one)"))
        return None
    error = _document_error(item, path)
    if error is not None:
        report.problems.append(RuleProblem(path, line, error))
    source = getattr(item, "logsource", None)
    return dict(
        id=ident, kind=kind, title=item.title, name=item.name or None,
        level=str(item.level) if item.level is not None else "medium",
        status=str(item.status) if item.status is not None else None, author=item.author,
        description=item.description, product=getattr(source, "product", None),
        category=getattr(source, "category", None), service=getattr(source, "service", None),
        tags=json.dumps([str(t) for t in item.tags]),
        refs=json.dumps([str(r) for r in item.references]),
        falsepositives=json.dumps([str(f) for f in item.falsepositives]), path=path, yaml=text,
        sha256=hashlib.sha256(text.encode("utf-8")).hexdigest(), error=error)


def _document_rows(loaded: LoadResult, report: ImportReport) -> list[dict[str, Any]]:
    """The column values of the loaded filters and correlations (bad ones reported)."""
    texts: dict[str, str | None] = {}
    rows: dict[str, dict[str, Any]] = {}
    items: list[Document] = [*loaded.filters, *loaded.correlations]
    for item in items:
        row = _document_row(item, texts, report)
        if row is None:
            continue
        if row["id"] in rows:
            report.problems.append(RuleProblem(row["path"], None, f"duplicate {row['kind']} id "
                                               f"{row['id']} (first in {rows[row['id']]['path']})"))
            continue
        rows[row["id"]] = row
    return list(rows.values())


def _catalog_problems(db: StateDB, imported: list[dict[str, Any]]) -> list[RuleProblem]:
    """What keeps the imported filters and correlations from taking effect with the rules of
    the whole catalog (enabled or not): filters that tune no rule, correlations whose
    references do not resolve."""
    from vigil.detect.correlation import index_rules, usable_correlations
    from vigil.detect.filters import unused_filters

    rules, names = _compiled_rules(db, enabled_only=False)
    filters, correlations, _ = _stored_documents(db, enabled_only=False)
    ids = {d["id"] for d in imported}
    messages = unused_filters(rules, [f for f in filters if f.id in ids], names)
    if correlations:
        messages += usable_correlations(correlations, index_rules(rules, names))[1]
    paths = {d["path"] for d in imported}
    problems = []
    for message in messages:
        path = next((p for p in paths if message.startswith(f"{p}: ")), None)
        if path is not None:
            problems.append(RuleProblem(path, None, message[len(path) + 2:]))
    return problems


# --- filters and correlations: loading -----------------------------------------------------


def parse_document(text: str, path: str = "<document>") -> Document:
    """The one Sigma filter or correlation rule of a YAML document, or :class:`RuleError`."""
    try:
        collection = SigmaCollection.from_yaml(text, collect_errors=True,
                                               source=SigmaRuleLocation(Path(path)),
                                               collect_filters=True, resolve_references=False)
    except (yaml.YAMLError, SigmaError, ValueError, TypeError, AttributeError, KeyError) as exc:
        raise RuleError(f"cannot parse the stored document: {exc}",
                        location=Location(path)) from None
    found = [i for i in [*collection.rules, *collection.filters]
             if isinstance(i, SigmaFilter | SigmaCorrelationRule)]
    if len(found) != 1:
        raise RuleError("the stored document holds no single filter or correlation",
                        location=Location(path))
    return found[0]


def _stored_documents(db: StateDB, enabled_only: bool = True,
                      ) -> tuple[list[CompiledFilter], list[SigmaCorrelationRule], list[str]]:
    """The stored filters (compiled) and correlations (parsed) without an error."""
    from vigil.detect.filters import compile_filter

    query = select(RuleDocument.id, RuleDocument.path, RuleDocument.yaml).where(
        RuleDocument.error.is_(None)).order_by(RuleDocument.kind, RuleDocument.id)
    if enabled_only:
        query = query.where(RuleDocument.enabled.is_(True))
    with db.session() as session:
        stored = list(session.execute(query))
    filters: list[CompiledFilter] = []
    correlations: list[SigmaCorrelationRule] = []
    problems: list[str] = []
    for ident, path, text in stored:
        try:
            item = parse_document(text, path)
            if isinstance(item, SigmaFilter):
                filters.append(compile_filter(item, path))
            else:
                correlations.append(item)
        except RuleError as exc:
            problems.append(f"{ident}: {exc}")
    return filters, correlations, problems


def _compiled_rules(db: StateDB, enabled_only: bool = True,
                    ) -> tuple[list[CompiledRule], dict[str, str]]:
    """Rules that compiled, rebuilt from the stored SQL, and their Sigma names by id."""
    query = select(Rule).where(Rule.sql.is_not(None)).order_by(Rule.id)
    if enabled_only:
        query = query.where(Rule.enabled.is_(True))
    with db.session() as session:
        rows = list(session.scalars(query))
        rules = [CompiledRule(_meta(r), r.sql or "", frozenset(_tuple(r.fields)),
                              _tuple(r.warnings)) for r in rows]
        return rules, {r.id: r.name for r in rows if r.name}


def _filtered(db: StateDB) -> tuple[list[CompiledRule], dict[str, str], list[SigmaCorrelationRule],
                                    list[str]]:
    from vigil.detect.filters import apply_filters

    rules, names = _compiled_rules(db)
    filters, correlations, problems = _stored_documents(db)
    if filters:
        rules = apply_filters(rules, filters, names)
    return rules, names, correlations, problems


def revision(db: StateDB) -> tuple[object, ...]:
    """A value that changes whenever a rule, filter or correlation is added or changed
    (enabling and disabling too): what the engine has loaded need not be loaded again."""
    with db.session() as session:
        return tuple(item for model in (Rule, RuleDocument) for item in session.execute(
            select(func.count(), func.max(model.updated_at)).select_from(model)).one())


def enabled_compiled(db: StateDB) -> list[CompiledRule]:
    """The enabled rules that compiled, rebuilt from the stored SQL (no compiling), with the
    enabled filters applied."""
    return _filtered(db)[0]


def ruleset(db: StateDB) -> RuleSet:
    """The enabled rules (filters applied, as :func:`enabled_compiled`), the enabled
    correlations that can be evaluated over them, and why the others cannot."""
    from vigil.detect.correlation import index_rules, usable_correlations
    from vigil.detect.hunt import RuleSet

    rules, names, correlations, problems = _filtered(db)
    result = RuleSet(rules=rules, problems=problems, names=names)
    if correlations:
        result.correlations, unusable = usable_correlations(correlations,
                                                            index_rules(rules, names))
        result.problems += unusable
    return result


# --- reading ------------------------------------------------------------------------------

Row = Rule | RuleDocument


def _tuple(text: str | None) -> tuple[str, ...]:
    value = json.loads(text) if text else []
    return tuple(str(v) for v in value) if isinstance(value, list) else ()


def _kind(row: Row) -> str:
    return row.kind if isinstance(row, RuleDocument) else "rule"


def _error(row: Row) -> str | None:
    return row.error if isinstance(row, RuleDocument) else row.compile_error


def _view(row: Row) -> RuleView:
    usable = row.error is None if isinstance(row, RuleDocument) else row.sql is not None
    return RuleView(row.id, row.title, row.level, row.status, row.author,
                    LogSource(row.product, row.category, row.service), _tuple(row.tags),
                    row.enabled, usable, _error(row), row.path, _kind(row))


def _detail(row: Row) -> RuleDetail:
    view = _view(row)
    rule = row if isinstance(row, Rule) else None
    return RuleDetail(view.id, view.title, view.level, view.status, view.author, view.logsource,
                      view.tags, view.enabled, view.compiled, view.compile_error, view.path,
                      view.kind, row.description, _tuple(row.refs), _tuple(row.falsepositives),
                      rule.sql if rule else None, _tuple(rule.fields if rule else None),
                      _tuple(rule.warnings if rule else None), row.yaml, row.sha256,
                      to_utc(row.imported_at), to_utc(row.updated_at))


def _level_rank(level: str) -> int:
    return LEVELS.index(level) if level in LEVELS else len(LEVELS)


def _models(kind: str | None) -> list[type[Rule] | type[RuleDocument]]:
    if kind is not None and kind.lower() not in KINDS:
        raise InputError(f"unknown kind {kind!r} (use one of {', '.join(KINDS)})")
    wanted = kind.lower() if kind else None
    return [m for m in (Rule, RuleDocument)
            if wanted is None or (wanted == "rule") == (m is Rule)]


def _query(model: type[Rule] | type[RuleDocument], kind: str | None, level: str | None,
           enabled: bool | None, search: str | None) -> Select[Any]:
    query: Select[Any] = select(model)
    if model is RuleDocument and kind is not None:
        query = query.where(RuleDocument.kind == kind.lower())
    if level is not None:
        query = query.where(func.lower(model.level) == level.lower())
    if enabled is not None:
        query = query.where(model.enabled.is_(enabled))
    if search:
        needle = search.strip().lower()
        columns = (model.id, model.title, model.name, model.author, model.tags, model.product,
                   model.category, model.service, model.description)
        query = query.where(or_(*(func.lower(c).contains(needle, autoescape=True)
                                  for c in columns)))
    return query


def list_rules(db: StateDB, level: str | None = None, enabled: bool | None = None,
               search: str | None = None, kind: str | None = None) -> list[RuleView]:
    """Rules, filters and correlations of the catalog (``kind``: one of them), most severe
    first, filtered by level, state and a search text."""
    if level is not None and level.lower() not in LEVELS:
        raise InputError(f"unknown level {level!r} (use one of {', '.join(LEVELS)})")
    views: list[RuleView] = []
    with db.session() as session:
        for model in _models(kind):
            views += [_view(r) for r in session.scalars(_query(model, kind, level, enabled,
                                                               search))]
    return sorted(views, key=lambda v: (_level_rank(v.level), v.title.lower(), v.id))


def _find(session: Session, id_or_prefix: str) -> Row:
    prefix = id_or_prefix.strip().lower()
    if not prefix:
        raise InputError("a rule id (or the start of one) is needed")
    for ident in dict.fromkeys((prefix, id_or_prefix.strip())):
        row: Row | None = session.get(Rule, ident) or session.get(RuleDocument, ident)
        if row is not None:
            return row
    rows: list[Row] = [*session.scalars(select(Rule).where(Rule.name == id_or_prefix.strip())),
                       *session.scalars(select(RuleDocument).where(
                           RuleDocument.name == id_or_prefix.strip()))]
    if not rows:
        for model in (Rule, RuleDocument):
            rows += session.scalars(select(model).where(func.lower(model.id).startswith(
                prefix, autoescape=True)).order_by(model.id).limit(6))
    if not rows:
        raise NotFoundError(f"no rule with id {id_or_prefix!r}")
    if len(rows) > 1:
        ids = sorted(r.id for r in rows)
        shown = ", ".join(ids[:5]) + (", ..." if len(ids) > 5 else "")
        raise InputError(f"{id_or_prefix!r} names several rules ({shown}): give more of the id")
    return rows[0]


def get_rule(db: StateDB, id_or_prefix: str) -> RuleDetail:
    """The rule (filter, correlation) with this id or Sigma name, or the only one whose id
    starts with it."""
    with db.session() as session:
        return _detail(_find(session, id_or_prefix))


def _matching(session: Session, spec: str) -> list[Row]:
    if not globbing.has_magic(spec):
        return [_find(session, spec)]
    pattern = spec.strip().lower()
    rows: list[Row] = [*session.scalars(select(Rule)), *session.scalars(select(RuleDocument))]
    rows = [r for r in rows if any(fnmatch.fnmatchcase(text.lower(), pattern)
                                   for text in (r.id, r.title, r.name or ""))]
    if not rows:
        raise NotFoundError(f"no rule id or title matches {spec!r}")
    return rows


def set_enabled(db: StateDB, ids_or_globs: str | Sequence[str], enabled: bool) -> EnableResult:
    """Enable or disable rules, filters and correlations named by id, Sigma name, id prefix,
    or glob on ids, names and titles.

    Nothing changes when one of the names matches nothing (:class:`NotFoundError`).
    """
    specs = [ids_or_globs] if isinstance(ids_or_globs, str) else list(ids_or_globs)
    if not specs:
        raise InputError("name at least one rule id or glob")
    now = utcnow()
    with db.session() as session:
        rows = {(_kind(r), r.id): r for spec in specs for r in _matching(session, spec)}
        changed = 0
        for row in rows.values():
            if row.enabled != enabled:
                row.enabled = enabled
                row.updated_at = now
                changed += 1
    return EnableResult(tuple(sorted({ident for _, ident in rows})), changed)


def _meta(row: Rule) -> RuleMeta:
    return RuleMeta(id=row.id, title=row.title, level=row.level, status=row.status,
                    author=row.author, description=row.description,
                    references=_tuple(row.refs), tags=_tuple(row.tags),
                    falsepositives=_tuple(row.falsepositives),
                    logsource=LogSource(row.product, row.category, row.service), path=row.path)


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
