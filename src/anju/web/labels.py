"""Display names (English message ids, translated by the catalogue) of enum values."""

from __future__ import annotations

from enum import Enum

from anju.alerts.watchlist import MatchType, WatchList
from anju.devices.health import DeviceState
from anju.devices.models import DeviceKind, DeviceStatus
from anju.events.model import Direction, Kind, SubjectType
from anju.org.models import Level
from anju.registry.models import (
    ForceRole,
    HouseUse,
    IdType,
    IncidentCategory,
    OrganisationKind,
    ParkingKind,
    PersonCategory,
    PlateKind,
    Relation,
    Sex,
)

LABELS: dict[type[Enum], dict[str, str]] = {
    WatchList: {"key_person": "Key persons", "controlled": "Controlled list"},
    MatchType: {
        "person": "Registered person",
        "id_hash": "ID number",
        "card": "Card",
        "plate": "Plate",
        "plate_prefix": "Plate prefix",
        "mac": "MAC address",
        "face": "Face",
    },
    Level: {
        "city": "City bureau",
        "district": "District branch",
        "station": "Police station",
        "office": "Police office",
        "community": "Community",
    },
    HouseUse: {
        "self_occupied": "Self-occupied",
        "rented": "Rented",
        "vacant": "Vacant",
        "business": "Business",
    },
    IdType: {
        "resident_id": "Resident ID card",
        "passport": "Passport",
        "hk_macao": "Mainland travel permit (HK/Macao)",
        "taiwan": "Mainland travel permit (Taiwan)",
        "foreign_pr": "Foreign permanent residence ID",
        "other": "Other document",
    },
    Sex: {"male": "Male", "female": "Female", "unknown": "Unknown"},
    PersonCategory: {
        "registered": "Registered resident",
        "floating": "Floating population",
        "unsettled": "Without household registration",
        "overseas": "Overseas person",
    },
    Relation: {
        "owner": "Owner",
        "family": "Family member",
        "tenant": "Tenant",
        "custodian": "Custodian",
        "other": "Other",
    },
    OrganisationKind: {
        "shop": "Shop",
        "kindergarten": "Kindergarten",
        "school": "School",
        "company": "Company",
        "clinic": "Clinic",
        "property": "Property company",
        "other": "Other",
    },
    ParkingKind: {
        "owned": "Owned space",
        "rented": "Rented space",
        "public": "Public space",
        "visitor": "Visitor space",
    },
    PlateKind: {"ordinary": "Ordinary plate", "new_energy": "New-energy plate"},
    ForceRole: {
        "guard": "Guard",
        "building_manager": "Building manager",
        "cleaner": "Cleaner",
        "grid_worker": "Grid worker",
        "volunteer": "Volunteer",
    },
    IncidentCategory: {
        "theft": "Theft",
        "fraud": "Fraud",
        "dispute": "Dispute",
        "fire": "Fire",
        "traffic": "Traffic",
        "disturbance": "Disturbance",
        "assistance": "Request for help",
        "other": "Other",
    },
    DeviceStatus: {
        "active": "In service",
        "maintenance": "Under repair",
        "inactive": "Disabled",
        "retired": "Retired",
    },
    Kind: {
        "access.face": "Face access",
        "access.card": "Card access",
        "access.qr": "QR code access",
        "access.fingerprint": "Fingerprint access",
        "access.bluetooth": "Bluetooth access",
        "access.remote": "Remote door opening",
        "access.denied": "Access denied",
        "door.opened": "Door opened",
        "door.closed": "Door closed",
        "door.forced": "Door forced open",
        "door.held_open": "Door held open",
        "vehicle.passed": "Vehicle passed",
        "capture.face": "Face captured",
        "capture.vehicle": "Vehicle captured",
        "perimeter.intrusion": "Perimeter intrusion",
        "alarm.sos": "SOS alarm",
        "alarm.home_intrusion": "Home intrusion alarm",
        "fire.smoke": "Smoke alarm",
        "fire.lane_blocked": "Fire lane blocked",
        "fire.hydrant_pressure": "Hydrant pressure",
        "power.anomaly": "Power anomaly",
        "meter.water": "Water meter reading",
        "meter.electricity": "Electricity meter reading",
        "meter.gas": "Gas meter reading",
        "sensor.door_magnet": "Door magnet",
        "sensor.infrared": "Infrared sensor",
        "sensor.manhole": "Manhole cover",
        "lock.opened": "Smart lock opened",
        "tag.seen": "Tag seen",
        "wristband.sos": "Wristband SOS",
        "wifi.probe": "Phone detected (WiFi)",
        "ebike.detected": "E-bike detected",
        "throw.detected": "Object thrown from height",
        "fall.detected": "Fall detected",
        "crowd.count": "Crowd count",
        "patrol.checkin": "Patrol check-in",
        "device.heartbeat": "Device heartbeat",
        "device.fault": "Device fault",
        "device.offline": "Device offline",
        "device.online": "Device online",
        "device.event": "Other device event",
    },
    SubjectType: {
        "person": "Person number",
        "face": "Face",
        "card": "Card",
        "qr": "QR code",
        "plate": "Plate",
        "mac": "Phone MAC",
        "tag": "Tag",
    },
    Direction: {"in": "In", "out": "Out"},
    DeviceState: {"online": "Online", "offline": "Offline", "never": "Never seen"},
    DeviceKind: {
        "face_gate": "Face gate",
        "card_reader": "Card reader",
        "unit_door": "Unit door terminal",
        "barrier": "Vehicle barrier (ANPR)",
        "face_camera": "Face capture camera",
        "vehicle_camera": "Vehicle capture camera",
        "video_camera": "Video camera",
        "perimeter": "Perimeter alarm",
        "sos_button": "SOS button",
        "smoke_detector": "Smoke detector",
        "door_magnet": "Door magnet",
        "infrared": "Infrared sensor",
        "water_meter": "Water meter",
        "electricity_meter": "Electricity meter",
        "gas_meter": "Gas meter",
        "smart_lock": "Smart lock",
        "manhole": "Manhole cover sensor",
        "hydrant": "Hydrant pressure sensor",
        "fire_lane": "Fire lane camera",
        "wifi_probe": "WiFi probe",
        "rfid_reader": "RFID reader",
        "ebike_detector": "E-bike detector",
        "throw_camera": "High-altitude throwing camera",
        "patrol_point": "Patrol checkpoint",
        "other": "Other",
    },
}


def label_of(value: object) -> str:
    """The message id naming an enum value (untranslated); other values as text."""
    if isinstance(value, Enum):
        return LABELS.get(type(value), {}).get(str(value.value), str(value.value))
    return "" if value is None else str(value)


def choices(kind: type[Enum]) -> list[tuple[str, str]]:
    """(value, message id) pairs for a select box, in declaration order."""
    names = LABELS.get(kind, {})
    return [(str(m.value), names.get(str(m.value), str(m.value))) for m in kind]
