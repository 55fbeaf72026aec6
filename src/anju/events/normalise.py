"""Normalising what devices send: plates, MAC addresses, card numbers, times."""

from __future__ import annotations

import datetime as dt
import re

from anju.core.validation import normalise_plate

_MAC = re.compile(r"^[0-9A-F]{12}$")
_NOT_HEX = re.compile(r"[^0-9A-Fa-f]")
_NOT_ALNUM = re.compile(r"[^0-9A-Za-z]")


def mac(value: str) -> str:
    """``aa-bb-cc-dd-ee-ff`` / ``AABB.CCDD.EEFF`` / ``aabbccddeeff`` → ``AA:BB:CC:DD:EE:FF``."""
    digits = _NOT_HEX.sub("", value or "").upper()
    if not _MAC.match(digits):
        raise ValueError(f"not a MAC address: {value!r}")
    return ":".join(digits[i : i + 2] for i in range(0, 12, 2))


def plate(value: str) -> str:
    """A plate as read (OCR may be imperfect): upper-cased, separators removed."""
    # Letters and digits only (the usual reading) hold no separator to remove.
    text = value.upper() if value and value.isalnum() else normalise_plate(value)
    if not text:
        raise ValueError("empty plate")
    return text


def card(value: str) -> str:
    """Card numbers: digits and letters only, upper-case, leading zeros kept."""
    if value and value.isascii() and value.isalnum():  # the usual reading: nothing to remove
        return value.upper()
    text = _NOT_ALNUM.sub("", value or "").upper()
    if not text:
        raise ValueError("empty card number")
    return text


def aware(value: dt.datetime, default_tz: dt.tzinfo) -> dt.datetime:
    """A device time as aware UTC; a local time without offset is read in ``default_tz``."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=default_tz)
    return value.astimezone(dt.UTC)
