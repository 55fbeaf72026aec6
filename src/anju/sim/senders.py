"""How the simulator's events reach a node: the real ways in, HTTP and MQTT.

Both senders take one device's events at a time and send them in arrays of at most
:data:`anju.events.wire.MAX_BATCH` (wire format v1), and count what became of each event
per kind in a :class:`Tally`. Over HTTP each device authenticates with its own credential
(``Authorization: Bearer anjud_…``) and the node's answer says accepted / duplicate /
rejected per event; over MQTT the node answers only rejections (on ``…/rejects``), so the
tally has sent and rejected. :func:`issue_device_credentials` gives the simulated devices
fresh credentials: a credential's clear value is shown once and never stored, so the
simulator cannot reuse one issued earlier.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

import httpx
from paho.mqtt.enums import MQTTProtocolVersion
from sqlalchemy import select

from anju.auth import tokens
from anju.bootstrap import Node
from anju.devices.models import Device
from anju.events.adapters.mqtt import BrokerUrl, _client, topic
from anju.events.wire import MAX_BATCH

log = logging.getLogger(__name__)

STATUSES = ("sent", "accepted", "duplicate", "rejected", "failed")


@dataclass
class Tally:
    """What became of the events sent, per kind: sent, accepted, duplicate, rejected and
    failed (not delivered: the node did not answer). Safe to update from several threads."""

    counts: Counter[tuple[str, str]] = field(default_factory=Counter)
    reasons: Counter[str] = field(default_factory=Counter)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, kind: str, status: str, n: int = 1, reason: str | None = None) -> None:
        """Count ``n`` events of ``kind`` as ``status`` (with the reason of a rejection)."""
        with self._lock:
            self.counts[kind, status] += n
            if reason:
                self.reasons[reason] += n

    def total(self, status: str) -> int:
        """Events of every kind with this status."""
        with self._lock:
            return sum(n for (_, s), n in self.counts.items() if s == status)

    def rows(self) -> list[tuple[str, dict[str, int]]]:
        """Per kind (sorted), the count of each status."""
        with self._lock:
            kinds = sorted({k for k, _ in self.counts})
            return [(k, {s: self.counts[k, s] for s in STATUSES}) for k in kinds]

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready: totals, per kind, and the commonest rejection reasons."""
        return {
            "totals": {s: self.total(s) for s in STATUSES},
            "kinds": dict(self.rows()),
            "reasons": dict(self.reasons.most_common(10)),
        }


class Sender(Protocol):
    """Sends one device's events to the node and counts the outcome in :attr:`tally`."""

    tally: Tally

    def send(self, device: str, events: list[dict[str, Any]]) -> None: ...

    def close(self) -> None: ...


def chunks(events: list[dict[str, Any]], size: int = MAX_BATCH) -> Iterable[list[dict[str, Any]]]:
    """Arrays of at most ``size`` events."""
    for start in range(0, len(events), size):
        yield events[start : start + size]


class HttpSender:
    """``POST /api/v1/events`` with each device's own credential, one array per request.

    A network error or a 5xx answer is retried (events carry stable ids, so a resend after a
    lost answer is counted as duplicate, never stored twice); after the retries the batch is
    counted as failed and the simulation goes on.
    """

    def __init__(
        self,
        base_url: str,
        credentials: dict[str, str],
        *,
        tally: Tally | None = None,
        timeout: float = 60.0,
        retries: int = 3,
    ) -> None:
        self.credentials = credentials
        self.tally = tally or Tally()
        self.retries = retries
        self.client = httpx.Client(base_url=base_url.rstrip("/"), timeout=timeout)

    def send(self, device: str, events: list[dict[str, Any]]) -> None:
        """Send the device's events in batches."""
        for batch in chunks(events):
            self._send_batch(device, batch)

    def _send_batch(self, device: str, batch: list[dict[str, Any]]) -> None:
        for event in batch:
            self.tally.add(event["kind"], "sent")
        secret = self.credentials.get(device)
        if secret is None:
            self._count_all(batch, "rejected", "simulator has no credential for the device")
            return
        body = json.dumps(batch, ensure_ascii=False).encode()
        headers = {"Authorization": f"Bearer {secret}", "Content-Type": "application/json"}
        for attempt in range(self.retries + 1):
            try:
                answer = self.client.post("/api/v1/events", content=body, headers=headers)
            except httpx.HTTPError as exc:
                problem = f"{type(exc).__name__}: {exc}"
            else:
                if answer.status_code == 200:
                    self._count_answer(batch, answer.json())
                    return
                problem = f"HTTP {answer.status_code}: {answer.text[:200]}"
                if answer.status_code < 500:  # the node refused the batch: resending won't help
                    self._count_all(batch, "rejected", problem)
                    return
            if attempt < self.retries:
                time.sleep(min(10.0, 0.5 * 2**attempt))
        log.warning("batch of %d events of %s not delivered: %s", len(batch), device, problem)
        self._count_all(batch, "failed", problem)

    def _count_answer(self, batch: list[dict[str, Any]], answer: dict[str, Any]) -> None:
        for event, result in zip(batch, answer.get("results", []), strict=False):
            self.tally.add(event["kind"], result["status"], reason=result.get("reason"))

    def _count_all(self, batch: list[dict[str, Any]], status: str, reason: str) -> None:
        for event in batch:
            self.tally.add(event["kind"], status)
        self.tally.reasons[reason] += len(batch)

    def close(self) -> None:
        """Close the connection pool."""
        self.client.close()


class MqttSender:
    """Publish arrays to ``{root}/v1/{community}/{device}/events`` (QoS 1) on the broker, and
    count the rejections the node publishes on ``…/rejects``."""

    def __init__(
        self,
        url: str,
        community: str,
        *,
        tally: Tally | None = None,
        topic_root: str = "anju",
        timeout: float = 30.0,
    ) -> None:
        self.community = community
        self.topic_root = topic_root
        self.timeout = timeout
        self.tally = tally or Tally()
        self._kinds: dict[tuple[str, str], str] = {}  # (device, id) -> kind, for rejections
        self._last_reject = time.monotonic()  # of the last rejection or publish
        self._subscribed = threading.Event()
        broker = BrokerUrl.parse(url)
        self.client = _client(
            broker,
            broker.version or MQTTProtocolVersion.MQTTv311,
            f"anju-sim-{uuid.uuid4().hex[:12]}",
        )
        self.client.on_message = self._on_reject
        self.client.on_subscribe = lambda *args: self._subscribed.set()
        self.client.connect(broker.host, broker.port, keepalive=30)
        self.client.loop_start()
        self.client.subscribe(f"{topic_root}/v1/{community}/+/rejects", qos=1)
        if not self._subscribed.wait(timeout):
            raise TimeoutError(f"MQTT broker {broker.host}:{broker.port} did not answer")

    def _on_reject(self, client: Any, userdata: Any, message: Any) -> None:
        device = message.topic.split("/")[3]
        try:
            body = json.loads(message.payload)
        except ValueError:
            return
        kind = self._kinds.get((device, str(body.get("id"))), "unknown")
        self.tally.add(kind, "rejected", reason=str(body.get("reason")))
        self._last_reject = time.monotonic()

    def send(self, device: str, events: list[dict[str, Any]]) -> None:
        """Publish the device's events in arrays and wait for the broker to take them."""
        where = topic(self.community, device, "events", root=self.topic_root)
        for batch in chunks(events):
            for event in batch:
                self._kinds[device, event["id"]] = event["kind"]
            info = self.client.publish(where, json.dumps(batch, ensure_ascii=False), qos=1)
            info.wait_for_publish(self.timeout)
            status = "sent" if info.is_published() else "failed"
            self._last_reject = time.monotonic()  # rejections of this batch may follow
            for event in batch:
                self.tally.add(event["kind"], status)

    def close(self, settle: float = 2.0) -> None:
        """Wait until rejections stop coming (``settle`` quiet seconds), then disconnect."""
        deadline = time.monotonic() + 30
        while time.monotonic() - self._last_reject < settle and time.monotonic() < deadline:
            time.sleep(0.2)
        self.client.disconnect()
        self.client.loop_stop()


def issue_device_credentials(node: Node, codes: Iterable[str]) -> dict[str, str]:
    """Fresh credentials for the devices the simulator speaks for (device code -> secret).

    Only the hash of a credential is stored, so a running simulator must issue its own;
    each device's earlier credential stops working (``anju device credential`` again to
    hand a real device a new one).
    """
    wanted = sorted(set(codes))
    now = dt.datetime.now(dt.UTC)
    out: dict[str, str] = {}
    with node.unit_of_work() as ctx:
        for device in ctx.session.scalars(select(Device).where(Device.code.in_(wanted))):
            out[device.code] = tokens.issue_device_credential(ctx.session, device, now)
    log.info("issued simulator credentials for %d devices", len(out))
    return out
