"""The shape every registry entity shares: scoped get/list, create, update, delete.

An :class:`EntityService` knows its table, which schema fields are sealed (encrypted with a
lookup hash and a mask), and which fields point at other records. Checks that must hold for
every write — the community is in the caller's scope, references exist and are in scope,
structural references stay inside one community — happen here once, not in each route.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Generic, TypeVar

from pydantic import BaseModel
from sqlalchemy import Select, func, select
from sqlalchemy.exc import IntegrityError

from anju.core.context import Ctx
from anju.core.errors import FieldError, NotFound, ValidationFailed
from anju.core.scope import in_scope, restrict

M = TypeVar("M")

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Ref:
    """A schema field holding the id of another record."""

    model: type[Any]
    same_community: bool = True
    label: str = "record"


@dataclass(frozen=True)
class Page(Generic[M]):
    items: Sequence[M]
    total: int
    page: int
    size: int

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.size))


@dataclass
class EntityService(Generic[M]):
    """Create, read, update and delete one kind of community-owned record, within scope."""

    model: type[M]
    sealed: dict[str, str] = field(default_factory=dict)
    refs: dict[str, Ref] = field(default_factory=dict)
    unique_messages: dict[str, tuple[str, str]] = field(default_factory=dict)

    COMMUNITY_FIELD: ClassVar[str] = "community_id"

    # --- reads ---------------------------------------------------------------------------

    def select(self, ctx: Ctx) -> Select[M]:
        return restrict(select(self.model), self.model, ctx.actor)

    def get(self, ctx: Ctx, record_id: int) -> M:
        """One record in scope, or :class:`NotFound` (also when it exists out of scope)."""
        pk = self.model.id  # type: ignore[attr-defined]
        obj = ctx.session.scalar(self.select(ctx).where(pk == record_id))
        if obj is None:
            raise NotFound(f"{self.model.__name__} {record_id}")
        return obj

    def page(self, ctx: Ctx, stmt: Select[M], page: int, size: int) -> Page[M]:
        total = ctx.session.scalar(select(func.count()).select_from(stmt.order_by(None).subquery()))
        page = max(1, page)
        items = ctx.session.scalars(stmt.limit(size).offset((page - 1) * size)).unique().all()
        return Page(items=items, total=total or 0, page=page, size=size)

    # --- writes --------------------------------------------------------------------------

    def create(self, ctx: Ctx, data: BaseModel) -> M:
        values = data.model_dump()
        community_id = self.community_for(ctx, values)
        values[self.COMMUNITY_FIELD] = community_id
        self.check_refs(ctx, values, community_id)
        self.before_write(ctx, values, None)
        self._seal(ctx, values)
        obj = self.model(**self.columns(values))
        self.after_build(ctx, obj, values)
        ctx.session.add(obj)
        self.flush(ctx)
        return obj

    def update(self, ctx: Ctx, obj: M, data: BaseModel) -> M:
        changes = data.model_dump(exclude_unset=True)
        community_id = getattr(obj, self.COMMUNITY_FIELD)
        self.check_refs(ctx, changes, community_id)
        self.before_write(ctx, changes, obj)
        self._seal(ctx, changes)
        for key, value in self.columns(changes).items():
            setattr(obj, key, value)
        self.after_build(ctx, obj, changes)
        self.flush(ctx)
        return obj

    def delete(self, ctx: Ctx, obj: M) -> None:
        ctx.session.delete(obj)
        try:
            ctx.session.flush()
        except IntegrityError:
            raise ValidationFailed.one(
                "id", "other records still refer to this one; remove or end them first"
            ) from None

    # --- hooks and helpers ---------------------------------------------------------------

    def community_for(self, ctx: Ctx, values: dict[str, Any]) -> int:
        """The community a new record belongs to, checked against the caller's scope."""
        community_id = values.get(self.COMMUNITY_FIELD)
        if (
            community_id is None
            or not in_scope(ctx.session, ctx.actor, community_id)
            or not (self._is_community(ctx, community_id))
        ):
            raise ValidationFailed.one(self.COMMUNITY_FIELD, "community does not exist")
        return int(community_id)

    @staticmethod
    def _is_community(ctx: Ctx, community_id: int) -> bool:
        from anju.org.models import Level, OrgUnit

        unit = ctx.session.get(OrgUnit, community_id)
        return unit is not None and unit.level == Level.COMMUNITY

    def check_refs(self, ctx: Ctx, values: dict[str, Any], community_id: int) -> None:
        errors: list[FieldError] = []
        for name, ref in self.refs.items():
            ref_id = values.get(name)
            if ref_id is None:
                continue
            target = ctx.session.get(ref.model, ref_id)
            if target is None or not in_scope(ctx.session, ctx.actor, target.community_id):
                errors.append(FieldError(name, f"{ref.label} {ref_id} does not exist"))
            elif ref.same_community and target.community_id != community_id:
                errors.append(FieldError(name, f"{ref.label} {ref_id} is in another community"))
        if errors:
            raise ValidationFailed(errors)

    def before_write(self, ctx: Ctx, values: dict[str, Any], obj: M | None) -> None:
        """Entity-specific checks and derived values; ``obj`` is None on create."""

    def after_build(self, ctx: Ctx, obj: M, values: dict[str, Any]) -> None:
        """Entity-specific work that needs the object (relationships)."""

    def columns(self, values: dict[str, Any]) -> dict[str, Any]:
        """The values that are real columns of the table."""
        table_columns = self.model.__table__.columns.keys()  # type: ignore[attr-defined]
        return {k: v for k, v in values.items() if k in table_columns}

    def _seal(self, ctx: Ctx, values: dict[str, Any]) -> None:
        for name, prefix in self.sealed.items():
            if name not in values:
                continue
            clear = values.pop(name)
            if clear in (None, ""):
                values[f"{prefix}_enc"] = values[f"{prefix}_hash"] = values[f"{prefix}_masked"] = (
                    None
                )
                continue
            sealed = ctx.cipher.seal(str(clear), prefix)
            values[f"{prefix}_enc"] = sealed.ciphertext
            values[f"{prefix}_hash"] = sealed.lookup
            values[f"{prefix}_masked"] = sealed.masked

    def flush(self, ctx: Ctx) -> None:
        """Flush, turning a broken unique constraint into a message that names the field.

        The session must then be rolled back (to a savepoint or whole) by whoever opened it.
        """
        try:
            ctx.session.flush()
        except IntegrityError as exc:
            text = str(exc.orig)
            table = self.model.__tablename__  # type: ignore[attr-defined]
            if "UNIQUE constraint failed" in text or "duplicate key value" in text:
                for column, (field_name, message) in self.unique_messages.items():
                    sqlite_hit = re.search(rf"\b{table}\.{column}\b", text)
                    pg_hit = re.search(rf'"(uq|ix)_{table}_[a-z_]*{column}"', text)
                    if sqlite_hit or pg_hit:
                        raise ValidationFailed.one(field_name, message) from None
                raise ValidationFailed.one(
                    "id", "the record conflicts with an existing one"
                ) from None
            log.error("integrity error saving %s: %s", table, text.splitlines()[0])
            raise
