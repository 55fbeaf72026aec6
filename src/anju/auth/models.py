"""Tables of accounts, roles, console sessions, API tokens, device credentials, sign-ins."""

from __future__ import annotations

import datetime as dt
import enum

from sqlalchemy import JSON, Boolean, ForeignKey, Integer, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from anju.core.db import Base, BigId, IdMixin, TimestampMixin
from anju.devices.models import Device
from anju.org.models import OrgUnit, enum_column


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
    password_changed_at: Mapped[dt.datetime | None] = mapped_column(default=None)
    # Second factor (TOTP): the secret is sealed with the node's key; a secret without
    # ``totp_enabled`` is an enrolment not yet confirmed with a code.
    totp_secret_enc: Mapped[bytes | None] = mapped_column(LargeBinary, default=None)
    totp_enabled: Mapped[bool] = mapped_column(Boolean, default=False, server_default="0")
    # The last accepted time step, so one code cannot be used twice.
    totp_last_step: Mapped[int | None] = mapped_column(Integer, default=None)

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


class TokenKind(enum.StrEnum):
    """Who an API token is for."""

    PERSONAL = "personal"  # 个人令牌: made by the account holder for their own scripts
    INTEGRATION = "integration"  # 系统对接令牌: issued by an administrator for another system


class ApiToken(IdMixin, Base):
    """An API bearer token: acts as its owner, with the owner's role and scope.

    The clear token is shown once when made; the table keeps its SHA-256 and a short prefix
    by which people recognise it in lists.
    """

    __tablename__ = "api_tokens"

    user_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(60))
    kind: Mapped[TokenKind] = mapped_column(enum_column(TokenKind, length=16))
    prefix: Mapped[str] = mapped_column(String(16))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_by_id: Mapped[int | None] = mapped_column(
        BigId, ForeignKey("users.id", ondelete="SET NULL")
    )
    created_at: Mapped[dt.datetime] = mapped_column()
    expires_at: Mapped[dt.datetime | None] = mapped_column(default=None)
    last_used_at: Mapped[dt.datetime | None] = mapped_column(default=None)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(default=None)

    user: Mapped[User] = relationship(lazy="joined", foreign_keys=[user_id])


class DeviceCredential(IdMixin, Base):
    """A device's secret for sending events; only its hash is kept, one live per device."""

    __tablename__ = "device_credentials"

    device_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("devices.id", ondelete="CASCADE"), index=True
    )
    prefix: Mapped[str] = mapped_column(String(40))
    secret_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[dt.datetime] = mapped_column()
    last_used_at: Mapped[dt.datetime | None] = mapped_column(default=None)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(default=None)

    device: Mapped[Device] = relationship(lazy="joined")


class LoginAttempt(IdMixin, Base):
    """One sign-in attempt, kept for a while to throttle guessing per account and per address."""

    __tablename__ = "login_attempts"

    at: Mapped[dt.datetime] = mapped_column(index=True)
    username: Mapped[str] = mapped_column(String(60), index=True)
    ip: Mapped[str | None] = mapped_column(String(64), index=True)
    success: Mapped[bool] = mapped_column(Boolean)
