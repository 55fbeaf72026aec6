"""Registry services on a real database (SQLite and PostgreSQL)."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select, text

from anju.core.errors import NotFound, ValidationFailed
from anju.core.scope import Actor
from anju.registry import schemas
from anju.registry import service as registry
from anju.registry.models import Person, Residency
from tests import factories as f


def test_house_gets_hierarchical_address_and_floor(ctx):
    t = f.tree(ctx, "HA")
    house = f.house(ctx, t.community, building="3", unit="2", floor=5, room="502")
    assert house.address_code == "HAC-B3-U2-R502"
    assert house.full_address == "HA小区3号楼2单元502室"
    assert house.floor.number == 5
    assert house.floor.address_code == "HAC-B3-U2-F05"
    assert house.community_id == t.community.id


def test_person_sensitive_fields_are_sealed_and_findable(ctx):
    t = f.tree(ctx)
    person = registry.people.create(
        ctx,
        schemas.PersonCreate(
            community_id=t.community.id, name="张三", id_number=f.VALID_ID, phone="138 0013 8000"
        ),
    )
    assert person.id_number_masked == "3604**********0071"
    assert person.phone_masked == "138****8000"
    assert person.birth_date == dt.date(1991, 1, 1)
    assert person.sex == "male"
    # Nothing in the row holds the clear values.
    row = ctx.session.execute(text("SELECT * FROM persons WHERE id = :i"), {"i": person.id}).one()
    flat = " ".join(str(v) for v in row)
    assert f.VALID_ID not in flat and "13800138000" not in flat
    assert registry.people.find_by_id_number(ctx, f.VALID_ID.lower()).id == person.id
    assert registry.people.reveal(ctx, person, "id_number") == f.VALID_ID
    assert [p.id for p in registry.people.find_by_phone(ctx, "+8613800138000")] == [person.id]


def test_duplicate_id_number_is_refused_by_field(ctx):
    t = f.tree(ctx)
    data = schemas.PersonCreate(community_id=t.community.id, name="李四", id_number=f.VALID_ID_2)
    registry.people.create(ctx, data)
    with pytest.raises(ValidationFailed) as err:
        registry.people.create(ctx, data)
    assert err.value.errors[0].field == "id_number"


def test_residency_on_missing_house_names_the_field(ctx):
    t = f.tree(ctx)
    person = registry.people.create(
        ctx,
        schemas.PersonCreate(
            community_id=t.community.id,
            name="王五",
            id_number=f.resident_id_for("110101", "19800101", 11),
        ),
    )
    with pytest.raises(ValidationFailed) as err:
        registry.residencies.create(
            ctx,
            schemas.ResidencyCreate(
                person_id=person.id,
                house_id=999999,
                relation="tenant",
                start_date=dt.date(2026, 1, 1),
            ),
        )
    assert err.value.errors[0].field == "house_id"
    assert ctx.session.scalar(select(Residency).where(Residency.person_id == person.id)) is None


def test_ending_a_residency_keeps_history(ctx):
    t = f.tree(ctx)
    house = f.house(ctx, t.community)
    person = registry.people.create(
        ctx,
        schemas.PersonCreate(
            community_id=t.community.id,
            name="赵六",
            id_number=f.resident_id_for("110101", "19900202", 21),
        ),
    )
    res = registry.residencies.create(
        ctx,
        schemas.ResidencyCreate(
            person_id=person.id,
            house_id=house.id,
            relation="tenant",
            start_date=dt.date(2026, 1, 1),
            lease_end=dt.date(2026, 12, 31),
        ),
    )
    registry.residencies.end(
        ctx, res, schemas.ResidencyEnd(end_date=dt.date(2026, 6, 30), reason="搬离")
    )
    kept = ctx.session.get(Residency, res.id)
    assert kept is not None and kept.end_date == dt.date(2026, 6, 30) and not kept.active
    with pytest.raises(ValidationFailed):
        registry.residencies.end(ctx, res, schemas.ResidencyEnd(end_date=dt.date(2026, 7, 1)))


def test_scope_hides_other_subtrees(ctx):
    a = f.tree(ctx)
    b = f.tree(ctx)
    pa = registry.people.create(
        ctx,
        schemas.PersonCreate(
            community_id=a.community.id,
            name="甲",
            id_number=f.resident_id_for("110101", "19700101", 31),
        ),
    )
    registry.people.create(
        ctx,
        schemas.PersonCreate(
            community_id=b.community.id,
            name="乙",
            id_number=f.resident_id_for("110101", "19700101", 41),
        ),
    )
    officer = Actor(
        user_id=None, username="o", org_path=a.station.path, permissions=frozenset({"*"})
    )
    scoped = ctx.__class__(session=ctx.session, cipher=ctx.cipher, actor=officer)
    names = set(
        ctx.session.scalars(
            registry.people.select(scoped)
            .where(Person.community_id.in_([a.community.id, b.community.id]))
            .with_only_columns(Person.name)
        )
    )
    assert names == {"甲"}
    assert registry.people.get(scoped, pa.id).name == "甲"
    other = ctx.session.scalar(select(Person).where(Person.name == "乙"))
    with pytest.raises(NotFound):
        registry.people.get(scoped, other.id)
    with pytest.raises(ValidationFailed) as err:
        registry.people.create(
            scoped,
            schemas.PersonCreate(
                community_id=b.community.id,
                name="丙",
                id_number=f.resident_id_for("110101", "19700101", 51),
            ),
        )
    assert err.value.errors[0].field == "community_id"


def test_stats_rates(ctx):
    t = f.tree(ctx)
    h1 = f.house(ctx, t.community, room="101", floor=1)
    f.house(ctx, t.community, room="102", floor=1)
    registry.houses.update(ctx, h1, schemas.HouseUpdate(plate_installed=True))
    registry.verify(ctx, h1)
    s = registry.stats(ctx, community_id=t.community.id)
    assert s.houses == 2
    assert s.address_coverage.percent == 50.0
    assert s.houses_verified.done == 1
