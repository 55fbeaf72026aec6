"""Device offline / fault and missed patrol checkpoints (设备离线/故障、巡更漏检)."""

from __future__ import annotations

import datetime as dt

from pydantic import Field

from anju.alerts.model import AlertDraft, Seen, Severity
from anju.alerts.rules.base import AlertModel, ModelParams, RuleCtx, day_key, from_event


class DeviceHealthParams(ModelParams):
    severity: Severity = Severity.LOW
    offline: bool = Field(True, description="alert when a device goes offline")
    fault: bool = Field(True, description="alert when a device reports a fault")
    patrol_rounds: tuple[dt.time, ...] = Field(
        (dt.time(22), dt.time(0), dt.time(2), dt.time(4)),
        description="local times of the guards' rounds (empty: no patrol check)",
    )
    patrol_grace_minutes: int = Field(
        60, gt=0, le=720, description="how long after a round's time a check-in still counts"
    )


# What devices commonly report as a fault, in words (others are shown as reported).
FAULT_WORDS = {
    "communication error": "通信故障",
    "tamper": "防拆报警",
    "low battery": "电量低",
    "lens occluded": "镜头被遮挡",
    "reboot": "设备重启",
    "video loss": "视频丢失",
    "disk error": "存储故障",
    "power failure": "供电故障",
}


class DeviceHealth(AlertModel):
    """A device went offline or reported a fault; a patrol point missed a round."""

    code = "device_health"
    name = "设备离线/故障、巡更漏检"
    Params = DeviceHealthParams
    kinds = frozenset({"device.offline", "device.fault", "patrol.checkin"})
    replay = dt.timedelta(hours=14)  # the night's check-ins

    def on_event(self, event: Seen, ctx: RuleCtx) -> list[AlertDraft]:
        p: DeviceHealthParams = ctx.config
        place = ctx.facts.place(event.device_id)
        where = place.words() if place else event.device_code
        if event.kind == "patrol.checkin":
            # The patrol is watched at least since its earliest known check-in (after a
            # restart: the replayed ones), so the night's rounds are judged again.
            ctx.state["since"] = min(ctx.state.get("since", event.at), event.at)
            checkins = ctx.state.setdefault("checkins", {})
            checkins.setdefault(event.device_id, []).append(event.at)
            # Keep a day of check-ins per point: rounds look back at most that far.
            checkins[event.device_id] = [
                t for t in checkins[event.device_id] if t > event.at - dt.timedelta(days=1)
            ]
            return []
        if event.history:
            return []
        if event.kind == "device.offline" and p.offline:
            return [
                self.draft(
                    ctx,
                    f"offline:{event.device_id}",
                    f"设备离线：{where}",
                    event.at,
                    place=where,
                    **from_event(event),
                )
            ]
        if event.kind == "device.fault" and p.fault:
            fault = str(event.data.get("fault") or event.data.get("code") or "")
            said = FAULT_WORDS.get(fault.lower(), fault)
            return [
                self.draft(
                    ctx,
                    f"fault:{event.device_id}:{fault}",
                    f"设备故障：{where} {said}".strip(),
                    event.at,
                    place=where,
                    detail={"fault": fault},
                    **from_event(event),
                )
            ]
        return []

    def on_tick(self, now: dt.datetime, ctx: RuleCtx) -> list[AlertDraft]:
        p: DeviceHealthParams = ctx.config
        if not p.patrol_rounds:
            return []
        # Rounds that began before anything was watched are not judged: what happened in
        # them is unknown (a fresh start is no missed patrol).
        ctx.state.setdefault("since", now)
        points = ctx.facts.devices_of(ctx.community_id, "patrol_point")
        return self._missed(now, ctx, points) if points else []

    def _missed(self, now: dt.datetime, ctx: RuleCtx, points: list[int]) -> list[AlertDraft]:
        p: DeviceHealthParams = ctx.config
        grace = dt.timedelta(minutes=p.patrol_grace_minutes)
        checkins: dict[int, list[dt.datetime]] = ctx.state.setdefault("checkins", {})
        judged: set[str] = ctx.state.setdefault("judged", set())
        local_today = now.astimezone(ctx.tz).date()
        out: list[AlertDraft] = []
        for day in (local_today - dt.timedelta(days=1), local_today):
            for round_time in p.patrol_rounds:
                start = dt.datetime.combine(day, round_time, ctx.tz).astimezone(dt.UTC)
                if not start + grace <= now < start + grace + dt.timedelta(hours=6):
                    continue
                in_round = [
                    any(start - grace <= t <= start + grace for t in checkins.get(point, []))
                    for point in points
                ]
                # Judged only when watched from its start, or seen under way (check-ins).
                if start - grace < ctx.state["since"] and not any(in_round):
                    continue
                for point, checked in zip(points, in_round, strict=True):
                    key = f"{point}:{start.isoformat()}"
                    if key in judged:
                        continue
                    judged.add(key)
                    if checked:
                        continue
                    place = ctx.facts.place(point)
                    where = place.words() if place else str(point)
                    local = start.astimezone(ctx.tz)
                    out.append(
                        self.draft(
                            ctx,
                            f"patrol:{point}:{day_key(start, ctx.tz)}:{local:%H%M}",
                            f"巡更漏检：{where} {local:%H:%M} 班次",
                            now,
                            place=where,
                            device_id=point,
                            detail={"round": local.isoformat()},
                        )
                    )
        if len(judged) > 5000:
            judged.clear()  # old rounds fall out of the 6-hour judging range anyway
        return out
