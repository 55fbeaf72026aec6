"""Console page of the audit log (审计日志): newest first, filtered, with readable diffs."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import func, select

from anju.audit.changes import AUDITED_TABLES
from anju.audit.models import AuditEntry
from anju.audit.service import Action, AuditFilter, entries
from anju.core.crud import Page
from anju.core.errors import PermissionDenied
from anju.web.deps import ConsoleCtx
from anju.web.resources import RESOURCES
from anju.web.templating import render

router = APIRouter(include_in_schema=False)

PERMISSION = "audit.view"
# Console pages of records, by table: an entry about one links to it.
RECORD_PAGES = {r.model.__tablename__: r.name for r in RESOURCES}
DIFF_KEYS = ("before", "after", "redacted")


@dataclass(frozen=True)
class Change:
    """One column of a record change: its value before and after (None: not there)."""

    name: str
    before: str | None
    after: str | None


@dataclass(frozen=True)
class Shown:
    """An audit entry as the page shows it."""

    entry: AuditEntry
    link: str | None
    changes: list[Change] = field(default_factory=list)
    redacted: list[str] = field(default_factory=list)
    facts: list[tuple[str, str]] = field(default_factory=list)


def _text(value: Any) -> str:
    if value is None:
        return "∅"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ", ".join(_text(v) for v in value) or "[]"
    if isinstance(value, dict):
        return json.dumps(value, ensure_ascii=False, sort_keys=True)
    return str(value)


def present(entry: AuditEntry) -> Shown:
    """Turn a stored entry into rows of a diff and a list of other facts."""
    detail: Mapping[str, Any] = entry.detail if isinstance(entry.detail, dict) else {}
    before = detail.get("before") if isinstance(detail.get("before"), dict) else None
    after = detail.get("after") if isinstance(detail.get("after"), dict) else None
    names = sorted({*(before or {}), *(after or {})})
    if before is None and after is not None:
        # A new record: the fields it was given, not the empty ones.
        names = [n for n in names if after[n] is not None]
    changes = [
        Change(
            name,
            _text(before[name]) if before is not None and name in before else None,
            _text(after[name]) if after is not None and name in after else None,
        )
        for name in names
    ]
    facts = [(k, _text(v)) for k, v in sorted(detail.items()) if k not in DIFF_KEYS]
    page = RECORD_PAGES.get(entry.entity or "")
    link = (
        f"/{page}/{entry.entity_id}"
        if page and entry.entity_id and entry.action != Action.RECORD_DELETE
        else None
    )
    redacted = detail.get("redacted")
    return Shown(
        entry=entry,
        link=link,
        changes=changes,
        redacted=[str(r) for r in redacted] if isinstance(redacted, list) else [],
        facts=facts,
    )


def _day_start(text: str, tz: str) -> dt.datetime | None:
    """Local midnight at the start of a ``YYYY-MM-DD`` day, in UTC; None if not a date."""
    try:
        day = dt.date.fromisoformat(text)
    except ValueError:
        return None
    return dt.datetime.combine(day, dt.time(), ZoneInfo(tz)).astimezone(dt.UTC)


@router.get("/admin/audit", response_class=HTMLResponse, name="audit_log")
def audit_page(
    request: Request,
    ctx: ConsoleCtx,
    action: str = "",
    actor: str = "",
    entity: str = "",
    entity_id: str = "",
    since: str = "",
    until: str = "",
    page: int = 1,
) -> Response:
    """The audit log for those who may read it (``audit.view``)."""
    if not ctx.actor.can(PERMISSION):
        raise PermissionDenied(PERMISSION)
    settings = request.app.state.node.settings
    start = _day_start(since, settings.timezone) if since else None
    end = _day_start(until, settings.timezone) if until else None
    wanted = AuditFilter(
        action=action.strip(),
        actor=actor.strip(),
        entity=entity.strip(),
        entity_id=entity_id.strip(),
        since=start,
        until=None if end is None else end + dt.timedelta(days=1),  # "until" is inclusive
    )
    stmt = entries(ctx.actor, wanted)
    size = settings.page_size
    page = max(1, page)
    total = ctx.session.scalar(select(func.count()).select_from(stmt.order_by(None).subquery()))
    items = ctx.session.scalars(stmt.limit(size).offset((page - 1) * size)).all()
    result = Page(items=[present(e) for e in items], total=total or 0, page=page, size=size)
    params = {
        k: v
        for k, v in {
            "action": action,
            "actor": actor,
            "entity": entity,
            "entity_id": entity_id,
            "since": since,
            "until": until,
        }.items()
        if v
    }
    template = (
        "audit/_table.html" if request.headers.get("hx-target") == "results" else "audit/list.html"
    )
    return render(
        request,
        template,
        page=result,
        params=params,
        query=urlencode(params),
        actions=[a.value for a in Action],
        entities=sorted(AUDITED_TABLES),
        bad_dates=(since and start is None) or (until and end is None),
    )
