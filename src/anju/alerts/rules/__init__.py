"""The alert models (预警模型), one plain class each; :data:`MODELS` lists them by code."""

from __future__ import annotations

from anju.alerts.rules.access import NightEntry, StrangerLoitering, SuspiciousEntry, Tailgating
from anju.alerts.rules.base import AlertModel
from anju.alerts.rules.devices import DeviceHealth
from anju.alerts.rules.elderly import ElderlyInactive
from anju.alerts.rules.housing import GroupRental, RentalUnregistered
from anju.alerts.rules.lists import ControlledList, KeyPerson
from anju.alerts.rules.safety import Crowd, Ebike, Emergency, Fire, Perimeter

MODELS: dict[str, type[AlertModel]] = {
    m.code: m
    for m in (
        DeviceHealth,
        KeyPerson,
        ControlledList,
        ElderlyInactive,
        Fire,
        Emergency,
        Ebike,
        Perimeter,
        Crowd,
        StrangerLoitering,
        Tailgating,
        SuspiciousEntry,
        RentalUnregistered,
        GroupRental,
        NightEntry,
    )
}

__all__ = ["MODELS", "AlertModel"]
