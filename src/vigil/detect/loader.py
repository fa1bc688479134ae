"""Loading Sigma rules from files, folders, zip archives and glob patterns.

Every file is parsed on its own with pySigma (``SigmaCollection.from_dicts`` over the YAML
documents, errors collected: ``from_yaml`` with libyaml's loader), so a bad file or a bad rule
never stops the others: it becomes a :class:`RuleProblem` with the file and, wherever it can
be found, the line. pySigma's errors seldom carry a line, so the loader finds it in the YAML
node tree (composed only for files that have problems or hold several documents): the line
of a quoted value the message names (``Unknown modifier 'foobar'`` -> the
``CommandLine|foobar`` key), else of the top-level key the error is about (``level``,
``tags``...), else where the rule's document starts.

Detection rules are returned with their YAML text and its SHA-256; correlation rules and
filters are returned apart, as pySigma objects, for the pieces that handle them.
"""

from __future__ import annotations

import glob
import hashlib
import re
import zipfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from sigma.collection import SigmaCollection
from sigma.correlations import SigmaCorrelationRule
from sigma.exceptions import SigmaError, SigmaRuleLocation
from sigma.filters import SigmaFilter
from sigma.rule import SigmaRule

from vigil.core.errors import InputError, Location

RULE_SUFFIXES = (".yml", ".yaml")
MAX_FILE_BYTES = 4 * 1024 * 1024
"""A rule file (or zip member) larger than this is reported, not read."""
ZIP_MAGIC = b"PK\x03\x04"
RETIRED = frozenset({"deprecated", "unsupported"})
_QUOTED = re.compile(r"'([^'\n]{1,200})'|\"([^\"\n]{1,200})\"")
_PLACEHOLDER = re.compile(r"%[A-Za-z0-9_.\-]+%")
_MAX_NODES = 200_000
_ERROR_KEYS = {"identifier": "id", "tag": "tags", "condition": "detection",
               "modifier": "detection", "correlationrule": "correlation", "timespan": "correlation",
               "filterrule": "filter", "filtercondition": "filter", "falsepositive": "falsepositives"}


@dataclass(frozen=True, slots=True)
class RuleProblem:
    """A rule (or file) that could not be loaded, with where and why."""

    path: str
    line: int | None
    reason: str

    def __str__(self) -> str:
        return f"{Location(self.path, self.line)}: {self.reason}"


@dataclass(frozen=True, slots=True)
class LoadedRule:
    """A parsed Sigma detection rule, its origin and its YAML text."""

    rule: SigmaRule
    path: str
    yaml: str
    sha256: str
    line: int = 1
    """The line of ``path`` where :attr:`yaml` starts (above 1 in multi-document files)."""

    @property
    def id(self) -> str:
        return str(self.rule.id)

    @property
    def status(self) -> str | None:
        return str(self.rule.status) if self.rule.status is not None else None


@dataclass(slots=True)
class LoadResult:
    """Everything found in the inputs, and every problem met on the way."""

    rules: list[LoadedRule] = field(default_factory=list)
    problems: list[RuleProblem] = field(default_factory=list)
    correlations: list[SigmaCorrelationRule] = field(default_factory=list)
    filters: list[SigmaFilter] = field(default_factory=list)
    files: int = 0

    @property
    def retired(self) -> list[LoadedRule]:
        """Rules loaded although their status is ``deprecated`` or ``unsupported``."""
        return [r for r in self.rules if r.status in RETIRED]


# --- inputs -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Input:
    name: str
    """How problems name the input: the path as given, ``archive.zip!member`` for members."""
    key: str
    """The same input however it was named (resolved path)."""
    data: bytes | None
    error: str | None = None


def _hidden(parts: Sequence[str]) -> bool:
    return any(p.startswith(".") or p == "__MACOSX" for p in parts if p not in (".", ".."))


def _is_rule_name(name: str) -> bool:
    return name.lower().endswith(RULE_SUFFIXES)


def _read_file(path: Path) -> _Input:
    key = str(path.resolve())
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            return _Input(str(path), key, None, f"file too large for a rule file ({size:,} bytes)")
        return _Input(str(path), key, path.read_bytes())
    except OSError as exc:
        return _Input(str(path), key, None, f"cannot read: {exc.strerror or exc}")


def _archive(path: Path) -> Iterator[_Input]:
    try:
        with zipfile.ZipFile(path) as archive:
            for info in sorted(archive.infolist(), key=lambda i: i.filename):
                if info.is_dir() or not _is_rule_name(info.filename) \
                        or _hidden(Path(info.filename).parts):
                    continue
                name, key = f"{path}!{info.filename}", f"{path.resolve()}!{info.filename}"
                if info.file_size > MAX_FILE_BYTES:
                    yield _Input(name, key, None, f"member too large ({info.file_size:,} bytes)")
                    continue
                yield _Input(name, key, archive.read(info))
    except (zipfile.BadZipFile, OSError, RuntimeError, NotImplementedError) as exc:
        yield _Input(str(path), str(path.resolve()), None, f"cannot read the zip archive: {exc}")


def _is_zip(path: Path) -> bool:
    try:
        with path.open("rb") as handle:
            return handle.read(4) == ZIP_MAGIC
    except OSError:
        return False


def _from_path(path: Path, named: bool) -> Iterator[_Input]:
    """Inputs of one path; ``named`` files are read whatever their extension."""
    if path.is_dir():
        for child in sorted(path.rglob("*")):
            if child.is_file() and _is_rule_name(child.name) \
                    and not _hidden(child.relative_to(path).parts):
                yield _read_file(child)
    elif _is_zip(path):
        yield from _archive(path)
    elif named or _is_rule_name(path.name):
        yield _read_file(path)


def _inputs(specs: Sequence[str | Path]) -> Iterator[_Input]:
    seen: set[str] = set()
    for spec in specs:
        text = str(spec)
        if glob.has_magic(text):
            matches = [(Path(p), False) for p in sorted(glob.glob(text, recursive=True))]
        else:
            matches = [(Path(text), True)]
        if not any(path.exists() for path, _ in matches):
            raise InputError(f"{text}: no such file or folder")
        for path, named in matches:
            for item in _from_path(path, named):
                if item.key not in seen:
                    seen.add(item.key)
                    yield item


# --- lines --------------------------------------------------------------------------------


@dataclass(slots=True)
class _Doc:
    """Where things are in one YAML document (lines are 1-based)."""

    start: int
    end: int
    top: dict[str, int] = field(default_factory=dict)
    tokens: dict[str, list[int]] = field(default_factory=dict)
    id: str | None = None
    title: str | None = None

    def note(self, text: str, line: int) -> None:
        self.tokens.setdefault(text.strip().lower(), []).append(line)

    def _by_tokens(self, message: str) -> int | None:
        """The line where the values a message names meet (else where the rarest one is)."""
        found = [self.tokens[t] for t in _message_tokens(message) if t in self.tokens]
        if not found:
            return None
        common = set(found[0]).intersection(*found[1:])
        if common:
            return min(common)
        return min(min(lines) for lines in found if len(lines) == min(map(len, found)))

    def find(self, message: str, key: str | None) -> int:
        """The line an error message is most likely about."""
        line = self._by_tokens(message)
        if line is not None:
            return line
        if key is not None and key in self.top:
            return self.top[key]
        words = set(re.findall(r"[a-z]+", message.lower()))
        for name, line in self.top.items():
            if name.rstrip("s") in words or name in words:
                return line
        return self.start


def _message_tokens(message: str) -> list[str]:
    """Quoted values and ``%placeholders%`` in a message, lower-cased."""
    quoted = [a or b for a, b in _QUOTED.findall(message)]
    return [t.strip().lower() for t in quoted + _PLACEHOLDER.findall(message) if t.strip()]


def _index(node: yaml.Node) -> _Doc:
    doc = _Doc(node.start_mark.line + 1, node.end_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            name = str(key.value)
            doc.top.setdefault(name, key.start_mark.line + 1)
            if isinstance(value, yaml.ScalarNode) and name in ("id", "title"):
                setattr(doc, name, str(value.value).strip())
    stack: list[yaml.Node] = [node]
    visited: set[int] = set()
    while stack and len(visited) < _MAX_NODES:
        current = stack.pop()
        if id(current) in visited:
            continue
        visited.add(id(current))
        if isinstance(current, yaml.ScalarNode):
            doc.note(str(current.value), current.start_mark.line + 1)
        elif isinstance(current, yaml.MappingNode):
            for key, value in current.value:
                line = key.start_mark.line + 1
                for part in str(key.value).split("|"):
                    doc.note(part, line)
                stack.append(value)
        elif isinstance(current, yaml.SequenceNode):
            stack.extend(current.value)
    return doc


class _Documents:
    """The documents of one file, composed on first use only."""

    def __init__(self, text: str) -> None:
        self.text = text
        self._docs: list[_Doc] | None = None

    @property
    def docs(self) -> list[_Doc]:
        if self._docs is None:
            try:
                self._docs = [_index(n) for n in yaml.compose_all(self.text, Loader=yaml.CSafeLoader)]
            except yaml.YAMLError:
                self._docs = []
        return self._docs

    def of(self, item: Any) -> _Doc | None:
        """The document a parsed rule, correlation or filter came from."""
        docs = [d for d in self.docs if d.top]
        ident = str(item.id) if getattr(item, "id", None) is not None else None
        for doc in docs:
            if ident is not None and doc.id is not None and doc.id.lower() == ident:
                return doc
        for doc in docs:
            if getattr(item, "title", None) and doc.title == item.title:
                return doc
        return docs[0] if docs else None

    def line(self, item: Any, error: SigmaError | None, message: str = "",
             key: str | None = None) -> int | None:
        """The line an error (or a message about ``item``'s ``key``) points at."""
        source = getattr(error, "source", None)
        if isinstance(source, SigmaRuleLocation) and source.line is not None:
            return source.line
        doc = self.of(item) if item is not None else (self.docs[0] if self.docs else None)
        return doc.find(message, key or _error_key(error)) if doc is not None else None

    def text_of(self, doc: _Doc) -> str:
        lines = self.text.splitlines(keepends=True)
        return "".join(lines[doc.start - 1:doc.end]).rstrip() + "\n"


def _error_key(error: BaseException | None) -> str | None:
    if error is None:
        return None
    name = type(error).__name__.removeprefix("Sigma").removesuffix("Error").lower()
    return _ERROR_KEYS.get(name, name)


def _reason(error: BaseException) -> str:
    """The message of an error without pySigma's `` in <path>`` suffix."""
    if error.args and isinstance(error.args[0], str):
        return error.args[0]
    return str(error) or type(error).__name__


def locate(loaded: LoadedRule, message: str, key: str | None = "detection") -> int:
    """The line of ``loaded.path`` a message about the rule points at (e.g. a compile error)."""
    docs = _Documents(loaded.yaml).docs
    if not docs:
        return loaded.line
    return docs[0].find(message, key) + loaded.line - 1


# --- parsing ------------------------------------------------------------------------------


def _yaml_problem(name: str, exc: yaml.YAMLError, lines: int) -> RuleProblem:
    if isinstance(exc, yaml.MarkedYAMLError):
        mark = exc.problem_mark or exc.context_mark
        if mark is not None and mark.line >= lines and exc.context_mark is not None:
            mark = exc.context_mark  # found at the end of the file: point where it began
        context = exc.context or ""
        if context and exc.context_mark is not None and exc.context_mark is not mark \
                and exc.context_mark.line != getattr(mark, "line", None):
            context += f" (from line {exc.context_mark.line + 1})"
        parts = [p for p in (context, exc.problem) if p]
        reason = "invalid YAML: " + (": ".join(parts) if parts else str(exc).splitlines()[0])
        return RuleProblem(name, mark.line + 1 if mark is not None else None, reason)
    return RuleProblem(name, None, f"invalid YAML: {exc}")


def _parse(name: str, text: str, docs: _Documents,
           problems: list[RuleProblem]) -> SigmaCollection | None:
    source = SigmaRuleLocation(Path(name))
    try:
        # What SigmaCollection.from_yaml does, with libyaml's loader (3x faster, same result).
        return SigmaCollection.from_dicts(list(yaml.load_all(text, Loader=yaml.CSafeLoader)),
                                          collect_errors=True, source=source,
                                          collect_filters=True, resolve_references=False)
    except yaml.YAMLError as exc:
        problems.append(_yaml_problem(name, exc, text.count("\n") + (not text.endswith("\n"))))
        return None
    except (SigmaError, AttributeError, TypeError, ValueError, KeyError):
        pass
    # One document broke pySigma itself: parse the documents one by one to keep the others.
    parts: list[SigmaCollection] = []
    for doc, content in zip(docs.docs, yaml.load_all(text, Loader=yaml.CSafeLoader), strict=False):
        if content is None:
            continue
        if not isinstance(content, dict):
            problems.append(RuleProblem(name, doc.start, "a Sigma rule must be a YAML mapping, "
                                        f"not a {type(content).__name__}"))
            continue
        try:
            parts.append(SigmaCollection.from_dicts([content], collect_errors=True, source=source,
                                                    collect_filters=True, resolve_references=False))
        except (SigmaError, AttributeError, TypeError, ValueError, KeyError) as exc:
            problems.append(RuleProblem(name, doc.find(str(exc), None),
                                        f"not a valid Sigma rule: {_reason(exc)}"))
    return SigmaCollection.merge(parts, resolve_references=False) if parts else None


def _keep_rule(name: str, rule: SigmaRule, docs: _Documents, single: bool,
               seen: dict[str, str], result: LoadResult) -> None:
    if rule.id is None:
        result.problems.append(RuleProblem(name, docs.line(rule, None, key="title"),
                                           "the rule has no id (Vigil needs one)"))
        return
    ident = str(rule.id)
    if ident in seen:
        result.problems.append(RuleProblem(name, docs.line(rule, None, key="id"),
                                           f"duplicate rule id {ident} (first in {seen[ident]})"))
        return
    doc = None if single else docs.of(rule)
    line = doc.start if doc is not None else 1
    seen[ident] = str(Location(name, None if single else line))
    text = docs.text if doc is None else docs.text_of(doc)
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
    result.rules.append(LoadedRule(rule, name, text, digest, line))


def _load_file(name: str, data: bytes, seen: dict[str, str], result: LoadResult) -> None:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        result.problems.append(RuleProblem(name, line, f"not UTF-8 text: {exc.reason}"))
        return
    docs = _Documents(text)
    collection = _parse(name, text, docs, result.problems)
    if collection is None:
        return
    items: list[Any] = [*collection.rules, *collection.filters]
    attached = {id(e) for item in items for e in item.errors}
    for error in collection.errors:
        if id(error) not in attached:
            result.problems.append(RuleProblem(name, docs.line(None, error, _reason(error)),
                                               _reason(error)))
    for item in items:
        if item.errors:
            result.problems.extend(RuleProblem(name, docs.line(item, e, _reason(e)), _reason(e))
                                   for e in item.errors)
        elif isinstance(item, SigmaCorrelationRule):
            result.correlations.append(item)
        elif isinstance(item, SigmaFilter):
            result.filters.append(item)
        elif isinstance(item, SigmaRule):
            _keep_rule(name, item, docs, len(items) == 1, seen, result)


def load(paths: Sequence[str | Path]) -> LoadResult:
    """Load every Sigma rule under ``paths`` (files, folders, zip archives, glob patterns).

    A path that does not exist raises :class:`InputError`; everything wrong inside the
    inputs is reported in :attr:`LoadResult.problems` and never stops the other rules.
    """
    result = LoadResult()
    seen: dict[str, str] = {}
    for item in _inputs(paths):
        result.files += 1
        if item.data is None:
            result.problems.append(RuleProblem(item.name, None, item.error or "cannot read"))
        else:
            _load_file(item.name, item.data, seen, result)
    return result
