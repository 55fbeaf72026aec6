"""subject indexes carry what a trajectory's sighting reads (PostgreSQL, INCLUDE)

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-21 16:00:00.000000

A trajectory reads hundreds of sightings of one person, vehicle or subject through that
subject's index; with only key columns there, each sighting cost a heap block read, and the
busiest subjects (~1,000 sightings in 30 days) missed the 5 ms target for that alone
(docs/performance.md, "Trajectory"). On PostgreSQL the three indexes are rebuilt with
``INCLUDE`` of every other column a lean sighting reads or filters on, so that query is an
index-only scan; the key columns and the partial condition stay as 0007 made them, so every
other query that used them still does. SQLite has no INCLUDE: nothing changes there.

On the partitioned ``events`` table each index is rebuilt on every monthly partition, under a
lock that holds writes back for as long as that takes (decision 0003 gives the cost).
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SIGHTING = ["id", "community_id", "device_id", "kind", "direction", "history"]
SUBJECT = ["subject_type", "subject_value"]
# name, key columns, the condition under which a row is indexed, the included columns
INDEXES = (
    ("ix_events_person_at", ["person_id", "at"], "person_id IS NOT NULL", SIGHTING + SUBJECT),
    ("ix_events_vehicle_at", ["vehicle_id", "at"], "vehicle_id IS NOT NULL", SIGHTING + SUBJECT),
    (
        "ix_events_subject_at",
        ["subject_type", "subject_value", "at"],
        "subject_type IS NOT NULL",
        SIGHTING,
    ),
)


def _rebuild(covering: bool) -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for name, columns, where, include in INDEXES:
        op.drop_index(name, table_name="events")
        op.execute(
            f"CREATE INDEX {name} ON events ({', '.join(columns)})"
            + (f" INCLUDE ({', '.join(include)})" if covering else "")
            + f" WHERE {where}"
        )


def upgrade() -> None:
    _rebuild(covering=True)


def downgrade() -> None:
    _rebuild(covering=False)
