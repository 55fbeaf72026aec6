"""Console pages of faces: a person's enrolled faces and 1:1 verification (人证核验), search
by photo (以图搜人, police only), strangers (陌生人) with merge / split / link, and "not this
person" (不是此人) on an event whose face was matched.

Every page reads and writes through ``node.faces`` (:class:`anju.faces.service.FaceService`),
which applies the caller's scope and audits searches; these pages only turn forms into
calls and results into HTML.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import select
from starlette.datastructures import FormData, UploadFile

from anju.core.context import Ctx
from anju.core.errors import NotFound, PermissionDenied, ValidationFailed
from anju.core.scope import restrict
from anju.devices.models import Device
from anju.events import service as event_service
from anju.events.model import Kind, SubjectType
from anju.events.models import StoredEvent
from anju.faces.models import StrangerCluster
from anju.org.models import OrgUnit
from anju.registry import service as registry
from anju.registry.models import Person
from anju.web import forms
from anju.web.deps import ConsoleCtx, CsrfDep, NodeDep
from anju.web.labels import LABELS
from anju.web.templating import render

router = APIRouter(include_in_schema=False)

VIEW, MANAGE, SEARCH = "face.view", "face.manage", "face.search"
MAX_PHOTO_BYTES = 10 * 1024 * 1024
MAX_PHOTOS = 10
PAGE_SIZE = 50
# Message ids of this module's own errors (collected by anju.web.i18n_catalog).
_NO_PHOTO = "choose at least one photo"
_TOO_MANY = "at most 10 photos at a time"
_TOO_LARGE = "a photo may be at most 10 MB"
_NO_SIGHTING = "choose at least one sighting"
_NO_STRANGER = "no stranger with this code in your area"
_SAME_STRANGER = "that is this stranger itself"
# Shown against these form fields; anything else goes at the top of the form.
PHOTO_FIELDS = ("image", "images", "photos", "photo")


def require(ctx: Ctx, *perms: str) -> None:
    """Refuse unless the caller holds every permission named."""
    for perm in perms:
        if not ctx.actor.can(perm):
            raise PermissionDenied(perm)


async def photos_of(form: FormData, name: str, *, required: bool = True) -> list[bytes]:
    """The files uploaded under ``name`` (empty file inputs skipped), size-checked."""
    files = [f for f in form.getlist(name) if isinstance(f, UploadFile) and f.filename]
    if len(files) > MAX_PHOTOS:
        raise ValidationFailed.one(name, _TOO_MANY)
    photos = []
    for f in files:
        data = await f.read(MAX_PHOTO_BYTES + 1)
        if len(data) > MAX_PHOTO_BYTES:
            raise ValidationFailed.one(name, _TOO_LARGE)
        if data:
            photos.append(data)
    if required and not photos:
        raise ValidationFailed.one(name, _NO_PHOTO)
    return photos


def errors_of(exc: ValidationFailed, rename: dict[str, str] | None = None) -> dict[str, str]:
    """field → first message, with the service's field names mapped onto the form's."""
    out: dict[str, str] = {}
    for e in exc.errors:
        field = (rename or {}).get(e.field, e.field)
        out.setdefault(field, e.message)
    return out


def _text(form: FormData, name: str) -> str:
    value = form.get(name)
    return value.strip() if isinstance(value, str) else ""


def _htmx(request: Request) -> bool:
    return request.headers.get("hx-request") == "true"


def community_names(ctx: Ctx, ids: set[int]) -> dict[int, str]:
    if not ids:
        return {}
    rows = ctx.session.execute(select(OrgUnit.id, OrgUnit.name).where(OrgUnit.id.in_(ids)))
    return {int(r[0]): str(r[1]) for r in rows}


def person_names(ctx: Ctx, ids: set[int]) -> dict[int, str]:
    """Names of registered people in the caller's scope (others stay unnamed)."""
    if not ids or not ctx.actor.can("person.view"):
        return {}
    rows = ctx.session.execute(
        restrict(select(Person.id, Person.name).where(Person.id.in_(ids)), Person, ctx.actor)
    )
    return {int(r[0]): str(r[1]) for r in rows}


def stranger_id_by_code(ctx: Ctx, code: str) -> int:
    """The id of the stranger cluster with this code in the caller's scope."""
    code = code.strip().upper()
    found = ctx.session.scalar(
        restrict(
            select(StrangerCluster.id).where(StrangerCluster.code == code),
            StrangerCluster,
            ctx.actor,
        )
    )
    if not code or found is None:
        raise ValidationFailed.one("code", _NO_STRANGER)
    return int(found)


def sightings(ctx: Ctx, code: str) -> list[dict[str, Any]]:
    """A stranger's sightings: the events whose subject is its face code, oldest first."""
    f = event_service.EventFilter(subject_type=SubjectType.FACE.value, subject_value=code)
    return event_service.trajectory_events(ctx, f)


def event_of(ctx: Ctx, event_id: int) -> dict[str, Any]:
    """One stored event in the caller's scope in its API shape, or NotFound."""
    row = ctx.session.execute(
        restrict(
            select(StoredEvent, Device.code, Device.name, OrgUnit.name)
            .join(Device, Device.id == StoredEvent.device_id)
            .join(OrgUnit, OrgUnit.id == StoredEvent.community_id)
            .where(StoredEvent.id == event_id),
            StoredEvent,
            ctx.actor,
        )
    ).first()
    if row is None:
        raise NotFound(f"event {event_id}")
    shown = event_service.for_actor(ctx.actor, event_service.to_dict(*row))
    return event_service.with_person_names(ctx, [shown])[0]


def _labels() -> dict[str, Any]:
    return {
        "kind_labels": LABELS[Kind],
        "subject_labels": LABELS[SubjectType],
        "face_kinds": event_service.FACE_KINDS,
    }


# --- a person's faces (人脸) and 1:1 verification (人证核验) ---------------------------------


def _person_panel(
    request: Request,
    ctx: Ctx,
    node: Any,
    person: Person,
    *,
    errors: dict[str, str] | None = None,
    notice: str | None = None,
    verification: Any = None,
    status_code: int = 200,
) -> Response:
    """The 人脸 panel: as a fragment for HTMX (always 200, so HTMX swaps in the errors) or
    as a page of its own."""
    fragment = _htmx(request)
    return render(
        request,
        "faces/_person_panel.html" if fragment else "faces/person.html",
        status_code=200 if fragment else status_code,
        person=person,
        count=node.faces.face_count(ctx, person.id),
        can_manage=ctx.actor.can(MANAGE),
        errors=errors or {},
        notice=notice,
        verification=verification,
    )


def _person(ctx: Ctx, record_id: int) -> Person:
    require(ctx, "person.view", VIEW)
    return registry.people.get(ctx, record_id)


@router.get("/people/{record_id}/faces", response_class=HTMLResponse, name="faces_person")
def person_faces(request: Request, ctx: ConsoleCtx, node: NodeDep, record_id: int) -> Response:
    """人脸 — how many face photos of a person are enrolled; forms to add, remove, verify."""
    return _person_panel(request, ctx, node, _person(ctx, record_id))


@router.post("/people/{record_id}/faces", dependencies=[CsrfDep], name="faces_enroll")
async def enroll(request: Request, ctx: ConsoleCtx, node: NodeDep, record_id: int) -> Response:
    """Enroll one or more photos of a person: all of them or none."""
    person = _person(ctx, record_id)
    require(ctx, MANAGE)
    form = await request.form()
    try:
        added = node.faces.enroll(ctx, person.id, await photos_of(form, "photos"))
    except ValidationFailed as exc:
        ctx.session.rollback()
        person = _person(ctx, record_id)
        errors = errors_of(exc, {f: "photos" for f in PHOTO_FIELDS})
        return _person_panel(request, ctx, node, person, errors=errors, status_code=422)
    ctx.session.commit()
    if not _htmx(request):
        return RedirectResponse(f"/people/{record_id}/faces?added={added}", 303)
    return _person_panel(request, ctx, node, person, notice="enrolled")


@router.post("/people/{record_id}/faces/remove", dependencies=[CsrfDep], name="faces_forget")
def forget(request: Request, ctx: ConsoleCtx, node: NodeDep, record_id: int) -> Response:
    """Remove every enrolled face of a person."""
    person = _person(ctx, record_id)
    require(ctx, MANAGE)
    node.faces.forget_person(ctx, person.id)
    ctx.session.commit()
    if not _htmx(request):
        return RedirectResponse(f"/people/{record_id}/faces", 303)
    return _person_panel(request, ctx, node, person, notice="removed")


@router.post("/people/{record_id}/faces/verify", dependencies=[CsrfDep], name="faces_verify")
async def verify(request: Request, ctx: ConsoleCtx, node: NodeDep, record_id: int) -> Response:
    """人证核验 — the registration photo against the ID card's photo: same person or not."""
    person = _person(ctx, record_id)
    require(ctx, MANAGE)
    form = await request.form()
    try:
        photo = await photos_of(form, "photo")
        card = await photos_of(form, "card_photo")
        if len(photo) > 1 or len(card) > 1:
            raise ValidationFailed.one("photo" if len(photo) > 1 else "card_photo", _TOO_MANY)
        result = node.faces.verify(photo[0], card[0])
    except ValidationFailed as exc:
        rename = {"image_a": "photo", "image": "photo", "image_b": "card_photo"}
        errors = errors_of(exc, rename)
        return _person_panel(request, ctx, node, person, errors=errors, status_code=422)
    return _person_panel(request, ctx, node, person, verification=result)


# --- search by photo (以图搜人) ------------------------------------------------------------


@router.get("/faces/search", response_class=HTMLResponse, name="faces_search")
def search_page(request: Request, ctx: ConsoleCtx) -> Response:
    """以图搜人 — upload a face and a reason; police only."""
    require(ctx, SEARCH)
    return render(request, "faces/search.html", errors={}, candidates=None, reason="")


@router.post("/faces/search", dependencies=[CsrfDep], name="faces_search_run")
async def search_run(request: Request, ctx: ConsoleCtx, node: NodeDep) -> Response:
    """Ranked candidates among residents, watchlists and strangers of one's area."""
    require(ctx, SEARCH)
    form = await request.form()
    reason = _text(form, "reason")
    try:
        photos = await photos_of(form, "photo")
        if len(photos) > 1:
            raise ValidationFailed.one("photo", _TOO_MANY)
        found = node.faces.search_by_photo(ctx, photos[0], reason)
    except ValidationFailed as exc:
        ctx.session.rollback()
        errors = errors_of(exc, {f: "photo" for f in PHOTO_FIELDS})
        return render(
            request,
            "faces/search.html",
            status_code=422,
            errors=errors,
            candidates=None,
            reason=reason,
        )
    ctx.session.commit()  # the audit entry of the search
    return render(
        request,
        "faces/search.html",
        errors={},
        candidates=candidate_rows(ctx, node, found),
        reason=reason,
    )


def threshold_of(node: Any) -> float:
    """The match threshold in force (the service's, else the documented default 0.6)."""
    value = getattr(node.faces, "threshold", None)
    return float(value) if isinstance(value, int | float) else 0.6


def candidate_rows(ctx: Ctx, node: Any, found: Sequence[Any]) -> list[dict[str, Any]]:
    """Candidates as the page and the API show them, each with where to see its sightings."""
    threshold = threshold_of(node)
    names = community_names(ctx, {c.community_id for c in found if c.community_id is not None})
    rows = []
    for c in found:
        if c.kind == "resident":
            href = f"/people/{c.id}"
            sightings_href = f"/trajectory?{urlencode({'person_id': c.id})}"
        elif c.kind == "stranger":
            href = sightings_href = f"/faces/strangers/{c.id}"
        else:
            href, sightings_href = "/admin/watchlists", None
        rows.append(
            {
                "kind": c.kind,
                "id": c.id,
                "label": c.label,
                "distance": round(float(c.distance), 3),
                "similarity": similarity(float(c.distance)),
                "match": float(c.distance) <= threshold,
                "threshold": threshold,
                "community_id": c.community_id,
                "community": names.get(c.community_id) if c.community_id is not None else None,
                "href": href,
                "sightings_href": sightings_href,
            }
        )
    return rows


def similarity(distance: float) -> int:
    """A percentage for people who do not think in distances: 100 at distance 0, 0 at 1.2
    (unrelated faces of the dlib model lie around 0.84, the threshold at 0.6 reads 50 %)."""
    return max(0, min(100, round(100 * (1 - distance / 1.2))))


# --- strangers (陌生人) -----------------------------------------------------------------------


@router.get("/faces/strangers", response_class=HTMLResponse, name="faces_strangers")
def strangers_page(request: Request, ctx: ConsoleCtx, node: NodeDep, page: int = 1) -> Response:
    """陌生人 — unknown faces seen in one's area, most recently seen first."""
    require(ctx, VIEW)
    community = request.query_params.get("community_id", "").strip()
    error = None
    community_id = int(community) if community.isdigit() else None
    if community and community_id is None:
        error = "not a valid number"
    page = max(page, 1)
    items = node.faces.strangers(
        ctx, community_id=community_id, limit=PAGE_SIZE + 1, offset=(page - 1) * PAGE_SIZE
    )
    params = {"community_id": str(community_id)} if community_id is not None else {}
    return render(
        request,
        "faces/strangers.html",
        items=items[:PAGE_SIZE],
        more=len(items) > PAGE_SIZE,
        page=page,
        params=params,
        query=urlencode(params),
        error=error,
        names=community_names(ctx, {s.community_id for s in items}),
        people=person_names(ctx, {s.person_id for s in items if s.person_id}),
        communities=forms.ref_options(ctx, "community"),
    )


def _stranger_page(
    request: Request,
    ctx: Ctx,
    node: Any,
    cluster_id: int,
    *,
    errors: dict[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    stranger = node.faces.stranger(ctx, cluster_id)
    seen = sightings(ctx, stranger.code) if ctx.actor.can("event.view") else []
    return render(
        request,
        "faces/stranger.html",
        status_code=status_code,
        stranger=stranger,
        sightings=list(reversed(seen)),
        community=community_names(ctx, {stranger.community_id}).get(stranger.community_id),
        person_name=person_names(ctx, {stranger.person_id}).get(stranger.person_id)
        if stranger.person_id
        else None,
        can_manage=ctx.actor.can(MANAGE),
        errors=errors or {},
        done=request.query_params.get("done"),
        **_labels(),
    )


@router.get("/faces/strangers/{record_id}", response_class=HTMLResponse, name="faces_stranger")
def stranger_page(request: Request, ctx: ConsoleCtx, node: NodeDep, record_id: int) -> Response:
    """A stranger: when and where it was seen, and the corrections an officer can make."""
    require(ctx, VIEW)
    return _stranger_page(request, ctx, node, record_id)


@router.post("/faces/strangers/{record_id}/{action}", dependencies=[CsrfDep], name="faces_act")
async def stranger_act(
    request: Request, ctx: ConsoleCtx, node: NodeDep, record_id: int, action: str
) -> Response:
    """合并 / 拆分 / 关联: merge another cluster in, split sightings off, link to a person."""
    if action not in ("merge", "split", "link"):
        raise NotFound(f"stranger action {action}")
    require(ctx, VIEW, MANAGE)
    node.faces.stranger(ctx, record_id)  # out of scope: not found, before reading the form
    form = await request.form()
    fields = {k: v for k, v in form.multi_items() if isinstance(v, str)}
    event_ids = [v for v in form.getlist("event_ids") if isinstance(v, str)]
    try:
        target = apply(ctx, node, record_id, action, fields, event_ids)
    except ValidationFailed as exc:
        ctx.session.rollback()
        return _stranger_page(request, ctx, node, record_id, errors=errors_of(exc), status_code=422)
    ctx.session.commit()
    return RedirectResponse(f"/faces/strangers/{target}?done={action}", 303)


def _id(value: Any, field: str) -> int:
    text = str(value if value is not None else "").strip()
    if not text.isdigit():
        raise ValidationFailed.one(field, "not a valid number")
    return int(text)


def apply(
    ctx: Ctx,
    node: Any,
    cluster_id: int,
    action: str,
    fields: dict[str, Any],
    event_ids: Sequence[Any],
) -> int:
    """Run one correction of a stranger cluster (console form or JSON body); returns the id of
    the cluster to show next (the new one after a split)."""
    if action == "merge":
        other = (
            _id(fields["other_id"], "other_id")
            if str(fields.get("other_id") or "").strip()
            else stranger_id_by_code(ctx, str(fields.get("code") or ""))
        )
        if other == cluster_id:
            raise ValidationFailed.one("code", _SAME_STRANGER)
        return int(node.faces.merge(ctx, cluster_id, other).id)
    if action == "split":
        ids = [_id(v, "event_ids") for v in event_ids]
        if not ids:
            raise ValidationFailed.one("event_ids", _NO_SIGHTING)
        return int(node.faces.split(ctx, cluster_id, ids).id)
    if action == "link":
        node.faces.link(ctx, cluster_id, _id(fields.get("person_id"), "person_id"))
        return cluster_id
    raise NotFound(f"stranger action {action}")


# --- an event's face match and "not this person" (不是此人) ----------------------------------


def _event_page(
    request: Request,
    ctx: Ctx,
    event_id: int,
    *,
    errors: dict[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    event = event_of(ctx, event_id)
    face = (event.get("data") or {}).get("face") or {}
    stranger_id = None
    if face.get("stranger"):
        stranger_id = ctx.session.scalar(
            restrict(
                select(StrangerCluster.id).where(StrangerCluster.code == face["stranger"]),
                StrangerCluster,
                ctx.actor,
            )
        )
    matched = bool(event.get("person_id") or face.get("stranger") or face.get("watch"))
    return render(
        request,
        "faces/event.html",
        status_code=status_code,
        event=event,
        face=face,
        stranger_id=stranger_id,
        can_reject=matched and ctx.actor.can(MANAGE) and not face.get("rejected"),
        errors=errors or {},
        done=request.query_params.get("done"),
        **_labels(),
    )


@router.get("/events/{record_id}/face", response_class=HTMLResponse, name="faces_event")
def event_face(request: Request, ctx: ConsoleCtx, record_id: int) -> Response:
    """人脸比对结果 — whom an event's face was matched to, how closely; and "not this person"."""
    require(ctx, "event.view", VIEW)
    return _event_page(request, ctx, record_id)


@router.post(
    "/events/{record_id}/not-this-person", dependencies=[CsrfDep], name="faces_not_this_person"
)
async def not_this_person(
    request: Request, ctx: ConsoleCtx, node: NodeDep, record_id: int
) -> Response:
    """不是此人 — the face of this event is not whom it was matched to; remembered."""
    require(ctx, "event.view", VIEW, MANAGE)
    event_of(ctx, record_id)
    form = await request.form()
    try:
        node.faces.not_this_person(ctx, record_id, _text(form, "reason"))
    except ValidationFailed as exc:
        ctx.session.rollback()
        return _event_page(request, ctx, record_id, errors=errors_of(exc), status_code=422)
    ctx.session.commit()
    return RedirectResponse(f"/events/{record_id}/face?done=rejected", 303)
