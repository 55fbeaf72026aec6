"""Alert latency: from a smoke alarm sent to the alert arriving on the console's live stream,
under a steady background of ordinary events.

    .venv/bin/python bench/alerts.py [--rate 1000] [--seconds 30] [--alarms 2/s]
                                     [--only sqlite|postgresql] [--pg postgresql://…]
                                     [--trace]

Per database (SQLite in a temporary data folder, then PostgreSQL in a throwaway database):

1. builds a node, a 300-resident simulated community with card credentials (as
   ``bench/ingest.py``), and registers 400 smoke detectors of its own (one per alarm, so
   no alarm merges into an open alert and every one is announced);
2. runs the real app under uvicorn in a thread, and listens to ``GET /api/v1/alerts/live``
   (Server-Sent Events, as the alert centre does) with an admin's API token;
3. a separate process sends the background: ``--rate`` events/s of card passages and plate
   reads, in batches of 100 every 0.1 s from two gates and two barriers, through
   ``POST /api/v1/events`` with each device's credential;
4. meanwhile this process sends ``--alarms`` smoke alarms a second (one event each, from a
   fresh detector) and takes, per alarm, the time from just before its POST to the moment
   its alert is read from the live stream: HTTP, the pipeline, the commit, the rules
   engine, the alert service's transaction and the live feed, end to end.

Prints p50/p99/max of that latency against the target (p99 ≤ 50 ms), and the background
rate actually achieved. ``--trace`` also times each step of an alarm's way (the server runs
in this process; see :func:`install_trace`) and prints, per step, p50/p99/max of the time
since the previous one, and the steps of the three slowest alarms.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import itertools
import json
import multiprocessing
import statistics
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import select

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from ingest import Site, make_events, on_each_database, prepare
from tests.live_server import live_server

from anju.auth import tokens
from anju.auth.models import TokenKind, User
from anju.bootstrap import Node
from anju.registry import schemas
from anju.registry import service as registry

DETECTORS = 400
TARGET_P99_MS = 50.0


def background(base: str, jobs: list[tuple[str, bytes]], rate: int, seconds: float) -> int:
    """The background process: batches of 100 every 100/rate s, paced; returns events sent."""
    period = 100 / rate
    sent = 0
    with httpx.Client(base_url=base, timeout=30) as client:
        start = time.perf_counter()
        for i, (credential, body) in enumerate(jobs):
            due = start + i * period
            if due - start > seconds:
                break
            pause = due - time.perf_counter()
            if pause > 0:
                time.sleep(pause)
            r = client.post(
                "/api/v1/events",
                content=body,
                headers={
                    "Authorization": f"Bearer {credential}",
                    "Content-Type": "application/json",
                },
            )
            r.raise_for_status()
            sent += r.json()["accepted"]
        elapsed = time.perf_counter() - start
    return int(sent / elapsed) if elapsed else 0


def detectors(node: Node, site: Site) -> list[tuple[str, str]]:
    """Smoke detectors of the bench's own, each with its credential: (code, secret). The
    name is the code too, so that an alert's title (which names the device) identifies it."""
    now = dt.datetime.now(dt.UTC)
    out = []
    with node.unit_of_work() as ctx:
        for i in range(DETECTORS):
            device = registry.devices.create(
                ctx,
                schemas.DeviceCreate(
                    community_id=site.community_id,
                    code=f"BENCH-SMOKE-{i:03d}",
                    name=f"BENCH-SMOKE-{i:03d}",
                    kind="smoke_detector",
                ),
            )
            out.append((device.code, tokens.issue_device_credential(ctx.session, device, now)))
    return out


def admin_token(node: Node) -> str:
    with node.unit_of_work() as ctx:
        admin = ctx.session.scalar(select(User).where(User.username == "admin"))
        assert admin is not None
        clear, _ = tokens.create_token(
            ctx.session, admin, "alert bench", TokenKind.PERSONAL, None, dt.datetime.now(dt.UTC)
        )
    return clear


# --- --trace: where an alarm's time goes ----------------------------------------------

STAGES = ("deliver", "committed", "engine_in", "engine_out", "alert_committed", "offered")
trace: dict[str, dict[str, float]] = {}
gc_pauses: list[float] = []  # ms, the cyclic garbage collector's passes over 1 ms
_gc_started = [0.0]


def _gc_timer(phase: str, info: dict[str, Any]) -> None:
    if phase == "start":
        _gc_started[0] = time.perf_counter()
    elif (took := (time.perf_counter() - _gc_started[0]) * 1000) > 1:
        gc_pauses.append(took)


def _mark(code: str | None, stage: str) -> None:
    if code is not None and code.startswith("BENCH-SMOKE-"):
        trace.setdefault(code, {}).setdefault(stage, time.perf_counter())


def _code_in(text: str) -> str | None:
    at = text.find("BENCH-SMOKE-")
    return text[at : at + 15] if at >= 0 else None


def install_trace() -> None:
    """Wrap the steps an alarm goes through (this process runs the server) to time each:
    the delivery's start (after HTTP, authentication and the hop to a worker thread), its
    commit, the engine, the alert's commit, the hand-over to the stream's event loop."""
    from anju.alerts import engine as alert_engine
    from anju.alerts import notify
    from anju.events import api, feed

    deliver = api.deliver

    def traced_deliver(node: Any, outcomes: Any, sender: Any, **kw: Any) -> Any:
        _mark(sender.device.code if sender.device else None, "deliver")
        return deliver(node, outcomes, sender, **kw)

    api.deliver = traced_deliver

    on_stored = alert_engine.NodeRules.on_stored

    def traced_on_stored(self: Any, node: Any, stored: Any) -> Any:
        for _, row in stored:
            _mark(row.device.code, "committed")
        return on_stored(self, node, stored)

    alert_engine.NodeRules.on_stored = traced_on_stored  # type: ignore[method-assign]

    on_events = alert_engine.Engine.on_events

    def traced_on_events(self: Any, events: Any, now: Any) -> Any:
        for e in events:
            _mark(e.device_code, "engine_in")
        out = on_events(self, events, now)
        for e in events:
            _mark(e.device_code, "engine_out")
        return out

    alert_engine.Engine.on_events = traced_on_events  # type: ignore[method-assign]

    send = notify.send

    def traced_send(node: Any, notices: Any, *a: Any, **kw: Any) -> Any:
        for n in notices:
            _mark(_code_in(n.title), "alert_committed")
        return send(node, notices, *a, **kw)

    notify.send = traced_send

    offer = feed.Subscriber.offer

    def traced_offer(self: Any, item: dict[str, Any]) -> None:
        if "title" in item:
            _mark(_code_in(str(item["title"])), "offered")
        offer(self, item)

    feed.Subscriber.offer = traced_offer  # type: ignore[method-assign]
    gc.callbacks.append(_gc_timer)  # a pause of the collector stops every thread


def report_trace(sent_at: dict[str, float], arrived: dict[str, float]) -> None:
    """Per stage, the time from the previous one: p50 / p99 / max over the alarms."""
    rows: dict[str, list[float]] = {}
    for code, start in sent_at.items():
        marks = trace.get(code, {})
        got = [t for title, t in arrived.items() if code in title]
        points = [("sent", start)] + [(s, marks[s]) for s in STAGES if s in marks]
        if got:
            points.append(("received", got[0]))
        for (_, a), (name, b) in itertools.pairwise(points):
            rows.setdefault(name, []).append((b - a) * 1000)
    slowest = sorted(
        (got[0] - start, code)
        for code, start in sent_at.items()
        if (got := [t for title, t in arrived.items() if code in title])
    )[-3:]
    for total, code in reversed(slowest):
        marks = {"sent": sent_at[code], **trace.get(code, {})}
        steps = sorted(marks.items(), key=lambda kv: kv[1])
        parts = ", ".join(
            f"{b[0]} +{(b[1] - a[1]) * 1000:.1f}" for a, b in itertools.pairwise(steps)
        )
        print(f"  slow: {total * 1000:.1f} ms: {parts}")
    for name in (*STAGES, "received"):
        values = sorted(rows.get(name, []))
        if values:
            p99 = values[min(len(values) - 1, int(len(values) * 0.99))]
            print(
                f"  → {name:<16} p50 {statistics.median(values):6.1f} ms  "
                f"p99 {p99:6.1f} ms  max {values[-1]:6.1f} ms"
            )
    if gc_pauses:
        print(
            f"  garbage collector: {len(gc_pauses)} pauses over 1 ms, "
            f"{sum(p > 10 for p in gc_pauses)} over 10 ms, longest {max(gc_pauses):.1f} ms"
        )


def run(node: Node, label: str, args: argparse.Namespace) -> None:
    print(f"{label}:")
    trace.clear()
    gc_pauses.clear()
    site = prepare(node, 300)
    smoke = detectors(node, site)
    token = admin_token(node)
    batches = make_events(site, int(args.rate * (args.seconds + 5)), 100, "bg", seed=1)
    jobs = [
        (site.senders[who][3], json.dumps(items, ensure_ascii=False).encode())
        for who, items in batches
    ]
    # The server runs in this process: the 35,000 event dicts it never sees must not sit in
    # its heap, where each full pass of the garbage collector (which stops every thread)
    # would walk them; the bodies are bytes, which it skips.
    del batches
    gc.collect()
    arrived: dict[str, float] = {}
    sent_at: dict[str, float] = {}
    with live_server(node) as base:
        listening = threading.Event()
        stop = threading.Event()

        def listen() -> None:
            headers = {"Authorization": f"Bearer {token}"}
            with (
                httpx.Client(base_url=base, timeout=None) as client,
                client.stream("GET", "/api/v1/alerts/live", headers=headers) as stream,
            ):
                listening.set()
                for line in stream.iter_lines():
                    if line.startswith("data: "):
                        item = json.loads(line[6:])
                        if item.get("model") == "fire" and item.get("action") == "raised":
                            arrived.setdefault(item["title"], time.perf_counter())
                    if stop.is_set():
                        return

        listener = threading.Thread(target=listen, daemon=True)
        listener.start()
        listening.wait(10)
        time.sleep(0.5)
        pool = multiprocessing.get_context("spawn").Pool(1)
        load = pool.apply_async(background, (base, jobs, args.rate, args.seconds))
        time.sleep(2)  # let the background reach its pace
        gap = 1 / args.alarms
        with httpx.Client(base_url=base, timeout=30) as client:
            for code, secret in smoke[: int(args.alarms * (args.seconds - 4))]:
                at = dt.datetime.now(dt.UTC).isoformat()
                body = {"id": uuid.uuid4().hex, "device": code, "kind": "fire.smoke", "at": at}
                sent_at[code] = time.perf_counter()
                r = client.post(
                    "/api/v1/events", json=body, headers={"Authorization": f"Bearer {secret}"}
                )
                r.raise_for_status()
                time.sleep(gap)
        background_rate = load.get(timeout=args.seconds * 3)
        pool.close()
        time.sleep(1)
        stop.set()
    latencies = []
    for code, start in sent_at.items():
        seen = [t for title, t in arrived.items() if code in title]
        if seen:
            latencies.append((seen[0] - start) * 1000)
    missing = len(sent_at) - len(latencies)
    if not latencies:
        print(f"{label}: no alert arrived on the live stream")
        return
    latencies.sort()
    p50 = statistics.median(latencies)
    p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
    verdict = "met" if p99 <= TARGET_P99_MS and not missing else "NOT met"
    print(
        f"{label}: background {background_rate:,} events/s (asked {args.rate:,}); "
        f"{len(latencies)} alarms, {missing} without an alert on the stream"
    )
    print(
        f"{label}: smoke alarm → alert on the live stream: p50 {p50:.1f} ms, "
        f"p99 {p99:.1f} ms, max {latencies[-1]:.1f} ms (target p99 ≤ {TARGET_P99_MS:.0f} ms: "
        f"{verdict})"
    )
    if args.trace:
        report_trace(sent_at, arrived)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rate", type=int, default=1000, help="background events per second")
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--alarms", type=float, default=2, help="smoke alarms per second")
    parser.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432/test")
    parser.add_argument("--only", choices=("sqlite", "postgresql"))
    parser.add_argument(
        "--trace", action="store_true", help="time each step of an alarm's way (see install_trace)"
    )
    args = parser.parse_args()
    if args.trace:
        install_trace()
    if args.alarms * (args.seconds - 4) > DETECTORS:
        raise SystemExit(f"at most {DETECTORS} alarms: lower --alarms or --seconds")
    on_each_database(args, run)


if __name__ == "__main__":
    main()
