"""Turning console form posts into schema input, and select options for references."""

from __future__ import annotations

import datetime as dt
from enum import Enum
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from starlette.datastructures import FormData

from anju.core.context import Ctx
from anju.core.scope import communities_in_scope, restrict
from anju.org.models import Grid, OrgUnit
from anju.registry.models import Building, BuildingUnit, House, ParkingSpace, Person, Tag
from anju.web.resources import Input

# Sealed fields are never shown in clear on a form, so a blank one means "unchanged".
SEALED_INPUTS = frozenset({"id_number", "phone", "contact_phone"})


def parse_form(
    form: FormData, inputs: list[Input], tz: str, *, creating: bool = False
) -> dict[str, Any]:
    """Read the inputs of a form post: checkboxes become booleans, local date-times get the
    deployment's offset. A blank input clears the field on an edit; on a new record it is
    left out so the schema's default applies. A blank sealed field is left unchanged."""
    data: dict[str, Any] = {}
    for inp in inputs:
        if inp.kind == "bool":
            data[inp.name] = form.get(inp.name) in ("on", "true", "1")
            continue
        if inp.kind == "tags":
            data[inp.name] = [str(v) for v in form.getlist(inp.name) if v]
            continue
        if inp.name not in form:
            continue
        raw = str(form.get(inp.name) or "").strip()
        if raw == "":
            if not creating and inp.name not in SEALED_INPUTS:
                data[inp.name] = None
        elif inp.kind == "datetime":
            try:
                data[inp.name] = dt.datetime.fromisoformat(raw).replace(tzinfo=ZoneInfo(tz))
            except ValueError:
                data[inp.name] = raw
        else:
            data[inp.name] = raw
    return data


def form_value(obj: Any, inp: Input, tz: str) -> Any:
    """The current value of a record for an edit form."""
    if inp.kind == "tags":
        return [t.code for t in getattr(obj, "tags", [])]
    value = getattr(obj, inp.name, None)
    if inp.name == "floor" and isinstance(obj, House):
        return obj.floor.number
    if isinstance(value, dt.datetime):
        return value.astimezone(ZoneInfo(tz)).strftime("%Y-%m-%dT%H:%M")
    if isinstance(value, Enum):
        return value.value
    return value


def ref_options(ctx: Ctx, ref: str, current: Any = None) -> list[tuple[str, str]]:
    """(id, text) choices for a reference input, limited to the caller's scope.

    People and houses are too many for a select box: only the current value is listed and
    the input searches as the user types (see ``/lookup``).
    """
    session, actor = ctx.session, ctx.actor
    if ref == "community":
        stmt = (
            select(OrgUnit.id, OrgUnit.name)
            .where(OrgUnit.id.in_(communities_in_scope(actor)))
            .order_by(OrgUnit.code)
        )
        return [(str(i), n) for i, n in session.execute(stmt)]
    models: dict[str, tuple[Any, Any, Any]] = {
        "grid": (Grid, Grid.name, Grid.code),
        "building": (Building, Building.full_address, Building.address_code),
        "unit": (BuildingUnit, BuildingUnit.full_address, BuildingUnit.address_code),
        "parking": (ParkingSpace, ParkingSpace.code, ParkingSpace.code),
    }
    if ref in models:
        model, text, order = models[ref]
        stmt = restrict(select(model.id, text), model, actor).order_by(order).limit(2000)
        rows: list[tuple[str, str]] = [(str(row[0]), str(row[1])) for row in session.execute(stmt)]
        return rows
    if current in (None, ""):
        return []
    if ref == "person":
        person = session.get(Person, int(current))
        return [(str(person.id), f"{person.name} {person.id_number_masked}")] if person else []
    if ref == "house":
        house = session.get(House, int(current))
        return [(str(house.id), house.full_address)] if house else []
    return []


def lookup(ctx: Ctx, ref: str, q: str, limit: int = 20) -> list[tuple[str, str]]:
    """Search people (name, or full ID number through the keyed hash) or houses (address)."""
    from anju.registry import service as registry

    q = q.strip()
    if not q:
        return []
    if ref == "person":
        found = registry.people.find_by_id_number(ctx, q) if len(q) >= 15 else None
        if found is not None:
            return [(str(found.id), f"{found.name} {found.id_number_masked}")]
        stmt = (
            registry.people.select(ctx)
            .where(Person.name.ilike(f"%{q}%"))
            .order_by(Person.name)
            .limit(limit)
        )
        return [(str(p.id), f"{p.name} {p.id_number_masked}") for p in ctx.session.scalars(stmt)]
    if ref == "house":
        houses = (
            registry.houses.select(ctx)
            .where(House.full_address.ilike(f"%{q}%"))
            .order_by(House.address_code)
            .limit(limit)
        )
        return [(str(h.id), h.full_address) for h in ctx.session.scalars(houses)]
    return []


def tag_choices(ctx: Ctx) -> list[Tag]:
    stmt = select(Tag).order_by(Tag.police_only, Tag.code)
    if not ctx.actor.police:
        stmt = stmt.where(Tag.police_only.is_(False))
    return list(ctx.session.scalars(stmt))


def community_codes(ctx: Ctx) -> list[tuple[str, str]]:
    """(code, name) of the communities in scope, for inputs that take a community code."""
    stmt = (
        select(OrgUnit.code, OrgUnit.name)
        .where(OrgUnit.id.in_(communities_in_scope(ctx.actor)))
        .order_by(OrgUnit.code)
    )
    return [(c, n) for c, n in ctx.session.execute(stmt)]


def police_tag_codes(ctx: Ctx) -> set[str]:
    return set(ctx.session.scalars(select(Tag.code).where(Tag.police_only.is_(True))))
