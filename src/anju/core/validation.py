"""Validators for the registry's identifiers: resident ID, phone, plate, credit code.

Each returns the normalised value or raises ``ValueError`` with a message a person can act
on. Pydantic schemas call them, so API, console and import report the same words.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Literal

from stdnum.cn import ric, uscc
from stdnum.exceptions import InvalidChecksum, InvalidComponent, ValidationError

# GA 36 province abbreviations, plus 使/领 for embassy and consulate plates.
PROVINCES = "京津沪渝冀豫云辽黑湘皖鲁新苏浙赣鄂桂甘晋蒙陕吉闽贵粤青藏川宁琼使领"
_PLATE_LETTERS = "ABCDEFGHJKLMNPQRSTUVWXYZ"  # no I, no O
_ENERGY_LETTERS = "DABCEFGHJK"
_ORDINARY = re.compile(
    rf"^[{PROVINCES}][A-Z][{_PLATE_LETTERS}0-9]{{4}}[{_PLATE_LETTERS}0-9挂学警港澳]$"
)
_ENERGY_SMALL = re.compile(
    rf"^[{PROVINCES}][A-Z][{_ENERGY_LETTERS}][{_PLATE_LETTERS}0-9][0-9]{{4}}$"
)
_ENERGY_LARGE = re.compile(rf"^[{PROVINCES}][A-Z][0-9]{{5}}[{_ENERGY_LETTERS}]$")
_MOBILE = re.compile(r"^1[3-9][0-9]{9}$")
_LANDLINE = re.compile(r"^0[0-9]{2,3}[0-9]{7,8}$")

PlateKind = Literal["ordinary", "new_energy"]


@dataclass(frozen=True)
class ResidentId:
    """A validated resident ID number and what it tells about its holder."""

    number: str
    birth_date: dt.date
    sex: Literal["male", "female"]
    region: str


# First two digits of a resident ID: the province-level division (GB/T 2260), 71 Taiwan,
# 81/82 Hong Kong and Macao residence permits, 83 Taiwan residence permits.
PROVINCE_CODES = frozenset(
    {"11", "12", "13", "14", "15", "21", "22", "23", "31", "32", "33", "34", "35", "36", "37"}
    | {"41", "42", "43", "44", "45", "46", "50", "51", "52", "53", "54", "61", "62", "63"}
    | {"64", "65", "71", "81", "82", "83", "91"}
)


def resident_id(value: str) -> ResidentId:
    """Validate an 18-character resident ID (GB 11643) and derive birth date and sex.

    The check character, the birth date and the province are checked. The county code is not
    held to the year of birth (as ``stdnum`` does): numbers are assigned with the code in force
    when they are issued, so real people carry codes younger than themselves.
    """
    number = ric.compact(value).upper() if value else ""
    if not number:
        raise ValueError("ID number is empty")
    if len(number) != 18:
        raise ValueError("ID number must have 18 characters")
    if not number[:17].isdigit() or not (number[17].isdigit() or number[17] == "X"):
        raise ValueError("ID number is not a valid resident ID")
    if ric.calc_check_digit(number) != number[17]:
        raise ValueError("ID number check digit is wrong")
    try:
        birth = ric.get_birth_date(number)
    except InvalidComponent:
        raise ValueError("ID number holds an impossible birth date") from None
    if birth > dt.date.today() or birth.year < 1880:
        raise ValueError("ID number holds an impossible birth date")
    if number[:2] not in PROVINCE_CODES:
        raise ValueError("ID number region code (first 6 digits) is not a province of China")
    sex: Literal["male", "female"] = "male" if int(number[16]) % 2 == 1 else "female"
    return ResidentId(number=number, birth_date=birth, sex=sex, region=number[:6])


def phone(value: str) -> str:
    """Normalise a mainland mobile (11 digits) or landline (area code + number) phone."""
    digits = re.sub(r"[\s\-()]", "", value or "")
    if digits.startswith("+86"):
        digits = digits[3:]
    elif digits.startswith("0086"):
        digits = digits[4:]
    if _MOBILE.match(digits) or _LANDLINE.match(digits):
        return digits
    raise ValueError("phone must be an 11-digit mobile (1xxxxxxxxxx) or a landline with area code")


def normalise_plate(value: str) -> str:
    """Upper-case a plate and drop separators: ``京a·12345`` → ``京A12345``."""
    return re.sub(r"[\s\-·.•_]", "", value or "").upper()


def plate(value: str) -> tuple[str, PlateKind]:
    """Validate a Chinese licence plate (GA 36) and say whether it is new-energy."""
    text = normalise_plate(value)
    if not text:
        raise ValueError("plate is empty")
    if len(text) == 7 and _ORDINARY.match(text):
        return text, "ordinary"
    if len(text) == 8 and (_ENERGY_SMALL.match(text) or _ENERGY_LARGE.match(text)):
        return text, "new_energy"
    if text[0] not in PROVINCES:
        raise ValueError(f"plate must start with a province abbreviation, not {text[0]!r}")
    if len(text) not in (7, 8):
        raise ValueError("plate must have 7 characters (ordinary) or 8 (new energy)")
    raise ValueError("plate does not follow GA 36 (letters I and O are never used)")


def credit_code(value: str) -> str:
    """Validate an 18-character unified social credit code (统一社会信用代码)."""
    code = (value or "").strip().upper()
    try:
        return str(uscc.validate(code))
    except InvalidChecksum:
        raise ValueError("unified social credit code check character is wrong") from None
    except ValidationError:
        raise ValueError("unified social credit code must have 18 valid characters") from None


_CODE = re.compile(r"^[0-9A-Za-z_-]{1,40}$")


def code(value: str) -> str:
    """An organisation, device or address code: letters, digits, '-' and '_' only."""
    text = (value or "").strip()
    if not _CODE.match(text):
        raise ValueError("code may hold only letters, digits, '-' and '_' (1–40 characters)")
    return text
