"""Monthly partitions of the event store (decision 0003): created ahead, DEFAULT rows moved
into their month, old months dropped whole; and the de-duplication caveat of the partitioned
key, pinned so that it stays a conscious choice.

Each test runs in the rolled-back ``ctx`` transaction, so the partitions it makes or drops
leave the shared database as they found it. The months used lie years ahead of any real data.
"""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import Connection, func, select, text

from anju.core.context import Ctx
from anju.events import partitions
from anju.events.model import Event, Kind
from anju.events.models import StoredEvent
from anju.registry import schemas
from anju.registry import service as registry
from tests import factories as f

NOW = dt.datetime(2031, 5, 10, 12, 0, tzinfo=dt.UTC)


def _conn(ctx: Ctx) -> Connection:
    return ctx.session.connection()


def _postgres_only(ctx: Ctx) -> None:
    if _conn(ctx).dialect.name != "postgresql":
        pytest.skip("SQLite keeps one plain events table")


def _insert(ctx: Ctx, key: str, at: dt.datetime, device_id: int = 1) -> None:
    ctx.session.add(
        StoredEvent(
            community_id=1,
            device_id=device_id,
            event_key=key,
            kind="door.opened",
            at=at,
            received_at=at,
            data={},
            history=False,
        )
    )
    ctx.session.flush()


def _where(ctx: Ctx, key: str) -> str:
    """The partition holding the event with ``key``."""
    return str(
        _conn(ctx).scalar(
            text("SELECT tableoid::regclass::text FROM events WHERE event_key = :k"), {"k": key}
        )
    )


def test_sqlite_has_no_partitions_to_make(ctx):
    if _conn(ctx).dialect.name != "sqlite":
        pytest.skip("the PostgreSQL side is tested below")
    assert partitions.ensure_partitions(_conn(ctx), NOW) == []
    assert partitions.drop_partitions_before(_conn(ctx), NOW) == []


def test_this_month_and_the_next_ones_are_created_once(ctx):
    _postgres_only(ctx)
    created = partitions.ensure_partitions(_conn(ctx), NOW, ahead=3)
    assert created == ["events_2031_05", "events_2031_06", "events_2031_07", "events_2031_08"]
    assert partitions.ensure_partitions(_conn(ctx), NOW, ahead=3) == []
    _insert(ctx, "june", dt.datetime(2031, 6, 30, 23, 59, tzinfo=dt.UTC))
    _insert(ctx, "july", dt.datetime(2031, 7, 1, 0, 0, tzinfo=dt.UTC))  # bounds are UTC months
    assert _where(ctx, "june") == "events_2031_06"
    assert _where(ctx, "july") == "events_2031_07"
    # New months are vacuumed soon after inserts, so trajectories read their index alone.
    options = (
        _conn(ctx)
        .execute(text("SELECT reloptions FROM pg_class WHERE relname = 'events_2031_06'"))
        .scalar_one()
    )
    assert f"autovacuum_vacuum_insert_scale_factor={partitions.INSERT_VACUUM_SCALE}" in options


def test_an_event_of_a_month_without_partition_lands_in_default_and_is_moved(ctx):
    _postgres_only(ctx)
    partitions.ensure_partitions(_conn(ctx), NOW, ahead=0)
    late = dt.datetime(2031, 12, 24, 18, 0, tzinfo=dt.UTC)
    _insert(ctx, "xmas-1", late)
    _insert(ctx, "xmas-2", late + dt.timedelta(days=3))
    assert _where(ctx, "xmas-1") == partitions.DEFAULT

    # Creating December's partition directly would fail while DEFAULT holds its rows.
    created = partitions.ensure_partitions(_conn(ctx), NOW, ahead=0)

    assert created == ["events_2031_12"]
    assert _where(ctx, "xmas-1") == _where(ctx, "xmas-2") == "events_2031_12"
    left = _conn(ctx).scalar(text(f"SELECT count(*) FROM {partitions.DEFAULT}"))
    assert left == 0
    keys = ctx.session.scalars(select(StoredEvent.event_key).where(StoredEvent.at >= late))
    assert sorted(keys) == ["xmas-1", "xmas-2"]


def test_drop_partitions_before_drops_whole_old_months_only(ctx):
    _postgres_only(ctx)
    partitions.ensure_partitions(_conn(ctx), NOW, ahead=2)  # May, June, July 2031
    _insert(ctx, "may", dt.datetime(2031, 5, 20, tzinfo=dt.UTC))
    _insert(ctx, "june", dt.datetime(2031, 6, 20, tzinfo=dt.UTC))
    _insert(ctx, "july", dt.datetime(2031, 7, 20, tzinfo=dt.UTC))

    dropped = partitions.drop_partitions_before(_conn(ctx), dt.datetime(2031, 7, 15, tzinfo=dt.UTC))

    # Every month that ended by the cutoff goes (the real current months too: this is a
    # rolled-back transaction); July straddles the cutoff and stays whole.
    assert {"events_2031_05", "events_2031_06"} <= set(dropped)
    assert "events_2031_07" not in dropped
    remaining = partitions.monthly_partitions(_conn(ctx))
    assert min(remaining) == dt.date(2031, 7, 1)
    keys = ctx.session.scalars(select(StoredEvent.event_key).where(StoredEvent.at >= NOW))
    assert list(keys) == ["july"]


def test_drop_partitions_before_also_clears_old_rows_from_default(ctx):
    _postgres_only(ctx)
    _insert(ctx, "ancient", dt.datetime(1999, 1, 1, tzinfo=dt.UTC))
    assert _where(ctx, "ancient") == partitions.DEFAULT
    partitions.drop_partitions_before(_conn(ctx), dt.datetime(2000, 1, 1, tzinfo=dt.UTC))
    assert ctx.session.scalar(select(func.count()).where(StoredEvent.event_key == "ancient")) == 0
    # … so the next start-up does not bring January 1999 back.
    assert "events_1999_01" not in partitions.ensure_partitions(_conn(ctx), NOW, ahead=0)


def _gate(ctx: Ctx) -> str:
    t = f.tree(ctx)
    device = registry.devices.create(
        ctx,
        schemas.DeviceCreate(
            community_id=t.community.id, code=f"{t.community.code}-G", name="门", kind="face_gate"
        ),
    )
    return device.code


def test_the_same_event_redelivered_is_stored_once(node, ctx):
    code = _gate(ctx)
    at = dt.datetime.now(dt.UTC).replace(microsecond=0)
    event = Event(device=code, kind=Kind.DOOR_OPENED, at=at, id="redelivered-1")
    first = node.pipeline(ctx.session).process([event])
    again = node.pipeline(ctx.session).process([event])
    assert [r.status for r in first.results] == ["accepted"]
    assert [r.status for r in again.results] == ["duplicate"]


def test_the_same_id_with_another_time_is_stored_twice_on_postgresql(node, ctx):
    """Decision 0003's accepted caveat: the partitioned key includes ``at``, so a device that
    reuses an event id with a *different* time gets two rows on PostgreSQL. SQLite's key has
    no ``at`` and keeps one. Change the decision before changing this test."""
    code = _gate(ctx)
    at = dt.datetime.now(dt.UTC).replace(microsecond=0)
    first = Event(device=code, kind=Kind.DOOR_OPENED, at=at, id="reused-1")
    later = Event(
        device=code, kind=Kind.DOOR_OPENED, at=at + dt.timedelta(seconds=5), id="reused-1"
    )
    node.pipeline(ctx.session).process([first])
    second = node.pipeline(ctx.session).process([later])
    stored = ctx.session.scalar(select(func.count()).where(StoredEvent.event_key == "reused-1"))
    if _conn(ctx).dialect.name == "postgresql":
        assert [r.status for r in second.results] == ["accepted"]
        assert stored == 2
    else:
        assert [r.status for r in second.results] == ["duplicate"]
        assert stored == 1


def test_a_prepared_postgresql_database_has_statistics_for_the_organisation_tree(node):
    if node.engine.dialect.name != "postgresql":
        pytest.skip("SQLite has no planner statistics to gather")
    # The node fixture was initialised (prepare_database) before any test ran: a small
    # org_units table that autovacuum would never analyse has been analysed anyway.
    with node.engine.connect() as conn:
        analysed = conn.scalar(
            text("SELECT analyze_count FROM pg_stat_user_tables WHERE relname = 'org_units'")
        )
    assert analysed and analysed >= 1
