"""Exporting indicators for operations: the one use case behind ``vigil intel export`` and
``GET /api/v1/intel/export/{format}``.

:func:`export` reads the indicators a filter selects and renders them in a format. Whatever
the caller asks, an export only ever carries active indicators (not revoked, expired, decayed
or allowlisted), and never a TLP above ``intel.export_max_tlp`` (TLP:RED never leaves): a
request for a higher TLP is lowered to that ceiling, not refused. ``stix`` is a STIX 2.1
bundle, ``misp`` a MISP feed (its files in one zip archive); every other format comes from
the exports registry (:mod:`vigil.intel.exports.registry`).
"""

from __future__ import annotations

import dataclasses
import io
import zipfile
from collections.abc import Sequence
from datetime import timedelta

from vigil.core.config import IntelSettings
from vigil.core.db import StateDB
from vigil.core.errors import InputError
from vigil.core.timeutil import utcnow
from vigil.intel import reading
from vigil.intel.exports.registry import FORMATS, Export, ExportFormat, ExportOptions, render
from vigil.intel.formats.misp_export import to_feed
from vigil.intel.formats.stix import to_bundle
from vigil.intel.reading import IndicatorFilter
from vigil.intel.service import policy
from vigil.intel.types import TLP, IndicatorType, IndicatorView

__all__ = ["Export", "ExportFormat", "ExportOptions", "IndicatorFilter", "ceiling", "export",
           "export_filter", "format_names", "parse_format", "selection"]

MAX_AGE_DAYS = 36_500
_ZIP_TIME = (1980, 1, 1, 0, 0, 0)
"""Every member of a MISP zip carries this time: the same indicators give the same bytes."""


def format_names() -> list[str]:
    """Every export format's name, as the CLI and the API accept them."""
    return [f.value for f in ExportFormat]


def parse_format(name: str) -> ExportFormat:
    """The export format called ``name``; :class:`InputError` listing the formats."""
    try:
        return ExportFormat(name.strip().lower())
    except ValueError:
        raise InputError(f"unknown export format {name!r} (use {', '.join(format_names())})") from None


def ceiling(settings: IntelSettings) -> TLP:
    """The most restrictive TLP an export may carry (never RED, whatever the settings say)."""
    limit = TLP.parse(settings.export_max_tlp)
    return TLP.AMBER_STRICT if limit is TLP.RED else limit


def selection(types: Sequence[IndicatorType] = (), *, min_confidence: int | None = None,
              min_score: float | None = None, max_tlp: TLP | None = None,
              max_age_days: int | None = None, source: str | None = None,
              label: str | None = None) -> IndicatorFilter:
    """The filter of an export request (the front doors' options), checked."""
    if min_confidence is not None and not 0 <= min_confidence <= 100:
        raise InputError("min confidence must be between 0 and 100")
    if min_score is not None and not 0 <= min_score <= 100:
        raise InputError("min score must be between 0 and 100")
    if max_age_days is not None and not 1 <= max_age_days <= MAX_AGE_DAYS:
        raise InputError(f"max age must be between 1 and {MAX_AGE_DAYS} days")
    return IndicatorFilter(
        types=tuple(dict.fromkeys(types)), source=source or None, min_confidence=min_confidence,
        min_score=min_score, max_tlp=max_tlp, label=label or None,
        seen_within=timedelta(days=max_age_days) if max_age_days is not None else None)


def export_filter(wanted: IndicatorFilter, settings: IntelSettings) -> IndicatorFilter:
    """``wanted`` narrowed to what may leave: active only, no allowlisted value, the TLP capped."""
    limit = ceiling(settings)
    tlp = limit if wanted.max_tlp is None or wanted.max_tlp.rank > limit.rank else wanted.max_tlp
    return dataclasses.replace(wanted, active_only=True, include_allowlisted=False, max_tlp=tlp)


def _zip(files: dict[str, bytes]) -> bytes:
    """A deterministic zip: members sorted by name, fixed times and permissions."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name in sorted(files):
            info = zipfile.ZipInfo(name, date_time=_ZIP_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            archive.writestr(info, files[name])
    return buffer.getvalue()


def _made_here(fmt: ExportFormat, views: list[IndicatorView], options: ExportOptions) -> Export:
    """The STIX bundle or the MISP feed zip (made outside the exports registry)."""
    info = FORMATS[fmt]
    name = options.name
    if fmt is ExportFormat.STIX:
        content = to_bundle(views, now=options.generated)
        return Export(format=fmt, content=content, media_type=info.media_type,
                      filename=f"{name}-stix.json", count=len(views), skipped=0)
    files = to_feed(views, event_info=f"Vigil indicators ({name})", timestamp=options.generated)
    return Export(format=fmt, content=_zip(files), media_type="application/zip",
                  filename=f"{name}-misp.zip", count=len(views), skipped=0)


def export(db: StateDB, fmt: str | ExportFormat, wanted: IndicatorFilter, options: ExportOptions,
           settings: IntelSettings) -> Export:
    """Render the indicators ``wanted`` selects in ``fmt`` (see the module docstring).

    :class:`InputError` for an unknown format (naming the formats) or bad options."""
    kind = parse_format(fmt) if isinstance(fmt, str) else fmt
    if options.generated is None:
        options = dataclasses.replace(options, generated=utcnow())
    chosen = export_filter(wanted, settings)
    with db.session() as session:
        views = list(reading.iterate(session, chosen, policy(settings)))
    if kind in (ExportFormat.STIX, ExportFormat.MISP):
        return _made_here(kind, views, options)
    return render(kind, views, options)
