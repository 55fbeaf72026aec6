"""The demo's showcase: one case of every alert model around the moment the demo starts.

``anju evaluate``'s scenarios (:mod:`anju.sim.anomalies`) spread their anomalies over days
of simulated life; the demo lives those too, but its first visitor would meet only what
happened to fall in the last day, and models that judge absence against the clock
(loitering, tailgating, an elderly person's silence, a missed patrol round) set aside what
the demo's fast catch-up replays as too old to act on. So the demo also plants a showcase
anchored at ``now``, the moment it starts:

- **already there on first visit** (in the day the demo catches up on, or sent back-dated
  before it, as a device uploading its history would): an elderly person living alone
  silent for more than a day, a resident coming in at night three nights running, an
  unreported occupant's lock uses over three days, the first openers of a sublet flat,
  and the night's patrol round a guard skipped when that round is still being judged;
- **live, one a minute from two minutes after the start**: a smoke alarm, an SOS, a
  perimeter climb, a key person at the gate, a stolen car, an unknown card at a unit
  door, a tailgater, an e-bike in a lift, a stranger loitering, a crowd on a square, the
  sublet flat's last openers, a device fault and the unreported occupant's lock again.

Everything avoids the subjects the days' own scenario uses (``avoid``), so one never
masks the other. Deterministic from the seed and ``now``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Sequence

from anju.devices.models import DeviceKind
from anju.sim.anomalies import (
    CROWD_CAPACITY,
    PATROL_GRACE,
    Scenario,
    Truth,
    Watch,
    _body,
    _names,
    _Planter,
)
from anju.sim.life import Day, Home, Life, Resident

# Patrol rounds the device-health model judges by default (local times), and for how long
# after a round's grace it still judges one.
PATROL_ROUNDS = (dt.time(22), dt.time(0), dt.time(2), dt.time(4))
PATROL_JUDGED = dt.timedelta(hours=6)
ELDERLY_SILENCE = dt.timedelta(hours=26)  # the showcase's elderly person: last sign then
LIVE_FROM = dt.timedelta(minutes=2)  # the first live case, after the demo starts


class _Showcase(_Planter):
    """Plants the showcase's cases (see the module docstring) with the planter's helpers."""

    def __init__(
        self, life: Life, days: Sequence[Day], community_id: int, now: dt.datetime,
        avoid: Collection[str],
    ) -> None:  # fmt: skip
        super().__init__(life, days, community_id)
        self.now = now
        self.start = now - dt.timedelta(days=1)  # what the demo's catch-up begins with
        self.avoid = set(avoid)

    def live(self, minutes: float) -> dt.datetime:
        """A moment ``minutes`` into the live part."""
        return self.now + LIVE_FROM + dt.timedelta(minutes=minutes)

    def free(self, key: object) -> bool:
        """Whether the days' scenario leaves this subject (device, person, house) alone."""
        return str(key) not in self.avoid

    def take(self, key: object) -> None:
        self.avoid.add(str(key))

    def homes(self, kind: DeviceKind) -> list[Home]:
        return [
            h for h in self.world.homes
            if kind in h.devices and self.free(h.house_id) and self.free(h.devices[kind])
        ]  # fmt: skip

    def adults(self, youngest: int) -> list[Resident]:
        """Residents of ``youngest`` to 59 whom gates know by face, left alone by the days'
        scenario."""
        return [
            p for p in self.world.residents()
            if p.employee_no and youngest <= p.age < 60 and self.free(p.person_id)
        ]  # fmt: skip

    def unit_doors(self) -> list[str]:
        """The unit doors the days' scenario leaves alone."""
        return sorted(
            {h.unit_door for h in self.world.homes if h.unit_door and self.free(h.unit_door)}
        )

    def caught(
        self, model: str, key: object, start: dt.datetime, end: dt.datetime | None = None
    ) -> None:
        self.take(key)
        self.out.truths.append(Truth(model, self.community_id, str(key), start, end or start))

    # --- live, one a minute -------------------------------------------------------------

    def smoke(self) -> None:
        detectors = [
            c for c, k in sorted(self.world.devices.items())
            if k is DeviceKind.SMOKE_DETECTOR and c not in self.used_devices and self.free(c)
        ]  # fmt: skip
        if not detectors:
            return
        code, at = detectors[self.rng("smoke").randrange(len(detectors))], self.live(0)
        self.add(_body(code, "fire.smoke", at, value=1, data={"state": "alarm"}))
        clear = at + dt.timedelta(minutes=3)
        self.add(_body(code, "fire.smoke", clear, value=0, data={"state": "clear"}))
        self.caught("fire", code, at)

    def sos(self) -> None:
        doors = self.unit_doors()
        if not doors:
            return
        door, at = doors[self.rng("sos").randrange(len(doors))], self.live(1)
        self.add(_body(door, "alarm.sos", at, data={"button": 1}))
        self.caught("emergency", door, at)

    def perimeter(self) -> None:
        zones = [z for z in self.world.perimeter if self.free(z)]
        if not zones:
            return
        zone = self.rng("perimeter").randrange(len(zones))
        at = self.live(2)
        for n in range(3):
            t = at + dt.timedelta(seconds=20 * n)
            self.add(_body(zones[zone], "perimeter.intrusion", t, data={"zone": zone + 1}))
        self.caught("perimeter", zones[zone], at)

    def key_person(self) -> None:
        """Someone on the key-person list by a photo, never a resident, captured by a gate
        camera on the way in. (A resident on the list would already have been seen that
        day, and the day's alert would absorb the showcase's.)"""
        gates = [g for g in self.world.gates if g.camera]
        if not gates:
            return
        camera, who = gates[0].camera, "showcase:key-person"
        assert camera is not None
        photo = tuple(self.life.faces.template(who))
        self.out.watches.append(Watch("key_person", "face", "SIM-KP-SHOW", "涉稳", photo))
        seen = self.face(camera, "capture.face", who, self.live(3), "in")
        self.add(seen)
        # keyed by the stranger code the node gives the face (read back from the sighting)
        self.out.truths.append(
            Truth("key_person", self.community_id, who.upper(), seen.at, seen.at,
                  (str(seen.body["id"]),))
        )  # fmt: skip

    def controlled_plate(self) -> None:
        gates = [g for g in self.world.gates if g.barrier_in and g.plate_in]
        if not gates:
            return
        plate = f"{self.world.plate_prefix}Z{self.rng('controlled').randrange(10_000):04d}"
        self.out.watches.append(Watch("controlled", "plate", plate, "被盗车辆"))
        gate, at = gates[0], self.live(4)
        assert gate.plate_in is not None and gate.barrier_in is not None
        self.add(_body(gate.plate_in, "capture.vehicle", at, subject=("plate", plate)))
        passed = at + dt.timedelta(seconds=2)
        self.add(_body(gate.barrier_in, "vehicle.passed", passed, subject=("plate", plate),
                       direction="in"))  # fmt: skip
        self.caught("controlled_list", plate, at)

    def suspicious(self) -> None:
        doors = self.unit_doors()
        if not doors:
            return
        rng = self.rng("suspicious")
        door, at = doors[rng.randrange(len(doors))], self.live(5)
        card = f"EE{rng.randrange(16**6):06X}"
        self.add(_body(door, "access.card", at, subject=("card", card), direction="in"))
        self.caught("suspicious_entry", door, at)

    def tailgating(self) -> None:
        """A resident let in by face at a gate, and an unknown face two seconds behind."""
        gates = [g for g in self.world.gates if g.entry and g.camera]
        # Each tailgating alert is its own (keyed by the opening): a gate the days' scenario
        # uses will do when there is no other.
        gates = [g for g in gates if self.free(g.entry)] or gates
        people = self.adults(18)
        if not gates or not people:
            return
        rng = self.rng("tailgate")
        gate, person = gates[rng.randrange(len(gates))], people[rng.randrange(len(people))]
        assert gate.entry is not None and gate.camera is not None
        at = self.live(6)
        self._pass(gate.camera, gate.entry, person, at, by_card=False)
        tail = self.face(
            gate.camera, "capture.face", "showcase:tailgater", at + dt.timedelta(seconds=2), "in"
        )
        self.add(tail)
        self.take(person.person_id)
        self.caught("tailgating", gate.entry, at)

    def ebike(self) -> None:
        doors = self.unit_doors()
        if not doors:
            return
        door, at = doors[self.rng("ebike").randrange(len(doors))], self.live(7)
        self.add(_body(door, "ebike.detected", at, data={"place": "elevator"}))
        self.caught("ebike", door, at)

    def loitering(self) -> None:
        """An unknown face captured seven times in six minutes at a gate camera, never
        passing (the alert names the stranger code the node gives the face)."""
        cameras = [g.camera for g in self.world.gates if g.camera]
        if not cameras:
            return
        camera = cameras[-1]
        seen = [
            self.face(camera, "capture.face", "showcase:loiterer", self.live(7 + n))
            for n in range(7)
        ]
        for event in seen:
            self.add(event)
        self.out.truths.append(
            Truth("stranger_loitering", self.community_id, "SHOWCASE:LOITERER",
                  seen[0].at, seen[-1].at, tuple(str(e.body["id"]) for e in seen))
        )  # fmt: skip

    def crowd(self) -> None:
        """A square's head count climbing past its capacity."""
        counters = sorted(c for c, k in self.world.devices.items() if k is DeviceKind.VIDEO_CAMERA)
        if not counters:
            return
        # The days' scenario crowds one square a day, in turn (yesterday's is the first).
        code = next((c for c in counters if self.free(c)), counters[0])
        for n, share in enumerate((0.55, 0.8, 1.2)):
            at = self.live(4 * n)
            count = round(CROWD_CAPACITY * share)
            self.add(_body(code, "crowd.count", at, value=count, data={"unit": "persons"}))
        self.caught("crowd", code, self.live(8))

    def device_fault(self) -> None:
        cameras = [g.plate_in for g in self.world.gates if g.plate_in and self.free(g.plate_in)]
        if not cameras:
            return
        at = self.live(11)
        self.add(_body(cameras[-1], "device.fault", at, data={"fault": "lens occluded"}))
        self.caught("device_health", cameras[-1], at)

    # --- already there: back-dated or in the day caught up on ----------------------------

    def group_rental(self) -> None:
        """A rented flat opened by more different people in a day than twice its household:
        most of them over the day caught up on, the last two live."""
        flats = self.homes(DeviceKind.SMART_LOCK)
        if not flats:
            return
        rng = self.rng("group_rental")
        flat = flats[rng.randrange(len(flats))]
        lock = flat.devices[DeviceKind.SMART_LOCK]
        openers = max(6, 2 * len(flat.people) + 1)
        times = sorted(
            self.now - dt.timedelta(hours=rng.uniform(2, 20)) for _ in range(openers - 2)
        )
        times += [self.live(9), self.live(10)]
        for n, at in enumerate(times):
            data = {"method": "card", "credential": f"SC{flat.house_id}-{n:02d}"}
            self.add(_body(lock, "lock.opened", at, data=data))
        # The tenants' own openings count too: the alert may come before the last ones.
        self.caught("group_rental", flat.house_id, times[0], times[-1])

    def rental_unregistered(self) -> None:
        """Someone the registry does not know opening a rented flat's lock over more than
        three days: twice back-dated, once in the day caught up on, and once live."""
        flats = self.homes(DeviceKind.SMART_LOCK)
        if not flats:
            return
        rng = self.rng("rental")
        flat = flats[rng.randrange(len(flats))]
        lock = flat.devices[DeviceKind.SMART_LOCK]
        cred = f"SU{rng.randrange(10**6):06d}"
        ago = (dt.timedelta(days=3, hours=2), dt.timedelta(days=2), dt.timedelta(hours=20))
        uses = [self.now - a for a in ago] + [self.live(12)]
        for at in uses:
            self.add(_body(lock, "lock.opened", at, data={"method": "pin", "credential": cred}))
        self.caught("rental_unregistered", flat.house_id, uses[-1])

    def night_entries(self) -> None:
        """A resident coming in between 1:00 and 4:00 on each of the last three nights."""
        gates = [g for g in self.world.gates if g.entry]
        people = self.adults(20)
        if not gates or not people:
            return
        rng = self.rng("night")
        owl, gate = people[rng.randrange(len(people))], gates[0].entry
        assert gate is not None
        local = self.now.astimezone(self.tz)
        nights: list[dt.datetime] = []
        day = local.date()
        while len(nights) < 3:
            at = self.at(day, rng.uniform(1, 4))
            if at < self.now:
                nights.append(at)
            day -= dt.timedelta(days=1)
        for at in nights:
            self.add(_body(gate, "access.face", at, subject=("person", owl.employee_no or ""),
                           direction="in"))  # fmt: skip
        self.caught("night_entry", owl.person_id, nights[0])

    def elderly(self) -> None:
        """An elderly person living alone, last seen at their door magnet more than a day
        ago: everything their house and they themselves would send since is taken out."""
        homes = [
            h
            for h in self.watched_homes()
            if self.free(h.house_id) and self.free(h.people[0].person_id)
        ]
        if not homes:
            return
        home = homes[self.rng("elderly").randrange(len(homes))]
        person = home.people[0]
        magnet = home.devices[DeviceKind.DOOR_MAGNET]
        last = self.now - ELDERLY_SILENCE
        self.add(_body(magnet, "sensor.door_magnet", last, value=1, data={"state": "open"}))
        self.add(_body(magnet, "sensor.door_magnet", last + dt.timedelta(seconds=40), value=0,
                       data={"state": "closed"}))  # fmt: skip
        inside = set(home.devices.values())
        until = self.live(30)
        for d in self.days:
            for e in d.events:
                if last < e.at <= until and (
                    (e.device in inside and e.kind != "device.heartbeat") or _names(e, person)
                ):
                    self.out.dropped.add(str(e.body["id"]))
        self.caught("elderly_inactive", person.person_id, self.now)

    def missed_patrol(self) -> None:
        """The guard skipped a point in the night's round still being judged at ``now``
        (none between late morning and the next round: no case then)."""
        local = self.now.astimezone(self.tz)
        candidates = [
            dt.datetime.combine(local.date() - dt.timedelta(days=back), t, self.tz)
            for back in (1, 0) for t in PATROL_ROUNDS
        ]  # fmt: skip
        judged = [
            r for r in candidates
            if self.start + PATROL_GRACE < r
            and r + PATROL_GRACE <= self.now < r + PATROL_GRACE + PATROL_JUDGED
        ]  # fmt: skip
        if not judged:
            return
        round_at = judged[-1]
        checkins = [
            e for d in self.days for e in d.events
            if e.kind == "patrol.checkin" and abs(e.at - round_at) <= PATROL_GRACE
            and self.free(e.device)
        ]  # fmt: skip
        if not checkins:
            return
        point = checkins[self.rng("patrol").randrange(len(checkins))].device
        for e in checkins:
            if e.device == point:
                self.out.dropped.add(str(e.body["id"]))
        self.caught("device_health", point, self.now)


def showcase(
    life: Life,
    days: Sequence[Day],
    community_id: int,
    now: dt.datetime,
    avoid: Collection[str] = (),
) -> Scenario:
    """Every model's showcase case around ``now`` (see the module docstring). ``days``:
    the days whose events the demo sends (from a day before ``now``), to take events out
    of; ``avoid``: subjects (str of device codes, person and house ids) the days' own
    scenario uses."""
    planter = _Showcase(life, days, community_id, now, avoid)
    for step in (
        planter.elderly,  # first: the others leave its person and house alone
        planter.missed_patrol,
        planter.night_entries,
        planter.rental_unregistered,
        planter.group_rental,
        planter.smoke,
        planter.sos,
        planter.perimeter,
        planter.key_person,
        planter.controlled_plate,
        planter.suspicious,
        planter.tailgating,
        planter.ebike,
        planter.loitering,
        planter.crowd,
        planter.device_fault,
    ):
        step()
    scenario = planter.out
    scenario.events.sort(key=lambda e: (e.at, e.device, e.body["id"]))
    return scenario


def subjects(scenario: Scenario, now: dt.datetime) -> set[str]:
    """What a scenario's truths name from a day before ``now`` to a day after (for
    ``showcase(avoid=…)``: an alert of theirs could absorb the showcase's)."""
    near = dt.timedelta(days=1)
    # Of the look-alikes, only the elderly person away from home changes what a model
    # makes of its subject (the others raise nothing to absorb a case).
    decoys = [d for d in scenario.decoys if d.model == "elderly_inactive"]
    return {
        t.key for t in (*scenario.truths, *decoys)
        if t.end >= now - near and t.start <= now + near
    }  # fmt: skip
