"""The live feed: new events pushed to connected consoles (Server-Sent Events), in process.

Publishing happens after the events' transaction commits, from any thread; each subscriber
holds a bounded queue (a slow browser drops its oldest items, never blocks ingest) and
receives only events of the communities in its scope.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Hashable, Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from starlette.responses import StreamingResponse

from anju.core.scope import communities_in_scope

log = logging.getLogger(__name__)

QUEUE_SIZE = 200
KEYS_KEPT = 10_000


@dataclass(eq=False)
class Subscriber:
    """One open live-feed connection."""

    communities: frozenset[int] | None  # None: every community
    loop: asyncio.AbstractEventLoop
    queue: asyncio.Queue[dict[str, Any]] = field(
        default_factory=lambda: asyncio.Queue(maxsize=QUEUE_SIZE)
    )
    dropped: int = 0

    def wants(self, community_id: int) -> bool:
        return self.communities is None or community_id in self.communities

    def offer(self, item: dict[str, Any]) -> None:
        """Runs on the subscriber's loop: enqueue, dropping the oldest item when full."""
        if self.queue.full():
            self.queue.get_nowait()
            self.dropped += 1
        self.queue.put_nowait(item)


def live_item(
    ident: int,
    kind: str,
    at: str,
    community_id: int,
    device_code: str,
    device_name: str | None,
    subject_type: str | None,
    subject_value: str | None,
    direction: str | None,
    person_id: int | None,
    history: bool,
) -> dict[str, Any]:
    """An event as the live feed carries it (stored here or relayed from another process:
    the two must not drift apart)."""
    return {
        "id": ident,
        "kind": kind,
        "at": at,
        "community_id": community_id,
        "device": device_code,
        "device_name": device_name or device_code,
        "subject": {"type": subject_type, "value": subject_value} if subject_type else None,
        "direction": direction,
        "person_id": person_id,
        "history": history,
    }


class LiveFeed:
    """Fan-out of published events to subscribers, thread-safe."""

    def __init__(self) -> None:
        self._subscribers: set[Subscriber] = set()
        self._lock = threading.Lock()
        self._keys: OrderedDict[Hashable, None] = OrderedDict()  # published lately, bounded

    def subscribe(self, communities: frozenset[int] | None) -> Subscriber:
        sub = Subscriber(communities=communities, loop=asyncio.get_running_loop())
        with self._lock:
            self._subscribers.add(sub)
        return sub

    def unsubscribe(self, sub: Subscriber) -> None:
        with self._lock:
            self._subscribers.discard(sub)

    def publish(self, items: list[dict[str, Any]], keys: Iterable[Hashable] = ()) -> None:
        """Hand committed events to every subscriber that may see them; ``keys`` name the
        items for :meth:`published` (the last :data:`KEYS_KEPT`)."""
        with self._lock:
            subscribers = list(self._subscribers)
            for key in keys:
                self._keys[key] = None
            while len(self._keys) > KEYS_KEPT:
                self._keys.popitem(last=False)
        for sub in subscribers:
            for item in items:
                if sub.wants(int(item["community_id"])):
                    try:
                        sub.loop.call_soon_threadsafe(sub.offer, item)
                    except RuntimeError:  # the subscriber's loop has closed
                        self.unsubscribe(sub)
                        break

    def published(self, key: Hashable) -> bool:
        """Whether an item of that key went out here lately."""
        with self._lock:
            return key in self._keys

    @property
    def subscribers(self) -> int:
        with self._lock:
            return len(self._subscribers)


def stream(
    request: Any,
    ctx: Any,
    feed: LiveFeed,
    event: str,
    keep: Callable[[dict[str, Any]], bool] = lambda item: True,
    shape: Callable[[dict[str, Any]], dict[str, Any]] = lambda item: item,
) -> StreamingResponse:
    """A Server-Sent Events response of ``feed`` for the caller of ``ctx``: only their
    communities, only items ``keep`` lets through, each as ``shape`` gives it for this
    caller (the items are shared by every listener: ``shape`` copies, never changes them),
    a keep-alive every 15 s. The request's database session is closed first: the stream
    lives long and needs no connection."""
    actor = ctx.actor
    scope = (
        None
        if actor.org_path == "/"
        else frozenset(ctx.session.scalars(select(communities_in_scope(actor).subquery().c.id)))
    )
    ctx.session.close()
    sub = feed.subscribe(scope)

    async def lines() -> AsyncIterator[str]:
        try:
            yield "retry: 3000\n\n"
            while not await request.is_disconnected():
                try:
                    item = await asyncio.wait_for(sub.queue.get(), timeout=15)
                except TimeoutError:
                    yield ": keep-alive\n\n"
                    continue
                if keep(item):
                    shown = json.dumps(shape(item), ensure_ascii=False)
                    yield f"event: {event}\ndata: {shown}\n\n"
        finally:
            feed.unsubscribe(sub)

    return StreamingResponse(
        lines(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )
