"""The alert service on both databases: merging by fingerprint (also when processes race),
the cooldown, the closed loop's every legal step and refusals, roles and scopes, escalation
with a fake clock, and who a notice is for (configured recipients, preferences)."""

from __future__ import annotations

import contextlib
import datetime as dt
import secrets
import threading
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from anju.alerts import escalation, notify, service
from anju.alerts.model import AlertDraft, AlertState, Severity, Verdict
from anju.alerts.models import Alert, AlertEvidence
from anju.auth import service as auth_service
from anju.auth.models import User
from anju.core.context import Ctx
from anju.core.errors import NotFound, PermissionDenied, ValidationFailed
from tests import factories

T0 = dt.datetime(2026, 11, 21, 2, 0, tzinfo=dt.UTC)
JPEG = b"\xff\xd8\xff\xe0 a feedback photo"


def draft(community_id: int, **kw: Any) -> AlertDraft:
    values: dict[str, Any] = {
        "model": "fire",
        "community_id": community_id,
        "fingerprint": f"fire:lane:{community_id}",
        "title": "消防通道占用超过 10 分钟",
        "severity": Severity.HIGH,
        "at": T0,
        "place": "3 号楼北侧消防通道",
        "evidence": (101,),
    }
    values.update(kw)
    return AlertDraft(**values)


def as_user(ctx: Ctx, unit_id: int, role: str) -> Ctx:
    user = auth_service.create_user(
        ctx.session,
        username=f"u-{role}-{secrets.token_hex(4)}",
        display_name=f"{role} 用户",
        password=secrets.token_urlsafe(12),
        role_code=role,
        org_unit_id=unit_id,
    )
    ctx.session.flush()
    return Ctx(ctx.session, ctx.cipher, auth_service.actor_for(user), timezone=ctx.timezone)


@pytest.fixture
def world(ctx: Ctx) -> dict[str, Any]:
    t = factories.tree(ctx)
    other = factories.tree(ctx)
    return {
        "tree": t,
        "officer": as_user(ctx, t.office.id, "officer"),
        "grid": as_user(ctx, t.community.id, "grid_worker"),
        "property": as_user(ctx, t.community.id, "property_manager"),
        "staff": as_user(ctx, t.community.id, "property_staff"),
        "resident": as_user(ctx, t.community.id, "resident"),
        "station": as_user(ctx, t.station.id, "station_analyst"),
        "outsider": as_user(ctx, other.office.id, "officer"),
    }


def test_repeats_merge_into_the_open_alert(ctx: Ctx, world: dict[str, Any]) -> None:
    c = world["tree"].community.id
    alert, created = service.raise_or_merge(ctx.session, draft(c), T0)
    assert created and alert.state is AlertState.RAISED and alert.count == 1
    later = T0 + dt.timedelta(minutes=3)
    again, created = service.raise_or_merge(
        ctx.session, draft(c, at=later, evidence=(102, 101), severity=Severity.CRITICAL), later
    )
    assert not created and again.id == alert.id
    assert (again.count, again.last_at, again.first_at) == (2, later, T0)
    assert again.severity is Severity.CRITICAL  # a worse repeat raises the severity
    assert service.evidence_ids(ctx.session, alert.id) == [101, 102]
    # One step for the raise; repeats do not write to the timeline.
    assert [s.action for s in service.steps(ctx.session, alert.id)] == ["raised"]
    other, created = service.raise_or_merge(ctx.session, draft(c, fingerprint="fire:x"), T0)
    assert created and other.id != alert.id


def test_evidence_is_capped_but_the_count_goes_on(ctx: Ctx, world: dict[str, Any]) -> None:
    c = world["tree"].community.id
    for i in range(service.EVIDENCE_CAP + 5):
        alert, _ = service.raise_or_merge(ctx.session, draft(c, evidence=(1000 + i,)), T0)
    ctx.session.flush()
    assert alert.count == service.EVIDENCE_CAP + 5
    held = ctx.session.query(AlertEvidence).filter_by(alert_id=alert.id).count()
    assert held == service.EVIDENCE_CAP


def _to_handled(ctx: Ctx, world: dict[str, Any], alert_id: int, now: dt.datetime) -> None:
    service.dispatch(world["officer"], alert_id, now, role="officer", note="请核实")
    service.acknowledge(world["officer"], alert_id, now)
    service.handle(
        world["officer"], alert_id, now, feedback="已清理", verdict="true_alarm", photos=[]
    )


def test_cooldown_after_close_absorbs_then_raises_anew(ctx: Ctx, world: dict[str, Any]) -> None:
    c = world["tree"].community.id
    alert, _ = service.raise_or_merge(ctx.session, draft(c), T0)
    _to_handled(ctx, world, alert.id, T0)
    service.close(world["officer"], alert.id, T0 + dt.timedelta(minutes=1))
    soon = T0 + dt.timedelta(minutes=20)
    same, created = service.raise_or_merge(ctx.session, draft(c, at=soon), soon)
    assert not created and same.id == alert.id
    assert same.state is AlertState.CLOSED and same.count == 2  # absorbed, not reopened
    late = T0 + dt.timedelta(minutes=40)
    fresh, created = service.raise_or_merge(ctx.session, draft(c, at=late), late)
    assert created and fresh.id != alert.id and fresh.state is AlertState.RAISED


def test_the_whole_loop_records_every_step(ctx: Ctx, world: dict[str, Any], tmp_path) -> None:
    from anju.events.blobs import FolderBlobs

    c = world["tree"].community.id
    alert, _ = service.raise_or_merge(ctx.session, draft(c), T0)
    officer = world["officer"]
    service.dispatch(officer, alert.id, T0, role="grid", note="请网格员核实")
    assert alert.state is AlertState.DISPATCHED and alert.assigned_role == "grid"
    # Someone not holding the role it went to may not take it on.
    with pytest.raises(ValidationFailed) as refused:
        service.acknowledge(world["staff"], alert.id, T0)
    assert refused.value.errors[0].message == "this alert was dispatched to someone else"
    service.acknowledge(world["grid"], alert.id, T0 + dt.timedelta(minutes=2))
    assert alert.acknowledged_at == T0 + dt.timedelta(minutes=2)
    blobs = FolderBlobs(tmp_path)
    with pytest.raises(ValidationFailed):
        service.handle(
            world["grid"], alert.id, T0, feedback="x", verdict="true_alarm", photos=[b"GIF89a"]
        )
    with pytest.raises(ValidationFailed):
        service.handle(world["grid"], alert.id, T0, feedback=" ", verdict="true_alarm")
    service.handle(
        world["grid"],
        alert.id,
        T0 + dt.timedelta(minutes=9),
        feedback="车辆已挪走",
        verdict="false_alarm",
        photos=[JPEG],
        blobs=blobs,
    )
    assert alert.verdict is Verdict.FALSE_ALARM
    # Grid workers may not close; the officer does.
    with pytest.raises(PermissionDenied):
        service.close(world["grid"], alert.id, T0)
    service.close(officer, alert.id, T0 + dt.timedelta(minutes=10), note="办结")
    service.reopen(officer, alert.id, T0 + dt.timedelta(minutes=11), reason="再次占用")
    assert alert.state is AlertState.RAISED and alert.verdict is None
    steps = service.steps(ctx.session, alert.id)
    assert [(s.action, s.from_state, s.to_state) for s in steps] == [
        ("raised", None, "raised"),
        ("dispatched", "raised", "dispatched"),
        ("acknowledged", "dispatched", "acknowledged"),
        ("handled", "acknowledged", "handled"),
        ("closed", "handled", "closed"),
        ("reopened", "closed", "raised"),
    ]
    assert steps[2].actor_name == "grid_worker 用户"
    assert steps[3].note == "车辆已挪走" and blobs.get(steps[3].photos[0]) == JPEG
    assert steps[5].note == "再次占用"


def test_illegal_transitions_are_refused(ctx: Ctx, world: dict[str, Any]) -> None:
    c = world["tree"].community.id
    alert, _ = service.raise_or_merge(ctx.session, draft(c), T0)
    officer = world["officer"]
    for act in (
        lambda: service.acknowledge(officer, alert.id, T0),
        lambda: service.handle(officer, alert.id, T0, feedback="x", verdict="true_alarm"),
        lambda: service.close(officer, alert.id, T0),
        lambda: service.reopen(officer, alert.id, T0, reason="x"),
    ):
        with pytest.raises(ValidationFailed) as refused:
            act()
        assert refused.value.errors[0].message == "this alert is not in a state that allows this"
    with pytest.raises(ValidationFailed):
        service.dispatch(officer, alert.id, T0)  # to nobody
    with pytest.raises(ValidationFailed):
        service.dispatch(officer, alert.id, T0, role="mayor")
    with pytest.raises(ValidationFailed):  # reopening needs a reason
        _to_handled(ctx, world, alert.id, T0)
        service.reopen(officer, alert.id, T0, reason="  ")
    with pytest.raises(PermissionDenied):
        service.dispatch(world["grid"], alert.id, T0, role="officer")
    assert [s.action for s in service.steps(ctx.session, alert.id)][-1] == "handled"


def test_police_only_alerts_are_invisible_to_property(ctx: Ctx, world: dict[str, Any]) -> None:
    c = world["tree"].community.id
    alert, _ = service.raise_or_merge(
        ctx.session, draft(c, model="key_person", fingerprint="kp:1", police_only=True), T0
    )
    for role in ("property", "staff", "grid"):
        with pytest.raises(NotFound):
            service.get(world[role], alert.id)
        assert service.search(world[role], service.AlertFilter())[1] == 0
    assert service.get(world["officer"], alert.id).id == alert.id
    # Nor can it be handed to property.
    with pytest.raises(ValidationFailed):
        service.dispatch(world["officer"], alert.id, T0, role="property")
    with pytest.raises(ValidationFailed):
        service.dispatch(world["officer"], alert.id, T0, user_id=world["staff"].actor.user_id)


def test_out_of_scope_is_not_found_and_no_permission_is_denied(
    ctx: Ctx, world: dict[str, Any]
) -> None:
    c = world["tree"].community.id
    alert, _ = service.raise_or_merge(ctx.session, draft(c), T0)
    with pytest.raises(NotFound):
        service.get(world["outsider"], alert.id)
    with pytest.raises(NotFound):
        service.dispatch(world["outsider"], alert.id, T0, role="officer")
    with pytest.raises(PermissionDenied):
        service.get(world["resident"], alert.id)
    # An account out of the alert's area cannot be given it.
    with pytest.raises(ValidationFailed):
        service.dispatch(world["officer"], alert.id, T0, user_id=world["outsider"].actor.user_id)
    assert service.search(world["outsider"], service.AlertFilter())[1] == 0


def test_delegation_to_property_and_feedback_in_the_timeline(
    ctx: Ctx, world: dict[str, Any]
) -> None:
    c = world["tree"].community.id
    alert, _ = service.raise_or_merge(ctx.session, draft(c, model="ebike", fingerprint="eb"), T0)
    service.dispatch(world["officer"], alert.id, T0, role="property", note="请物业劝离")
    service.acknowledge(world["staff"], alert.id, T0)
    service.handle(world["staff"], alert.id, T0, feedback="已劝离电动车", verdict="true_alarm")
    service.close(world["officer"], alert.id, T0)
    steps = service.steps(ctx.session, alert.id)
    assert steps[1].action == "delegated" and steps[1].note == "→ 物业\n请物业劝离"
    assert (steps[3].action, steps[3].actor_name, steps[3].note) == (
        "handled",
        "property_staff 用户",
        "已劝离电动车",
    )
    # Property passes work on only within property.
    other, _ = service.raise_or_merge(ctx.session, draft(c, fingerprint="other"), T0)
    with pytest.raises(ValidationFailed):
        service.dispatch(world["property"], other.id, T0, role="officer")
    service.dispatch(world["property"], other.id, T0, user_id=world["staff"].actor.user_id)
    assert service.steps(ctx.session, other.id)[-1].action == "dispatched"


def test_escalation_goes_up_one_level_per_deadline(ctx: Ctx, world: dict[str, Any]) -> None:
    t = world["tree"]
    alert, _ = service.raise_or_merge(ctx.session, draft(t.community.id), T0)  # high: 15 min
    ctx.session.flush()
    assert escalation.escalate_due(ctx.session, T0 + dt.timedelta(minutes=14)) == []
    moved = escalation.escalate_due(ctx.session, T0 + dt.timedelta(minutes=15))
    assert moved == [alert] and alert.escalation == 1
    assert alert.ack_deadline == T0 + dt.timedelta(minutes=30)
    step = service.steps(ctx.session, alert.id)[-1]
    assert (step.action, step.note) == ("escalated", f"→ {t.station.name}")
    # Dispatching gives a fresh deadline; escalation stays where it got to.
    service.dispatch(world["officer"], alert.id, T0 + dt.timedelta(minutes=16), role="grid")
    late = alert.ack_deadline
    assert late is not None
    escalation.escalate_due(ctx.session, late)
    assert alert.escalation == 2
    assert service.steps(ctx.session, alert.id)[-1].note == f"→ {t.district.name}"
    # The district is the top: no further level, the deadline is cleared.
    escalation.escalate_due(ctx.session, late + dt.timedelta(hours=1))
    assert alert.escalation == 2 and alert.ack_deadline is None
    # Acknowledged alerts never escalate.
    other, _ = service.raise_or_merge(ctx.session, draft(t.community.id, fingerprint="o"), T0)
    service.dispatch(world["officer"], other.id, T0, role="officer")
    service.acknowledge(world["officer"], other.id, T0)
    assert other not in escalation.escalate_due(ctx.session, T0 + dt.timedelta(days=1))


def test_deadlines_per_severity() -> None:
    assert service.deadline_for(Severity.CRITICAL) == dt.timedelta(minutes=5)
    assert service.deadline_for(Severity.LOW) == dt.timedelta(hours=4)


# --- configured recipients (who gets it) ----------------------------------------------------


def _prefs(ctx: Ctx, who: Ctx, **kw: Any) -> None:
    values: dict[str, Any] = {
        "min_severity": "low",
        "console_sound": True,
        "email": "",
        "sms": False,
        "phone": "",
    }
    values.update(kw)
    user_id = who.actor.user_id
    assert user_id is not None
    notify.save_prefs(ctx.session, ctx.cipher, user_id, **values)


def test_a_new_alert_goes_to_its_configured_recipients(ctx: Ctx, world: dict[str, Any]) -> None:
    c = world["tree"].community.id
    officer = ctx.session.get(User, world["officer"].actor.user_id)
    assert officer is not None
    quiet = as_user(ctx, c, "grid_worker")  # a second grid worker who wants only critical
    _prefs(ctx, world["grid"], email="grid@example.org")
    _prefs(ctx, world["officer"], sms=True, phone="13800138000")
    _prefs(ctx, quiet, email="quiet@example.org", min_severity="critical")
    recipients = ["grid_worker", f"user:{officer.username}", "mayor", "user:nobody"]
    alert, created = service.raise_or_merge(
        ctx.session, draft(c, detail={"recipients": recipients}), T0
    )
    assert created
    # Dispatched at once to the first entry (a role code stands for its group); the
    # officer is copied; entries naming nobody are skipped.
    assert alert.state is AlertState.DISPATCHED and alert.assigned_role == "grid"
    assert alert.dispatched_at == T0 and alert.assignee_id is None
    step = service.steps(ctx.session, alert.id)[-1]
    assert (step.action, step.note) == ("dispatched", f"→ 网格员\n抄送：{officer.display_name}")
    # The grid worker it went to takes it on; the property staff may not.
    with pytest.raises(ValidationFailed):
        service.acknowledge(world["staff"], alert.id, T0)
    notice = notify.notice_of(ctx.session, alert, "raised")
    reached = {r.user_id: r for r in notice.recipients}
    assert set(reached) == {world["grid"].actor.user_id, officer.id}  # quiet: below its least
    assert reached[world["grid"].actor.user_id].email == "grid@example.org"
    sealed = reached[officer.id].phone_sealed
    assert sealed is not None and b"13800138000" not in sealed
    assert ctx.cipher.decrypt(sealed, notify.PHONE_CONTEXT) == "13800138000"
    assert "recipients" not in notice.as_item()  # never broadcast to the console feed
    service.acknowledge(world["grid"], alert.id, T0)


def test_police_only_alerts_go_to_police_recipients_only(ctx: Ctx, world: dict[str, Any]) -> None:
    c = world["tree"].community.id
    _prefs(ctx, world["property"], email="property@example.org")
    _prefs(ctx, world["officer"], email="officer@example.org")
    property_user = ctx.session.get(User, world["property"].actor.user_id)
    assert property_user is not None
    secret = draft(
        c,
        model="key_person",
        fingerprint="kp:recipients",
        police_only=True,
        detail={"recipients": ["property", f"user:{property_user.username}", "officer"]},
    )
    alert, _ = service.raise_or_merge(ctx.session, secret, T0)
    assert alert.state is AlertState.DISPATCHED and alert.assigned_role == "officer"
    emails = {r.email for r in notify.notice_of(ctx.session, alert, "raised").recipients}
    assert emails == {"officer@example.org"}


def test_dispatch_and_escalation_notices_name_their_people(ctx: Ctx, world: dict[str, Any]) -> None:
    t = world["tree"]
    station_chief = as_user(ctx, t.station.id, "station_analyst")
    _prefs(ctx, world["staff"], email="staff@example.org")
    _prefs(ctx, world["property"], email="pm@example.org", min_severity="critical")
    _prefs(ctx, station_chief, email="station@example.org")
    alert, _ = service.raise_or_merge(ctx.session, draft(t.community.id, fingerprint="d"), T0)
    assert notify.notice_of(ctx.session, alert, "raised").recipients == ()  # none configured
    service.dispatch(world["officer"], alert.id, T0, role="property")
    emails = {r.email for r in notify.notice_of(ctx.session, alert, "dispatch").recipients}
    assert emails == {"staff@example.org"}  # the manager wants only critical ones
    service.dispatch(world["officer"], alert.id, T0, user_id=world["grid"].actor.user_id)
    _prefs(ctx, world["grid"], sms=True, phone="139 0013 9000")
    [grid] = notify.notice_of(ctx.session, alert, "dispatch").recipients
    assert grid.user_id == world["grid"].actor.user_id and grid.email is None
    ctx.session.flush()
    moved = escalation.escalate_due(ctx.session, T0 + dt.timedelta(hours=1))
    assert alert in moved
    emails = {r.email for r in notify.notice_of(ctx.session, alert, "escalated").recipients}
    assert emails == {"station@example.org"}


def test_preferences_are_checked_and_the_phone_sealed(ctx: Ctx, world: dict[str, Any]) -> None:
    user_id = world["grid"].actor.user_id
    assert user_id is not None
    for bad, field in (
        ({"email": "not-an-address"}, "email"),
        ({"sms": True}, "phone"),
        ({"phone": "12345"}, "phone"),
        ({"min_severity": "extreme"}, "min_severity"),
    ):
        with pytest.raises(ValidationFailed) as refused:
            _prefs(ctx, world["grid"], **bad)
        assert refused.value.errors[0].field == field
    _prefs(ctx, world["grid"], sms=True, phone="+86 138-0013-8000", min_severity="high")
    pref = notify.prefs_of(ctx.session, user_id)
    assert (pref.sms, pref.min_severity, pref.phone_masked) == (True, Severity.HIGH, "138****8000")
    assert notify.open_phone(ctx.cipher, pref) == "13800138000"
    sealed = pref.phone_enc
    _prefs(ctx, world["grid"], sms=True, phone="13800138000", email="g@example.org")
    assert pref.phone_enc == sealed  # unchanged number: not sealed anew (no audit noise)
    _prefs(ctx, world["grid"])
    assert pref.phone_enc is None and pref.email is None
    loud = {"severity": "high", "sound": True}
    assert notify.sounds_for(pref, loud)
    _prefs(ctx, world["grid"], console_sound=False)
    assert not notify.sounds_for(pref, loud)
    _prefs(ctx, world["grid"], min_severity="critical")
    assert not notify.sounds_for(pref, loud) and notify.sounds_for(
        pref, {**loud, "severity": "critical"}
    )


# --- one open alert per fingerprint --------------------------------------------------------


def test_reopening_gives_way_to_a_newer_open_alert(ctx: Ctx, world: dict[str, Any]) -> None:
    c = world["tree"].community.id
    old, _ = service.raise_or_merge(ctx.session, draft(c, fingerprint="twin"), T0)
    _to_handled(ctx, world, old.id, T0)
    service.close(world["officer"], old.id, T0)
    late = T0 + dt.timedelta(hours=3)  # after the cooldown: a new alert
    new, created = service.raise_or_merge(ctx.session, draft(c, fingerprint="twin", at=late), late)
    assert created and new.id != old.id
    with pytest.raises(ValidationFailed) as refused:
        service.reopen(world["officer"], old.id, late, reason="再次发生")
    assert refused.value.errors[0].message == service._NEWER_OPEN
    # Repeats merge into the open one, not the closed one that came later in time.
    again, created = service.raise_or_merge(
        ctx.session, draft(c, fingerprint="twin", at=late), late
    )
    assert not created and again.id == new.id and again.count == 2


def test_the_same_fingerprint_raised_at_once_by_three_processes_is_one_alert(
    app_node: Any,
) -> None:
    """Three connections raise the same thing at the same instant, each holding its
    transaction open a moment after its insert so the others find nothing yet: the unique
    index of open fingerprints turns the losers' inserts into merges."""
    with app_node.unit_of_work() as ctx:
        c = factories.tree(ctx).community.id
    start = threading.Barrier(3)
    linger = threading.Barrier(3)
    results: list[tuple[int, bool]] = []
    errors: list[BaseException] = []

    def raise_one(i: int) -> None:
        try:
            with app_node.unit_of_work() as ctx:
                start.wait(10)
                alert, created = service.raise_or_merge(
                    ctx.session, draft(c, fingerprint="race", evidence=(500 + i,)), T0
                )
                results.append((alert.id, created))
                with contextlib.suppress(threading.BrokenBarrierError):
                    linger.wait(1)  # the others are blocked on the index, or have merged
        except BaseException as exc:  # reported below, not lost in the thread
            errors.append(exc)

    threads = [threading.Thread(target=raise_one, args=(i,)) for i in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors, errors
    assert len({alert_id for alert_id, _ in results}) == 1
    assert sorted(created for _, created in results) == [False, False, True]
    with app_node.unit_of_work() as ctx:
        [alert] = ctx.session.scalars(select(Alert).where(Alert.fingerprint == "race")).all()
        assert alert.count == 3
        assert service.evidence_ids(ctx.session, alert.id) == [500, 501, 502]
        assert [s.action for s in service.steps(ctx.session, alert.id)] == ["raised"]


def test_migration_closes_twins_stored_before_the_index(tmp_path: Any) -> None:
    """A database at 0010 holding two open alerts of one fingerprint (the old race) is
    brought to 0011: the older stays open, the newer is closed as its duplicate."""
    from anju.bootstrap import bootstrap, initialise
    from anju.core import migrate
    from tests.conftest import ADMIN_PASSWORD, make_settings

    node = bootstrap(make_settings(tmp_path, f"sqlite:///{tmp_path / 'twins.db'}"))
    try:
        initialise(node, admin_password=ADMIN_PASSWORD)
        migrate.downgrade(node.engine, "0010")
        with node.unit_of_work() as ctx:
            c = factories.tree(ctx).community.id
            twins = [
                service._raise(ctx.session, draft(c, fingerprint="old-race"), T0) for _ in range(2)
            ]
            ids = [a.id for a in twins]
        migrate.upgrade(node.engine)
        with node.unit_of_work() as ctx:
            first, second = (ctx.session.get(Alert, i) for i in ids)
            assert first is not None and second is not None
            assert first.state is AlertState.RAISED
            assert (second.state, second.verdict) == (AlertState.CLOSED, Verdict.DUPLICATE)
            step = service.steps(ctx.session, second.id)[-1]
            assert (step.action, step.note) == ("closed", f"重复：同 #{first.id}")
            # From now on the index holds.
            with pytest.raises(IntegrityError), ctx.session.begin_nested():
                service._raise(ctx.session, draft(c, fingerprint="old-race"), T0)
    finally:
        node.dispose()
