"""Faces over HTTP on both databases: a person's faces and 人证核验, search by photo (police
only, audited with its reason), strangers with merge / split / link, "not this person", the
watchlist's face entries, and the JSON API — with real photographs from the test fixtures
for anything that detects or encodes a face (few of them: dlib takes ~0.5 s a photo) and
device-supplied feature vectors for the sightings of strangers.
"""

from __future__ import annotations

import datetime as dt
import secrets
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from anju.alerts import watchlist
from anju.audit.models import AuditEntry
from anju.auth import service as auth_service
from anju.events.model import Event, Kind
from anju.events.models import StoredEvent
from anju.faces.encoder import MODEL_DLIB
from anju.faces.models import StrangerCluster
from anju.registry import schemas
from anju.registry import service as registry
from anju.web.app import create_app
from tests import factories as f
from tests.face_photos import needs_photos, photo
from tests.web_helpers import sign_in

pytestmark = needs_photos
PASSWORD = "faces-web-password-" + secrets.token_hex(4)
NOW = dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(hours=1)


def unit_vector(seed: int) -> list[float]:
    v = np.random.default_rng(seed).normal(size=128)
    return [float(x) for x in v / np.linalg.norm(v)]


def near(vector: list[float], seed: int, spread: float = 0.01) -> list[float]:
    """A sighting of the same face: a little noise around its vector."""
    noise = np.random.default_rng(seed).normal(scale=spread, size=128)
    return [float(x) for x in np.asarray(vector) + noise]


def _user(ctx: Any, name: str, role: str, unit_id: int) -> None:
    auth_service.create_user(
        ctx.session,
        username=name,
        display_name=f"{name} 姓名",
        password=PASSWORD,
        role_code=role,
        org_unit_id=unit_id,
    )


@pytest.fixture(scope="module")
def site(app_node: Any) -> dict[str, Any]:
    """A community with a face camera, two registered people, an officer, a property manager,
    property staff, a resident's account and an officer of another area."""
    with app_node.unit_of_work() as ctx:
        t = f.tree(ctx, "FW")
        other = f.tree(ctx, "FX")
        registry.devices.create(
            ctx,
            schemas.DeviceCreate(
                community_id=t.community.id, code="FW-CAM", name="南门人脸抓拍", kind="face_camera"
            ),
        )
        people = {}
        for key, name, serial in (("kit", "齐特", 11), ("lin", "林曼", 12)):
            people[key] = registry.people.create(
                ctx,
                schemas.PersonCreate(
                    community_id=t.community.id,
                    name=name,
                    id_number=f.resident_id_for("110101", "19860926", serial),
                ),
            ).id
        _user(ctx, "fw-officer", "officer", t.office.id)
        _user(ctx, "fw-manager", "property_manager", t.community.id)
        _user(ctx, "fw-staff", "property_staff", t.community.id)
        _user(ctx, "fx-officer", "officer", other.office.id)
        return {"community": t.community.id, "office": t.office.id, **people}


@pytest.fixture(scope="module")
def app(app_node: Any) -> Any:
    return create_app(app_node)


def client_for(app: Any, username: str) -> tuple[TestClient, str]:
    client = TestClient(app)
    return client, sign_in(client, username, PASSWORD)


def sight(node: Any, vector: list[float], *, minutes: int = 0) -> int:
    """A face camera reports a face by its feature vector; returns the stored event's id."""
    event = Event(
        device="FW-CAM",
        kind=Kind.CAPTURE_FACE,
        at=NOW + dt.timedelta(minutes=minutes),
        data={"feature": vector, "model": MODEL_DLIB},
    )
    with node.unit_of_work() as ctx:
        result = node.pipeline(ctx.session).process([event]).results[0]
        assert result.stored_id is not None, result
        return int(result.stored_id)


def stored(node: Any, event_id: int) -> StoredEvent:
    with node.unit_of_work() as ctx:
        e = ctx.session.get(StoredEvent, event_id)
        assert e is not None
        ctx.session.expunge(e)
        return e


def audits(node: Any, action: str) -> list[AuditEntry]:
    with node.unit_of_work() as ctx:
        rows = list(ctx.session.scalars(select(AuditEntry).where(AuditEntry.action == action)))
        for r in rows:
            ctx.session.expunge(r)
        return rows


# --- permissions -------------------------------------------------------------------------


def test_property_staff_and_managers_cannot_search_by_photo(app: Any, site: dict[str, Any]) -> None:
    for username in ("fw-manager", "fw-staff"):
        client, csrf = client_for(app, username)
        assert client.get("/faces/search").status_code == 403
        resp = client.post(
            "/faces/search",
            data={"csrf_token": csrf, "reason": "查找"},
            files={"photo": ("a.jpg", photo("kit_harington/john2.jpeg"), "image/jpeg")},
        )
        assert resp.status_code == 403
        api = client.post(
            "/api/v1/faces/search",
            headers={"X-CSRF-Token": csrf},
            data={"reason": "查找"},
            files={"image": ("a.jpg", photo("kit_harington/john2.jpeg"), "image/jpeg")},
        )
        assert api.status_code == 403
        assert 'href="/faces/search"' not in client.get("/").text
    # The property manager manages faces (enroll, strangers) but searches nobody.
    manager, _ = client_for(app, "fw-manager")
    assert 'href="/faces/strangers"' in manager.get("/").text
    assert manager.get("/faces/strangers").status_code == 200
    # Property staff see no faces at all.
    staff, _ = client_for(app, "fw-staff")
    assert staff.get("/faces/strangers").status_code == 403
    assert staff.get(f"/people/{site['kit']}/faces").status_code == 403
    assert 'id="faces-panel"' not in staff.get(f"/people/{site['kit']}").text


def test_a_resident_cannot_see_strangers(app: Any, app_node: Any, site: dict[str, Any]) -> None:
    with app_node.unit_of_work() as ctx:
        auth_service.create_user(
            ctx.session,
            username="fw-resident",
            display_name="居民",
            password=PASSWORD,
            role_code="resident",
            org_unit_id=site["community"],
            person_id=site["lin"],
        )
    client, _ = client_for(app, "fw-resident")
    assert client.get("/faces/strangers").status_code == 403
    assert client.get("/api/v1/faces/strangers").status_code == 403
    assert client.get("/faces/search").status_code == 403
    assert client.get(f"/api/v1/people/{site['lin']}/faces").status_code == 403


# --- a person's faces and 人证核验 ----------------------------------------------------------


def test_enrolling_photos_all_or_nothing_with_errors_at_the_field(
    app: Any, site: dict[str, Any]
) -> None:
    client, csrf = client_for(app, "fw-manager")
    url = f"/people/{site['lin']}/faces"
    page = client.get(f"/people/{site['lin']}")
    assert f'hx-get="{url}"' in page.text  # the panel loads into the person's page
    panel = client.get(url, headers={"HX-Request": "true"})
    assert panel.status_code == 200 and 'id="face-count">0<' in panel.text
    assert "<html" not in panel.text  # a fragment for HTMX

    def upload(*names: str, htmx: bool = False) -> Any:
        files = [("photos", (n.rsplit("/", 1)[-1], photo(n), "image/jpeg")) for n in names]
        headers = {"HX-Request": "true"} if htmx else {}
        return client.post(
            url, data={"csrf_token": csrf}, files=files, headers=headers, follow_redirects=False
        )

    # A group photo (Kit and Rose): several faces; with a good photo before it, nothing is
    # stored either.
    bad = upload("lin_manuel_miranda/lin1.png", "groups/kit_with_rose.jpg")
    assert bad.status_code == 422
    assert 'id="enroll-error"' in bad.text and "多张人脸" in bad.text
    assert 'id="face-count">0<' in bad.text
    # Not an image at all.
    junk = client.post(
        url,
        data={"csrf_token": csrf},
        files={"photos": ("x.jpg", b"not a photo at all", "image/jpeg")},
    )
    assert junk.status_code == 422 and 'id="enroll-error"' in junk.text
    # Nothing chosen.
    empty = client.post(url, data={"csrf_token": csrf})
    assert empty.status_code == 422 and "请至少选择一张照片" in empty.text
    # A good photo, through HTMX: the panel comes back with the new count.
    good = upload("lin_manuel_miranda/lin1.png", htmx=True)
    assert good.status_code == 200 and 'id="face-count">1<' in good.text
    assert "照片已录入" in good.text
    api = client.get(f"/api/v1/people/{site['lin']}/faces")
    assert api.json() == {"person_id": site["lin"], "faces": 1}
    # Removing them.
    gone = client.post(url + "/remove", data={"csrf_token": csrf}, follow_redirects=True)
    assert gone.status_code == 200 and 'id="face-count">0<' in gone.text


def test_verifying_the_registration_photo_against_the_id_card(
    app: Any, site: dict[str, Any]
) -> None:
    client, csrf = client_for(app, "fw-manager")
    url = f"/people/{site['kit']}/faces/verify"

    def check(a: str, b: str) -> Any:
        return client.post(
            url,
            data={"csrf_token": csrf},
            files={
                "photo": ("reg.jpg", photo(a), "image/jpeg"),
                "card_photo": ("card.jpg", photo(b), "image/jpeg"),
            },
        )

    same = check("kit_harington/john2.jpeg", "kit_harington/john1.jpeg")
    assert same.status_code == 200
    assert 'id="verify-result"' in same.text and "同一人" in same.text
    assert "不是同一人" not in same.text and "0.60" in same.text
    other = check("kit_harington/john2.jpeg", "rose_leslie/rose2.jpg")
    assert "不是同一人" in other.text
    missing = client.post(url, data={"csrf_token": csrf})
    assert missing.status_code == 422 and 'id="verify-result"' not in missing.text


# --- search by photo ------------------------------------------------------------------------


def test_an_officer_finds_a_resident_by_photo_and_the_search_is_audited(
    app: Any, site: dict[str, Any], app_node: Any
) -> None:
    client, csrf = client_for(app, "fw-officer")
    enrolled = client.post(
        f"/api/v1/people/{site['kit']}/faces",
        headers={"X-CSRF-Token": csrf},
        files={"images": ("john2.jpeg", photo("kit_harington/john2.jpeg"), "image/jpeg")},
    )
    assert enrolled.status_code == 200, enrolled.text
    assert enrolled.json()["faces"] == 1
    assert 'href="/faces/search"' in client.get("/").text
    before = len(audits(app_node, "face.search"))
    # No reason: refused at the field, nothing searched, nothing recorded.
    blank = client.post(
        "/faces/search",
        data={"csrf_token": csrf, "reason": " "},
        files={"photo": ("q.jpg", photo("kit_harington/john1.jpeg"), "image/jpeg")},
    )
    assert blank.status_code == 422 and 'id="reason-error"' in blank.text
    assert len(audits(app_node, "face.search")) == before
    reason = "协查通报 2026-118 核实"
    found = client.post(
        "/faces/search",
        data={"csrf_token": csrf, "reason": reason},
        files={"photo": ("q.jpg", photo("kit_harington/john1.jpeg"), "image/jpeg")},
    )
    assert found.status_code == 200, found.text
    first = found.text.split('class="candidate"')[1]
    assert "齐特" in first and "居民" in first and "匹配" in first
    assert f'href="/trajectory?person_id={site["kit"]}"' in first
    entries = audits(app_node, "face.search")
    assert len(entries) == before + 1
    assert reason in str(entries[-1].detail)
    # The officer of another area finds nobody of this community.
    outsider, other_csrf = client_for(app, "fx-officer")
    api = outsider.post(
        "/api/v1/faces/search",
        headers={"X-CSRF-Token": other_csrf},
        data={"reason": reason},
        files={"image": ("q.jpg", photo("kit_harington/john1.jpeg"), "image/jpeg")},
    )
    assert api.status_code == 200
    assert all(c["id"] != site["kit"] for c in api.json()["candidates"] if c["kind"] == "resident")


# --- strangers --------------------------------------------------------------------------------


def test_strangers_are_listed_merged_split_and_linked(
    app: Any, app_node: Any, site: dict[str, Any]
) -> None:
    a, b = unit_vector(1), unit_vector(2)
    first = [sight(app_node, near(a, 10 + i), minutes=i) for i in range(3)]
    second = [sight(app_node, near(b, 20 + i), minutes=10 + i) for i in range(2)]
    code_a = stored(app_node, first[0]).subject_value
    code_b = stored(app_node, second[0]).subject_value
    assert code_a and code_b and code_a != code_b and code_a.startswith("S-")
    with app_node.unit_of_work() as ctx:
        ids = dict(ctx.session.execute(select(StrangerCluster.code, StrangerCluster.id)).all())
    client, csrf = client_for(app, "fw-manager")
    listing = client.get(f"/faces/strangers?community_id={site['community']}")
    assert listing.status_code == 200 and code_a in listing.text and code_b in listing.text
    page = client.get(f"/faces/strangers/{ids[code_a]}")
    assert page.status_code == 200
    assert page.text.count('name="event_ids"') == 3
    assert f'href="/events/{first[0]}/face"' in page.text
    # Each sighting says how it was matched: the first started the cluster, the later ones
    # joined it at their distance.
    assert page.text.count("首次出现") == 1 and page.text.count("距离") == 2
    # Merging by a code that is not there: the error sits at the field.
    wrong = client.post(
        f"/faces/strangers/{ids[code_a]}/merge", data={"csrf_token": csrf, "code": "S-NOPE"}
    )
    assert wrong.status_code == 422 and 'id="merge-error"' in wrong.text
    merged = client.post(
        f"/faces/strangers/{ids[code_a]}/merge",
        data={"csrf_token": csrf, "code": code_b.lower()},
        follow_redirects=True,
    )
    assert merged.status_code == 200
    assert merged.text.count('name="event_ids"') == 5
    # Split the two sightings of b off again.
    split = client.post(
        f"/faces/strangers/{ids[code_a]}/split",
        data={"csrf_token": csrf, "event_ids": [str(i) for i in second]},
        follow_redirects=False,
    )
    assert split.status_code == 303
    new_page = client.get(split.headers["location"])
    assert new_page.text.count('name="event_ids"') == 2
    assert client.get(f"/faces/strangers/{ids[code_a]}").text.count('name="event_ids"') == 3
    # Link a to the registered 林曼 (over the API this time).
    linked = client.post(
        f"/api/v1/faces/strangers/{ids[code_a]}/link",
        headers={"X-CSRF-Token": csrf},
        json={"person_id": site["lin"]},
    )
    assert linked.status_code == 200, linked.text
    assert linked.json()["person_id"] == site["lin"]
    detail = client.get(f"/faces/strangers/{ids[code_a]}")
    assert 'id="linked-person"' in detail.text and "林曼" in detail.text
    # Officers of another area see none of it.
    outsider, _ = client_for(app, "fx-officer")
    assert outsider.get(f"/faces/strangers/{ids[code_a]}").status_code == 404
    assert code_a not in outsider.get("/faces/strangers").text
    api = outsider.get("/api/v1/faces/strangers").json()
    assert all(s["code"] != code_a for s in api["items"])


def test_not_this_person_on_a_matched_event(app: Any, app_node: Any, site: dict[str, Any]) -> None:
    client, csrf = client_for(app, "fw-officer")
    event_id = sight(app_node, near(unit_vector(3), 30), minutes=30)
    code = stored(app_node, event_id).subject_value
    listed = client.get(f"/events?kind=capture.face&community_id={site['community']}")
    assert f'href="/events/{event_id}/face"' in listed.text
    page = client.get(f"/events/{event_id}/face")
    assert page.status_code == 200 and code in page.text and 'id="reject-form"' in page.text
    blank = client.post(
        f"/events/{event_id}/not-this-person", data={"csrf_token": csrf, "reason": ""}
    )
    assert blank.status_code == 422
    done = client.post(
        f"/events/{event_id}/not-this-person",
        data={"csrf_token": csrf, "reason": "现场核实为快递员"},
        follow_redirects=True,
    )
    assert done.status_code == 200 and 'id="rejected-notice"' in done.text
    # Property staff may not.
    staff, staff_csrf = client_for(app, "fw-staff")
    refused = staff.post(
        f"/events/{event_id}/not-this-person", data={"csrf_token": staff_csrf, "reason": "x"}
    )
    assert refused.status_code == 403


# --- watchlist face entries ---------------------------------------------------------------------


def test_a_face_entry_of_a_watchlist_takes_photos(
    app: Any, app_node: Any, site: dict[str, Any]
) -> None:
    client, csrf = client_for(app, "fw-officer")
    resp = client.post(
        "/admin/watchlists",
        data={
            "csrf_token": csrf,
            "list_kind": "controlled",
            "org_unit_id": str(site["office"]),
            "category": "在逃",
            "reason": "协查",
            "match_type": "face",
            "value": "在逃人员甲",
        },
        files={"photos": ("rose.jpg", photo("rose_leslie/rose2.jpg"), "image/jpeg")},
        follow_redirects=False,
    )
    assert resp.status_code == 303, resp.text[:2000]
    with app_node.unit_of_work() as ctx:
        entry = ctx.session.scalars(
            select(watchlist.WatchEntry).where(watchlist.WatchEntry.match_value == "在逃人员甲")
        ).one()
        entry_id = entry.id
    # A group photo for the entry is refused, and the page says why.
    more = client.post(
        f"/admin/watchlists/{entry_id}/faces",
        data={"csrf_token": csrf},
        files={"photos": ("g.jpg", photo("groups/kit_with_rose.jpg"), "image/jpeg")},
    )
    assert more.status_code == 422 and "多张人脸" in more.text
    found = client.post(
        "/api/v1/faces/search",
        headers={"X-CSRF-Token": csrf},
        data={"reason": "布控核查"},
        files={"image": ("q.jpg", photo("rose_leslie/rose1.jpg"), "image/jpeg")},
    ).json()["candidates"]
    assert found[0]["kind"] == "watch" and found[0]["id"] == entry_id and found[0]["match"]


def test_openapi_documents_the_face_api(app: Any) -> None:
    spec = TestClient(app).get("/api/openapi.json").json()
    paths = spec["paths"]
    for path in (
        "/api/v1/faces/search",
        "/api/v1/faces/verify",
        "/api/v1/faces/strangers",
        "/api/v1/faces/strangers/{record_id}",
        "/api/v1/people/{record_id}/faces",
        "/api/v1/events/{record_id}/not-this-person",
    ):
        assert path in paths, path
    form = paths["/api/v1/faces/search"]["post"]["requestBody"]["content"]
    assert "multipart/form-data" in form
