"""Scope: which part of the organisation tree a caller sees (分级管理、分级授权).

Every query over community-owned rows goes through :func:`restrict`, which adds the WHERE
clause for the caller's subtree. Routes never build unscoped queries.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, TypeVar

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from anju.org.models import Level, OrgUnit

T = TypeVar("T")


@dataclass(frozen=True)
class Actor:
    """Who is acting: an account with its permissions and its node of the tree."""

    user_id: int | None
    username: str
    org_path: str
    permissions: frozenset[str] = field(default_factory=frozenset)
    police: bool = False
    person_id: int | None = None

    def can(self, permission: str) -> bool:
        return "*" in self.permissions or permission in self.permissions

    @classmethod
    def system(cls, name: str = "system") -> Actor:
        """The node itself (CLI, simulator, migrations): sees the whole tree."""
        return cls(
            user_id=None, username=name, org_path="/", permissions=frozenset({"*"}), police=True
        )


def communities_in_scope(actor: Actor) -> Select[int]:
    """A subquery of the ids of the communities under the actor's node."""
    stmt = select(OrgUnit.id).where(OrgUnit.level == Level.COMMUNITY)
    if actor.org_path != "/":
        stmt = stmt.where(OrgUnit.path.startswith(actor.org_path, autoescape=True))
    return stmt


def restrict(stmt: T, model: Any, actor: Actor) -> T:
    """Limit ``stmt`` (a select) to rows of ``model`` whose community is in the actor's scope."""
    if actor.org_path == "/":
        return stmt
    query: Any = stmt
    restricted: T = query.where(model.community_id.in_(communities_in_scope(actor)))
    return restricted


def in_scope(session: Session, actor: Actor, community_id: int) -> bool:
    """Whether one community lies in the actor's scope."""
    if actor.org_path == "/":
        return True
    stmt = communities_in_scope(actor).where(OrgUnit.id == community_id)
    return session.scalar(stmt) is not None


def org_units_in_scope(actor: Actor) -> Select[OrgUnit]:
    """The organisation nodes an actor may see: its subtree."""
    stmt = select(OrgUnit)
    if actor.org_path != "/":
        stmt = stmt.where(OrgUnit.path.startswith(actor.org_path, autoescape=True))
    return stmt
