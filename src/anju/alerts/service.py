"""The alert service: drafts become alerts (merging repeats), and alerts go round the closed
loop (预警指令下发、处置、反馈闭环) one recorded step at a time.

Every transition checks, in this order: the alert is visible to the caller (in scope, and
police-only alerts only for police roles; otherwise :class:`NotFound`), the caller's
permission (:class:`PermissionDenied`), the alert's state and the caller's part in it
(:class:`ValidationFailed` naming what is wrong). Each writes one :class:`AlertStep` with who
and when. Time is passed in; nothing here reads the wall clock.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from anju.alerts.model import AlertDraft, AlertState, Severity, Verdict
from anju.alerts.models import Alert, AlertEvidence, AlertStep
from anju.auth.models import User
from anju.core.context import Ctx
from anju.core.errors import NotFound, PermissionDenied, ValidationFailed
from anju.core.scope import Actor, restrict
from anju.events.blobs import FolderBlobs
from anju.org.models import OrgUnit

log = logging.getLogger(__name__)

# After an alert is closed, the same fingerprint is absorbed into it (count, last seen)
# instead of raising a new one, for this long; per model where a model needs another.
COOLDOWN = dt.timedelta(minutes=30)
COOLDOWNS: dict[str, dt.timedelta] = {"device_health": dt.timedelta(hours=2)}
EVIDENCE_CAP = 50  # events kept as evidence per alert; the count keeps going up beyond it
MERGE_ATTEMPTS = 3  # a lost race on a new fingerprint is retried as a merge

# How long an alert may wait for acknowledgement before it goes up one level.
ACK_DEADLINES: dict[Severity, dt.timedelta] = {
    Severity.CRITICAL: dt.timedelta(minutes=5),
    Severity.HIGH: dt.timedelta(minutes=15),
    Severity.MEDIUM: dt.timedelta(minutes=60),
    Severity.LOW: dt.timedelta(hours=4),
}
SEVERITY_RANK = {s: i for i, s in enumerate(Severity)}

# Who an alert can be dispatched to as a role: the role group and the roles in it.
ROLE_GROUPS: dict[str, tuple[str, ...]] = {
    "officer": ("officer",),  # 社区民警
    "grid": ("grid_worker",),  # 网格员
    "property": ("property_manager", "property_staff", "guard"),  # 物业
}
# How a role group is named in the timeline (stored text, Chinese like titles).
ROLE_GROUP_NAMES: dict[str, str] = {"officer": "社区民警", "grid": "网格员", "property": "物业"}
# A role code named in a model's recipients stands for its group.
GROUP_OF_ROLE: dict[str, str] = {code: g for g, codes in ROLE_GROUPS.items() for code in codes}
USER_PREFIX = "user:"  # a recipient naming one account: "user:<username>"
OPEN_STATES = (AlertState.RAISED, AlertState.DISPATCHED, AlertState.ACKNOWLEDGED)
MAX_PHOTOS = 6
MAX_PHOTO_BYTES = 5 * 1024 * 1024
MAX_NOTE = 2000

# Messages (English ids; the console shows them translated).
_WRONG_STATE = "this alert is not in a state that allows this"
_NOT_YOURS = "this alert was dispatched to someone else"
_NO_TARGET = "choose a person or a role to dispatch to"
_BAD_ROLE = "unknown role to dispatch to"
_BAD_USER = "this account cannot take this alert (outside the alert's area or not allowed)"
_NOT_POLICE_TASK = "police-only alerts can only be dispatched to police"
_NEED_FEEDBACK = "write what was found and done"
_NEED_REASON = "give a reason"
_BAD_PHOTO = "photos must be JPEG images of at most 5 MB"
_TOO_MANY_PHOTOS = "at most 6 photos"
_TOO_LONG = "at most 2000 characters"
_NEWER_OPEN = "a newer alert of the same thing is open; handle that one"


def deadline_for(severity: Severity) -> dt.timedelta:
    return ACK_DEADLINES[severity]


def cooldown_for(model: str) -> dt.timedelta:
    return COOLDOWNS.get(model, COOLDOWN)


# --- drafts into alerts -------------------------------------------------------------------


def raise_or_merge(session: Session, draft: AlertDraft, now: dt.datetime) -> tuple[Alert, bool]:
    """The alert a draft belongs to, and whether it is new.

    An alert not yet closed with the same fingerprint (in the same community) absorbs the
    draft: count and last seen go up, its evidence is added (up to :data:`EVIDENCE_CAP`),
    its severity rises if the draft's is higher; no step is written, or repeats would bury
    the timeline. A closed one absorbs it the same way during its model's cooldown, without
    reopening. Otherwise a new alert is raised — and, when its model's configuration names
    recipients (``detail["recipients"]``), dispatched to the first of them at once.

    Safe across processes: the work runs in a savepoint taken before the read (on SQLite
    that takes the write lock, so the read is current) and the alert is read ``FOR
    UPDATE`` (PostgreSQL: a concurrent merge waits instead of losing a count). Two
    processes that both find nothing and insert collide on the unique index of open
    fingerprints; the loser rolls back its savepoint and merges into the winner's alert.
    """
    for attempt in range(MERGE_ATTEMPTS):
        try:
            with session.begin_nested():
                latest = session.scalars(
                    select(Alert)
                    .where(
                        Alert.community_id == draft.community_id,
                        Alert.fingerprint == draft.fingerprint,
                    )
                    # The open alert if there is one (there is at most one), else the
                    # latest closed one, whose cooldown may still absorb the draft.
                    .order_by(
                        (Alert.state == AlertState.CLOSED).asc(),
                        Alert.last_at.desc(),
                        Alert.id.desc(),
                    )
                    .limit(1)
                    .with_for_update()
                ).first()
                if latest is not None and _absorbs(latest, draft, now):
                    _merge(session, latest, draft)
                    return latest, False
                return _raise(session, draft, now), True
        except IntegrityError:
            if attempt + 1 == MERGE_ATTEMPTS:
                raise
            # Another process raised the same fingerprint since we looked: merge into it.
            log.info(
                "a %s alert of community %d was raised elsewhere at the same time; merging",
                draft.model,
                draft.community_id,
            )
    raise AssertionError("unreachable")  # pragma: no cover


def _merge(session: Session, alert: Alert, draft: AlertDraft) -> None:
    alert.count += 1
    alert.last_at = max(alert.last_at, draft.at)
    if (
        alert.state is not AlertState.CLOSED
        and SEVERITY_RANK[draft.severity] > SEVERITY_RANK[alert.severity]
    ):
        alert.severity = draft.severity
    _add_evidence(session, alert.id, draft.evidence)


def _raise(session: Session, draft: AlertDraft, now: dt.datetime) -> Alert:
    alert = Alert(
        model=draft.model,
        community_id=draft.community_id,
        fingerprint=draft.fingerprint,
        title=draft.title[:200],
        severity=draft.severity,
        state=AlertState.RAISED,
        police_only=draft.police_only,
        place=draft.place[:200] if draft.place else None,
        subject_type=draft.subject_type,
        subject_value=draft.subject_value,
        person_id=draft.person_id,
        vehicle_id=draft.vehicle_id,
        house_id=draft.house_id,
        device_id=draft.device_id,
        first_at=draft.at,
        last_at=draft.at,
        count=1,
        escalation=0,
        ack_deadline=now + deadline_for(draft.severity),
        detail=dict(draft.detail),
    )
    session.add(alert)
    session.flush()  # a twin raised by another process conflicts here
    _add_evidence(session, alert.id, draft.evidence)
    session.add(
        AlertStep(
            alert_id=alert.id,
            at=now,
            actor_name=draft.model,
            action="raised",
            to_state=AlertState.RAISED.value,
        )
    )
    entries = draft.detail.get("recipients")
    if isinstance(entries, list) and entries:
        _dispatch_to_configured(session, alert, [str(e) for e in entries], now)
    return alert


def _absorbs(alert: Alert, draft: AlertDraft, now: dt.datetime) -> bool:
    if alert.state is not AlertState.CLOSED:
        return True
    closed = alert.closed_at or alert.updated_at
    return now < closed + cooldown_for(alert.model)


def _add_evidence(session: Session, alert_id: int, event_ids: Sequence[int]) -> None:
    if not event_ids:
        return
    held = set(
        session.scalars(select(AlertEvidence.event_id).where(AlertEvidence.alert_id == alert_id))
    )
    room = EVIDENCE_CAP - len(held)
    for event_id in dict.fromkeys(event_ids):
        if room <= 0:
            return
        if event_id not in held:
            session.add(AlertEvidence(alert_id=alert_id, event_id=event_id))
            held.add(event_id)
            room -= 1


def _open_twin(session: Session, alert: Alert) -> int | None:
    """Another open alert of the same fingerprint, if one was raised after this closed."""
    return session.scalar(
        select(Alert.id).where(
            Alert.community_id == alert.community_id,
            Alert.model == alert.model,
            Alert.fingerprint == alert.fingerprint,
            Alert.state != AlertState.CLOSED,
            Alert.id != alert.id,
        )
    )


# --- recipients (who gets it) ---------------------------------------------------------------


def recipient_target(entry: str) -> tuple[str, str] | None:
    """What a model configuration's recipient names: ``("role", group)`` for a role group
    (``officer``, ``grid``, ``property``) or a role code in one (``grid_worker``, ``guard``
    …), ``("user", username)`` for ``user:<username>``; None when it names neither."""
    text = entry.strip()
    if text.startswith(USER_PREFIX) and text[len(USER_PREFIX) :].strip():
        return "user", text[len(USER_PREFIX) :].strip()
    group = text if text in ROLE_GROUPS else GROUP_OF_ROLE.get(text)
    return ("role", group) if group else None


def _dispatch_to_configured(
    session: Session, alert: Alert, entries: list[str], now: dt.datetime
) -> None:
    """下发 by configuration: the new alert goes to the first recipient that may take it
    (a role group of its community, or an account); the others are copied (抄送) — they
    are notified, the first is who must acknowledge. Entries that name nobody, or someone
    who may not take the alert (out of its area, not police for a police-only alert), are
    skipped with a warning."""
    community = session.get(OrgUnit, alert.community_id)
    assert community is not None
    names: list[str] = []
    for entry in entries:
        target = _configured_target(session, alert, community, entry)
        if target is None:
            log.warning(
                "alert %d: recipient %r skipped (unknown or may not take it)", alert.id, entry
            )
            continue
        user, role = target
        if not names:
            alert.assignee_id = user.id if user is not None else None
            alert.assigned_role = role
        names.append(user.display_name if user is not None else ROLE_GROUP_NAMES[role or ""])
    if not names:
        return
    note = f"→ {names[0]}" + (f"\n抄送：{'、'.join(names[1:])}" if names[1:] else "")
    session.add(
        AlertStep(
            alert_id=alert.id,
            at=now,
            actor_name=alert.model,
            action="dispatched",
            from_state=AlertState.RAISED.value,
            to_state=AlertState.DISPATCHED.value,
            note=note,
        )
    )
    alert.state = AlertState.DISPATCHED
    alert.dispatched_at = now


def _configured_target(
    session: Session, alert: Alert, community: OrgUnit, entry: str
) -> tuple[User | None, str | None] | None:
    target = recipient_target(entry)
    if target is None:
        return None
    kind, value = target
    if kind == "role":
        if alert.police_only and value != "officer":
            return None
        return None, value
    user = session.scalars(select(User).where(User.username == value)).first()
    if user is None or not user.active or not _may_take(user, alert, community):
        return None
    return user, None


def people_for(session: Session, alert: Alert, action: str) -> list[User]:
    """The accounts a notice of ``action`` on the alert is for (their preferences decide
    how, or whether, it reaches them): on raising, the recipients its model's configuration
    names; on dispatch, the assignee or the holders of the role group it went to; on
    escalation, the police who may dispatch at the unit it went up to. Only accounts that
    may take the alert (active, its community in their area, police for police-only)."""
    community = session.get(OrgUnit, alert.community_id)
    if community is None:
        return []
    users: list[User] = []
    if action == "raised":
        entries = alert.detail.get("recipients") if isinstance(alert.detail, dict) else None
        for entry in entries if isinstance(entries, list) else []:
            target = _configured_target(session, alert, community, str(entry))
            if target is None:
                continue
            user, role = target
            users.extend([user] if user is not None else _holders(session, alert, community, role))
    elif action in ("dispatch", "dispatched", "delegated"):
        if alert.assignee_id is not None:
            user = session.get(User, alert.assignee_id)
            users.extend([user] if user is not None and user.active else [])
        elif alert.assigned_role:
            users.extend(_holders(session, alert, community, alert.assigned_role))
    elif action == "escalated":
        from anju.alerts.escalation import responsible_unit  # it imports this module

        unit = responsible_unit(session, alert.community_id, alert.escalation)
        if unit is not None:
            users.extend(
                u
                for u in session.scalars(
                    select(User).where(User.org_unit_id == unit.id, User.active.is_(True))
                )
                if u.role.police and _holds(u, "alert.dispatch")
            )
    return list({u.id: u for u in users}.values())


def _holders(session: Session, alert: Alert, community: OrgUnit, group: str | None) -> list[User]:
    """Active accounts of a role group whose area holds the alert's community."""
    codes = ROLE_GROUPS.get(group or "", ())
    if not codes:
        return []
    # The community's area is its own unit and its ancestors (the ids in its path).
    units = [int(part) for part in community.path.strip("/").split("/") if part]
    users = session.scalars(
        select(User).where(
            User.role_code.in_(codes), User.active.is_(True), User.org_unit_id.in_(units)
        )
    ).all()
    return [u for u in users if _may_take(u, alert, community)]


def _holds(user: User, permission: str) -> bool:
    perms = set(user.role.permissions)
    return "*" in perms or permission in perms


# --- reading -------------------------------------------------------------------------------


@dataclass(frozen=True)
class AlertFilter:
    """What the alert centre asks for."""

    state: str | None = None  # an AlertState value, or "open" for every state but closed
    model: str | None = None
    severity: str | None = None
    community_id: int | None = None


def visible(actor: Actor) -> Select[Alert]:
    """Alerts the actor may see: in scope, and police-only ones only for police roles."""
    stmt = restrict(select(Alert), Alert, actor)
    if not actor.police:
        stmt = stmt.where(Alert.police_only.is_(False))
    return stmt


def _require(actor: Actor, permission: str) -> None:
    if not actor.can(permission):
        raise PermissionDenied(permission)


def get(ctx: Ctx, alert_id: int) -> Alert:
    """One alert the caller may see, else :class:`NotFound` (never "exists but not yours")."""
    _require(ctx.actor, "alert.view")
    alert = ctx.session.scalars(visible(ctx.actor).where(Alert.id == alert_id)).first()
    if alert is None:
        raise NotFound("alerts", alert_id)
    return alert


def search(ctx: Ctx, f: AlertFilter, page: int = 1, size: int = 50) -> tuple[list[Alert], int]:
    """Alerts in the caller's area, most recently seen first."""
    _require(ctx.actor, "alert.view")
    stmt = visible(ctx.actor)
    if f.state == "open":
        stmt = stmt.where(Alert.state != AlertState.CLOSED)
    elif f.state:
        stmt = stmt.where(Alert.state == _enum(AlertState, f.state, "state"))
    if f.severity:
        stmt = stmt.where(Alert.severity == _enum(Severity, f.severity, "severity"))
    if f.model:
        stmt = stmt.where(Alert.model == f.model)
    if f.community_id:
        stmt = stmt.where(Alert.community_id == f.community_id)
    total = ctx.session.scalar(select(func.count()).select_from(stmt.subquery())) or 0
    rows = ctx.session.scalars(
        stmt.order_by(Alert.last_at.desc(), Alert.id.desc())
        .offset((max(page, 1) - 1) * size)
        .limit(size)
    ).all()
    return list(rows), total


def _enum(kind: Any, value: str, field: str) -> Any:
    try:
        return kind(value)
    except ValueError:
        raise ValidationFailed.one(field, "not a valid choice") from None


def evidence_ids(session: Session, alert_id: int) -> list[int]:
    return list(
        session.scalars(
            select(AlertEvidence.event_id)
            .where(AlertEvidence.alert_id == alert_id)
            .order_by(AlertEvidence.event_id)
        )
    )


def assignees(ctx: Ctx, alert: Alert) -> list[User]:
    """Accounts the alert could be dispatched to by this caller (for the dispatch form)."""
    community = ctx.session.get(OrgUnit, alert.community_id)
    users = ctx.session.scalars(
        select(User).join(OrgUnit, User.org_unit_id == OrgUnit.id).where(User.active.is_(True))
    ).all()
    return [
        u
        for u in users
        if community is not None and _may_take(u, alert, community) and _may_send(ctx.actor, u)
    ]


# --- transitions ---------------------------------------------------------------------------


def _who(ctx: Ctx) -> tuple[int | None, str]:
    if ctx.actor.user_id is None:
        return None, ctx.actor.username
    user = ctx.session.get(User, ctx.actor.user_id)
    return ctx.actor.user_id, (user.display_name if user else ctx.actor.username)


def _step(
    ctx: Ctx,
    alert: Alert,
    action: str,
    now: dt.datetime,
    to: AlertState | None,
    note: str | None = None,
    photos: list[str] | None = None,
) -> AlertStep:
    actor_id, name = _who(ctx)
    step = AlertStep(
        alert_id=alert.id,
        at=now,
        actor_id=actor_id,
        actor_name=name,
        action=action,
        from_state=alert.state.value,
        to_state=(to or alert.state).value,
        note=note or None,
        photos=photos or [],
    )
    ctx.session.add(step)
    if to is not None:
        alert.state = to
    return step


def _in_state(alert: Alert, *states: AlertState) -> None:
    if alert.state not in states:
        raise ValidationFailed.one("state", _WRONG_STATE)


def _text(value: str | None, field: str, required: str | None = None) -> str | None:
    text = (value or "").strip()
    if required and not text:
        raise ValidationFailed.one(field, required)
    if len(text) > MAX_NOTE:
        raise ValidationFailed.one(field, _TOO_LONG)
    return text or None


def _may_take(user: User, alert: Alert, community: OrgUnit) -> bool:
    """Whether an account can be given the alert: allowed to handle, the community in its
    area, and a police role for a police-only alert."""
    if not _holds(user, "alert.handle"):
        return False
    if alert.police_only and not user.role.police:
        return False
    return community.path.startswith(user.org_unit.path)


def _may_send(actor: Actor, user: User) -> bool:
    """Non-police roles pass work only to non-police accounts (property to property)."""
    return actor.police or not user.role.police


def dispatch(
    ctx: Ctx,
    alert_id: int,
    now: dt.datetime,
    *,
    user_id: int | None = None,
    role: str | None = None,
    note: str | None = None,
) -> Alert:
    """下发 — give the alert to an account or to a role group (officer, grid, property) of its
    community. Police handing it to property is a delegation (交办), recorded as such."""
    alert = get(ctx, alert_id)
    _require(ctx.actor, "alert.dispatch")
    _in_state(alert, *OPEN_STATES)
    text = _text(note, "note")
    community = ctx.session.get(OrgUnit, alert.community_id)
    assert community is not None
    property_task: bool
    if user_id is not None:
        user = ctx.session.get(User, user_id)
        if (
            user is None
            or not user.active
            or not _may_take(user, alert, community)
            or not _may_send(ctx.actor, user)
        ):
            raise ValidationFailed.one("user_id", _BAD_USER)
        alert.assignee_id, alert.assigned_role = user.id, None
        property_task = not user.role.police
        target = user.display_name
    elif role:
        if role not in ROLE_GROUPS:
            raise ValidationFailed.one("role", _BAD_ROLE)
        if alert.police_only and role != "officer":
            raise ValidationFailed.one("role", _NOT_POLICE_TASK)
        if not ctx.actor.police and role != "property":
            raise ValidationFailed.one("role", _BAD_ROLE)
        alert.assignee_id, alert.assigned_role = None, role
        property_task = role == "property"
        target = ROLE_GROUP_NAMES[role]
    else:
        raise ValidationFailed.one("user_id", _NO_TARGET)
    action = "delegated" if ctx.actor.police and property_task else "dispatched"
    _step(ctx, alert, action, now, AlertState.DISPATCHED, note=_join(target, text))
    alert.dispatched_at = now
    alert.acknowledged_at = None
    alert.ack_deadline = now + deadline_for(alert.severity)
    return alert


def _join(target: str, note: str | None) -> str:
    """The step's note: to whom, then what the dispatcher said ("→ 网格员：请核实")."""
    return f"→ {target}" + (f"\n{note}" if note else "")


def _role_code(ctx: Ctx) -> str | None:
    if ctx.actor.user_id is None:
        return None
    user = ctx.session.get(User, ctx.actor.user_id)
    return user.role_code if user else None


def is_mine(ctx: Ctx, alert: Alert) -> bool:
    """Whether the caller is the one the alert waits for: its assignee, a holder of the role
    it was dispatched to, or — once escalated — police who may dispatch in its area."""
    actor = ctx.actor
    if actor.user_id is None or "*" in actor.permissions:
        return True
    if alert.assignee_id is not None and alert.assignee_id == actor.user_id:
        return True
    group = ROLE_GROUPS.get(alert.assigned_role or "", ())
    if _role_code(ctx) in group:
        return True
    return alert.escalation > 0 and actor.police and actor.can("alert.dispatch")


def acknowledge(ctx: Ctx, alert_id: int, now: dt.datetime, note: str | None = None) -> Alert:
    """签收 — the assignee (or a holder of the role it went to) takes the alert on."""
    alert = get(ctx, alert_id)
    _require(ctx.actor, "alert.handle")
    _in_state(alert, AlertState.DISPATCHED)
    if not is_mine(ctx, alert):
        raise ValidationFailed.one("state", _NOT_YOURS)
    text = _text(note, "note")
    _step(ctx, alert, "acknowledged", now, AlertState.ACKNOWLEDGED, note=text)
    alert.acknowledged_at = now
    if alert.assignee_id is None and ctx.actor.user_id is not None:
        alert.assignee_id = ctx.actor.user_id
    alert.ack_deadline = None
    return alert


def handle(
    ctx: Ctx,
    alert_id: int,
    now: dt.datetime,
    *,
    feedback: str,
    verdict: str,
    photos: Sequence[bytes] = (),
    blobs: FolderBlobs | None = None,
) -> Alert:
    """处置反馈 — what was found and done, with photos and the outcome (属实/误报/重复)."""
    alert = get(ctx, alert_id)
    _require(ctx.actor, "alert.handle")
    _in_state(alert, AlertState.ACKNOWLEDGED)
    if not is_mine(ctx, alert):
        raise ValidationFailed.one("state", _NOT_YOURS)
    text = _text(feedback, "feedback", required=_NEED_FEEDBACK)
    outcome = _enum(Verdict, verdict, "verdict")
    photos = [p for p in photos if p]
    if len(photos) > MAX_PHOTOS:
        raise ValidationFailed.one("photos", _TOO_MANY_PHOTOS)
    for data in photos:
        if len(data) > MAX_PHOTO_BYTES or not data.startswith(b"\xff\xd8\xff"):
            raise ValidationFailed.one("photos", _BAD_PHOTO)
    keys = [blobs.put(data) for data in photos] if blobs is not None else []
    _step(ctx, alert, "handled", now, AlertState.HANDLED, note=text, photos=keys)
    alert.verdict = outcome
    return alert


def close(ctx: Ctx, alert_id: int, now: dt.datetime, note: str | None = None) -> Alert:
    """办结 — the loop is closed; the cooldown for its fingerprint starts."""
    alert = get(ctx, alert_id)
    _require(ctx.actor, "alert.close")
    _in_state(alert, AlertState.HANDLED)
    _step(ctx, alert, "closed", now, AlertState.CLOSED, note=_text(note, "note"))
    alert.closed_at = now
    alert.ack_deadline = None
    return alert


def reopen(ctx: Ctx, alert_id: int, now: dt.datetime, reason: str) -> Alert:
    """重新打开 — back to raised with a reason (feedback not good enough, it happened again)."""
    alert = get(ctx, alert_id)
    _require(ctx.actor, "alert.dispatch")
    _in_state(alert, AlertState.HANDLED, AlertState.CLOSED)
    text = _text(reason, "reason", required=_NEED_REASON)
    if alert.state is AlertState.CLOSED and _open_twin(ctx.session, alert) is not None:
        # At most one open alert per fingerprint (the unique index): the newer one stands.
        raise ValidationFailed.one("state", _NEWER_OPEN)
    _step(ctx, alert, "reopened", now, AlertState.RAISED, note=text)
    alert.closed_at = None
    alert.verdict = None
    alert.acknowledged_at = None
    alert.ack_deadline = now + deadline_for(alert.severity)
    return alert


def steps(session: Session, alert_id: int) -> list[AlertStep]:
    return list(
        session.scalars(
            select(AlertStep).where(AlertStep.alert_id == alert_id).order_by(AlertStep.id)
        )
    )
