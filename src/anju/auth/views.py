"""Console pages for accounts and roles (账号与角色), within the administrator's own area."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import select

from anju.audit import service as audit
from anju.auth import service as auth_service
from anju.auth.defaults import PERMISSIONS
from anju.auth.models import Role, User
from anju.core.context import Ctx
from anju.core.db import utcnow
from anju.core.errors import NotFound, PermissionDenied, ValidationFailed
from anju.core.scope import org_units_in_scope
from anju.org.models import OrgUnit
from anju.registry.models import Person
from anju.web.deps import ConsoleCtx, CsrfDep
from anju.web.templating import render

router = APIRouter(include_in_schema=False)


def _users_in_scope(ctx: Ctx) -> list[User]:
    stmt = select(User).join(OrgUnit, OrgUnit.id == User.org_unit_id).order_by(User.username)
    if ctx.actor.org_path != "/":
        stmt = stmt.where(OrgUnit.path.startswith(ctx.actor.org_path, autoescape=True))
    return list(ctx.session.scalars(stmt))


def _user_in_scope(ctx: Ctx, user_id: int) -> User:
    for user in _users_in_scope(ctx):
        if user.id == user_id:
            return user
    raise NotFound(f"user {user_id}")


def grantable_roles(ctx: Ctx) -> list[Role]:
    """Roles the actor may hand out: none that holds a permission the actor lacks."""
    roles = ctx.session.scalars(select(Role).order_by(Role.code)).all()
    return [r for r in roles if all(ctx.actor.can(p) for p in r.permissions)]


def _need(ctx: Ctx, permission: str) -> None:
    if not ctx.actor.can(permission):
        raise PermissionDenied(permission)


@router.get("/admin/users", response_class=HTMLResponse)
def users_page(request: Request, ctx: ConsoleCtx) -> Response:
    _need(ctx, "user.manage")
    return render(
        request,
        "admin/users.html",
        users=_users_in_scope(ctx),
        roles=grantable_roles(ctx),
        units=ctx.session.scalars(org_units_in_scope(ctx.actor).order_by(OrgUnit.path)).all(),
        created=None,
        errors={},
    )


@router.post("/admin/users", dependencies=[CsrfDep], response_class=HTMLResponse)
async def create_user(request: Request, ctx: ConsoleCtx) -> Response:
    """Create an account in the actor's area; the first password is shown once."""
    _need(ctx, "user.manage")
    form = await request.form()
    username = str(form.get("username") or "").strip()
    role_code = str(form.get("role_code") or "")
    unit_id = int(str(form.get("org_unit_id") or 0) or 0)
    person_raw = str(form.get("person_id") or "").strip()
    password = auth_service.new_password()
    try:
        if (
            not username
            or not username.replace("_", "").replace("-", "").replace(".", "").isalnum()
        ):
            raise ValidationFailed.one(
                "username", "user name may hold letters, digits, '.', '-' and '_'"
            )
        if role_code not in {r.code for r in grantable_roles(ctx)}:
            raise ValidationFailed.one("role_code", "you may not grant this role")
        unit = ctx.session.scalar(org_units_in_scope(ctx.actor).where(OrgUnit.id == unit_id))
        if unit is None:
            raise ValidationFailed.one("org_unit_id", "choose an organisation in your area")
        person_id = int(person_raw) if person_raw.isdigit() else None
        if role_code == "resident":
            person = ctx.session.get(Person, person_id) if person_id else None
            if person is None or not unit.path or not _person_under(ctx, person, unit):
                raise ValidationFailed.one(
                    "person_id", "a resident account needs the person's record in that community"
                )
        auth_service.create_user(
            ctx.session,
            username=username,
            display_name=str(form.get("display_name") or username).strip(),
            password=password,
            role_code=role_code,
            org_unit_id=unit.id,
            person_id=person_id,
            must_change_password=True,
        )
    except ValidationFailed as exc:
        ctx.session.rollback()
        errors = {e.field: e.message for e in exc.errors}
        return render(
            request,
            "admin/users.html",
            status_code=422,
            users=_users_in_scope(ctx),
            roles=grantable_roles(ctx),
            units=ctx.session.scalars(org_units_in_scope(ctx.actor).order_by(OrgUnit.path)).all(),
            created=None,
            errors=errors,
            values=dict(form),
        )
    return render(
        request,
        "admin/users.html",
        users=_users_in_scope(ctx),
        roles=grantable_roles(ctx),
        units=ctx.session.scalars(org_units_in_scope(ctx.actor).order_by(OrgUnit.path)).all(),
        created=(username, password),
        errors={},
    )


def _person_under(ctx: Ctx, person: Person, unit: OrgUnit) -> bool:
    community = ctx.session.get(OrgUnit, person.community_id)
    return community is not None and community.path.startswith(unit.path)


@router.post("/admin/users/{user_id}/active", dependencies=[CsrfDep])
async def toggle_active(request: Request, ctx: ConsoleCtx, user_id: int) -> Response:
    """Disable or re-enable an account; disabling ends its sessions."""
    _need(ctx, "user.manage")
    user = _user_in_scope(ctx, user_id)
    if user.id == ctx.actor.user_id:
        raise PermissionDenied("cannot disable yourself")
    user.active = not user.active
    if not user.active:
        auth_service.end_sessions(ctx.session, user, utcnow())
    return users_page(request, ctx)


@router.post(
    "/admin/users/{user_id}/reset-password", dependencies=[CsrfDep], response_class=HTMLResponse
)
async def reset_password(request: Request, ctx: ConsoleCtx, user_id: int) -> Response:
    """Give an account a new one-time password, to be changed at the next sign-in."""
    _need(ctx, "user.manage")
    user = _user_in_scope(ctx, user_id)
    password = auth_service.new_password()
    user.password_hash = auth_service.hash_password(password)
    user.must_change_password = True
    auth_service.end_sessions(ctx.session, user, utcnow())
    audit.record(ctx.session, "password.reset", entity="users", entity_id=user.id)
    return render(
        request,
        "admin/users.html",
        users=_users_in_scope(ctx),
        roles=grantable_roles(ctx),
        units=ctx.session.scalars(org_units_in_scope(ctx.actor).order_by(OrgUnit.path)).all(),
        created=(user.username, password),
        errors={},
    )


@router.get("/admin/roles", response_class=HTMLResponse)
def roles_page(request: Request, ctx: ConsoleCtx) -> Response:
    _need(ctx, "role.manage")
    roles = ctx.session.scalars(select(Role).order_by(Role.code)).all()
    return render(request, "admin/roles.html", roles=roles, permissions=PERMISSIONS)


@router.post("/admin/roles/{code}", dependencies=[CsrfDep])
async def update_role(request: Request, ctx: ConsoleCtx, code: str) -> Response:
    """Set a role's permissions (the change is audited with before and after)."""
    _need(ctx, "role.manage")
    role = ctx.session.get(Role, code)
    if role is None:
        raise NotFound(code)
    if "*" in role.permissions:
        raise PermissionDenied("the administrator role keeps every permission")
    form = await request.form()
    wanted = sorted({str(p) for p in form.getlist("permissions")} & set(PERMISSIONS))
    if not all(ctx.actor.can(p) for p in wanted):
        raise PermissionDenied("cannot grant a permission you do not hold")
    role.permissions = wanted
    return roles_page(request, ctx)
