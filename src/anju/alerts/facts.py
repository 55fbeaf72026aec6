"""Registry facts and recent history as alert models see them, behind two small interfaces.

Models ask "is this person a resident of this house?", "who lives alone and is elderly?",
"where is this device?", "is this subject on a watchlist?" through :class:`Facts`, and for
"what happened here lately" through :class:`History`. :class:`SqlFacts` answers from a
per-community snapshot loaded in a few queries and kept for ``ttl`` seconds, so the
per-event path never queries the database; :class:`MemoryFacts` and :class:`MemoryHistory`
are the fakes unit tests (and the simulator's evaluation) use.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any, Protocol

from sqlalchemy import ColumnElement, and_, func, select
from sqlalchemy.orm import Session, sessionmaker

from anju.alerts.model import Seen
from anju.alerts.watchlist import MatchType, WatchEntry
from anju.devices.models import Device
from anju.events.models import StoredEvent
from anju.org.models import OrgUnit
from anju.registry.models import Building, BuildingUnit, House, Person, PersonTag, Residency

log = logging.getLogger(__name__)

ELDERLY_ALONE_TAG = "elderly_alone"


@dataclass(frozen=True)
class Place:
    """Where a device is: its name, kind, building/unit/door, house (for home sensors)."""

    device_id: int
    name: str
    kind: str
    building: str | None = None
    unit: str | None = None
    door: str | None = None
    house_id: int | None = None

    def words(self) -> str:
        """The place in words for an alert's ``place``: building, unit and door, then the
        device's name — leaving out what the name or a later part already says (a device
        named "16号楼2单元门禁" needs no "16号楼 2单元" before it)."""
        given = [p for p in (self.building, self.unit, self.door) if p]
        parts = [
            p for i, p in enumerate(given)
            if p not in self.name and not any(p in later for later in given[i + 1 :])
        ]  # fmt: skip
        return " ".join([*parts, self.name])


@dataclass(frozen=True)
class WatchHit:
    """A watchlist entry an event matched."""

    entry_id: int
    list_kind: str  # "key_person" | "controlled"
    category: str
    reason: str
    match_type: str
    police_only: bool


@dataclass(frozen=True)
class Watched:
    """A watchlist entry in the form matching needs (ID hashes already resolved to persons)."""

    entry_id: int
    list_kind: str
    category: str
    reason: str
    match_type: str
    value: str
    police_only: bool = True
    expires_at: dt.datetime | None = None

    def matches(self, event: Seen, at: dt.datetime) -> bool:
        if self.expires_at is not None and at >= self.expires_at:
            return False
        if self.match_type == MatchType.PERSON:
            return event.person_id is not None and str(event.person_id) == self.value
        if self.match_type == MatchType.FACE:
            # Face recognition names the watched entries a face matched (anju.faces).
            face = event.data.get("face")
            return isinstance(face, dict) and self.entry_id in (face.get("watch") or ())
        value = (event.subject_value or "").upper()
        if self.match_type == MatchType.PLATE_PREFIX:
            return event.subject_type == "plate" and value.startswith(self.value)
        return event.subject_type == self.match_type and value == self.value

    def hit(self) -> WatchHit:
        return WatchHit(
            self.entry_id,
            self.list_kind,
            self.category,
            self.reason,
            self.match_type,
            self.police_only,
        )


class Facts(Protocol):
    """Registry facts for models (read-only, may be up to a minute stale)."""

    def warm(self, community_ids: Collection[int]) -> None:
        """Make the facts of these communities ready (the engine calls it per batch)."""
        ...

    def place(self, device_id: int) -> Place | None: ...
    def is_registered(self, community_id: int, person_id: int) -> bool: ...
    def is_resident(self, house_id: int, person_id: int) -> bool: ...
    def household_size(self, house_id: int) -> int: ...
    def rented(self, house_id: int) -> bool: ...
    def elderly_alone(self, community_id: int) -> dict[int, int]:
        """House id → the elderly person living alone there."""
        ...

    def watch_hits(self, community_id: int, event: Seen) -> list[WatchHit]: ...
    def person_name(self, person_id: int) -> str | None: ...
    def devices_of(self, community_id: int, kind: str) -> list[int]:
        """Ids of the community's devices of a kind (e.g. patrol points)."""
        ...


class History(Protocol):
    """Recent stored events, oldest first."""

    def recent(
        self,
        community_id: int,
        since: dt.datetime,
        until: dt.datetime,
        kinds: Collection[str] = (),
        *,
        house_id: int | None = None,
        device_id: int | None = None,
        limit: int = 10_000,
    ) -> list[Seen]: ...


# --- fakes ------------------------------------------------------------------------------


@dataclass
class MemoryFacts:
    """Facts held in plain dicts: the unit tests' registry."""

    places: dict[int, Place] = field(default_factory=dict)
    residents: dict[int, set[int]] = field(default_factory=dict)  # house → persons
    members: dict[int, set[int]] = field(default_factory=dict)  # community → registered persons
    rented_houses: set[int] = field(default_factory=set)
    elderly: dict[int, dict[int, int]] = field(default_factory=dict)  # community → house → person
    watchlist: dict[int, list[Watched]] = field(default_factory=dict)  # community → entries
    names: dict[int, str] = field(default_factory=dict)

    def warm(self, community_ids: Collection[int]) -> None:
        return None

    def place(self, device_id: int) -> Place | None:
        return self.places.get(device_id)

    def is_registered(self, community_id: int, person_id: int) -> bool:
        return person_id in self.members.get(community_id, set())

    def is_resident(self, house_id: int, person_id: int) -> bool:
        return person_id in self.residents.get(house_id, set())

    def household_size(self, house_id: int) -> int:
        return len(self.residents.get(house_id, set()))

    def rented(self, house_id: int) -> bool:
        return house_id in self.rented_houses

    def elderly_alone(self, community_id: int) -> dict[int, int]:
        return self.elderly.get(community_id, {})

    def watch_hits(self, community_id: int, event: Seen) -> list[WatchHit]:
        return [w.hit() for w in self.watchlist.get(community_id, []) if w.matches(event, event.at)]

    def person_name(self, person_id: int) -> str | None:
        return self.names.get(person_id)

    def devices_of(self, community_id: int, kind: str) -> list[int]:
        return sorted(d for d, p in self.places.items() if p.kind == kind)


@dataclass
class MemoryHistory:
    """History over a list of events: the unit tests' event store."""

    events: list[Seen] = field(default_factory=list)

    def recent(
        self,
        community_id: int,
        since: dt.datetime,
        until: dt.datetime,
        kinds: Collection[str] = (),
        *,
        house_id: int | None = None,
        device_id: int | None = None,
        limit: int = 10_000,
    ) -> list[Seen]:
        out = [
            e
            for e in sorted(self.events, key=lambda e: (e.at, e.id))
            if e.community_id == community_id
            and since <= e.at < until
            and (not kinds or e.kind in kinds)
            and (house_id is None or e.house_id == house_id)
            and (device_id is None or e.device_id == device_id)
        ]
        return out[:limit]


# --- SQL --------------------------------------------------------------------------------


@dataclass
class _Snapshot:
    loaded: float
    facts: MemoryFacts


class SqlFacts:
    """Facts from the registry: one snapshot per community, reloaded after ``ttl`` seconds
    (a registry change reaches the models within about that time). Thread-safe.

    Lookups by house, device or person find their community through maps filled as
    snapshots load: a house or device of a community whose snapshot is not loaded yet is
    unknown (the engine loads a community's snapshot with its first event)."""

    def __init__(self, sessions: sessionmaker[Session], ttl: float = 60.0) -> None:
        self.sessions = sessions
        self.ttl = ttl
        self._snapshots: dict[int, _Snapshot] = {}
        self._device_community: dict[int, int] = {}
        self._person_community: dict[int, int] = {}
        self._house_community: dict[int, int] = {}
        self._loading: set[int] = set()
        self._lock = threading.Lock()

    def invalidate(self, community_id: int | None = None) -> None:
        with self._lock:
            if community_id is None:
                self._snapshots.clear()
            else:
                self._snapshots.pop(community_id, None)

    def of(self, community_id: int) -> MemoryFacts:
        """The community's snapshot. Loaded at once when missing; when stale, reloaded on
        a background thread while the stale one still answers, so no event waits for it."""
        snap = self._snapshots.get(community_id)
        if snap is None:
            with self._lock:
                snap = self._snapshots.get(community_id)
                if snap is None:
                    snap = self._load(community_id)
        elif time.monotonic() - snap.loaded > self.ttl and community_id not in self._loading:
            with self._lock:
                if community_id not in self._loading:
                    self._loading.add(community_id)
                    threading.Thread(
                        target=self._refresh, args=(community_id,), daemon=True,
                        name=f"anju-facts-{community_id}",
                    ).start()  # fmt: skip
        return snap.facts

    def warm(self, community_ids: Collection[int]) -> None:
        for community_id in community_ids:
            self.of(community_id)

    def _now(self, community_id: int) -> MemoryFacts:
        """The community's snapshot as it is: the per-event questions below skip the age
        check, which :meth:`warm` makes once per batch (and loads what is missing)."""
        snap = self._snapshots.get(community_id)
        return snap.facts if snap is not None else self.of(community_id)

    def _refresh(self, community_id: int) -> None:
        try:
            self._load(community_id)
        except Exception:  # the stale snapshot goes on answering; the next call retries
            log.exception("reloading registry facts of community %d failed", community_id)
        finally:
            self._loading.discard(community_id)

    def _load(self, community_id: int) -> _Snapshot:
        with self.sessions() as session:
            facts = load(session, community_id)
        snap = _Snapshot(time.monotonic(), facts)
        self._snapshots[community_id] = snap
        for device_id in facts.places:
            self._device_community[device_id] = community_id
        for house_id in facts.residents:
            self._house_community[house_id] = community_id
        for house_id in facts.rented_houses:
            self._house_community[house_id] = community_id
        for person_id in facts.names:
            self._person_community[person_id] = community_id
        return snap

    def _for_house(self, house_id: int) -> MemoryFacts | None:
        community = self._house_community.get(house_id)
        return self._now(community) if community is not None else None

    def place(self, device_id: int) -> Place | None:
        community = self._device_community.get(device_id)
        return self._now(community).place(device_id) if community is not None else None

    def is_registered(self, community_id: int, person_id: int) -> bool:
        return self._now(community_id).is_registered(community_id, person_id)

    def is_resident(self, house_id: int, person_id: int) -> bool:
        facts = self._for_house(house_id)
        return facts is not None and facts.is_resident(house_id, person_id)

    def household_size(self, house_id: int) -> int:
        facts = self._for_house(house_id)
        return facts.household_size(house_id) if facts is not None else 0

    def rented(self, house_id: int) -> bool:
        facts = self._for_house(house_id)
        return facts is not None and facts.rented(house_id)

    def elderly_alone(self, community_id: int) -> dict[int, int]:
        return self._now(community_id).elderly_alone(community_id)

    def watch_hits(self, community_id: int, event: Seen) -> list[WatchHit]:
        return self._now(community_id).watch_hits(community_id, event)

    def person_name(self, person_id: int) -> str | None:
        community = self._person_community.get(person_id)
        return self._now(community).person_name(person_id) if community is not None else None

    def devices_of(self, community_id: int, kind: str) -> list[int]:
        return self._now(community_id).devices_of(community_id, kind)


def load(session: Session, community_id: int) -> MemoryFacts:
    """One community's facts in a handful of queries."""
    facts = MemoryFacts()
    places = session.execute(
        select(
            Device.id,
            Device.name,
            Device.kind,
            Device.door,
            Device.house_id,
            Device.unit_id,
            Building.name.label("building"),
            BuildingUnit.name.label("unit"),
        )
        .outerjoin(Building, Building.id == Device.building_id)
        .outerjoin(BuildingUnit, BuildingUnit.id == Device.unit_id)
        .where(Device.community_id == community_id)
    )
    # A home sensor registered without its house but with its unit and room as the door
    # (as the simulator's community does) belongs to that house.
    rooms = {
        (unit_id, room): house_id
        for house_id, unit_id, room in session.execute(
            select(House.id, House.unit_id, House.room).where(House.community_id == community_id)
        )
    }
    for r in places:
        house = r.house_id or (rooms.get((r.unit_id, r.door)) if r.unit_id and r.door else None)
        facts.places[r.id] = Place(r.id, r.name, r.kind.value, r.building, r.unit, r.door, house)
    residencies = session.execute(
        select(Residency.house_id, Residency.person_id).where(
            Residency.community_id == community_id, Residency.end_date.is_(None)
        )
    )
    members: set[int] = set()
    for house_id, person_id in residencies:
        facts.residents.setdefault(house_id, set()).add(person_id)
        members.add(person_id)
    people = session.execute(
        select(Person.id, Person.name).where(Person.community_id == community_id)
    )
    for person_id, name in people:
        facts.names[person_id] = name
        members.add(person_id)
    facts.members[community_id] = members
    facts.rented_houses = set(
        session.scalars(
            select(House.id).where(House.community_id == community_id, House.use == "rented")
        )
    )
    alone = set(
        session.scalars(
            select(PersonTag.person_id).where(
                PersonTag.tag_code == ELDERLY_ALONE_TAG,
                PersonTag.person_id.in_(members or {-1}),
            )
        )
    )
    facts.elderly[community_id] = {
        house: next(iter(people_))
        for house, people_ in facts.residents.items()
        if len(people_) == 1 and next(iter(people_)) in alone
    }
    facts.watchlist[community_id] = _watchlist(session, community_id)
    return facts


def _watchlist(session: Session, community_id: int) -> list[Watched]:
    """Entries of the community's organisation units (itself and its ancestors), with ID
    hashes resolved to registry persons (one who is not registered cannot be recognised by
    it anyway)."""
    path = session.scalar(select(OrgUnit.path).where(OrgUnit.id == community_id)) or ""
    ancestors = [int(p) for p in path.strip("/").split("/") if p]
    if not ancestors:
        return []
    rows = list(session.scalars(select(WatchEntry).where(WatchEntry.org_unit_id.in_(ancestors))))
    hashes = {r.match_value for r in rows if r.match_type is MatchType.ID_HASH}
    persons = (
        dict(
            session.execute(
                select(Person.id_number_hash, Person.id).where(Person.id_number_hash.in_(hashes))
            ).all()
        )
        if hashes
        else {}
    )
    out: list[Watched] = []
    for r in rows:
        kind, value = r.match_type.value, r.match_value
        if r.match_type is MatchType.ID_HASH:
            if r.match_value not in persons:
                continue
            kind, value = MatchType.PERSON.value, str(persons[r.match_value])
        out.append(
            Watched(
                r.id,
                r.list_kind.value,
                r.category,
                r.reason,
                kind,
                value.upper(),
                r.police_only,
                r.expires_at,
            )
        )
    return out


class SqlHistory:
    """History from the event store, each call in its own short session."""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self.sessions = sessions

    def recent(
        self,
        community_id: int,
        since: dt.datetime,
        until: dt.datetime,
        kinds: Collection[str] = (),
        *,
        house_id: int | None = None,
        device_id: int | None = None,
        limit: int = 10_000,
    ) -> list[Seen]:
        where = [
            StoredEvent.community_id == community_id,
            StoredEvent.at >= since,
            StoredEvent.at < until,
        ]
        if kinds:
            where.append(StoredEvent.kind.in_(list(kinds)))
        if house_id is not None:
            where.append(StoredEvent.house_id == house_id)
        if device_id is not None:
            where.append(StoredEvent.device_id == device_id)
        with self.sessions() as session:
            return stored_seen(session, and_(*where), limit)


def stored_seen(
    session: Session,
    where: ColumnElement[bool],
    limit: int,
    *,
    newest: bool = False,
    by_id: bool = False,
) -> list[Seen]:
    """Stored events as :class:`Seen`, oldest first: the oldest ``limit`` of them, or the
    newest with ``newest``; with ``by_id`` the first ``limit`` in the order they were
    stored (a rules worker following the store)."""
    if by_id:
        order: tuple[Any, ...] = (StoredEvent.id,)
    elif newest:
        order = (StoredEvent.at.desc(), StoredEvent.id.desc())
    else:
        order = (StoredEvent.at, StoredEvent.id)
    e = StoredEvent
    # Columns, not entities: a rules worker reads thousands of events a round, and loading
    # each as an ORM object (identity map, instrumented attributes) cost more than the models.
    # The columns are in the order of Seen's fields.
    columns = (
        e.id, e.community_id, e.device_id, Device.code, Device.kind, e.kind, e.at,
        e.subject_type, e.subject_value, e.direction, e.value, e.data, e.person_id,
        e.vehicle_id, func.coalesce(e.house_id, Device.house_id), e.image, e.history,
    )  # fmt: skip
    rows: list[Any] = list(
        session.execute(
            select(*columns)
            .join(Device, Device.id == StoredEvent.device_id)
            .where(where)
            .order_by(*order)
            .limit(limit)
        )
    )
    if newest:
        rows.reverse()
    return [
        Seen(
            r[0], r[1], r[2], r[3], r[4].value, r[5], r[6], r[7], r[8], r[9], r[10], r[11] or {},
            r[12], r[13], r[14], r[15], r[16],
        )
        for r in rows
    ]  # fmt: skip
