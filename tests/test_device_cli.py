"""``anju device add`` and ``anju device credential``: printed once, usable at once."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from anju.cli import app as cli
from tests.conftest import ADMIN_PASSWORD, TEST_KEY


def test_add_prints_a_working_credential_and_refuses_bad_input(tmp_path, monkeypatch):
    monkeypatch.setenv("ANJU_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("ANJU_SECRET_KEY", TEST_KEY)
    monkeypatch.setenv("ANJU_ADMIN_PASSWORD", ADMIN_PASSWORD)
    run = CliRunner()
    assert run.invoke(cli, ["init"]).exit_code == 0
    for step in (
        ["org", "add", "D1", "区"],
        ["org", "add", "S1", "所", "--parent", "D1"],
        ["org", "add", "O1", "室", "--parent", "S1"],
        ["org", "add", "C1", "小区", "--parent", "O1"],
    ):
        assert run.invoke(cli, step).exit_code == 0
    made = run.invoke(
        cli,
        [
            "device",
            "add",
            "C1-GATE",
            "东门闸机",
            "--kind",
            "face_gate",
            "--community",
            "C1",
            "--vendor",
            "Hikvision",
            "--json",
        ],
    )
    assert made.exit_code == 0, made.output
    out = json.loads(made.stdout)
    assert out["device"] == "C1-GATE" and out["credential"].startswith("anjud_")

    from fastapi.testclient import TestClient

    from anju.bootstrap import bootstrap
    from anju.config import load_settings
    from anju.web.app import create_app

    node = bootstrap(load_settings())
    with TestClient(create_app(node)) as client:
        resp = client.post(
            "/api/v1/events",
            headers={"Authorization": f"Bearer {out['credential']}"},
            json={
                "device": "C1-GATE",
                "kind": "device.heartbeat",
                "at": "2026-11-01T08:00:00+08:00",
                "id": "hb1",
            },
        )
        assert resp.json()["accepted"] == 1
    node.dispose()

    again = run.invoke(
        cli,
        ["device", "add", "C1-GATE", "重复", "--kind", "face_gate", "--community", "C1", "--json"],
    )
    assert again.exit_code == 2 and json.loads(again.stdout)["errors"][0]["field"] == "code"
    wrong = run.invoke(
        cli, ["device", "add", "C1-X", "x", "--kind", "teleporter", "--community", "C1", "--json"]
    )
    assert wrong.exit_code == 2 and json.loads(wrong.stdout)["errors"][0]["field"] == "kind"
    nowhere = run.invoke(
        cli, ["device", "add", "C9-X", "x", "--kind", "face_gate", "--community", "C9"]
    )
    assert nowhere.exit_code == 2
