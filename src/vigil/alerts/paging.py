"""Keyset pagination: pages that cost the same however deep, with an opaque cursor.

A listing is ordered by a few columns ending with the primary key (e.g. ``last_seen, id``),
which an index covers. The cursor holds the sort and the key of the last row of a page; the
next page is the rows strictly after that key, read as an index range:
``a <= x AND (a < x OR (b <= y AND (b < y OR id < z)))`` (descending). The first, redundant
``a <= x`` is what lets SQLite and PostgreSQL start the index scan at the key instead of
filtering from the top. An offset is accepted too (for tables that jump to page *n*), at the
usual cost of reading the skipped rows.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, Select, and_, func, or_, select
from sqlalchemy.orm import InstrumentedAttribute, Session

from vigil.core.errors import InputError
from vigil.core.timeutil import parse_iso, to_utc

Row = TypeVar("Row")
MAX_LIMIT = 1000


def encode_cursor(sort: str, descending: bool, key: Sequence[Any]) -> str:
    values = [to_utc(v).isoformat() if isinstance(v, datetime) else v for v in key]
    raw = json.dumps([sort, int(descending), values], separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(cursor: str, sort: str, descending: bool,
                  columns: Sequence[InstrumentedAttribute[Any]]) -> list[Any]:
    """The key a cursor holds; :class:`InputError` when it is not one of this listing's."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        got_sort, got_desc, values = json.loads(raw)
    except (ValueError, TypeError, binascii.Error, UnicodeDecodeError):
        raise InputError("invalid cursor") from None
    if got_sort != sort or bool(got_desc) != descending:
        raise InputError("the cursor belongs to another sort order; start again without it")
    if not isinstance(values, list) or len(values) != len(columns):
        raise InputError("invalid cursor")
    return [_value(column, value) for column, value in zip(columns, values, strict=True)]


def _value(column: InstrumentedAttribute[Any], value: Any) -> Any:
    python_type = column.type.python_type
    try:
        if python_type is datetime and isinstance(value, str):
            return parse_iso(value)
        if python_type is int and isinstance(value, int) and not isinstance(value, bool):
            return value
    except (ValueError, OverflowError):
        pass
    raise InputError("invalid cursor")


def after(columns: Sequence[InstrumentedAttribute[Any]], key: Sequence[Any],
          descending: bool) -> ColumnElement[bool]:
    """Rows strictly after ``key`` in the order of ``columns`` (see the module docstring)."""
    column, value = columns[0], key[0]
    if len(columns) == 1:
        last: ColumnElement[bool] = column < value if descending else column > value
        return last
    rest = after(columns[1:], key[1:], descending)
    if descending:
        return and_(column <= value, or_(column < value, rest))
    return and_(column >= value, or_(column > value, rest))


def check_limit(limit: int) -> int:
    if not 1 <= limit <= MAX_LIMIT:
        raise InputError(f"limit must be between 1 and {MAX_LIMIT}")
    return limit


def fetch_page(session: Session, query: Select[Row], conditions: Sequence[ColumnElement[bool]],
               columns: Sequence[InstrumentedAttribute[Any]], *, sort: str, descending: bool,
               limit: int, cursor: str | None, offset: int | None,
               key_of: Callable[[Row], Sequence[Any]],
               with_total: bool) -> tuple[list[Row], str | None, int | None]:
    """One page of ``query`` (a select of one entity) filtered by ``conditions``: the rows,
    the cursor of the next page (None at the end) and, when asked, the total."""
    check_limit(limit)
    if cursor is not None and offset:
        raise InputError("give either a cursor or an offset, not both")
    if offset is not None and offset < 0:
        raise InputError("offset cannot be negative")
    where = list(conditions)
    if cursor is not None:
        where.append(after(columns, decode_cursor(cursor, sort, descending, columns), descending))
    order = [c.desc() if descending else c.asc() for c in columns]
    paged = query.where(*where).order_by(*order).limit(limit + 1)
    if offset:
        paged = paged.offset(offset)
    rows = list(session.scalars(paged))
    next_cursor = None
    if len(rows) > limit:
        rows = rows[:limit]
        next_cursor = encode_cursor(sort, descending, key_of(rows[-1]))
    total = None
    if with_total:
        entity = query.column_descriptions[0]["entity"]
        total = int(session.scalar(select(func.count()).select_from(entity).where(*conditions)) or 0)
    return rows, next_cursor, total
