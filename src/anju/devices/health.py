"""Device health as people read it: online, offline, or never seen.

A device is expected to report (an event or a heartbeat) at least once per interval that
depends on its kind: gates and cameras talk all the time, battery-powered NB-IoT sensors
and meters report about once a day. A device is offline when it has been silent for more
than twice its interval.
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Iterable
from dataclasses import dataclass

from anju.devices.models import Device, DeviceKind
from anju.events.model import Event, Kind

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


def intervals() -> dict[dt.timedelta, list[DeviceKind]]:
    """Every device kind grouped by its expected interval (for one query per interval)."""
    groups: dict[dt.timedelta, list[DeviceKind]] = {}
    for kind in DeviceKind:
        groups.setdefault(expected_interval(kind), []).append(kind)
    return groups


@dataclass(frozen=True)
class Watched:
    """What the health tick knows of one device."""

    id: int
    code: str
    kind: str
    last_seen_at: dt.datetime | None
    offline_since: dt.datetime | None


def offline_deadline(device: Watched) -> dt.datetime | None:
    """When a device that has been silent since it was last seen counts as offline."""
    if device.last_seen_at is None:
        return None
    return device.last_seen_at + 2 * expected_interval(device.kind)


def due(devices: Iterable[Watched], now: dt.datetime) -> list[Event]:
    """The ``device.offline`` / ``device.online`` events the devices' state calls for.

    Offline: silent past its deadline and not yet marked offline; the event happens at the
    deadline and its id comes from the last sighting, so every tick (in any process) that
    sees the same silence builds the same event. Online: marked offline but heard from
    within its interval again; its id comes from ``offline_since``, one per offline spell.
    """
    out: list[Event] = []
    for device in devices:
        deadline = offline_deadline(device)
        if deadline is None or device.last_seen_at is None:
            continue
        interval = int(expected_interval(device.kind).total_seconds())
        if device.offline_since is None and now > deadline:
            out.append(
                Event(
                    device=device.code,
                    kind=Kind.DEVICE_OFFLINE,
                    at=deadline,
                    id=f"offline:{_stamp(device.last_seen_at)}",
                    data={
                        "source": "anju",
                        "last_seen_at": device.last_seen_at.isoformat(),
                        "expected_interval_s": interval,
                    },
                )
            )
        elif device.offline_since is not None and now <= deadline:
            out.append(
                Event(
                    device=device.code,
                    kind=Kind.DEVICE_ONLINE,
                    at=min(device.last_seen_at, now),
                    id=f"online:{_stamp(device.offline_since)}",
                    data={
                        "source": "anju",
                        "offline_since": device.offline_since.isoformat(),
                        "last_seen_at": device.last_seen_at.isoformat(),
                    },
                )
            )
    return out


def _stamp(moment: dt.datetime) -> str:
    """A compact UTC timestamp for event ids (letters, digits and ``.:-_`` only)."""
    return moment.astimezone(dt.UTC).strftime("%Y%m%dT%H%M%S.%fZ")
