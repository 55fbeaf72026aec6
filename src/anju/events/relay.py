"""Events stored by other processes onto this process's live feed.

Each process publishes the events it stores on its own feed (:func:`anju.events.api.deliver`);
the console's live feed is served by the web server. With ``anju worker mqtt`` (or ``anju
worker tick``) storing events in other processes, ``anju serve`` runs an :class:`EventRelay`:
every second, while someone is listening, it reads the newest events stored since its last
look and publishes, one look later, those this process has not published itself. It is a
view for people watching, not a copy of the store: at most :data:`LOOK` events per look (the
newest; a busier second shows its last ones), and nothing while no console listens.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from anju.core.periodic import Periodic
from anju.devices.models import Device
from anju.events.api import NOT_NEWS
from anju.events.feed import live_item
from anju.events.models import StoredEvent

LOOK = 500  # newest events relayed per look, at most
QUIET = sorted(str(kind) for kind in NOT_NEWS)  # as deliver() leaves them out


class EventRelay:
    """See the module docstring."""

    def __init__(self, node: Any, every: float = 1.0) -> None:
        self.node = node
        self.every = every
        self.last: int | None = None
        self.relayed = 0
        self._waiting: list[dict[str, Any]] = []
        self._thread = Periodic("anju-event-relay", every, self.poll)

    def poll(self) -> int:
        """One look; returns how many events it published."""
        feed = self.node.feed
        if not feed.subscribers:  # nobody to show: no look, and start afresh when one comes
            self.last, self._waiting = None, []
            return 0
        with self.node.sessions() as session:
            newest = session.scalar(select(func.coalesce(func.max(StoredEvent.id), 0)))
            if self.last is None:
                self.last = newest
                return 0
            due, self._waiting = self._waiting, self._read(session, max(self.last, newest - LOOK))
            self.last = newest
        items = [item for item in due if not feed.published(item["id"])]
        if items:
            feed.publish(items, keys=[item["id"] for item in items])
            self.relayed += len(items)
        return len(items)

    def _read(self, session: Any, after: int) -> list[dict[str, Any]]:
        e = StoredEvent
        rows = session.execute(
            select(e.id, e.kind, e.at, e.community_id, e.subject_type, e.subject_value,
                   e.direction, e.person_id, e.history, Device.code, Device.name)
            .join(Device, Device.id == e.device_id)
            .where(e.id > after, e.kind.not_in(QUIET))
            .order_by(e.id)
        )  # fmt: skip
        return [
            live_item(r.id, r.kind, r.at.isoformat(), r.community_id, r.code, r.name,
                      r.subject_type, r.subject_value, r.direction, r.person_id, r.history)
            for r in rows
        ]  # fmt: skip

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._thread.stop()
