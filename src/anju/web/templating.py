"""Rendering console pages: one Jinja2 environment, translations chosen per request."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates
from jinja2 import pass_context

from anju.devices import health
from anju.web import i18n
from anju.web.labels import label_of

TEMPLATE_DIR = Path(__file__).resolve().parent / "templates"


def _local(value: dt.datetime | None, tz: str, fmt: str = "%Y-%m-%d %H:%M") -> str:
    if value is None:
        return ""
    return value.astimezone(ZoneInfo(tz)).strftime(fmt)


@pass_context
def _label(context: Any, value: object) -> str:
    """An enum value's display name in the page's language."""
    return str(context["_"](label_of(value)))


def build_templates(timezone: str) -> Jinja2Templates:
    templates = Jinja2Templates(directory=str(TEMPLATE_DIR))
    env = templates.env
    env.filters["local"] = lambda value, fmt="%Y-%m-%d %H:%M": _local(value, timezone, fmt)
    env.filters["label"] = _label
    # Event dicts carry ISO times: shown in the node's time zone, to the second.
    env.filters["localiso"] = lambda iso: _local(
        dt.datetime.fromisoformat(iso) if iso else None, timezone, "%Y-%m-%d %H:%M:%S"
    )
    env.filters["device_state"] = lambda device: health.state(device)
    env.globals["languages"] = i18n.LANGUAGES
    # A nav item (href, text, "perm|perm") is shown when the actor holds any of its permissions.
    env.tests["allowed_for"] = lambda item, actor: any(actor.can(p) for p in item[2].split("|"))
    return templates


def render(request: Request, name: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    """Render a console template with the request's language, user and CSRF token."""
    lang = i18n.request_language(request)
    trans = i18n.translations(lang)
    signed = getattr(request.state, "signed", None)
    context.update(
        request=request,
        _=trans.gettext,
        ngettext=trans.ngettext,
        lang=lang,
        signed=signed,
        user=signed.user if signed else None,
        actor=signed.actor if signed else None,
        csrf_token=signed.csrf_token if signed else request.cookies.get("anju_login_csrf", ""),
        htmx=request.headers.get("hx-request") == "true",
    )
    templates: Jinja2Templates = request.app.state.templates
    return templates.TemplateResponse(request, name, context, status_code=status_code)
