"""TLP markings in STIX 2.1: the fixed marking-definition ids of TLP 1.0 and TLP 2.0, the
TLP 2.0 marking objects a bundle must carry, and recognition of a marking as a TLP level.

TLP 1.0 markings are predefined by STIX 2.1 (a bundle may reference them without including
them). TLP 2.0 is a STIX property extension (published by OASIS in
``cti-stix-common-objects``, ``extension-definition-specifications/tlp-2.0``): its five
marking objects have fixed ids and content, and a bundle that references one must include
it. TLP 1.0 WHITE is read as TLP 2.0 CLEAR.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Final

from vigil.core.errors import InputError
from vigil.intel.types import TLP

TLP2_EXTENSION_ID: Final = "extension-definition--60a3c5c5-0d10-413e-aab3-9e08dde9e88d"
"""The STIX extension definition of TLP 2.0."""
TLP2_CREATED: Final = "2022-10-01T00:00:00.000Z"
"""``created`` of the TLP 2.0 marking objects and of their extension definition."""

TLP1_IDS: Final[Mapping[str, TLP]] = {
    "marking-definition--613f2e26-407d-48c7-9eca-b8e91df99dc9": TLP.CLEAR,  # TLP 1.0 WHITE
    "marking-definition--34098fce-860f-48ae-8e50-ebd3cc5e41da": TLP.GREEN,
    "marking-definition--f88d31f6-486f-44da-b317-01333bde0b82": TLP.AMBER,
    "marking-definition--5e57c739-391a-4eb3-b6be-7d15ca92d5ed": TLP.RED,
}
"""The predefined TLP 1.0 marking definitions of STIX 2.1."""

TLP2_IDS: Final[Mapping[TLP, str]] = {
    TLP.CLEAR: "marking-definition--94868c89-83c2-464b-929b-a1a8aa3c8487",
    TLP.GREEN: "marking-definition--bab4a63c-aed9-4cf5-a766-dfca5abac2bb",
    TLP.AMBER: "marking-definition--55d920b0-5e8b-4f79-9ee9-91f868d9b421",
    TLP.AMBER_STRICT: "marking-definition--939a9414-2ddd-4d32-a0cd-375ea402b003",
    TLP.RED: "marking-definition--e828b379-4e03-4974-9ac4-e53a884c97c1",
}
"""The TLP 2.0 marking definitions (fixed ids: never generate one)."""

_BY_ID: Final[Mapping[str, TLP]] = {**TLP1_IDS, **{marking: level for level, marking in TLP2_IDS.items()}}
_TLP2_LEVELS: Final[frozenset[str]] = frozenset(marking for marking in TLP2_IDS.values())


def known_level(marking_id: str) -> TLP | None:
    """The TLP level of a TLP 1.0 or TLP 2.0 marking-definition id, None for any other id."""
    return _BY_ID.get(marking_id)


def is_tlp2(marking_id: str) -> bool:
    """Whether the id is one of the five TLP 2.0 marking definitions."""
    return marking_id in _TLP2_LEVELS


def tlp2_marking(level: TLP) -> dict[str, object]:
    """The TLP 2.0 marking-definition object of a level, exactly as OASIS publishes it."""
    return {
        "type": "marking-definition",
        "spec_version": "2.1",
        "id": TLP2_IDS[level],
        "created": TLP2_CREATED,
        "name": f"TLP:{level.value.upper()}",
        "extensions": {
            TLP2_EXTENSION_ID: {"extension_type": "property-extension", "tlp_2_0": level.value},
        },
    }


def tlp2_extension_definition() -> dict[str, object]:
    """The extension-definition object of TLP 2.0 as OASIS publishes it (STIX lets a bundle
    leave it out; carrying it lets a consumer without network access resolve the extension)."""
    return {
        "type": "extension-definition",
        "spec_version": "2.1",
        "id": TLP2_EXTENSION_ID,
        "created_by_ref": "identity--b3bca3c2-1f3d-4b54-b44f-dac42c3a8f01",
        "created": TLP2_CREATED,
        "modified": TLP2_CREATED,
        "name": "TLP 2.0",
        "description": "This defines TLP 2.0 as a STIX extension",
        "schema": "https://github.com/oasis-open/cti-stix-common-objects/tree/master/"
                  "extension-definition-specifications/tlp-2.0",
        "version": "1.0.0",
        "extension_types": ["property-extension"],
    }


def marking_level(marking: Mapping[str, object]) -> TLP | None:
    """The TLP level a marking-definition object stands for, None when it is no TLP marking.

    Recognised, in this order: a fixed TLP 1.0/2.0 id; the TLP 2.0 extension's ``tlp_2_0``
    value; a TLP 1.0-style ``definition_type: tlp`` with ``definition.tlp`` (any case, with or
    without a ``TLP:`` prefix, as some platforms write their own TLP markings).
    """
    marking_id = marking.get("id")
    if isinstance(marking_id, str) and (level := known_level(marking_id)) is not None:
        return level
    extensions = marking.get("extensions")
    if isinstance(extensions, Mapping):
        extension = extensions.get(TLP2_EXTENSION_ID)
        if isinstance(extension, Mapping) and isinstance(extension.get("tlp_2_0"), str):
            return _parse(str(extension["tlp_2_0"]))
    definition_type = marking.get("definition_type")
    definition = marking.get("definition")
    if (isinstance(definition_type, str) and definition_type.lower() == "tlp"
            and isinstance(definition, Mapping)):
        for key, value in definition.items():
            if isinstance(key, str) and key.lower() == "tlp" and isinstance(value, str):
                return _parse(value)
    return None


def _parse(text: str) -> TLP | None:
    try:
        return TLP.parse(text)
    except InputError:
        return None


def strictest(levels: Iterable[TLP | None]) -> TLP | None:
    """The most restrictive of the levels (RED over AMBER+STRICT over ... over CLEAR)."""
    found = [level for level in levels if level is not None]
    return max(found, key=lambda level: level.rank) if found else None
