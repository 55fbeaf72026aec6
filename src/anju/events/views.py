"""Console pages for events: search (事件查询) with Excel export, trajectories (轨迹分析),
an event's image, and the device test event. The live feed itself is the SSE route in
:mod:`anju.events.api`.
"""

from __future__ import annotations

import datetime as dt
import io
from typing import Any
from urllib.parse import quote, urlencode
from zoneinfo import ZoneInfo

import openpyxl
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from anju.audit import service as audit
from anju.core.errors import PermissionDenied, ValidationFailed
from anju.devices import health
from anju.devices.models import Device
from anju.events import service
from anju.events.api import deliver, image_response, sender_for
from anju.events.model import Direction, Event, Kind, SubjectType
from anju.registry import service as registry
from anju.web import forms, i18n
from anju.web.deps import ClockDep, ConsoleCtx, CsrfDep, NodeDep
from anju.web.labels import LABELS
from anju.web.resources import BY_NAME, attr_path
from anju.web.templating import render

router = APIRouter(include_in_schema=False)

# Display names (message ids) of event kinds, subject types and directions.
KIND_LABELS: dict[str, str] = LABELS[Kind]
SUBJECT_LABELS: dict[str, str] = LABELS[SubjectType]
DIRECTION_LABELS: dict[str, str] = LABELS[Direction]

MAX_EXPORT = 50_000
PAGE_SIZE = 50
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
# Message ids of the exported workbook (collected by anju.web.i18n_catalog).
EXPORT_SHEET = "Events"
EXPORT_HEADS = (
    "Time",
    "Event type",
    "Device code",
    "Device",
    "Community",
    "Subject type",
    "Subject",
    "Direction",
    "Value",
    "Person ID",
    "Vehicle ID",
    "Replayed from buffer",
)
EXPORT_CUT = "Only the newest 50,000 events are included: narrow the search."
EXPORT_MESSAGES = (EXPORT_SHEET, *EXPORT_HEADS, EXPORT_CUT, "Yes")
SEARCH_PARAMS = (
    "community_id",
    "device",
    "kind",
    "subject_type",
    "subject_value",
    "since",
    "until",
)
TRAJECTORY_PARAMS = ("person_id", "vehicle_id", "subject_type", "subject_value", "since", "until")


def _day_start(text: str, tz: str, field: str) -> dt.datetime:
    try:
        day = dt.date.fromisoformat(text)
    except ValueError:
        raise ValidationFailed.one(field, "not a valid date") from None
    return dt.datetime.combine(day, dt.time(), tzinfo=ZoneInfo(tz)).astimezone(dt.UTC)


def _int(text: str, field: str) -> int:
    if not text.strip().isdigit():
        raise ValidationFailed.one(field, "not a valid number")
    return int(text)


def event_filter(params: dict[str, str], tz: str) -> service.EventFilter:
    """The filter named by a page's query parameters; dates are whole local days."""
    kw: dict[str, Any] = {}
    for name in ("device", "kind", "subject_type"):
        if params.get(name, "").strip():
            kw[name] = params[name].strip()
    if params.get("subject_value", "").strip() and kw.get("subject_type"):
        kw["subject_value"] = params["subject_value"].strip()
    for name in ("community_id", "person_id", "vehicle_id"):
        if params.get(name, "").strip():
            kw[name] = _int(params[name], name)
    if params.get("since"):
        kw["since"] = _day_start(params["since"], tz, "since")
    if params.get("until"):
        kw["until"] = _day_start(params["until"], tz, "until") + dt.timedelta(days=1)
    return service.EventFilter(**kw)


def _params(request: Request, names: tuple[str, ...]) -> dict[str, str]:
    return {k: request.query_params.get(k, "") for k in names if request.query_params.get(k)}


def _local_time(iso: str, tz: str) -> str:
    return dt.datetime.fromisoformat(iso).astimezone(ZoneInfo(tz)).strftime("%Y-%m-%d %H:%M:%S")


def _labels() -> dict[str, Any]:
    return {
        "kind_labels": KIND_LABELS,
        "subject_labels": SUBJECT_LABELS,
        "direction_labels": DIRECTION_LABELS,
        "face_kinds": service.FACE_KINDS,
    }


@router.get("/events/{record_id}/image", name="events_image")
def event_image(ctx: ConsoleCtx, node: NodeDep, record_id: int) -> Response:
    """事件图片 — the event's picture if you may see the event; looking at a face is audited."""
    return image_response(ctx, node, record_id)


@router.get("/events", response_class=HTMLResponse, name="events_search")
def events_page(request: Request, ctx: ConsoleCtx, page: int = 1) -> Response:
    """事件查询 — events in the caller's area, newest first, filtered; HTMX swaps the table."""
    if not ctx.actor.can("event.view"):
        raise PermissionDenied("event.view")
    tz = request.app.state.node.settings.timezone
    params = _params(request, SEARCH_PARAMS)
    error = None
    items: list[dict[str, Any]] = []
    total = 0
    try:
        items, total = service.search(ctx, event_filter(params, tz), page, PAGE_SIZE)
    except ValidationFailed as exc:
        error = exc.errors[0].message
    pages = max(1, -(-total // PAGE_SIZE))
    template = (
        "events/_table.html"
        if request.headers.get("hx-target") == "results"
        else "events/list.html"
    )
    return render(
        request,
        template,
        items=items,
        total=total,
        page=max(page, 1),
        pages=pages,
        params=params,
        query=urlencode(params),
        error=error,
        communities=forms.ref_options(ctx, "community"),
        kinds=list(Kind),
        subject_types=list(SubjectType),
        can_export=ctx.actor.can("registry.export"),
        **_labels(),
    )


@router.get("/events/export", name="events_export")
def events_export(request: Request, ctx: ConsoleCtx) -> Response:
    """The events of a search as an Excel workbook (at most 50,000 rows, newest first)."""
    for perm in ("event.view", "registry.export"):
        if not ctx.actor.can(perm):
            raise PermissionDenied(perm)
    settings = request.app.state.node.settings
    params = _params(request, SEARCH_PARAMS)
    items, total = service.search(ctx, event_filter(params, settings.timezone), 1, MAX_EXPORT)
    lang = i18n.request_language(request)
    _ = i18n.translations(lang).gettext
    book = openpyxl.Workbook(write_only=True)
    sheet = book.create_sheet(_(EXPORT_SHEET))
    sheet.append([_(h) for h in EXPORT_HEADS])
    for e in items:
        subject = e["subject"] or {}
        sheet.append(
            [
                _local_time(e["at"], settings.timezone),
                _(KIND_LABELS.get(e["kind"], e["kind"])),
                e["device"],
                e["device_name"],
                e["community"],
                _(SUBJECT_LABELS.get(subject.get("type", ""), subject.get("type", ""))),
                subject.get("value", ""),
                _(DIRECTION_LABELS[e["direction"]]) if e["direction"] else "",
                e["value"],
                e["person_id"],
                e["vehicle_id"],
                _("Yes") if e["history"] else "",
            ]
        )
    if total > MAX_EXPORT:
        sheet.append([_(EXPORT_CUT)])
    out = io.BytesIO()
    book.save(out)
    audit.record(
        ctx.session, "events.export", entity="events", detail={**params, "rows": len(items)}
    )
    filename = f"{_(EXPORT_SHEET)}-{dt.date.today().isoformat()}.xlsx"
    return Response(
        out.getvalue(),
        media_type=XLSX,
        headers={"Content-Disposition": f"attachment; filename*=UTF-8''{quote(filename)}"},
    )


@router.get("/trajectory", response_class=HTMLResponse, name="trajectory")
def trajectory_page(request: Request, ctx: ConsoleCtx) -> Response:
    """轨迹分析 — where one person, vehicle, card, plate or phone was seen, in time order."""
    if not ctx.actor.can("trajectory.view"):
        raise PermissionDenied("trajectory.view")
    tz = request.app.state.node.settings.timezone
    params = _params(request, TRAJECTORY_PARAMS)
    sightings: list[dict[str, Any]] | None = None
    error = None
    asked = any(params.get(k) for k in ("person_id", "vehicle_id", "subject_value"))
    if asked:
        try:
            sightings = service.trajectory(ctx, event_filter(params, tz))
        except ValidationFailed as exc:
            error = exc.errors[0].message
    person_options = (
        forms.ref_options(ctx, "person", params.get("person_id"))
        if params.get("person_id") and ctx.actor.can("person.view")
        else []
    )
    if params.get("person_id") and ctx.actor.can("person.view"):
        audit.record(
            ctx.session, "trajectory.view", entity="persons", entity_id=params["person_id"]
        )
    return render(
        request,
        "events/trajectory.html",
        params=params,
        sightings=sightings,
        error=error,
        person_options=person_options,
        subject_types=[t for t in SubjectType if t is not SubjectType.FACE],
        **_labels(),
    )


@router.post("/devices/{record_id}/test-event", dependencies=[CsrfDep], name="devices_test_event")
def device_test_event(
    request: Request, ctx: ConsoleCtx, node: NodeDep, clock: ClockDep, record_id: int
) -> Response:
    """发送测试事件 — store a heartbeat marked ``test`` through the real pipeline."""
    resource = BY_NAME["devices"]
    if not ctx.actor.can(resource.edit_perm):
        raise PermissionDenied(resource.edit_perm)
    device = registry.devices.get(ctx, record_id)
    sender = sender_for(device)
    outcome = Event(device=device.code, kind=Kind.DEVICE_HEARTBEAT, at=clock(), data={"test": True})
    audit.record(
        ctx.session,
        "device.test_event",
        entity="devices",
        entity_id=device.id,
        community_id=device.community_id,
    )
    ctx.session.commit()  # the pipeline writes in its own transaction
    processed = deliver(node, [outcome], sender)
    result = processed.results[0]
    ctx.session.expire_all()
    device = registry.devices.get(ctx, record_id)
    return render(
        request,
        resource.template,
        resource=resource,
        obj=device,
        attr=attr_path,
        can_edit=True,
        test_result={"status": result.status, "reason": result.reason},
        **device_extra(ctx, device),
    )


def device_extra(ctx: Any, device: Device) -> dict[str, Any]:
    """What the device page shows beside the record: health and the last 20 events."""
    recent: list[dict[str, Any]] = []
    if ctx.actor.can("event.view"):
        recent, _total = service.search(ctx, service.EventFilter(device=device.code), 1, 20)
    return {
        "state": health.state(device),
        "interval": health.expected_interval(device.kind),
        "recent": recent,
        **_labels(),
    }
