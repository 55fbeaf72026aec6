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

import datetime as dt
import hashlib
import random
from collections import Counter
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from anju.devices.models import DeviceKind
from anju.sim.life import Day, Home, Life, Resident, SimEvent

LANE_MINUTES = 10  # the fire model's default: a lane blocked this long is an alert
PATROL_GRACE = dt.timedelta(minutes=60)  # the device-health model's default grace


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


@dataclass(frozen=True)
class Watch:
    """A watchlist entry the scenario needs (list kind, match type, value)."""

    list_kind: str
    match_type: str
    value: str
    category: str


@dataclass
class Scenario:
    """What :func:`plant` made: events to add, event ids to drop, truths, watch entries."""

    events: list[SimEvent] = field(default_factory=list)
    dropped: set[str] = field(default_factory=set)  # wire ids of normal events taken out
    truths: list[Truth] = field(default_factory=list)
    watches: list[Watch] = field(default_factory=list)
    lookalikes: Counter[str] = field(default_factory=Counter)


def _body(
    device: str,
    kind: str,
    at: dt.datetime,
    *,
    subject: tuple[str, str] | None = None,
    direction: str | None = None,
    value: float | None = None,
    data: dict[str, Any] | None = None,
) -> SimEvent:
    """A planted wire event (id ``eval-…``, a digest of its content)."""
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
    return SimEvent(at, device, {"id": f"eval-{digest}", **body})


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

    def rng(self, name: str) -> random.Random:
        return random.Random(f"{self.life.seed}/anomalies/{name}")

    def at(self, day: dt.date, hours: float) -> dt.datetime:
        return dt.datetime.combine(day, dt.time(), self.tz) + dt.timedelta(hours=hours)

    def truth(self, model: str, key: object, start: dt.datetime, end: dt.datetime) -> None:
        self.out.truths.append(Truth(model, self.community_id, str(key), start, end))

    def add(self, event: SimEvent) -> None:
        self.out.events.append(event)

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
        self.out.watches.append(Watch("key_person", "person", str(person.person_id), "涉稳"))
        plates = set(self.world.cars.get(person.person_id, ()))
        for day in self.days:
            first = next((e for e in day.events if _names(e, person, plates)), None)
            if first is not None:
                self.truth("key_person", person.person_id, first.at, first.at)

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
        nights; the house is empty (no motion, no door) but its sensors' heartbeats go on."""
        rng = self.rng("away")
        homes = [
            h
            for h in self.world.homes
            if h.elderly_alone and h.people and h.people[0].person_id not in self.life.frail
        ]
        gates = [g for g in self.world.gates if g.entry and g.exit]
        if not homes or not gates or len(self.days) < 3:
            return
        home, gate = homes[rng.randrange(len(homes))], gates[0]
        person = home.people[0]
        first = rng.randrange(len(self.days) - 2)
        leave = self.at(self.days[first].date, 10)
        back = self.at(self.days[first + 2].date, 16)
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
        self.out.lookalikes["elderly away at her daughter's, house empty"] += 1

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

    def loitering(self) -> None:
        """An unknown face captured seven times in 45 minutes at a gate camera without
        passing, every fourth day (couriers, captured and let in, are the look-alike)."""
        rng = self.rng("loiter")
        cameras = [g.camera for g in self.world.gates if g.camera]
        if not cameras:
            return
        for i, day in enumerate(self.days[::4]):
            camera, face = cameras[rng.randrange(len(cameras))], f"loiter-{i:03d}"
            at = self.at(day.date, rng.uniform(10, 20))
            times = sorted(at + dt.timedelta(minutes=rng.uniform(0, 45)) for _ in range(7))
            for t in times:
                self.add(_body(camera, "capture.face", t, subject=("face", face)))
            self.truth("stranger_loitering", face.upper(), times[5], times[-1])

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


def _names(event: SimEvent, person: Resident, plates: Collection[str] = ()) -> bool:
    """Whether a normal-life event names this resident (face, card, lock credential or the
    plate of their car)."""
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


def life_truths(life: Life, days: Iterable[Day], community_id: int) -> list[Truth]:
    """The incidents normal life already holds, as truths: smoke alarms, fire lanes blocked
    long enough, e-bikes at unit doors, device faults, and the elderly's quiet days."""
    tz = life.tz
    homes: dict[int, Home] = {h.people[0].person_id: h for h in life.world.homes if h.people}
    out: list[Truth] = []
    for day in days:
        for e in day.events:
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
        planter.controlled_plate,
        planter.away_at_daughters,
        planter.missed_patrol,
        planter.rentals,
        planter.loitering,
        planter.suspicious,
        planter.night_entries,
    ):
        step()
    scenario = planter.out
    scenario.truths.extend(life_truths(life, days, community_id))
    scenario.events.sort(key=lambda e: (e.at, e.device, e.body["id"]))
    return scenario


def merged(days: Iterable[Day], scenario: Scenario) -> list[SimEvent]:
    """Normal life (minus what the scenario took out) and the planted events, in time order."""
    events = [e for d in days for e in d.events if e.body["id"] not in scenario.dropped]
    events.extend(scenario.events)
    events.sort(key=lambda e: (e.at, e.device, e.body["id"]))
    return events
