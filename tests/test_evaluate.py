"""``anju evaluate``: the scoring on hand-made truths and alerts, the planting's determinism,
and one small end-to-end run through the real pipeline."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from collections import Counter
from pathlib import Path

import pytest
from typer.testing import CliRunner

from anju.alerts.evaluate import WARMUP, Raised, run, score, stage
from anju.alerts.rules.housing import GroupRentalParams
from anju.bootstrap import bootstrap, initialise
from anju.cli import app
from anju.devices.models import DeviceKind
from anju.sim.anomalies import (
    CLEAR,
    CROWD_CAPACITY,
    HOUSE_SIGNS,
    NORMAL_WATER,
    Truth,
    life_truths,
    merged,
    plant,
)
from anju.sim.life import Day, Gate, Home, Life, Resident, SimEvent, World
from tests.conftest import ADMIN_PASSWORD, make_settings

T0 = dt.datetime(2026, 3, 2, 10, 0, tzinfo=dt.UTC)


def at(minutes: float) -> dt.datetime:
    return T0 + dt.timedelta(minutes=minutes)


def test_scoring_counts_matches_by_model_subject_and_window() -> None:
    truths = [
        Truth("fire", 1, "SMOKE-1", at(0), at(3)),
        Truth("fire", 1, "SMOKE-2", at(60), at(60)),
        Truth("fire", 1, "SMOKE-3", at(120), at(120)),  # never found
        Truth("emergency", 1, "DOOR-1", at(0), at(0)),
    ]
    alerts = [
        Raised("fire", "SMOKE-1", at(2)),  # within [start, end]
        Raised("fire", "SMOKE-2", at(65)),  # 5 min late: inside the 10-minute allowance
        Raised("fire", "SMOKE-2", at(90)),  # 30 min late: a false alarm
        Raised("fire", "SMOKE-3", at(119)),  # before the truth started: false
        Raised("emergency", "DOOR-2", at(0)),  # wrong subject
    ]
    scores = score(["fire", "emergency", "crowd"], truths, alerts)
    fire = scores["fire"]
    assert (fire.truths, fire.alerts) == (3, 4)
    assert fire.precision == pytest.approx(2 / 4)
    assert fire.recall == pytest.approx(2 / 3)
    assert fire.median_delay_s == pytest.approx((120 + 300) / 2)  # 2 min and 5 min
    assert fire.met is False
    emergency = scores["emergency"]
    assert (emergency.precision, emergency.recall, emergency.median_delay_s) == (0.0, 0.0, None)
    crowd = scores["crowd"]
    assert crowd.met is None and crowd.precision is None and crowd.recall is None


def test_a_repeat_merged_into_an_open_alert_is_found() -> None:
    # Two e-bikes at one door in a day: one alert (door + day), the second merged into it.
    truths = [
        Truth("ebike", 1, "DOOR-1", at(0), at(0)),
        Truth("ebike", 1, "DOOR-1", at(300), at(300)),
    ]
    alert = Raised("ebike", "DOOR-1", at(0), seen=(at(0), at(300)))
    ebike = score(["ebike"], truths, [alert])["ebike"]
    assert (ebike.precision, ebike.recall, ebike.median_delay_s) == (1.0, 1.0, 0.0)
    # Evidence of another subject, or outside the window, finds nothing.
    late = Raised("ebike", "DOOR-1", at(0), seen=(at(0), at(500)))
    assert score(["ebike"], truths, [late])["ebike"].recall == 0.5


def test_scoring_counts_the_lookalikes_an_alert_landed_on() -> None:
    decoys = [
        Truth("crowd", 1, "CROWD-01", at(0), at(60)),  # a busy hour under capacity
        Truth("crowd", 1, "CROWD-02", at(0), at(60)),
    ]
    alerts = [Raised("crowd", "CROWD-02", at(30))]
    crowd = score(["crowd"], [], alerts, decoys)["crowd"]
    assert (crowd.lookalikes, crowd.fooled, crowd.precision) == (2, 1, 0.0)
    assert crowd.as_dict()["fooled"] == 1


def _world() -> World:
    people = [Resident(100 + i, 30 + i, card=f"C{i}", employee_no=f"E{i}") for i in range(4)]
    homes = (
        Home(1, "DOOR-1", (people[0], people[1]), {DeviceKind.SMOKE_DETECTOR: "SMOKE-1"}),
        Home(2, "DOOR-2", (people[2],), {DeviceKind.SMOKE_DETECTOR: "SMOKE-2"}),
        Home(3, "DOOR-1", (people[3],), {DeviceKind.SMOKE_DETECTOR: "SMOKE-3"}),
    )
    devices = {"SMOKE-1": DeviceKind.SMOKE_DETECTOR, "SMOKE-2": DeviceKind.SMOKE_DETECTOR,
               "SMOKE-3": DeviceKind.SMOKE_DETECTOR, "DOOR-1": DeviceKind.UNIT_DOOR,
               "DOOR-2": DeviceKind.UNIT_DOOR, "GATE-IN": DeviceKind.FACE_GATE,
               "GATE-OUT": DeviceKind.FACE_GATE, "PERI-1": DeviceKind.PERIMETER}  # fmt: skip
    return World(
        community="T",
        timezone="Asia/Shanghai",
        homes=homes,
        gates=(Gate("北门", "GATE-IN", "GATE-OUT"),),
        devices=devices,
        cars={},
        perimeter=("PERI-1",),
    )


def test_planting_is_deterministic_from_the_seed() -> None:
    def planted(seed: int) -> tuple[list[SimEvent], list[Truth]]:
        life = Life(_world(), seed)
        days = list(life.days(dt.date(2026, 3, 2), dt.date(2026, 3, 7)))
        scenario = plant(life, days, 7)
        return scenario.events, scenario.truths

    events, truths = planted(3)
    assert planted(3) == (events, truths)
    assert planted(4) != (events, truths)
    models = {t.model for t in truths}
    assert {"fire", "emergency", "perimeter", "key_person"} <= models
    assert all(t.community_id == 7 and t.start <= t.end for t in truths)
    planted_ids = [e.body["id"] for e in events]
    assert len(planted_ids) == len(set(planted_ids))


def test_planting_keeps_truths_for_incidents_normal_life_holds() -> None:
    life = Life(_world(), 1)
    body = {"id": "x", "device": "SMOKE-3", "kind": "fire.smoke", "at": T0.isoformat(),
            "data": {"state": "alarm"}}  # fmt: skip
    smoke = SimEvent(T0, "SMOKE-3", body)
    day = Day(dt.date(2026, 3, 2), [smoke], frozenset())
    truths = plant(life, [day], 7).truths
    assert Truth("fire", 7, "SMOKE-3", T0, T0) in truths
    # An event a scenario took out (the house of someone away) is no truth.
    assert life_truths(life, [day], 7, dropped={"x"}) == []


@pytest.mark.timeout(600)  # ~30 s on a quiet machine; minutes on a busy shared one
def test_a_small_run_finds_planted_smoke_sos_key_person_crowd_tailgating(tmp_path: Path) -> None:
    result = run(days=2, seed=1, residents=60, data_dir=tmp_path)
    for model in ("fire", "emergency", "key_person", "crowd", "tailgating"):
        s = result.scores[model]
        assert s.truths > 0, model
        assert s.recall == 1.0, (model, s)
    assert result.scores["rental_unregistered"].met is None  # 5 days needed: listed, not dropped


def test_the_command_prints_json_keyed_by_model() -> None:
    out = CliRunner().invoke(
        app, ["evaluate", "--days", "1", "--residents", "40", "--json", "--in-order"]
    )
    assert out.exit_code == 0, out.output
    scores = json.loads(out.output)
    assert set(scores) >= {"fire", "emergency", "crowd"}
    assert scores["rental_unregistered"]["scenario"] is False


def _fitted_world() -> World:
    """Residents, three elderly living alone in houses fitted with sensors, a gate with a
    face camera, and two people-counting cameras."""
    people = [Resident(100 + i, 30 + i, card=f"C{i}", employee_no=f"E{i}") for i in range(6)]
    homes: list[Home] = [
        Home(1, "DOOR-1", (people[0], people[1]), {}),
        Home(2, "DOOR-1", (people[2], people[3]), {}),
        Home(3, "DOOR-2", (people[4], people[5]), {}),
    ]
    devices = {"DOOR-1": DeviceKind.UNIT_DOOR, "DOOR-2": DeviceKind.UNIT_DOOR,
               "GATE-IN": DeviceKind.FACE_GATE, "GATE-OUT": DeviceKind.FACE_GATE,
               "GATE-CAM": DeviceKind.FACE_CAMERA, "CROWD-01": DeviceKind.VIDEO_CAMERA,
               "CROWD-02": DeviceKind.VIDEO_CAMERA}  # fmt: skip
    for n in range(3):
        elder = Resident(200 + n, 75 + n, card=f"D{n}", employee_no=f"F{n}")
        fitted = {kind: f"H{n}-{kind.value}" for kind in (DeviceKind.DOOR_MAGNET,
                  DeviceKind.INFRARED, DeviceKind.WATER_METER)}  # fmt: skip
        homes.append(Home(10 + n, "DOOR-2", (elder,), fitted))
        devices.update({code: kind for kind, code in fitted.items()})
    return World(
        community="T",
        timezone="Asia/Shanghai",
        homes=tuple(homes),
        gates=(Gate("北门", "GATE-IN", "GATE-OUT", camera="GATE-CAM"),),
        devices=devices,
        cars={},
    )


def test_planting_gives_every_scenario_cases_and_lookalikes() -> None:
    life = Life(_fitted_world(), 5)
    days = list(life.days(dt.date(2026, 3, 2), dt.date(2026, 3, 15)))
    scenario = plant(life, days, 7)
    truths = Counter(t.model for t in scenario.truths)
    decoys = Counter(d.model for d in scenario.decoys)
    assert truths["tailgating"] == 7 and decoys["tailgating"] == 14
    assert truths["crowd"] == 14 and decoys["crowd"] == 28  # two areas, one crowd a day
    assert truths["elderly_inactive"] >= 2 and decoys["elderly_inactive"] == 1
    events = merged(days, scenario)
    tz = life.tz

    # The planted quiet days: the house sends heartbeats only, nobody sees the person.
    planted = [t for t in scenario.truths if t.model == "elderly_inactive"]
    for truth in planted:
        home = next(h for h in life.world.homes if str(h.people[0].person_id) == truth.key)
        day = truth.start.astimezone(tz).date()
        if home.people[0].person_id in life.frail:
            continue  # the simulator's own quiet day
        that_day = [e for e in events if e.at.astimezone(tz).date() == day]
        fitted = set(home.devices.values())
        assert not [e for e in that_day if e.device in fitted and e.kind in HOUSE_SIGNS]
        assert not [e for e in that_day if (e.body.get("subject") or {}).get("value")
                    in (home.people[0].card, home.people[0].employee_no)]  # fmt: skip
        magnet = home.devices[DeviceKind.DOOR_MAGNET]
        assert [e for e in that_day if e.device == magnet and e.kind == "device.heartbeat"]

    # Crowds: every count above capacity lies in a truth of its area, one area a day.
    crowd = [t for t in scenario.truths if t.model == "crowd"]
    for e in scenario.events:
        if e.kind == "crowd.count" and e.body["value"] > CROWD_CAPACITY:
            assert any(t.key == e.device and t.start <= e.at <= t.end for t in crowd)
    assert len({(t.key, t.start.astimezone(tz).date()) for t in crowd}) == len(crowd)

    # Tailgating: two faces at the gate's camera around one opening; the look-alike has two.
    for truth in (t for t in scenario.truths if t.model == "tailgating"):
        near = [e for e in scenario.events if abs((e.at - truth.start).total_seconds()) <= 5]
        assert sum(e.kind == "capture.face" for e in near) == 2
        assert sum(e.kind.startswith("access.") for e in near) == 1
    for decoy in (d for d in scenario.decoys if d.model == "tailgating"):
        near = [e for e in scenario.events if decoy.start - dt.timedelta(seconds=5) <= e.at
                <= decoy.end + dt.timedelta(seconds=5)]  # fmt: skip
        assert sum(e.kind == "capture.face" for e in near) == 2
        assert sum(e.kind.startswith("access.") for e in near) == 2


def _metered_world(extra: int = 12) -> World:
    """The fitted world (three metered houses) and ``extra`` more houses with a water meter,
    each registered to one resident."""
    world = _fitted_world()
    homes, devices = list(world.homes), dict(world.devices)
    for n in range(extra):
        meter = f"W{n}-water_meter"
        person = Resident(300 + n, 30 + n, card=f"W{n}", employee_no=f"G{n}")
        homes.append(Home(20 + n, "DOOR-1", (person,), {DeviceKind.WATER_METER: meter}))
        devices[meter] = DeviceKind.WATER_METER
    return dataclasses.replace(world, homes=tuple(homes), devices=devices)


def test_planting_a_group_rental_seen_only_at_the_water_meter() -> None:
    """From the truth's start the flat's readings rise at 4-5x normal use (no extra lock
    users); the look-alike's at about twice. Both flats are registered to one resident and
    are none of the elderly's watched houses."""
    life = Life(_metered_world(), 5)
    days = list(life.days(dt.date(2026, 3, 2), dt.date(2026, 3, 15)))
    scenario = plant(life, days, 7)
    events = merged(days, scenario)
    assert sum(d.model == "group_rental" for d in scenario.decoys) == 1
    homes = {str(h.house_id): h for h in life.world.homes}
    metered = {key: h.devices[DeviceKind.WATER_METER] for key, h in homes.items()
               if DeviceKind.WATER_METER in h.devices}  # fmt: skip
    cases = [
        *((t, 4 * NORMAL_WATER, 5.5 * NORMAL_WATER)
          for t in scenario.truths if t.model == "group_rental" and t.key in metered),
        *((d, 1.6 * NORMAL_WATER, 2.5 * NORMAL_WATER)
          for d in scenario.decoys if d.model == "group_rental"),
    ]  # fmt: skip
    for case, low, high in cases:
        home = homes[case.key]
        assert len(home.people) == 1 and DeviceKind.DOOR_MAGNET not in home.devices
        readings = [e for e in events if e.device == metered[case.key]
                    and e.kind == "meter.water" and e.at >= case.start]  # fmt: skip
        assert len(readings) >= 5
        span = (readings[-1].at - readings[0].at).total_seconds() / 86_400
        assert low <= (readings[-1].body["value"] - readings[0].body["value"]) / span <= high
    assert sum(t.model == "group_rental" and t.key in metered for t in scenario.truths) == 1


def test_too_few_metered_houses_plant_no_meter_case() -> None:
    # Nine metered houses: the model (min_houses 10) would not compare them, so nothing
    # is planted.
    life = Life(_metered_world(6), 5)
    days = list(life.days(dt.date(2026, 3, 2), dt.date(2026, 3, 15)))
    scenario = plant(life, days, 7)
    assert not [e for e in scenario.events if e.kind == "meter.water"]
    assert not [d for d in scenario.decoys if d.model == "group_rental"]


@pytest.mark.timeout(900)  # ~1 min on a quiet machine
def test_the_evaluation_plants_a_group_rental_seen_only_at_the_water_meter(
    tmp_path: Path,
) -> None:
    """The evaluation meters every lived-in house, enough for the model to compare (its
    ``min_houses``): its scenario holds a flat registered to one resident whose planted
    water readings climb, with time left for the once-a-day judgement, and a look-alike."""
    node = bootstrap(make_settings(tmp_path, f"sqlite:///{tmp_path / 'anju.db'}"))
    try:
        initialise(node, admin_password=ADMIN_PASSWORD)
        staged = stage(node, days=8, seed=1, residents=120)
    finally:
        node.dispose()
    homes = {str(h.house_id): h for h in staged.life.world.homes}
    assert all(DeviceKind.WATER_METER in h.devices for h in homes.values())
    assert len(homes) >= GroupRentalParams().min_houses
    scenario = staged.scenario
    planted = Counter(e.device for e in scenario.events if e.kind == "meter.water")
    cases = [
        *(t for t in scenario.truths if t.model == "group_rental"),
        *(d for d in scenario.decoys if d.model == "group_rental"),
    ]
    by_meter = [c for c in cases if planted[homes[c.key].devices[DeviceKind.WATER_METER]]]
    assert [c in scenario.decoys for c in by_meter].count(False) == 1  # the truth
    assert [c in scenario.decoys for c in by_meter].count(True) == 1  # the look-alike
    for case in by_meter:
        assert len(homes[case.key].people) == 1
        # scored (after the warm-up), and the readings climb long enough for the model
        # to see at least four days of them before the truth ends
        assert case.start >= staged.start + WARMUP
        assert planted[homes[case.key].devices[DeviceKind.WATER_METER]] >= 5
        assert case.end - case.start >= dt.timedelta(days=4)


def test_loiterers_keep_clear_of_the_gates_openings() -> None:
    # A gate opening every 30 s all day: laps drawn at random would fall beside openings,
    # where the tailgating model would count the stranger as coming in (its blind spot).
    life = Life(_fitted_world(), 3)
    midnight = dt.datetime.combine(dt.date(2026, 3, 2), dt.time(), life.tz)
    busy = []
    for n in range(24 * 120):
        at = midnight + dt.timedelta(seconds=30 * n)
        body = {"id": f"o{n}", "device": "GATE-IN", "kind": "access.card",
                "at": at.isoformat(), "direction": "in"}  # fmt: skip
        busy.append(SimEvent(at, "GATE-IN", body))
    scenario = plant(life, [Day(midnight.date(), busy, frozenset())], 7)
    [case] = [t for t in scenario.truths if t.model == "stranger_loitering"]
    laps = [e.at for e in scenario.events if e.body["id"] in case.sightings]
    assert len(laps) == 7
    for lap in laps:
        assert min(abs(lap - o.at) for o in busy) >= CLEAR


def test_the_command_names_the_days_it_lived() -> None:
    args = ["evaluate", "--days", "1", "--residents", "40", "--in-order", "--until", "2026-03-02"]
    out = CliRunner().invoke(app, args)
    assert out.exit_code == 0, out.output
    assert "2026-03-02 to 2026-03-02" in out.output


def test_every_patrol_round_ends_within_the_models_grace_however_many_points() -> None:
    # 40 points (a 2,000-resident community) would take one guard ~100 minutes: the
    # simulator sends several, so only planted skips are missed rounds.
    points = tuple(f"PATROL-{n:02d}" for n in range(40))
    world = World(community="T", timezone="Asia/Shanghai", homes=(), gates=(),
                  devices=dict.fromkeys(points, DeviceKind.PATROL_POINT), cars={},
                  patrol_points=points, guard_cards=("G1", "G2"))  # fmt: skip
    day = Life(world, 1).day(dt.date(2026, 3, 2))
    checkins = [e for e in day.events if e.kind == "patrol.checkin"]
    assert len(checkins) == 4 * len(points)
    midnight = dt.datetime.combine(day.date, dt.time(), world.tz)
    for hour in (0, 2, 4, 22):
        start = midnight + dt.timedelta(hours=hour)
        rounds = [e for e in checkins if start <= e.at < start + dt.timedelta(hours=2)]
        assert sorted(e.device for e in rounds) == sorted(points)
        assert max(e.at for e in rounds) < start + dt.timedelta(minutes=60)


def test_a_household_draws_water_for_each_of_its_people() -> None:
    """Daily use per person is alike in a flat of one and a family of four (0.08-0.28 m³ a
    day each), so the meter model's use per registered resident compares like with like."""
    world = _metered_world(extra=1)
    family = tuple(Resident(400 + n, 20 + 10 * n) for n in range(4))
    homes = [*world.homes, Home(99, "DOOR-1", family, {DeviceKind.WATER_METER: "W-FAMILY"})]
    devices = {**world.devices, "W-FAMILY": DeviceKind.WATER_METER}
    life = Life(dataclasses.replace(world, homes=tuple(homes), devices=devices), 5)
    days = list(life.days(dt.date(2026, 3, 2), dt.date(2026, 3, 16)))

    def per_day(meter: str) -> float:
        values = [e.body["value"] for d in days for e in d.events
                  if e.device == meter and e.kind == "meter.water"]  # fmt: skip
        return (values[-1] - values[0]) / (len(values) - 1)

    single, four = per_day("W0-water_meter"), per_day("W-FAMILY")
    assert 0.08 <= single <= 0.28 and 4 * 0.08 <= four <= 4 * 0.28
    assert 2.5 <= four / single <= 6
