"""Migrations: empty → head, down one step, up again — on SQLite and PostgreSQL.

Also checks that the models and the newest migration agree (no pending autogenerate diff,
apart from the documented differences of the partitioned events table on PostgreSQL), and
that partitioning the event store keeps the events already stored.
"""

from __future__ import annotations

import datetime as dt
import uuid

import psycopg
import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text

import anju.core.models_registry  # noqa: F401
from anju.core import migrate
from anju.core.db import Base, make_engine
from anju.events import partitions
from tests.conftest import PG_ADMIN_URL, _pg_available


@pytest.fixture(params=["sqlite", "postgres"])
def empty_engine(request, tmp_path):
    if request.param == "sqlite":
        engine = make_engine(f"sqlite:///{tmp_path / 'm.db'}")
        yield engine
        engine.dispose()
        return
    reason = _pg_available()
    if reason:
        pytest.skip(reason)
    name = f"anju_mig_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base = PG_ADMIN_URL.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://", 1)
    engine = make_engine(f"{base}/{name}")
    yield engine
    engine.dispose()
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_upgrade_downgrade_upgrade(empty_engine):
    migrate.upgrade(empty_engine)
    head = migrate.head_revision(empty_engine)
    assert migrate.current_revision(empty_engine) == head
    tables = set(inspect(empty_engine).get_table_names())
    assert {"persons", "houses", "residencies", "org_units", "devices", "users"} <= tables

    script = ScriptDirectory.from_config(migrate.alembic_config(empty_engine))
    previous = script.get_revision(head).down_revision
    migrate.downgrade(empty_engine, previous or "base")
    assert migrate.current_revision(empty_engine) == previous
    migrate.upgrade(empty_engine)
    assert migrate.current_revision(empty_engine) == head


def _not_a_partition(obj, name, type_, reflected, compare_to) -> bool:
    """Monthly partitions (and their indexes) are rows of data to the schema, not tables the
    models should declare: they come and go with ``anju.events.partitions``."""
    table = name if type_ == "table" else getattr(getattr(obj, "table", None), "name", None)
    return not (reflected and table is not None and partitions.is_partition(table))


def _constraint(item) -> tuple[str, str, tuple[str, ...]]:
    op, constraint = item[0], item[1]
    return op, constraint.table.name, tuple(c.name for c in constraint.columns)


def test_models_match_migrations(empty_engine):
    migrate.upgrade(empty_engine)
    with empty_engine.begin() as conn:
        partitions.ensure_partitions(conn, dt.datetime.now(dt.UTC))
    with empty_engine.connect() as conn:
        ctx = MigrationContext.configure(
            conn, opts={"compare_type": False, "include_object": _not_a_partition}
        )
        diff = compare_metadata(ctx, Base.metadata)
    pk = inspect(empty_engine).get_pk_constraint("events")["constrained_columns"]
    if empty_engine.dialect.name == "postgresql":
        # Decision 0003: PostgreSQL wants the partition key ``at`` in every unique key of a
        # partitioned table, so there (and only there) the de-duplication key and the primary
        # key of ``events`` gain ``at``. The model describes SQLite's table.
        expected = [
            ("remove_constraint", "events", ("device_id", "event_key", "at")),
            ("add_constraint", "events", ("device_id", "event_key")),
        ]
        assert sorted(_constraint(d) for d in diff) == sorted(expected), diff
        assert pk == ["id", "at"]
    else:
        assert diff == [], f"models and migrations disagree; write a revision: {diff}"
        assert pk == ["id"]


def _insert_event(conn, key: str, at: str) -> None:
    conn.execute(
        text(
            "INSERT INTO events (community_id, device_id, event_key, kind, at, received_at, "
            "data, history) VALUES (1, 1, :key, 'door.opened', :at, :at, '{}', false)"
        ),
        {"key": key, "at": at},
    )


def test_partitioning_keeps_existing_events(empty_engine):
    script = ScriptDirectory.from_config(migrate.alembic_config(empty_engine))
    before = script.get_revision("0006").down_revision
    migrate.upgrade(empty_engine, before)
    times = ["2026-01-15 10:00:00", "2026-03-31 23:30:00", "2026-03-01 00:00:00"]
    with empty_engine.begin() as conn:
        for i, at in enumerate(times):
            _insert_event(conn, f"old-{i}", at)

    migrate.upgrade(empty_engine, "0006")

    read = "SELECT id, event_key FROM events ORDER BY id"
    with empty_engine.begin() as conn:
        assert [tuple(r) for r in conn.execute(text(read))] == [
            (1, "old-0"),
            (2, "old-1"),
            (3, "old-2"),
        ]
        _insert_event(conn, "new", "2026-03-02 08:00:00")
        # The id sequence went on where it was.
        assert conn.scalar(text("SELECT id FROM events WHERE event_key = 'new'")) == 4
        if empty_engine.dialect.name == "postgresql":
            assert partitions.is_partitioned(conn)
            assert set(partitions.monthly_partitions(conn).values()) == {
                "events_2026_01",
                "events_2026_03",
            }
            homes = text("SELECT event_key, tableoid::regclass::text FROM events ORDER BY id")
            assert [tuple(r) for r in conn.execute(homes)] == [
                ("old-0", "events_2026_01"),
                ("old-1", "events_2026_03"),
                ("old-2", "events_2026_03"),
                ("new", "events_2026_03"),
            ]

    migrate.downgrade(empty_engine, before or "base")  # back to a plain table, rows kept
    with empty_engine.begin() as conn:
        assert [r[1] for r in conn.execute(text(read))] == ["old-0", "old-1", "old-2", "new"]
        assert not partitions.is_partitioned(conn)
        _insert_event(conn, "after", "2026-04-01 00:00:00")
        assert conn.scalar(text("SELECT id FROM events WHERE event_key = 'after'")) == 5


def _subject_indexes(engine) -> dict[str, tuple[list[str], list[str]]]:
    """The subject indexes of ``events`` as the database has them: key and included columns."""
    found = inspect(engine).get_indexes("events")
    return {
        i["name"]: (
            list(i["column_names"]),
            list(i.get("dialect_options", {}).get("postgresql_include") or []),
        )
        for i in found
        if i["name"] in {"ix_events_person_at", "ix_events_vehicle_at", "ix_events_subject_at"}
    }


def test_subject_indexes_carry_what_the_models_include(empty_engine):
    """Autogenerate does not compare INCLUDE columns: the subject indexes (0012) are held to
    the models here, and 0012's downgrade to 0007's plain keys."""
    migrate.upgrade(empty_engine)
    models = {
        i.name: (
            [c.name for c in i.columns],
            list(i.dialect_options["postgresql"]["include"] or [])
            if empty_engine.dialect.name == "postgresql"
            else [],
        )
        for i in Base.metadata.tables["events"].indexes
        if i.name in {"ix_events_person_at", "ix_events_vehicle_at", "ix_events_subject_at"}
    }
    assert len(models) == 3 and _subject_indexes(empty_engine) == models
    if empty_engine.dialect.name == "postgresql":
        assert all("id" in include for _, include in models.values())
    migrate.downgrade(empty_engine, "0011")
    assert _subject_indexes(empty_engine) == {k: (v[0], []) for k, v in models.items()}
