"""The one canonical ``Event`` every adapter produces and everything downstream consumes.

Plain Python, no framework: adapters build :class:`Event` values (or :class:`Rejection`s),
the pipeline validates, de-duplicates, enriches, stores and publishes them.
"""

from __future__ import annotations

import datetime as dt
import enum
import uuid
from dataclasses import dataclass, field
from typing import Any


class Kind(enum.StrEnum):
    """What happened. Documented with their fields in ``docs/events.md``."""

    ACCESS_FACE = "access.face"
    ACCESS_CARD = "access.card"
    ACCESS_QR = "access.qr"
    ACCESS_FINGERPRINT = "access.fingerprint"
    ACCESS_BLUETOOTH = "access.bluetooth"
    ACCESS_REMOTE = "access.remote"
    ACCESS_DENIED = "access.denied"
    DOOR_OPENED = "door.opened"
    DOOR_CLOSED = "door.closed"
    DOOR_FORCED = "door.forced"
    DOOR_HELD_OPEN = "door.held_open"
    VEHICLE_PASSED = "vehicle.passed"
    CAPTURE_FACE = "capture.face"
    CAPTURE_VEHICLE = "capture.vehicle"
    PERIMETER_INTRUSION = "perimeter.intrusion"
    ALARM_SOS = "alarm.sos"
    ALARM_HOME_INTRUSION = "alarm.home_intrusion"
    FIRE_SMOKE = "fire.smoke"
    FIRE_LANE_BLOCKED = "fire.lane_blocked"
    FIRE_HYDRANT_PRESSURE = "fire.hydrant_pressure"
    POWER_ANOMALY = "power.anomaly"
    METER_WATER = "meter.water"
    METER_ELECTRICITY = "meter.electricity"
    METER_GAS = "meter.gas"
    SENSOR_DOOR_MAGNET = "sensor.door_magnet"
    SENSOR_INFRARED = "sensor.infrared"
    SENSOR_MANHOLE = "sensor.manhole"
    LOCK_OPENED = "lock.opened"
    TAG_SEEN = "tag.seen"
    WRISTBAND_SOS = "wristband.sos"
    WIFI_PROBE = "wifi.probe"
    EBIKE_DETECTED = "ebike.detected"
    THROW_DETECTED = "throw.detected"
    FALL_DETECTED = "fall.detected"
    CROWD_COUNT = "crowd.count"
    PATROL_CHECKIN = "patrol.checkin"
    DEVICE_HEARTBEAT = "device.heartbeat"
    DEVICE_FAULT = "device.fault"
    DEVICE_OFFLINE = "device.offline"
    DEVICE_ONLINE = "device.online"
    DEVICE_EVENT = "device.event"  # a vendor event with no canonical meaning (kept, not lost)


class SubjectType(enum.StrEnum):
    """What an event is about."""

    PERSON = "person"  # a registry person id, or a device's employee number
    FACE = "face"  # a face (image or feature vector); a stranger cluster after recognition
    CARD = "card"
    QR = "qr"
    PLATE = "plate"
    MAC = "mac"
    TAG = "tag"


class Direction(enum.StrEnum):
    IN = "in"
    OUT = "out"


@dataclass(frozen=True, slots=True)
class Subject:
    """Who or what an event is about, as the device saw it (normalised)."""

    type: SubjectType
    value: str


@dataclass(frozen=True, slots=True)
class Event:
    """One thing a device saw or did, in the canonical form (wire format v1).

    ``id`` is the device's own event id — the idempotency key with ``device`` — or a
    generated one when the device sends none. ``at`` is when it happened (aware, UTC);
    ``history`` marks events a device replays from its buffer.
    """

    device: str
    kind: Kind
    at: dt.datetime
    id: str = field(default_factory=lambda: uuid.uuid4().hex)
    subject: Subject | None = None
    direction: Direction | None = None
    value: float | None = None
    data: dict[str, Any] = field(default_factory=dict)
    image: str | None = None  # a blob key once stored; adapters may carry base64 in ``image_data``
    image_data: bytes | None = field(default=None, repr=False)
    history: bool = False

    def __post_init__(self) -> None:
        if self.at.tzinfo is None:
            raise ValueError("event time must carry a UTC offset")


@dataclass(frozen=True, slots=True)
class Rejection:
    """A payload (or one item of it) refused, with the reason a person can act on."""

    reason: str
    device: str | None = None
    id: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)


Outcome = Event | Rejection
