"""One spec per registry entity, from which the console pages and the JSON API are built.

Adding an entity is filling in a :class:`Resource`: its service, schemas, list columns,
form inputs, search and filters, and the permissions that guard it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from pydantic import BaseModel, create_model
from sqlalchemy import ColumnElement, or_
from sqlalchemy.orm import selectinload

from anju.core.crud import EntityService
from anju.devices.models import Device, DeviceKind, DeviceStatus
from anju.org.models import Grid
from anju.registry import schemas
from anju.registry import service as registry
from anju.registry.models import (
    Building,
    BuildingUnit,
    ForceRole,
    House,
    HouseUse,
    IdType,
    Incident,
    IncidentCategory,
    Organisation,
    OrganisationKind,
    ParkingKind,
    ParkingSpace,
    Person,
    PersonCategory,
    Relation,
    Residency,
    SecurityStaff,
    Vehicle,
)


@dataclass(frozen=True)
class Column:
    """A column of a list page or a row of a detail page."""

    attr: str  # dotted path on the record, e.g. "community.name"
    label: str  # message id
    # text | enum | date | datetime | bool | verified | masked | tags | health (device state)
    kind: str = "text"


@dataclass(frozen=True)
class Input:
    """A form input (and, for filters, a list filter)."""

    name: str
    label: str
    kind: str = (
        "text"  # text | textarea | int | float | date | datetime | bool | select | ref | tags
    )
    required: bool = False
    choices: type[Enum] | None = None
    ref: str | None = None  # community | grid | building | unit | parking | house | person
    create_only: bool = False
    help: str | None = None


@dataclass(frozen=True)
class Resource:
    name: str
    title: str
    singular: str
    model: type[Any]
    service: EntityService[Any]
    create_schema: type[BaseModel]
    update_schema: type[BaseModel]
    columns: Sequence[Column]
    form: Sequence[Input]
    search: Callable[[str], ColumnElement[bool]] | None = None
    filters: Sequence[Input] = ()
    detail: Sequence[Column] = ()
    order_by: Callable[[], Sequence[Any]] = lambda: ()
    options: Callable[[], Sequence[Any]] = lambda: ()
    view_perm: str = "registry.view"
    edit_perm: str = "registry.edit"
    police_only: bool = False
    verifiable: bool = False
    deletable: bool = True
    template: str = "registry/detail.html"
    out_model: type[BaseModel] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "out_model", _out_model(self))

    @property
    def update_fields(self) -> Sequence[Input]:
        return [i for i in self.form if not i.create_only]


# Columns that never leave the server: ciphertexts and lookup hashes.
HIDDEN_SUFFIXES = ("_enc", "_hash")


def _out_model(resource: Resource) -> type[BaseModel]:
    """A typed output model from the table's columns (sealed columns left out)."""
    fields: dict[str, Any] = {}
    for col in resource.model.__table__.columns:
        if col.name.endswith(HIDDEN_SUFFIXES):
            continue
        try:
            py: Any = col.type.python_type
        except NotImplementedError:
            py = Any
        if issubclass(py, Enum):
            py = str
        fields[col.name] = (py | None, None)
    if resource.model is Person:
        fields["tags"] = (list[str], [])
    return create_model(f"{resource.model.__name__}Out", **fields)


def serialize(resource: Resource, obj: Any, police: bool) -> dict[str, Any]:
    """The API shape of one record; police-only tags are dropped for non-police callers."""
    out: dict[str, Any] = {}
    for col in resource.model.__table__.columns:
        if col.name.endswith(HIDDEN_SUFFIXES):
            continue
        value = getattr(obj, col.key)
        out[col.name] = value.value if isinstance(value, Enum) else value
    if resource.model is Person:
        out["tags"] = [t.code for t in obj.tags if police or not t.police_only]
    return out


def _like(*cols: Any) -> Callable[[str], ColumnElement[bool]]:
    def where(q: str) -> ColumnElement[bool]:
        pattern = f"%{q}%"
        return or_(*(c.ilike(pattern) for c in cols))

    return where


COMMUNITY = Input(
    "community_id", "Community", "ref", required=True, ref="community", create_only=True
)
COMMUNITY_FILTER = Input("community_id", "Community", "ref", ref="community")
COMMUNITY_COL = Column("community.name", "Community")


def _person_search(q: str) -> ColumnElement[bool]:
    return or_(Person.name.ilike(f"%{q}%"), Person.id_number_masked.ilike(f"%{q}%"))


RESOURCES: list[Resource] = [
    Resource(
        name="people",
        title="People",
        singular="Person",
        model=Person,
        service=registry.people,
        create_schema=schemas.PersonCreate,
        update_schema=schemas.PersonUpdate,
        columns=[
            Column("name", "Full name"),
            Column("id_number_masked", "ID number", "masked"),
            Column("sex", "Sex", "enum"),
            Column("birth_date", "Birth date", "date"),
            Column("category", "Category", "enum"),
            Column("phone_masked", "Phone", "masked"),
            Column("tags", "Tags", "tags"),
            Column("community.name", "Community"),
            Column("verified_at", "Verified", "verified"),
        ],
        form=[
            COMMUNITY,
            Input("name", "Full name", required=True),
            Input("id_type", "ID document type", "select", choices=IdType),
            Input(
                "id_number",
                "ID number",
                required=True,
                help="18-character resident ID; birth date and sex are read from it",
            ),
            Input("phone", "Phone"),
            Input("category", "Category", "select", choices=PersonCategory),
            Input("ethnicity", "Ethnicity"),
            Input("household_address", "Household registration address"),
            Input("reason_code", "Reason for coming", "select_reason"),
            Input("arrival_date", "Arrival date", "date"),
            Input("leaving_date", "Leaving date", "date"),
            Input("tags", "Tags", "tags"),
            Input("notes", "Notes", "textarea"),
        ],
        search=_person_search,
        filters=[
            COMMUNITY_FILTER,
            Input("presence", "Status", "presence"),
            Input("category", "Category", "select", choices=PersonCategory),
            Input("tag", "Tag", "tag"),
        ],
        order_by=lambda: [Person.community_id, Person.name, Person.id],
        options=lambda: [selectinload(Person.tags), selectinload(Person.community)],
        view_perm="person.view",
        edit_perm="person.edit",
        verifiable=True,
        template="registry/person.html",
    ),
    Resource(
        name="houses",
        title="Houses",
        singular="House",
        model=House,
        service=registry.houses,
        create_schema=schemas.HouseCreate,
        update_schema=schemas.HouseUpdate,
        columns=[
            Column("full_address", "Address"),
            Column("address_code", "Address code"),
            Column("use", "Use", "enum"),
            Column("owner.name", "Owner"),
            Column("area", "Area (m²)"),
            Column("plate_installed", "Door plate", "bool"),
            Column("verified_at", "Verified", "verified"),
        ],
        form=[
            Input("unit_id", "Unit", "ref", required=True, ref="unit", create_only=True),
            Input("floor", "Floor", "int", required=True, create_only=True),
            Input("room", "Room", required=True, create_only=True),
            Input("use", "Use", "select", choices=HouseUse),
            Input("owner_id", "Owner", "ref", ref="person"),
            Input("area", "Area (m²)", "float"),
            Input("rooms", "Rooms", "int"),
            Input("plate_installed", "Door plate installed", "bool"),
            Input("notes", "Notes", "textarea"),
        ],
        search=_like(House.full_address, House.address_code),
        filters=[COMMUNITY_FILTER, Input("use", "Use", "select", choices=HouseUse)],
        order_by=lambda: [House.community_id, House.address_code],
        options=lambda: [selectinload(House.owner)],
        view_perm="house.view",
        edit_perm="house.edit",
        verifiable=True,
        template="registry/house.html",
    ),
    Resource(
        name="residencies",
        title="Residencies",
        singular="Residency",
        model=Residency,
        service=registry.residencies,
        create_schema=schemas.ResidencyCreate,
        update_schema=schemas.ResidencyUpdate,
        columns=[
            Column("person.name", "Person"),
            Column("house.full_address", "House"),
            Column("relation", "Relation", "enum"),
            Column("start_date", "Since", "date"),
            Column("lease_end", "Lease end", "date"),
            Column("end_date", "Left on", "date"),
        ],
        form=[
            Input("person_id", "Person", "ref", required=True, ref="person", create_only=True),
            Input("house_id", "House", "ref", required=True, ref="house", create_only=True),
            Input("relation", "Relation", "select", required=True, choices=Relation),
            Input("start_date", "Since", "date", required=True, create_only=True),
            Input("lease_end", "Lease end", "date"),
        ],
        filters=[COMMUNITY_FILTER, Input("relation", "Relation", "select", choices=Relation)],
        order_by=lambda: [Residency.community_id, Residency.house_id, Residency.start_date],
        options=lambda: [selectinload(Residency.person), selectinload(Residency.house)],
        view_perm="house.view",
        edit_perm="house.edit",
        deletable=False,
        template="registry/residency.html",
    ),
    Resource(
        name="buildings",
        title="Buildings",
        singular="Building",
        model=Building,
        service=registry.buildings,
        create_schema=schemas.BuildingCreate,
        update_schema=schemas.BuildingUpdate,
        columns=[
            Column("name", "Name"),
            Column("address_code", "Address code"),
            Column("floors", "Floors"),
            Column("grid.name", "Grid"),
            COMMUNITY_COL,
        ],
        form=[
            COMMUNITY,
            Input("number", "Building number", required=True, create_only=True),
            Input("name", "Name"),
            Input("floors", "Floors", "int"),
            Input("grid_id", "Grid", "ref", ref="grid"),
        ],
        search=_like(Building.name, Building.address_code),
        filters=[COMMUNITY_FILTER],
        order_by=lambda: [Building.community_id, Building.address_code],
        options=lambda: [selectinload(Building.community), selectinload(Building.grid)],
        view_perm="address.view",
        edit_perm="address.edit",
    ),
    Resource(
        name="units",
        title="Units",
        singular="Unit",
        model=BuildingUnit,
        service=registry.units,
        create_schema=schemas.UnitCreate,
        update_schema=schemas.UnitUpdate,
        columns=[
            Column("full_address", "Address"),
            Column("address_code", "Address code"),
        ],
        form=[
            Input(
                "building_id", "Building", "ref", required=True, ref="building", create_only=True
            ),
            Input("number", "Unit number", required=True, create_only=True),
            Input("name", "Name"),
        ],
        search=_like(BuildingUnit.full_address, BuildingUnit.address_code),
        filters=[COMMUNITY_FILTER],
        order_by=lambda: [BuildingUnit.community_id, BuildingUnit.address_code],
        view_perm="address.view",
        edit_perm="address.edit",
    ),
    Resource(
        name="organisations",
        title="Organisations",
        singular="Organisation",
        model=Organisation,
        service=registry.organisations,
        create_schema=schemas.OrganisationCreate,
        update_schema=schemas.OrganisationUpdate,
        columns=[
            Column("name", "Name"),
            Column("kind", "Type", "enum"),
            Column("credit_code", "Unified social credit code"),
            Column("legal_representative", "Legal representative"),
            Column("contact_phone_masked", "Contact phone", "masked"),
            COMMUNITY_COL,
            Column("verified_at", "Verified", "verified"),
        ],
        form=[
            COMMUNITY,
            Input("name", "Name", required=True),
            Input("kind", "Type", "select", required=True, choices=OrganisationKind),
            Input("credit_code", "Unified social credit code"),
            Input("legal_representative", "Legal representative"),
            Input("contact_name", "Contact person"),
            Input("contact_phone", "Contact phone"),
            Input("house_id", "House", "ref", ref="house"),
            Input("address", "Address"),
            Input("employees", "Employees", "int"),
        ],
        search=_like(Organisation.name, Organisation.credit_code),
        filters=[COMMUNITY_FILTER, Input("kind", "Type", "select", choices=OrganisationKind)],
        order_by=lambda: [Organisation.community_id, Organisation.name],
        options=lambda: [selectinload(Organisation.house)],
        view_perm="organisation.view",
        edit_perm="organisation.edit",
        verifiable=True,
    ),
    Resource(
        name="vehicles",
        title="Vehicles",
        singular="Vehicle",
        model=Vehicle,
        service=registry.vehicles,
        create_schema=schemas.VehicleCreate,
        update_schema=schemas.VehicleUpdate,
        columns=[
            Column("plate", "Plate"),
            Column("plate_kind", "Plate type", "enum"),
            Column("colour", "Colour"),
            Column("brand", "Brand"),
            Column("owner.name", "Owner"),
            Column("parking_space.code", "Parking space"),
        ],
        form=[
            COMMUNITY,
            Input(
                "plate",
                "Plate",
                required=True,
                create_only=True,
                help="e.g. 粤B12345 or 粤BD12345; spaces and hyphens are removed",
            ),
            Input("colour", "Colour"),
            Input("brand", "Brand"),
            Input("owner_id", "Owner", "ref", ref="person"),
            Input("parking_space_id", "Parking space", "ref", ref="parking"),
        ],
        search=_like(Vehicle.plate, Vehicle.brand),
        filters=[COMMUNITY_FILTER],
        order_by=lambda: [Vehicle.community_id, Vehicle.plate],
        options=lambda: [selectinload(Vehicle.owner), selectinload(Vehicle.parking_space)],
        view_perm="vehicle.view",
        edit_perm="vehicle.edit",
    ),
    Resource(
        name="parking",
        title="Parking spaces",
        singular="Parking space",
        model=ParkingSpace,
        service=registry.parking_spaces,
        create_schema=schemas.ParkingSpaceCreate,
        update_schema=schemas.ParkingSpaceUpdate,
        columns=[
            Column("code", "Code"),
            Column("kind", "Type", "enum"),
            Column("location", "Location"),
            Column("house.full_address", "House"),
        ],
        form=[
            COMMUNITY,
            Input("code", "Code", required=True, create_only=True),
            Input("kind", "Type", "select", required=True, choices=ParkingKind),
            Input("location", "Location"),
            Input("house_id", "House", "ref", ref="house"),
        ],
        search=_like(ParkingSpace.code, ParkingSpace.location),
        filters=[COMMUNITY_FILTER, Input("kind", "Type", "select", choices=ParkingKind)],
        order_by=lambda: [ParkingSpace.community_id, ParkingSpace.code],
        options=lambda: [selectinload(ParkingSpace.house)],
        view_perm="vehicle.view",
        edit_perm="vehicle.edit",
    ),
    Resource(
        name="staff",
        title="Security forces",
        singular="Security staff",
        model=SecurityStaff,
        service=registry.security_staff,
        create_schema=schemas.SecurityStaffCreate,
        update_schema=schemas.SecurityStaffUpdate,
        columns=[
            Column("name", "Full name"),
            Column("role", "Role", "enum"),
            Column("phone_masked", "Phone", "masked"),
            Column("employer", "Employer"),
            Column("grid.name", "Grid"),
            Column("active", "Active", "bool"),
        ],
        form=[
            COMMUNITY,
            Input("name", "Full name", required=True),
            Input("role", "Role", "select", required=True, choices=ForceRole),
            Input("person_id", "Registered as", "ref", ref="person"),
            Input("phone", "Phone"),
            Input("employer", "Employer"),
            Input("grid_id", "Grid", "ref", ref="grid"),
            Input("active", "Active", "bool"),
        ],
        search=_like(SecurityStaff.name, SecurityStaff.employer),
        filters=[COMMUNITY_FILTER, Input("role", "Role", "select", choices=ForceRole)],
        order_by=lambda: [SecurityStaff.community_id, SecurityStaff.role, SecurityStaff.name],
        options=lambda: [selectinload(SecurityStaff.grid)],
        view_perm="staff.view",
        edit_perm="staff.edit",
    ),
    Resource(
        name="devices",
        title="Devices",
        singular="Device",
        model=Device,
        service=registry.devices,
        create_schema=schemas.DeviceCreate,
        update_schema=schemas.DeviceUpdate,
        columns=[
            Column("code", "Code"),
            Column("name", "Name"),
            Column("kind", "Kind", "enum"),
            Column("vendor", "Vendor"),
            Column("building.name", "Building"),
            Column("door", "Door / gate"),
            Column("status", "Status", "enum"),
            Column("last_seen_at", "State", "health"),
        ],
        form=[
            COMMUNITY,
            Input("code", "Code", required=True, create_only=True),
            Input("name", "Name", required=True),
            Input("kind", "Kind", "select", required=True, choices=DeviceKind),
            Input("vendor", "Vendor"),
            Input("model", "Model"),
            Input("building_id", "Building", "ref", ref="building"),
            Input("unit_id", "Unit", "ref", ref="unit"),
            Input("door", "Door / gate"),
            Input("floor", "Floor", "int"),
            Input("status", "Status", "select", choices=DeviceStatus),
            Input("installed_on", "Installed on", "date"),
            Input(
                "external_id",
                "Carrier device ID / IMEI",
                help="For NB-IoT devices: the device's ID on CTWing or OneNET, or its IMEI",
            ),
        ],
        search=_like(Device.code, Device.name, Device.vendor),
        filters=[
            COMMUNITY_FILTER,
            Input("kind", "Kind", "select", choices=DeviceKind),
            Input("status", "Status", "select", choices=DeviceStatus),
        ],
        template="registry/device.html",
        order_by=lambda: [Device.community_id, Device.code],
        options=lambda: [selectinload(Device.building)],
        view_perm="device.view",
        edit_perm="device.edit",
    ),
    Resource(
        name="grids",
        title="Grids",
        singular="Grid",
        model=Grid,
        service=registry.grids,
        create_schema=schemas.GridCreate,
        update_schema=schemas.GridUpdate,
        columns=[Column("code", "Code"), Column("name", "Name"), COMMUNITY_COL],
        form=[
            COMMUNITY,
            Input("code", "Code", required=True),
            Input("name", "Name", required=True),
            Input("description", "Description", "textarea"),
        ],
        search=_like(Grid.code, Grid.name),
        filters=[COMMUNITY_FILTER],
        order_by=lambda: [Grid.community_id, Grid.code],
        options=lambda: [selectinload(Grid.community)],
        view_perm="grid.view",
        edit_perm="grid.edit",
    ),
    Resource(
        name="incidents",
        title="Incidents",
        singular="Incident",
        model=Incident,
        service=registry.incidents,
        create_schema=schemas.IncidentCreate,
        update_schema=schemas.IncidentUpdate,
        columns=[
            Column("occurred_at", "Time", "datetime"),
            Column("category", "Category", "enum"),
            Column("place", "Place"),
            Column("summary", "Summary"),
            Column("case_number", "Case number"),
        ],
        form=[
            COMMUNITY,
            Input("occurred_at", "Time", "datetime", required=True, create_only=True),
            Input("category", "Category", "select", required=True, choices=IncidentCategory),
            Input("place", "Place", required=True),
            Input("house_id", "House", "ref", ref="house"),
            Input("summary", "Summary", "textarea", required=True),
            Input("case_number", "Case number"),
        ],
        search=_like(Incident.place, Incident.summary, Incident.case_number),
        filters=[
            COMMUNITY_FILTER,
            Input("category", "Category", "select", choices=IncidentCategory),
        ],
        order_by=lambda: [Incident.occurred_at.desc()],
        view_perm="incident.view",
        edit_perm="incident.edit",
        police_only=True,
    ),
]

BY_NAME: dict[str, Resource] = {r.name: r for r in RESOURCES}


def attr_path(obj: Any, path: str) -> Any:
    """Follow a dotted attribute path, stopping at the first None."""
    for part in path.split("."):
        if obj is None:
            return None
        obj = getattr(obj, part)
    return obj
