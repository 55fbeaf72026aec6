"""JSON API of alerts: list, one alert with its evidence and timeline, the loop's steps, and
the live stream of new alerts (SSE)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterable, AsyncIterator
from typing import Any

from fastapi import APIRouter, Body, Request
from fastapi.responses import StreamingResponse

from anju.alerts import notify, service, views
from anju.alerts.models import Alert, AlertStep, NotifyPref
from anju.alerts.names import MODEL_NAMES
from anju.core.errors import NotFound, PermissionDenied
from anju.events import feed
from anju.web.deps import ApiCsrfDep, ApiCtx, ClockDep, NodeDep

router = APIRouter(prefix="/api/v1", tags=["alerts"])


def alert_out(alert: Alert) -> dict[str, Any]:
    return {
        "id": alert.id,
        "model": alert.model,
        "model_name": MODEL_NAMES.get(alert.model, alert.model),
        "community_id": alert.community_id,
        "fingerprint": alert.fingerprint,
        "title": alert.title,
        "severity": alert.severity.value,
        "state": alert.state.value,
        "police_only": alert.police_only,
        "place": alert.place,
        "subject": {"type": alert.subject_type, "value": alert.subject_value}
        if alert.subject_type
        else None,
        "person_id": alert.person_id,
        "vehicle_id": alert.vehicle_id,
        "house_id": alert.house_id,
        "device_id": alert.device_id,
        "first_at": alert.first_at.isoformat(),
        "last_at": alert.last_at.isoformat(),
        "count": alert.count,
        "assignee_id": alert.assignee_id,
        "assigned_role": alert.assigned_role,
        "escalation": alert.escalation,
        "ack_deadline": alert.ack_deadline.isoformat() if alert.ack_deadline else None,
        "verdict": alert.verdict.value if alert.verdict else None,
        "detail": alert.detail,
    }


def step_out(step: AlertStep) -> dict[str, Any]:
    return {
        "at": step.at.isoformat(),
        "actor_id": step.actor_id,
        "actor": step.actor_name,
        "action": step.action,
        "from_state": step.from_state,
        "to_state": step.to_state,
        "note": step.note,
        "photos": len(step.photos),
    }


@router.get("/alerts", name="api_alerts")
def list_alerts(
    ctx: ApiCtx,
    state: str | None = None,
    model: str | None = None,
    severity: str | None = None,
    community_id: int | None = None,
    page: int = 1,
    size: int = 50,
) -> dict[str, Any]:
    """预警 — alerts in your area (`alert.view`; police-only ones for police roles only);
    `state=open` for every state but closed."""
    f = service.AlertFilter(state=state, model=model, severity=severity, community_id=community_id)
    items, total = service.search(ctx, f, page, max(1, min(size, 500)))
    return {"total": total, "items": [alert_out(a) for a in items]}


@router.get("/alerts/live", name="api_alerts_live")
async def live(request: Request, ctx: ApiCtx, node: NodeDep) -> StreamingResponse:
    """Server-Sent Events: alerts in your area as they are raised, dispatched or escalated;
    `sound` follows your notification preferences (least severity, console sound)."""
    if not ctx.actor.can("alert.view"):
        raise PermissionDenied("alert.view")
    police = ctx.actor.police
    pref = (
        notify.prefs_of(ctx.session, ctx.actor.user_id) if ctx.actor.user_id is not None else None
    )
    # The feed carries every alert of the caller's communities; police-only ones are
    # dropped here for the others.
    response = feed.stream(
        request, ctx, node.alert_feed, "alert", lambda item: police or not item.get("police_only")
    )
    if pref is not None:
        response.body_iterator = _with_sound(response.body_iterator, pref)
    return response


async def _with_sound(
    lines: AsyncIterable[str | bytes | memoryview], pref: NotifyPref
) -> AsyncIterator[str]:
    """The stream's alert messages with ``sound`` as this account wants it (the feed's items
    are shared by every listener, so the message is rewritten, not the item)."""
    async for line in lines:
        text = line if isinstance(line, str) else bytes(line).decode()
        head, sep, data = text.partition("\ndata: ")
        if sep and head.startswith("event: "):
            item = json.loads(data)
            sound = notify.sounds_for(pref, item)
            if sound != item.get("sound"):
                item["sound"] = sound
                text = f"{head}\ndata: {json.dumps(item, ensure_ascii=False)}\n\n"
        yield text


@router.get("/alerts/{record_id}", name="api_alert")
def get_alert(ctx: ApiCtx, record_id: int) -> dict[str, Any]:
    """One alert with its evidence (event ids) and timeline."""
    alert = service.get(ctx, record_id)
    return {
        **alert_out(alert),
        "evidence": service.evidence_ids(ctx.session, alert.id),
        "steps": [step_out(s) for s in service.steps(ctx.session, alert.id)],
    }


@router.post("/alerts/{record_id}/{action}", dependencies=[ApiCsrfDep], name="api_alert_act")
def act(
    ctx: ApiCtx,
    node: NodeDep,
    clock: ClockDep,
    record_id: int,
    action: str,
    body: dict[str, Any] | None = Body(default=None),
) -> dict[str, Any]:
    """A step of the loop: `dispatch` ({"user_id"} or {"role": officer|grid|property},
    "note"), `acknowledge` ({"note"}), `handle` ({"feedback", "verdict":
    true_alarm|false_alarm|duplicate}; photos through the console), `close` ({"note"}),
    `reopen` ({"reason"})."""
    if action not in views.ACTIONS:
        raise NotFound("alerts", record_id)
    fields = {k: str(v) for k, v in (body or {}).items() if v is not None}
    alert = views.apply(ctx, node, clock(), record_id, action, fields, [])
    notice = notify.notice_of(ctx.session, alert, action)
    out = alert_out(alert)
    ctx.session.commit()
    notify.send(node, [notice])
    return out
