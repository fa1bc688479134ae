"""Alerts and incidents: alert lifecycle columns, incidents and alert history.

Existing alerts get a severity from their rule level, a source (``correlation`` when they
carry a group key, else ``sigma``) and one incident per rule and host (their entity), so that
every alert belongs to an incident after the upgrade.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-29
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

_TZ = sa.DateTime(timezone=True)
_SORT = ("last_seen", "id")
_ALERT_INDEXES: dict[str, tuple[str, ...]] = {
    "ix_alerts_last_seen": _SORT,
    "ix_alerts_first_seen": ("first_seen", "id"),
    "ix_alerts_created_at": ("created_at",),
    "ix_alerts_rule_id": ("rule_id", *_SORT),
    "ix_alerts_status": ("status", *_SORT),
    "ix_alerts_severity": ("severity", *_SORT),
    "ix_alerts_host": ("host", *_SORT),
    "ix_alerts_user_name": ("user_name", *_SORT),
    "ix_alerts_src_ip": ("src_ip", *_SORT),
    "ix_alerts_incident_id": ("incident_id", *_SORT),
    "ix_alerts_assignee": ("assignee", "status"),
    "ix_alerts_case_id": ("case_id",),
    "ix_alerts_group_key": ("group_key", "last_seen"),
}
_NEW_COLUMNS = ("source", "severity", "user_name", "src_ip", "disposition", "closing_note",
                "assignee", "incident_id", "case_id", "updated_at", "acknowledged_at",
                "escalated_at", "closed_at")
_SEVERITY = ("UPDATE alerts SET severity = CASE lower(level) WHEN 'informational' THEN 0 "
             "WHEN 'low' THEN 1 WHEN 'medium' THEN 2 WHEN 'high' THEN 3 WHEN 'critical' THEN 4 "
             "ELSE 2 END")


def _create_incidents() -> None:
    op.create_table(
        "incidents",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("rule_id", sa.String(128), nullable=False),
        sa.Column("entity_kind", sa.String(16), nullable=False),
        sa.Column("entity_value", sa.String(255), nullable=False),
        sa.Column("severity", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("alert_count", sa.Integer(), nullable=False),
        sa.Column("first_seen", _TZ, nullable=False),
        sa.Column("last_seen", _TZ, nullable=False),
        sa.Column("case_id", sa.Integer()),
        sa.Column("auto_group", sa.Boolean(), nullable=False, server_default=sa.true()),
        sa.Column("merged_into", sa.Integer()),
        sa.Column("created_at", _TZ, nullable=False),
        sa.Column("updated_at", _TZ, nullable=False),
        sa.Column("closed_at", _TZ),
    )
    op.create_index("ix_incidents_key", "incidents",
                    ["rule_id", "entity_kind", "entity_value", "status", "last_seen"])
    op.create_index("ix_incidents_last_seen", "incidents", ["last_seen", "id"])
    op.create_index("ix_incidents_status", "incidents", ["status", "last_seen", "id"])
    op.create_index("ix_incidents_case_id", "incidents", ["case_id"])


def _alter_alerts() -> None:
    with op.batch_alter_table("alerts") as batch:
        batch.drop_index("ix_alerts_last_seen")
        batch.drop_index("ix_alerts_rule_id")
        batch.add_column(sa.Column("source", sa.String(16), nullable=False, server_default="sigma"))
        batch.add_column(sa.Column("severity", sa.Integer(), nullable=False, server_default="2"))
        batch.add_column(sa.Column("user_name", sa.String(255)))
        batch.add_column(sa.Column("src_ip", sa.String(64)))
        batch.add_column(sa.Column("disposition", sa.String(40)))
        batch.add_column(sa.Column("closing_note", sa.Text()))
        batch.add_column(sa.Column("assignee", sa.Integer()))
        batch.add_column(sa.Column("incident_id", sa.Integer()))
        batch.add_column(sa.Column("case_id", sa.Integer()))
        for name in ("updated_at", "acknowledged_at", "escalated_at", "closed_at"):
            batch.add_column(sa.Column(name, _TZ))
        batch.create_foreign_key("fk_alerts_incident_id_incidents", "incidents",
                                 ["incident_id"], ["id"])
        for name, columns in _ALERT_INDEXES.items():
            batch.create_index(name, list(columns))


def _backfill() -> None:
    """Severity and source of existing alerts; one incident per rule and host."""
    bind = op.get_bind()
    bind.execute(sa.text(_SEVERITY))
    bind.execute(sa.text("UPDATE alerts SET source = 'correlation' WHERE group_key IS NOT NULL"))
    alerts = sa.table("alerts", sa.column("id", sa.Integer()), sa.column("rule_id", sa.String()),
                      sa.column("rule_title", sa.Text()), sa.column("host", sa.String()),
                      sa.column("severity", sa.Integer()), sa.column("status", sa.String()),
                      sa.column("first_seen", _TZ), sa.column("last_seen", _TZ),
                      sa.column("created_at", _TZ), sa.column("incident_id", sa.Integer()))
    groups: dict[tuple[str, str], list[Any]] = {}
    for row in bind.execute(sa.select(alerts).order_by(alerts.c.id)):
        groups.setdefault((row.rule_id, row.host or ""), []).append(row)
    for (rule_id, host), rows in groups.items():
        incident_id = _insert_incident(bind, rule_id, host, rows)
        bind.execute(sa.update(alerts).where(alerts.c.id.in_([r.id for r in rows]))
                     .values(incident_id=incident_id))


def _insert_incident(bind: Any, rule_id: str, host: str, rows: list[Any]) -> int:
    incidents = sa.table("incidents", sa.column("id", sa.Integer()), sa.column("title", sa.Text()),
                         sa.column("rule_id", sa.String()), sa.column("entity_kind", sa.String()),
                         sa.column("entity_value", sa.String()), sa.column("severity", sa.Integer()),
                         sa.column("status", sa.String()), sa.column("alert_count", sa.Integer()),
                         sa.column("first_seen", _TZ), sa.column("last_seen", _TZ),
                         sa.column("created_at", _TZ), sa.column("updated_at", _TZ),
                         sa.column("closed_at", _TZ))
    title = rows[0].rule_title + (f" on host {host}" if host else "")
    still_open = any(r.status != "closed" for r in rows)
    created = min(r.created_at for r in rows)
    result = bind.execute(sa.insert(incidents).values(
        title=title, rule_id=rule_id, entity_kind="host" if host else "none",
        entity_value=host[:255], severity=max(r.severity for r in rows),
        status="open" if still_open else "closed", alert_count=len(rows),
        first_seen=min(r.first_seen for r in rows), last_seen=max(r.last_seen for r in rows),
        created_at=created, updated_at=created, closed_at=None if still_open else created,
    ).returning(incidents.c.id))
    return int(result.scalar_one())


def _create_history() -> None:
    op.create_table(
        "alert_history",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("alert_id", sa.Integer(),
                  sa.ForeignKey("alerts.id", name="fk_alert_history_alert_id_alerts",
                                ondelete="CASCADE"), nullable=False),
        sa.Column("at", _TZ, nullable=False),
        sa.Column("actor", sa.String(255), nullable=False),
        sa.Column("field", sa.String(32), nullable=False),
        sa.Column("old", sa.Text()),
        sa.Column("new", sa.Text()),
    )
    op.create_index("ix_alert_history_alert_id", "alert_history", ["alert_id", "id"])
    op.create_index("ix_alert_history_at", "alert_history", ["at"])


def upgrade() -> None:
    _create_incidents()
    _alter_alerts()
    _backfill()
    _create_history()


def downgrade() -> None:
    op.drop_table("alert_history")
    with op.batch_alter_table("alerts") as batch:
        for name in _ALERT_INDEXES:
            batch.drop_index(name)
        batch.drop_constraint("fk_alerts_incident_id_incidents", type_="foreignkey")
        for name in _NEW_COLUMNS:
            batch.drop_column(name)
        batch.create_index("ix_alerts_rule_id", ["rule_id"])
        batch.create_index("ix_alerts_last_seen", ["last_seen"])
    op.drop_table("incidents")
