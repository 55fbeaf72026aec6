"""NB-IoT carrier pushes → canonical events: China Telecom CTWing/AEP, China Mobile OneNET.

Pure functions over decoded JSON; the HTTP routes verify, decode and hand bodies here. Each
pushed message is judged alone: a bad one becomes a :class:`Rejection` with its reason and
never spoils the messages beside it. Installer notes and example payloads:
``docs/devices-nbiot.md``.

**Devices.** Carriers name a device by their own id (CTWing ``deviceId``, OneNET ``dev_id``)
or its ``IMEI``; the caller's ``devices`` lookup turns either into the Anju code and kind
(:class:`DeviceInfo`). The carrier id is tried first, then the IMEI.

**Field names** (the tables below; listed in the installer notes) are matched ignoring case
and the separators ``_ - .`` and spaces, so ``Alarm_Status``, ``alarmStatus`` and
``alarm-status`` are one name. Battery and signal always land in ``data["battery"]``,
``data["rsrp"]`` and ``data["snr"]``. A report with no reading for its device kind but with
battery or signal becomes ``device.heartbeat``; one with neither becomes ``device.event``
(kept, not lost). The message's own fields are kept in ``data["fields"]``.

**Time.** Carriers send Unix time in milliseconds; seconds are accepted too, decided by
magnitude: below 100 000 000 000 a number is seconds (that is year 5138 in seconds, 1973 in
milliseconds), otherwise milliseconds. A message without a time is dated ``received_at``.

**Event ids** are derived from the carrier's identity of the message, so a redelivered push
(OneNET retries until it gets a 200 within 5 s; duplicates are normal) yields the same id and
is stored once: ``ctw:<deviceId>:<ms>:up<upPacketSN>[.<upDataSN>]`` for a data report with a
packet number, ``ctw:<deviceId>:<ms>:<message tag>`` otherwise, ``onenet:<dev_id>:<at>:<ds_id>``
for a data point, ``onenet:<dev_id>:<at>:on|off`` and ``onenet:<dev_id>:cmd:<cmd_id>:…``.
The time stays in the id even when a packet number is known, because packet numbers wrap
and two alarms months apart must not collapse into one. Ids longer than 64 characters or
with characters outside ``[A-Za-z0-9_.:-]`` are replaced by ``<carrier>:`` and a SHA-256
digest of the same parts; a message without a time gets a digest of its whole content.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import hmac
import json
import logging
import math
import re
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from anju.events.model import Event, Kind, Outcome, Rejection
from anju.events.wire import FUTURE_TOLERANCE, MAX_BATCH

logger = logging.getLogger(__name__)

ENCRYPTED_ONENET = (
    "encrypted OneNET pushes are not supported: turn message encryption off for this push"
)
MAX_APPDATA_BYTES = 4096
_SECONDS_BELOW = 100_000_000_000
_SAFE_ID = re.compile(r"^[A-Za-z0-9_.:\-]{1,64}$")
_SEPARATORS = re.compile(r"[\s_.\-]")
_WORD_SEPARATORS = re.compile(r"[\s_\-]")
_MAX_DEPTH = 12
_ONENET_LOGIN_TYPES = {1: "EDP", 6: "MODBUS", 7: "MQTT", 10: "NB-IoT"}
_CTWING_EVENT_TYPES = {1: "info", 2: "warning", 3: "fault"}

# Anju device kinds (``anju.devices.models.DeviceKind`` values, repeated here so the core
# imports no ORM).
SMOKE_DETECTOR = "smoke_detector"
DOOR_MAGNET = "door_magnet"
WATER_METER = "water_meter"
ELECTRICITY_METER = "electricity_meter"
GAS_METER = "gas_meter"
MANHOLE = "manhole"
HYDRANT = "hydrant"
INFRARED = "infrared"


@dataclass(frozen=True, slots=True)
class DeviceInfo:
    """An Anju device as a carrier push needs it: its registered code and its kind."""

    code: str
    kind: str  # a DeviceKind value: "smoke_detector", "water_meter", …


DeviceLookup = Callable[[str], DeviceInfo | None]
"""Carrier device id or IMEI → the Anju device, or ``None`` when none is registered."""


class _Bad(ValueError):
    """One message is refused; the text is the reason (names fields, never their values)."""


# --- field names -------------------------------------------------------------------------
# Normalised names (lower case, no separators). First match wins.

_BATTERY = ("battery", "batterylevel", "batterypercent", "batteryvalue", "batterycapacity", "batt")
_BATTERY_VOLTAGE = ("batteryvoltage", "batvoltage", "batteryvolt")
_RSRP = ("rsrp",)
_SIGNAL = ("signal", "signalstrength", "signalpower", "signallevel")
_SNR = ("snr", "sinr")
_UNIT = ("unit", "units")


@dataclass(frozen=True, slots=True)
class _Spec:
    """How one device kind's primary reading is found and read."""

    kind: Kind
    fields: tuple[str, ...]
    states: Mapping[str, tuple[str, float]] = field(default_factory=dict)  # empty: numeric
    unit: str | None = None


def _names(words: str) -> tuple[str, ...]:
    return tuple(words.split())


def _states(on: str, on_words: str, off: str, off_words: str) -> dict[str, tuple[str, float]]:
    table = {word: (on, 1.0) for word in on_words.split()}
    table.update({word: (off, 0.0) for word in off_words.split()})
    return table


_SMOKE_STATES = _states(
    "alarm",
    "1 true on yes alarm alarming fire smoke",
    "clear",
    "0 false off no normal clear cleared ok restore restored recovered",
)
# A test sounds the siren but is no fire: state "test", value 0.
_SMOKE_STATES.update({"test": ("test", 0.0), "selftest": ("test", 0.0), "testing": ("test", 0.0)})

_READINGS: dict[str, _Spec] = {
    SMOKE_DETECTOR: _Spec(
        Kind.FIRE_SMOKE,
        _names("alarmstatus alarmstate smokestate smokestatus smokealarm smokealarmstate")
        + _names("firealarm smoke alarm"),
        _SMOKE_STATES,
    ),
    DOOR_MAGNET: _Spec(
        Kind.SENSOR_DOOR_MAGNET,
        _names("doorstate doorstatus magnetstatus magnetstate doormagnet magnet door"),
        _states("open", "1 true on open opened", "closed", "0 false off close closed shut"),
    ),
    WATER_METER: _Spec(
        Kind.METER_WATER,
        _names("reading totalvolume waterconsumption cumulativeflow cumulativevolume totalflow")
        + _names("meterreading watervolume water"),
        unit="m3",
    ),
    ELECTRICITY_METER: _Spec(
        Kind.METER_ELECTRICITY,
        _names("reading electricity totalenergy activeenergy positiveactiveenergy")
        + _names("electricityconsumption energy meterreading kwh"),
        unit="kWh",
    ),
    GAS_METER: _Spec(
        Kind.METER_GAS,
        _names("reading totalvolume gasconsumption cumulativeflow cumulativevolume totalflow")
        + _names("meterreading gasvolume gas"),
        unit="m3",
    ),
    MANHOLE: _Spec(
        Kind.SENSOR_MANHOLE,
        _names("manholestate manholestatus coverstate coverstatus lidstate lidstatus manhole")
        + _names("alarmstatus alarmstate alarm"),
        _states(
            "open",
            "1 true on open opened abnormal alarm displaced tilted lifted",
            "closed",
            "0 false off close closed normal ok",
        ),
    ),
    HYDRANT: _Spec(
        Kind.FIRE_HYDRANT_PRESSURE,
        _names("pressure waterpressure hydrantpressure hydraulicpressure"),
        unit="MPa",
    ),
    INFRARED: _Spec(
        Kind.SENSOR_INFRARED,
        _names("infraredstate infraredstatus irstate pirstate pirstatus motionstate motion")
        + _names("presence infrared pir alarmstatus alarmstate alarm"),
        _states(
            "motion",
            "1 true on motion detected alarm triggered",
            "clear",
            "0 false off clear none normal idle",
        ),
    ),
}

# Hydrant pressure arrives in MPa unless the device says otherwise.
_TO_MPA = {"mpa": 1.0, "kpa": 0.001, "bar": 0.1, "pa": 0.000001}


# --- CTWing / AEP ------------------------------------------------------------------------


def parse_ctwing(
    payload: dict[str, Any] | list[Any], received_at: dt.datetime, *, devices: DeviceLookup
) -> list[Outcome]:
    """A CTWing/AEP subscription push (one message or a list) → one outcome per message.

    Handles ``dataReport`` (``serviceData`` objects, flat objects and pass-through
    ``APPdata``), ``deviceOnlineOfflineReport``, ``eventReport`` and ``commandResponse``.
    ``received_at`` is aware UTC; exceptions from ``devices`` (a database down) propagate,
    so the push fails and the carrier retries it.
    """
    items = payload if isinstance(payload, list) else [payload]
    if len(items) > MAX_BATCH:
        return [Rejection(f"batch of {len(items)} messages is larger than {MAX_BATCH}")]
    return [_judge("ctwing", item, received_at, devices, _ctwing_message) for item in items]


def _ctwing_message(item: Any, received_at: dt.datetime, devices: DeviceLookup) -> Event:
    if not isinstance(item, dict):
        raise _Bad("a CTWing message must be a JSON object")
    message_type = item.get("messageType")
    handler = _CTWING_HANDLERS.get(message_type) if isinstance(message_type, str) else None
    if handler is None:
        raise _Bad(f"unsupported CTWing messageType {_shown(message_type)}")
    carrier_id = _ident(item.get("deviceId"))
    imei = _ident(item.get("IMEI", item.get("imei")))
    device = _resolve(devices, "CTWing deviceId or IMEI", carrier_id, imei)
    at, ms = _time(item.get("timestamp"), "timestamp", received_at)
    payload = item.get("payload")
    service = _ident(item.get("serviceId"))
    if service is None and isinstance(payload, dict):
        service = _ident(payload.get("serviceId"))
    carrier: dict[str, Any] = {"platform": "ctwing", "message_type": message_type}
    for key, ident in (
        ("device_id", carrier_id),
        ("imei", imei),
        ("product_id", _ident(item.get("productId"))),
        ("service_id", service),
    ):
        if ident is not None:
            carrier[key] = ident
    kind, value, data, tag = handler(item, device.kind)
    if ms is None:
        event_id = _digest_id("ctw", item)
    else:
        event_id = _event_id("ctw", carrier_id or imei or device.code, ms, tag)
    return Event(
        device=device.code,
        kind=kind,
        at=at,
        id=event_id,
        value=value,
        data={**data, "carrier": carrier},
    )


_Handled = tuple[Kind, float | None, dict[str, Any], str]


def _ctwing_data_report(item: dict[str, Any], device_kind: str) -> _Handled:
    payload = item.get("payload")
    if not isinstance(payload, dict):
        raise _Bad("dataReport: payload must be a JSON object")
    tag = "up"
    packet, data_sn = _sequence(item.get("upPacketSN")), _sequence(item.get("upDataSN"))
    if packet is not None:
        tag = f"up{packet}" if data_sn is None else f"up{packet}.{data_sn}"
    fields = _index(payload)
    if "appdata" in fields:
        decoded = _appdata(fields["appdata"])
        if isinstance(decoded, bytes):
            # Pass-through bytes in a vendor format we cannot read: keep them, not lose them.
            data = {"raw_hex": decoded.hex(), "raw_size": len(decoded)}
            return Kind.DEVICE_EVENT, None, data, tag
        payload = decoded
    elif isinstance(payload.get("serviceData"), dict):
        payload = payload["serviceData"]
    kind, value, data = _reading(device_kind, payload)
    return kind, value, data, tag


def _ctwing_online(item: dict[str, Any], device_kind: str) -> _Handled:
    event_type = _integer(item.get("eventType"))
    if event_type == 1:
        return Kind.DEVICE_ONLINE, None, {}, "on"
    if event_type == 0:
        return Kind.DEVICE_OFFLINE, None, {}, "off"
    raise _Bad("deviceOnlineOfflineReport: eventType must be 1 (online) or 0 (offline)")


def _ctwing_event(item: dict[str, Any], device_kind: str) -> _Handled:
    event_type = _integer(item.get("eventType"))
    if event_type not in _CTWING_EVENT_TYPES:
        raise _Bad("eventReport: eventType must be 1 (info), 2 (warning) or 3 (fault)")
    content = item.get("eventContent")
    tag = f"ev{event_type}"
    service = _ident(item.get("serviceId"))
    if service is not None:
        tag += f".{service}"
    data: dict[str, Any] = {"event_type": _CTWING_EVENT_TYPES[event_type]}
    if not isinstance(content, dict):
        if content is not None:
            data["content"] = _clean(content)
        return (Kind.DEVICE_FAULT if event_type == 3 else Kind.DEVICE_EVENT), None, data, tag
    if event_type == 3:
        # A fault is a fault whatever else the device put beside it.
        read = {**_health(_index(content)), "fields": _clean(content)}
        return Kind.DEVICE_FAULT, None, {**read, **data}, tag
    try:
        kind, value, read = _reading(device_kind, content)
    except _Bad:
        # An odd reading inside a vendor event does not cost the event itself.
        kind, value = Kind.DEVICE_EVENT, None
        read = {**_health(_index(content)), "fields": _clean(content)}
    if kind is Kind.DEVICE_HEARTBEAT:
        kind = Kind.DEVICE_EVENT
    # Otherwise a recognised reading (a smoke alarm reported as a warning event) keeps its
    # canonical kind, so the alarm rules see it.
    return kind, value, {**read, **data}, tag


def _ctwing_command(item: dict[str, Any], device_kind: str) -> _Handled:
    task = _ident(item.get("taskId"))
    result = item.get("result")
    data: dict[str, Any] = {"command": "response"}
    if task is not None:
        data["task_id"] = task
    code = None
    if isinstance(result, dict):
        code = _ident(result.get("resultCode"))
        detail = result.get("resultDetail")
        if code is not None:
            data["result_code"] = code
        if isinstance(detail, str | int | float) and not isinstance(detail, bool):
            data["result_detail"] = _clean(detail)
    return Kind.DEVICE_EVENT, None, data, f"cmd.{task or ''}.{code or ''}"


_CTWING_HANDLERS: dict[str, Callable[[dict[str, Any], str], _Handled]] = {
    "dataReport": _ctwing_data_report,
    "deviceOnlineOfflineReport": _ctwing_online,
    "eventReport": _ctwing_event,
    "commandResponse": _ctwing_command,
}


def _appdata(raw: Any) -> bytes | dict[str, Any]:
    """Pass-through ``APPdata``: a JSON object when the bytes are one, else the bytes."""
    if not isinstance(raw, str):
        raise _Bad("dataReport: payload.APPdata must be a base64 string")
    try:
        blob = base64.b64decode(raw.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise _Bad("dataReport: payload.APPdata is not base64") from None
    if len(blob) > MAX_APPDATA_BYTES:
        raise _Bad(f"dataReport: payload.APPdata is larger than {MAX_APPDATA_BYTES} bytes")
    if blob[:1] == b"{":
        try:
            decoded = json.loads(blob.decode("utf-8"))
        except (UnicodeDecodeError, ValueError, RecursionError):
            return blob
        if isinstance(decoded, dict):
            return decoded
    return blob


# --- OneNET ------------------------------------------------------------------------------


def onenet_signature(token: str, nonce: str, msg: str) -> str:
    """``base64(MD5(token + nonce + msg))`` over UTF-8 bytes: OneNET's push signature."""
    # MD5 is the carrier's choice, not ours; the flag keeps it available on FIPS builds.
    digest = hashlib.md5((token + nonce + msg).encode("utf-8"), usedforsecurity=False)
    return base64.b64encode(digest.digest()).decode("ascii")


def verify_onenet_url(msg: str, nonce: str, signature: str, token: str) -> bool:
    """OneNET's URL check (``GET ?msg=&nonce=&signature=``): does ``signature`` match the token?

    The caller URL-decodes the query and, on success, answers with ``msg`` alone. A ``+`` in
    the signature often arrives as a space (form-decoding of an unencoded ``+``), so spaces
    are read back as ``+``. An empty token never verifies.
    """
    if not all(isinstance(part, str) for part in (msg, nonce, signature, token)) or not token:
        return False
    given = signature.replace(" ", "+").strip().encode("utf-8")
    return hmac.compare_digest(onenet_signature(token, nonce, msg).encode("ascii"), given)


def check_onenet_signature(body: dict[str, Any], token: str) -> bool:
    """Does a OneNET data push's ``msg_signature`` match the token?

    Signed text, as OneNET's own receiver samples compute it: ``token + nonce + M`` where M is
    ``enc_msg`` as sent when encryption is on, else ``msg`` re-serialised as compact JSON
    (no spaces, keys in the order received; non-ASCII first as is, then ``\\uXXXX``-escaped);
    a ``msg`` that is already a string is signed as it is. MD5, then base64.
    """
    if not isinstance(body, dict) or not isinstance(token, str) or not token:
        return False
    signature, nonce = body.get("msg_signature"), body.get("nonce")
    if not isinstance(signature, str) or not isinstance(nonce, str):
        return False
    given = signature.replace(" ", "+").strip().encode("utf-8")
    return any(
        hmac.compare_digest(onenet_signature(token, nonce, text).encode("ascii"), given)
        for text in _signed_texts(body)
    )


def _signed_texts(body: dict[str, Any]) -> list[str]:
    if "enc_msg" in body:
        enc = body["enc_msg"]
        return [enc] if isinstance(enc, str) else []
    msg = body.get("msg")
    if isinstance(msg, str):
        return [msg]
    if not isinstance(msg, dict | list):
        return []
    try:
        texts = [
            json.dumps(msg, separators=(",", ":"), ensure_ascii=False),
            json.dumps(msg, separators=(",", ":"), ensure_ascii=True),
        ]
    except (TypeError, ValueError, RecursionError):
        return []
    return texts[:1] if texts[0] == texts[1] else texts


def parse_onenet(
    body: dict[str, Any], received_at: dt.datetime, *, devices: DeviceLookup
) -> list[Outcome]:
    """A OneNET data push body → one outcome per message in ``msg`` (an object or an array).

    Type 1 data point, 2 online/offline, 7 cached-command result. Check the signature first
    with :func:`check_onenet_signature`; encrypted pushes (``enc_msg``) are refused.
    ``received_at`` is aware UTC.
    """
    if not isinstance(body, dict):
        return [Rejection("a OneNET push must be a JSON object")]
    if "enc_msg" in body:
        return [Rejection(ENCRYPTED_ONENET)]
    msg = body.get("msg")
    if not isinstance(msg, dict | list):
        return [Rejection("a OneNET push needs msg: an object or an array of objects")]
    items = msg if isinstance(msg, list) else [msg]
    if len(items) > MAX_BATCH:
        return [Rejection(f"batch of {len(items)} messages is larger than {MAX_BATCH}")]
    return [_judge("onenet", item, received_at, devices, _onenet_message) for item in items]


def _onenet_message(item: Any, received_at: dt.datetime, devices: DeviceLookup) -> Event:
    if not isinstance(item, dict):
        raise _Bad("a OneNET message must be a JSON object")
    message_type = _integer(item.get("type"))
    if message_type not in (1, 2, 7):
        raise _Bad(f"unsupported OneNET message type {_shown(item.get('type'))}")
    dev_id = _ident(item.get("dev_id"))
    imei = _ident(item.get("imei"))
    device = _resolve(devices, "OneNET dev_id or IMEI", dev_id, imei)
    raw_time = item.get("at")
    if message_type == 7 and raw_time is None:
        raw_time = item.get("confirm_time", item.get("send_time"))
    at, ms = _time(raw_time, "at", received_at)
    carrier: dict[str, Any] = {"platform": "onenet", "type": message_type}
    if dev_id is not None:
        carrier["device_id"] = dev_id
    if imei is not None:
        carrier["imei"] = imei
    who = dev_id or imei or device.code
    value: float | None = None
    if message_type == 1:
        ds_id = _ident(item.get("ds_id"))
        if ds_id is None:
            raise _Bad("type 1 data point has no ds_id")
        if item.get("value") is None:
            raise _Bad("type 1 data point has no value")
        raw = item["value"]
        # An object value is the datastream's fields; a plain value is named by its ds_id.
        kind, value, data = _reading(device.kind, raw if isinstance(raw, dict) else {ds_id: raw})
        data["datastream"] = ds_id
        event_id = _event_id("onenet", who, ms, ds_id) if ms is not None else None
    elif message_type == 2:
        status = _integer(item.get("status"))
        if status not in (0, 1):
            raise _Bad("type 2 online/offline message: status must be 1 or 0")
        kind = Kind.DEVICE_ONLINE if status == 1 else Kind.DEVICE_OFFLINE
        data = {}
        login = _integer(item.get("login_type"))
        if login is not None:
            data["login_type"] = _ONENET_LOGIN_TYPES.get(login, str(login))
        tag = "on" if status == 1 else "off"
        event_id = _event_id("onenet", who, ms, tag) if ms is not None else None
    else:
        kind, data = Kind.DEVICE_EVENT, {"command": "cached_result"}
        for key in ("cmd_id", "cmd_type", "send_status", "confirm_status"):
            part = _ident(item.get(key))
            if part is not None:
                data[key] = part
        if "confirm_body" in item:
            data["confirm_body"] = _clean(item["confirm_body"])
        # The command id names the command; its statuses tell one report of it from another.
        status_parts = (data.get("send_status", ""), data.get("confirm_status", ""))
        event_id = (
            _event_id("onenet", who, "cmd", data["cmd_id"], *status_parts)
            if "cmd_id" in data
            else None
        )
    return Event(
        device=device.code,
        kind=kind,
        at=at,
        id=event_id or _digest_id("onenet", item),
        value=value,
        data={**data, "carrier": carrier},
    )


# --- shared ------------------------------------------------------------------------------


def _judge(
    platform: str,
    item: Any,
    received_at: dt.datetime,
    devices: DeviceLookup,
    parse: Callable[[Any, dt.datetime, DeviceLookup], Event],
) -> Outcome:
    """One message → its event, or a rejection carrying the reason and the carrier's ids."""
    try:
        return parse(item, received_at, devices)
    except _Bad as exc:
        detail: dict[str, Any] = {"platform": platform}
        if isinstance(item, dict):
            for key in ("deviceId", "IMEI", "dev_id", "imei", "messageType", "type"):
                ident = _ident(item.get(key))
                if ident is not None:
                    detail[key] = ident
        logger.debug("%s message rejected: %s", platform, exc)
        return Rejection(str(exc), detail=detail)


def _resolve(
    devices: DeviceLookup, what: str, carrier_id: str | None, imei: str | None
) -> DeviceInfo:
    if carrier_id is None and imei is None:
        raise _Bad(f"no {what} in the message")
    for key in (carrier_id, imei):
        if key is not None:
            found = devices(key)
            if found is not None:
                return found
    raise _Bad(f"unknown device: no Anju device is registered with this {what}")


def _reading(
    device_kind: str, fields: Mapping[str, Any]
) -> tuple[Kind, float | None, dict[str, Any]]:
    """A device's reported fields → (kind, value, data), by the device's kind."""
    index = _index(fields)
    data: dict[str, Any] = _health(index)
    data["fields"] = _clean(dict(fields))
    spec = _READINGS.get(str(device_kind))
    found = _first(index, spec.fields) if spec is not None else None
    if spec is None or found is None:
        kind = Kind.DEVICE_HEARTBEAT if set(data) - {"fields"} else Kind.DEVICE_EVENT
        return kind, None, data
    name, raw = found
    if spec.states:
        word = _word(raw)
        if word is None or word not in spec.states:
            # An alarm code we do not know: kept as a vendor event for a person to read,
            # never guessed into an alarm or a clear.
            data["unrecognised_state"] = name
            return Kind.DEVICE_EVENT, None, data
        state, value = spec.states[word]
        data["state"] = state
        return spec.kind, value, data
    number = _number(raw)
    if number is None:
        raise _Bad(f"{spec.kind.value}: {name} is not a number")
    unit_raw = _first(index, _UNIT)
    unit = unit_raw[1].strip()[:16] if unit_raw and isinstance(unit_raw[1], str) else None
    if spec.kind is Kind.FIRE_HYDRANT_PRESSURE:
        factor = _TO_MPA.get((unit or "MPa").casefold())
        if factor is None:
            raise _Bad(f"{spec.kind.value}: unknown pressure unit (use MPa, kPa, bar or Pa)")
        number, unit = number * factor, "MPa"
    data["unit"] = unit or spec.unit
    return spec.kind, number, data


def _health(index: Mapping[str, Any]) -> dict[str, Any]:
    """Battery and radio figures, under the names device health reads."""
    health: dict[str, Any] = {}
    for target, names in (
        ("battery", _BATTERY),
        ("battery_voltage", _BATTERY_VOLTAGE),
        ("rsrp", _RSRP),
        ("snr", _SNR),
    ):
        found = _first(index, names)
        number = _number(found[1]) if found else None
        if number is not None:
            health[target] = _compact(number)
    signal = _first(index, _SIGNAL)
    level = _number(signal[1]) if signal else None
    if level is not None:
        # A negative "signal" is an RSRP in dBm; a positive one is a CSQ or a vendor scale,
        # which would mislead device health if read as RSRP.
        if level <= 0 and "rsrp" not in health:
            health["rsrp"] = _compact(level)
        else:
            health["signal"] = _compact(level)
    return health


def _index(fields: Mapping[str, Any]) -> dict[str, Any]:
    index: dict[str, Any] = {}
    for key, value in fields.items():
        if isinstance(key, str):
            index.setdefault(_SEPARATORS.sub("", key).casefold(), value)
    return index


def _first(index: Mapping[str, Any], names: tuple[str, ...]) -> tuple[str, Any] | None:
    for name in names:
        if index.get(name) is not None:
            return name, index[name]
    return None


def _word(raw: Any) -> str | None:
    """A state as a lookup word: ``1``, ``1.0`` and ``"1"`` are all ``"1"``; text folded."""
    if isinstance(raw, bool):
        return "true" if raw else "false"
    if isinstance(raw, int | float):
        number = _number(raw)
        return str(int(number)) if number is not None and number.is_integer() else None
    if isinstance(raw, str):
        text = _WORD_SEPARATORS.sub("", raw).casefold()
        if len(text) <= 20 and re.fullmatch(r"[0-9]+(\.0+)?", text):
            return str(int(text.split(".")[0]))
        return text
    return None


def _number(raw: Any) -> float | None:
    if isinstance(raw, bool):
        return None
    if isinstance(raw, int | float):
        number = float(raw) if abs(raw) < 1e300 else math.inf
    elif isinstance(raw, str) and len(raw) <= 40:
        try:
            number = float(raw.strip())
        except ValueError:
            return None
    else:
        return None
    return number if math.isfinite(number) else None


def _integer(raw: Any) -> int | None:
    number = _number(raw)
    return int(number) if number is not None and number.is_integer() else None


def _compact(number: float) -> float | int:
    return int(number) if number.is_integer() and abs(number) < 2**53 else number


def _sequence(raw: Any) -> int | None:
    """A carrier sequence number; ``-1`` and ``""`` mean "none"."""
    number = _integer(raw)
    return number if number is not None and number >= 0 else None


def _ident(raw: Any) -> str | None:
    """A carrier identifier as text; blanks and the literal ``undefined``/``null`` are none."""
    if isinstance(raw, bool):
        return None
    if isinstance(raw, int):
        return str(raw) if abs(raw) < 10**30 else None
    if isinstance(raw, str):
        text = raw.strip()
        if text and len(text) <= 128 and text.casefold() not in ("undefined", "null", "none"):
            return text
    return None


def _time(raw: Any, name: str, received_at: dt.datetime) -> tuple[dt.datetime, int | None]:
    """Carrier Unix time (ms, or s by magnitude) → (aware UTC time, ms); none → received_at."""
    if raw is None or raw == "":
        return received_at, None
    number = _number(raw)
    if number is None or number <= 0:
        raise _Bad(f"{name} must be Unix time in milliseconds")
    ms = int(number * 1000) if number < _SECONDS_BELOW else int(number)
    try:
        at = dt.datetime.fromtimestamp(ms / 1000, dt.UTC)
    except (OverflowError, OSError, ValueError):
        raise _Bad(f"{name} is out of range") from None
    if at > received_at + FUTURE_TOLERANCE:
        raise _Bad(f"{name} is in the future (check the carrier's time unit)")
    return at, ms


def _event_id(carrier: str, *parts: object) -> str:
    text = ":".join(str(part) for part in parts)
    candidate = f"{carrier}:{text}"
    if _SAFE_ID.match(candidate):
        return candidate
    return f"{carrier}:{hashlib.sha256(text.encode('utf-8')).hexdigest()[:40]}"


def _digest_id(carrier: str, item: Mapping[str, Any]) -> str:
    """An id from the whole message: a redelivery of the same bytes gets the same id."""
    try:
        text = json.dumps(item, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    except (TypeError, ValueError, RecursionError):
        return f"{carrier}:{uuid.uuid4().hex}"
    return f"{carrier}:{hashlib.sha256(text.encode('ascii')).hexdigest()[:40]}"


def _clean(value: Any, depth: int = 0) -> Any:
    """A JSON-safe copy: non-finite numbers become null, very deep nesting is cut."""
    if depth > _MAX_DEPTH:
        return None
    if isinstance(value, dict):
        return {str(k): _clean(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v, depth + 1) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)


def _shown(value: Any) -> str:
    """A protocol word for a reason text: short, printable, never a device reading."""
    if isinstance(value, str):
        return repr(re.sub(r"[^\w.\-]", "?", value[:40]))
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) < 10**30:
        return str(value)
    return "(missing)" if value is None else f"of type {type(value).__name__}"
