"""Vendor and carrier pushes over HTTP into the real pipeline (SQLite and PostgreSQL):
the real Hikvision captures, CTWing with its URL token, OneNET with its signature."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import logging
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
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


@pytest.fixture(scope="module")
def pushes(app_node):
    """A terminal with a credential, an NB-IoT smoke detector and a water meter with carrier IDs;
    a node whose settings carry the carrier tokens."""
    with app_node.unit_of_work() as ctx:
        t = f.tree(ctx, "PUSH")
        terminal = registry.devices.create(
            ctx,
            schemas.DeviceCreate(
                community_id=t.community.id,
                code="PUSH-K1T344",
                name="单元门人脸机",
                kind="unit_door",
                vendor="Hikvision",
                model="DS-K1T344MBFWX-E1",
            ),
        )
        registry.devices.create(
            ctx,
            schemas.DeviceCreate(
                community_id=t.community.id,
                code="PUSH-SMOKE",
                name="3栋烟感",
                kind="smoke_detector",
                external_id="868334031234567",
            ),
        )
        registry.devices.create(
            ctx,
            schemas.DeviceCreate(
                community_id=t.community.id,
                code="PUSH-WATER",
                name="水表",
                kind="water_meter",
                external_id="onenet-552211",
            ),
        )
        credential = tokens.issue_device_credential(ctx.session, terminal, dt.datetime.now(dt.UTC))
        terminal_id = terminal.id
    settings = app_node.settings.model_copy(
        update={"ctwing_token": "ct-secret-1", "onenet_token": "on-token-1"}
    )
    node = dataclasses.replace(app_node, settings=settings)
    return {"node": node, "credential": credential, "terminal_id": terminal_id}


@pytest.fixture(scope="module")
def client(pushes):
    with TestClient(create_app(pushes["node"])) as c:
        yield c


def count(node, **where) -> int:
    with node.unit_of_work() as ctx:
        stmt = (
            select(func.count())
            .select_from(StoredEvent)
            .join(Device, Device.id == StoredEvent.device_id)
        )
        for key, value in where.items():
            stmt = (
                stmt.where(getattr(StoredEvent, key) == value)
                if key != "device"
                else stmt.where(Device.code == value)
            )
        return int(ctx.session.scalar(stmt) or 0)


def test_hikvision_history_replay_is_stored_once_and_marked(client, pushes, caplog):
    body = (FIXTURES / "dsk1t344_alertstream_first.raw").read_bytes()
    url = f"/api/v1/ingest/hikvision/{pushes['credential']}"
    with caplog.at_level(logging.INFO, logger="anju.access"):
        first = client.post(url, content=body, headers={"Content-Type": MULTIPART})
    assert first.status_code == 200, first.text
    assert first.json() == {"accepted": 41, "duplicate": 0, "rejected": 0}
    again = client.post(url, content=body, headers={"Content-Type": MULTIPART}).json()
    assert again == {"accepted": 0, "duplicate": 41, "rejected": 0}
    node = pushes["node"]
    assert count(node, device="PUSH-K1T344", history=True) == 41
    # the credential never reaches the access log
    secret_tail = pushes["credential"].rsplit("_", 1)[-1]
    assert "ingest/hikvision/anjud_" in caplog.text and secret_tail not in caplog.text


def test_hikvision_live_capture_maps_faces_and_heartbeats(client, pushes):
    body = (FIXTURES / "dsk1t344_f4_capture.raw").read_bytes()
    resp = client.post(
        f"/api/v1/ingest/hikvision/{pushes['credential']}",
        content=body,
        headers={"Content-Type": MULTIPART},
    )
    assert resp.status_code == 200 and resp.json()["rejected"] == 0
    node = pushes["node"]
    assert count(node, device="PUSH-K1T344", kind="access.face", history=False) >= 2
    assert count(node, device="PUSH-K1T344", kind="device.heartbeat") >= 1
    with node.unit_of_work() as ctx:
        terminal = ctx.session.get(Device, pushes["terminal_id"])
        assert terminal.last_seen_at is not None


def test_hikvision_with_a_wrong_credential_is_refused(client):
    resp = client.post(
        "/api/v1/ingest/hikvision/anjud_1_nottherightone",
        content=b"{}",
        headers={"Content-Type": "application/json"},
    )
    assert resp.status_code == 401


def _ctwing_smoke(sn: int) -> dict:
    return {
        "messageType": "dataReport",
        "tenantId": "2000",
        "productId": "15000",
        "deviceId": "a1b2c3",
        "IMEI": "868334031234567",
        "timestamp": int(time.time() * 1000),
        "protocol": "lwm2m",
        "upPacketSN": sn,
        "upDataSN": 1,
        "serviceId": "notification",
        "payload": {
            "serviceId": "notification",
            "serviceData": {"Alarm_Status": 1, "Battery_Level": 64},
        },
    }


def test_ctwing_push_needs_its_token_and_dedupes(client, pushes):
    assert client.post("/api/v1/ingest/ctwing", json=_ctwing_smoke(1)).status_code == 401
    url = "/api/v1/ingest/ctwing?token=ct-secret-1"
    push = _ctwing_smoke(7)
    assert client.post(url, json=push).json()["accepted"] == 1
    assert client.post(url, json=push).json()["duplicate"] == 1  # CTWing retries the same message
    unknown = dict(_ctwing_smoke(8), deviceId="zzz", IMEI="000000000000000")
    assert client.post(url, json=unknown).json()["rejected"] == 1
    assert count(pushes["node"], device="PUSH-SMOKE", kind="fire.smoke") == 1
    with pushes["node"].unit_of_work() as ctx:
        smoke = ctx.session.scalar(select(Device).where(Device.code == "PUSH-SMOKE"))
        assert smoke.battery == 64


def test_onenet_url_check_and_signed_push(client, pushes):
    msg, nonce = "verify-me-123", "abcdefgh"
    sig = onenet_signature("on-token-1", nonce, msg)
    ok = client.get("/api/v1/ingest/onenet", params={"msg": msg, "nonce": nonce, "signature": sig})
    assert ok.status_code == 200 and ok.text == msg
    bad = client.get(
        "/api/v1/ingest/onenet", params={"msg": msg, "nonce": nonce, "signature": "x" + sig}
    )
    assert bad.status_code == 401
    point = {
        "type": 1,
        "dev_id": "onenet-552211",
        "ds_id": "water",
        "at": int(time.time() * 1000),
        "value": 123.4,
    }
    text = json.dumps(point, separators=(",", ":"), ensure_ascii=False)
    body = {
        "msg": point,
        "nonce": "n0nce123",
        "msg_signature": onenet_signature("on-token-1", "n0nce123", text),
    }
    resp = client.post("/api/v1/ingest/onenet", json=body)
    assert resp.status_code == 200 and resp.json()["accepted"] == 1, resp.text
    forged = dict(body, msg_signature=onenet_signature("wrong", "n0nce123", text))
    assert client.post("/api/v1/ingest/onenet", json=forged).status_code == 401
    assert count(pushes["node"], device="PUSH-WATER", kind="meter.water") == 1
