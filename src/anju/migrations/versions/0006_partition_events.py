"""partition events by month on PostgreSQL

Decision 0003: on PostgreSQL ``events`` becomes a table range-partitioned on ``at`` by
calendar month (UTC), with a DEFAULT partition. PostgreSQL wants the partition key in every
unique constraint, so the key becomes ``(device_id, event_key, at)`` and the primary key
``(id, at)``. Existing rows are kept: the new table is built beside the old one, given a
partition for every month that holds rows, filled, and swapped in; the id sequence moves
over. A no-op on SQLite, which keeps one plain table.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-21 08:30:00
"""

import datetime as dt
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Secondary indexes (not those behind constraints), read from the catalogue so that every
# index earlier revisions put on ``events`` comes along, whatever it is.
SECONDARY_INDEXES = """
SELECT indexname, indexdef FROM pg_indexes
WHERE schemaname = current_schema() AND tablename = :table
  AND indexname NOT IN (SELECT conname FROM pg_constraint WHERE conrelid = to_regclass(:table))
ORDER BY indexname
"""


def _secondary_indexes(table: str) -> list[tuple[str, str]]:
    rows = op.get_bind().execute(sa.text(SECONDARY_INDEXES), {"table": table})
    return [(str(name), str(definition)) for name, definition in rows]


def _month_bound(month: dt.date) -> str:
    """Midnight UTC of a month's first day, as a timestamptz literal."""
    return f"{month.isoformat()} 00:00:00+00"


def _next_month(month: dt.date) -> dt.date:
    return dt.date(month.year + month.month // 12, month.month % 12 + 1, 1)


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    indexes = _secondary_indexes("events")
    for name, _ in indexes:
        op.execute(f'DROP INDEX "{name}"')
    op.execute("ALTER TABLE events DROP CONSTRAINT uq_events_device_id_event_key")
    op.execute("ALTER TABLE events RENAME CONSTRAINT pk_events TO pk_events_unpartitioned")
    op.execute("ALTER TABLE events RENAME TO events_unpartitioned")
    # Same columns, types, NOT NULLs and defaults (the id default keeps drawing from the
    # same sequence, so ids go on where they were).
    op.execute(
        "CREATE TABLE events (LIKE events_unpartitioned INCLUDING DEFAULTS) PARTITION BY RANGE (at)"
    )
    op.execute("CREATE TABLE events_default PARTITION OF events DEFAULT")
    months = bind.scalars(
        sa.text(
            "SELECT DISTINCT date_trunc('month', at AT TIME ZONE 'UTC')::date "
            "FROM events_unpartitioned ORDER BY 1"
        )
    )
    for month in months:
        following = _next_month(month)
        op.execute(
            f"CREATE TABLE events_{month.year:04d}_{month.month:02d} PARTITION OF events "
            f"FOR VALUES FROM ('{_month_bound(month)}') TO ('{_month_bound(following)}')"
        )
    # Rows first, constraints and indexes after: one sorted build beats row-by-row upkeep.
    op.execute("INSERT INTO events SELECT * FROM events_unpartitioned")
    op.execute("ALTER TABLE events ADD CONSTRAINT pk_events PRIMARY KEY (id, at)")
    op.execute(
        "ALTER TABLE events ADD CONSTRAINT uq_events_device_id_event_key_at "
        "UNIQUE (device_id, event_key, at)"
    )
    for _, definition in indexes:
        op.execute(definition)  # "… ON public.events …": now the partitioned table
    _move_sequence("events_unpartitioned", "events")
    op.execute("DROP TABLE events_unpartitioned")


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    indexes = _secondary_indexes("events")
    op.execute("CREATE TABLE events_plain (LIKE events INCLUDING DEFAULTS)")
    # The old key is (device_id, event_key): of an event stored twice under the partitioned
    # key (same device and id, another time) only the first stored survives.
    op.execute(
        "INSERT INTO events_plain SELECT DISTINCT ON (device_id, event_key) * FROM events "
        "ORDER BY device_id, event_key, id"
    )
    _move_sequence("events", "events_plain")
    op.execute("DROP TABLE events")  # with its partitions
    op.execute("ALTER TABLE events_plain RENAME TO events")
    op.execute("ALTER TABLE events ADD CONSTRAINT pk_events PRIMARY KEY (id)")
    op.execute(
        "ALTER TABLE events ADD CONSTRAINT uq_events_device_id_event_key "
        "UNIQUE (device_id, event_key)"
    )
    for _, definition in indexes:
        # A partitioned table's index reads "CREATE INDEX … ON ONLY public.events …".
        op.execute(definition.replace(" ON ONLY ", " ON ", 1))


def _move_sequence(old: str, new: str) -> None:
    """Hand the id sequence to ``new``'s column before ``old`` is dropped (it would take an
    owned sequence with it)."""
    sequence = op.get_bind().scalar(
        sa.text("SELECT pg_get_serial_sequence(:table, 'id')"), {"table": old}
    )
    if sequence is not None:
        op.execute(f"ALTER SEQUENCE {sequence} OWNED BY {new}.id")
