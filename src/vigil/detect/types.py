"""Types shared inside the detect context: rule metadata and compiled rules.

The compiled form is independent of any store partition. Its SQL refers to event fields only
through two column names per field, which the engine provides for every partition it runs on
(NULL where a partition lacks the field):

* ``"l:<Field>"`` — the field's text, lower-cased (default, case-insensitive matching);
* ``"c:<Field>"`` — the field's text as stored (``|cased``, ``|re``, numbers, ``|exists``).

Keyword (full-text) detections use ``"l:@raw"`` / ``"c:@raw"``: the raw record.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from vigil.events.models import LogSource

LOWER = "l:"
CASED = "c:"
RAW_FIELD = "@raw"


def lower_column(name: str) -> str:
    """The SQL identifier of a field's lower-cased text column."""
    return '"' + (LOWER + name).replace('"', '""') + '"'


def cased_column(name: str) -> str:
    """The SQL identifier of a field's original text column."""
    return '"' + (CASED + name).replace('"', '""') + '"'


@dataclass(frozen=True, slots=True)
class RuleMeta:
    """What Vigil shows about a rule (the Detection Rule License requires the author)."""

    id: str
    title: str
    level: str
    status: str | None
    author: str | None
    description: str | None
    references: tuple[str, ...]
    tags: tuple[str, ...]
    falsepositives: tuple[str, ...]
    logsource: LogSource
    path: str

    @property
    def techniques(self) -> tuple[str, ...]:
        """ATT&CK technique ids from the tags (``attack.t1059.001`` -> ``T1059.001``)."""
        found = []
        for tag in self.tags:
            name = tag.lower()
            if name.startswith("attack.t") and name[8:9].isdigit():
                found.append(name[7:].upper())
        return tuple(found)


@dataclass(frozen=True, slots=True)
class CompiledRule:
    """A rule compiled to one SQL boolean expression (see the module docstring)."""

    meta: RuleMeta
    sql: str
    fields: frozenset[str]
    """The event fields the SQL refers to (``@raw`` for keyword rules)."""
    warnings: tuple[str, ...] = field(default=())
