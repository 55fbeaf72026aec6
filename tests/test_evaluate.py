"""``anju evaluate``: the scoring on hand-made truths and alerts, the planting's determinism,
and one small end-to-end run through the real pipeline."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from anju.alerts.evaluate import Raised, run, score
from anju.cli import app
from anju.devices.models import DeviceKind
from anju.sim.anomalies import Truth, plant
from anju.sim.life import Day, Gate, Home, Life, Resident, SimEvent, World

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


@pytest.mark.timeout(120)
def test_a_small_run_finds_the_planted_smoke_sos_and_key_person(tmp_path: Path) -> None:
    result = run(days=2, seed=1, residents=60, data_dir=tmp_path)
    for model in ("fire", "emergency", "key_person"):
        s = result.scores[model]
        assert s.truths > 0, model
        assert s.recall == 1.0, (model, s)
    assert result.scores["crowd"].met is None  # listed, not dropped


def test_the_command_prints_json_keyed_by_model() -> None:
    out = CliRunner().invoke(app, ["evaluate", "--days", "1", "--residents", "40", "--json"])
    assert out.exit_code == 0, out.output
    scores = json.loads(out.output)
    assert set(scores) >= {"fire", "emergency", "crowd"}
    assert scores["crowd"]["scenario"] is False
