"""Import and export through the console: upload with a per-row report, masked download."""

from __future__ import annotations

import io

import openpyxl
import pytest
from fastapi.testclient import TestClient

from anju.registry import transfer
from anju.web.app import create_app
from tests import factories as f
from tests.conftest import ADMIN_PASSWORD
from tests.web_helpers import sign_in


@pytest.fixture
def community_code(app_node):
    with app_node.unit_of_work() as ctx:
        return f.tree(ctx).community.code


@pytest.fixture
def client(app_node):
    with TestClient(create_app(app_node)) as c:
        yield c


def test_upload_imports_good_rows_and_reports_bad_ones(client, community_code):
    csrf = sign_in(client, "admin", ADMIN_PASSWORD)
    good = f.resident_id_for("110101", "19820304", 300 + next(f._seq))
    csv = (
        "小区编码,姓名,证件号码,联系电话,人员类别\n"
        f"{community_code},上传甲,{good},13700001111,户籍人口\n"
        f"{community_code},上传乙,110101198203040000,13700002222,户籍人口\n"
    ).encode("utf-8-sig")
    resp = client.post(
        "/transfer/import",
        data={"csrf_token": csrf, "kind": "people"},
        files={"file": ("people.csv", csv, "text/csv")},
    )
    assert resp.status_code == 200, resp.text[:400]
    assert "上传乙" not in resp.text  # names are not echoed; the row number and column are
    assert "证件号码" in resp.text and "校验码错误" in resp.text
    people = client.get("/people", params={"q": "上传甲"})
    assert "上传甲" in people.text
    # The same file again creates nothing new.
    again = client.post(
        "/transfer/import",
        data={"csrf_token": csrf, "kind": "people"},
        files={"file": ("people.csv", csv, "text/csv")},
    )
    assert again.status_code == 200
    listed = client.get("/api/v1/people", params={"q": "上传甲"}).json()
    assert listed["total"] == 1


def test_upload_of_a_non_spreadsheet_is_refused_clearly(client):
    csrf = sign_in(client, "admin", ADMIN_PASSWORD)
    resp = client.post(
        "/transfer/import",
        data={"csrf_token": csrf},
        files={"file": ("photo.xlsx", b"\x89PNG not a sheet", "application/octet-stream")},
    )
    assert resp.status_code == 422
    assert 'class="alert error"' in resp.text


def test_template_imports_cleanly_and_export_is_masked(client, community_code):
    csrf = sign_in(client, "admin", ADMIN_PASSWORD)
    template = client.get("/transfer/template", params={"community": community_code})
    assert template.status_code == 200
    resp = client.post(
        "/transfer/import",
        data={"csrf_token": csrf},
        files={"file": ("template.xlsx", template.content, transfer_views_xlsx())},
    )
    assert resp.status_code == 200
    assert "被拒绝的行" not in resp.text, resp.text[resp.text.find("report") :][:2000]
    export = client.get(
        "/transfer/export", params={"kind": "people", "fmt": "xlsx", "community": community_code}
    )
    assert export.status_code == 200
    sheet = openpyxl.load_workbook(io.BytesIO(export.content)).active
    values = [str(c.value) for row in sheet.iter_rows() for c in row if c.value is not None]
    assert any("**********" in v for v in values)
    assert not any(v.isdigit() and len(v) == 18 for v in values)


def transfer_views_xlsx() -> str:
    from anju.web.transfer_views import XLSX

    return XLSX


def test_sample_workbook_has_every_kind():
    book = openpyxl.load_workbook(io.BytesIO(transfer.sample_workbook("C001")))
    assert len(book.sheetnames) >= 5
