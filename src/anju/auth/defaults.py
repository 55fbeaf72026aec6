"""Roles, permissions and person tags that ship with Anju (data: an admin may edit them)."""

from __future__ import annotations

# Every permission the code checks, with what it allows (shown on the role editor).
PERMISSIONS: dict[str, str] = {
    "person.view": "See people (ID numbers and phones masked)",
    "person.view_sensitive": "Reveal full ID numbers and phones, giving a reason",
    "person.edit": "Register and edit people",
    "house.view": "See houses and residencies",
    "house.edit": "Register and edit houses and residencies",
    "organisation.view": "See organisations",
    "organisation.edit": "Register and edit organisations",
    "vehicle.view": "See vehicles and parking spaces",
    "vehicle.edit": "Register and edit vehicles and parking spaces",
    "address.view": "See buildings and units",
    "address.edit": "Create and edit buildings and units",
    "device.view": "See devices",
    "device.edit": "Register and edit devices",
    "staff.view": "See security forces",
    "staff.edit": "Register and edit security forces",
    "grid.view": "See grids",
    "grid.edit": "Create and edit grids",
    "incident.view": "See incidents (police only)",
    "incident.edit": "Record incidents (police only)",
    "registry.verify": "Mark records verified",
    "registry.import": "Import spreadsheets",
    "registry.export": "Export spreadsheets (masked)",
    "export.sensitive": "Export with full ID numbers and phones",
    "stats.view": "See the dashboard and statistics",
    "org.view": "See the organisation tree",
    "audit.view": "See the audit log",
    "user.manage": "Create and manage accounts in one's area",
    "role.manage": "Edit roles and their permissions",
    "token.manage": "Issue integration tokens",
    "self.view": "See one's own household and who looked at one's record",
    "event.ingest": "Send device events",
}

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
ANALYST = [*REGISTRY_VIEW, "incident.view", "registry.export", "stats.view", "org.view"]

# code, Chinese name, English name, police, permissions
DEFAULT_ROLES: list[tuple[str, str, str, bool, list[str]]] = [
    ("admin", "系统管理员", "System admin", True, ["*"]),
    ("city_analyst", "市局分析员", "City analyst", True, ANALYST),
    ("district_analyst", "分局分析员", "District analyst", True, ANALYST),
    ("station_analyst", "派出所分析员", "Station analyst", True, ANALYST),
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
            "org.view",
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
            "org.view",
        ],
    ),
    (
        "property_manager",
        "物业经理",
        "Property manager",
        False,
        [*REGISTRY_VIEW, *REGISTRY_EDIT, "stats.view", "org.view"],
    ),
    (
        "property_staff",
        "物业人员",
        "Property staff",
        False,
        [*REGISTRY_VIEW, "person.edit", "house.edit", "vehicle.edit", "stats.view"],
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
