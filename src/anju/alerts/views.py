"""Console pages of alerts: the alert centre (预警中心, a live list), an alert's detail with
evidence and timeline and the forms that move it round the loop, and statistics."""

from __future__ import annotations

import statistics
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import func, select
from starlette.datastructures import UploadFile

from anju.alerts import notify, service
from anju.alerts.model import AlertState, Severity, Verdict
from anju.alerts.models import Alert, AlertStep
from anju.alerts.names import MODEL_NAMES
from anju.auth.models import User
from anju.core.errors import NotFound, PermissionDenied, ValidationFailed
from anju.core.scope import restrict
from anju.devices.models import Device
from anju.events import service as event_service
from anju.events.blobs import FolderBlobs
from anju.events.model import Kind
from anju.events.models import StoredEvent
from anju.org.models import OrgUnit
from anju.registry import service as registry
from anju.web import forms
from anju.web.deps import ClockDep, ConsoleCtx, CsrfDep, NodeDep
from anju.web.labels import LABELS
from anju.web.templating import render

router = APIRouter(include_in_schema=False)

PAGE_SIZE = 50
FILTERS = ("state", "model", "severity", "community_id")
ACTIONS = ("dispatch", "acknowledge", "handle", "close", "reopen")


def alert_filter(params: dict[str, str]) -> service.AlertFilter:
    community = params.get("community_id", "").strip()
    if community and not community.isdigit():
        raise ValidationFailed.one("community_id", "not a valid number")
    return service.AlertFilter(
        state=params.get("state") or None,
        model=params.get("model") or None,
        severity=params.get("severity") or None,
        community_id=int(community) if community else None,
    )


def community_names(ctx: Any, ids: set[int]) -> dict[int, str]:
    if not ids:
        return {}
    rows = ctx.session.execute(select(OrgUnit.id, OrgUnit.name).where(OrgUnit.id.in_(ids)))
    return {r.id: r.name for r in rows}


def _vocab() -> dict[str, Any]:
    return {
        "model_names": MODEL_NAMES,
        "states": list(AlertState),
        "severities": list(Severity),
        "verdicts": list(Verdict),
        "role_groups": list(service.ROLE_GROUPS),
    }


@router.get("/alerts", response_class=HTMLResponse, name="alerts_centre")
def alerts_page(request: Request, ctx: ConsoleCtx, page: int = 1) -> Response:
    """预警中心 — alerts in the caller's area, most recent first; new ones arrive live."""
    params = {k: request.query_params[k] for k in FILTERS if request.query_params.get(k)}
    if "state" not in request.query_params:
        params["state"] = "open"
    error = None
    items: list[Alert] = []
    total = 0
    try:
        items, total = service.search(ctx, alert_filter(params), page, PAGE_SIZE)
    except ValidationFailed as exc:
        error = exc.errors[0].message
    return render(
        request,
        "alerts/list.html",
        items=items,
        total=total,
        page=max(page, 1),
        pages=max(1, -(-total // PAGE_SIZE)),
        params=params,
        query=urlencode(params),
        error=error,
        names=community_names(ctx, {a.community_id for a in items}),
        communities=forms.ref_options(ctx, "community"),
        **_vocab(),
    )


@router.get("/alerts/stats", response_class=HTMLResponse, name="alerts_stats")
def stats_page(request: Request, ctx: ConsoleCtx) -> Response:
    """预警统计 — by model and by outcome, and the median minutes to acknowledge and close."""
    if not ctx.actor.can("alert.view"):
        raise PermissionDenied("alert.view")
    return render(request, "alerts/stats.html", stats=alert_stats(ctx), **_vocab())


def alert_stats(ctx: Any) -> dict[str, Any]:
    """Counts per model and verdict, medians in minutes (None when nothing to measure)."""
    base = service.visible(ctx.actor).subquery()
    by_model = dict(
        ctx.session.execute(select(base.c.model, func.count()).group_by(base.c.model)).all()
    )
    by_verdict = dict(
        ctx.session.execute(
            select(base.c.verdict, func.count())
            .where(base.c.verdict.is_not(None))
            .group_by(base.c.verdict)
        ).all()
    )
    times = ctx.session.execute(
        select(base.c.first_at, base.c.acknowledged_at, base.c.closed_at, base.c.created_at)
    ).all()
    ack = [(t.acknowledged_at - t.created_at).total_seconds() / 60 for t in times if t[1]]
    closed = [(t.closed_at - t.created_at).total_seconds() / 60 for t in times if t[2]]
    return {
        "total": len(times),
        "by_model": by_model,
        "by_verdict": {getattr(k, "value", k): v for k, v in by_verdict.items()},
        "ack_minutes": round(statistics.median(ack), 1) if ack else None,
        "close_minutes": round(statistics.median(closed), 1) if closed else None,
    }


def detail_context(ctx: Any, alert: Alert) -> dict[str, Any]:
    """What the detail page shows: evidence events, timeline, and which forms to offer."""
    evidence: list[dict[str, Any]] = []
    ids = service.evidence_ids(ctx.session, alert.id)
    if ids and ctx.actor.can("event.view"):
        evidence = evidence_events(ctx, ids[-20:])
    actor = ctx.actor
    mine = service.is_mine(ctx, alert)
    state = alert.state
    can = {
        "dispatch": actor.can("alert.dispatch") and state in service.OPEN_STATES,
        "acknowledge": actor.can("alert.handle") and state is AlertState.DISPATCHED and mine,
        "handle": actor.can("alert.handle") and state is AlertState.ACKNOWLEDGED and mine,
        "close": actor.can("alert.close") and state is AlertState.HANDLED,
        "reopen": actor.can("alert.dispatch") and state in (AlertState.HANDLED, AlertState.CLOSED),
    }
    assignee = ctx.session.get(User, alert.assignee_id) if alert.assignee_id else None
    return {
        "alert": alert,
        "person": _visible(ctx, registry.people, alert.person_id, "person.view"),
        "house": _visible(ctx, registry.houses, alert.house_id, "house.view"),
        "assignee_name": assignee.display_name if assignee else None,
        "community": ctx.session.get(OrgUnit, alert.community_id),
        "evidence": evidence,
        "evidence_count": len(ids),
        "steps": service.steps(ctx.session, alert.id),
        "can": can,
        "assignees": service.assignees(ctx, alert) if can["dispatch"] else [],
        "face_kinds": event_service.FACE_KINDS,
        "kind_labels": LABELS[Kind],
        **_vocab(),
    }


def _visible(ctx: Any, records: Any, record_id: int | None, permission: str) -> Any:
    """The person or house an alert names, when the caller may see it (in scope)."""
    if record_id is None or not ctx.actor.can(permission):
        return None
    try:
        return records.get(ctx, record_id)
    except (NotFound, PermissionDenied):
        return None


def evidence_events(ctx: Any, ids: list[int]) -> list[dict[str, Any]]:
    """The evidence events the caller may see (in scope), in time order."""
    rows = ctx.session.execute(
        restrict(
            select(StoredEvent, Device.code, Device.name, OrgUnit.name)
            .join(Device, Device.id == StoredEvent.device_id)
            .join(OrgUnit, OrgUnit.id == StoredEvent.community_id)
            .where(StoredEvent.id.in_(ids))
            .order_by(StoredEvent.at),
            StoredEvent,
            ctx.actor,
        )
    ).all()
    return [
        event_service.for_actor(ctx.actor, event_service.to_dict(e, code, name, community))
        for e, code, name, community in rows
    ]


@router.get("/alerts/{record_id}/photos/{step_id}/{index}", name="alerts_photo")
def step_photo(
    ctx: ConsoleCtx, node: NodeDep, record_id: int, step_id: int, index: int
) -> Response:
    """A feedback photo of a step of an alert the caller may see."""
    alert = service.get(ctx, record_id)
    step = ctx.session.get(AlertStep, step_id)
    if step is None or step.alert_id != alert.id or not 0 <= index < len(step.photos):
        raise NotFound("alert photo", step_id)
    data = FolderBlobs(node.settings.blob_dir).get(step.photos[index])
    if data is None:
        raise NotFound("alert photo", step_id)
    return Response(data, media_type="image/jpeg", headers={"Cache-Control": "private"})


@router.get("/alerts/{record_id}", response_class=HTMLResponse, name="alerts_detail")
def alert_page(request: Request, ctx: ConsoleCtx, record_id: int) -> Response:
    """预警详情 — evidence, timeline and the next step's form."""
    alert = service.get(ctx, record_id)
    return render(request, "alerts/detail.html", **detail_context(ctx, alert))


@router.post("/alerts/{record_id}/{action}", dependencies=[CsrfDep], name="alerts_act")
async def alert_act(
    request: Request, ctx: ConsoleCtx, node: NodeDep, clock: ClockDep, record_id: int, action: str
) -> Response:
    """A step of the loop from the detail page's forms; errors come back on the page."""
    if action not in ACTIONS:
        raise NotFound("alerts", record_id)
    form = await request.form()
    fields = {k: v for k, v in form.items() if isinstance(v, str)}
    photos = [await f.read() for f in form.getlist("photos") if isinstance(f, UploadFile)]
    try:
        alert = apply(ctx, node, clock(), record_id, action, fields, photos)
    except ValidationFailed as exc:
        ctx.session.rollback()
        alert = service.get(ctx, record_id)
        return render(
            request,
            "alerts/detail.html",
            status_code=422,
            error=exc.errors[0].message,
            **detail_context(ctx, alert),
        )
    notice = notify.notice_of(ctx.session, alert, action)
    ctx.session.commit()
    notify.send(node, [notice])
    return RedirectResponse(f"/alerts/{record_id}", status_code=303)


def apply(
    ctx: Any,
    node: Any,
    now: Any,
    record_id: int,
    action: str,
    fields: dict[str, str],
    photos: list[bytes],
) -> Alert:
    """Run one transition named by ``action`` with a form's (or a JSON body's) fields."""
    if action == "dispatch":
        target = fields.get("target", "")
        user_id = fields.get("user_id") or (target[5:] if target.startswith("user:") else "")
        role = fields.get("role") or (target[5:] if target.startswith("role:") else "")
        if user_id and not str(user_id).isdigit():
            raise ValidationFailed.one("user_id", "not a valid number")
        return service.dispatch(
            ctx,
            record_id,
            now,
            user_id=int(user_id) if user_id else None,
            role=role or None,
            note=fields.get("note"),
        )
    if action == "acknowledge":
        return service.acknowledge(ctx, record_id, now, fields.get("note"))
    if action == "handle":
        return service.handle(
            ctx,
            record_id,
            now,
            feedback=fields.get("feedback", ""),
            verdict=fields.get("verdict", ""),
            photos=photos,
            blobs=FolderBlobs(node.settings.blob_dir),
        )
    if action == "close":
        return service.close(ctx, record_id, now, fields.get("note"))
    if action == "reopen":
        return service.reopen(ctx, record_id, now, fields.get("reason", ""))
    raise PermissionDenied(action)
