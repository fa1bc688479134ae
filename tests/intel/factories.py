"""Test data shared by the intel tests: indicator views as the store hands them out, and STIX 2.1
indicator objects and bundles as feeds and analysts send them.

Test modules import it as ``from intel.factories import view`` (``tests`` is on the path).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from vigil.core.timeutil import utcnow
from vigil.intel.normalize import indicator_id
from vigil.intel.types import TLP, IndicatorInput, IndicatorType, IndicatorView, Observable, SourceView

NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
"""When the views made by :func:`view` were first and last seen."""
GREEN_MARKING = "marking-definition--34098fce-860f-48ae-8e50-ebd3cc5e41da"
"""The STIX 2.1 TLP:GREEN marking definition."""
RED_MARKING = "marking-definition--5e57c739-391a-4eb3-b6be-7d15ca92d5ed"
"""The STIX 2.1 TLP:RED marking definition."""
ZERO_BUNDLE_ID = "bundle--00000000-0000-4000-8000-000000000000"
"""The bundle id :func:`stix_bundle` gives when told none."""


def stored(item: IndicatorInput, *, seen: datetime, last_seen: datetime | None = None,
           base_score: int = 50, **changes: Any) -> IndicatorView:
    """The view the store gives back of an imported ``item``: every field the item carries, active,
    never sighted, with the item's source as its one source.

    First seen at the item's ``first_seen`` or else ``seen``; last seen at the item's ``last_seen``,
    else ``last_seen``, else when first seen. The base score (and the confidence, when the item
    states none) is ``base_score``, the decayed score the same. ``changes`` replace fields.
    """
    first = item.first_seen or seen
    last = item.last_seen or last_seen or first
    made = IndicatorView(
        id=indicator_id(item.type, item.value), type=item.type, value=item.value, pattern=item.pattern,
        stix_id=item.stix_id, name=item.name, description=item.description,
        confidence=item.confidence if item.confidence is not None else base_score, base_score=base_score,
        score=float(base_score), active=True, tlp=item.tlp, markings=item.markings, labels=item.labels,
        attack=item.attack, malware=item.malware, valid_from=item.valid_from, valid_until=item.valid_until,
        revoked=item.revoked, first_seen=first, last_seen=last, last_sighting=None, sightings_seen=0,
        sightings_false_positive=0, sightings_expired=0, allowlisted=None, observables=item.observables,
        sources=(SourceView(item.source, first, last),), stix=item.stix)
    return replace(made, **changes)


def view(kind: str, value: str, **changes: Any) -> IndicatorView:
    """An active, exportable indicator (TLP:GREEN, confidence 80, score 72.5, seen at :data:`NOW`
    from ``feed``) unless ``changes`` say otherwise.

    ``value`` is taken as given, not put in canonical form, so that exports meet hostile values.
    """
    kind_of = IndicatorType(kind)
    item = IndicatorInput(type=kind_of, value=value, source="feed", observables=(Observable(kind_of, value),),
                          tlp=TLP.GREEN)
    return stored(item, seen=NOW, base_score=80, **{"score": 72.5, **changes})


def stix_time(moment: datetime) -> str:
    """A STIX timestamp to the second, in UTC (``2026-01-05T10:00:00.000Z``)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def stix_indicator(stix_id: str, pattern: str, created: str, /, **fields: object) -> dict[str, object]:
    """A STIX 2.1 indicator object created, modified and valid from ``created``; ``fields`` add to
    it or replace what it has."""
    item: dict[str, object] = {
        "type": "indicator", "spec_version": "2.1", "id": stix_id, "created": created, "modified": created,
        "pattern": pattern, "pattern_type": "stix", "valid_from": created,
    }
    item.update(fields)
    return item


def recent_indicator(stix_id: str, pattern: str, marking: str, /, **fields: object) -> dict[str, object]:
    """A STIX 2.1 indicator labelled ``c2``, marked ``marking``, created (and valid from) two days
    ago and modified one day ago; ``fields`` add to it or replace what it has."""
    created = utcnow() - timedelta(days=2)
    stated: dict[str, object] = {"modified": stix_time(created + timedelta(days=1)), "labels": ["c2"],
                                 "object_marking_refs": [marking]}
    return stix_indicator(stix_id, pattern, stix_time(created), **{**stated, **fields})


def stix_bundle(*objects: dict[str, object], bundle_id: str = ZERO_BUNDLE_ID) -> bytes:
    """A STIX 2.1 bundle of ``objects``, as JSON."""
    return orjson.dumps({"type": "bundle", "id": bundle_id, "objects": list(objects)})
