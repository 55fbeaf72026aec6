"""MQTT: Anju's own topics (``anju/v1/{community}/{device}/events``) → canonical events.

:class:`MqttIngest` subscribes — as an MQTT 5 shared subscription, so several consumers
split the load — and hands every message from paho's network thread to one worker thread
through a bounded queue. The worker drains up to ``batch_size`` messages at a time, merges
their events (whatever their topic devices) into one delivery (one transaction) and
publishes each rejected event to ``anju/v1/{community}/{device}/rejects``.

Nothing is lost when the consumer stops or crashes: it keeps a persistent broker session
(a fixed client id; MQTT 5 ``clean_start=False`` with a session expiry, or 3.1.1
``clean_session=False``) and acknowledges a message only after its events are committed,
so the broker holds what arrives while it is away and redelivers what it had not yet
acknowledged (the pipeline stores a redelivered event once). The broker's in-flight window
is the back-pressure. While the database is unreachable the worker waits and retries
instead of acknowledging.
:func:`send_command` publishes commands back to a device. Topics and payloads are
documented in ``docs/devices.md`` (section "MQTT").
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import itertools
import json
import logging
import queue
import re
import socket
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode
from sqlalchemy import exc as sa_exc
from sqlalchemy import select

from anju.core.scope import Actor
from anju.devices.models import Device
from anju.events import wire
from anju.events.api import Sender, deliver
from anju.events.model import Outcome, Rejection
from anju.events.pipeline import DeviceRef, Result
from anju.org.models import Level, OrgUnit

log = logging.getLogger(__name__)

TOPIC_ROOT = "anju"
VERSION = "v1"
DEFAULT_BATCH = 500
DEFAULT_QUEUE = 2000
MAX_DELIVERY = 2000  # events merged into one transaction at most
DEFAULT_SESSION_EXPIRY = 86_400  # seconds the broker keeps a stopped consumer's session
RETRY_DELAYS = (0.5, 1.0, 2.0, 5.0, 10.0)  # waits while the database is unreachable
_SESSION_TAKEN_OVER = 142  # MQTT 5 DISCONNECT reason 0x8E
QUICK_DROP = 5.0  # seconds: a connection lost sooner than this was "right after connecting"
QUICK_DROPS_TO_WARN = 3
_UNSUPPORTED_PROTOCOL = {1, 132}  # MQTT 3.1.1 CONNACK 1 / MQTT 5 reason 0x84


@dataclass(frozen=True)
class BrokerUrl:
    """Where the broker is: ``mqtt[s]://[user:pass@]host[:port][?version=5|3.1.1]``."""

    host: str
    port: int
    tls: bool = False
    username: str | None = None
    password: str | None = dataclasses.field(default=None, repr=False)
    version: MQTTProtocolVersion | None = None  # None: MQTT 5, falling back to 3.1.1

    @classmethod
    def parse(cls, url: str) -> BrokerUrl:
        """Read a broker URL; unknown schemes and versions are refused."""
        parts = urlsplit(url)
        if parts.scheme not in ("mqtt", "mqtts"):
            raise ValueError("broker URL must start with mqtt:// or mqtts://")
        tls = parts.scheme == "mqtts"
        if not parts.hostname:
            raise ValueError("broker URL names no host")
        wanted = parse_qs(parts.query).get("version", [None])[0]
        versions = {
            "5": MQTTProtocolVersion.MQTTv5,
            "3.1.1": MQTTProtocolVersion.MQTTv311,
            "311": MQTTProtocolVersion.MQTTv311,
            None: None,
        }
        if wanted not in versions:
            raise ValueError("broker URL version must be 5 or 3.1.1")
        return cls(
            host=parts.hostname,
            port=parts.port or (8883 if tls else 1883),
            tls=tls,
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else None,
            version=versions[wanted],
        )


def topic(community: str, device: str, leaf: str, *, root: str = TOPIC_ROOT) -> str:
    """``{root}/v1/{community}/{device}/{leaf}`` — ``events``, ``rejects`` or ``commands``."""
    return f"{root}/{VERSION}/{community}/{device}/{leaf}"


def default_client_id(group: str | None, role: str = "serve") -> str:
    """A client id that stays the same across restarts of one consumer on one host.

    The broker finds the consumer's session (and what it queued meanwhile) by this id;
    two consumers with the same id would take the session from each other.
    """
    host = re.sub(r"[^A-Za-z0-9_.-]", "-", socket.gethostname())[:40] or "host"
    return f"anju-{group or 'plain'}-{host}-{role}"


def _client(
    broker: BrokerUrl,
    protocol: MQTTProtocolVersion,
    client_id: str,
    *,
    manual_ack: bool = False,
    persistent: bool = False,
) -> mqtt.Client:
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2,
        client_id=client_id,
        protocol=protocol,
        manual_ack=manual_ack,
        # MQTT 5 says clean_start (and the session expiry) on connect instead.
        clean_session=not persistent if protocol is not MQTTProtocolVersion.MQTTv5 else None,
    )
    if broker.username is not None:
        client.username_pw_set(broker.username, broker.password)
    if broker.tls:
        client.tls_set()
    client.reconnect_delay_set(min_delay=1, max_delay=30)
    return client


@dataclass
class _Inbound:
    """One message as received, waiting for the worker."""

    community: str
    device: str
    payload: bytes
    mid: int
    qos: int
    received_at: dt.datetime
    connection: int = 0  # which connection it came on: only that one may acknowledge it


@dataclass
class _Prepared:
    """A message decoded into outcomes, and where its results go."""

    message: _Inbound
    outcomes: list[Outcome]
    settled: bool = False


class _DatabaseAway(Exception):
    """The database could not be reached: retry later, do not acknowledge."""


# The consumer delivers for the topics' devices, checked before delivery (see _deliver).
_SENDER = Sender(
    device=None,
    actor=Actor(
        user_id=None, username="mqtt-ingest", org_path="/", permissions=frozenset({"event.ingest"})
    ),
)


def prepare(message: _Inbound) -> list[Outcome]:
    """A message's payload → outcomes, checked against the topic's device.

    Items without ``device`` are the topic's device's; items naming another device are
    refused. Every rejection is counted against the topic's device.
    """
    code = message.device
    try:
        payload = wire.decode(message.payload)  # orjson, as for HTTP; same refusals
    except ValueError as exc:
        return [Rejection(str(exc), device=code)]
    items = payload if isinstance(payload, list) else [payload]
    foreign: dict[int, Rejection] = {}
    fixed: list[Any] = []
    for i, item in enumerate(items):
        if isinstance(item, dict) and item.get("device") in (None, ""):
            item = {**item, "device": code}
        elif isinstance(item, dict) and item.get("device") != code:
            ident = item.get("id")
            foreign[i] = Rejection(
                "topic names another device",
                device=code,
                id=str(ident)[:64] if isinstance(ident, str | int) else None,
            )
        fixed.append(item)
    outcomes = wire.parse_batch(fixed, message.received_at)
    if len(outcomes) != len(fixed):  # the batch was refused as a whole
        return [dataclasses.replace(r, device=code) for r in outcomes if isinstance(r, Rejection)]
    out: list[Outcome] = []
    for i, outcome in enumerate(outcomes):
        if i in foreign:
            out.append(foreign[i])
        elif isinstance(outcome, Rejection):
            out.append(dataclasses.replace(outcome, device=code))
        else:
            out.append(outcome)
    return out


class MqttIngest:
    """Consume device events from MQTT into the pipeline; publish rejections back.

    ``start()`` connects in the background (retrying while the broker is away) and
    ``stop()`` drains what was received. Counters are in :attr:`stats`.

    ``client_id`` must stay the same across restarts for the broker to keep the session
    (``default_client_id``); ``session_expiry`` is how long (seconds) the broker holds a
    stopped consumer's messages. ``session_expiry=0`` asks for a clean session each time.
    """

    def __init__(
        self,
        node: Any,
        url: str,
        *,
        client_id: str | None = None,
        shared_group: str | None = "anju",
        topic_root: str = TOPIC_ROOT,
        batch_size: int = DEFAULT_BATCH,
        queue_size: int = DEFAULT_QUEUE,
        session_expiry: int = DEFAULT_SESSION_EXPIRY,
    ) -> None:
        self.node = node
        self.broker = BrokerUrl.parse(url)
        self.client_id = client_id or default_client_id(shared_group)
        self.session_expiry = session_expiry
        self.shared_group = shared_group
        self.topic_root = topic_root
        self.batch_size = batch_size
        self.stats: Counter[str] = Counter()
        self._queue: queue.Queue[_Inbound] = queue.Queue(maxsize=queue_size)
        self._protocol = self.broker.version or MQTTProtocolVersion.MQTTv5
        self._client: mqtt.Client | None = None
        self._connected = threading.Event()
        self._fall_back = threading.Event()
        self._stopping = threading.Event()
        self._taken_over = threading.Event()
        self._connection = 0
        self._connected_at = 0.0
        self._quick_drops = 0  # connections lost right after connecting, in a row
        self._worker: threading.Thread | None = None

    # --- lifecycle ---------------------------------------------------------------------

    @property
    def subscription(self) -> str:
        """The topic filter: shared under MQTT 5, plain under 3.1.1."""
        plain = f"{self.topic_root}/{VERSION}/+/+/events"
        if self.shared_group and self._protocol is MQTTProtocolVersion.MQTTv5:
            return f"$share/{self.shared_group}/{plain}"
        return plain

    @property
    def protocol(self) -> MQTTProtocolVersion:
        return self._protocol

    def start(self) -> None:
        """Start the worker and connect (in the background; reconnects on its own)."""
        self._stopping.clear()
        self._worker = threading.Thread(target=self._work, name="anju-mqtt-ingest", daemon=True)
        self._worker.start()
        self._connect()

    def wait_connected(self, timeout: float = 10.0) -> bool:
        """Block until subscribed (or ``timeout`` seconds); True when subscribed."""
        return self._connected.wait(timeout)

    def stop(self, timeout: float = 10.0) -> None:
        """Disconnect, then let the worker finish what was already received."""
        self._stopping.set()
        client = self._client
        if client is not None:
            client.disconnect()
            client.loop_stop()
        if self._worker is not None:
            self._worker.join(timeout)
        self._connected.clear()
        log.info("MQTT ingest %s stopped: %s", self.client_id, dict(self.stats))

    @property
    def client(self) -> mqtt.Client:
        """The live paho client (for :func:`send_command`)."""
        if self._client is None:
            raise RuntimeError("MQTT ingest is not started")
        return self._client

    def _connect(self) -> None:
        persistent = self.session_expiry > 0
        client = _client(
            self.broker, self._protocol, self.client_id, manual_ack=True, persistent=persistent
        )
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_subscribe = self._on_subscribe
        client.on_message = self._on_message
        properties = None
        clean_start: mqtt.CleanStartOption = mqtt.MQTT_CLEAN_START_FIRST_ONLY
        if self._protocol is MQTTProtocolVersion.MQTTv5:
            properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
            properties.ReceiveMaximum = min(self._queue.maxsize, 65535)
            if persistent:
                properties.SessionExpiryInterval = self.session_expiry
                clean_start = False
        client.connect_async(
            self.broker.host,
            self.broker.port,
            keepalive=30,
            clean_start=clean_start,
            properties=properties,
        )
        self._client = client
        client.loop_start()
        log.info(
            "MQTT ingest %s connecting to %s:%s (MQTT %s)",
            self.client_id,
            self.broker.host,
            self.broker.port,
            "5" if self._protocol is MQTTProtocolVersion.MQTTv5 else "3.1.1",
        )

    def _fall_back_to_311(self) -> None:
        """The broker refused MQTT 5: reconnect speaking 3.1.1 (plain subscription)."""
        old = self._client
        if old is not None:
            old.loop_stop()
            old.disconnect()
        self._protocol = MQTTProtocolVersion.MQTTv311
        log.warning("broker refused MQTT 5; falling back to 3.1.1 without shared subscription")
        self._connect()

    # --- paho's network thread: keep it short -------------------------------------------

    def _on_connect(
        self,
        client: mqtt.Client,
        userdata: Any,
        flags: Any,
        reason: ReasonCode,
        properties: Properties | None,
    ) -> None:
        if reason.is_failure:
            self.stats["connect_refused"] += 1
            if (
                reason.value in _UNSUPPORTED_PROTOCOL
                and self.broker.version is None
                and self._protocol is MQTTProtocolVersion.MQTTv5
            ):
                self._fall_back.set()  # the worker reconnects: not from inside the loop
            log.warning("MQTT broker refused the connection: %s", reason)
            return
        self._connection += 1
        self._connected_at = time.monotonic()
        resumed = bool(getattr(flags, "session_present", False))
        log.info("MQTT ingest %s connected (session resumed: %s)", self.client_id, resumed)
        client.subscribe(self.subscription, qos=1)

    def _on_subscribe(
        self,
        client: mqtt.Client,
        userdata: Any,
        mid: int,
        reasons: list[ReasonCode],
        properties: Properties | None,
    ) -> None:
        if any(r.is_failure for r in reasons):
            log.error("MQTT broker refused the subscription %s: %s", self.subscription, reasons)
            return
        log.info("MQTT ingest %s subscribed to %s", self.client_id, self.subscription)
        self._connected.set()

    def _on_disconnect(
        self,
        client: mqtt.Client,
        userdata: Any,
        flags: Any,
        reason: ReasonCode,
        properties: Properties | None,
    ) -> None:
        self._connected.clear()
        if self._stopping.is_set():
            return
        self.stats["disconnects"] += 1
        if reason.value == _SESSION_TAKEN_OVER:
            # Reconnecting would take it back, and so on: stop and say why.
            log.error(
                "MQTT ingest %s: another consumer connected with the same client id and took "
                "over its session; this one stops (give each consumer its own --client-id)",
                self.client_id,
            )
            self._taken_over.set()
            client.disconnect()
            return
        log.warning("MQTT ingest %s disconnected: %s (reconnecting)", self.client_id, reason)
        # Brokers that do not say "session taken over" (Mosquitto 2.0.11) show a client-id
        # clash only as connections that keep dropping right after they were made.
        quick = time.monotonic() - self._connected_at < QUICK_DROP
        self._quick_drops = self._quick_drops + 1 if quick else 0
        if self._quick_drops == QUICK_DROPS_TO_WARN:
            self.stats["client_id_clash"] += 1
            log.error(
                "MQTT ingest %s keeps losing its connection right after connecting: is another "
                "consumer using the same client id? (give each consumer its own --client-id)",
                self.client_id,
            )

    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        self.stats["messages"] += 1
        parts = msg.topic.split("/")
        if len(parts) != 5 or parts[4] != "events" or not parts[2] or not parts[3]:
            self.stats["bad_topic"] += 1
            client.ack(msg.mid, msg.qos)
            return
        inbound = _Inbound(
            parts[2],
            parts[3],
            bytes(msg.payload),
            msg.mid,
            msg.qos,
            dt.datetime.now(dt.UTC),
            self._connection,
        )
        # Blocks only when the worker is far behind; the broker's in-flight window (acks
        # are sent after processing) normally keeps the queue short.
        self._queue.put(inbound)

    # --- the worker thread -------------------------------------------------------------

    def _work(self) -> None:
        while True:
            if self._fall_back.is_set():
                self._fall_back.clear()
                self._fall_back_to_311()
            try:
                first = self._queue.get(timeout=0.2)
            except queue.Empty:
                if self._stopping.is_set():
                    return
                continue
            batch = [first]
            while len(batch) < self.batch_size:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            self._process_until_stored(batch)

    def _process_until_stored(self, batch: list[_Inbound]) -> None:
        """Process a batch; while the database is away, wait and try again.

        A message is acknowledged once its events are committed (or refused). When the
        consumer stops before the database is back, the rest stay unacknowledged and the
        broker delivers them again to the next session.
        """
        prepared = [_Prepared(m, self._prepare(m)) for m in batch]
        for attempt in itertools.count():
            try:
                self.process_prepared(prepared)
            except _DatabaseAway as exc:
                self._ack(p.message for p in prepared if p.settled)
                prepared = [p for p in prepared if not p.settled]
                self.stats["retries"] += 1
                delay = RETRY_DELAYS[min(attempt, len(RETRY_DELAYS) - 1)]
                log.warning(
                    "MQTT ingest: database unreachable (%s); %d messages wait, retry in %.1f s",
                    exc.__cause__,
                    len(prepared),
                    delay,
                )
                if self._stopping.wait(delay):
                    return
                continue
            except Exception:  # the consumer must outlive any one batch
                self.stats["errors"] += 1
                log.exception("MQTT batch of %d messages failed", len(prepared))
            self._ack(p.message for p in prepared)
            return

    def _prepare(self, message: _Inbound) -> list[Outcome]:
        """:func:`prepare`, with a bug in it costing only this message."""
        try:
            return prepare(message)
        except Exception:
            self.stats["errors"] += 1
            log.exception("MQTT message from device %s could not be read", message.device)
            return [Rejection("message could not be read (logged)", device=message.device)]

    def _ack(self, batch: Iterable[_Inbound]) -> None:
        client = self._client
        for message in batch:
            # A message from an earlier connection is redelivered on this one under the same
            # packet id; acknowledging the old copy could release a newer message.
            if message.qos > 0 and client is not None and message.connection == self._connection:
                client.ack(message.mid, message.qos)

    def process(self, batch: Sequence[_Inbound]) -> None:
        """Decode, check and deliver a batch; publish its rejections."""
        self.process_prepared([_Prepared(m, prepare(m)) for m in batch])

    def process_prepared(self, prepared: list[_Prepared]) -> None:
        """Check and deliver decoded messages; publish their rejections.

        The messages of all topic devices go into one transaction (up to ``MAX_DELIVERY``
        events): a commit per device would cost more than the events themselves.
        """
        self.stats["batches"] += 1
        devices = self._lookup({(p.message.community, p.message.device) for p in prepared})
        known: list[_Prepared] = []
        for p in prepared:
            if (p.message.community, p.message.device) in devices:
                known.append(p)
                continue
            self.stats["unknown_device"] += 1
            code = p.message.device
            self._settle(p, [Result("rejected", code, o.id, "unknown device") for o in p.outcomes])
        for chunk in _chunks(known, MAX_DELIVERY):
            self._deliver(chunk)

    def _deliver(self, items: list[_Prepared]) -> None:
        """One transaction for the merged events; per message again if it fails.

        Every event in ``items`` names its topic's device (``prepare`` refused the others)
        and :meth:`_lookup` checked that device against the topic's community, so the
        delivery may speak for any device it names.
        """
        try:
            processed = deliver(self.node, [o for p in items for o in p.outcomes], _SENDER)
        except (sa_exc.OperationalError, sa_exc.InterfaceError) as exc:
            raise _DatabaseAway from exc  # no message's fault: all of them wait
        except Exception:
            if len(items) == 1:
                items[0].settled = True  # refused for good: the consumer moves on
                self.stats["errors"] += 1
                log.exception("MQTT message from device %s failed", items[0].message.device)
                return
            # One message must not spoil the others it was merged with.
            log.warning("merged delivery of %d messages failed; retrying one by one", len(items))
            for p in items:
                self._deliver([p])
            return
        start = 0
        for p in items:
            end = start + len(p.outcomes)
            self._settle(p, processed.results[start:end])
            start = end

    def _settle(self, prepared: _Prepared, results: Sequence[Result]) -> None:
        """Count the results of one message and publish its rejections."""
        prepared.settled = True
        message = prepared.message
        for result in results:
            self.stats[result.status] += 1
            if result.status != "rejected":
                continue
            log.debug("MQTT event %s of %s rejected: %s", result.id, message.device, result.reason)
            body = {
                "id": result.id,
                "reason": result.reason,
                "received_at": message.received_at.isoformat(),
            }
            self.client.publish(
                topic(message.community, message.device, "rejects", root=self.topic_root),
                json.dumps(body, ensure_ascii=False),
                qos=1,
            )

    def _lookup(self, keys: set[tuple[str, str]]) -> dict[tuple[str, str], DeviceRef]:
        """The topic devices that exist in the community their topic names (one query)."""
        codes = {device for _, device in keys}
        try:
            with self.node.unit_of_work() as ctx:
                rows = ctx.session.execute(
                    select(
                        Device.id,
                        Device.code,
                        Device.community_id,
                        Device.kind,
                        Device.house_id,
                        OrgUnit.code,
                    )
                    .join(OrgUnit, OrgUnit.id == Device.community_id)
                    .where(Device.code.in_(codes), OrgUnit.level == Level.COMMUNITY)
                ).all()
        except (sa_exc.OperationalError, sa_exc.InterfaceError) as exc:
            raise _DatabaseAway from exc
        found: dict[tuple[str, str], DeviceRef] = {}
        for id_, code, community_id, kind, house_id, community in rows:
            if (community, code) in keys:
                found[(community, code)] = DeviceRef(id_, code, community_id, kind.value, house_id)
        return found


def _chunks(items: list[_Prepared], limit: int) -> Iterable[list[_Prepared]]:
    """Groups of messages with at most ``limit`` events each (a big message stays whole)."""
    chunk: list[_Prepared] = []
    size = 0
    for p in items:
        if chunk and size + len(p.outcomes) > limit:
            yield chunk
            chunk, size = [], 0
        chunk.append(p)
        size += len(p.outcomes)
    if chunk:
        yield chunk


def send_command(
    node_or_client: Any,
    community: str,
    device: str,
    command: dict[str, Any],
    *,
    topic_root: str = TOPIC_ROOT,
    timeout: float = 10.0,
) -> None:
    """Publish ``command`` (QoS 1) to ``anju/v1/{community}/{device}/commands``.

    Takes a running :class:`MqttIngest`, a connected paho client, or a node (a short
    connection to ``ANJU_MQTT_URL`` is opened for the one command).
    """
    body = json.dumps(command, ensure_ascii=False)
    where = topic(community, device, "commands", root=topic_root)
    if isinstance(node_or_client, MqttIngest):
        node_or_client = node_or_client.client
    if isinstance(node_or_client, mqtt.Client):
        node_or_client.publish(where, body, qos=1).wait_for_publish(timeout)
        return
    url = node_or_client.settings.mqtt_url
    if not url:
        raise RuntimeError("no broker configured: set ANJU_MQTT_URL")
    broker = BrokerUrl.parse(url)
    client = _client(
        broker,
        broker.version or MQTTProtocolVersion.MQTTv311,
        f"anju-cmd-{uuid.uuid4().hex[:12]}",
    )
    client.connect(broker.host, broker.port, keepalive=30)
    client.loop_start()
    try:
        info = client.publish(where, body, qos=1)
        info.wait_for_publish(timeout)
        if not info.is_published():
            raise TimeoutError(f"command to {device} not acknowledged within {timeout} s")
    finally:
        client.disconnect()
        client.loop_stop()
    log.info("command sent to device %s of %s", device, community)
