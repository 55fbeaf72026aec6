"""Events end to end over HTTP on SQLite and PostgreSQL: ingest, idempotency, enrichment,
device health, search, trajectory and the live feed."""

from __future__ import annotations

import datetime as dt
import json
import threading
import time

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from anju.alerts.facts import stored_seen
from anju.auth import tokens
from anju.devices.models import Device
from anju.events.models import AccessCredential, StoredEvent
from anju.registry import schemas
from anju.registry import service as registry
from anju.web.app import create_app
from tests import factories as f
from tests.conftest import ADMIN_PASSWORD
from tests.live_server import live_server
from tests.web_helpers import sign_in

NOW = dt.datetime.now(dt.UTC).replace(microsecond=0)


@pytest.fixture(scope="module")
def site(app_node):
    """A community with a gate, a barrier, a resident with a card and a car, and credentials."""
    with app_node.unit_of_work() as ctx:
        t = f.tree(ctx, "EV")
        house = f.house(ctx, t.community, building="2", unit="1", floor=3, room="301")
        person = registry.people.create(
            ctx,
            schemas.PersonCreate(
                community_id=t.community.id,
                name="通行人",
                id_number=f.resident_id_for("110101", "19850505", 505),
            ),
        )
        registry.residencies.create(
            ctx,
            schemas.ResidencyCreate(
                person_id=person.id,
                house_id=house.id,
                relation="owner",
                start_date=dt.date(2021, 1, 1),
            ),
        )
        car = registry.vehicles.create(
            ctx,
            schemas.VehicleCreate(
                community_id=t.community.id, plate="粤B66666", owner_id=person.id
            ),
        )
        ctx.session.add(
            AccessCredential(
                community_id=t.community.id, person_id=person.id, kind="card", value="00AB12"
            )
        )
        gate = registry.devices.create(
            ctx,
            schemas.DeviceCreate(
                community_id=t.community.id, code="EV-GATE", name="东门人行", kind="face_gate"
            ),
        )
        barrier = registry.devices.create(
            ctx,
            schemas.DeviceCreate(
                community_id=t.community.id, code="EV-BAR", name="东门道闸", kind="barrier"
            ),
        )
        other = f.tree(ctx, "EVX")
        far = registry.devices.create(
            ctx,
            schemas.DeviceCreate(
                community_id=other.community.id, code="EVX-GATE", name="别处", kind="face_gate"
            ),
        )
        gate_secret = tokens.issue_device_credential(ctx.session, gate, NOW)
        barrier_secret = tokens.issue_device_credential(ctx.session, barrier, NOW)
        return {
            "community_id": t.community.id,
            "person_id": person.id,
            "vehicle_id": car.id,
            "house_id": house.id,
            "gate": gate.id,
            "far": far.id,
            "gate_secret": gate_secret,
            "barrier_secret": barrier_secret,
        }


@pytest.fixture(scope="module")
def client(app_node):
    with TestClient(create_app(app_node)) as c:
        yield c


def post(client, secret, body):
    return client.post(
        "/api/v1/events",
        content=json.dumps(body),
        headers={"Authorization": f"Bearer {secret}", "Content-Type": "application/json"},
    )


def event(ident, kind="access.card", device="EV-GATE", **kw):
    return {"id": ident, "device": device, "kind": kind, "at": NOW.isoformat(), **kw}


def test_a_batch_is_judged_event_by_event(client, site, app_node):
    body = [
        event("c-1", subject={"type": "card", "value": "00 ab 12"}, direction="in"),
        event("c-2", kind="no.such.kind"),
        event("c-3", at="2099-01-01T00:00:00+08:00"),
        event("c-4", device="EVX-GATE"),  # another device's code with this credential
        event("c-1", subject={"type": "card", "value": "00AB12"}),  # same id again
        "not an object",
        event("c-5", kind="device.heartbeat", data={"battery": 76}),
    ]
    resp = post(client, site["gate_secret"], body)
    assert resp.status_code == 200, resp.text
    answer = resp.json()
    assert [r["status"] for r in answer["results"]] == [
        "accepted",
        "rejected",
        "rejected",
        "rejected",
        "duplicate",
        "rejected",
        "accepted",
    ]
    reasons = [r["reason"] for r in answer["results"]]
    assert reasons[1].startswith("kind:") and "future" in reasons[2]
    assert reasons[3] == "unknown device" and reasons[5] == "an event must be a JSON object"
    # Delivered again: nothing new is stored.
    again = post(client, site["gate_secret"], body).json()
    assert again["accepted"] == 0 and again["duplicate"] == 3
    with app_node.unit_of_work() as ctx:
        stored = ctx.session.scalar(select(StoredEvent).where(StoredEvent.event_key == "c-1"))
        assert stored.subject_value == "00AB12" and stored.person_id == site["person_id"]
        assert stored.house_id == site["house_id"] and stored.direction == "in"
        gate = ctx.session.get(Device, site["gate"])
        assert gate.events_accepted == 2 and gate.battery == 76
        assert gate.events_rejected == 4 and gate.last_rejection  # bad kind + future, twice
        far = ctx.session.get(Device, site["far"])
        assert far.events_rejected == 0  # not counted against a device the sender may not use


def test_a_redelivery_mixed_with_new_events_stores_the_new_ones(client, site, app_node):
    first = [event(f"mix-{i}", kind="door.opened") for i in range(3)]
    assert post(client, site["gate_secret"], first).json()["accepted"] == 3
    # A device resends its buffer with two new events behind the stored ones.
    again = [*first, event("mix-3", kind="door.closed"), event("mix-4", kind="door.opened")]
    answer = post(client, site["gate_secret"], again).json()
    assert [r["status"] for r in answer["results"]] == ["duplicate"] * 3 + ["accepted"] * 2
    with app_node.unit_of_work() as ctx:
        keys = ctx.session.scalars(
            select(StoredEvent.event_key).where(StoredEvent.event_key.like("mix-%"))
        ).all()
        assert sorted(keys) == [f"mix-{i}" for i in range(5)]


def test_malformed_json_is_refused_and_counted(client, site, app_node):
    with app_node.unit_of_work() as ctx:
        before = ctx.session.get(Device, site["gate"]).events_rejected
    resp = client.post(
        "/api/v1/events",
        content=b'{"device": "EV-GATE", "kind"',
        headers={"Authorization": f"Bearer {site['gate_secret']}"},
    )
    assert resp.status_code == 400 and "malformed JSON" in resp.json()["detail"]
    with app_node.unit_of_work() as ctx:
        gate = ctx.session.get(Device, site["gate"])
        assert gate.events_rejected == before + 1 and "malformed JSON" in gate.last_rejection


def test_wrong_or_missing_credential_is_refused(client, site):
    assert post(client, "anjud_1_wrong", [event("z")]).status_code == 401
    assert client.post("/api/v1/events", json=[event("z")]).status_code == 401


def test_concurrent_duplicate_deliveries_store_each_event_once(app_node, site):
    body = [event(f"dup-{i}", kind="door.opened") for i in range(40)]
    app = create_app(app_node)
    answers = []

    def deliver():
        with TestClient(app) as c:
            answers.append(post(c, site["gate_secret"], body).json())

    threads = [threading.Thread(target=deliver) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(a["accepted"] for a in answers) == 40
    assert sum(a["duplicate"] for a in answers) == 120
    with app_node.unit_of_work() as ctx:
        stored = ctx.session.scalar(
            select(func.count()).select_from(StoredEvent).where(StoredEvent.event_key.like("dup-%"))
        )
        assert stored == 40


def test_plates_link_vehicles_and_trajectory_orders_sightings(client, site):
    passes = [
        event(
            f"p-{i}",
            kind="vehicle.passed",
            device="EV-BAR",
            subject={"type": "plate", "value": "粤b·66666"},
            direction="in" if i % 2 == 0 else "out",
            at=(NOW - dt.timedelta(hours=5 - i)).isoformat(),
        )
        for i in range(4)
    ]
    assert post(client, site["barrier_secret"], passes).json()["accepted"] == 4
    sign_in(client, "admin", ADMIN_PASSWORD)
    found = client.get(
        "/api/v1/trajectory", params={"subject_type": "plate", "subject_value": "粤B-66666"}
    ).json()
    sightings = found["sightings"]
    assert [s["direction"] for s in sightings] == ["in", "out", "in", "out"]
    assert [s["at"] for s in sightings] == sorted(s["at"] for s in sightings)
    assert all(
        s["subject"] == {"type": "plate", "value": "粤B66666"} and s["device_name"] == "东门道闸"
        for s in sightings
    )
    # A sighting is lean: the event's data, value and image are not in it.
    assert all(set(s) >= {"id", "kind", "at", "community", "device"} for s in sightings)
    assert not any({"data", "value", "image", "event_id"} & set(s) for s in sightings)
    by_vehicle = client.get("/api/v1/trajectory", params={"vehicle_id": site["vehicle_id"]})
    assert [s["id"] for s in by_vehicle.json()["sightings"]] == [s["id"] for s in sightings]
    by_person = client.get("/api/v1/trajectory", params={"person_id": site["person_id"]}).json()[
        "sightings"
    ]
    assert {s["kind"] for s in by_person} >= {"access.card", "vehicle.passed"}
    search = client.get(
        "/api/v1/events", params={"kind": "vehicle.passed", "community_id": site["community_id"]}
    ).json()
    assert search["total"] == 4 and search["items"][0]["event_id"] == "p-3"  # newest first
    assert [e["id"] for e in search["items"][::-1]] == [s["id"] for s in sightings]
    bad = client.get("/api/v1/events", params={"kind": "nope"})
    assert bad.status_code == 422 and bad.json()["detail"][0]["field"] == "kind"


def test_a_large_batch_links_the_few_known_subjects_among_many(client, site, app_node):
    """The enricher looks up a batch's cards, codes and plates in one go, whatever their
    number or characters: only the registered ones link, each to its own person and car."""
    code = "q'\"\\码,]"  # a QR code keeps what a JSON or SQL literal would have to escape
    with app_node.unit_of_work() as ctx:
        ctx.session.add(
            AccessCredential(
                community_id=site["community_id"], person_id=site["person_id"], kind="qr",
                value=code,
            )
        )  # fmt: skip
    subjects = [("card", f"C{n:05X}") for n in range(240)] + [("card", "00AB12")]
    subjects += [("qr", "q'"), ("qr", "码"), ("qr", code[:-1]), ("qr", code)]
    gate = [
        event(f"many-g-{i}", subject={"type": t, "value": v}) for i, (t, v) in enumerate(subjects)
    ]
    plates = [f"粤B{n:05d}" for n in range(200)] + ["粤B66666"]
    barrier = [
        event(f"many-b-{i}", kind="vehicle.passed", device="EV-BAR",
              subject={"type": "plate", "value": v})
        for i, v in enumerate(plates)
    ]  # fmt: skip
    assert post(client, site["gate_secret"], gate).json()["accepted"] == len(gate)
    assert post(client, site["barrier_secret"], barrier).json()["accepted"] == len(barrier)
    with app_node.unit_of_work() as ctx:
        linked = ctx.session.execute(
            select(StoredEvent.event_key, StoredEvent.person_id, StoredEvent.vehicle_id).where(
                StoredEvent.event_key.like("many-%"), StoredEvent.person_id.is_not(None)
            )
        ).all()
    person, car = site["person_id"], site["vehicle_id"]
    assert sorted(linked) == [
        (f"many-b-{len(plates) - 1}", person, car),
        ("many-g-240", person, None),  # the card
        (f"many-g-{len(subjects) - 1}", person, None),  # the code
    ]


def test_data_comes_back_as_sent(client, site, app_node):
    """Search and the alert models read an event's data as it was sent: an integer beyond
    64 bits (which orjson alone would read as a float) included."""
    data = {
        "big": 2**70 + 1,
        "neg": -(2**65) - 3,
        "serial": "12345678901234567890123",
        "ratio": 1.5,
        "text": "码",
        "list": [1, None, True],
    }
    sent = event("data-1", subject={"type": "card", "value": "00AB12"}, data=data)
    assert post(client, site["gate_secret"], [sent]).json()["accepted"] == 1
    sign_in(client, "admin", ADMIN_PASSWORD)
    found = client.get("/api/v1/events", params={"device": "EV-GATE", "kind": "access.card"})
    items = [e for e in found.json()["items"] if e["event_id"] == "data-1"]
    assert [e["data"] for e in items] == [data]
    with app_node.sessions() as session:
        seen = stored_seen(session, StoredEvent.event_key == "data-1", 10)
    assert [e.data for e in seen] == [data]


def test_live_feed_streams_new_events_in_scope(app_node, site):
    with live_server(app_node) as base, httpx.Client(base_url=base, timeout=10) as web:
        page = web.get("/login")
        token = page.cookies.get("anju_login_csrf")
        web.post(
            "/login", data={"username": "admin", "password": ADMIN_PASSWORD, "csrf_token": token}
        )
        # Over a real server the sign-in's commit may trail its redirect: wait for the session.
        for _ in range(50):
            if web.get("/api/v1/events", params={"size": 1}).status_code == 200:
                break
            time.sleep(0.1)
        got: list[dict] = []
        ready = threading.Event()

        def listen():
            with web.stream("GET", "/api/v1/events/live") as stream:
                ready.set()
                for line in stream.iter_lines():
                    if line.startswith("data: "):
                        got.append(json.loads(line[6:]))
                        return

        listener = threading.Thread(target=listen)
        listener.start()
        ready.wait(5)
        # The subscription exists once the stream's first line went out, which on a busy
        # machine may take a while: the device sends again until the listener has one.
        with httpx.Client(base_url=base) as device:
            for n in range(40):
                device.post(
                    "/api/v1/events",
                    # A heartbeat is stored but not news: the feed's first item is the door.
                    json=[
                        event(f"live-{n}-0", kind="device.heartbeat"),
                        event(f"live-{n}-1", kind="door.opened"),
                    ],
                    headers={"Authorization": f"Bearer {site['gate_secret']}"},
                )
                listener.join(0.5)
                if got:
                    break
        listener.join(10)
        assert got and got[0]["kind"] == "door.opened" and got[0]["device"] == "EV-GATE"
        assert got[0]["device_name"] == "东门人行"


def test_resident_sees_their_own_passages(app_node, site):
    from anju.auth import service as auth_service

    with app_node.unit_of_work() as ctx:
        auth_service.create_user(
            ctx.session,
            username="ev-resident",
            display_name="通行人",
            password="resident-pass-1",
            role_code="resident",
            org_unit_id=site["community_id"],
            person_id=site["person_id"],
        )
    with TestClient(create_app(app_node)) as web:
        card = event("me-1", subject={"type": "card", "value": "00AB12"}, direction="in")
        assert post(web, site["gate_secret"], [card]).status_code == 200
        sign_in(web, "ev-resident", "resident-pass-1")
        page = web.get("/me")
        assert page.status_code == 200
        assert "东门人行" in page.text  # the gate they passed, from their card event
