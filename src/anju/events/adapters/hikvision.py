"""Hikvision ISAPI pushes (face terminals, card readers, ANPR cameras) → canonical events.

A pure parser: :func:`parse_isapi` takes the raw HTTP body a device pushed to its configured
HTTP host (or a chunk of ``/ISAPI/Event/notification/alertStream``) and returns one
:class:`~anju.events.model.Outcome` per event found, in order. It never raises: a part it
cannot read becomes a :class:`~anju.events.model.Rejection` with the reason, and the other
parts of the same body still produce their events.

Accepted bodies
---------------
- ``multipart/form-data`` or ``multipart/mixed``. The boundary comes from the content type;
  when it is missing or does not occur in the body, the first ``--`` line is taken instead.
  Parts may carry ``Content-Length`` (used when it fits) and LF or CRLF line ends.
  JSON parts (``AccessControllerEvent``, with or without ``Content-Disposition``), XML parts
  (``anpr.xml`` and other ``EventNotificationAlert`` documents) and JPEG parts (``Picture``,
  ``detectionPicture.jpg``, ``licensePlatePicture.jpg``, …) may be mixed.
- A bare JSON body: an event envelope, the same wrapped in ``{"EventNotificationAlert": …}``,
  or a list of envelopes.
- A bare XML ``EventNotificationAlert`` body.

Text is UTF-8, or GB18030 / GBK / GB2312 from older firmware. XML in other encodings, or with
DOCTYPE / ENTITY declarations, is refused.

Pictures belong to the event part they follow (a picture before any event part goes to the
next event). The event gets one picture as ``image_data`` — the scene picture in preference
to the plate close-up. A picture that is not a whole JPEG (no ``FFD8`` start or no ``FFD9``
end) is dropped and, when no good picture is left, noted as ``data["picture"] = "truncated"``
(``"too_large"`` above :data:`~anju.events.wire.MAX_IMAGE_BYTES`); the event is kept.

Mapping
-------
Codes are ``majorEventType``/``subEventType`` of ``AccessControllerEvent``, in hex as in the
Hikvision SDK tables (public copy: maciej-or/hikvision_next ``sdk/acsalarminfo.py``).

==========================================  ====================  ================================
Hikvision                                   Anju kind             subject; data
==========================================  ====================  ================================
5/0x4b face verified; face + fingerprint,   access.face           person = employeeNoString
PIN, card or employee no. passed: 0x36
0x39 0x3c 0x3f 0x42 0x4d
5/0x01 valid card; 0x02 card + PIN; 0x28    access.card           card = cardNo (normalised);
card + fp; 0x2b card + fp + PIN                                   person when no card number
5/0x26 fingerprint matched; 0x2e fp + PIN;  access.fingerprint    person = employeeNoString
0x45 / 0x48 employee no. + fp (+ PIN)
5/ refused, failed or timed out: 0x03–0x0f  access.denied         person, else card, when the
0x23 0x24 0x27 0x29 0x2a 0x2c 0x2d                                device names one
0x2f–0x31 0x37 0x38 0x3a 0x3b 0x3d 0x3e
0x40 0x41 0x43 0x44 0x46 0x47 0x49 0x4a
0x4c (face not matched) 0x4e–0x50
0x66–0x68 0x70 0x71 0x75–0x78
5/0x15 lock unlocked, 5/0x19 door opened    door.opened           source = "lock" / "contact"
5/0x16 lock locked, 5/0x1a door closed      door.closed           source = "lock" / "contact"
5/0x17 exit button pressed                  access.remote         method = "exit_button"
3/0x400 door opened remotely (platform)     access.remote         method = "remote"
3/0x41d opened by wireless remote control   access.remote         method = "remote_control"
5/0x1b opened abnormally (door forced);     door.forced           —
5/0x87 forced through a turnstile
5/0x1c door open too long                   door.held_open        —
any other major/minor                       device.event          person / card when named
eventType ANPR                              vehicle.passed        plate (normalised); none, and
                                                                  plate = "unrecognised", for
                                                                  "无车牌" / "unknown"
eventType videoloss, eventState inactive    device.heartbeat      —
(the terminals' keep-alive); heartBeat
eventType videoloss, eventState active      device.fault          —
any other eventType                         device.event          eventType, description
==========================================  ====================  ================================

Every access event carries ``data`` ``major``, ``minor``, ``event`` (the SDK name, e.g.
``face_verify_pass``, when known) and, when sent, ``name``, ``cardReaderNo``, ``doorNo``,
``serialNo``, ``userType``, ``currentVerifyMode``, ``mask``, ``FaceRect``, ``cardType``,
``label`` and ``remoteHostAddr``. ``device.event`` adds ``eventType`` and ``description``.
``currentEvent: false`` (an access event replayed from the device's buffer) and ANPR
``isDataRetransmission: true`` set ``history``.

ANPR ``data``: ``plate = "unrecognised"`` when there is no plate, ``plateColor``,
``plateType``, ``vehicleType``, ``vehicleColor``, ``confidence`` (``confidenceLevel``),
``country``, ``lane`` (``line``), ``list`` (``vehicleListName``/``listType``),
``deviceDirection`` and ``detectDir`` as sent, and ``gat`` — the GA/T codes of
``VehicleGATInfo``: ``plateType`` (``palteTypeByGAT``, sic), ``plateColor``, ``vehicleType``,
``vehicleColor`` (``colorByGAT``).

Direction: Hikvision's ``direction`` (or a word in ``detectDir``) is ``forward`` — the
vehicle drives towards the camera — or ``reverse``. Barrier cameras face the vehicles they
let through, so by default forward is ``in`` and reverse ``out``; a camera watching an exit
lane is registered with ``forward_is=Direction.OUT``. The words in/enter/entry and
out/exit/leave are taken as they are. Numeric ``detectDir`` codes differ between firmware
and are only kept in ``data``.

Event ids (the idempotency key with the device code)
----------------------------------------------------
- Access events: ``hik:<mac>:<serialNo>:<time>`` — the device's event serial number, with
  its MAC address (12 hex digits; ``deviceID`` when there is no MAC) so a replaced terminal
  behind the same device code does not collide, and the event's UTC time (``YYYYMMDDTHHMMSSZ``)
  so a serial counter reset by a factory reset cannot make a new event look like an old one.
  The same record replayed from the buffer has all three unchanged, so it dedupes. (Without
  ``dateTime`` the time part is left out: the time received is no identity.)
- ANPR: the camera's ``UUID`` as sent (ISAPI UUIDs are ≤ 64 letters and digits); longer or odd
  ones become ``hik:uuid:<sha256>``. Without a UUID, the first picture's ``pId`` (a unique
  picture id): ``hik:pid:<pId>``. ``picNum`` is a picture count, not an id, so it only enters
  the hash fallback.
- Anything else (heartbeats, other alerts, access events without ``serialNo``):
  ``hik:h:<sha256 of the part's decoded content, keys sorted>`` — a re-delivery of the same
  part dedupes, whatever its whitespace or line ends.

Times: ``dateTime`` is ISO 8601 with offset; without offset it is taken in ``tz`` (the
deployment's zone, Asia/Shanghai by default); without ``dateTime`` the time received is used
and ``data["at"] = "received"``. As for the wire format, a time more than
:data:`~anju.events.wire.FUTURE_TOLERANCE` ahead of ``received_at`` is refused (device clock).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import logging
import math
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

from anju.events import normalise
from anju.events.model import Direction, Event, Kind, Outcome, Rejection, Subject, SubjectType
from anju.events.wire import FUTURE_TOLERANCE, MAX_IMAGE_BYTES

logger = logging.getLogger(__name__)

SHANGHAI = ZoneInfo("Asia/Shanghai")
MAX_PARTS = 1000
"""Parts read from one body; an alertStream burst of history is far below this."""

_ID = re.compile(r"^[\w.:\-]{1,64}$")
_BOUNDARY_PARAM = re.compile(r"""boundary\s*=\s*"?([^";,\s]+)"?""", re.IGNORECASE)
_HEADER = re.compile(rb"^([A-Za-z0-9][A-Za-z0-9\-]*)[ \t]*:[ \t]*(.*)$")
_DISPOSITION_NAME = re.compile(r"""(?:^|;)\s*name\s*=\s*"?([^";]*)"?""", re.IGNORECASE)
_DISPOSITION_FILENAME = re.compile(r"""filename\s*=\s*"?([^";]*)"?""", re.IGNORECASE)
_XML_DECLARATIONS = re.compile(rb"<!\s*(DOCTYPE|ENTITY)", re.IGNORECASE)
_XML_ENCODING = re.compile(rb"""^<\?xml[^>]*?encoding\s*=\s*["']?([A-Za-z0-9._\-]{1,40})""")
_XML_ENCODINGS = frozenset({"utf-8", "utf8", "us-ascii", "ascii", "iso-8859-1", "latin-1"})
_XML_GB_ENCODINGS = frozenset({"gb2312", "gbk", "gb18030"})
_XML_PROLOG = re.compile(r"^\s*<\?xml[^>]*\?>")
_WHITESPACE = b" \t\r\n\x00"
_BOM = b"\xef\xbb\xbf"
_JPEG_START = b"\xff\xd8"
_JPEG_END = b"\xff\xd9"
_MAX_XML_DEPTH = 16

MAJOR_ALARM, MAJOR_EXCEPTION, MAJOR_OPERATION, MAJOR_EVENT = 1, 2, 3, 5

# SDK names of the minor codes (NET_DVR_ACS_ALARM_INFO), lower-cased; they become data.event.
_EVENT_NAMES: dict[int, str] = {
    0x01: "legal_card_pass",
    0x02: "card_and_psw_pass",
    0x03: "card_and_psw_fail",
    0x04: "card_and_psw_timeout",
    0x05: "card_and_psw_over_time",
    0x06: "card_no_right",
    0x07: "card_invalid_period",
    0x08: "card_out_of_date",
    0x09: "invalid_card",
    0x0A: "anti_sneak_fail",
    0x0B: "interlock_door_not_close",
    0x0C: "not_belong_multi_group",
    0x0D: "invalid_multi_verify_period",
    0x0E: "multi_verify_super_right_fail",
    0x0F: "multi_verify_remote_right_fail",
    0x10: "multi_verify_success",
    0x11: "leader_card_open_begin",
    0x12: "leader_card_open_end",
    0x13: "always_open_begin",
    0x14: "always_open_end",
    0x15: "lock_open",
    0x16: "lock_close",
    0x17: "door_button_press",
    0x18: "door_button_release",
    0x19: "door_open_normal",
    0x1A: "door_close_normal",
    0x1B: "door_open_abnormal",
    0x1C: "door_open_timeout",
    0x1D: "alarmout_on",
    0x1E: "alarmout_off",
    0x1F: "always_close_begin",
    0x20: "always_close_end",
    0x21: "multi_verify_need_remote_open",
    0x22: "multi_verify_superpasswd_verify_success",
    0x23: "multi_verify_repeat_verify",
    0x24: "multi_verify_timeout",
    0x25: "doorbell_ringing",
    0x26: "fingerprint_compare_pass",
    0x27: "fingerprint_compare_fail",
    0x28: "card_fingerprint_verify_pass",
    0x29: "card_fingerprint_verify_fail",
    0x2A: "card_fingerprint_verify_timeout",
    0x2B: "card_fingerprint_passwd_verify_pass",
    0x2C: "card_fingerprint_passwd_verify_fail",
    0x2D: "card_fingerprint_passwd_verify_timeout",
    0x2E: "fingerprint_passwd_verify_pass",
    0x2F: "fingerprint_passwd_verify_fail",
    0x30: "fingerprint_passwd_verify_timeout",
    0x31: "fingerprint_inexistence",
    0x32: "card_platform_verify",
    0x33: "call_center",
    0x34: "fire_relay_turn_on_door_always_open",
    0x35: "fire_relay_recover_door_recover_normal",
    0x36: "face_and_fp_verify_pass",
    0x37: "face_and_fp_verify_fail",
    0x38: "face_and_fp_verify_timeout",
    0x39: "face_and_pw_verify_pass",
    0x3A: "face_and_pw_verify_fail",
    0x3B: "face_and_pw_verify_timeout",
    0x3C: "face_and_card_verify_pass",
    0x3D: "face_and_card_verify_fail",
    0x3E: "face_and_card_verify_timeout",
    0x3F: "face_and_pw_and_fp_verify_pass",
    0x40: "face_and_pw_and_fp_verify_fail",
    0x41: "face_and_pw_and_fp_verify_timeout",
    0x42: "face_card_and_fp_verify_pass",
    0x43: "face_card_and_fp_verify_fail",
    0x44: "face_card_and_fp_verify_timeout",
    0x45: "employeeno_and_fp_verify_pass",
    0x46: "employeeno_and_fp_verify_fail",
    0x47: "employeeno_and_fp_verify_timeout",
    0x48: "employeeno_and_fp_and_pw_verify_pass",
    0x49: "employeeno_and_fp_and_pw_verify_fail",
    0x4A: "employeeno_and_fp_and_pw_verify_timeout",
    0x4B: "face_verify_pass",
    0x4C: "face_verify_fail",
    0x4D: "employeeno_and_face_verify_pass",
    0x4E: "employeeno_and_face_verify_fail",
    0x4F: "employeeno_and_face_verify_timeout",
    0x50: "face_no_exist",
    0x51: "firstcard_authorize_begin",
    0x52: "firstcard_authorize_end",
    0x5C: "doorlock_open_exception",
    0x5D: "doorlock_open_timeout",
    0x5E: "firstcard_open_without_authorize",
    0x65: "employeeno_and_pw_pass",
    0x66: "employeeno_and_pw_fail",
    0x67: "employeeno_and_pw_timeout",
    0x68: "human_detect_fail",
    0x69: "people_and_id_card_compare_pass",
    0x70: "people_and_id_card_compare_fail",
    0x71: "certificate_black_list",
    0x72: "legal_message",
    0x73: "illegal_message",
    0x75: "door_open_or_dormant_fail",
    0x76: "auth_plan_dormant_fail",
    0x77: "card_encrypt_verify_fail",
    0x78: "submarineback_reply_fail",
    0x85: "trailing",
    0x86: "reverse_access",
    0x87: "force_access",
    0x88: "climbing_over_gate",
    0x89: "passing_timeout",
    0x8A: "intrusion_alarm",
    0x8B: "free_gate_pass_not_auth",
    0x8C: "drop_arm_block",
    0x8D: "drop_arm_block_resume",
    0x8E: "local_face_modeling_fail",
    0x8F: "stay_event",
}
_ALARM_NAMES: dict[int, str] = {
    0x400: "alarmin_short_circuit",
    0x401: "alarmin_broken_circuit",
    0x402: "alarmin_exception",
    0x403: "alarmin_resume",
    0x404: "host_desmantle_alarm",
    0x405: "host_desmantle_resume",
    0x406: "card_reader_desmantle_alarm",
    0x407: "card_reader_desmantle_resume",
    0x408: "case_sensor_alarm",
    0x409: "case_sensor_resume",
    0x40A: "stress_alarm",
    0x40B: "offline_event_nearly_full",
    0x40C: "card_max_authenticate_fail",
    0x40D: "sd_card_full",
    0x40E: "linkage_capture_pic",
    0x418: "fire_button_trigger",
    0x419: "fire_button_resume",
    0x41C: "emergency_button_trigger",
    0x41D: "emergency_button_resume",
}
_EXCEPTION_NAMES: dict[int, str] = {
    0x27: "net_broken",
    0x3A: "rs485_device_abnormal",
    0x3B: "rs485_device_revert",
    0x400: "dev_power_on",
    0x401: "dev_power_off",
    0x402: "watch_dog_reset",
    0x403: "low_battery",
    0x404: "battery_resume",
    0x405: "ac_off",
    0x406: "ac_resume",
    0x407: "net_resume",
    0x408: "flash_abnormal",
    0x409: "card_reader_offline",
    0x40A: "card_reader_resume",
}
_OPERATION_NAMES: dict[int, str] = {
    0x50: "local_login",
    0x5A: "local_upgrade",
    0x70: "remote_login",
    0x71: "remote_logout",
    0x79: "remote_arm",
    0x7A: "remote_disarm",
    0x7B: "remote_reboot",
    0x7E: "remote_upgrade",
    0x86: "remote_cfgfile_output",
    0x87: "remote_cfgfile_input",
    0x400: "remote_open_door",
    0x401: "remote_close_door",
    0x402: "remote_always_open",
    0x403: "remote_always_close",
    0x404: "remote_check_time",
    0x405: "ntp_check_time",
    0x406: "remote_clear_card",
    0x407: "remote_restore_cfg",
    0x40A: "local_restore_cfg",
    0x40B: "remote_capture_pic",
    0x40F: "unlock_password_open_door",
    0x41C: "remote_control_close_door",
    0x41D: "remote_control_open_door",
    0x41E: "remote_control_always_open_door",
}
_NAMES_BY_MAJOR: dict[int, dict[int, str]] = {
    MAJOR_ALARM: _ALARM_NAMES,
    MAJOR_EXCEPTION: _EXCEPTION_NAMES,
    MAJOR_OPERATION: _OPERATION_NAMES,
    MAJOR_EVENT: _EVENT_NAMES,
}

_FACE_PASS = (0x4B, 0x36, 0x39, 0x3C, 0x3F, 0x42, 0x4D)
_CARD_PASS = (0x01, 0x02, 0x28, 0x2B)
_FINGERPRINT_PASS = (0x26, 0x2E, 0x45, 0x48)
_DENIED = (
    *range(0x03, 0x10),
    0x23, 0x24, 0x27, 0x29, 0x2A, 0x2C, 0x2D, 0x2F, 0x30, 0x31, 0x37, 0x38,
    0x3A, 0x3B, 0x3D, 0x3E, 0x40, 0x41, 0x43, 0x44, 0x46, 0x47, 0x49, 0x4A,
    0x4C, 0x4E, 0x4F, 0x50, 0x66, 0x67, 0x68, 0x70, 0x71, 0x75, 0x76, 0x77, 0x78,
)  # fmt: skip

_ACCESS_KINDS: dict[tuple[int, int], Kind] = {
    **{(MAJOR_EVENT, minor): Kind.ACCESS_FACE for minor in _FACE_PASS},
    **{(MAJOR_EVENT, minor): Kind.ACCESS_CARD for minor in _CARD_PASS},
    **{(MAJOR_EVENT, minor): Kind.ACCESS_FINGERPRINT for minor in _FINGERPRINT_PASS},
    **{(MAJOR_EVENT, minor): Kind.ACCESS_DENIED for minor in _DENIED},
    (MAJOR_EVENT, 0x15): Kind.DOOR_OPENED,
    (MAJOR_EVENT, 0x19): Kind.DOOR_OPENED,
    (MAJOR_EVENT, 0x16): Kind.DOOR_CLOSED,
    (MAJOR_EVENT, 0x1A): Kind.DOOR_CLOSED,
    (MAJOR_EVENT, 0x17): Kind.ACCESS_REMOTE,
    (MAJOR_EVENT, 0x1B): Kind.DOOR_FORCED,
    (MAJOR_EVENT, 0x87): Kind.DOOR_FORCED,
    (MAJOR_EVENT, 0x1C): Kind.DOOR_HELD_OPEN,
    (MAJOR_OPERATION, 0x400): Kind.ACCESS_REMOTE,
    (MAJOR_OPERATION, 0x41D): Kind.ACCESS_REMOTE,
}
_EXTRA_DATA: dict[tuple[int, int], dict[str, str]] = {
    (MAJOR_EVENT, 0x15): {"source": "lock"},
    (MAJOR_EVENT, 0x16): {"source": "lock"},
    (MAJOR_EVENT, 0x19): {"source": "contact"},
    (MAJOR_EVENT, 0x1A): {"source": "contact"},
    (MAJOR_EVENT, 0x17): {"method": "exit_button"},
    (MAJOR_OPERATION, 0x400): {"method": "remote"},
    (MAJOR_OPERATION, 0x41D): {"method": "remote_control"},
}
_CARD_FIRST = frozenset({Kind.ACCESS_CARD})
_NO_SUBJECT = frozenset(
    {Kind.DOOR_OPENED, Kind.DOOR_CLOSED, Kind.DOOR_FORCED, Kind.DOOR_HELD_OPEN, Kind.ACCESS_REMOTE}
)
# AccessControllerEvent fields copied into data (when sent and not empty).
_ACCESS_FIELDS = (
    "name",
    "cardReaderNo",
    "doorNo",
    "serialNo",
    "userType",
    "currentVerifyMode",
    "mask",
    "FaceRect",
    "cardType",
    "label",
    "remoteHostAddr",
)
_INT_FIELDS = frozenset({"cardReaderNo", "doorNo", "serialNo", "cardType"})

_HEARTBEAT_TYPES = frozenset({"heartbeat"})
_NO_PLATE = frozenset(
    {"无车牌", "无牌车", "无牌", "未识别", "车牌", "UNKNOWN", "NONE", "NULL", "NOPLATE"}
)
_FORWARD = frozenset({"forward", "positive", "approach", "approaching"})
_REVERSE = frozenset({"reverse", "negative", "away", "leaving"})
_IN = frozenset({"in", "enter", "entry", "entrance", "entering"})
_OUT = frozenset({"out", "exit", "leave", "exiting"})


class _Refused(Exception):
    """A part (or event) that cannot become an event; the message is the reason."""


@dataclass(slots=True)
class _Part:
    """One part of a multipart body (or the whole of a bare body)."""

    label: str
    body: bytes
    content_type: str = ""
    name: str = ""
    filename: str = ""


@dataclass(slots=True)
class _Picture:
    name: str
    data: bytes
    problem: str | None  # None for a whole JPEG; "truncated" / "too_large" otherwise


@dataclass(slots=True)
class _Context:
    device: str
    received: dt.datetime
    tz: dt.tzinfo
    forward_is: Direction
    outcomes: list[Outcome] = field(default_factory=list)
    pictures: dict[int, list[_Picture]] = field(default_factory=dict)


def parse_isapi(
    body: bytes,
    content_type: str | None,
    device: str,
    received_at: dt.datetime,
    *,
    tz: dt.tzinfo = SHANGHAI,
    forward_is: Direction = Direction.IN,
) -> list[Outcome]:
    """What a Hikvision device pushed → one event or rejection per event part, in order.

    ``device`` is the Anju device code (from the listener's URL), ``received_at`` when the
    body arrived (aware; naive is taken as UTC), ``tz`` the zone of device times sent without
    an offset, ``forward_is`` what an ANPR camera's ``forward`` means at its lane.
    Never raises; always returns at least one outcome.
    """
    try:
        received = normalise.aware(received_at, dt.UTC)
        context = _Context(device, received, tz, forward_is)
        outcomes = _parse(bytes(body or b""), content_type, context)
    except Exception as exc:  # the listener must answer the device whatever the body holds
        logger.warning("hikvision push from %s could not be read (%s)", device, type(exc).__name__)
        logger.debug("hikvision parser failure", exc_info=True)
        return [Rejection("the body could not be read as a Hikvision push", device=device)]
    refused = [o for o in outcomes if isinstance(o, Rejection)]
    if refused:
        # Reasons name parts, codes and formats, never what a person or vehicle is.
        logger.info(
            "hikvision push from %s: %d of %d refused (first: %s)",
            device,
            len(refused),
            len(outcomes),
            refused[0].reason,
        )
    return outcomes


def _parse(body: bytes, content_type: str | None, ctx: _Context) -> list[Outcome]:
    if not body.strip(_WHITESPACE):
        return [Rejection("empty body", device=ctx.device)]
    parts = _multipart(body, content_type)
    if parts is None:
        parts = [_Part("body", body, _media_type(content_type))]
    elif not parts:
        return [Rejection("multipart body without any part", device=ctx.device)]
    current: list[_Picture] | None = None  # pictures go to the event part they follow
    waiting: list[_Picture] = []  # pictures that came before any event part
    for part in parts[:MAX_PARTS]:
        kind = _sniff(part)
        if kind == "empty":
            continue
        if kind == "image":
            picture = _picture(part)
            (current if current is not None else waiting).append(picture)
            continue
        first = len(ctx.outcomes)
        _read_part(part, kind, ctx)
        events = [i for i in range(first, len(ctx.outcomes)) if isinstance(ctx.outcomes[i], Event)]
        if events:
            current = ctx.pictures.setdefault(events[-1], [])
            if waiting:
                ctx.pictures.setdefault(events[0], []).extend(waiting)
                waiting = []
        else:
            current = []  # the pictures of a refused part go with it
    if len(parts) > MAX_PARTS:
        ctx.outcomes.append(
            Rejection(f"body has more than {MAX_PARTS} parts; the rest was not read", ctx.device)
        )
    if not ctx.outcomes:
        reason = "body holds pictures but no event" if waiting else "body holds no event"
        return [Rejection(reason, device=ctx.device)]
    for index, pictures in ctx.pictures.items():
        outcome = ctx.outcomes[index]
        if pictures and isinstance(outcome, Event):
            ctx.outcomes[index] = _with_picture(outcome, pictures)
    return ctx.outcomes


# --- multipart -------------------------------------------------------------------------------


def _media_type(content_type: str | None) -> str:
    return (content_type or "").split(";", 1)[0].strip().lower()


def _multipart(body: bytes, content_type: str | None) -> list[_Part] | None:
    """The parts of a multipart body, or None when the body is not multipart."""
    boundary = _boundary(body, content_type)
    if boundary is None:
        return None
    delimiter = re.compile(
        rb"(?m)^--" + re.escape(boundary) + rb"(?=--|[ \t]*(?:\r?\n|\Z))",
    )
    found = delimiter.search(body)
    parts: list[_Part] = []
    while found is not None and len(parts) <= MAX_PARTS:
        after = found.end()
        if body[after : after + 2] == b"--":
            break  # the closing delimiter
        line_end = body.find(b"\n", after)
        if line_end < 0:
            break  # a stream cut right after a delimiter
        headers, start = _headers(body, line_end + 1)
        end, found = _part_end(body, start, headers.get("content-length"), delimiter)
        parts.append(_make_part(len(parts) + 1, headers, body[start:end]))
    return parts


def _boundary(body: bytes, content_type: str | None) -> bytes | None:
    declared = _BOUNDARY_PARAM.search(content_type or "")
    if declared:
        value = declared.group(1).encode("latin-1", "replace")
        if b"--" + value in body:
            return value
    # The device's own boundary line, when the header has none or a wrong one.
    head = body.lstrip(_WHITESPACE)
    if head.startswith(b"--"):
        line = head.split(b"\n", 1)[0].strip()[2:]
        if line.endswith(b"--") and len(line) > 2:
            line = line[:-2]  # a body that is only a closing delimiter
        if line:
            return line[:200]
    if _media_type(content_type).startswith("multipart/"):
        first = re.search(rb"(?m)^--(\S[^\r\n]{0,199}?)[ \t]*\r?$", body)
        if first:
            return first.group(1)
    return None


def _headers(body: bytes, start: int) -> tuple[dict[str, str], int]:
    """Part headers from ``start``; returns them and where the content begins."""
    headers: dict[str, str] = {}
    pos = start
    while len(headers) < 32:
        newline = body.find(b"\n", pos)
        line_end = newline if newline >= 0 else len(body)
        line = body[pos:line_end].rstrip(b"\r")
        if not line:
            return headers, (newline + 1 if newline >= 0 else len(body))
        match = _HEADER.match(line)
        if not match:
            return headers, pos  # no blank line after the headers: content starts here
        name = match.group(1).decode("ascii").lower()
        headers[name] = match.group(2).decode("utf-8", "replace").strip()
        if newline < 0:
            return headers, len(body)
        pos = newline + 1
    return headers, pos


def _part_end(
    body: bytes, start: int, length_header: str | None, delimiter: re.Pattern[bytes]
) -> tuple[int, re.Match[bytes] | None]:
    """Where a part's content ends, and the next delimiter (None at the end of the body)."""
    digits = (length_header or "").strip()
    length = int(digits) if re.fullmatch(r"[0-9]{1,10}", digits) else None
    if length is not None and start + length <= len(body):
        end = start + length
        following = delimiter.search(body, end)
        gap = body[end : following.start() if following else len(body)]
        if not gap.strip(_WHITESPACE):
            return end, following
    following = delimiter.search(body, start)
    if following is None:
        return len(body), None
    end = following.start()
    # The line break before a delimiter belongs to the delimiter.
    if end > start and body[end - 1 : end] == b"\n":
        end -= 1
        if end > start and body[end - 1 : end] == b"\r":
            end -= 1
    return end, following


def _make_part(index: int, headers: dict[str, str], content: bytes) -> _Part:
    disposition = headers.get("content-disposition", "")
    name = _DISPOSITION_NAME.search(disposition)
    filename = _DISPOSITION_FILENAME.search(disposition)
    part = _Part(
        label=f"part {index}",
        body=content,
        content_type=_media_type(headers.get("content-type")),
        name=name.group(1).strip() if name else "",
        filename=filename.group(1).strip() if filename else "",
    )
    if part.name or part.filename:
        part.label = f"part {index} ({(part.name or part.filename)[:40]})"
    return part


def _sniff(part: _Part) -> str:
    """What a part holds: "json", "xml", "image", "empty" or "unknown"."""
    text = part.body.strip(_WHITESPACE).removeprefix(_BOM).lstrip(_WHITESPACE)
    if not text and not part.content_type.startswith("image/"):
        return "empty"
    names = (part.name.lower(), part.filename.lower())
    if (
        text.startswith(_JPEG_START)
        or part.content_type.startswith("image/")
        or any(n.endswith((".jpg", ".jpeg")) for n in names)
        or "picture" in names
    ):
        return "image"
    if text[:1] in (b"{", b"["):
        return "json"
    if text[:1] == b"<":
        return "xml"
    if "json" in part.content_type:
        return "json"
    if "xml" in part.content_type:
        return "xml"
    return "unknown"


# --- pictures --------------------------------------------------------------------------------


def _picture(part: _Part) -> _Picture:
    data = part.body
    name = part.filename or part.name or "picture"
    if not data.startswith(_JPEG_START) or not data.rstrip(_WHITESPACE).endswith(_JPEG_END):
        return _Picture(name, b"", "truncated")
    if len(data) > MAX_IMAGE_BYTES:
        return _Picture(name, b"", "too_large")
    return _Picture(name, data.rstrip(_WHITESPACE), None)


def _with_picture(event: Event, pictures: list[_Picture]) -> Event:
    """The event with its best whole picture attached, or a note of why there is none."""
    whole = [p for p in pictures if p.problem is None]
    if whole:
        # The scene (detection / vehicle / face) picture says more than a plate close-up.
        scene = [p for p in whole if "plate" not in p.name.lower()]
        return dataclasses.replace(event, image_data=(scene or whole)[0].data)
    problem = next(p.problem for p in pictures if p.problem is not None)
    return dataclasses.replace(event, data={**event.data, "picture": problem})


# --- parts -----------------------------------------------------------------------------------


def _read_part(part: _Part, kind: str, ctx: _Context) -> None:
    """Append the outcomes of one JSON / XML part to ``ctx.outcomes``."""
    try:
        if kind == "json":
            document: Any = _json(part.body)
        elif kind == "xml":
            document = _xml(part.body)
        else:
            raise _Refused("neither JSON, XML nor a JPEG picture")
    except _Refused as exc:
        ctx.outcomes.append(Rejection(f"{part.label}: {exc}", device=ctx.device))
        return
    except Exception as exc:  # e.g. nesting deeper than the recursion limit
        ctx.outcomes.append(
            Rejection(f"{part.label}: unreadable ({type(exc).__name__})", device=ctx.device)
        )
        return
    envelopes = document if isinstance(document, list) else [_unwrap(document)]
    if not envelopes:
        ctx.outcomes.append(Rejection(f"{part.label}: empty list", device=ctx.device))
    for envelope in envelopes[:MAX_PARTS]:
        ctx.outcomes.append(_outcome(_unwrap(envelope), part.label, ctx))


def _text_of(raw: bytes) -> str:
    raw = raw.strip(_WHITESPACE).removeprefix(_BOM)
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        pass
    try:
        return raw.decode("gb18030")  # older Chinese firmware
    except UnicodeDecodeError:
        raise _Refused("text is neither UTF-8 nor GB18030") from None


def _no_constants(value: str) -> Any:
    raise ValueError(f"{value} is not JSON")


def _finite(value: str) -> float:
    number = float(value)
    if not math.isfinite(number):
        raise ValueError(f"number {value[:20]} is out of range")
    return number


def _json(raw: bytes) -> Any:
    text = _text_of(raw)
    try:
        return json.loads(text, parse_constant=_no_constants, parse_float=_finite)
    except json.JSONDecodeError as exc:
        raise _Refused(
            f"not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})"
        ) from None
    except ValueError as exc:
        raise _Refused(f"not valid JSON ({exc})") from None


def _xml(raw: bytes) -> dict[str, Any]:
    raw = raw.strip(_WHITESPACE).removeprefix(_BOM)
    # Only ASCII-compatible encodings, so that the DOCTYPE check below sees what expat sees.
    declared = _XML_ENCODING.search(raw)
    encoding = declared.group(1).decode("ascii").lower() if declared else "utf-8"
    if b"\x00" in raw or encoding not in _XML_ENCODINGS | _XML_GB_ENCODINGS:
        raise _Refused(f"XML encoding {encoding!r} is not accepted (UTF-8 or GB18030)")
    if _XML_DECLARATIONS.search(raw):
        raise _Refused("XML with DOCTYPE or ENTITY declarations is not accepted")
    source: bytes | str = raw
    if encoding in _XML_GB_ENCODINGS:  # expat knows no GB encodings: decode here
        source = _XML_PROLOG.sub("", _text_of(raw), count=1)
    try:
        root = ET.fromstring(source)
    except ET.ParseError as exc:
        raise _Refused(f"not well-formed XML ({exc})") from None
    tag = _local(root.tag)
    if tag != "EventNotificationAlert":
        raise _Refused(f"XML <{tag[:40]}> is not an EventNotificationAlert")
    value = _element(root, 0)
    return value if isinstance(value, dict) else {}


def _local(tag: Any) -> str:
    return str(tag).rsplit("}", 1)[-1]


def _element(element: ET.Element, depth: int) -> Any:
    """An XML element as JSON-like values: leaves are text, repeated tags become lists."""
    children = list(element)
    if not children:
        return (element.text or "").strip()
    if depth >= _MAX_XML_DEPTH:
        return {}
    out: dict[str, Any] = {}
    repeated: set[str] = set()
    for child in children:
        key = _local(child.tag)
        value = _element(child, depth + 1)
        if key not in out:
            out[key] = value
        elif key in repeated:
            out[key].append(value)
        else:
            out[key] = [out[key], value]
            repeated.add(key)
    return out


def _unwrap(document: Any) -> Any:
    if isinstance(document, dict) and "eventType" not in document:
        inner = document.get("EventNotificationAlert")
        if isinstance(inner, dict):
            return inner
    return document


# --- events ----------------------------------------------------------------------------------


def _outcome(envelope: Any, label: str, ctx: _Context) -> Outcome:
    if not isinstance(envelope, dict):
        return Rejection(f"{label}: an event must be an object", device=ctx.device)
    event_type = _text(envelope.get("eventType")) or ""
    try:
        access = envelope.get("AccessControllerEvent")
        if isinstance(access, dict):
            event = _access(envelope, access, ctx)
        elif "majorEventType" in envelope and "subEventType" in envelope:
            event = _access(envelope, envelope, ctx)  # firmware that sends the inner object
        elif event_type == "AccessControllerEvent":
            raise _Refused("AccessControllerEvent without its event object")
        elif event_type.lower() == "anpr" or isinstance(envelope.get("ANPR"), dict):
            anpr = envelope.get("ANPR")
            event = _anpr(envelope, anpr if isinstance(anpr, dict) else {}, ctx)
        elif event_type:
            event = _other(envelope, event_type, ctx)
        else:
            raise _Refused("no eventType: not a Hikvision event notification")
    except _Refused as exc:
        return Rejection(f"{label}: {exc}", device=ctx.device)
    if event.at > ctx.received + FUTURE_TOLERANCE:
        return Rejection(
            f"{label}: dateTime is in the future (check the device clock)", ctx.device, event.id
        )
    return event


def _access(envelope: dict[str, Any], access: dict[str, Any], ctx: _Context) -> Event:
    major = _int(access.get("majorEventType"))
    minor = _int(access.get("subEventType"))
    code = (major if major is not None else -1, minor if minor is not None else -1)
    kind = _ACCESS_KINDS.get(code, Kind.DEVICE_EVENT)
    at, data = _when(envelope, ctx)
    name = _NAMES_BY_MAJOR.get(code[0], {}).get(code[1])
    data.update({"major": major, "minor": minor})
    if name:
        data["event"] = name
    data.update(_EXTRA_DATA.get(code, {}))
    for key in _ACCESS_FIELDS:
        value = _field(key, access.get(key))
        if value is not None:
            data[key] = value
    if kind is Kind.DEVICE_EVENT:
        data["eventType"] = _text(envelope.get("eventType")) or "AccessControllerEvent"
        data["description"] = (name or "").replace("_", " ") or _unknown_code(major, minor)
        logger.debug("hikvision %s: unmapped access event %s/%s", ctx.device, major, minor)
    subject = None if kind in _NO_SUBJECT else _access_subject(access, kind in _CARD_FIRST)
    current = _bool(access.get("currentEvent"))
    device_time = at if "at" not in data else None  # the time received is no identity
    return Event(
        device=ctx.device,
        kind=kind,
        at=at,
        id=_access_id(envelope, access, device_time),
        subject=subject,
        data=data,
        history=current is False,
    )


def _unknown_code(major: int | None, minor: int | None) -> str:
    if major is None or minor is None:
        return "access-control event without event codes"
    return f"access-control event {major}/{minor} (0x{minor:x})"


def _access_subject(access: dict[str, Any], card_first: bool) -> Subject | None:
    person = _text(access.get("employeeNoString")) or _text(access.get("employeeNo"))
    if person in ("", "0") or (person is not None and len(person) > 200):
        person = None
    card: str | None = None
    raw_card = _text(access.get("cardNo"))
    if raw_card:
        try:
            card = normalise.card(raw_card)[:200]
        except ValueError:
            card = None
    order = ((SubjectType.CARD, card), (SubjectType.PERSON, person))
    for subject_type, value in order if card_first else reversed(order):
        if value:
            return Subject(subject_type, value)
    return None


def _access_id(envelope: dict[str, Any], access: dict[str, Any], at: dt.datetime | None) -> str:
    serial = _int(access.get("serialNo"))
    if serial is None or serial < 0:
        return _hash_id(envelope)
    pieces = ["hik", _device_key(envelope), str(serial)]
    if at is not None:
        pieces.append(at.strftime("%Y%m%dT%H%M%SZ"))
    ident = ":".join(piece for piece in pieces if piece)
    return ident if _ID.match(ident) else _hash_id(envelope)


def _device_key(envelope: dict[str, Any]) -> str:
    mac = _text(envelope.get("macAddress"))
    if mac:
        try:
            return normalise.mac(mac).replace(":", "").lower()
        except ValueError:
            pass
    device_id = re.sub(r"[^\w.\-]", "", _text(envelope.get("deviceID")) or "")
    return device_id[:20]


def _anpr(envelope: dict[str, Any], anpr: dict[str, Any], ctx: _Context) -> Event:
    at, data = _when(envelope, ctx)
    subject = None
    plate = _plate(_text(anpr.get("licensePlate")) or _text(anpr.get("originalLicensePlate")))
    if plate is None:
        data["plate"] = "unrecognised"
    else:
        subject = Subject(SubjectType.PLATE, plate)
    vehicle = anpr.get("vehicleInfo")
    if not isinstance(vehicle, dict):
        vehicle = {}
    confidence = _int(anpr.get("confidenceLevel"))
    fields = {
        "plateColor": anpr.get("plateColor"),
        "plateType": anpr.get("plateType"),
        "vehicleType": anpr.get("vehicleType"),
        "vehicleColor": vehicle.get("color"),
        "confidence": confidence,
        "country": anpr.get("country"),
        "lane": _int(anpr.get("line")),
        "list": anpr.get("vehicleListName") or anpr.get("listType"),
        "deviceDirection": anpr.get("direction"),
        "detectDir": anpr.get("detectDir"),
    }
    data.update({k: v for k, v in fields.items() if v not in (None, "") and _scalar(v)})
    gat = _gat(envelope, anpr)
    if gat:
        data["gat"] = gat
    return Event(
        device=ctx.device,
        kind=Kind.VEHICLE_PASSED,
        at=at,
        id=_anpr_id(envelope, anpr),
        subject=subject,
        direction=_vehicle_direction(anpr, ctx.forward_is),
        data=data,
        history=_bool(envelope.get("isDataRetransmission")) is True,
    )


def _plate(raw: str | None) -> str | None:
    if not raw:
        return None
    try:
        plate = normalise.plate(raw)
    except ValueError:
        return None
    if plate in _NO_PLATE or "无车牌" in plate or len(plate) > 20:
        return None
    return plate


def _vehicle_direction(anpr: dict[str, Any], forward_is: Direction) -> Direction | None:
    backward = Direction.OUT if forward_is is Direction.IN else Direction.IN
    for key in ("direction", "detectDir"):
        word = (_text(anpr.get(key)) or "").lower()
        if word in _FORWARD:
            return forward_is
        if word in _REVERSE:
            return backward
        if word in _IN:
            return Direction.IN
        if word in _OUT:
            return Direction.OUT
    return None


def _gat(envelope: dict[str, Any], anpr: dict[str, Any]) -> dict[str, Any]:
    info = envelope.get("VehicleGATInfo")
    if not isinstance(info, dict):
        info = anpr.get("VehicleGATInfo")
    if not isinstance(info, dict):
        return {}
    fields = {
        "plateType": info.get("palteTypeByGAT", info.get("plateTypeByGAT")),
        "plateColor": info.get("plateColorByGAT"),
        "vehicleType": info.get("vehicleTypeByGAT"),
        "vehicleColor": info.get("colorByGAT"),
    }
    return {k: v for k, v in fields.items() if v not in (None, "") and _scalar(v)}


def _anpr_id(envelope: dict[str, Any], anpr: dict[str, Any]) -> str:
    uuid_text = _text(envelope.get("UUID")) or _text(anpr.get("UUID"))
    if uuid_text:
        if _ID.match(uuid_text) and not uuid_text.startswith("hik:"):
            return uuid_text
        return "hik:uuid:" + hashlib.sha256(uuid_text.encode()).hexdigest()[:40]
    pictures = anpr.get("pictureInfoList")
    infos = _as_list(pictures.get("pictureInfo")) if isinstance(pictures, dict) else []
    for info in infos:
        pid = _text(info.get("pId")) if isinstance(info, dict) else None
        if pid and _ID.match("hik:pid:" + pid):
            return "hik:pid:" + pid
    return _hash_id(envelope)


def _other(envelope: dict[str, Any], event_type: str, ctx: _Context) -> Event:
    at, data = _when(envelope, ctx)
    state = (_text(envelope.get("eventState")) or "").lower()
    lowered = event_type.lower()
    if lowered in _HEARTBEAT_TYPES or (lowered == "videoloss" and state != "active"):
        kind = Kind.DEVICE_HEARTBEAT
    elif lowered == "videoloss":
        kind = Kind.DEVICE_FAULT
    else:
        kind = Kind.DEVICE_EVENT
    data["eventType"] = event_type[:64]
    if kind is Kind.DEVICE_EVENT:
        data.update({"major": None, "minor": None})
        data["description"] = (_text(envelope.get("eventDescription")) or "")[:200]
    for key in ("eventState", "channelID"):
        value = envelope.get(key)
        if value not in (None, "") and _scalar(value):
            data[key] = value
    return Event(device=ctx.device, kind=kind, at=at, id=_hash_id(envelope), data=data)


# --- values ----------------------------------------------------------------------------------


def _when(envelope: dict[str, Any], ctx: _Context) -> tuple[dt.datetime, dict[str, Any]]:
    """The event time (aware, UTC) and the start of its data (notes how the time was found)."""
    raw = envelope.get("dateTime")
    if raw is None or raw == "":
        return ctx.received, {"at": "received"}
    if not isinstance(raw, str):
        raise _Refused("dateTime is not a text time")
    try:
        return normalise.aware(dt.datetime.fromisoformat(raw.strip()), ctx.tz), {}
    except (ValueError, OverflowError):
        raise _Refused(f"dateTime {raw[:40]!r} is not an ISO 8601 time") from None


def _hash_id(document: Any) -> str:
    canonical = json.dumps(document, sort_keys=True, ensure_ascii=False, default=str)
    return "hik:h:" + hashlib.sha256(canonical.encode("utf-8", "replace")).hexdigest()[:40]


def _text(value: Any) -> str | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, int | float):
        return str(value)
    return None


def _int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and re.fullmatch(r"\s*-?\d{1,18}\s*", value):
        return int(value)
    return None


def _bool(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    return None


def _scalar(value: Any) -> bool:
    return isinstance(value, str | int | float | bool)


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def _field(key: str, value: Any) -> Any:
    """An AccessControllerEvent field as stored in data (XML sends every value as text)."""
    if value is None or value == "":
        return None
    if key in _INT_FIELDS:
        number = _int(value)
        return number if number is not None else (value if _scalar(value) else None)
    if key == "FaceRect":
        if not isinstance(value, dict):
            return None
        rect = {k: _number(value.get(k)) for k in ("x", "y", "width", "height")}
        return {k: v for k, v in rect.items() if v is not None} or None
    if isinstance(value, str):
        return value[:200]
    return value if _scalar(value) else None


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        number = float(value)
    elif isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            return None
    else:
        return None
    return number if math.isfinite(number) else None
