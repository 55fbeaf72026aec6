"""Tables of the event store and of the credentials that tie what devices see to people.

``events`` is written in batches and read by community + time, subject + time, device +
time and person + time; each of those has its index. Foreign keys are left off the event
table on purpose: ingest must not pay a lookup per row, and events outlive the records
they mention (a person who moved away keeps their history).
"""

from __future__ import annotations

import datetime as dt
import enum
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Float,
    ForeignKey,
    Index,
    String,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from anju.core.db import Base, BigId, IdMixin, TimestampMixin
from anju.org.models import enum_column
from anju.registry.models import Person, community_fk

HAS_IMAGE = text("image IS NOT NULL")
HAS_SUBJECT = text("subject_type IS NOT NULL")
HAS_PERSON = text("person_id IS NOT NULL")
HAS_VEHICLE = text("vehicle_id IS NOT NULL")


# What a trajectory's sighting reads besides a subject index's key (anju.events.service,
# ``_LEAN_COLUMNS`` and its filters: scope by community, device, kind, history), and the
# subject, which the person and vehicle indexes do not have as key. Migration 0012 holds
# its own copy, as migrations must.
SIGHTING = ("id", "community_id", "device_id", "kind", "direction", "history")
SUBJECT = ("subject_type", "subject_value")


def _where(condition: Any) -> dict[str, Any]:
    """A partial index's condition, on both databases."""
    return {"sqlite_where": condition, "postgresql_where": condition}


class StoredEvent(Base):
    """事件 — one event as stored: the canonical fields plus what enrichment found."""

    __tablename__ = "events"
    # This is the table as SQLite has it. On PostgreSQL migration 0006 partitions it by month
    # on ``at`` (decision 0003, ``anju.events.partitions``), which PostgreSQL allows only with
    # ``at`` in every unique key: there the key is (device_id, event_key, at) and the primary
    # key (id, at). The same columns and indexes either way; tests/test_migrations.py checks
    # that these are the only differences.
    __table_args__ = (
        UniqueConstraint("device_id", "event_key"),
        Index("ix_events_community_at", "community_id", "at"),
        Index("ix_events_device_at", "device_id", "at"),
        # Only rows that name a subject, person or vehicle: most events (heartbeats, sensors,
        # meters) name none, and indexing them would cost every insert for no query (0007).
        # On PostgreSQL they also carry what a trajectory's sighting reads (0012), so that a
        # trajectory is an index-only scan; SQLite has no INCLUDE and ignores it.
        Index(
            "ix_events_subject_at",
            "subject_type",
            "subject_value",
            "at",
            postgresql_include=list(SIGHTING),
            **_where(HAS_SUBJECT),
        ),
        Index(
            "ix_events_person_at",
            "person_id",
            "at",
            postgresql_include=[*SIGHTING, *SUBJECT],
            **_where(HAS_PERSON),
        ),
        Index(
            "ix_events_vehicle_at",
            "vehicle_id",
            "at",
            postgresql_include=[*SIGHTING, *SUBJECT],
            **_where(HAS_VEHICLE),
        ),
        # Retention asks whether a newer event still shows a blob (images are shared by hash).
        Index("ix_events_image", "image", **_where(HAS_IMAGE)),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    community_id: Mapped[int] = mapped_column(BigId)
    device_id: Mapped[int] = mapped_column(BigId)
    event_key: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(32))
    at: Mapped[dt.datetime] = mapped_column()
    received_at: Mapped[dt.datetime] = mapped_column()
    subject_type: Mapped[str | None] = mapped_column(String(8))
    subject_value: Mapped[str | None] = mapped_column(String(200))
    direction: Mapped[str | None] = mapped_column(String(3))
    value: Mapped[float | None] = mapped_column(Float)
    data: Mapped[dict[str, object]] = mapped_column(JSON, default=dict)
    image: Mapped[str | None] = mapped_column(String(100))
    history: Mapped[bool] = mapped_column(Boolean, default=False)
    person_id: Mapped[int | None] = mapped_column(BigId)
    vehicle_id: Mapped[int | None] = mapped_column(BigId)
    house_id: Mapped[int | None] = mapped_column(BigId)


class CredentialKind(enum.StrEnum):
    CARD = "card"  # IC/ID card number
    EMPLOYEE_NO = "employee_no"  # the person's number on a face terminal (Hikvision employeeNo)
    QR = "qr"
    MAC = "mac"  # a phone's WiFi MAC
    TAG = "tag"  # RFID tag of an elderly person or a child
    LOCK_CODE = "lock_code"  # a smart-lock credential (fingerprint id, PIN slot, key id)


class AccessCredential(IdMixin, TimestampMixin, Base):
    """门禁凭证 — a card, device number, MAC or tag that stands for a registered person."""

    __tablename__ = "access_credentials"
    __table_args__ = (UniqueConstraint("community_id", "kind", "value"),)

    community_id: Mapped[int] = community_fk()
    person_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("persons.id", ondelete="CASCADE"), index=True
    )
    kind: Mapped[CredentialKind] = mapped_column(enum_column(CredentialKind, 16))
    value: Mapped[str] = mapped_column(String(100))
    valid_until: Mapped[dt.date | None] = mapped_column(default=None)

    person: Mapped[Person] = relationship()
