"""Tables of staff and resident accounts, roles and console sessions."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import JSON, Boolean, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from anju.core.db import Base, BigId, IdMixin, TimestampMixin
from anju.org.models import OrgUnit


class Role(Base):
    """A role: a named set of permission strings (``person.view`` …); data, editable."""

    __tablename__ = "roles"

    code: Mapped[str] = mapped_column(String(40), primary_key=True)
    name: Mapped[str] = mapped_column(String(60))
    name_en: Mapped[str] = mapped_column(String(60))
    permissions: Mapped[list[str]] = mapped_column(JSON, default=list)
    police: Mapped[bool] = mapped_column(Boolean, default=False)

    def __str__(self) -> str:
        return self.name


class User(IdMixin, TimestampMixin, Base):
    """An account, bound to one node of the organisation tree (its scope)."""

    __tablename__ = "users"

    username: Mapped[str] = mapped_column(String(60), unique=True)
    display_name: Mapped[str] = mapped_column(String(60))
    password_hash: Mapped[str] = mapped_column(String(200))
    role_code: Mapped[str] = mapped_column(
        String(40), ForeignKey("roles.code", ondelete="RESTRICT"), index=True
    )
    org_unit_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("org_units.id", ondelete="RESTRICT"), index=True
    )
    person_id: Mapped[int | None] = mapped_column(
        # use_alter breaks the users ↔ persons cycle (persons.verified_by_id → users).
        BigId,
        ForeignKey("persons.id", ondelete="SET NULL", use_alter=True),
    )
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    must_change_password: Mapped[bool] = mapped_column(Boolean, default=False)
    last_login_at: Mapped[dt.datetime | None] = mapped_column(default=None)

    role: Mapped[Role] = relationship(lazy="joined")
    org_unit: Mapped[OrgUnit] = relationship(lazy="joined")

    def __str__(self) -> str:
        return self.display_name


class LoginSession(IdMixin, Base):
    """A console session; the cookie holds a random token, the table only its hash."""

    __tablename__ = "login_sessions"

    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column()
    expires_at: Mapped[dt.datetime] = mapped_column()
    revoked_at: Mapped[dt.datetime | None] = mapped_column(default=None)
    ip: Mapped[str | None] = mapped_column(String(64))

    user: Mapped[User] = relationship(lazy="joined")
