"""The community simulator: determinism, valid identifiers, believable households and rates.

Builds go through the real registry services on SQLite and PostgreSQL (the ``ctx`` fixture);
communities are small (120 residents) to keep the run fast.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import random
from typing import Any

import pytest
from sqlalchemy import func, select
from stdnum.cn import ric
from typer.testing import CliRunner

from anju.core import validation
from anju.core.errors import ValidationFailed
from anju.devices.models import Device, DeviceKind
from anju.registry import schemas
from anju.registry import service as registry
from anju.registry.models import (
    House,
    IdType,
    Incident,
    Organisation,
    Person,
    PersonCategory,
    Relation,
    Residency,
    Vehicle,
)
from anju.sim import identity
from anju.sim.community import CommunityConfig, SimReport, build_community

TODAY = dt.date(2026, 6, 1)
RESIDENTS = 120


def config(code: str, seed: int = 7, **extra: Any) -> CommunityConfig:
    return CommunityConfig(
        seed=seed, residents=RESIDENTS, code=code, name="测试花园", today=TODAY, **extra
    )


def snapshot(ctx, community_id: int) -> dict[str, list[Any]]:
    """What two builds of one seed must share, whatever the community's code."""
    people = ctx.session.scalars(
        select(Person).where(Person.community_id == community_id).order_by(Person.id)
    )
    people_rows = [
        (
            p.name,
            p.id_number_masked,
            p.phone_masked,
            p.birth_date,
            p.sex,
            p.category,
            [t.code for t in p.tags],
        )
        for p in people
    ]
    plates = ctx.session.scalars(
        select(Vehicle.plate).where(Vehicle.community_id == community_id).order_by(Vehicle.id)
    )
    houses = ctx.session.execute(
        select(House.address_code, House.use, House.area)
        .where(House.community_id == community_id)
        .order_by(House.id)
    )
    devices = ctx.session.scalars(
        select(Device.code).where(Device.community_id == community_id).order_by(Device.id)
    )
    organisations = ctx.session.execute(
        select(Organisation.name, Organisation.credit_code)
        .where(Organisation.community_id == community_id)
        .order_by(Organisation.id)
    )
    return {
        "people": people_rows,
        "plates": list(plates),
        "houses": [(code.split("-", 1)[1], use, area) for code, use, area in houses],
        "devices": [code.split("-", 1)[1] for code in devices],
        "organisations": [tuple(row) for row in organisations],
    }


def build_and_forget(ctx, cfg: CommunityConfig) -> tuple[SimReport, dict[str, list[Any]]]:
    """Build inside a savepoint, take a snapshot, roll the build back."""
    savepoint = ctx.session.begin_nested()
    report = build_community(ctx, cfg)
    taken = snapshot(ctx, report.community_id)
    savepoint.rollback()
    return report, taken


@pytest.fixture
def built(ctx) -> SimReport:
    return build_community(ctx, config("SIMT"))


def active_residencies(ctx, house_id: int) -> list[Residency]:
    stmt = select(Residency).where(Residency.house_id == house_id, Residency.end_date.is_(None))
    return list(ctx.session.scalars(stmt))


def age_on(birth: dt.date, day: dt.date) -> int:
    return identity.age_on(birth, day)


# --- determinism ---------------------------------------------------------------------------


def test_same_seed_builds_the_same_community_under_another_code(ctx):
    first_report, first = build_and_forget(ctx, config("SIMA"))
    second_report, second = build_and_forget(ctx, config("SIMB"))
    assert first_report.community_code == "SIMA" and second_report.community_code == "SIMB"
    assert first["people"] and first["plates"] and first["organisations"]
    assert first == second
    _, other = build_and_forget(ctx, config("SIMC", seed=8))
    assert [p[0] for p in other["people"]] != [p[0] for p in first["people"]]
    assert {k: v for k, v in first_report.as_dict().items() if not k.startswith("community")} == {
        k: v for k, v in second_report.as_dict().items() if not k.startswith("community")
    }


def test_a_second_build_of_one_seed_redraws_identifiers_the_database_holds(ctx):
    first = build_community(ctx, config("SIMD"))
    second = build_community(ctx, config("SIME"))
    assert second.residents == first.residents
    names = [
        list(
            ctx.session.scalars(
                select(Person.name).where(Person.community_id == r.community_id).order_by(Person.id)
            )
        )
        for r in (first, second)
    ]
    assert names[0] == names[1]
    hashes = ctx.session.scalars(
        select(Person.id_number_hash).where(
            Person.community_id.in_([first.community_id, second.community_id])
        )
    ).all()
    assert len(hashes) == len(set(hashes)) == first.people + second.people


# --- identifiers ---------------------------------------------------------------------------


def test_every_person_has_a_valid_document_matching_their_age(ctx, built):
    people = ctx.session.scalars(
        select(Person).where(Person.community_id == built.community_id)
    ).all()
    assert len(people) == built.people
    living = set(
        ctx.session.scalars(
            select(Residency.person_id).where(
                Residency.community_id == built.community_id, Residency.end_date.is_(None)
            )
        )
    )
    assert len(living) == built.residents
    for person in people:
        number = registry.people.reveal(ctx, person, "id_number")
        assert number is not None
        if person.id_type is IdType.RESIDENT_ID:
            assert ric.is_valid(number), number
            assert validation.resident_id(number).birth_date == person.birth_date
            assert ric.get_birth_date(number) == person.birth_date
            assert (int(number[16]) % 2 == 1) == (person.sex == "male")
            assert person.category is not PersonCategory.OVERSEAS
        else:
            assert person.id_type is IdType.PASSPORT
            assert person.category is PersonCategory.OVERSEAS and person.birth_date
        age = age_on(person.birth_date, TODAY)
        codes = {t.code for t in person.tags}
        if person.id in living:
            assert ("child" in codes) == (age < 18)
            assert ("elderly" in codes) == (age >= 60)
        else:  # owners living elsewhere and people who left are adults, untagged
            assert age >= 18 and not codes
        phone = registry.people.reveal(ctx, person, "phone")
        if phone is not None:
            assert validation.phone(phone) == phone and len(phone) == 11
            assert age >= 12
    assert built.overseas >= 2
    assert built.key_persons >= 2 and built.volunteers >= 3


def test_plates_and_credit_codes_are_valid(ctx, built):
    vehicles = ctx.session.scalars(
        select(Vehicle).where(Vehicle.community_id == built.community_id)
    ).all()
    assert len(vehicles) == built.vehicles > 0
    for vehicle in vehicles:
        plate, kind = validation.plate(vehicle.plate)
        assert plate == vehicle.plate and kind == vehicle.plate_kind
        assert "-" not in plate
    organisations = ctx.session.scalars(
        select(Organisation).where(Organisation.community_id == built.community_id)
    ).all()
    kinds = {o.kind for o in organisations}
    assert {"kindergarten", "property", "shop"} <= kinds
    for organisation in organisations:
        assert organisation.credit_code is not None
        assert validation.credit_code(organisation.credit_code) == organisation.credit_code


def test_identifier_helpers_cover_every_birth_year():
    rng = random.Random(1)
    for year in range(1925, 2026):
        birth = dt.date(year, rng.randint(1, 12), rng.randint(1, 28))
        for pool in (identity.LOCAL_REGIONS, identity.OTHER_REGIONS):
            region = identity.pick_region(rng, pool, year)
            number = identity.resident_id(rng, region, birth, male=year % 2 == 0)
            assert validation.resident_id(number).birth_date == birth
    for _ in range(300):
        assert validation.plate(identity.ordinary_plate(rng, "粤B"))[1] == "ordinary"
        assert validation.plate(identity.new_energy_plate(rng, "湘A"))[1] == "new_energy"
        code = identity.credit_code(rng, "91", "440300")
        assert validation.credit_code(code) == code
    assert identity.birth_date_for_age(rng, TODAY, 0) <= TODAY - dt.timedelta(days=30)
    birth = identity.birth_date_for_age(rng, dt.date(2028, 2, 29), 70)
    assert identity.age_on(birth, dt.date(2028, 2, 29)) == 70


# --- households ----------------------------------------------------------------------------


def test_elderly_living_alone_are_old_and_alone_with_sensors(ctx, built):
    alone = ctx.session.scalars(
        select(Person).where(
            Person.community_id == built.community_id, Person.tags.any(code="elderly_alone")
        )
    ).all()
    assert len(alone) == built.elderly_alone >= 2
    for person in alone:
        assert age_on(person.birth_date, TODAY) >= 70
        homes = ctx.session.scalars(
            select(Residency).where(Residency.person_id == person.id, Residency.end_date.is_(None))
        ).all()
        assert len(homes) == 1
        house = homes[0].house
        assert [r.person_id for r in active_residencies(ctx, house.id)] == [person.id]
        assert house.owner_id == person.id
        kinds = set(
            ctx.session.scalars(
                select(Device.kind).where(
                    Device.unit_id == house.unit_id, Device.door == house.room
                )
            )
        )
        assert {DeviceKind.DOOR_MAGNET, DeviceKind.INFRARED, DeviceKind.WATER_METER} <= kinds


def test_tenants_have_leases_and_floating_people_have_reasons(ctx, built):
    tenancies = ctx.session.scalars(
        select(Residency).where(
            Residency.community_id == built.community_id,
            Residency.relation == Relation.TENANT,
            Residency.end_date.is_(None),
        )
    ).all()
    assert len(tenancies) == built.tenants > 0
    assert all(r.lease_end is not None and r.lease_end >= r.start_date for r in tenancies)
    soon = [r for r in tenancies if TODAY <= r.lease_end <= TODAY + dt.timedelta(days=30)]
    assert soon and built.leases_ending_soon >= 1
    assert all(r.house.use == "rented" for r in tenancies)
    floating = ctx.session.scalars(
        select(Person).where(
            Person.community_id == built.community_id, Person.category == PersonCategory.FLOATING
        )
    ).all()
    assert floating
    for person in floating:
        assert person.reason_code in schemas.REASON_CODES
        assert person.arrival_date is not None and person.arrival_date <= TODAY
    left = ctx.session.scalars(
        select(Residency).where(
            Residency.community_id == built.community_id, Residency.end_date.is_not(None)
        )
    ).all()
    assert len(left) == built.people_left


def test_owners_and_households_hang_together(ctx, built):
    houses = ctx.session.scalars(
        select(House).where(House.community_id == built.community_id)
    ).all()
    assert len(houses) == built.houses
    for house in houses:
        living = active_residencies(ctx, house.id)
        if house.use in ("vacant", "business"):
            assert not living
        else:
            assert living
            assert house.owner_id is not None
        if house.use == "self_occupied":
            owners = [r.person_id for r in living if r.relation is Relation.OWNER]
            assert owners == [house.owner_id]
    business = [h for h in houses if h.use == "business"]
    assert business and all(h.floor.number == 1 for h in business)


# --- the target and the rates --------------------------------------------------------------


def test_residents_target_and_rates(ctx, built):
    assert abs(built.residents - RESIDENTS) <= RESIDENTS * 0.05
    stats = registry.stats(ctx, community_id=built.community_id)
    assert abs(stats.active_residents - RESIDENTS) <= RESIDENTS * 0.05
    assert stats.people == built.people - built.people_left
    assert stats.people_verified.percent >= 95
    assert stats.houses_verified.percent >= 95
    assert stats.organisations_verified.percent >= 95
    assert 85 <= stats.address_coverage.percent <= 95
    assert stats.devices == built.devices and stats.vehicles == built.vehicles
    incidents = ctx.session.scalars(
        select(Incident).where(Incident.community_id == built.community_id)
    ).all()
    assert len(incidents) == built.incidents >= 3
    for incident in incidents:
        assert TODAY - dt.timedelta(days=90) <= incident.occurred_at.date() <= TODAY


def test_the_org_tree_is_reused_and_a_built_community_refused(ctx, built):
    from anju.org.models import OrgUnit

    other = build_community(ctx, config("SIMU", seed=9))
    assert other.residents == RESIDENTS
    offices = ctx.session.scalar(
        select(func.count()).select_from(OrgUnit).where(OrgUnit.code == "KYJWS")
    )
    assert offices == 1
    with pytest.raises(ValidationFailed) as caught:
        build_community(ctx, config("SIMT", seed=10))
    assert caught.value.errors[0].field == "code"


def test_config_is_checked():
    with pytest.raises(ValueError, match="community code"):
        CommunityConfig(code="no spaces")
    with pytest.raises(ValueError, match="plate prefix"):
        CommunityConfig(plate_prefix="XX")
    assert 15 <= CommunityConfig(residents=2000).building_count <= 19
    assert CommunityConfig(residents=2000, buildings=3).building_count == 3


# --- the command ---------------------------------------------------------------------------


def test_cli_build_json(tmp_path, monkeypatch):
    from anju.sim.cli import app

    monkeypatch.delenv("ANJU_DATABASE_URL", raising=False)
    monkeypatch.setenv("ANJU_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("ANJU_SECRET_KEY", base64.b64encode(bytes(range(32))).decode())
    monkeypatch.setenv("ANJU_ADMIN_PASSWORD", "admin-password-for-tests")
    runner = CliRunner()
    args = ["build", "--residents", "60", "--seed", "3", "--code", "CLI1", "--name", "命令行花园"]
    result = runner.invoke(app, [*args, "--today", "2026-06-01", "--json"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["community_code"] == "CLI1" and out["community_name"] == "命令行花园"
    assert abs(out["residents"] - 60) <= 3 and out["seed"] == 3 and out["today"] == "2026-06-01"
    assert out["devices"] > 0 and out["seconds"] >= 0 and "admin_password" not in out
    again = runner.invoke(app, [*args, "--json"])
    assert again.exit_code == 1
    assert "already has buildings" in again.output
