"""``anju faces enroll / identify / verify`` on the real photographs, and the face part of
``anju retention run``, against a node's database (SQLite and PostgreSQL)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from typer.testing import CliRunner

from anju.cli import app as cli_app
from anju.registry import schemas
from anju.registry import service as registry
from tests import factories as f
from tests.conftest import TEST_KEY
from tests.face_photos import blank_jpeg, needs_photos, photo_path

pytestmark = needs_photos
runner = CliRunner()


@pytest.fixture(scope="module")
def person(app_node: Any) -> int:
    with app_node.unit_of_work() as ctx:
        t = f.tree(ctx, "FC")
        return registry.people.create(
            ctx,
            schemas.PersonCreate(
                community_id=t.community.id,
                name="奥巴马",
                id_number=f.resident_id_for("110101", "19610804", 501),
            ),
        ).id


@pytest.fixture
def env(app_node: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANJU_DATA_DIR", str(app_node.settings.data_dir))
    monkeypatch.setenv("ANJU_DATABASE_URL", app_node.settings.resolved_database_url)
    monkeypatch.setenv("ANJU_SECRET_KEY", TEST_KEY)


def faces(*args: str) -> Any:
    return runner.invoke(cli_app, ["faces", *args])


def test_enroll_then_identify(env: None, person: int) -> None:
    enrolled = faces("enroll", str(person), str(photo_path("obama/obama.jpg")), "--json")
    assert enrolled.exit_code == 0, enrolled.output
    assert json.loads(enrolled.stdout) == {"person_id": person, "enrolled": 1, "templates": 1}

    found = faces("identify", str(photo_path("obama/obama2.jpg")), "--json")
    assert found.exit_code == 0, found.output
    out = json.loads(found.stdout)
    assert out["match"] is True and out["threshold"] == 0.6
    [best] = out["candidates"]
    assert (best["kind"], best["id"], best["label"]) == ("resident", person, "奥巴马")
    assert 0 < best["distance"] < 0.6

    text = faces("identify", str(photo_path("obama/obama2.jpg")))
    assert text.exit_code == 0 and text.stdout.startswith(f"person {person}\t奥巴马\tdistance 0.")
    stranger = faces("identify", str(photo_path("biden/biden.jpg")))
    assert stranger.exit_code == 0 and stranger.stdout.strip() == "unknown"


def test_enroll_refuses_bad_input(env: None, person: int, tmp_path: Any) -> None:
    blank = tmp_path / "blank.jpg"
    blank.write_bytes(blank_jpeg())
    no_face = faces("enroll", str(person), str(blank))
    assert no_face.exit_code == 2 and "照片1中未检测到人脸" in no_face.output
    group = faces("enroll", str(person), str(photo_path("groups/two_people.jpg")), "--json")
    assert group.exit_code == 2 and "多张人脸" in json.loads(group.stdout)["error"]
    nobody = faces("enroll", "999999", str(photo_path("obama/obama.jpg")))
    assert nobody.exit_code == 2 and "no person with id 999999" in nobody.output
    missing = faces("enroll", str(person), str(tmp_path / "missing.jpg"))
    assert missing.exit_code == 2 and "cannot read" in missing.output


def test_verify_same_different_and_bad(env: None, tmp_path: Any) -> None:
    same = faces(
        "verify", str(photo_path("obama/obama.jpg")), str(photo_path("obama/obama2.jpg")), "--json"
    )
    assert same.exit_code == 0, same.output
    out = json.loads(same.stdout)
    assert out["same"] is True and out["distance"] < out["threshold"] == 0.6
    different = faces(
        "verify", str(photo_path("obama/obama.jpg")), str(photo_path("biden/biden.jpg"))
    )
    assert different.exit_code == 1 and different.stdout.startswith("different\tdistance ")
    junk = tmp_path / "junk.jpg"
    junk.write_bytes(b"no picture here")
    bad = faces("verify", str(photo_path("obama/obama.jpg")), str(junk))
    assert bad.exit_code == 2 and "image_b" in bad.output


def test_retention_reports_strangers(env: None) -> None:
    result = runner.invoke(cli_app, ["retention", "run", "--json", "--dry-run"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["strangers"] == 0 and out["face_probes"] == 0
    text = runner.invoke(cli_app, ["retention", "run", "--dry-run"])
    assert "stranger clusters deleted: 0" in text.stdout
