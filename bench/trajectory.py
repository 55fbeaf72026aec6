"""Trajectory benchmark: one subject over 30 days among 10M events on PostgreSQL.

    .venv/bin/python bench/trajectory.py [--events 10000000] [--days 182] [--people 5000]
                                         [--vehicles 1500] [--communities 10] [--devices 300]
                                         [--queries 500] [--keep] [--reuse] [--explain]
                                         [--pg postgresql://…] [--db anju_bench_traj]

1. creates the database ``--db`` (dropped first if it exists, and again at the end unless
   ``--keep``), migrates and initialises it like ``anju init`` — so ``events`` is the
   partitioned table of migration 0006 — and registers a district with ``--communities``
   communities and ``--devices`` devices (gates and barriers);
2. generates ``--events`` events over the last ``--days`` days in SQL (``generate_series``,
   no round trips): 70 % card passages at a gate of the person's community (card subject,
   person linked), 20 % plate reads at a barrier (plate subject, vehicle and owner linked),
   10 % door events without a subject. People's activity is skewed (some pass far more often
   than others). Each month is filled as a plain table, then attached as its partition, so
   its indexes are built once, sorted, instead of row by row; then ``VACUUM (ANALYZE)``, which
   also sets the visibility map, without which an index-only scan still visits the heap for
   every row (in production autovacuum's insert-triggered vacuum does it, PostgreSQL ≥ 13).
   (``--reuse`` skips steps 1–2 and measures a database an earlier ``--keep`` run left,
   after migrating it to the current head and vacuuming it, and leaves it there for the next
   run.)
3. times ``anju.events.service.trajectory`` — the function the API and the console call,
   lean sightings read from the subject's index alone (an index-only scan),
   with an account scoped to the district (so the scope filter is in the query), one session
   per query as in a request (its transaction already begun, as a request's is once it has
   looked up its caller, and committed afterwards) — for random subjects over random 30-day
   windows: person (``person_id``), card subject and plate subject, ``--queries`` each after
   a warm-up; and prints whether the statement ran prepared, with a generic plan;
4. EXPLAINs one query of each kind and prints the partitions and indexes it touched
   (``--explain`` prints the whole plans), then 100 more for the database's share:
   execution, and the planning a statement that is not prepared pays.

Prints p50/p99 per kind against the target from the issue: p99 ≤ 5 ms.
"""

from __future__ import annotations

import argparse
import base64
import datetime as dt
import random
import re
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from sqlalchemy import func, select, text

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from anju.bootstrap import Node, bootstrap, initialise, settle_process
from anju.config import Settings
from anju.core import migrate
from anju.core.scope import Actor
from anju.devices.models import Device, DeviceKind
from anju.events import partitions, service
from anju.events.models import StoredEvent
from anju.org import service as org_service
from anju.org.models import Level, OrgUnit

KEY = base64.b64encode(bytes(range(32))).decode()
TARGET_P99_MS = 5.0
WINDOW = dt.timedelta(days=30)
PERSON_BASE = 1_000_000  # synthetic ids: the trajectory path never joins people or vehicles
VEHICLE_BASE = 2_000_000


@dataclass
class World:
    district_path: str
    communities: list[int]
    gates: list[list[int]]  # device ids per community
    barriers: list[list[int]]


def card_of(p: int) -> str:
    return f"{0xA00000 + p:08X}"


def plate_of(v: int) -> str:
    return f"粤B{v:05d}"


def build_world(node: Node, communities: int, devices: int) -> World:
    """A district → stations → offices → communities, with gates and barriers in each."""
    per = max(devices // communities, 2)
    barriers_per = max(per // 5, 1)
    world = World("", [], [], [])
    with node.unit_of_work() as ctx:
        s = ctx.session
        root = org_service.root(s)
        district = org_service.add_unit(
            s, level=Level.DISTRICT, code="BTD", name="轨迹分局", parent=root
        )
        world.district_path = district.path
        for c in range(communities):
            station = org_service.add_unit(
                s, level=Level.STATION, code=f"BTS{c}", name=f"派出所{c}", parent=district
            )
            office = org_service.add_unit(
                s, level=Level.OFFICE, code=f"BTO{c}", name=f"警务室{c}", parent=station
            )
            community = org_service.add_unit(
                s, level=Level.COMMUNITY, code=f"BTC{c}", name=f"小区{c}", parent=office
            )
            gates: list[int] = []
            barriers: list[int] = []
            for d in range(per):
                kind = DeviceKind.BARRIER if d < barriers_per else DeviceKind.FACE_GATE
                device = Device(
                    community_id=community.id, code=f"BT{c}-{d}", name=f"设备{d}", kind=kind
                )
                s.add(device)
                s.flush()
                (barriers if kind is DeviceKind.BARRIER else gates).append(device.id)
            world.communities.append(community.id)
            world.gates.append(gates)
            world.barriers.append(barriers)
    return world


def _array(rows: list[list[int]]) -> str:
    return "ARRAY[" + ",".join("ARRAY[" + ",".join(map(str, r)) + "]" for r in rows) + "]"


def month_starts(start: dt.datetime, end: dt.datetime) -> list[dt.date]:
    month, months = partitions.month_start(start), []
    while dt.datetime(month.year, month.month, 1, tzinfo=dt.UTC) < end:
        months.append(month)
        month = partitions.next_month(month)
    return months


def generate(url: str, world: World, args: argparse.Namespace, end: dt.datetime) -> None:
    """Fill ``events`` month by month: a plain table per month, filled in SQL, attached."""
    start = end - dt.timedelta(days=args.days)
    span = (end - start).total_seconds()
    gates = min(len(g) for g in world.gates)
    barriers = min(len(b) for b in world.barriers)
    first = 0
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SET maintenance_work_mem = '512MB'")
        conn.execute(
            f"CREATE TEMP TABLE lookup AS SELECT {_array(world.gates)} AS gates, "
            f"{_array(world.barriers)} AS barriers, "
            f"ARRAY[{','.join(map(str, world.communities))}] AS communities"
        )
        for month in month_starts(start, end):
            lower = max(start, dt.datetime(month.year, month.month, 1, tzinfo=dt.UTC))
            nxt = partitions.next_month(month)
            upper = min(end, dt.datetime(nxt.year, nxt.month, 1, tzinfo=dt.UTC))
            count = round(args.events * (upper - lower).total_seconds() / span)
            name = partitions.partition_name(month)
            t0 = time.perf_counter()
            conn.execute(f"DROP TABLE IF EXISTS {name}")  # an empty one made at start-up
            conn.execute(f"CREATE TABLE {name} (LIKE events INCLUDING DEFAULTS)")
            conn.execute(
                GENERATE.format(table=name),
                {
                    "first": first,
                    "last": first + count - 1,
                    "lower": lower,
                    "seconds": (upper - lower).total_seconds(),
                    "people": args.people,
                    "vehicles": args.vehicles,
                    "communities": len(world.communities),
                    "gates": gates,
                    "barriers": barriers,
                    "person_base": PERSON_BASE,
                    "vehicle_base": VEHICLE_BASE,
                    "card_base": 0xA00000,
                },
            )
            t1 = time.perf_counter()
            conn.execute(
                f"ALTER TABLE events ATTACH PARTITION {name} FOR VALUES FROM "
                f"('{partitions.bound(month)}') TO ('{partitions.bound(nxt)}')"
            )
            t2 = time.perf_counter()
            first += count
            print(
                f"  {name}: {count:>10,} events generated in {t1 - t0:5.1f} s, "
                f"attached (indexes built) in {t2 - t1:5.1f} s"
            )
        vacuum(conn)


def vacuum(conn: psycopg.Connection[Any]) -> None:
    """``VACUUM (ANALYZE)`` the whole database. Vacuum sets the visibility map, which lets an
    index-only scan skip the heap (rows a bulk load just wrote are not yet known visible to
    all); analyse, because the scope filter's plan depends on org_units' statistics too
    (autovacuum never analyses a table of fewer than 50 rows; see docs/performance.md)."""
    t0 = time.perf_counter()
    conn.execute("VACUUM (ANALYZE)")
    print(f"  VACUUM (ANALYZE) in {time.perf_counter() - t0:.1f} s")


# Person p lives in community p % communities and has card A00000+p; vehicle v belongs to
# person (v * 3) % people. Activity is skewed: power(random(), 1.5) favours low numbers.
GENERATE = """
INSERT INTO {table} (community_id, device_id, event_key, kind, at, received_at,
                     subject_type, subject_value, direction, value, data, image, history,
                     person_id, vehicle_id, house_id)
SELECT lookup.communities[c + 1],
       CASE WHEN r < 0.2 THEN lookup.barriers[c + 1][1 + floor(random() * %(barriers)s)::int]
            ELSE lookup.gates[c + 1][1 + floor(random() * %(gates)s)::int] END,
       'b' || n,
       CASE WHEN r < 0.2 THEN 'vehicle.passed' WHEN r < 0.9 THEN 'access.card'
            ELSE 'door.opened' END,
       at,
       at + interval '2 seconds',
       CASE WHEN r < 0.2 THEN 'plate' WHEN r < 0.9 THEN 'card' END,
       CASE WHEN r < 0.2 THEN '粤B' || lpad(v::text, 5, '0')
            WHEN r < 0.9 THEN lpad(upper(to_hex(%(card_base)s + p)), 8, '0') END,
       CASE WHEN r >= 0.9 THEN NULL WHEN n %% 2 = 0 THEN 'in' ELSE 'out' END,
       NULL, '{{}}'::json, NULL, false,
       CASE WHEN r < 0.2 THEN %(person_base)s + owner WHEN r < 0.9 THEN %(person_base)s + p END,
       CASE WHEN r < 0.2 THEN %(vehicle_base)s + v END,
       NULL
FROM (
    SELECT n, r, v, p, at,
           CASE WHEN r < 0.2 THEN owner WHEN r < 0.9 THEN p
                ELSE floor(random() * %(people)s)::int END %% %(communities)s AS c,
           owner
    FROM (
        SELECT n, random() AS r,
               floor(power(random(), 1.5) * %(people)s)::int AS p,
               v, (v * 3) %% %(people)s AS owner,
               %(lower)s::timestamptz + random() * %(seconds)s * interval '1 second' AS at
        FROM (SELECT n, floor(random() * %(vehicles)s)::int AS v
              FROM generate_series(%(first)s::bigint, %(last)s::bigint) AS n) AS g
    ) AS drawn
) AS placed, lookup
"""


def timed(node: Node, actor: Actor, f: service.EventFilter) -> tuple[float, int]:
    """One trajectory as a request makes it: a session of its own whose transaction has
    begun (a request has looked up its caller by then), then the timed service call, then a
    commit, as ``web/deps.py`` ends a request that succeeded. (Ending with a rollback instead
    would also make psycopg forget the statements it has prepared on that connection, which
    a request never does.)"""
    with node.sessions() as session:
        ctx = node.ctx(session, actor)
        session.execute(select(1))
        t0 = time.perf_counter()
        rows = service.trajectory(ctx, f)
        elapsed = (time.perf_counter() - t0) * 1000
        session.commit()
        return elapsed, len(rows)


def window(rng: random.Random, start: dt.datetime, end: dt.datetime) -> tuple[dt.datetime, ...]:
    until = start + WINDOW + (end - start - WINDOW) * rng.random()
    return until - WINDOW, until


def subject_filters(kind: str, rng: random.Random, args: argparse.Namespace, when: Any) -> Any:
    since, until = when
    if kind == "person":
        return service.EventFilter(
            person_id=PERSON_BASE + rng.randrange(args.people), since=since, until=until
        )
    if kind == "card":
        value = card_of(rng.randrange(args.people))
        return service.EventFilter(
            subject_type="card", subject_value=value, since=since, until=until
        )
    value = plate_of(rng.randrange(args.vehicles))
    return service.EventFilter(subject_type="plate", subject_value=value, since=since, until=until)


def explain(node: Node, actor: Actor, f: service.EventFilter, options: str) -> str:
    """EXPLAIN ANALYZE the service's own statement (the one :func:`timed` runs)."""
    with node.sessions() as session:
        ctx = node.ctx(session, actor)
        stmt = service.trajectory_query(ctx, f)
        compiled = stmt.compile(dialect=session.get_bind().dialect)
        rows = session.connection().exec_driver_sql(
            f"EXPLAIN ({options}) " + str(compiled), compiled.params
        )
        return "\n".join(r[0] for r in rows)


def plan_summary(plan: str) -> str:
    """The partitions and indexes a plan touched, and whether it scanned a whole partition."""
    touched = sorted(set(re.findall(r"(?:Heap Scan|Scan using \w+) on (events_\w+)", plan)))
    indexes = sorted(set(re.findall(r"(?:Index Scan on|Scan using) (events_\w+_idx)", plan)))
    only = sorted(set(re.findall(r"Index Only Scan using (events_\w+_idx)", plan)))
    fetches = sum(int(n) for n in re.findall(r"Heap Fetches: (\d+)", plan))
    seq = re.search(r"Seq Scan on events", plan) is not None
    return (
        f"partitions {touched}; indexes {indexes}; index-only "
        + ("all" if only == indexes else f"{only}")
        + f", heap fetches {fetches}"
        + ("; SEQ SCAN on events" if seq else "")
    )


def server_ms(plan: str, what: str) -> float:
    """Planning or execution time from an EXPLAIN ANALYZE summary."""
    found = re.search(rf"{what} Time: ([\d.]+) ms", plan)
    assert found is not None, plan
    return float(found.group(1))


def prepared_plans(node: Node) -> str:
    """How the trajectory statement ran on the pooled connection: psycopg prepares a
    statement it has run five times on a connection, and PostgreSQL then plans it once
    (generic) or per execution (custom)."""
    with node.sessions() as session:
        row = session.execute(
            text(
                "SELECT count(*), coalesce(sum(generic_plans), 0), coalesce(sum(custom_plans), 0)"
                " FROM pg_prepared_statements WHERE statement LIKE '%FROM events JOIN devices%'"
            )
        ).one()
        session.commit()
    return f"prepared statements {row[0]}, generic plans {row[1]}, custom plans {row[2]}"


def percentiles(values: list[float]) -> tuple[float, float]:
    q = statistics.quantiles(values, n=100, method="inclusive")
    return q[49], q[98]


def measure(node: Node, args: argparse.Namespace, world: World, end: dt.datetime) -> None:
    start = end - dt.timedelta(days=args.days)
    actor = Actor(
        user_id=None,
        username="bench",
        org_path=world.district_path,
        permissions=frozenset({"trajectory.view", "event.view"}),
        police=True,
    )
    rng = random.Random(7)

    def draw(kind: str) -> service.EventFilter:
        return subject_filters(kind, rng, args, window(rng, start, end))

    settle_process()  # as `anju serve` does once it has started
    verdicts = []
    for kind in ("person", "card", "plate"):
        plan = explain(node, actor, draw(kind), "ANALYZE, BUFFERS, COSTS OFF")
        print(f"  {kind}: plan: {plan if args.explain else plan_summary(plan)}")
        for _ in range(args.warmup):
            timed(node, actor, draw(kind))
        times, sizes = [], []
        for _ in range(args.queries):
            ms, n = timed(node, actor, draw(kind))
            times.append(ms)
            sizes.append(n)
        p50, p99 = percentiles(times)
        ok = p99 <= TARGET_P99_MS
        verdicts.append(ok)
        print(
            f"  {kind:>6}: p50 {p50:6.2f} ms  p99 {p99:6.2f} ms  max {max(times):6.2f} ms  "
            f"({args.queries} queries, {statistics.mean(sizes):.0f} sightings on average, "
            f"max {max(sizes)})  target p99 ≤ {TARGET_P99_MS:.0f} ms: "
            + ("met" if ok else "NOT MET")
        )
        print(f"          on the pooled connection: {prepared_plans(node)}")
        # The database's share as the server reports it, for other subjects and windows:
        # execution, and the planning a prepared statement's generic plan no longer pays.
        plans = [
            explain(node, actor, draw(kind), "ANALYZE, TIMING OFF, SUMMARY ON")
            for _ in range(min(args.queries, 100))
        ]
        e50, e99 = percentiles([server_ms(p, "Execution") for p in plans])
        p50, p99 = percentiles([server_ms(p, "Planning") for p in plans])
        print(
            f"          in the database (EXPLAIN ANALYZE, {len(plans)} other queries): "
            f"execution p50 {e50:.2f} ms  p99 {e99:.2f} ms; planning when not prepared "
            f"p50 {p50:.2f} ms  p99 {p99:.2f} ms"
        )
    print("target p99 ≤ 5 ms: " + ("met for every kind" if all(verdicts) else "NOT MET"))


def reused_world(node: Node) -> tuple[World, dt.datetime]:
    """The district and the end of the data of a database kept by an earlier run."""
    with node.sessions() as session:
        path = session.scalar(select(OrgUnit.path).where(OrgUnit.code == "BTD"))
        end = session.scalar(select(func.max(StoredEvent.at)))
    if path is None or end is None:
        raise SystemExit("no kept benchmark data in that database; run without --reuse")
    print(f"PostgreSQL, database kept by an earlier run, data up to {end:%Y-%m-%d %H:%M}")
    return World(path, [], [], []), end


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--days", type=int, default=182)
    parser.add_argument("--people", type=int, default=5000)
    parser.add_argument("--vehicles", type=int, default=1500)
    parser.add_argument("--communities", type=int, default=10)
    parser.add_argument("--devices", type=int, default=300)
    parser.add_argument("--queries", type=int, default=500)
    parser.add_argument("--warmup", type=int, default=50)
    parser.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432/test")
    parser.add_argument("--db", default="anju_bench_traj")
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    parser.add_argument("--explain", action="store_true", help="print the query plans")
    parser.add_argument(
        "--reuse",
        action="store_true",
        help="measure a database an earlier --keep run left (and keep it)",
    )
    args = parser.parse_args()

    if not args.reuse:
        with psycopg.connect(args.pg, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{args.db}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{args.db}"')
    url = f"{args.pg.rsplit('/', 1)[0]}/{args.db}"
    end = dt.datetime.now(dt.UTC).replace(microsecond=0)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            settings = Settings(
                data_dir=Path(tmp),
                secret_key=KEY,
                database_url=url.replace("postgresql://", "postgresql+psycopg://", 1),
            )
            node = bootstrap(settings)
            try:
                if args.reuse:
                    # A database kept before a migration gains it (e.g. 0012's indexes).
                    migrate.upgrade(node.engine)
                    with psycopg.connect(url, autocommit=True) as conn:
                        vacuum(conn)
                    world, end = reused_world(node)
                    measure(node, args, world, end)
                    return
                initialise(node, admin_password="bench-password-123")
                world = build_world(node, args.communities, args.devices)
                print(
                    f"PostgreSQL, database {args.db}: {args.events:,} events over {args.days} "
                    f"days; {args.people:,} people with cards, {args.vehicles:,} vehicles, "
                    f"{len(world.communities)} communities, "
                    f"{sum(map(len, world.gates)) + sum(map(len, world.barriers))} devices"
                )
                t0 = time.perf_counter()
                generate(url, world, args, end)
                print(f"  data ready in {time.perf_counter() - t0:.0f} s")
                measure(node, args, world, end)
            finally:
                node.dispose()
    finally:
        if not (args.keep or args.reuse):  # a reused database stays for the next run
            with psycopg.connect(args.pg, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{args.db}" WITH (FORCE)')


if __name__ == "__main__":
    main()
