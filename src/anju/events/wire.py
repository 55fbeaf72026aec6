"""Wire format v1: the JSON devices and gateways send, turned into :class:`Event` values.

One object or an array of them. Each item is judged alone: a bad item becomes a
:class:`Rejection` with its reason and never spoils the good items beside it.

:class:`EventIn` (pydantic) is the definition of a valid item and says what is wrong with
a bad one. Most items are plainly valid, though, and validating them through pydantic
cost more than the rest of parsing, so :func:`_plain` first takes an item whose every
field is exactly of the ordinary form (types as JSON gives them, nothing to strip or
coerce) and builds the same values directly; anything else, however slightly unusual, goes
to :class:`EventIn`. ``tests/test_ingest_fastpaths.py`` holds the two to the same answers.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
import re
import uuid
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from anju.core import jsonio
from anju.core.errors import field_errors
from anju.events import normalise
from anju.events.model import Direction, Event, Kind, Outcome, Rejection, Subject, SubjectType

MAX_BATCH = 500
MAX_IMAGE_BYTES = 2 * 1024 * 1024
FUTURE_TOLERANCE = dt.timedelta(minutes=5)
_BLOB_KEY = re.compile(r"^[0-9a-f]{2}/[0-9a-f]{2}/[0-9a-f]{64}\.jpg$")
_ID = re.compile(r"^[\w.:\-]{1,64}$")
# The plain path's forms: an id as _ID takes it (nothing around it), and the usual ISO 8601
# time with seconds and an offset, which pydantic and datetime.fromisoformat read alike.
_PLAIN_ID = re.compile(r"[\w.:\-]{1,64}")
_PLAIN_AT = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]{1,6})?"
    r"(?:Z|[+-](?:[01][0-9]|2[0-3]):[0-5][0-9])"
)
_SURROGATE = re.compile("[\ud800-\udfff]")


class SubjectIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: SubjectType
    value: str = Field(min_length=1, max_length=200)


class EventIn(BaseModel):
    """One event as sent (wire format v1); see ``docs/events.md``."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    id: str | None = Field(default=None, description="The device's own event id (idempotency key).")
    device: str = Field(min_length=1, max_length=40, description="Device code.")
    kind: Kind
    at: dt.datetime = Field(description="When it happened, ISO 8601 with offset.")
    subject: SubjectIn | None = None
    direction: Direction | None = None
    value: float | None = None
    data: dict[str, Any] = Field(default_factory=dict)
    image: str | None = Field(default=None, description="Base64 JPEG, or a blob key.")

    @field_validator("id")
    @classmethod
    def _id(cls, value: str | None) -> str | None:
        if value is not None and not _ID.match(value):
            raise ValueError("id may hold 1–64 letters, digits, '.', ':', '-' and '_'")
        return value

    @field_validator("at")
    @classmethod
    def _aware(cls, value: dt.datetime) -> dt.datetime:
        if value.tzinfo is None:
            raise ValueError("needs a UTC offset, e.g. 2026-11-21T08:00:00+08:00")
        try:
            return value.astimezone(dt.UTC)
        except OverflowError:  # e.g. 0001-01-01T00:00:00+08:00: before year 1 in UTC
            raise ValueError("time is out of range (check the device clock)") from None


_FIELDS = frozenset(EventIn.model_fields)
_KINDS = {kind.value: kind for kind in Kind}
_SUBJECT_TYPES = {kind.value: kind for kind in SubjectType}
_DIRECTIONS = {direction.value: direction for direction in Direction}
_PLATE, _MAC, _CARD = SubjectType.PLATE, SubjectType.MAC, SubjectType.CARD
_FLOAT_EXACT = 2**53  # whole numbers up to here are floats without rounding


def _subject(kind: SubjectType, raw: str) -> Subject:
    value = raw.strip()
    if kind is _PLATE:
        value = normalise.plate(value)
    elif kind is _MAC:
        value = normalise.mac(value)
    elif kind is _CARD:
        value = normalise.card(value)
    return Subject(kind, value)


def _image(raw: str | None) -> tuple[str | None, bytes | None]:
    """A blob key stays a key; base64 becomes bytes (checked to be a JPEG)."""
    if raw is None or raw == "":
        return None, None
    if _BLOB_KEY.match(raw):
        return raw, None
    if raw.startswith("data:"):
        raw = raw.split(",", 1)[-1]
    try:
        data = base64.b64decode(raw, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("image is neither base64 nor a blob key") from None
    if len(data) > MAX_IMAGE_BYTES:
        raise ValueError(f"image is larger than {MAX_IMAGE_BYTES // 1024} KiB")
    if not data.startswith(b"\xff\xd8"):
        raise ValueError("image is not a JPEG")
    return None, data


def parse_item(item: Any, received_at: dt.datetime) -> Outcome:
    """One wire item → an :class:`Event` or a :class:`Rejection` saying why."""
    return _parse(item, received_at + FUTURE_TOLERANCE, {})


# What a valid item holds, in Event's order: device, kind, at, id, subject (type and value
# as sent), direction, value, data, image.
_Fields = tuple[
    str,
    Kind,
    dt.datetime,
    str | None,
    tuple[SubjectType, str] | None,
    Direction | None,
    float | None,
    dict[str, Any],
    str | None,
]


def _parse(
    item: Any, latest: dt.datetime, subjects: dict[tuple[SubjectType, str], Subject]
) -> Outcome:
    """:func:`parse_item` with the latest acceptable time worked out, and ``subjects``: the
    batch's subjects already normalised (one card or plate is often seen many times)."""
    if not isinstance(item, dict):
        return Rejection("an event must be a JSON object")
    fields = _plain(item) or _validated(item)
    if isinstance(fields, Rejection):
        return fields
    device, kind, at, ident, raw_subject, direction, value, data, raw_image = fields
    if at > latest:
        return Rejection("at: time is in the future (check the device clock)", device, ident)
    try:
        subject = None
        if raw_subject is not None:
            subject = subjects.get(raw_subject)
            if subject is None:
                subject = subjects[raw_subject] = _subject(*raw_subject)
        image, image_data = _image(raw_image) if raw_image is not None else (None, None)
    except ValueError as exc:
        return Rejection(str(exc), device, ident)
    # Positional: keyword arguments cost a third more for Event's eleven fields.
    return Event(
        device,
        kind,
        at,
        ident or uuid.uuid4().hex,
        subject,
        direction,
        value,
        data,
        image,
        image_data,
    )


def _validated(item: dict[Any, Any]) -> _Fields | Rejection:
    """An item's fields as :class:`EventIn` validates them, or why it is refused."""
    try:
        parsed = EventIn.model_validate(item)
    except ValidationError as exc:
        errors = field_errors(exc)
        reason = "; ".join(f"{e.field}: {e.message}" for e in errors)
        return Rejection(reason, device=_text(item.get("device")), id=_text(item.get("id")))
    raw = parsed.subject
    return (
        parsed.device,
        parsed.kind,
        parsed.at,
        parsed.id,
        (raw.type, raw.value) if raw is not None else None,
        parsed.direction,
        parsed.value,
        parsed.data,
        parsed.image,
    )


def _plain(item: dict[Any, Any]) -> _Fields | None:
    """An item's fields if every one has the ordinary form, exactly what
    ``EventIn.model_validate`` would make of them; None for anything else (pydantic then
    decides, and says why when it refuses). Types are checked exactly: JSON gives plain
    ``str``, ``int``, ``float`` and ``dict``, and a subclass is left to pydantic."""
    if not _FIELDS.issuperset(item):
        return None  # an unknown field
    get = item.get
    device = get("device")
    if type(device) is not str or len(device) > 40 or not _bare(device):
        return None  # also a missing device
    raw_kind = get("kind")
    if type(raw_kind) is not str:
        return None
    kind = _KINDS.get(raw_kind)
    if kind is None:
        return None
    at = get("at")
    if type(at) is not str or _PLAIN_AT.fullmatch(at) is None:
        return None
    try:
        when = dt.datetime.fromisoformat(at).astimezone(dt.UTC)
    except (ValueError, OverflowError):
        return None
    ident = get("id")
    if ident is not None and (type(ident) is not str or _PLAIN_ID.fullmatch(ident) is None):
        return None
    subject = _plain_subject(get("subject"))
    if subject is False:
        return None
    raw_direction = get("direction")
    direction = None
    if raw_direction is not None:
        if type(raw_direction) is not str:
            return None
        direction = _DIRECTIONS.get(raw_direction)
        if direction is None:
            return None
    value = get("value")
    if value is not None:
        if type(value) is int and -_FLOAT_EXACT <= value <= _FLOAT_EXACT:
            value = float(value)
        elif type(value) is not float:
            return None
    data = get("data", _ABSENT)
    if data is _ABSENT:
        data = {}
    elif type(data) is not dict:
        return None
    else:
        for key in data:  # pydantic strips keys too; an identifier has nothing to strip
            if type(key) is not str or not (key.isidentifier() or not key or _bare(key)):
                return None
        data = dict(data)  # pydantic gives a copy too
    image = get("image")
    if image is not None and (type(image) is not str or (image and not _bare(image))):
        return None
    return device, kind, when, ident, subject, direction, value, data, image


def _plain_subject(raw: Any) -> tuple[SubjectType, str] | Literal[False] | None:
    """A plain subject's type and value as sent; None for none, False if not plain."""
    if raw is None:
        return None
    if type(raw) is not dict or len(raw) != 2:
        return False
    kind, value = raw.get("type"), raw.get("value")
    if type(kind) is not str or type(value) is not str or len(value) > 200 or not _clean(value):
        return False
    found = _SUBJECT_TYPES.get(kind)
    return (found, value) if found is not None else False


_ABSENT: Any = object()


def _clean(text: str) -> bool:
    """Non-empty text pydantic takes as it is (no lone surrogate, which it refuses)."""
    return bool(text) and (text.isascii() or _SURROGATE.search(text) is None)


def _bare(text: str) -> bool:
    """Non-empty text that pydantic's ``str_strip_whitespace`` leaves as it is: nothing
    Python calls whitespace at either end (Python's whitespace includes pydantic's), and no
    lone surrogate. ASCII control characters go to pydantic too, which costs nothing."""
    if not text:
        return False
    if text.isascii():
        return text[0] > " " and text[-1] > " "
    return not (text[0].isspace() or text[-1].isspace()) and _SURROGATE.search(text) is None


def decode(body: bytes) -> Any:
    """A JSON body, decoded (:func:`anju.core.jsonio.loads`: fast, and every digit of a
    long integer kept). Raises ``ValueError`` saying why the body is not JSON, in the
    standard library's words."""
    try:
        return jsonio.loads(body)
    except ValueError:  # orjson's wording differs; the standard library's names the place
        pass
    try:
        return json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"malformed JSON: {exc}"[:200]) from None


def parse_batch(payload: Any, received_at: dt.datetime) -> list[Outcome]:
    """A decoded JSON body (one object or a list) → one outcome per item, in order."""
    items = payload if isinstance(payload, list) else [payload]
    if len(items) > MAX_BATCH:
        return [Rejection(f"batch of {len(items)} events is larger than {MAX_BATCH}")]
    latest = received_at + FUTURE_TOLERANCE
    subjects: dict[tuple[SubjectType, str], Subject] = {}
    return [_parse(item, latest, subjects) for item in items]


def _text(value: Any) -> str | None:
    return str(value)[:64] if isinstance(value, str | int) else None
