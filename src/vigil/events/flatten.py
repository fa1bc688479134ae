"""Turning nested JSON objects into flat field maps with dotted names.

Sigma rules name nested fields with dots (``userIdentity.type``); the store keeps one column
per flat field.
"""

from __future__ import annotations

from typing import Any

from vigil.events.models import FieldValue

MAX_DEPTH = 8


def flatten(obj: dict[str, Any], prefix: str = "", out: dict[str, FieldValue] | None = None,
            depth: int = 0) -> dict[str, FieldValue]:
    """Flatten nested dicts into ``a.b.c`` keys; lists and scalars are kept as they are."""
    result: dict[str, FieldValue] = {} if out is None else out
    for key, value in obj.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value and depth < MAX_DEPTH:
            flatten(value, f"{name}.", result, depth + 1)
        else:
            result[name] = value
    return result


def text_of(value: object) -> str | None:
    """A field value as text, or None for missing values."""
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
