"""Routes of this area under ``/api/v1`` (filled in by its context)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(prefix="/api/v1")
