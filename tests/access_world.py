"""A small two-district world with one account per role, for access and scope tests.

City → districts A and B → a station each → an office each → two communities under A's
office (A1, A2) and one under B's (B1). Every registry kind has a record in A1 and in B1.
"""

from __future__ import annotations

import datetime as dt
import secrets
from dataclasses import dataclass, field
from typing import Any

from anju.auth import service as auth_service
from anju.auth.defaults import DEFAULT_ROLES
from anju.bootstrap import Node
from anju.core.context import Ctx
from anju.core.db import utcnow
from anju.org import service as org_service
from anju.org.models import Level, OrgUnit
from anju.registry import schemas
from anju.registry import service as registry
from tests import factories as f

ROLE_CODES = [code for code, *_ in DEFAULT_ROLES]
SERIALS = {"A1": 1, "A2": 2, "B1": 3}
ID_NUMBERS: dict[str, str] = {}  # community tag → the clear ID number of its resident


@dataclass
class Account:
    username: str
    role: str
    token: str
    csrf: str
    user_id: int
    person_id: int | None = None


@dataclass
class World:
    units: dict[str, OrgUnit] = field(default_factory=dict)
    records: dict[str, dict[str, int]] = field(default_factory=dict)  # community → kind → id
    accounts: dict[str, Account] = field(default_factory=dict)
    people: dict[str, list[int]] = field(default_factory=dict)  # community → person ids


def _community_records(ctx: Ctx, community: OrgUnit, tag: str) -> dict[str, int]:
    """One record of every registry kind in a community."""
    c = community.id
    grid = registry.grids.create(
        ctx, schemas.GridCreate(community_id=c, code=f"G{tag}", name=f"网格{tag}")
    )
    building = registry.buildings.create(
        ctx, schemas.BuildingCreate(community_id=c, number="1", floors=6, grid_id=grid.id)
    )
    unit = registry.units.create(ctx, schemas.UnitCreate(building_id=building.id, number="1"))
    house = registry.houses.create(ctx, schemas.HouseCreate(unit_id=unit.id, floor=1, room="101"))
    number = f.resident_id_for("110101", "19800101", 100 + SERIALS[tag])
    person = registry.people.create(
        ctx,
        schemas.PersonCreate(
            community_id=c,
            name=f"居民{tag}",
            id_number=number,
            phone="13900000000",
            tags=["key_released"],
        ),
    )
    neighbour = registry.people.create(
        ctx,
        schemas.PersonCreate(
            community_id=c,
            name=f"邻居{tag}",
            id_number=f.resident_id_for("110101", "19810101", 300 + SERIALS[tag]),
        ),
    )
    residency = registry.residencies.create(
        ctx,
        schemas.ResidencyCreate(
            person_id=person.id, house_id=house.id, relation="owner", start_date=dt.date(2020, 1, 1)
        ),
    )
    other_house = registry.houses.create(
        ctx, schemas.HouseCreate(unit_id=unit.id, floor=2, room="201")
    )
    registry.residencies.create(
        ctx,
        schemas.ResidencyCreate(
            person_id=neighbour.id,
            house_id=other_house.id,
            relation="owner",
            start_date=dt.date(2020, 1, 1),
        ),
    )
    space = registry.parking_spaces.create(
        ctx, schemas.ParkingSpaceCreate(community_id=c, code=f"P{tag}", kind="owned")
    )
    plate = {"A1": "京A10001", "A2": "京A20002", "B1": "京B30003"}[tag]
    vehicle = registry.vehicles.create(
        ctx,
        schemas.VehicleCreate(
            community_id=c, plate=plate, owner_id=person.id, parking_space_id=space.id
        ),
    )
    org = registry.organisations.create(
        ctx, schemas.OrganisationCreate(community_id=c, name=f"商铺{tag}", kind="shop")
    )
    staff = registry.security_staff.create(
        ctx, schemas.SecurityStaffCreate(community_id=c, name=f"保安{tag}", role="guard")
    )
    device = registry.devices.create(
        ctx,
        schemas.DeviceCreate(
            community_id=c, code=f"DEV-{tag}", name=f"门禁{tag}", kind="face_gate"
        ),
    )
    incident = registry.incidents.create(
        ctx,
        schemas.IncidentCreate(
            community_id=c,
            occurred_at=dt.datetime(2026, 11, 1, 8, tzinfo=dt.UTC),
            category="theft",
            place="车棚",
            summary="电动车被盗",
        ),
    )
    ID_NUMBERS[tag] = number
    return {
        "grids": grid.id,
        "buildings": building.id,
        "units": unit.id,
        "houses": house.id,
        "people": person.id,
        "neighbour": neighbour.id,
        "residencies": residency.id,
        "parking": space.id,
        "vehicles": vehicle.id,
        "organisations": org.id,
        "staff": staff.id,
        "devices": device.id,
        "incidents": incident.id,
    }


def _event_with_image(node: Node, ctx: Ctx, tag: str) -> int:
    """A face capture with its picture, by the community's gate (for the image routes)."""
    from anju.events.model import Event, Kind

    capture = Event(
        device=f"DEV-{tag}",
        kind=Kind.ACCESS_FACE,
        at=utcnow(),
        image_data=b"\xff\xd8\xff\xe0 access world " + tag.encode(),
    )
    processed = node.pipeline(ctx.session).process([capture])
    stored_id = processed.results[0].stored_id
    assert stored_id is not None
    return stored_id


def _alert(session: Any, community_id: int) -> int:
    """An alert every role that sees alerts may see (not police-only)."""
    from anju.alerts.model import AlertDraft, Severity
    from anju.alerts.service import raise_or_merge

    draft = AlertDraft(
        model="fire",
        community_id=community_id,
        fingerprint=f"fire:access-world:{community_id}",
        title="消防通道占用",
        severity=Severity.MEDIUM,
        at=utcnow(),
    )
    alert, _created = raise_or_merge(session, draft, utcnow())
    session.flush()
    return alert.id


def build(node: Node, prefix: str = "W") -> World:
    """Make the world and one signed-in account per role (sessions made directly)."""
    world = World()
    with node.unit_of_work() as ctx:
        s = ctx.session
        city = org_service.root(s)
        assert city is not None
        da = org_service.add_unit(
            s, level=Level.DISTRICT, code=f"{prefix}DA", name="甲分局", parent=city
        )
        db = org_service.add_unit(
            s, level=Level.DISTRICT, code=f"{prefix}DB", name="乙分局", parent=city
        )
        sa = org_service.add_unit(
            s, level=Level.STATION, code=f"{prefix}SA", name="甲派出所", parent=da
        )
        sb = org_service.add_unit(
            s, level=Level.STATION, code=f"{prefix}SB", name="乙派出所", parent=db
        )
        oa = org_service.add_unit(
            s, level=Level.OFFICE, code=f"{prefix}OA", name="甲警务室", parent=sa
        )
        ob = org_service.add_unit(
            s, level=Level.OFFICE, code=f"{prefix}OB", name="乙警务室", parent=sb
        )
        a1 = org_service.add_unit(
            s, level=Level.COMMUNITY, code=f"{prefix}A1", name="甲一小区", parent=oa
        )
        a2 = org_service.add_unit(
            s, level=Level.COMMUNITY, code=f"{prefix}A2", name="甲二小区", parent=oa
        )
        b1 = org_service.add_unit(
            s, level=Level.COMMUNITY, code=f"{prefix}B1", name="乙一小区", parent=ob
        )
        world.units = {
            "city": city,
            "DA": da,
            "DB": db,
            "SA": sa,
            "SB": sb,
            "OA": oa,
            "OB": ob,
            "A1": a1,
            "A2": a2,
            "B1": b1,
        }
        for tag, unit in (("A1", a1), ("A2", a2), ("B1", b1)):
            world.records[tag] = _community_records(ctx, unit, tag)
            world.records[tag]["events"] = _event_with_image(node, ctx, tag)
        # Where each role's account sits: the analysts at their level, everyone else at A1.
        bound = {
            "admin": city,
            "city_analyst": city,
            "district_analyst": da,
            "station_analyst": sa,
            "officer": oa,
        }
        now = utcnow()
        for role in ROLE_CODES:
            unit = bound.get(role, a1)
            person_id = world.records["A1"]["people"] if role == "resident" else None
            user = auth_service.create_user(
                s,
                username=f"{prefix}-{role}",
                display_name=role,
                password=secrets.token_urlsafe(12),
                role_code=role,
                org_unit_id=unit.id,
                person_id=person_id,
            )
            token, login = auth_service.start_session(s, user, now, 12, "127.0.0.1")
            world.accounts[role] = Account(
                user.username, role, token, login.csrf_token, user.id, person_id
            )
        world.records["A1"]["alerts"] = _alert(s, a1.id)
        # An officer of district B: holds the permissions, but A's records are out of scope.
        outsider = auth_service.create_user(
            s,
            username=f"{prefix}-outsider",
            display_name="outsider",
            password=secrets.token_urlsafe(12),
            role_code="officer",
            org_unit_id=ob.id,
        )
        token, login = auth_service.start_session(s, outsider, now, 12, "127.0.0.1")
        world.accounts["outsider"] = Account(
            outsider.username, "officer", token, login.csrf_token, outsider.id
        )
    return world
