"""MQTT ingest end to end with the real Mosquitto broker, on SQLite and PostgreSQL.

Each module run uses its own topic root and shared-subscription groups, so parallel runs on
one broker never see each other's messages.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError

from anju.events.adapters.mqtt import BrokerUrl, MqttIngest, _Inbound, prepare, send_command
from anju.events.model import Event, Rejection
from anju.events.models import StoredEvent
from anju.registry import schemas
from anju.registry import service as registry
from tests import factories as f

HOST, PORT = "127.0.0.1", 1883
URL = f"mqtt://{HOST}:{PORT}"
NOW = dt.datetime.now(dt.UTC).replace(microsecond=0)


def _broker_listening() -> bool:
    try:
        with socket.create_connection((HOST, PORT), timeout=1):
            return True
    except OSError:
        return False


needs_broker = pytest.mark.skipif(
    not _broker_listening(), reason=f"no MQTT broker listening on {HOST}:{PORT}"
)


def wait_for(condition: Callable[[], Any], timeout: float = 15.0) -> Any:
    """Poll ``condition`` until it is truthy or the deadline passes (then fail)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"condition not met within {timeout} s")


class Listener:
    """A test client: publishes, and records what arrives on its subscriptions."""

    def __init__(self, *filters: str) -> None:
        self.messages: list[tuple[str, bytes]] = []
        self._lock = threading.Lock()
        self._subscribed = threading.Event()
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=f"anju-test-{uuid.uuid4().hex[:10]}",
            protocol=MQTTProtocolVersion.MQTTv5,
        )
        self.client.on_message = self._on_message
        self.client.on_subscribe = lambda *a: self._subscribed.set()
        self.client.connect(HOST, PORT)
        self.client.loop_start()
        if filters:
            self.client.subscribe([(t, 1) for t in filters])
            assert self._subscribed.wait(10)

    def _on_message(self, client: Any, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        with self._lock:
            self.messages.append((msg.topic, bytes(msg.payload)))

    def publish(self, topic: str, payload: Any) -> None:
        body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        self.client.publish(topic, body, qos=1).wait_for_publish(10)

    def received(self, topic: str) -> list[Any]:
        with self._lock:
            return [json.loads(p) for t, p in self.messages if t == topic]

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def event(ident: str, device: str | None = None, **kw: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"id": ident, "kind": "device.heartbeat", "at": NOW.isoformat()}
    if device is not None:
        body["device"] = device
    body.update(kw)
    return body


@pytest.fixture(scope="module")
def site(app_node: Any) -> dict[str, Any]:
    """Two communities, each with devices; codes unique to this run."""
    n = f"Q{uuid.uuid4().hex[:6].upper()}"
    with app_node.unit_of_work() as ctx:
        here = f.tree(ctx, n)
        there = f.tree(ctx, f"{n}X")

        def device(community: Any, code: str) -> int:
            made = registry.devices.create(
                ctx,
                schemas.DeviceCreate(
                    community_id=community.id, code=code, name=code, kind="smoke_detector"
                ),
            )
            return int(made.id)

        ids = {
            "s1": device(here.community, f"{n}-S1"),
            "s2": device(here.community, f"{n}-S2"),
            "far": device(there.community, f"{n}X-S1"),
        }
        return {
            "community": here.community.code,
            "other_community": there.community.code,
            "s1": f"{n}-S1",
            "s2": f"{n}-S2",
            "far": f"{n}X-S1",
            "ids": ids,
            "root": f"anju-test-{uuid.uuid4().hex[:8]}",
        }


def consumer_for(node: Any, root: str, **kw: Any) -> MqttIngest:
    """A consumer with its own client id and group; its broker session expires soon."""
    kw.setdefault("client_id", f"anju-test-{uuid.uuid4().hex[:10]}")
    kw.setdefault("shared_group", f"g{uuid.uuid4().hex[:8]}")
    kw.setdefault("session_expiry", 60)
    return MqttIngest(node, URL, topic_root=root, **kw)


@pytest.fixture(scope="module")
def ingest(app_node: Any, site: dict[str, Any]) -> Iterator[MqttIngest]:
    if not _broker_listening():
        pytest.skip(f"no MQTT broker listening on {HOST}:{PORT}")
    consumer = consumer_for(app_node, site["root"])
    consumer.start()
    assert consumer.wait_connected(10), "consumer did not subscribe"
    yield consumer
    consumer.stop()


@pytest.fixture(scope="module")
def listener(site: dict[str, Any], ingest: MqttIngest) -> Iterator[Listener]:
    client = Listener(f"{site['root']}/v1/+/+/rejects", f"{site['root']}/v1/+/+/commands")
    yield client
    client.close()


def topic(site: dict[str, Any], device: str, leaf: str = "events", community: str = "") -> str:
    return f"{site['root']}/v1/{community or site['community']}/{device}/{leaf}"


def stored(node: Any, device_id: int, key: str) -> int:
    with node.unit_of_work() as ctx:
        return int(
            ctx.session.scalar(
                select(func.count())
                .select_from(StoredEvent)
                .where(StoredEvent.device_id == device_id, StoredEvent.event_key == key)
            )
            or 0
        )


def rejections(listener: Listener, site: dict[str, Any], device: str, ident: str | None) -> Any:
    return [r for r in listener.received(topic(site, device, "rejects")) if r["id"] == ident]


@needs_broker
def test_good_event_is_stored_once(
    app_node: Any, site: dict[str, Any], ingest: MqttIngest, listener: Listener
) -> None:
    s1 = site["s1"]
    listener.publish(topic(site, s1), event("good-1", s1, data={"battery": 87}))
    wait_for(lambda: stored(app_node, site["ids"]["s1"], "good-1") == 1)
    before = ingest.stats["duplicate"]
    listener.publish(topic(site, s1), event("good-1", s1))  # a redelivery
    wait_for(lambda: ingest.stats["duplicate"] == before + 1)
    assert stored(app_node, site["ids"]["s1"], "good-1") == 1


@needs_broker
def test_event_without_device_takes_the_topics(
    app_node: Any, site: dict[str, Any], ingest: MqttIngest, listener: Listener
) -> None:
    listener.publish(topic(site, site["s2"]), [event("nodev-1"), event("nodev-2")])
    wait_for(lambda: stored(app_node, site["ids"]["s2"], "nodev-2") == 1)
    assert stored(app_node, site["ids"]["s2"], "nodev-1") == 1


@needs_broker
def test_batch_with_a_bad_event_keeps_the_good_ones(
    app_node: Any, site: dict[str, Any], ingest: MqttIngest, listener: Listener
) -> None:
    s1 = site["s1"]
    batch = [event("batch-ok-1", s1), event("batch-bad", s1, kind="no.such"), event("batch-ok-2")]
    listener.publish(topic(site, s1), batch)
    found = wait_for(lambda: rejections(listener, site, s1, "batch-bad"))
    assert "kind" in found[0]["reason"]
    assert dt.datetime.fromisoformat(found[0]["received_at"]).tzinfo is not None
    wait_for(lambda: stored(app_node, site["ids"]["s1"], "batch-ok-2") == 1)
    assert stored(app_node, site["ids"]["s1"], "batch-ok-1") == 1
    assert stored(app_node, site["ids"]["s1"], "batch-bad") == 0


@needs_broker
def test_event_naming_another_device_is_refused(
    app_node: Any, site: dict[str, Any], ingest: MqttIngest, listener: Listener
) -> None:
    s1 = site["s1"]
    listener.publish(topic(site, s1), [event("mine-1", s1), event("theirs-1", site["s2"])])
    found = wait_for(lambda: rejections(listener, site, s1, "theirs-1"))
    assert found[0]["reason"] == "topic names another device"
    wait_for(lambda: stored(app_node, site["ids"]["s1"], "mine-1") == 1)
    assert stored(app_node, site["ids"]["s2"], "theirs-1") == 0


@needs_broker
def test_device_of_another_community_is_unknown(
    app_node: Any, site: dict[str, Any], ingest: MqttIngest, listener: Listener
) -> None:
    far = site["far"]  # registered, but not in the community the topic names
    listener.publish(topic(site, far), event("far-1", far))
    found = wait_for(lambda: rejections(listener, site, far, "far-1"))
    assert found[0]["reason"] == "unknown device"
    assert stored(app_node, site["ids"]["far"], "far-1") == 0


@needs_broker
def test_malformed_input_never_stops_the_consumer(
    app_node: Any, site: dict[str, Any], ingest: MqttIngest, listener: Listener
) -> None:
    s2 = site["s2"]
    listener.publish(topic(site, s2), b"{not json")
    listener.publish(topic(site, s2), b"\xff\xfe\x00garbage")
    listener.publish(topic(site, s2), b"[1, 2]")
    wait_for(lambda: len(rejections(listener, site, s2, None)) >= 4)
    reasons = [r["reason"] for r in rejections(listener, site, s2, None)]
    assert sum(r.startswith("malformed JSON") for r in reasons) == 2
    listener.publish(topic(site, s2), event("after-bad", s2))
    wait_for(lambda: stored(app_node, site["ids"]["s2"], "after-bad") == 1)
    assert ingest.stats["errors"] == 0


@needs_broker
def test_consumers_in_one_group_share_the_messages(app_node: Any, site: dict[str, Any]) -> None:
    root = f"anju-test-{uuid.uuid4().hex[:8]}"
    group = f"g{uuid.uuid4().hex[:8]}"
    consumers = [consumer_for(app_node, root, shared_group=group) for _ in range(2)]
    publisher = Listener()
    try:
        for c in consumers:
            c.start()
            assert c.wait_connected(10)
        where = f"{root}/v1/{site['community']}/{site['s1']}/events"
        count = 40
        for i in range(count):
            publisher.publish(where, event(f"shared-{i}", site["s1"]))
        wait_for(lambda: sum(c.stats["accepted"] for c in consumers) == count)
        assert sum(c.stats["messages"] for c in consumers) == count
        assert sum(c.stats["duplicate"] for c in consumers) == 0
        assert all(c.stats["messages"] > 0 for c in consumers)  # the broker split them
        assert stored(app_node, site["ids"]["s1"], "shared-0") == 1
    finally:
        publisher.close()
        for c in consumers:
            c.stop()


@needs_broker
def test_mqtt_311_consumer_uses_a_plain_subscription(app_node: Any, site: dict[str, Any]) -> None:
    root = f"anju-test-{uuid.uuid4().hex[:8]}"
    consumer = MqttIngest(
        app_node,
        f"{URL}?version=3.1.1",
        topic_root=root,
        client_id=f"anju-test-{uuid.uuid4().hex[:10]}",
        session_expiry=0,
    )
    publisher = Listener()
    try:
        consumer.start()
        assert consumer.wait_connected(10)
        assert consumer.subscription == f"{root}/v1/+/+/events"
        publisher.publish(f"{root}/v1/{site['community']}/{site['s2']}/events", event("v311-1"))
        wait_for(lambda: stored(app_node, site["ids"]["s2"], "v311-1") == 1)
    finally:
        publisher.close()
        consumer.stop()


@needs_broker
def test_send_command_reaches_the_device(
    site: dict[str, Any], ingest: MqttIngest, listener: Listener
) -> None:
    where = topic(site, site["s1"], "commands")
    send_command(ingest, site["community"], site["s1"], {"cmd": "mute"}, topic_root=site["root"])
    wait_for(lambda: listener.received(where) == [{"cmd": "mute"}])
    node_like = SimpleNamespace(settings=SimpleNamespace(mqtt_url=URL))
    send_command(node_like, site["community"], site["s1"], {"cmd": "test"}, topic_root=site["root"])
    wait_for(lambda: {"cmd": "test"} in listener.received(where))


# --- units: no broker, no database -----------------------------------------------------


def _inbound(payload: bytes, device: str = "D1") -> _Inbound:
    return _Inbound("C1", device, payload, 1, 1, NOW)


def test_prepare_checks_items_against_the_topic_device() -> None:
    body = json.dumps([event("a"), event("b", "D2"), event("c", "D1"), "x"]).encode()
    out = prepare(_inbound(body))
    assert isinstance(out[0], Event) and out[0].device == "D1"
    assert isinstance(out[1], Rejection) and out[1].reason == "topic names another device"
    assert isinstance(out[2], Event)
    assert isinstance(out[3], Rejection) and out[3].device == "D1"


def test_prepare_refuses_malformed_json_as_one() -> None:
    (only,) = prepare(_inbound(b"\xff{"))
    assert isinstance(only, Rejection) and only.reason.startswith("malformed JSON")


def test_broker_url() -> None:
    url = BrokerUrl.parse("mqtts://dev%40x:p%3Aw@broker.example:8884?version=3.1.1")
    assert (url.host, url.port, url.tls, url.username, url.password) == (
        "broker.example",
        8884,
        True,
        "dev@x",
        "p:w",
    )
    assert url.version is MQTTProtocolVersion.MQTTv311
    assert BrokerUrl.parse("mqtt://h").port == 1883
    with pytest.raises(ValueError):
        BrokerUrl.parse("http://h")


# --- nothing lost: a broker of our own, configured as docs/devices.md says -----------------


@pytest.fixture(scope="module")
def burst_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A Mosquitto of this module's own, with ``max_queued_messages`` raised for bursts."""
    binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    if not Path(binary).exists():
        pytest.skip("mosquitto is not installed")
    with socket.socket() as s:
        s.bind((HOST, 0))
        port = s.getsockname()[1]
    conf = tmp_path_factory.mktemp("mosquitto") / "mosquitto.conf"
    conf.write_text(
        f"listener {port} {HOST}\nallow_anonymous true\npersistence false\n"
        "max_queued_messages 100000\n"
    )
    broker = subprocess.Popen([binary, "-c", str(conf)], stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection((HOST, port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        yield f"mqtt://{HOST}:{port}"
    finally:
        broker.terminate()
        broker.wait(10)


def publish_many(url: str, where: str, bodies: list[bytes]) -> None:
    """Publish at QoS 1 as fast as the broker takes them, then wait for every PUBACK."""
    broker = BrokerUrl.parse(url)
    client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=MQTTProtocolVersion.MQTTv5)
    client.max_inflight_messages_set(1000)
    client.max_queued_messages_set(0)
    client.connect(broker.host, broker.port)
    client.loop_start()
    try:
        infos = [client.publish(where, body, qos=1) for body in bodies]
        for info in infos:
            info.wait_for_publish(30)
    finally:
        client.disconnect()
        client.loop_stop()


def stored_with_prefix(node: Any, device_id: int, prefix: str) -> int:
    with node.unit_of_work() as ctx:
        return int(
            ctx.session.scalar(
                select(func.count())
                .select_from(StoredEvent)
                .where(StoredEvent.device_id == device_id, StoredEvent.event_key.like(f"{prefix}%"))
            )
            or 0
        )


@needs_broker
def test_messages_published_while_the_consumer_is_away_are_stored(
    app_node: Any, site: dict[str, Any], burst_broker: str
) -> None:
    root = f"anju-test-{uuid.uuid4().hex[:8]}"
    same = {"client_id": f"anju-test-{uuid.uuid4().hex[:10]}", "shared_group": "g-away"}
    first = MqttIngest(app_node, burst_broker, topic_root=root, session_expiry=60, **same)
    first.start()
    assert first.wait_connected(10)
    first.stop()
    count = 1500  # more than Mosquitto's default queue of 1000 for an absent client
    prefix = f"away-{uuid.uuid4().hex[:6]}-"
    bodies = [json.dumps(event(f"{prefix}{i}")).encode() for i in range(count)]
    publish_many(burst_broker, f"{root}/v1/{site['community']}/{site['s1']}/events", bodies)
    again = MqttIngest(app_node, burst_broker, topic_root=root, session_expiry=60, **same)
    again.start()
    try:
        wait_for(lambda: stored_with_prefix(app_node, site["ids"]["s1"], prefix) == count, 60)
        assert again.stats["accepted"] == count
    finally:
        again.stop()


@needs_broker
def test_a_burst_beyond_the_in_flight_window_is_stored_whole(
    app_node: Any, site: dict[str, Any], burst_broker: str
) -> None:
    root = f"anju-test-{uuid.uuid4().hex[:8]}"
    consumer = MqttIngest(
        app_node,
        burst_broker,
        topic_root=root,
        client_id=f"anju-test-{uuid.uuid4().hex[:10]}",
        session_expiry=60,
        queue_size=100,  # an in-flight window of 100 messages
    )
    consumer.start()
    assert consumer.wait_connected(10)
    try:
        count = 3000
        prefix = f"burst-{uuid.uuid4().hex[:6]}-"
        bodies = [json.dumps(event(f"{prefix}{i}")).encode() for i in range(count)]
        publish_many(burst_broker, f"{root}/v1/{site['community']}/{site['s2']}/events", bodies)
        wait_for(lambda: stored_with_prefix(app_node, site["ids"]["s2"], prefix) == count, 90)
        assert consumer.stats["messages"] == count  # none dropped, none twice
    finally:
        consumer.stop()


@needs_broker
def test_unacknowledged_messages_come_back_after_a_crash(
    app_node: Any, site: dict[str, Any], burst_broker: str
) -> None:
    """A consumer that received messages but never committed them (it died) loses nothing."""
    root = f"anju-test-{uuid.uuid4().hex[:8]}"
    same = {"client_id": f"anju-test-{uuid.uuid4().hex[:10]}", "session_expiry": 60}
    dead = MqttIngest(app_node, burst_broker, topic_root=root, **same)
    gate = threading.Event()
    dead.process_prepared = lambda prepared: gate.wait(30)  # type: ignore[method-assign]
    dead.start()
    assert dead.wait_connected(10)
    prefix = f"crash-{uuid.uuid4().hex[:6]}-"
    bodies = [json.dumps(event(f"{prefix}{i}")).encode() for i in range(50)]
    publish_many(burst_broker, f"{root}/v1/{site['community']}/{site['s1']}/events", bodies)
    wait_for(lambda: dead.stats["messages"] == 50)
    # Drop the connection the hard way, as a killed process would: no acks went out.
    dead._stopping.set()
    dead.client.socket().close()  # type: ignore[union-attr]
    dead.client.loop_stop()
    gate.set()
    assert stored_with_prefix(app_node, site["ids"]["s1"], prefix) == 0
    alive = MqttIngest(app_node, burst_broker, topic_root=root, **same)
    alive.start()
    try:
        wait_for(lambda: stored_with_prefix(app_node, site["ids"]["s1"], prefix) == 50, 30)
    finally:
        alive.stop()


class Unreachable:
    """The node, with its database cut off while ``down`` is set (a fault, injected)."""

    def __init__(self, node: Any) -> None:
        self.node = node
        self.down = True

    def __getattr__(self, name: str) -> Any:
        return getattr(self.node, name)

    def unit_of_work(self, *args: Any, **kwargs: Any) -> Any:
        if self.down:
            raise OperationalError("BEGIN", {}, ConnectionRefusedError("database is away"))
        return self.node.unit_of_work(*args, **kwargs)


@needs_broker
def test_database_outage_holds_messages_back_instead_of_losing_them(
    app_node: Any, site: dict[str, Any]
) -> None:
    root = f"anju-test-{uuid.uuid4().hex[:8]}"
    same = {"client_id": f"anju-test-{uuid.uuid4().hex[:10]}", "shared_group": "g-outage"}
    cut_off = Unreachable(app_node)
    waiting = consumer_for(cut_off, root, **same)
    waiting.start()
    assert waiting.wait_connected(10)
    publisher = Listener()
    prefix = f"outage-{uuid.uuid4().hex[:6]}-"
    try:
        for i in range(5):
            publisher.publish(topic({**site, "root": root}, site["s1"]), event(f"{prefix}{i}"))
        wait_for(lambda: waiting.stats["retries"] >= 2)
        assert waiting.stats["errors"] == 0
        waiting.stop()  # stopped while the database is still away: nothing was acknowledged
        assert stored_with_prefix(app_node, site["ids"]["s1"], prefix) == 0
        back = consumer_for(app_node, root, **same)
        back.start()
        try:
            wait_for(lambda: stored_with_prefix(app_node, site["ids"]["s1"], prefix) == 5)
        finally:
            back.stop()
        # and a consumer that sees the database come back carries on by itself
        cut_off.down = True
        resumed = consumer_for(cut_off, root, **same)
        resumed.start()
        assert resumed.wait_connected(10)
        publisher.publish(topic({**site, "root": root}, site["s1"]), event(f"{prefix}late"))
        wait_for(lambda: resumed.stats["retries"] >= 1)
        cut_off.down = False
        wait_for(lambda: stored(app_node, site["ids"]["s1"], f"{prefix}late") == 1)
        resumed.stop()
    finally:
        publisher.close()


@needs_broker
def test_two_consumers_with_one_client_id_are_reported() -> None:
    """They would take the session from each other for ever: the clash is logged, counted."""
    same = f"anju-test-{uuid.uuid4().hex[:10]}"
    root = f"anju-test-{uuid.uuid4().hex[:8]}"
    twins = [
        MqttIngest(None, URL, client_id=same, topic_root=root, session_expiry=10) for _ in range(2)
    ]
    try:
        for c in twins:
            c.start()
        wait_for(lambda: any(c.stats["client_id_clash"] for c in twins), 30)
    finally:
        for c in twins:
            c.stop()
