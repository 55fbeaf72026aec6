"""Elderly living alone, inactivity (独居老人无活动): no sign of life from the house's sensors
or the person's door access for too long."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from pydantic import Field, model_validator

from anju.alerts.model import AlertDraft, Seen, Severity
from anju.alerts.rules.base import AlertModel, ModelParams, RuleCtx, Window

# Signs of life in a house: a door opened, motion, water drawn, the smart lock used.
HOUSE_SIGNS = frozenset({"sensor.door_magnet", "sensor.infrared", "meter.water", "lock.opened"})
ACCESS = frozenset(
    {"access.face", "access.card", "access.qr", "access.fingerprint", "access.bluetooth",
     "access.remote"}
)  # fmt: skip


class ElderlyParams(ModelParams):
    severity: Severity = Severity.HIGH
    inactive_hours: float = Field(
        12, gt=0, le=72, description="awake hours without any sign (door magnet, water, access)"
    )
    daytime_hours: float = Field(
        3, gt=0, le=24,
        description="awake hours without any sign in a house with an infrared sensor",
    )  # fmt: skip
    sleeping: Window = Field(
        Window(start=dt.time(21, 30), end=dt.time(7, 0)),
        description="sleeping hours, which do not count towards either limit",
    )

    @model_validator(mode="after")
    def _daytime_shorter(self) -> ElderlyParams:
        if self.daytime_hours > self.inactive_hours:
            raise ValueError("daytime_hours must not exceed inactive_hours")
        return self


class ElderlyInactive(AlertModel):
    """Fuses every sensor of the person's house and their door access: the last sign of
    life, and whether they were last seen going out of the community (then silence at home
    is expected)."""

    code = "elderly_inactive"
    name = "独居老人无活动"
    Params = ElderlyParams
    kinds = HOUSE_SIGNS | ACCESS
    replay = dt.timedelta(hours=72)

    def on_event(self, event: Seen, ctx: RuleCtx) -> list[AlertDraft]:
        homes = ctx.facts.elderly_alone(ctx.community_id)
        if event.kind in ACCESS:
            if event.person_id is None:
                return []
            # House by person, rebuilt when the facts give a new mapping (one look-up per
            # access event instead of a scan of every elderly home).
            if ctx.state.get("homes") is not homes:
                ctx.state["homes"] = homes
                ctx.state["house_of"] = {p: h for h, p in homes.items()}
            house = ctx.state["house_of"].get(event.person_id)
            if house is None:
                return []
        else:
            house = event.house_id
            if house is None or house not in homes:
                return []
            if event.kind == "meter.water" and not self._drawn(event, ctx):
                return []
            if event.kind == "sensor.infrared":
                ctx.state.setdefault("motion", set()).add(house)
        last = ctx.state.setdefault("last", {})
        if house not in last or event.at >= last[house]:
            # Only the latest sign says where they are: a door magnet's batch delivered
            # after the gate's "out" must not bring them home again.
            last[house] = event.at
            away = event.kind in ACCESS and event.direction == "out"
            ctx.state.setdefault("away", {})[house] = away
        return []

    @staticmethod
    def _drawn(event: Seen, ctx: RuleCtx) -> bool:
        """Whether a meter reading shows water drawn lately: the total went up since a
        reading less than two hours before. A daily reading says nothing about the hour."""
        readings: dict[int, tuple[dt.datetime, float]] = ctx.state.setdefault("meters", {})
        before = readings.get(event.device_id)
        if event.value is None:
            return False
        readings[event.device_id] = (event.at, event.value)
        return (
            before is not None
            and event.at - before[0] <= dt.timedelta(hours=2)
            and event.value > before[1]
        )

    def on_tick(self, now: dt.datetime, ctx: RuleCtx) -> list[AlertDraft]:
        p: ElderlyParams = ctx.config
        started = ctx.state.setdefault("started", now)
        last: dict[int, dt.datetime] = ctx.state.setdefault("last", {})
        away: dict[int, bool] = ctx.state.setdefault("away", {})
        motion: set[int] = ctx.state.setdefault("motion", set())
        alerted: dict[int, dt.datetime] = ctx.state.setdefault("alerted", {})
        out: list[AlertDraft] = []
        for house, person in ctx.facts.elderly_alone(ctx.community_id).items():
            if away.get(house):
                continue
            since = last.get(house, started)
            # An infrared sensor sees a person at home within hours; a door magnet alone only
            # when they go out, so a house without motion sensing gets the longer limit.
            # The short limit counts from waking up, so a late riser is not an alarm.
            if house in motion:
                woke = last_wake(now, p.sleeping, ctx.tz)
                quiet, limit, rule = (
                    awake(max(since, woke), now, p, ctx.tz),
                    p.daytime_hours,
                    "motion",
                )
            else:
                quiet, limit, rule = awake(since, now, p, ctx.tz), p.inactive_hours, "inactive"
            if quiet >= dt.timedelta(hours=limit) and alerted.get(house) != since:
                # One draft per silence: a repeat every minute would only count ticks.
                alerted[house] = since
                out.append(self._alert(ctx, now, house, person, since, rule))
        return out

    def _alert(
        self,
        ctx: RuleCtx,
        now: dt.datetime,
        house: int,
        person: int,
        since: dt.datetime,
        why: str,
    ) -> AlertDraft:
        name = ctx.facts.person_name(person) or f"人员{person}"
        hours = (now - since).total_seconds() / 3600
        return self.draft(
            ctx,
            # One alert per episode: the same silence merges, a new sign starts a new one.
            f"{person}:{since.isoformat()}",
            f"独居老人无活动：{name} 已 {hours:.0f} 小时无活动迹象",
            now,
            person_id=person,
            house_id=house,
            detail={"last_sign": since.isoformat(), "rule": why},
        )


def awake(since: dt.datetime, now: dt.datetime, p: ElderlyParams, tz: ZoneInfo) -> dt.timedelta:
    """How much of [since, now) lies outside the sleeping hours (local time)."""
    sleeping = p.sleeping
    total = max(now - since, dt.timedelta(0))
    day = since.astimezone(tz).date() - dt.timedelta(days=1)
    last = now.astimezone(tz).date()
    while day <= last:
        start = dt.datetime.combine(day, sleeping.start, tz)
        end_day = day + dt.timedelta(days=1) if sleeping.end <= sleeping.start else day
        end = dt.datetime.combine(end_day, sleeping.end, tz)
        overlap = min(end, now) - max(start, since)
        if overlap > dt.timedelta(0):
            total -= overlap
        day += dt.timedelta(days=1)
    return total


def last_wake(now: dt.datetime, sleeping: Window, tz: ZoneInfo) -> dt.datetime:
    """When the latest sleeping window ended at or before ``now`` (local time), as UTC."""
    local = now.astimezone(tz)
    end = dt.datetime.combine(local.date(), sleeping.end, tz)
    if end > local:
        end -= dt.timedelta(days=1)
    return end.astimezone(dt.UTC)
