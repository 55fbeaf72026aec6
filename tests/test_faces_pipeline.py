"""Faces in the event pipeline: residents recognised, lasting strangers, bad input recorded
(never fatal), galleries reloaded when another process changes them, link / merge / split /
"not this person", and a watched face raising a police-only alert — on SQLite and PostgreSQL.

Cluster logic runs on device-supplied vectors (cheap); full frames use the real photographs.
"""

from __future__ import annotations

import datetime as dt
import itertools
import re
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pytest
from sqlalchemy import func, select

from anju.alerts import watchlist
from anju.alerts.models import Alert
from anju.bootstrap import bootstrap
from anju.core.db import utcnow
from anju.core.errors import ValidationFailed
from anju.devices.models import Device
from anju.events.api import deliver, sender_for
from anju.events.model import Event, Kind, Subject, SubjectType
from anju.events.models import StoredEvent
from anju.faces.models import FaceProbe, FaceTemplate, StrangerCluster
from anju.registry import schemas
from anju.registry import service as registry
from tests import factories as f
from tests.face_photos import SIM, blank_jpeg, face, needs_photos, photo, sighting

TZ = ZoneInfo("Asia/Shanghai")
_ids = itertools.count(1)


@pytest.fixture(scope="module")
def site(app_node: Any) -> dict[str, Any]:
    with app_node.unit_of_work() as ctx:
        t = f.tree(ctx, "FP")
        other = f.tree(ctx, "FQ")
        flat = f.house(ctx, t.community)
        people = {}
        for n, (name, community) in enumerate(
            [("林居民", t.community), ("外小区", other.community), ("链接人", t.community),
             ("被否认", t.community), ("照片人", t.community), ("后来人", t.community)],
            start=1,
        ):  # fmt: skip
            people[name] = registry.people.create(
                ctx,
                schemas.PersonCreate(
                    community_id=community.id,
                    name=name,
                    id_number=f.resident_id_for("110101", "19800101", 300 + n),
                ),
            ).id
        registry.residencies.create(
            ctx,
            schemas.ResidencyCreate(person_id=people["林居民"], house_id=flat.id,
                                    relation="owner", start_date=dt.date(2020, 1, 1)),
        )  # fmt: skip
        for code, community in (("FP-CAM", t.community), ("FQ-CAM", other.community)):
            registry.devices.create(
                ctx,
                schemas.DeviceCreate(
                    community_id=community.id, code=code, name=code, kind="face_camera"
                ),
            )
        return {
            "community": t.community.id,
            "other": other.community.id,
            "district": t.district.id,
            "other_district": other.district.id,
            "house": flat.id,
            "people": people,
        }


def send(node: Any, *events: Event, code: str = "FP-CAM") -> list[StoredEvent]:
    """Deliver as the device; the stored rows, in order."""
    with node.unit_of_work() as ctx:
        sender = sender_for(ctx.session.scalar(select(Device).where(Device.code == code)))
    processed = deliver(node, list(events), sender)
    assert [r.status for r in processed.results] == ["accepted"] * len(events), processed.results
    ids = [r.stored_id for r in processed.results]
    with node.unit_of_work() as ctx:
        rows = {
            r.id: r for r in ctx.session.scalars(select(StoredEvent).where(StoredEvent.id.in_(ids)))
        }
        ctx.session.expunge_all()
    return [rows[i] for i in ids]  # type: ignore[index]


def capture(
    vector: list[float] | None = None,
    *,
    model: str = SIM,
    at: dt.datetime | None = None,
    device: str = "FP-CAM",
    **kw: Any,
) -> Event:
    data = dict(kw.pop("data", {}))
    if vector is not None:
        data.update(feature=vector, model=model)
    return Event(
        device=device, kind=Kind.CAPTURE_FACE, at=at or utcnow(), id=f"cap-{next(_ids)}",
        data=data, **kw,
    )  # fmt: skip


def enroll(node: Any, person_id: int, vectors: list[list[float]]) -> None:
    with node.unit_of_work() as ctx:
        node.faces.enroll_vectors(ctx, person_id, vectors, SIM)


def cluster(node: Any, code: str) -> StrangerCluster:
    with node.unit_of_work() as ctx:
        row = ctx.session.scalar(select(StrangerCluster).where(StrangerCluster.code == code))
        assert row is not None
        ctx.session.expunge(row)
        return row


def templates(node: Any, cluster_id: int) -> int:
    with node.unit_of_work() as ctx:
        return int(
            ctx.session.scalar(
                select(func.count())
                .select_from(FaceTemplate)
                .where(FaceTemplate.owner_kind == "stranger", FaceTemplate.owner_id == cluster_id)
            )
        )


def test_a_residents_face_is_recognised_with_their_home_and_the_vector_is_dropped(
    app_node: Any, site: Any
) -> None:
    base = face(1)
    enroll(app_node, site["people"]["林居民"], [[float(x) for x in base]])
    [row] = send(app_node, capture(sighting(base, 1), data={"channel": 2}))
    assert row.person_id == site["people"]["林居民"] and row.house_id == site["house"]
    assert row.data["face"]["match"] == "resident" and row.data["face"]["model"] == SIM
    assert 0 < row.data["face"]["distance"] < 0.6
    assert "feature" not in row.data and "model" not in row.data and row.data["channel"] == 2
    assert row.subject_type is None  # a resident is named by person, not by a stranger code
    with app_node.unit_of_work() as ctx:  # the probe is kept, sealed
        [probe] = ctx.session.scalars(select(FaceProbe).where(FaceProbe.event_id == row.id))
        assert probe.model == SIM and len(probe.vector_enc) > 128 * 4


def test_a_person_registered_elsewhere_matches_but_is_not_a_resident_here(
    app_node: Any, site: Any
) -> None:
    base = face(2)
    enroll(app_node, site["people"]["外小区"], [[float(x) for x in base]])
    [here] = send(app_node, capture(sighting(base, 2)))
    assert here.person_id == site["people"]["外小区"] and here.data["face"]["match"] == "person"
    [there] = send(app_node, capture(sighting(base, 3), device="FQ-CAM"), code="FQ-CAM")
    assert there.data["face"]["match"] == "resident"


def test_an_unknown_face_becomes_a_lasting_stranger_with_a_trajectory(
    app_node: Any, site: Any
) -> None:
    base = face(3)
    at = dt.datetime(2026, 11, 20, 17, 30, tzinfo=dt.UTC)  # 01:30 on the 21st in Beijing
    later = at + dt.timedelta(minutes=5)
    first, second = send(
        app_node, capture(sighting(base, 5, 0.1), at=at), capture(sighting(base, 6, 0.1), at=later)
    )
    code = first.data["face"]["stranger"]
    assert re.fullmatch(r"S-20261121-\d{4}", code)
    assert first.data["face"]["match"] == "stranger" and first.data["face"]["new"] is True
    assert (first.subject_type, first.subject_value) == ("face", code)
    assert second.data["face"]["stranger"] == code and "new" not in second.data["face"]
    assert second.person_id is None
    # Seen again later, from a different angle: joins, and becomes a representative.
    [third] = send(app_node, capture(sighting(base, 7, 0.3), at=at + dt.timedelta(hours=3)))
    assert third.subject_value == code
    c = cluster(app_node, code)
    assert c.sightings == 3 and c.community_id == site["community"]
    assert c.last_seen == at + dt.timedelta(hours=3) and c.first_seen == at
    assert 2 <= templates(app_node, c.id) <= 5
    # Someone else is another stranger; many sightings keep at most five encodings.
    [other] = send(app_node, capture(sighting(face(4), 8), at=at))
    assert other.subject_value not in (None, code)
    send(app_node, *[capture(sighting(base, 100 + i, 0.3), at=at) for i in range(8)])
    assert templates(app_node, c.id) == 5
    with app_node.unit_of_work() as ctx:  # the trajectory by subject
        seen = ctx.session.scalar(
            select(func.count())
            .select_from(StoredEvent)
            .where(StoredEvent.subject_type == "face", StoredEvent.subject_value == code)
        )
    assert seen == 11


def test_bad_faces_are_recorded_and_never_lose_the_others(app_node: Any, site: Any) -> None:
    base = face(1)  # 林居民
    rows = send(
        app_node,
        capture([0.1] * 64),  # wrong length for the model
        capture(data={"feature": [0.1] * 128}),  # no model name
        capture([0.1] * 127 + [float("nan")]),
        capture(image_data=b"not a jpeg at all"),
        capture(sighting(base, 9)),
    )
    faces = [r.data["face"] for r in rows]
    assert faces[0]["match"] == "error" and "length 64" in faces[0]["reason"]
    assert faces[1]["match"] == "error" and "model" in faces[1]["reason"]
    assert faces[2]["match"] == "error" and "NaN" in faces[2]["reason"]
    assert faces[3] == {"match": "error", "model": "dlib_resnet_v1", "reason": "not an image"}
    assert all("feature" not in r.data and r.person_id is None for r in rows[:4])
    assert rows[4].person_id == site["people"]["林居民"]


def test_a_terminal_that_names_the_person_is_left_alone(app_node: Any, site: Any) -> None:
    event = capture(face(1).tolist(), subject=Subject(SubjectType.PERSON, "E-7"))
    [row] = send(app_node, event)
    assert "face" not in row.data and row.data["feature"]  # not a face to recognise


@needs_photos
def test_full_frames_detect_encode_and_match(app_node: Any, site: Any) -> None:
    who = site["people"]["照片人"]
    with app_node.unit_of_work() as ctx:
        assert app_node.faces.enroll(ctx, who, [photo("obama/obama.jpg")]) == 1
    same, group, empty = send(
        app_node,
        capture(image_data=photo("obama/obama2.jpg")),
        capture(image_data=photo("groups/two_people.jpg")),
        capture(image_data=blank_jpeg()),
    )
    assert same.person_id == who and same.data["face"]["match"] == "resident"
    assert same.data["face"]["model"] == "dlib_resnet_v1" and same.image is not None
    assert group.data["face"]["faces"] == 2
    assert empty.data["face"] == {"match": "no_face", "model": "dlib_resnet_v1"}
    assert empty.person_id is None and empty.subject_type is None


def test_another_process_sees_enrollments_at_its_next_face(app_node: Any, site: Any) -> None:
    """Each process keeps its galleries; a change made by another is noticed by the counter."""
    base = face(5)
    other = bootstrap(app_node.settings)
    try:
        [before] = send(other, capture(sighting(base, 10)))
        assert before.data["face"]["match"] == "stranger"  # nobody enrolled yet
        enroll(app_node, site["people"]["后来人"], [[float(x) for x in base]])
        [after] = send(other, capture(sighting(base, 11)))
        assert after.person_id == site["people"]["后来人"]
    finally:
        other.dispose()


def test_link_makes_a_strangers_sightings_count_as_the_person(app_node: Any, site: Any) -> None:
    base = face(6)
    first, second = send(app_node, capture(sighting(base, 12)), capture(sighting(base, 13)))
    c = cluster(app_node, first.data["face"]["stranger"])
    who = site["people"]["链接人"]
    with app_node.unit_of_work() as ctx:
        app_node.faces.link(ctx, c.id, who)
    with app_node.unit_of_work() as ctx:
        past = ctx.session.scalars(
            select(StoredEvent.person_id).where(StoredEvent.id.in_([first.id, second.id]))
        ).all()
    assert past == [who, who]
    [later] = send(app_node, capture(sighting(base, 14)))
    assert later.person_id == who and later.subject_value == c.code
    assert later.data["face"]["match"] == "resident" and later.data["face"]["linked"] is True


def test_not_this_person_is_remembered(app_node: Any, site: Any) -> None:
    base = face(7)
    wrong = site["people"]["被否认"]
    enroll(app_node, wrong, [[float(x) for x in base]])
    probe = sighting(base, 15, 0.15)
    [row] = send(app_node, capture(probe))
    assert row.person_id == wrong
    with app_node.unit_of_work() as ctx, pytest.raises(ValidationFailed) as blank:
        app_node.faces.not_this_person(ctx, row.id, "  ")
    assert blank.value.errors[0].field == "reason"
    with app_node.unit_of_work() as ctx:
        app_node.faces.not_this_person(ctx, row.id, "家属，长得像")
    with app_node.unit_of_work() as ctx:
        fixed = ctx.session.get(StoredEvent, row.id)
        assert fixed is not None and fixed.person_id is None
        assert fixed.data["face"]["rejected"] == [f"p:{wrong}"]
    # The same face again (a little apart) no longer matches that person …
    [again] = send(app_node, capture(sighting(base, 16, 0.1)))
    assert again.person_id is None and again.data["face"]["match"] == "stranger"
    # … while a clearly different look of them (far from the rejected face) still does.
    rejected = np.asarray(probe)
    opposite = base - 2 * (rejected - base)  # 0.3 from the enrolled face, 0.45 from the probe
    [clear] = send(app_node, capture([float(x) for x in opposite]))
    assert clear.person_id == wrong


def test_merge_and_split_clusters(app_node: Any, site: Any) -> None:
    a, b = face(8), face(9)
    at = utcnow()
    rows_a = send(app_node, capture(sighting(a, 20), at=at), capture(sighting(a, 21), at=at))
    rows_b = send(app_node, capture(sighting(b, 22), at=at + dt.timedelta(minutes=1)))
    keep = cluster(app_node, rows_a[0].data["face"]["stranger"])
    other = cluster(app_node, rows_b[0].data["face"]["stranger"])
    with app_node.unit_of_work() as ctx:
        merged = app_node.faces.merge(ctx, keep.id, other.id)
    assert merged.sightings == 3 and merged.templates >= 2 and merged.code == keep.code
    assert cluster(app_node, other.code).merged_into_id == keep.id
    # b's face now joins the kept cluster.
    [b_again] = send(app_node, capture(sighting(b, 23)))
    assert b_again.subject_value == keep.code
    # That was wrong: split b's sightings off into a cluster of their own.
    b_events = [rows_b[0].id, b_again.id]
    with app_node.unit_of_work() as ctx:
        new = app_node.faces.split(ctx, keep.id, b_events)
    assert new.code != keep.code and new.sightings == 2 and new.templates >= 1
    with app_node.unit_of_work() as ctx:
        codes = ctx.session.scalars(
            select(StoredEvent.subject_value).where(StoredEvent.id.in_(b_events))
        ).all()
        with pytest.raises(ValidationFailed):  # not its sightings any more
            app_node.faces.split(ctx, keep.id, b_events)
    assert set(codes) == {new.code}
    [b_third] = send(app_node, capture(sighting(b, 24)))
    assert b_third.subject_value == new.code
    [a_again] = send(app_node, capture(sighting(a, 25)))
    assert a_again.subject_value == keep.code


def test_a_watched_face_raises_a_police_only_key_person_alert(app_node: Any, site: Any) -> None:
    base, elsewhere = face(10), face(11)
    with app_node.unit_of_work() as ctx:
        entry = watchlist.add_entry(
            ctx.session, org_unit_id=site["district"], list_kind=watchlist.WatchList.KEY_PERSON,
            category="在逃", reason="测试", match_type=watchlist.MatchType.FACE, value="照片",
        )  # fmt: skip
        far = watchlist.add_entry(
            ctx.session, org_unit_id=site["other_district"],
            list_kind=watchlist.WatchList.KEY_PERSON, category="在逃", reason="别的分局",
            match_type=watchlist.MatchType.FACE, value="照片",
        )  # fmt: skip
        app_node.faces.enroll_watch_vectors(ctx, entry.id, [base.tolist()], SIM)
        app_node.faces.enroll_watch_vectors(ctx, far.id, [elsewhere.tolist()], SIM)
        entry_id, far_id = entry.id, far.id
    app_node.rules.reload()  # as the watchlist page does after an edit
    seen, not_here = send(app_node, capture(sighting(base, 30)), capture(sighting(elsewhere, 31)))
    assert seen.data["face"]["watch"] == [entry_id]
    assert seen.data["face"]["match"] == "stranger"  # unknown otherwise: still tracked
    assert "watch" not in not_here.data["face"]  # that entry's district is not this one
    assert app_node.rules.drain(10)  # the alert models run on the rules thread
    with app_node.unit_of_work() as ctx:
        [alert] = ctx.session.scalars(
            select(Alert).where(
                Alert.model == "key_person", Alert.community_id == site["community"]
            )
        ).all()
        assert alert.police_only and alert.detail["entries"] == [entry_id]
        assert far_id not in alert.detail["entries"]
