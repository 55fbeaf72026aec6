"""JSON API (``/api/v1``): the same resources as the console, for integrators and scripts."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Body, Depends, Request
from pydantic import BaseModel, ValidationError

from anju.audit import service as audit
from anju.core.errors import NotFound, PermissionDenied, ValidationFailed, field_errors
from anju.registry import schemas
from anju.registry import service as registry
from anju.registry.models import Person
from anju.web.deps import ApiCsrfDep, ApiCtx, api_user
from anju.web.resources import BY_NAME, RESOURCES, Resource, serialize

router = APIRouter(prefix="/api/v1", dependencies=[Depends(api_user)])


class PageOut(BaseModel):
    items: list[dict[str, Any]]
    total: int
    page: int
    size: int


class IdNumberLookup(BaseModel):
    id_number: str


def _require(ctx: Any, resource: Resource, edit: bool = False) -> None:
    if resource.police_only and not ctx.actor.police:
        raise NotFound(resource.name)
    perm = resource.edit_perm if edit else resource.view_perm
    if not ctx.actor.can(perm):
        raise PermissionDenied(perm)


def _validated(schema: type[BaseModel], body: dict[str, Any]) -> BaseModel:
    try:
        return schema.model_validate(body)
    except ValidationError as exc:
        raise ValidationFailed(field_errors(exc)) from None


def _register(resource: Resource) -> None:
    base = f"/{resource.name}"
    out = resource.out_model
    tag = resource.name

    @router.get(base, response_model=PageOut, tags=[tag], name=f"api_{resource.name}_list")
    def list_records(
        request: Request,
        ctx: ApiCtx,
        q: str = "",
        page: int = 1,
        size: int = 50,
        community_id: int | None = None,
    ) -> PageOut:
        _require(ctx, resource)
        stmt = resource.service.select(ctx)
        if q and resource.search is not None:
            stmt = stmt.where(resource.search(q))
        if community_id is not None:
            stmt = stmt.where(resource.model.community_id == community_id)
        result = resource.service.page(
            ctx,
            stmt.order_by(*resource.order_by()).options(*resource.options()),
            page,
            min(max(size, 1), 500),
        )
        return PageOut(
            items=[serialize(resource, o, ctx.actor.police) for o in result.items],
            total=result.total,
            page=result.page,
            size=result.size,
        )

    @router.get(
        base + "/{record_id}", response_model=out, tags=[tag], name=f"api_{resource.name}_get"
    )
    def get_record(ctx: ApiCtx, record_id: int) -> Any:
        _require(ctx, resource)
        obj = resource.service.get(ctx, record_id)
        if resource.model is Person:
            audit.record(
                ctx.session,
                "person.view",
                entity="persons",
                entity_id=obj.id,
                community_id=obj.community_id,
            )
        return serialize(resource, obj, ctx.actor.police)

    @router.post(
        base,
        response_model=out,
        status_code=201,
        tags=[tag],
        dependencies=[ApiCsrfDep],
        name=f"api_{resource.name}_create",
        openapi_extra={
            "requestBody": {
                "content": {
                    "application/json": {
                        "schema": resource.create_schema.model_json_schema(
                            ref_template="#/components/schemas/{model}"
                        )
                    }
                },
                "required": True,
            }
        },
    )
    def create_record(ctx: ApiCtx, body: dict[str, Any] = Body(...)) -> Any:
        _require(ctx, resource, edit=True)
        obj = resource.service.create(ctx, _validated(resource.create_schema, body))
        return serialize(resource, obj, ctx.actor.police)

    @router.patch(
        base + "/{record_id}",
        response_model=out,
        tags=[tag],
        dependencies=[ApiCsrfDep],
        name=f"api_{resource.name}_update",
    )
    def update_record(ctx: ApiCtx, record_id: int, body: dict[str, Any] = Body(...)) -> Any:
        _require(ctx, resource, edit=True)
        obj = resource.service.get(ctx, record_id)
        resource.service.update(ctx, obj, _validated(resource.update_schema, body))
        return serialize(resource, obj, ctx.actor.police)

    if resource.deletable:

        @router.delete(
            base + "/{record_id}",
            status_code=204,
            tags=[tag],
            dependencies=[ApiCsrfDep],
            name=f"api_{resource.name}_delete",
        )
        def delete_record(ctx: ApiCtx, record_id: int) -> None:
            _require(ctx, resource, edit=True)
            resource.service.delete(ctx, resource.service.get(ctx, record_id))

    if resource.verifiable:

        @router.post(
            base + "/{record_id}/verify",
            response_model=out,
            tags=[tag],
            dependencies=[ApiCsrfDep],
            name=f"api_{resource.name}_verify",
        )
        def verify_record(ctx: ApiCtx, record_id: int) -> Any:
            _require(ctx, resource)
            if not ctx.actor.can("registry.verify"):
                raise PermissionDenied("registry.verify")
            obj = resource.service.get(ctx, record_id)
            registry.verify(ctx, obj)
            return serialize(resource, obj, ctx.actor.police)


for _resource in RESOURCES:
    _register(_resource)


@router.post("/people/lookup", tags=["people"], dependencies=[ApiCsrfDep], name="api_people_lookup")
def lookup_person(ctx: ApiCtx, body: IdNumberLookup) -> Any:
    """Find a person by full ID number (sent in the body so it never lands in URL logs)."""
    resource = BY_NAME["people"]
    _require(ctx, resource)
    person = registry.people.find_by_id_number(ctx, body.id_number)
    if person is None:
        raise NotFound("person")
    return serialize(resource, person, ctx.actor.police)


@router.post(
    "/residencies/{record_id}/end",
    tags=["residencies"],
    dependencies=[ApiCsrfDep],
    name="api_residencies_end",
)
def end_residency(ctx: ApiCtx, record_id: int, body: dict[str, Any] = Body(...)) -> Any:
    """人走撤销 — end a residency; it stays as history."""
    resource = BY_NAME["residencies"]
    _require(ctx, resource, edit=True)
    residency = registry.residencies.get(ctx, record_id)
    data = _validated(schemas.ResidencyEnd, body)
    assert isinstance(data, schemas.ResidencyEnd)
    registry.residencies.end(ctx, residency, data)
    return serialize(resource, residency, ctx.actor.police)


@router.get("/stats", tags=["stats"], name="api_stats")
def stats(ctx: ApiCtx, community_id: int | None = None) -> dict[str, Any]:
    """Registry counts and the verification and coverage rates."""
    if not ctx.actor.can("stats.view"):
        raise PermissionDenied("stats.view")
    s = registry.stats(ctx, community_id=community_id)
    out: dict[str, Any] = {}
    for key, value in s.__dict__.items():
        out[key] = (
            {"done": value.done, "total": value.total, "percent": round(value.percent, 2)}
            if isinstance(value, registry.Rate)
            else value
        )
    return out


class RevealRequest(BaseModel):
    fields: list[str] = ["id_number"]
    reason: str


@router.post(
    "/people/{record_id}/reveal",
    tags=["people"],
    dependencies=[ApiCsrfDep],
    name="api_people_reveal",
)
def reveal_person(ctx: ApiCtx, record_id: int, body: RevealRequest) -> dict[str, str | None]:
    """Full ID number and/or phone of one person: needs ``person.view_sensitive`` and a reason.

    Every reveal is written to the audit log and shown to the person.
    """
    _require(ctx, BY_NAME["people"])
    person = registry.people.get(ctx, record_id)
    return registry.people.reveal_for(ctx, person, body.fields, body.reason)
