"""Building and reading the organisation tree."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from anju.core import validation
from anju.core.errors import ValidationFailed
from anju.org.models import Level, OrgUnit


def add_unit(
    session: Session,
    *,
    level: Level,
    code: str,
    name: str,
    parent: OrgUnit | None,
    address: str | None = None,
) -> OrgUnit:
    """Add a node under ``parent``; the level must sit directly below the parent's level.

    The city is the only root. The materialised ``path`` is set once the id is known.
    """
    try:
        code = validation.code(code)
    except ValueError as exc:
        raise ValidationFailed.one("code", str(exc)) from None
    if not name.strip():
        raise ValidationFailed.one("name", "name is empty")
    if parent is None and level is not Level.CITY:
        raise ValidationFailed.one("parent_id", f"a {level.value} needs a parent")
    if parent is not None and level.depth != parent.level.depth + 1:
        raise ValidationFailed.one(
            "level", f"a {level.value} cannot sit under a {parent.level.value}"
        )
    if session.scalar(select(OrgUnit.id).where(OrgUnit.code == code)) is not None:
        raise ValidationFailed.one("code", f"organisation code {code} is taken")
    unit = OrgUnit(
        level=level,
        code=code,
        name=name.strip(),
        parent_id=parent.id if parent else None,
        address=address,
        path="",
    )
    session.add(unit)
    session.flush()
    unit.path = f"{parent.path if parent else '/'}{unit.id}/"
    session.flush()
    return unit


def communities(session: Session, under: OrgUnit | None = None) -> list[OrgUnit]:
    stmt = select(OrgUnit).where(OrgUnit.level == Level.COMMUNITY).order_by(OrgUnit.code)
    if under is not None:
        stmt = stmt.where(OrgUnit.path.startswith(under.path, autoescape=True))
    return list(session.scalars(stmt))


def root(session: Session) -> OrgUnit | None:
    return session.scalar(select(OrgUnit).where(OrgUnit.parent_id.is_(None)).order_by(OrgUnit.id))
