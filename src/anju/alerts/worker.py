"""``anju worker rules``: the alert models in a process of their own, following the event store.

With ``ANJU_RULES=worker`` the processes that store events (``anju serve``, ``anju worker
mqtt``) hand nothing to the models: ingest then costs only the pipeline. This worker reads
what they stored, in id order, through the same :class:`~anju.alerts.engine.Engine` and
alert service as the in-process default, and runs the minute's tick for its communities.

**Where it goes on from.** The last id handled is kept per shard in ``rules_cursors``
(:class:`Follower` moves it). It is written after a round's alerts are stored: at once when
the worker has read everything or stops, otherwise at most every ``save_every`` seconds
(on SQLite each write takes the write lock from the processes that store events). On start
the models' state is rebuilt from the events up to that id and the worker follows from
there, so what was stored while it was down is alerted on when it comes back. Rounds that
raised alerts but died before the cursor was written are read again: their drafts merge
into the open alerts by fingerprint (their count rises), nothing is raised twice.

**Ids that commit late.** On PostgreSQL ids are drawn before the transaction commits, so a
batch with lower ids can become visible after one with higher ids. The cursor only moves
over ids handled; a missing id holds it until ``grace`` seconds after an id above it was
handled (a batch commits in milliseconds; ids drawn for a batch that then repeated stored
events are never used), then it is given up. While held, each poll reads the ids between
the cursor and the first id handled above it again.

**Shards.** ``--shard K/N`` takes the communities whose id is K modulo N; run N workers to
spread the models over processes or hosts (a community's models keep their state in one
process).
"""

from __future__ import annotations

import datetime as dt
import heapq
import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, and_, func, select, true

from anju.alerts.engine import Engine, NodeRules, rebuild
from anju.alerts.facts import stored_seen
from anju.alerts.model import Seen
from anju.alerts.models import RulesCursor
from anju.core.db import utcnow
from anju.events.models import StoredEvent
from anju.org.models import Level, OrgUnit

log = logging.getLogger(__name__)

ROUND = 5_000  # events read at most per poll
GRACE = 10.0  # seconds a missing id holds the cursor
SAVE_EVERY = 1.0  # seconds between cursor writes while events keep coming


@dataclass(frozen=True)
class Shard:
    """Communities whose id is ``index`` modulo ``count``."""

    index: int = 0
    count: int = 1

    @classmethod
    def parse(cls, text: str) -> Shard:
        """``K/N`` with 0 ≤ K < N; raises ValueError naming what is wrong."""
        try:
            index, count = (int(part) for part in text.split("/"))
        except ValueError:
            raise ValueError(f"shard must be K/N, e.g. 0/2: {text!r}") from None
        if count < 1 or not 0 <= index < count:
            raise ValueError(f"shard K/N needs 0 <= K < N: {text!r}")
        return cls(index, count)

    @property
    def name(self) -> str:
        return "rules" if self.count == 1 else f"rules-{self.index}of{self.count}"

    def where(self, column: Any) -> ColumnElement[bool]:
        """This shard's rows by their community ``column``."""
        return true() if self.count == 1 else column % self.count == self.index


class Follower:
    """The cursor over the event ids: every id up to :attr:`cursor` was handled or given
    up; ids handled above it wait (a heap, with when each was handled) for the ids below."""

    def __init__(
        self, cursor: int, grace: float = GRACE, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.cursor = cursor
        self.high = cursor  # the highest id handled
        self.grace = grace
        self.clock = clock
        self.given_up = 0  # ids never seen within the grace
        self._above: list[tuple[int, float]] = []

    def gap(self) -> tuple[int, int] | None:
        """Ids to read again, exclusive bounds: between the cursor and the first id handled
        above it; None when the cursor is not held."""
        return (self.cursor, self._above[0][0]) if self._above else None

    def handled(self, ids: Sequence[int]) -> None:
        """Ids gone through the models; moves the cursor as far as it can."""
        now = self.clock()
        for i in ids:
            if i > self.cursor:
                heapq.heappush(self._above, (i, now))
                self.high = max(self.high, i)
        self.advance()

    def advance(self) -> None:
        """Move over handled ids. The ids missing below a handled one are given up once it
        has been handled ``grace`` seconds ago: their transactions drew them earlier and
        had that long to commit (each gap waits from when it was seen, never behind another)."""
        while self._above:
            first, when = self._above[0]
            if first <= self.cursor:  # read twice (a gap's re-read)
                heapq.heappop(self._above)
            elif first == self.cursor + 1:
                heapq.heappop(self._above)
                self.cursor = first
            elif self.clock() - when >= self.grace:
                self.given_up += first - self.cursor - 1
                log.warning("rules worker: ids %d..%d never came; going on", self.cursor + 1,
                            first - 1)  # fmt: skip
                self.cursor = first - 1
            else:
                return


class RulesWorker:
    """One shard's models over the event store (see the module docstring)."""

    def __init__(
        self,
        node: Any,
        shard: Shard = Shard(),
        grace: float = GRACE,
        save_every: float = SAVE_EVERY,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.node = node
        self.shard = shard
        self.rules = NodeRules(sink=node.rules.sink, ttl=node.rules.ttl)
        self.follower: Follower | None = None
        self.grace = grace
        self.save_every = save_every
        self.clock = clock
        self.seen = 0  # events through the models since start
        self._saved_failures: dict[str, int] = {}
        self._saved_cursor = -1
        self._saved_at = 0.0

    @property
    def failures(self) -> dict[str, int]:
        return dict(self.rules.failures)

    def start(self) -> Engine:
        """Build the engine, rebuild its state up to the stored cursor and follow from it
        (a first start follows from the newest event stored)."""
        with self.node.sessions() as session:
            row = session.get(RulesCursor, self.shard.name)
            cursor = (
                row.last_id
                if row is not None
                else session.scalar(select(func.coalesce(func.max(StoredEvent.id), 0)))
            )
        rules = self.rules
        engine = rules.build(self.node)
        rebuild(engine, self.node.sessions, utcnow(), upto=cursor)
        rules.engine = engine
        self.follower = Follower(cursor, self.grace)
        self._save(cursor)
        log.info("rules worker %s: following the event store after id %d", self.shard.name,
                 cursor)  # fmt: skip
        return engine

    def poll(self) -> int:
        """Read what was stored past the cursor, through the models, alerts stored, cursor
        saved; returns how many events went through."""
        follower = self.follower
        assert follower is not None and self.rules.engine is not None
        with self.node.sessions() as session:
            ids: list[int] = []
            events: list[Seen] = []
            if (gap := follower.gap()) is not None:
                lo, hi = gap
                self._read(session, and_(StoredEvent.id > lo, StoredEvent.id < hi), ids, events)
            self._read(session, StoredEvent.id > follower.high, ids, events)
        if events:
            now = utcnow()
            drafts = self.rules.engine.on_events(events, now)
            if drafts:
                self.rules.sink(self.node, drafts, now)
            self.seen += len(events)
        follower.handled(ids)
        moved = follower.cursor != self._saved_cursor and (
            not ids or self.clock() - self._saved_at >= self.save_every
        )  # caught up, or a while since the last write
        if moved or self.failures != self._saved_failures:
            self._save(follower.cursor)
        return len(events)

    def tick(self, now: dt.datetime) -> int:
        """The minute's tick for this shard's communities; returns the drafts' count."""
        assert self.rules.engine is not None
        with self.node.sessions() as session:
            communities = list(
                session.scalars(
                    select(OrgUnit.id).where(
                        OrgUnit.level == Level.COMMUNITY, self.shard.where(OrgUnit.id)
                    )
                )
            )
        drafts = self.rules.engine.on_tick(now, communities)
        if drafts:
            self.rules.sink(self.node, drafts, now)
        if self.failures != self._saved_failures and self.follower is not None:
            self._save(self.follower.cursor)
        return len(drafts)

    def run(self, stop: threading.Event, every: float = 0.05, tick_every: float = 60.0) -> None:
        """Poll every ``every`` seconds (at once again while a round came back full) and
        tick every ``tick_every`` until ``stop`` is set."""
        if self.follower is None:
            self.start()
        next_tick = time.monotonic()
        while not stop.is_set():
            try:
                full = self.poll() >= ROUND
                if time.monotonic() >= next_tick:
                    next_tick = time.monotonic() + tick_every
                    self.tick(utcnow())
            except Exception:  # the database went away: log, wait, go on from the cursor
                log.exception("rules worker %s: round failed", self.shard.name)
                full = False
                stop.wait(5.0)
            if not full:
                stop.wait(every)
        if self.follower is not None and self.follower.cursor != self._saved_cursor:
            self._save(self.follower.cursor)  # stopping: the next start goes on from here

    def _read(
        self, session: Any, where: ColumnElement[bool], ids: list[int], events: list[Seen]
    ) -> None:
        """The first :data:`ROUND` events stored under ``where``, by id: all their ids to
        ``ids`` (the cursor moves over other shards' events too), this shard's events to
        ``events``."""
        if self.shard.count == 1:
            mine = stored_seen(session, where, ROUND, by_id=True)
            ids += [e.id for e in mine]
            events += mine
            return
        rows = session.execute(
            select(StoredEvent.id, StoredEvent.community_id)
            .where(where)
            .order_by(StoredEvent.id)
            .limit(ROUND)
        ).all()
        ids += [r.id for r in rows]
        wanted = [r.id for r in rows if r.community_id % self.shard.count == self.shard.index]
        if wanted:
            events += stored_seen(session, StoredEvent.id.in_(wanted), ROUND, by_id=True)

    def _save(self, cursor: int) -> None:
        """The cursor and the models' failures since start, for the next start and the
        console."""
        failures = {code: n for code, n in self.failures.items() if n}
        with self.node.unit_of_work() as ctx:
            row = ctx.session.get(RulesCursor, self.shard.name)
            if row is None:
                ctx.session.add(
                    RulesCursor(name=self.shard.name, last_id=cursor, failures=failures)
                )
            else:
                row.last_id = cursor
                row.failures = failures
        self._saved_cursor, self._saved_at = cursor, self.clock()
        self._saved_failures = self.failures
