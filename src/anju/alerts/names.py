"""The alert models' Chinese names (预警模型名称), by code: shown in the console, in
notifications and statistics. The rules engine's models use these codes."""

from __future__ import annotations

MODEL_NAMES: dict[str, str] = {
    "key_person": "重点人员预警",
    "controlled_list": "布控名单预警",
    "stranger_loitering": "陌生人长期徘徊",
    "tailgating": "尾随进入",
    "suspicious_entry": "可疑人员进入",
    "elderly_inactive": "独居老人异常",
    "rental_unregistered": "出租房未登记人员",
    "group_rental": "疑似群租",
    "ebike": "电动车进楼入梯",
    "fire": "消防安全",
    "emergency": "紧急求助",
    "perimeter": "周界入侵",
    "crowd": "人员聚集",
    "device_health": "设备离线故障",
    "night_entry": "夜间异常出入",
}
