"""The audit table: one row per recorded action, each carrying the hash of the one before."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from anju.core.db import Base, BigId


class AuditEntry(Base):
    """审计记录 — who did what to which record, when, from where.

    Rows are only ever appended, through :func:`anju.audit.service.append`, which gives
    each the next id (ids are contiguous from 1, so a deleted row leaves a visible gap)
    and chains it to the previous row by hash. The database refuses UPDATE and DELETE
    (triggers in migration 0002). Nothing here has a foreign key: the log must outlive,
    and never be altered by, the deletion of the users and records it names.
    """

    __tablename__ = "audit_log"
    __table_args__ = (
        Index("ix_audit_log_entity", "entity", "entity_id"),
        Index("ix_audit_log_actor", "actor_user_id", "at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=False)
    at: Mapped[dt.datetime] = mapped_column(index=True)
    actor_user_id: Mapped[int | None] = mapped_column(BigId)
    actor_name: Mapped[str] = mapped_column(String(60))
    action: Mapped[str] = mapped_column(String(40))
    entity: Mapped[str | None] = mapped_column(String(60))
    entity_id: Mapped[str | None] = mapped_column(String(64))
    community_id: Mapped[int | None] = mapped_column(BigId, index=True)
    detail: Mapped[dict[str, Any]] = mapped_column(JSON)
    ip: Mapped[str | None] = mapped_column(String(64))
    # Unique: two rows claiming the same predecessor would be a fork of the chain.
    prev_hash: Mapped[str] = mapped_column(String(64), unique=True)
    hash: Mapped[str] = mapped_column(String(64))

    def __str__(self) -> str:
        return f"{self.action} #{self.id}"
