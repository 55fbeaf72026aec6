"""MQTT ingest end to end with the real Mosquitto broker, on SQLite and PostgreSQL.

Each module run uses its own topic root and shared-subscription groups, so parallel runs on
one broker never see each other's messages.
"""

from __future__ import annotations

import datetime as dt
import json
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from types import SimpleNamespace
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from sqlalchemy import func, select

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


@pytest.fixture(scope="module")
def ingest(app_node: Any, site: dict[str, Any]) -> Iterator[MqttIngest]:
    if not _broker_listening():
        pytest.skip(f"no MQTT broker listening on {HOST}:{PORT}")
    consumer = MqttIngest(
        app_node, URL, shared_group=f"g{uuid.uuid4().hex[:8]}", topic_root=site["root"]
    )
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
    consumers = [MqttIngest(app_node, URL, shared_group=group, topic_root=root) for _ in range(2)]
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
    consumer = MqttIngest(app_node, f"{URL}?version=3.1.1", topic_root=root)
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
