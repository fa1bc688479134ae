"""State tables of the detect context: the rule catalog.

``rules`` keeps each imported Sigma rule (its YAML, where it came from, its content hash) with
its compiled SQL or the reason it could not be compiled, and whether it is enabled. The
metadata Vigil shows (author, references...) is kept in columns so the engine can rebuild its
compiled rules without parsing YAML again. ``rule_documents`` keeps the Sigma filters and
correlation rules of the catalog (their YAML is parsed again when the engine loads them).
JSON lists are stored as text, the same on SQLite and PostgreSQL. Alerts live in
``vigil.alerts``.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, DateTime, String, Text, true
from sqlalchemy.orm import Mapped, mapped_column

from vigil.core.db import Base


class _CatalogEntry:
    """Columns every catalog entry has: a rule, a filter or a correlation."""

    title: Mapped[str] = mapped_column(Text)
    name: Mapped[str | None] = mapped_column(Text)
    """The Sigma ``name`` (correlations and filters may refer to a rule by it)."""
    status: Mapped[str | None] = mapped_column(String(32))
    author: Mapped[str | None] = mapped_column(Text)
    description: Mapped[str | None] = mapped_column(Text)
    product: Mapped[str | None] = mapped_column(String(128))
    category: Mapped[str | None] = mapped_column(String(128))
    service: Mapped[str | None] = mapped_column(String(128))
    tags: Mapped[str] = mapped_column(Text, default="[]")
    refs: Mapped[str] = mapped_column(Text, default="[]")
    """The references (JSON list of URLs)."""
    falsepositives: Mapped[str] = mapped_column(Text, default="[]")
    path: Mapped[str] = mapped_column(Text)
    yaml: Mapped[str] = mapped_column(Text)
    sha256: Mapped[str] = mapped_column(String(64))
    enabled: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    imported_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class Rule(_CatalogEntry, Base):
    """One Sigma detection rule of the catalog (the Sigma id is the key)."""

    __tablename__ = "rules"

    id: Mapped[str] = mapped_column(String(128), primary_key=True)
    level: Mapped[str] = mapped_column(String(32), index=True)
    compile_error: Mapped[str | None] = mapped_column(Text)
    sql: Mapped[str | None] = mapped_column(Text)
    fields: Mapped[str] = mapped_column(Text, default="[]")
    """The event fields the SQL refers to (JSON list)."""
    warnings: Mapped[str] = mapped_column(Text, default="[]")
    """What the compiler approximated (JSON list)."""


class RuleDocument(_CatalogEntry, Base):
    """A Sigma filter or correlation rule of the catalog (its Sigma id, else its ``name``, is
    the key)."""

    __tablename__ = "rule_documents"

    id: Mapped[str] = mapped_column(String(128), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16), index=True)
    """``filter`` or ``correlation``."""
    level: Mapped[str] = mapped_column(String(32))
    error: Mapped[str | None] = mapped_column(Text)
    """Why it cannot be used whatever the other rules (malformed, does not compile)."""
