"""HTTP: the JSON way in (``POST /api/v1/events``), event search, trajectories, live feed."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import Response, StreamingResponse
from pydantic import BaseModel
from sqlalchemy import select, update

from anju.auth import tokens as auth_tokens
from anju.core.errors import PermissionDenied
from anju.core.scope import Actor, communities_in_scope
from anju.devices.models import Device
from anju.events import feed, service, wire
from anju.events.blobs import FolderBlobs
from anju.events.model import Kind, Outcome
from anju.events.pipeline import DeviceRef, Processed
from anju.web.deps import (
    ApiCtx,
    BearerDep,
    ClockDep,
    NodeDep,
    SessionDep,
    _check_csrf,
    api_user,
)

log = logging.getLogger(__name__)

router = APIRouter(prefix="/api/v1", tags=["events"])

MAX_BODY = 16 * 1024 * 1024
# Stored and counted on the device's page, but not news: a community's heartbeats would
# bury the passages and alarms people watch the live feed for.
NOT_NEWS = frozenset({Kind.DEVICE_HEARTBEAT})


@dataclass(frozen=True)
class Sender:
    """Who delivers events: a device with its own credential, or an account."""

    device: DeviceRef | None
    actor: Actor


def device_sender(session: Any, credential: str, clock: Any) -> Sender:
    """The sender behind a device credential: it may speak only for its own device."""
    device = auth_tokens.device_for_credential(session, credential, clock())
    if device is None:
        raise HTTPException(
            401,
            "device credential not recognised, revoked, or the device is disabled",
            headers={"WWW-Authenticate": "Bearer"},
        )
    return sender_for(device)


def sender_for(device: Device) -> Sender:
    """Deliver as the device itself would, with its own credential."""
    ref = DeviceRef(device.id, device.code, device.community_id, device.kind.value, device.house_id)
    actor = Actor(
        user_id=None,
        username=f"device:{device.code}",
        org_path="/",
        permissions=frozenset({"event.ingest"}),
    )
    return Sender(ref, actor)


def ingest_sender(
    request: Request, session: SessionDep, node: NodeDep, clock: ClockDep, bearer: BearerDep
) -> Sender:
    """A device credential (``anjud_…``) speaks for its device only; an account with
    ``event.ingest`` (gateways, the simulator) for the devices in its scope."""
    if bearer is not None and bearer.credentials.startswith(auth_tokens.DEVICE_PREFIX):
        return device_sender(session, bearer.credentials.strip(), clock)
    signed = api_user(request, session, node, clock, bearer)
    if not signed.actor.can("event.ingest"):
        raise PermissionDenied("event.ingest")
    return Sender(None, signed.actor)


SenderDep = Annotated[Sender, Depends(ingest_sender)]


class IngestResult(BaseModel):
    status: str
    device: str | None
    id: str | None
    reason: str | None = None


class IngestAnswer(BaseModel):
    accepted: int
    duplicate: int
    rejected: int
    results: list[IngestResult]


def deliver(
    node: Any,
    outcomes: list[Outcome],
    sender: Sender,
    *,
    claim: Callable[[Any, list[Outcome]], list[Outcome]] | None = None,
) -> Processed:
    """Run a delivery through the pipeline in its own transaction, then publish it live.

    ``claim``, when given, runs first in that transaction and returns the outcomes to go on
    with: the device-health tick claims devices this way, so a claim commits with its event.
    """
    with node.unit_of_work(sender.actor) as ctx:
        if claim is not None:
            outcomes = claim(ctx.session, outcomes)
        may_use = _may_use(ctx.session, sender)
        processed: Processed = node.pipeline(ctx.session).process(outcomes, may_use=may_use)
        # Built only when a console is listening: ingest should not pay for an empty feed.
        published = (
            [
                _live_item(stored_id, row)
                for stored_id, row in processed.stored
                if row.event.kind not in NOT_NEWS
            ]
            if node.feed.subscribers
            else []
        )
    node.feed.publish(published, keys=[item["id"] for item in published])  # see relay.py
    node.rules.on_stored(node, processed.stored)  # queued for the alert models; never raises
    return processed


def _may_use(session: Any, sender: Sender) -> Callable[[DeviceRef], bool]:
    if sender.device is not None:
        own = sender.device.id
        return lambda device: device.id == own
    if sender.actor.org_path == "/":
        return lambda device: True
    allowed = set(session.scalars(communities_in_scope(sender.actor)))
    return lambda device: device.community_id in allowed


def _live_item(stored_id: int, row: Any) -> dict[str, Any]:
    # str() of these StrEnums is their value, without the enum's slow ``.value`` property
    e, device = row.event, row.device
    subject = e.subject
    return feed.live_item(
        stored_id, str(e.kind), e.at.isoformat(), device.community_id, device.code,
        device.name, str(subject.type) if subject else None, subject.value if subject else None,
        str(e.direction) if e.direction else None, row.enrichment.person_id, e.history,
    )  # fmt: skip


def answer(processed: Processed) -> bytes:
    """The answer to a delivery as JSON (the shape of :class:`IngestAnswer`), built directly:
    for 500 results, pydantic models cost more than the rest of the response."""
    return orjson.dumps(
        {
            "accepted": processed.count("accepted"),
            "duplicate": processed.count("duplicate"),
            "rejected": processed.count("rejected"),
            "results": [
                {"status": r.status, "device": r.device, "id": r.id, "reason": r.reason}
                for r in processed.results
            ],
        }
    )


def count_refusal(node: Any, sender: Sender, reason: str) -> None:
    """A delivery refused as a whole still counts against the device that sent it."""
    if sender.device is None:
        return
    with node.unit_of_work(sender.actor) as ctx:
        ctx.session.connection().execute(
            update(Device)
            .where(Device.id == sender.device.id)
            .values(
                events_rejected=Device.events_rejected + 1,
                last_rejection=reason[:300],
                last_rejected_at=dt.datetime.now(dt.UTC),
            )
        )


@router.post("/events", response_model=IngestAnswer, name="api_events_ingest")
async def ingest(request: Request, node: NodeDep, sender: SenderDep, clock: ClockDep) -> Response:
    """Deliver one event or an array (at most 500) in wire format v1 (see docs/events.md).

    The answer lists each event as accepted, duplicate (already stored: safe to resend) or
    rejected with the reason; a bad event never fails the good ones beside it.
    """
    if sender.device is None and request.cookies.get("anju_session"):
        signed = request.state.signed
        if signed.session_id is not None:
            await _check_csrf(request, signed.csrf_token)
    body = await request.body()
    if len(body) > MAX_BODY:
        await asyncio.to_thread(count_refusal, node, sender, "body larger than 16 MiB")
        raise HTTPException(
            413, f"body larger than {MAX_BODY // (1024 * 1024)} MiB: send smaller batches"
        )
    try:
        payload = wire.decode(body)
    except ValueError as exc:
        await asyncio.to_thread(count_refusal, node, sender, str(exc))
        raise HTTPException(400, str(exc)) from None
    outcomes = wire.parse_batch(payload, clock())
    del payload  # its dicts need not live through the delivery: the events hold what they need
    processed = await asyncio.to_thread(deliver, node, outcomes, sender)
    # Serialised here, once: IngestAnswer documents it, FastAPI need not re-validate it.
    return Response(answer(processed), media_type="application/json")


def _filter(**kw: Any) -> service.EventFilter:
    return service.EventFilter(**{k: v for k, v in kw.items() if v not in (None, "")})


@router.get("/events", name="api_events_search")
def search_events(
    ctx: ApiCtx,
    community_id: int | None = None,
    device: str | None = None,
    kind: str | None = None,
    subject_type: str | None = None,
    subject_value: str | None = None,
    person_id: int | None = None,
    vehicle_id: int | None = None,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
    page: int = 1,
    size: Annotated[int, Query(ge=1, le=500)] = 50,
) -> dict[str, Any]:
    """Search events in your area, newest first."""
    if not ctx.actor.can("event.view"):
        raise PermissionDenied("event.view")
    f = _filter(
        community_id=community_id,
        device=device,
        kind=kind,
        subject_type=subject_type,
        subject_value=subject_value,
        person_id=person_id,
        vehicle_id=vehicle_id,
        since=since,
        until=until,
    )
    items, total = service.search(ctx, f, page, size)
    return {"items": items, "total": total, "page": page, "size": size}


@router.get(
    "/events/{record_id}/image",
    name="api_events_image",
    response_class=Response,
    responses={200: {"content": {"image/jpeg": {}}}},
)
def event_image(ctx: ApiCtx, node: NodeDep, record_id: int) -> Response:
    """The event's JPEG (`event.view`, the event in your area; otherwise 404). Viewing a face
    image is written to the audit log."""
    return image_response(ctx, node, record_id)


def image_response(ctx: Any, node: Any, event_id: int) -> Response:
    """An event's JPEG, for the console and the API alike (see ``service.image``); private
    to the browser that asked, never kept by a shared cache."""
    data = service.image(ctx, FolderBlobs(node.settings.blob_dir), event_id)
    return Response(
        data, media_type="image/jpeg", headers={"Cache-Control": "private, max-age=300"}
    )


@router.get("/trajectory", name="api_trajectory")
def trajectory(
    ctx: ApiCtx,
    person_id: int | None = None,
    vehicle_id: int | None = None,
    subject_type: str | None = None,
    subject_value: str | None = None,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
) -> dict[str, Any]:
    """轨迹 — every sighting of one person, vehicle, card or MAC in a time range, oldest
    first, across all communities in your area (`trajectory.view`; at most 2,000).

    A sighting is lean: `id`, `kind`, `at`, `community_id`, `community`, `device` (code),
    `device_name`, `subject` (`type`, `value`, or null) and `direction` — no `data`, `value`
    or image: it is read from the subject's index alone. For those, and face matches, search
    the events (`GET /api/v1/events` with the same subject and range) and fetch an image by
    id (`/api/v1/events/{id}/image`); a face kind (`access.face`, `capture.face`) tells
    which sightings were faces."""
    if not ctx.actor.can("trajectory.view"):
        raise PermissionDenied("trajectory.view")
    f = _filter(
        person_id=person_id,
        vehicle_id=vehicle_id,
        subject_type=subject_type,
        subject_value=subject_value,
        since=since,
        until=until,
    )
    return {"sightings": service.trajectory(ctx, f)}


@router.get("/events/live", name="api_events_live")
async def live(request: Request, ctx: ApiCtx, node: NodeDep) -> StreamingResponse:
    """Server-Sent Events: new events in your area as they are stored (face matches shown
    as for search: details only with face permission, watchlist hits only to the police)."""
    actor = ctx.actor
    if not actor.can("event.view"):
        raise PermissionDenied("event.view")
    return feed.stream(
        request, ctx, node.feed, "event", shape=lambda item: service.for_actor(actor, item)
    )


# --- vendor and carrier pushes ------------------------------------------------------------


@router.post("/ingest/hikvision/{credential}", name="api_ingest_hikvision", include_in_schema=False)
async def hikvision_push(
    request: Request, credential: str, node: NodeDep, session: SessionDep, clock: ClockDep
) -> dict[str, int]:
    """What a Hikvision face terminal or ANPR camera pushes (HTTP host notification).

    Devices cannot send headers, so the device credential is the last path segment; the
    access log masks it. The answer is quick and always 200 once authenticated (the device
    would otherwise retry; redeliveries are duplicates anyway)."""
    from anju.events.adapters.hikvision import parse_isapi

    sender = device_sender(session, credential, clock)
    session.commit()
    body = await request.body()
    if len(body) > MAX_BODY:
        await asyncio.to_thread(count_refusal, node, sender, "body larger than 16 MiB")
        raise HTTPException(413, "body too large")
    assert sender.device is not None
    outcomes = parse_isapi(body, request.headers.get("content-type"), sender.device.code, clock())
    processed = await asyncio.to_thread(deliver, node, outcomes, sender)
    return counts(processed)


def counts(processed: Processed) -> dict[str, int]:
    """The short answer a push gets: how many events were accepted, duplicate, rejected."""
    return {k: processed.count(k) for k in ("accepted", "duplicate", "rejected")}


async def json_body(request: Request) -> Any:
    """A push's JSON body, or a 400 that says why it could not be read."""
    try:
        return json.loads(await request.body())
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise HTTPException(400, f"malformed JSON: {exc}"[:200]) from None


def _carrier_sender() -> Sender:
    """Carrier platforms speak for any registered device whose carrier ID they name."""
    return Sender(
        None,
        Actor(
            user_id=None,
            username="carrier-push",
            org_path="/",
            permissions=frozenset({"event.ingest"}),
        ),
    )


def _carrier_devices(node: Any) -> Callable[[str], Any]:
    from anju.events.adapters.nbiot import DeviceInfo

    def lookup(key: str) -> DeviceInfo | None:
        with node.unit_of_work() as ctx:
            row = ctx.session.execute(
                select(Device.code, Device.kind).where(Device.external_id == key)
            ).first()
        return DeviceInfo(code=row[0], kind=row[1].value) if row else None

    return lookup


def _same_secret(given: str | None, expected: str | None) -> bool:
    import hmac

    return bool(given and expected and hmac.compare_digest(given.encode(), expected.encode()))


@router.post("/ingest/ctwing", name="api_ingest_ctwing", include_in_schema=False)
async def ctwing_push(
    request: Request, node: NodeDep, clock: ClockDep, token: str = ""
) -> dict[str, int]:
    """A China Telecom CTWing/AEP subscription push (NB-IoT smoke detectors, meters, magnets)."""
    from anju.events.adapters.nbiot import parse_ctwing

    if not node.settings.ctwing_token:
        raise HTTPException(503, "CTWing pushes are not configured: set ANJU_CTWING_TOKEN")
    if not _same_secret(token, node.settings.ctwing_token):
        raise HTTPException(401, "wrong or missing ?token=")
    payload = await json_body(request)
    outcomes = await asyncio.to_thread(
        parse_ctwing, payload, clock(), devices=_carrier_devices(node)
    )
    processed = await asyncio.to_thread(deliver, node, outcomes, _carrier_sender())
    return counts(processed)


@router.get("/ingest/onenet", name="api_ingest_onenet_verify", include_in_schema=False)
def onenet_verify(node: NodeDep, msg: str = "", nonce: str = "", signature: str = "") -> Any:
    """OneNET's URL check when a push is configured: echo ``msg`` if the signature holds."""
    from fastapi.responses import PlainTextResponse

    from anju.events.adapters.nbiot import verify_onenet_url

    token = node.settings.onenet_token
    if not token:
        raise HTTPException(503, "OneNET pushes are not configured: set ANJU_ONENET_TOKEN")
    if not verify_onenet_url(msg, nonce, signature, token):
        raise HTTPException(401, "signature does not match the configured token")
    return PlainTextResponse(msg)


@router.post("/ingest/onenet", name="api_ingest_onenet", include_in_schema=False)
async def onenet_push(request: Request, node: NodeDep, clock: ClockDep) -> dict[str, int]:
    """A China Mobile OneNET data push, checked against the push's token."""
    from anju.events.adapters.nbiot import check_onenet_signature, parse_onenet

    token = node.settings.onenet_token
    if not token:
        raise HTTPException(503, "OneNET pushes are not configured: set ANJU_ONENET_TOKEN")
    body = await json_body(request)
    if not isinstance(body, dict) or not check_onenet_signature(body, token):
        raise HTTPException(401, "msg_signature does not match the configured token")
    outcomes = await asyncio.to_thread(parse_onenet, body, clock(), devices=_carrier_devices(node))
    processed = await asyncio.to_thread(deliver, node, outcomes, _carrier_sender())
    return counts(processed)
