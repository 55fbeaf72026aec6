"""Wire format v1: the JSON devices and gateways send, turned into :class:`Event` values.

One object or an array of them. Each item is judged alone: a bad item becomes a
:class:`Rejection` with its reason and never spoils the good items beside it.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
import re
import uuid
from typing import Any

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from anju.core.errors import field_errors
from anju.events import normalise
from anju.events.model import Direction, Event, Kind, Outcome, Rejection, Subject, SubjectType

MAX_BATCH = 500
MAX_IMAGE_BYTES = 2 * 1024 * 1024
FUTURE_TOLERANCE = dt.timedelta(minutes=5)
_BLOB_KEY = re.compile(r"^[0-9a-f]{2}/[0-9a-f]{2}/[0-9a-f]{64}\.jpg$")
_ID = re.compile(r"^[\w.:\-]{1,64}$")


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
        return value.astimezone(dt.UTC)


def _subject(raw: SubjectIn | None) -> Subject | None:
    if raw is None:
        return None
    value = raw.value.strip()
    if raw.type is SubjectType.PLATE:
        value = normalise.plate(value)
    elif raw.type is SubjectType.MAC:
        value = normalise.mac(value)
    elif raw.type is SubjectType.CARD:
        value = normalise.card(value)
    return Subject(raw.type, value)


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
    device = item.get("device") if isinstance(item, dict) else None
    ident = item.get("id") if isinstance(item, dict) else None
    if not isinstance(item, dict):
        return Rejection("an event must be a JSON object")
    try:
        parsed = EventIn.model_validate(item)
    except ValidationError as exc:
        errors = field_errors(exc)
        reason = "; ".join(f"{e.field}: {e.message}" for e in errors)
        return Rejection(reason, device=_text(device), id=_text(ident))
    if parsed.at > received_at + FUTURE_TOLERANCE:
        return Rejection(
            "at: time is in the future (check the device clock)", parsed.device, parsed.id
        )
    try:
        subject = _subject(parsed.subject)
        image, image_data = _image(parsed.image)
    except ValueError as exc:
        return Rejection(str(exc), parsed.device, parsed.id)
    return Event(
        device=parsed.device,
        kind=parsed.kind,
        at=parsed.at,
        id=parsed.id or uuid.uuid4().hex,
        subject=subject,
        direction=parsed.direction,
        value=parsed.value,
        data=parsed.data,
        image=image,
        image_data=image_data,
    )


def decode(body: bytes) -> Any:
    """A JSON body, decoded. orjson first (several times faster than the standard library
    on event batches); what it refuses but JSON allows (integers beyond 64 bits) goes to
    the standard library. Raises ``ValueError`` saying why the body is not JSON."""
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
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
    return [parse_item(item, received_at) for item in items]


def _text(value: Any) -> str | None:
    return str(value)[:64] if isinstance(value, str | int) else None
