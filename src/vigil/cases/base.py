"""What every cases service shares: finding and locking a case, the transition log, sources.

Every write to a case (its own fields or anything attached to it) first *locks* the case:
an ``UPDATE`` that bumps its version. That takes the row lock on PostgreSQL and the write
lock on SQLite before anything is read, so concurrent writers of one case queue instead of
reading stale state (and SQLite never has to upgrade a read transaction, which fails under
concurrency), and the version tells API clients whether the case changed since they read it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from vigil.audit import service as audit
from vigil.cases.enums import Source, Stage
from vigil.cases.models import Case, CaseAssignee, CaseEvent
from vigil.core.auth import Principal, PrincipalKind
from vigil.core.errors import ConflictError, NotFoundError
from vigil.core.timeutil import to_utc, utcnow

CASE = "case"
"""The audit object type of a case (its parts use ``case_task``, ``case_clock`` ...)."""


def case_ref(case_id: int) -> str:
    """How people name a case: ``CASE-42``."""
    return f"CASE-{case_id}"


def source_of(actor: Principal, source: Source | None = None) -> Source:
    """Where a change comes from: given explicitly (playbooks), else from the principal.

    The ``vigil`` command runs as a system principal named ``cli:<account>``: a person."""
    if source is not None:
        return source
    if actor.kind is PrincipalKind.USER or actor.name.startswith("cli:"):
        return Source.USER
    if actor.kind is PrincipalKind.TOKEN:
        return Source.API
    return Source.SYSTEM


def get_case(session: Session, case_id: int) -> Case:
    """The case, or :class:`NotFoundError`."""
    case = session.get(Case, case_id)
    if case is None:
        raise NotFoundError(f"no case {case_ref(case_id)}")
    return case


def lock_case(session: Session, case_id: int, expected_version: int | None = None,
              now: datetime | None = None) -> Case:
    """Lock the case for a change, bump its version and ``updated_at``; return it fresh.

    With ``expected_version``, a case changed since then is refused with a conflict.
    """
    stamp = now or utcnow()
    statement = update(Case).where(Case.id == case_id)
    if expected_version is not None:
        statement = statement.where(Case.version == expected_version)
    found = session.scalars(statement.values(version=Case.version + 1, updated_at=stamp)
                            .returning(Case)
                            .execution_options(populate_existing=True,
                                               synchronize_session=False)).one_or_none()
    if found is None:
        case = get_case(session, case_id)
        raise ConflictError(f"{case_ref(case_id)} changed since version {expected_version} "
                            f"(now {case.version}); read it again")
    return found


def lock_open_case(session: Session, case_id: int, now: datetime | None = None) -> Case:
    """:func:`lock_case`, refusing a closed case (reopen it first)."""
    case = lock_case(session, case_id, now=now)
    if case.stage == Stage.CLOSED.value:
        raise ConflictError(f"{case_ref(case_id)} is closed; reopen it (stage in_progress) first")
    return case


def text_of(value: Any) -> str | None:
    """How a field value is written in a case event."""
    if value is None:
        return None
    if isinstance(value, datetime):
        return to_utc(value).isoformat()
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | tuple):
        return json.dumps(list(value))
    return str(value)


def record_event(session: Session, case: Case, actor: Principal, source: Source, field: str,
                 old: Any, new: Any, at: datetime) -> None:
    """Append one immutable transition record (the source of the SOC metrics)."""
    session.add(CaseEvent(case_id=case.id, at=at, actor=actor.actor[:255], source=source.value,
                          field=field, old=text_of(old), new=text_of(new)))


def audit_change(session: Session, actor: Principal, action: str, object_type: str,
                 object_id: int | str, before: Mapping[str, Any] | None,
                 after: Mapping[str, Any] | None) -> None:
    """One audit record (written last in a change, so the audit chain lock is held briefly)."""
    audit.record(session, actor, action, object_type, object_id,
                 _plain(before) if before is not None else None,
                 _plain(after) if after is not None else None)


def _plain(values: Mapping[str, Any]) -> dict[str, Any]:
    return {key: text_of(value) if isinstance(value, datetime) else value
            for key, value in values.items()}


def assignee_names(session: Session, case_id: int) -> list[str]:
    """The user names of the people assigned to a case (notification recipients)."""
    return list(session.scalars(select(CaseAssignee.username)
                                .where(CaseAssignee.case_id == case_id)
                                .order_by(CaseAssignee.username)).all())


def loads_list(text: str | None) -> list[str]:
    """A JSON list column as a list of strings."""
    if not text:
        return []
    value = json.loads(text)
    return [str(v) for v in value] if isinstance(value, list) else []


def opt_utc(value: datetime | None) -> datetime | None:
    """A stored time as UTC (None stays None)."""
    return None if value is None else to_utc(value)
