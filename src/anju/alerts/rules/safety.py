"""Safety models that fire on what a device reports: fire (消防), emergencies (紧急求助,
高空抛物, 跌倒, 入室报警), e-bikes indoors (电动车入楼), perimeter intrusion (周界入侵) and
crowds over capacity (人流超限)."""

from __future__ import annotations

import datetime as dt

from pydantic import Field, model_validator

from anju.alerts.model import AlertDraft, Seen, Severity
from anju.alerts.rules.base import AlertModel, ModelParams, RuleCtx, Window, day_key, from_event


def _where(event: Seen, ctx: RuleCtx) -> str:
    place = ctx.facts.place(event.device_id)
    return place.words() if place else event.device_code


class FireParams(ModelParams):
    severity: Severity = Severity.HIGH
    lane_minutes: float = Field(10, gt=0, le=240, description="a fire lane blocked this long")
    hydrant_min_mpa: float = Field(0.1, ge=0, description="lowest acceptable hydrant pressure")
    hydrant_max_mpa: float = Field(1.0, gt=0, description="highest acceptable hydrant pressure")

    @model_validator(mode="after")
    def _range(self) -> FireParams:
        if self.hydrant_min_mpa >= self.hydrant_max_mpa:
            raise ValueError("hydrant_min_mpa must be below hydrant_max_mpa")
        return self


class Fire(AlertModel):
    """Smoke alarm (at once, critical), fire lane blocked beyond N minutes, hydrant
    pressure out of range."""

    code = "fire"
    name = "消防隐患"
    Params = FireParams
    kinds = frozenset({"fire.smoke", "fire.lane_blocked", "fire.hydrant_pressure"})

    def on_event(self, event: Seen, ctx: RuleCtx) -> list[AlertDraft]:
        if event.history:
            return []
        p: FireParams = ctx.config
        where = _where(event, ctx)
        if event.kind == "fire.smoke":
            if event.value == 0 or event.data.get("state") == "clear":
                return []
            return [
                self.draft(
                    ctx,
                    f"smoke:{event.device_id}",
                    f"烟感报警：{where}",
                    event.at,
                    severity=Severity.CRITICAL,
                    place=where,
                    **from_event(event),
                )
            ]
        if event.kind == "fire.lane_blocked":
            seconds = event.data.get("seconds")
            minutes = float(seconds) / 60 if isinstance(seconds, int | float) else event.value
            if minutes is None or minutes < p.lane_minutes:
                return []
            return [
                self.draft(
                    ctx,
                    f"lane:{event.device_id}:{day_key(event.at, ctx.tz)}",
                    f"消防通道占用 {minutes:.0f} 分钟：{where}",
                    event.at,
                    place=where,
                    detail={"minutes": round(minutes, 1)},
                    **from_event(event),
                )
            ]
        pressure = event.value
        if pressure is None or p.hydrant_min_mpa <= pressure <= p.hydrant_max_mpa:
            return []
        return [
            self.draft(
                ctx,
                f"hydrant:{event.device_id}",
                f"消防栓水压异常 {pressure:.2f} MPa：{where}",
                event.at,
                place=where,
                detail={"mpa": pressure},
                **from_event(event),
            )
        ]


EMERGENCY_TITLES = {
    "alarm.sos": "紧急求助",
    "wristband.sos": "手环紧急求助",
    "throw.detected": "高空抛物",
    "fall.detected": "跌倒报警",
    "alarm.home_intrusion": "入室报警",
}


class EmergencyParams(ModelParams):
    severity: Severity = Severity.CRITICAL
    kinds: tuple[str, ...] = Field(
        tuple(EMERGENCY_TITLES), description="which emergency event kinds raise an alert"
    )


class Emergency(AlertModel):
    """SOS buttons and wristbands, falls, high-altitude throwing, home intrusion: each at
    once. A home intrusion asks for three-party linkage (resident, property, police)."""

    code = "emergency"
    name = "紧急事件"
    Params = EmergencyParams
    kinds = frozenset(EMERGENCY_TITLES)

    def on_event(self, event: Seen, ctx: RuleCtx) -> list[AlertDraft]:
        p: EmergencyParams = ctx.config
        if event.history or event.kind not in p.kinds:
            return []
        where = _where(event, ctx)
        detail: dict[str, object] = {"kind": event.kind}
        if event.kind == "alarm.home_intrusion":
            detail["linkage"] = ["resident", "property", "police"]
        return [
            self.draft(
                ctx,
                f"{event.kind}:{event.device_id}",
                f"{EMERGENCY_TITLES[event.kind]}：{where}",
                event.at,
                place=where,
                detail=detail,
                **from_event(event),
            )
        ]


class EbikeParams(ModelParams):
    severity: Severity = Severity.MEDIUM
    places: tuple[str, ...] = Field(
        ("entrance", "elevator"), description="where an e-bike is not allowed (device's place)"
    )


class Ebike(AlertModel):
    """An e-bike entering a building or an elevator (one alert per door per day)."""

    code = "ebike"
    name = "电动车入楼"
    Params = EbikeParams
    kinds = frozenset({"ebike.detected"})

    def on_event(self, event: Seen, ctx: RuleCtx) -> list[AlertDraft]:
        p: EbikeParams = ctx.config
        spot = str(event.data.get("place") or "entrance")
        if event.history or spot not in p.places or event.direction == "out":
            return []
        where = _where(event, ctx)
        label = "电梯" if spot == "elevator" else "楼道"
        return [
            self.draft(
                ctx,
                f"{event.device_id}:{spot}:{day_key(event.at, ctx.tz)}",
                f"电动车进入{label}：{where}",
                event.at,
                place=where,
                detail={"place": spot},
                **from_event(event),
            )
        ]


class PerimeterParams(ModelParams):
    severity: Severity = Severity.HIGH
    armed: Window | None = Field(
        None, description="local hours the perimeter is armed (none: always armed)"
    )
    min_triggers: int = Field(
        2, ge=1, le=20, description="triggers of one zone within the window to alert"
    )
    trigger_seconds: int = Field(120, gt=0, le=3600, description="window for min_triggers")


class Perimeter(AlertModel):
    """A perimeter zone triggered while armed (arm/disarm schedule per community)."""

    code = "perimeter"
    name = "周界入侵"
    Params = PerimeterParams
    kinds = frozenset({"perimeter.intrusion"})

    def on_event(self, event: Seen, ctx: RuleCtx) -> list[AlertDraft]:
        p: PerimeterParams = ctx.config
        if event.history or event.data.get("disarmed"):
            return []
        if p.armed is not None and not p.armed.contains(event.at, ctx.tz):
            return []
        recent: dict[int, list[dt.datetime]] = ctx.state.setdefault("recent", {})
        horizon = event.at - dt.timedelta(seconds=p.trigger_seconds)
        times = [t for t in recent.get(event.device_id, []) if t > horizon] + [event.at]
        recent[event.device_id] = times
        if len(times) < p.min_triggers:
            return []
        where = _where(event, ctx)
        zone = event.data.get("zone")
        return [
            self.draft(
                ctx,
                f"{event.device_id}:{day_key(event.at, ctx.tz)}",
                f"周界入侵：{where}" + (f" {zone} 防区" if zone else ""),
                event.at,
                place=where,
                detail={"zone": zone},
                **from_event(event),
            )
        ]


class CrowdParams(ModelParams):
    severity: Severity = Severity.MEDIUM
    capacity: int = Field(200, gt=0, description="people an area may hold (default for all)")
    capacities: dict[str, int] = Field(
        default_factory=dict, description="capacity per counting device code"
    )

    @model_validator(mode="after")
    def _positive(self) -> CrowdParams:
        for code, value in self.capacities.items():
            if value <= 0:
                raise ValueError(f"capacity of {code} must be > 0")
        return self


class Crowd(AlertModel):
    """A counted crowd above the capacity configured for its area (one alert per area per
    day; later counts merge)."""

    code = "crowd"
    name = "人流超限"
    Params = CrowdParams
    kinds = frozenset({"crowd.count"})

    def on_event(self, event: Seen, ctx: RuleCtx) -> list[AlertDraft]:
        p: CrowdParams = ctx.config
        if event.history or event.value is None:
            return []
        capacity = p.capacities.get(event.device_code, p.capacity)
        if event.value <= capacity:
            return []
        where = _where(event, ctx)
        return [
            self.draft(
                ctx,
                f"{event.device_id}:{day_key(event.at, ctx.tz)}",
                f"人流超限：{where} {event.value:.0f}/{capacity} 人",
                event.at,
                place=where,
                detail={"count": event.value, "capacity": capacity},
                **from_event(event),
            )
        ]
