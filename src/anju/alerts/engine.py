"""The rules engine: feeds stored events and the passing of time to the alert models of
each community and hands their drafts to the alert service.

:class:`Engine` is plain Python: the models, their per-community state, their effective
configuration (through a callable), registry facts and history (through the interfaces of
:mod:`anju.alerts.facts`). A model that raises is isolated: the failure is logged with the
model's code and counted in :attr:`Engine.failures`, and the other models still run.

:class:`NodeRules` wires it into a node: ``deliver()`` hands the stored events over
(:meth:`NodeRules.on_stored`) after the event transaction commits, the once-a-minute ticker
calls :meth:`NodeRules.tick`, and both run on the node's rules thread, in order, where the
drafts go to :func:`anju.alerts.service.raise_or_merge` in a transaction of their own: a
delivery does not wait for the models or the alerts (``docs/performance.md``, "Alert
latency"). The same code runs in ``anju serve``/``demo`` and in ``anju worker`` processes.

State is kept in memory and **rebuilt from the event store on start**: the first use in a
process replays, per model, the stored events of the kinds it watches over its ``replay``
window, with the drafts discarded (alerts raised before the restart are already stored;
an absence rule then fires on the next tick if the silence still holds, and the
fingerprint merges it into the open alert). Nothing of a model's state is persisted.
Before each tick, :meth:`NodeRules.catch_up` reads what other processes stored for the
ticking models since the last tick.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import os
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from sqlalchemy import and_, or_, select

from anju.alerts import config as alert_config
from anju.alerts.facts import Facts, History, SqlFacts, SqlHistory, stored_seen
from anju.alerts.model import AlertDraft, Seen
from anju.alerts.rules import MODELS, AlertModel
from anju.alerts.rules.base import ModelParams, RuleCtx
from anju.core.db import utcnow
from anju.core.scope import Actor
from anju.events.models import StoredEvent
from anju.org.models import Level, OrgUnit

log = logging.getLogger(__name__)

Configs = Callable[[int], Mapping[str, ModelParams]]
REPLAY_LIMIT = 200_000  # newest events replayed at most, per model, on start
CATCH_UP_MARGIN = dt.timedelta(minutes=2)  # transactions commit a little after receiving


class Engine:
    """The enabled models of each community, fed events and ticks; returns drafts."""

    def __init__(
        self,
        *,
        facts: Facts,
        history: History,
        configs: Configs,
        models: Iterable[AlertModel] | None = None,
        tz: ZoneInfo | str = "Asia/Shanghai",
    ) -> None:
        self.facts = facts
        self.history = history
        self.configs = configs
        self.models = {m.code: m for m in (models if models is not None else default_models())}
        self.tz = ZoneInfo(tz) if isinstance(tz, str) else tz
        self.by_kind: dict[str, list[AlertModel]] = {}
        for model in self.models.values():
            for kind in model.kinds:
                self.by_kind.setdefault(kind, []).append(model)
        self._defaults = {code: m.Params() for code, m in self.models.items()}
        self.states: dict[tuple[int, str], dict[str, Any]] = {}
        self.failures: Counter[str] = Counter()  # model code → exceptions since start
        self._lock = threading.Lock()  # models' state is not thread-safe; their work is small

    def on_events(self, events: Sequence[Seen], now: dt.datetime) -> list[AlertDraft]:
        """Each event to the models that watch its kind, in order; their drafts."""
        drafts: list[AlertDraft] = []
        configs = self._prepare({e.community_id for e in events})
        # One context per community and model for the whole batch (they hold the same time):
        # a rules worker's round is thousands of events.
        ctxs: dict[tuple[int, str], RuleCtx | None] = {}
        with self._lock:
            for event in events:
                models = self.by_kind.get(event.kind)
                if not models:
                    continue
                event = self._placed(event)
                community = event.community_id
                for model in models:
                    key = (community, model.code)
                    if key in ctxs:
                        ctx = ctxs[key]
                    else:
                        ctx = ctxs[key] = self._ctx(configs, community, model, now)
                    if ctx is None:
                        continue
                    try:  # as _guarded, inline: this loop runs for every event and model
                        found = model.on_event(event, ctx)
                        if found:
                            drafts.extend(found)
                    except Exception:
                        self._failed(model)
        return drafts

    def on_tick(self, now: dt.datetime, communities: Iterable[int]) -> list[AlertDraft]:
        """The passing of time, to every enabled model of each community."""
        drafts: list[AlertDraft] = []
        communities = list(communities)
        configs = self._prepare(communities)
        with self._lock:
            for community in communities:
                for model in self.models.values():
                    ctx = self._ctx(configs, community, model, now)
                    if ctx is not None:
                        drafts.extend(self._guarded(model, model.on_tick, now, ctx))
        return drafts

    def replay(self, events: Iterable[Seen], now: dt.datetime) -> int:
        """Rebuild state from stored events (oldest first): each goes to the models whose
        replay window covers it; drafts are dropped. Returns how many were fed."""
        fed = 0
        events = list(events)
        configs = self._prepare({e.community_id for e in events})
        with self._lock:
            for event in events:
                event = self._placed(event)
                for model in self.by_kind.get(event.kind, ()):
                    if model.replay is None or event.at < now - model.replay:
                        continue
                    ctx = self._ctx(configs, event.community_id, model, event.at)
                    if ctx is not None:
                        self._guarded(model, model.on_event, event, ctx)
                        fed += 1
        return fed

    def _placed(self, event: Seen) -> Seen:
        """The event with its house filled in from its device's place when enrichment had
        none (a home sensor known by unit and room only)."""
        if event.house_id is not None:
            return event
        place = self.facts.place(event.device_id)
        if place is None or place.house_id is None:
            return event
        return dataclasses.replace(event, house_id=place.house_id)

    def _prepare(self, communities: Iterable[int]) -> dict[int, Mapping[str, ModelParams]]:
        """Facts and configurations of a batch's communities, loaded (if need be) before
        the lock is taken: a reload must not hold up other deliveries."""
        communities = set(communities)
        self.facts.warm(communities)
        return {c: self.configs(c) for c in communities}

    def _ctx(
        self,
        configs: Mapping[int, Mapping[str, ModelParams]],
        community: int,
        model: AlertModel,
        now: dt.datetime,
    ) -> RuleCtx | None:
        params = configs[community].get(model.code) or self._defaults[model.code]
        if not params.enabled:
            return None
        state = self.states.setdefault((community, model.code), {})
        return RuleCtx(now, community, params, state, self.facts, self.history, self.tz)

    def _guarded(
        self, model: AlertModel, call: Callable[..., list[AlertDraft]], *args: Any
    ) -> list[AlertDraft]:
        try:
            return list(call(*args))
        except Exception:
            self._failed(model)
            return []

    def _failed(self, model: AlertModel) -> None:
        """Count and log a model's exception (call from the ``except`` block). The event is
        stored already; one broken model must not stop the others."""
        self.failures[model.code] += 1
        log.exception(
            "alert model %s failed (%d failures so far)", model.code, self.failures[model.code]
        )


def default_models() -> list[AlertModel]:
    return [cls() for cls in MODELS.values()]


def seen(stored_id: int, row: Any) -> Seen:
    """A pipeline row (:class:`anju.events.pipeline.Row`) stored as ``stored_id``, as seen."""
    e, device, found = row.event, row.device, row.enrichment
    return Seen(
        id=stored_id,
        community_id=device.community_id,
        device_id=device.id,
        device_code=device.code,
        device_kind=device.kind,
        kind=e.kind.value,
        at=e.at,
        subject_type=e.subject.type.value if e.subject is not None else None,
        subject_value=e.subject.value if e.subject is not None else None,
        direction=e.direction.value if e.direction is not None else None,
        value=e.value,
        data=e.data,
        person_id=found.person_id,
        vehicle_id=found.vehicle_id,
        house_id=found.house_id or device.house_id,
        image=row.image,
        history=e.history,
    )


# --- wiring into a node --------------------------------------------------------------


class Sink(Protocol):
    """Where drafts go: the alert service in production, a list in tests."""

    def __call__(self, node: Any, drafts: list[AlertDraft], now: dt.datetime) -> None: ...


SYSTEM = Actor.system("rules")


def service_sink(node: Any, drafts: list[AlertDraft], now: dt.datetime) -> None:
    """Raise or merge each draft through the alert service, in one short transaction after
    the events' own; a draft the service refuses is logged and the others still go in
    (``raise_or_merge`` works in a savepoint of its own).

    The commit is durable like the events' own: turning PostgreSQL's ``synchronous_commit``
    off for it halved its median, but a database crash just after would lose alarms that a
    restart does not raise again (rebuilt state drops drafts) — an SOS is worth the
    milliseconds (``docs/performance.md``)."""
    from anju.alerts import notify, service  # they import the engine's package

    notices = []
    with node.unit_of_work(SYSTEM) as ctx:
        for draft in drafts:
            try:
                alert, created = service.raise_or_merge(ctx.session, draft, now)
                if created:
                    notices.append(notify.notice_of(ctx.session, alert, "raised"))
            except Exception:
                log.exception(
                    "alert service refused a %s draft (%s)", draft.model, draft.fingerprint
                )
    # Announced only once committed: the console live, then webhooks, sirens, e-mail.
    notify.send(node, notices)


class ConfigCache:
    """Effective configurations per community, reloaded after ``ttl`` seconds (or at once
    after a save in this process, :meth:`invalidate`). A stale entry goes on answering while
    a thread reloads it, so no event waits for the reload (as with the registry facts)."""

    def __init__(self, sessions: Any, ttl: float = 60.0) -> None:
        self.sessions = sessions
        self.ttl = ttl
        self._cache: dict[int, tuple[float, Mapping[str, ModelParams]]] = {}
        self._loading: set[int] = set()
        self._lock = threading.Lock()
        self._generation = 0  # invalidate() moves it on: a reload begun before is dropped

    def __call__(self, community_id: int) -> Mapping[str, ModelParams]:
        hit = self._cache.get(community_id)
        if hit is None:
            return self._load(community_id)
        if time.monotonic() - hit[0] > self.ttl:
            with self._lock:
                if community_id not in self._loading:
                    self._loading.add(community_id)
                    threading.Thread(
                        target=self._refresh, args=(community_id,), daemon=True,
                        name=f"anju-alert-config-{community_id}",
                    ).start()  # fmt: skip
        return hit[1]

    def _load(self, community_id: int) -> Mapping[str, ModelParams]:
        generation = self._generation
        with self.sessions() as session:
            configs = alert_config.effective(session, community_id)
        if generation == self._generation:
            self._cache[community_id] = (time.monotonic(), configs)
        return configs

    def _refresh(self, community_id: int) -> None:
        try:
            self._load(community_id)
        except Exception:  # the stale entry goes on answering; the next call retries
            log.exception("reloading the alert configuration of community %d failed", community_id)
        finally:
            with self._lock:
                self._loading.discard(community_id)

    def invalidate(self) -> None:
        self._generation += 1
        self._cache.clear()


@dataclasses.dataclass(eq=False)
class _Job:
    """Work for the rules thread: stored events, or a tick whose drafts someone waits for."""

    node: Any
    events: list[Seen] | None = None
    tick_at: dt.datetime | None = None
    drafts: list[AlertDraft] = dataclasses.field(default_factory=list)
    done: threading.Event = dataclasses.field(default_factory=threading.Event)


MAX_PENDING = 50_000  # events waiting for the models before deliveries wait too
ROUND = 5_000  # events the thread takes off the queue at most at a time


class NodeRules:
    """The engine of one node process, on a thread of its own; built on first use (and
    state rebuilt then).

    ``deliver()`` hands stored events over (:meth:`on_stored`) and goes on: a delivery never
    waits for the models, the alert transaction or the notifications. The thread takes what
    is queued in order: each delivery's events through the models, then its drafts in one
    short transaction. Ticks go through the same queue, so an absence model has seen every
    event handed over before its tick. :meth:`drain` waits for what was handed over (tests,
    ``anju evaluate``); :meth:`close` (``Node.dispose``) finishes the queue and stops the
    thread, after which work runs on the caller's thread.

    Not ``local`` (``ANJU_RULES=worker``): this process stores events but hands nothing to
    the models and ticks none — ``anju worker rules`` follows the event store and runs them
    (:mod:`anju.alerts.worker`).
    """

    def __init__(self, sink: Sink = service_sink, ttl: float = 60.0, *, local: bool = True) -> None:
        self.sink = sink
        self.ttl = ttl
        self.local = local
        self.engine: Engine | None = None
        self.configs: ConfigCache | None = None
        self.facts: SqlFacts | None = None
        self._build = threading.Lock()
        # Catching up on what other processes stored (see catch_up): the ticking models'
        # inputs, and which of them this process fed itself lately.
        self._watched: tuple[frozenset[int], frozenset[int]] = (frozenset(), frozenset())
        self._fed: dict[int, float] = {}
        self._caught_up: dt.datetime | None = None
        # The queue to the rules thread; _submitted/_done count jobs (drain compares them).
        self._queue: deque[_Job] = deque()
        self._pending = 0  # events queued
        self._submitted = 0
        self._done = 0
        self._changed = threading.Condition()
        self._thread: threading.Thread | None = None
        self._pid = 0
        self._closing = False
        self._inline = threading.Lock()  # after close: one caller at a time

    @property
    def failures(self) -> Mapping[str, int]:
        """Exceptions per model code since the process started (for the console)."""
        return dict(self.engine.failures) if self.engine is not None else {}

    def on_stored(self, node: Any, stored: Sequence[tuple[int, Any]]) -> None:
        """After an event transaction committed: queue its events for the models (their
        drafts go to the sink on the rules thread). Never raises: the events are stored
        whatever happens here."""
        if not stored or not self.local:
            return
        try:
            self._submit(_Job(node, events=[seen(i, row) for i, row in stored]))
        except Exception:
            log.exception("rules engine failed on %d stored event(s)", len(stored))

    def tick(self, node: Any, now: dt.datetime) -> list[AlertDraft]:
        """The minute's tick for every community, after the events handed over before it;
        returns its drafts (stored by then). Never raises."""
        if not self.local:
            return []
        job = _Job(node, tick_at=now)
        self._submit(job)
        job.done.wait()
        return job.drafts

    def drain(self, timeout: float | None = None) -> bool:
        """Wait until everything handed over so far has been through the models and its
        alerts are stored and announced; False if ``timeout`` (seconds) ran out first."""
        with self._changed:
            target = self._submitted
            return self._changed.wait_for(lambda: self._done >= target, timeout)

    def close(self, timeout: float = 30.0) -> None:
        """Finish what is queued and stop the thread (the node is shutting down)."""
        with self._changed:
            self._closing = True
            self._changed.notify_all()
            thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
            if thread.is_alive():
                log.warning("rules engine: %d event(s) still queued at shutdown", self._pending)

    def _submit(self, job: _Job) -> None:
        with self._changed:
            if not self._closing and threading.current_thread() is not self._thread:
                self._start()
                while self._pending >= MAX_PENDING and self._alive():
                    self._changed.wait(1.0)  # the models are behind: ingest slows to their pace
                self._queue.append(job)
                self._pending += len(job.events or ())
                self._submitted += 1
                self._changed.notify_all()
                return
        with self._inline:  # closed (or called from the rules thread itself): here and now
            self._run([job])

    def _alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _start(self) -> None:
        """Start the thread on first use (and again in a forked child, which has none)."""
        if self._pid != os.getpid():
            self._pid, self._thread = os.getpid(), None
            self._queue.clear()  # the parent's; the parent runs them
            self._pending = 0
            self._submitted = self._done
        if not self._alive():
            self._thread = threading.Thread(target=self._work, name="anju-rules", daemon=True)
            self._thread.start()

    def _work(self) -> None:
        while True:
            with self._changed:
                self._changed.wait_for(lambda: self._queue or self._closing)
                if not self._queue:
                    return  # closing, nothing left
                batch = self._take()
            try:
                self._run(batch)
            finally:
                with self._changed:
                    self._done += len(batch)
                    self._pending -= sum(len(job.events or ()) for job in batch)
                    self._changed.notify_all()

    def _take(self) -> list[_Job]:
        """Jobs for one round: events up to :data:`ROUND`, ending at a tick."""
        batch: list[_Job] = []
        events = 0
        while self._queue and events < ROUND:
            job = self._queue.popleft()
            batch.append(job)
            if job.events is None:
                break
            events += len(job.events)
        return batch

    def _run(self, batch: list[_Job]) -> None:
        """One round, job by job: each delivery's events through the models and their drafts
        into one alert transaction before the next delivery's (an alarm does not wait for
        the models to judge the ordinary events queued behind it); ticks in their place."""
        for job in batch:
            if job.events is not None:
                self._evaluate(job.node, job.events)
                continue
            try:
                assert job.tick_at is not None
                job.drafts = self._tick(job.node, job.tick_at)
            finally:
                job.done.set()

    def _evaluate(self, node: Any, events: list[Seen]) -> None:
        try:
            engine = self.ready(node)
            now = utcnow()
            self._note_fed(events)
            drafts = engine.on_events(events, now)
            if drafts:
                self.sink(node, drafts, now)
        except Exception:
            log.exception("rules engine failed on %d stored event(s)", len(events))

    def _tick(self, node: Any, now: dt.datetime) -> list[AlertDraft]:
        try:
            engine = self.ready(node)
            with node.sessions() as session:
                communities = list(
                    session.scalars(select(OrgUnit.id).where(OrgUnit.level == Level.COMMUNITY))
                )
            self.catch_up(node, engine, communities)
            drafts = engine.on_tick(now, communities)
            if drafts:
                self.sink(node, drafts, now)
            return drafts
        except Exception:
            log.exception("rules engine tick failed")
            return []

    def catch_up(self, node: Any, engine: Engine, communities: list[int]) -> int:
        """Feed the ticking models what other processes stored since the last tick.

        In the production shape events arrive in ``anju worker`` processes while the tick
        runs beside the web server: an absence model there must still see the elderly
        person's door open. Only the inputs of ticking models are read (devices in the
        homes of the elderly living alone, patrol points, and those persons' own
        passages), received since the last catch-up with a margin for late commits;
        events this process fed itself are skipped. Their drafts are dropped: the process
        that stored them ran the event models already.
        """
        assert self.facts is not None
        devices: set[int] = set()
        persons: set[int] = set()
        for community in communities:
            facts = self.facts.of(community)
            homes = facts.elderly_alone(community)
            persons.update(homes.values())
            devices.update(d for d, p in facts.places.items() if p.house_id in homes)
            devices.update(facts.devices_of(community, "patrol_point"))
        self._watched = (frozenset(devices), frozenset(persons))
        since, self._caught_up = self._caught_up, utcnow()
        if since is None or not (devices or persons):
            return 0
        where = and_(
            StoredEvent.received_at >= since - CATCH_UP_MARGIN,
            or_(
                StoredEvent.device_id.in_(sorted(devices) or [-1]),
                StoredEvent.person_id.in_(sorted(persons) or [-1]),
            ),
        )
        with node.sessions() as session:
            missed = [e for e in stored_seen(session, where, REPLAY_LIMIT) if e.id not in self._fed]
        horizon = time.monotonic() - 2 * CATCH_UP_MARGIN.total_seconds()
        self._fed = {i: t for i, t in self._fed.items() if t > horizon}
        self._fed.update((e.id, time.monotonic()) for e in missed)
        return engine.replay(missed, utcnow()) if missed else 0

    def _note_fed(self, events: list[Seen]) -> None:
        """Remember the ids of ticking models' inputs fed here (catch_up skips them)."""
        devices, persons = self._watched
        if not devices and not persons:
            return
        stamp = time.monotonic()
        for e in events:
            if e.device_id in devices or e.person_id in persons:
                self._fed[e.id] = stamp

    def ready(self, node: Any) -> Engine:
        """The engine, built and its state rebuilt from the event store on first use."""
        if self.engine is not None:
            return self.engine
        with self._build:
            if self.engine is None:
                engine = self.build(node)
                started = utcnow()
                rebuild(engine, node.sessions, started)
                self._caught_up = started
                self.engine = engine
        return self.engine

    def build(self, node: Any) -> Engine:
        """A new engine over the node's database, its facts and configuration cached here
        (:meth:`reload` forgets them); its state is empty."""
        self.facts = SqlFacts(node.sessions, ttl=self.ttl)
        self.configs = ConfigCache(node.sessions, ttl=self.ttl)
        return Engine(
            facts=self.facts,
            history=SqlHistory(node.sessions),
            configs=self.configs,
            tz=node.settings.timezone,
        )

    def reload(self) -> None:
        """Forget cached configuration and facts (after an edit in this process)."""
        if self.configs is not None:
            self.configs.invalidate()
        if self.facts is not None:
            self.facts.invalidate()


def rebuild(engine: Engine, sessions: Any, now: dt.datetime, upto: int | None = None) -> int:
    """Replay the stored events the models' state is made of (see the module docstring);
    with ``upto``, only those with ids up to it (a rules worker follows the rest)."""
    windows = [(m.kinds, m.replay) for m in engine.models.values() if m.replay is not None]
    if not windows:
        return 0
    where = or_(
        *(
            and_(StoredEvent.kind.in_(sorted(kinds)), StoredEvent.at >= now - replay)
            for kinds, replay in windows
        )
    )
    started = time.monotonic()
    with sessions() as session:
        bound = and_(where, StoredEvent.at <= now)
        if upto is not None:
            bound = and_(bound, StoredEvent.id <= upto)
        newest = stored_seen(session, bound, REPLAY_LIMIT, newest=True)
    fed = engine.replay(newest, now)
    log.info(
        "rules engine state rebuilt from %d stored event(s) in %.2f s",
        fed,
        time.monotonic() - started,
    )
    return fed
