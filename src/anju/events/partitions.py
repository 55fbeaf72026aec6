"""Monthly partitions of ``events`` on PostgreSQL (decision 0003); nothing on SQLite.

``events`` is range-partitioned on ``at`` by calendar month (UTC), one table per month named
``events_YYYY_MM``, plus ``events_default`` so an insert for a month without its partition
never fails. :func:`ensure_partitions` runs at start-up and creates the coming months ahead
of time, moving any rows that reached the DEFAULT partition into their month first;
:func:`drop_partitions_before` is how retention removes whole old months in one statement.
"""

from __future__ import annotations

import datetime as dt
import logging
import re

from sqlalchemy import Connection, text

log = logging.getLogger(__name__)

PARENT = "events"
DEFAULT = "events_default"
_MONTHLY = re.compile(r"^events_(\d{4})_(\d{2})$")
# A month's table is vacuumed after inserts of 1 % of its rows (PostgreSQL's default: 20 %),
# so the visibility map soon covers new rows and trajectories stay index-only scans on the
# current month too (decision 0003; migration 0012).
INSERT_VACUUM_SCALE = 0.01


def is_partition(table: str) -> bool:
    """Whether a table name is one of the partitions of ``events`` (monthly or DEFAULT)."""
    return table == DEFAULT or _MONTHLY.match(table) is not None


def month_start(moment: dt.datetime | dt.date) -> dt.date:
    """The first day of ``moment``'s month (UTC for aware datetimes)."""
    if isinstance(moment, dt.datetime) and moment.tzinfo is not None:
        moment = moment.astimezone(dt.UTC)
    return dt.date(moment.year, moment.month, 1)


def next_month(month: dt.date) -> dt.date:
    return dt.date(month.year + month.month // 12, month.month % 12 + 1, 1)


def partition_name(month: dt.date) -> str:
    return f"events_{month.year:04d}_{month.month:02d}"


def bound(month: dt.date) -> str:
    """A month boundary as a timestamptz literal, midnight UTC."""
    return f"{month.isoformat()} 00:00:00+00"


def is_partitioned(conn: Connection) -> bool:
    """Whether ``events`` is a partitioned table here (PostgreSQL after migration 0006)."""
    if conn.dialect.name != "postgresql":
        return False
    kind = conn.scalar(
        text("SELECT c.relkind FROM pg_class c WHERE c.oid = to_regclass(:name)"),
        {"name": PARENT},
    )
    return kind == "p"


def monthly_partitions(conn: Connection) -> dict[dt.date, str]:
    """The attached monthly partitions, by the first day of their month."""
    names = conn.scalars(
        text(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "WHERE i.inhparent = to_regclass(:parent)"
        ),
        {"parent": PARENT},
    )
    found: dict[dt.date, str] = {}
    for name in names:
        match = _MONTHLY.match(name)
        if match:
            found[dt.date(int(match[1]), int(match[2]), 1)] = name
    return found


def ensure_partitions(conn: Connection, now: dt.datetime, ahead: int = 3) -> list[str]:
    """Create the partitions of this month and the ``ahead`` following ones, and of any month
    whose rows wait in the DEFAULT partition; return the names created.

    PostgreSQL refuses a new partition while DEFAULT holds rows of its range, so each month is
    built as a plain table, DEFAULT's rows of that month are moved into it, and then it is
    attached (DEFAULT locked meanwhile, so no row of that month can slip in between). A no-op
    on SQLite and on an unpartitioned table. Runs in the caller's transaction.
    """
    if not is_partitioned(conn):
        return []
    # Two nodes starting together would otherwise race to create the same month.
    conn.execute(text("SELECT pg_advisory_xact_lock(hashtext('anju.events.partitions'))"))
    existing = monthly_partitions(conn)
    wanted = {month_start(now)}
    for _ in range(ahead):
        wanted.add(next_month(max(wanted)))
    waiting = conn.scalars(
        text(f"SELECT DISTINCT date_trunc('month', at AT TIME ZONE 'UTC')::date FROM {DEFAULT}")
    )
    wanted.update(waiting)
    created = []
    for month in sorted(wanted - existing.keys()):
        created.append(_create_month(conn, month))
    return created


def _create_month(conn: Connection, month: dt.date) -> str:
    name = partition_name(month)
    lower, upper = bound(month), bound(next_month(month))
    conn.execute(text(f"LOCK TABLE {DEFAULT} IN ACCESS EXCLUSIVE MODE"))
    conn.execute(
        text(
            f"CREATE TABLE {name} (LIKE {PARENT} INCLUDING DEFAULTS) "
            f"WITH (autovacuum_vacuum_insert_scale_factor = {INSERT_VACUUM_SCALE})"
        )
    )
    moved = conn.execute(
        text(
            f"WITH moved AS (DELETE FROM {DEFAULT} WHERE at >= :lower AND at < :upper "
            f"RETURNING *) INSERT INTO {name} SELECT * FROM moved"
        ),
        {"lower": lower, "upper": upper},
    ).rowcount
    conn.execute(
        text(
            f"ALTER TABLE {PARENT} ATTACH PARTITION {name} "
            f"FOR VALUES FROM ('{lower}') TO ('{upper}')"
        )
    )
    log.info("created event partition %s (%d rows moved from the default partition)", name, moved)
    return name


def months_ended_by(conn: Connection, cutoff: dt.datetime) -> list[str]:
    """The monthly partitions, oldest first, whose month ends on or before ``cutoff``."""
    out = []
    for month, name in sorted(monthly_partitions(conn).items()):
        end = next_month(month)
        if dt.datetime(end.year, end.month, end.day, tzinfo=dt.UTC) <= cutoff:
            out.append(name)
    return out


def drop_partitions_before(conn: Connection, cutoff: dt.datetime) -> list[str]:
    """Detach and drop every monthly partition that ends on or before ``cutoff``; also delete
    DEFAULT's rows older than ``cutoff`` (else :func:`ensure_partitions` would bring their
    month back). A month that straddles the cutoff is kept whole. Returns the names dropped.
    """
    if not is_partitioned(conn):
        return []
    dropped = []
    for name in months_ended_by(conn, cutoff):
        conn.execute(text(f"ALTER TABLE {PARENT} DETACH PARTITION {name}"))
        conn.execute(text(f"DROP TABLE {name}"))
        log.info("dropped event partition %s", name)
        dropped.append(name)
    conn.execute(text(f"DELETE FROM {DEFAULT} WHERE at < :cutoff"), {"cutoff": cutoff})
    return dropped
