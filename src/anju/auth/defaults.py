"""Roles and person tags that ship with Anju (data: an admin may edit them)."""

from __future__ import annotations

REGISTRY_VIEW = [
    "person.view",
    "house.view",
    "organisation.view",
    "vehicle.view",
    "address.view",
    "device.view",
    "staff.view",
    "grid.view",
]
REGISTRY_EDIT = [
    "person.edit",
    "house.edit",
    "organisation.edit",
    "vehicle.edit",
    "address.edit",
    "device.edit",
    "staff.edit",
    "grid.edit",
    "registry.import",
]

# code, Chinese name, English name, police, permissions
DEFAULT_ROLES: list[tuple[str, str, str, bool, list[str]]] = [
    ("admin", "系统管理员", "System admin", True, ["*"]),
    (
        "city_analyst",
        "市局分析员",
        "City analyst",
        True,
        [*REGISTRY_VIEW, "incident.view", "registry.export", "stats.view"],
    ),
    (
        "district_analyst",
        "分局分析员",
        "District analyst",
        True,
        [*REGISTRY_VIEW, "incident.view", "registry.export", "stats.view"],
    ),
    (
        "station_analyst",
        "派出所分析员",
        "Station analyst",
        True,
        [*REGISTRY_VIEW, "incident.view", "registry.export", "stats.view"],
    ),
    (
        "officer",
        "社区民警",
        "Community police officer",
        True,
        [
            *REGISTRY_VIEW,
            *REGISTRY_EDIT,
            "person.view_sensitive",
            "incident.view",
            "incident.edit",
            "registry.verify",
            "registry.export",
            "stats.view",
        ],
    ),
    (
        "grid_worker",
        "网格员",
        "Grid worker",
        False,
        [
            *REGISTRY_VIEW,
            "person.edit",
            "house.edit",
            "organisation.edit",
            "registry.verify",
            "stats.view",
        ],
    ),
    (
        "property_manager",
        "物业经理",
        "Property manager",
        False,
        [*REGISTRY_VIEW, *REGISTRY_EDIT, "stats.view"],
    ),
    (
        "property_staff",
        "物业人员",
        "Property staff",
        False,
        [*REGISTRY_VIEW, "person.edit", "house.edit", "vehicle.edit"],
    ),
    ("guard", "保安", "Guard", False, ["person.view", "house.view", "vehicle.view", "device.view"]),
    ("resident", "居民", "Resident", False, ["self.view"]),
    ("device", "设备", "Device", False, ["event.ingest"]),
    ("integration", "系统对接", "Integration", False, [*REGISTRY_VIEW]),
]

# code, Chinese name, English name, police-only
DEFAULT_TAGS: list[tuple[str, str, str, bool]] = [
    ("elderly_alone", "独居老人", "Elderly living alone", False),
    ("elderly", "老年人", "Elderly", False),
    ("child", "未成年人", "Child", False),
    ("disability", "残疾人", "Disability", False),
    ("mental_disorder", "严重精神障碍患者", "Severe mental disorder", True),
    ("volunteer", "志愿者", "Volunteer", False),
    ("party_member", "党员", "Party member", False),
    ("key_drug", "涉毒人员", "Key person: drugs", True),
    ("key_released", "刑满释放人员", "Key person: released prisoner", True),
    ("key_petition", "重点上访人员", "Key person: petitioner", True),
    ("key_wanted", "在逃人员", "Key person: wanted", True),
    ("dispute_party", "矛盾纠纷当事人", "Party to a dispute", True),
]
