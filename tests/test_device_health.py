"""Device health as events: the tick raises ``device.offline`` for a silent device and
``device.online`` when it is heard again — once each, through the real pipeline, on SQLite
and PostgreSQL; the live feed, the device page and ``anju worker tick`` see them."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import threading

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from typer.testing import CliRunner

from anju.cli import app as cli_app
from anju.devices import health
from anju.devices.models import Device, DeviceKind
from anju.events.api import deliver, sender_for
from anju.events.model import Event, Kind
from anju.events.models import StoredEvent
from anju.events.ticker import Ticker, tick
from anju.registry import schemas
from anju.registry import service as registry
from anju.web.app import create_app
from tests import factories as f
from tests.conftest import ADMIN_PASSWORD, TEST_KEY
from tests.web_helpers import sign_in

NOW = dt.datetime.now(dt.UTC).replace(microsecond=0)
T0 = NOW - dt.timedelta(days=3)
MIN = dt.timedelta(minutes=1)


# --- the decision, without I/O -----------------------------------------------------------


def watched(kind: str = "face_gate", last: dt.datetime | None = T0, off=None):
    return health.Watched(1, "GATE", kind, last, off)


def test_a_silent_device_owes_one_offline_event_at_its_deadline():
    assert health.due([watched()], T0 + 20 * MIN) == []  # exactly twice the interval: not yet
    [event] = health.due([watched()], T0 + 21 * MIN)
    assert event.kind is Kind.DEVICE_OFFLINE and event.device == "GATE"
    assert event.at == T0 + 20 * MIN
    again = health.due([watched()], T0 + 50 * MIN)[0]
    assert again.id == event.id and again.at == event.at  # the same event whenever it is built
    assert health.due([watched(kind="smoke_detector")], T0 + 21 * MIN) == []  # daily reporter
    assert health.due([watched(last=None)], T0 + 21 * MIN) == []  # never seen is not offline


def test_a_device_marked_offline_owes_online_only_when_heard_again():
    off = T0 + 20 * MIN
    assert health.due([watched(off=off)], T0 + 30 * MIN) == []  # still silent
    [event] = health.due([watched(last=T0 + 40 * MIN, off=off)], T0 + 41 * MIN)
    assert event.kind is Kind.DEVICE_ONLINE and event.at == T0 + 40 * MIN
    assert event.data["offline_since"] == off.isoformat()
    other_spell = health.due([watched(last=T0 + 40 * MIN, off=off + MIN)], T0 + 41 * MIN)[0]
    assert other_spell.id != event.id  # one online event per offline spell


# --- through the pipeline and the database -----------------------------------------------


@pytest.fixture(scope="module")
def site(app_node):
    """A community with a few gates (chatty) and a smoke detector (daily)."""
    with app_node.unit_of_work() as ctx:
        t = f.tree(ctx, "DH")
        codes = {}
        for code, kind in [
            ("DH-GATE-1", "face_gate"),
            ("DH-GATE-2", "face_gate"),
            ("DH-GATE-3", "face_gate"),
            ("DH-GATE-4", "face_gate"),
            ("DH-SMOKE", "smoke_detector"),
        ]:
            device = registry.devices.create(
                ctx,
                schemas.DeviceCreate(community_id=t.community.id, code=code, name=code, kind=kind),
            )
            codes[code] = device.id
        return {"community_id": t.community.id, "devices": codes}


def heartbeat(node, code: str, at: dt.datetime, ident: str) -> None:
    with node.unit_of_work() as ctx:
        device = ctx.session.scalar(select(Device).where(Device.code == code))
        sender = sender_for(device)
    processed = deliver(
        node, [Event(device=code, kind=Kind.DEVICE_HEARTBEAT, at=at, id=ident)], sender
    )
    assert processed.results[0].status == "accepted"


def device_row(node, code: str) -> Device:
    with node.unit_of_work() as ctx:
        device = ctx.session.scalar(select(Device).where(Device.code == code))
        ctx.session.expunge(device)
        return device


def stored(node, code: str, kind: Kind) -> list[StoredEvent]:
    with node.unit_of_work() as ctx:
        rows = ctx.session.scalars(
            select(StoredEvent)
            .join(Device, Device.id == StoredEvent.device_id)
            .where(Device.code == code, StoredEvent.kind == kind.value)
            .order_by(StoredEvent.id)
        ).all()
        ctx.session.expunge_all()
        return list(rows)


def test_offline_then_online_each_raised_once(app_node, site):
    heartbeat(app_node, "DH-GATE-1", T0, "hb-1")
    heartbeat(app_node, "DH-SMOKE", T0, "hb-s")
    before = device_row(app_node, "DH-GATE-1")

    first = tick(app_node, T0 + 21 * MIN)
    assert "DH-GATE-1" in first.offline and "DH-SMOKE" not in first.offline
    second = tick(app_node, T0 + 25 * MIN)
    assert "DH-GATE-1" not in second.offline
    [offline] = stored(app_node, "DH-GATE-1", Kind.DEVICE_OFFLINE)
    assert offline.at == T0 + 20 * MIN and offline.data["source"] == "anju"
    gate = device_row(app_node, "DH-GATE-1")
    assert gate.offline_since == T0 + 20 * MIN
    # The node's word that a device is gone is not the device being heard.
    assert gate.last_seen_at == T0 and gate.events_accepted == before.events_accepted

    heartbeat(app_node, "DH-GATE-1", T0 + 40 * MIN, "hb-2")
    assert tick(app_node, T0 + 41 * MIN).online.count("DH-GATE-1") == 1
    assert "DH-GATE-1" not in tick(app_node, T0 + 42 * MIN).online
    [online] = stored(app_node, "DH-GATE-1", Kind.DEVICE_ONLINE)
    assert online.at == T0 + 40 * MIN
    assert device_row(app_node, "DH-GATE-1").offline_since is None

    # Silent again later: a new spell, a new event.
    tick(app_node, T0 + 61 * MIN)
    assert len(stored(app_node, "DH-GATE-1", Kind.DEVICE_OFFLINE)) == 2


def test_concurrent_ticks_raise_the_event_once(app_node, site):
    heartbeat(app_node, "DH-GATE-2", T0 + 100 * MIN, "hb-c")
    at = T0 + 125 * MIN
    errors: list[BaseException] = []
    start = threading.Barrier(4)

    def run():
        try:
            start.wait()
            tick(app_node, at)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not errors
    assert len(stored(app_node, "DH-GATE-2", Kind.DEVICE_OFFLINE)) == 1


def test_the_live_feed_gets_the_offline_event(app_node, site):
    heartbeat(app_node, "DH-GATE-3", T0 + 200 * MIN, "hb-l")

    async def listen() -> dict:
        sub = app_node.feed.subscribe(frozenset({site["community_id"]}))
        try:
            await asyncio.to_thread(tick, app_node, T0 + 221 * MIN)
            return await asyncio.wait_for(sub.queue.get(), timeout=5)
        finally:
            app_node.feed.unsubscribe(sub)

    item = asyncio.run(listen())
    assert item["kind"] == "device.offline" and item["device"] == "DH-GATE-3"


def test_device_page_says_since_when_it_is_offline(app_node, site):
    with TestClient(create_app(app_node)) as client:
        sign_in(client, "admin", ADMIN_PASSWORD)
        page = client.get(f"/devices/{site['devices']['DH-GATE-3']}")
        assert page.status_code == 200
        assert 'id="offline-since"' in page.text and "离线自" in page.text
        online = client.get(f"/devices/{site['devices']['DH-SMOKE']}")
        assert "离线自" not in online.text


def test_ticker_thread_keeps_going_after_a_failed_tick(app_node, site):
    heartbeat(app_node, "DH-GATE-4", T0 + 300 * MIN, "hb-t")
    moments = iter([None, T0 + 321 * MIN])

    def clock() -> dt.datetime:
        moment = next(moments, T0 + 321 * MIN)
        if moment is None:
            raise RuntimeError("clock broke")  # the first tick fails
        return moment

    ticker = Ticker(app_node, every=0.05, clock=clock)
    ticker.start()
    try:
        for _ in range(100):
            if stored(app_node, "DH-GATE-4", Kind.DEVICE_OFFLINE):
                break
            threading.Event().wait(0.05)
    finally:
        ticker.stop()
    assert len(stored(app_node, "DH-GATE-4", Kind.DEVICE_OFFLINE)) == 1


def test_worker_tick_once_prints_what_it_raised(app_node, site, monkeypatch):
    with app_node.unit_of_work() as ctx:
        device = registry.devices.create(
            ctx,
            schemas.DeviceCreate(
                community_id=site["community_id"], code="DH-CLI", name="CLI", kind="barrier"
            ),
        )
        assert device.kind is DeviceKind.BARRIER
    heartbeat(app_node, "DH-CLI", NOW - dt.timedelta(hours=2), "hb-cli")
    monkeypatch.setenv("ANJU_DATA_DIR", str(app_node.settings.data_dir))
    monkeypatch.setenv("ANJU_DATABASE_URL", app_node.settings.resolved_database_url)
    monkeypatch.setenv("ANJU_SECRET_KEY", TEST_KEY)
    runner = CliRunner()
    first = runner.invoke(cli_app, ["worker", "tick", "--once", "--json"])
    assert first.exit_code == 0, first.output
    assert "DH-CLI" in json.loads(first.stdout)["offline"]
    again = runner.invoke(cli_app, ["worker", "tick", "--once", "--json"])
    assert "DH-CLI" not in json.loads(again.stdout)["offline"]
    with app_node.unit_of_work() as ctx:
        count = ctx.session.scalar(
            select(func.count())
            .select_from(StoredEvent)
            .where(StoredEvent.device_id == device.id, StoredEvent.kind == "device.offline")
        )
    assert count == 1
