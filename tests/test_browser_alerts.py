"""The alert centre in a real browser on a phone-sized screen: an alert raised through the
service appears live, and an officer takes it through dispatch → acknowledge → handle (with
a photo) → close. Screenshots are left under the test output folder for people to look at.
"""

from __future__ import annotations

import base64
import datetime as dt
import secrets

import pytest

from anju.alerts import notify, service
from anju.alerts.model import AlertDraft, Severity
from anju.auth import service as auth_service
from tests import factories as f
from tests.browser import chromium_page
from tests.live_server import live_server

pytestmark = pytest.mark.browser

PHONE = {"width": 390, "height": 844}
PASSWORD = "browser-alerts-" + secrets.token_hex(4)
# A real picture, drawn by the browser itself (no image library needed).
DRAW_JPEG = """() => {
  const c = document.createElement("canvas"); c.width = 160; c.height = 120;
  const g = c.getContext("2d"); g.fillStyle = "#3a7"; g.fillRect(0, 0, 160, 120);
  g.fillStyle = "#fff"; g.fillRect(40, 30, 80, 60);
  return c.toDataURL("image/jpeg").split(",")[1];
}"""


@pytest.fixture
def community(app_node):
    with app_node.unit_of_work() as ctx:
        t = f.tree(ctx)
        username = f"ba-officer-{t.community.code}".lower()
        auth_service.create_user(
            ctx.session,
            username=username,
            display_name="王警官",
            password=PASSWORD,
            role_code="officer",
            org_unit_id=t.office.id,
        )
        return {"id": t.community.id, "name": t.community.name, "username": username}


def raise_alert(node, community_id: int) -> int:
    """What the rules engine does: raise in a transaction, announce after the commit."""
    now = dt.datetime.now(dt.UTC)
    draft = AlertDraft(
        model="perimeter",
        community_id=community_id,
        fingerprint=f"perimeter:east:{community_id}",
        title="东侧围墙周界入侵",
        severity=Severity.CRITICAL,
        at=now,
        place="东侧围墙 3 号防区",
    )
    with node.unit_of_work() as ctx:
        alert, created = service.raise_or_merge(ctx.session, draft, now)
        assert created
        notice = notify.notice_of(ctx.session, alert, "raised")
    notify.send(node, [notice])
    return notice.id


def test_an_officer_closes_a_live_alert_on_a_phone(app_node, community, test_output, tmp_path):
    shots = test_output / "browser"
    shots.mkdir(parents=True, exist_ok=True)
    photo = tmp_path / "scene.jpg"
    with live_server(app_node) as base, chromium_page(PHONE) as page:
        page.goto(f"{base}/login")
        page.fill("input[name=username]", community["username"])
        page.fill("input[name=password]", PASSWORD)
        page.click("button.primary")
        page.wait_for_url(f"{base}/")
        photo.write_bytes(base64.b64decode(page.evaluate(DRAW_JPEG)))
        page.goto(f"{base}/alerts?community_id={community['id']}")
        page.wait_for_selector("#live-status:has-text('实时')", timeout=5000)
        alert_id = raise_alert(app_node, community["id"])
        card = page.locator(f"[data-alert-id='{alert_id}']")
        card.wait_for(timeout=5000)
        text = card.inner_text()
        assert "周界入侵" in text and "东侧围墙周界入侵" in text and "紧急" in text
        assert page.locator("#alert-total").inner_text() == "1"
        assert community["name"] in text and "东侧围墙 3 号防区" in text
        page.screenshot(path=str(shots / "40-alert-centre-live.png"), full_page=True)

        card.locator("a").click()
        page.wait_for_url(f"{base}/alerts/{alert_id}")
        page.select_option("#target", "role:officer")
        page.fill("#dispatch-note", "请立即到场查看")
        page.screenshot(path=str(shots / "41-alert-dispatch.png"), full_page=True)
        page.click("#do-dispatch")
        page.wait_for_selector("#do-acknowledge")
        assert page.locator("#alert-state").inner_text() == "已下发"
        page.click("#do-acknowledge")
        page.wait_for_selector("#do-handle")
        page.fill("#feedback", "翻越人员为施工队员，已登记")
        page.select_option("#verdict", "false_alarm")
        page.set_input_files("#photos", str(photo))
        page.screenshot(path=str(shots / "42-alert-feedback.png"), full_page=True)
        page.click("#do-handle")
        page.wait_for_selector("#do-close")
        page.click("#do-close")
        page.wait_for_selector("#do-reopen")
        assert page.locator("#alert-state").inner_text() == "已办结"
        timeline = page.locator("#timeline").inner_text()
        for word in ("已预警", "已下发", "已签收", "已反馈", "已办结", "请立即到场查看", "王警官"):
            assert word in timeline, word
        thumb = page.locator("#timeline img.thumb")
        assert thumb.count() == 1
        assert thumb.evaluate("img => img.complete && img.naturalWidth") == 160
        assert page.locator("#alert-assignee").inner_text() == "王警官"
        page.screenshot(path=str(shots / "43-alert-closed.png"), full_page=True)
        # Nothing sticks out sideways on a phone.
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= PHONE["width"], width
        assert not page.js_errors, page.js_errors
