"""Models over who passes the doors: stranger loitering (长期徘徊), tailgating (尾随进入),
suspicious entry (可疑人员进入) and abnormal night-time entries (夜间异常出入)."""

from __future__ import annotations

import bisect
import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from pydantic import Field

from anju.alerts.model import AlertDraft, Seen, Severity
from anju.alerts.rules.base import AlertModel, ModelParams, RuleCtx, Window, day_key, from_event

GRANTED = frozenset(
    {"access.face", "access.card", "access.qr", "access.fingerprint", "access.bluetooth",
     "access.remote"}
)  # fmt: skip
NEVER = dt.datetime.min.replace(tzinfo=dt.UTC)
CLOCK_SKEW = dt.timedelta(seconds=2)
CREDENTIAL = GRANTED - {"access.remote", "access.qr"}  # a resident's own credential


def door_of(event: Seen, ctx: RuleCtx) -> str:
    """The door a device watches: gates' cameras and readers share their ``door``; a device
    without one is a door of its own."""
    place = ctx.facts.place(event.device_id)
    if place is not None and place.door:
        return f"{place.building or ''}/{place.unit or ''}/{place.door}"
    return f"device:{event.device_id}"


def _where(event: Seen, ctx: RuleCtx) -> str:
    place = ctx.facts.place(event.device_id)
    return place.words() if place else event.device_code


def unregistered(event: Seen, ctx: RuleCtx) -> bool:
    """Nobody the registry knows: no person (or vehicle) behind the subject, or a person of
    another community."""
    if event.subject_type == "plate":
        return event.vehicle_id is None
    if event.person_id is None:
        return True
    return not ctx.facts.is_registered(ctx.community_id, event.person_id)


# --- stranger loitering -------------------------------------------------------------------


class LoiteringParams(ModelParams):
    severity: Severity = Severity.MEDIUM
    min_sightings: int = Field(6, ge=2, le=1000, description="sightings within the window")
    window_minutes: int = Field(60, gt=0, le=24 * 60, description="the window (minutes)")
    pass_seconds: int = Field(
        6, gt=0, le=120, description="a door used this soon after a capture explains it"
    )
    min_unexplained: int = Field(
        4, ge=1, le=1000, description="of the sightings, how many no door use explains"
    )
    settle_seconds: int = Field(
        30, ge=0, le=600, description="wait for other devices' late batches before judging"
    )


class StrangerLoitering(AlertModel):
    """The same unregistered MAC, plate or face seen again and again in a short time
    without passing any door. A sighting followed within ``pass_seconds`` by a use of the
    same door (a courier captured, then let in) is explained; it takes ``min_unexplained``
    unexplained sightings, so doors busy with others do not hide a loiterer. Any access or
    barrier event of the subject itself means it passed. Judged on the tick, once
    ``settle_seconds`` have passed after a sighting: a gate's batch that reaches the node
    after the camera's (each device delivers its own) still explains the capture."""

    code = "stranger_loitering"
    name = "陌生人长期徘徊"
    Params = LoiteringParams
    SIGHT = frozenset({"wifi.probe", "capture.face", "capture.vehicle"})
    PASS = GRANTED | {"access.denied", "vehicle.passed"}
    kinds = SIGHT | PASS
    replay = dt.timedelta(hours=24)

    def on_event(self, event: Seen, ctx: RuleCtx) -> list[AlertDraft]:
        p: LoiteringParams = ctx.config
        window = dt.timedelta(minutes=p.window_minutes)
        passed: dict[tuple[str, str], dt.datetime] = ctx.state.setdefault("passed", {})
        uses: dict[str, list[dt.datetime]] = ctx.state.setdefault("uses", {})
        seen: dict[tuple[str, str], list[tuple[dt.datetime, str]]] = ctx.state.setdefault(
            "seen", {}
        )
        door = door_of(event, ctx)
        key = (event.subject_type or "", (event.subject_value or "").upper())
        if event.kind in self.PASS:
            if key[1]:
                passed[key] = max(event.at, passed.get(key, event.at))
            times = uses.setdefault(door, [])
            bisect.insort(times, event.at)
            keep = bisect.bisect_left(times, times[-1] - window - dt.timedelta(minutes=5))
            del times[:keep]
            return []
        if not key[1] or not unregistered(event, ctx):
            return []
        since = event.at - window
        # Sightings not judged yet stay, however much later this one is: a device's batch
        # may bring a loiterer's laps and a sighting hours after them before the next tick.
        judged = ctx.state.get("judged", {}).get(key, NEVER)
        sightings = [(t, d) for t, d in seen.get(key, []) if t > since or t > judged]
        sightings.append((event.at, door))
        sightings.sort(key=lambda s: s[0])
        seen[key] = sightings
        latest: dict[tuple[str, str], Seen] = ctx.state.setdefault("latest", {})
        if key not in latest or latest[key].at <= event.at:
            latest[key] = event
        self._forget(ctx, since)
        return []

    def on_tick(self, now: dt.datetime, ctx: RuleCtx) -> list[AlertDraft]:
        """Judge each subject's sightings up to ``now - settle_seconds``: by then the door
        uses that explain them have arrived, whichever device delivered first."""
        p: LoiteringParams = ctx.config
        until = now - dt.timedelta(seconds=p.settle_seconds)
        window = dt.timedelta(minutes=p.window_minutes)
        after = dt.timedelta(seconds=p.pass_seconds)
        judged: dict[tuple[str, str], dt.datetime] = ctx.state.setdefault("judged", {})
        uses: dict[str, list[dt.datetime]] = ctx.state.get("uses", {})
        passed: dict[tuple[str, str], dt.datetime] = ctx.state.get("passed", {})
        out: list[AlertDraft] = []
        for key, all_sightings in ctx.state.get("seen", {}).items():
            ready = [(t, d) for t, d in all_sightings if t <= until]
            if not ready or ready[-1][0] <= judged.get(key, NEVER):
                continue
            last = ready[-1][0]
            judged[key] = last
            if last <= until - window:
                continue  # replayed after a restart: judged then, or too old to act on
            sightings = [(t, d) for t, d in ready if t > last - window]
            if len(sightings) < p.min_sightings:
                continue
            own = passed.get(key)
            if own is not None and own > last - window:
                continue
            unexplained = sum(1 for t, d in sightings if not _used(uses.get(d, []), t, after))
            if unexplained < p.min_unexplained:
                continue
            event = ctx.state["latest"][key]
            where = _where(event, ctx)
            out.append(
                self.draft(
                    ctx, f"{key[0]}:{key[1]}:{day_key(last, ctx.tz)}",
                    f"陌生对象徘徊：{key[1]} {p.window_minutes} 分钟内"
                    f"出现 {len(sightings)} 次（{where}）",
                    last, place=where, detail={"sightings": len(sightings)},
                    **from_event(event),
                )
            )  # fmt: skip
        return out

    def _forget(self, ctx: RuleCtx, since: dt.datetime) -> None:
        """Drop subjects not seen within the window, now and then (bounded memory)."""
        ctx.state["n"] = ctx.state.get("n", 0) + 1
        if ctx.state["n"] % 1000:
            return
        seen = ctx.state["seen"]
        for key in [k for k, sightings in seen.items() if sightings[-1][0] <= since]:
            del seen[key]
            ctx.state.get("latest", {}).pop(key, None)
            ctx.state.get("judged", {}).pop(key, None)
        passed = ctx.state["passed"]
        for key in [k for k, at in passed.items() if at <= since]:
            del passed[key]


def _used(times: list[dt.datetime], at: dt.datetime, after: dt.timedelta) -> bool:
    """Whether the sorted ``times`` hold a door use from just before ``at`` (clocks of
    two devices differ) to ``after`` it: the captured person going through."""
    i = bisect.bisect_left(times, at - CLOCK_SKEW)
    return i < len(times) and times[i] <= at + after


# --- tailgating ---------------------------------------------------------------------------


class TailgatingParams(ModelParams):
    severity: Severity = Severity.MEDIUM
    seconds: int = Field(5, gt=0, le=60, description="around one opening, what counts with it")
    settle_seconds: int = Field(
        30, ge=0, le=600, description="wait for other devices' late batches before judging"
    )


class Tailgating(AlertModel):
    """More people passed a door than it was opened for. Each face captured at the door is
    matched to an opening within ``seconds`` of it, one face per opening — the opening of
    the same recognised person first, else the earliest; a face left over beside an opening
    another face took is someone who came in without opening, and the alert names that
    opening. A face is the person recognised in it, else its subject (a stranger's cluster,
    a track id); the same face again within the window counts once. A refusal at the door
    accounts for one face too (a visitor's expired pass: captured, refused, turned away),
    and a face refused by face did not pass at all — that refusal was theirs and accounts
    for no one else. Openings going out may take a face the camera caught without a
    direction; neither they nor refusals are ever named. Captures marked going out are not
    counted. A device's own head count above one alerts at once.

    Judged on the tick, once a face's window and ``settle_seconds`` have passed by the
    tick's clock: the reader's and the camera's batches arrive separately, in either order,
    and a later event of one device must not close the judgement before the other's are
    in. (A face delivered after its time was judged is not judged.)"""

    code = "tailgating"
    name = "尾随进入"
    Params = TailgatingParams
    kinds = GRANTED | {"capture.face", "access.denied", "door.opened"}

    def on_event(self, event: Seen, ctx: RuleCtx) -> list[AlertDraft]:
        if event.history:
            return []
        doors: dict[str, _Door] = ctx.state.setdefault("doors", {})
        door = doors.setdefault(door_of(event, ctx), _Door())
        if event.kind in GRANTED:
            if event.direction == "out":
                _add(door.exits, event.at, event)
                return []
            _add(door.entries, event.at, event)
            persons = event.data.get("persons") or event.data.get("count")
            if isinstance(persons, int) and persons > 1:
                return [self._alert(ctx, event, persons, 1)]
        elif event.kind == "capture.face" and event.direction != "out":
            if face := _face(event):
                _add(door.faces, event.at, (face, event.direction, event.person_id))
        elif event.kind == "access.denied":
            _add(door.refusals, event.at, event)
            if face := _face(event):
                _add(door.denied, event.at, face)
        return []

    def on_tick(self, now: dt.datetime, ctx: RuleCtx) -> list[AlertDraft]:
        out: list[AlertDraft] = []
        for door in ctx.state.get("doors", {}).values():
            out += self._judge(ctx, door, now, ctx.config)
        return out

    def _judge(
        self, ctx: RuleCtx, door: _Door, now: dt.datetime, p: TailgatingParams
    ) -> list[AlertDraft]:
        """Match the faces whose window has passed to openings (see the class); then forget
        what no face still to be judged can need."""
        w = dt.timedelta(seconds=p.seconds)
        until = now - w - dt.timedelta(seconds=p.settle_seconds)
        if until <= door.judged_to:
            return []
        extra: dict[int, tuple[Seen, int]] = {}  # opening (event id) -> faces left over
        first = bisect.bisect_right(door.faces, door.judged_to, key=_time)
        last = bisect.bisect_right(door.faces, until, key=_time)
        for at, (face, direction, person) in door.faces[first:last]:
            if face in _near(door.denied, at, w):
                # Turned away: the refusal was theirs, no one else's to pass on.
                for _t, refusal in _around(door.refusals, at, w):
                    if _face(refusal) == face and refusal.id not in door.used:
                        door.used[refusal.id] = at
                        break
                continue
            before = door.last_seen.get(face)
            door.last_seen[face] = at
            if before is not None and at - before <= w:
                continue  # the same face again
            entries = _around(door.entries, at, w)
            pool = entries + [
                r for r in _around(door.refusals, at, w) if not _claimed(door, r[1], face, w)
            ]
            if direction is None:
                pool += _around(door.exits, at, w)
            free = [(t, o) for t, o in pool if o.id not in door.used]
            if free:
                own = [(t, o) for t, o in free if person is not None and o.person_id == person]
                taken, opening = min(own or free, key=_time)
                door.used[opening.id] = taken
            elif entries:
                _t, opening = min(entries, key=lambda e: abs(e[0] - at))
                extra[opening.id] = (opening, extra.get(opening.id, (opening, 0))[1] + 1)
        door.judged_to = until
        horizon = until - w
        del door.faces[:last]
        for items in (door.entries, door.exits, door.refusals, door.denied):
            del items[: bisect.bisect_left(items, horizon, key=_time)]
        door.used = {k: t for k, t in door.used.items() if t >= horizon}
        door.last_seen = {k: t for k, t in door.last_seen.items() if t >= horizon}
        return [self._alert(ctx, o, 1 + n, 1) for o, n in extra.values()]

    def _alert(self, ctx: RuleCtx, grant: Seen, people: int, openings: int) -> AlertDraft:
        where = _where(grant, ctx)
        return self.draft(
            ctx, f"{door_of(grant, ctx)}:{grant.at.isoformat()}",
            f"尾随进入：{where} 开门 {openings} 次通过 {people} 人", grant.at, place=where,
            detail={"people": people, "openings": openings}, **from_event(grant),
        )  # fmt: skip


def _face(event: Seen) -> str | None:
    """Who a face is: the recognised person, else the subject (stranger cluster, track)."""
    if event.person_id is not None:
        return f"person:{event.person_id}"
    return f"{event.subject_type}:{event.subject_value}" if event.subject_value else None


@dataclass
class _Door:
    """What one door saw lately, each list in time order."""

    entries: list[tuple[dt.datetime, Seen]] = field(default_factory=list)  # openings in
    exits: list[tuple[dt.datetime, Seen]] = field(default_factory=list)  # openings out
    refusals: list[tuple[dt.datetime, Seen]] = field(default_factory=list)
    # (face, direction, recognised person)
    faces: list[tuple[dt.datetime, tuple[str, str | None, int | None]]] = field(
        default_factory=list
    )
    denied: list[tuple[dt.datetime, str]] = field(default_factory=list)  # refused faces
    used: dict[int, dt.datetime] = field(default_factory=dict)  # openings taken (id -> time)
    last_seen: dict[str, dt.datetime] = field(default_factory=dict)  # face -> when
    judged_to: dt.datetime = NEVER


def _claimed(door: _Door, refusal: Seen, face: str, w: dt.timedelta) -> bool:
    """Whether ``refusal`` turned away a face other than ``face`` that the camera caught
    beside it: that refusal accounts for that face only."""
    refused = _face(refusal)
    return (
        refused is not None
        and refused != face
        and any(f == refused for f, _d, _p in _near(door.faces, refusal.at, w))
    )


def _time(item: tuple[dt.datetime, Any]) -> dt.datetime:
    return item[0]


def _add(items: list[tuple[dt.datetime, Any]], at: dt.datetime, value: Any) -> None:
    """Keep ``items`` in time order (devices deliver in their own batches)."""
    if not items or items[-1][0] <= at:
        items.append((at, value))
    else:
        items.insert(bisect.bisect_right(items, at, key=_time), (at, value))


def _around(
    items: list[tuple[dt.datetime, Any]], at: dt.datetime, w: dt.timedelta
) -> list[tuple[dt.datetime, Any]]:
    """The time-ordered ``items`` within ``w`` of ``at``."""
    lo = bisect.bisect_left(items, at - w, key=_time)
    hi = bisect.bisect_right(items, at + w, key=_time)
    return items[lo:hi]


def _near(items: list[tuple[dt.datetime, Any]], at: dt.datetime, w: dt.timedelta) -> list[Any]:
    """The values of the time-ordered ``items`` within ``w`` of ``at``."""
    return [v for _t, v in _around(items, at, w)]


# --- suspicious entry ---------------------------------------------------------------------


class SuspiciousParams(ModelParams):
    severity: Severity = Severity.MEDIUM
    device_kinds: tuple[str, ...] = Field(
        ("unit_door",), description="which doors (device kinds) are watched"
    )


class SuspiciousEntry(AlertModel):
    """Someone the registry does not know entering a building or unit door with a credential
    of their own (an unknown card or face template, a person of another community). Visitor
    passes and doors opened from a flat (intercom, app) are a resident's decision: not
    suspicious."""

    code = "suspicious_entry"
    name = "可疑人员进入"
    Params = SuspiciousParams
    kinds = CREDENTIAL | {"door.forced"}

    def on_event(self, event: Seen, ctx: RuleCtx) -> list[AlertDraft]:
        p: SuspiciousParams = ctx.config
        if event.history or event.direction == "out" or event.device_kind not in p.device_kinds:
            return []
        if event.kind != "door.forced" and not unregistered(event, ctx):
            return []
        where = _where(event, ctx)
        who = event.subject_value or "未知"
        what = "强行开门" if event.kind == "door.forced" else f"未登记人员进入 {who}"
        return [
            self.draft(
                ctx, f"{event.device_id}:{who}:{day_key(event.at, ctx.tz)}",
                f"可疑人员进入：{where} {what}", event.at, place=where, **from_event(event),
            )
        ]  # fmt: skip


# --- night entries ------------------------------------------------------------------------


class NightParams(ModelParams):
    severity: Severity = Severity.LOW
    night: Window = Field(
        Window(start=dt.time(0, 30), end=dt.time(5, 0)), description="what counts as night"
    )
    min_nights: int = Field(3, ge=2, le=30, description="nights with an entry within the days")
    days: int = Field(7, ge=1, le=30, description="the look-back (days)")


class NightEntry(AlertModel):
    """A registered person entering at night on several nights of a short period (one late
    homecoming is normal; a pattern is worth a look)."""

    code = "night_entry"
    name = "夜间异常出入"
    Params = NightParams
    kinds = GRANTED
    replay = dt.timedelta(days=30)

    def on_event(self, event: Seen, ctx: RuleCtx) -> list[AlertDraft]:
        p: NightParams = ctx.config
        if event.history or event.person_id is None or event.direction == "out":
            return []
        if not p.night.contains(event.at, ctx.tz):
            return []
        # The night an entry belongs to is the local date at its start (after noon).
        night = (event.at.astimezone(ctx.tz) - dt.timedelta(hours=12)).date()
        nights: dict[int, set[dt.date]] = ctx.state.setdefault("nights", {})
        recent = {
            d for d in nights.get(event.person_id, set()) if d > night - dt.timedelta(days=p.days)
        }
        recent.add(night)
        nights[event.person_id] = recent
        if len(recent) < p.min_nights:
            return []
        name = ctx.facts.person_name(event.person_id) or f"人员{event.person_id}"
        return [
            self.draft(
                ctx, str(event.person_id),
                f"夜间频繁出入：{name} {p.days} 天内 {len(recent)} 晚", event.at,
                place=_where(event, ctx), detail={"nights": sorted(d.isoformat() for d in recent)},
                **from_event(event),
            )
        ]  # fmt: skip
