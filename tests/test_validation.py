"""Unit tests: identifiers (resident ID, phone, plate, credit code) and field sealing."""

from __future__ import annotations

import datetime as dt

import pytest
from cryptography.exceptions import InvalidTag
from hypothesis import given
from hypothesis import strategies as st

from anju.core import validation
from anju.core.crypto import FieldCipher, KeyError_, decode_key, load_or_create_key, mask
from tests.factories import resident_id_for


@pytest.mark.parametrize(
    ("number", "birth", "sex"),
    [
        ("360426199101010071", dt.date(1991, 1, 1), "male"),
        ("120103198806018241", dt.date(1988, 6, 1), "female"),
    ],
)
def test_resident_id_derives_birth_and_sex(number, birth, sex):
    rid = validation.resident_id(number)
    assert (rid.birth_date, rid.sex, rid.region) == (birth, sex, number[:6])


@pytest.mark.parametrize(
    ("number", "message"),
    [
        ("360426199101010072", "check digit"),
        ("36042619910101007", "18 characters"),
        (resident_id_for("360426", "19910230", 7), "impossible birth date"),
        ("", "empty"),
    ],
)
def test_resident_id_refusals_say_why(number, message):
    with pytest.raises(ValueError, match=message):
        validation.resident_id(number)


def test_lowercase_x_check_character_is_accepted():
    number = next(
        resident_id_for("110101", "19900101", s)
        for s in range(1, 999)
        if resident_id_for("110101", "19900101", s).endswith("X")
    )
    assert validation.resident_id(number.lower()).number == number


@given(st.integers(1, 999), st.dates(dt.date(1920, 1, 1), dt.date(2020, 12, 31)))
def test_generated_ids_round_trip(serial, birth):
    number = resident_id_for("110101", birth.strftime("%Y%m%d"), serial)
    rid = validation.resident_id(number)
    assert rid.birth_date == birth
    assert rid.sex == ("male" if serial % 2 else "female")


@pytest.mark.parametrize(
    ("raw", "plate", "kind"),
    [
        ("京A12345", "京A12345", "ordinary"),
        ("粤b-d1234 5", "粤BD12345", "new_energy"),
        ("粤B12345D", "粤B12345D", "new_energy"),
        ("沪A·1234学", "沪A1234学", "ordinary"),
    ],
)
def test_plates_are_normalised(raw, plate, kind):
    assert validation.plate(raw) == (plate, kind)


@pytest.mark.parametrize("raw", ["京AI2345", "X12345", "京A1234", "京A123456789", "京AO1234", ""])
def test_bad_plates_are_refused(raw):
    with pytest.raises(ValueError):
        validation.plate(raw)


@pytest.mark.parametrize(
    ("raw", "out"), [("+86 138-0013-8000", "13800138000"), ("010-12345678", "01012345678")]
)
def test_phones(raw, out):
    assert validation.phone(raw) == out


@pytest.mark.parametrize("raw", ["12345", "23800138000", "138001380001"])
def test_bad_phones(raw):
    with pytest.raises(ValueError, match="11-digit"):
        validation.phone(raw)


def test_credit_code():
    assert validation.credit_code("91110000600037341l") == "91110000600037341L"
    with pytest.raises(ValueError, match="check character"):
        validation.credit_code("91110000600037341M")


def test_mask_shapes():
    assert mask("360426199101010071") == "3604**********0071"
    assert mask("13800138000") == "138****8000"
    assert mask("E1234567") == "E******7"


def test_sealing_round_trip_and_lookup():
    cipher = FieldCipher(bytes(range(32)))
    sealed = cipher.seal("360426199101010071", "id_number")
    assert b"360426" not in sealed.ciphertext
    assert cipher.decrypt(sealed.ciphertext, "id_number") == "360426199101010071"
    # The same value seals to different ciphertexts but the same lookup hash.
    again = cipher.seal("360426199101010071", "id_number")
    assert again.ciphertext != sealed.ciphertext and again.lookup == sealed.lookup
    # Hashes are per field: an ID number and a phone with equal text do not collide.
    assert cipher.lookup_hash("x", "id_number") != cipher.lookup_hash("x", "phone")
    # A ciphertext moved to another field does not decrypt.
    with pytest.raises(InvalidTag):
        cipher.decrypt(sealed.ciphertext, "phone")
    # Another key can neither decrypt nor find.
    other = FieldCipher(bytes(32))
    assert other.lookup_hash("360426199101010071", "id_number") != sealed.lookup


def test_key_file_is_not_silently_created(tmp_path):
    with pytest.raises(KeyError_, match="anju init"):
        load_or_create_key(tmp_path / "k", None, create=False)
    key = load_or_create_key(tmp_path / "k", None, create=True)
    assert load_or_create_key(tmp_path / "k", None, create=False) == key
    with pytest.raises(KeyError_):
        decode_key("not base64!!")
