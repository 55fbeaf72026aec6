"""Registry import and export (SQLite and PostgreSQL), and the two CLI commands."""

from __future__ import annotations

import base64
import csv
import datetime as dt
import io
import json
import zipfile
from pathlib import Path
from typing import Any

import openpyxl
import pytest
import typer
from sqlalchemy import func, select
from typer.testing import CliRunner

from anju.core.scope import Actor
from anju.org.models import OrgUnit
from anju.registry import schemas, transfer
from anju.registry import service as registry
from anju.registry.models import Building, House, Organisation, Person, Residency, Vehicle
from anju.registry.transfer import ImportReport, Kind, TransferError
from anju.registry.transfer_cli import export_command, import_command
from tests import factories as f

ZHANG = f.resident_id_for("360426", "19910101", 7)
LI = f.resident_id_for("120103", "19880601", 824)
WANG = f.resident_id_for("110101", "19750315", 33)
BAD_CHECK = ZHANG[:-1] + ("0" if ZHANG[-1] != "0" else "1")


def xlsx(sheets: dict[str, list[list[Any]]]) -> bytes:
    """A workbook with the given sheets (first row of each: whatever the test puts there)."""
    book = openpyxl.Workbook()
    book.remove(book.active)
    for name, rows in sheets.items():
        sheet = book.create_sheet(name)
        for row in rows:
            sheet.append(row)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def csv_bytes(rows: list[list[Any]], encoding: str) -> bytes:
    out = io.StringIO(newline="")
    csv.writer(out, lineterminator="\r\n").writerows(rows)
    return out.getvalue().encode(encoding)


def count(ctx, model: Any, code: str | None = None) -> int:
    """Rows of a table; with ``code``, only those of that community (other tests commit rows)."""
    stmt = select(func.count()).select_from(model)
    if code is not None:
        stmt = stmt.join(OrgUnit, OrgUnit.id == model.community_id).where(OrgUnit.code == code)
    return int(ctx.session.scalar(stmt) or 0)


def rejected(report: ImportReport) -> dict[tuple[str, int], tuple[str, str, str]]:
    """(sheet, row) → (column, value, reason) of each rejection."""
    return {(r.sheet, r.row): (r.column, r.value, r.reason) for r in report.rejections}


def mixed_workbook(code: str) -> bytes:
    """Good and bad rows of every kind; the people sheet has a title row above its headers."""
    return xlsx(
        {
            "人员": [
                ["实有人口登记表"],
                [
                    "小区编码",
                    "*姓名",
                    "证件类型",
                    "证件号码",
                    "联系电话",
                    "人员类别",
                    "民族",
                    "户籍地址",
                    "来由",
                    "到达日期",
                    "标签",
                ],
                [
                    code,
                    "张伟",
                    "居民身份证",
                    ZHANG,
                    "13800138000",
                    "户籍人口",
                    "汉族",
                    "江西省德安县",
                    None,
                    None,
                    "党员",
                ],
                [
                    code,
                    "李娜",
                    "身份证",
                    LI,
                    13912345678,
                    "流动人口",
                    "汉族",
                    "天津市河西区",
                    "务工",
                    dt.datetime(2024, 3, 1),
                    "独居老人、志愿者",
                ],
                [code, "赵错", "居民身份证", BAD_CHECK, None, "户籍人口"],
                [code, None, "居民身份证", WANG, None, "户籍人口"],
            ],
            "房屋": [
                ["小区编码", "楼栋", "单元", "楼层", "房号", "用途", "面积", "门牌已安装"],
                [code, "1", "1", 3, "302", "自住", 89.5, "是"],
                [code, "1号楼", "2单元", "5层", "501室", "rented", "62", "否"],
                ["NOPE", "1", "1", 4, "401", "自住", None, None],
            ],
            "居住关系": [
                [
                    "证件号码",
                    "姓名",
                    "小区编码",
                    "楼栋",
                    "单元",
                    "楼层",
                    "房号",
                    "关系",
                    "起始日期",
                    "租期截止",
                ],
                [ZHANG, "张伟", code, "1", "1", 3, "302", "业主", "2020-06-01", None],
                [LI, "李娜", code, "9", "9", 9, "909", "租户", "2024-03-01", None],
                [LI, "李娜", code, "1", "2", 5, "501", "租户", "2024-13-45", None],
                [LI, "李娜", code, "1", "2", 5, "501", "租户", "2024/3/1", "2025年2月28日"],
            ],
            "车辆": [
                ["小区编码", "车牌号", "颜色", "品牌", "车主证件号码", "车主姓名"],
                [code, "赣G·12345", "白色", "大众", ZHANG, "张伟"],
                [code, "京A1O345", "黑色", None, LI, None],
            ],
            "单位": [
                ["小区编码", "单位名称", "类型", "统一社会信用代码", "联系电话"],
                [code, "便民超市", "商铺", "92360426MA3A123452", "0792-2345678"],
            ],
        }
    )


def test_import_reports_each_bad_row_and_keeps_the_good_ones(ctx):
    t = f.tree(ctx, "IMP")
    report = transfer.import_file(ctx, mixed_workbook(t.community.code), filename="mixed.xlsx")

    c = report.counts
    assert (c[Kind.PEOPLE].created, c[Kind.PEOPLE].rejected) == (2, 2)
    assert (c[Kind.HOUSES].created, c[Kind.HOUSES].rejected) == (2, 1)
    assert (c[Kind.RESIDENCIES].created, c[Kind.RESIDENCIES].rejected) == (2, 2)
    assert (c[Kind.VEHICLES].created, c[Kind.VEHICLES].rejected) == (1, 1)
    assert c[Kind.ORGANISATIONS].created == 1
    assert report.buildings_created == 1 and report.units_created == 2

    bad = rejected(report)
    assert bad[("人员", 5)] == (
        "证件号码",
        BAD_CHECK[:4] + "*" * 10 + BAD_CHECK[-4:],
        "ID number check digit is wrong",
    )
    assert bad[("人员", 6)][0] == "*姓名" and bad[("人员", 6)][2] == "this field is required"
    assert bad[("房屋", 4)] == ("小区编码", "NOPE", "community does not exist")
    assert bad[("居住关系", 3)][0] == "房号" and "no such house" in bad[("居住关系", 3)][2]
    assert bad[("居住关系", 4)] == ("起始日期", "2024-13-45", "must be a date like 2026-01-31")
    column, value, reason = bad[("车辆", 3)]
    assert (column, value) == ("车牌号", "京A1O345") and "plate" in reason
    assert len(report.rejections) == 6
    # No clear ID number or phone anywhere in the report.
    dumped = json.dumps(report.to_dict(), ensure_ascii=False)
    assert BAD_CHECK not in dumped and ZHANG not in dumped and "13912345678" not in dumped

    li = registry.people.find_by_id_number(ctx, LI)
    assert li is not None and li.category == "floating" and li.reason_code == "01"
    assert li.arrival_date == dt.date(2024, 3, 1) and li.phone_masked == "139****5678"
    assert {t.code for t in li.tags} == {"elderly_alone", "volunteer"}
    house = ctx.session.scalar(select(House).where(House.address_code == "IMPC-B1-U2-R501"))
    assert house is not None and house.use == "rented" and house.floor.number == 5
    residency = ctx.session.scalar(select(Residency).where(Residency.house_id == house.id))
    assert residency.person_id == li.id and residency.lease_end == dt.date(2025, 2, 28)
    vehicle = ctx.session.scalar(select(Vehicle).where(Vehicle.plate == "赣G12345"))
    assert vehicle is not None and vehicle.plate_kind == "ordinary"
    assert vehicle.owner_id == registry.people.find_by_id_number(ctx, ZHANG).id
    org = ctx.session.scalar(select(Organisation).where(Organisation.name == "便民超市"))
    assert org.kind == "shop" and org.contact_phone_masked == "079****5678"


def test_reimporting_the_same_file_creates_nothing(ctx):
    t = f.tree(ctx, "RE")
    content = mixed_workbook(t.community.code)
    first = transfer.import_file(ctx, content, filename="mixed.xlsx")
    before = [count(ctx, m) for m in (Person, House, Building, Residency, Vehicle, Organisation)]

    again = transfer.import_file(ctx, content, filename="mixed.xlsx")

    after = [count(ctx, m) for m in (Person, House, Building, Residency, Vehicle, Organisation)]
    assert after == before
    for kind, counts in again.counts.items():
        assert counts.created == counts.updated == 0
        assert counts.unchanged == first.counts[kind].created
        assert counts.rejected == first.counts[kind].rejected
    assert again.buildings_created == again.units_created == 0


def test_changed_row_updates_the_matched_record(ctx):
    t = f.tree(ctx, "UPD")
    code = t.community.code
    header = ["小区编码", "姓名", "证件号码", "联系电话", "民族"]
    transfer.import_file(
        ctx,
        xlsx({"人员": [header, [code, "王五", WANG, "13800000001", "汉族"]]}),
        filename="a.xlsx",
    )
    report = transfer.import_file(
        ctx,
        xlsx({"人员": [header, [code, "王五", WANG, "13800000002", "回族"]]}),
        filename="b.xlsx",
    )
    assert report.counts[Kind.PEOPLE].updated == 1
    person = registry.people.find_by_id_number(ctx, WANG)
    assert person.ethnicity == "回族" and person.phone_masked == "138****0002"
    assert count(ctx, Person, code) == 1


def _seed_houses_and_vehicles(ctx, code: str) -> None:
    transfer.import_file(
        ctx,
        xlsx(
            {
                "人员": [
                    ["小区编码", "姓名", "证件号码"],
                    [code, "张伟", ZHANG],
                    [code, "李娜", LI],
                ],
                "房屋": [
                    [
                        "小区编码",
                        "楼栋",
                        "单元",
                        "楼层",
                        "房号",
                        "用途",
                        "面积",
                        "房间数",
                        "门牌已安装",
                        "房主证件号码",
                        "房主姓名",
                    ],
                    [code, "2", "1", 1, "101", "自住", 120.25, 4, "是", ZHANG, "张伟"],
                    [code, "2", "1", -1, "B01", "空置", None, None, "否", None, None],
                ],
                "车辆": [
                    ["小区编码", "车牌号", "颜色", "品牌", "车主证件号码"],
                    [code, "津AD12345", "蓝色", "比亚迪", LI],
                    [code, "津B12345", None, None, None],
                ],
            }
        ),
        filename="seed.xlsx",
    )


@pytest.mark.parametrize("fmt", ["xlsx", "csv"])
def test_export_then_reimport_houses_and_vehicles_changes_nothing(ctx, fmt):
    t = f.tree(ctx, "RT" + fmt.upper())
    code = t.community.code
    _seed_houses_and_vehicles(ctx, code)
    before = (count(ctx, House), count(ctx, Vehicle), count(ctx, Person))

    for kind in (Kind.HOUSES, Kind.VEHICLES):
        exported = transfer.export_file(ctx, kind, fmt)
        report = transfer.import_file(ctx, exported, filename=f"{kind}.{fmt}")
        assert report.rejections == []
        assert report.counts[kind].unchanged == 2 and report.counts[kind].rows == 2

    assert (count(ctx, House), count(ctx, Vehicle), count(ctx, Person)) == before
    owner = ctx.session.scalar(select(House).where(House.room == "101")).owner
    assert registry.people.reveal(ctx, owner, "id_number") == ZHANG  # not the mask


def test_edited_export_updates_and_masked_owner_is_kept(ctx):
    t = f.tree(ctx, "ED")
    _seed_houses_and_vehicles(ctx, t.community.code)
    book = openpyxl.load_workbook(io.BytesIO(transfer.export_file(ctx, "houses", "xlsx")))
    sheet = book["房屋"]
    heads = [cell.value for cell in sheet[1]]
    for row in sheet.iter_rows(min_row=2):
        if row[heads.index("房号")].value == "101":
            row[heads.index("用途")].value = "出租"
            assert row[heads.index("房主证件号码")].value.startswith("3604****")
    out = io.BytesIO()
    book.save(out)

    report = transfer.import_file(ctx, out.getvalue(), filename="edited.xlsx")

    assert (report.counts[Kind.HOUSES].updated, report.counts[Kind.HOUSES].unchanged) == (1, 1)
    house = ctx.session.scalar(select(House).where(House.room == "101"))
    assert house.use == "rented" and house.owner.name == "张伟"


def test_masked_owner_of_another_person_is_refused(ctx):
    t = f.tree(ctx, "MO")
    code = t.community.code
    _seed_houses_and_vehicles(ctx, code)
    masked_li = registry.people.find_by_id_number(ctx, LI).id_number_masked
    content = xlsx(
        {
            "房屋": [
                ["小区编码", "楼栋", "单元", "楼层", "房号", "房主证件号码"],
                [code, "2", "1", 1, "101", masked_li],
            ]
        }
    )
    report = transfer.import_file(ctx, content, filename="m.xlsx")
    assert rejected(report)[("房屋", 2)] == ("房主证件号码", masked_li, transfer.MASKED_REASON)
    assert ctx.session.scalar(select(House).where(House.room == "101")).owner.name == "张伟"


def test_exported_people_are_masked_and_masked_values_never_stored(ctx):
    t = f.tree(ctx, "MASK")
    code = t.community.code
    transfer.import_file(
        ctx,
        xlsx(
            {
                "人员": [
                    ["小区编码", "姓名", "证件号码", "联系电话"],
                    [code, "张伟", ZHANG, "13800138000"],
                ]
            }
        ),
        filename="p.xlsx",
    )

    as_csv = transfer.export_file(ctx, "people", "csv", community_code=code)
    as_xlsx = transfer.export_file(ctx, "people", "xlsx", community_code=code)

    text = as_csv.decode("utf-8-sig")
    assert "3604**********" + ZHANG[-4:] in text and "138****8000" in text
    assert ZHANG not in text and "13800138000" not in text
    with zipfile.ZipFile(io.BytesIO(as_xlsx)) as archive:
        parts = b"".join(archive.read(name) for name in archive.namelist()).decode()
    assert ZHANG not in parts and "13800138000" not in parts and "张伟" in parts

    report = transfer.import_file(ctx, as_csv, filename="people.csv")
    assert report.counts[Kind.PEOPLE].rejected == 1 and count(ctx, Person, code) == 1
    problem = report.rejections[0]
    assert (problem.column, problem.value, problem.reason) == (
        "证件号码",
        "3604**********" + ZHANG[-4:],
        transfer.MASKED_REASON,
    )
    person = registry.people.find_by_id_number(ctx, ZHANG)
    assert registry.people.reveal(ctx, person, "id_number") == ZHANG


def test_whole_registry_round_trip_only_people_need_full_numbers(ctx):
    t = f.tree(ctx, "ALL")
    transfer.import_file(ctx, transfer.sample_workbook(t.community.code), filename="s.xlsx")
    before = [count(ctx, m) for m in (Person, House, Residency, Vehicle, Organisation)]

    report = transfer.import_file(ctx, transfer.export_workbook(ctx), filename="all.xlsx")

    assert [count(ctx, m) for m in (Person, House, Residency, Vehicle, Organisation)] == before
    assert {r.sheet for r in report.rejections} == {"人员"}
    assert all(r.reason == transfer.MASKED_REASON for r in report.rejections)
    for kind in (Kind.HOUSES, Kind.RESIDENCIES, Kind.VEHICLES, Kind.ORGANISATIONS):
        assert report.counts[kind].unchanged == 2 and report.counts[kind].rejected == 0


def test_sample_workbook_imports_cleanly(ctx):
    t = f.tree(ctx, "SAMPLE")
    report = transfer.import_file(
        ctx, transfer.sample_workbook(t.community.code), filename="template.xlsx"
    )
    assert report.rejections == [] and report.notes == []
    assert {k: c.created for k, c in report.counts.items()} == {k: 2 for k in Kind}


def test_csv_in_gb18030_and_utf8_bom_with_kind_from_headers(ctx):
    t = f.tree(ctx, "ENC")
    code = t.community.code
    people = csv_bytes(
        [
            ["小区编码", "姓名", "证件号码", "人员类别"],
            [code, "张伟", ZHANG, "户籍人口"],
            [code, "李娜", LI, "境外人员"],
        ],
        "gb18030",
    )
    houses = csv_bytes(
        [
            ["community_code", "building", "unit", "floor", "room", "use"],
            [code, "3", "1", "2", "201", "经营"],
        ],
        "utf-8-sig",
    )

    first = transfer.import_file(ctx, people, filename="人员.csv")
    second = transfer.import_file(ctx, houses, filename="houses.csv")

    assert first.counts[Kind.PEOPLE].created == 2 and first.rejections == []
    assert second.counts[Kind.HOUSES].created == 1 and second.rejections == []
    assert registry.people.find_by_id_number(ctx, LI).category == "overseas"
    assert ctx.session.scalar(select(House).where(House.room == "201")).use == "business"


def test_default_community_and_forced_kind(ctx):
    t = f.tree(ctx, "DEF")
    content = csv_bytes([["name", "id_number"], ["张伟", ZHANG]], "utf-8")
    report = transfer.import_file(
        ctx, content, filename="x.csv", kind="人员", community_code=t.community.code
    )
    assert report.counts[Kind.PEOPLE].created == 1
    assert registry.people.find_by_id_number(ctx, ZHANG).community_id == t.community.id
    with pytest.raises(TransferError, match="community NOWHERE does not exist"):
        transfer.import_file(ctx, content, filename="x.csv", community_code="NOWHERE")


def test_id_number_that_excel_rounded_is_refused(ctx):
    t = f.tree(ctx, "NUM")
    content = xlsx(
        {
            "人员": [
                ["小区编码", "姓名", "证件号码"],
                [t.community.code, "张伟", int(ZHANG[:17] + "0")],
            ]
        }
    )
    report = transfer.import_file(ctx, content, filename="n.xlsx")
    column, value, reason = rejected(report)[("人员", 2)]
    assert column == "证件号码" and "format the column as text" in reason
    assert "*" in value


@pytest.mark.parametrize(
    ("content", "filename", "message"),
    [
        (b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n", "report.xlsx", "not an Excel .xlsx"),
        (bytes(range(256)) * 4, "data.csv", "not a spreadsheet"),
        (b"PK\x03\x04garbage-not-a-zip", "broken.xlsx", "could not be read"),
        (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 64, "old.xls", ".xls"),
        ("颜色,味道\n红,甜\n".encode(), "fruit.csv", "no sheet with recognised column headers"),
        (b"", "empty.csv", "is empty"),
    ],
)
def test_unreadable_files_give_a_clear_error(ctx, content, filename, message):
    with pytest.raises(TransferError, match=message):
        transfer.import_file(ctx, content, filename=filename)


def test_scope_limits_import_and_export(ctx):
    mine = f.tree(ctx, "MINE")
    other = f.tree(ctx, "OTHER")
    for tree_, number in ((mine, ZHANG), (other, LI)):
        registry.people.create(
            ctx,
            schemas.PersonCreate(community_id=tree_.community.id, name="某人", id_number=number),
        )
    officer = Actor(
        user_id=None, username="o", org_path=mine.station.path, permissions=frozenset({"*"})
    )
    scoped = ctx.__class__(session=ctx.session, cipher=ctx.cipher, actor=officer)

    exported = transfer.export_file(scoped, "people", "csv").decode("utf-8-sig")
    assert "MINEC" in exported and "OTHERC" not in exported

    content = xlsx(
        {"房屋": [["小区编码", "楼栋", "单元", "楼层", "房号"], ["OTHERC", "1", "1", 1, "101"]]}
    )
    report = transfer.import_file(scoped, content, filename="h.xlsx")
    assert rejected(report)[("房屋", 2)][2] == "community does not exist"


def test_property_staff_cannot_set_or_drop_police_only_tags(ctx):
    t = f.tree(ctx, "TAG")
    code = t.community.code
    registry.people.create(
        ctx,
        schemas.PersonCreate(
            community_id=t.community.id, name="张伟", id_number=ZHANG, tags=["key_released"]
        ),
    )
    staff = Actor(user_id=None, username="p", org_path=t.community.path, permissions=frozenset())
    scoped = ctx.__class__(session=ctx.session, cipher=ctx.cipher, actor=staff)
    header = ["小区编码", "姓名", "证件号码", "标签"]
    content = xlsx(
        {"人员": [header, [code, "张伟", ZHANG, "独居老人"], [code, "李娜", LI, "涉毒人员"]]}
    )

    report = transfer.import_file(scoped, content, filename="tags.xlsx")
    assert report.counts[Kind.PEOPLE].updated == 1
    column, _, reason = rejected(report)[("人员", 3)]
    assert column == "标签" and reason.startswith("unknown tag")
    zhang = registry.people.find_by_id_number(ctx, ZHANG)
    assert {tag.code for tag in zhang.tags} == {"elderly_alone", "key_released"}
    exported = transfer.export_file(scoped, "people", "csv").decode("utf-8-sig")
    assert "独居老人" in exported and "刑满释放人员" not in exported


def test_reference_to_a_mistyped_id_number_says_what_is_wrong(ctx):
    t = f.tree(ctx, "REF")
    content = xlsx(
        {
            "车辆": [
                ["小区编码", "车牌号", "车主证件号码"],
                [t.community.code, "京A12345", BAD_CHECK],
                [t.community.code, "京A12346", WANG],
            ]
        }
    )
    report = transfer.import_file(ctx, content, filename="v.xlsx")
    assert rejected(report)[("车辆", 2)][2] == "ID number check digit is wrong"
    assert rejected(report)[("车辆", 3)][2].startswith("no person with this ID number")
    assert count(ctx, Vehicle, t.community.code) == 0


# --- the CLI -------------------------------------------------------------------------------


@pytest.fixture
def cli_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A fresh node in a temporary data folder, initialised, with one community."""
    from anju.bootstrap import bootstrap, initialise
    from anju.config import load_settings

    monkeypatch.delenv("ANJU_DATABASE_URL", raising=False)
    monkeypatch.setenv("ANJU_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("ANJU_SECRET_KEY", base64.b64encode(bytes(range(32))).decode())
    monkeypatch.setenv("ANJU_ADMIN_PASSWORD", "admin-password-for-cli-tests")
    node = bootstrap(load_settings(), create_key=False)
    try:
        initialise(node)
        with node.unit_of_work() as ctx:
            code = f.tree(ctx, "CLI").community.code
    finally:
        node.dispose()
    return code


def cli_app() -> typer.Typer:
    app = typer.Typer()
    app.command("import")(import_command)
    app.command("export")(export_command)
    return app


def test_cli_import_and_export_with_json(cli_env: str, tmp_path: Path):
    people = tmp_path / "people.csv"
    people.write_bytes(
        csv_bytes(
            [
                ["小区编码", "姓名", "证件号码", "联系电话"],
                [cli_env, "张伟", ZHANG, "13800138000"],
                [cli_env, "赵错", BAD_CHECK, ""],
            ],
            "utf-8-sig",
        )
    )
    runner = CliRunner()

    result = runner.invoke(cli_app(), ["import", str(people), "--json"])

    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["counts"]["people"] == {"created": 1, "updated": 0, "unchanged": 0, "rejected": 1}
    assert data["rejections"] == [
        {
            "sheet": "people.csv",
            "row": 3,
            "column": "证件号码",
            "value": BAD_CHECK[:4] + "*" * 10 + BAD_CHECK[-4:],
            "reason": "ID number check digit is wrong",
        }
    ]
    assert BAD_CHECK not in result.stdout

    again = runner.invoke(cli_app(), ["import", str(people)])
    assert again.exit_code == 0 and "rejected" in again.stdout

    out = tmp_path / "export.csv"
    exported = runner.invoke(cli_app(), ["export", "people", str(out), "--json"])
    assert exported.exit_code == 0, exported.output
    assert json.loads(exported.stdout)["rows"] == {"people": 1}
    assert ZHANG not in out.read_text(encoding="utf-8-sig")

    garbage = tmp_path / "notes.xlsx"
    garbage.write_bytes(b"just some text, not a workbook")
    failed = runner.invoke(cli_app(), ["import", str(garbage), "--json"])
    assert failed.exit_code == 2 and "not an Excel" in json.loads(failed.stdout)["error"]
