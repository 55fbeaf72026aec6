"""Escalation (超时升级): an alert nobody acknowledged in time goes up one level of the
police tree — office → station → district — with a fresh deadline for its severity.

:func:`escalate_due` is plain logic over a session and a time; :func:`run` is what the
once-a-minute ticker calls: one transaction, then notification after commit.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from anju.alerts import notify
from anju.alerts.model import AlertState
from anju.alerts.models import Alert, AlertStep
from anju.alerts.service import deadline_for
from anju.core.scope import Actor
from anju.org.models import Level, OrgUnit

log = logging.getLogger(__name__)

# Escalation level → the level of the organisation tree then responsible.
LEVELS: tuple[Level, ...] = (Level.OFFICE, Level.STATION, Level.DISTRICT)
WAITING = (AlertState.RAISED, AlertState.DISPATCHED)
ACTOR = Actor.system("alert-escalation")


def responsible_unit(session: Session, community_id: int, escalation: int) -> OrgUnit | None:
    """The ancestor of the community at the level an escalation reached."""
    community = session.get(OrgUnit, community_id)
    if community is None:
        return None
    ids = [int(part) for part in community.path.strip("/").split("/") if part]
    level = LEVELS[min(escalation, len(LEVELS) - 1)]
    return session.scalars(
        select(OrgUnit).where(OrgUnit.id.in_(ids), OrgUnit.level == level)
    ).first()


def escalate_due(session: Session, now: dt.datetime) -> list[Alert]:
    """Move every alert waiting past its deadline up one level; returns those moved.

    At the top level the deadline is cleared: the district has it, and the console shows it
    as overdue rather than escalating further.
    """
    due = session.scalars(
        select(Alert)
        .where(Alert.ack_deadline <= now, Alert.state.in_(WAITING))
        .order_by(Alert.ack_deadline)
        .with_for_update(skip_locked=True)
    ).all()
    moved: list[Alert] = []
    for alert in due:
        if alert.escalation >= len(LEVELS) - 1:
            alert.ack_deadline = None
            continue
        alert.escalation += 1
        unit = responsible_unit(session, alert.community_id, alert.escalation)
        session.add(
            AlertStep(
                alert_id=alert.id,
                at=now,
                actor_name=ACTOR.username,
                action="escalated",
                from_state=alert.state.value,
                to_state=alert.state.value,
                note=f"→ {unit.name}" if unit is not None else None,
            )
        )
        alert.ack_deadline = now + deadline_for(alert.severity)
        moved.append(alert)
    if moved:
        log.info("escalated %d unacknowledged alert(s)", len(moved))
    return moved


def run(node: Any, now: dt.datetime) -> int:
    """One escalation pass in its own transaction, then its notices; the count moved."""
    with node.unit_of_work(ACTOR) as ctx:
        moved = escalate_due(ctx.session, now)
        notices = [notify.notice_of(ctx.session, a, "escalated") for a in moved]
    notify.send(node, notices)
    return len(moved)
