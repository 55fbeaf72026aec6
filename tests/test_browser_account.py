"""The account pages in a real browser: forced password change, an API token shown once,
two-step verification set up and used to sign in. Screenshots go to the test output folder.
"""

from __future__ import annotations

import re
import time

import pyotp
import pytest

from anju.auth import service as auth_service
from tests import factories as f
from tests.browser import chromium_page
from tests.conftest import SENSITIVE_VALUES
from tests.live_server import live_server

pytestmark = pytest.mark.browser

FIRST = "first-password-1"
OWN = "my-own-password-2"


@pytest.fixture
def officer(app_node) -> str:
    with app_node.unit_of_work() as ctx:
        t = f.tree(ctx)
        name = f"officer{next(f._seq)}"
        auth_service.create_user(
            ctx.session,
            username=name,
            display_name="李警官",
            password=FIRST,
            role_code="officer",
            org_unit_id=t.office.id,
            must_change_password=True,
        )
    return name


def _sign_in(page, base: str, name: str, password: str) -> None:
    page.goto(f"{base}/login")
    page.fill("input[name=username]", name)
    page.fill("input[name=password]", password)
    page.click("button.primary")


def test_account_pages(app_node, officer, test_output):
    shots = test_output / "browser"
    shots.mkdir(parents=True, exist_ok=True)
    shot = f"{app_node.backend}"  # type: ignore[attr-defined]
    with live_server(app_node) as base, chromium_page() as page:
        _sign_in(page, base, officer, FIRST)
        page.wait_for_url(f"{base}/account/password")
        assert page.locator(".alert.error").first.is_visible()
        page.screenshot(path=str(shots / f"20-forced-password-{shot}.png"), full_page=True)
        page.fill("input[name=current_password]", FIRST)
        page.fill("input[name=new_password]", OWN)
        page.fill("input[name=repeat_password]", OWN)
        page.click("form.form button.primary")
        page.wait_for_url(f"{base}/")

        page.click("text=API 令牌")
        page.wait_for_url(f"{base}/account/tokens")
        page.fill("#token-name", "巡逻报表脚本")
        page.click("text=创建令牌")
        token = page.locator("#token-value").inner_text()
        SENSITIVE_VALUES.add(token)
        assert token.startswith("anju_")
        page.screenshot(path=str(shots / f"21-token-shown-once-{shot}.png"), full_page=True)
        page.reload()
        assert token not in page.content()

        page.goto(f"{base}/account/totp")
        page.click("text=设置两步验证")
        secret = page.locator("#totp-secret").inner_text()
        SENSITIVE_VALUES.add(secret)
        page.screenshot(path=str(shots / f"22-totp-setup-{shot}.png"), full_page=True)
        page.fill("#on-code", pyotp.TOTP(secret).now())
        page.click("form.form button.primary")
        page.wait_for_selector("text=两步验证已开启")

        page.click("text=退出")
        page.wait_for_url(f"{base}/login")
        _sign_in(page, base, officer, OWN)
        page.wait_for_selector("text=请输入验证器应用中的 6 位验证码")
        page.screenshot(path=str(shots / f"23-totp-sign-in-{shot}.png"), full_page=True)
        # The code that turned the factor on is spent: within the same 30 s it is refused
        # (401) and the next one is needed.
        totp = pyotp.TOTP(secret)
        page.fill("input[name=code]", totp.now())
        page.click("button.primary")
        page.wait_for_url(re.compile(r".*/(login/totp)?$"))
        if page.url.endswith("/login/totp"):
            assert page.locator(".alert.error").count() == 1
            page.wait_for_timeout(1000 * (31 - int(time.time()) % 30))
            page.fill("input[name=code]", totp.now())
            page.click("button.primary")
        page.wait_for_url(f"{base}/")
        assert [e for e in page.js_errors if "status of 401" not in e] == []
