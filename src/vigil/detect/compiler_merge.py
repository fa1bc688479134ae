"""Many string matches on one column as a few RE2 regular expressions (a measured speed-up).

SigmaHQ rules often test one field against long lists of values (``ContextInfo|contains`` with
200+ entries). As an OR of ``contains`` calls, DuckDB rescans the string once per value; one
``regexp_matches`` with the values as alternatives scans it once (RE2 runs a DFA, linear in the
text whatever the number of alternatives). On 35k PowerShell module events (5 KB text each) a
list of 227 substrings took 6.3 s as ``contains`` calls and 0.4 s as one regular expression.

A string match becomes a :class:`Pattern`: its text escaped for RE2 (``?`` as ``.``), anchored
with ``^`` unless it starts with ``*`` and with ``$`` unless it ends with ``*``. Values with an
inner ``*`` stay ``LIKE``: several ``.*`` in one alternation can multiply the DFA's states. The
patterns of one column and one anchoring are joined into ``(?:a|b|...)`` (sorted, deduplicated).
One expression holds at most :data:`MAX_PATTERN` bytes: RE2, with DuckDB's default memory
budget, gives up its DFA for the NFA when an alternation needs too many DFA states. On those
events, with substrings of the events themselves as values (the worst case measured), one
alternation took 0.7 s at 2 KB, 1.1 s at 6 KB, 1.4 s at 8 KB and over 150 s at 12 KB.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sigma.types import SpecialChars

__all__ = ["MAX_PATTERN", "MIN_ATOMS", "Pattern", "regex_escape", "regex_sources", "to_pattern"]

MIN_ATOMS = 4
"""An OR merges the string matches of a column into regular expressions from this many on."""
MAX_PATTERN = 6000
"""The largest regular expression (UTF-8 bytes) one merge produces; more values make more."""

_STAR = SpecialChars.WILDCARD_MULTI
_ONE = SpecialChars.WILDCARD_SINGLE
_META = frozenset("\\.+*?()|[]{}^$")


@dataclass(frozen=True, slots=True)
class Pattern:
    """A string match on ``column`` as an RE2 ``body``, with its anchors (see the module)."""

    column: str
    start: bool
    """Anchored at the start of the text (``^``): the value does not begin with ``*``."""
    end: bool
    """Anchored at the end of the text (``$``): the value does not end with ``*``."""
    body: str
    dot: bool = False
    """The body holds ``.`` for a ``?`` (the merged expression then needs ``(?s)``)."""

    @property
    def group(self) -> tuple[str, bool, bool]:
        """Patterns that one regular expression may hold: same column, same anchors."""
        return (self.column, self.start, self.end)


def regex_escape(text: str) -> str:
    """``text`` as an RE2 pattern matching exactly it: metacharacters escaped, control and
    other unprintable characters as ``\\x{hex}`` (so the SQL literal holds no NUL)."""
    out: list[str] = []
    for char in text:
        if char in _META:
            out.append("\\" + char)
        elif char.isprintable():
            out.append(char)
        else:
            out.append(f"\\x{{{ord(char):x}}}")
    return "".join(out)


def to_pattern(column: str, parts: Sequence[str | SpecialChars]) -> Pattern | None:
    """The pattern of a Sigma string match (text and wildcards), or None where it has none:
    no text between the outer ``*`` (``*`` alone) or an inner ``*``."""
    start = not parts or parts[0] is not _STAR
    end = not parts or parts[-1] is not _STAR
    core = list(parts)[int(not start) : len(parts) - int(not end)]
    if not core or any(part is _STAR for part in core):
        return None
    body = "".join("." if part is _ONE else regex_escape(str(part)) for part in core)
    return Pattern(column, start, end, body, dot=any(part is _ONE for part in core))


def regex_sources(patterns: Sequence[Pattern]) -> list[str]:
    """RE2 expressions, together matching where one of ``patterns`` (one :attr:`Pattern.group`)
    matches; each holds at most :data:`MAX_PATTERN` bytes (a longer single value stands alone).
    """
    if not patterns:
        return []
    first = patterns[0]
    head, tail = ("^" if first.start else ""), ("$" if first.end else "")
    dots = {p.body for p in patterns if p.dot}
    overhead = len("(?s)^(?:)$")
    chunks: list[list[str]] = [[]]
    size = overhead
    for body in sorted({p.body for p in patterns}):
        cost = len(body.encode()) + 1
        if chunks[-1] and size + cost > MAX_PATTERN:
            chunks.append([])
            size = overhead
        chunks[-1].append(body)
        size += cost
    return [
        ("(?s)" if dots.intersection(chunk) else "") + f"{head}(?:{'|'.join(chunk)}){tail}"
        for chunk in chunks
    ]
