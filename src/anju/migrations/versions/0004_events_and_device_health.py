"""events and device health

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-21 06:56:58.164595
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "events",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column(
            "community_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column(
            "device_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("event_key", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("subject_type", sa.String(length=8), nullable=True),
        sa.Column("subject_value", sa.String(length=200), nullable=True),
        sa.Column("direction", sa.String(length=3), nullable=True),
        sa.Column("value", sa.Float(), nullable=True),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.Column("image", sa.String(length=100), nullable=True),
        sa.Column("history", sa.Boolean(), nullable=False),
        sa.Column("person_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column(
            "vehicle_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True
        ),
        sa.Column("house_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_events")),
        sa.UniqueConstraint("device_id", "event_key", name=op.f("uq_events_device_id_event_key")),
    )
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.create_index("ix_events_community_at", ["community_id", "at"], unique=False)
        batch_op.create_index("ix_events_device_at", ["device_id", "at"], unique=False)
        batch_op.create_index("ix_events_person_at", ["person_id", "at"], unique=False)
        batch_op.create_index(
            "ix_events_subject_at", ["subject_type", "subject_value", "at"], unique=False
        )
        batch_op.create_index("ix_events_vehicle_at", ["vehicle_id", "at"], unique=False)

    op.create_table(
        "access_credentials",
        sa.Column(
            "community_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column(
            "person_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column(
            "kind",
            sa.Enum(
                "card",
                "employee_no",
                "qr",
                "mac",
                "tag",
                "lock_code",
                name="credentialkind",
                native_enum=False,
                create_constraint=True,
                length=16,
            ),
            nullable=False,
        ),
        sa.Column("value", sa.String(length=100), nullable=False),
        sa.Column("valid_until", sa.Date(), nullable=True),
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["community_id"],
            ["org_units.id"],
            name=op.f("fk_access_credentials_community_id_org_units"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["person_id"],
            ["persons.id"],
            name=op.f("fk_access_credentials_person_id_persons"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_access_credentials")),
        sa.UniqueConstraint(
            "community_id",
            "kind",
            "value",
            name=op.f("uq_access_credentials_community_id_kind_value"),
        ),
    )
    with op.batch_alter_table("access_credentials", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_access_credentials_community_id"), ["community_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_access_credentials_person_id"), ["person_id"], unique=False
        )

    # Plain column adds (no batch rebuild: dropping the old devices table would cascade).
    big = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
    op.add_column("devices", sa.Column("house_id", big, nullable=True))
    op.add_column("devices", sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("devices", sa.Column("battery", sa.Float(), nullable=True))
    op.add_column("devices", sa.Column("signal", sa.Float(), nullable=True))
    op.add_column(
        "devices", sa.Column("events_accepted", sa.BigInteger(), nullable=False, server_default="0")
    )
    op.add_column(
        "devices", sa.Column("events_rejected", sa.BigInteger(), nullable=False, server_default="0")
    )
    op.add_column("devices", sa.Column("last_rejection", sa.String(length=300), nullable=True))
    op.add_column(
        "devices", sa.Column("last_rejected_at", sa.DateTime(timezone=True), nullable=True)
    )
    op.create_index(op.f("ix_devices_house_id"), "devices", ["house_id"], unique=False)
    op.add_column("devices", sa.Column("external_id", sa.String(length=64), nullable=True))
    # A unique index (not a constraint): SQLite cannot add constraints without a rebuild.
    op.create_index(op.f("ix_devices_external_id"), "devices", ["external_id"], unique=True)


def downgrade() -> None:
    op.drop_index(op.f("ix_devices_external_id"), table_name="devices")
    op.drop_column("devices", "external_id")
    op.drop_index(op.f("ix_devices_house_id"), table_name="devices")
    for column in (
        "last_rejected_at",
        "last_rejection",
        "events_rejected",
        "events_accepted",
        "signal",
        "battery",
        "last_seen_at",
        "house_id",
    ):
        op.drop_column("devices", column)

    with op.batch_alter_table("access_credentials", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_access_credentials_person_id"))
        batch_op.drop_index(batch_op.f("ix_access_credentials_community_id"))

    op.drop_table("access_credentials")
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.drop_index("ix_events_vehicle_at")
        batch_op.drop_index("ix_events_subject_at")
        batch_op.drop_index("ix_events_person_at")
        batch_op.drop_index("ix_events_device_at")
        batch_op.drop_index("ix_events_community_at")

    op.drop_table("events")
