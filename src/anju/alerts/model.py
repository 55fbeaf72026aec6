"""What the rules engine and the alert service agree on: the events models see, the drafts
they return, and the vocabulary of an alert's life.

Plain Python, no database: alert models (:mod:`anju.alerts.rules`) turn :class:`Seen`
events and ticks into :class:`AlertDraft` values; the alert service
(:mod:`anju.alerts.service`) merges drafts into alerts and runs their state machine.
"""

from __future__ import annotations

import datetime as dt
import enum
from dataclasses import dataclass, field
from typing import Any


class Severity(enum.StrEnum):
    """How urgent: decides the escalation deadline and whether the console sounds."""

    LOW = "low"  # 低
    MEDIUM = "medium"  # 中
    HIGH = "high"  # 高
    CRITICAL = "critical"  # 紧急


class AlertState(enum.StrEnum):
    """The closed loop (预警指令下发、处置、反馈闭环)."""

    RAISED = "raised"  # 已预警
    DISPATCHED = "dispatched"  # 已下发
    ACKNOWLEDGED = "acknowledged"  # 已签收
    HANDLED = "handled"  # 已处置 (feedback given)
    CLOSED = "closed"  # 已办结


class Verdict(enum.StrEnum):
    """What handling found (反馈结果)."""

    TRUE_ALARM = "true_alarm"  # 属实
    FALSE_ALARM = "false_alarm"  # 误报
    DUPLICATE = "duplicate"  # 重复


@dataclass(frozen=True, slots=True)
class Seen:
    """One stored event as alert models see it: what the device said plus what enrichment
    found. Built from the pipeline's stored rows after commit (and from the event store when
    state is rebuilt), so models never touch the database for the event itself."""

    id: int  # the stored event's id (evidence)
    community_id: int
    device_id: int
    device_code: str
    device_kind: str
    kind: str  # anju.events.model.Kind value
    at: dt.datetime  # aware UTC
    subject_type: str | None = None
    subject_value: str | None = None
    direction: str | None = None
    value: float | None = None
    data: dict[str, Any] = field(default_factory=dict)
    person_id: int | None = None
    vehicle_id: int | None = None
    house_id: int | None = None
    image: str | None = None
    history: bool = False  # replayed from a device's buffer: models ignore it for "now" rules


@dataclass(frozen=True, slots=True)
class AlertDraft:
    """What a model found. Drafts with the same ``fingerprint`` merge into one open alert
    (count and last seen go up) instead of raising another."""

    model: str  # the model's code, e.g. "key_person"
    community_id: int
    fingerprint: str  # stable for "the same thing": e.g. f"key_person:{person_id}"
    title: str  # one line for people, Chinese, e.g. "重点人员出现：张某 (东门人脸门禁)"
    severity: Severity
    at: dt.datetime  # when it happened (the event's time, or the tick's for absence)
    police_only: bool = False
    place: str | None = None  # where, in words: device name / building / house address
    subject_type: str | None = None
    subject_value: str | None = None
    person_id: int | None = None
    vehicle_id: int | None = None
    house_id: int | None = None
    device_id: int | None = None
    evidence: tuple[int, ...] = ()  # stored event ids that show it
    detail: dict[str, Any] = field(default_factory=dict)  # model-specific facts, JSON-able
