"""Console pages for events on SQLite and PostgreSQL: search with filters and Excel export,
trajectories, the device page's health and test event, and who may open them."""

from __future__ import annotations

import datetime as dt
import io
import json
import secrets

import openpyxl
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from anju.auth import service as auth_service
from anju.auth import tokens
from anju.devices.health import DeviceState, expected_interval, state
from anju.devices.models import Device, DeviceKind
from anju.events.models import StoredEvent
from anju.registry import schemas
from anju.registry import service as registry
from anju.web.app import create_app
from tests import factories as f
from tests.conftest import ADMIN_PASSWORD
from tests.web_helpers import sign_in

NOW = dt.datetime.now(dt.UTC).replace(microsecond=0)
GUARD_PASSWORD = "guard-password-for-tests-" + secrets.token_hex(4)


@pytest.fixture(scope="module")
def site(app_node):
    """A community with a gate and a barrier, a resident with a car, and a guard account."""
    with app_node.unit_of_work() as ctx:
        t = f.tree(ctx, "EC")
        person = registry.people.create(
            ctx,
            schemas.PersonCreate(
                community_id=t.community.id,
                name="轨迹人",
                id_number=f.resident_id_for("110101", "19800101", 321),
            ),
        )
        car = registry.vehicles.create(
            ctx,
            schemas.VehicleCreate(
                community_id=t.community.id, plate="粤B12345", owner_id=person.id
            ),
        )
        gate = registry.devices.create(
            ctx,
            schemas.DeviceCreate(
                community_id=t.community.id, code="EC-GATE", name="北门人行", kind="face_gate"
            ),
        )
        barrier = registry.devices.create(
            ctx,
            schemas.DeviceCreate(
                community_id=t.community.id, code="EC-BAR", name="北门道闸", kind="barrier"
            ),
        )
        auth_service.create_user(
            ctx.session,
            username="ec-guard",
            display_name="门岗",
            password=GUARD_PASSWORD,
            role_code="guard",
            org_unit_id=t.community.id,
        )
        return {
            "community_id": t.community.id,
            "community": t.community.name,
            "person_id": person.id,
            "vehicle_id": car.id,
            "gate": gate.id,
            "barrier": barrier.id,
            "gate_secret": tokens.issue_device_credential(ctx.session, gate, NOW),
            "barrier_secret": tokens.issue_device_credential(ctx.session, barrier, NOW),
        }


def post(client, secret, body):
    resp = client.post(
        "/api/v1/events",
        content=json.dumps(body),
        headers={"Authorization": f"Bearer {secret}", "Content-Type": "application/json"},
    )
    assert resp.status_code == 200, resp.text
    return resp.json()


@pytest.fixture(scope="module")
def admin(app_node, site):
    """An admin's client, after the devices have delivered a few events."""
    with TestClient(create_app(app_node)) as client:
        at = [(NOW - dt.timedelta(hours=h)).isoformat() for h in (3, 2, 1)]
        plate = {"type": "plate", "value": "粤B12345"}
        post(
            client,
            site["barrier_secret"],
            [
                {"id": "b-1", "device": "EC-BAR", "kind": "vehicle.passed", "at": at[0],
                 "subject": plate, "direction": "in"},
                {"id": "b-2", "device": "EC-BAR", "kind": "vehicle.passed", "at": at[2],
                 "subject": plate, "direction": "out"},
            ],
        )  # fmt: skip
        post(
            client,
            site["gate_secret"],
            [
                {"id": "g-1", "device": "EC-GATE", "kind": "access.card", "at": at[1],
                 "subject": {"type": "card", "value": "0099AA"}, "direction": "in"},
                {"id": "g-2", "device": "EC-GATE", "kind": "no.such.kind", "at": at[1]},
            ],
        )  # fmt: skip
        sign_in(client, "admin", ADMIN_PASSWORD)
        yield client


def test_search_page_filters_and_pages(admin, site):
    page = admin.get("/events", params={"community_id": site["community_id"]})
    assert page.status_code == 200
    assert "3 条事件" in page.text or "3 events" in page.text
    assert "车辆通行" in page.text and "刷卡通行" in page.text and "北门道闸" in page.text
    assert f"/vehicles/{site['vehicle_id']}" in page.text
    assert "轨迹人" in page.text  # the car's owner by name, not "人员 #id"
    only_cards = admin.get(
        "/events", params={"kind": "access.card", "community_id": site["community_id"]}
    )
    assert "0099AA" in only_cards.text and "粤B12345" not in only_cards.text
    by_plate = admin.get(
        "/events",
        params={"subject_type": "plate", "subject_value": "粤b-12345"},
        headers={"HX-Request": "true", "HX-Target": "results"},
    )
    assert "<html" not in by_plate.text  # the HTMX partial
    assert by_plate.text.count("粤B12345") >= 2 and "0099AA" not in by_plate.text
    today = dt.datetime.now(dt.UTC).date()
    future = admin.get("/events", params={"since": (today + dt.timedelta(days=2)).isoformat()})
    assert "0 条事件" in future.text or "0 events" in future.text
    bad = admin.get("/events", params={"kind": "nope"})
    assert bad.status_code == 200 and "alert error" in bad.text


def test_export_is_a_workbook_of_the_search(admin, site):
    resp = admin.get("/events/export", params={"community_id": site["community_id"]})
    assert resp.status_code == 200
    assert resp.headers["content-type"].startswith("application/vnd.openxmlformats")
    sheet = openpyxl.load_workbook(io.BytesIO(resp.content)).active
    rows = list(sheet.iter_rows(values_only=True))
    assert len(rows) == 4  # the header and three events, newest first
    assert rows[1][2] == "EC-BAR" and rows[1][6] == "粤B12345"
    assert rows[2][2] == "EC-GATE" and rows[3][2] == "EC-BAR"
    assert rows[1][0] > rows[2][0] > rows[3][0]


def test_trajectory_lists_sightings_in_order(admin, site):
    resp = admin.get("/trajectory", params={"vehicle_id": site["vehicle_id"]})
    assert resp.status_code == 200
    timeline = resp.text.split('<ol class="timeline">', 1)[1].split("</ol>", 1)[0]
    assert timeline.count("<li>") == 2
    assert timeline.index("· 进") < timeline.index("· 出")  # oldest first
    by_card = admin.get("/trajectory", params={"subject_type": "card", "subject_value": "0099aa"})
    assert "北门人行" in by_card.text and site["community"] in by_card.text
    empty = admin.get("/trajectory")
    assert empty.status_code == 200 and 'class="timeline"' not in empty.text
    person = admin.get(f"/people/{site['person_id']}")
    assert f"/trajectory?person_id={site['person_id']}" in person.text
    vehicle = admin.get(f"/vehicles/{site['vehicle_id']}")
    assert f"/trajectory?vehicle_id={site['vehicle_id']}" in vehicle.text


def test_a_face_sighting_links_to_its_face_match(admin, app_node):
    """A sighting carries no face match (it is read from the index alone): a face kind is
    what links to the event's 人脸比对 page, for a caller who may see face matches."""
    person = 987_654  # events need no registered person
    with app_node.unit_of_work() as ctx:
        t = f.tree(ctx, "FK")
        gate = Device(community_id=t.community.id, code="FK-G", name="人脸门", kind="face_gate")
        ctx.session.add(gate)
        ctx.session.flush()
        ids = []
        for key, kind, hours in (("fk-face", "access.face", 2), ("fk-card", "access.card", 1)):
            at = NOW - dt.timedelta(hours=hours)
            event = StoredEvent(
                community_id=t.community.id, device_id=gate.id, event_key=key, kind=kind, at=at,
                received_at=at, person_id=person, data={}, history=False,
            )  # fmt: skip
            ctx.session.add(event)
            ctx.session.flush()
            ids.append(event.id)
    page = admin.get("/trajectory", params={"person_id": person})
    timeline = page.text.split('<ol class="timeline">', 1)[1].split("</ol>", 1)[0]
    assert timeline.count("<li>") == 2
    assert f'href="/events/{ids[0]}/face"' in timeline
    assert f"/events/{ids[1]}/" not in timeline


def test_device_page_shows_health_and_rejection(admin, site):
    page = admin.get(f"/devices/{site['gate']}")
    assert page.status_code == 200
    # Its last event is two hours old: a gate is expected every 10 minutes.
    assert 'id="health"' in page.text and "state-offline" in page.text and "离线" in page.text
    assert (
        "kind: is not one of the allowed choices"
        in page.text.split('id="last-rejection"', 1)[1][:300]
    )
    assert "发送测试事件" in page.text
    listing = admin.get("/devices", params={"community_id": site["community_id"]})
    assert "state-offline" in listing.text


def test_test_event_goes_through_the_pipeline(admin, site, app_node):
    page = admin.get(f"/devices/{site['barrier']}")
    csrf = page.text.split('name="csrf-token" content="', 1)[1].split('"', 1)[0]
    resp = admin.post(f"/devices/{site['barrier']}/test-event", data={"csrf_token": csrf})
    assert resp.status_code == 200 and 'id="test-result"' in resp.text
    assert "alert ok" in resp.text and "state-online" in resp.text  # the heartbeat is now
    with app_node.unit_of_work() as ctx:
        stored = ctx.session.scalars(
            select(StoredEvent).where(
                StoredEvent.device_id == site["barrier"], StoredEvent.kind == "device.heartbeat"
            )
        ).all()
        assert len(stored) == 1 and stored[0].data == {"test": True}
        device = ctx.session.get(Device, site["barrier"])
        assert device is not None and device.events_accepted == 3


def test_a_guard_searches_but_draws_no_trajectories(app_node, site, admin):
    with TestClient(create_app(app_node)) as guard:
        csrf = sign_in(guard, "ec-guard", GUARD_PASSWORD)
        assert guard.get("/events").status_code == 200
        assert guard.get("/trajectory").status_code == 403
        assert guard.get("/events/export").status_code == 403
        page = guard.get(f"/devices/{site['gate']}")
        assert page.status_code == 200 and "发送测试事件" not in page.text
        refused = guard.post(f"/devices/{site['gate']}/test-event", data={"csrf_token": csrf})
        assert refused.status_code == 403
        person = guard.get(f"/people/{site['person_id']}")
        assert "/trajectory?" not in person.text
        home = guard.get("/", follow_redirects=False)
        assert home.status_code == 303  # a guard has no dashboard


def test_device_states_follow_the_expected_interval():
    assert expected_interval(DeviceKind.FACE_GATE) == dt.timedelta(minutes=10)
    assert expected_interval(DeviceKind.SMOKE_DETECTOR) == dt.timedelta(hours=24)
    assert expected_interval(DeviceKind.WATER_METER) == dt.timedelta(hours=24)
    assert expected_interval(DeviceKind.OTHER) == dt.timedelta(hours=1)
    gate = Device(kind=DeviceKind.FACE_GATE, last_seen_at=None)
    assert state(gate, NOW) is DeviceState.NEVER
    gate.last_seen_at = NOW - dt.timedelta(minutes=19)
    assert state(gate, NOW) is DeviceState.ONLINE
    gate.last_seen_at = NOW - dt.timedelta(minutes=21)
    assert state(gate, NOW) is DeviceState.OFFLINE
    smoke = Device(kind=DeviceKind.SMOKE_DETECTOR, last_seen_at=NOW - dt.timedelta(hours=30))
    assert state(smoke, NOW) is DeviceState.ONLINE


def test_dashboard_lists_the_latest_events_but_not_heartbeats(admin, site):
    # Runs last in this module: the heartbeat would change the counts above.
    recent = (NOW - dt.timedelta(minutes=5)).isoformat()
    post(
        admin,
        site["gate_secret"],
        [{"id": "hb-dash", "device": "EC-GATE", "kind": "device.heartbeat", "at": recent}],
    )
    page = admin.get("/", params={"community_id": site["community_id"]})
    assert page.status_code == 200
    feed = page.text.split("data-live-feed", 1)[1].split("</ul>", 1)[0]
    assert "车辆通行" in feed and "刷卡通行" in feed
    assert "设备心跳" not in feed and "Heartbeat" not in feed
