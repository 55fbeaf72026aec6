"""Build a believable residential community (小区) through the registry's own services.

:func:`build_community` first plans everything in memory from seeded random streams and a
seeded Faker (houses and their uses, households, ages, names, identifiers), then writes the
plan through the registry services, so validation, sealing and address codes are exactly
what the API would do. The same seed and config on the same database build the same
community. Identifiers the database already holds (say, a second build with the same seed)
are redrawn from a separate seeded stream, so everything else stays the same.
"""

from __future__ import annotations

import datetime as dt
import enum
import logging
import math
import random
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

from faker import Faker
from sqlalchemy import select

from anju.core import validation
from anju.core.context import Ctx
from anju.core.errors import ValidationFailed
from anju.devices.models import DeviceKind
from anju.org import service as org_service
from anju.org.models import Grid, Level, OrgUnit
from anju.registry import schemas
from anju.registry import service as registry
from anju.registry.models import (
    Building,
    BuildingUnit,
    ForceRole,
    House,
    HouseUse,
    IdType,
    IncidentCategory,
    Organisation,
    OrganisationKind,
    ParkingKind,
    ParkingSpace,
    Person,
    PersonCategory,
    Relation,
    Sex,
    Vehicle,
)
from anju.sim import identity
from anju.sim.identity import Region

log = logging.getLogger(__name__)

Progress = Callable[[str, int, int], None]
"""Called as ``progress(stage, done, total)`` while a build runs."""

# Stages reported to the progress callback, with the label a console shows for each.
STAGES: dict[str, str] = {
    "plan": "规划",
    "buildings": "楼栋",
    "people": "人口",
    "houses": "房屋",
    "residencies": "居住关系",
    "organisations": "单位",
    "vehicles": "车位与车辆",
    "devices": "设备",
    "staff": "安防力量",
    "incidents": "警情",
    "verify": "核实",
}

# Average residents per house the household mix below yields; used only to size the
# community when the number of buildings is not given.
RESIDENTS_PER_HOUSE = 2.6
BUILDINGS_PER_GRID = 4
RENTED_SHARE = 0.20
VACANT_SHARE = 0.06
ELDERLY_ALONE_SHARE = 0.045  # of self-occupied houses
UNVERIFIED_SHARE = 0.04
NO_PLATE_SHARE = 0.10

FAMILY_KINDS: tuple[tuple[str, int], ...] = (
    ("couple_kids", 34),
    ("three_generations", 14),
    ("young_couple", 12),
    ("single", 8),
    ("elderly_couple", 14),
    ("older_family", 12),
    ("couple_kids_nanny", 6),
)
TENANT_KINDS: tuple[tuple[str, int], ...] = (
    ("sharers", 38),
    ("tenant_couple", 25),
    ("tenant_family", 20),
    ("tenant_single", 17),
)
KEY_PERSON_TAGS = ("key_released", "key_drug", "key_petition", "mental_disorder", "dispute_party")
MINORITIES = ("壮族", "回族", "满族", "苗族", "土家族", "瑶族", "彝族", "侗族")
CAR_BRANDS = (
    "大众", "丰田", "本田", "日产", "别克", "吉利", "长安", "哈弗", "宝马", "奔驰", "奥迪",
)  # fmt: skip
EV_BRANDS = ("比亚迪", "特斯拉", "蔚来", "理想", "小鹏", "广汽埃安", "极氪", "问界")
CAR_COLOURS = ("白色", "黑色", "银色", "灰色", "红色", "蓝色")
VENDORS = ("Hikvision", "Dahua", "Uniview")
# Models by device kind and vendor (the simulator's catalogue, not a claim about products).
MODELS: dict[DeviceKind, tuple[str, str, str]] = {
    DeviceKind.FACE_GATE: ("DS-K5671-3XF/ZU", "DHI-ASGB531X-T", "OET-213H-BL"),
    DeviceKind.UNIT_DOOR: ("DS-K1T671MF", "DHI-ASI7213X-V1", "OET-211H-BL"),
    DeviceKind.FACE_CAMERA: ("iDS-2CD7A46G0-IZHS", "DH-IPC-HFW8449K-Z", "IPC2A25SE-ADZK"),
    DeviceKind.BARRIER: ("DS-TMG4B0-1A", "DHI-IPMECS-2201A", "BG-3000-L"),
    DeviceKind.VEHICLE_CAMERA: ("iDS-TCM403-BI", "DHI-ITC237-PW6M", "HC121-TS8CR-Z"),
    DeviceKind.PERIMETER: ("DS-PEA1-21", "DHI-ARF100", "ZR-PR100"),
    DeviceKind.SMOKE_DETECTOR: ("DS-PDSMK-S-WE", "DHI-HY-SA21A-W2", "ZR-SD100"),
    DeviceKind.DOOR_MAGNET: ("DS-PDMC-EG2-WE", "DHI-ARD323-W2", "ZR-DM100"),
    DeviceKind.INFRARED: ("DS-PDP15P-EG2-WE", "DHI-ARD1233-W2", "ZR-IR100"),
    DeviceKind.WATER_METER: ("DS-WM20-NB", "DHI-WM-DN20-NB", "ZR-WM20"),
    DeviceKind.SMART_LOCK: ("DS-L5-S", "DHI-ASL-S6", "ZR-SL600"),
    DeviceKind.PATROL_POINT: ("DS-K1T-PT", "DHI-ASP-100", "ZR-PT100"),
}
SHOP_BRANDS = (
    "好邻居", "惠民", "福满堂", "康宁", "鲜丰", "佳佳", "美好", "同仁", "顺心", "万家",
    "金凤", "阳光", "晨光", "兴旺", "如意", "百姓", "益康", "乐家", "新时代", "明珠",
)  # fmt: skip
PROPERTY_BRANDS = ("安泰", "恒信", "万和", "嘉宏", "鹏基", "南粤", "华庭", "佳兆")
SHOPS: tuple[tuple[str, OrganisationKind], ...] = (
    ("{brand}便利店", OrganisationKind.SHOP),
    ("{surname}记粥粉面", OrganisationKind.SHOP),
    ("{brand}水果店", OrganisationKind.SHOP),
    ("{brand}大药房", OrganisationKind.SHOP),
    ("{surname}师傅理发店", OrganisationKind.SHOP),
    ("{brand}洗衣店", OrganisationKind.SHOP),
    ("{community}快递驿站", OrganisationKind.SHOP),
    ("{brand}口腔诊所", OrganisationKind.CLINIC),
    ("{surname}记五金店", OrganisationKind.SHOP),
    ("{brand}烘焙坊", OrganisationKind.SHOP),
    ("{brand}社区诊所", OrganisationKind.CLINIC),
    ("{brand}文具店", OrganisationKind.SHOP),
)


@dataclass(frozen=True)
class CommunityConfig:
    """What to build. The same config (seed included) always plans the same community."""

    seed: int = 1
    residents: int = 2000
    buildings: int | None = None  # derived from ``residents`` when None
    units_per_building: int = 2
    floors: int = 11
    rooms_per_floor: int = 2
    code: str = "AJHY"
    name: str = "安居花园"
    district_code: str = "NSFJ"
    district_name: str = "南山分局"
    station_code: str = "YHPCS"
    station_name: str = "粤海派出所"
    office_code: str = "KYJWS"
    office_name: str = "科苑社区警务室"
    city_name: str = "深圳市"
    street_office: str = "粤海街道办事处"  # employs the grid workers
    address_prefix: str = "广东省深圳市南山区"  # the household-address text of the district
    region_code: str = "440305"  # its administrative code (for credit codes)
    plate_prefix: str = "粤B"  # the local plate prefix
    # The simulated today (default: the context's clock in ``timezone``). Ages, leases and
    # incidents count from it; it should not lie in the future of the real clock, whose
    # today the ID validator uses to refuse birth dates yet to come.
    today: dt.date | None = None
    timezone: str = "Asia/Shanghai"
    # Share of the other lived-in houses with a smart (NB-IoT) water meter, as where the
    # water company has fitted them: the elderly living alone always get one with their
    # sensors. None by default; ``anju evaluate`` meters every house, so the group-rental
    # model has houses to compare water use with.
    water_meter_share: float = 0.0

    def __post_init__(self) -> None:
        """Refuse a config that cannot build a sensible community, naming every problem."""
        problems: list[str] = []
        if not 10 <= self.residents <= 100_000:
            problems.append("residents must be between 10 and 100000")
        if self.buildings is not None and not 1 <= self.buildings <= 999:
            problems.append("buildings must be between 1 and 999")
        if not 1 <= self.units_per_building <= 9:
            problems.append("units per building must be between 1 and 9")
        if not 2 <= self.floors <= 60:
            problems.append("floors must be between 2 and 60")
        if not 1 <= self.rooms_per_floor <= 9:
            problems.append("rooms per floor must be between 1 and 9")
        if not 0 <= self.water_meter_share <= 1:
            problems.append("water meter share must be between 0 and 1")
        if len(self.code) > 16:
            problems.append(
                "community code must have at most 16 characters (device codes embed it)"
            )
        for label, code in (
            ("community", self.code),
            ("district", self.district_code),
            ("station", self.station_code),
            ("office", self.office_code),
        ):
            try:
                validation.code(code)
            except ValueError as exc:
                problems.append(f"{label} code: {exc}")
        try:
            ZoneInfo(self.timezone)
        except (ValueError, KeyError):
            problems.append(f"unknown time zone {self.timezone!r}")
        if len(self.plate_prefix) != 2 or self.plate_prefix[0] not in validation.PROVINCES:
            problems.append("plate prefix must be a province abbreviation and a letter, e.g. 粤B")
        if problems:
            raise ValueError("; ".join(problems))

    @property
    def houses_per_building(self) -> int:
        """Houses in one building: units × floors × rooms per floor."""
        return self.units_per_building * self.floors * self.rooms_per_floor

    @property
    def building_count(self) -> int:
        """The number of buildings: as given, or enough houses for the residents."""
        if self.buildings is not None:
            return self.buildings
        houses = self.residents / RESIDENTS_PER_HOUSE
        return max(1, round(houses / self.houses_per_building))


@dataclass
class SimReport:
    """What a build created: counts by kind, and the community it went into."""

    community_id: int
    community_code: str
    community_name: str
    seed: int
    today: dt.date
    grids: int = 0
    buildings: int = 0
    units: int = 0
    houses: int = 0
    houses_by_use: dict[str, int] = field(default_factory=dict)
    households: int = 0
    people: int = 0  # residents, owners living elsewhere and people who left
    residents: int = 0  # people living in the community now
    people_left: int = 0
    absentee_owners: int = 0
    owners: int = 0
    tenants: int = 0
    floating: int = 0
    overseas: int = 0
    children: int = 0
    elderly: int = 0
    elderly_alone: int = 0
    volunteers: int = 0
    key_persons: int = 0
    leases_ending_soon: int = 0
    organisations: int = 0
    parking_spaces: int = 0
    vehicles: int = 0
    new_energy_vehicles: int = 0
    devices: int = 0
    devices_by_kind: dict[str, int] = field(default_factory=dict)
    security_staff: int = 0
    incidents: int = 0
    verified: int = 0

    def summary(self) -> str:
        """One line for a console: the counts people look at first."""
        return (
            f"{self.residents} residents in {self.households} households, "
            f"{self.houses} houses in {self.buildings} buildings, {self.vehicles} vehicles, "
            f"{self.devices} devices, {self.organisations} organisations"
        )

    def as_dict(self) -> dict[str, Any]:
        """The report as JSON-ready values."""
        data = asdict(self)
        data["today"] = self.today.isoformat()
        return data


# --- the plan ------------------------------------------------------------------------------


class _Role(enum.StrEnum):
    """A planned person's place in the community."""

    OWNER = "owner"  # 业主(户主)
    SPOUSE = "spouse"  # 配偶
    CHILD = "child"  # 子女
    PARENT = "parent"  # 父母
    NANNY = "nanny"  # 保姆
    TENANT = "tenant"  # 租客
    LANDLORD = "landlord"  # 房东, living elsewhere
    FORMER_TENANT = "former_tenant"  # 已搬离的租客


_RELATION = {
    _Role.OWNER: Relation.OWNER,
    _Role.SPOUSE: Relation.FAMILY,
    _Role.CHILD: Relation.FAMILY,
    _Role.PARENT: Relation.FAMILY,
    _Role.NANNY: Relation.OTHER,
    _Role.TENANT: Relation.TENANT,
    _Role.FORMER_TENANT: Relation.TENANT,
}


@dataclass(eq=False)
class _Member:
    """One planned person; the identity fields are filled in once households are final."""

    role: _Role
    age: int
    male: bool
    since: dt.date
    floating: bool = False
    reason: str | None = None
    nationality: str | None = None
    tags: set[str] = field(default_factory=set)
    left_on: dt.date | None = None
    name: str = ""
    surname: str = ""
    birth: dt.date = dt.date.min
    id_type: IdType = IdType.RESIDENT_ID
    id_number: str = ""
    region: Region | None = None
    phone: str | None = None
    household_address: str | None = None
    ethnicity: str | None = None
    person_id: int = 0

    @property
    def category(self) -> PersonCategory:
        """The registry category: overseas, floating or registered."""
        if self.nationality:
            return PersonCategory.OVERSEAS
        return PersonCategory.FLOATING if self.floating else PersonCategory.REGISTERED


@dataclass(eq=False)
class _Slot:
    """A room address (户室) and what it is used for."""

    building: int
    unit: int
    floor: int
    room: str
    rooms: int
    area: float
    use: HouseUse = HouseUse.SELF_OCCUPIED
    plate_installed: bool = True
    household: _Household | None = None
    owner: _Member | None = None
    house_id: int = 0

    @property
    def address(self) -> str:
        """The address below the community, as the registry spells it."""
        return f"{self.building}号楼{self.unit}单元{self.room}室"


@dataclass(eq=False)
class _Household:
    """The people living in one house."""

    slot: _Slot
    kind: str
    members: list[_Member]
    lease_end: dt.date | None = None

    @property
    def rented(self) -> bool:
        """Whether the household rents its house."""
        return self.slot.use is HouseUse.RENTED


@dataclass(eq=False)
class _Car:
    """A planned vehicle and the household it belongs to."""

    owner: _Member
    household: _Household
    plate: str
    new_energy: bool
    brand: str
    colour: str


@dataclass
class _Plan:
    """Everything a build will write, decided before the first write."""

    slots: list[_Slot]
    households: list[_Household]
    landlords: list[_Member]
    former: list[tuple[_Slot, _Member]]
    cars: list[_Car]

    def people(self) -> Iterable[_Member]:
        """Every planned person: residents, owners living elsewhere, people who left."""
        for household in self.households:
            yield from household.members
        yield from self.landlords
        for _slot, member in self.former:
            yield member


def _weighted(rng: random.Random, pairs: Sequence[tuple[str, int]]) -> str:
    """One key of ``pairs``, drawn by weight."""
    return rng.choices([k for k, _ in pairs], weights=[w for _, w in pairs])[0]


class _Planner:
    """Plans houses, households and people in memory, from seeded streams only."""

    def __init__(self, config: CommunityConfig, today: dt.date, community_name: str) -> None:
        self.config = config
        self.today = today
        self.community_name = community_name
        self.rng = random.Random(f"{config.seed}/plan")
        self.fake = Faker("zh_CN")
        self.fake.seed_instance(config.seed)
        self.foreign: dict[str, Faker] = {}
        self.completed = dt.date(today.year - 15, 6, 30)  # when the community was built
        self.numbers: set[str] = set()
        self.phones: set[str] = set()

    def plan(self) -> _Plan:
        """The whole plan, in an order that never depends on the database."""
        slots = self._layout()
        self._assign_uses(slots)
        households = self._households(slots)
        self._reconcile(slots, households)
        landlords = self._owners(slots, households)
        former = self._former_tenants(slots)
        self._tag(households)
        for household in households:
            self._identify_household(household)
        for landlord in landlords:
            self._identify(landlord)
        for _slot, member in former:
            self._identify(member)
        cars = self._cars(households)
        return _Plan(slots, households, landlords, former, cars)

    # --- houses ---

    def _layout(self) -> list[_Slot]:
        """Every room address: building × unit × floor × room."""
        c, rng = self.config, self.rng
        slots: list[_Slot] = []
        for b in range(1, c.building_count + 1):
            # Each building repeats one floor plan: rooms and area by position on the floor.
            plan = [
                rng.choices((1, 2, 3, 4), weights=(10, 30, 45, 15))[0]
                for _ in range(c.rooms_per_floor)
            ]
            areas = [round(rooms * 27 + rng.uniform(8, 26), 2) for rooms in plan]
            for u in range(1, c.units_per_building + 1):
                for f in range(1, c.floors + 1):
                    for r in range(1, c.rooms_per_floor + 1):
                        slots.append(_Slot(b, u, f, f"{f}{r:02d}", plan[r - 1], areas[r - 1]))
        return slots

    def _assign_uses(self, slots: list[_Slot]) -> None:
        """Shops on ground floors, then rented, vacant and self-occupied houses."""
        rng, n = self.rng, len(slots)
        ground = [s for s in slots if s.floor == 1]
        for slot in rng.sample(ground, min(len(ground) // 2, max(2, round(n / 80)))):
            slot.use = HouseUse.BUSINESS
            slot.rooms, slot.area = 1, round(rng.uniform(35, 90), 2)
        rest = [s for s in slots if s.use is not HouseUse.BUSINESS]
        order = rng.sample(rest, len(rest))
        n_rented, n_vacant = round(n * RENTED_SHARE), round(n * VACANT_SHARE)
        for slot in order[:n_rented]:
            slot.use = HouseUse.RENTED
        for slot in order[n_rented : n_rented + n_vacant]:
            slot.use = HouseUse.VACANT
        for slot in rng.sample(slots, round(n * NO_PLATE_SHARE)):
            slot.plate_installed = False

    # --- households ---

    def _households(self, slots: list[_Slot]) -> list[_Household]:
        """A household for every self-occupied or rented house."""
        rng = self.rng
        own = [s for s in slots if s.use is HouseUse.SELF_OCCUPIED]
        rented = [s for s in slots if s.use is HouseUse.RENTED]
        alone = set(rng.sample(own, min(len(own), max(2, round(len(own) * ELDERLY_ALONE_SHARE)))))
        overseas = set(
            rng.sample(rented, min(len(rented), max(1, round(self.config.residents / 600))))
        )
        leases = list(rented)
        rng.shuffle(leases)
        n_soon = max(1, round(len(rented) * 0.15)) if rented else 0
        n_overdue = round(len(rented) * 0.04)
        soon, overdue = set(leases[:n_soon]), set(leases[n_soon : n_soon + n_overdue])
        households: list[_Household] = []
        first_overseas = True
        for slot in slots:
            if slot.use is HouseUse.SELF_OCCUPIED:
                kind = "elderly_alone" if slot in alone else _weighted(rng, FAMILY_KINDS)
                household = self._family(slot, kind)
            elif slot.use is HouseUse.RENTED:
                kind = "overseas" if slot in overseas else _weighted(rng, TENANT_KINDS)
                lease = "soon" if slot in soon else "overdue" if slot in overdue else "normal"
                household = self._tenants(slot, kind, lease, couple=first_overseas)
                first_overseas = first_overseas and kind != "overseas"
            else:
                continue
            slot.household = household
            households.append(household)
        return households

    def _owner_since(self) -> dt.date:
        """A move-in day between the community's completion and two months ago."""
        span = (self.today - self.completed).days - 60
        return self.completed + dt.timedelta(days=self.rng.randint(0, max(span, 0)))

    def _after(self, start: dt.date) -> dt.date:
        """A day between ``start`` and today."""
        return start + dt.timedelta(days=self.rng.randint(0, max((self.today - start).days, 0)))

    def _adult(
        self, role: _Role, lo: int, hi: int, since: dt.date, male: bool | None = None
    ) -> _Member:
        """A person aged between ``lo`` and ``hi``."""
        rng = self.rng
        return _Member(
            role, rng.randint(lo, max(lo, hi)), rng.random() < 0.5 if male is None else male, since
        )

    def _child(self, household: _Household, max_age: int, since: dt.date) -> _Member:
        """A child of the household's head, living here since birth or move-in."""
        age = self.rng.randint(0, max(0, max_age))
        child = _Member(_Role.CHILD, age, self.rng.random() < 0.52, since)
        born = self.today - dt.timedelta(days=365 * age)
        child.since = max(since, born)
        head = household.members[0]
        child.floating, child.reason = head.floating, ("06" if head.floating else None)
        return child

    def _parent(self, household: _Household, since: dt.date) -> _Member:
        """An elderly parent who moved in to help (often from elsewhere)."""
        rng = self.rng
        older = max(m.age for m in household.members[:2])
        parent = self._adult(_Role.PARENT, older + 24, min(older + 32, 92), self._after(since))
        if rng.random() < 0.65:
            parent.floating, parent.reason = True, rng.choice(("06", "06", "08"))
        return parent

    def _family(self, slot: _Slot, kind: str) -> _Household:
        """An owner's household of the given kind."""
        rng = self.rng
        since = self._owner_since()
        if kind == "elderly_alone":
            owner = self._adult(_Role.OWNER, 70, 92, since, male=rng.random() < 0.35)
            owner.tags.add("elderly_alone")
            return _Household(slot, kind, [owner])
        ranges = {
            "single": (23, 45),
            "young_couple": (24, 34),
            "elderly_couple": (60, 85),
            "older_family": (50, 65),
            "three_generations": (30, 46),
        }
        lo, hi = ranges.get(kind, (30, 50))
        owner = self._adult(_Role.OWNER, lo, hi, since, male=rng.random() < 0.6)
        if rng.random() < 0.25 and kind != "elderly_couple":
            owner.floating, owner.reason = True, rng.choice(("01", "01", "03", "09"))
        household = _Household(slot, kind, [owner])
        if kind == "single":
            return household
        spouse_age = max(20, owner.age + rng.randint(-3, 3))
        spouse = _Member(
            _Role.SPOUSE, spouse_age, not owner.male, since, owner.floating, owner.reason
        )
        household.members.append(spouse)
        younger = min(owner.age, spouse.age)
        if kind in ("couple_kids", "three_generations", "couple_kids_nanny"):
            for _ in range(2 if rng.random() < 0.4 else 1):
                household.members.append(self._child(household, min(17, younger - 23), since))
        if kind == "older_family":
            child = self._child(household, min(32, younger - 22), since)
            child.age = max(child.age, 20)
            household.members.append(child)
        if kind == "three_generations":
            for _ in range(2 if rng.random() < 0.5 else 1):
                household.members.append(self._parent(household, since))
        if kind == "couple_kids_nanny":
            nanny = self._adult(_Role.NANNY, 40, 58, self._after(since), male=False)
            nanny.floating, nanny.reason = True, "01"
            household.members.append(nanny)
        return household

    def _lease(self, when: str) -> tuple[dt.date, dt.date]:
        """Start and end of a lease: ending soon, overdue, or some months ahead."""
        rng, today = self.rng, self.today
        if when == "soon":
            end = today + dt.timedelta(days=rng.randint(0, 30))
        elif when == "overdue":
            end = today - dt.timedelta(days=rng.randint(1, 45))
        else:
            end = today + dt.timedelta(days=rng.randint(31, 365))
        start = end - dt.timedelta(days=365 * rng.choice((1, 1, 1, 2)))
        return min(start, today), end

    def _tenant(self, lo: int, hi: int, since: dt.date, male: bool | None = None) -> _Member:
        """A tenant, mostly floating population."""
        rng = self.rng
        tenant = self._adult(_Role.TENANT, lo, hi, since, male)
        if rng.random() < 0.85:
            tenant.floating = True
            tenant.reason = (
                "04"
                if tenant.age <= 24 and rng.random() < 0.4
                else rng.choice(("01", "01", "01", "03", "09"))
            )
        return tenant

    def _tenants(self, slot: _Slot, kind: str, lease: str, couple: bool) -> _Household:
        """The tenants of a rented house, sharing one lease."""
        rng = self.rng
        start, end = self._lease(lease)
        household = _Household(slot, kind, [], lease_end=end)
        members = household.members
        if kind == "overseas":
            nationality = rng.choice(list(identity.PASSPORTS))
            reason = rng.choice(("01", "01", "04", "09"))
            male = rng.random() < 0.6
            for _ in range(2 if couple or rng.random() < 0.4 else 1):
                person = self._adult(_Role.TENANT, 24, 55, start, male=male)
                person.nationality, person.reason = nationality, reason
                members.append(person)
                male = not male  # a couple
        elif kind == "sharers":
            male = rng.random() < 0.55
            for _ in range(rng.randint(2, 4)):
                members.append(self._tenant(20, 35, self._after(start), male))
        elif kind == "tenant_single":
            members.append(self._tenant(19, 40, start))
        else:
            head = self._tenant(
                24 if kind == "tenant_couple" else 28, 36 if kind == "tenant_couple" else 42, start
            )
            partner = self._tenant(max(20, head.age - 3), head.age + 3, start, not head.male)
            partner.floating, partner.reason = head.floating, head.reason
            members += [head, partner]
            if kind == "tenant_family":
                for _ in range(2 if rng.random() < 0.3 else 1):
                    child = self._child(household, min(12, min(head.age, partner.age) - 23), start)
                    child.age = max(child.age, 1)  # born before the lease could have ended
                    child.role = _Role.TENANT  # a tenant family's child rents too
                    members.append(child)
        members[0].since = start
        for member in members:
            member.since = min(member.since, end)
        return household

    # --- hitting the residents target ---

    def _reconcile(self, slots: list[_Slot], households: list[_Household]) -> None:
        """Grow or shrink households until the number of residents matches the target."""
        rng, target = self.rng, self.config.residents
        total = sum(len(h.members) for h in households)
        misses = 0
        while total > target and households:
            household = rng.choice(households)
            if self._shrink(household):
                total -= 1
                continue
            misses += 1
            if misses >= 3 and household.kind not in ("elderly_alone", "overseas"):
                households.remove(household)
                household.slot.household = None
                household.slot.use = HouseUse.VACANT
                total -= len(household.members)
                misses = 0
        tries = 0
        while total < target:
            if households and tries < 20 * len(households):
                tries += 1
                if self._grow(rng.choice(households)):
                    total += 1
                continue
            vacant = [s for s in slots if s.use is HouseUse.VACANT]
            if not vacant:
                log.warning(
                    "only %d houses for %d residents: planned %d", len(slots), target, total
                )
                return
            slot = rng.choice(vacant)
            slot.use = HouseUse.SELF_OCCUPIED
            slot.household = self._family(slot, "young_couple")
            households.append(slot.household)
            households.sort(key=lambda h: slots.index(h.slot))  # keep address order
            total += len(slot.household.members)
            tries = 0

    def _shrink(self, household: _Household) -> bool:
        """Drop one optional member (a child, parent, nanny or flatmate), if any."""
        members = household.members
        for i in range(len(members) - 1, 0, -1):
            if members[i].role in (_Role.CHILD, _Role.PARENT, _Role.NANNY) or (
                household.rented and household.kind == "sharers"
            ):
                del members[i]
                return True
        return False

    def _grow(self, household: _Household) -> bool:
        """Add one plausible member (a child, parent or flatmate), if the household allows."""
        members, kind = household.members, household.kind
        since = members[0].since
        if kind in ("couple_kids", "three_generations", "couple_kids_nanny", "young_couple"):
            younger = min(members[0].age, members[1].age)
            kids = sum(m.role is _Role.CHILD for m in members)
            parents = sum(m.role is _Role.PARENT for m in members)
            if kids < 3 and younger >= 24:
                members.insert(2 + kids, self._child(household, min(17, younger - 23), since))
                return True
            if parents < 2 and younger <= 60:
                members.append(self._parent(household, since))
                return True
        elif kind == "older_family" and len(members) < 5:
            members.append(self._child(household, 5, since))  # a grandchild
            return True
        elif kind in ("sharers", "tenant_single") and len(members) < 5:
            household.kind = "sharers"
            moved_in = min(self._after(since), household.lease_end or self.today)
            members.append(self._tenant(20, 35, moved_in, members[0].male))
            return True
        return False

    # --- owners, leavers, tags ---

    def _owners(self, slots: list[_Slot], households: list[_Household]) -> list[_Member]:
        """Owners of every house: the household head, or a landlord (some live elsewhere)."""
        rng = self.rng
        pool = [
            h.members[0]
            for h in households
            if not h.rented and h.kind != "elderly_alone" and h.members[0].age >= 30
        ]
        landlords: list[_Member] = []
        for slot in slots:
            if slot.use is HouseUse.SELF_OCCUPIED and slot.household is not None:
                slot.owner = slot.household.members[0]
            elif pool and rng.random() < 0.65:
                slot.owner = rng.choice(pool)
            else:
                landlord = self._adult(_Role.LANDLORD, 35, 72, self._owner_since())
                landlords.append(landlord)
                slot.owner = landlord
        return landlords

    def _former_tenants(self, slots: list[_Slot]) -> list[tuple[_Slot, _Member]]:
        """People who rented here and left (人走撤销), kept as history."""
        rng, today = self.rng, self.today
        rented = [s for s in slots if s.use is HouseUse.RENTED] or [
            s for s in slots if s.use is not HouseUse.BUSINESS
        ]
        former: list[tuple[_Slot, _Member]] = []
        for _ in range(round(self.config.residents * 0.02)):
            since = today - dt.timedelta(days=rng.randint(400, 900))
            member = self._adult(_Role.FORMER_TENANT, 20, 40, since)
            member.floating, member.reason = True, rng.choice(("01", "01", "03", "04"))
            member.left_on = since + dt.timedelta(days=rng.randint(150, 360))
            former.append((rng.choice(rented), member))
        return former

    def _tag(self, households: list[_Household]) -> None:
        """Tags by age, plus volunteers, party members and a few police-only key persons."""
        rng = self.rng
        residents = [m for h in households for m in h.members]
        for m in residents:
            if m.age < 18:
                m.tags.add("child")
            if m.age >= 60:
                m.tags.add("elderly")
        target = self.config.residents
        helpers = [
            m
            for m in residents
            if 45 <= m.age <= 70 and m.role is not _Role.NANNY and not m.nationality
        ]
        for m in rng.sample(helpers, min(len(helpers), max(3, round(target * 0.012)))):
            m.tags.add("volunteer")
        adults = [m for m in residents if m.age >= 22 and not m.nationality]
        for m in rng.sample(adults, round(len(adults) * 0.06)):
            m.tags.add("party_member")
        for m in rng.sample(residents, round(len(residents) * 0.01)):
            m.tags.add("disability")
        candidates = [
            m
            for m in residents
            if 20 <= m.age <= 60
            and not m.nationality
            and not m.tags & {"volunteer", "party_member"}
        ]
        tags = list(KEY_PERSON_TAGS)
        rng.shuffle(tags)
        for i, m in enumerate(
            rng.sample(candidates, min(len(candidates), max(2, round(target * 0.003))))
        ):
            m.tags.add(tags[i % len(tags)])

    # --- identities ---

    def _identify_household(self, household: _Household) -> None:
        """Names and numbers for a household: children take the father's surname, a
        floating family shares its home region and household address."""
        members = household.members
        head = members[0]
        address = f"{self.config.address_prefix}{self.community_name}{household.slot.address}"
        self._identify(head, address=address)
        family = household.kind not in ("sharers", "tenant_single")
        for member in members[1:]:
            surname = None
            if household.kind == "overseas":
                surname = head.surname  # a married couple
            elif family and member.age < 18:
                surname = next((m for m in members[:2] if m.male), head).surname
            elif member.role is _Role.PARENT and member.male:
                surname = head.surname  # the owner's father
            kin = head if family and member.floating and member.role is not _Role.NANNY else None
            self._identify(member, surname=surname, kin=kin, address=address)

    def _identify(
        self,
        m: _Member,
        surname: str | None = None,
        kin: _Member | None = None,
        address: str | None = None,
    ) -> None:
        """Give a planned person a birth date, name, document, household address and phone.

        ``kin`` is the relative whose home region and household address a floating person
        shares; ``address`` is the house's own address, the household address of
        registered owners and their families.
        """
        rng, fake = self.rng, self.fake
        m.birth = identity.birth_date_for_age(rng, self.today, m.age)
        if m.nationality:
            foreign = self._foreign(m.nationality)
            m.surname = surname or foreign.last_name()
            given = foreign.first_name_male() if m.male else foreign.first_name_female()
            m.name = f"{m.surname} {given}".upper()[:60]
            m.id_type = IdType.PASSPORT
            m.id_number = self._unique(lambda: identity.passport(rng, m.nationality or ""))
        else:
            m.surname = surname or fake.last_name()
            m.name = m.surname + (fake.first_name_male() if m.male else fake.first_name_female())
            region = kin.region if kin else None
            if region is None or not identity.region_valid_for(region.code, m.birth.year):
                pool = identity.OTHER_REGIONS if m.floating else identity.LOCAL_REGIONS
                region = identity.pick_region(rng, pool, m.birth.year)
            m.region = region
            m.id_number = self._unique(lambda: identity.resident_id(rng, region, m.birth, m.male))
            m.ethnicity = "汉族" if rng.random() < 0.93 else rng.choice(MINORITIES)
            if m.floating and kin is not None and kin.floating and kin.region is region:
                m.household_address = kin.household_address
            elif m.floating:
                m.household_address = f"{region.address}{fake.street_name()}{rng.randint(1, 300)}号"
            elif m.role in (_Role.TENANT, _Role.NANNY, _Role.FORMER_TENANT) or address is None:
                m.household_address = self._local_address()
            else:
                m.household_address = address
        if self._has_phone(m):
            m.phone = self._unique_phone()

    def _foreign(self, nationality: str) -> Faker:
        """A Faker for foreigners' names of one nationality, seeded like the rest."""
        if nationality not in self.foreign:
            fake = Faker(identity.PASSPORTS[nationality][1])
            fake.seed_instance(self.config.seed)
            self.foreign[nationality] = fake
        return self.foreign[nationality]

    def _local_address(self) -> str:
        """A household address elsewhere in the district."""
        return f"{self.config.address_prefix}{self.fake.street_name()}{self.rng.randint(1, 300)}号"

    def _has_phone(self, m: _Member) -> bool:
        """Whether a person has a mobile: not young children, not every old person."""
        if m.age < 12:
            return False
        if m.age < 16:
            return self.rng.random() < 0.5
        if m.age >= 80:
            return self.rng.random() < 0.6
        return True

    def _unique(self, draw: Callable[[], str]) -> str:
        """A number drawn until it is new to this plan."""
        number = draw()
        while number in self.numbers:
            number = draw()
        self.numbers.add(number)
        return number

    def _unique_phone(self) -> str:
        """A mobile number new to this plan."""
        phone = self.fake.phone_number()
        while phone in self.phones:
            phone = self.fake.phone_number()
        self.phones.add(phone)
        return phone

    # --- vehicles ---

    def _cars(self, households: list[_Household]) -> list[_Car]:
        """Cars of the households: about half of owners' and a third of tenants'."""
        rng = self.rng
        cars: list[_Car] = []
        plates: set[str] = set()
        for household in households:
            drivers = [
                m for m in household.members if 20 <= m.age <= 75 and m.role is not _Role.NANNY
            ]
            if not drivers or rng.random() >= (0.3 if household.rented else 0.55):
                continue
            for owner in drivers[: 2 if rng.random() < 0.1 else 1]:
                new_energy = rng.random() < 0.15
                prefix = self._plate_prefix(owner)
                plate = ""
                while not plate or plate in plates:
                    plate = (
                        identity.new_energy_plate(rng, prefix)
                        if new_energy
                        else identity.ordinary_plate(rng, prefix)
                    )
                plates.add(plate)
                brand = rng.choice(EV_BRANDS if new_energy else CAR_BRANDS)
                cars.append(
                    _Car(owner, household, plate, new_energy, brand, rng.choice(CAR_COLOURS))
                )
        return cars

    def _plate_prefix(self, owner: _Member) -> str:
        """Local plates mostly; floating people often keep their home province's."""
        rng = self.rng
        if owner.nationality or not owner.floating or rng.random() < 0.55:
            return (
                self.config.plate_prefix
                if rng.random() < 0.85
                else rng.choice(identity.OTHER_PLATE_PREFIXES)
            )
        province = identity.PROVINCE_PLATES.get(owner.region.code[:2] if owner.region else "", "")
        return f"{province}{rng.choice('AABCDE')}" if province else self.config.plate_prefix


# --- writing -------------------------------------------------------------------------------


_GATES: tuple[tuple[str, str, bool], ...] = (
    ("N", "北门", True),
    ("S", "南门", True),
    ("E", "东门", False),  # pedestrians only
)
_INCIDENTS: tuple[tuple[IncidentCategory, int], ...] = (
    (IncidentCategory.THEFT, 20),
    (IncidentCategory.FRAUD, 15),
    (IncidentCategory.DISPUTE, 20),
    (IncidentCategory.DISTURBANCE, 20),
    (IncidentCategory.ASSISTANCE, 15),
    (IncidentCategory.FIRE, 5),
    (IncidentCategory.TRAFFIC, 5),
)
_SUMMARIES: dict[IncidentCategory, str] = {
    IncidentCategory.THEFT: "报警人{name}称停放在{building}楼下的电动自行车被盗，已调取周边监控。",
    IncidentCategory.FRAUD: "居民{name}接到冒充客服的电话，被骗转账{amount}元，"
    "已受案并开展劝阻宣传。",
    IncidentCategory.DISPUTE: "{place}住户{name}与楼下邻居因漏水问题发生纠纷，"
    "民警到场调解，双方达成谅解。",
    IncidentCategory.DISTURBANCE: "群众反映{place}夜间噪音扰民，民警到场劝导，住户{name}表示整改。",
    IncidentCategory.ASSISTANCE: "独居老人{name}的家属求助称联系不上老人，"
    "民警与物业上门查看，老人平安。",
    IncidentCategory.FIRE: "{place}厨房油锅起火，住户{name}自行扑灭，未造成人员伤亡。",
    IncidentCategory.TRAFFIC: "小区北门道闸处两车刮擦，车主{name}与对方协商处理。",
}


_SYSTEM_OF: dict[DeviceKind, str] = {
    DeviceKind.FACE_GATE: "access",
    DeviceKind.UNIT_DOOR: "access",
    DeviceKind.PATROL_POINT: "access",
    DeviceKind.BARRIER: "vehicle",
    DeviceKind.VEHICLE_CAMERA: "vehicle",
    DeviceKind.FACE_CAMERA: "video",
    DeviceKind.PERIMETER: "alarm",
    DeviceKind.SMOKE_DETECTOR: "alarm",
    DeviceKind.DOOR_MAGNET: "alarm",
    DeviceKind.INFRARED: "alarm",
    DeviceKind.WATER_METER: "iot",
    DeviceKind.SMART_LOCK: "iot",
}
# Devices inside a house: code suffix and name.
_HOUSE_DEVICES: dict[DeviceKind, tuple[str, str]] = {
    DeviceKind.SMOKE_DETECTOR: ("SMOKE", "烟感"),
    DeviceKind.DOOR_MAGNET: ("MAG", "门磁"),
    DeviceKind.INFRARED: ("IR", "红外"),
    DeviceKind.WATER_METER: ("WATER", "智能水表"),
    DeviceKind.SMART_LOCK: ("LOCK", "智能门锁"),
}


@dataclass(frozen=True)
class _Place:
    """Where a device stands: building and unit numbers, door and floor."""

    building: int | None = None
    unit: int | None = None
    door: str | None = None
    floor: int | None = None


def _device_spots(
    config: CommunityConfig, slots: Sequence[_Slot]
) -> list[tuple[str, str, DeviceKind, _Place]]:
    """Every device of the community: code suffix, name, kind and place.

    Gates (face gates, face cameras, barriers and plate cameras), the perimeter, unit doors,
    lobby smoke detectors, patrol points; inside houses, smoke detectors where people are at
    risk, door magnets, infrared and water meters for the elderly living alone, smart locks
    on rented flats, water meters in ``water_meter_share`` of the other lived-in houses
    (drawn from a stream of their own, so the rest of the plan does not move).
    """
    spots: list[tuple[str, str, DeviceKind, _Place]] = []
    metering = random.Random(f"{config.seed}/water-meters")
    gates = _GATES if config.building_count > 6 else _GATES[:2]
    for letter, gate, vehicles in gates:
        at = _Place(door=gate)
        for n, way in ((1, "进"), (2, "出")):
            spots.append(
                (f"GATE-{letter}-FACE-{n:02d}", f"{gate}人脸门禁({way})", DeviceKind.FACE_GATE, at)
            )
        spots.append((f"GATE-{letter}-FCAM-01", f"{gate}人脸抓拍机", DeviceKind.FACE_CAMERA, at))
        for n, way in ((1, "进"), (2, "出")) if vehicles else ():
            spots.append(
                (f"GATE-{letter}-BAR-{n:02d}", f"{gate}车辆道闸({way})", DeviceKind.BARRIER, at)
            )
            spots.append(
                (
                    f"GATE-{letter}-VCAM-{n:02d}",
                    f"{gate}车辆抓拍机({way})",
                    DeviceKind.VEHICLE_CAMERA,
                    at,
                )
            )
        spots.append((f"GATE-{letter}-PATROL", f"{gate}巡更点", DeviceKind.PATROL_POINT, at))
    for n in range(1, max(4, config.building_count // 2) + 1):
        spots.append((f"PERI-{n:02d}", f"周界防区{n}", DeviceKind.PERIMETER, _Place()))
    for n in (1, 2):
        spots.append(
            (
                f"GARAGE-PATROL-{n:02d}",
                f"地下车库巡更点{n}",
                DeviceKind.PATROL_POINT,
                _Place(floor=-1),
            )
        )
    for b in range(1, config.building_count + 1):
        spots.append(
            (f"B{b:02d}-PATROL", f"{b}号楼巡更点", DeviceKind.PATROL_POINT, _Place(b, floor=1))
        )
        for u in range(1, config.units_per_building + 1):
            door, lobby = _Place(b, u, f"{u}单元大门", 1), _Place(b, u, "一楼大堂", 1)
            spots.append((f"B{b:02d}-U{u}-DOOR", f"{b}号楼{u}单元门禁", DeviceKind.UNIT_DOOR, door))
            spots.append(
                (
                    f"B{b:02d}-U{u}-SMOKE",
                    f"{b}号楼{u}单元大堂烟感",
                    DeviceKind.SMOKE_DETECTOR,
                    lobby,
                )
            )
    for slot in slots:
        household = slot.household
        alone = household is not None and household.kind == "elderly_alone"
        rented = household is not None and household.rented
        kinds: list[DeviceKind] = []
        if slot.use is HouseUse.BUSINESS or alone or rented:
            kinds.append(DeviceKind.SMOKE_DETECTOR)
        if alone:
            kinds += [DeviceKind.DOOR_MAGNET, DeviceKind.INFRARED, DeviceKind.WATER_METER]
        elif household is not None and metering.random() < config.water_meter_share:
            kinds.append(DeviceKind.WATER_METER)
        if rented:
            kinds.append(DeviceKind.SMART_LOCK)
        at = _Place(slot.building, slot.unit, slot.room, slot.floor)
        for kind in kinds:
            suffix, label = _HOUSE_DEVICES[kind]
            code = f"B{slot.building:02d}-U{slot.unit}-{slot.room}-{suffix}"
            spots.append((code, f"{slot.address}{label}", kind, at))
    return spots


def build_community(
    ctx: Ctx, config: CommunityConfig | None = None, progress: Progress | None = None
) -> SimReport:
    """Build a community into the caller's unit of work and say what was made.

    The org tree (district → station → office → community) is reused by code where it
    exists; a community that already has buildings is refused.
    """
    config = config or CommunityConfig()
    today = config.today or ctx.clock().astimezone(ZoneInfo(config.timezone)).date()
    return _Builder(ctx, config, today, progress).run()


class _Builder:
    """Writes a plan through the registry services, one stage after another."""

    def __init__(
        self, ctx: Ctx, config: CommunityConfig, today: dt.date, progress: Progress | None
    ) -> None:
        self.ctx = ctx
        self.config = config
        self.today = today
        self.progress = progress
        self.fake = Faker("zh_CN")
        self.fake.seed_instance(f"{config.seed}/extras")
        self.persons: list[Person] = []
        self.houses: list[House] = []
        self.organisations: list[Organisation] = []
        self.credit_codes: set[str] = set()
        self.phones: set[str] = set()

    def stream(self, name: str) -> random.Random:
        """A random stream of its own per stage, so one stage's draws never shift another's."""
        return random.Random(f"{self.config.seed}/{name}")

    def tick(self, stage: str, done: int, total: int) -> None:
        """Report progress, about fifty times per stage at most."""
        if self.progress is not None and (done == total or done % max(1, total // 50) == 0):
            self.progress(stage, done, total)

    def run(self) -> SimReport:
        """Every stage in order; returns the report."""
        community = self._community()
        self.tick("plan", 0, 1)
        plan = _Planner(self.config, self.today, community.name).plan()
        self.phones = {m.phone for m in plan.people() if m.phone}
        self._redraw_taken(plan)
        self.tick("plan", 1, 1)
        self.report = SimReport(
            community.id, community.code, community.name, self.config.seed, self.today
        )
        grids = self._grids()
        buildings, units = self._buildings(grids)
        self._people(plan)
        self._houses(plan, units)
        self._residencies(plan)
        self._organisations(plan)
        self._parking_and_vehicles(plan)
        self._devices(plan, buildings, units)
        self._staff(plan, grids)
        self._incidents(plan)
        self._verify()
        self._count(plan)
        log.info(
            "built community %s (%s): %d residents in %d houses, %d devices",
            community.code,
            community.name,
            self.report.residents,
            self.report.houses,
            self.report.devices,
        )
        return self.report

    # --- the organisation tree ---

    def _community(self) -> OrgUnit:
        """District → station → office → community, reused by code where they exist."""
        c, session = self.config, self.ctx.session
        city = org_service.root(session)
        if city is None:
            raise ValidationFailed.one(
                "community", "the organisation tree is empty: run 'anju init' first"
            )
        district = self._org_unit(Level.DISTRICT, c.district_code, c.district_name, city)
        station = self._org_unit(Level.STATION, c.station_code, c.station_name, district)
        office = self._org_unit(Level.OFFICE, c.office_code, c.office_name, station)
        community = self._org_unit(Level.COMMUNITY, c.code, c.name, office)
        built = session.scalar(
            select(Building.id).where(Building.community_id == community.id).limit(1)
        )
        if built is not None:
            raise ValidationFailed.one(
                "code", f"community {c.code} already has buildings; use a new code"
            )
        self.community = community
        return community

    def _org_unit(self, level: Level, code: str, name: str, parent: OrgUnit) -> OrgUnit:
        """The node with ``code``, or a new one under ``parent``."""
        session = self.ctx.session
        existing = session.scalar(select(OrgUnit).where(OrgUnit.code == code))
        if existing is None:
            return org_service.add_unit(session, level=level, code=code, name=name, parent=parent)
        if existing.level != level:
            raise ValidationFailed.one(
                "code", f"{code} is a {existing.level.value}, not a {level.value}"
            )
        return existing

    # --- identifiers already taken ---

    def _existing(self, column: Any, values: Sequence[str]) -> set[str]:
        """Which of ``values`` the column already holds."""
        found: set[str] = set()
        for i in range(0, len(values), 500):
            found.update(
                self.ctx.session.scalars(select(column).where(column.in_(values[i : i + 500])))
            )
        return found

    def _redraw_taken(self, plan: _Plan) -> None:
        """Redraw ID numbers and plates the database already holds (an earlier build's)."""
        rng, cipher, session = self.stream("redraw"), self.ctx.cipher, self.ctx.session

        def id_taken(number: str) -> bool:
            lookup = cipher.lookup_hash(number, "id_number")
            return (
                session.scalar(select(Person.id).where(Person.id_number_hash == lookup)) is not None
            )

        people = list(plan.people())
        numbers = {m.id_number for m in people}
        lookups = [cipher.lookup_hash(m.id_number, "id_number") for m in people]
        taken = self._existing(Person.id_number_hash, lookups)
        for m, lookup in zip(people, lookups, strict=True):
            if lookup not in taken:
                continue
            number = m.id_number
            while number in numbers or id_taken(number):
                if m.id_type is IdType.PASSPORT:
                    number = identity.passport(rng, m.nationality or "")
                else:
                    assert m.region is not None
                    number = identity.resident_id(rng, m.region, m.birth, m.male)
            numbers.add(number)
            m.id_number = number
        plates = {car.plate for car in plan.cars}
        taken = self._existing(Vehicle.plate, sorted(plates))
        for car in plan.cars:
            if car.plate not in taken:
                continue
            plate, prefix = car.plate, car.plate[:2]
            while plate in plates or session.scalar(
                select(Vehicle.id).where(Vehicle.plate == plate)
            ):
                if car.new_energy:
                    plate = identity.new_energy_plate(rng, prefix)
                else:
                    plate = identity.ordinary_plate(rng, prefix)
            plates.add(plate)
            car.plate = plate

    # --- addresses ---

    def _grids(self) -> list[Grid]:
        """One grid per few buildings."""
        count = self.config.building_count
        grids: list[Grid] = []
        total = math.ceil(count / BUILDINGS_PER_GRID)
        for n in range(1, total + 1):
            first = (n - 1) * BUILDINGS_PER_GRID + 1
            last = min(n * BUILDINGS_PER_GRID, count)
            span = f"{first}号楼" if first == last else f"{first}—{last}号楼"
            data = schemas.GridCreate(
                community_id=self.community.id,
                code=f"G{n:02d}",
                name=f"第{n}网格",
                description=span,
            )
            grids.append(registry.grids.create(self.ctx, data))
        self.report.grids = len(grids)
        return grids

    def _buildings(
        self, grids: list[Grid]
    ) -> tuple[dict[int, Building], dict[tuple[int, int], BuildingUnit]]:
        """Buildings and their stairway units."""
        c = self.config
        buildings: dict[int, Building] = {}
        units: dict[tuple[int, int], BuildingUnit] = {}
        for b in range(1, c.building_count + 1):
            grid = grids[(b - 1) // BUILDINGS_PER_GRID]
            data = schemas.BuildingCreate(
                community_id=self.community.id, number=str(b), floors=c.floors, grid_id=grid.id
            )
            buildings[b] = registry.buildings.create(self.ctx, data)
            for u in range(1, c.units_per_building + 1):
                unit = schemas.UnitCreate(building_id=buildings[b].id, number=str(u))
                units[b, u] = registry.units.create(self.ctx, unit)
            self.tick("buildings", b, c.building_count)
        self.report.buildings, self.report.units = len(buildings), len(units)
        return buildings, units

    # --- people and houses ---

    def _people(self, plan: _Plan) -> None:
        """Every planned person, through the people service (sealed, validated)."""
        people = list(plan.people())
        for i, m in enumerate(people, 1):
            documented = m.id_type is not IdType.RESIDENT_ID  # a passport carries no birth date
            data = schemas.PersonCreate(
                community_id=self.community.id,
                name=m.name,
                id_type=m.id_type,
                id_number=m.id_number,
                birth_date=m.birth if documented else None,
                sex=(Sex.MALE if m.male else Sex.FEMALE) if documented else None,
                phone=m.phone,
                category=m.category,
                ethnicity=m.ethnicity,
                household_address=m.household_address,
                reason_code=m.reason,
                arrival_date=m.since if m.category is not PersonCategory.REGISTERED else None,
                leaving_date=m.left_on,
                tags=sorted(m.tags),
                notes=f"国籍：{m.nationality}" if m.nationality else None,
            )
            person = registry.people.create(self.ctx, data)
            m.person_id = person.id
            self.persons.append(person)
            self.tick("people", i, len(people))

    def _houses(self, plan: _Plan, units: dict[tuple[int, int], BuildingUnit]) -> None:
        """Every house, with its owner."""
        for i, slot in enumerate(plan.slots, 1):
            data = schemas.HouseCreate(
                unit_id=units[slot.building, slot.unit].id,
                floor=slot.floor,
                room=slot.room,
                use=slot.use,
                owner_id=slot.owner.person_id if slot.owner else None,
                area=slot.area,
                rooms=slot.rooms,
                plate_installed=slot.plate_installed,
            )
            house = registry.houses.create(self.ctx, data)
            slot.house_id = house.id
            self.houses.append(house)
            self.tick("houses", i, len(plan.slots))
        self.report.houses = len(self.houses)

    def _residencies(self, plan: _Plan) -> None:
        """Who lives where; people who left get their residency ended."""
        stays: list[tuple[_Slot, _Household | None, _Member]] = [
            (h.slot, h, m) for h in plan.households for m in h.members
        ]
        stays += [(slot, None, m) for slot, m in plan.former]
        for i, (slot, household, m) in enumerate(stays, 1):
            data = schemas.ResidencyCreate(
                person_id=m.person_id,
                house_id=slot.house_id,
                relation=_RELATION[m.role],
                start_date=m.since,
                lease_end=household.lease_end if household and m.role is _Role.TENANT else None,
            )
            residency = registry.residencies.create(self.ctx, data)
            if m.left_on is not None:
                ended = schemas.ResidencyEnd(end_date=m.left_on, reason="租约到期，已搬离")
                registry.residencies.end(self.ctx, residency, ended)
            self.tick("residencies", i, len(stays))

    # --- units (实有单位), parking, vehicles ---

    def _credit_code(self, rng: random.Random, kind: str, region: str, prefix: str) -> str:
        """A credit code no organisation holds yet."""
        session = self.ctx.session
        while True:
            code = identity.credit_code(rng, kind, region, prefix)
            clash = session.scalar(select(Organisation.id).where(Organisation.credit_code == code))
            if code not in self.credit_codes and clash is None:
                self.credit_codes.add(code)
                return code

    def _phone(self) -> str:
        """A mobile number no one in this build has."""
        phone = self.fake.phone_number()
        while phone in self.phones:
            phone = self.fake.phone_number()
        self.phones.add(phone)
        return phone

    def _organisations(self, plan: _Plan) -> None:
        """The property company, the kindergarten and a shop in every business house."""
        c, rng, fake = self.config, self.stream("organisations"), self.fake
        city_code = c.region_code[:4] + "00"
        brand = rng.choice(PROPERTY_BRANDS)
        self.property_name = f"{c.city_name}{brand}物业服务有限公司"
        specs: list[tuple[str, OrganisationKind, str, _Slot | None, int]] = [
            (
                self.property_name,
                OrganisationKind.PROPERTY,
                "91" + city_code,
                None,
                rng.randint(30, 80),
            ),
            (
                f"{c.city_name}{c.name}幼儿园",
                OrganisationKind.KINDERGARTEN,
                "52" + c.region_code,
                None,
                rng.randint(18, 40),
            ),
        ]
        shops = rng.sample(SHOPS, len(SHOPS))
        business = [s for s in plan.slots if s.use is HouseUse.BUSINESS]
        for i, shop_slot in enumerate(business):
            template, kind = shops[i % len(shops)]
            name = template.format(
                brand=rng.choice(SHOP_BRANDS), surname=fake.last_name(), community=c.name
            )
            specs.append((name, kind, "92" + c.region_code, shop_slot, rng.randint(1, 8)))
        for i, (name, kind, authority, slot, employees) in enumerate(specs, 1):
            representative = fake.name()
            if slot is not None:
                address = f"{c.address_prefix}{self.community.name}{slot.address}"
            elif kind is OrganisationKind.PROPERTY:
                address = f"{c.address_prefix}{self.community.name}北门物业服务中心"
            else:
                address = f"{c.address_prefix}{self.community.name}东侧"
            data = schemas.OrganisationCreate(
                community_id=self.community.id,
                name=name,
                kind=kind,
                credit_code=self._credit_code(
                    rng, authority[:2], authority[2:], "MJ" if authority[0] == "5" else "MA5"
                ),
                legal_representative=representative,
                contact_name=representative if rng.random() < 0.6 else fake.name(),
                contact_phone=self._phone(),
                house_id=slot.house_id if slot else None,
                address=address,
                employees=employees,
            )
            self.organisations.append(registry.organisations.create(self.ctx, data))
            self.tick("organisations", i, len(specs))
        self.report.organisations = len(self.organisations)

    def _parking_and_vehicles(self, plan: _Plan) -> None:
        """Parking spaces (owned, rented, public, visitor) and the cars."""
        rng = self.stream("parking")
        cars_by_household: dict[int, list[_Car]] = {}
        for car in plan.cars:
            cars_by_household.setdefault(id(car.household), []).append(car)
        with_cars = [h for h in plan.households if id(h) in cars_by_household]
        total = max(8, round(len(plan.households) * 0.7))
        visitor = max(2, round(total * 0.05))
        public = round(total * 0.12)
        assignable = total - visitor - public
        space_of: dict[int, ParkingSpace] = {}
        steps = total + len(plan.cars)
        for i in range(total):
            household = with_cars[i] if i < min(assignable, len(with_cars)) else None
            if i >= total - visitor:
                code, kind = f"V-{i - (total - visitor) + 1:02d}", ParkingKind.VISITOR
                location = f"{rng.choice(('北门', '南门'))}地面访客车位"
            else:
                code = f"B1-{i + 1:03d}"
                location = f"地下车库B1层{'ABCDEFGH'[min(7, i // 60)]}区"
                if household is None:
                    kind = ParkingKind.PUBLIC
                else:
                    kind = ParkingKind.RENTED if household.rented else ParkingKind.OWNED
            data = schemas.ParkingSpaceCreate(
                community_id=self.community.id,
                code=code,
                kind=kind,
                location=location,
                house_id=household.slot.house_id if household else None,
            )
            space = registry.parking_spaces.create(self.ctx, data)
            if household is not None:
                space_of[id(household)] = space
            self.tick("vehicles", i + 1, steps)
        for i, car in enumerate(plan.cars, 1):
            assigned = space_of.get(id(car.household))
            first = cars_by_household[id(car.household)][0] is car
            vehicle = schemas.VehicleCreate(
                community_id=self.community.id,
                plate=car.plate,
                colour=car.colour,
                brand=car.brand,
                owner_id=car.owner.person_id,
                parking_space_id=assigned.id if assigned is not None and first else None,
            )
            registry.vehicles.create(self.ctx, vehicle)
            self.tick("vehicles", total + i, steps)
        self.report.parking_spaces = total
        self.report.vehicles = len(plan.cars)
        self.report.new_energy_vehicles = sum(car.new_energy for car in plan.cars)

    # --- devices ---

    def _devices(
        self,
        plan: _Plan,
        buildings: dict[int, Building],
        units: dict[tuple[int, int], BuildingUnit],
    ) -> None:
        """Every device, from the spots :func:`_device_spots` lists."""
        c, rng = self.config, self.stream("devices")
        # One vendor per system, as a property company buys them.
        vendor_of = {
            system: rng.randrange(len(VENDORS)) for system in sorted(set(_SYSTEM_OF.values()))
        }
        earliest = dt.date(self.today.year - 6, 1, 1)
        span = (self.today - earliest).days - 30
        spots = _device_spots(c, plan.slots)
        counts: Counter[str] = Counter()
        for i, (suffix, name, kind, place) in enumerate(spots, 1):
            vendor = vendor_of[_SYSTEM_OF[kind]]
            data = schemas.DeviceCreate(
                community_id=self.community.id,
                code=f"{c.code}-{suffix}",
                name=name,
                kind=kind,
                vendor=VENDORS[vendor],
                model=MODELS[kind][vendor],
                building_id=buildings[place.building].id if place.building else None,
                unit_id=units[place.building, place.unit].id
                if place.building and place.unit
                else None,
                door=place.door,
                floor=place.floor,
                installed_on=earliest + dt.timedelta(days=rng.randint(0, span)),
            )
            registry.devices.create(self.ctx, data)
            counts[kind.value] += 1
            self.tick("devices", i, len(spots))
        self.report.devices = len(spots)
        self.report.devices_by_kind = dict(sorted(counts.items()))

    # --- forces and incidents ---

    def _staff(self, plan: _Plan, grids: list[Grid]) -> None:
        """Guards, cleaners, grid workers, building managers and volunteers."""
        c, rng, fake = self.config, self.stream("staff"), self.fake
        grid_of = {b: grids[(b - 1) // BUILDINGS_PER_GRID] for b in range(1, c.building_count + 1)}
        specs: list[schemas.SecurityStaffCreate] = []

        def add(
            name: str, role: ForceRole, phone: str | None, employer: str | None, grid: Grid | None
        ) -> None:
            specs.append(
                schemas.SecurityStaffCreate(
                    community_id=self.community.id,
                    name=name,
                    role=role,
                    phone=phone,
                    employer=employer,
                    grid_id=grid.id if grid else None,
                )
            )

        for _ in range(max(4, round(len(plan.households) / 60))):
            add(
                fake.name_male() if rng.random() < 0.85 else fake.name_female(),
                ForceRole.GUARD,
                self._phone(),
                self.property_name,
                None,
            )
        for _ in range(max(2, math.ceil(c.building_count / 3))):
            add(
                fake.name_female() if rng.random() < 0.7 else fake.name_male(),
                ForceRole.CLEANER,
                self._phone(),
                self.property_name,
                None,
            )
        for grid in grids:
            add(fake.name(), ForceRole.GRID_WORKER, self._phone(), c.street_office, grid)
        by_building: dict[int, list[_Member]] = {}
        for household in plan.households:
            by_building.setdefault(household.slot.building, []).extend(
                m for m in household.members if 35 <= m.age <= 70 and m.phone and not m.nationality
            )
        for b in range(1, c.building_count + 1):
            if by_building.get(b):
                manager = rng.choice(by_building[b])
                add(manager.name, ForceRole.BUILDING_MANAGER, manager.phone, None, grid_of[b])
        for household in plan.households:
            for m in household.members:
                if "volunteer" in m.tags and m.phone:
                    add(
                        m.name, ForceRole.VOLUNTEER, m.phone, None, grid_of[household.slot.building]
                    )
        for i, spec in enumerate(specs, 1):
            registry.security_staff.create(self.ctx, spec)
            self.tick("staff", i, len(specs))
        self.report.security_staff = len(specs)

    def _incidents(self, plan: _Plan) -> None:
        """A few police incidents (警情) in the last 90 days."""
        c, rng = self.config, self.stream("incidents")
        zone = ZoneInfo(c.timezone)
        alone = [h for h in plan.households if h.kind == "elderly_alone"]
        count = max(3, round(c.residents / 250))
        for i in range(1, count + 1):
            category = IncidentCategory(_weighted(rng, [(k.value, w) for k, w in _INCIDENTS]))
            if category is IncidentCategory.ASSISTANCE and alone:
                household = rng.choice(alone)
            else:
                household = rng.choice(plan.households)
            person, slot = household.members[0], household.slot
            day = self.today - dt.timedelta(days=rng.randint(1, 89))
            at = dt.datetime.combine(
                day, dt.time(rng.randint(6, 23), rng.randint(0, 59)), tzinfo=zone
            )
            place = f"{self.community.name}{slot.address}"
            summary = _SUMMARIES[category].format(
                name=person.name,
                place=place,
                building=f"{self.community.name}{slot.building}号楼{slot.unit}单元",
                amount=rng.choice((2800, 5600, 12000, 38000)),
            )
            case_number = None
            if category in (IncidentCategory.THEFT, IncidentCategory.FRAUD):
                case_number = f"A{c.region_code}{day:%Y%m%d}{rng.randint(1, 9999):04d}"
            house_id = None if category is IncidentCategory.TRAFFIC else household.slot.house_id
            data = schemas.IncidentCreate(
                community_id=self.community.id,
                occurred_at=at,
                category=category,
                place=f"{self.community.name}北门" if house_id is None else place,
                house_id=house_id,
                summary=summary,
                case_number=case_number,
            )
            registry.incidents.create(self.ctx, data)
            self.tick("incidents", i, count)
        self.report.incidents = count

    # --- verification (核实) and the report ---

    def _verify(self) -> None:
        """Verify all but a few of the people, houses and organisations (核实)."""
        rng = self.stream("verify")
        pools: list[Sequence[Person | House | Organisation]] = [
            [p for p in self.persons if p.leaving_date is None],
            self.houses,
            self.organisations,
        ]
        total = sum(len(pool) for pool in pools)
        done = 0
        for pool in pools:
            skipped = set(rng.sample(range(len(pool)), math.floor(len(pool) * UNVERIFIED_SHARE)))
            for i, record in enumerate(pool):
                if i not in skipped:
                    registry.verify(self.ctx, record)
                    self.report.verified += 1
                done += 1
                self.tick("verify", done, total)

    def _count(self, plan: _Plan) -> None:
        """Fill in the counts of the report from the plan."""
        r, today = self.report, self.today
        residents = [m for h in plan.households for m in h.members]
        r.houses_by_use = dict(sorted(Counter(s.use.value for s in plan.slots).items()))
        r.households = len(plan.households)
        r.people = len(self.persons)
        r.residents = len(residents)
        r.people_left = len(plan.former)
        r.absentee_owners = len(plan.landlords)
        r.owners = len({id(s.owner) for s in plan.slots if s.owner is not None})
        r.tenants = sum(m.role is _Role.TENANT for m in residents)
        r.floating = sum(m.category is PersonCategory.FLOATING for m in residents)
        r.overseas = sum(m.category is PersonCategory.OVERSEAS for m in residents)
        r.children = sum("child" in m.tags for m in residents)
        r.elderly = sum("elderly" in m.tags for m in residents)
        r.elderly_alone = sum("elderly_alone" in m.tags for m in residents)
        r.volunteers = sum("volunteer" in m.tags for m in residents)
        r.key_persons = sum(bool(m.tags.intersection(KEY_PERSON_TAGS)) for m in residents)
        soon = today + dt.timedelta(days=30)
        r.leases_ending_soon = sum(
            1 for h in plan.households if h.lease_end is not None and today <= h.lease_end <= soon
        )
