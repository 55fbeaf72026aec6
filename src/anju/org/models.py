"""Tables of the organisation tree (组织机构) and community grids (网格)."""

from __future__ import annotations

import enum

from sqlalchemy import Enum, ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from anju.core.db import Base, BigId, IdMixin, TimestampMixin


class Level(enum.StrEnum):
    """Levels of the organisation tree, top down."""

    CITY = "city"  # 市局
    DISTRICT = "district"  # 分局
    STATION = "station"  # 派出所
    OFFICE = "office"  # 警务室
    COMMUNITY = "community"  # 小区

    @property
    def depth(self) -> int:
        return list(Level).index(self)


def enum_column(kind: type[enum.Enum], length: int = 24) -> Enum:
    """A portable string enum column (VARCHAR + CHECK), storing the enum's values."""
    return Enum(
        kind,
        native_enum=False,
        create_constraint=True,
        length=length,
        values_callable=lambda e: [m.value for m in e],
        validate_strings=True,
    )


class OrgUnit(IdMixin, TimestampMixin, Base):
    """组织机构 — a node of the organisation tree; communities (小区) are its leaves.

    ``path`` is the chain of ids from the root (``/1/4/9/``) so a subtree is one prefix match:
    this is what scope filters use.
    """

    __tablename__ = "org_units"

    parent_id: Mapped[int | None] = mapped_column(
        BigId, ForeignKey("org_units.id", ondelete="RESTRICT"), index=True
    )
    level: Mapped[Level] = mapped_column(enum_column(Level))
    code: Mapped[str] = mapped_column(String(40), unique=True)
    name: Mapped[str] = mapped_column(String(100))
    path: Mapped[str] = mapped_column(String(400), index=True, default="")
    address: Mapped[str | None] = mapped_column(String(200))
    police_org_code: Mapped[str | None] = mapped_column(String(12))

    parent: Mapped[OrgUnit | None] = relationship(remote_side="OrgUnit.id")

    def __str__(self) -> str:
        return self.name


class Grid(IdMixin, TimestampMixin, Base):
    """网格 — a management grid inside a community, looked after by a grid worker."""

    __tablename__ = "grids"
    __table_args__ = (UniqueConstraint("community_id", "code"),)

    community_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("org_units.id", ondelete="RESTRICT"), index=True
    )
    code: Mapped[str] = mapped_column(String(40))
    name: Mapped[str] = mapped_column(String(100))
    description: Mapped[str | None] = mapped_column(String(400))

    community: Mapped[OrgUnit] = relationship()

    def __str__(self) -> str:
        return self.name
