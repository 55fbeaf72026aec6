"""Console pages of the rules side: the alert models' configuration (预警模型配置) — per
organisation unit, what each model does there (inherited from above), the unit's own
overrides, their versions, how often each model failed in this process — and the
watchlists (重点人员、布控名单, police only)."""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import select

from anju.alerts import config as alert_config
from anju.alerts import watchlist
from anju.alerts.models import RulesCursor
from anju.alerts.names import MODEL_NAMES
from anju.alerts.rules import MODELS
from anju.core.context import Ctx
from anju.core.errors import NotFound, PermissionDenied, ValidationFailed
from anju.core.scope import org_units_in_scope
from anju.faces import views as face_views
from anju.org.models import OrgUnit
from anju.web.deps import ConsoleCtx, CsrfDep, NodeDep
from anju.web.templating import render

router = APIRouter(include_in_schema=False)

PERMISSION = "alert.configure"


@dataclass(frozen=True)
class ModelRow:
    """One model as the page shows it at one unit."""

    code: str
    name: str
    effective: list[tuple[str, str]]  # field, value (JSON)
    own: str  # the unit's overrides as JSON ("" when none)
    versions: list[alert_config.AlertConfig]
    failures: int


def _require(ctx: Ctx) -> None:
    if not ctx.actor.can(PERMISSION):
        raise PermissionDenied(PERMISSION)


def _unit(ctx: Ctx, unit_id: int | None) -> OrgUnit:
    """The unit asked for, or the caller's own (the top of its scope); out of scope: 404."""
    stmt = org_units_in_scope(ctx.actor).order_by(OrgUnit.path)
    if unit_id is not None:
        stmt = stmt.where(OrgUnit.id == unit_id)
    unit = ctx.session.scalars(stmt.limit(1)).first()
    if unit is None:
        raise NotFound(f"organisation {unit_id}")
    return unit


def model_failures(ctx: Ctx, node: Any) -> dict[str, int]:
    """Each model's failures since start: this process's and those ``anju worker rules``
    processes keep in ``rules_cursors``."""
    total = Counter(node.rules.failures)
    for counts in ctx.session.scalars(select(RulesCursor.failures)):
        total.update({code: int(n) for code, n in (counts or {}).items()})
    return dict(total)


def _rows(ctx: Ctx, unit: OrgUnit, failures: dict[str, int]) -> list[ModelRow]:
    effective = alert_config.effective(ctx.session, unit.id)
    rows = []
    for code in MODELS:
        versions = alert_config.versions(ctx.session, unit.id, code)[:5]
        dumped = effective[code].model_dump(mode="json")
        rows.append(
            ModelRow(
                code=code,
                name=MODEL_NAMES.get(code, code),
                effective=[(k, json.dumps(v, ensure_ascii=False)) for k, v in dumped.items()],
                own=json.dumps(versions[0].params, ensure_ascii=False) if versions else "",
                versions=versions,
                failures=failures.get(code, 0),
            )
        )
    return rows


def _page(
    request: Request, ctx: Ctx, node: Any, unit: OrgUnit, errors: dict[str, list[tuple[str, str]]],
    status_code: int = 200, drafts: dict[str, str] | None = None,
) -> Response:  # fmt: skip
    units = list(ctx.session.scalars(org_units_in_scope(ctx.actor).order_by(OrgUnit.path)))
    return render(
        request,
        "alerts/models.html",
        status_code=status_code,
        unit=unit,
        units=units,
        rows=_rows(ctx, unit, model_failures(ctx, node)),
        errors=errors,
        drafts=drafts or {},
    )


@router.get("/admin/alert-models", response_class=HTMLResponse)
def alert_models(
    request: Request, ctx: ConsoleCtx, node: NodeDep, unit_id: int | None = None
) -> Response:
    """Each model's configuration at a unit of one's area."""
    _require(ctx)
    return _page(request, ctx, node, _unit(ctx, unit_id), {})


@router.post("/admin/alert-models/{unit_id}/{code}", dependencies=[CsrfDep])
async def save_alert_model(
    request: Request, ctx: ConsoleCtx, node: NodeDep, unit_id: int, code: str
) -> Response:
    """Store the next version of a model's overrides at a unit (a JSON object)."""
    _require(ctx)
    unit = _unit(ctx, unit_id)
    if code not in MODELS:
        raise NotFound(f"alert model {code}")
    text = str((await request.form()).get("params") or "").strip() or "{}"
    try:
        try:
            params = json.loads(text)
        except ValueError:
            raise ValidationFailed.one("params", "must be a JSON object") from None
        if not isinstance(params, dict):
            raise ValidationFailed.one("params", "must be a JSON object")
        alert_config.save(ctx.session, unit.id, code, params, ctx.actor.username)
    except ValidationFailed as exc:
        ctx.session.rollback()
        errors = {code: [(e.field, e.message) for e in exc.errors]}
        return _page(request, ctx, node, unit, errors, 422, {code: text})
    node.rules.reload()  # this process applies it at once; others within a minute
    return RedirectResponse(f"/admin/alert-models?unit_id={unit.id}#model-{code}", 303)


# --- watchlists (重点人员 / 布控名单), police only --------------------------------------

WATCH_PERMISSION = "watchlist.manage"


def _require_watch(ctx: Ctx) -> None:
    if not ctx.actor.can(WATCH_PERMISSION) or not ctx.actor.police:
        raise PermissionDenied(WATCH_PERMISSION)


def _watch_page(
    request: Request, ctx: Ctx, errors: list[tuple[str, str]], status_code: int = 200
) -> Response:
    units = list(ctx.session.scalars(org_units_in_scope(ctx.actor).order_by(OrgUnit.path)))
    entries = list(
        ctx.session.scalars(
            select(watchlist.WatchEntry)
            .where(watchlist.WatchEntry.org_unit_id.in_([u.id for u in units] or [-1]))
            .order_by(watchlist.WatchEntry.id.desc())
            .limit(500)
        )
    )
    return render(
        request,
        "alerts/watchlists.html",
        status_code=status_code,
        entries=entries,
        units={u.id: u for u in units},
        lists=list(watchlist.WatchList),
        match_types=list(watchlist.MatchType),
        errors=errors,
    )


@router.get("/admin/watchlists", response_class=HTMLResponse)
def watchlists(request: Request, ctx: ConsoleCtx) -> Response:
    """Key-person and controlled-list entries of one's area (ID numbers shown as hashes)."""
    _require_watch(ctx)
    return _watch_page(request, ctx, [])


@router.post("/admin/watchlists", dependencies=[CsrfDep])
async def add_watch_entry(request: Request, ctx: ConsoleCtx, node: NodeDep) -> Response:
    """Put a person, card, plate (or plate prefix) or MAC on a list of one's area."""
    _require_watch(ctx)
    form = await request.form()
    try:
        unit = _unit(ctx, _int(form.get("org_unit_id"), "org_unit_id"))
        expires = str(form.get("expires_on") or "").strip()
        entry = watchlist.add_entry(
            ctx.session,
            org_unit_id=unit.id,
            list_kind=_choice(watchlist.WatchList, form.get("list_kind"), "list_kind"),
            category=str(form.get("category") or ""),
            reason=str(form.get("reason") or ""),
            match_type=_choice(watchlist.MatchType, form.get("match_type"), "match_type"),
            value=str(form.get("value") or ""),
            cipher=ctx.cipher,
            owner_id=ctx.actor.user_id,
            expires_at=_expiry(expires, ctx.timezone) if expires else None,
        )
        # A face entry's photos: enrolled with the entry, or the entry is not added either.
        photos = await face_views.photos_of(form, "photos", required=False)
        if photos and entry.match_type is watchlist.MatchType.FACE:
            ctx.session.flush()
            node.faces.enroll_watch(ctx, entry.id, photos)
    except ValidationFailed as exc:
        ctx.session.rollback()
        return _watch_page(request, ctx, [(e.field, e.message) for e in exc.errors], 422)
    node.rules.reload()
    return RedirectResponse("/admin/watchlists", 303)


@router.post("/admin/watchlists/{entry_id}/faces", dependencies=[CsrfDep])
async def add_watch_faces(
    request: Request, ctx: ConsoleCtx, node: NodeDep, entry_id: int
) -> Response:
    """Add face photos to a face entry (all of them or none)."""
    _require_watch(ctx)
    entry = ctx.session.get(watchlist.WatchEntry, entry_id)
    if entry is None or entry.match_type is not watchlist.MatchType.FACE:
        raise NotFound(f"watchlist face entry {entry_id}")
    _unit(ctx, entry.org_unit_id)  # out of one's area: not found
    form = await request.form()
    try:
        node.faces.enroll_watch(ctx, entry.id, await face_views.photos_of(form, "photos"))
    except ValidationFailed as exc:
        ctx.session.rollback()
        return _watch_page(request, ctx, [(e.field, e.message) for e in exc.errors], 422)
    node.rules.reload()
    return RedirectResponse("/admin/watchlists", 303)


@router.post("/admin/watchlists/{entry_id}/delete", dependencies=[CsrfDep])
def delete_watch_entry(ctx: ConsoleCtx, node: NodeDep, entry_id: int) -> Response:
    """Take an entry off its list (the audit log keeps what it was)."""
    _require_watch(ctx)
    entry = ctx.session.get(watchlist.WatchEntry, entry_id)
    if entry is None:
        raise NotFound(f"watchlist entry {entry_id}")
    _unit(ctx, entry.org_unit_id)  # out of one's area: not found
    ctx.session.delete(entry)
    node.rules.reload()
    return RedirectResponse("/admin/watchlists", 303)


def _int(value: object, field: str) -> int:
    try:
        return int(str(value))
    except ValueError:
        raise ValidationFailed.one(field, "must be a whole number") from None


def _choice(kind: Any, value: object, field: str) -> Any:
    try:
        return kind(str(value))
    except ValueError:
        raise ValidationFailed.one(field, "is not one of the choices") from None


def _expiry(text: str, timezone: str) -> dt.datetime:
    """The end of a local date, as UTC."""
    try:
        day = dt.date.fromisoformat(text)
    except ValueError:
        raise ValidationFailed.one("expires_on", "must be a date (YYYY-MM-DD)") from None
    end = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(0), ZoneInfo(timezone))
    return end.astimezone(dt.UTC)
