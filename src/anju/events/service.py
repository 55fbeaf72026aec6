"""Finding events: search with filters, trajectories (轨迹) of a person, vehicle, card, MAC,
and an event's image.

All read through :func:`anju.core.scope.restrict`, so a caller sees only the communities
under their node.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import DateTime, Integer, bindparam, func, literal_column, select, type_coerce

from anju.audit import service as audit
from anju.core.context import Ctx
from anju.core.errors import NotFound, PermissionDenied, ValidationFailed
from anju.core.scope import Actor, restrict
from anju.devices.models import Device
from anju.events import normalise
from anju.events.blobs import FolderBlobs
from anju.events.model import Kind, SubjectType
from anju.events.models import StoredEvent
from anju.org.models import OrgUnit
from anju.registry.models import Person

MAX_RANGE = dt.timedelta(days=366)
# Images of these show a face: personal data, so every look at one is audited (as a reveal).
FACE_KINDS = frozenset({Kind.ACCESS_FACE.value, Kind.CAPTURE_FACE.value})


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
    exclude_kinds: frozenset[str] = frozenset()


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


# What a search or trajectory reads, in the order ``_from_row`` unpacks it. Columns, not the
# ORM entity: a trajectory returns hundreds of rows, and an identity-mapped object per row
# made 300 rows take ~10 ms instead of ~7 ms (docs/performance.md, "Trajectory").
_COLUMNS = (
    StoredEvent.id,
    StoredEvent.event_key,
    StoredEvent.kind,
    StoredEvent.at,
    StoredEvent.received_at,
    StoredEvent.community_id,
    OrgUnit.name,
    Device.code,
    Device.name,
    StoredEvent.subject_type,
    StoredEvent.subject_value,
    StoredEvent.direction,
    StoredEvent.value,
    StoredEvent.data,
    StoredEvent.image,
    StoredEvent.history,
    StoredEvent.person_id,
    StoredEvent.vehicle_id,
    StoredEvent.house_id,
)


def _query(ctx: Ctx, f: EventFilter) -> Any:
    stmt: Any = restrict(
        select(*_COLUMNS)
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
    if f.exclude_kinds:
        stmt = stmt.where(StoredEvent.kind.not_in(sorted(f.exclude_kinds)))
    if not f.include_history:
        stmt = stmt.where(StoredEvent.history.is_(False))
    return stmt


def search(
    ctx: Ctx, f: EventFilter, page: int = 1, size: int = 50, *, count: bool = True
) -> tuple[list[dict[str, Any]], int]:
    """Events matching the filter, newest first, one page; and the total (0 unless
    ``count``: counting every matching event costs more than the page when there are
    millions, and a feed of the latest events needs no total)."""
    stmt = _query(ctx, f)
    total = ctx.session.scalar(select(func.count()).select_from(stmt.subquery())) if count else 0
    rows = ctx.session.execute(
        stmt.order_by(StoredEvent.at.desc(), StoredEvent.id.desc())
        .limit(size)
        .offset((max(page, 1) - 1) * size)
    )
    items = [for_actor(ctx.actor, _from_row(r)) for r in rows]
    return with_person_names(ctx, items), int(total or 0)


def trajectory(ctx: Ctx, f: EventFilter, limit: int = 2000) -> list[dict[str, Any]]:
    """Every sighting of one subject in a time range, oldest first: what the trajectory page
    (轨迹分析) and ``GET /api/v1/trajectory`` show.

    A sighting is lean (:func:`_lean_sighting`): time, kind, community, device, subject and
    direction, no ``data``, value or image. Those are what the subject indexes carry, so on
    PostgreSQL the read is an index-only scan and a busy subject's ~1,000 sightings cost no
    heap block each (docs/performance.md, "Trajectory"; decision 0003). Nothing of a face
    match is in it: whether a sighting was a face is its ``kind`` (:data:`FACE_KINDS`), and
    the match itself is on the event's own page, shown there by :func:`for_actor`.
    """
    rows = _run_trajectory(ctx, f, limit, lean=True)
    return [_lean_sighting(r) for r in rows]


def trajectory_events(ctx: Ctx, f: EventFilter, limit: int = 2000) -> list[dict[str, Any]]:
    """Every event of one subject in a time range, oldest first, whole: each has the shape of
    :func:`to_dict` and is shown as :func:`for_actor` lets the caller see it. For the few
    pages that need what a sighting leaves out (a stranger's sightings show each face's
    distance and photo); it reads each event's heap row, so it is the slower path."""
    rows = _run_trajectory(ctx, f, limit, lean=False)
    actor = ctx.actor
    return [for_actor(actor, _sighting(r)) for r in rows]


def _run_trajectory(ctx: Ctx, f: EventFilter, limit: int, *, lean: bool) -> Sequence[Any]:
    """The rows of a trajectory statement (see :func:`_trajectory_statement`)."""
    dialect = _dialect(ctx)
    stmt = _trajectory_statement(dialect, ctx.actor, _trajectory_shape(f), lean)
    session = ctx.session
    if session.autoflush:  # as the ORM would before a query: the caller's pending events too
        session.flush()
    # Core, not ORM, execution, and on PostgreSQL the driver's own tuples: the statement's
    # columns need no conversion there (naive UTC times, JSON decoded by psycopg), and
    # SQLAlchemy's ORM and row layers cost ~0.5 ms per 300 rows (docs/performance.md).
    result = session.connection().execute(stmt, _trajectory_params(f, limit))
    if dialect == "postgresql":
        rows: Sequence[Any] = result.cursor.fetchall()
        result.close()
        return rows
    return result.all()


def for_actor(actor: Actor, item: dict[str, Any]) -> dict[str, Any]:
    """An event as ``actor`` may see it: how a face was matched (distance, stranger code)
    only with ``face.view``, and that a face is on a watchlist only for the police — property
    staff see the event, not that the police are looking for that face. Returns a copy when
    something is taken out (the live feed hands the same item to every listener)."""
    data = item.get("data")
    face = data.get("face") if isinstance(data, dict) else None
    if not isinstance(face, dict):
        return item
    if not actor.can("face.view"):
        shown = {k: v for k, v in data.items() if k != "face"}  # type: ignore[union-attr]
    elif "watch" in face and not actor.police:
        shown = {**data, "face": {k: v for k, v in face.items() if k != "watch"}}  # type: ignore[dict-item]
    else:
        return item
    return {**item, "data": shown}


def with_person_names(ctx: Ctx, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Add ``person_name`` to events that name a registered person, for callers who may see
    people (one query per page; people outside the caller's scope stay unnamed)."""
    ids = {e["person_id"] for e in items if e.get("person_id") is not None}
    names: dict[int, str] = {}
    if ids and ctx.actor.can("person.view"):
        rows = ctx.session.execute(
            restrict(select(Person.id, Person.name).where(Person.id.in_(ids)), Person, ctx.actor)
        )
        names = {int(r[0]): str(r[1]) for r in rows}
    for e in items:
        e["person_name"] = names.get(e["person_id"]) if e.get("person_id") is not None else None
    return items


def trajectory_query(ctx: Ctx, f: EventFilter, limit: int = 2000, *, lean: bool = True) -> Any:
    """The statement behind :func:`trajectory` (or, not ``lean``, :func:`trajectory_events`)
    with the filter's values bound in (bench/trajectory.py EXPLAINs it,
    tests/test_event_indexes.py checks its index).

    It reads through the subject's own index (person, vehicle or subject + time); the time
    range prunes the monthly partitions on PostgreSQL (decision 0003). The lean statement
    reads only columns that index carries, so PostgreSQL answers it from the index alone.
    """
    stmt = _trajectory_statement(_dialect(ctx), ctx.actor, _trajectory_shape(f), lean)
    return stmt.params(_trajectory_params(f, limit))


# A sighting's timestamps, read as naive UTC. On PostgreSQL the server converts them
# (``timezone('UTC', at)``, whatever the session's time zone), so neither psycopg nor
# UTCDateTime attaches and converts a zone per value; SQLite stores naive UTC already.
def _naive_utc(column: Any, dialect: str) -> Any:
    if dialect == "postgresql":
        return func.timezone(literal_column("'UTC'"), column, type_=DateTime())
    return type_coerce(column, DateTime())


# The filter fields a trajectory statement is built from. EventFilter must not gain a field
# this path ignores (tests/test_trajectory.py holds the two together).
TRAJECTORY_FILTER_FIELDS = frozenset(
    {
        "community_id",
        "device",
        "kind",
        "subject_type",
        "subject_value",
        "person_id",
        "vehicle_id",
        "since",
        "until",
        "include_history",
        "exclude_kinds",
    }
)


@dataclass(frozen=True)
class _Shape:
    """Which of a filter's conditions a trajectory statement has: its values are bound
    per call, so every trajectory of one shape and caller runs one statement."""

    community: bool
    device: bool
    kind: bool
    subject: bool
    person: bool
    vehicle: bool
    since: bool
    until: bool
    include_history: bool
    exclude_kinds: frozenset[str]


def _dialect(ctx: Ctx) -> str:
    return str(ctx.session.get_bind().dialect.name)


def _trajectory_shape(f: EventFilter) -> _Shape:
    """The filter's shape, after the checks :func:`_query` makes of a search."""
    subject = bool(f.subject_type and f.subject_value)
    if f.person_id is None and f.vehicle_id is None and not subject:
        raise ValidationFailed.one("subject", "name a person, a vehicle, or a subject and value")
    if f.since and f.until and f.until - f.since > MAX_RANGE:
        raise ValidationFailed.one("until", "a search covers at most one year")
    if f.kind and f.kind not in {k.value for k in Kind}:
        raise ValidationFailed.one("kind", "unknown event kind")
    return _Shape(
        community=f.community_id is not None,
        device=bool(f.device),
        kind=bool(f.kind),
        subject=subject,
        person=f.person_id is not None,
        vehicle=f.vehicle_id is not None,
        since=bool(f.since),
        until=bool(f.until),
        include_history=f.include_history,
        exclude_kinds=f.exclude_kinds,
    )


def _trajectory_params(f: EventFilter, limit: int) -> dict[str, Any]:
    """The values bound into a trajectory statement of the filter's shape."""
    params: dict[str, Any] = {"limit": limit}
    if f.community_id is not None:
        params["community_id"] = f.community_id
    if f.device:
        params["device"] = f.device
    if f.kind:
        params["kind"] = f.kind
    if f.subject_type and f.subject_value:
        params["subject_type"] = f.subject_type
        params["subject_value"] = normalised_subject(f.subject_type, f.subject_value)
    if f.person_id is not None:
        params["person_id"] = f.person_id
    if f.vehicle_id is not None:
        params["vehicle_id"] = f.vehicle_id
    if f.since:
        params["since"] = f.since
    if f.until:
        params["until"] = f.until
    return params


# What a lean sighting reads, in the order ``_lean_sighting`` unpacks it: besides the names
# of community and device (joined from their small tables), only columns that each subject
# index carries as key or INCLUDE (models.py, migration 0012). A column added here must be
# added to those indexes too, or PostgreSQL goes back to the heap for every sighting.
_LEAN_COLUMNS = (
    StoredEvent.id,
    StoredEvent.kind,
    StoredEvent.at,  # read as naive UTC (third)
    StoredEvent.community_id,
    OrgUnit.name,
    Device.code,
    Device.name,
    StoredEvent.subject_type,
    StoredEvent.subject_value,
    StoredEvent.direction,
)


@functools.lru_cache(maxsize=512)
def _trajectory_statement(dialect: str, actor: Actor, shape: _Shape, lean: bool) -> Any:
    """The trajectory statement for one caller and filter shape, built once.

    The same conditions as :func:`_query` (and the same scope filter, through
    :func:`restrict`), but with the filter's values as named parameters, so a call neither
    builds the statement nor derives SQLAlchemy's cache key for it again (~0.2 ms). Its one
    SQL text per shape is what lets psycopg prepare it on each pooled connection (after five
    runs in transactions that commit), and PostgreSQL then reuses a generic plan instead of
    planning each call; run-time pruning still keeps it to the window's partitions. Cached
    per actor, not per ``org_path``, so that the scope filter may come to depend on more of
    the caller without this cache going stale. ``lean`` reads only what a sighting shows
    (``_LEAN_COLUMNS``, all in the subject indexes), otherwise every column of an event.
    """
    columns: tuple[Any, ...]
    if lean:
        columns = (
            *_LEAN_COLUMNS[:2],
            _naive_utc(StoredEvent.at, dialect).label("at"),
            *_LEAN_COLUMNS[3:],
        )
    else:
        # _COLUMNS, with ``at`` and ``received_at`` (the fourth and fifth) read as naive UTC.
        columns = (
            *_COLUMNS[:3],
            _naive_utc(StoredEvent.at, dialect).label("at"),
            _naive_utc(StoredEvent.received_at, dialect).label("received_at"),
            *_COLUMNS[5:],
        )
    stmt: Any = restrict(
        select(*columns)
        .join(Device, Device.id == StoredEvent.device_id)
        .join(OrgUnit, OrgUnit.id == StoredEvent.community_id),
        StoredEvent,
        actor,
    )
    if shape.community:
        stmt = stmt.where(StoredEvent.community_id == bindparam("community_id"))
    if shape.device:
        stmt = stmt.where(Device.code == bindparam("device"))
    if shape.kind:
        stmt = stmt.where(StoredEvent.kind == bindparam("kind"))
    if shape.subject:
        stmt = stmt.where(
            StoredEvent.subject_type == bindparam("subject_type"),
            StoredEvent.subject_value == bindparam("subject_value"),
        )
    if shape.person:
        stmt = stmt.where(StoredEvent.person_id == bindparam("person_id"))
    if shape.vehicle:
        stmt = stmt.where(StoredEvent.vehicle_id == bindparam("vehicle_id"))
    if shape.since:
        stmt = stmt.where(StoredEvent.at >= bindparam("since"))
    if shape.until:
        stmt = stmt.where(StoredEvent.at < bindparam("until"))
    if shape.exclude_kinds:
        stmt = stmt.where(StoredEvent.kind.not_in(sorted(shape.exclude_kinds)))
    if not shape.include_history:
        stmt = stmt.where(StoredEvent.history.is_(False))
    return stmt.order_by(StoredEvent.at, StoredEvent.id).limit(bindparam("limit", type_=Integer()))


def _lean_sighting(r: Sequence[Any]) -> dict[str, Any]:
    """A trajectory's sighting from a lean statement's row (naive UTC time, as below)."""
    (
        ident,
        kind,
        at,
        community_id,
        community,
        device_code,
        device_name,
        subject_type,
        subject_value,
        direction,
    ) = r
    return {
        "id": ident,
        "kind": kind,
        "at": at.isoformat() + "+00:00",
        "community_id": community_id,
        "community": community,
        "device": device_code,
        "device_name": device_name,
        "subject": {"type": subject_type, "value": subject_value} if subject_type else None,
        "direction": direction,
    }


def _sighting(r: Sequence[Any]) -> dict[str, Any]:
    """An event in the shape of :func:`_from_row` from a trajectory statement's row, whose
    timestamps are naive UTC (the same ISO text an aware UTC time gives, at less cost)."""
    return _from_row(r, utc_suffix="+00:00")


def to_dict(e: StoredEvent, device_code: str, device_name: str, community: str) -> dict[str, Any]:
    """The shape of an event in API answers and on the live feed."""
    return _from_row(
        (
            e.id,
            e.event_key,
            e.kind,
            e.at,
            e.received_at,
            e.community_id,
            community,
            device_code,
            device_name,
            e.subject_type,
            e.subject_value,
            e.direction,
            e.value,
            e.data,
            e.image,
            e.history,
            e.person_id,
            e.vehicle_id,
            e.house_id,
        )
    )


def _from_row(r: Sequence[Any], utc_suffix: str = "") -> dict[str, Any]:
    """An event's API shape from the values of ``_COLUMNS``, in that order; ``utc_suffix``
    is added to the two times' text (for naive UTC times)."""
    (
        ident,
        key,
        kind,
        at,
        received_at,
        community_id,
        community,
        device_code,
        device_name,
        subject_type,
        subject_value,
        direction,
        value,
        data,
        image,
        history,
        person_id,
        vehicle_id,
        house_id,
    ) = r
    return {
        "id": ident,
        "event_id": key,
        "kind": kind,
        "at": at.isoformat() + utc_suffix,
        "received_at": received_at.isoformat() + utc_suffix,
        "community_id": community_id,
        "community": community,
        "device": device_code,
        "device_name": device_name,
        "subject": {"type": subject_type, "value": subject_value} if subject_type else None,
        "direction": direction,
        "value": value,
        "data": data,
        "image": image,
        "history": history,
        "person_id": person_id,
        "vehicle_id": vehicle_id,
        "house_id": house_id,
    }


def shows_face(kind: str, subject_type: str | None) -> bool:
    """Whether an event's image is of a face (and so personal data whose viewing is audited)."""
    return kind in FACE_KINDS or subject_type == SubjectType.FACE.value


def image(ctx: Ctx, blobs: FolderBlobs, event_id: int) -> bytes:
    """An event's JPEG for a caller who may see the event; a face image's viewing is audited.

    Out of scope, unknown, without an image or past retention all look the same: NotFound.
    """
    if not ctx.actor.can("event.view"):
        raise PermissionDenied("event.view")
    row = ctx.session.execute(
        restrict(
            select(
                StoredEvent.id,
                StoredEvent.kind,
                StoredEvent.subject_type,
                StoredEvent.image,
                StoredEvent.community_id,
                StoredEvent.person_id,
            ).where(StoredEvent.id == event_id),
            StoredEvent,
            ctx.actor,
        )
    ).first()
    data = blobs.get(row.image) if row is not None and row.image else None
    if row is None or data is None:
        raise NotFound(f"event {event_id} has no image")
    if shows_face(row.kind, row.subject_type):
        # Against the person when the face is someone registered: they see it on /me
        # under "who looked at my record"; a stranger's face is recorded against the event.
        audit.record(
            ctx.session,
            "event.image_view",
            entity="persons" if row.person_id is not None else "events",
            entity_id=row.person_id if row.person_id is not None else row.id,
            community_id=row.community_id,
            detail={"kind": row.kind, "event_id": row.id, "person_id": row.person_id},
        )
    return data
