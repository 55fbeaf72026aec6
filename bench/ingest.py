"""Event ingest benchmark: HTTP batches through the whole pipeline against a raw bulk insert.

    .venv/bin/python bench/ingest.py [--events 60000] [--batch 500] [--clients 2]
                                     [--residents 300] [--pg postgresql://…]

Per database (SQLite in a temporary data folder, then PostgreSQL in a throwaway database):

1. builds a node, ``initialise``, a simulated community, card credentials for some of its
   people, and device credentials for two gates and two barriers;
2. runs the real app under uvicorn in a thread and POSTs ``--events`` realistic
   ``access.card`` / ``vehicle.passed`` events in batches of ``--batch`` from ``--clients``
   threads (httpx, keep-alive), each batch sent with its device's own credential; the time is
   from the first request to the last answer, and every event must come back ``accepted``;
3. inserts the same rows (other event keys) straight into ``events``: SQLAlchemy Core
   ``executemany`` in batches (SQLite) or ``COPY … FROM STDIN`` (PostgreSQL);
4. times the stages of a delivery in-process on a few batches (JSON decode, ``parse_batch``,
   ``deliver``, answer serialisation, then the alert models' thread catching up) to show
   where the time goes.

``--rules worker`` measures the production shape instead: the server stores without running
the alert models (``ANJU_RULES=worker``) and an ``anju worker rules`` process follows the
store meanwhile; it also prints when that worker had put the last event through the models.

Prints one line per measure, the HTTP/raw ratio against the targets (SQLite ≥ 0.5× raw and
≥ 30,000 events/s; PostgreSQL ≥ 0.5× COPY), and the process's peak RSS.
"""

from __future__ import annotations

import argparse
import base64
import datetime as dt
import json
import multiprocessing
import os
import random
import resource
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psycopg
from sqlalchemy import func, select

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.live_server import live_server

from anju.alerts.models import RulesCursor
from anju.auth import tokens
from anju.bootstrap import Node, bootstrap, initialise, settle_process
from anju.config import Settings
from anju.devices.models import Device, DeviceKind
from anju.events import wire
from anju.events.api import answer, deliver, sender_for
from anju.events.models import AccessCredential, StoredEvent
from anju.events.sql import sqlite_value
from anju.registry.models import Person, Residency, Vehicle
from anju.sim.community import CommunityConfig, build_community

KEY = base64.b64encode(bytes(range(32))).decode()
COLUMNS = (
    "community_id", "device_id", "event_key", "kind", "at", "received_at", "subject_type",
    "subject_value", "direction", "value", "data", "image", "history", "person_id",
    "vehicle_id", "house_id",
)  # fmt: skip


@dataclass
class Site:
    community_id: int
    # (code, id, house_id, secret, "card" | "plate") per sending device
    senders: list[tuple[str, int, int | None, str, str]]
    cards: dict[str, int]  # card value -> person id
    plates: dict[str, tuple[int, int | None]]  # plate -> (vehicle id, owner id)
    homes: dict[int, int]  # person id -> house id


def prepare(node: Node, residents: int) -> Site:
    initialise(node, admin_password="bench-password-123")
    start = time.perf_counter()
    with node.unit_of_work() as ctx:
        report = build_community(
            ctx, CommunityConfig(seed=1, residents=residents, today=dt.date.today())
        )
    now = dt.datetime.now(dt.UTC)
    with node.unit_of_work() as ctx:
        s = ctx.session
        people = list(s.scalars(select(Person.id).order_by(Person.id).limit(200)))
        cards = {f"{0xA0000 + i:08X}": pid for i, pid in enumerate(people)}
        s.add_all(
            AccessCredential(
                community_id=report.community_id, person_id=pid, kind="card", value=card
            )
            for card, pid in cards.items()
        )
        plates = {
            r[0]: (r[1], r[2])
            for r in s.execute(select(Vehicle.plate, Vehicle.id, Vehicle.owner_id))
        }
        homes: dict[int, int] = {}
        for pid, hid in s.execute(
            select(Residency.person_id, Residency.house_id)
            .where(Residency.end_date.is_(None))
            .order_by(Residency.start_date)
        ):
            homes.setdefault(pid, hid)
        senders = []
        for kind, subject in ((DeviceKind.FACE_GATE, "card"), (DeviceKind.BARRIER, "plate")):
            devices = s.scalars(
                select(Device).where(Device.kind == kind).order_by(Device.id).limit(2)
            )
            for d in devices:
                secret = tokens.issue_device_credential(s, d, now)
                senders.append((d.code, d.id, d.house_id, secret, subject))
    if len({x[4] for x in senders}) < 2 or not plates:
        raise SystemExit(f"community lacks gates/barriers/vehicles: {report.summary()}")
    print(
        f"  setup: community of {residents} residents in {time.perf_counter() - start:.1f} s "
        f"({len(cards)} cards, {len(plates)} plates, senders {[x[0] for x in senders]})"
    )
    return Site(report.community_id, senders, cards, plates, homes)


def make_events(
    site: Site, n: int, batch: int, prefix: str, seed: int
) -> list[tuple[int, list[dict[str, Any]]]]:
    """Batches of wire events as (sender index, events): each batch from one device."""
    rng = random.Random(seed)
    # Live traffic: each device sends what it saw since its last batch, so times rise
    # through the run (one event every 0.2 s on average, the last one a few seconds ago).
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    first = now - dt.timedelta(seconds=0.2 * n + 5)
    cards, plates = list(site.cards), list(site.plates)
    out = []
    for b in range((n + batch - 1) // batch):
        who = b % len(site.senders)
        code, _, _, _, subject = site.senders[who]
        items = []
        for k in range(min(batch, n - b * batch)):
            at = (first + dt.timedelta(seconds=0.2 * (b * batch + k))).astimezone(
                dt.timezone(dt.timedelta(hours=8))
            )
            ev: dict[str, Any] = {
                "id": f"{prefix}{b}-{k}",
                "device": code,
                "at": at.isoformat(),
                "direction": rng.choice(("in", "out")),
            }
            if subject == "card":
                ev.update(
                    kind="access.card",
                    subject={"type": "card", "value": rng.choice(cards)},
                    data={"door": 1, "reader": rng.choice((1, 2))},
                )
            else:
                # a few unread or unknown plates, as in real life
                plate = (
                    rng.choice(plates)
                    if rng.random() < 0.9
                    else "粤B" + f"{rng.randrange(99999):05d}"
                )
                ev.update(
                    kind="vehicle.passed",
                    subject={"type": "plate", "value": plate},
                    data={
                        "plate_colour": "blue",
                        "vehicle_type": "car",
                        "confidence": round(rng.uniform(0.8, 1.0), 2),
                    },
                )
            items.append(ev)
        out.append((who, items))
    return out


def http_ingest(
    node: Node, site: Site, batches: list[tuple[int, list[dict[str, Any]]]], clients: int
) -> tuple[float, int, float]:
    """POST every batch from ``clients`` threads of a separate process (the server keeps
    this process's interpreter to itself); seconds from the first request to the last
    answer, events accepted, and the client process's CPU seconds (it shares the machine)."""
    jobs = [
        (site.senders[who][3], json.dumps(items, ensure_ascii=False).encode())
        for who, items in batches
    ]
    with live_server(node) as base:
        warm = httpx.get(f"{base}/api/docs", timeout=30)  # the app is up and answering
        assert warm.status_code < 500
        settle_process()  # as `anju serve` does once it has started
        with multiprocessing.get_context("spawn").Pool(1) as pool:
            pool.apply(time.sleep, (0,))  # the client process is up before the clock starts
            server_cpu = time.process_time()
            elapsed, accepted, errors, client_cpu = pool.apply(post_all, (base, jobs, clients))
            SERVER_CPU.append(time.process_time() - server_cpu)
    if errors:
        raise SystemExit(f"HTTP ingest failed: {errors[0]}")
    return elapsed, accepted, client_cpu


SERVER_CPU: list[float] = []  # this process's CPU seconds during each HTTP run


def cpu_seconds(pid: int) -> float:
    """CPU seconds (user + system) another process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def post_all(
    base: str, jobs: list[tuple[str, bytes]], clients: int
) -> tuple[float, int, list[str], float]:
    """The client process: ``clients`` keep-alive connections sharing the jobs."""
    accepted = [0] * clients
    errors: list[str] = []

    def work(i: int) -> None:
        with httpx.Client(base_url=base, timeout=120) as client:
            for credential, body in jobs[i::clients]:
                r = client.post(
                    "/api/v1/events",
                    content=body,
                    headers={
                        "Authorization": f"Bearer {credential}",
                        "Content-Type": "application/json",
                    },
                )
                if r.status_code != 200:
                    errors.append(f"{r.status_code} {r.text[:200]}")
                    return
                accepted[i] += r.json()["accepted"]

    threads = [threading.Thread(target=work, args=(i,)) for i in range(clients)]
    start, cpu = time.perf_counter(), time.process_time()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return time.perf_counter() - start, sum(accepted), errors, time.process_time() - cpu


def raw_rows(site: Site, batches: list[tuple[int, list[dict[str, Any]]]]) -> list[dict[str, Any]]:
    """The same events as ``events`` rows, enriched as the pipeline would."""
    received = dt.datetime.now(dt.UTC)
    rows = []
    for who, items in batches:
        _, device_id, device_house, _, _ = site.senders[who]
        for ev in items:
            value = ev["subject"]["value"]
            vehicle_id = None
            if ev["kind"] == "access.card":
                person_id = site.cards.get(value)
            else:
                vehicle_id, person_id = site.plates.get(value, (None, None))
            house_id = device_house or (site.homes.get(person_id) if person_id else None)
            rows.append(
                {
                    "community_id": site.community_id,
                    "device_id": device_id,
                    "event_key": ev["id"],
                    "kind": ev["kind"],
                    "at": dt.datetime.fromisoformat(ev["at"]).astimezone(dt.UTC),
                    "received_at": received,
                    "subject_type": ev["subject"]["type"],
                    "subject_value": value,
                    "direction": ev["direction"],
                    "value": None,
                    "data": ev["data"],
                    "image": None,
                    "history": False,
                    "person_id": person_id,
                    "vehicle_id": vehicle_id,
                    "house_id": house_id,
                }
            )
    return rows


def raw_insert(node: Node, rows: list[dict[str, Any]], batch: int) -> dict[str, float]:
    """Seconds to insert ``rows`` straight through the driver, values ready-made.

    SQLite: ``executemany`` of tuples in batches of ``batch``, once committing every batch
    (the durability the ingest path gives: each answered batch is committed) and once in
    a single transaction. PostgreSQL: one ``COPY … FROM STDIN``.
    """
    half = len(rows) // 2
    if node.engine.dialect.name != "postgresql":
        sql = f"INSERT INTO events ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))})"
        raw = node.engine.raw_connection()
        try:
            conn: Any = raw.driver_connection  # autocommit: transactions are explicit
            out = {}
            for label, part, per_batch in (
                ("per-batch commits", rows[:half], True),
                ("one transaction", rows[half:], False),
            ):
                values = [tuple(sqlite_value(r[c]) for c in COLUMNS) for r in part]
                start = time.perf_counter()
                conn.execute("BEGIN IMMEDIATE")
                for i in range(0, len(values), batch):
                    conn.executemany(sql, values[i : i + batch])
                    if per_batch:
                        conn.execute("COMMIT")
                        conn.execute("BEGIN IMMEDIATE")
                conn.execute("COMMIT")
                out[label] = (time.perf_counter() - start) / len(part)
            return out
        finally:
            raw.close()
    raw = node.engine.raw_connection()
    try:
        pg: psycopg.Connection[Any] = raw.driver_connection  # type: ignore[assignment]
        start = time.perf_counter()
        sql = f"COPY events ({', '.join(COLUMNS)}) FROM STDIN"
        with pg.cursor() as cur, cur.copy(sql) as copy:
            for r in rows:
                copy.write_row([json.dumps(r[c]) if c == "data" else r[c] for c in COLUMNS])
        pg.commit()
        return {"COPY": (time.perf_counter() - start) / len(rows)}
    finally:
        raw.close()


def stages(
    node: Node, site: Site, batches: list[tuple[int, list[dict[str, Any]]]]
) -> dict[str, float]:
    """Seconds per stage, summed over ``batches``, run in-process (no HTTP): decoding the
    body as the server does, ``parse_batch``, ``deliver``, the answer, and then the alert
    models' thread finishing what the delivery handed it (it shares the interpreter with
    ingest, so in the server its time is the requests' time too)."""
    with node.unit_of_work() as ctx:
        devices = {d.id: d for d in ctx.session.scalars(select(Device))}
        senders = [sender_for(devices[s[1]]) for s in site.senders]
    node.rules.drain()
    total = {"decode": 0.0, "parse_batch": 0.0, "deliver": 0.0, "answer": 0.0, "rules": 0.0}
    for who, items in batches:
        body = json.dumps(items).encode()
        t0 = time.perf_counter()
        payload = wire.decode(body)
        t1 = time.perf_counter()
        outcomes = wire.parse_batch(payload, dt.datetime.now(dt.UTC))
        t2 = time.perf_counter()
        processed = deliver(node, outcomes, senders[who])
        t3 = time.perf_counter()
        answer(processed)
        t4 = time.perf_counter()
        node.rules.drain()
        t5 = time.perf_counter()
        assert len(processed.stored) == len(items), "stage run: not all stored"
        for k, v in zip(total, (t1 - t0, t2 - t1, t3 - t2, t4 - t3, t5 - t4), strict=True):
            total[k] += v
    return total


def rules_worker(node: Node) -> subprocess.Popen[str]:
    """``anju worker rules`` over the node's database, once it follows the store; the node
    stops handing events to its own models (``ANJU_RULES=worker``)."""
    node.rules.local = False
    env = {
        **os.environ,
        "ANJU_DATA_DIR": str(node.settings.data_dir),
        "ANJU_SECRET_KEY": KEY,
        "ANJU_DATABASE_URL": node.settings.resolved_database_url,
        "ANJU_LOG_LEVEL": "WARNING",
    }
    command = [sys.executable, "-m", "anju", "worker", "rules"]
    worker = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, text=True)
    assert worker.stdout is not None
    line = worker.stdout.readline()
    if "following" not in line:
        raise SystemExit(f"anju worker rules did not start: {line!r}")
    return worker


def caught_up(node: Node, deadline: float = 600.0) -> float:
    """Seconds until the rules worker's cursor reaches the newest stored event."""
    start = time.perf_counter()
    with node.sessions() as session:
        newest = session.scalar(select(func.max(StoredEvent.id))) or 0
    while time.perf_counter() - start < deadline:
        with node.sessions() as session:
            row = session.get(RulesCursor, "rules")
            if row is not None and row.last_id >= newest:
                return time.perf_counter() - start
        time.sleep(0.02)
    raise SystemExit("the rules worker did not catch up")


def run(node: Node, label: str, args: argparse.Namespace) -> None:
    print(
        f"{label}:"
        + (" alert models in an anju worker rules process" if args.rules == "worker" else "")
    )
    site = prepare(node, args.residents)
    batches = make_events(site, args.events, args.batch, "h", seed=1)
    worker = rules_worker(node) if args.rules == "worker" else None
    worker_cpu = cpu_seconds(worker.pid) if worker is not None else 0.0
    try:
        elapsed, accepted, client_cpu = http_ingest(node, site, batches, args.clients)
        lag = caught_up(node) if worker is not None else 0.0
        if worker is not None:
            worker_cpu = cpu_seconds(worker.pid) - worker_cpu
    finally:
        if worker is not None:
            worker.terminate()
            worker.wait(60)
    http_rate = args.events / elapsed
    print(
        f"{label}: HTTP ingest {args.events} events in batches of {args.batch} from "
        f"{args.clients} clients: {elapsed:.2f} s = {http_rate:,.0f} events/s "
        f"(accepted {accepted}/{args.events})"
    )
    per = 1e6 / args.events
    print(
        f"{label}: CPU per event meanwhile: server {SERVER_CPU[-1] * per:.1f} µs"
        + (f", rules worker {worker_cpu * per:.1f} µs" if worker is not None else "")
        + f", client process {client_cpu * per:.1f} µs (2 cores: {2 * elapsed * per:.1f} µs "
        "of CPU per event in all)"
    )
    if worker is not None:
        print(
            f"{label}: the rules worker had every event through the models {lag:.2f} s after "
            f"the last answer ({args.events / (elapsed + lag):,.0f} events/s from the first "
            "request)"
        )
    if accepted != args.events:
        print(f"{label}: NOT ALL ACCEPTED")
    rows = raw_rows(site, make_events(site, args.events, args.batch, "r", seed=1))
    raw = raw_insert(node, rows, args.batch)
    for how, seconds in raw.items():
        print(
            f"{label}: raw insert ({how}), {len(rows) // len(raw)} rows: {1 / seconds:,.0f} rows/s"
        )
    # The ratio is taken against the baseline with the same durability as the ingest path.
    raw_rate = 1 / next(iter(raw.values()))
    sample = make_events(site, args.stage_batches * args.batch, args.batch, "s", seed=2)
    st = stages(node, site, sample)
    n = args.stage_batches * args.batch
    print(
        f"{label}: in-process stages over {n} events, µs/event: "
        + ", ".join(f"{k} {v / n * 1e6:.1f}" for k, v in st.items())
        + f"; HTTP end to end {elapsed / args.events * 1e6 * args.clients:.1f} µs/event per client"
    )
    with node.unit_of_work() as ctx:
        stored = ctx.session.scalar(select(func.count()).select_from(StoredEvent))
    expected = 2 * args.events + n
    print(f"{label}: rows in events {stored} (expected {expected})")
    ratio = http_rate / raw_rate
    if node.engine.dialect.name == "postgresql":
        verdict = "met" if ratio >= 0.5 else "NOT met"
        print(f"{label}: HTTP/COPY = {ratio:.2f} (target ≥ 0.5: {verdict})")
    else:
        v1 = "met" if ratio >= 0.5 else "NOT met"
        v2 = "met" if http_rate >= 30_000 else "NOT met"
        print(
            f"{label}: HTTP/raw = {ratio:.2f} (target ≥ 0.5: {v1}); "
            f"{http_rate:,.0f} events/s (target ≥ 30,000: {v2})"
        )


def on_each_database(
    args: argparse.Namespace, run: Callable[[Node, str, argparse.Namespace], None]
) -> None:
    """``run(node, label, args)`` on a node over SQLite in a temporary folder, then over a
    throwaway PostgreSQL database made from ``args.pg`` (dropped afterwards); ``args.only``
    picks one. The benches that compare the two databases share this."""
    if args.only != "postgresql":
        with tempfile.TemporaryDirectory() as tmp:
            node = bootstrap(Settings(data_dir=Path(tmp), secret_key=KEY))
            try:
                run(node, "SQLite", args)
            finally:
                node.dispose()
    if args.only == "sqlite":
        return
    name = f"anju_bench_{uuid.uuid4().hex[:8]}"
    try:
        with psycopg.connect(args.pg, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
    except psycopg.Error as exc:
        print(f"PostgreSQL skipped: {exc}")
        return
    base = args.pg.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://", 1)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            node = bootstrap(
                Settings(data_dir=Path(tmp), secret_key=KEY, database_url=f"{base}/{name}")
            )
            try:
                run(node, "PostgreSQL", args)
            finally:
                node.dispose()
    finally:
        with psycopg.connect(args.pg, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=60_000)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--clients", type=int, default=2)
    parser.add_argument("--residents", type=int, default=300)
    parser.add_argument("--stage-batches", type=int, default=10)
    parser.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432/test")
    parser.add_argument("--only", choices=("sqlite", "postgresql"))
    parser.add_argument(
        "--rules", choices=("node", "worker"), default="node",
        help="where the alert models run: in the server (default) or an anju worker rules process",
    )  # fmt: skip
    args = parser.parse_args()
    on_each_database(args, run)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS of this process (server, clients and raw insert): {peak:.0f} MiB")


if __name__ == "__main__":
    main()
