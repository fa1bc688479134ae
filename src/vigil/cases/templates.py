"""Case templates: YAML files that pre-fill a case (severity, phase, tags, description) and
add its first tasks.

Built-in templates ship in ``vigil/cases/templates/*.yml`` (ransomware, phishing, account
compromise); custom ones are read from the templates folder of the instance (``cases.
templates_dir``, by default ``case-templates`` in the data folder). A custom template with
the name of a built-in one replaces it. The file name (without ``.yml``) must be the template
name, so that one name never hides in two files.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import yaml
from pydantic import ValidationError

from vigil.cases.policy import DEFAULT_POLICY, Policy
from vigil.cases.schemas import CaseTemplate
from vigil.core.errors import InputError, Location, NotFoundError

BUILTIN_DIR = Path(__file__).parent / "templates"


def parse(text: str, source: str, origin: str) -> CaseTemplate:
    """A template from YAML text; InputError (with the file) when it is not a valid one."""
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        raise InputError(f"invalid YAML: {getattr(exc, 'problem', exc)}",
                         location=Location(source, line)) from None
    if not isinstance(document, dict):
        raise InputError("a case template is a YAML mapping", location=Location(source))
    try:
        return CaseTemplate.model_validate({**document, "origin": origin})
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise InputError(f"{where}: {first['msg']}", location=Location(source)) from None


def _files(folder: Path | None) -> Iterator[Path]:
    if folder is None or not folder.is_dir():
        return
    yield from sorted(p for p in folder.iterdir() if p.suffix in (".yml", ".yaml") and p.is_file())


def _load(path: Path, origin: str) -> CaseTemplate:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read the template: {exc}", location=Location(str(path))) from None
    template = parse(text, str(path), origin)
    if template.name != path.stem:
        raise InputError(f"the template is named {template.name!r}; name the file "
                         f"{template.name}{path.suffix}", location=Location(str(path)))
    return template


def catalog(policy: Policy = DEFAULT_POLICY) -> dict[str, CaseTemplate]:
    """Every template by name: the built-in ones, replaced or extended by custom ones."""
    found = {t.name: t for t in (_load(p, "builtin") for p in _files(BUILTIN_DIR))}
    for path in _files(policy.templates_dir):
        template = _load(path, "custom")
        found[template.name] = template
    return dict(sorted(found.items()))


def get_template(name: str, policy: Policy = DEFAULT_POLICY) -> CaseTemplate:
    """The template named ``name``; NotFoundError listing the known ones otherwise."""
    templates = catalog(policy)
    if name not in templates:
        raise NotFoundError(f"no case template {name!r} (known: {', '.join(templates) or 'none'})")
    return templates[name]
