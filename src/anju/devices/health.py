"""Device health as people read it: online, offline, or never seen.

A device is expected to report (an event or a heartbeat) at least once per interval that
depends on its kind: gates and cameras talk all the time, battery-powered NB-IoT sensors
and meters report about once a day. A device is offline when it has been silent for more
than twice its interval.
"""

from __future__ import annotations

import datetime as dt
import enum

from anju.devices.models import Device, DeviceKind

_MINUTES_10 = dt.timedelta(minutes=10)
_DAY = dt.timedelta(hours=24)

# Gates, readers and cameras are mains-powered and send heartbeats every few minutes.
_CHATTY = {
    DeviceKind.FACE_GATE,
    DeviceKind.CARD_READER,
    DeviceKind.UNIT_DOOR,
    DeviceKind.BARRIER,
    DeviceKind.FACE_CAMERA,
    DeviceKind.VEHICLE_CAMERA,
    DeviceKind.VIDEO_CAMERA,
    DeviceKind.THROW_CAMERA,
    DeviceKind.EBIKE_DETECTOR,
}
# Battery-powered NB-IoT sensors and meters wake up about once a day.
_DAILY = {
    DeviceKind.SMOKE_DETECTOR,
    DeviceKind.DOOR_MAGNET,
    DeviceKind.MANHOLE,
    DeviceKind.HYDRANT,
    DeviceKind.WATER_METER,
    DeviceKind.ELECTRICITY_METER,
    DeviceKind.GAS_METER,
    DeviceKind.SMART_LOCK,
}


class DeviceState(enum.StrEnum):
    """What the console shows about whether a device is reporting."""

    ONLINE = "online"  # 在线
    OFFLINE = "offline"  # 离线
    NEVER = "never"  # 从未上线


def expected_interval(kind: DeviceKind | str) -> dt.timedelta:
    """How often a device of this kind is expected to report at the least."""
    try:
        known = DeviceKind(kind)
    except ValueError:
        return dt.timedelta(hours=1)
    if known in _CHATTY:
        return _MINUTES_10
    if known in _DAILY:
        return _DAY
    return dt.timedelta(hours=1)


def state(device: Device, now: dt.datetime | None = None) -> DeviceState:
    """Online, offline (silent for more than twice its interval), or never seen."""
    if device.last_seen_at is None:
        return DeviceState.NEVER
    now = now or dt.datetime.now(dt.UTC)
    if now - device.last_seen_at > 2 * expected_interval(device.kind):
        return DeviceState.OFFLINE
    return DeviceState.ONLINE
