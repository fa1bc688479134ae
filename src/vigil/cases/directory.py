"""People as the cases context needs them: a user id, user name and team, looked up through
the people service (never its tables).

Look-ups run before a change locks its case, so a write transaction never waits on them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from vigil.core.db import StateDB
from vigil.core.errors import InputError, NotFoundError
from vigil.people import service as people


@dataclass(frozen=True, slots=True)
class Person:
    """Someone a case, task or action item can be assigned to."""

    id: int
    username: str
    team: str | None


def _person(info: people.UserInfo) -> Person:
    return Person(info.id, info.username, info.team)


def resolve(db: StateDB, ref: int | str) -> Person:
    """The enabled user named by ``ref`` (user name, or user id); InputError otherwise."""
    info = _by_id(db, ref) if isinstance(ref, int) else people.find_user(db, ref)
    if info is None:
        raise InputError(f"no user {ref!r}")
    if info.disabled:
        raise InputError(f"user {info.username!r} is disabled")
    return _person(info)


def resolve_all(db: StateDB, refs: Iterable[int | str]) -> list[Person]:
    """:func:`resolve` for each ref, without duplicates, in order."""
    seen: dict[int, Person] = {}
    for ref in refs:
        person = resolve(db, ref)
        seen.setdefault(person.id, person)
    return list(seen.values())


def known(db: StateDB, usernames: Iterable[str]) -> list[Person]:
    """The enabled users among ``usernames`` (unknown names are skipped: for @mentions)."""
    found: dict[int, Person] = {}
    for name in dict.fromkeys(n.lower() for n in usernames):
        info = people.find_user(db, name)
        if info is not None and not info.disabled:
            found.setdefault(info.id, _person(info))
    return list(found.values())


def _by_id(db: StateDB, user_id: int) -> people.UserInfo | None:
    try:
        return people.get_user_by_id(db, user_id)
    except NotFoundError:
        return None
