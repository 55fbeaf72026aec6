"""Authentication hardening end to end: throttling, sessions, CSRF, passwords, API tokens,
device credentials and the second factor — over HTTP on SQLite and PostgreSQL.

Time comes from a fake clock given to the app, so locks and expiries are tested without
sleeping. Every secret a test makes is added to ``SENSITIVE_VALUES``: the run fails if one
ever reaches a log line.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import itertools
import json
import re

import pyotp
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import delete, select
from typer.testing import CliRunner

from anju.auth import service as auth_service
from anju.auth import throttle
from anju.auth import tokens as auth_tokens
from anju.auth.models import ApiToken, LoginAttempt, LoginSession, TokenKind, User
from anju.bootstrap import bootstrap, initialise
from anju.config import Settings
from anju.core import migrate
from anju.core.db import utcnow
from anju.core.errors import ValidationFailed
from anju.devices.models import Device, DeviceKind, DeviceStatus
from anju.registry import schemas
from anju.registry import service as registry
from anju.web.app import create_app
from tests import factories as f
from tests.conftest import ADMIN_PASSWORD, SENSITIVE_VALUES, TEST_KEY, make_settings
from tests.web_helpers import csrf_of, sign_in

PASSWORD = "a-good-password-1"
_seq = itertools.count(1)


class FakeClock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = utcnow()

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += dt.timedelta(**delta)


@pytest.fixture(autouse=True)
def forget_attempts(app_node):
    """Each test starts with no failed sign-ins on record (the node is shared per module)."""
    with app_node.unit_of_work() as ctx:
        ctx.session.execute(delete(LoginAttempt))


@pytest.fixture
def clock():
    return FakeClock()


@pytest.fixture
def client(app_node, clock):
    with TestClient(create_app(app_node, clock=clock)) as c:
        yield c


@pytest.fixture
def place(app_node):
    """A community of its own (one per test), with a house in it."""
    with app_node.unit_of_work() as ctx:
        t = f.tree(ctx)
        house = f.house(ctx, t.community)
        return {"community_id": t.community.id, "office_id": t.office.id, "house_id": house.id}


def make_user(node, place, role="officer", must_change=False) -> str:
    """An account in the test's community office; returns its user name."""
    username = f"u{next(_seq)}_{role}"
    with node.unit_of_work() as ctx:
        auth_service.create_user(
            ctx.session,
            username=username,
            display_name=username,
            password=PASSWORD,
            role_code=role,
            org_unit_id=place["office_id"],
            must_change_password=must_change,
        )
    return username


def post_login(client, username, password, next_="/"):
    token = client.get("/login").cookies.get("anju_login_csrf") or client.cookies.get(
        "anju_login_csrf"
    )
    return client.post(
        "/login",
        data={"username": username, "password": password, "csrf_token": token, "next": next_},
        follow_redirects=False,
    )


def replace_cookie(client, name, value):
    """Put ``value`` in place of a cookie the server set (same domain and path)."""
    for cookie in list(client.cookies.jar):
        if cookie.name == name:
            client.cookies.delete(name, domain=cookie.domain, path=cookie.path)
            client.cookies.set(name, value, domain=cookie.domain, path=cookie.path)
            return
    client.cookies.set(name, value)


def user_row(node, username) -> User:
    with node.unit_of_work() as ctx:
        user = ctx.session.scalar(select(User).where(User.username == username))
        ctx.session.expunge(user)
        return user


def live_sessions(node, username) -> int:
    with node.unit_of_work() as ctx:
        rows = ctx.session.scalars(
            select(LoginSession)
            .join(User, User.id == LoginSession.user_id)
            .where(User.username == username, LoginSession.revoked_at.is_(None))
        ).all()
        return len(rows)


# --- passwords and throttling -------------------------------------------------------------


def test_wrong_password_is_refused_and_changes_nothing(client, app_node, place):
    name = make_user(app_node, place)
    before = user_row(app_node, name)
    resp = post_login(client, name, "not-the-password")
    assert resp.status_code == 401
    assert "用户名或密码错误" in resp.text
    assert "anju_session" not in resp.cookies
    after = user_row(app_node, name)
    assert after.last_login_at is None and after.password_hash == before.password_hash
    assert live_sessions(app_node, name) == 0
    with app_node.unit_of_work() as ctx:
        attempts = ctx.session.scalars(
            select(LoginAttempt).where(LoginAttempt.username == name)
        ).all()
        assert [(a.success, a.ip) for a in attempts] == [(False, "testclient")]


def test_a_mistyped_identity_is_neither_stored_nor_logged(client, app_node, caplog):
    typed = f.resident_id_for("440305", "19900101", 17)  # an ID number in the name box
    for _ in range(5):
        assert post_login(client, typed, "whatever-it-is").status_code == 401
    assert post_login(client, typed, "whatever-it-is").status_code == 429  # still throttled
    with app_node.unit_of_work() as ctx:
        names = set(ctx.session.scalars(select(LoginAttempt.username)))
    assert len(names) == 1 and typed not in next(iter(names))
    assert typed not in caplog.text and typed[:-1] not in caplog.text
    assert "failed sign-in for account unknown '4403**********" in caplog.text


def test_five_failures_lock_the_account_until_the_lock_ends(client, app_node, place, clock):
    name = make_user(app_node, place)
    other = make_user(app_node, place)
    for _ in range(5):
        clock.advance(seconds=30)
        assert post_login(client, name, "wrong-password").status_code == 401
    locked = post_login(client, name, PASSWORD)
    assert locked.status_code == 429
    assert "登录失败次数过多" in locked.text and "15 分钟后再试" in locked.text
    assert int(locked.headers["retry-after"]) == 15 * 60
    assert live_sessions(app_node, name) == 0
    # Only that account: another one from the same address signs in.
    assert post_login(client, other, PASSWORD).status_code == 303
    clock.advance(minutes=14)
    assert post_login(client, name, PASSWORD).status_code == 429
    clock.advance(minutes=1, seconds=1)
    assert post_login(client, name, PASSWORD).status_code == 303
    assert live_sessions(app_node, name) == 1


def test_a_success_clears_the_account_count(client, app_node, place, clock):
    name = make_user(app_node, place)
    for _ in range(4):
        assert post_login(client, name, "wrong-password").status_code == 401
    assert post_login(client, name, PASSWORD).status_code == 303
    client.cookies.clear()
    for _ in range(4):
        assert post_login(client, name, "wrong-password").status_code == 401
    assert post_login(client, name, PASSWORD).status_code == 303


def test_address_is_blocked_across_user_names_and_a_success_does_not_lift_it(
    client, app_node, place, clock
):
    for i in range(19):
        clock.advance(seconds=5)
        assert post_login(client, f"nobody{i}", "guess-guess").status_code == 401
    # One good sign-in in the middle of a guessing run does not wipe the run out…
    assert post_login(client, "admin", ADMIN_PASSWORD).status_code == 303
    client.cookies.clear()
    assert post_login(client, "nobody-last", "guess-guess").status_code == 401
    # …and the twentieth failure blocks the address for everyone, the admin too.
    refused = post_login(client, "admin", ADMIN_PASSWORD)
    assert refused.status_code == 429 and "登录失败次数过多" in refused.text
    clock.advance(minutes=16)
    assert post_login(client, "admin", ADMIN_PASSWORD).status_code == 303


def test_lock_numbers_come_from_settings(app_node, clock):
    policy = throttle.LoginPolicy.from_settings(
        app_node.settings.model_copy(update={"login_max_failures": 2, "login_lockout_minutes": 1})
    )
    with app_node.unit_of_work() as ctx:
        for _ in range(2):
            throttle.record_attempt(ctx.session, "someone", "10.0.0.9", False, clock())
        lock = throttle.lock_for(ctx.session, "someone", "10.0.0.9", clock(), policy)
        assert lock is not None and lock.reason == throttle.LockReason.ACCOUNT
        assert lock.minutes_left(clock()) == 1
        later = clock() + dt.timedelta(minutes=1, seconds=1)
        assert not throttle.is_locked(ctx.session, "someone", "10.0.0.9", later, policy)


# --- sessions and CSRF --------------------------------------------------------------------


def test_expired_session_cookie_is_sent_to_sign_in(client, app_node, place, clock):
    name = make_user(app_node, place)
    sign_in(client, name, PASSWORD)
    assert client.get("/people", follow_redirects=False).status_code == 200
    clock.advance(hours=app_node.settings.session_hours, seconds=1)
    resp = client.get("/people", follow_redirects=False)
    assert resp.status_code == 303 and resp.headers["location"].startswith("/login")
    assert client.get("/api/v1/people").status_code == 401


def test_tampered_cookie_is_sent_to_sign_in(client, app_node, place):
    name = make_user(app_node, place)
    sign_in(client, name, PASSWORD)
    token = client.cookies.get("anju_session")
    flipped = token[:-1] + ("A" if token[-1] != "A" else "B")
    replace_cookie(client, "anju_session", flipped)
    resp = client.get("/", follow_redirects=False)
    assert resp.status_code == 303 and resp.headers["location"].startswith("/login")
    replace_cookie(client, "anju_session", "made-up")
    assert client.get("/people", follow_redirects=False).status_code == 303
    assert client.get("/api/v1/people").status_code == 401


def test_missing_csrf_is_refused_and_changes_nothing(client, app_node, place):
    name = make_user(app_node, place)
    sign_in(client, name, PASSWORD)
    before = user_row(app_node, name).password_hash
    resp = client.post(
        "/account/password",
        data={
            "current_password": PASSWORD,
            "new_password": "another-password-2",
            "repeat_password": "another-password-2",
        },
    )
    assert resp.status_code == 403
    made = client.post("/account/tokens", data={"name": "x", "csrf_token": "wrong"})
    assert made.status_code == 403
    assert user_row(app_node, name).password_hash == before
    with app_node.unit_of_work() as ctx:
        assert ctx.session.scalar(select(ApiToken).where(ApiToken.name == "x")) is None


def test_logout_ends_the_session(client, app_node, place):
    name = make_user(app_node, place)
    csrf = sign_in(client, name, PASSWORD)
    stolen = client.cookies.get("anju_session")
    resp = client.post("/logout", data={"csrf_token": csrf}, follow_redirects=False)
    assert resp.status_code == 303 and resp.headers["location"] == "/login"
    assert live_sessions(app_node, name) == 0
    replace_cookie(client, "anju_session", stolen)
    assert client.get("/", follow_redirects=False).status_code == 303


def test_sign_ins_and_sign_outs_are_in_the_audit_log(client, app_node, place):
    from anju.audit.models import AuditEntry

    name = make_user(app_node, place)
    assert post_login(client, name, "wrong-password").status_code == 401
    csrf = sign_in(client, name, PASSWORD)
    client.post("/logout", data={"csrf_token": csrf})
    with app_node.unit_of_work() as ctx:
        user_id = ctx.session.scalar(select(User.id).where(User.username == name))
        rows = ctx.session.scalars(
            select(AuditEntry)
            .where(AuditEntry.entity == "users", AuditEntry.entity_id == str(user_id))
            .where(AuditEntry.action.in_(["login.failure", "login.success", "logout"]))
            .order_by(AuditEntry.id)
        ).all()
        assert [(r.action, r.actor_name) for r in rows] == [
            ("login.failure", "system"),
            ("login.success", name),
            ("logout", name),
        ]
        assert rows[0].detail["reason"] == "password" and rows[0].ip == "testclient"
        assert PASSWORD not in str([r.detail for r in rows])


# --- password change ----------------------------------------------------------------------


def _change(client, csrf, current, new, repeat=None):
    return client.post(
        "/account/password",
        data={
            "csrf_token": csrf,
            "current_password": current,
            "new_password": new,
            "repeat_password": new if repeat is None else repeat,
        },
        follow_redirects=False,
    )


def test_password_change(app_node, place, clock):
    name = make_user(app_node, place)
    app = create_app(app_node, clock=clock)
    with TestClient(app) as mine, TestClient(app) as elsewhere:
        csrf = sign_in(mine, name, PASSWORD)
        sign_in(elsewhere, name, PASSWORD)
        before = user_row(app_node, name).password_hash

        wrong = _change(mine, csrf, "not-my-password", "brand-new-password")
        assert wrong.status_code == 422 and "当前密码错误" in wrong.text
        differ = _change(mine, csrf, PASSWORD, "brand-new-password", "brand-new-passwort")
        assert differ.status_code == 422 and "两次输入的新密码不一致" in differ.text
        short = _change(mine, csrf, PASSWORD, "short")
        assert short.status_code == 422 and "密码至少需要 10 个字符" in short.text
        same = _change(mine, csrf, PASSWORD, PASSWORD)
        assert same.status_code == 422 and "不能与当前密码相同" in same.text
        assert user_row(app_node, name).password_hash == before

        ok = _change(mine, csrf, PASSWORD, "brand-new-password")
        assert ok.status_code == 200 and "密码已修改" in ok.text
        row = user_row(app_node, name)
        assert row.password_changed_at is not None and row.password_hash != before
        # This session lives on; the other one has ended.
        assert mine.get("/", follow_redirects=False).status_code == 200
        assert elsewhere.get("/", follow_redirects=False).status_code == 303
        assert live_sessions(app_node, name) == 1
    with TestClient(app) as fresh:
        assert post_login(fresh, name, PASSWORD).status_code == 401
        assert post_login(fresh, name, "brand-new-password").status_code == 303


def test_password_equal_to_user_name_is_refused(app_node, place):
    long_name = f"longname{next(_seq)}x"
    with app_node.unit_of_work() as ctx:
        user = auth_service.create_user(
            ctx.session,
            username=long_name,
            display_name="x",
            password=PASSWORD,
            role_code="guard",
            org_unit_id=place["office_id"],
        )
        with pytest.raises(ValidationFailed) as err:
            auth_service.change_password(ctx.session, user, PASSWORD, long_name.upper(), utcnow())
        assert err.value.errors[0].field == "new_password"
        assert "user name" in err.value.errors[0].message


def test_forced_password_change(client, app_node, place):
    name = make_user(app_node, place, must_change=True)
    assert post_login(client, name, PASSWORD).status_code == 303
    for path in ("/", "/people", "/account/tokens", "/account/totp"):
        resp = client.get(path, follow_redirects=False)
        assert resp.status_code == 303, path
        assert resp.headers["location"] == "/account/password"
    assert client.get("/api/v1/people").status_code == 403
    page = client.get("/account/password")
    assert page.status_code == 200 and "请先设置您自己的密码" in page.text
    done = _change(client, csrf_of(page.text), PASSWORD, "my-own-password-9")
    assert done.status_code == 303 and done.headers["location"] == "/"
    assert client.get("/", follow_redirects=False).status_code == 200
    assert user_row(app_node, name).must_change_password is False


def test_generated_admin_password_must_be_changed(tmp_path):
    node = bootstrap(make_settings(tmp_path, f"sqlite:///{tmp_path / 'g.db'}"))
    try:
        result = initialise(node)
        assert result.admin_password
        SENSITIVE_VALUES.add(result.admin_password)
        assert user_row(node, "admin").must_change_password is True
    finally:
        node.dispose()
    other = tmp_path / "given"
    other.mkdir()
    node = bootstrap(make_settings(other, f"sqlite:///{other / 'g.db'}"))
    try:
        initialise(node, admin_password=ADMIN_PASSWORD)
        assert user_row(node, "admin").must_change_password is False
    finally:
        node.dispose()


# --- API tokens ---------------------------------------------------------------------------

TOKEN_RE = re.compile(r'id="token-value">([^<]+)<')


def _make_token(client, csrf, name="script", days=90, **extra) -> str:
    resp = client.post(
        "/account/tokens", data={"csrf_token": csrf, "name": name, "days": days, **extra}
    )
    assert resp.status_code == 200, resp.text[:300]
    assert resp.headers["cache-control"] == "no-store"
    token = TOKEN_RE.search(resp.text).group(1)
    SENSITIVE_VALUES.add(token)
    return token


def test_api_token_acts_as_its_owner(app_node, place, clock):
    name = make_user(app_node, place, role="property_manager")
    elsewhere = {}
    with app_node.unit_of_work() as ctx:
        other = f.tree(ctx)
        elsewhere["house"] = f.house(ctx, other.community).id
    app = create_app(app_node, clock=clock)
    with TestClient(app) as browser:
        csrf = sign_in(browser, name, PASSWORD)
        token = _make_token(browser, csrf)
        assert token.startswith("anju_")
        # Shown once: the list shows only the prefix.
        listed = browser.get("/account/tokens").text
        assert token not in listed and token[:13] in listed
    bearer = {"Authorization": f"Bearer {token}"}
    with TestClient(app) as script:
        assert script.get("/api/v1/houses", headers=bearer).status_code == 200
        mine = script.get(f"/api/v1/houses/{place['house_id']}", headers=bearer)
        assert mine.status_code == 200
        # Scoped like its owner: another community's house does not exist for it.
        assert script.get(f"/api/v1/houses/{elsewhere['house']}", headers=bearer).status_code == 404
        # A write without any CSRF token: a bearer token needs none.
        made = script.post(
            "/api/v1/buildings",
            json={"community_id": place["community_id"], "number": "77", "floors": 6},
            headers=bearer,
        )
        assert made.status_code == 201, made.text
        # Its owner's role: a property manager may not see incidents (police only).
        assert script.get("/api/v1/incidents", headers=bearer).status_code in (403, 404)
        # No console with a token.
        assert script.get("/", headers=bearer, follow_redirects=False).status_code == 303
    with app_node.unit_of_work() as ctx:
        row = ctx.session.scalar(select(ApiToken).where(ApiToken.prefix == token[:13]))
        assert row.token_hash == hashlib.sha256(token.encode()).hexdigest()
        assert row.last_used_at is not None and row.kind == TokenKind.PERSONAL
        stored = [str(v) for v in (row.name, row.prefix, row.token_hash)]
        assert all(token not in v for v in stored)


def test_bearer_with_a_session_cookie_still_needs_csrf(app_node, place, clock):
    name = make_user(app_node, place, role="property_manager")
    with TestClient(create_app(app_node, clock=clock)) as browser:
        csrf = sign_in(browser, name, PASSWORD)
        token = _make_token(browser, csrf)
        body = {"community_id": place["community_id"], "number": "78"}
        bearer = {"Authorization": f"Bearer {token}"}
        refused = browser.post("/api/v1/buildings", json=body, headers=bearer)
        assert refused.status_code == 403
        allowed = browser.post(
            "/api/v1/buildings", json=body, headers={**bearer, "X-CSRF-Token": csrf}
        )
        assert allowed.status_code == 201


def test_revoked_expired_and_unknown_tokens_are_refused(app_node, place, clock, caplog):
    name = make_user(app_node, place)
    app = create_app(app_node, clock=clock)
    with TestClient(app) as browser:
        csrf = sign_in(browser, name, PASSWORD)
        revoked = _make_token(browser, csrf, name="to revoke")
        short = _make_token(browser, csrf, name="short-lived", days=30)
        with app_node.unit_of_work() as ctx:
            row_id = ctx.session.scalar(select(ApiToken.id).where(ApiToken.prefix == revoked[:13]))
        resp = browser.post(
            f"/account/tokens/{row_id}/revoke", data={"csrf_token": csrf}, follow_redirects=False
        )
        assert resp.status_code == 303
    with TestClient(app) as script:
        gone = script.get("/api/v1/people", headers={"Authorization": f"Bearer {revoked}"})
        assert gone.status_code == 401 and gone.json()["detail"] == "API token has been revoked"
        assert gone.headers["www-authenticate"] == "Bearer"
        ok = script.get("/api/v1/people", headers={"Authorization": f"Bearer {short}"})
        assert ok.status_code == 200
        clock.advance(days=30, seconds=1)
        late = script.get("/api/v1/people", headers={"Authorization": f"Bearer {short}"})
        assert late.status_code == 401 and late.json()["detail"] == "API token has expired"
        made_up = script.get("/api/v1/people", headers={"Authorization": "Bearer anju_nope"})
        assert made_up.status_code == 401 and "not recognised" in made_up.json()["detail"]
        # Nothing was changed by a refused write.
        write = script.post(
            "/api/v1/buildings",
            json={"community_id": place["community_id"], "number": "79"},
            headers={"Authorization": f"Bearer {revoked}"},
        )
        assert write.status_code == 401
    log = caplog.text
    assert revoked not in log and short not in log
    assert "refused (revoked)" in log and revoked[:13] in log


def test_revoking_someone_elses_token_is_not_found(app_node, place, clock):
    owner, stranger = make_user(app_node, place), make_user(app_node, place)
    app = create_app(app_node, clock=clock)
    with TestClient(app) as a, TestClient(app) as b:
        _make_token(a, sign_in(a, owner, PASSWORD))
        with app_node.unit_of_work() as ctx:
            owner_id = ctx.session.scalar(select(User.id).where(User.username == owner))
            token_id = ctx.session.scalar(select(ApiToken.id).where(ApiToken.user_id == owner_id))
        resp = b.post(
            f"/account/tokens/{token_id}/revoke",
            data={"csrf_token": sign_in(b, stranger, PASSWORD)},
        )
        assert resp.status_code == 404
        with app_node.unit_of_work() as ctx:
            assert ctx.session.get(ApiToken, token_id).revoked_at is None


def test_integration_tokens_are_for_token_managers(app_node, place, clock):
    service_account = make_user(app_node, place, role="integration")
    plain = make_user(app_node, place, role="property_manager")
    with app_node.unit_of_work() as ctx:
        target_id = ctx.session.scalar(select(User.id).where(User.username == service_account))
    app = create_app(app_node, clock=clock)
    with TestClient(app) as admin:
        csrf = sign_in(admin, "admin", ADMIN_PASSWORD)
        page = admin.get("/account/tokens").text
        assert "系统对接令牌" in page and service_account in page
        token = _make_token(
            admin, csrf, name="gateway", days=0, kind="integration", user_id=target_id
        )
    with app_node.unit_of_work() as ctx:
        row = ctx.session.scalar(select(ApiToken).where(ApiToken.prefix == token[:13]))
        assert row.kind == TokenKind.INTEGRATION and row.user_id == target_id
        assert row.expires_at is None and row.created_by_id != target_id
    with TestClient(app) as script:
        resp = script.get("/api/v1/people", headers={"Authorization": f"Bearer {token}"})
        assert resp.status_code == 200
    with TestClient(app) as manager:
        csrf = sign_in(manager, plain, PASSWORD)
        assert "系统对接令牌" not in manager.get("/account/tokens").text
        refused = manager.post(
            "/account/tokens",
            data={
                "csrf_token": csrf,
                "name": "sneaky",
                "kind": "integration",
                "user_id": target_id,
            },
        )
        assert refused.status_code == 403
    with app_node.unit_of_work() as ctx:
        assert ctx.session.scalar(select(ApiToken).where(ApiToken.name == "sneaky")) is None


# --- device credentials -------------------------------------------------------------------


def _device(ctx, community_id, status=DeviceStatus.ACTIVE) -> Device:
    return registry.devices.create(
        ctx,
        schemas.DeviceCreate(
            community_id=community_id,
            code=f"DEV{next(_seq):05d}",
            name="东门人脸闸机",
            kind=DeviceKind.FACE_GATE,
            status=status,
        ),
    )


def test_device_credential_issue_verify_and_reissue(ctx):
    t = f.tree(ctx)
    device = _device(ctx, t.community.id)
    now = utcnow()
    first = auth_tokens.issue_device_credential(ctx.session, device, now)
    SENSITIVE_VALUES.add(first)
    assert first.startswith(f"anjud_{device.id}_")
    assert auth_tokens.device_for_credential(ctx.session, first, now) is device
    second = auth_tokens.issue_device_credential(ctx.session, device, now)
    SENSITIVE_VALUES.add(second)
    assert auth_tokens.device_for_credential(ctx.session, first, now) is None
    assert auth_tokens.device_for_credential(ctx.session, second, now) is device
    # The device id in the secret must match the secret's own device.
    other = _device(ctx, t.community.id)
    forged = second.replace(f"anjud_{device.id}_", f"anjud_{other.id}_", 1)
    assert auth_tokens.device_for_credential(ctx.session, forged, now) is None
    assert auth_tokens.device_for_credential(ctx.session, "anjud_x_y", now) is None
    # Only hashes are stored.
    from anju.auth.models import DeviceCredential

    rows = ctx.session.scalars(
        select(DeviceCredential).where(DeviceCredential.device_id == device.id)
    ).all()
    assert len(rows) == 2 and sum(r.revoked_at is None for r in rows) == 1
    assert {r.secret_hash for r in rows} == {
        hashlib.sha256(s.encode()).hexdigest() for s in (first, second)
    }
    # A scrapped device may no longer send.
    device.status = DeviceStatus.RETIRED
    assert auth_tokens.device_for_credential(ctx.session, second, now) is None
    assert auth_tokens.revoke_device_credentials(ctx.session, device, now) == 1


def test_cli_tokens_and_device_credentials(tmp_path, monkeypatch):
    from anju.cli import app as cli

    runner = CliRunner()
    monkeypatch.setenv("ANJU_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("ANJU_SECRET_KEY", TEST_KEY)
    monkeypatch.setenv("ANJU_ADMIN_PASSWORD", ADMIN_PASSWORD)
    assert runner.invoke(cli, ["init"]).exit_code == 0
    node = bootstrap(Settings())
    try:
        with node.unit_of_work() as ctx:
            code = _device(ctx, f.tree(ctx).community.id).code
        made = runner.invoke(cli, ["device", "credential", code, "--json"])
        assert made.exit_code == 0, made.output
        out = json.loads(made.stdout)
        SENSITIVE_VALUES.add(out["credential"])
        assert out["device"] == code
        with node.unit_of_work() as ctx:
            found = auth_tokens.device_for_credential(ctx.session, out["credential"], utcnow())
            assert found is not None and found.code == code
        assert runner.invoke(cli, ["device", "credential", "NO-SUCH"]).exit_code == 2

        tok = runner.invoke(
            cli, ["user", "token", "admin", "--label", "backup", "--days", "7", "--json"]
        )
        assert tok.exit_code == 0, tok.output
        token = json.loads(tok.stdout)["token"]
        SENSITIVE_VALUES.add(token)
        with node.unit_of_work() as ctx:
            assert auth_tokens.token_actor(ctx.session, token, utcnow()).username == "admin"
        revoked = runner.invoke(cli, ["user", "revoke-token", token[:13]])
        assert revoked.exit_code == 0, revoked.output
        with node.unit_of_work() as ctx:
            assert auth_tokens.token_actor(ctx.session, token, utcnow()) is None
        assert runner.invoke(cli, ["user", "revoke-token", token[:13]]).exit_code == 2
    finally:
        node.dispose()


# --- second factor ------------------------------------------------------------------------

SECRET_RE = re.compile(r'id="totp-secret">([A-Z2-7]+)<')


def _enrol(client, csrf, clock):
    """Set up the second factor through the page; returns the secret and the last answer."""
    started = client.post("/account/totp", data={"csrf_token": csrf, "action": "start"})
    assert started.status_code == 200
    secret = SECRET_RE.search(started.text).group(1)
    SENSITIVE_VALUES.add(secret)
    assert "otpauth://totp/" in started.text
    # Reloading shows the same pending secret.
    assert secret in client.get("/account/totp").text
    bad = client.post(
        "/account/totp", data={"csrf_token": csrf, "action": "confirm", "code": "000000"}
    )
    assert bad.status_code == 422 and "验证码错误" in bad.text
    code = pyotp.TOTP(secret).at(clock())
    return secret, client.post(
        "/account/totp",
        data={"csrf_token": csrf, "action": "confirm", "code": code},
        follow_redirects=False,
    )


def test_totp_enrolment_and_two_step_sign_in(app_node, place, clock):
    name = make_user(app_node, place)
    app = create_app(app_node, clock=clock)
    with TestClient(app) as browser:
        csrf = sign_in(browser, name, PASSWORD)
        secret, done = _enrol(browser, csrf, clock)
        assert done.status_code == 200 and "两步验证已开启" in done.text
        row = user_row(app_node, name)
        assert row.totp_enabled and secret.encode() not in row.totp_secret_enc
        used_code = pyotp.TOTP(secret).at(clock())

    sessions_before = live_sessions(app_node, name)
    with TestClient(app) as browser:
        step_one = post_login(browser, name, PASSWORD)
        assert step_one.status_code == 200 and "6 位验证码" in step_one.text
        assert "anju_session" not in step_one.cookies
        assert browser.get("/", follow_redirects=False).status_code == 303
        login_csrf = browser.cookies.get("anju_login_csrf")

        def send(code):
            return browser.post(
                "/login/totp",
                data={"csrf_token": login_csrf, "code": code, "next": "/people"},
                follow_redirects=False,
            )

        wrong = send("123456" if used_code != "123456" else "654321")
        assert wrong.status_code == 401 and "验证码错误" in wrong.text
        # The code that turned the factor on cannot be used again.
        assert send(used_code).status_code == 401
        clock.advance(seconds=30)
        ok = send(pyotp.TOTP(secret).at(clock()))
        assert ok.status_code == 303 and ok.headers["location"] == "/people"
        assert browser.get("/people", follow_redirects=False).status_code == 200
        assert live_sessions(app_node, name) == sessions_before + 1

        # Turning it off needs the password and a fresh code.
        csrf = csrf_of(browser.get("/account/totp").text)
        clock.advance(seconds=30)
        refused = browser.post(
            "/account/totp",
            data={
                "csrf_token": csrf,
                "action": "disable",
                "password": "wrong-password",
                "code": pyotp.TOTP(secret).at(clock()),
            },
        )
        assert refused.status_code == 422 and user_row(app_node, name).totp_enabled
        off = browser.post(
            "/account/totp",
            data={
                "csrf_token": csrf,
                "action": "disable",
                "password": PASSWORD,
                "code": pyotp.TOTP(secret).at(clock()),
            },
        )
        assert off.status_code == 200 and "两步验证已关闭" in off.text
        row = user_row(app_node, name)
        assert not row.totp_enabled and row.totp_secret_enc is None


def test_pending_sign_in_expires_and_cannot_be_forged(app_node, place, clock):
    name = make_user(app_node, place)
    app = create_app(app_node, clock=clock)
    with TestClient(app) as browser:
        secret, _ = _enrol(browser, sign_in(browser, name, PASSWORD), clock)
    sessions_before = live_sessions(app_node, name)
    with TestClient(app) as browser:
        assert post_login(browser, name, PASSWORD).status_code == 200
        login_csrf = browser.cookies.get("anju_login_csrf")
        challenge = browser.cookies.get("anju_login_challenge")
        assert challenge and challenge.startswith("v1.")
        # A challenge naming another account (or re-signed by anyone but the node) fails.
        parts = challenge.split(".")
        parts[1] = "1"
        replace_cookie(browser, "anju_login_challenge", ".".join(parts))
        clock.advance(seconds=31)
        forged = browser.post(
            "/login/totp",
            data={"csrf_token": login_csrf, "code": pyotp.TOTP(secret).at(clock())},
            follow_redirects=False,
        )
        assert forged.status_code == 401 and "登录超时" in forged.text
        assert live_sessions(app_node, name) == sessions_before
        replace_cookie(browser, "anju_login_challenge", challenge)
        clock.advance(minutes=6)
        late = browser.post(
            "/login/totp",
            data={"csrf_token": login_csrf, "code": pyotp.TOTP(secret).at(clock())},
            follow_redirects=False,
        )
        assert late.status_code == 401 and "登录超时" in late.text
        assert live_sessions(app_node, name) == sessions_before


def test_wrong_codes_count_towards_the_lock(app_node, place, clock):
    name = make_user(app_node, place)
    app = create_app(app_node, clock=clock)
    with TestClient(app) as browser:
        secret, _ = _enrol(browser, sign_in(browser, name, PASSWORD), clock)
    sessions_before = live_sessions(app_node, name)
    with TestClient(app) as browser:
        assert post_login(browser, name, PASSWORD).status_code == 200
        login_csrf = browser.cookies.get("anju_login_csrf")
        good = pyotp.TOTP(secret)
        near = {good.at(clock() + dt.timedelta(seconds=30 * k)) for k in (-1, 0, 1, 2)}
        wrong = next(c for c in ("111111", "222222", "333333", "444444", "555555") if c not in near)
        for _ in range(5):
            resp = browser.post("/login/totp", data={"csrf_token": login_csrf, "code": wrong})
            assert resp.status_code == 401
        clock.advance(seconds=30)
        locked = browser.post(
            "/login/totp", data={"csrf_token": login_csrf, "code": good.at(clock())}
        )
        assert locked.status_code == 429
        assert live_sessions(app_node, name) == sessions_before


def test_police_roles_must_set_up_the_second_factor_when_required(app_node, place, clock):
    strict = dataclasses.replace(
        app_node, settings=app_node.settings.model_copy(update={"require_totp_for_police": True})
    )
    officer = make_user(app_node, place, role="officer")
    guard = make_user(app_node, place, role="guard")
    app = create_app(strict, clock=clock)
    with TestClient(app) as browser:
        csrf = sign_in(browser, officer, PASSWORD)
        for path in ("/", "/people"):
            resp = browser.get(path, follow_redirects=False)
            assert resp.status_code == 303 and resp.headers["location"] == "/account/totp"
        assert browser.get("/api/v1/people").status_code == 403
        assert browser.get("/account/password").status_code == 200
        page = browser.get("/account/totp")
        assert "您的角色必须使用两步验证" in page.text
        secret, done = _enrol(browser, csrf, clock)
        assert done.status_code == 303 and done.headers["location"] == "/"
        assert browser.get("/people", follow_redirects=False).status_code == 200
        clock.advance(seconds=30)
        kept = browser.post(
            "/account/totp",
            data={
                "csrf_token": csrf,
                "action": "disable",
                "password": PASSWORD,
                "code": pyotp.TOTP(secret).at(clock()),
            },
        )
        assert kept.status_code == 422 and "必须保留两步验证" in kept.text
        assert user_row(app_node, officer).totp_enabled
    with TestClient(app) as browser:
        sign_in(browser, guard, PASSWORD)
        assert browser.get("/people", follow_redirects=False).status_code == 200


# --- cookies ------------------------------------------------------------------------------


def _session_cookie_header(resp) -> str:
    headers = [h for h in resp.headers.get_list("set-cookie") if h.startswith("anju_session=")]
    assert len(headers) == 1
    return headers[0].lower()


def test_session_cookie_flags(app_node, place, clock, monkeypatch, tmp_path):
    name = make_user(app_node, place)
    with TestClient(create_app(app_node, clock=clock)) as plain:
        header = _session_cookie_header(post_login(plain, name, PASSWORD))
        assert "httponly" in header and "samesite=lax" in header and "secure" not in header
    app = create_app(app_node, clock=clock)
    with TestClient(app, base_url="https://testserver") as tls:
        header = _session_cookie_header(post_login(tls, name, PASSWORD))
        assert "secure" in header and "httponly" in header
    monkeypatch.setenv("ANJU_SECURE_COOKIES", "true")
    forced = Settings(
        data_dir=tmp_path, database_url=app_node.settings.database_url, secret_key=TEST_KEY
    )
    assert forced.secure_cookies is True
    node = dataclasses.replace(app_node, settings=forced)
    with TestClient(create_app(node, clock=clock)) as behind_proxy:
        # TLS ends at a proxy: the app sees plain HTTP yet marks every cookie Secure. (The
        # test client keeps Secure cookies off plain HTTP, so the form's cookie is sent by hand.)
        page = behind_proxy.get("/login")
        login_cookie = [h for h in page.headers.get_list("set-cookie") if "anju_login_csrf" in h]
        assert "secure" in login_cookie[0].lower()
        token = page.cookies.get("anju_login_csrf")
        resp = behind_proxy.post(
            "/login",
            data={"username": name, "password": PASSWORD, "csrf_token": token},
            headers={"Cookie": f"anju_login_csrf={token}"},
            follow_redirects=False,
        )
        assert "secure" in _session_cookie_header(resp)


# --- migration keeps data -----------------------------------------------------------------


def test_migration_0003_keeps_accounts_and_their_links(tmp_path):
    """On SQLite the users table is altered in place, never copied (a copy would cascade)."""
    from anju.auth.models import LoginSession as Session_

    node = bootstrap(make_settings(tmp_path, f"sqlite:///{tmp_path / 'm.db'}"))
    try:
        initialise(node, admin_password=ADMIN_PASSWORD)
        with node.unit_of_work() as ctx:
            admin = ctx.session.scalar(select(User).where(User.username == "admin"))
            auth_service.start_session(ctx.session, admin, utcnow(), 1, None)
        migrate.downgrade(node.engine, "0002")
        migrate.upgrade(node.engine)
        with node.unit_of_work() as ctx:
            admin = ctx.session.scalar(select(User).where(User.username == "admin"))
            assert admin is not None and admin.totp_enabled is False
            assert ctx.session.scalars(select(Session_)).all()
    finally:
        node.dispose()
