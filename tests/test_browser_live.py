"""The dashboard's live card in a real browser: an event a device sends appears within
seconds, without reloading the page. Also screenshots the event pages for people to look at.
"""

from __future__ import annotations

import datetime as dt

import httpx
import pytest

from anju.auth import tokens
from anju.registry import schemas
from anju.registry import service as registry
from tests import factories as f
from tests.browser import chromium_page
from tests.conftest import ADMIN_PASSWORD
from tests.live_server import live_server

pytestmark = pytest.mark.browser


@pytest.fixture
def gate(app_node):
    """A gate with a device credential, in a community of its own."""
    now = dt.datetime.now(dt.UTC)
    with app_node.unit_of_work() as ctx:
        t = f.tree(ctx)
        device = registry.devices.create(
            ctx,
            schemas.DeviceCreate(
                community_id=t.community.id,
                code=f"LV-{t.community.code}",
                name="南门人行",
                kind="face_gate",
            ),
        )
        return {
            "id": device.id,
            "code": device.code,
            "secret": tokens.issue_device_credential(ctx.session, device, now),
        }


def test_an_event_appears_in_the_live_feed(app_node, gate, test_output):
    shots = test_output / "browser"
    shots.mkdir(parents=True, exist_ok=True)
    with live_server(app_node) as base, chromium_page() as page:
        page.goto(f"{base}/login")
        page.fill("input[name=username]", "admin")
        page.fill("input[name=password]", ADMIN_PASSWORD)
        page.click("button.primary")
        page.wait_for_url(f"{base}/")
        feed = page.locator("[data-live-feed]")
        assert feed.count() == 1
        page.wait_for_selector("#live-status:has-text('实时')", timeout=5000)
        sent = httpx.post(
            f"{base}/api/v1/events",
            json={
                "id": "live-1",
                "device": gate["code"],
                "kind": "access.qr",
                "at": dt.datetime.now(dt.UTC).isoformat(),
                "subject": {"type": "qr", "value": "<b>77AA</b>"},
                "direction": "in",
            },
            headers={"Authorization": f"Bearer {gate['secret']}"},
        )
        assert sent.status_code == 200 and sent.json()["accepted"] == 1, sent.text
        row = feed.locator("li.fresh").first
        row.wait_for(timeout=5000)
        assert "扫码通行" in row.inner_text() and "南门人行" in row.inner_text()  # name, not code
        # The subject is shown as text, never parsed as HTML.
        assert row.locator("b").count() == 0 and "<b>77AA</b>" in row.inner_text()
        page.screenshot(path=str(shots / "20-live-feed.png"), full_page=True)

        page.goto(f"{base}/events?device={gate['code']}")
        assert page.locator("table.events tbody tr").count() == 1
        page.screenshot(path=str(shots / "21-events.png"), full_page=True)
        page.goto(f"{base}/trajectory?subject_type=qr&subject_value=%3Cb%3E77AA%3C%2Fb%3E")
        page.screenshot(path=str(shots / "22-trajectory.png"), full_page=True)
        page.goto(f"{base}/devices/{gate['id']}")
        page.click("text=发送测试事件")
        page.wait_for_selector("#test-result")
        page.screenshot(path=str(shots / "23-device.png"), full_page=True)
        assert not page.js_errors, page.js_errors
