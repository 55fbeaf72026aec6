"""Registry benchmark: build a simulated community, then time lookups and list pages.

    .venv/bin/python bench/registry.py [--residents 2000] [--pg postgresql+psycopg://…]

Prints, per database: build time, exact lookup by ID number (keyed hash), a scoped list page
of people (50 rows with tags), and the dashboard statistics query.
"""

from __future__ import annotations

import argparse
import base64
import datetime as dt
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import psycopg
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from anju.bootstrap import Node, bootstrap, initialise
from anju.config import Settings
from anju.core.scope import Actor
from anju.registry import service as registry
from anju.registry.models import Person
from anju.sim.community import CommunityConfig, build_community

KEY = base64.b64encode(bytes(range(32))).decode()


def timed(fn: Callable[[], object], repeat: int) -> tuple[float, float]:
    """Median and 99th percentile in milliseconds."""
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - start) * 1000)
    samples.sort()
    return statistics.median(samples), samples[min(len(samples) - 1, int(len(samples) * 0.99))]


def run(node: Node, label: str, residents: int) -> None:
    initialise(node, admin_password="bench-password-123")
    start = time.perf_counter()
    with node.unit_of_work() as ctx:
        report = build_community(
            ctx, CommunityConfig(seed=1, residents=residents, today=dt.date(2026, 11, 1))
        )
    build_s = time.perf_counter() - start
    with node.unit_of_work() as ctx:
        numbers = [
            ctx.cipher.decrypt(p.id_number_enc, "id_number")
            for p in ctx.session.scalars(select(Person).limit(200))
        ]
    officer = Actor(
        user_id=None, username="bench", org_path="/", permissions=frozenset({"*"}), police=True
    )

    def lookup() -> None:
        with node.unit_of_work(officer) as ctx:
            for n in numbers[:20]:
                assert registry.people.find_by_id_number(ctx, n) is not None

    def list_page() -> None:
        with node.unit_of_work(officer) as ctx:
            stmt = (
                registry.people.select(ctx).options(selectinload(Person.tags)).order_by(Person.name)
            )
            registry.people.page(ctx, stmt, 3, 50)

    def stats() -> None:
        with node.unit_of_work(officer) as ctx:
            registry.stats(ctx, community_id=report.community_id)

    lk = timed(lookup, 30)
    lp = timed(list_page, 50)
    st = timed(stats, 50)
    print(f"{label}: build {residents} residents {build_s:.1f} s ({report.summary()})")
    print(f"{label}: lookup by ID number p50 {lk[0] / 20:.2f} ms, p99 {lk[1] / 20:.2f} ms each")
    print(f"{label}: people list page (50 rows) p50 {lp[0]:.1f} ms, p99 {lp[1]:.1f} ms")
    print(f"{label}: dashboard statistics p50 {st[0]:.1f} ms, p99 {st[1]:.1f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--residents", type=int, default=2000)
    parser.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432/test")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        node = bootstrap(Settings(data_dir=Path(tmp), secret_key=KEY))
        run(node, "SQLite", args.residents)
        node.dispose()
    name = f"anju_bench_{uuid.uuid4().hex[:8]}"
    try:
        with psycopg.connect(args.pg, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
    except psycopg.Error as exc:
        print(f"PostgreSQL skipped: {exc}")
        return
    base = args.pg.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://", 1)
    with tempfile.TemporaryDirectory() as tmp:
        node = bootstrap(
            Settings(data_dir=Path(tmp), secret_key=KEY, database_url=f"{base}/{name}")
        )
        try:
            run(node, "PostgreSQL", args.residents)
        finally:
            node.dispose()
            with psycopg.connect(args.pg, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


if __name__ == "__main__":
    main()
