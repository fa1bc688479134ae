"""``/api/v1/intel``: indicators (list, read, search), imports, sightings, revocation, counts,
allowlists and exports.

Reading needs ``intel:read``; importing, sightings and revoking ``intel:write``; changing
allowlists ``intel:admin``; exports ``intel:export``, so that a firewall holding a service
token scoped to ``intel:export`` alone can pull its blocklist from
``GET /api/v1/intel/export/{format}`` (plain text with its media type and a file name).
An import is the raw feed file as the body (STIX bundle, MISP event, CSV or list): it is
stored whole or, when it does not parse, not at all (400 with the reason). Feeds are in
:mod:`vigil.api.intel_feeds`.
"""

from __future__ import annotations

from datetime import datetime
from functools import partial
from typing import Annotated, Any

import anyio.to_thread
import orjson
from fastapi import APIRouter, Path, Query, Request, Response
from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from vigil.api.deps import VigilDep, read_body, requires
from vigil.core.auth import Permission, Principal
from vigil.intel import lists
from vigil.intel import service as intel
from vigil.intel.export import MAX_AGE_DAYS, ExportFormat, ExportOptions, export, selection
from vigil.intel.reading import MAX_PAGE, IndicatorFilter
from vigil.intel.service import ImportFormat
from vigil.intel.types import TLP, IndicatorType, SightingKind

router = APIRouter(prefix="/api/v1/intel", tags=["intel"])

IntelReader = Annotated[Principal, requires(Permission.INTEL_READ)]
IntelWriter = Annotated[Principal, requires(Permission.INTEL_WRITE)]
IntelExporter = Annotated[Principal, requires(Permission.INTEL_EXPORT)]
IntelAdmin = Annotated[Principal, requires(Permission.INTEL_ADMIN)]


def check_text(value: str | None) -> str | None:
    """Text the databases can store (PostgreSQL refuses NUL characters)."""
    if value is not None and "\x00" in value:
        raise ValueError("must not contain NUL characters")
    return value


Note = Annotated[str, Field(max_length=2000), AfterValidator(check_text)]
Ref = Annotated[str, Path(min_length=1, max_length=200, description="Indicator id or STIX id."),
                AfterValidator(check_text)]
SourceName = Annotated[str | None, Query(min_length=1, max_length=200), AfterValidator(check_text)]
Label = Annotated[str | None, Query(min_length=1, max_length=200), AfterValidator(check_text)]
Confidence = Annotated[int | None, Query(ge=0, le=100)]
Score = Annotated[float | None, Query(ge=0, le=100)]
AgeDays = Annotated[int | None, Query(ge=1, le=MAX_AGE_DAYS, description="Seen within this many days.")]
ListName = Annotated[str, Path(min_length=1, max_length=200), AfterValidator(check_text)]


# -- schemas -----------------------------------------------------------------------------------


class SourceOut(BaseModel):
    """One source that states an indicator, with when it first and last did."""

    name: str
    first_seen: datetime
    last_seen: datetime
    reference: str | None
    confidence: int | None


class ObservableOut(BaseModel):
    """A value live matching looks for."""

    type: IndicatorType
    value: str


class IndicatorOut(BaseModel):
    """An indicator with its decayed score computed now."""

    id: str
    type: IndicatorType
    value: str
    pattern: str | None
    stix_id: str | None
    name: str | None
    description: str | None
    confidence: int
    base_score: int
    score: float
    active: bool
    tlp: TLP | None
    markings: list[str]
    labels: list[str]
    attack: list[str]
    malware: list[str]
    valid_from: datetime | None
    valid_until: datetime | None
    revoked: bool
    first_seen: datetime
    last_seen: datetime
    last_sighting: datetime | None
    sightings_seen: int
    sightings_false_positive: int
    sightings_expired: int
    allowlisted: str | None
    observables: list[ObservableOut]
    sources: list[SourceOut]
    stix: str | None
    """The STIX object as the source gave it (JSON text), when it came from STIX."""


class IndicatorPage(BaseModel):
    items: list[IndicatorOut]
    next_cursor: str | None
    """Pass as ``after`` for the next page (null at the end)."""


class ImportOut(BaseModel):
    """What an import read and stored."""

    format: ImportFormat
    source: str
    read: int
    skipped: int
    added: int
    updated: int
    unchanged: int
    allowlisted: int
    problem_count: int
    problems: list[str]
    """The first 100 problems (items that could not be read), with their place."""


class SightingIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: SightingKind
    note: Note | None = None


class RevokeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: Note | None = None


class StatsOut(BaseModel):
    indicators: int
    by_type: dict[str, int]
    allowlists: int
    feeds: int


class AllowlistOut(BaseModel):
    """An allowlist: built in (no id) or imported."""

    id: int | None
    name: str
    kind: str
    entries: int
    matching_attributes: list[str]
    enabled: bool
    builtin: bool
    description: str | None
    version: str | None
    created_at: datetime | None


class WarninglistIn(BaseModel):
    """A MISP warninglist (replaces the list of the same name)."""

    model_config = ConfigDict(populate_by_name=True)

    name: Annotated[str, Field(min_length=1, max_length=200), AfterValidator(check_text)]
    type: Annotated[str, Field(description="string, substring, hostname, cidr or regex.")]
    entries: list[Annotated[str, Field(max_length=4096), AfterValidator(check_text)]] = Field(
        alias="list", description="The values (warninglist key ``list``).")
    matching_attributes: list[Annotated[str, Field(max_length=100)]] = []
    description: Annotated[str, Field(max_length=4000), AfterValidator(check_text)] | None = None
    version: Annotated[str | int | None, Field(union_mode="left_to_right")] = None


class AllowlistPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    enabled: bool


# -- helpers -----------------------------------------------------------------------------------


def json_response(data: object, status_code: int = 200) -> Response:
    """Views serialised as they are (their fields are exactly the declared model's)."""
    return Response(orjson.dumps(data, option=orjson.OPT_UTC_Z), status_code=status_code,
                    media_type="application/json")


def _allowlist(view: lists.AllowlistView) -> AllowlistOut:
    return AllowlistOut(id=view.id, name=view.name, kind=view.kind.value, entries=view.entries,
                        matching_attributes=list(view.matching_attributes), enabled=view.enabled,
                        builtin=view.builtin, description=view.description, version=view.version,
                        created_at=view.created_at)


# -- indicators --------------------------------------------------------------------------------


@router.get("/indicators", response_model=IndicatorPage)
def list_indicators(
    vigil: VigilDep, _who: IntelReader,
    kinds: Annotated[list[IndicatorType] | None, Query(alias="type")] = None,
    source: SourceName = None, min_confidence: Confidence = None, min_score: Score = None,
    max_tlp: TLP | None = None, label: Label = None,
    active: Annotated[bool, Query(description="Only active indicators.")] = False,
    include_allowlisted: bool = True, max_age_days: AgeDays = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 100,
    after: Annotated[str | None, Query(max_length=200), AfterValidator(check_text)] = None,
) -> Response:
    """Indicators in id order, a page at a time (``next_cursor`` → ``after``)."""
    base = selection(kinds or (), min_confidence=min_confidence, min_score=min_score, max_tlp=max_tlp,
                     max_age_days=max_age_days, source=source, label=label)
    wanted = IndicatorFilter(types=base.types, source=base.source, min_confidence=base.min_confidence,
                             min_score=base.min_score, max_tlp=base.max_tlp, label=base.label,
                             active_only=active, include_allowlisted=include_allowlisted,
                             seen_within=base.seen_within)
    items, cursor = intel.page(vigil.db, wanted, vigil.settings.intel, limit=limit, after=after)
    return json_response({"items": items, "next_cursor": cursor if len(items) == limit else None})


@router.get("/indicators/{ref}", response_model=IndicatorOut)
def get_indicator(vigil: VigilDep, _who: IntelReader, ref: Ref) -> Response:
    """One indicator by its id or STIX id, with its sources, observables and decayed score."""
    return json_response(intel.get(vigil.db, ref, vigil.settings.intel))


@router.get("/search", response_model=list[IndicatorOut])
def search(
    vigil: VigilDep, _who: IntelReader,
    value: Annotated[str, Query(min_length=1, max_length=4096), AfterValidator(check_text)],
    kind: Annotated[IndicatorType | None, Query(alias="type")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 100,
) -> Response:
    """The indicators that would match a value (defanged is fine): the value, networks holding
    an address, parent domains of a name; or indicators whose name contains it."""
    return json_response(intel.search(vigil.db, value, vigil.settings.intel, kind=kind, limit=limit))


@router.post("/indicators/{ref}/sightings", response_model=IndicatorOut)
def sight(vigil: VigilDep, who: IntelWriter, ref: Ref, body: SightingIn) -> Response:
    """Record a sighting: ``seen`` resets the decay, ``false_positive`` halves the score,
    ``expired`` takes the indicator out of matching and exports."""
    return json_response(intel.sight(vigil.db, ref, body.kind, vigil.settings.intel, actor=who,
                                     note=body.note))


@router.post("/indicators/{ref}/revoke", response_model=IndicatorOut)
def revoke(vigil: VigilDep, who: IntelWriter, ref: Ref, body: RevokeIn | None = None) -> Response:
    """Revoke an indicator: never matched nor exported again (until a feed states it anew)."""
    return json_response(intel.revoke(vigil.db, ref, vigil.settings.intel, actor=who,
                                      reason=body.reason if body else None))


_IMPORT_BODY: dict[str, Any] = {"requestBody": {"required": True, "description": (
    "The feed file as it is: a STIX 2.1 bundle, a MISP event, a CSV file or a plain list."),
    "content": {"application/json": {"schema": {"type": "object"}},
                "text/plain": {"schema": {"type": "string"}},
                "text/csv": {"schema": {"type": "string"}}}}}


@router.post("/import", response_model=ImportOut, openapi_extra=_IMPORT_BODY)
async def import_feed(
    request: Request, vigil: VigilDep, who: IntelWriter,
    fmt: Annotated[ImportFormat | None, Query(alias="format", description="Default: detected.")] = None,
    preset: Annotated[str | None, Query(max_length=64, description="CSV column mapping.")] = None,
    source: SourceName = None,
) -> ImportOut:
    """Import a feed file sent as the body; 400 with the reason when it does not parse (then
    nothing is stored), 413 past ``ingest.http_max_body``."""
    body = await read_body(request, vigil.settings.ingest.http_max_body)
    name = source or f"api:{who.name}"
    report = await anyio.to_thread.run_sync(partial(
        intel.import_bytes, vigil.db, body, vigil.settings.intel, actor=who, source=name, fmt=fmt,
        preset=preset))
    result, problems = report.result, [*report.problems, *report.result.problems]
    return ImportOut(format=report.format, source=name, read=report.read, skipped=report.skipped,
                     added=result.added, updated=result.updated, unchanged=result.unchanged,
                     allowlisted=result.allowlisted, problem_count=len(problems), problems=problems[:100])


@router.get("/stats", response_model=StatsOut)
def stats(vigil: VigilDep, _who: IntelReader) -> StatsOut:
    """Indicators stored by type, and how many allowlists and feeds there are."""
    from vigil.intel import feeds

    counts = intel.summary(vigil.db)
    with vigil.db.session() as session:
        allowlists = lists.list_allowlists(session, vigil.settings.intel)
    return StatsOut(indicators=sum(counts.values()), by_type=counts, allowlists=len(allowlists),
                    feeds=len(feeds.list_feeds(vigil.db)))


# -- allowlists --------------------------------------------------------------------------------


@router.get("/allowlists", response_model=list[AllowlistOut])
def list_allowlists(vigil: VigilDep, _who: IntelReader) -> list[AllowlistOut]:
    """Built-in lists (special-use networks, reserved names, own infrastructure) and imported ones."""
    with vigil.db.session() as session:
        return [_allowlist(v) for v in lists.list_allowlists(session, vigil.settings.intel)]


@router.post("/allowlists", response_model=AllowlistOut, status_code=201)
def import_allowlist(vigil: VigilDep, who: IntelAdmin, body: WarninglistIn) -> AllowlistOut:
    """Add a MISP warninglist, or replace the list of the same name; stored indicators are
    checked against the lists again."""
    data = orjson.dumps(body.model_dump(by_alias=True, exclude_none=True))
    with vigil.db.session() as session:
        return _allowlist(lists.import_allowlist(session, data, vigil.settings.intel, actor=who,
                                                 origin="request body"))


@router.patch("/allowlists/{name}", response_model=AllowlistOut)
def switch_allowlist(vigil: VigilDep, who: IntelAdmin, name: ListName, body: AllowlistPatch) -> AllowlistOut:
    """Switch an imported list on or off (409 for a built-in list)."""
    with vigil.db.session() as session:
        return _allowlist(lists.set_enabled(session, name, body.enabled, vigil.settings.intel, actor=who))


@router.delete("/allowlists/{name}", status_code=204, response_class=Response)
def remove_allowlist(vigil: VigilDep, who: IntelAdmin, name: ListName) -> Response:
    """Remove an imported list (409 for a built-in list)."""
    with vigil.db.session() as session:
        lists.remove_allowlist(session, name, vigil.settings.intel, actor=who)
    return Response(status_code=204)


# -- exports -----------------------------------------------------------------------------------


@router.get("/export/{format}", response_class=Response, responses={200: {
    "description": "The export file (text, or an archive for suricata-dataset and misp).",
    "content": {"text/plain": {}, "application/octet-stream": {}}}})
def export_indicators(
    vigil: VigilDep, _who: IntelExporter,
    fmt: Annotated[ExportFormat, Path(alias="format")],
    kinds: Annotated[list[IndicatorType] | None, Query(alias="type")] = None,
    min_confidence: Confidence = None, min_score: Score = None,
    max_tlp: Annotated[TLP | None, Query(description="Capped at intel.export_max_tlp.")] = None,
    max_age_days: AgeDays = None, source: SourceName = None, label: Label = None,
    name: Annotated[str, Query(pattern=r"^[A-Za-z][A-Za-z0-9_]{0,23}$",
                               description="Name of the table, sets, chain or files.")] = "vigil",
) -> Response:
    """Active indicators in a firewall, DNS or IDS format (allowlisted, revoked, decayed and
    TLP:RED indicators never leave). ``X-Vigil-Count`` and ``X-Vigil-Skipped`` say how many
    indicators were written and left out."""
    wanted = selection(kinds or (), min_confidence=min_confidence, min_score=min_score, max_tlp=max_tlp,
                       max_age_days=max_age_days, source=source, label=label)
    done = export(vigil.db, fmt, wanted, ExportOptions(name=name), vigil.settings.intel)
    headers = {"Content-Disposition": f'attachment; filename="{done.filename}"',
               "X-Vigil-Count": str(done.count), "X-Vigil-Skipped": str(done.skipped),
               "Cache-Control": "no-store"}
    return Response(done.body(), media_type=done.media_type, headers=headers)
