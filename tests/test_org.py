"""Building the organisation tree: levels follow their parent, codes are unique, scope holds."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from typer.testing import CliRunner

from anju.cli import app as cli
from anju.core.errors import ValidationFailed
from anju.org import service as org_service
from anju.org.models import Level, OrgUnit
from anju.web.app import create_app
from tests.conftest import ADMIN_PASSWORD, TEST_KEY
from tests.web_helpers import sign_in


def test_levels_follow_the_parent(ctx):
    city = org_service.root(ctx.session)
    district = org_service.add_unit(
        ctx.session, level=Level.DISTRICT, code="OD1", name="区", parent=city
    )
    with pytest.raises(ValidationFailed) as err:
        org_service.add_unit(
            ctx.session, level=Level.COMMUNITY, code="OC1", name="小区", parent=district
        )
    assert err.value.errors[0].field == "level"
    with pytest.raises(ValidationFailed) as err:
        org_service.add_unit(
            ctx.session, level=Level.STATION, code="OD1", name="所", parent=district
        )
    assert err.value.errors[0].field == "code"
    station = org_service.add_unit(
        ctx.session, level=Level.STATION, code="OS1", name="所", parent=district
    )
    assert station.path == f"{district.path}{station.id}/"


def test_cli_builds_a_tree(tmp_path, monkeypatch):
    monkeypatch.setenv("ANJU_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("ANJU_SECRET_KEY", TEST_KEY)
    monkeypatch.setenv("ANJU_ADMIN_PASSWORD", ADMIN_PASSWORD)
    runner = CliRunner()
    assert runner.invoke(cli, ["init"]).exit_code == 0
    steps = [
        ["org", "add", "NS", "南山分局", "--json"],
        ["org", "add", "YH", "粤海派出所", "--parent", "NS", "--json"],
        ["org", "add", "KY", "科苑警务室", "--parent", "YH", "--json"],
        ["org", "add", "YGHY", "阳光花园", "--parent", "KY", "--address", "科苑路1号", "--json"],
    ]
    levels = [json.loads(runner.invoke(cli, s).stdout)["level"] for s in steps]
    assert levels == ["district", "station", "office", "community"]
    below = runner.invoke(cli, ["org", "add", "X1", "不行", "--parent", "YGHY", "--json"])
    assert below.exit_code == 2 and "community" in json.loads(below.stdout)["error"]
    listed = json.loads(runner.invoke(cli, ["org", "list", "--json"]).stdout)
    assert [u["code"] for u in listed][-1] == "YGHY"


def test_console_adds_and_renames(app_node):
    with TestClient(create_app(app_node)) as client:
        csrf = sign_in(client, "admin", ADMIN_PASSWORD)
        with app_node.unit_of_work() as ctx:
            city_id = org_service.root(ctx.session).id
        resp = client.post(
            f"/org/{city_id}/children",
            data={"csrf_token": csrf, "code": "WEBD", "name": "网页分局"},
            follow_redirects=False,
        )
        assert resp.status_code == 303
        bad = client.post(
            f"/org/{city_id}/children", data={"csrf_token": csrf, "code": "WEBD", "name": "重复"}
        )
        assert bad.status_code == 422 and "WEBD" in bad.text
        with app_node.unit_of_work() as ctx:
            made = ctx.session.scalar(select(OrgUnit).where(OrgUnit.code == "WEBD"))
            assert made.level == Level.DISTRICT and made.parent_id == city_id
            made_id = made.id
        client.post(
            f"/org/{made_id}/edit",
            data={"csrf_token": csrf, "name": "网页区分局", "address": "一路1号"},
        )
        assert "网页区分局" in client.get("/org").text
