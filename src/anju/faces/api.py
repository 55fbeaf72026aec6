"""JSON API of faces: search by photo (police only, audited with its reason), strangers and
their corrections, 1:1 verification, a person's enrolled faces, and "not this person".

Photos travel as ``multipart/form-data``; everything else as JSON. The same permissions as
the console: ``face.view`` to see, ``face.manage`` to change, ``face.search`` to search.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, File, Form, UploadFile

from anju.core.errors import ValidationFailed
from anju.faces import views
from anju.faces.views import MANAGE, MAX_PHOTO_BYTES, MAX_PHOTOS, SEARCH, VIEW, require
from anju.registry import service as registry
from anju.registry.models import Person
from anju.web.deps import ApiCsrfDep, ApiCtx, NodeDep

router = APIRouter(prefix="/api/v1", tags=["faces"])

Photo = Annotated[UploadFile, File(description="a JPEG or PNG photo with one face")]


# Permissions are checked in dependencies: they run before the upload is validated, so a
# caller without the permission hears 403 (or 404 out of scope), never a 422 about the form.
def _may_search(ctx: ApiCtx) -> None:
    require(ctx, SEARCH)


def _may_manage(ctx: ApiCtx) -> None:
    require(ctx, MANAGE)


def _person_to_manage(ctx: ApiCtx, record_id: int) -> Person:
    require(ctx, "person.view", VIEW, MANAGE)
    return registry.people.get(ctx, record_id)


MaySearch = Depends(_may_search)
MayManage = Depends(_may_manage)
ManagedPerson = Annotated[Person, Depends(_person_to_manage)]


async def _read(files: list[UploadFile], field: str) -> list[bytes]:
    if len(files) > MAX_PHOTOS:
        raise ValidationFailed.one(field, views._TOO_MANY)
    out = []
    for f in files:
        data = await f.read(MAX_PHOTO_BYTES + 1)
        if len(data) > MAX_PHOTO_BYTES:
            raise ValidationFailed.one(field, views._TOO_LARGE)
        if data:
            out.append(data)
    if not out:
        raise ValidationFailed.one(field, views._NO_PHOTO)
    return out


def stranger_out(s: Any) -> dict[str, Any]:
    return {
        "id": s.id,
        "code": s.code,
        "community_id": s.community_id,
        "first_seen": s.first_seen.isoformat(),
        "last_seen": s.last_seen.isoformat(),
        "sightings": s.sightings,
        "person_id": s.person_id,
        "templates": s.templates,
    }


@router.post("/faces/search", dependencies=[MaySearch, ApiCsrfDep], name="api_faces_search")
async def search(
    ctx: ApiCtx,
    node: NodeDep,
    image: Photo,
    reason: Annotated[str, Form(description="why you search (事由); recorded in the audit log")],
    limit: Annotated[int, Form(ge=1, le=50)] = 10,
) -> dict[str, Any]:
    """以图搜人 — ranked candidates among residents, watchlist entries and strangers of your
    area, nearest first (`face.search`, police roles). `match` is true within the threshold;
    `sightings` is the console page of where the candidate was seen."""
    photo = (await _read([image], "image"))[0]
    found = node.faces.search_by_photo(ctx, photo, reason, limit=limit)
    rows = views.candidate_rows(ctx, node, found)
    ctx.session.commit()
    for row in rows:
        row["sightings"] = row.pop("sightings_href")
        del row["href"]
    return {"candidates": rows}


@router.post("/faces/verify", dependencies=[MayManage, ApiCsrfDep], name="api_faces_verify")
async def verify(
    ctx: ApiCtx,
    node: NodeDep,
    image_a: Annotated[UploadFile, File(description="the registration photo")],
    image_b: Annotated[UploadFile, File(description="the photo of the ID card")],
) -> dict[str, Any]:
    """人证核验 — 1:1: are the two photos the same person (`face.manage`)?"""
    a = (await _read([image_a], "image_a"))[0]
    b = (await _read([image_b], "image_b"))[0]
    result = node.faces.verify(a, b)
    return {
        "same": bool(result.same),
        "distance": float(result.distance),
        "threshold": float(result.threshold),
    }


@router.get("/people/{record_id}/faces", name="api_person_faces")
def person_faces(ctx: ApiCtx, node: NodeDep, record_id: int) -> dict[str, Any]:
    """How many face photos of a person are enrolled (`face.view`)."""
    require(ctx, "person.view", VIEW)
    person = registry.people.get(ctx, record_id)
    return {"person_id": person.id, "faces": node.faces.face_count(ctx, person.id)}


@router.post("/people/{record_id}/faces", dependencies=[ApiCsrfDep], name="api_faces_enroll")
async def enroll(
    ctx: ApiCtx,
    node: NodeDep,
    person: ManagedPerson,
    images: Annotated[list[UploadFile], File(description="one face per photo; all or none")],
) -> dict[str, Any]:
    """Enroll registration photos of a person (`face.manage`): every photo or, on any error
    (no face, several faces, not an image), none."""
    added = node.faces.enroll(ctx, person.id, await _read(images, "images"))
    count = node.faces.face_count(ctx, person.id)
    ctx.session.commit()
    return {"person_id": person.id, "added": added, "faces": count}


@router.delete("/people/{record_id}/faces", dependencies=[ApiCsrfDep], name="api_faces_forget")
def forget(ctx: ApiCtx, node: NodeDep, person: ManagedPerson) -> dict[str, Any]:
    """Remove every enrolled face of a person (`face.manage`)."""
    removed = node.faces.forget_person(ctx, person.id)
    ctx.session.commit()
    return {"person_id": person.id, "removed": removed}


@router.get("/faces/strangers", name="api_strangers")
def strangers(
    ctx: ApiCtx,
    node: NodeDep,
    community_id: int | None = None,
    limit: int = 50,
    offset: int = 0,
) -> dict[str, Any]:
    """陌生人 — stranger clusters of your area, most recently seen first (`face.view`)."""
    require(ctx, VIEW)
    items = node.faces.strangers(
        ctx, community_id=community_id, limit=max(1, min(limit, 500)), offset=max(0, offset)
    )
    return {"items": [stranger_out(s) for s in items]}


@router.get("/faces/strangers/{record_id}", name="api_stranger")
def stranger(ctx: ApiCtx, node: NodeDep, record_id: int) -> dict[str, Any]:
    """One stranger with its sightings (events, oldest first; `event.view` for those)."""
    require(ctx, VIEW)
    s = node.faces.stranger(ctx, record_id)
    seen = views.sightings(ctx, s.code) if ctx.actor.can("event.view") else []
    return {**stranger_out(s), "events": seen}


@router.post(
    "/faces/strangers/{record_id}/{action}", dependencies=[ApiCsrfDep], name="api_stranger_act"
)
def stranger_act(
    ctx: ApiCtx,
    node: NodeDep,
    record_id: int,
    action: str,
    body: dict[str, Any] | None = Body(default=None),
) -> dict[str, Any]:
    """Correct a stranger (`face.manage`): `merge` ({"other_id"} or {"code"}: that cluster
    joins this one), `split` ({"event_ids": [...]}: those sightings become a new cluster,
    returned), `link` ({"person_id"}: the cluster's sightings count as that person's)."""
    require(ctx, VIEW, MANAGE)
    node.faces.stranger(ctx, record_id)
    fields = dict(body or {})
    event_ids = fields.pop("event_ids", None) or []
    if not isinstance(event_ids, list):
        raise ValidationFailed.one("event_ids", "must be a list")
    target = views.apply(ctx, node, record_id, action, fields, event_ids)
    out = stranger_out(node.faces.stranger(ctx, target))
    ctx.session.commit()
    return out


@router.post(
    "/events/{record_id}/not-this-person",
    dependencies=[ApiCsrfDep],
    name="api_faces_not_this_person",
)
def not_this_person(
    ctx: ApiCtx,
    node: NodeDep,
    record_id: int,
    body: dict[str, Any] | None = Body(default=None),
) -> dict[str, Any]:
    """不是此人 — this event's face is not whom it was matched to ({"reason"}, `face.manage`);
    the same wrong match is not made again."""
    require(ctx, "event.view", VIEW, MANAGE)
    views.event_of(ctx, record_id)
    node.faces.not_this_person(ctx, record_id, str((body or {}).get("reason") or ""))
    ctx.session.commit()
    return {"event_id": record_id, "rejected": True}
