"""The event store's reads go through the indexes meant for them, partial ones included.

Migration 0007 made the person, vehicle and subject indexes partial (only rows that name
one); a query the database could not prove to imply the index's condition would fall back
to scanning, which nothing else would notice until the table is large. Migration 0012 made
them carry what a trajectory's sighting reads, on PostgreSQL, so that a trajectory is read
from the index alone: a column added to the sighting but not to the indexes would quietly
bring back a heap block read per sighting.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re

import pytest
from sqlalchemy import text

from anju.events import service

NOW = dt.datetime(2026, 11, 21, 8, 0, tzinfo=dt.UTC)
MONTH = {"since": NOW - dt.timedelta(days=30), "until": NOW}


SUBJECTS = [
    ({"person_id": 7}, "ix_events_person_at", "person_id_at_"),
    ({"vehicle_id": 7}, "ix_events_vehicle_at", "vehicle_id_at_"),
    (
        {"subject_type": "card", "subject_value": "000A0001"},
        "ix_events_subject_at",
        "subject_type_subject_value_at_",
    ),
    (
        {"subject_type": "plate", "subject_value": "粤B12345"},
        "ix_events_subject_at",
        "subject_type_subject_value_at_",
    ),
]
# Every other condition a trajectory may have: each reads a column the index must carry.
EVERY_CONDITION = {
    "community_id": 3,
    "device": "G-1",
    "kind": "access.card",
    "include_history": False,
    "exclude_kinds": frozenset({"door.opened"}),
}


def _plan(ctx, stmt) -> tuple[str, str]:
    """The database's plan of a bound statement, and the dialect's name."""
    dialect = ctx.session.get_bind().dialect
    sql = str(stmt.compile(dialect=dialect, compile_kwargs={"literal_binds": True}))
    if dialect.name != "postgresql":
        return "\n".join(r[3] for r in ctx.session.execute(text("EXPLAIN QUERY PLAN " + sql))), ""
    # An empty table would be scanned whatever the indexes; forbid that to see the choice.
    ctx.session.execute(text("SET LOCAL enable_seqscan = off"))
    return "\n".join(r[0] for r in ctx.session.execute(text("EXPLAIN " + sql))), "postgresql"


def _index_only(plan: str, partition_index: str) -> bool:
    """Whether every scan of an events partition is index-only, through the subject's index.
    Each month's partition carries it under its own generated name (its key columns, then as
    many included ones as fit)."""
    scans = re.findall(r"(Index Only Scan|Index Scan|Bitmap Heap Scan)[^\n]* on (events_\w+)", plan)
    used = re.findall(r"Index Only Scan using (events_\w+) on", plan)
    return (
        bool(scans)
        and all(how == "Index Only Scan" for how, _ in scans)
        and all(partition_index in name for name in used)
    )


@pytest.mark.parametrize(("subject", "index", "partition_index"), SUBJECTS)
def test_a_trajectory_reads_through_its_subjects_index(ctx, subject, index, partition_index):
    plan, pg = _plan(ctx, service.trajectory_query(ctx, service.EventFilter(**subject, **MONTH)))
    if not pg:
        assert f"USING INDEX {index} " in plan, plan
        return
    assert _index_only(plan, partition_index), plan
    # The whole events (a stranger's sightings) use the same index, but not alone.
    full = service.trajectory_query(ctx, service.EventFilter(**subject, **MONTH), lean=False)
    plan, _ = _plan(ctx, full)
    assert "Index Only Scan" not in plan and partition_index in plan, plan


@pytest.mark.parametrize(("subject", "index", "partition_index"), SUBJECTS)
def test_a_trajectory_with_every_condition_and_a_scope_is_still_index_only(
    ctx, subject, index, partition_index
):
    scoped = dataclasses.replace(ctx, actor=dataclasses.replace(ctx.actor, org_path="/1/2/"))
    flt = service.EventFilter(**subject, **MONTH, **EVERY_CONDITION)
    if ctx.session.get_bind().dialect.name != "postgresql":
        pytest.skip("SQLite has no INCLUDE: its trajectories read the table's rows")
    plan, _ = _plan(scoped, service.trajectory_query(scoped, flt))
    assert "community_id = ANY" in plan or "org_units" in plan, plan  # the scope is in it
    assert _index_only(plan, partition_index), plan
