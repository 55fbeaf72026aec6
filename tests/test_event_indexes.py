"""The event store's reads go through the indexes meant for them, partial ones included.

Migration 0007 made the person, vehicle and subject indexes partial (only rows that name
one); a query the database could not prove to imply the index's condition would fall back
to scanning, which nothing else would notice until the table is large.
"""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import text

from anju.events import service

NOW = dt.datetime(2026, 11, 21, 8, 0, tzinfo=dt.UTC)
MONTH = {"since": NOW - dt.timedelta(days=30), "until": NOW}


@pytest.mark.parametrize(
    ("subject", "index", "partition_index"),
    [
        ({"person_id": 7}, "ix_events_person_at", "person_id_at_idx"),
        ({"vehicle_id": 7}, "ix_events_vehicle_at", "vehicle_id_at_idx"),
        (
            {"subject_type": "card", "subject_value": "000A0001"},
            "ix_events_subject_at",
            "subject_type_subject_value_at_idx",
        ),
        (
            {"subject_type": "plate", "subject_value": "粤B12345"},
            "ix_events_subject_at",
            "subject_type_subject_value_at_idx",
        ),
    ],
)
def test_a_trajectory_reads_through_its_subjects_index(ctx, subject, index, partition_index):
    stmt = service.trajectory_query(ctx, service.EventFilter(**subject, **MONTH))
    dialect = ctx.session.get_bind().dialect
    sql = str(stmt.compile(dialect=dialect, compile_kwargs={"literal_binds": True}))
    if dialect.name == "postgresql":
        # An empty table would be scanned whatever the indexes; forbid that to see the choice.
        ctx.session.execute(text("SET LOCAL enable_seqscan = off"))
        plan = "\n".join(r[0] for r in ctx.session.execute(text("EXPLAIN " + sql)))
        # Each month's partition carries the index under its own generated name.
        assert partition_index in plan, plan
    else:
        plan = "\n".join(r[3] for r in ctx.session.execute(text("EXPLAIN QUERY PLAN " + sql)))
        assert f"USING INDEX {index} " in plan, plan
