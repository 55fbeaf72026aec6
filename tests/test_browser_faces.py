"""Faces in a real browser on a phone-sized screen: an officer searches by photo and reaches
the resident's sightings, opens a stranger, merges another stranger into it, and enrolls a
photo from a person's page (the 人脸 panel loads and answers through HTMX). Screenshots go to
the test output folder (and /tmp/shots when it exists) for people to look at.
"""

from __future__ import annotations

import datetime as dt
import secrets
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sqlalchemy import select

from anju.auth import service as auth_service
from anju.events.model import Event, Kind
from anju.faces.encoder import MODEL_DLIB
from anju.faces.models import StrangerCluster
from anju.registry import schemas
from anju.registry import service as registry
from tests import factories as f
from tests.browser import chromium_page
from tests.face_photos import FIXTURES, needs_photos
from tests.live_server import live_server

pytestmark = [pytest.mark.browser, needs_photos]

PHONE = {"width": 390, "height": 844}
PASSWORD = "browser-faces-" + secrets.token_hex(4)
FACES = FIXTURES or Path("missing")
NOW = dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(hours=2)


def _vector(seed: int, around: np.ndarray | None = None) -> list[float]:
    rng = np.random.default_rng(seed)
    if around is None:
        v = rng.normal(size=128)
        return [float(x) for x in v / np.linalg.norm(v)]
    return [float(x) for x in around + rng.normal(scale=0.01, size=128)]


@pytest.fixture
def world(app_node: Any) -> dict[str, Any]:
    """A community with a face camera, a resident with one enrolled photo, an officer, and
    two strangers (three and two sightings) reported as device feature vectors."""
    with app_node.unit_of_work() as ctx:
        t = f.tree(ctx)
        code = t.community.code
        registry.devices.create(
            ctx,
            schemas.DeviceCreate(
                community_id=t.community.id, code=f"{code}-CAM", name="南门人脸抓拍",
                kind="face_camera",
            ),
        )  # fmt: skip
        kit = registry.people.create(
            ctx,
            schemas.PersonCreate(
                community_id=t.community.id,
                name="齐特",
                id_number=f.resident_id_for("110101", "19860926", 21),
            ),
        )
        rose = registry.people.create(
            ctx,
            schemas.PersonCreate(
                community_id=t.community.id,
                name="罗丝",
                id_number=f.resident_id_for("110101", "19870218", 22),
            ),
        )
        app_node.faces.enroll(ctx, kit.id, [(FACES / "kit_harington/john2.jpeg").read_bytes()])
        username = f"bf-officer-{code}".lower()
        auth_service.create_user(
            ctx.session,
            username=username,
            display_name="李警官",
            password=PASSWORD,
            role_code="officer",
            org_unit_id=t.office.id,
        )
    codes = []
    for seed, count in ((1, 3), (2, 2)):
        base = np.asarray(_vector(100 + seed))
        for i in range(count):
            event = Event(
                device=f"{code}-CAM",
                kind=Kind.CAPTURE_FACE,
                at=NOW + dt.timedelta(minutes=10 * seed + i),
                data={"feature": _vector(seed * 10 + i, base), "model": MODEL_DLIB},
            )
            with app_node.unit_of_work() as ctx:
                app_node.pipeline(ctx.session).process([event])
        with app_node.unit_of_work() as ctx:
            codes.append(
                ctx.session.execute(
                    select(StrangerCluster.id, StrangerCluster.code)
                    .where(StrangerCluster.community_id == t.community.id)
                    .order_by(StrangerCluster.id.desc())
                    .limit(1)
                ).one()
            )
    return {
        "username": username,
        "community": t.community.id,
        "kit": kit.id,
        "rose": rose.id,
        "strangers": codes,
    }


def _shots(test_output: Path) -> list[Path]:
    dirs = [test_output / "browser"]
    if Path("/tmp/shots").is_dir():
        dirs.append(Path("/tmp/shots"))
    for d in dirs:
        d.mkdir(parents=True, exist_ok=True)
    return dirs


def test_an_officer_searches_by_photo_and_handles_strangers_on_a_phone(
    app_node: Any, world: dict[str, Any], test_output: Path
) -> None:
    shots = _shots(test_output)

    def shot(page: Any, name: str) -> None:
        for d in shots:
            page.screenshot(path=str(d / name), full_page=True)

    def fits(page: Any) -> None:
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= PHONE["width"], (page.url, width)

    with live_server(app_node) as base, chromium_page(PHONE) as page:
        page.on("dialog", lambda dialog: dialog.accept())
        page.goto(f"{base}/login")
        page.fill("input[name=username]", world["username"])
        page.fill("input[name=password]", PASSWORD)
        page.click("button.primary")
        page.wait_for_url(f"{base}/")

        # 以图搜人: the reason is required by the browser before anything is sent.
        page.goto(f"{base}/faces/search")
        page.set_input_files("#search-photo", str(FACES / "kit_harington/john1.jpeg"))
        page.click("#do-search")
        assert page.url == f"{base}/faces/search"  # the form did not go: no reason
        page.fill("#search-reason", "协查通报 2026-118")
        page.click("#do-search")
        page.wait_for_selector("#candidates")
        first = page.locator("tr.candidate").first
        assert "齐特" in first.inner_text() and "匹配" in first.inner_text()
        fits(page)
        shot(page, "50-faces-search.png")
        first.get_by_role("link", name="查看轨迹").click()
        page.wait_for_url(f"{base}/trajectory?person_id={world['kit']}")

        # 陌生人: the list, one stranger, merging the other one into it.
        (_other_id, other_code), (keep_id, keep_code) = world["strangers"]
        page.goto(f"{base}/faces/strangers?community_id={world['community']}")
        assert keep_code in page.inner_text("#strangers")
        fits(page)
        shot(page, "51-strangers.png")
        page.click(f"text={keep_code}")
        page.wait_for_url(f"{base}/faces/strangers/{keep_id}")
        assert page.locator("input[name=event_ids]").count() == 2
        fits(page)
        shot(page, "52-stranger.png")
        page.fill("#merge-code", other_code)
        page.click("#do-merge")
        page.wait_for_url(f"{base}/faces/strangers/{keep_id}?done=merge")
        assert page.locator("input[name=event_ids]").count() == 5
        shot(page, "53-stranger-merged.png")
        page.locator("a", has_text="人脸比对").first.click()
        page.wait_for_selector("#reject-form")
        fits(page)
        shot(page, "55-face-match.png")
        page.go_back()
        page.click("text=‹ 陌生人")
        listed = page.inner_text("#strangers")
        assert keep_code in listed and other_code not in listed

        # A person's 人脸 panel, loaded by HTMX; a group photo is refused at the field.
        page.goto(f"{base}/people/{world['rose']}")
        page.wait_for_selector("#enroll-form")
        page.set_input_files("#face-photos", str(FACES / "groups/kit_with_rose.jpg"))
        page.click("#do-enroll")
        page.wait_for_selector("#enroll-error")
        assert "多张人脸" in page.inner_text("#enroll-error")
        assert page.inner_text("#face-count") == "0"
        page.set_input_files("#face-photos", str(FACES / "rose_leslie/rose2.jpg"))
        page.click("#do-enroll")
        page.wait_for_selector("#face-count:has-text('1')")
        fits(page)
        shot(page, "54-person-faces.png")
        assert not page.js_errors, page.js_errors
