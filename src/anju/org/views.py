"""Console pages of the organisation tree: browse it, add and rename nodes (组织机构管理)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from anju.core.context import Ctx
from anju.core.errors import NotFound, PermissionDenied, ValidationFailed
from anju.core.scope import org_units_in_scope
from anju.org import service as org_service
from anju.org.models import Level, OrgUnit
from anju.web.deps import ConsoleCtx, CsrfDep
from anju.web.templating import render

router = APIRouter(include_in_schema=False)


def _units(ctx: Ctx) -> list[OrgUnit]:
    return list(ctx.session.scalars(org_units_in_scope(ctx.actor).order_by(OrgUnit.path)))


def _unit_in_scope(ctx: Ctx, unit_id: int) -> OrgUnit:
    unit = ctx.session.scalar(org_units_in_scope(ctx.actor).where(OrgUnit.id == unit_id))
    if unit is None:
        raise NotFound(f"organisation {unit_id}")
    return unit


def _child_level(unit: OrgUnit) -> Level | None:
    levels = list(Level)
    depth = unit.level.depth
    return levels[depth + 1] if depth + 1 < len(levels) else None


@router.get("/org", response_class=HTMLResponse)
def org_tree(request: Request, ctx: ConsoleCtx) -> Response:
    """The organisation tree in the caller's scope."""
    if not ctx.actor.can("org.view"):
        raise PermissionDenied("org.view")
    return render(request, "org/tree.html", units=_units(ctx), child_level=_child_level, errors={})


@router.post("/org/{unit_id}/children", dependencies=[CsrfDep])
async def add_child(request: Request, ctx: ConsoleCtx, unit_id: int) -> Response:
    """Add a district, station, office or community under a node of one's area."""
    if not ctx.actor.can("org.manage"):
        raise PermissionDenied("org.manage")
    parent = _unit_in_scope(ctx, unit_id)
    level = _child_level(parent)
    form = await request.form()
    try:
        if level is None:
            raise ValidationFailed.one("level", "a community has no organisations below it")
        org_service.add_unit(
            ctx.session,
            level=level,
            code=str(form.get("code") or ""),
            name=str(form.get("name") or ""),
            parent=parent,
            address=str(form.get("address") or "").strip() or None,
        )
    except ValidationFailed as exc:
        ctx.session.rollback()
        errors = {unit_id: [e.message for e in exc.errors]}
        return render(
            request,
            "org/tree.html",
            status_code=422,
            units=_units(ctx),
            child_level=_child_level,
            errors=errors,
        )
    return RedirectResponse(f"/org#org-{unit_id}", status_code=303)


@router.post("/org/{unit_id}/edit", dependencies=[CsrfDep])
async def edit_unit(request: Request, ctx: ConsoleCtx, unit_id: int) -> Response:
    """Rename a node or change its address (its code stays: other systems refer to it)."""
    if not ctx.actor.can("org.manage"):
        raise PermissionDenied("org.manage")
    unit = _unit_in_scope(ctx, unit_id)
    form = await request.form()
    name = str(form.get("name") or "").strip()
    if not name:
        errors = {unit_id: ["name is empty"]}
        return render(
            request,
            "org/tree.html",
            status_code=422,
            units=_units(ctx),
            child_level=_child_level,
            errors=errors,
        )
    unit.name = name
    unit.address = str(form.get("address") or "").strip() or None
    return RedirectResponse(f"/org#org-{unit_id}", status_code=303)
