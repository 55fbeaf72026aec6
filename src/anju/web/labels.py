"""Display names (English message ids, translated by the catalogue) of enum values."""

from __future__ import annotations

from enum import Enum

from anju.devices.models import DeviceKind, DeviceStatus
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
