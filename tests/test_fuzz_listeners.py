"""HTTP-level fuzzing of the listeners (hypothesis), through the real app on both databases.

Arbitrary bytes, arbitrary JSON and mutated real payloads (the Hikvision captures, the
CTWing/OneNET and wire examples) go to ``POST /api/v1/events``,
``/api/v1/ingest/hikvision/{credential}``, ``/api/v1/ingest/ctwing`` and
``/api/v1/ingest/onenet``. Whatever arrives: never a 5xx; a refusal says why; and a valid
event sent in the same batch as garbage is still stored.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import itertools
import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from anju.auth import tokens
from anju.devices.models import Device
from anju.events.adapters.nbiot import onenet_signature
from anju.events.models import StoredEvent
from anju.registry import schemas
from anju.registry import service as registry
from anju.web.app import create_app
from tests import factories as f

FIXTURES = Path(__file__).parent / "fixtures" / "hikvision"
MULTIPART = "multipart/mixed; boundary=MIME_boundary"
CAPTURES = [p.read_bytes() for p in sorted(FIXTURES.glob("*.raw"))]
CT_TOKEN, ON_TOKEN = "ct-fuzz-1", "on-fuzz-1"
POINT_TIMES = itertools.count(int(time.time() * 1000) - 10_000_000, 1000)  # unique ids

FUZZ = settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=12), inner),
    max_leaves=20,
)
# Objects with the wire format's own keys, so the fuzzing reaches past "not an object".
WIRE_KEYS = ["id", "device", "kind", "at", "subject", "direction", "value", "data", "image"]
wire_like = st.dictionaries(st.sampled_from(WIRE_KEYS), json_values, max_size=9)


@dataclasses.dataclass
class Site:
    client: TestClient
    node: Any
    gate: str  # device code
    gate_id: int
    gate_secret: str
    terminal_secret: str


@pytest.fixture(scope="module")
def site(app_node: Any) -> Iterator[Site]:
    n = f"FZ{uuid.uuid4().hex[:5].upper()}"
    now = dt.datetime.now(dt.UTC)
    with app_node.unit_of_work() as ctx:
        t = f.tree(ctx, n)

        def device(code: str, kind: str, **kw: Any) -> Any:
            return registry.devices.create(
                ctx,
                schemas.DeviceCreate(
                    community_id=t.community.id, code=code, name=code, kind=kind, **kw
                ),
            )

        gate = device(f"{n}-GATE", "face_gate")
        terminal = device(f"{n}-K1T", "unit_door", vendor="Hikvision")
        device(f"{n}-SMOKE", "smoke_detector", external_id="868334031234567")
        device(f"{n}-WATER", "water_meter", external_id=f"onenet-{n}")
        gate_secret = tokens.issue_device_credential(ctx.session, gate, now)
        terminal_secret = tokens.issue_device_credential(ctx.session, terminal, now)
        gate_code, gate_id = gate.code, gate.id
    settings_ = app_node.settings.model_copy(
        update={"ctwing_token": CT_TOKEN, "onenet_token": ON_TOKEN}
    )
    node = dataclasses.replace(app_node, settings=settings_)
    with TestClient(create_app(node), raise_server_exceptions=False) as client:
        yield Site(client, node, gate_code, gate_id, gate_secret, terminal_secret)


def post_events(site: Site, body: bytes) -> Any:
    return site.client.post(
        "/api/v1/events",
        content=body,
        headers={"Authorization": f"Bearer {site.gate_secret}", "Content-Type": "application/json"},
    )


def post_hikvision(site: Site, body: bytes, content_type: str = MULTIPART) -> Any:
    return site.client.post(
        f"/api/v1/ingest/hikvision/{site.terminal_secret}",
        content=body,
        headers={"Content-Type": content_type},
    )


def post_ctwing(site: Site, body: bytes) -> Any:
    return site.client.post(
        f"/api/v1/ingest/ctwing?token={CT_TOKEN}",
        content=body,
        headers={"Content-Type": "application/json"},
    )


def post_onenet(site: Site, body: bytes) -> Any:
    return site.client.post(
        "/api/v1/ingest/onenet", content=body, headers={"Content-Type": "application/json"}
    )


def signed_onenet(msg: Any, nonce: str = "fuzz0001") -> bytes:
    """A OneNET push whose signature holds, so the fuzzed ``msg`` reaches the parser."""
    text = json.dumps(msg, separators=(",", ":"), ensure_ascii=False)
    body = {"msg": msg, "nonce": nonce, "msg_signature": onenet_signature(ON_TOKEN, nonce, text)}
    return json.dumps(body, ensure_ascii=False).encode()


def assert_clear(resp: Any) -> None:
    """Never a 5xx; a refusal names its reason; an answer counts or lists every event."""
    assert resp.status_code < 500, resp.text[:500]
    body = resp.json()
    if resp.status_code >= 400:
        assert isinstance(body.get("detail"), str | list) and body["detail"], body
        return
    assert resp.status_code == 200
    assert {"accepted", "duplicate", "rejected"} <= set(body)
    for result in body.get("results", []):
        assert result["status"] in ("accepted", "duplicate", "rejected")
        if result["status"] == "rejected":
            assert result["reason"], result


def now_iso() -> str:
    return dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat()


def valid_event(site: Site) -> dict[str, Any]:
    return {
        "id": f"fz-{uuid.uuid4().hex[:16]}",
        "device": site.gate,
        "kind": "access.card",
        "at": now_iso(),
        "subject": {"type": "card", "value": "00A1B2C3"},
        "direction": "in",
    }


def stored(site: Site, key: str) -> int:
    with site.node.unit_of_work() as ctx:
        return int(
            ctx.session.scalar(
                select(func.count())
                .select_from(StoredEvent)
                .where(StoredEvent.device_id == site.gate_id, StoredEvent.event_key == key)
            )
            or 0
        )


def ctwing_smoke() -> dict[str, Any]:
    return {
        "messageType": "dataReport",
        "tenantId": "2000",
        "productId": "15000",
        "deviceId": "fz-device",
        "IMEI": "868334031234567",
        "timestamp": int(time.time() * 1000),
        "protocol": "lwm2m",
        "upPacketSN": 3,
        "upDataSN": 1,
        "serviceId": "notification",
        "payload": {"serviceId": "notification", "serviceData": {"Alarm_Status": 1}},
    }


def onenet_point() -> dict[str, Any]:
    return {"type": 1, "dev_id": "onenet-x", "ds_id": "water", "at": 1, "value": 1.5}


@st.composite
def mutated_bytes(draw: st.DrawFn, original: bytes) -> bytes:
    """``original`` truncated, with bytes flipped, cut out or inserted."""
    data = bytearray(original)
    for _ in range(draw(st.integers(1, 6))):
        if not data:
            break
        at = draw(st.integers(0, len(data) - 1))
        how = draw(st.sampled_from(["flip", "cut", "insert", "truncate"]))
        if how == "flip":
            data[at] = draw(st.integers(0, 255))
        elif how == "cut":
            del data[at : at + draw(st.integers(1, 64))]
        elif how == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=16))
        else:
            del data[at:]
    return bytes(data)


@st.composite
def mutated_json(draw: st.DrawFn, original: Any) -> Any:
    """``original`` with one value somewhere replaced by arbitrary JSON (or removed)."""
    if isinstance(original, dict) and original and draw(st.booleans()):
        key = draw(st.sampled_from(sorted(original)))
        copy = dict(original)
        if draw(st.booleans()):
            copy[key] = draw(mutated_json(original[key]))
        elif draw(st.booleans()):
            copy[key] = draw(json_values)
        else:
            del copy[key]
        return copy
    if isinstance(original, list) and original and draw(st.booleans()):
        at = draw(st.integers(0, len(original) - 1))
        return [*original[:at], draw(mutated_json(original[at])), *original[at + 1 :]]
    return draw(json_values)


# --- arbitrary bytes -------------------------------------------------------------------------


@FUZZ
@given(body=st.binary(max_size=512))
def test_arbitrary_bytes_are_refused_clearly(site: Site, body: bytes) -> None:
    for post in (post_events, post_hikvision, post_ctwing, post_onenet):
        assert_clear(post(site, body))


content_types = st.one_of(
    st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=60),
    st.builds(
        "{}; boundary={}".format,
        st.sampled_from(["multipart/mixed", "multipart/form-data", "application/json"]),
        st.text(st.characters(min_codepoint=33, max_codepoint=126), max_size=20),
    ),
)


@FUZZ
@given(data=st.data(), content_type=content_types)
def test_hikvision_with_any_content_type(
    site: Site, data: st.DataObject, content_type: str
) -> None:
    body = data.draw(st.binary(max_size=256) | mutated_bytes(CAPTURES[0][:4000]))
    assert_clear(post_hikvision(site, body, content_type.strip() or "application/octet-stream"))


# --- arbitrary JSON --------------------------------------------------------------------------


@FUZZ
@given(payload=json_values | st.lists(wire_like, max_size=5) | wire_like)
def test_arbitrary_json_is_answered_per_event(site: Site, payload: Any) -> None:
    body = json.dumps(payload).encode()
    assert_clear(post_events(site, body))
    assert_clear(post_ctwing(site, body))
    assert_clear(post_onenet(site, body))
    assert_clear(post_onenet(site, signed_onenet(payload)))


# --- mutated real payloads -------------------------------------------------------------------


@FUZZ
@given(data=st.data())
def test_mutated_hikvision_captures(site: Site, data: st.DataObject) -> None:
    capture = data.draw(st.sampled_from(CAPTURES))
    assert_clear(post_hikvision(site, data.draw(mutated_bytes(capture))))


@FUZZ
@given(data=st.data())
def test_mutated_carrier_pushes(site: Site, data: st.DataObject) -> None:
    push = data.draw(mutated_json(ctwing_smoke()))
    assert_clear(post_ctwing(site, json.dumps(push).encode()))
    raw = data.draw(mutated_bytes(json.dumps(ctwing_smoke()).encode()))
    assert_clear(post_ctwing(site, raw))
    assert_clear(post_onenet(site, signed_onenet(data.draw(mutated_json(onenet_point())))))
    assert_clear(post_onenet(site, data.draw(mutated_bytes(signed_onenet(onenet_point())))))


@FUZZ
@given(data=st.data())
def test_mutated_wire_events(site: Site, data: st.DataObject) -> None:
    event = data.draw(mutated_json(valid_event(site)))
    assert_clear(post_events(site, json.dumps(event).encode()))
    raw = data.draw(mutated_bytes(json.dumps([valid_event(site)]).encode()))
    assert_clear(post_events(site, raw))


# --- a valid event beside garbage is stored ---------------------------------------------------


@FUZZ
@given(
    garbage=st.lists(json_values | wire_like, min_size=1, max_size=6),
    at=st.integers(min_value=0, max_value=6),
)
def test_valid_event_beside_garbage_is_stored(site: Site, garbage: list[Any], at: int) -> None:
    good = valid_event(site)
    batch = [*garbage[:at], good, *garbage[at:]]
    resp = post_events(site, json.dumps(batch).encode())
    assert_clear(resp)
    results = resp.json()["results"]
    assert len(results) == len(batch)
    mine = results[min(at, len(garbage))]
    assert (mine["status"], mine["id"]) == ("accepted", good["id"]), results
    assert stored(site, good["id"]) == 1


@FUZZ
@given(garbage=st.lists(json_values, min_size=1, max_size=4))
def test_valid_onenet_point_beside_garbage_is_stored(site: Site, garbage: list[Any]) -> None:
    with site.node.unit_of_work() as ctx:
        water = ctx.session.scalar(select(Device).where(Device.code.like("%-WATER")))
        dev_id = water.external_id
    point = {
        "type": 1,
        "dev_id": dev_id,
        "ds_id": "water",
        "at": next(POINT_TIMES),
        "value": float(uuid.uuid4().int % 1000),
    }
    resp = post_onenet(site, signed_onenet([*garbage, point]))
    assert_clear(resp)
    assert resp.json()["accepted"] == 1, resp.json()
