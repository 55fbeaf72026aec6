"""event indexes on person, vehicle and subject only where the column is set

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-21 09:00:00.000000

Most events name no person and no vehicle (heartbeats, sensors, meters, door states), and
many no subject: an index entry for them costs every insert and serves no query, since
those indexes are only read by ``person_id = …``, ``vehicle_id = …`` and subject lookups.
On PostgreSQL the indexes are on the partitioned table, so each month's partition gets its own.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# name, columns, the condition under which a row is indexed
PARTIAL = (
    ("ix_events_person_at", ["person_id", "at"], "person_id IS NOT NULL"),
    ("ix_events_vehicle_at", ["vehicle_id", "at"], "vehicle_id IS NOT NULL"),
    ("ix_events_subject_at", ["subject_type", "subject_value", "at"], "subject_type IS NOT NULL"),
)


def upgrade() -> None:
    for name, columns, where in PARTIAL:
        op.drop_index(name, table_name="events")
        condition = sa.text(where)
        op.create_index(name, "events", columns, sqlite_where=condition, postgresql_where=condition)


def downgrade() -> None:
    for name, columns, _ in PARTIAL:
        op.drop_index(name, table_name="events")
        op.create_index(name, "events", columns)
