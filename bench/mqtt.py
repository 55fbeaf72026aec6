"""MQTT ingest benchmark: the node's consumer against a bare paho subscriber, same broker.

    .venv/bin/python bench/mqtt.py [--events 50000] [--per-message 100] [--mode batched|single|both]
                                   [--residents 300] [--window 800] [--broker mqtt://127.0.0.1:1883]
                                   [--only sqlite|postgresql] [--pg postgresql://…]
                                   [--rules node|worker]

Per database (SQLite in a temporary data folder, then PostgreSQL in a throwaway database) and
per mode (``batched``: arrays of ``--per-message`` events per message; ``single``: one event
per message), the same realistic ``access.card`` / ``vehicle.passed`` events as
``bench/ingest.py``, published to ``anju/v1/{community}/{device}/events`` (each message on its
device's topic) through the same Mosquitto:

1. **bare**: a paho subscriber (MQTT 5, QoS 1 subscription, paho's own automatic PUBACK)
   that decodes each message's JSON and counts its events — nothing else;
2. **node**: :class:`anju.events.adapters.mqtt.MqttIngest` exactly as ``anju worker mqtt``
   runs it (shared subscription, QoS 1, persistent session, manual PUBACK after commit):
   parse → pipeline (validate, de-duplicate, enrich, store) → acknowledge. Every event must
   come back ``accepted`` and be in ``events`` at the end.

What is fair: both subscribe with the same QoS to the same broker, receive the same bytes,
and must at least decode the JSON (a subscriber that does not look at the payload measures
only the broker and the socket). The bare one acknowledges as soon as it has decoded a
message; the node only once the events are committed, which is the point of the comparison
(the target asks how close a real consumer comes to the transport's ceiling). The publisher is
one paho client in a separate process (it does not share the consumers' GIL) that keeps at
most ``--window`` messages ahead of what the subscriber has finished: Mosquitto's default
``max_queued_messages`` (1000) would otherwise drop whatever a slower consumer cannot absorb,
and the bare subscriber would be measured against a broker that throws messages away. The
time runs from the first publish to the moment the last event is counted (bare) or stored
(node).

Caveats: one Python publisher manages roughly as many QoS 1 messages a second as a bare
Python subscriber receives, so in the one-event-per-message mode the bare figure may be
capped by the publisher (the ratio then flatters the node a little). Several
``mosquitto_pub`` processes would publish faster, but against Mosquitto 2.0.11 they made it
drop messages for the subscriber even within the window.

Prints messages/s and events/s for both, and node/bare against the target (≥ 0.8×).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import sys
import threading
import time
import uuid
from collections.abc import Callable
from multiprocessing.sharedctypes import Synchronized
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from sqlalchemy import func, select

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from ingest import Site, caught_up, make_events, on_each_database, prepare, rules_worker

from anju.bootstrap import Node, settle_process
from anju.events.adapters.mqtt import BrokerUrl, MqttIngest
from anju.events.models import StoredEvent
from anju.org.models import OrgUnit

TARGET = 0.8

Message = tuple[str, bytes, int]  # topic, body, events in it


def messages(
    site: Site, community: str, root: str, n: int, per_message: int, prefix: str
) -> list[Message]:
    """``n`` events as messages of ``per_message`` events (a bare object when 1)."""
    out = []
    for who, items in make_events(site, n, per_message, prefix, seed=3):
        code = site.senders[who][0]
        body = json.dumps(items[0] if per_message == 1 else items).encode()
        out.append((f"{root}/v1/{community}/{code}/events", body, len(items)))
    return out


def publish(
    url: str, batch: list[Message], done: Synchronized[int], window: int, started: Any
) -> None:
    """The publisher process: QoS 1, at most ``window`` messages ahead of the consumer."""
    broker = BrokerUrl.parse(url)
    client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=MQTTProtocolVersion.MQTTv5)
    client.max_inflight_messages_set(window)
    client.max_queued_messages_set(0)
    client.connect(broker.host, broker.port)
    client.loop_start()
    per = max(1, batch[0][2])
    started.set()
    infos = []
    for i, (where, body, _) in enumerate(batch):
        while i - done.value // per > window:
            time.sleep(0.0005)
        infos.append(client.publish(where, body, qos=1))
    for info in infos:
        info.wait_for_publish(60)
    client.disconnect()
    client.loop_stop()


def run_publisher(
    url: str, batch: list[Message], progress: Callable[[], int], window: int
) -> float:
    """Publish ``batch`` from another process; seconds until ``progress()`` counts all events."""
    ctx = mp.get_context("spawn")
    done = ctx.Value("q", 0, lock=False)
    started = ctx.Event()
    total = sum(m[2] for m in batch)
    proc = ctx.Process(target=publish, args=(url, batch, done, window, started))
    proc.start()
    if not started.wait(60):
        raise SystemExit("publisher did not start")
    start = time.perf_counter()
    last, last_change = 0, time.monotonic()
    while (count := progress()) < total:
        done.value = count
        if count != last:
            last, last_change = count, time.monotonic()
        elif time.monotonic() - last_change > 60:
            proc.kill()
            raise SystemExit(f"stalled at {count}/{total} events (messages lost?)")
        time.sleep(0.005)  # the window (800 messages) is ~80 ms of traffic; polling
        # faster took the interpreter from the consumer a thousand times a second
    elapsed = time.perf_counter() - start
    proc.join(60)
    return elapsed


class Bare:
    """The bare subscriber: decode each message's JSON, count its events."""

    def __init__(self, url: str, root: str) -> None:
        broker = BrokerUrl.parse(url)
        self.events = 0
        self.messages = 0
        self._subscribed = threading.Event()
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=f"anju-bench-bare-{uuid.uuid4().hex[:8]}",
            protocol=MQTTProtocolVersion.MQTTv5,
        )
        self.client.on_message = self._on_message
        self.client.on_subscribe = lambda *a: self._subscribed.set()
        self.client.connect(broker.host, broker.port)
        self.client.loop_start()
        self.client.subscribe(f"{root}/v1/+/+/events", qos=1)
        if not self._subscribed.wait(10):
            raise SystemExit("bare subscriber: no SUBACK")

    def _on_message(self, client: Any, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        payload = json.loads(msg.payload)
        self.messages += 1
        self.events += len(payload) if isinstance(payload, list) else 1

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def node_done(ingest: MqttIngest) -> int:
    s = ingest.stats
    return s["accepted"] + s["duplicate"] + s["rejected"]


def run_mode(
    node: Node, site: Site, label: str, per_message: int, args: argparse.Namespace
) -> None:
    with node.unit_of_work() as ctx:
        community = ctx.session.scalar(select(OrgUnit.code).where(OrgUnit.id == site.community_id))
    root = f"anju-bench-{uuid.uuid4().hex[:8]}"
    mode = f"{per_message} event(s)/message"
    n = args.events

    bare = Bare(args.broker, root)
    try:
        batch = messages(site, community, root, n, per_message, f"b{per_message}-")
        bare_s = run_publisher(args.broker, batch, lambda: bare.events, args.window)
    finally:
        bare.close()
    count = len(batch)
    print(
        f"{label} [{mode}]: bare paho  {count} messages / {n} events in {bare_s:.2f} s = "
        f"{count / bare_s:,.0f} msg/s, {n / bare_s:,.0f} events/s"
    )

    ingest = MqttIngest(
        node,
        args.broker,
        client_id=f"anju-bench-{uuid.uuid4().hex[:8]}",
        shared_group=f"bench{uuid.uuid4().hex[:6]}",
        topic_root=root,
        session_expiry=60,
    )
    ingest.start()
    if not ingest.wait_connected(10):
        raise SystemExit("node consumer did not subscribe")
    settle_process()  # as `anju worker mqtt` does once it has started
    prefix = f"n{per_message}-"
    try:
        batch = messages(site, community, root, n, per_message, prefix)
        node_s = run_publisher(args.broker, batch, lambda: node_done(ingest), args.window)
    finally:
        ingest.stop()
    with node.unit_of_work() as ctx:
        stored = ctx.session.scalar(
            select(func.count())
            .select_from(StoredEvent)
            .where(StoredEvent.event_key.like(f"{prefix}%"))
        )
    print(
        f"{label} [{mode}]: node       {count} messages / {n} events in {node_s:.2f} s = "
        f"{count / node_s:,.0f} msg/s, {n / node_s:,.0f} events/s "
        f"(accepted {ingest.stats['accepted']}, stored {stored}, "
        f"worker batches {ingest.stats['batches']})"
    )
    if ingest.stats["accepted"] != n or stored != n:
        print(f"{label} [{mode}]: NOT ALL STORED")
    ratio = bare_s / node_s
    verdict = "met" if ratio >= TARGET else "NOT met"
    print(f"{label} [{mode}]: node/bare = {ratio:.2f} (target ≥ {TARGET}: {verdict})")


def run(node: Node, label: str, args: argparse.Namespace) -> None:
    elsewhere = args.rules == "worker"
    print(f"{label}:" + (" alert models in an anju worker rules process" if elsewhere else ""))
    site = prepare(node, args.residents)
    modes = {"batched": [args.per_message], "single": [1], "both": [args.per_message, 1]}
    worker = rules_worker(node) if elsewhere else None
    try:
        for per_message in modes[args.mode]:
            run_mode(node, site, label, per_message, args)
            if worker is not None:
                lag = caught_up(node)
                print(f"{label}: the rules worker caught up {lag:.2f} s after the last event")
    finally:
        if worker is not None:
            worker.terminate()
            worker.wait(60)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=50_000)
    parser.add_argument("--per-message", type=int, default=100)
    parser.add_argument("--mode", choices=("batched", "single", "both"), default="both")
    parser.add_argument("--residents", type=int, default=300)
    parser.add_argument("--window", type=int, default=800, help="messages ahead, at most")
    parser.add_argument("--broker", default="mqtt://127.0.0.1:1883")
    parser.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432/test")
    parser.add_argument("--only", choices=("sqlite", "postgresql"))
    parser.add_argument(
        "--rules", choices=("node", "worker"), default="node",
        help="where the alert models run: in the consumer's process (default) or an anju "
        "worker rules process",
    )  # fmt: skip
    args = parser.parse_args()
    on_each_database(args, run)


if __name__ == "__main__":
    main()
