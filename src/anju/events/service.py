"""Finding events: search with filters, and trajectories (轨迹) of a person, vehicle, card, MAC.

Both read through :func:`anju.core.scope.restrict`, so a caller sees only the communities
under their node.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select

from anju.core.context import Ctx
from anju.core.errors import ValidationFailed
from anju.core.scope import restrict
from anju.devices.models import Device
from anju.events import normalise
from anju.events.model import Kind, SubjectType
from anju.events.models import StoredEvent
from anju.org.models import OrgUnit

MAX_RANGE = dt.timedelta(days=366)


@dataclass(frozen=True)
class EventFilter:
    community_id: int | None = None
    device: str | None = None
    kind: str | None = None
    subject_type: str | None = None
    subject_value: str | None = None
    person_id: int | None = None
    vehicle_id: int | None = None
    since: dt.datetime | None = None
    until: dt.datetime | None = None
    include_history: bool = True


def normalised_subject(subject_type: str, value: str) -> str:
    """Search values normalised the way adapters store them."""
    try:
        kind = SubjectType(subject_type)
    except ValueError:
        raise ValidationFailed.one("subject_type", "unknown subject type") from None
    try:
        if kind is SubjectType.PLATE:
            return normalise.plate(value)
        if kind is SubjectType.MAC:
            return normalise.mac(value)
        if kind is SubjectType.CARD:
            return normalise.card(value)
    except ValueError as exc:
        raise ValidationFailed.one("subject_value", str(exc)) from None
    return value.strip()


def _query(ctx: Ctx, f: EventFilter) -> Any:
    stmt: Any = restrict(
        select(StoredEvent, Device.code, Device.name, OrgUnit.name)
        .join(Device, Device.id == StoredEvent.device_id)
        .join(OrgUnit, OrgUnit.id == StoredEvent.community_id),
        StoredEvent,
        ctx.actor,
    )
    if f.since and f.until and f.until - f.since > MAX_RANGE:
        raise ValidationFailed.one("until", "a search covers at most one year")
    if f.community_id is not None:
        stmt = stmt.where(StoredEvent.community_id == f.community_id)
    if f.device:
        stmt = stmt.where(Device.code == f.device)
    if f.kind:
        if f.kind not in {k.value for k in Kind}:
            raise ValidationFailed.one("kind", "unknown event kind")
        stmt = stmt.where(StoredEvent.kind == f.kind)
    if f.subject_type and f.subject_value:
        stmt = stmt.where(
            StoredEvent.subject_type == f.subject_type,
            StoredEvent.subject_value == normalised_subject(f.subject_type, f.subject_value),
        )
    if f.person_id is not None:
        stmt = stmt.where(StoredEvent.person_id == f.person_id)
    if f.vehicle_id is not None:
        stmt = stmt.where(StoredEvent.vehicle_id == f.vehicle_id)
    if f.since:
        stmt = stmt.where(StoredEvent.at >= f.since)
    if f.until:
        stmt = stmt.where(StoredEvent.at < f.until)
    if not f.include_history:
        stmt = stmt.where(StoredEvent.history.is_(False))
    return stmt


def search(
    ctx: Ctx, f: EventFilter, page: int = 1, size: int = 50
) -> tuple[list[dict[str, Any]], int]:
    """Events matching the filter, newest first, one page; and the total."""
    stmt = _query(ctx, f)
    total = ctx.session.scalar(select(func.count()).select_from(stmt.subquery())) or 0
    rows = ctx.session.execute(
        stmt.order_by(StoredEvent.at.desc(), StoredEvent.id.desc())
        .limit(size)
        .offset((max(page, 1) - 1) * size)
    )
    return [to_dict(r[0], r[1], r[2], r[3]) for r in rows], int(total)


def trajectory(ctx: Ctx, f: EventFilter, limit: int = 2000) -> list[dict[str, Any]]:
    """Every sighting of one subject in a time range, oldest first, with place and device."""
    if f.person_id is None and f.vehicle_id is None and not (f.subject_type and f.subject_value):
        raise ValidationFailed.one("subject", "name a person, a vehicle, or a subject and value")
    rows = ctx.session.execute(_query(ctx, f).order_by(StoredEvent.at, StoredEvent.id).limit(limit))
    return [to_dict(r[0], r[1], r[2], r[3]) for r in rows]


def to_dict(e: StoredEvent, device_code: str, device_name: str, community: str) -> dict[str, Any]:
    """The shape of an event in API answers and on the live feed."""
    return {
        "id": e.id,
        "event_id": e.event_key,
        "kind": e.kind,
        "at": e.at.isoformat(),
        "received_at": e.received_at.isoformat(),
        "community_id": e.community_id,
        "community": community,
        "device": device_code,
        "device_name": device_name,
        "subject": {"type": e.subject_type, "value": e.subject_value} if e.subject_type else None,
        "direction": e.direction,
        "value": e.value,
        "data": e.data,
        "image": e.image,
        "history": e.history,
        "person_id": e.person_id,
        "vehicle_id": e.vehicle_id,
        "house_id": e.house_id,
    }
