"""Simulator v2: the generator of the community's days (no network), and one simulated day
through the real ways in — HTTP into a live server and MQTT through Mosquitto — on SQLite and
PostgreSQL, ending with events stored once and enriched to people and vehicles."""

from __future__ import annotations

import datetime as dt
import socket
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import func, select

from anju.alerts.models import Alert
from anju.alerts.watchlist import WatchEntry
from anju.bootstrap import Node, bootstrap, initialise
from anju.devices.models import DeviceKind
from anju.events import wire
from anju.events.adapters.mqtt import MqttIngest
from anju.events.model import Event
from anju.events.models import StoredEvent
from anju.sim.community import CommunityConfig, build_community
from anju.sim.life import Day, Life, SimEvent, World, load_world, provision_people
from anju.sim.runner import LifeThread, prepare, run_days, run_paced
from anju.sim.senders import HttpSender, MqttSender, issue_device_credentials
from tests.conftest import ADMIN_PASSWORD, make_settings
from tests.live_server import live_server

TZ = "Asia/Shanghai"
MONDAY = dt.date(2026, 11, 16)
SATURDAY = dt.date(2026, 11, 14)
GATE_KINDS = ("access.face", "access.card")


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    """A community of 60 residents, built and read once (SQLite; the generator is pure)."""
    data = tmp_path_factory.mktemp("life")
    node = bootstrap(make_settings(data, f"sqlite:///{data / 'anju.db'}"))
    initialise(node, admin_password=ADMIN_PASSWORD)
    with node.unit_of_work() as ctx:
        build_community(ctx, CommunityConfig(seed=3, residents=60, code="LIFE"))
        provision_people(ctx.session, "LIFE")
        yield load_world(ctx.session, "LIFE", TZ)
    node.dispose()


@pytest.fixture(scope="module")
def month(world: World) -> list[Day]:
    """Four weeks of the community's life (seed 1), ending on a Monday."""
    return list(Life(world, seed=1).days(MONDAY - dt.timedelta(days=27), MONDAY))


def bodies(events: list[SimEvent]) -> list[dict[str, Any]]:
    return [e.body for e in events]


# --- the generator -------------------------------------------------------------------------


def test_the_same_seed_lives_the_same_day(world: World) -> None:
    first = Life(world, seed=7).day(MONDAY)
    again = Life(world, seed=7).day(MONDAY)
    other = Life(world, seed=8).day(MONDAY)
    assert bodies(first.events) == bodies(again.events)
    assert len(first.events) > 1000
    people = {e.body["id"] for e in first.events if e.kind.startswith("access.")}
    assert people - {e.body["id"] for e in other.events}  # another seed, another day
    # a day is the same whether generated alone or after others (no state leaks in)
    life = Life(world, seed=7)
    list(life.days(MONDAY - dt.timedelta(days=3), MONDAY - dt.timedelta(days=1)))
    assert bodies(life.day(MONDAY).events) == bodies(first.events)


def test_event_ids_are_unique_per_device_and_every_event_passes_the_wire_format(
    world: World,
) -> None:
    life = Life(world, seed=1)
    received = dt.datetime.now(dt.UTC)
    for day in life.days(SATURDAY, MONDAY):
        keys = [(e.device, e.body["id"]) for e in day.events]
        assert len(keys) == len(set(keys))
        assert all(e.device in world.devices for e in day.events)
        for start in range(0, len(day.events), wire.MAX_BATCH):
            chunk = bodies(day.events[start : start + wire.MAX_BATCH])
            outcomes = wire.parse_batch(chunk, received)
            assert all(isinstance(o, Event) for o in outcomes), [
                o for o in outcomes if not isinstance(o, Event)
            ][:3]
        assert [e.at for e in day.events] == sorted(e.at for e in day.events)
        assert {e.at.date() for e in day.events} == {day.date}


def test_a_weekday_has_its_morning_and_evening_peaks_at_the_gates(world: World) -> None:
    day = Life(world, seed=1).day(MONDAY)
    gates = {g.exit for g in world.gates} | {g.entry for g in world.gates}
    out_by_hour: Counter[int] = Counter()
    in_by_hour: Counter[int] = Counter()
    for e in day.events:
        if e.device in gates and e.kind in GATE_KINDS:
            hours = out_by_hour if e.body["direction"] == "out" else in_by_hour
            hours[e.at.hour] += 1
    morning = sum(out_by_hour[h] for h in (7, 8))
    midday_out = sum(out_by_hour[h] for h in (11, 12, 13, 14))
    night = sum(out_by_hour[h] + in_by_hour[h] for h in range(0, 5))
    evening = sum(in_by_hour[h] for h in (16, 17, 18, 19))
    assert morning > 3 * max(1, midday_out)
    assert evening > 2 * max(1, sum(in_by_hour[h] for h in (9, 10, 11, 12)))
    assert night == 0
    # at the weekend the morning rush is gone
    weekend = Life(world, seed=1).day(SATURDAY)
    saturday_morning = sum(
        1
        for e in weekend.events
        if e.device in gates and e.kind in GATE_KINDS and e.at.hour in (7, 8)
        and e.body["direction"] == "out"
    )  # fmt: skip
    assert saturday_morning < morning / 2


def test_residents_are_known_by_registered_cards_numbers_and_plates(
    world: World, month: list[Day]
) -> None:
    cards = {r.card for r in world.residents()}
    numbers = {r.employee_no for r in world.residents()}
    known = {p for plates in world.cars.values() for p in plates}
    passed: Counter[bool] = Counter()
    for day in month[-7:]:
        for e in day.events:
            subject = e.body.get("subject")
            if e.kind == "access.card":
                assert subject["value"] in cards
            elif e.kind == "access.face":
                assert subject["value"] in numbers
            elif e.kind == "vehicle.passed":
                passed[subject["value"] in known] += 1
    share = passed[False] / (passed[True] + passed[False])
    assert passed[True] > 20 and 0.04 <= share <= 0.25, passed


def test_elderly_living_alone_sometimes_stay_quiet_for_a_day(
    world: World, month: list[Day]
) -> None:
    life = Life(world, seed=1)
    homes = {h.people[0].person_id: h for h in world.homes if h.elderly_alone}
    assert homes, "the community should have elderly living alone"
    days = month
    quiet = [(d, pid) for d in days for pid in d.quiet]
    assert quiet and len(quiet) < len(days) * len(homes) / 3
    for day, person in quiet:
        home = homes[person]
        signs = {home.devices[DeviceKind.INFRARED], home.devices[DeviceKind.DOOR_MAGNET]}
        seen = [e for e in day.events if e.device in signs and e.kind != "device.heartbeat"]
        assert seen == []
        passages = [
            e
            for e in day.events
            if e.kind in GATE_KINDS
            and e.body["subject"]["value"] in (home.people[0].card, home.people[0].employee_no)
        ]
        assert passages == []
        # the water meter stands still over the quiet day
        meter = home.devices[DeviceKind.WATER_METER]
        following = life.day(day.date + dt.timedelta(days=1))
        readings = [
            e.body["value"] for d in (day, following) for e in d.events if e.device == meter
            and e.kind == "meter.water"
        ]  # fmt: skip
        assert len(readings) == 2 and readings[0] == readings[1]
    # on an ordinary day the same people move about at home
    ordinary = next(d for d in days if not d.quiet)
    infrared = {h.devices[DeviceKind.INFRARED] for h in homes.values()}
    assert {e.device for e in ordinary.events if e.kind == "sensor.infrared"} == infrared


def test_devices_talk_fail_and_the_community_has_its_incidents(
    world: World, month: list[Day]
) -> None:
    kinds: Counter[str] = Counter()
    for day in month:
        kinds.update(e.kind for e in day.events)
    for kind in (
        "access.qr", "access.denied", "access.remote", "capture.face", "capture.vehicle",
        "lock.opened", "meter.water", "sensor.door_magnet", "sensor.infrared",
        "perimeter.intrusion", "patrol.checkin", "device.fault", "fire.smoke",
        "ebike.detected", "fire.lane_blocked",
    ):  # fmt: skip
        assert kinds[kind] > 0, kind
    gate = world.gates[0].entry
    beats = [e for e in month[-1].events if e.device == gate]
    heartbeats = [e for e in beats if e.kind == "device.heartbeat"]
    assert 250 <= len(heartbeats) <= 288  # every five minutes (less a fault's silence)


def test_paced_life_sends_each_event_once_when_due_and_never_ahead_of_the_clock(
    world: World,
) -> None:
    class Recorder:
        def __init__(self) -> None:
            from anju.sim.senders import Tally

            self.tally = Tally()
            self.sent: list[dict[str, Any]] = []

        def send(self, device: str, events: list[dict[str, Any]]) -> None:
            self.sent.extend(events)

        def close(self) -> None:
            pass

    life = Life(world, seed=1)
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    start, until = now - dt.timedelta(hours=30), now - dt.timedelta(hours=26)
    recorder = Recorder()
    reached = run_paced(life, recorder, start, 4 * 3600 * 10, threading.Event(), until=until,
                        tick=0.02)  # fmt: skip
    assert reached == until
    expected = [e.body["id"] for e in life.between(start, until)]
    assert sorted(e["id"] for e in recorder.sent) == sorted(expected) and expected

    # started a little in the past at a huge speed: catches up, then keeps to the clock
    recorder = Recorder()
    stop = threading.Event()
    threading.Timer(0.6, stop.set).start()
    run_paced(life, recorder, now - dt.timedelta(minutes=20), 1e6, stop, tick=0.05)
    latest = max(dt.datetime.fromisoformat(e["at"]) for e in recorder.sent)
    assert latest <= dt.datetime.now(dt.UTC)


# --- through the real ways in --------------------------------------------------------------


@pytest.fixture(scope="module")
def community(app_node: Node) -> str:
    """A 60-resident community in the module's node."""
    with app_node.unit_of_work() as ctx:
        build_community(ctx, CommunityConfig(seed=5, residents=60, code="SIMD"))
    return "SIMD"


def stored(node: Node, *where: Any) -> int:
    with node.unit_of_work() as ctx:
        return int(ctx.session.scalar(select(func.count()).select_from(StoredEvent).where(*where)))


def test_one_day_over_http_is_stored_once_and_enriched(app_node: Node, community: str) -> None:
    world = prepare(app_node, community)
    credentials = issue_device_credentials(app_node, world.devices)
    assert set(credentials) == set(world.devices)
    life = Life(world, seed=2)
    yesterday = dt.datetime.now(world.tz).date() - dt.timedelta(days=1)
    expected = life.day(yesterday).events
    with live_server(app_node) as base:
        sender = HttpSender(base, credentials)
        run_days(life, sender, yesterday, yesterday)
        again = HttpSender(base, credentials)
        run_days(life, again, yesterday, yesterday)  # re-running a day changes nothing
        sender.close()
        again.close()
    totals = sender.tally.as_dict()["totals"]
    assert totals == {
        "sent": len(expected), "accepted": len(expected), "duplicate": 0, "rejected": 0,
        "failed": 0,
    }  # fmt: skip
    assert again.tally.total("duplicate") == len(expected)
    assert again.tally.total("accepted") == 0
    devices = set(world.devices)
    with app_node.unit_of_work() as ctx:
        rows = ctx.session.execute(
            select(
                StoredEvent.kind,
                StoredEvent.person_id,
                StoredEvent.vehicle_id,
                StoredEvent.house_id,
                StoredEvent.subject_value,
            ).where(StoredEvent.event_key.like("sim-%"))
        ).all()
    assert len(rows) == len(expected)
    by_kind: dict[str, list[Any]] = {}
    for row in rows:
        by_kind.setdefault(row.kind, []).append(row)
    # every card and face-terminal number of a resident leads to the person and their home
    for kind in ("access.card", "access.face", "lock.opened"):
        assert by_kind[kind] and all(r.person_id and r.house_id for r in by_kind[kind]), kind
    known = {p for plates in world.cars.values() for p in plates}
    cars = by_kind["vehicle.passed"]
    assert all((r.vehicle_id is not None) == (r.subject_value in known) for r in cars)
    assert any(r.vehicle_id for r in cars) and any(r.vehicle_id is None for r in cars)
    assert devices and stored(app_node, StoredEvent.kind == "device.heartbeat") > 1000


def test_the_demo_life_thread_keeps_the_console_alive(app_node: Node, community: str) -> None:
    before = stored(app_node)
    start = dt.datetime.now(dt.UTC) - dt.timedelta(hours=2)
    with live_server(app_node) as base:
        life = LifeThread(app_node, base, community=community, seed=9, speed=3600, start=start)
        life.start()
        deadline = time.monotonic() + 60
        while life.tally.total("accepted") < 50 and time.monotonic() < deadline:
            time.sleep(0.2)
        life.stop()
    assert life.tally.total("accepted") >= 50
    assert life.tally.total("rejected") == life.tally.total("failed") == 0
    assert stored(app_node) >= before + 50


PLANTED_ONLY = {"key_person", "controlled_list"}


def test_the_demo_life_plants_anomalies_the_alert_models_find(
    app_node: Node, community: str
) -> None:
    """The demo's life plants every model's scenario (a key person's passages, a stolen
    plate, a smoke alarm, an SOS ...), watchlist entries included, so list models fire."""
    start = dt.datetime.now(dt.UTC) - dt.timedelta(hours=36)
    with live_server(app_node) as base:
        life = LifeThread(
            app_node, base, community=community, seed=9, speed=100_000, start=start,
            anomalies=True,
        )  # fmt: skip
        life.start()
        deadline = time.monotonic() + 90
        models: set[str] = set()
        while not models & PLANTED_ONLY and time.monotonic() < deadline:
            time.sleep(1)
            with app_node.unit_of_work() as ctx:
                models = set(ctx.session.scalars(select(Alert.model).distinct()))
        life.stop()
    with app_node.unit_of_work() as ctx:
        listed = ctx.session.scalars(select(WatchEntry.list_kind)).all()
    assert listed, "the scenario's watchlist entries were registered"
    assert models & PLANTED_ONLY, models  # plain life never names a watched person or plate


def _broker_listening() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 1883), timeout=1):
            return True
    except OSError:
        return False


def test_one_day_over_mqtt_reaches_the_store(app_node: Node, community: str) -> None:
    if not _broker_listening():
        pytest.skip("no MQTT broker listening on 127.0.0.1:1883")
    root = f"anju-sim-{uuid.uuid4().hex[:8]}"
    ingest = MqttIngest(
        app_node,
        "mqtt://127.0.0.1:1883",
        topic_root=root,
        client_id=f"anju-test-{uuid.uuid4().hex[:10]}",
        shared_group=f"g{uuid.uuid4().hex[:8]}",
    )
    ingest.start()
    try:
        assert ingest.wait_connected(10)
        world = prepare(app_node, community)
        life = Life(world, seed=3)
        day = dt.datetime.now(world.tz).date() - dt.timedelta(days=2)
        events = life.day(day).events
        sender = MqttSender("mqtt://127.0.0.1:1883", community, topic_root=root)
        run_days(life, sender, day, day)
        sender.close()
        assert sender.tally.total("sent") == len(events)
        keys = {e.body["id"] for e in events}
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if ingest.stats["accepted"] + ingest.stats["duplicate"] >= len(keys):
                break
            time.sleep(0.2)
    finally:
        ingest.stop()
    assert sender.tally.total("rejected") == 0
    assert ingest.stats["accepted"] == len(keys)
    with app_node.unit_of_work() as ctx:
        found = ctx.session.execute(
            select(StoredEvent.event_key, StoredEvent.person_id, StoredEvent.kind).where(
                StoredEvent.event_key.in_(keys)
            )
        ).all()
    assert len(found) == len(keys)
    assert all(r.person_id for r in found if r.kind in GATE_KINDS)


def test_sim_run_command_lives_days_and_summarises(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import json

    from typer.testing import CliRunner

    from anju.cli import app
    from anju.config import load_settings

    monkeypatch.setenv("ANJU_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("ANJU_ADMIN_PASSWORD", ADMIN_PASSWORD)
    runner = CliRunner()
    assert runner.invoke(app, ["init", "--json"]).exit_code == 0
    built = runner.invoke(app, ["sim", "build", "--residents", "40", "--code", "CLI", "--json"])
    assert built.exit_code == 0, built.output
    node = bootstrap(load_settings())
    try:
        with live_server(node) as base:
            args = ["sim", "run", "--url", base, "--community", "CLI", "--days", "1", "--json"]
            first = runner.invoke(app, args)
            assert first.exit_code == 0, first.output
            again = runner.invoke(app, [*args, "--seed", "1"])
            missing = runner.invoke(app, ["sim", "run", "--community", "NOPE", "--days", "1"])
    finally:
        node.dispose()
    summary = json.loads(first.stdout.splitlines()[-1])
    totals = summary["totals"]
    assert totals["sent"] > 1000 and totals["accepted"] == totals["sent"]
    assert summary["kinds"]["access.face"]["accepted"] > 0
    assert json.loads(again.stdout.splitlines()[-1])["totals"]["duplicate"] == totals["sent"]
    assert missing.exit_code == 2 and "no community with code NOPE" in missing.output
