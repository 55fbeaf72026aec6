"""Simulated faces: stable identities, noisy sightings calibrated to the real photographs'
distance distributions, and stranger clustering measured on them."""

from __future__ import annotations

import datetime as dt
import json
import statistics
from collections import Counter
from collections.abc import Iterator

import numpy as np
import pytest
from sqlalchemy import select

from anju.alerts.models import Alert
from anju.alerts.watchlist import WatchEntry
from anju.bootstrap import Node, bootstrap, initialise
from anju.core.scope import Actor
from anju.events import wire
from anju.events.api import Sender, deliver
from anju.events.models import StoredEvent
from anju.sim.anomalies import plant
from anju.sim.community import CommunityConfig, build_community
from anju.sim.faces import (
    DIM,
    MODEL,
    SimFaces,
    cluster_online,
    cluster_quality,
    distance,
    distance_samples,
    enrol_people,
    person_key,
    stranger_sightings,
    track_id,
)
from anju.sim.life import Day, Life, SimEvent, World
from anju.sim.runner import community_id_of, prepare, register_watches
from tests.conftest import ADMIN_PASSWORD, make_settings

# Measured on fixtures/faces with dlib's ResNet (SOURCES.md).
SAME_MEDIAN, DIFFERENT_MEDIAN = 0.34, 0.84
THRESHOLD = 0.6  # the node's default face threshold
STRANGER_THRESHOLD = 0.55  # the node's default
MONDAY = dt.date(2026, 11, 16)


@pytest.fixture(scope="module")
def samples() -> tuple[list[float], list[float]]:
    """300 people, four sightings each: 1800 same-person pairs, 44 850 different pairs."""
    return distance_samples(SimFaces("CALIB"), people=300, per_person=4)


def test_faces_are_stable_and_sightings_differ() -> None:
    faces, again = SimFaces("AJHY"), SimFaces("AJHY")
    key = person_key(42)
    assert np.array_equal(faces.identity(key), again.identity(key))
    assert abs(np.linalg.norm(faces.identity(key)) - 1) < 1e-9
    assert faces.feature(key, "2026-11-21|GATE|30000") == again.feature(
        key, "2026-11-21|GATE|30000"
    )
    one, two = faces.sighting(key, "a"), faces.sighting(key, "b")
    assert not np.array_equal(one, two) and 0 < distance(one, two) < THRESHOLD
    # another community's person 42 is someone else
    assert distance(faces.identity(key), SimFaces("OTHER").identity(key)) > THRESHOLD


def test_wire_features_are_short_floats_of_the_model() -> None:
    faces = SimFaces("AJHY")
    feature = faces.feature("courier:001", "x")
    assert len(feature) == DIM and MODEL == "anju-sim-v1"
    assert all(isinstance(v, float) and round(v, 4) == v for v in feature)
    assert 0.9 < float(np.linalg.norm(feature)) < 1.2  # unit-ish
    # rounding moves a vector by far less than any distance that matters
    assert distance(feature, faces.sighting("courier:001", "x")) < 1e-3
    assert track_id("GATE", 1, "x") != track_id("GATE", 2, "x")
    assert track_id("GATE", 1, "x").startswith("T")


def test_same_person_distances_match_the_real_photographs(
    samples: tuple[list[float], list[float]],
) -> None:
    same, _ = samples
    assert abs(statistics.median(same) - SAME_MEDIAN) <= 0.05
    # real: 0.04–0.53; the bulk lies well inside, and a match at the default threshold
    # stays almost certain
    low, high = np.quantile(same, [0.01, 0.99])
    assert low >= 0.1 and high <= 0.53, (low, high)
    assert sum(d > THRESHOLD for d in same) / len(same) < 0.002


def test_different_people_distances_match_the_real_photographs(
    samples: tuple[list[float], list[float]],
) -> None:
    _, different = samples
    assert len(different) == 300 * 299 // 2
    assert abs(statistics.median(different) - DIFFERENT_MEDIAN) <= 0.05
    low, high = np.quantile(different, [0.01, 0.99])
    assert low >= 0.66 and high <= 1.03, (low, high)  # real: 0.66–1.03
    assert min(different) >= THRESHOLD  # no false match among 300 people


def test_cluster_quality_counts_impure_and_split_clusters() -> None:
    truth = ["a", "a", "a", "b", "b", "c"]
    q = cluster_quality(truth, [1, 1, 2, 2, 3, 4])
    # clusters {a}, {a, b}, {b}, {c}: three of four pure; a and b each split in two
    assert (q.clusters, q.identities) == (4, 3)
    assert q.purity == 0.75 and q.split == 1.0
    assert q.clusters_per_identity == pytest.approx(5 / 3)
    perfect = cluster_quality(truth, [9, 9, 9, 8, 8, 7])
    assert (perfect.purity, perfect.split, perfect.clusters) == (1.0, 0.0, 3)
    with pytest.raises(ValueError):
        cluster_quality(truth, [1])


def test_simulated_strangers_cluster_into_their_identities() -> None:
    truth, vectors = stranger_sightings(SimFaces("AJHY"), recurring=15, visits=30, one_off=300)
    assert len(vectors) == 15 * 30 + 300 * 2
    quality = cluster_quality(truth, cluster_online(vectors, STRANGER_THRESHOLD))
    assert quality.identities == 315
    assert quality.purity == 1.0  # no two people ever share a cluster
    assert quality.split <= 0.05  # and a recurring stranger keeps one cluster
    assert quality.clusters <= 315 * 1.05


# --- faces in the simulated life ----------------------------------------------------------


@pytest.fixture(scope="module")
def sim_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Node]:
    """A node (SQLite) with a community of 60 residents."""
    data = tmp_path_factory.mktemp("faces")
    node = bootstrap(make_settings(data, f"sqlite:///{data / 'anju.db'}"))
    initialise(node, admin_password=ADMIN_PASSWORD)
    with node.unit_of_work() as ctx:
        build_community(ctx, CommunityConfig(seed=3, residents=60, code="FACE"))
    yield node
    node.dispose()


@pytest.fixture(scope="module")
def world(sim_node: Node) -> World:
    """The community as the simulator reads it; its people's faces enrolled."""
    return prepare(sim_node, "FACE")


@pytest.fixture(scope="module")
def week(world: World) -> list[Day]:
    return list(Life(world, seed=1).days(MONDAY - dt.timedelta(days=6), MONDAY))


def faces_of(days: list[Day]) -> list[SimEvent]:
    return [e for d in days for e in d.events if "feature" in (e.body.get("data") or {})]


def test_cameras_send_features_and_track_ids_never_who_it_is(week: list[Day]) -> None:
    seen = faces_of(week)
    kinds = Counter(e.kind for e in seen)
    assert kinds["capture.face"] > 100 and kinds["access.denied"] > 0, kinds
    tracks = Counter(e.body["subject"]["value"] for e in seen)
    assert max(tracks.values()) == 1  # a track id per capture
    for e in seen:
        data, subject = e.body["data"], e.body["subject"]
        assert data["model"] == MODEL and len(data["feature"]) == DIM
        assert subject["type"] == "face" and subject["value"].startswith("T")
        assert e.who is not None and e.who not in json.dumps(e.body)  # the truth stays here
        assert "courier" not in json.dumps(e.body) and "guest" not in json.dumps(e.body)
    # residents walking through a gate are captured, couriers and guests at the gates too
    who = Counter(e.who.split(":")[0] for e in seen if e.who)
    assert who["person"] > 50 and who["courier"] > 20 and who["guest"] > 0, who


def test_a_day_with_faces_is_still_the_same_day(world: World, week: list[Day]) -> None:
    again = Life(world, seed=1).day(week[-1].date)
    assert [e.body for e in again.events] == [e.body for e in week[-1].events]


def test_captured_faces_match_their_person_and_no_one_else(world: World, week: list[Day]) -> None:
    faces = SimFaces(world.community)
    templates = {
        r.person_id: np.asarray(faces.template(person_key(r.person_id))) for r in world.residents()
    }
    ids = sorted(templates)
    gallery = np.stack([templates[i] for i in ids])
    hits = misses = wrong = 0
    for e in faces_of(week):
        if not e.who or not e.who.startswith("person:"):
            continue
        probe = np.asarray(e.body["data"]["feature"])
        d = np.linalg.norm(gallery - probe, axis=1)
        best = int(np.argmin(d))
        if d[best] > THRESHOLD:
            misses += 1
        elif f"person:{ids[best]}" == e.who:
            hits += 1
        else:
            wrong += 1
    assert hits > 50 and wrong == 0 and misses <= hits * 0.01, (hits, misses, wrong)


def test_couriers_keep_their_face_from_day_to_day(week: list[Day]) -> None:
    seen = [e for e in faces_of(week) if e.who and e.who.startswith("courier:")]
    by_courier: dict[str, list[list[float]]] = {}
    days: dict[str, set[dt.date]] = {}
    for e in seen:
        by_courier.setdefault(str(e.who), []).append(e.body["data"]["feature"])
        days.setdefault(str(e.who), set()).add(e.at.date())
    recurring = [c for c, d in days.items() if len(d) >= 3]
    assert recurring
    truth = [c for c in recurring for _ in by_courier[c]]
    vectors = [v for c in recurring for v in by_courier[c]]
    quality = cluster_quality(truth, cluster_online(vectors, STRANGER_THRESHOLD))
    assert quality.purity == 1.0 and quality.clusters_per_identity <= 1.1, quality


def test_people_are_enrolled_once_and_recognised_by_the_node(sim_node: Node, world: World) -> None:
    people = {r.person_id for r in world.residents()} | set(world.former)
    with sim_node.unit_of_work() as ctx:
        counts = {p: sim_node.faces.face_count(ctx, p) for p in people}
        assert set(counts.values()) == {1}
        assert enrol_people(ctx, sim_node.faces, world) == 0  # a second start adds nothing
    # two days of the gates' faces through the real pipeline, in time order
    life = Life(world, seed=4)
    days = list(life.days(MONDAY - dt.timedelta(days=1), MONDAY))
    events = sorted((e for e in faces_of(days)), key=lambda e: (e.at, e.device))
    sender = Sender(None, Actor.system("test"))
    now = dt.datetime.now(dt.UTC)
    for i in range(0, len(events), 200):
        deliver(sim_node, wire.parse_batch([e.body for e in events[i : i + 200]], now), sender)
    ids = {str(e.body["id"]): e for e in events}
    with sim_node.unit_of_work() as ctx:
        rows = ctx.session.execute(
            select(
                StoredEvent.event_key, StoredEvent.person_id, StoredEvent.subject_value,
                StoredEvent.data,
            ).where(StoredEvent.event_key.in_(list(ids)))
        ).all()  # fmt: skip
    assert len(rows) == len(events)
    codes: dict[str, set[str]] = {}
    for row in rows:
        who = str(ids[row.event_key].who)
        assert "feature" not in (row.data or {})  # the vector is not kept with the event
        if who.startswith("person:"):
            assert row.person_id == int(who.split(":")[1]), row
        else:
            assert row.person_id is None and row.subject_value.startswith("S-"), row
            codes.setdefault(who, set()).add(row.subject_value)
    # a stranger keeps one code, across days; no two strangers share one
    assert all(len(c) == 1 for c in codes.values()), codes
    owners = Counter(next(iter(c)) for c in codes.values())
    assert max(owners.values()) == 1
    couriers = [w for w in codes if w.startswith("courier:")]
    both_days = [w for w in couriers if len({e.at.date() for e in events if e.who == w}) == 2]
    assert both_days, "some couriers come on both days"


def test_a_watched_face_at_the_gate_raises_a_police_only_key_person_alert(
    sim_node: Node, world: World
) -> None:
    life = Life(world, seed=4)
    days = list(life.days(MONDAY - dt.timedelta(days=3), MONDAY))
    community_id = community_id_of(sim_node, "FACE")
    scenario = plant(life, days, community_id)
    face_watch = next(w for w in scenario.watches if w.match_type == "face")
    assert face_watch.list_kind == "key_person" and len(face_watch.face) == DIM
    register_watches(sim_node, community_id, scenario)
    sim_node.rules.reload()
    planted = [e for e in scenario.events if e.who == "watch:000"]
    visitors = {e.at.date() for e in planted}
    assert len(planted) == 4 and len(visitors) == 2  # in and out, on two days
    bodies = sorted((e for e in scenario.events if e.at.date() in visitors), key=lambda e: e.at)
    sender = Sender(None, Actor.system("test"))
    outcomes = wire.parse_batch([e.body for e in bodies], dt.datetime.now(dt.UTC))
    deliver(sim_node, outcomes, sender)
    assert sim_node.rules.drain(30)
    with sim_node.unit_of_work() as ctx:
        entry = ctx.session.scalar(
            select(WatchEntry.id).where(WatchEntry.match_value == "SIM-KP-001")
        )
        ids = [str(e.body["id"]) for e in planted]
        rows = ctx.session.execute(
            select(StoredEvent.subject_value, StoredEvent.data).where(
                StoredEvent.event_key.in_(ids)
            )
        ).all()
        alerts = ctx.session.scalars(
            select(Alert).where(Alert.model == "key_person", Alert.community_id == community_id)
        ).all()
    assert len(rows) == 4
    assert all(r.data["face"]["watch"] == [entry] for r in rows)
    codes = {r.subject_value for r in rows}
    assert len(codes) == 1 and next(iter(codes)).startswith("S-")  # one stranger, both days
    face_alerts = [a for a in alerts if a.subject_value in codes]
    assert len(face_alerts) == 2 and all(a.police_only for a in face_alerts)  # one a day
