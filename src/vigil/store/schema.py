"""Names in the event store: one table per log source, envelope columns, field columns.

Envelope columns start with ``@`` so they never clash with a source's own fields. Source
fields are stored as text (Sigma compares strings; numeric modifiers cast). DuckDB names are
case-insensitive, so fields that differ only in case share one column.
"""

from __future__ import annotations

from dataclasses import dataclass

TABLE_PREFIX = "ev_"
ID, TS, DAY, RECEIVED, HOST, FORMAT, RAW = "@id", "@ts", "@day", "@received", "@host", \
    "@format", "@raw"

ENVELOPE_DDL: tuple[tuple[str, str], ...] = (
    (ID, "VARCHAR NOT NULL"),
    (TS, "TIMESTAMPTZ NOT NULL"),
    (DAY, "DATE NOT NULL"),
    (RECEIVED, "TIMESTAMPTZ NOT NULL"),
    (HOST, "VARCHAR"),
    (FORMAT, "VARCHAR"),
    (RAW, "VARCHAR"),
)
ENVELOPE = frozenset(name for name, _ in ENVELOPE_DDL)
ENVELOPE_ALIASES = {
    "id": ID, "ts": TS, "time": TS, "timestamp": TS, "day": DAY, "received": RECEIVED,
    "host": HOST, "format": FORMAT, "raw": RAW,
}
"""Short names that the query language resolves to envelope columns when no field has them."""

MAX_COLUMN_NAME = 255


def quote(name: str) -> str:
    """A SQL identifier, safely quoted."""
    return '"' + name.replace('"', '""') + '"'


def literal(value: str) -> str:
    """A SQL string literal, safely quoted."""
    return "'" + value.replace("'", "''") + "'"


def table_name(partition: str) -> str:
    return TABLE_PREFIX + partition


@dataclass(frozen=True, slots=True)
class PartitionInfo:
    """One log-source partition of the store."""

    partition: str
    product: str | None
    category: str | None
    service: str | None

    @property
    def table(self) -> str:
        return table_name(self.partition)

    @property
    def label(self) -> str:
        return "/".join(p or "-" for p in (self.product, self.category, self.service))
