"""Registry logic: addresses and their codes, people and their residencies, the rates.

One :class:`~anju.core.crud.EntityService` per entity; the hooks hold what is particular to
each (address codes and texts, floors made on demand, tags, history kept on leaving).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select

from anju.core import validation
from anju.core.context import Ctx
from anju.core.crud import EntityService, Ref
from anju.core.errors import PermissionDenied, ValidationFailed
from anju.core.scope import restrict
from anju.devices.models import Device
from anju.org.models import Grid, OrgUnit
from anju.registry import schemas
from anju.registry.models import (
    Building,
    BuildingUnit,
    Floor,
    House,
    Incident,
    Organisation,
    ParkingSpace,
    Person,
    Residency,
    SecurityStaff,
    Tag,
    Vehicle,
)

# --- addresses ---------------------------------------------------------------------------


def _community(ctx: Ctx, community_id: int) -> OrgUnit:
    community = ctx.session.get(OrgUnit, community_id)
    assert community is not None  # checked by community_for/check_refs before hooks run
    return community


class BuildingService(EntityService[Building]):
    def before_write(self, ctx: Ctx, values: dict[str, Any], obj: Building | None) -> None:
        if obj is not None:
            return
        community = _community(ctx, values["community_id"])
        number = str(values["number"]).strip()
        values["number"] = number
        values["name"] = values.get("name") or f"{number}号楼"
        values["address_code"] = f"{community.code}-B{number}"
        values["full_address"] = f"{community.name}{values['name']}"


class UnitService(EntityService[BuildingUnit]):
    def community_for(self, ctx: Ctx, values: dict[str, Any]) -> int:
        building = ctx.session.get(Building, values["building_id"])
        if building is None or not _visible(ctx, building.community_id):
            raise ValidationFailed.one(
                "building_id", f"building {values['building_id']} does not exist"
            )
        return building.community_id

    def before_write(self, ctx: Ctx, values: dict[str, Any], obj: BuildingUnit | None) -> None:
        if obj is not None:
            if values.get("name"):
                obj.full_address = f"{obj.building.full_address}{values['name']}"
            return
        building = ctx.session.get(Building, values["building_id"])
        assert building is not None
        number = str(values["number"]).strip()
        values["number"] = number
        values["name"] = values.get("name") or f"{number}单元"
        values["address_code"] = f"{building.address_code}-U{number}"
        values["full_address"] = f"{building.full_address}{values['name']}"


def _visible(ctx: Ctx, community_id: int) -> bool:
    from anju.core.scope import in_scope

    return in_scope(ctx.session, ctx.actor, community_id)


def floor_for(ctx: Ctx, unit: BuildingUnit, number: int) -> Floor:
    """The floor of a unit, made on first use (floors have address codes too)."""
    floor = ctx.session.scalar(
        select(Floor).where(Floor.unit_id == unit.id, Floor.number == number)
    )
    if floor is None:
        label = f"B{-number}" if number < 0 else f"{number:02d}"
        floor = Floor(
            community_id=unit.community_id,
            unit_id=unit.id,
            number=number,
            address_code=f"{unit.address_code}-F{label}",
            full_address=f"{unit.full_address}{'地下' + str(-number) if number < 0 else number}层",
        )
        ctx.session.add(floor)
        ctx.session.flush()
    return floor


class HouseService(EntityService[House]):
    def community_for(self, ctx: Ctx, values: dict[str, Any]) -> int:
        unit = ctx.session.get(BuildingUnit, values["unit_id"])
        if unit is None or not _visible(ctx, unit.community_id):
            raise ValidationFailed.one("unit_id", f"unit {values['unit_id']} does not exist")
        return unit.community_id

    def before_write(self, ctx: Ctx, values: dict[str, Any], obj: House | None) -> None:
        if obj is not None:
            return
        unit = ctx.session.get(BuildingUnit, values["unit_id"])
        assert unit is not None
        floor = floor_for(ctx, unit, int(values.pop("floor")))
        room = str(values["room"]).strip()
        values["room"] = room
        values["floor_id"] = floor.id
        values["address_code"] = f"{unit.address_code}-R{room}"
        values["full_address"] = f"{unit.full_address}{room}室"


# --- people ------------------------------------------------------------------------------


class PersonService(EntityService[Person]):
    def before_write(self, ctx: Ctx, values: dict[str, Any], obj: Person | None) -> None:
        if "tags" in values:
            tags = values["tags"] or []
            stmt = select(Tag.code).where(Tag.code.in_(tags))
            if not ctx.actor.police:
                # Police-only tags are invisible to other roles: they can neither set them …
                stmt = stmt.where(Tag.police_only.is_(False))
            known = set(ctx.session.scalars(stmt))
            unknown = [t for t in tags if t not in known]
            if unknown:
                raise ValidationFailed.one("tags", "unknown tag(s): " + ", ".join(unknown))
        if obj is not None and "id_number" in values and "id_type" not in values:
            values["id_type"] = obj.id_type
        if values.get("id_number"):
            lookup = ctx.cipher.lookup_hash(values["id_number"], "id_number")
            clash = ctx.session.scalar(select(Person.id).where(Person.id_number_hash == lookup))
            if clash is not None and (obj is None or clash != obj.id):
                raise ValidationFailed.one(
                    "id_number", "a person with this ID number is already registered"
                )

    def after_build(self, ctx: Ctx, obj: Person, values: dict[str, Any]) -> None:
        if values.get("tags") is not None:
            with ctx.session.no_autoflush:  # one flush, so one audit row, per edit
                chosen = list(ctx.session.scalars(select(Tag).where(Tag.code.in_(values["tags"]))))
            if not ctx.actor.police:
                # … nor lose them by leaving out what they cannot see.
                chosen += [t for t in obj.tags if t.police_only and t not in chosen]
            obj.tags = chosen

    def delete(self, ctx: Ctx, obj: Person) -> None:
        """A deleted person's face templates go with them (the faces package builds on the
        registry, so it is imported here, not the other way round)."""
        from anju.faces.service import drop_person_templates

        drop_person_templates(ctx.session, obj.id)
        super().delete(ctx, obj)

    def find_by_id_number(self, ctx: Ctx, id_number: str) -> Person | None:
        """Exact lookup by full ID number, through the keyed hash (never a clear column)."""
        number = id_number.strip().upper()
        lookup = ctx.cipher.lookup_hash(number, "id_number")
        return ctx.session.scalar(self.select(ctx).where(Person.id_number_hash == lookup))

    def find_by_phone(self, ctx: Ctx, phone: str) -> list[Person]:
        from anju.core.validation import phone as normalise_phone

        lookup = ctx.cipher.lookup_hash(normalise_phone(phone), "phone")
        return list(ctx.session.scalars(self.select(ctx).where(Person.phone_hash == lookup)))

    def reveal(self, ctx: Ctx, person: Person, field_name: str) -> str | None:
        """The clear value of a sealed field, for internal use (no permission check)."""
        blob = getattr(person, f"{field_name}_enc")
        return None if blob is None else ctx.cipher.decrypt(blob, field_name)

    def reveal_for(
        self, ctx: Ctx, person: Person, fields: list[str], reason: str
    ) -> dict[str, str | None]:
        """Show a person's full ID number and/or phone to someone allowed to see them.

        Needs ``person.view_sensitive`` (the record is already in the caller's scope, or
        :meth:`get` would not have found it) and a reason; every reveal is audited.
        """
        from anju.audit.service import record

        if not ctx.actor.can("person.view_sensitive"):
            raise PermissionDenied("person.view_sensitive")
        reason = (reason or "").strip()
        if len(reason) < 4:
            raise ValidationFailed.one("reason", "give a reason of at least 4 characters")
        wanted = [f for f in fields if f in SENSITIVE_FIELDS]
        if not wanted:
            raise ValidationFailed.one("fields", "choose the ID number, the phone or both")
        record(
            ctx.session,
            "person.reveal",
            entity="persons",
            entity_id=person.id,
            community_id=person.community_id,
            detail={"fields": wanted, "reason": reason},
        )
        return {f: self.reveal(ctx, person, f) for f in wanted}


SENSITIVE_FIELDS = ("id_number", "phone")


class ResidencyService(EntityService[Residency]):
    def community_for(self, ctx: Ctx, values: dict[str, Any]) -> int:
        house = ctx.session.get(House, values["house_id"])
        if house is None or not _visible(ctx, house.community_id):
            raise ValidationFailed.one("house_id", f"house {values['house_id']} does not exist")
        return house.community_id

    def before_write(self, ctx: Ctx, values: dict[str, Any], obj: Residency | None) -> None:
        if obj is not None:
            return
        active = ctx.session.scalar(
            select(Residency.id).where(
                Residency.person_id == values["person_id"],
                Residency.house_id == values["house_id"],
                Residency.end_date.is_(None),
            )
        )
        if active is not None:
            raise ValidationFailed.one("person_id", "this person already lives in this house")

    def end(self, ctx: Ctx, residency: Residency, data: schemas.ResidencyEnd) -> Residency:
        """人走撤销 — the person left: close the residency, keep it as history."""
        if residency.end_date is not None:
            raise ValidationFailed.one("end_date", "this residency has already ended")
        if data.end_date < residency.start_date:
            raise ValidationFailed.one("end_date", "end date is before the start date")
        if data.end_date > ctx.today() + dt.timedelta(days=1):
            raise ValidationFailed.one("end_date", "leaving cannot be recorded ahead of time")
        residency.end_date = data.end_date
        residency.end_reason = data.reason
        ctx.session.flush()
        return residency


class VehicleService(EntityService[Vehicle]):
    def before_write(self, ctx: Ctx, values: dict[str, Any], obj: Vehicle | None) -> None:
        if values.get("plate"):
            values["plate"], values["plate_kind"] = validation.plate(values["plate"])


def _house_ref(label: str = "house") -> Ref:
    return Ref(House, label=label)


grids = EntityService(Grid, unique_messages={"code": ("code", "a grid with this code exists")})
buildings = BuildingService(
    Building,
    refs={"grid_id": Ref(Grid, label="grid")},
    unique_messages={"number": ("number", "a building with this number exists")},
)
units = UnitService(
    BuildingUnit, unique_messages={"number": ("number", "this building already has that unit")}
)
houses = HouseService(
    House,
    refs={"owner_id": Ref(Person, same_community=False, label="person")},
    unique_messages={
        "room": ("room", "this floor already has that room"),
        "address_code": ("room", "this unit already has a room with that number"),
    },
)
people = PersonService(
    Person,
    sealed={"id_number": "id_number", "phone": "phone"},
    unique_messages={
        "id_number_hash": ("id_number", "a person with this ID number is already registered")
    },
)
residencies = ResidencyService(
    Residency,
    refs={"person_id": Ref(Person, same_community=False, label="person"), "house_id": _house_ref()},
)
organisations = EntityService(
    Organisation,
    sealed={"contact_phone": "contact_phone"},
    refs={"house_id": _house_ref()},
    unique_messages={
        "credit_code": ("credit_code", "an organisation with this credit code exists")
    },
)
parking_spaces = EntityService(
    ParkingSpace,
    refs={"house_id": _house_ref()},
    unique_messages={"code": ("code", "a parking space with this code exists")},
)
vehicles = VehicleService(
    Vehicle,
    refs={
        "owner_id": Ref(Person, same_community=False, label="person"),
        "parking_space_id": Ref(ParkingSpace, label="parking space"),
    },
    unique_messages={"plate": ("plate", "a vehicle with this plate is registered")},
)
security_staff = EntityService(
    SecurityStaff,
    sealed={"phone": "phone"},
    refs={
        "grid_id": Ref(Grid, label="grid"),
        "person_id": Ref(Person, same_community=False, label="person"),
    },
)
devices = EntityService(
    Device,
    refs={
        "building_id": Ref(Building, label="building"),
        "unit_id": Ref(BuildingUnit, label="unit"),
    },
    unique_messages={
        "code": ("code", "a device with this code exists"),
        "external_id": ("external_id", "another device has this carrier ID"),
    },
)
incidents = EntityService(Incident, refs={"house_id": _house_ref()})


# --- verification and rates --------------------------------------------------------------


def verify(ctx: Ctx, record: Person | House | Organisation) -> None:
    """核实 — a person of the right role confirms the record matches reality."""
    record.verified_at = ctx.now()
    record.verified_by_id = ctx.actor.user_id
    ctx.session.flush()


@dataclass(frozen=True)
class Rate:
    done: int
    total: int

    @property
    def percent(self) -> float:
        return 100.0 * self.done / self.total if self.total else 100.0


@dataclass(frozen=True)
class RegistryStats:
    """Counts and the rates the seeds set targets for (coverage 100 %, verification ≥ 95 %)."""

    communities: int
    buildings: int
    houses: int
    people: int
    active_residents: int
    organisations: int
    vehicles: int
    devices: int
    address_coverage: Rate
    people_verified: Rate
    houses_verified: Rate
    organisations_verified: Rate


def stats(ctx: Ctx, community_id: int | None = None) -> RegistryStats:
    """Registry counts and rates over the caller's scope (or one community in it)."""

    def count(model: Any, *where: Any) -> int:
        stmt: Any = restrict(select(func.count()).select_from(model), model, ctx.actor)
        if community_id is not None:
            stmt = stmt.where(model.community_id == community_id)
        return int(ctx.session.scalar(stmt.where(*where)) or 0)

    from anju.core.scope import communities_in_scope

    communities = ctx.session.scalar(
        select(func.count()).select_from(communities_in_scope(ctx.actor).subquery())
    )
    people_total = count(Person, Person.leaving_date.is_(None))
    houses_total = count(House)
    orgs_total = count(Organisation)
    return RegistryStats(
        communities=1 if community_id is not None else int(communities or 0),
        buildings=count(Building),
        houses=houses_total,
        people=people_total,
        active_residents=count(Residency, Residency.end_date.is_(None)),
        organisations=orgs_total,
        vehicles=count(Vehicle),
        devices=count(Device),
        address_coverage=Rate(count(House, House.plate_installed.is_(True)), houses_total),
        people_verified=Rate(
            count(Person, Person.leaving_date.is_(None), Person.verified_at.is_not(None)),
            people_total,
        ),
        houses_verified=Rate(count(House, House.verified_at.is_not(None)), houses_total),
        organisations_verified=Rate(
            count(Organisation, Organisation.verified_at.is_not(None)), orgs_total
        ),
    )
