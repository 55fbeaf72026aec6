"""one open alert per fingerprint (partial unique index); per-account notification preferences

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-21 12:00:00.000000

Before the index, two processes raising the same fingerprint at the same instant could both
insert an alert. Such twins already stored are resolved first: the oldest open one stays,
the others are closed as duplicates with a step saying of which alert.
"""

import datetime as dt
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from anju.core.db import UTCDateTime

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
OPEN = "state <> 'closed'"


def upgrade() -> None:
    _close_twins()
    op.create_index(
        "uq_alerts_open_fingerprint",
        "alerts",
        ["community_id", "model", "fingerprint"],
        unique=True,
        sqlite_where=sa.text(OPEN),
        postgresql_where=sa.text(OPEN),
    )
    op.create_table(
        "alert_notify_prefs",
        sa.Column(
            "user_id",
            BigId,
            sa.ForeignKey("users.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column(
            "min_severity",
            sa.Enum(
                "low", "medium", "high", "critical", name="severity", native_enum=False,
                create_constraint=True, length=10,
            ),
            nullable=False,
        ),
        sa.Column("console_sound", sa.Boolean(), nullable=False),
        sa.Column("email", sa.String(254), nullable=True),
        sa.Column("sms", sa.Boolean(), nullable=False),
        sa.Column("phone_enc", sa.LargeBinary(), nullable=True),
        sa.Column("phone_masked", sa.String(20), nullable=True),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
    )  # fmt: skip


def downgrade() -> None:
    op.drop_table("alert_notify_prefs")
    op.drop_index("uq_alerts_open_fingerprint", table_name="alerts")


def _close_twins() -> None:
    """Close every open alert but the oldest of its (community, model, fingerprint)."""
    alerts = sa.table(
        "alerts",
        sa.column("id", BigId),
        sa.column("community_id", BigId),
        sa.column("model", sa.String),
        sa.column("fingerprint", sa.String),
        sa.column("state", sa.String),
        sa.column("verdict", sa.String),
        sa.column("closed_at", UTCDateTime()),
        sa.column("ack_deadline", UTCDateTime()),
    )
    steps = sa.table(
        "alert_steps",
        sa.column("alert_id", BigId),
        sa.column("at", UTCDateTime()),
        sa.column("actor_name", sa.String),
        sa.column("action", sa.String),
        sa.column("from_state", sa.String),
        sa.column("to_state", sa.String),
        sa.column("note", sa.Text),
        sa.column("photos", sa.JSON),
    )
    conn = op.get_bind()
    rows = conn.execute(
        sa.select(alerts.c.id, alerts.c.community_id, alerts.c.model, alerts.c.fingerprint)
        .where(alerts.c.state != "closed")
        .order_by(alerts.c.id)
    ).all()
    kept: dict[tuple[int, str, str], int] = {}
    now = dt.datetime.now(dt.UTC)
    for row in rows:
        key = (row.community_id, row.model, row.fingerprint)
        if key not in kept:
            kept[key] = row.id
            continue
        state = conn.scalar(sa.select(alerts.c.state).where(alerts.c.id == row.id))
        conn.execute(
            alerts.update()
            .where(alerts.c.id == row.id)
            .values(state="closed", verdict="duplicate", closed_at=now, ack_deadline=None)
        )
        conn.execute(
            steps.insert().values(
                alert_id=row.id,
                at=now,
                actor_name="migration 0011",
                action="closed",
                from_state=state,
                to_state="closed",
                note=f"重复：同 #{kept[key]}",
                photos=[],
            )
        )
