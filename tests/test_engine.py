"""The rules engine: routing, isolation of a failing model, configuration, the rebuild of
state on start, and the wiring into ``deliver()`` and the ticker (real database)."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import threading
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from anju.alerts import config as alert_config
from anju.alerts.engine import Engine, NodeRules
from anju.alerts.facts import MemoryFacts, MemoryHistory, Place
from anju.alerts.model import AlertDraft, Seen
from anju.alerts.models import Alert, AlertEvidence
from anju.alerts.rules.base import AlertModel, RuleCtx
from anju.alerts.rules.elderly import ElderlyInactive
from anju.alerts.rules.safety import Fire
from anju.audit.models import AuditEntry
from anju.auth import service as auth_service
from anju.core.db import utcnow
from anju.core.errors import ValidationFailed
from anju.devices.models import Device
from anju.events.api import deliver, sender_for
from anju.events.model import Event, Kind
from anju.org.models import OrgUnit
from anju.registry import schemas
from anju.registry import service as registry
from tests import factories as f

TZ = ZoneInfo("Asia/Shanghai")
T0 = dt.datetime(2026, 11, 3, 4, 0, tzinfo=dt.UTC)


class Boom(AlertModel):
    """A model with a bug."""

    code = "boom"
    name = "坏模型"
    kinds = frozenset({"fire.smoke", "fire.lane_blocked"})

    def on_event(self, event: Seen, ctx: RuleCtx) -> list[AlertDraft]:
        raise RuntimeError("bug in a model")

    def on_tick(self, now: dt.datetime, ctx: RuleCtx) -> list[AlertDraft]:
        raise RuntimeError("bug in a tick")


def smoke(at: dt.datetime = T0, community: int = 1, ident: int = 1) -> Seen:
    return Seen(ident, community, 3, "SMOKE-1", "smoke_detector", "fire.smoke", at, value=1)


def engine(models: list[AlertModel], configs: dict[str, Any] | None = None) -> Engine:
    facts = MemoryFacts(places={3: Place(3, "1号楼大堂烟感", "smoke_detector")})
    return Engine(
        facts=facts,
        history=MemoryHistory(),
        configs=lambda community: configs or {},
        models=models,
        tz=TZ,
    )


def test_a_failing_model_is_isolated_logged_and_counted(caplog: pytest.LogCaptureFixture) -> None:
    e = engine([Boom(), Fire()])
    with caplog.at_level(logging.ERROR, logger="anju.alerts.engine"):
        drafts = e.on_events([smoke(), smoke(ident=2)], T0)
    assert [d.model for d in drafts] == ["fire", "fire"]  # the other model still ran
    assert e.failures["boom"] == 2 and e.failures["fire"] == 0
    assert "alert model boom failed" in caplog.text
    assert e.on_tick(T0, [1]) == [] and e.failures["boom"] == 3


def test_events_go_only_to_models_of_their_kind_and_enabled() -> None:
    e = engine([Fire(), ElderlyInactive()], {"fire": Fire.Params(enabled=False)})
    assert e.on_events([smoke()], T0) == []  # switched off in this community
    other = Seen(9, 1, 3, "SMOKE-1", "smoke_detector", "device.heartbeat", T0)
    assert e.on_events([other], T0) == []
    assert set(e.by_kind["fire.smoke"]) == {e.models["fire"]}


def test_replay_rebuilds_state_without_raising_alerts() -> None:
    facts = MemoryFacts(elderly={1: {100: 9}})
    e = Engine(facts=facts, history=MemoryHistory(), configs=lambda c: {},
               models=[ElderlyInactive()], tz=TZ)  # fmt: skip
    start = dt.datetime(2026, 11, 3, 0, 0, tzinfo=dt.UTC)  # 08:00 in Beijing
    e.on_tick(start - dt.timedelta(hours=30), [1])
    motion = Seen(1, 1, 4, "IR-1", "infrared", "sensor.infrared", start, house_id=100)
    assert e.replay([motion], start + dt.timedelta(hours=1)) == 1
    # Without the replayed motion the house would count as silent since the first tick.
    assert e.on_tick(start + dt.timedelta(hours=2), [1]) == []
    assert e.on_tick(start + dt.timedelta(hours=3, minutes=1), [1]) != []


# --- against the database ---------------------------------------------------------------


@pytest.fixture(scope="module")
def site(app_node: Any) -> dict[str, Any]:
    with app_node.unit_of_work() as ctx:
        t = f.tree(ctx, "RE")
        ids = {}
        for code, kind in [("RE-SMOKE", "smoke_detector"), ("RE-P1", "patrol_point"),
                           ("RE-P2", "patrol_point"), ("RE-LANE", "fire_lane")]:  # fmt: skip
            device = registry.devices.create(
                ctx,
                schemas.DeviceCreate(community_id=t.community.id, code=code, name=code, kind=kind),
            )
            ids[code] = device.id
        # An officer of the community's police office, and its property manager.
        for name, role in (("re-officer", "officer"), ("re-property", "property_manager")):
            auth_service.create_user(
                ctx.session, username=name, display_name=name, password="officer-pass-1234",
                role_code=role, org_unit_id=t.office.id,
            )  # fmt: skip
        return {
            "community": t.community.id,
            "district": t.district.id,
            "office": t.office.id,
            "devices": ids,
        }


def send(node: Any, code: str, kind: Kind, at: dt.datetime, ident: str, **kw: Any) -> None:
    with node.unit_of_work() as ctx:
        device = ctx.session.scalar(select(Device).where(Device.code == code))
        sender = sender_for(device)
    processed = deliver(node, [Event(device=code, kind=kind, at=at, id=ident, **kw)], sender)
    assert processed.results[0].status == "accepted", processed.results
    assert node.rules.drain(10)  # the models run on the rules thread


def alerts(node: Any, model: str, community: int) -> list[Alert]:
    with node.unit_of_work() as ctx:
        rows = list(
            ctx.session.scalars(
                select(Alert).where(Alert.model == model, Alert.community_id == community)
            )
        )
        ctx.session.expunge_all()
        return rows


def test_a_stored_event_raises_an_alert_and_repeats_merge(app_node: Any, site: Any) -> None:
    now = utcnow()
    send(app_node, "RE-SMOKE", Kind.FIRE_SMOKE, now, "s1", value=1)
    send(app_node, "RE-SMOKE", Kind.FIRE_SMOKE, now, "s2", value=1)
    [alert] = alerts(app_node, "fire", site["community"])
    assert alert.count == 2 and "RE-SMOKE" in alert.title
    with app_node.unit_of_work() as ctx:
        evidence = ctx.session.scalars(
            select(AlertEvidence.event_id).where(AlertEvidence.alert_id == alert.id)
        ).all()
    assert len(evidence) == 2


def test_an_alert_a_model_raises_is_announced_live_once(app_node: Any, site: Any) -> None:
    """The engine's sink announces new alerts on the alert feed after commit (the alert
    centre and the outside channels listen there); a merged repeat is not announced again."""
    now = utcnow()
    with app_node.unit_of_work() as ctx:  # a detector of its own: no open alert to merge into
        registry.devices.create(
            ctx,
            schemas.DeviceCreate(
                community_id=site["community"],
                code="RE-SMOKE-LIVE",
                name="烟感",
                kind="smoke_detector",
            ),
        )

    async def watch() -> list[dict[str, Any]]:
        listener = app_node.alert_feed.subscribe(None)
        try:
            await asyncio.to_thread(
                send, app_node, "RE-SMOKE-LIVE", Kind.FIRE_SMOKE, now, "live-1", value=1
            )
            await asyncio.to_thread(
                send, app_node, "RE-SMOKE-LIVE", Kind.FIRE_SMOKE, now, "live-2", value=1
            )
            got = [await asyncio.wait_for(listener.queue.get(), 5)]
            await asyncio.sleep(0.3)  # room for a wrong second announcement to arrive
            while not listener.queue.empty():
                got.append(listener.queue.get_nowait())
            return got
        finally:
            app_node.alert_feed.unsubscribe(listener)

    got = asyncio.run(watch())
    fire = [item for item in got if item["model"] == "fire"]
    assert len(fire) == 1 and fire[0]["action"] == "raised"
    assert fire[0]["community_id"] == site["community"] and fire[0]["sound"] is True


def test_a_broken_model_does_not_lose_the_event_or_the_other_alerts(
    app_node: Any, site: Any
) -> None:
    saved = app_node.rules
    rules = NodeRules()
    rules.ready(app_node)
    assert rules.engine is not None
    rules.engine = Engine(
        facts=rules.engine.facts, history=rules.engine.history, configs=rules.engine.configs,
        models=[Boom(), Fire()], tz=TZ,
    )  # fmt: skip
    app_node.rules = rules
    try:
        send(app_node, "RE-LANE", Kind.FIRE_LANE_BLOCKED, utcnow(), "l1", data={"seconds": 1200})
    finally:
        app_node.rules = saved
        rules.close()
    assert rules.failures == {"boom": 1}
    [lane] = alerts(app_node, "fire", site["community"])[-1:]
    assert lane.fingerprint.startswith("fire:lane:")


def test_configuration_is_inherited_validated_and_versioned(app_node: Any, site: Any) -> None:
    with app_node.unit_of_work() as ctx:
        alert_config.save(ctx.session, site["district"], "fire", {"lane_minutes": 20}, "admin")
        alert_config.save(ctx.session, site["community"], "fire", {"severity": "low"}, "grid")
        alert_config.save(ctx.session, site["district"], "fire", {"lane_minutes": 30}, "admin")
        eff = alert_config.effective(ctx.session, site["community"])["fire"]
        assert (eff.lane_minutes, eff.severity) == (30, "low")
        assert [
            v.version for v in alert_config.versions(ctx.session, site["district"], "fire")
        ] == [2, 1]
        with pytest.raises(ValidationFailed) as refused:
            alert_config.save(ctx.session, site["community"], "fire", {"lane_minutes": 0}, None)
        assert refused.value.errors[0].field == "lane_minutes"
        with pytest.raises(ValidationFailed) as unknown:
            alert_config.save(ctx.session, site["community"], "fire", {"lane_minute": 5}, None)
        assert unknown.value.errors[0].field == "lane_minute"
        # The district cannot set a limit that makes the (inherited) pair impossible.
        with pytest.raises(ValidationFailed, match="hydrant"):
            alert_config.save(ctx.session, site["district"], "fire", {"hydrant_min_mpa": 5}, None)
        logged = ctx.session.scalars(
            select(AuditEntry.entity).where(AuditEntry.entity == "alert_configs")
        ).all()
        assert len(logged) >= 3


class Gated(AlertModel):
    """Records what it is given; its events wait at a gate the test opens."""

    code = "gated"
    name = "记录模型"
    kinds = frozenset({"fire.smoke"})

    def __init__(self) -> None:
        self.gate = threading.Event()
        self.calls: list[str] = []

    def on_event(self, event: Seen, ctx: RuleCtx) -> list[AlertDraft]:
        self.gate.wait(10)
        self.calls.append(f"event {event.device_code}")
        return []

    def on_tick(self, now: dt.datetime, ctx: RuleCtx) -> list[AlertDraft]:
        self.calls.append("tick")
        return []


def test_deliveries_do_not_wait_for_the_models_and_ticks_wait_their_turn(
    app_node: Any, site: Any
) -> None:
    """deliver() hands the stored events to the rules thread and returns; a tick runs after
    the events handed over before it; after close() the work runs on the caller's thread."""
    with app_node.unit_of_work() as ctx:
        registry.devices.create(
            ctx,
            schemas.DeviceCreate(community_id=site["community"], code="RE-SMOKE-Q",
                                 name="烟感", kind="smoke_detector"),
        )  # fmt: skip
        sender = sender_for(ctx.session.scalar(select(Device).where(Device.code == "RE-SMOKE-Q")))
    saved, rules, gated = app_node.rules, NodeRules(), Gated()
    rules.ready(app_node)
    assert rules.engine is not None
    rules.engine = Engine(
        facts=rules.engine.facts, history=rules.engine.history, configs=rules.engine.configs,
        models=[gated], tz=TZ,
    )  # fmt: skip
    app_node.rules = rules
    try:
        smoke = Event(device="RE-SMOKE-Q", kind=Kind.FIRE_SMOKE, at=utcnow(), id="q1", value=1)
        assert deliver(app_node, [smoke], sender).results[0].status == "accepted"
        assert gated.calls == []  # stored and answered while the model is still at work
        ticked = threading.Thread(target=rules.tick, args=(app_node, utcnow()))
        ticked.start()
        gated.gate.set()
        ticked.join(10)
        assert rules.drain(10)
        assert gated.calls[0] == "event RE-SMOKE-Q" and set(gated.calls[1:]) == {"tick"}
    finally:
        app_node.rules = saved
        rules.close()
    again = Event(device="RE-SMOKE-Q", kind=Kind.FIRE_SMOKE, at=utcnow(), id="q2", value=1)
    calls = len(gated.calls)
    rules.on_stored(app_node, deliver(app_node, [again], sender).stored)  # closed: in line
    assert gated.calls[calls:] == ["event RE-SMOKE-Q"]


def test_state_is_rebuilt_from_the_event_store_after_a_restart(app_node: Any, site: Any) -> None:
    now = utcnow().replace(second=0, microsecond=0)
    round_at = (now - dt.timedelta(hours=2)).astimezone(TZ)
    with app_node.unit_of_work() as ctx:
        alert_config.save(ctx.session, site["community"], "device_health",
                          {"patrol_rounds": [round_at.strftime("%H:%M")]}, "admin")  # fmt: skip
    send(
        app_node,
        "RE-P1",
        Kind.PATROL_CHECKIN,
        now - dt.timedelta(hours=2) + dt.timedelta(minutes=5),
        "p1",
    )
    got: list[AlertDraft] = []
    restarted = NodeRules(sink=lambda node, drafts, at: got.extend(drafts))
    try:
        drafts = restarted.tick(app_node, now)
    finally:
        restarted.close()
    missed = [
        d for d in drafts if d.model == "device_health" and d.community_id == site["community"]
    ]
    assert [d.device_id for d in missed] == [site["devices"]["RE-P2"]]
    assert got == drafts


def test_sql_facts_from_the_registry_and_watchlists(ctx: Any) -> None:
    from anju.alerts import facts as alert_facts
    from anju.alerts import watchlist

    t = f.tree(ctx, "RF")
    c = t.community.id
    flat = f.house(ctx, t.community)
    elder = registry.people.create(
        ctx,
        schemas.PersonCreate(
            community_id=c, name="王奶奶", id_number=f.resident_id_for("110101", "19400101", 901),
            tags=["elderly_alone"],
        ),
    )  # fmt: skip
    number = f.resident_id_for("110101", "19800101", 902)
    watched = registry.people.create(
        ctx, schemas.PersonCreate(community_id=c, name="张某", id_number=number)
    )
    registry.residencies.create(
        ctx,
        schemas.ResidencyCreate(person_id=elder.id, house_id=flat.id, relation="owner",
                                start_date=dt.date(2020, 1, 1)),
    )  # fmt: skip
    # At the district, by ID number (kept only hashed); a plate prefix rule on the city.
    watchlist.add_entry(
        ctx.session, org_unit_id=t.district.id, list_kind=watchlist.WatchList.KEY_PERSON,
        category="涉稳", reason="测试", match_type=watchlist.MatchType.ID_HASH, value=number,
        cipher=ctx.cipher,
    )  # fmt: skip
    watchlist.add_entry(
        ctx.session, org_unit_id=t.city.id, list_kind=watchlist.WatchList.CONTROLLED,
        category="疫区车辆", reason="测试", match_type=watchlist.MatchType.PLATE_PREFIX,
        value="京a",
    )  # fmt: skip
    stored = ctx.session.scalars(select(watchlist.WatchEntry.match_value)).all()
    assert number not in stored
    facts = alert_facts.load(ctx.session, c)
    assert facts.elderly_alone(c) == {flat.id: elder.id}
    assert facts.is_resident(flat.id, elder.id) and facts.household_size(flat.id) == 1
    assert facts.is_registered(c, watched.id) and not facts.is_registered(c, 10**9)
    seen = Seen(1, c, 1, "G", "face_gate", "access.face", T0, person_id=watched.id)
    [hit] = facts.watch_hits(c, seen)
    assert (hit.list_kind, hit.police_only) == ("key_person", True)
    car = Seen(2, c, 1, "G", "barrier", "vehicle.passed", T0, subject_type="plate",
               subject_value="京A12345")  # fmt: skip
    [plate] = facts.watch_hits(c, car)
    assert (plate.list_kind, plate.police_only) == ("controlled", False)
    other = f.tree(ctx, "RG")  # another district: the key-person entry does not reach it
    assert [h.list_kind for h in alert_facts.load(ctx.session, other.community.id).watch_hits(
        other.community.id, Seen(3, other.community.id, 1, "G", "face_gate", "access.face", T0,
                                 person_id=watched.id))] == []  # fmt: skip


def test_the_console_page_edits_a_model_for_authorised_roles(app_node: Any, site: Any) -> None:
    from fastapi.testclient import TestClient

    from anju.web.app import create_app
    from tests.web_helpers import sign_in

    with app_node.unit_of_work() as ctx:
        outside = f.tree(ctx, "RX").community.id
    with TestClient(create_app(app_node)) as client:
        csrf = sign_in(client, "re-officer", "officer-pass-1234")
        page = client.get(f"/admin/alert-models?unit_id={site['community']}")
        assert page.status_code == 200 and "elderly_inactive" in page.text
        url = f"/admin/alert-models/{site['community']}/elderly_inactive"
        bad = client.post(url, data={"csrf_token": csrf, "params": '{"inactive_hours": -2}'})
        assert bad.status_code == 422 and "inactive_hours" in bad.text
        with app_node.unit_of_work() as ctx:
            assert alert_config.versions(ctx.session, site["community"], "elderly_inactive") == []
        good = client.post(
            url, data={"csrf_token": csrf, "params": '{"inactive_hours": 10}'},
            follow_redirects=False,
        )  # fmt: skip
        assert good.status_code == 303
        with app_node.unit_of_work() as ctx:
            eff = alert_config.effective(ctx.session, site["community"])["elderly_inactive"]
            assert eff.inactive_hours == 10
        other = f"/admin/alert-models/{outside}/elderly_inactive"
        assert client.post(other, data={"csrf_token": csrf, "params": "{}"}).status_code == 404
    with TestClient(create_app(app_node)) as client:
        sign_in(client, "re-property", "officer-pass-1234")
        assert client.get("/admin/alert-models").status_code == 403


def test_officers_keep_watchlists_property_cannot(app_node: Any, site: Any) -> None:
    from fastapi.testclient import TestClient

    from anju.alerts.watchlist import WatchEntry
    from anju.web.app import create_app
    from tests.web_helpers import sign_in

    with app_node.unit_of_work() as ctx:
        outside = f.tree(ctx, "RW").community.id
    with TestClient(create_app(app_node)) as client:
        csrf = sign_in(client, "re-officer", "officer-pass-1234")
        form = {"csrf_token": csrf, "list_kind": "controlled", "org_unit_id": site["community"],
                "category": "被盗车辆", "reason": "报失", "match_type": "plate",
                "value": "鲁l 54321", "expires_on": "2027-01-31"}  # fmt: skip
        bad = client.post("/admin/watchlists", data={**form, "match_type": "dna"})
        assert bad.status_code == 422 and "match_type" in bad.text
        away = client.post("/admin/watchlists", data={**form, "org_unit_id": outside})
        assert away.status_code == 404
        assert (
            client.post("/admin/watchlists", data=form, follow_redirects=False).status_code == 303
        )
        page = client.get("/admin/watchlists")
        assert "鲁L54321" in page.text and "被盗车辆" in page.text
        with app_node.unit_of_work() as ctx:
            entry = ctx.session.scalars(
                select(WatchEntry).where(WatchEntry.match_value == "鲁L54321")
            ).one()
            assert not entry.police_only and entry.expires_at is not None
            entry_id = entry.id
        gone = client.post(f"/admin/watchlists/{entry_id}/delete", data={"csrf_token": csrf},
                           follow_redirects=False)  # fmt: skip
        assert gone.status_code == 303
        with app_node.unit_of_work() as ctx:
            assert ctx.session.get(WatchEntry, entry_id) is None
    with TestClient(create_app(app_node)) as client:
        sign_in(client, "re-property", "officer-pass-1234")
        assert client.get("/admin/watchlists").status_code == 403


def test_the_ticking_process_catches_up_on_events_other_processes_stored(
    app_node: Any, site: Any
) -> None:
    """Events delivered by a worker process reach the absence models of the process that
    ticks (here: two NodeRules on one database, as two processes would be)."""
    with app_node.unit_of_work() as ctx:
        community = ctx.session.get(OrgUnit, site["community"])
        flat = f.house(ctx, community, room="1101", floor=11)
        elder = registry.people.create(
            ctx,
            schemas.PersonCreate(
                community_id=community.id, name="赵爷爷", tags=["elderly_alone"],
                id_number=f.resident_id_for("110101", "19380101", 911),
            ),
        )  # fmt: skip
        registry.residencies.create(
            ctx,
            schemas.ResidencyCreate(person_id=elder.id, house_id=flat.id, relation="owner",
                                    start_date=dt.date(2020, 1, 1)),
        )  # fmt: skip
        # A home sensor is placed by its unit and room (the registry has no house field).
        registry.devices.create(
            ctx,
            schemas.DeviceCreate(community_id=community.id, code="RE-IR", name="红外",
                                 kind="infrared", unit_id=flat.unit_id, door=flat.room),
        )  # fmt: skip
    got: list[AlertDraft] = []
    ticker = NodeRules(sink=lambda node, drafts, at: got.extend(drafts))
    start = utcnow()
    ticker.tick(app_node, start)  # started: watching from now
    motion = start + dt.timedelta(seconds=1)
    send(app_node, "RE-IR", Kind.SENSOR_INFRARED, motion, "ir-1", value=1)  # another process
    later = ticker.tick(app_node, start + dt.timedelta(days=2))
    [silent] = [d for d in later if d.model == "elderly_inactive" and d.person_id == elder.id]
    assert silent.detail["last_sign"] == motion.isoformat()
