"""The FastAPI application factory: routes, static files, error pages, security headers."""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from anju import __version__
from anju.alerts import api as alerts_api
from anju.alerts import config_views as alert_config_views
from anju.alerts import views as alert_views
from anju.audit import views as audit_views
from anju.auth import views as auth_views
from anju.bootstrap import Node
from anju.core.errors import NotFound, PermissionDenied, ValidationFailed, field_errors
from anju.events import api as events_api
from anju.events import views as event_views
from anju.faces import api as faces_api
from anju.faces import views as face_views
from anju.org import views as org_views
from anju.web import account, api, console, transfer_views
from anju.web.deps import (
    PASSWORD_PAGE,
    TOTP_PAGE,
    Clock,
    CsrfFailed,
    LoginRequired,
    PasswordChangeRequired,
    SecondFactorRequired,
)
from anju.web.templating import build_templates, render

log = logging.getLogger(__name__)
access_log = logging.getLogger("anju.access")
_INGEST_PATH = re.compile(r"^(/api/v1/events$|/api/v1/ingest/|/ingest/)")

STATIC_DIR = Path(__file__).resolve().parent / "static"

SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
        "connect-src 'self'; frame-ancestors 'none'; base-uri 'self'; form-action 'self'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=()",
}


_CREDENTIAL_IN_PATH = re.compile(r"(anjud_\d+_)[^/]+")


def _wants_json(request: Request) -> bool:
    return request.url.path.startswith("/api/")


def _redirect(request: Request, target: str) -> Response:
    """Send the browser to ``target`` (HTMX requests are told through a header)."""
    if request.headers.get("hx-request") == "true":
        return Response(status_code=401, headers={"HX-Redirect": target})
    return RedirectResponse(target, status_code=303)


def create_app(node: Node, clock: Clock | None = None) -> FastAPI:
    """Build the web app around a bootstrapped node; ``clock`` replaces the wall clock."""
    app = FastAPI(
        title="Anju API",
        version=__version__,
        description="Anju (安居) smart safe community platform: registry API.",
        docs_url="/api/docs",
        openapi_url="/api/openapi.json",
        redoc_url=None,
        swagger_ui_oauth2_redirect_url=None,
    )
    app.state.node = node
    if clock is not None:
        app.state.clock = clock
    app.state.templates = build_templates(node.settings.timezone)
    app.mount("/static", StaticFiles(directory=str(STATIC_DIR)), name="static")
    app.include_router(events_api.router)
    app.include_router(api.router)
    app.include_router(transfer_views.router)
    app.include_router(auth_views.router)
    app.include_router(org_views.router)
    app.include_router(account.router)
    app.include_router(audit_views.router)
    app.include_router(event_views.router)
    app.include_router(alerts_api.router)
    app.include_router(alert_views.router)
    app.include_router(alert_config_views.router)
    app.include_router(faces_api.router)
    app.include_router(face_views.router)
    app.include_router(console.router)

    @app.middleware("http")
    async def headers_and_access_log(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        started = time.perf_counter()
        response = await call_next(request)
        if not request.url.path.startswith("/api/docs"):
            for key, value in SECURITY_HEADERS.items():
                response.headers.setdefault(key, value)
        # The query string is left out on purpose: searches may carry ID numbers; device
        # credentials in push URLs are masked. Devices' successful deliveries come many times
        # a second and are counted on each device's page: they log at DEBUG, failures as usual.
        quiet = request.method == "POST" and response.status_code < 300
        access_log.log(
            logging.DEBUG if quiet and _INGEST_PATH.match(request.url.path) else logging.INFO,
            "%s %s %d %.1fms",
            request.method,
            _CREDENTIAL_IN_PATH.sub(r"\1…", request.url.path),
            response.status_code,
            (time.perf_counter() - started) * 1000,
        )
        return response

    @app.exception_handler(LoginRequired)
    async def _login(request: Request, exc: LoginRequired) -> Response:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        if request.headers.get("hx-request") == "true":
            return Response(status_code=401, headers={"HX-Redirect": "/login"})
        return RedirectResponse(f"/login?next={quote(target)}", status_code=303)

    @app.exception_handler(PasswordChangeRequired)
    async def _password_due(request: Request, exc: PasswordChangeRequired) -> Response:
        return _redirect(request, PASSWORD_PAGE)

    @app.exception_handler(SecondFactorRequired)
    async def _totp_due(request: Request, exc: SecondFactorRequired) -> Response:
        return _redirect(request, TOTP_PAGE)

    @app.exception_handler(NotFound)
    async def _not_found(request: Request, exc: NotFound) -> Response:
        if _wants_json(request):
            return JSONResponse({"detail": "not found"}, status_code=404)
        return render(
            request,
            "error.html",
            status_code=404,
            title="Not found",
            message="This record does not exist or is outside your area.",
        )

    @app.exception_handler(PermissionDenied)
    async def _denied(request: Request, exc: PermissionDenied) -> Response:
        if _wants_json(request):
            return JSONResponse({"detail": f"permission {exc} required"}, status_code=403)
        return render(
            request,
            "error.html",
            status_code=403,
            title="Not allowed",
            message="Your role may not do this.",
        )

    @app.exception_handler(CsrfFailed)
    async def _csrf(request: Request, exc: CsrfFailed) -> Response:
        if _wants_json(request):
            return JSONResponse(
                {"detail": "missing or wrong CSRF token (send X-CSRF-Token)"}, status_code=403
            )
        return render(
            request,
            "error.html",
            status_code=403,
            title="Form expired",
            message="The form was out of date. Go back, reload the page and try again.",
        )

    @app.exception_handler(ValidationFailed)
    async def _invalid(request: Request, exc: ValidationFailed) -> Response:
        body = {"detail": [{"field": e.field, "message": e.message} for e in exc.errors]}
        return JSONResponse(body, status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
        # Unknown console pages get the console's error page, not a JSON answer.
        if exc.status_code == 404 and not _wants_json(request):
            return render(
                request,
                "error.html",
                status_code=404,
                title="Not found",
                message="This page does not exist.",
            )
        return JSONResponse(
            {"detail": exc.detail},
            status_code=exc.status_code,
            headers=getattr(exc, "headers", None),
        )

    @app.exception_handler(RequestValidationError)
    async def _bad_request(request: Request, exc: RequestValidationError) -> Response:
        body = {"detail": [{"field": e.field, "message": e.message} for e in field_errors(exc)]}
        return JSONResponse(body, status_code=422)

    @app.get("/favicon.ico", include_in_schema=False)
    def favicon() -> Response:
        return RedirectResponse("/static/favicon.svg", status_code=301)

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> dict[str, str]:
        return {"status": "ok", "version": __version__}

    return app
