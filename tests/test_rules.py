"""Alert models, unit-tested with fake facts, fake history and a fake clock (no database).

Each model has a test of what must fire and of the look-alike normal behaviour that must
not."""

from __future__ import annotations

import datetime as dt
import itertools
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError

from anju.alerts.facts import MemoryFacts, MemoryHistory, Place, Watched
from anju.alerts.model import AlertDraft, Seen, Severity
from anju.alerts.rules import MODELS
from anju.alerts.rules.base import AlertModel, RuleCtx, Window
from anju.alerts.rules.devices import DeviceHealth
from anju.alerts.rules.elderly import ElderlyInactive
from anju.alerts.rules.lists import ControlledList, KeyPerson
from anju.alerts.rules.safety import Crowd, Ebike, Emergency, Fire, Perimeter

TZ = ZoneInfo("Asia/Shanghai")
C = 7  # the community
_ids = itertools.count(1)


def local(day: int, hour: int, minute: int = 0) -> dt.datetime:
    """A moment of November 2026, given in Beijing time, as UTC."""
    return dt.datetime(2026, 11, day, hour, minute, tzinfo=TZ).astimezone(dt.UTC)


def ev(kind: str, at: dt.datetime, device: int = 1, **kw: Any) -> Seen:
    return Seen(
        id=next(_ids), community_id=C, device_id=device, device_code=f"D{device}",
        device_kind=kw.pop("device_kind", "other"), kind=kind, at=at, **kw,
    )  # fmt: skip


class Harness:
    """One model in one community with its own state, config overrides and fake facts."""

    def __init__(self, model: AlertModel, facts: MemoryFacts | None = None, **params: Any):
        self.model = model
        self.facts = facts or MemoryFacts()
        self.history = MemoryHistory()
        self.params = model.Params.model_validate(params)
        self.state: dict[str, Any] = {}

    def ctx(self, now: dt.datetime) -> RuleCtx:
        return RuleCtx(now, C, self.params, self.state, self.facts, self.history, TZ)

    def event(self, e: Seen) -> list[AlertDraft]:
        """As the engine does: only events of the kinds the model watches reach it."""
        self.history.events.append(e)
        if e.kind not in self.model.kinds:
            return []
        return self.model.on_event(e, self.ctx(e.at))

    def tick(self, now: dt.datetime) -> list[AlertDraft]:
        return self.model.on_tick(now, self.ctx(now))


def test_every_model_code_is_a_named_model_and_defaults_are_valid() -> None:
    from anju.alerts.names import MODEL_NAMES

    for code, cls in MODELS.items():
        assert code in MODEL_NAMES
        assert cls.Params().enabled


# --- device health --------------------------------------------------------------------


def test_device_offline_and_fault_alert_once_per_device() -> None:
    h = Harness(DeviceHealth(), MemoryFacts(places={1: Place(1, "东门人脸门禁", "face_gate")}))
    [offline] = h.event(ev("device.offline", local(3, 10)))
    assert offline.fingerprint == "device_health:offline:1"
    assert "东门人脸门禁" in offline.title and offline.severity is Severity.LOW
    again = h.event(ev("device.offline", local(3, 11)))
    assert again[0].fingerprint == offline.fingerprint  # merges
    [fault] = h.event(ev("device.fault", local(3, 12), data={"fault": "lens"}))
    assert fault.fingerprint == "device_health:fault:1:lens"
    assert h.event(ev("device.online", local(3, 13))) == []
    assert h.event(ev("device.heartbeat", local(3, 13))) == []


def test_a_common_fault_is_said_in_words_and_an_unknown_one_as_reported() -> None:
    h = Harness(
        DeviceHealth(), MemoryFacts(places={1: Place(1, "北门车辆抓拍机", "vehicle_camera")})
    )
    [known] = h.event(ev("device.fault", local(3, 12), data={"fault": "Lens Occluded"}))
    assert known.title == "设备故障：北门车辆抓拍机 镜头被遮挡"
    assert known.detail["fault"] == "Lens Occluded"  # what the device said, kept
    [other] = h.event(ev("device.fault", local(3, 12), data={"fault": "E-1043"}))
    assert other.title == "设备故障：北门车辆抓拍机 E-1043"


def test_a_place_in_words_does_not_repeat_what_the_device_name_says() -> None:
    gate = Place(
        1, "16号楼2单元门禁", "unit_door", building="16号楼", unit="2单元", door="2单元大门"
    )
    assert gate.words() == "2单元大门 16号楼2单元门禁"
    camera = Place(2, "南门人脸抓拍机", "face_camera", door="南门")
    assert camera.words() == "南门人脸抓拍机"
    lift = Place(3, "电梯摄像机", "video_camera", building="3号楼", unit="1单元")
    assert lift.words() == "3号楼 1单元 电梯摄像机"
    assert Place(4, "东门", "face_gate").words() == "东门"


def test_device_offline_can_be_switched_off() -> None:
    h = Harness(DeviceHealth(), offline=False)
    assert h.event(ev("device.offline", local(3, 10))) == []


def patrol_facts() -> MemoryFacts:
    return MemoryFacts(
        places={5: Place(5, "1号巡更点", "patrol_point"), 6: Place(6, "2号巡更点", "patrol_point")}
    )


def test_missed_patrol_checkpoint_is_raised_after_the_grace() -> None:
    h = Harness(DeviceHealth(), patrol_facts(), patrol_rounds=["22:00"])
    assert h.tick(local(3, 20)) == []  # watching since before the round
    h.event(ev("patrol.checkin", local(3, 22, 5), device=5))
    assert h.tick(local(3, 22, 59)) == []  # still within the grace
    [missed] = h.tick(local(3, 23, 1))
    assert missed.device_id == 6 and "2号巡更点" in missed.title
    assert h.tick(local(3, 23, 2)) == []  # judged once


def test_a_round_that_began_before_the_engine_watched_is_not_judged() -> None:
    h = Harness(DeviceHealth(), patrol_facts(), patrol_rounds=["22:00"])
    assert h.tick(local(3, 22, 30)) == []  # started mid-round
    assert h.tick(local(3, 23, 30)) == []
    assert len(h.tick(local(4, 23, 30))) == 2  # the next night's round is judged


def test_patrol_done_at_every_point_raises_nothing() -> None:
    h = Harness(DeviceHealth(), patrol_facts(), patrol_rounds=["22:00", "00:00"])
    for at in (local(3, 21, 50), local(3, 23, 40), local(4, 0, 20)):
        h.event(ev("patrol.checkin", at, device=5))
        h.event(ev("patrol.checkin", at + dt.timedelta(minutes=3), device=6))
    for minute in range(0, 6 * 60, 10):
        assert h.tick(local(3, 21) + dt.timedelta(minutes=minute)) == []


# --- watchlists -------------------------------------------------------------------------


def watch_facts() -> MemoryFacts:
    return MemoryFacts(
        names={42: "张某"},
        watchlist={
            C: [
                Watched(1, "key_person", "涉稳", "上访", "person", "42"),
                Watched(2, "controlled", "被盗车辆", "报失", "plate", "鲁L12345", False),
                Watched(3, "controlled", "疫区车辆", "来自疫区", "plate_prefix", "京A", False),
                Watched(4, "key_person", "涉毒", "吸毒前科", "mac", "AA:BB:CC:00:11:22",
                        expires_at=local(1, 0)),
            ]
        },
    )  # fmt: skip


def test_key_person_seen_raises_one_police_only_alert_per_day() -> None:
    h = Harness(KeyPerson(), watch_facts())
    [hit] = h.event(ev("access.face", local(3, 9), person_id=42, subject_type="person",
                       subject_value="42"))  # fmt: skip
    assert hit.police_only and hit.person_id == 42 and "张某" in hit.title
    assert hit.fingerprint == "key_person:1:2026-11-03"
    [later] = h.event(ev("capture.face", local(3, 18), person_id=42))
    assert later.fingerprint == hit.fingerprint
    [next_day] = h.event(ev("capture.face", local(4, 8), person_id=42))
    assert next_day.fingerprint != hit.fingerprint


def test_key_person_ignores_others_expired_entries_and_controlled_lists() -> None:
    h = Harness(KeyPerson(), watch_facts())
    assert h.event(ev("access.face", local(3, 9), person_id=43)) == []
    assert h.event(ev("wifi.probe", local(3, 9), subject_type="mac",
                      subject_value="aa:bb:cc:00:11:22")) == []  # fmt: skip
    assert h.event(ev("vehicle.passed", local(3, 9), subject_type="plate",
                      subject_value="鲁L12345")) == []  # fmt: skip
    assert h.event(ev("access.face", local(3, 9), person_id=42, history=True)) == []


def test_controlled_plate_and_prefix_rule() -> None:
    h = Harness(ControlledList(), watch_facts())
    [stolen] = h.event(ev("vehicle.passed", local(3, 9), subject_type="plate",
                          subject_value="鲁L12345"))  # fmt: skip
    assert not stolen.police_only and "被盗车辆" in stolen.title
    [region] = h.event(ev("capture.vehicle", local(3, 9), subject_type="plate",
                          subject_value="京A99999"))  # fmt: skip
    assert region.detail["match"] == "plate_prefix"
    # A local plate that merely contains the prefix letters elsewhere is no match.
    assert h.event(ev("vehicle.passed", local(3, 9), subject_type="plate",
                      subject_value="鲁L京A123")) == []  # fmt: skip


def test_controlled_list_by_category() -> None:
    h = Harness(ControlledList(), watch_facts(), categories=["疫区车辆"])
    assert h.event(ev("vehicle.passed", local(3, 9), subject_type="plate",
                      subject_value="鲁L12345")) == []  # fmt: skip


# --- elderly living alone ---------------------------------------------------------------

HOUSE, ELDER = 100, 9


def elderly(**params: Any) -> Harness:
    facts = MemoryFacts(elderly={C: {HOUSE: ELDER}}, names={ELDER: "王奶奶"})
    return Harness(ElderlyInactive(), facts, **params)


def test_elderly_quiet_all_morning_raises_three_awake_hours_after_waking() -> None:
    h = elderly()
    h.tick(local(2, 20))  # the engine started
    h.event(ev("sensor.infrared", local(2, 20, 30), house_id=HOUSE))
    assert h.tick(local(3, 9, 59)) == []  # asleep until 07:00, then not yet 3 h
    [alert] = h.tick(local(3, 10, 1))
    assert alert.person_id == ELDER and alert.detail["rule"] == "motion"
    assert alert.severity is Severity.HIGH
    assert h.tick(local(3, 11)) == []  # one draft per silent episode, not one a minute
    h.event(ev("sensor.infrared", local(3, 11, 5), house_id=HOUSE))
    assert h.tick(local(3, 11, 10)) == []  # a sign of life ends the episode
    [again] = h.tick(local(3, 14, 6))  # silent again for three hours: a new episode
    assert again.fingerprint != alert.fingerprint


def test_elderly_active_at_home_and_sleeping_late_raises_nothing() -> None:
    h = elderly()
    h.tick(local(2, 20))
    for day in (3, 4):
        for hour in range(9, 22, 2):  # up late at 09:00, motion through the day, water
            h.event(ev("sensor.infrared", local(day, hour), house_id=HOUSE))
            h.event(ev("meter.water", local(day, hour, 30), house_id=HOUSE, value=day + hour))
        for minute in range(0, 24 * 60, 15):
            assert h.tick(local(day, 8) + dt.timedelta(minutes=minute)) == []


def test_elderly_away_from_the_community_with_a_heartbeat_is_quiet() -> None:
    h = elderly()
    h.tick(local(2, 20))
    h.event(ev("sensor.door_magnet", local(3, 8), house_id=HOUSE, value=1))
    h.event(ev("access.face", local(3, 8, 5), person_id=ELDER, direction="out"))
    for hour in range(1, 48):
        h.event(ev("device.heartbeat", local(3, 8) + dt.timedelta(hours=hour), house_id=HOUSE))
        assert h.tick(local(3, 8) + dt.timedelta(hours=hour)) == []
    # Back home (a house without motion sensing): 12 awake hours from the return.
    h.event(ev("access.face", local(5, 10), person_id=ELDER, direction="in"))
    assert h.tick(local(5, 21, 29)) == []
    assert h.tick(local(6, 7, 20)) == []  # 21 h since, but the night does not count
    [alert] = h.tick(local(6, 7, 31))
    assert alert.detail["rule"] == "inactive"


def test_elderly_gone_out_stays_out_when_the_door_magnets_batch_comes_after_the_gates() -> None:
    h = elderly()
    h.tick(local(3, 7))
    h.event(ev("sensor.infrared", local(3, 7, 30), house_id=HOUSE, value=1))
    # Leaving at 08:00: the gate's batch reaches the node before the flat's door magnet's.
    h.event(ev("access.face", local(3, 8, 5), person_id=ELDER, direction="out"))
    h.event(ev("sensor.door_magnet", local(3, 8), house_id=HOUSE, value=1))
    for hour in range(1, 30):
        assert h.tick(local(3, 8) + dt.timedelta(hours=hour)) == []
    # Home again; a late batch from before the return says nothing new about where she is.
    h.event(ev("access.face", local(4, 14), person_id=ELDER, direction="in"))
    h.event(ev("access.face", local(4, 13, 59), person_id=ELDER, direction="out"))
    [alert] = h.tick(local(4, 17, 1))  # three awake hours after coming home, no motion
    assert alert.detail["rule"] == "motion"


def test_elderly_without_motion_sensing_gets_twelve_awake_hours() -> None:
    h = elderly()
    h.tick(local(3, 7))
    h.event(ev("lock.opened", local(3, 8), house_id=HOUSE))
    assert h.tick(local(3, 19, 59)) == []
    [alert] = h.tick(local(3, 20, 1))
    assert alert.detail["rule"] == "inactive" and alert.house_id == HOUSE


def test_elderly_daily_meter_reading_is_no_sign_of_life_but_flowing_water_is() -> None:
    h = elderly()
    h.tick(local(3, 7))
    h.event(ev("lock.opened", local(3, 8), house_id=HOUSE))
    h.event(ev("meter.water", local(4, 2), device=8, house_id=HOUSE, value=120.5))
    h.event(ev("meter.water", local(5, 2), device=8, house_id=HOUSE, value=120.8))
    assert h.tick(local(3, 20, 1)) != []  # the night's readings changed nothing
    h.event(ev("meter.water", local(5, 2, 30), device=8, house_id=HOUSE, value=120.9))
    assert h.tick(local(5, 14)) == []  # drawn at 02:30: 7 awake hours since


def test_elderly_params_refuse_impossible_values() -> None:
    with pytest.raises(ValidationError, match="inactive_hours"):
        ElderlyInactive.Params.model_validate({"inactive_hours": 0})
    with pytest.raises(ValidationError, match="daytime_hours"):
        ElderlyInactive.Params.model_validate({"inactive_hours": 2, "daytime_hours": 3})
    with pytest.raises(ValidationError):
        Window.model_validate({"start": "25:00", "end": "07:00"})
    with pytest.raises(ValidationError, match="differ"):
        Window.model_validate({"start": "07:00", "end": "07:00"})


def test_recipients_must_name_a_role_group_role_or_account() -> None:
    ok = ElderlyInactive.Params.model_validate(
        {"recipients": ["grid", "property_staff", "user:zhang"]}
    )
    assert ok.recipients == ("grid", "property_staff", "user:zhang")
    with pytest.raises(ValidationError, match="recipients") as refused:
        ElderlyInactive.Params.model_validate({"recipients": ["grid", "nobody", "user:"]})
    assert "nobody" in str(refused.value) and "user:" in str(refused.value)


# --- fire, emergency, e-bike, perimeter, crowd --------------------------------------------


def test_fire_smoke_at_once_lane_after_threshold_hydrant_out_of_range() -> None:
    h = Harness(Fire())
    [smoke] = h.event(ev("fire.smoke", local(3, 12), value=1, data={"state": "alarm"}))
    assert smoke.severity is Severity.CRITICAL
    assert h.event(ev("fire.smoke", local(3, 12, 5), value=0, data={"state": "clear"})) == []
    assert h.event(ev("fire.lane_blocked", local(3, 12), data={"seconds": 300})) == []
    [lane] = h.event(ev("fire.lane_blocked", local(3, 12), data={"seconds": 900}))
    assert lane.detail["minutes"] == 15
    assert h.event(ev("fire.hydrant_pressure", local(3, 12), value=0.35)) == []
    [low] = h.event(ev("fire.hydrant_pressure", local(3, 12), value=0.02))
    assert low.detail["mpa"] == 0.02


def test_fire_params_named_field_errors() -> None:
    with pytest.raises(ValidationError, match="lane_minutes"):
        Fire.Params.model_validate({"lane_minutes": -1})
    with pytest.raises(ValidationError, match="hydrant_min_mpa"):
        Fire.Params.model_validate({"hydrant_min_mpa": 2.0})


@pytest.mark.parametrize(
    "kind",
    ["alarm.sos", "wristband.sos", "throw.detected", "fall.detected", "alarm.home_intrusion"],
)
def test_emergency_kinds_alert_at_once(kind: str) -> None:
    h = Harness(Emergency())
    [alert] = h.event(ev(kind, local(3, 3)))
    assert alert.severity is Severity.CRITICAL
    assert ("linkage" in alert.detail) == (kind == "alarm.home_intrusion")
    assert h.event(ev(kind, local(3, 3), history=True)) == []  # a replayed buffer is old news


def test_ebike_at_entrance_and_elevator_not_going_out() -> None:
    h = Harness(Ebike())
    [entrance] = h.event(ev("ebike.detected", local(3, 8), data={"place": "entrance"}))
    [lift] = h.event(ev("ebike.detected", local(3, 9), data={"place": "elevator"}))
    assert entrance.fingerprint != lift.fingerprint
    assert h.event(ev("ebike.detected", local(3, 9), data={"place": "entrance"},
                      direction="out")) == []  # fmt: skip
    h2 = Harness(Ebike(), places=["elevator"])
    assert h2.event(ev("ebike.detected", local(3, 8), data={"place": "entrance"})) == []


def test_perimeter_single_nuisance_trigger_is_filtered_by_default() -> None:
    h = Harness(Perimeter())
    assert h.event(ev("perimeter.intrusion", local(3, 2))) == []  # wind, a cat
    assert h.event(ev("perimeter.intrusion", local(3, 5))) == []  # hours apart
    [climb] = h.event(ev("perimeter.intrusion", local(3, 5) + dt.timedelta(seconds=20)))
    assert climb.severity is Severity.HIGH


def test_perimeter_respects_the_arm_schedule_and_trigger_count() -> None:
    h = Harness(Perimeter(), armed={"start": "22:00", "end": "06:00"}, min_triggers=2)
    assert h.event(ev("perimeter.intrusion", local(3, 14))) == []  # disarmed by day
    assert h.event(ev("perimeter.intrusion", local(3, 23))) == []  # one nuisance trigger
    assert h.event(ev("perimeter.intrusion", local(3, 23, 10))) == []  # too far apart
    [alert] = h.event(ev("perimeter.intrusion", local(3, 23, 11), data={"zone": 3}))
    assert "3 防区" in alert.title


def test_crowd_over_capacity_per_area() -> None:
    h = Harness(Crowd(), capacity=100, capacities={"D2": 30})
    assert h.event(ev("crowd.count", local(3, 9), value=100)) == []
    [over] = h.event(ev("crowd.count", local(3, 9), value=140))
    assert over.detail == {"count": 140, "capacity": 100}
    assert h.event(ev("crowd.count", local(3, 9), device=2, value=31)) != []
    with pytest.raises(ValidationError, match="capacity"):
        Crowd.Params.model_validate({"capacities": {"D2": 0}})
