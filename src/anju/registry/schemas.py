"""API shapes of the registry. Validation lives here so API, console and import agree."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from anju.core import validation
from anju.core.errors import FieldValueError
from anju.devices.models import DeviceKind, DeviceStatus
from anju.registry.models import (
    ForceRole,
    HouseUse,
    IdType,
    IncidentCategory,
    OrganisationKind,
    ParkingKind,
    PersonCategory,
    Relation,
    Sex,
)

# Reasons for coming (来由), national codes for floating population.
REASON_CODES: dict[str, str] = {
    "01": "务工",
    "02": "务农",
    "03": "经商",
    "04": "学习",
    "05": "婚嫁",
    "06": "随迁家属",
    "07": "就医",
    "08": "探亲访友",
    "09": "工作调动",
    "99": "其他",
}

Name = Annotated[str, Field(min_length=1, max_length=60), AfterValidator(str.strip)]
Text = Annotated[str, Field(max_length=300)]
Phone = Annotated[str, AfterValidator(validation.phone)]
Code = Annotated[str, AfterValidator(validation.code)]


def _reason(value: str | None) -> str | None:
    if value in (None, ""):
        return None
    if value not in REASON_CODES:
        raise ValueError("reason for coming must be one of " + ", ".join(REASON_CODES))
    return value


def _plate(value: str) -> str:
    return validation.plate(value)[0]


def _credit_code(value: str | None) -> str | None:
    return validation.credit_code(value) if value else None


class Schema(BaseModel):
    model_config = ConfigDict(from_attributes=True, str_strip_whitespace=True, extra="forbid")


class Patch(Schema):
    """Base of update shapes: every field optional; only the fields sent are changed."""

    def changes(self) -> dict[str, Any]:
        return self.model_dump(exclude_unset=True)


# --- organisation tree -----------------------------------------------------------------


class GridCreate(Schema):
    community_id: int
    code: Code
    name: Name
    description: Text | None = None


class GridUpdate(Patch):
    code: Code | None = None
    name: Name | None = None
    description: Text | None = None


# --- addresses -------------------------------------------------------------------------


class BuildingCreate(Schema):
    community_id: int
    number: Annotated[str, Field(min_length=1, max_length=20)]
    name: Name | None = None
    floors: Annotated[int, Field(ge=1, le=200)] = 1
    grid_id: int | None = None


class BuildingUpdate(Patch):
    name: Name | None = None
    floors: Annotated[int, Field(ge=1, le=200)] | None = None
    grid_id: int | None = None


class UnitCreate(Schema):
    building_id: int
    number: Annotated[str, Field(min_length=1, max_length=20)]
    name: Name | None = None


class UnitUpdate(Patch):
    name: Name | None = None


class HouseCreate(Schema):
    unit_id: int
    floor: Annotated[int, Field(ge=-5, le=200)]
    room: Annotated[str, Field(min_length=1, max_length=20)]
    use: HouseUse = HouseUse.SELF_OCCUPIED
    owner_id: int | None = None
    area: Annotated[float, Field(gt=0, le=100000)] | None = None
    rooms: Annotated[int, Field(ge=0, le=100)] | None = None
    plate_installed: bool = False
    notes: Annotated[str, Field(max_length=2000)] | None = None


class HouseUpdate(Patch):
    use: HouseUse | None = None
    owner_id: int | None = None
    area: Annotated[float, Field(gt=0, le=100000)] | None = None
    rooms: Annotated[int, Field(ge=0, le=100)] | None = None
    plate_installed: bool | None = None
    notes: Annotated[str, Field(max_length=2000)] | None = None


# --- people ----------------------------------------------------------------------------


class _PersonIdentity(Schema):
    id_type: IdType | None = None
    id_number: str | None = None
    birth_date: dt.date | None = None
    sex: Sex | None = None
    arrival_date: dt.date | None = None
    leaving_date: dt.date | None = None

    @field_validator("id_number")
    @classmethod
    def _id_number(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None:
            return None
        kind = info.data.get("id_type") or IdType.RESIDENT_ID
        if kind is IdType.RESIDENT_ID:
            return validation.resident_id(value).number
        number = value.strip().upper()
        if not 5 <= len(number) <= 30 or not number.isalnum():
            raise ValueError("document number must be 5–30 letters or digits")
        return number

    @model_validator(mode="after")
    def _derived(self) -> _PersonIdentity:
        if self.id_number and (self.id_type or IdType.RESIDENT_ID) is IdType.RESIDENT_ID:
            # Already validated by the field validator: read birth date and sex straight off.
            n = self.id_number
            self.birth_date = dt.date(int(n[6:10]), int(n[10:12]), int(n[12:14]))
            self.sex = Sex.MALE if int(n[16]) % 2 == 1 else Sex.FEMALE
        if self.arrival_date and self.leaving_date and self.leaving_date < self.arrival_date:
            raise FieldValueError("leaving_date", "leaving date is before arrival date")
        return self


class PersonCreate(_PersonIdentity):
    community_id: int
    name: Name
    id_type: IdType = IdType.RESIDENT_ID
    id_number: str
    phone: Phone | None = None
    category: PersonCategory = PersonCategory.REGISTERED
    ethnicity: Annotated[str, Field(max_length=20)] | None = None
    household_address: Annotated[str, Field(max_length=200)] | None = None
    reason_code: Annotated[str | None, AfterValidator(_reason)] = None
    tags: list[str] = Field(default_factory=list)
    notes: Annotated[str, Field(max_length=2000)] | None = None


class PersonUpdate(_PersonIdentity, Patch):
    name: Name | None = None
    phone: Phone | None = None
    category: PersonCategory | None = None
    ethnicity: Annotated[str, Field(max_length=20)] | None = None
    household_address: Annotated[str, Field(max_length=200)] | None = None
    reason_code: Annotated[str | None, AfterValidator(_reason)] = None
    tags: list[str] | None = None
    notes: Annotated[str, Field(max_length=2000)] | None = None


class ResidencyCreate(Schema):
    person_id: int
    house_id: int
    relation: Relation
    start_date: dt.date
    lease_end: dt.date | None = None

    @model_validator(mode="after")
    def _dates(self) -> ResidencyCreate:
        if self.lease_end and self.lease_end < self.start_date:
            raise FieldValueError("lease_end", "lease end is before the start date")
        return self


class ResidencyUpdate(Patch):
    relation: Relation | None = None
    lease_end: dt.date | None = None


class ResidencyEnd(Schema):
    end_date: dt.date
    reason: Annotated[str, Field(max_length=200)] | None = None


# --- units, vehicles, forces, devices, incidents ---------------------------------------


class OrganisationCreate(Schema):
    community_id: int
    name: Annotated[str, Field(min_length=1, max_length=120)]
    kind: OrganisationKind
    credit_code: Annotated[str | None, AfterValidator(_credit_code)] = None
    legal_representative: Name | None = None
    contact_name: Name | None = None
    contact_phone: Phone | None = None
    house_id: int | None = None
    address: Text | None = None
    employees: Annotated[int, Field(ge=0, le=1_000_000)] | None = None


class OrganisationUpdate(Patch):
    name: Annotated[str, Field(min_length=1, max_length=120)] | None = None
    kind: OrganisationKind | None = None
    credit_code: Annotated[str | None, AfterValidator(_credit_code)] = None
    legal_representative: Name | None = None
    contact_name: Name | None = None
    contact_phone: Phone | None = None
    house_id: int | None = None
    address: Text | None = None
    employees: Annotated[int, Field(ge=0, le=1_000_000)] | None = None


class ParkingSpaceCreate(Schema):
    community_id: int
    code: Code
    kind: ParkingKind
    location: Annotated[str, Field(max_length=120)] | None = None
    house_id: int | None = None


class ParkingSpaceUpdate(Patch):
    kind: ParkingKind | None = None
    location: Annotated[str, Field(max_length=120)] | None = None
    house_id: int | None = None


class VehicleCreate(Schema):
    community_id: int
    plate: Annotated[str, AfterValidator(_plate)]
    colour: Annotated[str, Field(max_length=20)] | None = None
    brand: Annotated[str, Field(max_length=40)] | None = None
    owner_id: int | None = None
    parking_space_id: int | None = None


class VehicleUpdate(Patch):
    colour: Annotated[str, Field(max_length=20)] | None = None
    brand: Annotated[str, Field(max_length=40)] | None = None
    owner_id: int | None = None
    parking_space_id: int | None = None


class SecurityStaffCreate(Schema):
    community_id: int
    name: Name
    role: ForceRole
    person_id: int | None = None
    phone: Phone | None = None
    employer: Annotated[str, Field(max_length=120)] | None = None
    grid_id: int | None = None
    active: bool = True


class SecurityStaffUpdate(Patch):
    name: Name | None = None
    role: ForceRole | None = None
    person_id: int | None = None
    phone: Phone | None = None
    employer: Annotated[str, Field(max_length=120)] | None = None
    grid_id: int | None = None
    active: bool | None = None


class DeviceCreate(Schema):
    community_id: int
    code: Code
    name: Annotated[str, Field(min_length=1, max_length=100)]
    kind: DeviceKind
    vendor: Annotated[str, Field(max_length=40)] | None = None
    model: Annotated[str, Field(max_length=60)] | None = None
    building_id: int | None = None
    unit_id: int | None = None
    door: Annotated[str, Field(max_length=60)] | None = None
    floor: Annotated[int, Field(ge=-5, le=200)] | None = None
    status: DeviceStatus = DeviceStatus.ACTIVE
    external_id: Annotated[str, Field(max_length=64)] | None = None
    installed_on: dt.date | None = None


class DeviceUpdate(Patch):
    name: Annotated[str, Field(min_length=1, max_length=100)] | None = None
    kind: DeviceKind | None = None
    vendor: Annotated[str, Field(max_length=40)] | None = None
    model: Annotated[str, Field(max_length=60)] | None = None
    building_id: int | None = None
    unit_id: int | None = None
    door: Annotated[str, Field(max_length=60)] | None = None
    floor: Annotated[int, Field(ge=-5, le=200)] | None = None
    status: DeviceStatus | None = None
    external_id: Annotated[str, Field(max_length=64)] | None = None
    installed_on: dt.date | None = None


class IncidentCreate(Schema):
    community_id: int
    occurred_at: dt.datetime
    category: IncidentCategory
    place: Annotated[str, Field(min_length=1, max_length=200)]
    house_id: int | None = None
    summary: Annotated[str, Field(min_length=1, max_length=4000)]
    case_number: Annotated[str, Field(max_length=40)] | None = None

    @model_validator(mode="after")
    def _aware(self) -> IncidentCreate:
        if self.occurred_at.tzinfo is None:
            raise FieldValueError(
                "occurred_at", "occurred_at needs a UTC offset, e.g. 2026-11-21T08:00:00+08:00"
            )
        return self


class IncidentUpdate(Patch):
    category: IncidentCategory | None = None
    place: Annotated[str, Field(min_length=1, max_length=200)] | None = None
    house_id: int | None = None
    summary: Annotated[str, Field(min_length=1, max_length=4000)] | None = None
    case_number: Annotated[str, Field(max_length=40)] | None = None
