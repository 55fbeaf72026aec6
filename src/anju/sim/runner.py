"""Living the days: send a :class:`~anju.sim.life.Life` through a sender, fast or paced.

:func:`run_days` sends whole days as fast as the node takes them. :func:`run_paced` runs a
simulated clock ``speed`` times faster than the real one from a start time, sending each
event when the simulated clock passes it; the simulated clock never runs ahead of the real
one (the node refuses events more than a few minutes in the future), so a run started in
the past catches up at ``speed`` and then keeps time with the clock. :class:`LifeThread`
runs that in the background for ``anju demo``.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from anju.bootstrap import Node
from anju.sim.faces import MODEL as FACE_MODEL
from anju.sim.faces import enrol_people
from anju.sim.life import Day, Life, SimEvent, World, by_device, load_world, provision_people
from anju.sim.senders import HttpSender, Sender, Tally, issue_device_credentials

if TYPE_CHECKING:
    from anju.sim.anomalies import Scenario

log = logging.getLogger(__name__)

Clock = Callable[[], dt.datetime]


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def prepare(node: Node, community: str) -> World:
    """Provision the residents' credentials, read the world and enrol its people's
    simulated faces (one unit of work)."""
    with node.unit_of_work() as ctx:
        provision_people(ctx.session, community)
        world = load_world(ctx.session, community, node.settings.timezone)
        enrol_people(ctx, node.faces, world)
        return world


def send_events(sender: Sender, events: Iterable[SimEvent]) -> int:
    """Send events grouped per device; how many were sent."""
    grouped = by_device(events)
    for device, bodies in grouped.items():
        sender.send(device, bodies)
    return sum(len(b) for b in grouped.values())


def run_days(
    life: Life,
    sender: Sender,
    first: dt.date,
    last: dt.date,
    *,
    progress: Callable[[Day], None] | None = None,
    clock: Clock = _utcnow,
) -> None:
    """Send every event of the days ``first``..``last``, as fast as the node takes them
    (events not yet due by the real clock are held back: the node would refuse them)."""
    for day in life.days(first, last):
        now = clock()
        send_events(sender, (e for e in day.events if e.at <= now))
        if progress is not None:
            progress(day)


def run_paced(
    life: Life,
    sender: Sender,
    start: dt.datetime,
    speed: float,
    stop: threading.Event,
    *,
    until: dt.datetime | None = None,
    tick: float = 1.0,
    clock: Clock = _utcnow,
    events_of: Callable[[dt.date], Sequence[SimEvent]] | None = None,
) -> dt.datetime:
    """Send events as a clock ``speed`` times faster than real passes them, from ``start``
    until ``until`` (or for ever) or ``stop`` is set; returns the simulated time reached.
    ``events_of(date)`` gives a day's events (default: the life's own day)."""
    events_of = events_of or (lambda date: life.day(date).events)
    pending: deque[SimEvent] = deque()
    next_day = start.astimezone(life.tz).date()
    began = time.monotonic()
    reached = start
    while not stop.is_set():
        target = min(start + dt.timedelta(seconds=(time.monotonic() - began) * speed), clock())
        if until is not None:
            target = min(target, until)
        while dt.datetime.combine(next_day, dt.time(), life.tz) <= target:
            pending.extend(e for e in events_of(next_day) if e.at >= start)
            next_day += dt.timedelta(days=1)
        due: list[SimEvent] = []
        while pending and pending[0].at < target:
            due.append(pending.popleft())
        if due:
            send_events(sender, due)
        reached = max(reached, target)
        if until is not None and reached >= until:
            break
        stop.wait(tick)
    return reached


class LifeThread:
    """The community's life in a daemon thread, sent over HTTP to a node (``anju demo``)."""

    def __init__(
        self,
        node: Node,
        base_url: str,
        *,
        community: str,
        seed: int = 1,
        speed: float = 60.0,
        start: dt.datetime | None = None,
        anomalies: bool = False,
        real_faces_for: int | None = None,
    ) -> None:
        self.node = node
        self.anomalies = anomalies
        self.real_faces_for = real_faces_for  # a resident to enrol by photo (sim/real_faces.py)
        self.base_url = base_url
        self.community = community
        self.seed = seed
        self.speed = speed
        self.start_at = start
        self.tally = Tally()
        self.stop_event = threading.Event()
        self.thread = threading.Thread(target=self._run, name="anju-sim-life", daemon=True)

    def start(self) -> None:
        """Start living in the background."""
        self.thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop after the batch in flight."""
        self.stop_event.set()
        self.thread.join(timeout)

    def _with_anomalies(
        self, life: Life, start: dt.datetime, now: dt.datetime
    ) -> tuple[Callable[[dt.date], Sequence[SimEvent]], list[SimEvent]]:
        """The planted days (:func:`plant_demo`) and the showcase's back-dated events."""
        community_id = community_id_of(self.node, self.community)
        plan = plant_demo(life, community_id, start, now)
        register_watches(self.node, community_id, plan.scenario)
        self.node.rules.reload()  # the models see the new list entries from the first event
        log.info(
            "simulator planted %d anomaly event(s), %d of them the showcase's",
            len(plan.scenario.events), len(plan.showcase.events),
        )  # fmt: skip
        return plan.events_of, plan.early

    def _with_real_faces(
        self,
        world: World,
        life: Life,
        events_of: Callable[[dt.date], Sequence[SimEvent]] | None,
    ) -> Callable[[dt.date], Sequence[SimEvent]]:
        """Each day's events with the real photographs' captures merged in (the demo)."""
        from anju.sim import real_faces

        camera = real_faces.camera_of(world)
        if camera is None or self.real_faces_for is None:
            return events_of or (lambda date: life.day(date).events)
        real_faces.enrol(self.node, community_id_of(self.node, self.community), self.real_faces_for)
        scenes = real_faces.RealFaces(camera)
        plain = events_of or (lambda date: life.day(date).events)

        def both(date: dt.date) -> Sequence[SimEvent]:
            extra = scenes.day(date, life.tz, self.seed)
            return sorted([*plain(date), *extra], key=lambda e: e.at)

        return both

    def _run(self) -> None:
        try:
            world = prepare(self.node, self.community)
            credentials = issue_device_credentials(self.node, world.devices)
        except Exception:  # the console must keep running without its simulator
            log.exception("simulator could not start in community %s", self.community)
            return
        now = _utcnow()
        start = self.start_at or now - dt.timedelta(days=1)
        sender = HttpSender(self.base_url, credentials, tally=self.tally)
        log.info(
            "simulator living %s at %gx from %s through %s",
            self.community,
            self.speed,
            start.isoformat(timespec="seconds"),
            self.base_url,
        )
        life = Life(world, self.seed)
        events_of = None
        early: list[SimEvent] = []
        if self.anomalies:
            try:
                events_of, early = self._with_anomalies(life, start, now)
            except Exception:  # plain days are still worth living
                log.exception("simulator could not plant anomalies; living plain days")
        if self.real_faces_for is not None:
            try:
                events_of = self._with_real_faces(world, life, events_of)
            except Exception:  # the synthetic faces still work without them
                log.exception("simulator could not add the real faces")
        try:
            send_events(sender, early)  # history from before the start (the showcase's)
            run_paced(life, sender, start, self.speed, self.stop_event, events_of=events_of)
        except Exception:
            log.exception("simulator stopped")
        finally:
            sender.close()
            log.info("simulator stopped: %s", self.tally.as_dict()["totals"])


@dataclass
class DemoPlan:
    """What the demo lives: each day's events (``events_of``), the back-dated events to
    send before the first day (``early``), and what was planted."""

    events_of: Callable[[dt.date], Sequence[SimEvent]]
    early: list[SimEvent]
    scenario: Scenario  # the days' anomalies and the showcase's, together
    showcase: Scenario


def plant_demo(life: Life, community_id: int, start: dt.datetime, now: dt.datetime) -> DemoPlan:
    """The days from ``start`` to three days on with every alert model's anomaly planted
    (``anju.sim.anomalies``, the scenarios ``anju evaluate`` scores), and the showcase
    around ``now`` (``anju.sim.showcase``: a case of every model within the first minutes),
    so the demo's alert centre has something of each kind from the start, some of it
    arriving while one watches; plain life after those days."""
    from anju.sim.anomalies import Scenario, merged, plant
    from anju.sim.showcase import showcase, subjects

    first = start.astimezone(life.tz).date()
    days = list(life.days(first, first + dt.timedelta(days=3)))
    planted = plant(life, days, community_id)
    shown = showcase(life, days, community_id, now, avoid=subjects(planted, now))
    scenario = Scenario(
        events=[*planted.events, *shown.events],
        dropped=planted.dropped | shown.dropped,
        truths=[*planted.truths, *shown.truths],
        watches=[*planted.watches, *shown.watches],
    )
    by_date: dict[dt.date, list[SimEvent]] = {}
    for event in merged(days, scenario):
        if event.at >= start:
            by_date.setdefault(event.at.astimezone(life.tz).date(), []).append(event)
    early = [e for e in shown.events if e.at < start]
    return DemoPlan(
        lambda date: by_date[date] if date in by_date else life.day(date).events,
        early,
        scenario,
        shown,
    )


def community_id_of(node: Node, code: str) -> int:
    """The id of the community with this code."""
    from sqlalchemy import select

    from anju.org.models import OrgUnit

    with node.unit_of_work() as ctx:
        community_id = ctx.session.scalar(select(OrgUnit.id).where(OrgUnit.code == code))
    if community_id is None:
        raise ValueError(f"no community {code}")
    return int(community_id)


def register_watches(node: Node, community_id: int, scenario: Scenario) -> None:
    """Put the scenario's watchlist entries on the community's lists once (the key person,
    the stolen plate)."""
    from sqlalchemy import select

    from anju.alerts.watchlist import MatchType, WatchEntry, WatchList, add_entry

    with node.unit_of_work() as ctx:
        for watch in scenario.watches:
            known = ctx.session.scalar(
                select(WatchEntry.id).where(
                    WatchEntry.org_unit_id == community_id,
                    WatchEntry.list_kind == WatchList(watch.list_kind),
                    WatchEntry.match_type == MatchType(watch.match_type),
                    WatchEntry.match_value == watch.value,
                )
            )
            if known is None:
                entry = add_entry(
                    ctx.session,
                    org_unit_id=community_id,
                    list_kind=WatchList(watch.list_kind),
                    category=watch.category,
                    reason="模拟演示",
                    match_type=MatchType(watch.match_type),
                    value=watch.value,
                )
                if watch.face:  # a face entry: its photo's vector
                    node.faces.enroll_watch_vectors(ctx, entry.id, [watch.face], FACE_MODEL)
