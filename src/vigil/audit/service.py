"""The audit trail's public surface: append, list, verify, checkpoint."""

from __future__ import annotations

from vigil.audit.chain import record

__all__ = ["record"]
