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
from collections.abc import Callable, Iterable

from anju.bootstrap import Node
from anju.sim.life import Day, Life, SimEvent, World, by_device, load_world, provision_people
from anju.sim.senders import HttpSender, Sender, Tally, issue_device_credentials

log = logging.getLogger(__name__)

Clock = Callable[[], dt.datetime]


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def prepare(node: Node, community: str) -> World:
    """Provision the residents' credentials and read the world (one unit of work)."""
    with node.unit_of_work() as ctx:
        provision_people(ctx.session, community)
        return load_world(ctx.session, community, node.settings.timezone)


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
) -> dt.datetime:
    """Send events as a clock ``speed`` times faster than real passes them, from ``start``
    until ``until`` (or for ever) or ``stop`` is set; returns the simulated time reached."""
    pending: deque[SimEvent] = deque()
    next_day = start.astimezone(life.tz).date()
    began = time.monotonic()
    reached = start
    while not stop.is_set():
        target = min(start + dt.timedelta(seconds=(time.monotonic() - began) * speed), clock())
        if until is not None:
            target = min(target, until)
        while dt.datetime.combine(next_day, dt.time(), life.tz) <= target:
            pending.extend(e for e in life.day(next_day).events if e.at >= start)
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
    ) -> None:
        self.node = node
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

    def _run(self) -> None:
        try:
            world = prepare(self.node, self.community)
            credentials = issue_device_credentials(self.node, world.devices)
        except Exception:  # the console must keep running without its simulator
            log.exception("simulator could not start in community %s", self.community)
            return
        start = self.start_at or _utcnow() - dt.timedelta(days=1)
        sender = HttpSender(self.base_url, credentials, tally=self.tally)
        log.info(
            "simulator living %s at %gx from %s through %s",
            self.community,
            self.speed,
            start.isoformat(timespec="seconds"),
            self.base_url,
        )
        try:
            run_paced(Life(world, self.seed), sender, start, self.speed, self.stop_event)
        except Exception:
            log.exception("simulator stopped")
        finally:
            sender.close()
            log.info("simulator stopped: %s", self.tally.as_dict()["totals"])
