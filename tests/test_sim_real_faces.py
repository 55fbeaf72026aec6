"""The demo's real faces (anju.sim.real_faces) through the real encoder, pipeline and alert
models: the resident enrolled by photo is recognised at the gate, each returning stranger
keeps one code, the key person watched by photo raises a police-only alert, the loiterer is
caught, and the photo never sent finds the resident by search."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import func, select

from anju.alerts.models import Alert
from anju.alerts.watchlist import WatchEntry
from anju.bootstrap import Node, bootstrap, initialise
from anju.core.scope import Actor
from anju.events import wire
from anju.events.api import Sender, deliver
from anju.events.models import StoredEvent
from anju.sim import real_faces
from anju.sim.community import CommunityConfig, build_community
from anju.sim.life import World
from anju.sim.runner import community_id_of, prepare
from tests.conftest import ADMIN_PASSWORD, make_settings


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Node, World, int]]:
    """A node (SQLite) with a small community, its demo resident enrolled by photo."""
    data = tmp_path_factory.mktemp("real-faces")
    node = bootstrap(make_settings(data, f"sqlite:///{data / 'anju.db'}"))
    initialise(node, admin_password=ADMIN_PASSWORD)
    with node.unit_of_work() as ctx:
        build_community(ctx, CommunityConfig(seed=5, residents=40, code="REAL"))
    world = prepare(node, "REAL")
    resident = next(world.residents()).person_id
    community_id = community_id_of(node, "REAL")
    real_faces.enrol(node, community_id, resident)
    real_faces.enrol(node, community_id, resident)  # a second start adds nothing
    node.rules.reload()
    yield node, world, resident
    node.rules.close()
    node.dispose()


def test_enrolment_happens_once(site: tuple[Node, World, int]) -> None:
    node, _world, resident = site
    with node.unit_of_work() as ctx:
        assert node.faces.face_count(ctx, resident) == 2  # the simulator's and the photo's
        entries = ctx.session.scalar(
            select(func.count())
            .select_from(WatchEntry)
            .where(WatchEntry.match_value == real_faces.WATCH_VALUE)
        )
        assert entries == 1


def test_a_day_of_real_faces_through_the_node(site: tuple[Node, World, int]) -> None:
    node, world, resident = site
    camera = real_faces.camera_of(world)
    assert camera is not None
    yesterday = dt.datetime.now(world.tz).date() - dt.timedelta(days=1)
    day = real_faces.RealFaces(camera).day(yesterday, world.tz, seed=1)
    assert [e.at for e in day] == sorted(e.at for e in day)
    assert all(real_faces.SEARCH_PHOTO not in str(e.body) for e in day)
    outcomes = wire.parse_batch([e.body for e in day], dt.datetime.now(dt.UTC))
    processed = deliver(node, outcomes, Sender(None, Actor.system("test")))
    assert processed.count("accepted") == len(day)
    assert node.rules.drain(30)
    who = {str(e.body["id"]): e.who for e in day}
    with node.unit_of_work() as ctx:
        rows = ctx.session.execute(
            select(StoredEvent.event_key, StoredEvent.person_id, StoredEvent.subject_value,
                   StoredEvent.data).where(StoredEvent.event_key.in_(list(who)))
        ).all()  # fmt: skip
        entry = ctx.session.scalar(
            select(WatchEntry.id).where(WatchEntry.match_value == real_faces.WATCH_VALUE)
        )
    codes: dict[str, set[str]] = {}
    for row in rows:
        face: dict[str, Any] = row.data["face"]
        assert face["model"] == "dlib_resnet_v1"
        if who[row.event_key] == "obama":
            assert row.person_id == resident and face["match"] == "resident", face
        else:
            assert row.person_id is None and face["match"] == "stranger", face
            codes.setdefault(str(who[row.event_key]), set()).add(row.subject_value)
        if who[row.event_key] == "biden":
            assert face["watch"] == [entry]
        else:
            assert "watch" not in face
    assert {k: len(v) for k, v in codes.items()} == {"alex": 1, "kit": 1, "biden": 1}
    assert len(set().union(*codes.values())) == 3  # three strangers, three codes

    # The key person is a police-only alert; the loiterer is judged on the minute's tick
    # (the node ticks with the clock: here, the minute after the loiterer's last lap).
    last_lap = max(
        e.at for e in day if e.who == real_faces.LOITERER and e.at.hour == real_faces.LOITER_HOUR
    )
    node.rules.tick(node, last_lap + dt.timedelta(minutes=1))
    assert node.rules.drain(30)
    with node.unit_of_work() as ctx:
        alerts = ctx.session.scalars(select(Alert)).all()
    [watched] = [a for a in alerts if a.model == "key_person"]
    assert watched.police_only and watched.subject_value in codes["biden"]
    loiter = [a for a in alerts if a.model == "stranger_loitering"]
    assert [a.subject_value for a in loiter] == list(codes["alex"])

    # The photo never sent finds the resident, with where they were seen.
    photo = (real_faces.PHOTOS / real_faces.SEARCH_PHOTO).read_bytes()
    with node.unit_of_work() as ctx:
        found = node.faces.search_by_photo(ctx, photo, "测试：以图搜人")
    assert found and found[0].kind == "resident" and found[0].id == resident
