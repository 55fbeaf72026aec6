"""alerts, their evidence and timeline; alert permissions for the default roles

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-21 09:30:00.000000

``seed_defaults`` never overwrites an existing role, so a database initialised before the
alert permissions existed gets them here, added to the default roles it has.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
WHEN = sa.DateTime(timezone=True)

# Frozen copy of what auth/defaults.py grants: a migration must not change with the code.
GRANTS: dict[str, list[str]] = {
    "city_analyst": ["alert.view"],
    "district_analyst": ["alert.view", "alert.dispatch"],
    "station_analyst": ["alert.view", "alert.dispatch"],
    "officer": ["alert.view", "alert.handle", "alert.dispatch", "alert.close"],
    "grid_worker": ["alert.view", "alert.handle"],
    "property_manager": ["alert.view", "alert.handle", "alert.dispatch", "alert.close"],
    "property_staff": ["alert.view", "alert.handle"],
    "guard": ["alert.view", "alert.handle"],
}


def upgrade() -> None:
    op.create_table(
        "alerts",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("model", sa.String(length=40), nullable=False),
        sa.Column("community_id", ID, nullable=False),
        sa.Column("fingerprint", sa.String(length=200), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column(
            "severity",
            sa.Enum(
                "low",
                "medium",
                "high",
                "critical",
                name="severity",
                native_enum=False,
                create_constraint=True,
                length=10,
            ),
            nullable=False,
        ),
        sa.Column(
            "state",
            sa.Enum(
                "raised",
                "dispatched",
                "acknowledged",
                "handled",
                "closed",
                name="alertstate",
                native_enum=False,
                create_constraint=True,
                length=16,
            ),
            nullable=False,
        ),
        sa.Column("police_only", sa.Boolean(), nullable=False),
        sa.Column("place", sa.String(length=200), nullable=True),
        sa.Column("subject_type", sa.String(length=8), nullable=True),
        sa.Column("subject_value", sa.String(length=200), nullable=True),
        sa.Column("person_id", ID, nullable=True),
        sa.Column("vehicle_id", ID, nullable=True),
        sa.Column("house_id", ID, nullable=True),
        sa.Column("device_id", ID, nullable=True),
        sa.Column("first_at", WHEN, nullable=False),
        sa.Column("last_at", WHEN, nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("assignee_id", ID, nullable=True),
        sa.Column("assigned_role", sa.String(length=20), nullable=True),
        sa.Column("escalation", sa.Integer(), nullable=False),
        sa.Column("ack_deadline", WHEN, nullable=True),
        sa.Column("dispatched_at", WHEN, nullable=True),
        sa.Column("acknowledged_at", WHEN, nullable=True),
        sa.Column("closed_at", WHEN, nullable=True),
        sa.Column(
            "verdict",
            sa.Enum(
                "true_alarm",
                "false_alarm",
                "duplicate",
                name="verdict",
                native_enum=False,
                create_constraint=True,
                length=16,
            ),
            nullable=True,
        ),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.Column("created_at", WHEN, nullable=False),
        sa.Column("updated_at", WHEN, nullable=False),
        sa.ForeignKeyConstraint(
            ["community_id"],
            ["org_units.id"],
            name=op.f("fk_alerts_community_id_org_units"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["assignee_id"],
            ["users.id"],
            name=op.f("fk_alerts_assignee_id_users"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alerts")),
    )
    op.create_index("ix_alerts_community_id", "alerts", ["community_id"])
    op.create_index("ix_alerts_model", "alerts", ["model"])
    op.create_index(
        "ix_alerts_community_state_last", "alerts", ["community_id", "state", "last_at"]
    )
    op.create_index("ix_alerts_fingerprint", "alerts", ["fingerprint", "last_at"])
    op.create_index("ix_alerts_deadline", "alerts", ["ack_deadline"])
    op.create_table(
        "alert_evidence",
        sa.Column("alert_id", ID, nullable=False),
        sa.Column("event_id", ID, nullable=False),
        sa.ForeignKeyConstraint(
            ["alert_id"],
            ["alerts.id"],
            name=op.f("fk_alert_evidence_alert_id_alerts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("alert_id", "event_id", name=op.f("pk_alert_evidence")),
    )
    op.create_table(
        "alert_steps",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("alert_id", ID, nullable=False),
        sa.Column("at", WHEN, nullable=False),
        sa.Column("actor_id", ID, nullable=True),
        sa.Column("actor_name", sa.String(length=60), nullable=False),
        sa.Column("action", sa.String(length=16), nullable=False),
        sa.Column("from_state", sa.String(length=16), nullable=True),
        sa.Column("to_state", sa.String(length=16), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("photos", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["alert_id"],
            ["alerts.id"],
            name=op.f("fk_alert_steps_alert_id_alerts"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["actor_id"],
            ["users.id"],
            name=op.f("fk_alert_steps_actor_id_users"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alert_steps")),
    )
    op.create_index("ix_alert_steps_alert_id", "alert_steps", ["alert_id"])
    _grant(add=True)


def downgrade() -> None:
    _grant(add=False)
    op.drop_table("alert_steps")
    op.drop_table("alert_evidence")
    op.drop_table("alerts")


def _grant(add: bool) -> None:
    """Add (or take back) the alert permissions of the default roles that exist."""
    roles = sa.table("roles", sa.column("code", sa.String), sa.column("permissions", sa.JSON))
    conn = op.get_bind()
    for code, permissions in conn.execute(sa.select(roles.c.code, roles.c.permissions)):
        grants = GRANTS.get(code)
        if not grants or "*" in (permissions or []):
            continue
        current = list(permissions or [])
        if add:
            changed = current + [p for p in grants if p not in current]
        else:
            changed = [p for p in current if p not in grants]
        if changed != current:
            conn.execute(roles.update().where(roles.c.code == code).values(permissions=changed))
