"""Watchlist hits: key persons (重点人员, police-only) and controlled lists (布控: wanted
persons, stolen vehicles, plates of a region by prefix)."""

from __future__ import annotations

from pydantic import Field

from anju.alerts.facts import WatchHit
from anju.alerts.model import AlertDraft, Seen, Severity
from anju.alerts.rules.base import AlertModel, ModelParams, RuleCtx, day_key, from_event

# Everything that names who or what passed: access, captures, vehicles, probes, tags.
SIGHTINGS = frozenset(
    {
        "access.face", "access.card", "access.qr", "access.fingerprint", "access.bluetooth",
        "access.remote", "access.denied", "capture.face", "capture.vehicle", "vehicle.passed",
        "wifi.probe", "tag.seen", "lock.opened", "patrol.checkin",
    }
)  # fmt: skip


class ListParams(ModelParams):
    severity: Severity = Severity.HIGH
    categories: tuple[str, ...] = Field(
        (), description="only entries of these categories (empty: every category)"
    )


class _ListHit(AlertModel):
    """One alert per watched subject per day: further sightings merge into it."""

    list_kind: str
    kinds = SIGHTINGS

    def on_event(self, event: Seen, ctx: RuleCtx) -> list[AlertDraft]:
        if event.history or (event.person_id is None and event.subject_value is None):
            return []
        p: ListParams = ctx.config
        hits = [
            h
            for h in ctx.facts.watch_hits(ctx.community_id, event)
            if h.list_kind == self.list_kind and (not p.categories or h.category in p.categories)
        ]
        if not hits:
            return []
        hit = hits[0]
        place = ctx.facts.place(event.device_id)
        where = place.words() if place else event.device_code
        who = self._who(event, ctx)
        return [
            self.draft(
                ctx,
                f"{hit.entry_id}:{day_key(event.at, ctx.tz)}",
                f"{self.name}：{who}（{hit.category}）{where}",
                event.at,
                police_only=hit.police_only,
                place=where,
                detail={
                    "entries": [h.entry_id for h in hits],
                    "category": hit.category,
                    "reason": hit.reason,
                    "match": hit.match_type,
                },
                **from_event(event),
            )
        ]

    def _who(self, event: Seen, ctx: RuleCtx) -> str:
        if event.person_id is not None:
            return ctx.facts.person_name(event.person_id) or f"人员{event.person_id}"
        return event.subject_value or ""


class KeyPerson(_ListHit):
    """A person on a key-person watchlist is seen (police-only)."""

    code = "key_person"
    name = "重点人员出现"
    Params = ListParams
    list_kind = "key_person"


class ControlledList(_ListHit):
    """A person or vehicle on a controlled list (or a plate matching a prefix rule) is seen."""

    code = "controlled_list"
    name = "布控对象出现"
    Params = ListParams
    list_kind = "controlled"


__all__ = ["ControlledList", "KeyPerson", "WatchHit"]
