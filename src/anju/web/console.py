"""Console pages: sign-in, dashboard, and list/detail/create/edit for every registry entity."""

from __future__ import annotations

import logging
import secrets
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError
from sqlalchemy import select

from anju.audit import service as audit
from anju.auth import service as auth_service
from anju.auth import throttle
from anju.core.errors import FieldError, NotFound, PermissionDenied, ValidationFailed, field_errors
from anju.devices.models import Device
from anju.events import service as events
from anju.events import views as event_views
from anju.events.api import NOT_NEWS
from anju.registry import schemas
from anju.registry import service as registry
from anju.registry.models import House, Person, PersonTag, Residency
from anju.web import forms, signin
from anju.web.deps import (
    SESSION_COOKIE,
    ClockDep,
    ConsoleCtx,
    CsrfDep,
    LoginCsrfDep,
    NodeDep,
    SessionDep,
    client_ip,
)
from anju.web.i18n import LANG_COOKIE, LANGUAGES
from anju.web.resources import RESOURCES, Resource, attr_path
from anju.web.templating import render

log = logging.getLogger(__name__)

router = APIRouter(include_in_schema=False)

# Where "/" sends an account that has no dashboard, in order of preference.
START_PAGES = (
    ("/me", "self.view"),
    ("/people", "person.view"),
    ("/houses", "house.view"),
    ("/vehicles", "vehicle.view"),
    ("/devices", "device.view"),
)


# Events listed on the dashboard's live card when it opens (the browser keeps up to 30).
LIVE_FEED_SIZE = 10


def _secure(request: Request) -> bool:
    forced = request.app.state.node.settings.secure_cookies
    return forced if forced is not None else request.url.scheme == "https"


def _safe_next(target: str | None) -> str:
    """Only same-site paths are followed after sign-in (no open redirects)."""
    if target and target.startswith("/") and not target.startswith("//"):
        return target
    return "/"


# --- sign-in ------------------------------------------------------------------------------


@router.get("/login", response_class=HTMLResponse)
def login_page(request: Request, next: str = "/") -> Response:
    token = request.cookies.get("anju_login_csrf") or secrets.token_urlsafe(24)
    request.cookies["anju_login_csrf"] = token
    response = render(request, "login.html", next=_safe_next(next), error=None)
    response.set_cookie(
        "anju_login_csrf", token, httponly=True, samesite="strict", secure=_secure(request)
    )
    return response


@router.post("/login", dependencies=[LoginCsrfDep])
def login(
    request: Request,
    node: NodeDep,
    session: SessionDep,
    clock: ClockDep,
    username: str = Form(""),
    password: str = Form(""),
    next: str = Form("/"),
) -> Response:
    """Check the password (unless throttled); open a session, or ask for the second factor."""
    now = clock()
    typed = username.strip()
    name = signin.attempt_name(session, node, typed)
    locked = signin.refuse_if_locked(
        request, session, node, name, now, "login.html", next=_safe_next(next), error=None
    )
    if locked is not None:
        return locked
    user = auth_service.authenticate(session, typed, password)
    if user is None:
        throttle.record_attempt(session, name, client_ip(request), False, now)
        signin.audit_failure(session, name, "password")
        log.warning(
            "failed sign-in for account %s from %s",
            signin.shown_name(name, typed),
            client_ip(request) or "?",
        )
        return render(
            request,
            "login.html",
            status_code=401,
            next=_safe_next(next),
            error="Wrong user name or password",
        )
    if user.totp_enabled:
        return signin.ask_for_code(request, node, user, now, next)
    return signin.open_session(request, session, node, user, now, next)


@router.post("/logout", dependencies=[CsrfDep])
def logout(request: Request, session: SessionDep, clock: ClockDep) -> Response:
    token = request.cookies.get(SESSION_COOKIE)
    if token:
        auth_service.end_session(session, token, clock())
    signed = getattr(request.state, "signed", None)
    if signed is not None:
        audit.record(
            session, "logout", entity="users", entity_id=signed.user.id, actor=signed.actor
        )
        log.info("account %s signed out", signed.user.username)
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE)
    return response


@router.get("/lang/{code}")
def set_language(request: Request, code: str) -> Response:
    back = _safe_next(request.headers.get("referer", "/").split(request.url.netloc, 1)[-1])
    response = RedirectResponse(back, status_code=303)
    if code in LANGUAGES:
        response.set_cookie(LANG_COOKIE, code, max_age=365 * 86400, samesite="lax")
    return response


# --- dashboard ----------------------------------------------------------------------------


@router.get("/", response_class=HTMLResponse)
def dashboard(request: Request, ctx: ConsoleCtx, community_id: int | None = None) -> Response:
    if not ctx.actor.can("stats.view"):
        # No dashboard for this role: open the first page it can use instead of an error.
        for path, permission in START_PAGES:
            if ctx.actor.can(permission):
                return RedirectResponse(path, status_code=303)
        raise PermissionDenied("stats.view")
    communities = forms.ref_options(ctx, "community")
    if community_id is not None and str(community_id) not in {c for c, _ in communities}:
        community_id = None
    stats = registry.stats(ctx, community_id=community_id)
    latest: list[dict[str, Any]] = []
    if ctx.actor.can("event.view"):
        # What the live feed would have shown: no heartbeats, and no count of everything.
        latest, _ = events.search(
            ctx,
            events.EventFilter(community_id=community_id, exclude_kinds=NOT_NEWS),
            1,
            LIVE_FEED_SIZE,
            count=False,
        )
    return render(
        request,
        "dashboard.html",
        stats=stats,
        communities=communities,
        community_id=community_id,
        latest=latest,
        kind_labels=event_views.KIND_LABELS,
    )


# --- generic resource pages ---------------------------------------------------------------


def _require(ctx: Any, resource: Resource, edit: bool = False) -> None:
    if resource.police_only and not ctx.actor.police:
        raise NotFound(resource.name)
    perm = resource.edit_perm if edit else resource.view_perm
    if not ctx.actor.can(perm):
        raise PermissionDenied(perm)


def _list_query(ctx: Any, resource: Resource, params: dict[str, str]) -> Any:
    stmt = resource.service.select(ctx)
    q = params.get("q", "").strip()
    if q and resource.model is Person and len(q) >= 15:
        found = registry.people.find_by_id_number(ctx, q)
        stmt = stmt.where(Person.id == (found.id if found else -1))
    elif q and resource.search is not None:
        stmt = stmt.where(resource.search(q))
    for flt in resource.filters:
        value = params.get(flt.name, "")
        if flt.kind == "presence":
            # 实有人口 means the people here now: those who left are shown only when asked for
            # (a search by full ID number finds the person either way).
            if len(q) >= 15:
                continue
            if value in ("", "current"):
                stmt = stmt.where(Person.leaving_date.is_(None))
            elif value == "left":
                stmt = stmt.where(Person.leaving_date.is_not(None))
            continue
        if not value:
            continue
        if flt.kind == "tag":
            if not ctx.actor.police and value in forms.police_tag_codes(ctx):
                continue  # a property role cannot probe who carries a police-only tag
            stmt = stmt.where(
                Person.id.in_(select(PersonTag.person_id).where(PersonTag.tag_code == value))
            )
        elif flt.kind == "ref":
            if value.isdigit():
                stmt = stmt.where(getattr(resource.model, flt.name) == int(value))
        elif flt.choices is not None and value in {m.value for m in flt.choices}:
            stmt = stmt.where(getattr(resource.model, flt.name) == value)
    return stmt.order_by(*resource.order_by()).options(*resource.options())


def _form_context(
    ctx: Any, resource: Resource, inputs: list[Any], values: dict[str, Any]
) -> dict[str, Any]:
    options = {
        i.name: forms.ref_options(ctx, i.ref, values.get(i.name))
        for i in inputs
        if i.kind == "ref" and i.ref
    }
    return {
        "inputs": inputs,
        "values": values,
        "options": options,
        "tags": forms.tag_choices(ctx),
        "reasons": schemas.REASON_CODES,
    }


def _register(resource: Resource) -> None:
    base = f"/{resource.name}"

    @router.get(base, response_class=HTMLResponse, name=f"{resource.name}_list")
    def list_page(request: Request, ctx: ConsoleCtx, page: int = 1) -> Response:
        _require(ctx, resource)
        params = {k: v for k, v in request.query_params.items() if k != "page"}
        stmt = _list_query(ctx, resource, params)
        result = resource.service.page(ctx, stmt, page, request.app.state.node.settings.page_size)
        filter_inputs = [f for f in resource.filters if f.kind != "tag"]
        context: dict[str, Any] = dict(
            resource=resource,
            page=result,
            params=params,
            query=urlencode(params),
            filter_options={
                f.name: forms.ref_options(ctx, f.ref)
                for f in filter_inputs
                if f.kind == "ref" and f.ref
            },
            tags=forms.tag_choices(ctx),
            attr=attr_path,
            can_edit=ctx.actor.can(resource.edit_perm),
        )
        template = (
            "registry/_table.html"
            if request.headers.get("hx-target") == "results"
            else "registry/list.html"
        )
        return render(request, template, **context)

    @router.get(base + "/new", response_class=HTMLResponse, name=f"{resource.name}_new")
    def new_page(request: Request, ctx: ConsoleCtx) -> Response:
        _require(ctx, resource, edit=True)
        values = dict(request.query_params)
        return render(
            request,
            "registry/form.html",
            resource=resource,
            obj=None,
            errors={},
            **_form_context(ctx, resource, list(resource.form), values),
        )

    @router.post(base + "/new", dependencies=[CsrfDep], name=f"{resource.name}_create")
    async def create(request: Request, ctx: ConsoleCtx) -> Response:
        _require(ctx, resource, edit=True)
        form = await request.form()
        tz = request.app.state.node.settings.timezone
        values = forms.parse_form(form, list(resource.form), tz, creating=True)
        try:
            data = resource.create_schema.model_validate(values)
            obj = resource.service.create(ctx, data)
        except ValidationError as exc:
            return _form_errors(request, ctx, resource, None, values, field_errors(exc))
        except ValidationFailed as exc:
            ctx.session.rollback()
            return _form_errors(request, ctx, resource, None, values, exc.errors)
        return RedirectResponse(f"{base}/{obj.id}", status_code=303)

    @router.get(base + "/{record_id}", response_class=HTMLResponse, name=f"{resource.name}_detail")
    def detail_page(request: Request, ctx: ConsoleCtx, record_id: int) -> Response:
        _require(ctx, resource)
        obj = resource.service.get(ctx, record_id)
        if isinstance(obj, Person):
            audit.record(
                ctx.session,
                "person.view",
                entity="persons",
                entity_id=obj.id,
                community_id=obj.community_id,
            )
        extra = _detail_extra(ctx, resource, obj)
        return render(
            request,
            resource.template,
            resource=resource,
            obj=obj,
            attr=attr_path,
            can_edit=ctx.actor.can(resource.edit_perm),
            **extra,
        )

    @router.get(
        base + "/{record_id}/edit", response_class=HTMLResponse, name=f"{resource.name}_edit"
    )
    def edit_page(request: Request, ctx: ConsoleCtx, record_id: int) -> Response:
        _require(ctx, resource, edit=True)
        obj = resource.service.get(ctx, record_id)
        tz = request.app.state.node.settings.timezone
        inputs = list(resource.update_fields)
        values = {i.name: forms.form_value(obj, i, tz) for i in inputs}
        return render(
            request,
            "registry/form.html",
            resource=resource,
            obj=obj,
            errors={},
            **_form_context(ctx, resource, inputs, values),
        )

    @router.post(base + "/{record_id}/edit", dependencies=[CsrfDep], name=f"{resource.name}_update")
    async def update(request: Request, ctx: ConsoleCtx, record_id: int) -> Response:
        _require(ctx, resource, edit=True)
        obj = resource.service.get(ctx, record_id)
        form = await request.form()
        tz = request.app.state.node.settings.timezone
        values = forms.parse_form(form, list(resource.update_fields), tz)
        try:
            data = resource.update_schema.model_validate(values)
            resource.service.update(ctx, obj, data)
        except ValidationError as exc:
            return _form_errors(request, ctx, resource, obj, values, field_errors(exc))
        except ValidationFailed as exc:
            ctx.session.rollback()
            obj = resource.service.get(ctx, record_id)
            return _form_errors(request, ctx, resource, obj, values, exc.errors)
        return RedirectResponse(f"{base}/{record_id}", status_code=303)

    if resource.deletable:

        @router.post(
            base + "/{record_id}/delete", dependencies=[CsrfDep], name=f"{resource.name}_delete"
        )
        def delete(request: Request, ctx: ConsoleCtx, record_id: int) -> Response:
            _require(ctx, resource, edit=True)
            obj = resource.service.get(ctx, record_id)
            try:
                resource.service.delete(ctx, obj)
            except ValidationFailed as exc:
                ctx.session.rollback()
                obj = resource.service.get(ctx, record_id)
                extra = _detail_extra(ctx, resource, obj)
                return render(
                    request,
                    resource.template,
                    status_code=409,
                    resource=resource,
                    obj=obj,
                    attr=attr_path,
                    can_edit=True,
                    error=exc.errors[0].message,
                    **extra,
                )
            return RedirectResponse(base, status_code=303)

    if resource.verifiable:

        @router.post(
            base + "/{record_id}/verify", dependencies=[CsrfDep], name=f"{resource.name}_verify"
        )
        def verify(request: Request, ctx: ConsoleCtx, record_id: int) -> Response:
            _require(ctx, resource)
            if not ctx.actor.can("registry.verify"):
                raise PermissionDenied("registry.verify")
            registry.verify(ctx, resource.service.get(ctx, record_id))
            return RedirectResponse(f"{base}/{record_id}", status_code=303)


def _form_errors(
    request: Request,
    ctx: Any,
    resource: Resource,
    obj: Any,
    values: dict[str, Any],
    errors: list[FieldError],
) -> Response:
    inputs = list(resource.form if obj is None else resource.update_fields)
    names = {i.name for i in inputs}
    by_field: dict[str, list[str]] = {}
    for err in errors:
        by_field.setdefault(err.field if err.field in names else "__all__", []).append(err.message)
    return render(
        request,
        "registry/form.html",
        status_code=422,
        resource=resource,
        obj=obj,
        errors=by_field,
        **_form_context(ctx, resource, inputs, values),
    )


def _looked_names(ctx: Any, entries: Any) -> dict[int, str]:
    """Who looked, as people know them: "李警官 · 社区民警 · 科苑社区警务室", not a user name."""
    from anju.auth.models import User

    ids = {e.actor_user_id for e in entries if e.actor_user_id is not None}
    if not ids:
        return {}
    users = ctx.session.scalars(select(User).where(User.id.in_(ids)))
    return {u.id: f"{u.display_name} · {u.role.name} · {u.org_unit.name}" for u in users}


def _detail_extra(ctx: Any, resource: Resource, obj: Any) -> dict[str, Any]:
    """Related records shown on a detail page: a house's residents, a person's homes."""
    if isinstance(obj, Device):
        return event_views.device_extra(ctx, obj)
    if isinstance(obj, House):
        rows = ctx.session.scalars(
            select(Residency)
            .where(Residency.house_id == obj.id)
            .order_by(Residency.end_date.is_not(None), Residency.start_date.desc())
        ).all()
        return {"residencies": rows}
    if isinstance(obj, Person):
        rows = ctx.session.scalars(
            select(Residency)
            .where(Residency.person_id == obj.id)
            .order_by(Residency.end_date.is_not(None), Residency.start_date.desc())
        ).all()
        visible_tags = [t for t in obj.tags if ctx.actor.police or not t.police_only]
        looked = (
            audit.who_looked(ctx.session, "persons", obj.id)
            if ctx.actor.can("person.view_sensitive") or ctx.actor.can("audit.view")
            else None
        )
        return {
            "residencies": rows,
            "visible_tags": visible_tags,
            "looked": looked,
            "looked_names": _looked_names(ctx, looked or []),
        }
    return {}


for _resource in RESOURCES:
    _register(_resource)


@router.post("/residencies/{record_id}/end", dependencies=[CsrfDep], name="residencies_end")
async def end_residency(request: Request, ctx: ConsoleCtx, record_id: int) -> Response:
    """人走撤销 — record that a person left; the residency stays as history."""
    from anju.web.resources import BY_NAME

    resource = BY_NAME["residencies"]
    _require(ctx, resource, edit=True)
    residency = registry.residencies.get(ctx, record_id)
    form = await request.form()
    try:
        data = schemas.ResidencyEnd.model_validate(
            {"end_date": form.get("end_date") or None, "reason": form.get("reason") or None}
        )
        registry.residencies.end(ctx, residency, data)
    except (ValidationError, ValidationFailed) as exc:
        errors = field_errors(exc) if isinstance(exc, ValidationError) else exc.errors
        ctx.session.rollback()
        residency = registry.residencies.get(ctx, record_id)
        return render(
            request,
            resource.template,
            status_code=422,
            resource=resource,
            obj=residency,
            attr=attr_path,
            can_edit=True,
            error="; ".join(e.message for e in errors),
        )
    return RedirectResponse(f"/residencies/{record_id}", status_code=303)


@router.post("/people/{record_id}/reveal", dependencies=[CsrfDep], name="people_reveal")
async def reveal_person(request: Request, ctx: ConsoleCtx, record_id: int) -> Response:
    """Show the full ID number and/or phone, with a reason; the reveal is audited."""
    from anju.web.resources import BY_NAME

    resource = BY_NAME["people"]
    _require(ctx, resource)
    person = registry.people.get(ctx, record_id)
    form = await request.form()
    fields = [str(f) for f in form.getlist("fields")]
    try:
        revealed = registry.people.reveal_for(ctx, person, fields, str(form.get("reason") or ""))
    except ValidationFailed as exc:
        extra = _detail_extra(ctx, resource, person)
        return render(
            request,
            resource.template,
            status_code=422,
            resource=resource,
            obj=person,
            attr=attr_path,
            can_edit=ctx.actor.can(resource.edit_perm),
            error=exc.errors[0].message,
            **extra,
        )
    extra = _detail_extra(ctx, resource, person)
    return render(
        request,
        resource.template,
        resource=resource,
        obj=person,
        attr=attr_path,
        can_edit=ctx.actor.can(resource.edit_perm),
        revealed=revealed,
        **extra,
    )


@router.get("/me", response_class=HTMLResponse, name="me")
def my_household(request: Request, ctx: ConsoleCtx) -> Response:
    """A resident's own page: their record (masked), household, and who looked at it."""
    if not ctx.actor.can("self.view"):
        raise PermissionDenied("self.view")
    if ctx.actor.person_id is None:
        raise NotFound("person")
    person = ctx.session.get(Person, ctx.actor.person_id)
    if person is None:
        raise NotFound("person")
    homes = ctx.session.scalars(
        select(Residency).where(Residency.person_id == person.id, Residency.end_date.is_(None))
    ).all()
    household = {
        home.house_id: ctx.session.scalars(
            select(Residency)
            .where(Residency.house_id == home.house_id, Residency.end_date.is_(None))
            .order_by(Residency.start_date)
        ).all()
        for home in homes
    }
    looked = audit.who_looked(ctx.session, "persons", person.id)
    from anju.events import service as events
    from anju.events.views import KIND_LABELS

    # Their own comings and goings (access events tied to them), newest first.
    passages, _ = events.search(ctx, events.EventFilter(person_id=person.id), 1, 30)
    return render(
        request,
        "registry/me.html",
        person=person,
        homes=homes,
        household=household,
        looked=looked,
        looked_names=_looked_names(ctx, looked),
        passages=passages,
        kind_labels=KIND_LABELS,
    )


@router.get("/lookup/{ref}", response_class=HTMLResponse)
def lookup(request: Request, ctx: ConsoleCtx, ref: str, q: str = "") -> Response:
    """Options for a person/house input, searched as the user types."""
    if ref not in ("person", "house"):
        raise NotFound(ref)
    if not ctx.actor.can(f"{ref}.view"):
        raise PermissionDenied(f"{ref}.view")
    return render(request, "registry/_options.html", options=forms.lookup(ctx, ref, q))
