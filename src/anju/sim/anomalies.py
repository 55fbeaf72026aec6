"""Anomalies planted in a community's normal life, with the ground truth of what each alert
model should find — and look-alike normal behaviour that it must not.

:func:`plant` takes a :class:`~anju.sim.life.Life` and a range of days and returns a
:class:`Scenario`: the events to add (and the ones to take out of normal life, e.g. while an
elderly person is away at her daughter's), the :class:`Truth` of every anomaly, the
watchlist entries the scenario needs, and a count of look-alikes. Incidents the simulator
already lives (kitchen smoke, e-bikes at unit doors, device faults, the elderly's quiet
days) are truths too: :func:`life_truths` reads them from the days' events. Everything is
deterministic from the seed.
"""

from __future__ import annotations

import bisect
import datetime as dt
import hashlib
import math
import random
from collections import Counter
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from anju.devices.models import DeviceKind
from anju.sim.faces import MODEL as FACE_MODEL
from anju.sim.faces import person_key, track_id
from anju.sim.life import Day, Home, Life, Resident, SimEvent

LANE_MINUTES = 10  # the fire model's default: a lane blocked this long is an alert
PATROL_GRACE = dt.timedelta(minutes=60)  # the device-health model's default grace
CROWD_CAPACITY = 200  # the crowd model's default capacity of an area
NORMAL_WATER = 0.18  # m³ a person uses a day in the simulator (a household: times its people)
METERED_HOMES = 10  # houses with water meters needed for the meter group-rental case
# How far the loiterers' laps keep from a gate's openings (the tailgating model's window, 5 s,
# with room for the devices' clocks).
CLEAR = dt.timedelta(seconds=10)
# What the elderly model counts as a sign of life in the house (beside the person's access).
HOUSE_SIGNS = frozenset({"sensor.door_magnet", "sensor.infrared", "lock.opened"})


@dataclass(frozen=True)
class Truth:
    """One anomaly a model should alert on: ``key`` names its subject the way the alert
    does (a device code, a person id, a house id or a plate / face id), within
    [``start``, ``end``]."""

    model: str
    community_id: int
    key: str
    start: dt.datetime
    end: dt.datetime
    # Wire ids of planted events whose stored subject the key is, when only the node can
    # name it (a stranger's S- code is given by face recognition): the scorer reads it back.
    sightings: tuple[str, ...] = ()


@dataclass(frozen=True)
class Watch:
    """A watchlist entry the scenario needs (list kind, match type, value); a face entry
    also carries its photo's vector (model ``anju-sim-v1``), enrolled with the entry."""

    list_kind: str
    match_type: str
    value: str
    category: str
    face: tuple[float, ...] = ()


@dataclass
class Scenario:
    """What :func:`plant` made: events to add, event ids to drop, truths, watch entries."""

    events: list[SimEvent] = field(default_factory=list)
    dropped: set[str] = field(default_factory=set)  # wire ids of normal events taken out
    truths: list[Truth] = field(default_factory=list)
    watches: list[Watch] = field(default_factory=list)
    lookalikes: Counter[str] = field(default_factory=Counter)
    # Look-alikes a model must not alert on, named the way truths are (model, subject,
    # period): the evaluation counts the alerts that land on them.
    decoys: list[Truth] = field(default_factory=list)


def _body(
    device: str,
    kind: str,
    at: dt.datetime,
    *,
    subject: tuple[str, str] | None = None,
    direction: str | None = None,
    value: float | None = None,
    data: dict[str, Any] | None = None,
    who: str | None = None,
) -> SimEvent:
    """A planted wire event (id ``eval-…``, a digest of its content); ``who`` is whose
    face it carries (kept here, not sent)."""
    body: dict[str, Any] = {"device": device, "kind": kind, "at": at.isoformat()}
    if subject is not None:
        body["subject"] = {"type": subject[0], "value": subject[1]}
    if direction is not None:
        body["direction"] = direction
    if value is not None:
        body["value"] = value
    if data:
        body["data"] = data
    digest = hashlib.blake2b(repr(sorted(body.items())).encode(), digest_size=9).hexdigest()
    return SimEvent(at, device, {"id": f"eval-{digest}", **body}, who)


class _Planter:
    """Plants each model's scenario from its own random stream, so one never shifts another."""

    def __init__(self, life: Life, days: Sequence[Day], community_id: int) -> None:
        self.life = life
        self.world = life.world
        self.days = list(days)
        self.community_id = community_id
        self.tz = life.tz
        self.out = Scenario()
        self.used_devices = {e.device for d in days for e in d.events if e.kind == "fire.smoke"}
        self.away_house: int | None = None  # the elderly away look-alike's house
        self.rental_houses: set[int] = set()  # the lock scenarios' flats
        self.key_person_id: int | None = None

    def rng(self, name: str) -> random.Random:
        return random.Random(f"{self.life.seed}/anomalies/{name}")

    def at(self, day: dt.date, hours: float) -> dt.datetime:
        return dt.datetime.combine(day, dt.time(), self.tz) + dt.timedelta(hours=hours)

    def truth(
        self,
        model: str,
        key: object,
        start: dt.datetime,
        end: dt.datetime,
        sightings: Sequence[SimEvent] = (),
    ) -> None:
        ids = tuple(str(e.body["id"]) for e in sightings)
        self.out.truths.append(Truth(model, self.community_id, str(key), start, end, ids))

    def face(
        self, device: str, kind: str, who: str, at: dt.datetime, direction: str | None = None
    ) -> SimEvent:
        """A planted face seen by a device: a track id and the feature vector, as life sends."""
        salt = f"{at.isoformat()}|{device}"
        data = {"feature": self.life.faces.feature(who, salt), "model": FACE_MODEL}
        subject = ("face", track_id(self.life.seed, device, who, salt))
        return _body(device, kind, at, subject=subject, direction=direction, data=data, who=who)

    def add(self, event: SimEvent) -> None:
        self.out.events.append(event)

    def decoy(
        self, name: str, model: str, key: object, start: dt.datetime, end: dt.datetime
    ) -> None:
        """A look-alike the model must not alert on (counted under ``name``)."""
        self.out.lookalikes[name] += 1
        self.out.decoys.append(Truth(model, self.community_id, str(key), start, end))

    def watched_homes(self) -> list[Home]:
        """Houses of the elderly living alone the model watches: fitted with a door magnet
        (the builder fits them for the residents it tags ``elderly_alone``), one person,
        not one the simulator's own quiet days (the frail) already use."""
        return [
            h
            for h in self.world.homes
            if DeviceKind.DOOR_MAGNET in h.devices
            and len(h.people) == 1
            and h.people[0].person_id not in self.life.frail
        ]

    # --- the scenarios ---

    def smoke(self) -> None:
        """A smoke alarm every other day on a detector the day's life leaves alone; and
        a detector's low-battery heartbeat, which is no fire."""
        rng = self.rng("smoke")
        detectors = [
            code
            for code, kind in sorted(self.world.devices.items())
            if kind is DeviceKind.SMOKE_DETECTOR and code not in self.used_devices
        ]
        rng.shuffle(detectors)
        for i, day in enumerate(self.days[::2]):
            if i >= len(detectors):
                break
            code, at = detectors[i], self.at(day.date, rng.uniform(9, 20))
            self.add(_body(code, "fire.smoke", at, value=1, data={"state": "alarm"}))
            clear = at + dt.timedelta(minutes=rng.uniform(2, 5))
            self.add(_body(code, "fire.smoke", clear, value=0, data={"state": "clear"}))
            self.truth("fire", code, at, clear)
            low = detectors[-1 - i] if len(detectors) > i + 1 else code
            beat = self.at(day.date, rng.uniform(1, 5))
            self.add(_body(low, "device.heartbeat", beat, data={"battery": 7, "low_battery": True}))
            self.out.lookalikes["low-battery smoke detector heartbeat"] += 1

    def sos(self) -> None:
        """An SOS pressed on a unit door's intercom every other day (distinct doors)."""
        rng = self.rng("sos")
        doors = sorted({h.unit_door for h in self.world.homes if h.unit_door})
        rng.shuffle(doors)
        for i, day in enumerate(self.days[1::2]):
            if i >= len(doors):
                break
            at = self.at(day.date, rng.uniform(8, 22))
            self.add(_body(doors[i], "alarm.sos", at, data={"button": 1}))
            self.truth("emergency", doors[i], at, at)

    def perimeter(self) -> None:
        """A climb over the fence every third night: a zone triggered three times in a
        minute. (The simulator's own single nuisance triggers are not planted truths.)"""
        rng = self.rng("perimeter")
        zones = list(self.world.perimeter)
        if not zones:
            return
        for day in self.days[::3]:
            zone = rng.randrange(len(zones))
            at = self.at(day.date, rng.uniform(0.5, 4.5))
            for n in range(3):
                t = at + dt.timedelta(seconds=20 * n)
                self.add(_body(zones[zone], "perimeter.intrusion", t, data={"zone": zone + 1}))
            self.truth("perimeter", zones[zone], at, at + dt.timedelta(minutes=1))

    def key_person(self) -> None:
        """A resident put on the key-person list: every day they pass a door is a sighting
        (one alert per person per day)."""
        rng = self.rng("key_person")
        people = [p for p in self.world.residents() if p.employee_no and 18 <= p.age < 60]
        if not people:
            return
        person = people[rng.randrange(len(people))]
        self.key_person_id = person.person_id
        self.out.watches.append(Watch("key_person", "person", str(person.person_id), "涉稳"))
        plates = set(self.world.cars.get(person.person_id, ()))
        for day in self.days:
            first = next((e for e in day.events if _names(e, person, plates)), None)
            if first is not None:
                self.truth("key_person", person.person_id, first.at, first.at)

    def key_person_by_face(self) -> None:
        """Key persons only the gate camera sees, each coming as a visitor (a visitor pass
        at the gate, out by the exit button): someone who never lived here, on the list by
        face (a photo), on two days; and a former tenant, on the list as a registered
        person, on one day — no card or face-terminal number names them any more, the
        node knows the face from their registration photo. One police-only alert a day."""
        rng = self.rng("key_face")
        gates = [g for g in self.world.gates if g.camera and g.entry and g.exit]
        if not gates:
            return
        outsider = "watch:000"
        photo = tuple(self.life.faces.template(outsider))
        self.out.watches.append(Watch("key_person", "face", "SIM-KP-001", "涉稳", photo))
        days = sorted(rng.sample(self.days, min(3, len(self.days))), key=lambda d: d.date)
        visits: list[tuple[Day, str, int | None]] = [(d, outsider, None) for d in days[:2]]
        if self.world.former and len(days) == 3:
            former = self.world.former[rng.randrange(len(self.world.former))]
            self.out.watches.append(Watch("key_person", "person", str(former), "涉稳"))
            visits.append((days[2], person_key(former), former))
        for day, who, person_id in visits:
            gate = gates[rng.randrange(len(gates))]
            assert gate.camera is not None and gate.entry is not None and gate.exit is not None
            at = self.at(day.date, rng.uniform(9, 19))
            left = at + dt.timedelta(minutes=rng.uniform(20, 90))
            seen = [
                self.face(gate.camera, "capture.face", who, at, "in"),
                self.face(gate.camera, "capture.face", who, left, "out"),
            ]
            qr = ("qr", f"V{day.date:%y%m%d}K{rng.randrange(1000):03d}")
            self.add(seen[0])
            self.add(_body(gate.entry, "access.qr", at + dt.timedelta(seconds=3), subject=qr,
                           direction="in"))  # fmt: skip
            self.add(seen[1])
            self.add(_body(gate.exit, "access.remote", left + dt.timedelta(seconds=3),
                           direction="out", data={"method": "exit_button"}))  # fmt: skip
            # the outsider is no registered person: the alert names the stranger code the
            # node gives the face (read back by the scorer)
            key = person_id if person_id is not None else who
            self.truth("key_person", key, at, left, seen if person_id is None else ())

    def controlled_plate(self) -> None:
        """A stolen car's plate on the controlled list, driven in on two days."""
        rng = self.rng("controlled")
        gates = [g for g in self.world.gates if g.barrier_in and g.plate_in]
        if not gates:
            return
        plate = f"{self.world.plate_prefix}Z{rng.randrange(10_000):04d}"
        self.out.watches.append(Watch("controlled", "plate", plate, "被盗车辆"))
        for day in rng.sample(self.days, min(2, len(self.days))):
            gate = gates[rng.randrange(len(gates))]
            at = self.at(day.date, rng.uniform(9, 20))
            assert gate.plate_in is not None and gate.barrier_in is not None
            self.add(_body(gate.plate_in, "capture.vehicle", at, subject=("plate", plate)))
            passed = at + dt.timedelta(seconds=2)
            self.add(
                _body(
                    gate.barrier_in, "vehicle.passed", passed, subject=("plate", plate),
                    direction="in",
                )
            )  # fmt: skip
            self.truth("controlled_list", plate, at, passed)

    def away_at_daughters(self) -> None:
        """Look-alike: an elderly person living alone goes to her daughter's for two
        nights, out through a gate; the house is empty (no motion, no door) but its
        sensors' heartbeats go on. The model stops the clock while they are out of the
        community (documented semantics): no alert."""
        rng = self.rng("away")
        homes = self.watched_homes()
        gates = [g for g in self.world.gates if g.entry and g.exit]
        if not homes or not gates or len(self.days) < 3:
            return
        home, gate = homes[rng.randrange(len(homes))], gates[0]
        person = home.people[0]
        first = rng.randrange(len(self.days) - 2)
        leave = self.at(self.days[first].date, 10)
        back = self.at(self.days[first + 2].date, 16)
        self.away_house = home.house_id
        inside = {c for k, c in home.devices.items() if k is not DeviceKind.WATER_METER}
        for day in self.days[first : first + 3]:
            for e in day.events:
                if not leave - dt.timedelta(hours=1) <= e.at <= back + dt.timedelta(hours=1):
                    continue
                if (e.device in inside and e.kind != "device.heartbeat") or _names(e, person):
                    self.out.dropped.add(str(e.body["id"]))
        assert gate.exit is not None and gate.entry is not None
        who = ("person", person.employee_no or "")
        self.add(_body(gate.exit, "access.face", leave, subject=who, direction="out"))
        self.add(_body(gate.entry, "access.face", back, subject=who, direction="in"))
        self.decoy(
            "elderly away at her daughter's, house empty, heartbeats on",
            "elderly_inactive", person.person_id, leave, back,
        )  # fmt: skip

    def quiet_at_home(self) -> None:
        """An elderly person living alone stays in, unwell, for a whole day: no motion, no
        door, no lock, no passage — only the sensors' heartbeats. One a week, in a house
        the away look-alike does not use, from the second day on (the model needs a sign
        of life to count from)."""
        rng = self.rng("quiet")
        homes = [h for h in self.watched_homes() if h.house_id != self.away_house]
        if not homes or len(self.days) < 2:
            return
        rng.shuffle(homes)
        for n, index in enumerate(range(1 + rng.randrange(min(6, len(self.days) - 1)),
                                        len(self.days), 7)):  # fmt: skip
            home = homes[n % len(homes)]
            person = home.people[0]
            day = self.days[index]
            inside = set(home.devices.values())
            for e in day.events:
                sign = e.device in inside and e.kind in HOUSE_SIGNS
                if sign or _names(e, person):
                    self.out.dropped.add(str(e.body["id"]))
            woke, bed = self.at(day.date, 7), self.at(day.date, 21.5)
            self.truth("elderly_inactive", person.person_id, woke, bed)

    def missed_patrol(self) -> None:
        """The guard skips one patrol point's 2:00 round every third night."""
        rng = self.rng("patrol")
        for day in self.days[1::3]:
            rounds = [e for e in day.events if e.kind == "patrol.checkin"]
            at2 = [e for e in rounds if 1.5 * 3600 < _second(e, self.tz) < 3.5 * 3600]
            if not at2:
                continue
            skipped = at2[rng.randrange(len(at2))]
            self.out.dropped.add(str(skipped.body["id"]))
            start = self.at(day.date, 2)
            self.truth("device_health", skipped.device, start, start + PATROL_GRACE)

    def rentals(self) -> None:
        """An unreported occupant opening a rented flat's lock for five days running; a
        guest staying one night at another (two days); tenants opening their own locks."""
        rng = self.rng("rental")
        flats = [h for h in self.world.homes if DeviceKind.SMART_LOCK in h.devices]
        if len(flats) < 3 or len(self.days) < 5:
            return
        occupied, guest, crowded = rng.sample(flats, 3)
        self.rental_houses = {occupied.house_id, guest.house_id, crowded.house_id}
        first = rng.randrange(len(self.days) - 4)
        lock = occupied.devices[DeviceKind.SMART_LOCK]
        cred = f"EV{rng.randrange(10**6):06d}"
        uses = [
            self.at(self.days[first + n].date, rng.uniform(18, 22.5)) for n in range(5)
        ]  # fmt: skip
        for at in uses:
            self.add(_body(lock, "lock.opened", at, data={"method": "pin", "credential": cred}))
        self.truth(
            "rental_unregistered", occupied.house_id, uses[0] + dt.timedelta(days=3), uses[-1]
        )
        lock = guest.devices[DeviceKind.SMART_LOCK]
        cred = f"EG{rng.randrange(10**6):06d}"
        for n in range(2):
            at = self.at(self.days[first + n].date, rng.uniform(19, 22))
            self.add(_body(lock, "lock.opened", at, data={"method": "pin", "credential": cred}))
        self.out.lookalikes["guest staying over (two days)"] += 1
        self.out.lookalikes["tenants opening their own flat's lock"] += 1
        # Group rental: more distinct openers in three days than twice the household.
        lock = crowded.devices[DeviceKind.SMART_LOCK]
        openers = max(6, 2 * len(crowded.people) + 1)
        times = sorted(
            self.at(self.days[first + rng.randrange(3)].date, rng.uniform(7, 23))
            for _ in range(openers)
        )
        for n, at in enumerate(times):
            data = {"method": "card", "credential": f"EC{crowded.house_id}-{n:02d}"}
            self.add(_body(lock, "lock.opened", at, data=data))
        self.truth("group_rental", crowded.house_id, times[0], times[-1])

    def metered_crowd(self) -> None:
        """Group rental seen only at the water meter: a flat the registry lists one resident
        in, sublet, its readings climbing from some day on at 4-5x a normal household's (no
        extra lock users); and a look-alike, another such flat with family staying for the
        rest of the run (about twice the normal use): no alert. Needs ``METERED_HOMES``
        houses with water meters (the model's default ``min_houses``: the evaluation meters
        every house). Neither flat is one another scenario uses (an elderly person's watched
        house, a lock scenario's flat)."""
        rng = self.rng("meters")
        metered = [h for h in self.world.homes if DeviceKind.WATER_METER in h.devices]
        if len(metered) < METERED_HOMES or len(self.days) < 8:
            return  # too few houses to compare with
        singles = [
            h for h in metered
            if len(h.people) == 1 and DeviceKind.DOOR_MAGNET not in h.devices
            and h.house_id != self.away_house and h.house_id not in self.rental_houses
        ]  # fmt: skip
        if len(singles) < 2:
            return
        crowded, family = rng.sample(singles, 2)
        first = rng.randrange(1, len(self.days) - 6)
        end = self.at(self.days[-1].date, 24)
        start = self._climb(crowded, first, rng.uniform(4.2, 5.0), rng)
        if start is not None:
            self.truth("group_rental", crowded.house_id, start, end)
        start = self._climb(family, first, rng.uniform(1.8, 2.2), rng)
        if start is not None:
            self.decoy("family staying: twice the water use", "group_rental",
                       family.house_id, start, end)  # fmt: skip

    def _climb(
        self, home: Home, first: int, factor: float, rng: random.Random
    ) -> dt.datetime | None:
        """Replace a home's water readings from day ``first`` + 1 on with ones rising at
        ``factor`` times normal daily use; the first replaced reading's time."""
        meter = home.devices[DeviceKind.WATER_METER]
        readings = [
            e for d in self.days for e in d.events
            if e.device == meter and e.kind == "meter.water" and "value" in e.body
        ]  # fmt: skip
        base = next((e for e in readings if e.at.astimezone(self.tz).date()
                     == self.days[first].date), None)  # fmt: skip
        if base is None:
            return None
        total, last, start = float(base.body["value"]), base.at, None
        for e in readings:
            if e.at <= base.at:
                continue
            days = (e.at - last).total_seconds() / 86_400
            total += days * factor * NORMAL_WATER * rng.uniform(0.9, 1.1)
            last = e.at
            self.out.dropped.add(str(e.body["id"]))
            self.add(_body(meter, "meter.water", e.at, value=round(total, 3),
                           data={"unit": "m3"}))  # fmt: skip
            start = start or e.at
        return start

    def loitering(self) -> None:
        """An unknown face captured seven times in 45 minutes at a gate camera without
        passing, every fourth day (couriers, captured and let in, are the look-alike). The
        laps keep ``CLEAR`` from the gate's openings: a stranger caught by the camera as a
        resident opens is counted by the tailgating model as coming in with them (its blind
        spot, see docs/alert-models.md), and this scenario is about loitering."""
        rng = self.rng("loiter")
        gates = [g for g in self.world.gates if g.camera]
        if not gates:
            return
        for i, day in enumerate(self.days[::4]):
            gate, face = gates[rng.randrange(len(gates))], f"loiter:{i:03d}"
            assert gate.camera is not None
            busy = self.openings(day, {gate.entry, gate.exit})
            at = self.at(day.date, rng.uniform(10, 20))
            times: list[dt.datetime] = []
            for _draw in range(1000):  # a gate busy all day long gives no case that day
                t = at + dt.timedelta(minutes=rng.uniform(0, 45))
                near = bisect.bisect_left(busy, t - CLEAR)
                if near == len(busy) or busy[near] > t + CLEAR:
                    times.append(t)
                if len(times) == 7:
                    break
            if len(times) < 7:
                continue
            times.sort()
            seen = [self.face(gate.camera, "capture.face", face, t) for t in times]
            for event in seen:
                self.add(event)
            # keyed by the stranger code the node gives the face (read back by the scorer)
            self.truth("stranger_loitering", face.upper(), times[5], times[-1], seen)

    def openings(self, day: Day, devices: set[str | None]) -> list[dt.datetime]:
        """When ``devices`` let someone through or refused them on ``day`` (lived or planted
        so far), sorted."""
        planted = (e for e in self.out.events if e.at.astimezone(self.tz).date() == day.date)
        return sorted(
            e.at
            for e in (*day.events, *planted)
            if e.device in devices and e.kind.startswith("access.")
        )

    def suspicious(self) -> None:
        """An unknown card swiped in at a unit door every fourth day; visitors' QR passes at
        the gates are the look-alike."""
        rng = self.rng("suspicious")
        doors = sorted({h.unit_door for h in self.world.homes if h.unit_door})
        if not doors:
            return
        for day in self.days[2::4]:
            door, at = doors[rng.randrange(len(doors))], self.at(day.date, rng.uniform(9, 23))
            card = f"EE{rng.randrange(16**6):06X}"
            self.add(_body(door, "access.card", at, subject=("card", card), direction="in"))
            self.truth("suspicious_entry", door, at, at)

    def night_entries(self) -> None:
        """A resident coming in between 1:00 and 4:00 on three nights of five (one alert);
        another coming home late once (no alert)."""
        rng = self.rng("night")
        gates = [g for g in self.world.gates if g.entry]
        people = [p for p in self.world.residents() if p.employee_no and 20 <= p.age < 60]
        if not gates or len(people) < 2 or len(self.days) < 6:
            return
        owl, late = rng.sample(people, 2)
        gate = gates[0].entry
        assert gate is not None
        first = 1 + rng.randrange(len(self.days) - 5)
        nights = sorted(rng.sample(range(5), 3))
        ats = [self.at(self.days[first + n].date, rng.uniform(1, 4)) for n in nights]
        for at in ats:
            self.add(_body(gate, "access.face", at, subject=("person", owl.employee_no or ""),
                           direction="in"))  # fmt: skip
        self.truth("night_entry", owl.person_id, ats[-1], ats[-1])
        at = self.at(self.days[first].date, rng.uniform(1, 4))
        self.add(_body(gate, "access.face", at, subject=("person", late.employee_no or ""),
                       direction="in"))  # fmt: skip
        self.out.lookalikes["resident coming home late once"] += 1

    def tailgating(self) -> None:
        """A stranger slipping in behind a resident at a gate, every other day: the gate's
        camera captures the resident and, two seconds later, an unknown face; the entry
        opens once. The look-alike, every day: two residents one right after the other,
        each captured and each opening the gate with their own face or card."""
        rng = self.rng("tailgate")
        gates = [g for g in self.world.gates if g.entry and g.camera]
        watched = {h.people[0].person_id for h in self.watched_homes()}
        people = [
            p
            for p in self.world.residents()
            if p.employee_no and p.card and 18 <= p.age < 60
            and p.person_id not in watched and p.person_id != self.key_person_id
        ]  # fmt: skip
        if not gates or len(people) < 2:
            return
        second = dt.timedelta(seconds=1)
        for i, day in enumerate(self.days):
            gate = gates[rng.randrange(len(gates))]
            assert gate.entry is not None and gate.camera is not None
            first, other = rng.sample(people, 2)
            at = self.at(day.date, rng.uniform(8, 14))
            self._pass(gate.camera, gate.entry, first, at, by_card=False)
            if i % 2 == 0:
                tail = f"tailgater:{i:03d}"
                self.add(self.face(gate.camera, "capture.face", tail, at + 2 * second, "in"))
                self.truth("tailgating", gate.entry, at, at)
            # The look-alike, hours apart from the case.
            at = self.at(day.date, rng.uniform(15, 21))
            self._pass(gate.camera, gate.entry, first, at, by_card=False)
            self._pass(gate.camera, gate.entry, other, at + 3 * second, by_card=True)
            self.decoy(
                "two residents one after the other, each with their own credential",
                "tailgating", gate.entry, at, at + 3 * second,
            )  # fmt: skip

    def _pass(
        self, camera: str, entry: str, person: Resident, at: dt.datetime, *, by_card: bool
    ) -> None:
        """A resident captured at a gate, then let in by their face or card a second later."""
        face = person_key(person.person_id)
        self.add(self.face(camera, "capture.face", face, at - dt.timedelta(seconds=1), "in"))
        who = ("person", person.employee_no or "")
        if by_card:
            card = ("card", person.card or "")
            self.add(_body(entry, "access.card", at, subject=card, direction="in"))
        else:
            self.add(_body(entry, "access.face", at, subject=who, direction="in"))

    def crowd(self) -> None:
        """Areas with a people-counting camera (the evaluation puts two in the community's
        squares) report a head count every ten minutes from 6:00 to 22:00: a morning and
        an evening peak, the evening one busy but under capacity (the look-alike, every
        day); and, each day at one of them in turn, a crowd of 20 to 40 minutes above
        capacity (one alert per area per day)."""
        rng = self.rng("crowd")
        counters = sorted(c for c, k in self.world.devices.items() if k is DeviceKind.VIDEO_CAMERA)
        if not counters:
            return
        cap = CROWD_CAPACITY
        for i, day in enumerate(self.days):
            surge_at = counters[i % len(counters)]
            for code in counters:
                peak_hour, peak = rng.uniform(19, 20.5), rng.uniform(0.85, 0.97)
                start = rng.uniform(9.5, 17) if code == surge_at else None
                end = start + rng.uniform(20, 40) / 60 if start is not None else None
                over: list[dt.datetime] = []
                for step in range(6 * 6, 22 * 6 + 1):
                    hours = step / 6
                    at = self.at(day.date, hours)
                    if start is not None and end is not None and start <= hours <= end:
                        count = round(cap * rng.uniform(1.05, 1.35))
                        over.append(at)
                    else:
                        share = (
                            0.08 + 0.3 * _bump(hours, 7.5, 0.6) + 0.15 * _bump(hours, 12.5, 1.2)
                            + (peak - 0.08) * _bump(hours, peak_hour, 0.7)
                        )  # fmt: skip
                        count = min(int(cap * 0.97), round(cap * share * rng.uniform(0.97, 1.03)))
                    self.add(_body(code, "crowd.count", at, value=count, data={"unit": "persons"}))
                if over:
                    self.truth("crowd", code, over[0], over[-1])
                busy = self.at(day.date, peak_hour)
                self.decoy(
                    "busy evening hour under capacity", "crowd", code,
                    busy - dt.timedelta(hours=1), busy + dt.timedelta(hours=1),
                )  # fmt: skip


def _bump(x: float, centre: float, width: float) -> float:
    return math.exp(-(((x - centre) / width) ** 2) / 2)


def _names(event: SimEvent, person: Resident, plates: Collection[str] = ()) -> bool:
    """Whether a normal-life event names this resident (face, card, lock credential or the
    plate of their car) or holds their face."""
    if event.who is not None:
        return event.who == person_key(person.person_id)
    subject = event.body.get("subject") or {}
    value = subject.get("value")
    if value is not None and (value in (person.employee_no, person.card) or value in plates):
        return True
    return (
        bool(person.lock_code)
        and (event.body.get("data") or {}).get("credential") == person.lock_code
    )


def _second(event: SimEvent, tz: Any) -> float:
    local = event.at.astimezone(tz)
    return local.hour * 3600 + local.minute * 60 + local.second


def life_truths(
    life: Life, days: Iterable[Day], community_id: int, dropped: Collection[str] = ()
) -> list[Truth]:
    """The incidents normal life already holds, as truths: smoke alarms, fire lanes blocked
    long enough, e-bikes at unit doors, device faults, and the elderly's quiet days — not
    those whose event a scenario took out (``dropped`` wire ids: a kitchen's smoke in the
    house of an elderly person away at her daughter's)."""
    tz = life.tz
    # The model watches the houses of residents tagged elderly living alone: those the
    # builder fitted with a door magnet (others living alone at 60+ are not watched).
    homes: dict[int, Home] = {
        h.people[0].person_id: h
        for h in life.world.homes
        if len(h.people) == 1 and DeviceKind.DOOR_MAGNET in h.devices
    }
    out: list[Truth] = []
    for day in days:
        for e in day.events:
            if dropped and e.body["id"] in dropped:
                continue
            data = e.body.get("data") or {}
            smoke = e.kind == "fire.smoke" and data.get("state") == "alarm"
            lane = e.kind == "fire.lane_blocked" and data.get("seconds", 0) >= LANE_MINUTES * 60
            if smoke or lane:
                out.append(Truth("fire", community_id, e.device, e.at, e.at))
            elif e.kind == "ebike.detected":
                out.append(Truth("ebike", community_id, e.device, e.at, e.at))
            elif e.kind == "device.fault":
                down = e.at + dt.timedelta(minutes=90)  # the longest silence a fault brings
                out.append(Truth("device_health", community_id, e.device, e.at, down))
        for person in sorted(day.quiet):
            if person in homes:
                woke = dt.datetime.combine(day.date, dt.time(7), tz)
                end = dt.datetime.combine(day.date, dt.time(21, 30), tz)
                out.append(Truth("elderly_inactive", community_id, str(person), woke, end))
    return out


def plant(life: Life, days: Sequence[Day], community_id: int) -> Scenario:
    """Every model's anomalies and look-alikes over ``days``, plus normal life's truths."""
    planter = _Planter(life, days, community_id)
    for step in (
        planter.smoke,
        planter.sos,
        planter.perimeter,
        planter.key_person,
        planter.key_person_by_face,
        planter.controlled_plate,
        planter.away_at_daughters,
        planter.quiet_at_home,
        planter.missed_patrol,
        planter.rentals,
        planter.metered_crowd,
        planter.suspicious,
        planter.night_entries,
        planter.tailgating,
        planter.loitering,  # after the gates' planted openings: it keeps clear of them
        planter.crowd,
    ):
        step()
    scenario = planter.out
    scenario.truths.extend(life_truths(life, days, community_id, scenario.dropped))
    scenario.events.sort(key=lambda e: (e.at, e.device, e.body["id"]))
    return scenario


def merged(days: Iterable[Day], scenario: Scenario) -> list[SimEvent]:
    """Normal life (minus what the scenario took out) and the planted events, in time order."""
    events = [e for d in days for e in d.events if e.body["id"] not in scenario.dropped]
    events.extend(scenario.events)
    events.sort(key=lambda e: (e.at, e.device, e.body["id"]))
    return events
