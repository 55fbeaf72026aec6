"""Retention of event images (per kind) and rows, and serving event images, on SQLite and
PostgreSQL: what expires goes (files and references), a blob a newer event still shows
stays, a dry run changes nothing, the purge is audited; images are served only to callers
who may see the event, and looking at a face is audited."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, text, update
from typer.testing import CliRunner

from anju.audit import service as audit
from anju.audit.models import AuditEntry
from anju.auth import service as auth_service
from anju.cli import app as cli_app
from anju.config import Settings
from anju.events import partitions, retention
from anju.events.blobs import FolderBlobs
from anju.events.model import Event, Kind
from anju.events.models import StoredEvent
from anju.registry import schemas
from anju.registry import service as registry
from anju.web.app import create_app
from tests import factories as f
from tests.conftest import ADMIN_PASSWORD, TEST_KEY
from tests.web_helpers import sign_in

NOW = dt.datetime.now(dt.UTC).replace(microsecond=0)
DAY = dt.timedelta(days=1)


def jpeg(label: str, size: int = 100) -> bytes:
    return b"\xff\xd8\xff\xe0" + label.encode().ljust(size, b".")


IMAGES = {name: jpeg(name, 100 + 10 * i) for i, name in enumerate("ABCDEFG")}


@pytest.fixture(scope="module")
def site(app_node):
    """Two communities; captures of various ages with images, one blob shown twice."""
    with app_node.unit_of_work() as ctx:
        here, there = f.tree(ctx, "RT"), f.tree(ctx, "RU")
        for tree, code, kind in [
            (here, "RT-FACE", "face_camera"),
            (here, "RT-CAR", "vehicle_camera"),
            (there, "RU-CAR", "vehicle_camera"),
        ]:
            registry.devices.create(
                ctx,
                schemas.DeviceCreate(
                    community_id=tree.community.id, code=code, name=code, kind=kind
                ),
            )
        auth_service.create_user(
            ctx.session,
            username="rt-officer",
            display_name="民警",
            password="rt-officer-password",
            role_code="officer",
            org_unit_id=there.office.id,
        )
        events = [
            # name, device, kind, age in days, image
            ("old-face", "RT-FACE", Kind.CAPTURE_FACE, 40, "A"),
            ("car-40", "RT-CAR", Kind.CAPTURE_VEHICLE, 40, "B"),
            ("car-100", "RT-CAR", Kind.CAPTURE_VEHICLE, 100, "C"),
            ("shared-old", "RT-FACE", Kind.CAPTURE_FACE, 40, "D"),
            ("shared-new", "RT-FACE", Kind.ACCESS_FACE, 1, "D"),
            ("car-70", "RT-CAR", Kind.VEHICLE_PASSED, 70, "E"),
            ("new-face", "RT-FACE", Kind.CAPTURE_FACE, 2, "F"),
            ("there-car", "RU-CAR", Kind.CAPTURE_VEHICLE, 2, "G"),
        ]
        processed = app_node.pipeline(ctx.session).process(
            [
                Event(device=d, kind=k, at=NOW - age * DAY, id=name, image_data=IMAGES[img])
                for name, d, k, age, img in events
            ]
        )
        ids = {e[0]: r.stored_id for e, r in zip(events, processed.results, strict=True)}
        assert all(ids.values())
        return {"ids": ids, "community_id": here.community.id}


def images(node) -> dict[int, str | None]:
    with node.unit_of_work() as ctx:
        rows = ctx.session.execute(select(StoredEvent.id, StoredEvent.image))
        return {row.id: row.image for row in rows}


def exists(node, name: str) -> bool:
    import hashlib

    digest = hashlib.sha256(IMAGES[name]).hexdigest()
    return (node.settings.blob_dir / digest[:2] / digest[2:4] / f"{digest}.jpg").exists()


def audit_actions(node, action: str) -> list[AuditEntry]:
    with node.unit_of_work() as ctx:
        rows = list(ctx.session.scalars(select(AuditEntry).where(AuditEntry.action == action)))
        ctx.session.expunge_all()
        return rows


# The image routes first: retention below removes some of the images.


def test_images_are_served_to_who_may_see_the_event(app_node, site):
    ids = site["ids"]
    with TestClient(create_app(app_node)) as admin:
        sign_in(admin, "admin", ADMIN_PASSWORD)
        car = admin.get(f"/events/{ids['car-40']}/image")
        assert car.status_code == 200 and car.content == IMAGES["B"]
        assert car.headers["content-type"] == "image/jpeg"
        assert car.headers["cache-control"].startswith("private")
        assert admin.get(f"/api/v1/events/{ids['car-40']}/image").content == IMAGES["B"]
        assert admin.get("/events/999999999/image").status_code == 404
        # The event list shows a thumbnail of a car, only a link to a face.
        page = admin.get("/events", params={"community_id": site["community_id"]})
        assert f'<img class="thumb" src="/events/{ids["car-40"]}/image"' in page.text
        assert f'src="/events/{ids["new-face"]}/image"' not in page.text
        assert f'href="/events/{ids["new-face"]}/image"' in page.text
    with TestClient(create_app(app_node)) as officer:
        sign_in(officer, "rt-officer", "rt-officer-password")
        assert officer.get(f"/events/{ids['there-car']}/image").status_code == 200
        assert officer.get(f"/events/{ids['car-40']}/image").status_code == 404  # not theirs
        assert officer.get(f"/api/v1/events/{ids['car-40']}/image").status_code == 404


def test_looking_at_a_face_is_audited(app_node, site):
    face = site["ids"]["new-face"]
    before = len(audit_actions(app_node, "event.image_view"))
    with TestClient(create_app(app_node)) as admin:
        sign_in(admin, "admin", ADMIN_PASSWORD)
        assert admin.get(f"/events/{face}/image").content == IMAGES["F"]
        admin.get(f"/events/{site['ids']['car-40']}/image")  # a car: not a face
    looks = audit_actions(app_node, "event.image_view")
    assert len(looks) == before + 1
    assert looks[-1].entity_id == str(face) and looks[-1].actor_name == "admin"
    assert looks[-1].community_id == site["community_id"]


def test_looking_at_a_registered_persons_face_shows_on_their_record(app_node, site):
    face = site["ids"]["shared-new"]  # an access.face event: tie it to a registered person
    with app_node.unit_of_work() as ctx:
        t = f.tree(ctx, "RV")
        person = registry.people.create(
            ctx,
            schemas.PersonCreate(
                community_id=t.community.id,
                name="被看的人",
                id_number=f.resident_id_for("110101", "19900101", 555),
            ),
        )
        ctx.session.execute(
            update(StoredEvent).where(StoredEvent.id == face).values(person_id=person.id)
        )
    with TestClient(create_app(app_node)) as admin:
        sign_in(admin, "admin", ADMIN_PASSWORD)
        assert admin.get(f"/events/{face}/image").status_code == 200
    with app_node.unit_of_work() as ctx:
        [look] = [e for e in audit.who_looked(ctx.session, "persons", person.id)]
        assert look.action == "event.image_view" and look.actor_name == "admin"
        assert look.detail["event_id"] == face


def test_dry_run_reports_and_changes_nothing(app_node, site):
    policy = retention.Policy(image_days=90, image_days_by_kind={"capture.face": 30})
    before = images(app_node)
    report = retention.run(app_node, policy, NOW, dry_run=True)
    assert report.images == {"capture.face": 2, "capture.vehicle": 1}
    assert report.files == 2  # A and C; D is still shown by a newer event
    assert report.bytes_freed == len(IMAGES["A"]) + len(IMAGES["C"])
    assert images(app_node) == before and exists(app_node, "A") and exists(app_node, "C")


def test_images_past_their_kinds_retention_are_purged(app_node, site):
    ids = site["ids"]
    audits = len(audit_actions(app_node, "retention.purge"))
    policy = retention.Policy(image_days=90, image_days_by_kind={"capture.face": 30})
    report = retention.run(app_node, policy, NOW)
    assert report.as_dict()["images"] == {"capture.face": 2, "capture.vehicle": 1}
    assert report.files == 2
    assert report.bytes_freed == len(IMAGES["A"]) + len(IMAGES["C"])
    now = images(app_node)
    assert now[ids["old-face"]] is None and now[ids["car-100"]] is None
    assert now[ids["shared-old"]] is None and now[ids["shared-new"]] is not None
    assert now[ids["car-40"]] is not None  # vehicles keep 90 days
    assert not exists(app_node, "A") and not exists(app_node, "C")
    assert exists(app_node, "D") and exists(app_node, "B")
    [entry] = audit_actions(app_node, "retention.purge")[audits:]
    assert entry.detail["images_total"] == 3 and entry.detail["bytes_freed"] == report.bytes_freed
    # Nothing left to do; a purged image is gone from the route too.
    assert retention.run(app_node, policy, NOW).as_dict()["images_total"] == 0
    with TestClient(create_app(app_node)) as admin:
        sign_in(admin, "admin", ADMIN_PASSWORD)
        assert admin.get(f"/events/{ids['old-face']}/image").status_code == 404


def test_event_rows_past_their_retention_go_with_their_images(app_node, site):
    ids = site["ids"]
    policy = retention.Policy(image_days=90, event_days=60)
    dry = retention.run(app_node, policy, NOW, dry_run=True)
    assert dry.events == {"capture.vehicle": 1, "vehicle.passed": 1}
    assert ids["car-70"] in images(app_node)
    report = retention.run(app_node, policy, NOW)
    # car-70's image is within 90 days, but its row goes, so its picture goes first.
    assert report.images == {"vehicle.passed": 1} and not exists(app_node, "E")
    assert report.events == {"capture.vehicle": 1, "vehicle.passed": 1}
    left = images(app_node)
    assert ids["car-70"] not in left and ids["car-100"] not in left and ids["car-40"] in left
    if app_node.backend == "postgres":
        # car-100's month ended before the cutoff: dropped whole, not emptied row by row.
        gone = partitions.partition_name(partitions.month_start(NOW - 100 * DAY))
        with app_node.engine.connect() as conn:
            assert gone not in partitions.monthly_partitions(conn).values()
            assert conn.scalar(text("SELECT to_regclass(:t)"), {"t": gone}) is None


def test_retention_command_prints_json(app_node, site, monkeypatch):
    monkeypatch.setenv("ANJU_DATA_DIR", str(app_node.settings.data_dir))
    monkeypatch.setenv("ANJU_DATABASE_URL", app_node.settings.resolved_database_url)
    monkeypatch.setenv("ANJU_SECRET_KEY", TEST_KEY)
    monkeypatch.setenv("ANJU_IMAGE_RETENTION_DAYS", "30")
    result = CliRunner().invoke(cli_app, ["retention", "run", "--json", "--dry-run"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["dry_run"] is True and out["images"] == {"capture.vehicle": 1}  # car-40
    assert out["bytes_freed"] == len(IMAGES["B"]) and out["events_total"] == 0
    assert exists(app_node, "B")


def test_per_kind_retention_setting_names_known_kinds_only():
    settings = Settings(image_retention_by_kind={"capture.face": 30})
    assert retention.Policy.from_settings(settings).image_days_by_kind == {"capture.face": 30}
    with pytest.raises(ValueError, match="unknown event kind"):
        Settings(image_retention_by_kind={"capture.fase": 30})
    with pytest.raises(ValueError, match="between 1 and 3650"):
        Settings(image_retention_by_kind={"capture.face": 0})
    assert FolderBlobs(settings.blob_dir).path("../../etc/passwd") is None
