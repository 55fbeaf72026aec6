"""Trajectories (轨迹) on SQLite and PostgreSQL: every sighting of a subject in a time range,
oldest first, with place and device, scoped to the caller.

A trajectory's sighting is lean (``service.trajectory``: what the timeline and the API
show, all of it in the subject indexes so PostgreSQL reads no heap row); the whole events,
face matches shown as ``for_actor`` lets the caller see them, come from
``service.trajectory_events``. Both read through a statement of their own, built once per
caller and filter shape (``service._trajectory_statement``); these tests hold their answers
to what the stored events say and to the general search path (``service.search``) on the
same rows.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

import pytest

from anju.core.context import Ctx
from anju.core.errors import ValidationFailed
from anju.core.scope import Actor
from anju.devices.models import Device, DeviceKind
from anju.events import service
from anju.events.models import StoredEvent
from tests import factories as f

# Recent, so that PostgreSQL has the months' partitions; whole seconds plus the offsets below.
T0 = dt.datetime.now(dt.UTC).replace(minute=0, second=0, microsecond=0) - dt.timedelta(days=3)
SINCE, UNTIL = T0, T0 + dt.timedelta(days=1)
PERSON, OTHER_PERSON = 900_001, 900_002
CARD = "00AB12"
FACE = {"distance": 0.31, "watch": "重点人员"}


@dataclasses.dataclass
class World:
    home: Any  # a Tree: the caller's district and community
    away: Any  # another district's community
    gate: Device
    barrier: Device
    elsewhere: Device
    events: dict[str, StoredEvent]


def _device(ctx: Ctx, community_id: int, code: str, name: str, kind: DeviceKind) -> Device:
    device = Device(community_id=community_id, code=code, name=name, kind=kind)
    ctx.session.add(device)
    ctx.session.flush()
    return device


def _event(ctx: Ctx, key: str, device: Device, at: dt.datetime, **kw: Any) -> StoredEvent:
    values: dict[str, Any] = {
        "kind": "access.card",
        "subject_type": "card",
        "subject_value": CARD,
        "person_id": PERSON,
        "direction": "in",
        "data": {},
        "history": False,
        "received_at": at + dt.timedelta(seconds=2),
    }
    values.update(kw)
    event = StoredEvent(
        community_id=device.community_id, device_id=device.id, event_key=key, at=at, **values
    )
    ctx.session.add(event)
    return event


@pytest.fixture
def world(ctx: Ctx) -> World:
    """Sightings of one person and card in two districts, with the edges of the range, ties,
    a face match, and every optional field filled somewhere."""
    home, away = f.tree(ctx), f.tree(ctx)
    gate = _device(
        ctx, home.community.id, f"{home.community.code}-G", "东门闸机", DeviceKind.FACE_GATE
    )
    barrier = _device(
        ctx, home.community.id, f"{home.community.code}-B", "南门道闸", DeviceKind.BARRIER
    )
    elsewhere = _device(
        ctx, away.community.id, f"{away.community.code}-G", "北门", DeviceKind.FACE_GATE
    )
    h = dt.timedelta(hours=1)
    e = {
        "first": _event(ctx, "first", gate, T0),  # exactly at ``since``: included
        "before": _event(ctx, "before", gate, T0 - dt.timedelta(microseconds=1)),
        "face": _event(
            ctx, "face", gate, T0 + h + dt.timedelta(microseconds=500_000), data={"face": FACE}
        ),
        "full": _event(
            ctx,
            "full",
            barrier,
            T0 + 2 * h + dt.timedelta(microseconds=123_456),
            kind="vehicle.passed",
            direction=None,
            value=1.5,
            image="ab/cdef.jpg",
            history=True,
            vehicle_id=77,
            house_id=88,
            data={"plate_colour": "blue", "n": [1, 2.5, None]},
        ),
        "away": _event(ctx, "away", elsewhere, T0 + 3 * h),
        "no-subject": _event(
            ctx,
            "no-subject",
            gate,
            T0 + 4 * h,
            kind="door.opened",
            subject_type=None,
            subject_value=None,
            direction=None,
        ),
        "other": _event(
            ctx, "other", gate, T0 + 5 * h, subject_value="00FF00", person_id=OTHER_PERSON
        ),
        "last": _event(ctx, "last", gate, UNTIL - dt.timedelta(microseconds=1)),
        "at-until": _event(ctx, "at-until", gate, UNTIL),  # ``until`` is exclusive
    }
    # Two sightings at the same instant: ordered by id.
    e["tie-1"] = _event(ctx, "tie-1", gate, T0 + 6 * h, direction="out")
    ctx.session.flush()
    e["tie-2"] = _event(ctx, "tie-2", barrier, T0 + 6 * h, direction="in")
    ctx.session.flush()
    return World(home, away, gate, barrier, elsewhere, e)


# What a sighting holds, in this order.
SIGHTING = (
    "id",
    "kind",
    "at",
    "community_id",
    "community",
    "device",
    "device_name",
    "subject",
    "direction",
)


def lean(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Events in the API shape cut down to sightings."""
    return [{k: e[k] for k in SIGHTING} for e in events]


def sightings(w: World, keys: list[str]) -> list[dict[str, Any]]:
    """The named events as a trajectory's sightings, from what was stored."""
    return lean(expected(w, keys))


def expected(w: World, keys: list[str]) -> list[dict[str, Any]]:
    """The API shape of the named events, from what was stored (not from the code under test)."""
    places = {
        w.gate.id: (w.home.community.name, w.gate),
        w.barrier.id: (w.home.community.name, w.barrier),
        w.elsewhere.id: (w.away.community.name, w.elsewhere),
    }
    out = []
    for key in keys:
        e = w.events[key]
        community, device = places[e.device_id]
        out.append(
            {
                "id": e.id,
                "event_id": e.event_key,
                "kind": e.kind,
                "at": e.at.astimezone(dt.UTC).isoformat(),
                "received_at": e.received_at.astimezone(dt.UTC).isoformat(),
                "community_id": e.community_id,
                "community": community,
                "device": device.code,
                "device_name": device.name,
                "subject": {"type": e.subject_type, "value": e.subject_value}
                if e.subject_type
                else None,
                "direction": e.direction,
                "value": e.value,
                "data": e.data,
                "image": e.image,
                "history": e.history,
                "person_id": e.person_id,
                "vehicle_id": e.vehicle_id,
                "house_id": e.house_id,
            }
        )
    return out


def as_caller(ctx: Ctx, org_path: str, *permissions: str, police: bool = False) -> Ctx:
    actor = Actor(
        user_id=None,
        username="caller",
        org_path=org_path,
        permissions=frozenset({"event.view", "trajectory.view", *permissions}),
        police=police,
    )
    return dataclasses.replace(ctx, actor=actor)


BY_PERSON = service.EventFilter(person_id=PERSON, since=SINCE, until=UNTIL)
BY_CARD = service.EventFilter(subject_type="card", subject_value=CARD, since=SINCE, until=UNTIL)
IN_RANGE = ["first", "face", "full", "away", "no-subject", "tie-1", "tie-2", "last"]


def test_a_trajectory_is_every_sighting_in_the_range_in_order_with_place_and_device(
    ctx: Ctx, world: World
) -> None:
    got = service.trajectory(ctx, BY_PERSON)
    assert got == sightings(world, IN_RANGE)
    assert all(list(s) == list(SIGHTING) for s in got)  # nothing more: no data, value, image
    card = ["first", "face", "full", "away", "tie-1", "tie-2", "last"]
    # The card as a device reports it: normalised the way adapters store it.
    by_card = dataclasses.replace(BY_CARD, subject_value=" 00ab12 ")
    assert service.trajectory(ctx, by_card) == sightings(world, card)
    by_vehicle = service.EventFilter(vehicle_id=77)
    assert service.trajectory(ctx, by_vehicle) == sightings(world, ["full"])


def test_a_trajectorys_whole_events_are_every_event_in_the_range_in_order(
    ctx: Ctx, world: World
) -> None:
    got = service.trajectory_events(ctx, BY_PERSON)
    assert got == expected(world, IN_RANGE)
    # The same keys in the same order as every other event answer (search, live feed).
    assert all(list(s) == list(e) for s, e in zip(got, expected(world, IN_RANGE), strict=True))
    by_vehicle = service.EventFilter(vehicle_id=77)
    assert service.trajectory_events(ctx, by_vehicle) == expected(world, ["full"])


def test_a_trajectory_keeps_to_the_callers_communities(ctx: Ctx, world: World) -> None:
    district = as_caller(ctx, world.home.district.path, "face.view", police=True)
    mine = [k for k in IN_RANGE if k != "away"]
    assert service.trajectory(district, BY_PERSON) == sightings(world, mine)
    assert service.trajectory_events(district, BY_PERSON) == expected(world, mine)
    community = as_caller(ctx, world.away.community.path, "face.view", police=True)
    assert service.trajectory(community, BY_PERSON) == sightings(world, ["away"])
    assert service.trajectory_events(community, BY_PERSON) == expected(world, ["away"])


def test_a_sighting_tells_nobody_of_a_face_match(ctx: Ctx, world: World) -> None:
    """Whoever asks, a sighting is the same: the match is on the event, not in the answer."""
    path = world.home.district.path
    police = service.trajectory(as_caller(ctx, path, "face.view", police=True), BY_CARD)
    guard = service.trajectory(as_caller(ctx, path), BY_CARD)
    assert police == guard and police
    assert all("data" not in s for s in police)


def test_a_trajectorys_events_show_face_matches_as_for_actor_does(ctx: Ctx, world: World) -> None:
    path = world.home.district.path
    police = service.trajectory_events(as_caller(ctx, path, "face.view", police=True), BY_CARD)
    staff = service.trajectory_events(as_caller(ctx, path, "face.view"), BY_CARD)
    guard = service.trajectory_events(as_caller(ctx, path), BY_CARD)

    def face(sightings: list[dict[str, Any]]) -> dict[str, Any]:
        return next(s for s in sightings if s["event_id"] == "face")

    assert face(police)["data"] == {"face": FACE}
    assert face(staff)["data"] == {"face": {"distance": 0.31}}  # not that the police watch it
    assert face(guard)["data"] == {}
    assert [s["event_id"] for s in guard] == [s["event_id"] for s in police]


@pytest.mark.parametrize(
    "extra",
    [
        {},
        {"kind": "access.card"},
        {"device": "__gate__"},
        {"community_id": "__away__"},
        {"include_history": False},
        {"exclude_kinds": frozenset({"door.opened", "vehicle.passed"})},
        {"since": None},
        {"until": None},
    ],
)
def test_a_trajectory_answers_as_the_event_search_does(
    ctx: Ctx, world: World, extra: dict[str, Any]
) -> None:
    """The trajectory's own statements against the general search path on the same rows:
    the same events, fields and values, in the opposite order (search is newest first)."""
    values = {
        k: world.gate.code if v == "__gate__" else world.away.community.id if v == "__away__" else v
        for k, v in extra.items()
    }
    for caller in (ctx, as_caller(ctx, world.home.district.path)):
        for base in (BY_PERSON, BY_CARD):
            flt = dataclasses.replace(base, **values)
            found, total = service.search(caller, flt, size=100)
            reference = [{k: v for k, v in e.items() if k != "person_name"} for e in found[::-1]]
            got = service.trajectory_events(caller, flt)
            assert got == reference and len(got) == total
            assert all(list(a) == list(b) for a, b in zip(got, reference, strict=True))
            assert service.trajectory(caller, flt) == lean(reference)
    assert service.trajectory(ctx, dataclasses.replace(BY_PERSON, **values))  # not vacuous


def test_one_statement_serves_every_subject_and_range_of_a_shape(ctx: Ctx, world: World) -> None:
    """The statement is built once per caller and shape; each call's values are its own."""
    other = service.EventFilter(person_id=OTHER_PERSON, since=SINCE, until=UNTIL)
    assert service.trajectory(ctx, BY_PERSON) == sightings(world, IN_RANGE)
    assert service.trajectory(ctx, other) == sightings(world, ["other"])
    later = dataclasses.replace(BY_PERSON, since=T0 + dt.timedelta(hours=5))
    assert service.trajectory(ctx, later) == sightings(world, ["tie-1", "tie-2", "last"])
    assert service.trajectory_events(ctx, later) == expected(world, ["tie-1", "tie-2", "last"])
    home = as_caller(ctx, world.home.district.path)
    away = as_caller(ctx, world.away.district.path)
    away_id = world.events["away"].id
    assert [s["id"] for s in service.trajectory(away, BY_PERSON)] == [away_id]
    assert away_id not in [s["id"] for s in service.trajectory(home, BY_PERSON)]


def test_a_trajectory_stops_at_its_limit(ctx: Ctx, world: World) -> None:
    assert service.trajectory(ctx, BY_PERSON, limit=3) == sightings(world, IN_RANGE[:3])
    assert service.trajectory_events(ctx, BY_PERSON, limit=2) == expected(world, IN_RANGE[:2])


@pytest.mark.parametrize(
    ("flt", "field"),
    [
        (service.EventFilter(since=SINCE, until=UNTIL), "subject"),
        (service.EventFilter(subject_type="card", since=SINCE), "subject"),
        (dataclasses.replace(BY_PERSON, until=SINCE + dt.timedelta(days=367)), "until"),
        (dataclasses.replace(BY_PERSON, kind="nope"), "kind"),
        (service.EventFilter(subject_type="mac", subject_value="not a mac"), "subject_value"),
        (service.EventFilter(subject_type="nope", subject_value="x"), "subject_type"),
    ],
)
def test_a_trajectory_refuses_what_it_cannot_answer(
    ctx: Ctx, flt: service.EventFilter, field: str
) -> None:
    for path in (service.trajectory, service.trajectory_events):
        with pytest.raises(ValidationFailed) as refused:
            path(ctx, flt)
        assert refused.value.errors[0].field == field


def test_the_trajectory_path_knows_every_filter_field() -> None:
    """A field added to EventFilter must be handled by the trajectory's own statement too."""
    fields = {f.name for f in dataclasses.fields(service.EventFilter)}
    assert fields == service.TRAJECTORY_FILTER_FIELDS


def test_a_trajectory_sees_the_callers_own_pending_events(ctx: Ctx, world: World) -> None:
    """As an ORM query would: what the caller added but has not flushed is in the answer."""
    late = _event(ctx, "pending", world.gate, T0 + dt.timedelta(hours=7))
    got = service.trajectory(ctx, BY_PERSON)
    assert late.id is not None
    assert [s["id"] for s in got][-2:] == [late.id, world.events["last"].id]
