"""The console in a real browser: sign in, dashboard, search a person, edit a house.

Screenshots land in the test output folder for people to look at.
"""

from __future__ import annotations

import pytest

from anju.registry import schemas
from anju.registry import service as registry
from tests import factories as f
from tests.browser import chromium_page
from tests.conftest import ADMIN_PASSWORD
from tests.live_server import live_server

pytestmark = pytest.mark.browser


@pytest.fixture
def populated(app_node):
    with app_node.unit_of_work() as ctx:
        t = f.tree(ctx)
        house = f.house(ctx, t.community, building="5", unit="2", floor=6, room="602")
        person = registry.people.create(
            ctx,
            schemas.PersonCreate(
                community_id=t.community.id,
                name="欧阳明月",
                id_number=f.resident_id_for("110101", "19780412", 100 + next(f._seq)),
                phone="13912345678",
            ),
        )
        registry.residencies.create(
            ctx,
            schemas.ResidencyCreate(
                person_id=person.id, house_id=house.id, relation="owner", start_date="2020-05-01"
            ),
        )
        return {"house_id": house.id, "person_id": person.id, "community": t.community.name}


def test_console_walkthrough(app_node, populated, test_output):
    shots = test_output / "browser"
    shots.mkdir(parents=True, exist_ok=True)
    with live_server(app_node) as base, chromium_page() as page:
        page.goto(f"{base}/people")
        assert "/login" in page.url
        page.fill("input[name=username]", "admin")
        page.fill("input[name=password]", ADMIN_PASSWORD)
        page.click("button.primary")
        page.wait_for_url(f"{base}/people")
        page.goto(f"{base}/")
        assert page.locator("h1").first.inner_text() == "首页概览"
        assert page.locator(".rate-head", has_text="门牌覆盖率").count() == 1
        page.screenshot(path=str(shots / "01-dashboard.png"), full_page=True)

        page.goto(f"{base}/people")
        page.fill("input[name=q]", "欧阳")
        page.wait_for_selector("text=欧阳明月")
        assert page.locator("td", has_text="1101**********").count() >= 1
        page.screenshot(path=str(shots / "02-people-search.png"), full_page=True)
        page.click("text=欧阳明月")
        page.wait_for_url(f"{base}/people/{populated['person_id']}")
        assert page.locator("text=业主").count() >= 1
        page.screenshot(path=str(shots / "03-person.png"), full_page=True)

        page.goto(f"{base}/houses/{populated['house_id']}/edit")
        page.select_option("select[name=use]", "rented")
        page.fill("input[name=area]", "96.5")
        page.check("input[name=plate_installed]")
        page.click("button.primary")
        page.wait_for_url(f"{base}/houses/{populated['house_id']}")
        assert page.locator("dd", has_text="出租").count() == 1
        assert page.locator("text=欧阳明月").count() >= 1
        page.screenshot(path=str(shots / "04-house.png"), full_page=True)

        assert page.js_errors == []
        page.goto(f"{base}/houses/{populated['house_id']}/edit")
        page.fill("input[name=area]", "-3")
        page.click("button.primary")
        assert page.locator(".error-text").count() >= 1
        page.screenshot(path=str(shots / "05-house-invalid.png"), full_page=True)


def test_console_on_a_phone(app_node, populated, test_output):
    shots = test_output / "browser"
    shots.mkdir(parents=True, exist_ok=True)
    with (
        live_server(app_node) as base,
        chromium_page(viewport={"width": 390, "height": 844}) as page,
    ):
        page.goto(f"{base}/login")
        page.fill("input[name=username]", "admin")
        page.fill("input[name=password]", ADMIN_PASSWORD)
        page.click("button.primary")
        page.wait_for_url(f"{base}/")
        page.goto(f"{base}/houses/{populated['house_id']}")
        page.screenshot(path=str(shots / "06-phone-house.png"), full_page=True)
        page.click("label.nav-button")
        assert page.locator("nav.sidenav").is_visible()
        page.screenshot(path=str(shots / "07-phone-menu.png"))
