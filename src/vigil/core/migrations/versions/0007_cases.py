"""Cases: cases, tasks, comments, observables, evidence, timeline, clocks and reviews.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

_TZ = sa.DateTime(timezone=True)
_ACTOR = sa.String(255)


def _case_fk() -> sa.Column[int]:
    return sa.Column("case_id", sa.Integer(), sa.ForeignKey("cases.id", ondelete="CASCADE",
                                                            name=None), nullable=False)


def _cases() -> None:
    op.create_table(
        "cases",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("title", sa.String(300), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("severity", sa.String(16), nullable=False),
        sa.Column("priority", sa.String(16), nullable=False),
        sa.Column("stage", sa.String(16), nullable=False),
        sa.Column("phase", sa.String(24), nullable=False),
        sa.Column("disposition", sa.String(40)),
        sa.Column("closing_note", sa.Text()),
        sa.Column("template", sa.String(64)),
        sa.Column("tlp", sa.String(16), nullable=False),
        sa.Column("tags", sa.Text(), nullable=False),
        sa.Column("external_ref", sa.String(128)),
        sa.Column("personal_data", sa.Boolean(), nullable=False),
        sa.Column("health_data", sa.Boolean(), nullable=False),
        sa.Column("aware_at", _TZ),
        sa.Column("functional_impact", sa.String(16)),
        sa.Column("information_impact", sa.String(24)),
        sa.Column("recoverability", sa.String(24)),
        sa.Column("created_by", _ACTOR, nullable=False),
        sa.Column("created_at", _TZ, nullable=False),
        sa.Column("updated_at", _TZ, nullable=False),
        sa.Column("acknowledged_at", _TZ),
        sa.Column("contained_at", _TZ),
        sa.Column("resolved_at", _TZ),
        sa.Column("closed_at", _TZ),
        sa.Column("version", sa.Integer(), nullable=False),
    )
    for column in ("severity", "priority", "stage", "phase", "created_at", "updated_at"):
        op.create_index(f"ix_cases_{column}", "cases", [column])
    op.create_table(
        "case_events",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        _case_fk(),
        sa.Column("at", _TZ, nullable=False),
        sa.Column("actor", _ACTOR, nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("field", sa.String(32), nullable=False),
        sa.Column("old", sa.Text()),
        sa.Column("new", sa.Text()),
    )
    op.create_index("ix_case_events_case_at", "case_events", ["case_id", "at"])
    op.create_index("ix_case_events_field_at", "case_events", ["field", "at"])
    op.create_table(
        "case_assignees",
        sa.Column("case_id", sa.Integer(), sa.ForeignKey("cases.id", ondelete="CASCADE"),
                  primary_key=True),
        sa.Column("user_id", sa.Integer(), primary_key=True),
        sa.Column("username", sa.String(128), nullable=False),
        sa.Column("team", sa.String(64)),
        sa.Column("assigned_at", _TZ, nullable=False),
        sa.Column("assigned_by", _ACTOR, nullable=False),
    )
    op.create_index("ix_case_assignees_user_id", "case_assignees", ["user_id"])
    op.create_index("ix_case_assignees_team", "case_assignees", ["team"])


def _work() -> None:
    op.create_table(
        "case_tasks",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        _case_fk(),
        sa.Column("title", sa.String(300), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("owner_id", sa.Integer()),
        sa.Column("owner_name", sa.String(128)),
        sa.Column("team", sa.String(64)),
        sa.Column("due_at", _TZ),
        sa.Column("mandatory", sa.Boolean(), nullable=False),
        sa.Column("origin", sa.String(128)),
        sa.Column("created_by", _ACTOR, nullable=False),
        sa.Column("created_at", _TZ, nullable=False),
        sa.Column("updated_at", _TZ, nullable=False),
        sa.Column("completed_at", _TZ),
    )
    op.create_index("ix_case_tasks_case_id", "case_tasks", ["case_id"])
    op.create_index("ix_case_tasks_owner_id", "case_tasks", ["owner_id"])
    op.create_table(
        "case_comments",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        _case_fk(),
        sa.Column("parent_id", sa.Integer(),
                  sa.ForeignKey("case_comments.id", ondelete="CASCADE")),
        sa.Column("author", _ACTOR, nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("created_at", _TZ, nullable=False),
    )
    op.create_index("ix_case_comments_case_id", "case_comments", ["case_id"])
    op.create_table(
        "case_mentions",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("comment_id", sa.Integer(),
                  sa.ForeignKey("case_comments.id", ondelete="CASCADE"), nullable=False),
        _case_fk(),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("username", sa.String(128), nullable=False),
    )
    op.create_index("ix_case_mentions_comment_id", "case_mentions", ["comment_id"])
    op.create_index("ix_case_mentions_username", "case_mentions", ["username"])
    op.create_table(
        "case_timeline",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        _case_fk(),
        sa.Column("occurred_at", _TZ, nullable=False),
        sa.Column("title", sa.String(300), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("category", sa.String(64)),
        sa.Column("technique", sa.String(32)),
        sa.Column("source", sa.String(255)),
        sa.Column("flagged", sa.Boolean(), nullable=False),
        sa.Column("created_by", _ACTOR, nullable=False),
        sa.Column("created_at", _TZ, nullable=False),
    )
    op.create_index("ix_case_timeline_case_at", "case_timeline", ["case_id", "occurred_at"])


def _artifacts() -> None:
    op.create_table(
        "case_observables",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        _case_fk(),
        sa.Column("type", sa.String(16), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.Column("key", sa.String(64), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("tlp", sa.String(16), nullable=False),
        sa.Column("ioc", sa.Boolean(), nullable=False),
        sa.Column("sighted", sa.Boolean(), nullable=False),
        sa.Column("tags", sa.Text(), nullable=False),
        sa.Column("created_by", _ACTOR, nullable=False),
        sa.Column("created_at", _TZ, nullable=False),
        sa.UniqueConstraint("case_id", "key", name="uq_case_observables_case_id"),
    )
    op.create_index("ix_case_observables_case_id", "case_observables", ["case_id"])
    op.create_index("ix_case_observables_key", "case_observables", ["key"])
    op.create_table(
        "case_observable_links",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("observable_id", sa.Integer(),
                  sa.ForeignKey("case_observables.id", ondelete="CASCADE"), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("ref", sa.String(128), nullable=False),
        sa.Column("seen_at", _TZ),
        sa.Column("linked_by", _ACTOR, nullable=False),
        sa.Column("linked_at", _TZ, nullable=False),
        sa.UniqueConstraint("observable_id", "kind", "ref",
                            name="uq_case_observable_links_observable_id"),
    )
    op.create_index("ix_case_observable_links_ref", "case_observable_links", ["kind", "ref"])
    op.create_table(
        "case_evidence",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        _case_fk(),
        sa.Column("name", sa.String(512), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("size", sa.BigInteger()),
        sa.Column("acquired_at", _TZ, nullable=False),
        sa.Column("acquired_by", _ACTOR, nullable=False),
        sa.Column("holder", _ACTOR, nullable=False),
        sa.Column("location", sa.Text()),
        sa.Column("created_by", _ACTOR, nullable=False),
        sa.Column("created_at", _TZ, nullable=False),
    )
    op.create_index("ix_case_evidence_case_id", "case_evidence", ["case_id"])
    op.create_index("ix_case_evidence_sha256", "case_evidence", ["sha256"])
    op.create_table(
        "case_custody",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("evidence_id", sa.Integer(),
                  sa.ForeignKey("case_evidence.id", ondelete="CASCADE"), nullable=False),
        sa.Column("at", _TZ, nullable=False),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("holder", _ACTOR, nullable=False),
        sa.Column("location", sa.Text()),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("sha256", sa.String(64)),
        sa.Column("recorded_by", _ACTOR, nullable=False),
        sa.Column("recorded_at", _TZ, nullable=False),
    )
    op.create_index("ix_case_custody_evidence_id", "case_custody", ["evidence_id"])


def _clocks_and_reviews() -> None:
    op.create_table(
        "case_clocks",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        _case_fk(),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("regime", sa.String(32)),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("trigger_at", _TZ, nullable=False),
        sa.Column("due_at", _TZ, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("paused_at", _TZ),
        sa.Column("pause_reason", sa.Text()),
        sa.Column("paused_seconds", sa.Integer(), nullable=False),
        sa.Column("stopped_at", _TZ),
        sa.Column("outcome", sa.String(16)),
        sa.Column("note", sa.Text()),
        sa.Column("breached", sa.Boolean(), nullable=False),
        sa.Column("breached_at", _TZ),
        sa.Column("due_notified", sa.Boolean(), nullable=False),
        sa.Column("created_by", _ACTOR, nullable=False),
        sa.Column("created_at", _TZ, nullable=False),
    )
    op.create_index("ix_case_clocks_case_id", "case_clocks", ["case_id"])
    op.create_index("ix_case_clocks_state_due", "case_clocks", ["state", "due_at"])
    op.create_table(
        "case_reviews",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("case_id", sa.Integer(), sa.ForeignKey("cases.id", ondelete="CASCADE"),
                  nullable=False, unique=True),
        sa.Column("status", sa.String(16), nullable=False),
        *(sa.Column(name, sa.Text(), nullable=False) for name in (
            "summary", "what_happened", "root_cause", "went_well", "went_badly",
            "detection_gaps", "lessons")),
        sa.Column("first_compromise_at", _TZ),
        sa.Column("created_by", _ACTOR, nullable=False),
        sa.Column("created_at", _TZ, nullable=False),
        sa.Column("updated_at", _TZ, nullable=False),
        sa.Column("completed_at", _TZ),
        sa.Column("completed_by", _ACTOR),
    )
    op.create_table(
        "case_review_actions",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("review_id", sa.Integer(),
                  sa.ForeignKey("case_reviews.id", ondelete="CASCADE"), nullable=False),
        _case_fk(),
        sa.Column("title", sa.String(300), nullable=False),
        sa.Column("owner_id", sa.Integer(), nullable=False),
        sa.Column("owner_name", sa.String(128), nullable=False),
        sa.Column("due_at", _TZ),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("link", sa.String(512)),
        sa.Column("created_at", _TZ, nullable=False),
        sa.Column("updated_at", _TZ, nullable=False),
    )
    op.create_index("ix_case_review_actions_review_id", "case_review_actions", ["review_id"])
    op.create_index("ix_case_review_actions_owner_id", "case_review_actions", ["owner_id"])


TABLES = ("case_review_actions", "case_reviews", "case_clocks", "case_custody", "case_evidence",
          "case_observable_links", "case_observables", "case_timeline", "case_mentions",
          "case_comments", "case_tasks", "case_assignees", "case_events", "cases")


def upgrade() -> None:
    _cases()
    _work()
    _artifacts()
    _clocks_and_reviews()


def downgrade() -> None:
    for table in TABLES:
        op.drop_table(table)
