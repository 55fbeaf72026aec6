"""Scope on both databases: each role reads only its subtree; a resident only their household."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from anju.web.app import create_app
from anju.web.deps import SESSION_COOKIE
from tests import access_world


@pytest.fixture(scope="module")
def world(app_node):
    return access_world.build(app_node, prefix="S")


@pytest.fixture(scope="module")
def app(app_node):
    return create_app(app_node)


def _client(app, world, who):
    return TestClient(
        app, cookies={SESSION_COOKIE: world.accounts[who].token}, follow_redirects=False
    )


def _communities(world, *tags):
    return {world.units[t].id for t in tags}


# caller → the communities whose records it must see (exactly)
SEES = {
    "admin": ("A1", "A2", "B1"),
    "city_analyst": ("A1", "A2", "B1"),
    "district_analyst": ("A1", "A2"),
    "station_analyst": ("A1", "A2"),
    "officer": ("A1", "A2"),
    "outsider": ("B1",),
    "grid_worker": ("A1",),
    "property_manager": ("A1",),
    "property_staff": ("A1",),
    "guard": ("A1",),
    "integration": ("A1",),
}


@pytest.mark.parametrize("who", sorted(SEES))
@pytest.mark.parametrize("kind", ["people", "houses", "vehicles"])
def test_lists_hold_exactly_the_callers_subtree(app, world, who, kind):
    with _client(app, world, who) as client:
        resp = client.get(f"/api/v1/{kind}", params={"size": 500})
    assert resp.status_code == 200, resp.text
    seen = {item["community_id"] for item in resp.json()["items"]} & _communities(
        world, "A1", "A2", "B1"
    )
    assert seen == _communities(world, *SEES[who])


@pytest.mark.parametrize("who", sorted(SEES))
def test_dashboard_counts_only_the_subtree(app, world, who):
    with _client(app, world, who) as client:
        resp = client.get("/api/v1/stats")
    if who in ("guard", "integration"):
        assert resp.status_code == 403
        return
    assert resp.json()["communities"] >= len(SEES[who])
    if who not in ("admin", "city_analyst"):
        assert resp.json()["communities"] == len(SEES[who])


def test_property_roles_never_see_police_only_tags(app, world):
    pid = world.records["A1"]["people"]
    with _client(app, world, "property_manager") as client:
        assert client.get(f"/api/v1/people/{pid}").json()["tags"] == []
        page = client.get(f"/people/{pid}")
        assert "刑满释放" not in page.text
        # Filtering by a police-only tag is ignored rather than answered.
        listed = client.get("/people", params={"tag": "key_released"})
        assert "居民A1" in listed.text and "邻居A1" in listed.text
        assert client.get("/incidents").status_code == 404
    with _client(app, world, "officer") as client:
        assert client.get(f"/api/v1/people/{pid}").json()["tags"] == ["key_released"]
        filtered = client.get("/people", params={"tag": "key_released"})
        assert "居民A1" in filtered.text and "邻居A1" not in filtered.text


def test_property_edit_keeps_police_only_tags(app, world, app_node):
    pid = world.records["A1"]["people"]
    acct = world.accounts["property_manager"]
    with _client(app, world, "property_manager") as client:
        resp = client.patch(
            f"/api/v1/people/{pid}",
            json={"tags": ["volunteer"]},
            headers={"X-CSRF-Token": acct.csrf},
        )
        assert resp.status_code == 200, resp.text
        bad = client.patch(
            f"/api/v1/people/{pid}",
            json={"tags": ["key_drug"]},
            headers={"X-CSRF-Token": acct.csrf},
        )
        assert bad.status_code == 422
    with _client(app, world, "officer") as client:
        assert sorted(client.get(f"/api/v1/people/{pid}").json()["tags"]) == [
            "key_released",
            "volunteer",
        ]


def test_resident_sees_only_their_household(app, world):
    with _client(app, world, "resident") as client:
        assert client.get("/").headers["location"] == "/me"
        me = client.get("/me")
        assert me.status_code == 200
        assert "居民A1" in me.text
        assert "邻居A1" not in me.text and "居民B1" not in me.text
        for path in (
            "/people",
            f"/people/{world.records['A1']['neighbour']}",
            "/api/v1/people",
            "/houses",
        ):
            assert client.get(path).status_code in (403,), path


def test_out_of_scope_record_is_404_not_403(app, world):
    b_person = world.records["B1"]["people"]
    with _client(app, world, "officer") as client:
        assert client.get(f"/people/{b_person}").status_code == 404
        assert client.get(f"/api/v1/people/{b_person}").status_code == 404
