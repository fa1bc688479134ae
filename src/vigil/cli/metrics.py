"""``vigil metrics``: commands of this area (filled in by its context)."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add this module's commands to ``app``."""
    del app
