"""The device-health tick: turns silence into ``device.offline`` and a device heard from
again into ``device.online``, through the real pipeline.

:func:`tick` reads which devices are silent or back (``anju.devices.health.due`` decides,
with the time passed in), then for each batch claims the devices and stores their events in
one transaction (:func:`anju.events.api.deliver` with a ``claim``), so the live feed gets
them after commit like any stored event. The claim is a compare-and-set on
``devices.offline_since``: of two ticks (two threads, two processes) only one wins a device,
and the event id built from the device's last sighting makes a second copy a duplicate
anyway. :class:`Ticker` runs the tick once a minute beside the web server; ``anju worker
tick`` runs it alone.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import and_, or_, select, update
from sqlalchemy.orm import Session

from anju.alerts import escalation
from anju.core.db import utcnow
from anju.core.periodic import Periodic
from anju.core.scope import Actor
from anju.devices import health
from anju.devices.models import Device
from anju.events.api import Sender, deliver
from anju.events.model import Event, Kind, Outcome
from anju.events.sql import INACTIVE

log = logging.getLogger(__name__)

EVERY = 60.0
BATCH = 200
SENDER = Sender(None, Actor.system("health-tick"))


@dataclass
class TickReport:
    """What one tick raised: device codes that went offline and that came back."""

    offline: list[str] = field(default_factory=list)
    online: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, list[str]]:
        return {"offline": self.offline, "online": self.online}


def watched(session: Session, now: dt.datetime) -> list[health.Watched]:
    """Devices in use that may owe an event: silent past the shortest deadline of their
    kind's interval and not marked offline, or marked offline (perhaps heard again)."""
    silent = [
        and_(Device.kind.in_(kinds), Device.last_seen_at < now - 2 * interval)
        for interval, kinds in health.intervals().items()
    ]
    rows = session.execute(
        select(Device.id, Device.code, Device.kind, Device.last_seen_at, Device.offline_since)
        .where(
            Device.status.not_in(INACTIVE),
            Device.last_seen_at.is_not(None),
            or_(Device.offline_since.is_not(None), *silent),
        )
        .order_by(Device.id)
    )
    return [
        health.Watched(r.id, r.code, r.kind.value, r.last_seen_at, r.offline_since) for r in rows
    ]


def tick(node: Any, now: dt.datetime) -> TickReport:
    """Raise the offline/online events due at ``now``, each once, through the pipeline."""
    with node.unit_of_work(SENDER.actor) as ctx:
        devices = watched(ctx.session, now)
    by_code = {d.code: d for d in devices}
    events = health.due(devices, now)
    report = TickReport()
    for start in range(0, len(events), BATCH):
        batch: list[Outcome] = list(events[start : start + BATCH])
        processed = deliver(node, batch, SENDER, claim=_claimer(by_code))
        for result in processed.results:
            if result.status == "rejected":
                log.warning("health tick: %s refused: %s", result.device, result.reason)
        for _stored_id, row in processed.stored:
            target = report.offline if row.event.kind is Kind.DEVICE_OFFLINE else report.online
            target.append(row.device.code)
    node.rules.tick(node, now)  # the alert models' absence rules; never raises
    if report.offline or report.online:
        log.info(
            "health tick: %d device(s) offline, %d back online",
            len(report.offline),
            len(report.online),
        )
    escalation.run(node, now)  # unacknowledged alerts go up a level (anju.alerts.escalation)
    return report


def _claimer(
    by_code: dict[str, health.Watched],
) -> Callable[[Any, list[Outcome]], list[Outcome]]:
    """Claim each event's device in the delivery's transaction; keep the events won."""

    def claim(session: Any, outcomes: list[Outcome]) -> list[Outcome]:
        conn = session.connection()
        won: list[Outcome] = []
        for outcome in outcomes:
            assert isinstance(outcome, Event)
            device = by_code[outcome.device]
            if outcome.kind is Kind.DEVICE_OFFLINE:
                # Still silent since the sighting the event was built from, and not marked.
                stmt = (
                    update(Device)
                    .where(
                        Device.id == device.id,
                        Device.offline_since.is_(None),
                        Device.last_seen_at <= device.last_seen_at,
                    )
                    .values(offline_since=outcome.at)
                )
            else:
                stmt = (
                    update(Device)
                    .where(Device.id == device.id, Device.offline_since == device.offline_since)
                    .values(offline_since=None)
                )
            if conn.execute(stmt).rowcount == 1:
                won.append(outcome)
        return won

    return claim


class Ticker:
    """Runs :func:`tick` every ``every`` seconds on a daemon thread until stopped.

    A failing tick is logged and the next one tried: the web server must not die of it.
    """

    def __init__(
        self,
        node: Any,
        every: float = EVERY,
        clock: Callable[[], dt.datetime] = utcnow,
    ) -> None:
        self.node = node
        self.every = every
        self.clock = clock
        self._thread = Periodic("anju-health-tick", every, self.run_once, at_once=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._thread.stop(timeout)

    def run_once(self) -> TickReport | None:
        """One tick; None when it failed (logged)."""
        try:
            return tick(self.node, self.clock())
        except Exception:  # a database hiccup must not end the thread
            log.exception("health tick failed; trying again in %.0f s", self.every)
            return None
