"""Tables of alerts (预警), their evidence and their timeline (处置记录).

``alerts`` is read by the alert centre per community, state and last sighting, and by the
merge step per fingerprint; each has its index. ``alert_steps`` is append-only: every
transition writes one row naming who, when, from which state to which, and why.

At most one alert per (community, model, fingerprint) is open at a time: a partial unique
index over the alerts not closed makes two processes raising the same thing at the same
instant merge instead of raising it twice (the loser's insert conflicts and it merges).
``alert_notify_prefs`` holds how each account wants to be reached.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from anju.alerts.model import AlertState, Severity, Verdict
from anju.core.db import Base, BigId, IdMixin, TimestampMixin, utcnow
from anju.org.models import enum_column
from anju.registry.models import community_fk

# The rows the unique fingerprint index covers: every alert not yet closed.
OPEN_CONDITION = text("state <> 'closed'")


class Alert(IdMixin, TimestampMixin, Base):
    """预警 — one alert: what a model found, merged over repeats, and where its loop stands."""

    __tablename__ = "alerts"
    __table_args__ = (
        Index("ix_alerts_community_state_last", "community_id", "state", "last_at"),
        Index("ix_alerts_fingerprint", "fingerprint", "last_at"),
        # Escalation looks only at alerts waiting for acknowledgement.
        Index("ix_alerts_deadline", "ack_deadline"),
        # One open alert per fingerprint, across processes (see raise_or_merge).
        Index(
            "uq_alerts_open_fingerprint",
            "community_id",
            "model",
            "fingerprint",
            unique=True,
            sqlite_where=OPEN_CONDITION,
            postgresql_where=OPEN_CONDITION,
        ),
    )

    model: Mapped[str] = mapped_column(String(40), index=True)
    community_id: Mapped[int] = community_fk()
    fingerprint: Mapped[str] = mapped_column(String(200))
    title: Mapped[str] = mapped_column(String(200))
    severity: Mapped[Severity] = mapped_column(enum_column(Severity, 10))
    state: Mapped[AlertState] = mapped_column(enum_column(AlertState, 16))
    police_only: Mapped[bool] = mapped_column(Boolean, default=False)
    place: Mapped[str | None] = mapped_column(String(200), default=None)
    subject_type: Mapped[str | None] = mapped_column(String(8), default=None)
    subject_value: Mapped[str | None] = mapped_column(String(200), default=None)
    # No foreign keys to the registry: an alert outlives the records it mentions.
    person_id: Mapped[int | None] = mapped_column(BigId, default=None)
    vehicle_id: Mapped[int | None] = mapped_column(BigId, default=None)
    house_id: Mapped[int | None] = mapped_column(BigId, default=None)
    device_id: Mapped[int | None] = mapped_column(BigId, default=None)
    first_at: Mapped[dt.datetime] = mapped_column()
    last_at: Mapped[dt.datetime] = mapped_column()
    count: Mapped[int] = mapped_column(Integer, default=1)
    assignee_id: Mapped[int | None] = mapped_column(
        BigId, ForeignKey("users.id", ondelete="SET NULL"), default=None
    )
    assigned_role: Mapped[str | None] = mapped_column(String(20), default=None)
    # Escalation: 0 the police office, 1 the station, 2 the district (see escalation.py).
    escalation: Mapped[int] = mapped_column(Integer, default=0)
    ack_deadline: Mapped[dt.datetime | None] = mapped_column(default=None)
    dispatched_at: Mapped[dt.datetime | None] = mapped_column(default=None)
    acknowledged_at: Mapped[dt.datetime | None] = mapped_column(default=None)
    closed_at: Mapped[dt.datetime | None] = mapped_column(default=None)
    verdict: Mapped[Verdict | None] = mapped_column(enum_column(Verdict, 16), default=None)
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)

    steps: Mapped[list[AlertStep]] = relationship(
        back_populates="alert", order_by="AlertStep.id", cascade="all, delete-orphan"
    )

    def __str__(self) -> str:
        return self.title


class AlertEvidence(Base):
    """证据 — a stored event that shows the alert (no foreign key: events are partitioned)."""

    __tablename__ = "alert_evidence"

    alert_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("alerts.id", ondelete="CASCADE"), primary_key=True
    )
    event_id: Mapped[int] = mapped_column(BigId, primary_key=True)


class AlertStep(IdMixin, Base):
    """处置记录 — one step of an alert's timeline: who did what, when, and what they said."""

    __tablename__ = "alert_steps"

    alert_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("alerts.id", ondelete="CASCADE"), index=True
    )
    at: Mapped[dt.datetime] = mapped_column()
    actor_id: Mapped[int | None] = mapped_column(
        BigId, ForeignKey("users.id", ondelete="SET NULL"), default=None
    )
    actor_name: Mapped[str] = mapped_column(String(60))
    action: Mapped[str] = mapped_column(String(16))
    from_state: Mapped[str | None] = mapped_column(String(16), default=None)
    to_state: Mapped[str | None] = mapped_column(String(16), default=None)
    note: Mapped[str | None] = mapped_column(Text, default=None)
    photos: Mapped[list[str]] = mapped_column(JSON, default=list)

    alert: Mapped[Alert] = relationship(back_populates="steps")


class NotifyPref(Base):
    """通知偏好 — how one account wants to hear of alerts sent to it (dispatched to it or to
    its role): the least severity that reaches it, the console's sound, an e-mail address
    and SMS. The phone is sealed like the registry's (ciphertext and mask)."""

    __tablename__ = "alert_notify_prefs"

    user_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    min_severity: Mapped[Severity] = mapped_column(enum_column(Severity, 10), default=Severity.LOW)
    console_sound: Mapped[bool] = mapped_column(Boolean, default=True)
    email: Mapped[str | None] = mapped_column(String(254), default=None)
    sms: Mapped[bool] = mapped_column(Boolean, default=False)
    phone_enc: Mapped[bytes | None] = mapped_column(LargeBinary, default=None)
    phone_masked: Mapped[str | None] = mapped_column(String(20), default=None)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class RulesCursor(Base):
    """How far an ``anju worker rules`` process (one per shard) has followed the event store:
    every event up to ``last_id`` went through its models (or was given up as never
    committed), so a restarted worker goes on from there; and how often each model failed
    there since that worker started (the console shows them beside its own process's)."""

    __tablename__ = "rules_cursors"

    name: Mapped[str] = mapped_column(String(40), primary_key=True)
    last_id: Mapped[int] = mapped_column(BigInteger)
    failures: Mapped[dict[str, int]] = mapped_column(JSON, default=dict)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)
