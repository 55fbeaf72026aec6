"""Alert models over who passes doors and who lives where, with fakes and a fake clock:
stranger loitering, tailgating, suspicious entry, night entries, unregistered rental
occupants and group rentals — each with the look-alike normal behaviour that must not fire."""

from __future__ import annotations

import datetime as dt

import pytest
from pydantic import ValidationError

from anju.alerts.facts import MemoryFacts, Place
from anju.alerts.model import AlertDraft, Seen
from anju.alerts.rules.access import NightEntry, StrangerLoitering, SuspiciousEntry, Tailgating
from anju.alerts.rules.housing import GroupRental, RentalUnregistered
from tests.test_rules import C, Harness, ev, local

S = dt.timedelta(seconds=1)


def gate_facts() -> MemoryFacts:
    """An east gate: a face camera (1), an entry reader (2), an exit (3); a unit door (4)."""
    return MemoryFacts(
        places={
            1: Place(1, "东门抓拍", "face_camera", door="东门"),
            2: Place(2, "东门进", "face_gate", door="东门"),
            3: Place(3, "东门出", "face_gate", door="东门"),
            4: Place(4, "1单元门", "unit_door", building="1号楼", unit="1单元", door="单元门"),
        },
        members={C: {11, 12}},
        names={11: "李四"},
    )


def test_a_stranger_seen_again_and_again_without_passing_loiters() -> None:
    h = Harness(StrangerLoitering(), gate_facts())
    t = local(3, 14)
    for i in range(6):
        assert (
            h.event(
                ev(
                    "wifi.probe",
                    t + i * 8 * 60 * S,
                    device=1,
                    subject_type="mac",
                    subject_value="aa:bb:cc:dd:ee:01",
                )
            )
            == []
        )  # judged on the tick
    last = t + 40 * 60 * S
    assert h.tick(last + 10 * S) == []  # other devices' batches may still come
    [alert] = h.tick(last + 40 * S)
    assert alert.subject_value == "aa:bb:cc:dd:ee:01" and alert.detail["sightings"] == 6
    assert h.tick(last + 100 * S) == []  # judged once


def test_laps_delivered_with_a_much_later_sighting_are_still_judged() -> None:
    """One camera batch holds a stranger's six laps and a sighting of the same face two
    hours later, all before the next tick: the laps are judged, not dropped."""
    h = Harness(StrangerLoitering(), gate_facts())
    t = local(3, 14)
    laps = [t + i * 5 * 60 * S for i in range(6)] + [t + 120 * 60 * S]
    for at in laps:
        h.event(ev("capture.face", at, device=1, subject_type="face", subject_value="S-1"))
    [alert] = h.tick(laps[5] + 60 * S)
    assert alert.subject_value == "S-1" and alert.detail["sightings"] == 6
    assert h.tick(laps[6] + 60 * S) == []  # the later sighting alone is no loitering


def test_a_courier_who_passes_the_gate_each_time_does_not_loiter() -> None:
    h = Harness(StrangerLoitering(), gate_facts())
    t = local(3, 12)
    for i in range(8):  # captured, then in through the gate with a visitor pass
        at = t + i * 6 * 60 * S
        h.event(ev("capture.face", at, device=1, subject_type="face",
                   subject_value="courier-001"))  # fmt: skip
        h.event(ev("access.qr", at + 3 * S, device=2, subject_type="qr", subject_value=f"V{i}"))
        assert h.tick(at + 60 * S) == []


def test_a_courier_whose_gate_batch_arrives_after_the_cameras_does_not_loiter() -> None:
    h = Harness(StrangerLoitering(), gate_facts())
    t = local(3, 12)
    drafts = []
    for i in range(8):  # the camera delivers its captures first ...
        drafts += h.event(ev("capture.face", t + i * 6 * 60 * S, device=1, subject_type="face",
                             subject_value="courier-003"))  # fmt: skip
    for i in range(8):  # ... the gate its remote openings a few seconds later
        drafts += h.event(ev("access.remote", t + i * 6 * 60 * S + 3 * S, device=2))
    drafts += h.tick(t + 8 * 6 * 60 * S)
    assert drafts == []
    # As many captures between the openings, no gate use behind them, are a loiterer.
    for i in range(8):
        h.event(ev("capture.face", t + i * 6 * 60 * S + 180 * S, device=1, subject_type="face",
                   subject_value="loiter-003"))  # fmt: skip
    [alert] = h.tick(t + 8 * 6 * 60 * S + 240 * S)
    assert alert.subject_value == "loiter-003"


def test_a_loiterer_at_a_busy_gate_is_still_found() -> None:
    h = Harness(StrangerLoitering(), gate_facts())
    t = local(3, 15)
    drafts = []
    for i in range(7):
        at = t + i * 6 * 60 * S
        if i % 3 == 0:  # residents happen to go through just then
            h.event(ev("access.face", at + 3 * S, device=2, person_id=11, direction="in"))
        h.event(ev("access.face", at + 60 * S, device=2, person_id=12, direction="in"))
        h.event(ev("capture.face", at, device=1, subject_type="face",
                   subject_value="loiter-001"))  # fmt: skip
        drafts += h.tick(at + 60 * S)
    assert [d.detail["sightings"] for d in drafts] == [6, 7]


def test_a_capture_delivered_after_the_door_it_passed_still_counts_as_passing() -> None:
    h = Harness(StrangerLoitering(), gate_facts())
    t = local(3, 12)
    for i in range(8):  # the reader's batch arrives before the camera's
        at = t + i * 6 * 60 * S
        h.event(ev("access.remote", at + 4 * S, device=2, data={"method": "intercom"}))
        h.event(ev("capture.face", at, device=1, subject_type="face",
                   subject_value="courier-002"))  # fmt: skip
    assert h.tick(t + 8 * 6 * 60 * S) == []


def test_a_registered_resident_and_slow_repeats_do_not_loiter() -> None:
    h = Harness(StrangerLoitering(), gate_facts())
    t = local(3, 12)
    for i in range(10):
        assert h.event(ev("wifi.probe", t + i * 5 * 60 * S, device=1, subject_type="mac",
                          subject_value="11:11", person_id=11)) == []  # fmt: skip
        # A stranger's phone going past once every two hours: 10 times a day, never 6 an hour.
        assert h.event(ev("wifi.probe", t + i * 7200 * S, device=1, subject_type="mac",
                          subject_value="22:22")) == []  # fmt: skip
        assert h.tick(t + i * 7200 * S + 60 * S) == []
    assert h.tick(t + 46 * 60 * S) == []  # the resident's ten within the hour: judged here


def test_two_faces_through_one_opening_is_tailgating() -> None:
    h = Harness(Tailgating(), gate_facts())
    t = local(3, 9)
    h.event(ev("capture.face", t, device=1, subject_type="face", subject_value="f1"))
    h.event(ev("access.face", t + 2 * S, device=2, subject_type="person", subject_value="11",
               person_id=11, direction="in"))  # fmt: skip
    h.event(ev("capture.face", t + 4 * S, device=1, subject_type="face", subject_value="f2"))
    assert h.tick(t + 30 * S) == []  # other devices' batches may still come
    [alert] = h.tick(t + 40 * S)
    assert alert.detail == {"people": 2, "openings": 1}
    assert h.tick(t + 90 * S) == []  # judged once


def test_tailgating_is_judged_whatever_order_the_devices_deliver_in() -> None:
    h = Harness(Tailgating(), gate_facts())
    t = local(3, 9)
    # The reader's batch first (its opening and a later one), then the camera's.
    h.event(ev("access.card", t + 2 * S, device=2, person_id=11, direction="in"))
    h.event(ev("access.card", t + 20 * S, device=2, person_id=12, direction="in"))
    for second, face in ((0, "f1"), (4, "f2"), (19, "f3")):
        h.event(ev("capture.face", t + second * S, device=1, subject_type="face",
                   subject_value=face))  # fmt: skip
    [alert] = h.tick(t + 2 * 60 * S)
    assert alert.at == t + 2 * S and alert.detail == {"people": 2, "openings": 1}


def test_two_people_each_with_their_own_credential_and_a_turned_away_visitor_are_fine() -> None:
    h = Harness(Tailgating(), gate_facts())
    t = local(3, 9)
    out = []
    for i, face in enumerate(("f1", "f2")):
        out += h.event(ev("capture.face", t + i * 2 * S, device=1, subject_type="face",
                          subject_value=face))  # fmt: skip
        out += h.event(ev("access.card", t + (i * 2 + 1) * S, device=2, subject_type="card",
                          subject_value=f"C{i}", person_id=11 + i, direction="in"))  # fmt: skip
    # A visitor captured and refused at the same moment as a resident's opening.
    out += h.event(ev("capture.face", t + 60 * S, device=1, subject_type="face",
                      subject_value="guest"))  # fmt: skip
    out += h.event(ev("access.denied", t + 61 * S, device=2, subject_type="face",
                      subject_value="guest"))  # fmt: skip
    out += h.event(ev("access.face", t + 62 * S, device=2, person_id=12, direction="in"))
    out += h.tick(t + 5 * 60 * S)
    assert out == []


def test_tailgating_waits_for_the_tick_not_for_later_events_of_another_device() -> None:
    h = Harness(Tailgating(), gate_facts())
    t = local(3, 9)
    # The reader's five minutes arrive first: an opening at 09:00:02 and one at 09:04.
    h.event(ev("access.card", t + 2 * S, device=2, person_id=11, direction="in"))
    h.event(ev("access.card", t + 240 * S, device=2, person_id=12, direction="in"))
    # Then the camera's: the resident and a stranger behind them at the first opening.
    h.event(ev("capture.face", t, device=1, subject_type="face", subject_value="T1",
               person_id=11))  # fmt: skip
    h.event(ev("capture.face", t + 4 * S, device=1, subject_type="face", subject_value="S-9"))
    [alert] = h.tick(t + 5 * 60 * S)
    assert alert.at == t + 2 * S and alert.detail == {"people": 2, "openings": 1}


def test_a_leaving_visitors_capture_beside_an_arrival_is_no_tailgating() -> None:
    # As in an evaluation run: a guest leaving is captured (the camera gives no direction)
    # and lets herself out two seconds after another guest's pass opened the entry.
    h = Harness(Tailgating(), gate_facts())
    t = local(3, 14)
    h.event(ev("capture.face", t, device=1, subject_type="face", subject_value="S-41"))
    h.event(ev("capture.face", t + S, device=1, subject_type="face", subject_value="S-53"))
    h.event(ev("access.qr", t + 3 * S, device=2, subject_type="qr", subject_value="V41",
               direction="in"))  # fmt: skip
    h.event(ev("access.remote", t + 4 * S, device=3, direction="out",
               data={"method": "exit_button"}))  # fmt: skip
    assert h.tick(t + 2 * 60 * S) == []
    # Someone leaving never makes an opening suspicious by their own capture going out.
    h.event(ev("capture.face", t + 600 * S, device=1, subject_type="face", subject_value="S-7",
               direction="out"))  # fmt: skip
    h.event(ev("access.card", t + 601 * S, device=2, person_id=11, direction="in"))
    assert h.tick(t + 15 * 60 * S) == []


def test_people_a_few_seconds_apart_each_with_their_own_opening_are_fine() -> None:
    # As in an evaluation run: each face is captured 2-3 s before its own opening, the next
    # person 6 s behind — within the window of the first opening, yet with an opening of
    # their own; and a visitor refused 7 s after another's pass.
    h = Harness(Tailgating(), gate_facts())
    t = local(3, 10)
    for second, face, opening in ((0, "S-6", "V19"), (6, "S-7", "V47")):
        h.event(ev("capture.face", t + second * S, device=1, subject_type="face",
                   subject_value=face, direction="in"))  # fmt: skip
        h.event(ev("access.qr", t + (second + 3) * S, device=2, subject_type="qr",
                   subject_value=opening, direction="in"))  # fmt: skip
    for second, person in ((60, 11), (66, 12)):
        h.event(ev("capture.face", t + second * S, device=1, subject_type="face",
                   subject_value=f"T{person}", person_id=person, direction="in"))  # fmt: skip
        h.event(ev("access.face", t + (second + 2) * S, device=2, person_id=person,
                   direction="in"))  # fmt: skip
    h.event(ev("capture.face", t + 120 * S, device=1, subject_type="face", subject_value="S-6"))
    h.event(ev("access.qr", t + 123 * S, device=2, subject_type="qr", subject_value="V28",
               direction="in"))  # fmt: skip
    h.event(ev("capture.face", t + 127 * S, device=1, subject_type="face", subject_value="S-8"))
    h.event(ev("access.denied", t + 130 * S, device=2, subject_type="face", subject_value="S-8",
               direction="in"))  # fmt: skip
    # A visitor captured, then her expired pass refused (turned away), beside an arrival.
    h.event(ev("capture.face", t + 200 * S, device=1, subject_type="face", subject_value="S-1",
               direction="in"))  # fmt: skip
    h.event(ev("access.qr", t + 203 * S, device=2, subject_type="qr", subject_value="V127",
               direction="in"))  # fmt: skip
    h.event(ev("capture.face", t + 205 * S, device=1, subject_type="face", subject_value="S-11",
               direction="in"))  # fmt: skip
    h.event(ev("access.denied", t + 208 * S, device=2, subject_type="qr", subject_value="V148",
               direction="in", data={"reason": "expired"}))  # fmt: skip
    assert h.tick(t + 5 * 60 * S) == []
    # A stranger right behind the second resident is still found, on that opening.
    h.event(ev("capture.face", t + 400 * S, device=1, subject_type="face", subject_value="T1",
               person_id=11, direction="in"))  # fmt: skip
    h.event(ev("access.face", t + 402 * S, device=2, person_id=11, direction="in"))
    h.event(ev("capture.face", t + 406 * S, device=1, subject_type="face", subject_value="T2",
               person_id=12, direction="in"))  # fmt: skip
    h.event(ev("access.face", t + 408 * S, device=2, person_id=12, direction="in"))
    h.event(ev("capture.face", t + 409 * S, device=1, subject_type="face", subject_value="S-9",
               direction="in"))  # fmt: skip
    [alert] = h.tick(t + 10 * 60 * S)
    assert alert.at == t + 408 * S and alert.detail == {"people": 2, "openings": 1}


@pytest.mark.parametrize("stranger_first", [False, True])
def test_a_visitor_refused_by_face_leaves_no_opening_for_a_tailgater(
    stranger_first: bool,
) -> None:
    # As in an evaluation run: a visitor refused by face (the terminal's face and the
    # camera's clustered as one stranger), and at the same moment a resident opening the
    # gate with a stranger right behind them. The refusal is the visitor's, not theirs.
    h = Harness(Tailgating(), gate_facts())
    t = local(3, 10)
    h.event(ev("access.denied", t, device=2, subject_type="face", subject_value="S-3",
               direction="in", data={"reason": "face not matched"}))  # fmt: skip
    h.event(ev("capture.face", t + (3 * S if stranger_first else 0 * S), device=1,
               subject_type="face", subject_value="S-3", direction="in"))  # fmt: skip
    h.event(ev("capture.face", t + S, device=1, subject_type="face", subject_value="T1",
               person_id=11, direction="in"))  # fmt: skip
    h.event(ev("access.face", t + 2 * S, device=2, person_id=11, direction="in"))
    h.event(ev("capture.face", t + (S // 2 if stranger_first else 3 * S), device=1,
               subject_type="face", subject_value="S-4", direction="in"))  # fmt: skip
    [alert] = h.tick(t + 2 * 60 * S)
    assert alert.at == t + 2 * S and alert.detail == {"people": 2, "openings": 1}


def test_one_resident_captured_twice_is_one_face() -> None:
    h = Harness(Tailgating(), gate_facts())
    t = local(3, 9)
    # Each capture has a track id of its own; recognition names the same resident.
    for second, track in ((0, "T1"), (3, "T2")):
        h.event(ev("capture.face", t + second * S, device=1, subject_type="face",
                   subject_value=track, person_id=11))  # fmt: skip
    h.event(ev("access.face", t + 2 * S, device=2, person_id=11, direction="in"))
    assert h.tick(t + 2 * 60 * S) == []


def test_a_device_head_count_above_one_is_tailgating_at_once() -> None:
    h = Harness(Tailgating(), gate_facts())
    [alert] = h.event(ev("access.card", local(3, 9), device=4, person_id=11,
                         data={"persons": 3}))  # fmt: skip
    assert alert.detail["people"] == 3


def test_an_unknown_card_at_a_unit_door_is_a_suspicious_entry() -> None:
    h = Harness(SuspiciousEntry(), gate_facts())
    [alert] = h.event(ev("access.card", local(3, 23), device=4, device_kind="unit_door",
                         subject_type="card", subject_value="FFFF0001"))  # fmt: skip
    assert "1号楼 1单元门" in alert.title
    # A person of another community (known to the registry, not here) too.
    assert h.event(ev("access.face", local(3, 23), device=4, device_kind="unit_door",
                      person_id=99)) != []  # fmt: skip


def test_residents_visitors_and_flat_openings_are_not_suspicious() -> None:
    h = Harness(SuspiciousEntry(), gate_facts())
    at = local(3, 20)
    for e in (
        ev("access.face", at, device=4, device_kind="unit_door", person_id=11),
        ev("access.qr", at, device=4, device_kind="unit_door", subject_type="qr",
           subject_value="V1"),
        ev("access.remote", at, device=4, device_kind="unit_door", data={"method": "intercom"}),
        ev("access.card", at, device=2, device_kind="face_gate", subject_type="card",
           subject_value="FFFF0001"),  # a gate, not a building door (by default)
        ev("access.card", at, device=4, device_kind="unit_door", subject_type="card",
           subject_value="FFFF0002", direction="out"),
    ):  # fmt: skip
        assert h.event(e) == []


def test_entries_on_several_nights_are_flagged_once_per_person() -> None:
    h = Harness(NightEntry(), gate_facts())
    assert h.event(ev("access.face", local(3, 1), device=2, person_id=11, direction="in")) == []
    assert h.event(ev("access.face", local(4, 2), device=2, person_id=11, direction="in")) == []
    [alert] = h.event(ev("access.face", local(6, 3), device=2, person_id=11, direction="in"))
    assert alert.fingerprint == "night_entry:11" and len(alert.detail["nights"]) == 3


def test_coming_home_late_now_and_then_is_normal() -> None:
    h = Harness(NightEntry(), gate_facts())
    for day in (1, 9, 17, 25):  # once a week or so
        assert h.event(ev("access.face", local(day, 1), device=2, person_id=11)) == []
    for day in range(1, 28):  # every evening before the night window
        assert h.event(ev("access.face", local(day, 23, 50), device=2, person_id=12)) == []
    assert h.event(ev("access.face", local(3, 2), device=3, person_id=12, direction="out")) == []


# --- housing --------------------------------------------------------------------------------

FLAT = 300


def flat_facts(residents: set[int] | None = None) -> MemoryFacts:
    return MemoryFacts(residents={FLAT: residents or {11}}, rented_houses={FLAT})


def lock(at: dt.datetime, credential: str | None = None, person: int | None = None) -> Seen:
    data = {"credential": credential} if credential else {}
    return ev("lock.opened", at, device=5, house_id=FLAT, person_id=person, data=data)


def test_a_new_occupant_not_reported_within_three_days() -> None:
    h = Harness(RentalUnregistered(), flat_facts())
    assert h.event(lock(local(3, 19), "pin-7")) == []
    assert h.event(lock(local(4, 19), "pin-7")) == []
    assert h.event(lock(local(5, 19), "pin-7")) == []
    [alert] = h.event(lock(local(6, 19, 30), "pin-7"))
    assert alert.fingerprint == f"rental_unregistered:{FLAT}:credential:pin-7"
    assert alert.detail["uses"] == 4


def test_residents_and_a_weekend_guest_are_not_unregistered_occupants() -> None:
    h = Harness(RentalUnregistered(), flat_facts())
    for day in range(1, 20):
        assert h.event(lock(local(day, 18), person=11)) == []
    assert h.event(lock(local(7, 20), "guest-pin")) == []
    assert h.event(lock(local(8, 21), "guest-pin")) == []
    # A flat that is not rented out is not watched by default.
    h2 = Harness(RentalUnregistered(), MemoryFacts(residents={FLAT: {11}}))
    for day in range(1, 8):
        assert h2.event(lock(local(day, 18), "pin-9")) == []


def test_many_different_openers_of_a_small_household_is_a_group_rental() -> None:
    h = Harness(GroupRental(), flat_facts({11, 12}))
    out = []
    for n in range(7):
        out += h.event(lock(local(3 + n % 5, 8 + n), f"pin-{n}"))
    # The sixth opener made it (6 > 2 × 2); the seventh's draft merges into the same alert.
    assert [d.detail["users"] for d in out] == [6, 7]
    assert out[0].detail["household"] == 2 and out[0].fingerprint == out[1].fingerprint


def test_a_family_with_visiting_relatives_is_no_group_rental() -> None:
    h = Harness(GroupRental(), flat_facts({11, 12, 13}))
    out = []
    for day in range(1, 30):
        for person in (11, 12, 13):
            out += h.event(lock(local(day, 18), person=person))
        if day % 10 == 0:  # grandparents, then a cousin, a cleaner: spread over weeks
            out += h.event(lock(local(day, 10), f"visitor-{day}"))
    assert out == []


# --- group rental by water / electricity use ---------------------------------------------

HOUSES = range(400, 412)  # twelve houses with meters beside FLAT


def metered_facts(sizes: dict[int, int] | None = None) -> MemoryFacts:
    """Every house with one resident, unless ``sizes`` says otherwise."""
    sizes = {FLAT: 1, **{h: 1 for h in HOUSES}, **(sizes or {})}
    return MemoryFacts(residents={h: set(range(h * 10, h * 10 + n)) for h, n in sizes.items()})


def meter(house: int, at: dt.datetime, value: float, kind: str = "meter.water") -> Seen:
    return ev(kind, at, device=house, house_id=house, value=value)


def lived(
    h: Harness, days: int, use: dict[int, float], kind: str = "meter.water"
) -> list[AlertDraft]:
    """Each house's reading after midnight and the model's tick at eight, day after day;
    ``use`` per house a day (FLAT and HOUSES; the others 0.2 each, a little spread)."""
    out: list[AlertDraft] = []
    total = dict.fromkeys([FLAT, *HOUSES], 100.0)
    for day in range(1, days + 1):
        for house in total:
            out += h.event(meter(house, local(day, 2, house % 50), total[house], kind))
            total[house] += use.get(house, 0.15 + house % 5 * 0.02)
        out += h.tick(local(day, 8))
    return out


def test_a_house_using_far_more_water_than_its_household_is_a_group_rental() -> None:
    h = Harness(GroupRental(), metered_facts())
    out = lived(h, 9, {FLAT: 0.9})
    assert out and {d.fingerprint for d in out} == {f"group_rental:{FLAT}"}
    assert out[0].house_id == FLAT and out[0].detail["meter"] == "water"
    assert out[0].detail["per_day"] >= 0.85 and out[0].detail["household"] == 1
    # Judged once a day: a second tick the same day says nothing new.
    assert h.tick(local(9, 20)) == []


def test_electricity_is_compared_the_same_way_with_its_own_floor() -> None:
    h = Harness(GroupRental(), metered_facts())
    use = {FLAT: 60.0, **{house: 8.0 + house % 4 for house in HOUSES}}
    out = lived(h, 8, use, "meter.electricity")
    assert {d.fingerprint for d in out} == {f"group_rental:{FLAT}"}
    assert out[0].detail["meter"] == "electricity"


def test_a_big_registered_household_using_proportionally_more_is_no_group_rental() -> None:
    h = Harness(GroupRental(), metered_facts({FLAT: 6}))
    assert lived(h, 10, {FLAT: 1.0}) == []


def test_use_is_not_compared_with_too_few_houses() -> None:
    h = Harness(GroupRental(), metered_facts(), min_houses=20)
    assert lived(h, 10, {FLAT: 0.9}) == []


def test_a_meter_reset_or_a_replayed_reading_is_no_use() -> None:
    h = Harness(GroupRental(), metered_facts())
    out = lived(h, 5, {})
    # FLAT's meter is replaced: it reads from zero again, then rises as before.
    for day, value in ((6, 0.0), (7, 0.17), (8, 0.34), (9, 0.5)):
        out += h.event(meter(FLAT, local(day, 3), value))
        out += h.tick(local(day, 8))
    # A replayed (history) reading far above is not use either.
    out += h.event(ev("meter.water", local(9, 4), device=FLAT, house_id=FLAT, value=900.0,
                      history=True))  # fmt: skip
    out += h.tick(local(10, 8))
    assert out == []


def test_meter_params_are_validated_naming_the_field() -> None:
    for field, bad in (("use_factor", 1.0), ("meter_days", 1), ("min_houses", 2),
                       ("water_floor", -1), ("judge_hour", 24)):  # fmt: skip
        with pytest.raises(ValidationError) as caught:
            GroupRental.Params.model_validate({field: bad})
        assert caught.value.errors()[0]["loc"] == (field,)
