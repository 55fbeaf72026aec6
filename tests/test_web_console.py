"""Console and API end to end through the ASGI app, on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from anju.registry.models import House
from anju.web.app import create_app
from tests import factories as f
from tests.conftest import ADMIN_PASSWORD
from tests.web_helpers import sign_in


@pytest.fixture
def world(app_node):
    """A committed tree with one house (each test gets its own codes)."""
    with app_node.unit_of_work() as ctx:
        t = f.tree(ctx)
        house = f.house(ctx, t.community, building="9", unit="1", floor=2, room="201")
        return {
            "community_id": t.community.id,
            "house_id": house.id,
            "station_path": t.station.path,
        }


@pytest.fixture
def client(app_node):
    with TestClient(create_app(app_node)) as c:
        yield c


def test_anonymous_is_sent_to_login(client):
    resp = client.get("/people", follow_redirects=False)
    assert resp.status_code == 303
    assert resp.headers["location"].startswith("/login?next=/people")
    assert client.get("/api/v1/people").status_code == 401


def test_wrong_password_is_refused(client):
    token = client.get("/login").cookies.get("anju_login_csrf")
    resp = client.post(
        "/login", data={"username": "admin", "password": "nope", "csrf_token": token}
    )
    assert resp.status_code == 401
    assert "用户名或密码错误" in resp.text


def test_login_without_csrf_is_refused(client):
    client.get("/login")
    resp = client.post("/login", data={"username": "admin", "password": ADMIN_PASSWORD})
    assert resp.status_code == 403


def test_register_person_with_bad_id_names_the_field_then_succeeds(client, world):
    csrf = sign_in(client, "admin", ADMIN_PASSWORD)
    form = {
        "csrf_token": csrf,
        "community_id": str(world["community_id"]),
        "name": "测试人",
        "id_type": "resident_id",
        "id_number": "360426199101010072",
        "phone": "13800138000",
        "category": "registered",
    }
    bad = client.post("/people/new", data=form)
    assert bad.status_code == 422
    assert "校验码错误" in bad.text  # the message under the ID number field, in Chinese
    form["id_number"] = f.resident_id_for("440305", "19850315", 123)
    ok = client.post("/people/new", data=form, follow_redirects=False)
    assert ok.status_code == 303
    detail = client.get(ok.headers["location"])
    assert "测试人" in detail.text
    assert "4403**********" in detail.text
    assert form["id_number"] not in detail.text
    # Search by the full ID number finds the person through the keyed hash.
    found = client.get("/people", params={"q": form["id_number"]})
    assert "测试人" in found.text


def test_edit_house_through_form(client, world, app_node):
    csrf = sign_in(client, "admin", ADMIN_PASSWORD)
    hid = world["house_id"]
    page = client.get(f"/houses/{hid}/edit")
    assert page.status_code == 200
    resp = client.post(
        f"/houses/{hid}/edit",
        data={"csrf_token": csrf, "use": "rented", "area": "88.5", "plate_installed": "on"},
        follow_redirects=False,
    )
    assert resp.status_code == 303
    with app_node.unit_of_work() as ctx:
        house = ctx.session.get(House, hid)
        assert house.use == "rented" and house.area == 88.5 and house.plate_installed


def test_post_without_csrf_changes_nothing(client, world, app_node):
    sign_in(client, "admin", ADMIN_PASSWORD)
    hid = world["house_id"]
    resp = client.post(f"/houses/{hid}/edit", data={"use": "vacant"})
    assert resp.status_code == 403
    with app_node.unit_of_work() as ctx:
        assert ctx.session.get(House, hid).use != "vacant"


def test_api_create_and_validation(client, world):
    csrf = sign_in(client, "admin", ADMIN_PASSWORD)
    headers = {"X-CSRF-Token": csrf}
    bad = client.post(
        "/api/v1/residencies",
        json={
            "person_id": 1,
            "house_id": 99999999,
            "relation": "tenant",
            "start_date": "2026-01-01",
        },
        headers=headers,
    )
    assert bad.status_code == 422
    assert any(e["field"] == "house_id" for e in bad.json()["detail"])
    plate = client.post(
        "/api/v1/vehicles",
        json={"community_id": world["community_id"], "plate": "粤B-1234I"},
        headers=headers,
    )
    assert plate.status_code == 422 and plate.json()["detail"][0]["field"] == "plate"
    made = client.post(
        "/api/v1/vehicles",
        json={"community_id": world["community_id"], "plate": "粤b 12345"},
        headers=headers,
    )
    assert made.status_code == 201, made.text
    assert made.json()["plate"] == "粤B12345" and made.json()["plate_kind"] == "ordinary"
    listed = client.get("/api/v1/vehicles", params={"q": "粤B12345"}).json()
    assert listed["total"] >= 1


def test_dashboard_shows_rates(client, world):
    sign_in(client, "admin", ADMIN_PASSWORD)
    page = client.get("/", params={"community_id": world["community_id"]})
    assert page.status_code == 200
    assert "门牌覆盖率" in page.text
    assert page.headers["content-security-policy"].startswith("default-src 'self'")
    assert page.headers["x-frame-options"] == "DENY"
