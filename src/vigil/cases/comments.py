"""Comments on a case, with ``@username`` mentions: the people named are told
(``comment.mentioned``). Comments are immutable once written (the record of who said what)."""

from __future__ import annotations

import re
from collections import defaultdict
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from vigil.cases import directory
from vigil.cases.base import audit_change, case_ref, get_case, lock_case
from vigil.cases.models import CaseComment, CaseMention
from vigil.cases.schemas import CommentCreate, CommentOut
from vigil.cases.views import comment_view
from vigil.core.auth import Principal
from vigil.core.db import StateDB
from vigil.core.errors import InputError
from vigil.core.outbox import Topic, emit
from vigil.core.timeutil import utcnow

OBJECT = "case_comment"
_MENTION = re.compile(r"(?<![\w@.+-])@([A-Za-z0-9][A-Za-z0-9_.@-]{0,63})")
_EXCERPT = 280


def parse_mentions(body: str) -> list[str]:
    """The user names mentioned in a text (``@alice``, ``@bob.smith``), lower case, in order,
    once each. E-mail addresses (``bob@example.com``) are not mentions; trailing punctuation
    (``@alice,`` ``@alice.``) is not part of the name."""
    names: dict[str, None] = {}
    for match in _MENTION.finditer(body):
        name = match.group(1).rstrip(".@-").lower()
        if name:
            names.setdefault(name, None)
    return list(names)


def add_comment(db: StateDB, case_id: int, data: CommentCreate, actor: Principal, *,
                now: datetime | None = None) -> CommentOut:
    """Comment on a case (also allowed on a closed case: notes after closure are common).

    Mentioned people who exist are recorded and told; other ``@words`` stay plain text."""
    stamp = now or utcnow()
    mentioned = directory.known(db, parse_mentions(data.body))
    with db.session() as session:
        case = lock_case(session, case_id, now=stamp)
        if data.parent_id is not None:
            parent = session.get(CaseComment, data.parent_id)
            if parent is None or parent.case_id != case_id:
                raise InputError(f"no comment {data.parent_id} in {case_ref(case_id)} to reply to")
        row = CaseComment(case_id=case_id, parent_id=data.parent_id, author=actor.actor,
                          body=data.body, created_at=stamp)
        session.add(row)
        session.flush()
        for person in mentioned:
            session.add(CaseMention(comment_id=row.id, case_id=case_id, user_id=person.id,
                                    username=person.username))
        names = [p.username for p in mentioned]
        audit_change(session, actor, "create", OBJECT, row.id, None,
                     {"case_id": case_id, "body": data.body, "mentions": names})
        if names:
            excerpt = data.body if len(data.body) <= _EXCERPT else data.body[:_EXCERPT] + "…"
            emit(session, Topic.MENTIONED,
                 subject=f"{actor.name} mentioned you in {case_ref(case_id)}: {case.title}",
                 severity=case.severity, object_type=OBJECT, object_id=row.id, recipients=names,
                 details={"case_id": case_id, "case_ref": case_ref(case_id), "comment_id": row.id,
                          "author": actor.actor, "excerpt": excerpt})
        return comment_view(row, names)


def list_comments(db: StateDB, case_id: int) -> list[CommentOut]:
    """The comments of a case, oldest first."""
    with db.session() as session:
        get_case(session, case_id)
        return comments_of(session, case_id)


def comments_of(session: Session, case_id: int) -> list[CommentOut]:
    """The comments of a case with their mentions, read in ``session``."""
    rows = session.scalars(select(CaseComment).where(CaseComment.case_id == case_id)
                           .order_by(CaseComment.id)).all()
    mentions: dict[int, list[str]] = defaultdict(list)
    for comment_id, username in session.execute(
            select(CaseMention.comment_id, CaseMention.username)
            .where(CaseMention.case_id == case_id).order_by(CaseMention.id)).all():
        mentions[comment_id].append(username)
    return [comment_view(row, mentions[row.id]) for row in rows]
