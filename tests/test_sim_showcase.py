"""The demo's showcase (anju.sim.showcase): lived the way ``anju demo`` lives it — back-dated
history first, the day before the start caught up on at once with the clock's ticks, then
minute by minute — every alert model raises an alert on its showcase case; and in a real
browser on a phone-sized screen, each of those alerts is taken through the whole loop, by
an officer alone (police-only) or handed to the property (交办), whose staff acknowledge and
give feedback and whose manager closes it."""

from __future__ import annotations

import base64
import datetime as dt
import secrets
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from anju.alerts import evaluate
from anju.alerts.models import Alert
from anju.alerts.rules import MODELS
from anju.auth import service as auth_service
from anju.devices.models import Device
from anju.events import ticker, wire
from anju.events.api import deliver
from anju.org.models import OrgUnit
from anju.sim.community import CommunityConfig, build_community
from anju.sim.life import Life, SimEvent
from anju.sim.runner import community_id_of, plant_demo, prepare, register_watches
from anju.sim.showcase import showcase

TZ = ZoneInfo("Asia/Shanghai")
# Early morning: the night's last patrol round (4:00) is still being judged, so the
# showcase can skip a point in it.
NOW = dt.datetime(2026, 11, 20, 5, 40, tzinfo=TZ).astimezone(dt.UTC)
LIVE = dt.timedelta(minutes=25)


@pytest.fixture(scope="module")
def lived(app_node: Any) -> dict[str, Any]:
    """A 300-resident community with counting cameras, lived through the demo's plan."""
    with app_node.unit_of_work() as ctx:
        report = build_community(
            ctx, CommunityConfig(seed=3, residents=300, code="SHOW", today=NOW.date())
        )
        evaluate.add_counting_cameras(ctx, report.community_id, report.community_code)
    world = prepare(app_node, "SHOW")
    life = Life(world, 3)
    community_id = community_id_of(app_node, "SHOW")
    start = NOW - dt.timedelta(days=1)
    plan = plant_demo(life, community_id, start, NOW)
    register_watches(app_node, community_id, plan.scenario)
    app_node.rules.reload()

    def send(events: list[SimEvent], now: dt.datetime) -> None:
        bodies = [e.body for e in events]
        for chunk in range(0, len(bodies), wire.MAX_BATCH):
            deliver(
                app_node,
                wire.parse_batch(bodies[chunk : chunk + wire.MAX_BATCH], now),
                evaluate.SENDER,
            )
        app_node.rules.drain()

    def tick(now: dt.datetime) -> None:
        ticker.tick(app_node, now)
        app_node.rules.drain()

    # The back-dated history, then the day caught up on in a rush, the clock ticking at
    # the real time meanwhile (as in the demo, where a minute of catch-up is 60 hours).
    send(plan.early, NOW)
    days = [start.astimezone(TZ).date() + dt.timedelta(days=n) for n in range(2)]
    events = sorted(
        (e for d in days for e in plan.events_of(d) if start <= e.at < NOW + LIVE),
        key=lambda e: e.at,
    )
    caught_up = [e for e in events if e.at < NOW]
    half = len(caught_up) // 2
    send(caught_up[:half], NOW)
    tick(NOW)
    send(caught_up[half:], NOW)
    tick(NOW)
    minute = NOW
    rest = [e for e in events if e.at >= NOW]
    while minute < NOW + LIVE:
        minute += dt.timedelta(minutes=1)
        send([e for e in rest if minute - dt.timedelta(minutes=1) <= e.at < minute], minute)
        tick(minute)
    with app_node.sessions() as session:
        codes = {r.id: r.code for r in session.execute(select(Device.id, Device.code))}
        alerts = [
            evaluate.Raised(a.model, evaluate.alert_key(a, codes), evaluate._aware(a.first_at))
            for a in session.scalars(select(Alert).where(Alert.community_id == community_id))
        ]
    truths = evaluate.resolve_keys(app_node, plan.showcase.truths)
    return {"truths": truths, "alerts": alerts, "plan": plan, "life": life}


def test_the_showcase_plants_a_case_of_every_model(lived: dict[str, Any]) -> None:
    assert {t.model for t in lived["truths"]} == set(MODELS)


def test_every_showcase_case_raises_its_alert(lived: dict[str, Any]) -> None:
    missed = [
        (t.model, t.key)
        for t in lived["truths"]
        if not any(evaluate.matches(t, a) for a in lived["alerts"])
    ]
    assert missed == []


def test_the_live_cases_arrive_after_the_start(lived: dict[str, Any]) -> None:
    """Most models' cases come in the first minutes after the start, one a minute, so a
    visitor watching the alert centre sees them arrive."""
    live = {t.model for t in lived["truths"] if NOW < t.start <= NOW + LIVE}
    assert len(live) >= 10
    assert {"stranger_loitering", "tailgating", "fire", "crowd"} <= live


def test_no_patrol_case_when_no_round_is_being_judged(lived: dict[str, Any]) -> None:
    """In the afternoon the night's rounds are past judging: the device-health model's
    showcase case is a device fault alone."""
    life, afternoon = lived["life"], dt.datetime(2026, 11, 20, 15, 0, tzinfo=TZ)
    days = list(life.days(afternoon.date() - dt.timedelta(days=1), afternoon.date()))
    scenario = showcase(life, days, 1, afternoon.astimezone(dt.UTC))
    health = [t for t in scenario.truths if t.model == "device_health"]
    assert len(health) == 1
    assert any(e.kind == "device.fault" and e.device == health[0].key for e in scenario.events)
    assert not any(e.kind == "patrol.checkin" for e in scenario.events)


PHONE = {"width": 390, "height": 844}
PASSWORD = "showcase-" + secrets.token_hex(4)
DRAW_JPEG = """() => {
  const c = document.createElement("canvas"); c.width = 160; c.height = 120;
  const g = c.getContext("2d"); g.fillStyle = "#3a7"; g.fillRect(0, 0, 160, 120);
  return c.toDataURL("image/jpeg").split(",")[1];
}"""


@pytest.mark.browser
def test_every_models_alert_goes_through_the_loop_on_a_phone(
    app_node: Any, lived: dict[str, Any], test_output: Any, tmp_path: Any
) -> None:
    """One open alert of every model: police-only ones dispatched, acknowledged, handled
    and closed by the officer; the others handed to the property by the officer, taken on
    and answered with a photo by property staff, closed by the property manager."""
    if app_node.backend != "sqlite":  # type: ignore[attr-defined]
        pytest.skip("the pages are the same on both databases; walked once")
    from tests.browser import chromium_page
    from tests.live_server import live_server

    with app_node.unit_of_work() as ctx:
        community = ctx.session.get(OrgUnit, community_id_of(app_node, "SHOW"))
        office = community.parent
        for username, role, unit in (
            ("sc-officer", "officer", office),
            ("sc-staff", "property_staff", community),
            ("sc-manager", "property_manager", community),
        ):
            auth_service.create_user(
                ctx.session, username=username, display_name=username, password=PASSWORD,
                role_code=role, org_unit_id=unit.id,
            )  # fmt: skip
        latest: dict[str, tuple[int, bool]] = {}
        for alert in ctx.session.scalars(
            select(Alert).where(Alert.community_id == community.id).order_by(Alert.id)
        ):
            latest[alert.model] = (alert.id, alert.police_only)
    assert set(latest) == set(MODELS)
    shots = test_output / "browser" / "showcase"
    shots.mkdir(parents=True, exist_ok=True)
    photo = tmp_path / "scene.jpg"
    with live_server(app_node) as base, chromium_page(PHONE) as officer:
        context = officer.anju_context.browser

        def signed_in(page: Any, username: str) -> Any:
            page.goto(f"{base}/login")
            page.fill("input[name=username]", username)
            page.fill("input[name=password]", PASSWORD)
            page.click("button.primary")
            # Signed in once the dashboard's document is there: its thumbnails and live
            # streams are not what this walk is about (three browsers on a busy machine once
            # waited 90 s for the page's "load").
            page.wait_for_url(f"{base}/", timeout=90_000, wait_until="domcontentloaded")
            return page

        def phone() -> Any:
            return context.new_context(viewport=PHONE, locale="zh-CN").new_page()

        signed_in(officer, "sc-officer")
        staff, manager = signed_in(phone(), "sc-staff"), signed_in(phone(), "sc-manager")
        photo.write_bytes(base64.b64decode(officer.evaluate(DRAW_JPEG)))
        for model, (alert_id, police) in sorted(latest.items()):
            url = f"{base}/alerts/{alert_id}"
            officer.goto(url)
            if police:
                officer.select_option("#target", "role:officer")
                officer.click("#do-dispatch")
                officer.click("#do-acknowledge")
                hands, closer = officer, officer
            else:
                officer.select_option("#target", "role:property")
                officer.fill("#dispatch-note", "交办物业核实处理")
                officer.click("#do-dispatch")
                officer.wait_for_selector("#alert-state:has-text('已下发')")
                staff.goto(url)
                staff.click("#do-acknowledge")
                hands, closer = staff, manager
            hands.fill("#feedback", "已到场核实处理，已拍照留存")
            hands.select_option("#verdict", "true_alarm")
            hands.set_input_files("#photos", str(photo))
            hands.click("#do-handle")
            hands.wait_for_selector("#timeline")
            closer.goto(url)
            closer.click("#do-close")
            closer.wait_for_selector("#do-reopen")
            assert closer.locator("#alert-state").inner_text() == "已办结", model
            timeline = closer.locator("#timeline").inner_text()
            for word in ("已预警", "已签收", "已反馈", "已办结"):
                assert word in timeline, (model, word)
            if not police:
                assert "交办物业" in timeline and "sc-staff" in timeline, model
            closer.screenshot(path=str(shots / f"{model}.png"), full_page=True)
            for page in (officer, staff, manager):
                assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
        assert not officer.js_errors, officer.js_errors
    with app_node.unit_of_work() as ctx:
        states = {a.model: a.state.value for a in ctx.session.scalars(
            select(Alert).where(Alert.id.in_([i for i, _ in latest.values()]))
        )}  # fmt: skip
    assert states == {model: "closed" for model in MODELS}
