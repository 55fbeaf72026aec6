"""Models over who lives in a house: unregistered occupants of a rental flat (出租房未登记)
and suspected group rentals (群租)."""

from __future__ import annotations

import datetime as dt

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


class GroupRental(AlertModel):
    """Many more distinct people using one house's lock over a window than live there by the
    registry (a household of 2 and 9 different openers in a week)."""

    code = "group_rental"
    name = "疑似群租"
    Params = GroupRentalParams
    kinds = frozenset({"lock.opened"})
    replay = dt.timedelta(days=30)

    def on_event(self, event: Seen, ctx: RuleCtx) -> list[AlertDraft]:
        p: GroupRentalParams = ctx.config
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
