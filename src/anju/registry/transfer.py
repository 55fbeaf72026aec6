"""Registry import and export (批量导入导出) of people, houses, residencies, vehicles and units.

Spreadsheets (.xlsx, several sheets) and CSV files (UTF-8 with or without BOM, GB18030, UTF-16)
with Chinese column headers — or the English field names — go through the same pydantic
schemas and services as the API and the console, so a row is refused with the same words.
Records are found by their natural keys (community code, building/unit/room, ID number,
plate, credit code), never by database ids, so importing a file twice changes nothing the
second time. Exports write the headers the importer reads, with ID numbers and phones masked;
a masked value read back is recognised and never stored.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import logging
import re
import zipfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from enum import Enum, StrEnum
from pathlib import Path
from typing import Any, Literal, TypeVar

import openpyxl
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.utils import get_column_letter
from openpyxl.utils.exceptions import InvalidFileException
from openpyxl.worksheet.datavalidation import DataValidation
from pydantic import BaseModel, ValidationError
from sqlalchemy import Select, select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import selectinload

from anju.audit import service as audit
from anju.core import validation
from anju.core.context import Ctx
from anju.core.crypto import mask
from anju.core.errors import (
    PLAIN_MESSAGES,
    DomainError,
    FieldError,
    PermissionDenied,
    ValidationFailed,
    field_errors,
)
from anju.core.scope import in_scope
from anju.org.models import Level, OrgUnit
from anju.registry import schemas
from anju.registry import service as registry
from anju.registry.models import (
    Building,
    BuildingUnit,
    House,
    HouseUse,
    IdType,
    Organisation,
    OrganisationKind,
    ParkingSpace,
    Person,
    PersonCategory,
    Relation,
    Residency,
    Sex,
    Tag,
    Vehicle,
)

log = logging.getLogger(__name__)

S = TypeVar("S", bound=BaseModel)
T = TypeVar("T")
Outcome = Literal["created", "updated", "unchanged"]


class Kind(StrEnum):
    """The kinds of record a file may carry, in the order rows are imported (dependencies)."""

    PEOPLE = "people"
    HOUSES = "houses"
    RESIDENCIES = "residencies"
    VEHICLES = "vehicles"
    ORGANISATIONS = "organisations"


SHEET_NAMES: dict[Kind, str] = {
    Kind.PEOPLE: "人员",
    Kind.HOUSES: "房屋",
    Kind.RESIDENCIES: "居住关系",
    Kind.VEHICLES: "车辆",
    Kind.ORGANISATIONS: "单位",
}

# Other names a sheet (or the --kind option) may carry for each kind.
_KIND_NAMES: dict[str, Kind] = {
    **{kind.value: kind for kind in Kind},
    **{name: kind for kind, name in SHEET_NAMES.items()},
    "person": Kind.PEOPLE,
    "persons": Kind.PEOPLE,
    "实有人口": Kind.PEOPLE,
    "人口": Kind.PEOPLE,
    "house": Kind.HOUSES,
    "实有房屋": Kind.HOUSES,
    "residency": Kind.RESIDENCIES,
    "vehicle": Kind.VEHICLES,
    "organisation": Kind.ORGANISATIONS,
    "organization": Kind.ORGANISATIONS,
    "organizations": Kind.ORGANISATIONS,
    "实有单位": Kind.ORGANISATIONS,
}

# Sheets that explain a template; skipped without a note.
_README_SHEETS = frozenset({"说明", "填写说明", "readme"})

README_SHEET = "说明"

MASKED_REASON = "masked value (as exported), not imported: enter the full number"
_NO_PERSON = "no person with this ID number is registered (import the person first)"
_NO_HOUSE = "no such house in this community (import the house first)"
_NAME_MISMATCH = "does not match the name registered for this ID number"
_LOST_DIGITS = (
    "Excel stored this number as a numeric value and dropped its last digits: "
    "format the column as text and enter the number again"
)


class TransferError(DomainError):
    """The file could not be read as a registry spreadsheet, or the request makes no sense."""


# --- values shown to people: Chinese labels of the enums ----------------------------------

ENUM_LABELS: dict[type[Enum], dict[str, str]] = {
    IdType: {
        "resident_id": "居民身份证",
        "passport": "护照",
        "hk_macao": "港澳居民来往内地通行证",
        "taiwan": "台湾居民来往大陆通行证",
        "foreign_pr": "外国人永久居留身份证",
        "other": "其他",
    },
    Sex: {"male": "男", "female": "女", "unknown": "未知"},
    PersonCategory: {
        "registered": "户籍人口",
        "floating": "流动人口",
        "unsettled": "未落户人员",
        "overseas": "境外人员",
    },
    HouseUse: {"self_occupied": "自住", "rented": "出租", "vacant": "空置", "business": "经营"},
    Relation: {
        "owner": "业主",
        "family": "家庭成员",
        "tenant": "租户",
        "custodian": "托管人",
        "other": "其他",
    },
    OrganisationKind: {
        "shop": "商铺",
        "kindergarten": "幼儿园",
        "school": "学校",
        "company": "企业",
        "clinic": "诊所",
        "property": "物业公司",
        "other": "其他",
    },
}

# Other spellings found in police and property spreadsheets.
_ENUM_ALIASES: dict[type[Enum], dict[str, str]] = {
    IdType: {
        "身份证": "resident_id",
        "港澳通行证": "hk_macao",
        "台胞证": "taiwan",
        "外国人永久居留证": "foreign_pr",
    },
    PersonCategory: {"户籍": "registered", "流动": "floating", "未落户": "unsettled"},
    HouseUse: {"出租屋": "rented", "闲置": "vacant", "商用": "business"},
    Relation: {"房主": "owner", "产权人": "owner", "家属": "family", "租客": "tenant"},
    OrganisationKind: {"商店": "shop", "公司": "company", "物业": "property"},
}

_TRUE = frozenset({"是", "有", "已安装", "已装", "y", "yes", "true", "1", "√", "✓"})
_FALSE = frozenset({"否", "无", "未安装", "未装", "n", "no", "false", "0", "×", "✗"})


def label(value: Enum | None) -> str:
    """The Chinese label of an enum value, as written in exports."""
    if value is None:
        return ""
    return ENUM_LABELS.get(type(value), {}).get(str(value.value), str(value.value))


# --- cell parsers ------------------------------------------------------------------------

Parser = Callable[[Any], Any]


def _text(raw: Any) -> str:
    """A cell as text: numbers without a spurious ``.0``, dates in ISO form, spaces trimmed."""
    if raw is None:
        return ""
    if isinstance(raw, bool):
        return "是" if raw else "否"
    if isinstance(raw, float) and raw.is_integer():
        return str(int(raw))
    if isinstance(raw, dt.datetime):
        return raw.date().isoformat() if raw.time() == dt.time() else raw.isoformat(" ")
    if isinstance(raw, dt.date):
        return raw.isoformat()
    return str(raw).replace("\u3000", " ").strip()


def _number_text(raw: Any) -> str:
    """An identifier typed into a cell: refuse one Excel turned into a rounded number."""
    if isinstance(raw, int | float) and not isinstance(raw, bool) and abs(raw) >= 1e15:
        raise ValueError(_LOST_DIGITS)
    text = _text(raw)
    if _SCIENTIFIC.match(text):
        raise ValueError(_LOST_DIGITS)
    return text


_SCIENTIFIC = re.compile(r"^\d(\.\d+)?E\+?\d+$", re.IGNORECASE)
_DATE = re.compile(r"^(\d{4})\s*[-/.年]\s*(\d{1,2})\s*[-/.月]\s*(\d{1,2})\s*日?(?:[ T].*)?$")
_COMPACT_DATE = re.compile(r"^(\d{4})(\d{2})(\d{2})$")


def _date(raw: Any) -> dt.date:
    if isinstance(raw, dt.datetime):
        return raw.date()
    if isinstance(raw, dt.date):
        return raw
    text = _text(raw)
    match = _DATE.match(text) or _COMPACT_DATE.match(text)
    if match is None:
        raise ValueError(PLAIN_MESSAGES["date_parsing"])
    try:
        return dt.date(int(match[1]), int(match[2]), int(match[3]))
    except ValueError:
        raise ValueError(PLAIN_MESSAGES["date_parsing"]) from None


def _int(raw: Any) -> int:
    if isinstance(raw, bool):
        raise ValueError(PLAIN_MESSAGES["int_parsing"])
    if isinstance(raw, int):
        return raw
    if isinstance(raw, float) and raw.is_integer():
        return int(raw)
    text = re.sub(r"(人|个|间|室)$", "", _text(raw))
    if not re.fullmatch(r"[+-]?\d+", text):
        raise ValueError(PLAIN_MESSAGES["int_parsing"])
    return int(text)


def _float(raw: Any) -> float:
    if isinstance(raw, int | float) and not isinstance(raw, bool):
        return float(raw)
    text = re.sub(r"\s*(㎡|m²|m2|平方米|平米)$", "", _text(raw), flags=re.IGNORECASE)
    try:
        return float(text)
    except ValueError:
        raise ValueError(PLAIN_MESSAGES["float_parsing"]) from None


def _bool(raw: Any) -> bool:
    if isinstance(raw, bool):
        return raw
    text = _text(raw).lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ValueError("must be 是 or 否")


def _floor(raw: Any) -> int:
    """楼层: ``3``, ``3层``, ``-1``, ``B1`` or ``地下1层``."""
    if isinstance(raw, int | float) and not isinstance(raw, bool):
        return _int(raw)
    text = re.sub(r"(层|楼)$", "", _text(raw)).upper()
    below = re.fullmatch(r"(?:B|地下|负)(\d+)", text)
    if below:
        return -int(below[1])
    return _int(text)


def _building(raw: Any) -> str:
    return re.sub(r"(号楼|栋|幢|座|号)$", "", _text(raw)).strip()


def _unit(raw: Any) -> str:
    return re.sub(r"单元$", "", _text(raw)).strip()


def _room(raw: Any) -> str:
    return re.sub(r"(室|号)$", "", _text(raw)).strip()


def _reason(raw: Any) -> str:
    """来由: the national code (``01``, ``1``, ``01 务工``) or its label (``务工``)."""
    if isinstance(raw, int | float) and not isinstance(raw, bool):
        return f"{int(raw):02d}"
    text = _text(raw)
    code = re.match(r"^(\d{1,2})\b", text)
    if code:
        return f"{int(code[1]):02d}"
    for number, name in schemas.REASON_CODES.items():
        if text == name:
            return number
    return text  # the schema refuses it with the list of codes


def _tags(raw: Any) -> list[str]:
    return [t for t in re.split(r"[,，、;；\s]+", _text(raw)) if t]


def _plate(raw: Any) -> str:
    return validation.normalise_plate(_text(raw))


def enum_parser(kind: type[Enum]) -> Parser:
    """A parser accepting an enum's value or its Chinese label (or a common alias)."""
    names: dict[str, str] = {str(m.value): str(m.value) for m in kind}
    names.update({text: value for value, text in ENUM_LABELS.get(kind, {}).items()})
    names.update(_ENUM_ALIASES.get(kind, {}))
    allowed = "、".join(ENUM_LABELS.get(kind, {}).values())
    english = ", ".join(str(m.value) for m in kind)

    def parse(raw: Any) -> str:
        text = _text(raw)
        value = names.get(text) or names.get(text.lower())
        if value is None:
            raise ValueError(f"must be one of {allowed} (or {english})")
        return value

    return parse


# --- columns -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Column:
    """One column of a sheet: the field it fills, its Chinese header and how cells are read."""

    field: str
    header: str
    parse: Parser = _text
    required: bool = False
    aliases: tuple[str, ...] = ()
    sensitive: bool = False  # ID numbers and phones: shown masked, never in clear
    text: bool = False  # written as a text cell, so Excel keeps leading zeros and digits
    width: int = 12
    choices: tuple[str, ...] = ()  # offered as a drop-down in written workbooks


def _choices(kind: type[Enum]) -> tuple[str, ...]:
    return tuple(ENUM_LABELS[kind].values())


_COMMUNITY = Column("community_code", "小区编码", aliases=("小区代码",), text=True, width=14)
_BUILDING = Column("building", "楼栋", _building, True, ("楼栋号", "楼号"), text=True, width=8)
_UNIT = Column("unit", "单元", _unit, True, ("单元号",), text=True, width=8)
_FLOOR = Column("floor", "楼层", _floor, width=8)
_ROOM = Column("room", "房号", _room, True, ("房间号", "室号"), text=True, width=8)
_ID_NUMBER = Column(
    "id_number",
    "证件号码",
    _number_text,
    True,
    ("身份证号", "身份证号码", "公民身份号码"),
    sensitive=True,
    text=True,
    width=22,
)

COLUMNS: dict[Kind, tuple[Column, ...]] = {
    Kind.PEOPLE: (
        _COMMUNITY,
        Column("name", "姓名", required=True, width=10),
        Column("id_type", "证件类型", enum_parser(IdType), width=14, choices=_choices(IdType)),
        _ID_NUMBER,
        Column("sex", "性别", enum_parser(Sex), width=6, choices=_choices(Sex)),
        Column("birth_date", "出生日期", _date, width=12),
        Column(
            "phone",
            "联系电话",
            _number_text,
            aliases=("手机号", "手机号码", "电话"),
            sensitive=True,
            text=True,
            width=14,
        ),
        Column(
            "category",
            "人员类别",
            enum_parser(PersonCategory),
            width=12,
            choices=_choices(PersonCategory),
        ),
        Column("ethnicity", "民族", width=8),
        Column("household_address", "户籍地址", width=30),
        Column(
            "reason_code",
            "来由",
            _reason,
            width=10,
            choices=tuple(schemas.REASON_CODES.values()),
        ),
        Column("arrival_date", "到达日期", _date, width=12),
        Column("leaving_date", "离开日期", _date, width=12),
        Column("tags", "标签", _tags, width=16),
        Column("notes", "备注", width=20),
    ),
    Kind.HOUSES: (
        _COMMUNITY,
        _BUILDING,
        _UNIT,
        Column("floor", "楼层", _floor, True, width=8),
        _ROOM,
        Column(
            "use", "用途", enum_parser(HouseUse), aliases=("房屋用途",), choices=_choices(HouseUse)
        ),
        Column("area", "面积", _float, aliases=("建筑面积", "面积(㎡)", "面积（㎡）"), width=10),
        Column("rooms", "房间数", _int, width=8),
        Column(
            "plate_installed",
            "门牌已安装",
            _bool,
            aliases=("已装门牌",),
            width=10,
            choices=("是", "否"),
        ),
        Column(
            "owner_id_number",
            "房主证件号码",
            _number_text,
            aliases=("业主证件号码", "房主身份证号"),
            sensitive=True,
            text=True,
            width=22,
        ),
        Column("owner_name", "房主姓名", aliases=("业主姓名",), width=10),
        Column("notes", "备注", width=20),
    ),
    Kind.RESIDENCIES: (
        _ID_NUMBER,
        Column("name", "姓名", width=10),
        _COMMUNITY,
        _BUILDING,
        _UNIT,
        _FLOOR,
        _ROOM,
        Column(
            "relation",
            "关系",
            enum_parser(Relation),
            True,
            ("与房屋关系", "居住类型"),
            width=10,
            choices=_choices(Relation),
        ),
        Column("start_date", "起始日期", _date, True, ("入住日期", "开始日期"), width=12),
        Column("lease_end", "租期截止", _date, aliases=("租赁截止日期",), width=12),
        Column("end_date", "离开日期", _date, aliases=("搬离日期",), width=12),
        Column("end_reason", "离开原因", width=16),
    ),
    Kind.VEHICLES: (
        _COMMUNITY,
        Column("plate", "车牌号", _plate, True, ("车牌", "车牌号码", "号牌号码"), width=12),
        Column("colour", "颜色", aliases=("车身颜色", "color"), width=8),
        Column("brand", "品牌", aliases=("品牌型号",), width=12),
        Column(
            "owner_id_number",
            "车主证件号码",
            _number_text,
            aliases=("车主身份证号",),
            sensitive=True,
            text=True,
            width=22,
        ),
        Column("owner_name", "车主姓名", width=10),
        Column("parking_space", "车位编号", aliases=("车位",), text=True, width=10),
    ),
    Kind.ORGANISATIONS: (
        _COMMUNITY,
        Column("name", "单位名称", required=True, width=24),
        Column(
            "kind",
            "类型",
            enum_parser(OrganisationKind),
            True,
            ("单位类型",),
            width=10,
            choices=_choices(OrganisationKind),
        ),
        Column("credit_code", "统一社会信用代码", aliases=("信用代码",), text=True, width=22),
        Column("legal_representative", "法定代表人", aliases=("法人",), width=10),
        Column("contact_name", "联系人", width=10),
        Column(
            "contact_phone",
            "联系电话",
            _number_text,
            aliases=("手机号", "电话"),
            sensitive=True,
            text=True,
            width=14,
        ),
        Column("address", "地址", aliases=("单位地址",), width=30),
        Column("employees", "从业人数", _int, aliases=("员工人数",), width=10),
        Column("building", "楼栋", _building, aliases=("楼栋号", "楼号"), text=True, width=8),
        Column("unit", "单元", _unit, aliases=("单元号",), text=True, width=8),
        _FLOOR,
        Column("room", "房号", _room, aliases=("房间号", "室号"), text=True, width=8),
    ),
}

# Schema and service field names that stand for a column of another name.
_FIELD_COLUMNS: dict[str, str] = {
    "community_id": "community_code",
    "unit_id": "unit",
    "person_id": "id_number",
    "house_id": "room",
    "owner_id": "owner_id_number",
    "parking_space_id": "parking_space",
    "reason": "end_reason",
}


def _normalise_header(text: str) -> str:
    """Headers compare without spaces, required-markers (``*``, ``（必填）``) and case."""
    text = re.sub(r"（必填）|\(必填\)|[\s*＊:：]", "", text)
    return text.lower()


def _header_index(kind: Kind) -> dict[str, str]:
    index: dict[str, str] = {}
    for column in COLUMNS[kind]:
        for name in (column.header, column.field, *column.aliases):
            index.setdefault(_normalise_header(name), column.field)
    return index


_HEADERS: dict[Kind, dict[str, str]] = {kind: _header_index(kind) for kind in Kind}


def headers(kind: Kind) -> list[str]:
    """The Chinese headers of a kind, in the order exports write them."""
    return [c.header for c in COLUMNS[kind]]


def parse_kind(name: str | Kind) -> Kind:
    """A kind from its English name, its sheet name or an alias (``people``, ``人员`` …)."""
    if isinstance(name, Kind):
        return name
    kind = _KIND_NAMES.get(_normalise_header(name))
    if kind is None:
        raise TransferError(
            f"unknown kind {name!r}: use one of " + ", ".join(k.value for k in Kind)
        )
    return kind


# --- the report --------------------------------------------------------------------------


@dataclass
class KindCounts:
    """What happened to the rows of one kind."""

    created: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: int = 0

    @property
    def rows(self) -> int:
        """Rows of this kind read from the file."""
        return self.created + self.updated + self.unchanged + self.rejected

    def add(self, outcome: Outcome) -> None:
        """Count one accepted row."""
        setattr(self, outcome, getattr(self, outcome) + 1)


@dataclass(frozen=True)
class Rejection:
    """One problem with one row: where it is, the value (masked when sensitive) and why."""

    sheet: str
    row: int
    column: str
    value: str
    reason: str


@dataclass
class ImportReport:
    """The outcome of one import: counts per kind, every rejection, and notes on the file."""

    filename: str
    counts: dict[Kind, KindCounts] = field(default_factory=dict)
    rejections: list[Rejection] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    buildings_created: int = 0
    units_created: int = 0

    @property
    def rows_rejected(self) -> int:
        return sum(c.rejected for c in self.counts.values())

    @property
    def rows_accepted(self) -> int:
        return sum(c.rows - c.rejected for c in self.counts.values())

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready form (what ``anju import --json`` prints)."""
        return {
            "filename": self.filename,
            "counts": {
                kind.value: {
                    "created": c.created,
                    "updated": c.updated,
                    "unchanged": c.unchanged,
                    "rejected": c.rejected,
                }
                for kind, c in self.counts.items()
            },
            "rows_accepted": self.rows_accepted,
            "rows_rejected": self.rows_rejected,
            "buildings_created": self.buildings_created,
            "units_created": self.units_created,
            "rejections": [
                {
                    "sheet": r.sheet,
                    "row": r.row,
                    "column": r.column,
                    "value": r.value,
                    "reason": r.reason,
                }
                for r in self.rejections
            ],
            "notes": list(self.notes),
        }


# --- reading files -----------------------------------------------------------------------

_OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_ZIP_MAGIC = b"PK\x03\x04"
_HEADER_SEARCH_ROWS = 10


@dataclass
class _Table:
    """A sheet (or a CSV file) as read: its name and its non-empty rows by row number."""

    name: str
    rows: list[tuple[int, list[Any]]]


@dataclass
class _Row:
    """One data row: the cells by field, and the header text each came from."""

    sheet: str
    number: int
    kind: Kind
    cells: dict[str, Any]
    headers: dict[str, str]

    def column(self, name: str) -> str:
        """The column as headed in the file, or its standard header when the file lacks it."""
        if name in self.headers:
            return self.headers[name]
        for column in COLUMNS[self.kind]:
            if column.field == name:
                return column.header
        return ""

    def shown(self, name: str) -> str:
        """The cell as text for a report: masked when it is (or looks like) an ID or phone."""
        text = _text(self.cells.get(name))
        sensitive = any(c.field == name and c.sensitive for c in COLUMNS[self.kind])
        if text and (sensitive or re.search(r"\d{11,}", text)) and not _is_masked(text):
            return mask(text)
        return text


@dataclass
class _Sheet:
    """A table recognised as one kind, with the rows to import."""

    name: str
    kind: Kind
    rows: list[_Row]


def _is_masked(value: Any) -> bool:
    return isinstance(value, str) and ("*" in value or "＊" in value)


def _read_bytes(path_or_bytes: str | Path | bytes) -> bytes:
    if isinstance(path_or_bytes, bytes):
        return path_or_bytes
    try:
        return Path(path_or_bytes).read_bytes()
    except OSError as exc:
        raise TransferError(f"cannot read {path_or_bytes}: {exc.strerror or exc}") from None


def _read_tables(content: bytes, filename: str, notes: list[str]) -> tuple[list[_Table], bool]:
    """The tables of a file and whether it was a workbook (several named sheets)."""
    suffix = Path(filename).suffix.lower()
    if content.startswith(_OLE_MAGIC) or suffix == ".xls":
        raise TransferError(
            f"{filename} is an old Excel 97-2003 (.xls) workbook: save it as .xlsx or CSV"
        )
    if content.startswith(_ZIP_MAGIC):
        return _read_xlsx(content, filename), True
    if suffix in (".xlsx", ".xlsm"):
        raise TransferError(f"{filename} is not an Excel .xlsx workbook (the file is damaged)")
    return [_read_csv(content, filename, notes)], False


def _read_xlsx(content: bytes, filename: str) -> list[_Table]:
    try:
        workbook = openpyxl.load_workbook(io.BytesIO(content), read_only=True, data_only=True)
    except (zipfile.BadZipFile, InvalidFileException, KeyError, ValueError, OSError):
        raise TransferError(f"{filename} could not be read as an .xlsx workbook") from None
    tables: list[_Table] = []
    try:
        for sheet in workbook.worksheets:
            rows: list[tuple[int, list[Any]]] = []
            for number, values in enumerate(sheet.iter_rows(min_row=1, values_only=True), 1):
                cells = list(values)
                if any(_text(v) for v in cells):
                    rows.append((number, cells))
            tables.append(_Table(str(sheet.title), rows))
    except (zipfile.BadZipFile, KeyError, ValueError, OSError):
        raise TransferError(f"{filename} could not be read as an .xlsx workbook") from None
    finally:
        workbook.close()
    return tables


def _decode(content: bytes, filename: str) -> tuple[str, str]:
    """Text of a CSV file and the encoding found: BOMs first, then UTF-8, then GB18030."""
    if content.startswith((b"\xff\xfe", b"\xfe\xff")):
        attempts = ["utf-16"]
    elif content.startswith(b"\xef\xbb\xbf"):
        attempts = ["utf-8-sig"]
    else:
        attempts = ["utf-8", "gb18030"]
    for encoding in attempts:
        try:
            return content.decode(encoding), encoding
        except UnicodeDecodeError:
            continue
    raise TransferError(f"{filename} is not a spreadsheet or a CSV file in UTF-8 or GB18030")


def _read_csv(content: bytes, filename: str, notes: list[str]) -> _Table:
    text, encoding = _decode(content, filename)
    controls = sum(1 for ch in text[:4096] if ord(ch) < 32 and ch not in "\t\r\n")
    if "\x00" in text or controls > 8:
        raise TransferError(f"{filename} is not a spreadsheet or a CSV file (binary content)")
    if encoding == "gb18030":
        notes.append("read as GB18030 text")
    first_line = text.split("\n", 1)[0]
    try:
        dialect: type[csv.Dialect] | csv.Dialect = csv.Sniffer().sniff(first_line, ",\t;")
    except csv.Error:
        dialect = csv.excel
    rows: list[tuple[int, list[Any]]] = []
    try:
        for number, cells in enumerate(csv.reader(io.StringIO(text, newline=""), dialect), 1):
            if any(c.strip() for c in cells):
                rows.append((number, list(cells)))
    except csv.Error as exc:
        raise TransferError(f"{filename} is not a valid CSV file: {exc}") from None
    return _Table(Path(filename).name or "csv", rows)


def _match_headers(cells: Sequence[Any], kind: Kind) -> dict[int, str]:
    """Column index → field for the cells of a header row (first occurrence wins)."""
    index = _HEADERS[kind]
    found: dict[int, str] = {}
    for position, cell in enumerate(cells):
        name = index.get(_normalise_header(_text(cell)))
        if name is not None and name not in found.values():
            found[position] = name
    return found


def _complete(mapping: dict[int, str], kind: Kind) -> bool:
    have = set(mapping.values())
    return all(c.field in have for c in COLUMNS[kind] if c.required)


def _find_header(table: _Table, kind: Kind | None) -> tuple[int, Kind, dict[int, str]] | None:
    """Where the header row is (templates often carry a title row above it) and its kind."""
    best: tuple[int, Kind, dict[int, str]] | None = None
    for position, (_, cells) in enumerate(table.rows[:_HEADER_SEARCH_ROWS]):
        if kind is not None:
            mapping = _match_headers(cells, kind)
            if _complete(mapping, kind):
                return position, kind, mapping
            if len(mapping) >= 2 and (best is None or len(mapping) > len(best[2])):
                best = (position, kind, mapping)
            continue
        candidates = [(len(m), k, m) for k in Kind if _complete(m := _match_headers(cells, k), k)]
        if candidates:
            candidates.sort(key=lambda c: -c[0])
            if len(candidates) > 1 and candidates[0][0] == candidates[1][0]:
                return None  # ambiguous: the caller asks for a kind
            return position, candidates[0][1], candidates[0][2]
    return best


def _sheets(
    tables: list[_Table], workbook: bool, kind: Kind | None, filename: str, notes: list[str]
) -> list[_Sheet]:
    """Recognise the kind of each table and split it into rows; unknown tables are noted."""
    sheets: list[_Sheet] = []
    for table in tables:
        if not table.rows:
            continue
        by_name = _KIND_NAMES.get(_normalise_header(table.name)) if workbook else None
        if workbook and _normalise_header(table.name) in _README_SHEETS:
            continue
        if kind is not None and by_name is not None and by_name is not kind:
            notes.append(f"sheet {table.name!r} skipped: it holds {by_name.value}, not {kind}")
            continue
        wanted = by_name or kind
        found = _find_header(table, wanted)
        if found is None:
            where = f"sheet {table.name!r}" if workbook else filename
            notes.append(
                f"{where} skipped: its column headers match no kind of record"
                + ("" if wanted else " (name the sheet or choose a kind)")
            )
            continue
        position, table_kind, mapping = found
        header_cells = table.rows[position][1]
        known = set(mapping)
        ignored = [_text(c) for i, c in enumerate(header_cells) if i not in known and _text(c)]
        if ignored:
            notes.append(
                f"{table.name}: column(s) ignored, not known for {table_kind}: "
                + ", ".join(ignored)
            )
        header_text = {name: _text(header_cells[i]) for i, name in mapping.items()}
        rows = [
            _Row(
                sheet=table.name,
                number=number,
                kind=table_kind,
                cells={name: cells[i] for i, name in mapping.items() if i < len(cells)},
                headers=header_text,
            )
            for number, cells in table.rows[position + 1 :]
        ]
        sheets.append(_Sheet(table.name, table_kind, rows))
    return sheets


# --- importing ---------------------------------------------------------------------------


@dataclass
class _Job:
    """State of one import: the caller's context and lookups made once."""

    ctx: Ctx
    default_community: str | None
    communities: dict[str, OrgUnit | None] = field(default_factory=dict)
    tag_codes: dict[str, str] | None = None
    buildings: int = 0
    units: int = 0


def _parse_row(row: _Row) -> tuple[dict[str, Any], list[FieldError]]:
    """The row's non-blank cells parsed to Python values, and the cells that would not parse."""
    values: dict[str, Any] = {}
    errors: list[FieldError] = []
    for column in COLUMNS[row.kind]:
        raw = row.cells.get(column.field)
        if not _text(raw):
            if column.required:
                errors.append(FieldError(column.field, PLAIN_MESSAGES["missing"]))
            continue
        try:
            value = column.parse(raw)
        except ValueError as exc:
            errors.append(FieldError(column.field, str(exc)))
            continue
        if value in ("", []):  # only decoration, such as "号楼" alone
            if column.required:
                errors.append(FieldError(column.field, PLAIN_MESSAGES["missing"]))
            continue
        values[column.field] = value
    return values, errors


def _add(errors: list[FieldError], more: Iterable[FieldError]) -> None:
    """Add errors, one per field: the first (most specific) stays."""
    seen = {e.field for e in errors}
    for error in more:
        if error.field not in seen:
            errors.append(error)
            seen.add(error.field)


def _check(
    schema: type[S],
    payload: dict[str, Any],
    errors: list[FieldError],
    rename: dict[str, str] | None = None,
) -> S | None:
    """Validate through the API's schema; its complaints join ``errors``."""
    try:
        return schema.model_validate(payload)
    except ValidationError as exc:
        found = field_errors(exc)
        if rename:
            found = [FieldError(rename.get(e.field, e.field), e.message) for e in found]
        _add(errors, found)
        return None


def _one(ctx: Ctx, model: type[T], stmt: Select[Any]) -> T | None:
    """The first row of a scoped select, typed (the services type selects loosely)."""
    return ctx.session.scalar(stmt)


def _all(ctx: Ctx, model: type[T], stmt: Select[Any]) -> list[T]:
    """All rows of a scoped select, typed."""
    return list(ctx.session.scalars(stmt))


def _fail_if(errors: list[FieldError]) -> None:
    if errors:
        raise ValidationFailed(errors)


def _renamed(exc: ValidationFailed, rename: dict[str, str]) -> ValidationFailed:
    return ValidationFailed(
        [FieldError(rename.get(e.field, e.field), e.message) for e in exc.errors]
    )


def _pick(values: dict[str, Any], names: Iterable[str]) -> dict[str, Any]:
    return {name: values[name] for name in names if name in values}


def _lookup_community(job: _Job, code: str) -> OrgUnit | None:
    """A community by its code, if it lies in the caller's scope (else it does not exist)."""
    if code not in job.communities:
        unit = job.ctx.session.scalar(
            select(OrgUnit).where(OrgUnit.code == code, OrgUnit.level == Level.COMMUNITY)
        )
        if unit is not None and not in_scope(job.ctx.session, job.ctx.actor, unit.id):
            unit = None  # out of scope looks exactly like unknown
        job.communities[code] = unit
    return job.communities[code]


def _community(job: _Job, values: dict[str, Any], errors: list[FieldError]) -> OrgUnit | None:
    """The row's community, by its code (or the import's default)."""
    code = values.get("community_code") or job.default_community
    if not code:
        errors.append(
            FieldError("community_code", "no community: fill in the code or choose a default")
        )
        return None
    community = _lookup_community(job, code)
    if community is None:
        errors.append(FieldError("community_code", "community does not exist"))
    return community


def _same_community(job: _Job, record_community_id: int, community: OrgUnit) -> None:
    if record_community_id != community.id:
        other = job.ctx.session.get(OrgUnit, record_community_id)
        code = other.code if other is not None else str(record_community_id)
        raise ValidationFailed.one(
            "community_code",
            f"this record belongs to community {code}; move it in the console, not by import",
        )


def _changes(record: Any, data: BaseModel, names: Iterable[str]) -> dict[str, Any]:
    """The fields of ``data`` (among ``names``) whose value differs from the record's."""
    return {
        name: getattr(data, name) for name in names if getattr(record, name) != getattr(data, name)
    }


def _sealed_differs(job: _Job, stored_hash: str | None, value: str | None, context: str) -> bool:
    if value is None:
        return stored_hash is not None
    return stored_hash != job.ctx.cipher.lookup_hash(value, context)


def _person_ref(
    job: _Job,
    values: dict[str, Any],
    current: Person | None,
    id_field: str = "owner_id_number",
    name_field: str = "owner_name",
) -> Person | None:
    """The person a row points at by ID number; None when the row names nobody.

    A masked number is accepted only when it is the one already linked (it changes nothing).
    """
    token = values.get(id_field)
    if token is None:
        return None
    name = values.get(name_field)
    if _is_masked(token):
        masked = str(token).upper().replace("＊", "*")
        if (
            current is not None
            and current.id_number_masked == masked
            and (name is None or name == current.name)
        ):
            return current
        raise ValidationFailed.one(id_field, MASKED_REASON)
    person = registry.people.find_by_id_number(job.ctx, str(token))
    if person is None:
        reason = _NO_PERSON
        if len(str(token)) == 18:
            # Say what is wrong with a mistyped resident ID rather than "not registered".
            try:
                validation.resident_id(str(token))
            except ValueError as exc:
                reason = str(exc)
        raise ValidationFailed.one(id_field, reason)
    if name is not None and name != person.name:
        raise ValidationFailed.one(name_field, _NAME_MISMATCH)
    return person


def _find_house(job: _Job, community_id: int, building: str, unit: str, room: str) -> House | None:
    stmt = (
        registry.houses.select(job.ctx)
        .join(BuildingUnit, House.unit_id == BuildingUnit.id)
        .join(Building, BuildingUnit.building_id == Building.id)
        .where(
            House.community_id == community_id,
            Building.number == building,
            BuildingUnit.number == unit,
            House.room == room,
        )
    )
    return _one(job.ctx, House, stmt)


def _house_of(job: _Job, community: OrgUnit, values: dict[str, Any]) -> House:
    """The existing house a row's address columns name (floor, when given, must agree)."""
    house = _find_house(job, community.id, values["building"], values["unit"], values["room"])
    if house is None:
        raise ValidationFailed.one("room", _NO_HOUSE)
    if "floor" in values and house.floor.number != values["floor"]:
        raise ValidationFailed.one("floor", f"this room is on floor {house.floor.number}")
    return house


def _unit_for(
    job: _Job, community: OrgUnit, building_no: str, unit_no: str, floor: int
) -> BuildingUnit:
    """The unit a new house goes in; its building and unit are made when missing."""
    ctx = job.ctx
    building = _one(
        ctx,
        Building,
        registry.buildings.select(ctx).where(
            Building.community_id == community.id, Building.number == building_no
        ),
    )
    try:
        if building is None:
            building = registry.buildings.create(
                ctx,
                schemas.BuildingCreate(
                    community_id=community.id, number=building_no, floors=max(1, floor)
                ),
            )
            job.buildings += 1
        elif floor > building.floors:
            registry.buildings.update(ctx, building, schemas.BuildingUpdate(floors=floor))
    except ValidationError as exc:
        raise ValidationFailed(
            [FieldError("building", e.message) for e in field_errors(exc)]
        ) from None
    except ValidationFailed as exc:
        raise _renamed(exc, {"number": "building"}) from None
    unit = _one(
        ctx,
        BuildingUnit,
        registry.units.select(ctx).where(
            BuildingUnit.building_id == building.id, BuildingUnit.number == unit_no
        ),
    )
    if unit is None:
        try:
            unit = registry.units.create(
                ctx, schemas.UnitCreate(building_id=building.id, number=unit_no)
            )
        except ValidationError as exc:
            raise ValidationFailed(
                [FieldError("unit", e.message) for e in field_errors(exc)]
            ) from None
        except ValidationFailed as exc:
            raise _renamed(exc, {"number": "unit"}) from None
        job.units += 1
    return unit


def _tag_codes(job: _Job, tokens: list[str]) -> list[str]:
    """Tag codes for the names or codes in a cell; unknown ones are left for the service to refuse.

    Tags a caller may not see (police-only, for property roles) count as unknown.
    """
    if job.tag_codes is None:
        stmt = select(Tag)
        if not job.ctx.actor.police:
            stmt = stmt.where(Tag.police_only.is_(False))
        job.tag_codes = {}
        for tag in job.ctx.session.scalars(stmt):
            job.tag_codes[tag.code] = tag.code
            job.tag_codes[tag.name] = tag.code
            job.tag_codes[tag.name_en.lower()] = tag.code
    codes: list[str] = []
    for token in tokens:
        code = job.tag_codes.get(token) or job.tag_codes.get(token.lower()) or token
        if code not in codes:
            codes.append(code)
    return codes


_PERSON_FIELDS = (
    "name",
    "id_type",
    "id_number",
    "sex",
    "birth_date",
    "phone",
    "category",
    "ethnicity",
    "household_address",
    "reason_code",
    "arrival_date",
    "leaving_date",
    "notes",
)


def _import_person(job: _Job, row: _Row) -> Outcome:
    """人员: matched by ID number (keyed hash); blank cells leave stored values alone."""
    ctx = job.ctx
    values, errors = _parse_row(row)
    community = _community(job, values, errors)
    if _is_masked(values.get("id_number")):
        _add(errors, [FieldError("id_number", MASKED_REASON)])
        del values["id_number"]
    masked_phone = values.pop("phone") if _is_masked(values.get("phone")) else None
    payload = _pick(values, _PERSON_FIELDS)
    if "tags" in values:
        payload["tags"] = _tag_codes(job, values["tags"])
    data = _check(
        schemas.PersonCreate,
        {"community_id": community.id if community else 0, **payload},
        errors,
    )
    _fail_if(errors)
    assert data is not None and community is not None  # otherwise errors were raised
    existing = registry.people.find_by_id_number(ctx, data.id_number)
    if masked_phone is not None and (
        existing is None or existing.phone_masked != masked_phone.replace("＊", "*")
    ):
        raise ValidationFailed.one("phone", MASKED_REASON)
    if existing is None:
        registry.people.create(ctx, data)
        return "created"
    _same_community(job, existing.community_id, community)
    given = set(payload) - {"id_number", "phone", "tags"}
    if data.id_type is IdType.RESIDENT_ID:
        given |= {"birth_date", "sex"}
    changes = _changes(existing, data, sorted(given))
    if "phone" in payload and _sealed_differs(job, existing.phone_hash, data.phone, "phone"):
        changes["phone"] = data.phone
    if "tags" in payload:
        tags = list(data.tags)
        # Compare with what the caller can see: the service keeps the tags it cannot.
        visible = {t.code for t in existing.tags if ctx.actor.police or not t.police_only}
        if set(tags) != visible:
            changes["tags"] = tags
    if not changes:
        return "unchanged"
    registry.people.update(ctx, existing, schemas.PersonUpdate.model_validate(changes))
    return "updated"


_HOUSE_FIELDS = ("floor", "room", "use", "area", "rooms", "plate_installed", "notes")


def _import_house(job: _Job, row: _Row) -> Outcome:
    """房屋: matched by community, building, unit and room; buildings and units made on demand."""
    ctx = job.ctx
    values, errors = _parse_row(row)
    community = _community(job, values, errors)
    payload = _pick(values, _HOUSE_FIELDS)
    data = _check(schemas.HouseCreate, {"unit_id": 0, **payload}, errors)
    _fail_if(errors)
    assert data is not None and community is not None
    existing = _find_house(job, community.id, values["building"], values["unit"], data.room)
    owner = _person_ref(job, values, existing.owner if existing else None)
    if existing is None:
        unit = _unit_for(job, community, values["building"], values["unit"], data.floor)
        create = data.model_copy(
            update={"unit_id": unit.id, "owner_id": owner.id if owner else None}
        )
        registry.houses.create(ctx, create)
        return "created"
    if existing.floor.number != data.floor:
        raise ValidationFailed.one("floor", f"this room is on floor {existing.floor.number}")
    changes = _changes(existing, data, [n for n in payload if n not in ("floor", "room")])
    if owner is not None and owner.id != existing.owner_id:
        changes["owner_id"] = owner.id
    if not changes:
        return "unchanged"
    registry.houses.update(ctx, existing, schemas.HouseUpdate.model_validate(changes))
    return "updated"


def _resident(
    job: _Job, values: dict[str, Any], house: House, data: schemas.ResidencyCreate
) -> Person:
    """The person of a residency row: by full ID number, or by a masked one already living there."""
    token = str(values["id_number"])
    if not _is_masked(token):
        person = _person_ref(job, values, None, "id_number", "name")
        assert person is not None  # the ID number is a required column
        return person
    masked = token.upper().replace("＊", "*")
    stmt = (
        registry.residencies.select(job.ctx)
        .join(Person, Residency.person_id == Person.id)
        .where(
            Residency.house_id == house.id,
            Residency.relation == data.relation,
            Residency.start_date == data.start_date,
            Person.id_number_masked == masked,
        )
    )
    if "name" in values:
        stmt = stmt.where(Person.name == values["name"])
    people = {r.person_id: r.person for r in _all(job.ctx, Residency, stmt)}
    if len(people) != 1:
        raise ValidationFailed.one("id_number", MASKED_REASON)
    return next(iter(people.values()))


def _import_residency(job: _Job, row: _Row) -> Outcome:
    """居住关系: matched by person, house and relation; a 离开日期 ends the residency."""
    ctx = job.ctx
    values, errors = _parse_row(row)
    community = _community(job, values, errors)
    payload = _pick(values, ("relation", "start_date", "lease_end"))
    data = _check(schemas.ResidencyCreate, {"person_id": 0, "house_id": 0, **payload}, errors)
    end = None
    if "end_date" in values:
        end = _check(
            schemas.ResidencyEnd,
            {"end_date": values["end_date"], "reason": values.get("end_reason")},
            errors,
            {"reason": "end_reason"},
        )
    _fail_if(errors)
    assert data is not None and community is not None
    house = _house_of(job, community, values)
    person = _resident(job, values, house, data)
    same = (
        Residency.person_id == person.id,
        Residency.house_id == house.id,
        Residency.relation == data.relation,
    )
    active = _one(
        ctx, Residency, registry.residencies.select(ctx).where(*same, Residency.end_date.is_(None))
    )
    if active is not None:
        if active.start_date != data.start_date:
            raise ValidationFailed.one(
                "start_date",
                f"this person has lived here since {active.start_date.isoformat()}; "
                "the start date cannot be changed by import",
            )
        outcome: Outcome = "unchanged"
        if "lease_end" in payload and active.lease_end != data.lease_end:
            registry.residencies.update(
                ctx, active, schemas.ResidencyUpdate(lease_end=data.lease_end)
            )
            outcome = "updated"
        if end is not None:
            registry.residencies.end(ctx, active, end)
            outcome = "updated"
        return outcome
    if end is not None:
        ended = _one(
            ctx,
            Residency,
            registry.residencies.select(ctx).where(
                *same, Residency.start_date == data.start_date, Residency.end_date.is_not(None)
            ),
        )
        if ended is not None:
            if ended.end_date == end.end_date:
                return "unchanged"
            assert ended.end_date is not None
            raise ValidationFailed.one(
                "end_date", f"this residency already ended on {ended.end_date.isoformat()}"
            )
    residency = registry.residencies.create(
        ctx, data.model_copy(update={"person_id": person.id, "house_id": house.id})
    )
    if end is not None:
        registry.residencies.end(ctx, residency, end)
    return "created"


def _import_vehicle(job: _Job, row: _Row) -> Outcome:
    """车辆: matched by the normalised plate."""
    ctx = job.ctx
    values, errors = _parse_row(row)
    community = _community(job, values, errors)
    payload = _pick(values, ("plate", "colour", "brand"))
    data = _check(
        schemas.VehicleCreate,
        {"community_id": community.id if community else 0, **payload},
        errors,
    )
    _fail_if(errors)
    assert data is not None and community is not None
    existing = _one(ctx, Vehicle, registry.vehicles.select(ctx).where(Vehicle.plate == data.plate))
    owner = _person_ref(job, values, existing.owner if existing else None)
    space = None
    if "parking_space" in values:
        space = _one(
            ctx,
            ParkingSpace,
            registry.parking_spaces.select(ctx).where(
                ParkingSpace.community_id == community.id,
                ParkingSpace.code == values["parking_space"],
            ),
        )
        if space is None:
            raise ValidationFailed.one(
                "parking_space", "no parking space with this code in the community"
            )
    if existing is None:
        create = data.model_copy(
            update={
                "owner_id": owner.id if owner else None,
                "parking_space_id": space.id if space else None,
            }
        )
        registry.vehicles.create(ctx, create)
        return "created"
    _same_community(job, existing.community_id, community)
    changes = _changes(existing, data, [n for n in payload if n != "plate"])
    if owner is not None and owner.id != existing.owner_id:
        changes["owner_id"] = owner.id
    if space is not None and space.id != existing.parking_space_id:
        changes["parking_space_id"] = space.id
    if not changes:
        return "unchanged"
    registry.vehicles.update(ctx, existing, schemas.VehicleUpdate.model_validate(changes))
    return "updated"


_ORGANISATION_FIELDS = (
    "name",
    "kind",
    "credit_code",
    "legal_representative",
    "contact_name",
    "contact_phone",
    "address",
    "employees",
)


def _find_organisation(
    job: _Job, community: OrgUnit, data: schemas.OrganisationCreate
) -> Organisation | None:
    """By credit code first; else by name in the community (when that is unambiguous)."""
    ctx = job.ctx
    if data.credit_code:
        found = _one(
            ctx,
            Organisation,
            registry.organisations.select(ctx).where(Organisation.credit_code == data.credit_code),
        )
        if found is not None:
            return found
    named = [
        o
        for o in _all(
            ctx,
            Organisation,
            registry.organisations.select(ctx).where(
                Organisation.community_id == community.id, Organisation.name == data.name
            ),
        )
        if o.credit_code is None or o.credit_code == data.credit_code
    ]
    if len(named) > 1:
        raise ValidationFailed.one(
            "name", "several organisations in this community have this name: add the credit code"
        )
    return named[0] if named else None


def _import_organisation(job: _Job, row: _Row) -> Outcome:
    """单位: matched by credit code, else by name in the community."""
    ctx = job.ctx
    values, errors = _parse_row(row)
    community = _community(job, values, errors)
    masked_phone = values.pop("contact_phone") if _is_masked(values.get("contact_phone")) else None
    address = ("building", "unit", "room")
    if any(name in values for name in address):
        _add(
            errors,
            [FieldError(n, PLAIN_MESSAGES["missing"]) for n in address if n not in values],
        )
    payload = _pick(values, _ORGANISATION_FIELDS)
    data = _check(
        schemas.OrganisationCreate,
        {"community_id": community.id if community else 0, **payload},
        errors,
    )
    _fail_if(errors)
    assert data is not None and community is not None
    house = _house_of(job, community, values) if "room" in values else None
    existing = _find_organisation(job, community, data)
    if masked_phone is not None and (
        existing is None or existing.contact_phone_masked != masked_phone.replace("＊", "*")
    ):
        raise ValidationFailed.one("contact_phone", MASKED_REASON)
    if existing is None:
        create = data.model_copy(update={"house_id": house.id if house else None})
        registry.organisations.create(ctx, create)
        return "created"
    _same_community(job, existing.community_id, community)
    changes = _changes(existing, data, [n for n in payload if n != "contact_phone"])
    if "contact_phone" in payload and _sealed_differs(
        job, existing.contact_phone_hash, data.contact_phone, "contact_phone"
    ):
        changes["contact_phone"] = data.contact_phone
    if house is not None and house.id != existing.house_id:
        changes["house_id"] = house.id
    if not changes:
        return "unchanged"
    registry.organisations.update(ctx, existing, schemas.OrganisationUpdate.model_validate(changes))
    return "updated"


_HANDLERS: dict[Kind, Callable[[_Job, _Row], Outcome]] = {
    Kind.PEOPLE: _import_person,
    Kind.HOUSES: _import_house,
    Kind.RESIDENCIES: _import_residency,
    Kind.VEHICLES: _import_vehicle,
    Kind.ORGANISATIONS: _import_organisation,
}


def _rejections(row: _Row, errors: Sequence[FieldError]) -> list[Rejection]:
    out: list[Rejection] = []
    for error in errors:
        name = _FIELD_COLUMNS.get(error.field, error.field)
        out.append(
            Rejection(
                sheet=row.sheet,
                row=row.number,
                column=row.column(name),
                value=row.shown(name),
                reason=error.message,
            )
        )
    return out


def _import_sheet(job: _Job, sheet: _Sheet, report: ImportReport) -> None:
    """Each row in its own savepoint: a refused row leaves nothing behind, the others stay."""
    handler = _HANDLERS[sheet.kind]
    counts = report.counts.setdefault(sheet.kind, KindCounts())
    for row in sheet.rows:
        made = (job.buildings, job.units)
        try:
            with job.ctx.session.begin_nested():
                outcome = handler(job, row)
        except ValidationFailed as exc:
            job.buildings, job.units = made
            counts.rejected += 1
            report.rejections.extend(_rejections(row, exc.errors))
            log.debug(
                "row %d of sheet %s rejected (%d problem(s))",
                row.number,
                row.sheet,
                len(exc.errors),
            )
            continue
        except DBAPIError as exc:
            # The values are not logged: they may be personal data.
            job.buildings, job.units = made
            counts.rejected += 1
            report.rejections.append(
                Rejection(row.sheet, row.number, "", "", "the database refused this row")
            )
            log.warning(
                "row %d of sheet %s refused by the database: %s",
                row.number,
                row.sheet,
                type(exc.orig).__name__,
            )
            continue
        counts.add(outcome)


def import_file(
    ctx: Ctx,
    path_or_bytes: str | Path | bytes,
    *,
    filename: str | None = None,
    kind: Kind | str | None = None,
    community_code: str | None = None,
) -> ImportReport:
    """Import a registry spreadsheet (.xlsx) or CSV file into the caller's scope.

    ``filename`` gives the name (and so the format) of uploaded bytes; ``kind`` forces the
    kind of a CSV or single-sheet file; ``community_code`` is the community of rows whose
    小区编码 is blank. Rows are written in the caller's transaction, each in a savepoint;
    the caller commits. Raises :class:`TransferError` when the file cannot be read.
    """
    content = _read_bytes(path_or_bytes)
    name = filename or (
        Path(path_or_bytes).name if not isinstance(path_or_bytes, bytes) else "upload"
    )
    wanted = parse_kind(kind) if kind else None
    report = ImportReport(filename=name)
    job = _Job(ctx=ctx, default_community=(community_code or "").strip() or None)
    if job.default_community and _lookup_community(job, job.default_community) is None:
        raise TransferError(f"community {job.default_community} does not exist")
    if not content.strip():
        raise TransferError(f"{name} is empty")
    tables, workbook = _read_tables(content, name, report.notes)
    sheets = _sheets(tables, workbook, wanted, name, report.notes)
    if not sheets:
        raise TransferError(
            f"{name} holds no sheet with recognised column headers "
            "(see the template for the expected headers)"
        )
    for current in Kind:
        for sheet in sheets:
            if sheet.kind is current:
                _import_sheet(job, sheet, report)
    report.buildings_created, report.units_created = job.buildings, job.units
    log.info(
        "imported %s: %d row(s) accepted, %d rejected, %d building(s) and %d unit(s) made",
        name,
        report.rows_accepted,
        report.rows_rejected,
        report.buildings_created,
        report.units_created,
    )
    return report


# --- exporting ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Export:
    """An exported file: its bytes, rows written per kind, media type and a file name."""

    content: bytes
    rows: dict[Kind, int]
    media_type: str
    filename: str


XLSX_MEDIA_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
CSV_MEDIA_TYPE = "text/csv; charset=utf-8"


def _codes(ctx: Ctx) -> dict[int, str]:
    rows = ctx.session.execute(
        select(OrgUnit.id, OrgUnit.code).where(OrgUnit.level == Level.COMMUNITY)
    )
    return {community_id: code for community_id, code in rows}


def _address(house: House | None) -> dict[str, Any]:
    if house is None:
        return {}
    return {
        "building": house.unit.building.number,
        "unit": house.unit.number,
        "floor": house.floor.number,
        "room": house.room,
    }


def _export_people(
    ctx: Ctx, community_id: int | None, reveal: bool = False
) -> list[dict[str, Any]]:
    stmt = registry.people.select(ctx).options(selectinload(Person.tags))
    if community_id is not None:
        stmt = stmt.where(Person.community_id == community_id)
    codes = _codes(ctx)
    rows = []
    for p in _all(ctx, Person, stmt.order_by(Person.community_id, Person.name, Person.id)):
        tags = [t.name for t in p.tags if ctx.actor.police or not t.police_only]
        rows.append(
            {
                "community_code": codes.get(p.community_id, ""),
                "name": p.name,
                "id_type": label(p.id_type),
                "id_number": _shown(ctx, p, "id_number", reveal),
                "sex": label(p.sex),
                "birth_date": p.birth_date,
                "phone": _shown(ctx, p, "phone", reveal),
                "category": label(p.category),
                "ethnicity": p.ethnicity,
                "household_address": p.household_address,
                "reason_code": schemas.REASON_CODES.get(p.reason_code or "", p.reason_code),
                "arrival_date": p.arrival_date,
                "leaving_date": p.leaving_date,
                "tags": "、".join(tags),
                "notes": p.notes,
            }
        )
    return rows


def _house_options() -> list[Any]:
    return [
        selectinload(House.unit).selectinload(BuildingUnit.building),
        selectinload(House.floor),
    ]


def _export_houses(
    ctx: Ctx, community_id: int | None, reveal: bool = False
) -> list[dict[str, Any]]:
    stmt = registry.houses.select(ctx).options(*_house_options(), selectinload(House.owner))
    if community_id is not None:
        stmt = stmt.where(House.community_id == community_id)
    codes = _codes(ctx)
    rows = []
    for h in _all(ctx, House, stmt.order_by(House.community_id, House.address_code)):
        rows.append(
            {
                "community_code": codes.get(h.community_id, ""),
                **_address(h),
                "use": label(h.use),
                "area": h.area,
                "rooms": h.rooms,
                "plate_installed": "是" if h.plate_installed else "否",
                "owner_id_number": _shown(ctx, h.owner, "id_number", reveal),
                "owner_name": h.owner.name if h.owner else None,
                "notes": h.notes,
            }
        )
    return rows


def _export_residencies(
    ctx: Ctx, community_id: int | None, reveal: bool = False
) -> list[dict[str, Any]]:
    stmt = registry.residencies.select(ctx).options(
        selectinload(Residency.person),
        selectinload(Residency.house).selectinload(House.unit).selectinload(BuildingUnit.building),
        selectinload(Residency.house).selectinload(House.floor),
    )
    if community_id is not None:
        stmt = stmt.where(Residency.community_id == community_id)
    codes = _codes(ctx)
    rows = []
    order = (Residency.community_id, Residency.house_id, Residency.start_date, Residency.id)
    for r in _all(ctx, Residency, stmt.order_by(*order)):
        rows.append(
            {
                "id_number": _shown(ctx, r.person, "id_number", reveal),
                "name": r.person.name,
                "community_code": codes.get(r.community_id, ""),
                **_address(r.house),
                "relation": label(r.relation),
                "start_date": r.start_date,
                "lease_end": r.lease_end,
                "end_date": r.end_date,
                "end_reason": r.end_reason,
            }
        )
    return rows


def _export_vehicles(
    ctx: Ctx, community_id: int | None, reveal: bool = False
) -> list[dict[str, Any]]:
    stmt = registry.vehicles.select(ctx).options(
        selectinload(Vehicle.owner), selectinload(Vehicle.parking_space)
    )
    if community_id is not None:
        stmt = stmt.where(Vehicle.community_id == community_id)
    codes = _codes(ctx)
    rows = []
    for v in _all(ctx, Vehicle, stmt.order_by(Vehicle.community_id, Vehicle.plate)):
        rows.append(
            {
                "community_code": codes.get(v.community_id, ""),
                "plate": v.plate,
                "colour": v.colour,
                "brand": v.brand,
                "owner_id_number": _shown(ctx, v.owner, "id_number", reveal),
                "owner_name": v.owner.name if v.owner else None,
                "parking_space": v.parking_space.code if v.parking_space else None,
            }
        )
    return rows


def _export_organisations(
    ctx: Ctx, community_id: int | None, reveal: bool = False
) -> list[dict[str, Any]]:
    stmt = registry.organisations.select(ctx).options(
        selectinload(Organisation.house)
        .selectinload(House.unit)
        .selectinload(BuildingUnit.building),
        selectinload(Organisation.house).selectinload(House.floor),
    )
    if community_id is not None:
        stmt = stmt.where(Organisation.community_id == community_id)
    codes = _codes(ctx)
    rows = []
    for o in _all(ctx, Organisation, stmt.order_by(Organisation.community_id, Organisation.name)):
        rows.append(
            {
                "community_code": codes.get(o.community_id, ""),
                "name": o.name,
                "kind": label(o.kind),
                "credit_code": o.credit_code,
                "legal_representative": o.legal_representative,
                "contact_name": o.contact_name,
                "contact_phone": _shown(ctx, o, "contact_phone", reveal),
                "address": o.address,
                "employees": o.employees,
                **_address(o.house),
            }
        )
    return rows


def _shown(ctx: Ctx, record: Any, field: str, reveal: bool) -> str | None:
    """A sealed field as exported: masked, or in clear for a sensitive export."""
    if record is None:
        return None
    if not reveal:
        masked: str | None = getattr(record, f"{field}_masked")
        return masked
    blob = getattr(record, f"{field}_enc")
    return None if blob is None else ctx.cipher.decrypt(blob, field)


_EXPORTERS: dict[Kind, Callable[[Ctx, int | None, bool], list[dict[str, Any]]]] = {
    Kind.PEOPLE: _export_people,
    Kind.HOUSES: _export_houses,
    Kind.RESIDENCIES: _export_residencies,
    Kind.VEHICLES: _export_vehicles,
    Kind.ORGANISATIONS: _export_organisations,
}

_HEADER_FONT = Font(bold=True)
_HEADER_FILL = PatternFill("solid", fgColor="DDEBF7")
_REQUIRED_FILL = PatternFill("solid", fgColor="FCE4D6")


def _write_sheet(
    workbook: Any, kind: Kind, rows: Sequence[dict[str, Any]], blank_rows: int = 200
) -> None:
    """One kind as a sheet: styled headers (required ones shaded), typed cells, drop-downs."""
    sheet = workbook.create_sheet(SHEET_NAMES[kind])
    columns = COLUMNS[kind]
    sheet.append([c.header for c in columns])
    for position, column in enumerate(columns, 1):
        cell = sheet.cell(row=1, column=position)
        cell.font = _HEADER_FONT
        cell.fill = _REQUIRED_FILL if column.required else _HEADER_FILL
        cell.alignment = Alignment(horizontal="center")
        sheet.column_dimensions[get_column_letter(position)].width = column.width + 2
    for values in rows:
        sheet.append([_cell(values.get(c.field)) for c in columns])
    last = len(rows) + 1 + blank_rows
    for position, column in enumerate(columns, 1):
        letter = get_column_letter(position)
        if column.text:
            for row in range(2, last + 1):
                sheet.cell(row=row, column=position).number_format = "@"
        elif column.parse is _date:
            for row in range(2, len(rows) + 2):
                sheet.cell(row=row, column=position).number_format = "yyyy-mm-dd"
        if column.choices:
            check = DataValidation(
                type="list",
                formula1='"' + ",".join(column.choices) + '"',
                allow_blank=True,
                showErrorMessage=False,
            )
            check.add(f"{letter}2:{letter}{last}")
            sheet.add_data_validation(check)
    sheet.freeze_panes = "A2"


def _cell(value: Any) -> Any:
    if isinstance(value, Enum):
        return label(value)
    return value


def _xlsx(tables: Sequence[tuple[Kind, Sequence[dict[str, Any]]]], readme: bool = False) -> bytes:
    workbook = openpyxl.Workbook()
    workbook.remove(workbook.active)
    for kind, rows in tables:
        _write_sheet(workbook, kind, rows)
    if readme:
        _write_readme(workbook)
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def _csv(kind: Kind, rows: Sequence[dict[str, Any]]) -> bytes:
    """CSV in UTF-8 with a BOM, which Chinese Excel opens without garbling the headers."""
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, lineterminator="\r\n")
    columns = COLUMNS[kind]
    writer.writerow([c.header for c in columns])
    for values in rows:
        writer.writerow([_text(_cell(values.get(c.field))) for c in columns])
    return buffer.getvalue().encode("utf-8-sig")


def export_data(
    ctx: Ctx,
    kind: Kind | str,
    fmt: str,
    *,
    community_code: str | None = None,
    sensitive: bool = False,
) -> Export:
    """Export the records of one kind (or ``"all"`` kinds, as one workbook) in the caller's scope.

    ``fmt`` is ``"xlsx"`` or ``"csv"``; ID numbers and phones are written masked unless
    ``sensitive`` — which needs the ``export.sensitive`` permission and is audited with the
    row count and the file's SHA-256.
    """
    if sensitive and not ctx.actor.can("export.sensitive"):
        raise PermissionDenied("export.sensitive")
    fmt = fmt.lower().lstrip(".")
    if fmt not in ("xlsx", "csv"):
        raise TransferError(f"unknown export format {fmt!r}: use xlsx or csv")
    kinds = list(Kind) if str(kind).lower() == "all" else [parse_kind(kind)]
    if fmt == "csv" and len(kinds) > 1:
        raise TransferError("a CSV file holds one kind of record: export all kinds as xlsx")
    community_id = None
    if community_code:
        found = _lookup_community(_Job(ctx=ctx, default_community=None), community_code)
        if found is None:
            raise TransferError(f"community {community_code} does not exist")
        community_id = found.id
    tables = [(k, _EXPORTERS[k](ctx, community_id, sensitive)) for k in kinds]
    counts = {k: len(rows) for k, rows in tables}
    stem = "registry" if len(kinds) > 1 else kinds[0].value
    if community_code:
        stem += f"-{community_code}"
    log.info("exported %s as %s: %s", stem, fmt, ", ".join(f"{k} {n}" for k, n in counts.items()))
    if fmt == "csv":
        result = Export(_csv(*tables[0]), counts, CSV_MEDIA_TYPE, f"{stem}.csv")
    else:
        result = Export(_xlsx(tables), counts, XLSX_MEDIA_TYPE, f"{stem}.xlsx")
    audit.record(
        ctx.session,
        "registry.export",
        community_id=community_id,
        detail={
            "kinds": [k.value for k in kinds],
            "format": fmt,
            "sensitive": sensitive,
            "rows": sum(counts.values()),
            "sha256": hashlib.sha256(result.content).hexdigest(),
        },
    )
    return result


def export_file(
    ctx: Ctx,
    kind: Kind | str,
    fmt: str,
    *,
    community_code: str | None = None,
    sensitive: bool = False,
) -> bytes:
    """The bytes of an export (see :func:`export_data`); ``kind="all"`` gives every sheet."""
    return export_data(ctx, kind, fmt, community_code=community_code, sensitive=sensitive).content


def export_workbook(ctx: Ctx, *, community_code: str | None = None) -> bytes:
    """Every kind in one workbook, one sheet each, in the caller's scope."""
    return export_file(ctx, "all", "xlsx", community_code=community_code)


# --- the template ------------------------------------------------------------------------


def _credit(body: str) -> str:
    from stdnum.cn import uscc

    return body + str(uscc.calc_check_digit(body))


def _sample_rows(community_code: str) -> dict[Kind, list[dict[str, Any]]]:
    c = community_code
    first, second = "360426199101010071", "120103198806018241"
    return {
        Kind.PEOPLE: [
            {
                "community_code": c,
                "name": "张伟",
                "id_type": "居民身份证",
                "id_number": first,
                "phone": "13800138000",
                "category": "户籍人口",
                "ethnicity": "汉族",
                "household_address": "江西省九江市德安县蒲亭镇紫阳路1号",
                "tags": "党员",
            },
            {
                "community_code": c,
                "name": "李娜",
                "id_type": "居民身份证",
                "id_number": second,
                "phone": "13912345678",
                "category": "流动人口",
                "ethnicity": "汉族",
                "household_address": "天津市河西区友谊路2号",
                "reason_code": "务工",
                "arrival_date": dt.date(2024, 3, 1),
            },
        ],
        Kind.HOUSES: [
            {
                "community_code": c,
                "building": "1",
                "unit": "1",
                "floor": 3,
                "room": "302",
                "use": "自住",
                "area": 89.5,
                "rooms": 3,
                "plate_installed": "是",
                "owner_id_number": first,
                "owner_name": "张伟",
            },
            {
                "community_code": c,
                "building": "1",
                "unit": "2",
                "floor": 5,
                "room": "501",
                "use": "出租",
                "area": 62.0,
                "rooms": 2,
                "plate_installed": "否",
            },
        ],
        Kind.RESIDENCIES: [
            {
                "id_number": first,
                "name": "张伟",
                "community_code": c,
                "building": "1",
                "unit": "1",
                "floor": 3,
                "room": "302",
                "relation": "业主",
                "start_date": dt.date(2020, 6, 1),
            },
            {
                "id_number": second,
                "name": "李娜",
                "community_code": c,
                "building": "1",
                "unit": "2",
                "floor": 5,
                "room": "501",
                "relation": "租户",
                "start_date": dt.date(2024, 3, 1),
                "lease_end": dt.date(2025, 2, 28),
            },
        ],
        Kind.VEHICLES: [
            {
                "community_code": c,
                "plate": "赣G12345",
                "colour": "白色",
                "brand": "大众",
                "owner_id_number": first,
                "owner_name": "张伟",
            },
            {
                "community_code": c,
                "plate": "津AD12345",
                "colour": "蓝色",
                "brand": "比亚迪",
                "owner_id_number": second,
                "owner_name": "李娜",
            },
        ],
        Kind.ORGANISATIONS: [
            {
                "community_code": c,
                "name": "便民超市",
                "kind": "商铺",
                "credit_code": _credit("92360426MA3A12345"),
                "legal_representative": "张伟",
                "contact_name": "张伟",
                "contact_phone": "13800138000",
                "address": "1号楼底商101",
                "employees": 3,
            },
            {
                "community_code": c,
                "name": "阳光幼儿园",
                "kind": "幼儿园",
                "credit_code": _credit("52360426MJ1234567"),
                "contact_name": "王芳",
                "contact_phone": "07922345678",
                "employees": 15,
            },
        ],
    }


def _write_readme(workbook: Any) -> None:
    sheet = workbook.create_sheet(README_SHEET, 0)
    sheet.column_dimensions["A"].width = 16
    sheet.column_dimensions["B"].width = 90
    lines: list[tuple[str, str]] = [
        ("填写说明", "每个工作表一类数据；表头请勿修改，橙色表头为必填列。"),
        ("", "同一文件可重复导入：已有记录按证件号码、地址、车牌、信用代码匹配并更新，不会重复。"),
        ("", "证件号码、电话请按文本填写；导出文件中的脱敏号码（含 *）不会被导入。"),
        ("", "日期格式：2024-03-01；是/否 列填写“是”或“否”。"),
    ]
    for kind in Kind:
        columns = COLUMNS[kind]
        required = "、".join(c.header for c in columns if c.required)
        lines.append((SHEET_NAMES[kind], f"必填：{required}"))
        for column in columns:
            if column.choices:
                lines.append(("", f"{column.header}：{'、'.join(column.choices)}"))
    for key, text in lines:
        sheet.append([key, text])
    sheet["A1"].font = _HEADER_FONT


def sample_workbook(community_code: str = "C001") -> bytes:
    """A template to download: a note sheet, then every kind's headers and two example rows.

    The examples are valid and refer to each other, so the template imports cleanly into a
    community whose code is ``community_code``.
    """
    rows = _sample_rows(community_code)
    return _xlsx([(kind, rows[kind]) for kind in Kind], readme=True)
