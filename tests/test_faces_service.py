"""The face service against a real database: enrollment (all or nothing, audited with the
encodings redacted), 1:1 verification, identification in scope, search by photo (police,
audited with its reason), strangers in scope, and retention — on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest
from sqlalchemy import func, select

from anju.alerts import watchlist
from anju.audit.models import AuditEntry
from anju.auth import service as auth_service
from anju.auth.models import User
from anju.core.db import utcnow
from anju.core.errors import NotFound, PermissionDenied, ValidationFailed
from anju.core.scope import Actor
from anju.devices.models import Device
from anju.events import retention
from anju.events.api import deliver, sender_for
from anju.events.model import Event, Kind
from anju.events.models import StoredEvent
from anju.faces.models import FaceProbe, FaceTemplate, StrangerCluster
from anju.registry import schemas
from anju.registry import service as registry
from tests import factories as f
from tests.face_photos import SIM, blank_jpeg, face, needs_photos, photo, sighting

pytestmark = needs_photos
PASSWORD = "face-pass-12345"


@pytest.fixture(scope="module")
def site(app_node: Any) -> dict[str, Any]:
    with app_node.unit_of_work() as ctx:
        t = f.tree(ctx, "FS")
        other = f.tree(ctx, "FT")
        people = {}
        for n, name in enumerate(["奥巴马", "拜登", "忘记我"], start=1):
            people[name] = registry.people.create(
                ctx,
                schemas.PersonCreate(
                    community_id=t.community.id,
                    name=name,
                    id_number=f.resident_id_for("110101", "19700101", 400 + n),
                ),
            ).id
        registry.devices.create(
            ctx,
            schemas.DeviceCreate(
                community_id=t.community.id, code="FS-CAM", name="FS-CAM", kind="face_camera"
            ),
        )
        for name, role, unit in (
            ("fs-officer", "officer", t.office.id),
            ("ft-officer", "officer", other.office.id),
            ("fs-property", "property_manager", t.office.id),
        ):
            auth_service.create_user(
                ctx.session, username=name, display_name=name, password=PASSWORD,
                role_code=role, org_unit_id=unit,
            )  # fmt: skip
        entry = watchlist.add_entry(
            ctx.session, org_unit_id=t.district.id, list_kind=watchlist.WatchList.KEY_PERSON,
            category="在逃", reason="测试", match_type=watchlist.MatchType.FACE, value="照片",
        )  # fmt: skip
        return {
            "community": t.community.id,
            "other": other.community.id,
            "people": people,
            "entry": entry.id,
        }


def actor(node: Any, username: str) -> Actor:
    with node.unit_of_work() as ctx:
        user = ctx.session.scalar(select(User).where(User.username == username))
        assert user is not None
        return auth_service.actor_for(user)


def audit_entries(node: Any, action: str, entity: str | None = None) -> list[AuditEntry]:
    with node.unit_of_work() as ctx:
        stmt = select(AuditEntry).where(AuditEntry.action == action)
        if entity:
            stmt = stmt.where(AuditEntry.entity == entity)
        rows = list(ctx.session.scalars(stmt.order_by(AuditEntry.id)))
        ctx.session.expunge_all()
        return rows


def test_enrollment_is_all_or_nothing_with_clear_errors(app_node: Any, site: Any) -> None:
    who = site["people"]["奥巴马"]
    cases = [
        ([photo("obama/obama.jpg"), blank_jpeg()], "照片2中未检测到人脸"),
        ([photo("groups/two_people.jpg")], "照片1中有多张人脸"),
        ([b"\xff\xd8\xff\xe0 truncated"], "照片1"),
        ([], "upload at least one photo"),
    ]
    for images, message in cases:
        with app_node.unit_of_work() as ctx, pytest.raises(ValidationFailed) as refused:
            app_node.faces.enroll(ctx, who, images)
        assert refused.value.errors[0].field == "image"
        assert message in refused.value.errors[0].message
    with app_node.unit_of_work() as ctx:
        assert app_node.faces.face_count(ctx, who) == 0  # nothing half-enrolled
        with pytest.raises(NotFound):
            app_node.faces.enroll(ctx, 10**9, [photo("obama/obama.jpg")])


def test_enrollment_is_audited_without_the_encoding(app_node: Any, site: Any) -> None:
    who = site["people"]["奥巴马"]
    before = len(audit_entries(app_node, "record.create", "face_templates"))
    with app_node.unit_of_work() as ctx:
        assert app_node.faces.enroll(ctx, who, [photo("obama/obama.jpg")]) == 1
        assert app_node.faces.face_count(ctx, who) == 1
        blob = ctx.session.scalar(
            select(FaceTemplate.vector_enc).where(FaceTemplate.owner_id == who)
        )
    [entry] = audit_entries(app_node, "record.create", "face_templates")[before:]
    assert entry.detail["redacted"] == ["vector"]
    assert entry.detail["after"]["owner_id"] == who and "vector_enc" not in entry.detail["after"]
    assert entry.community_id == site["community"]
    # Sealed at rest: the stored bytes are not the float32 encoding.
    assert blob is not None and len(blob) == 12 + 128 * 4 + 16


def test_verification_one_to_one(app_node: Any, site: Any) -> None:
    same = app_node.faces.verify(photo("obama/obama.jpg"), photo("obama/obama2.jpg"))
    assert same.same and same.distance < same.threshold == 0.6
    other = app_node.faces.verify(photo("obama/obama.jpg"), photo("biden/biden.jpg"))
    assert not other.same and other.distance > 0.6
    with pytest.raises(ValidationFailed) as refused:
        app_node.faces.verify(photo("obama/obama.jpg"), blank_jpeg())
    assert refused.value.errors[0].field == "image_b"


def test_identify_and_search_by_photo_stay_in_scope(app_node: Any, site: Any) -> None:
    who = site["people"]["奥巴马"]  # enrolled above
    probe = photo("obama/obama2.jpg")
    with app_node.unit_of_work() as ctx:
        app_node.faces.enroll_watch(ctx, site["entry"], [photo("obama/obama3.jpg")])
        [first, *rest] = app_node.faces.identify(ctx, probe)
    assert (first.kind, first.id, first.label) == ("resident", who, "奥巴马")
    assert first.distance < 0.6 and [c.kind for c in rest] == ["watch"]

    officer, elsewhere = actor(app_node, "fs-officer"), actor(app_node, "ft-officer")
    property_ = actor(app_node, "fs-property")
    with app_node.unit_of_work(property_) as ctx, pytest.raises(PermissionDenied):
        app_node.faces.search_by_photo(ctx, probe, "查找")
    with app_node.unit_of_work(property_) as ctx:  # identify: residents, never watchlists
        assert [c.kind for c in app_node.faces.identify(ctx, probe)] == ["resident"]
    with app_node.unit_of_work(officer) as ctx, pytest.raises(ValidationFailed) as blank:
        app_node.faces.search_by_photo(ctx, probe, " ")
    assert blank.value.errors[0].field == "reason"
    searches = len(audit_entries(app_node, "face.search"))
    with app_node.unit_of_work(officer) as ctx:
        found = app_node.faces.search_by_photo(ctx, probe, "盗窃案嫌疑人比对")
    assert [(c.kind, c.id) for c in found] == [("resident", who), ("watch", site["entry"])]
    with app_node.unit_of_work(elsewhere) as ctx:  # another district sees none of them
        assert app_node.faces.search_by_photo(ctx, probe, "比对") == []
    mine, theirs = audit_entries(app_node, "face.search")[searches:]
    assert mine.actor_name == "fs-officer" and mine.detail["reason"] == "盗窃案嫌疑人比对"
    assert mine.detail["candidates"][0] == {"kind": "resident", "id": who}
    assert theirs.actor_name == "ft-officer" and theirs.detail["candidates"] == []


def test_forgetting_a_person_removes_them_from_recognition(app_node: Any, site: Any) -> None:
    who = site["people"]["拜登"]
    with app_node.unit_of_work() as ctx:
        app_node.faces.enroll_vectors(ctx, who, [face(40).tolist(), face(41).tolist()], SIM)
        with pytest.raises(ValidationFailed) as wrong:
            app_node.faces.enroll_vectors(ctx, who, [[0.5] * 100], SIM)
        assert wrong.value.errors[0].field == "vectors"
        assert app_node.faces.face_count(ctx, who) == 2
    with app_node.unit_of_work() as ctx:
        assert app_node.faces.forget_person(ctx, who) == 2
        assert app_node.faces.face_count(ctx, who) == 0
    assert len(audit_entries(app_node, "record.delete", "face_templates")) >= 2


def test_deleting_a_person_deletes_their_faces(app_node: Any, site: Any) -> None:
    with app_node.unit_of_work() as ctx:
        gone = registry.people.create(
            ctx,
            schemas.PersonCreate(
                community_id=site["community"],
                name="搬走的人",
                id_number=f.resident_id_for("110101", "19700101", 450),
            ),
        ).id
        app_node.faces.enroll_vectors(ctx, gone, [face(70).tolist()], SIM)
    with app_node.unit_of_work() as ctx:
        registry.people.delete(ctx, registry.people.get(ctx, gone))
    with app_node.unit_of_work() as ctx:
        left = ctx.session.scalar(
            select(func.count()).select_from(FaceTemplate).where(FaceTemplate.owner_id == gone)
        )
        assert left == 0
    # Recognition no longer knows the face: it is a stranger now.
    [stored] = send(app_node, capture(sighting(face(70), 9), utcnow()))
    with app_node.unit_of_work() as ctx:
        event = ctx.session.get(StoredEvent, stored)
        assert event is not None and event.person_id is None
        assert event.data["face"]["match"] == "stranger"


def capture(vector: list[float], at: dt.datetime) -> Event:
    return Event(
        device="FS-CAM", kind=Kind.CAPTURE_FACE, at=at, id=f"fs-{at.timestamp()}-{vector[0]}",
        data={"feature": vector, "model": SIM},
    )  # fmt: skip


def send(node: Any, *events: Event) -> list[int]:
    with node.unit_of_work() as ctx:
        sender = sender_for(ctx.session.scalar(select(Device).where(Device.code == "FS-CAM")))
    processed = deliver(node, list(events), sender)
    return [r.stored_id for r in processed.results if r.stored_id is not None]


def test_strangers_are_listed_in_scope(app_node: Any, site: Any) -> None:
    now = utcnow()
    send(app_node, capture(sighting(face(50), 1), now), capture(sighting(face(50), 2), now))
    officer, elsewhere = actor(app_node, "fs-officer"), actor(app_node, "ft-officer")
    with app_node.unit_of_work(officer) as ctx:
        [mine] = app_node.faces.strangers(ctx, community_id=site["community"], limit=1)
        assert mine.sightings == 2 and mine.templates == 1 and mine.code.startswith("S-")
        assert app_node.faces.stranger(ctx, mine.id) == mine
    with app_node.unit_of_work(elsewhere) as ctx:
        assert mine.id not in [s.id for s in app_node.faces.strangers(ctx)]
        with pytest.raises(NotFound):
            app_node.faces.stranger(ctx, mine.id)


def test_retention_purges_strangers_not_seen_and_old_face_probes(app_node: Any, site: Any) -> None:
    now = utcnow()
    old, recent = face(60), face(61)
    send(app_node, capture(sighting(old, 1), now - dt.timedelta(days=120)))
    send(app_node, capture(sighting(recent, 1), now - dt.timedelta(days=10)))
    with app_node.unit_of_work() as ctx:
        codes = dict(
            ctx.session.execute(
                select(StrangerCluster.last_seen, StrangerCluster.id).where(
                    StrangerCluster.community_id == site["community"]
                )
            ).all()
        )
    old_id = codes[min(codes)]
    policy = retention.Policy(image_days=90, stranger_days=90)
    dry = retention.run(app_node, policy, now, dry_run=True)
    assert dry.strangers == 1 and dry.face_probes >= 1
    report = retention.run(app_node, policy, now)
    assert report.as_dict()["strangers"] == 1 and report.face_probes == dry.face_probes
    with app_node.unit_of_work() as ctx:
        assert ctx.session.get(StrangerCluster, old_id) is None
        left = ctx.session.scalar(
            select(func.count())
            .select_from(FaceTemplate)
            .where(FaceTemplate.owner_kind == "stranger", FaceTemplate.owner_id == old_id)
        )
        assert left == 0
        cutoff = now - dt.timedelta(days=90)
        assert not ctx.session.scalar(
            select(func.count()).select_from(FaceProbe).where(FaceProbe.at < cutoff)
        )
    # The next sighting of that face starts a new stranger.
    [again] = send(app_node, capture(sighting(old, 2), now))
    with app_node.unit_of_work() as ctx:
        from anju.events.models import StoredEvent

        row = ctx.session.get(StoredEvent, again)
        assert row is not None and row.data["face"].get("new") is True
    [entry] = audit_entries(app_node, "retention.purge")[-1:]
    assert entry.detail["strangers"] == 1 and json.dumps(entry.detail)
