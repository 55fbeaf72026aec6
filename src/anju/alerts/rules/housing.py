"""Models over who lives in a house: unregistered occupants of a rental flat (出租房未登记)
and suspected group rentals (群租)."""

from __future__ import annotations

import datetime as dt
import itertools
import statistics

from pydantic import Field

from anju.alerts.model import AlertDraft, Seen, Severity
from anju.alerts.rules.base import AlertModel, ModelParams, RuleCtx, from_event


def opener(event: Seen) -> str | None:
    """Who opened a smart lock: the registry person, else the lock's own credential id."""
    if event.person_id is not None:
        return f"person:{event.person_id}"
    credential = event.data.get("credential") or event.subject_value
    return f"credential:{credential}" if credential else None


class RentalParams(ModelParams):
    severity: Severity = Severity.MEDIUM
    report_days: int = Field(
        3, ge=1, le=7, description="days an occupant may use the flat before being registered"
    )
    only_rented: bool = Field(True, description="watch only houses registered as rented")


class RentalUnregistered(AlertModel):
    """A smart lock opened, on days spanning more than ``report_days``, by a credential that
    belongs to no registered resident of the house: a new occupant not reported. A guest
    staying a night or two is not one."""

    code = "rental_unregistered"
    name = "出租房未登记人员"
    Params = RentalParams
    kinds = frozenset({"lock.opened"})
    replay = dt.timedelta(days=8)

    def on_event(self, event: Seen, ctx: RuleCtx) -> list[AlertDraft]:
        p: RentalParams = ctx.config
        house, who = event.house_id, opener(event)
        if event.history or house is None or who is None:
            return []
        if p.only_rented and not ctx.facts.rented(house):
            return []
        if event.person_id is not None and ctx.facts.is_resident(house, event.person_id):
            return []
        uses: dict[tuple[int, str], list[dt.datetime]] = ctx.state.setdefault("uses", {})
        horizon = event.at - dt.timedelta(days=p.report_days + 4)
        times = [t for t in uses.get((house, who), []) if t > horizon] + [event.at]
        uses[(house, who)] = times
        if event.at - times[0] < dt.timedelta(days=p.report_days):
            return []
        days = (event.at - times[0]).days
        return [
            self.draft(
                ctx, f"{house}:{who}",
                f"出租房未登记人员：{days} 天内多次开锁（{who.split(':', 1)[1]}）", event.at,
                detail={"first_use": times[0].isoformat(), "uses": len(times)},
                **from_event(event),
            )
        ]  # fmt: skip


class GroupRentalParams(ModelParams):
    severity: Severity = Severity.MEDIUM
    window_days: int = Field(7, ge=1, le=30, description="the look-back (days)")
    factor: float = Field(
        2.0, gt=1, le=10, description="distinct users above this many times the household"
    )
    min_people: int = Field(6, ge=2, le=100, description="and at least this many users")
    meter_days: int = Field(
        7, ge=2, le=30, description="the look-back of water/electricity use (days)"
    )
    min_houses: int = Field(
        10, ge=3, le=10_000, description="houses with readings of a meter kind needed to compare"
    )
    use_factor: float = Field(
        3.0, gt=1, le=20,
        description="use per registered resident at least this many times the median of "
        "the community's houses",
    )  # fmt: skip
    water_floor: float = Field(
        0.5, ge=0, le=100, description="and a house's water use at least this (m³ per day)"
    )
    electricity_floor: float = Field(
        15.0, ge=0, le=10_000, description="and its electricity use at least this (kWh per day)"
    )
    judge_hour: int = Field(
        6, ge=0, le=23, description="local hour from which use is judged, once a day"
    )


METER_KINDS = {
    "meter.water": ("water", "用水", "m³"),
    "meter.electricity": ("electricity", "用电", "kWh"),
}


class GroupRental(AlertModel):
    """Many more distinct people using one house's lock over a window than live there by the
    registry (a household of 2 and 9 different openers in a week); or a house using far more
    water or electricity per registered resident than the community's houses do (judged once
    a day from the meters' cumulative readings)."""

    code = "group_rental"
    name = "疑似群租"
    Params = GroupRentalParams
    kinds = frozenset({"lock.opened", *METER_KINDS})
    replay = dt.timedelta(days=30)

    def on_event(self, event: Seen, ctx: RuleCtx) -> list[AlertDraft]:
        p: GroupRentalParams = ctx.config
        if event.kind in METER_KINDS:
            self._reading(event, ctx)
            return []
        house, who = event.house_id, opener(event)
        if event.history or house is None or who is None:
            return []
        users: dict[int, dict[str, dt.datetime]] = ctx.state.setdefault("users", {})
        horizon = event.at - dt.timedelta(days=p.window_days)
        seen = {k: t for k, t in users.get(house, {}).items() if t > horizon}
        seen[who] = event.at
        users[house] = seen
        household = ctx.facts.household_size(house)
        if len(seen) < p.min_people or len(seen) <= household * p.factor:
            return []
        return [
            self.draft(
                ctx, str(house),
                f"疑似群租：{p.window_days} 天内 {len(seen)} 人开锁，登记 {household} 人",
                event.at, house_id=house, device_id=event.device_id, evidence=(event.id,),
                detail={"users": len(seen), "household": household},
            )
        ]  # fmt: skip

    def _reading(self, event: Seen, ctx: RuleCtx) -> None:
        """Keep a house's meter reading (replays and readings without a value are not use)."""
        p: GroupRentalParams = ctx.config
        if event.history or event.house_id is None or event.value is None:
            return
        meters: dict[tuple[str, int], list[tuple[dt.datetime, float, int, int]]]
        meters = ctx.state.setdefault("meters", {})
        key = (event.kind, event.house_id)
        horizon = event.at - dt.timedelta(days=p.meter_days + 1)
        kept = [r for r in meters.get(key, []) if r[0] > horizon]
        kept.append((event.at, event.value, event.device_id, event.id))
        kept.sort(key=lambda r: r[0])
        meters[key] = kept

    def on_tick(self, now: dt.datetime, ctx: RuleCtx) -> list[AlertDraft]:
        """Once a day: each house's use per day over ``meter_days`` against the median use
        per registered resident of the houses with the same kind of meter."""
        p: GroupRentalParams = ctx.config
        local = now.astimezone(ctx.tz)
        if local.hour < p.judge_hour or ctx.state.get("judged") == local.date():
            return []
        ctx.state["judged"] = local.date()
        meters: dict[tuple[str, int], list[tuple[dt.datetime, float, int, int]]]
        meters = ctx.state.get("meters", {})
        start = now - dt.timedelta(days=p.meter_days)
        rates: dict[str, dict[int, float]] = {}
        for (kind, house), readings in meters.items():
            rate = daily_use([(t, v) for t, v, _, _ in readings if start <= t <= now])
            if rate is not None:
                rates.setdefault(kind, {})[house] = rate
        drafts: list[AlertDraft] = []
        for kind, by_house in sorted(rates.items()):
            if len(by_house) < p.min_houses:
                continue
            size = {h: max(1, ctx.facts.household_size(h)) for h in by_house}
            median = statistics.median(by_house[h] / size[h] for h in by_house)
            what, word, unit = METER_KINDS[kind]
            floor = p.water_floor if what == "water" else p.electricity_floor
            for house, rate in sorted(by_house.items()):
                per_resident = rate / size[house]
                if rate < floor or per_resident < p.use_factor * median or median <= 0:
                    continue
                _, _, device, last = meters[(kind, house)][-1]
                times = per_resident / median
                drafts.append(
                    self.draft(
                        ctx, str(house),
                        f"疑似群租：近 {p.meter_days} 天日均{word} {rate:.2f} {unit}，"
                        f"人均为同类住户的 {times:.1f} 倍，登记 {size[house]} 人",
                        now, house_id=house, device_id=device, evidence=(last,),
                        detail={"meter": what, "per_day": round(rate, 3),
                                "median_per_resident": round(median, 3),
                                "household": size[house]},
                    )
                )  # fmt: skip
        return drafts


def daily_use(readings: list[tuple[dt.datetime, float]]) -> float | None:
    """Use per day from cumulative readings in time order: the sum of the rises between
    consecutive readings (a fall is a reset or a replaced meter and counts nothing) over the
    time they span; None under a day of readings."""
    if len(readings) < 2:
        return None
    days = (readings[-1][0] - readings[0][0]).total_seconds() / 86_400
    if days < 1:
        return None
    used = sum(max(0.0, b[1] - a[1]) for a, b in itertools.pairwise(readings))
    return used / days
