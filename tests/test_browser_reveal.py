"""In a real browser: an officer reveals an ID number with a reason; the resident sees who."""

from __future__ import annotations

import pytest

from anju.web.deps import SESSION_COOKIE
from tests import access_world
from tests.browser import chromium_page
from tests.live_server import live_server

pytestmark = pytest.mark.browser


def _as(page, base, account):
    page.anju_context.clear_cookies()
    page.anju_context.add_cookies([{"name": SESSION_COOKIE, "value": account.token, "url": base}])


def test_officer_reveal_is_seen_by_the_resident(app_node, test_output):
    world = access_world.build(app_node, prefix="R")
    pid = world.records["A1"]["people"]
    shots = test_output / "browser"
    shots.mkdir(parents=True, exist_ok=True)
    with live_server(app_node) as base, chromium_page() as page:
        _as(page, base, world.accounts["officer"])
        page.goto(f"{base}/people/{pid}")
        masked = page.locator("dd.mono").first.inner_text()
        assert "**********" in masked
        page.fill("#reveal-form input[name=reason]", "入户走访核对身份")
        page.click("#reveal-form button.primary")
        revealed = page.locator("#revealed-id_number")
        revealed.wait_for()
        number = revealed.inner_text()
        assert len(number) == 18 and "*" not in number and number[-4:] == masked[-4:]
        page.screenshot(
            path=str(shots / f"10-officer-reveal-{app_node.backend}.png"), full_page=True
        )

        _as(page, base, world.accounts["resident"])
        page.goto(f"{base}/")
        page.wait_for_url(f"{base}/me")
        row = page.locator("tr", has_text="入户走访核对身份")
        assert row.count() == 1
        assert "officer · 社区民警 · 甲警务室" in row.inner_text()  # display name · role · unit
        assert page.locator("text=邻居A1").count() == 0
        page.screenshot(
            path=str(shots / f"11-resident-who-looked-{app_node.backend}.png"), full_page=True
        )
        assert page.js_errors == []
