"""Small builders of registry records for tests (go through the real services)."""

from __future__ import annotations

import itertools
from dataclasses import dataclass

from anju.core.context import Ctx
from anju.org import service as org_service
from anju.org.models import Level, OrgUnit
from anju.registry import schemas
from anju.registry import service as registry
from anju.registry.models import Building, BuildingUnit, House

_seq = itertools.count(1)

# Valid resident ID numbers (checksums computed by stdnum in ``resident_id_for``).
VALID_ID = "360426199101010071"
VALID_ID_2 = "120103198806018241"


def resident_id_for(region: str, birth: str, serial: int) -> str:
    """A valid resident ID number for a region code, a yyyymmdd birth date and a serial."""
    from stdnum.cn import ric

    from tests.conftest import SENSITIVE_VALUES

    body = f"{region}{birth}{serial:03d}"
    number = body + ric.calc_check_digit(body + "0")
    SENSITIVE_VALUES.add(number)
    return number


@dataclass
class Tree:
    city: OrgUnit
    district: OrgUnit
    station: OrgUnit
    office: OrgUnit
    community: OrgUnit


def tree(ctx: Ctx, prefix: str | None = None) -> Tree:
    """City root (from init) → district → station → office → community, with unique codes."""
    n = prefix or f"T{next(_seq)}"
    city = org_service.root(ctx.session)
    assert city is not None
    district = org_service.add_unit(
        ctx.session, level=Level.DISTRICT, code=f"{n}D", name=f"{n}分局", parent=city
    )
    station = org_service.add_unit(
        ctx.session, level=Level.STATION, code=f"{n}S", name=f"{n}派出所", parent=district
    )
    office = org_service.add_unit(
        ctx.session, level=Level.OFFICE, code=f"{n}O", name=f"{n}警务室", parent=station
    )
    community = org_service.add_unit(
        ctx.session, level=Level.COMMUNITY, code=f"{n}C", name=f"{n}小区", parent=office
    )
    return Tree(city, district, station, office, community)


def house(
    ctx: Ctx,
    community: OrgUnit,
    building: str = "1",
    unit: str = "1",
    floor: int = 3,
    room: str = "302",
) -> House:
    b = (
        ctx.session.query(Building)
        .filter_by(community_id=community.id, number=building)
        .one_or_none()
    )
    if b is None:
        b = registry.buildings.create(
            ctx, schemas.BuildingCreate(community_id=community.id, number=building, floors=18)
        )
    u = ctx.session.query(BuildingUnit).filter_by(building_id=b.id, number=unit).one_or_none()
    if u is None:
        u = registry.units.create(ctx, schemas.UnitCreate(building_id=b.id, number=unit))
    return registry.houses.create(ctx, schemas.HouseCreate(unit_id=u.id, floor=floor, room=room))
