"""Assignees are users of ``vigil.people``, named by id or user name; alerts keep the id."""

from __future__ import annotations

from vigil.core.db import StateDB
from vigil.core.errors import InputError, NotFoundError
from vigil.people import service as people


def resolve(db: StateDB, who: int | str | None, *, active_only: bool = True) -> int | None:
    """The id of the user ``who`` names (None stays None: nobody); :class:`InputError` when
    there is no such user, or (``active_only``: when assigning) they are disabled."""
    if who is None:
        return None
    try:
        info = people.get_user_by_id(db, who) if isinstance(who, int) else people.get_user(db, who)
    except NotFoundError as exc:
        raise InputError(f"unknown assignee: {exc}") from None
    if active_only and info.disabled:
        raise InputError(f"cannot assign to user {info.username}: they are disabled")
    return info.id
