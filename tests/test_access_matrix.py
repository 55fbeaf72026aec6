"""Every route × every role: allowed, denied (403), not found (404) or sent to sign in.

The table below is the specification, written by hand and independent of the app's own
resource specs. The test fails when the app has a route the table does not cover, so a new
route cannot slip in without someone deciding who may use it (deny by default, proven).
Each request runs in a transaction that is rolled back, so destructive routes leave the
world as it was for the next role.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi import Request
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from anju.auth.defaults import DEFAULT_ROLES
from anju.web.app import create_app
from anju.web.deps import SESSION_COOKIE, get_session
from tests import access_world

PERMS = {code: set(perms) for code, _n, _e, _p, perms in DEFAULT_ROLES}
POLICE = {code for code, _n, _e, police, _p in DEFAULT_ROLES if police}


@dataclass(frozen=True)
class Rule:
    """Who may use a route: ``perm`` all-of (``a+b``) or any-of (``a|b``); None = signed in."""

    perm: str | None
    record: str | None = None  # the kind of record named in the path
    police_only: bool = False
    public: bool = False
    needs_person: bool = False
    body: Any = None
    skip: str | None = None  # covered by a dedicated test instead
    action: str | None = None  # fills ``{action}`` in the path


PUBLIC = Rule(None, public=True)

# kind → (view permission, edit permission, police only, verifiable, deletable)
KINDS: dict[str, tuple[str, str, bool, bool, bool]] = {
    "people": ("person.view", "person.edit", False, True, True),
    "houses": ("house.view", "house.edit", False, True, True),
    "residencies": ("house.view", "house.edit", False, False, False),
    "buildings": ("address.view", "address.edit", False, False, True),
    "units": ("address.view", "address.edit", False, False, True),
    "organisations": ("organisation.view", "organisation.edit", False, True, True),
    "vehicles": ("vehicle.view", "vehicle.edit", False, False, True),
    "parking": ("vehicle.view", "vehicle.edit", False, False, True),
    "staff": ("staff.view", "staff.edit", False, False, True),
    "devices": ("device.view", "device.edit", False, False, True),
    "grids": ("grid.view", "grid.edit", False, False, True),
    "incidents": ("incident.view", "incident.edit", True, False, True),
}


def _table() -> dict[tuple[str, str], Rule]:
    t: dict[tuple[str, str], Rule] = {
        ("GET", "/login"): PUBLIC,
        ("POST", "/login"): Rule(
            None, public=True, skip="sign-in is tested in test_auth / test_web_console"
        ),
        ("POST", "/logout"): Rule(None),
        # One's own account: every signed-in role (the forced steps are tested in test_auth).
        ("GET", "/account/password"): Rule(None),
        ("POST", "/account/password"): Rule(None, body={"current_password": "not-it"}),
        ("GET", "/account/tokens"): Rule(None),
        ("POST", "/account/tokens"): Rule(None, body={"name": "access matrix"}),
        ("POST", "/account/tokens/{token_id}/revoke"): Rule(
            None, skip="one's own tokens (or token.manage in scope): tested in test_auth"
        ),
        ("GET", "/account/totp"): Rule(None),
        ("POST", "/account/totp"): Rule(None, body={"action": "start"}),
        ("GET", "/account/notifications"): Rule(None),
        ("POST", "/account/notifications"): Rule(None, body={"min_severity": "high"}),
        ("GET", "/login/totp"): Rule(None, public=True, skip="needs a pending sign-in"),
        ("POST", "/login/totp"): Rule(None, public=True, skip="tested in test_auth"),
        ("GET", "/lang/{code}"): PUBLIC,
        ("GET", "/healthz"): PUBLIC,
        ("GET", "/favicon.ico"): PUBLIC,
        ("GET", "/api/openapi.json"): PUBLIC,
        ("GET", "/api/docs"): PUBLIC,
        ("GET", "/"): Rule("stats.view|self.view|person.view|house.view|vehicle.view|device.view"),
        ("GET", "/me"): Rule("self.view", needs_person=True),
        ("GET", "/org"): Rule("org.view"),
        ("POST", "/org/{unit_id}/children"): Rule(
            "org.manage", body={"code": "MTXNEW", "name": "矩阵新建"}
        ),
        ("POST", "/org/{unit_id}/edit"): Rule("org.manage", body={"name": "甲一小区"}),
        ("GET", "/lookup/{ref}"): Rule("person.view"),
        ("POST", "/people/{record_id}/reveal"): Rule(
            "person.view+person.view_sensitive",
            record="people",
            body={"fields": "id_number", "reason": "access matrix"},
        ),
        ("POST", "/residencies/{record_id}/end"): Rule(
            "house.edit", record="residencies", body={"end_date": "2026-11-01"}
        ),
        ("GET", "/transfer"): Rule("registry.import|registry.export"),
        ("POST", "/transfer/import"): Rule("registry.import"),
        ("GET", "/transfer/export"): Rule("registry.export"),
        ("POST", "/transfer/export"): Rule("export.sensitive"),
        ("GET", "/transfer/template"): Rule("registry.import"),
        ("GET", "/admin/users"): Rule("user.manage"),
        ("POST", "/admin/users"): Rule("user.manage"),
        ("POST", "/admin/users/{user_id}/active"): Rule("user.manage"),
        ("POST", "/admin/users/{user_id}/reset-password"): Rule("user.manage"),
        ("GET", "/admin/roles"): Rule("role.manage"),
        ("POST", "/admin/roles/{code}"): Rule("role.manage"),
        ("GET", "/admin/audit"): Rule("audit.view"),
        ("POST", "/api/v1/people/lookup"): Rule(
            "person.view", record="people", body={"id_number": "{A1 id_number}"}
        ),
        ("POST", "/api/v1/people/{record_id}/reveal"): Rule(
            "person.view+person.view_sensitive",
            record="people",
            body={"fields": ["phone"], "reason": "access matrix"},
        ),
        ("POST", "/api/v1/residencies/{record_id}/end"): Rule(
            "house.edit", record="residencies", body={"end_date": "2026-11-01"}
        ),
        ("GET", "/api/v1/stats"): Rule("stats.view"),
        # Event pages of the console.
        ("GET", "/events"): Rule("event.view"),
        ("GET", "/events/export"): Rule("event.view+registry.export"),
        ("GET", "/events/{record_id}/image"): Rule("event.view", record="events"),
        ("GET", "/trajectory"): Rule("trajectory.view"),
        ("POST", "/devices/{record_id}/test-event"): Rule(
            "device.edit",
            record="devices",
            skip="writes in its own transaction; tested in test_events_console",
        ),
        ("POST", "/api/v1/events"): Rule("event.ingest", body=[]),
        ("GET", "/api/v1/events"): Rule("event.view"),
        ("GET", "/api/v1/events/{record_id}/image"): Rule("event.view", record="events"),
        ("GET", "/api/v1/trajectory"): Rule(
            "trajectory.view", skip="needs a subject; tested in test_events"
        ),
        ("GET", "/api/v1/events/live"): Rule("event.view", skip="a stream; tested in test_events"),
        # Alerts (预警中心): the transitions check state, role and assignee as well; each is
        # tested for every role and scope in test_alerts / test_alerts_web.
        ("GET", "/alerts"): Rule("alert.view"),
        ("GET", "/alerts/stats"): Rule("alert.view"),
        ("GET", "/alerts/{record_id}"): Rule("alert.view", record="alerts"),
        ("GET", "/alerts/{record_id}/photos/{step_id}/{index}"): Rule(
            "alert.view", record="alerts", skip="needs a feedback photo; tested in test_alerts_web"
        ),
        # The transitions (one row per route here, the other actions in ALERT_ACTIONS):
        # refusals by permission and scope; a step the state does not allow is a 422.
        ("POST", "/alerts/{record_id}/{action}"): Rule(
            "alert.view+alert.dispatch",
            record="alerts",
            action="dispatch",
            body={"role": "officer"},
        ),
        ("GET", "/api/v1/alerts"): Rule("alert.view"),
        ("GET", "/api/v1/alerts/{record_id}"): Rule("alert.view", record="alerts"),
        ("POST", "/api/v1/alerts/{record_id}/{action}"): Rule(
            "alert.view+alert.dispatch",
            record="alerts",
            action="dispatch",
            body={"role": "officer"},
        ),
        ("GET", "/api/v1/alerts/live"): Rule(
            "alert.view", skip="a stream; tested in test_alerts_web"
        ),
        # Alert model configuration (预警模型配置) per organisation unit.
        ("GET", "/admin/alert-models"): Rule("alert.configure"),
        ("POST", "/admin/alert-models/{unit_id}/{code}"): Rule(
            "alert.configure", skip="a model code in the path; tested in test_engine"
        ),
        ("GET", "/admin/watchlists"): Rule("watchlist.manage"),
        ("POST", "/admin/watchlists"): Rule(
            "watchlist.manage", skip="adds in the request's unit of work; tested in test_engine"
        ),
        ("POST", "/admin/watchlists/{entry_id}/delete"): Rule(
            "watchlist.manage", skip="needs an entry; tested in test_engine"
        ),
        ("POST", "/admin/watchlists/{entry_id}/faces"): Rule(
            "watchlist.manage", skip="needs a face entry; tested in test_faces_web"
        ),
        # Faces (人脸): a person's faces and 人证核验, search by photo (police), strangers.
        # Uploads without a photo are refused (422) after the permission checks.
        ("GET", "/people/{record_id}/faces"): Rule("person.view+face.view", record="people"),
        ("POST", "/people/{record_id}/faces"): Rule(
            "person.view+face.view+face.manage", record="people"
        ),
        ("POST", "/people/{record_id}/faces/remove"): Rule(
            "person.view+face.view+face.manage", record="people"
        ),
        ("POST", "/people/{record_id}/faces/verify"): Rule(
            "person.view+face.view+face.manage", record="people"
        ),
        ("GET", "/faces/search"): Rule("face.search"),
        ("POST", "/faces/search"): Rule("face.search", body={"reason": "access matrix"}),
        ("GET", "/faces/strangers"): Rule("face.view"),
        ("GET", "/faces/strangers/{record_id}"): Rule(
            "face.view", skip="needs a stranger cluster; tested in test_faces_web"
        ),
        ("POST", "/faces/strangers/{record_id}/{action}"): Rule(
            "face.view+face.manage", skip="needs stranger clusters; tested in test_faces_web"
        ),
        ("GET", "/events/{record_id}/face"): Rule("event.view+face.view", record="events"),
        ("POST", "/events/{record_id}/not-this-person"): Rule(
            "event.view+face.view+face.manage",
            record="events",
            skip="needs a face-matched event; tested in test_faces_web",
        ),
        ("POST", "/api/v1/faces/search"): Rule("face.search"),
        ("POST", "/api/v1/faces/verify"): Rule("face.manage"),
        ("GET", "/api/v1/people/{record_id}/faces"): Rule("person.view+face.view", record="people"),
        ("POST", "/api/v1/people/{record_id}/faces"): Rule(
            "person.view+face.view+face.manage", record="people"
        ),
        ("DELETE", "/api/v1/people/{record_id}/faces"): Rule(
            "person.view+face.view+face.manage", record="people"
        ),
        ("GET", "/api/v1/faces/strangers"): Rule("face.view"),
        ("GET", "/api/v1/faces/strangers/{record_id}"): Rule(
            "face.view", skip="needs a stranger cluster; tested in test_faces_web"
        ),
        ("POST", "/api/v1/faces/strangers/{record_id}/{action}"): Rule(
            "face.view+face.manage", skip="needs stranger clusters; tested in test_faces_web"
        ),
        ("POST", "/api/v1/events/{record_id}/not-this-person"): Rule(
            "event.view+face.view+face.manage",
            record="events",
            skip="needs a face-matched event; tested in test_faces_web",
        ),
        # Device and carrier pushes carry their own credentials (path, token, signature).
        ("POST", "/api/v1/ingest/hikvision/{credential}"): Rule(
            None, public=True, skip="device credential in the path; tested in test_ingest_http"
        ),
        ("POST", "/api/v1/ingest/ctwing"): Rule(
            None, public=True, skip="push token; tested in test_ingest_http"
        ),
        ("GET", "/api/v1/ingest/onenet"): Rule(
            None, public=True, skip="push signature; tested in test_ingest_http"
        ),
        ("POST", "/api/v1/ingest/onenet"): Rule(
            None, public=True, skip="push signature; tested in test_ingest_http"
        ),
    }
    for kind, (view, edit, police, verifiable, deletable) in KINDS.items():
        c, a = f"/{kind}", f"/api/v1/{kind}"
        t[("GET", c)] = Rule(view, police_only=police)
        t[("GET", c + "/new")] = Rule(edit, police_only=police)
        t[("POST", c + "/new")] = Rule(edit, police_only=police)
        t[("GET", c + "/{record_id}")] = Rule(view, record=kind, police_only=police)
        t[("GET", c + "/{record_id}/edit")] = Rule(edit, record=kind, police_only=police)
        t[("POST", c + "/{record_id}/edit")] = Rule(edit, record=kind, police_only=police)
        t[("GET", a)] = Rule(view, police_only=police)
        t[("POST", a)] = Rule(edit, police_only=police, body={})
        t[("GET", a + "/{record_id}")] = Rule(view, record=kind, police_only=police)
        t[("PATCH", a + "/{record_id}")] = Rule(edit, record=kind, police_only=police, body={})
        if deletable:
            t[("POST", c + "/{record_id}/delete")] = Rule(edit, record=kind, police_only=police)
            t[("DELETE", a + "/{record_id}")] = Rule(edit, record=kind, police_only=police)
        if verifiable:
            t[("POST", c + "/{record_id}/verify")] = Rule(
                f"{view}+registry.verify", record=kind, police_only=police
            )
            t[("POST", a + "/{record_id}/verify")] = Rule(
                f"{view}+registry.verify", record=kind, police_only=police
            )
    return t


TABLE = _table()
# The other steps of the alert loop, on both transition routes (the table holds one per route).
ALERT_ACTIONS = [
    (("POST", path), Rule(perm, record="alerts", action=action, body=body))
    for path in ("/alerts/{record_id}/{action}", "/api/v1/alerts/{record_id}/{action}")
    for action, perm, body in (
        ("acknowledge", "alert.view+alert.handle", None),
        ("handle", "alert.view+alert.handle", {"feedback": "矩阵", "verdict": "true_alarm"}),
        ("close", "alert.view+alert.close", None),
        ("reopen", "alert.view+alert.dispatch", {"reason": "矩阵"}),
    )
]
CALLERS = [*access_world.ROLE_CODES, "anonymous", "outsider"]


def _holds(role: str, spec: str) -> bool:
    perms = PERMS[role]
    if "*" in perms:
        return True
    if "|" in spec:
        return any(p in perms for p in spec.split("|"))
    return all(p in perms for p in spec.split("+"))


def expected(rule: Rule, caller: str) -> str:
    if rule.public:
        return "ok"
    if caller == "anonymous":
        return "login"
    role = "officer" if caller == "outsider" else caller
    if rule.perm is None:
        return "ok"
    if rule.police_only and role not in POLICE:
        return "notfound"
    if not _holds(role, rule.perm):
        return "forbidden"
    if rule.needs_person and role != "resident":
        return "notfound"
    if rule.record and caller == "outsider":
        return "notfound"
    return "ok"


def outcome(resp: Any, method: str, path: str) -> str:
    location = resp.headers.get("location", "")
    if path == "/logout" and resp.status_code == 303 and location == "/login":
        return "ok"  # signing out sends you to the sign-in page (not "?next=": that is a refusal)
    if resp.status_code == 401 or (
        resp.status_code in (302, 303, 307) and location.startswith("/login")
    ):
        return "login"
    if resp.status_code == 403:
        return "forbidden"
    if resp.status_code == 404:
        return "notfound"
    if resp.status_code >= 500:
        return f"error {resp.status_code}"
    return "ok"


def app_routes(app: Any) -> set[tuple[str, str]]:
    """(method, path) of every route, including those of included routers."""

    def walk(routes: Any, prefix: str) -> Iterator[tuple[str, str]]:
        for route in routes:
            if hasattr(route, "original_router"):  # FastAPI ≥ 0.16x keeps included routers lazy
                yield from walk(route.original_router.routes, prefix + route.include_context.prefix)
            elif isinstance(route, APIRoute) or getattr(route, "methods", None):
                for method in route.methods:
                    if method != "HEAD":
                        yield method, prefix + route.path

    return set(walk(app.routes, ""))


@pytest.fixture(scope="module")
def world(app_node):
    return access_world.build(app_node, prefix="M")


@pytest.fixture(scope="module")
def matrix_app(app_node, world):
    app = create_app(app_node)

    def rolled_back_session(request: Request) -> Iterator[Session]:
        with app_node.engine.connect() as conn:
            outer = conn.begin()
            session = app_node.sessions(bind=conn, join_transaction_mode="create_savepoint")
            session.info["ip"] = "testclient"
            try:
                yield session
                session.commit()
            finally:
                session.close()
                outer.rollback()

    app.dependency_overrides[get_session] = rolled_back_session
    return app


def test_table_covers_every_route(matrix_app):
    routes = app_routes(matrix_app)
    missing = sorted(routes - set(TABLE))
    stale = sorted(set(TABLE) - routes)
    assert not missing, f"routes with no access rule (add them to TABLE): {missing}"
    assert not stale, f"TABLE names routes the app no longer has: {stale}"


def _path(path: str, rule: Rule, world: access_world.World) -> str:
    records = world.records["A1"]
    return (
        path.replace("{record_id}", str(records.get(rule.record or "", 0)))
        .replace("{ref}", "person")
        .replace("{code}", "guard" if "/roles/" in path else "en")
        .replace("{user_id}", str(world.accounts["guard"].user_id))
        .replace("{unit_id}", str(world.units["OA"].id))
        .replace("{action}", rule.action or "")
    )


@pytest.mark.parametrize("caller", CALLERS)
def test_every_route_for(caller, matrix_app, world):
    account = world.accounts.get(caller)
    cookies = {SESSION_COOKIE: account.token} if account else {}
    headers = {"X-CSRF-Token": account.csrf} if account else {}
    wrong: list[str] = []
    with TestClient(matrix_app, cookies=cookies, follow_redirects=False) as client:
        for (method, path), rule in [*sorted(TABLE.items()), *ALERT_ACTIONS]:
            if rule.skip:
                continue
            url = _path(path, rule, world)
            kwargs: dict[str, Any] = {"headers": headers}
            if method in ("POST", "PATCH", "DELETE"):
                if path.startswith("/api/"):
                    body = rule.body if isinstance(rule.body, list) else dict(rule.body or {})
                    for key, value in body.items() if isinstance(body, dict) else ():
                        if value == "{A1 id_number}":
                            body[key] = access_world.ID_NUMBERS["A1"]
                    kwargs["json"] = body
                else:
                    kwargs["data"] = {
                        "csrf_token": account.csrf if account else "",
                        **(rule.body or {}),
                    }
            resp = client.request(method, url, **kwargs)
            # A sign-out deletes the cookie in the client: put the session back for the next.
            client.cookies.clear()
            if account:
                client.cookies.set(SESSION_COOKIE, account.token)
            want, got = expected(rule, caller), outcome(resp, method, path)
            if want != got:
                wrong.append(f"{method} {url}: expected {want}, got {got} ({resp.status_code})")
    assert not wrong, f"{caller}:\n" + "\n".join(wrong)
