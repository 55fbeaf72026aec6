"""The community's days (社区生活): device events of residents, visitors, vehicles and devices.

Plain Python, no network: :func:`load_world` reads what the generator needs from the
registry (homes and who lives there, their credentials, vehicles, the devices and where they
stand) into a :class:`World`; :class:`Life` turns a world and a seed into the events of any
day, as ``(device code, wire-format v1 dict)`` pairs with their time. Each day draws from its
own random stream (seed + date), so a day is the same whenever and however often it is
generated, and event ids are digests of the event's content: re-sending a day is idempotent.
:func:`provision_people` gives residents the cards and face-terminal numbers the events carry,
so the pipeline can enrich them to people. The senders are in :mod:`anju.sim.senders`.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import math
import random
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from anju.devices.models import Device, DeviceKind, DeviceStatus
from anju.events.models import AccessCredential, CredentialKind
from anju.org.models import Level, OrgUnit
from anju.registry.models import (
    ForceRole,
    House,
    Person,
    Residency,
    SecurityStaff,
    Vehicle,
)
from anju.sim.faces import MODEL as FACE_MODEL
from anju.sim.faces import SimFaces, person_key, track_id

log = logging.getLogger(__name__)

DAY_SECONDS = 86_400
# Mains-powered gates, readers and cameras send a heartbeat every few minutes; battery
# NB-IoT sensors and meters once a day; the rest (perimeter, infrared, patrol points) twice
# an hour. Matches what anju.devices.health expects of each kind.
CHATTY = frozenset(
    {
        DeviceKind.FACE_GATE,
        DeviceKind.CARD_READER,
        DeviceKind.UNIT_DOOR,
        DeviceKind.BARRIER,
        DeviceKind.FACE_CAMERA,
        DeviceKind.VEHICLE_CAMERA,
        DeviceKind.VIDEO_CAMERA,  # e.g. a people-counting camera on a square
    }
)
DAILY = frozenset(
    {
        DeviceKind.SMOKE_DETECTOR,
        DeviceKind.DOOR_MAGNET,
        DeviceKind.WATER_METER,
        DeviceKind.SMART_LOCK,
    }
)
CHATTY_HEARTBEAT = dt.timedelta(minutes=5)
OTHER_HEARTBEAT = dt.timedelta(minutes=30)
HOUSE_KINDS = frozenset(
    {
        DeviceKind.SMOKE_DETECTOR,
        DeviceKind.DOOR_MAGNET,
        DeviceKind.INFRARED,
        DeviceKind.WATER_METER,
        DeviceKind.SMART_LOCK,
    }
)
UNKNOWN_VEHICLE_SHARE = 0.10
GATE_CAPTURE_SHARE = 0.7  # of residents walking through a gate, those its camera captures
PATROL_ROUTE = 12  # patrol points one guard walks per round: 10 + 12 × 4 minutes at most
FRAIL_SHARE = 0.25  # of the elderly living alone: those who sometimes stay in all day
METER_EPOCH = dt.date(2024, 1, 1)  # water meters count from here
_PLATE_LETTERS = "ABCDEFGHJKLMNPQRSTUVWXYZ"
_FAULTS = ("communication error", "tamper", "low battery", "lens occluded", "reboot")


# --- the world -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Resident:
    """A person living in the community, with what devices know them by."""

    person_id: int
    age: int
    card: str | None = None
    employee_no: str | None = None
    lock_code: str | None = None


@dataclass(frozen=True)
class Home:
    """A lived-in house: its people, its unit door and the devices inside it."""

    house_id: int
    unit_door: str | None
    people: tuple[Resident, ...]
    devices: dict[DeviceKind, str] = field(default_factory=dict)

    @property
    def elderly_alone(self) -> bool:
        """独居老人: one person of 60 or more, or a house the builder fitted for one."""
        if DeviceKind.DOOR_MAGNET in self.devices or DeviceKind.INFRARED in self.devices:
            return True
        return len(self.people) == 1 and self.people[0].age >= 60


@dataclass(frozen=True)
class Gate:
    """A gate of the community: devices for people and vehicles, entering and leaving."""

    name: str
    entry: str | None  # face gate (or card reader) for people coming in
    exit: str | None
    camera: str | None = None  # face capture camera
    barrier_in: str | None = None
    barrier_out: str | None = None
    plate_in: str | None = None  # vehicle capture cameras
    plate_out: str | None = None

    @property
    def vehicles(self) -> bool:
        """Whether cars pass this gate."""
        return self.barrier_in is not None or self.barrier_out is not None


@dataclass(frozen=True)
class World:
    """What the simulator needs of a community, read once from the registry."""

    community: str  # the community code (MQTT topics name it)
    timezone: str
    homes: tuple[Home, ...]
    gates: tuple[Gate, ...]
    devices: dict[str, DeviceKind]  # every device the simulator speaks for
    cars: dict[int, tuple[str, ...]]  # person id -> plates of their vehicles
    plate_prefix: str = "粤B"
    perimeter: tuple[str, ...] = ()
    patrol_points: tuple[str, ...] = ()
    lobby_smoke: tuple[str, ...] = ()
    guard_cards: tuple[str, ...] = ()
    former: tuple[int, ...] = ()  # people who lived here and moved away (former tenants)

    @property
    def tz(self) -> ZoneInfo:
        """The community's time zone (events carry its offset)."""
        return ZoneInfo(self.timezone)

    def residents(self) -> Iterator[Resident]:
        """Everyone living in the community."""
        for home in self.homes:
            yield from home.people


@dataclass(frozen=True)
class SimEvent:
    """One event to send: when (for pacing), which device, and the wire-format body."""

    at: dt.datetime
    device: str
    body: dict[str, Any]
    who: str | None = None  # whose face a capture holds (the truth, never sent)

    @property
    def kind(self) -> str:
        """The event's kind."""
        return str(self.body["kind"])


@dataclass(frozen=True)
class Day:
    """The events of one day, in time order, and who stayed quiet (for tests and models)."""

    date: dt.date
    events: list[SimEvent]
    quiet: frozenset[int]  # person ids of elderly living alone who showed no sign of life


# --- reading the world, provisioning credentials ---------------------------------------------


def community_unit(session: Session, code: str) -> OrgUnit:
    """The community with this code; ``LookupError`` when there is none."""
    unit = session.scalar(
        select(OrgUnit).where(OrgUnit.code == code, OrgUnit.level == Level.COMMUNITY)
    )
    if unit is None:
        raise LookupError(f"no community with code {code}")
    return unit


def card_number(person_id: int) -> str:
    """The card the simulator hands a person: 8 hex digits, as IC cards print them."""
    return f"{0x5A000000 + person_id:08X}"


def employee_number(person_id: int) -> str:
    """The person's number on the face terminals (Hikvision employeeNo)."""
    return f"8{person_id:07d}"


def lock_code(person_id: int) -> str:
    """The fingerprint slot a tenant's smart lock knows them by."""
    return f"FP{person_id}"


def provision_people(session: Session, community_code: str) -> int:
    """Give each resident a card and a face-terminal number, and tenants of a flat with a
    smart lock a lock credential, where they have none yet; returns how many were added.

    Existing credentials are kept and used by :func:`load_world`; a value already taken by
    someone else is skipped (that person then shows up by face only).
    """
    community = community_unit(session, community_code)
    residents = _current_residents(session, community.id)
    locks = session.execute(
        select(Device.unit_id, Device.door, Device.house_id).where(
            Device.community_id == community.id, Device.kind == DeviceKind.SMART_LOCK
        )
    ).all()
    locked = {(unit_id, door) for unit_id, door, _ in locks}
    houses = {
        h.id: (h.unit_id, h.room)
        for h in session.scalars(select(House).where(House.community_id == community.id))
    }
    locked_houses = {house_id for house_id, place in houses.items() if place in locked}
    locked_houses |= {house_id for _, _, house_id in locks if house_id is not None}
    have: set[tuple[int, CredentialKind]] = set()
    taken: set[tuple[CredentialKind, str]] = set()
    for row in session.scalars(
        select(AccessCredential).where(AccessCredential.community_id == community.id)
    ):
        have.add((row.person_id, row.kind))
        taken.add((row.kind, row.value))
    added = 0
    for person_id, (house_id, _age) in sorted(residents.items()):
        wanted = [
            (CredentialKind.CARD, card_number(person_id)),
            (CredentialKind.EMPLOYEE_NO, employee_number(person_id)),
        ]
        if house_id in locked_houses:
            wanted.append((CredentialKind.LOCK_CODE, lock_code(person_id)))
        for kind, value in wanted:
            if (person_id, kind) in have or (kind, value) in taken:
                continue
            session.add(
                AccessCredential(
                    community_id=community.id, person_id=person_id, kind=kind, value=value
                )
            )
            taken.add((kind, value))
            added += 1
    session.flush()
    log.info("provisioned %d access credentials in %s", added, community_code)
    return added


def _current_residents(session: Session, community_id: int) -> dict[int, tuple[int, int | None]]:
    """Person id -> (their house, age) for everyone living in the community now."""
    today = dt.date.today()
    rows = session.execute(
        select(Residency.person_id, Residency.house_id, Person.birth_date)
        .join(Person, Person.id == Residency.person_id)
        .where(Residency.community_id == community_id, Residency.end_date.is_(None))
        .order_by(Residency.start_date, Residency.id)
    )
    out: dict[int, tuple[int, int | None]] = {}
    for person_id, house_id, birth in rows:
        age = (today - birth).days // 365 if birth else None
        out.setdefault(person_id, (house_id, age))
    return out


def load_world(session: Session, community_code: str, timezone: str) -> World:
    """The community as the simulator sees it: homes, people, gates, devices, vehicles."""
    community = community_unit(session, community_code)
    cid = community.id
    residents = _current_residents(session, cid)
    credentials: dict[tuple[int, CredentialKind], str] = {}
    for row in session.scalars(
        select(AccessCredential)
        .where(AccessCredential.community_id == cid)
        .order_by(AccessCredential.id)
    ):
        credentials.setdefault((row.person_id, row.kind), row.value)
    devices = list(
        session.scalars(
            select(Device)
            .where(Device.community_id == cid, Device.status == DeviceStatus.ACTIVE)
            .order_by(Device.code)
        )
    )
    houses = {
        (h.unit_id, h.room): h.id
        for h in session.scalars(select(House).where(House.community_id == cid))
    }
    unit_doors: dict[int, str] = {}
    house_devices: dict[int, dict[DeviceKind, str]] = defaultdict(dict)
    by_door: dict[str, list[Device]] = defaultdict(list)
    perimeter, patrol, lobby = [], [], []
    for d in devices:
        house_id = d.house_id
        if house_id is None and d.unit_id is not None and d.door:
            house_id = houses.get((d.unit_id, d.door))
        if d.kind in HOUSE_KINDS and house_id is not None:
            house_devices[house_id].setdefault(d.kind, d.code)
        elif d.kind is DeviceKind.UNIT_DOOR and d.unit_id is not None:
            unit_doors.setdefault(d.unit_id, d.code)
        elif d.kind is DeviceKind.SMOKE_DETECTOR:
            lobby.append(d.code)
        elif d.kind is DeviceKind.PERIMETER:
            perimeter.append(d.code)
        elif d.kind is DeviceKind.PATROL_POINT:
            patrol.append(d.code)
        elif d.building_id is None and d.door:
            by_door[d.door].append(d)
    unit_of_house: dict[int, int] = {
        house_id: unit_id
        for house_id, unit_id in session.execute(
            select(House.id, House.unit_id).where(House.community_id == cid)
        )
    }
    people: dict[int, list[Resident]] = defaultdict(list)
    for person_id, (house_id, age) in sorted(residents.items()):
        people[house_id].append(
            Resident(
                person_id=person_id,
                age=age if age is not None else 35,
                card=credentials.get((person_id, CredentialKind.CARD)),
                employee_no=credentials.get((person_id, CredentialKind.EMPLOYEE_NO)),
                lock_code=credentials.get((person_id, CredentialKind.LOCK_CODE)),
            )
        )
    homes = tuple(
        Home(
            house_id=house_id,
            unit_door=unit_doors.get(unit_of_house.get(house_id, -1)),
            people=tuple(members),
            devices=dict(house_devices.get(house_id, {})),
        )
        for house_id, members in sorted(people.items())
    )
    cars: dict[int, list[str]] = defaultdict(list)
    for plate, owner in session.execute(
        select(Vehicle.plate, Vehicle.owner_id)
        .where(Vehicle.community_id == cid, Vehicle.owner_id.is_not(None))
        .order_by(Vehicle.plate)
    ):
        if owner in residents:
            cars[owner].append(plate)
    prefixes = Counter(p[:2] for plates in cars.values() for p in plates)
    guards = session.scalars(
        select(SecurityStaff.person_id).where(
            SecurityStaff.community_id == cid,
            SecurityStaff.role == ForceRole.GUARD,
            SecurityStaff.person_id.is_not(None),
        )
    )
    guard_cards = tuple(
        sorted(
            c
            for g in guards
            if g is not None and (c := credentials.get((g, CredentialKind.CARD))) is not None
        )
    )
    moved = session.scalars(
        select(Residency.person_id).where(
            Residency.community_id == cid, Residency.end_date.is_not(None)
        )
    )
    former = tuple(sorted({p for p in moved if p not in residents}))
    return World(
        community=community_code,
        timezone=timezone,
        homes=homes,
        gates=tuple(_gate(name, found) for name, found in sorted(by_door.items())),
        devices={d.code: d.kind for d in devices},
        cars={owner: tuple(plates) for owner, plates in cars.items()},
        plate_prefix=prefixes.most_common(1)[0][0] if prefixes else "粤B",
        perimeter=tuple(perimeter),
        patrol_points=tuple(patrol),
        lobby_smoke=tuple(lobby),
        guard_cards=guard_cards,
        former=former,
    )


def _gate(name: str, devices: Sequence[Device]) -> Gate:
    """A gate from the devices standing at it: the first of each kind (by code) lets in,
    the second lets out; a lone device does both."""

    def pair(*kinds: DeviceKind) -> tuple[str | None, str | None]:
        codes = sorted(d.code for d in devices if d.kind in kinds)
        if not codes:
            return None, None
        return codes[0], codes[1] if len(codes) > 1 else codes[0]

    entry, exit_ = pair(DeviceKind.FACE_GATE, DeviceKind.CARD_READER)
    barrier_in, barrier_out = pair(DeviceKind.BARRIER)
    plate_in, plate_out = pair(DeviceKind.VEHICLE_CAMERA)
    camera, _ = pair(DeviceKind.FACE_CAMERA)
    return Gate(name, entry, exit_, camera, barrier_in, barrier_out, plate_in, plate_out)


# --- the days ------------------------------------------------------------------------------


def _stable(*parts: object) -> random.Random:
    """A random stream fixed by its parts (string seeds are hashed with SHA-512 by
    ``random``, so the stream is the same in every process)."""
    return random.Random("|".join(str(p) for p in parts))


class Life:
    """The events of a world's days, deterministic from ``seed``."""

    def __init__(self, world: World, seed: int = 1) -> None:
        self.world = world
        self.seed = seed
        self.tz = world.tz
        self._meters: dict[str, tuple[dt.date, float]] = {}  # code -> (day, reading that day)
        homes = [h for h in world.homes if h.elderly_alone]
        picker = _stable(seed, "frail")
        frail = picker.sample(homes, max(1, round(len(homes) * FRAIL_SHARE))) if homes else []
        self.frail = frozenset(h.people[0].person_id for h in frail)
        self._known_plates = {p for plates in world.cars.values() for p in plates}
        self.faces = SimFaces(world.community)  # residents' faces stay those enrolled

    def days(self, first: dt.date, last: dt.date) -> Iterator[Day]:
        """Each day from ``first`` to ``last`` (both included)."""
        day = first
        while day <= last:
            yield self.day(day)
            day += dt.timedelta(days=1)

    def between(self, start: dt.datetime, end: dt.datetime) -> Iterator[SimEvent]:
        """The events with ``start <= at < end``, in time order."""
        day = start.astimezone(self.tz).date()
        while True:
            midnight = dt.datetime.combine(day, dt.time(), self.tz)
            if midnight >= end:
                return
            for event in self.day(day).events:
                if start <= event.at < end:
                    yield event
            day += dt.timedelta(days=1)

    def quiet(self, person_id: int, day: dt.date) -> bool:
        """Whether a frail elderly person stays in, unseen, all ``day``: on about every
        other week, one day of it (a case for the alert models to find)."""
        if person_id not in self.frail:
            return False
        year, week, weekday = day.isocalendar()
        draw = _stable(self.seed, "quiet", person_id, year, week).randrange(14)
        return draw == weekday - 1

    def day(self, date: dt.date) -> Day:
        """Every event of ``date`` (local midnight to midnight) in time order."""
        b = _DayBuilder(self, date)
        b.run()
        events = sorted(b.events, key=lambda e: (e.at, e.device, e.body["id"]))
        return Day(date, events, frozenset(b.quiet))

    def meter_reading(
        self, code: str, day: dt.date, quiet_person: int | None, people: int = 1
    ) -> float:
        """A water meter's total (m³) at the start of ``day``: a seeded daily use per person
        (0.08-0.28 m³, 180 l on average) for the ``people`` of the house since
        :data:`METER_EPOCH`, none on days its elderly owner stayed quiet."""
        base = 20 + _stable(self.seed, "meter", code).random() * 300
        cached = self._meters.get(code)
        if cached is not None and cached[0] <= day:
            start, total = cached
        else:
            start, total = METER_EPOCH, base
        d = start
        while d < day:
            if quiet_person is None or not self.quiet(quiet_person, d):
                total += people * (0.08 + _stable(self.seed, "use", code, d).random() * 0.2)
            d += dt.timedelta(days=1)
        if day >= METER_EPOCH:
            self._meters[code] = (day, total)
        return round(total, 3)


class _DayBuilder:
    """Plans one day: every routine draws from the day's stream in a fixed order."""

    def __init__(self, life: Life, date: dt.date) -> None:
        self.life = life
        self.world = life.world
        self.date = date
        self.rng = _stable(life.seed, "day", date.isoformat())
        # captures draw from their own stream: adding them left the rest of the day as it was
        self.face_rng = _stable(life.seed, "faces", date.isoformat())
        self.midnight = dt.datetime.combine(date, dt.time(), life.tz)
        self.weekday = date.weekday() < 5
        self.events: list[SimEvent] = []
        self.quiet: set[int] = set()
        self._ids: Counter[str] = Counter()
        self._down: dict[str, tuple[float, float]] = {}  # device -> fault window (seconds)
        self.registered_car_passes = 0

    # --- emitting ---

    def emit(
        self,
        device: str | None,
        kind: str,
        second: float,
        *,
        subject: tuple[str, str] | None = None,
        direction: str | None = None,
        value: float | None = None,
        data: dict[str, Any] | None = None,
        who: str | None = None,
    ) -> None:
        """Add one event at ``second`` after midnight (dropped if outside the day)."""
        if device is None or not 0 <= second < DAY_SECONDS:
            return
        at = self.midnight + dt.timedelta(seconds=int(second))
        at = at.astimezone(self.life.tz)  # a DST change keeps the right offset
        body: dict[str, Any] = {"device": device, "kind": kind, "at": at.isoformat()}
        if subject is not None:
            body["subject"] = {"type": subject[0], "value": subject[1]}
        if direction is not None:
            body["direction"] = direction
        if value is not None:
            body["value"] = value
        if data:
            body["data"] = data
        body = {"id": self._event_id(body), **body}
        self.events.append(SimEvent(at, device, body, who))

    def face(
        self,
        device: str | None,
        kind: str,
        who: str,
        second: float,
        *,
        direction: str | None = None,
        data: dict[str, Any] | None = None,
    ) -> None:
        """A device sees a face: it sends a track id of its own and the face's feature vector
        (``data.feature``, ``data.model``); who it is stays here, for the node to recognise."""
        if device is None:
            return
        salt = f"{self.date.isoformat()}|{device}|{int(second)}"
        face = {"feature": self.life.faces.feature(who, salt), "model": FACE_MODEL}
        subject = ("face", track_id(self.life.seed, device, who, salt))
        self.emit(device, kind, second, subject=subject, direction=direction,
                  data={**(data or {}), **face}, who=who)  # fmt: skip

    def _event_id(self, body: dict[str, Any]) -> str:
        """A digest of the content: the same event always gets the same id."""
        text = repr(sorted((k, repr(v)) for k, v in body.items()))
        digest = hashlib.blake2b(text.encode(), digest_size=9).hexdigest()
        self._ids[digest] += 1
        n = self._ids[digest]
        return f"sim-{digest}" if n == 1 else f"sim-{digest}-{n}"

    # --- the day's parts ---

    def run(self) -> None:
        """Devices first (faults shape heartbeats), then people, then everything else."""
        self.faults()
        for home in self.world.homes:
            self.household(home)
        self.visitors()
        self.unknown_vehicles()
        self.meters()
        self.noise()
        self.incidents()
        self.patrols()
        self.heartbeats()

    def faults(self) -> None:
        """A few devices report a fault; mains devices then go silent for a while."""
        for code, kind in sorted(self.world.devices.items()):
            if self.rng.random() < 0.003:
                start = self.rng.uniform(0, DAY_SECONDS)
                fault = self.rng.choice(_FAULTS)
                self.emit(code, "device.fault", start, data={"fault": fault})
                if kind in CHATTY:
                    self._down[code] = (start, start + self.rng.uniform(20, 90) * 60)

    def household(self, home: Home) -> None:
        """The people of one home: commutes, school runs, errands, elderly routines."""
        if home.elderly_alone:
            self.elderly_alone(home)
            return
        adults = [p for p in home.people if 18 <= p.age < 60]
        elders = [p for p in home.people if p.age >= 60]
        escorts = iter(elders + adults if elders else adults)
        escorting: dict[int, tuple[float, float]] = {}
        for child in home.people:
            if child.age < 3 or child.age >= 18:
                continue
            if not self.weekday:
                if self.rng.random() < 0.5:
                    leave = self.rng.gauss(10 * 3600, 3600)
                    self.outing(home, child, leave, leave + self.rng.uniform(1, 4) * 3600)
                continue
            if child.age >= 13:  # teenagers go on their own
                leave = self.rng.gauss(7.2 * 3600, 900)
                self.outing(home, child, leave, self.rng.gauss(17.6 * 3600, 1800))
                continue
            escort = next(escorts, None)
            start = 8.4 if child.age < 6 else 7.5  # kindergarten starts later
            leave = self.rng.gauss(start * 3600, 420)
            back = self.rng.gauss((16.9 if child.age >= 6 else 16.4) * 3600, 600)
            self.outing(home, child, leave, back)
            if escort is not None and escort.person_id not in escorting:
                escorting[escort.person_id] = (leave, back)
                walk_back = leave + self.rng.uniform(20, 35) * 60
                fetch = back - self.rng.uniform(25, 40) * 60
                if escort.age >= 60 or not self.commutes(escort):
                    # 接送: takes the child and comes back, then fetches them in the afternoon
                    self.outing(home, escort, leave + 3, walk_back, alongside=True)
                    self.outing(home, escort, fetch, back + 4, alongside=True)
                else:
                    evening = self.rng.gauss(18.6 * 3600, 2400)
                    self.outing(home, escort, leave + 3, evening, alongside=True)
        for person in adults:
            if person.person_id in escorting:
                continue
            if self.commutes(person):
                pace = _stable(self.life.seed, "pace", person.person_id)
                leave = pace.gauss(8 * 3600, 1800) + self.rng.gauss(0, 600)
                back = pace.gauss(18.5 * 3600, 2400) + self.rng.gauss(0, 1200)
                self.outing(home, person, leave, back)
                if self.rng.random() < 0.2:  # out again after dinner
                    late = self.rng.uniform(19.8, 21.3) * 3600
                    self.outing(home, person, max(late, back + 1800), late + 3600)
            elif self.rng.random() < 0.75:
                leave = self.rng.uniform(9.5, 16) * 3600
                self.outing(home, person, leave, leave + self.rng.uniform(1, 5) * 3600)
        for person in elders:
            if person.person_id in escorting:
                continue
            if self.rng.random() < 0.85:  # morning walk or the market
                leave = self.rng.uniform(6.5, 9.3) * 3600
                self.outing(home, person, leave, leave + self.rng.uniform(40, 120) * 60)
            if self.rng.random() < 0.5:
                leave = self.rng.uniform(15, 17) * 3600
                self.outing(home, person, leave, leave + self.rng.uniform(30, 90) * 60)

    def commutes(self, person: Resident) -> bool:
        """Whether an adult goes to work today (most on weekdays, a few at weekends)."""
        works = _stable(self.life.seed, "job", person.person_id).random() < 0.8
        if not works:
            return False
        return self.rng.random() < (0.95 if self.weekday else 0.12)

    def elderly_alone(self, home: Home) -> None:
        """独居老人: motion at home through the day, the door magnet, a daily walk — or, on a
        quiet day, nothing at all."""
        person = home.people[0] if home.people else None
        if person is None:
            return
        if self.life.quiet(person.person_id, self.date):
            self.quiet.add(person.person_id)
            return
        wake = self.rng.uniform(5.8, 7.0) * 3600
        bed = self.rng.uniform(21.0, 22.5) * 3600
        out = self.rng.uniform(7.0, 9.0) * 3600
        back = out + self.rng.uniform(40, 90) * 60
        outings = [(out, back)]
        if self.rng.random() < 0.4:
            pm = self.rng.uniform(15, 16.5) * 3600
            outings.append((pm, pm + self.rng.uniform(30, 70) * 60))
        infrared = home.devices.get(DeviceKind.INFRARED)
        t = wake
        while t < bed:
            if not any(a <= t <= b for a, b in outings):
                self.emit(infrared, "sensor.infrared", t, value=1, data={"state": "motion"})
            t += self.rng.uniform(35, 110) * 60
        for leave, come in outings:
            self.outing(home, person, leave, come)

    def outing(
        self,
        home: Home,
        person: Resident,
        leave: float,
        back: float,
        *,
        alongside: bool = False,
    ) -> None:
        """Out of the unit, through a gate (on foot or by car), and home again."""
        if back <= leave:
            back = leave + 1800
        rng = self.rng
        gates = [g for g in self.world.gates if g.entry or g.exit or g.vehicles]
        if not gates:
            return
        habit = _stable(self.life.seed, "gate", person.person_id)
        plates = self.world.cars.get(person.person_id, ())
        drives = bool(plates) and person.age >= 18 and not alongside and rng.random() < 0.7
        if drives:
            gates = [g for g in gates if g.vehicles] or gates
        gate = gates[habit.randrange(len(gates))]
        magnet = home.devices.get(DeviceKind.DOOR_MAGNET)
        # leaving: the flat's door, the unit door (exit button), the gate
        self.door_magnet(magnet, leave - 60)
        self.emit(home.unit_door, "access.remote", leave, data={"method": "exit_button"})
        walk = rng.uniform(2, 5) * 60
        if drives and gate.vehicles:
            self.car(gate, plates[0], "out", leave + walk + rng.uniform(2, 4) * 60)
            self.car(gate, plates[0], "in", back)
            self.registered_car_passes += 2
        else:
            self.passage(gate.exit, person, "out", leave + walk, camera=gate.camera)
            self.passage(gate.entry, person, "in", back, camera=gate.camera)
        inside = back + walk
        self.passage(home.unit_door, person, "in", inside)
        lock = home.devices.get(DeviceKind.SMART_LOCK)
        if lock is not None:
            data: dict[str, Any] = {"method": "fingerprint"}
            if person.lock_code:
                data["credential"] = person.lock_code
            self.emit(lock, "lock.opened", inside + rng.uniform(40, 120), data=data)
        self.door_magnet(magnet, inside + rng.uniform(40, 120))

    def passage(
        self,
        device: str | None,
        person: Resident,
        direction: str,
        second: float,
        *,
        camera: str | None = None,
    ) -> None:
        """A resident passing a face gate or unit door: by face mostly, by card sometimes;
        the gate's capture camera, if any, catches most faces as they pass (in the same
        second: a capture is never far from the door use it belongs to)."""
        if device is None:
            return
        seen = camera is not None and (person.card or person.employee_no)
        if seen and self.face_rng.random() < GATE_CAPTURE_SHARE:
            key = person_key(person.person_id)
            self.face(camera, "capture.face", key, second, direction=direction)
        by_card = person.card is not None and (
            person.employee_no is None or self.rng.random() < (0.5 if person.age >= 60 else 0.15)
        )
        if by_card and person.card is not None:
            self.emit(
                device,
                "access.card",
                second,
                subject=("card", person.card),
                direction=direction,
                data={"reader": 1},
            )
        elif person.employee_no is not None:
            self.emit(
                device,
                "access.face",
                second,
                subject=("person", person.employee_no),
                direction=direction,
                data={"verify_mode": "face", "mask": self.rng.random() < 0.1},
            )

    def car(self, gate: Gate, plate: str, direction: str, second: float) -> None:
        """A vehicle through a barrier, read by the gate's plate camera."""
        barrier = gate.barrier_in if direction == "in" else gate.barrier_out
        camera = gate.plate_in if direction == "in" else gate.plate_out
        confidence = round(self.rng.uniform(0.86, 0.99), 2)
        data = {"plate_colour": "green" if len(plate) > 8 else "blue", "vehicle_type": "car"}
        self.emit(
            camera,
            "capture.vehicle",
            second - 2,
            subject=("plate", plate),
            direction=direction,
            data={**data, "confidence": confidence},
        )
        self.emit(
            barrier,
            "vehicle.passed",
            second,
            subject=("plate", plate),
            direction=direction,
            data={**data, "confidence": confidence},
        )

    def door_magnet(self, device: str | None, second: float) -> None:
        """The flat's door opens and closes (now and then the contact bounces)."""
        if device is None:
            return
        self.emit(device, "sensor.door_magnet", second, value=1, data={"state": "open"})
        closed = second + self.rng.uniform(4, 15)
        self.emit(device, "sensor.door_magnet", closed, value=0, data={"state": "closed"})
        if self.rng.random() < 0.05:
            self.emit(device, "sensor.door_magnet", closed + 1, value=1, data={"state": "open"})
            self.emit(device, "sensor.door_magnet", closed + 2, value=0, data={"state": "closed"})

    def visitors(self) -> None:
        """Couriers, food delivery and guests at the gates: QR passes, unknown faces, denials
        (the camera captures them at the gate as they use it)."""
        gates = [g for g in self.world.gates if g.entry]
        if not gates:
            return
        households = len(self.world.homes)
        couriers = max(3, households // 20)  # the same riders come back every day
        deliveries = _poisson(self.rng, households * 0.35)
        guests = _poisson(self.rng, households * (0.08 if self.weekday else 0.2))
        for n in range(deliveries + guests):
            delivery = n < deliveries
            gate = gates[self.rng.randrange(len(gates))]
            if delivery:
                peak = 12 if self.rng.random() < 0.5 else 18.5
                second = self.rng.gauss(peak * 3600, 4000)
                face = f"courier:{self.rng.randrange(couriers):03d}"
                stay = self.rng.uniform(4, 15) * 60
            else:
                second = self.rng.uniform(9.5, 20.5) * 3600
                face = f"guest:{self.date:%Y%m%d}:{n:03d}"
                stay = self.rng.uniform(0.5, 4) * 3600
            self.face(gate.camera, "capture.face", face, second, direction="in")
            draw = self.rng.random()
            if draw < 0.6:  # a visitor pass (访客二维码)
                qr = f"V{self.date:%y%m%d}{n:04d}"
                self.emit(gate.entry, "access.qr", second, subject=("qr", qr), direction="in")
            elif draw < 0.9:  # unknown face, then the guard lets them in
                self.face(gate.entry, "access.denied", face, second, direction="in",
                          data={"reason": "face not matched"})  # fmt: skip
                self.emit(
                    gate.entry,
                    "access.remote",
                    second + self.rng.uniform(10, 40),
                    direction="in",
                    data={"method": "intercom"},
                )
            else:  # an old pass: refused, turned away
                qr = f"V{self.date - dt.timedelta(days=3):%y%m%d}{n:04d}"
                self.emit(
                    gate.entry,
                    "access.denied",
                    second,
                    subject=("qr", qr),
                    direction="in",
                    data={"reason": "expired"},
                )
                continue
            self.face(gate.camera, "capture.face", face, second + stay, direction="out")
            self.emit(
                gate.exit,
                "access.remote",
                second + stay,
                direction="out",
                data={"method": "exit_button"},
            )

    def unknown_vehicles(self) -> None:
        """Visitors' cars, taxis and vans: about one vehicle passage in ten."""
        gates = [g for g in self.world.gates if g.vehicles]
        if not gates:
            return
        wanted = self.registered_car_passes * UNKNOWN_VEHICLE_SHARE / (1 - UNKNOWN_VEHICLE_SHARE)
        for _ in range(max(1, round(wanted / 2))):
            plate = self.stranger_plate()
            gate = gates[self.rng.randrange(len(gates))]
            second = self.rng.uniform(7, 21.5) * 3600
            self.car(gate, plate, "in", second)
            out = gates[self.rng.randrange(len(gates))]
            self.car(out, plate, "out", second + self.rng.uniform(5, 180) * 60)

    def stranger_plate(self) -> str:
        """A plate no resident's vehicle has."""
        while True:
            letter = self.rng.choice(_PLATE_LETTERS)
            plate = f"{self.world.plate_prefix}{letter}{self.rng.randrange(10_000):04d}"
            if plate not in self.life._known_plates:
                return plate

    def meters(self) -> None:
        """NB-IoT water meters report their total once a day, after midnight."""
        for home in self.world.homes:
            meter = home.devices.get(DeviceKind.WATER_METER)
            if meter is None:
                continue
            owner = home.people[0].person_id if home.elderly_alone and home.people else None
            reading = self.life.meter_reading(meter, self.date, owner, max(1, len(home.people)))
            second = self.rng.uniform(1.5, 3.5) * 3600
            self.emit(meter, "meter.water", second, value=reading, data={"unit": "m3"})

    def noise(self) -> None:
        """What real sensors do wrong: infrared triggered at night, nuisance perimeter alarms."""
        for home in self.world.homes:
            infrared = home.devices.get(DeviceKind.INFRARED)
            quiet = any(p.person_id in self.quiet for p in home.people)
            if infrared is not None and not quiet and self.rng.random() < 0.05:
                second = self.rng.uniform(0.5, 4.5) * 3600
                self.emit(infrared, "sensor.infrared", second, value=1, data={"state": "motion"})
        for zone, code in enumerate(self.world.perimeter, 1):
            if self.rng.random() < 0.04:
                second = self.rng.uniform(0, DAY_SECONDS)
                self.emit(code, "perimeter.intrusion", second, data={"zone": zone})

    def incidents(self) -> None:
        """Now and then: smoke from a kitchen, an e-bike at a unit door, a blocked fire lane."""
        rng = self.rng
        detectors = list(self.world.lobby_smoke) + [
            code for h in self.world.homes if (code := h.devices.get(DeviceKind.SMOKE_DETECTOR))
        ]
        if detectors and rng.random() < 0.15:
            code = detectors[rng.randrange(len(detectors))]
            second = rng.choice((7.2, 12, 18.3)) * 3600 + rng.uniform(0, 2400)
            self.emit(code, "fire.smoke", second, value=1, data={"state": "alarm"})
            cleared = second + rng.uniform(2, 6) * 60
            self.emit(code, "fire.smoke", cleared, value=0, data={"state": "clear"})
        doors = sorted({h.unit_door for h in self.world.homes if h.unit_door})
        for _ in range(_poisson(rng, len(doors) * 0.15)):
            second = rng.uniform(7, 22.5) * 3600
            place = rng.choice(("entrance", "elevator"))
            self.emit(doors[rng.randrange(len(doors))], "ebike.detected", second,
                      data={"place": place})  # fmt: skip
        cameras = sorted({g.plate_in for g in self.world.gates if g.plate_in})
        if cameras and rng.random() < 0.3:
            known = sorted(self.life._known_plates)
            plate = known[rng.randrange(len(known))] if known and rng.random() < 0.5 else None
            second = rng.uniform(8, 22) * 3600
            self.emit(
                cameras[rng.randrange(len(cameras))],
                "fire.lane_blocked",
                second,
                subject=("plate", plate or self.stranger_plate()),
                data={"seconds": int(rng.uniform(300, 1800))},
            )

    def patrols(self) -> None:
        """Night rounds: every two hours the guards check in at every patrol point, one
        guard per :data:`PATROL_ROUTE` points so a round ends within the hour's grace
        (one guard walking 40 points would need about 100 minutes)."""
        points = list(self.world.patrol_points)
        routes = [points[i : i + PATROL_ROUTE] for i in range(0, len(points), PATROL_ROUTE)]
        for hour in (0, 2, 4, 22):
            for n, route in enumerate(routes):
                card = (
                    self.world.guard_cards[(hour + n) % len(self.world.guard_cards)]
                    if self.world.guard_cards
                    else None
                )
                second = hour * 3600 + self.rng.uniform(0, 600)
                for code in route:
                    second += self.rng.uniform(60, 240)
                    self.emit(
                        code,
                        "patrol.checkin",
                        second,
                        subject=("card", card) if card else None,
                        data={"point": code},
                    )

    def heartbeats(self) -> None:
        """Chatty devices every five minutes (not while faulty), the rest every half hour,
        battery sensors once a day with battery and signal."""
        for code, kind in sorted(self.world.devices.items()):
            phase = _stable(self.life.seed, "phase", code)
            if kind in DAILY:
                battery = round(35 + phase.random() * 65 - self.date.toordinal() % 30 * 0.1, 1)
                self.emit(
                    code,
                    "device.heartbeat",
                    phase.uniform(0, DAY_SECONDS),
                    data={"battery": battery, "rsrp": -round(phase.uniform(75, 115))},
                )
                continue
            step = (CHATTY_HEARTBEAT if kind in CHATTY else OTHER_HEARTBEAT).total_seconds()
            down = self._down.get(code)
            t = phase.uniform(0, step)
            while t < DAY_SECONDS:
                if down is None or not down[0] <= t <= down[1]:
                    self.emit(code, "device.heartbeat", t)
                t += step


def _poisson(rng: random.Random, mean: float) -> int:
    """A Poisson draw (Knuth's method for small means, a normal approximation above)."""
    if mean <= 0:
        return 0
    if mean > 30:
        return max(0, round(rng.gauss(mean, math.sqrt(mean))))
    limit, k, p = math.exp(-mean), 0, 1.0
    while True:
        p *= rng.random()
        if p <= limit:
            return k
        k += 1


def by_device(events: Iterable[SimEvent]) -> dict[str, list[dict[str, Any]]]:
    """Events grouped per device, keeping their order (the senders batch per device)."""
    out: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for event in events:
        out[event.device].append(event.body)
    return dict(out)
