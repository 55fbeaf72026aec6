"""``ANJU_RULES=worker`` and ``anju worker rules``: ingest stores without running the alert
models; the worker follows the event store by id, from a cursor that survives restarts,
over ids that commit late, split into shards by community; and what other processes raise
and store reaching the web server's live alert list and event feed (real database)."""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import delete, select

from anju.alerts.config_views import model_failures
from anju.alerts.engine import Engine, NodeRules
from anju.alerts.model import AlertDraft, Seen
from anju.alerts.models import Alert, AlertEvidence, RulesCursor
from anju.alerts.notify import AlertRelay
from anju.alerts.rules.base import AlertModel, RuleCtx
from anju.alerts.rules.safety import Fire
from anju.alerts.worker import Follower, RulesWorker, Shard
from anju.bootstrap import bootstrap
from anju.core.db import utcnow
from anju.devices.models import Device
from anju.events.api import deliver, sender_for
from anju.events.feed import LiveFeed
from anju.events.model import Event, Kind
from anju.events.models import StoredEvent
from anju.events.relay import EventRelay
from anju.registry import schemas
from anju.registry import service as registry
from tests import factories as f
from tests.conftest import TEST_KEY, make_settings

# --- the cursor -----------------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_the_cursor_moves_over_ids_handled_in_a_row() -> None:
    follower = Follower(10)
    follower.handled([11, 12, 13])
    assert follower.cursor == 13 and follower.high == 13 and follower.gap() is None


def test_an_id_committed_late_holds_the_cursor_until_it_comes() -> None:
    clock = Clock()
    follower = Follower(10, grace=10.0, clock=clock)
    follower.handled([11, 13, 14])  # 12's transaction has not committed yet
    assert follower.cursor == 11 and follower.high == 14
    assert follower.gap() == (11, 13)  # read again on the next poll
    clock.now = 9.0
    follower.handled([])
    assert follower.cursor == 11
    follower.handled([12])
    assert follower.cursor == 14 and follower.gap() is None and follower.given_up == 0


def test_an_id_that_never_comes_is_given_up_after_the_grace() -> None:
    clock = Clock()
    follower = Follower(10, grace=10.0, clock=clock)
    follower.handled([11, 15])  # 12-14 drawn for a batch that was then stored another way
    clock.now = 5.0
    follower.handled([16])
    assert follower.cursor == 11
    clock.now = 10.5
    follower.handled([])
    assert follower.cursor == 16 and follower.given_up == 3 and follower.gap() is None


def test_gaps_are_given_up_each_on_its_own_clock_so_the_cursor_never_falls_behind() -> None:
    clock = Clock()
    follower = Follower(10, grace=10.0, clock=clock)
    follower.handled([11, 13])  # 12 missing, seen at 0
    clock.now = 5.0
    follower.handled([14, 16])  # 15 missing, seen at 5
    clock.now = 10.1
    follower.advance()
    assert follower.cursor == 14  # 12 given up; 15 has waited only 5.1 s
    clock.now = 15.1
    follower.advance()
    assert follower.cursor == 16 and follower.given_up == 2


def test_a_shard_is_named_and_checked() -> None:
    assert Shard.parse("1/3") == Shard(1, 3) and Shard(1, 3).name == "rules-1of3"
    assert Shard().name == "rules"
    for bad in ("3/3", "x", "1/0", "-1/2"):
        with pytest.raises(ValueError, match="shard"):
            Shard.parse(bad)


# --- against the database ---------------------------------------------------------------


@pytest.fixture(scope="module")
def site(app_node: Any) -> Iterator[dict[str, Any]]:
    """Two communities with a smoke detector each; this node stores events with the models
    elsewhere (``ANJU_RULES=worker``)."""
    saved, app_node.rules = app_node.rules, NodeRules(local=False)
    with app_node.unit_of_work() as ctx:
        out: dict[str, Any] = {}
        for prefix in ("RW", "RX"):
            community = f.tree(ctx, prefix).community
            registry.devices.create(
                ctx,
                schemas.DeviceCreate(community_id=community.id, code=f"{prefix}-SMOKE",
                                     name="烟感", kind="smoke_detector"),
            )  # fmt: skip
            out[prefix] = community.id
    yield out
    app_node.rules = saved


def smoke(node: Any, code: str, ident: str) -> int:
    """A smoke alarm stored through the pipeline; its stored id."""
    with node.unit_of_work() as ctx:
        sender = sender_for(ctx.session.scalar(select(Device).where(Device.code == code)))
    event = Event(device=code, kind=Kind.FIRE_SMOKE, at=utcnow(), id=ident, value=1)
    processed = deliver(node, [event], sender)
    assert processed.results[0].status == "accepted", processed.results
    [(stored_id, _row)] = processed.stored
    return stored_id


def fire_alerts(node: Any, community: int) -> list[tuple[int, int]]:
    """(alert id, count) of the community's fire alerts."""
    with node.sessions() as session:
        rows = session.execute(
            select(Alert.id, Alert.count).where(
                Alert.model == "fire", Alert.community_id == community
            )
        )
        return [(r.id, r.count) for r in rows]


def evidence_of(node: Any, event_id: int) -> bool:
    with node.sessions() as session:
        found = session.scalar(
            select(Alert.model)
            .join(AlertEvidence, AlertEvidence.alert_id == Alert.id)
            .where(AlertEvidence.event_id == event_id)
        )
        return found == "fire"


def test_settings_put_the_models_in_a_worker(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, f"sqlite:///{tmp_path / 'anju.db'}")
    here = bootstrap(settings)
    elsewhere = bootstrap(settings.model_copy(update={"rules": "worker"}))
    try:
        assert here.rules.local and not elsewhere.rules.local
        assert elsewhere.rules.tick(elsewhere, utcnow()) == []  # the worker ticks, not this
    finally:
        here.dispose()
        elsewhere.dispose()


def test_ingest_raises_nothing_and_the_worker_alerts_on_what_was_stored(
    app_node: Any, site: dict[str, Any]
) -> None:
    worker = RulesWorker(app_node)
    worker.start()
    event_id = smoke(app_node, "RW-SMOKE", "w1")
    assert fire_alerts(app_node, site["RW"]) == []  # stored and answered, no models here
    assert worker.poll() == 1
    [(alert_id, count)] = fire_alerts(app_node, site["RW"])
    assert count == 1
    with app_node.sessions() as session:
        evidence = session.scalars(
            select(AlertEvidence.event_id).where(AlertEvidence.alert_id == alert_id)
        )
        assert list(evidence) == [event_id]
    assert worker.poll() == 0  # nothing new: nothing read twice
    with app_node.sessions() as session:  # and, caught up, the cursor is written
        assert session.get(RulesCursor, "rules").last_id == event_id  # type: ignore[union-attr]


def test_a_busy_worker_writes_its_cursor_now_and_then(app_node: Any, site: dict[str, Any]) -> None:
    """While events keep coming the cursor is written at most every ``save_every`` seconds
    (on SQLite each write takes the write lock from ingest); once the worker has read
    everything, at once."""
    now = [100.0]
    worker = RulesWorker(app_node, save_every=1.0, clock=lambda: now[0])
    worker.start()

    def saved() -> int:
        with app_node.sessions() as session:
            return session.get(RulesCursor, "rules").last_id  # type: ignore[union-attr]

    start = saved()
    first = smoke(app_node, "RW-SMOKE", "busy-1")
    assert worker.poll() == 1 and saved() == start  # just written at start
    now[0] += 1.0
    second = smoke(app_node, "RW-SMOKE", "busy-2")
    assert worker.poll() == 1 and saved() == second  # a second later: written
    third = smoke(app_node, "RW-SMOKE", "busy-3")
    now[0] += 0.5
    assert worker.poll() == 1 and saved() == second
    assert worker.poll() == 0 and saved() == third  # caught up: written at once
    assert worker.poll() == 0 and first < second < third


def test_a_restarted_worker_alerts_on_what_was_stored_while_it_was_down(
    app_node: Any, site: dict[str, Any]
) -> None:
    first = RulesWorker(app_node)
    first.start()
    smoke(app_node, "RX-SMOKE", "d1")
    first.poll()
    first.poll()  # caught up: its cursor is written
    [(alert_id, count)] = fire_alerts(app_node, site["RX"])
    # The worker stops; a second alarm is stored meanwhile.
    later = smoke(app_node, "RX-SMOKE", "d2")
    second = RulesWorker(app_node)
    second.start()
    assert second.follower is not None and second.follower.cursor < later
    assert second.poll() == 1
    assert fire_alerts(app_node, site["RX"]) == [(alert_id, count + 1)]  # merged, not again
    assert second.poll() == 0  # caught up: the cursor is written for the tests after this


def test_shards_split_the_communities_and_each_cursor_passes_the_others_events(
    app_node: Any, site: dict[str, Any]
) -> None:
    rw, rx = site["RW"], site["RX"]
    n = next(n for n in range(2, 10) if rw % n != rx % n)  # the two land in different shards
    theirs = {c: RulesWorker(app_node, Shard(c % n, n)) for c in (rw, rx)}
    for worker in theirs.values():
        worker.start()
    before = {c: fire_alerts(app_node, c) for c in (rw, rx)}
    ids = [smoke(app_node, "RW-SMOKE", "s1"), smoke(app_node, "RX-SMOKE", "s2")]
    theirs[rw].poll()
    assert fire_alerts(app_node, rw) != before[rw]
    assert fire_alerts(app_node, rx) == before[rx]  # not this shard's community
    theirs[rx].poll()
    assert fire_alerts(app_node, rx) != before[rx]
    for worker in theirs.values():
        assert worker.follower is not None and worker.follower.cursor == max(ids)


def test_anju_worker_rules_follows_the_store_until_stopped(
    app_node: Any, site: dict[str, Any]
) -> None:
    url = app_node.settings.resolved_database_url
    env = {**os.environ, "ANJU_DATA_DIR": str(app_node.settings.data_dir),
           "ANJU_DATABASE_URL": url, "ANJU_SECRET_KEY": TEST_KEY}  # fmt: skip
    command = [sys.executable, "-m", "anju", "worker", "rules", "--every", "0.05"]
    worker = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, text=True)
    try:
        assert worker.stdout is not None
        assert "following the event store" in worker.stdout.readline()
        event_id = smoke(app_node, "RW-SMOKE", "cli-1")
        deadline = time.monotonic() + 30
        while not evidence_of(app_node, event_id) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert evidence_of(app_node, event_id)  # in a fire alert of its community
    finally:
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(30) == 0
    with app_node.sessions() as session:
        assert session.get(RulesCursor, "rules").last_id >= event_id  # type: ignore[union-attr]
        assert session.scalar(select(StoredEvent.id).where(StoredEvent.id > event_id)) is None


def test_shard_refused_with_its_reason() -> None:
    from typer.testing import CliRunner

    from anju.cli import app

    out = CliRunner().invoke(app, ["worker", "rules", "--shard", "2/2"])
    assert out.exit_code == 2 and "0 <= K < N" in out.output


class Recorded(LiveFeed):
    """The console's feed, keeping what was published on it."""

    def __init__(self) -> None:
        super().__init__()
        self.items: list[dict[str, Any]] = []

    def publish(self, items: list[dict[str, Any]], keys: Any = ()) -> None:
        super().publish(items, keys)
        self.items += items


def test_the_console_shows_alerts_a_worker_raised_once_and_its_own_once(
    app_node: Any, site: dict[str, Any]
) -> None:
    with app_node.unit_of_work() as ctx:
        for code, name in (("RW-SMOKE-2", "二号楼烟感"), ("RW-SMOKE-3", "三号楼烟感")):
            registry.devices.create(
                ctx,
                schemas.DeviceCreate(community_id=site["RW"], code=code, name=name,
                                     kind="smoke_detector"),
            )  # fmt: skip
    console, saved = Recorded(), app_node.alert_feed
    app_node.alert_feed = console
    elsewhere = bootstrap(app_node.settings)  # the worker's process: a feed of its own
    try:
        relay = AlertRelay(app_node)
        relay.poll()  # from the newest alert on
        worker = RulesWorker(elsewhere, Shard(0, 1), grace=0.0)
        worker.start()
        smoke(app_node, "RW-SMOKE-2", "relay-1")
        worker.poll()
        assert console.items == []  # raised in the worker's process
        relay.poll()
        relay.poll()  # one look later
        [item] = console.items
        assert item["model"] == "fire" and item["action"] == "raised"
        assert item["community_id"] == site["RW"] and "二号楼烟感" in item["title"]
        # An alert this process raised and announced itself is not announced again.
        here = RulesWorker(app_node, Shard(0, 1))
        here.start()
        smoke(app_node, "RW-SMOKE-3", "relay-2")
        here.poll()
        relay.poll()
        relay.poll()
        titles = [i["title"] for i in console.items]
        assert len(titles) == 2 and "三号楼烟感" in titles[1] and relay.relayed == 1
    finally:
        app_node.alert_feed = saved
        elsewhere.dispose()


class Broken(AlertModel):
    """A model with a bug."""

    code = "broken"
    name = "坏模型"
    kinds = frozenset({"fire.smoke"})

    def on_event(self, event: Seen, ctx: RuleCtx) -> list[AlertDraft]:
        raise RuntimeError("bug in a model")

    def on_tick(self, now: dt.datetime, ctx: RuleCtx) -> list[AlertDraft]:
        return []


def test_a_workers_failing_model_is_counted_where_admins_see_it(
    app_node: Any, site: dict[str, Any]
) -> None:
    with app_node.unit_of_work() as ctx:  # a first start: from the newest event stored
        ctx.session.execute(delete(RulesCursor).where(RulesCursor.name == "rules"))
    worker = RulesWorker(app_node, Shard(0, 1))
    engine = worker.start()
    worker.rules.engine = Engine(facts=engine.facts, history=engine.history,
                                 configs=engine.configs, models=[Broken(), Fire()])  # fmt: skip
    event_id = smoke(app_node, "RX-SMOKE", "broken-1")
    assert worker.poll() == 1
    assert evidence_of(app_node, event_id)  # the other model still ran
    with app_node.sessions() as session:
        row = session.get(RulesCursor, "rules")
        assert row is not None and row.failures == {"broken": 1}
        assert model_failures(app_node.ctx(session), app_node)["broken"] == 1


class Listened(Recorded):
    """The console's event feed, with a console listening."""

    @property
    def subscribers(self) -> int:
        return 1


def test_the_live_feed_shows_events_other_processes_stored_as_its_own_once(
    app_node: Any, site: dict[str, Any]
) -> None:
    feed, saved = Listened(), app_node.feed
    app_node.feed = feed
    elsewhere = bootstrap(app_node.settings)  # an MQTT worker's process: a feed of its own
    try:
        relay = EventRelay(app_node)
        relay.poll()  # from the newest event on
        theirs = smoke(elsewhere, "RX-SMOKE", "feed-1")
        relay.poll()
        assert feed.items == []  # one look later
        relay.poll()
        [item] = feed.items
        assert item["id"] == theirs and item["device"] == "RX-SMOKE"
        # Shaped as this process shapes its own: the same event read back is the same item.
        ours = smoke(app_node, "RX-SMOKE", "feed-2")
        [local] = [i for i in feed.items if i["id"] == ours]
        with app_node.sessions() as session:
            [again] = relay._read(session, ours - 1)
        assert again == local
        relay.poll()
        relay.poll()
        assert [i["id"] for i in feed.items] == [theirs, ours] and relay.relayed == 1
    finally:
        app_node.feed = saved
        elsewhere.dispose()
