"""Unit tests: NB-IoT carrier pushes (CTWing/AEP, OneNET) → canonical events or rejections.

Payloads follow the carriers' documented push shapes (``/work/shared/standards/iot-push.md``
and the carriers' own examples); signatures are computed here independently of the adapter.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import logging

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from anju.events.adapters.nbiot import (
    ENCRYPTED_ONENET,
    DeviceInfo,
    check_onenet_signature,
    parse_ctwing,
    parse_onenet,
    verify_onenet_url,
)
from anju.events.model import Event, Kind, Rejection

RECEIVED = dt.datetime(2026, 11, 21, 8, 0, 5, tzinfo=dt.UTC)
AT = dt.datetime(2026, 11, 21, 8, 0, 0, tzinfo=dt.UTC)
TS_MS = int(AT.timestamp() * 1000)

SMOKE_ID = "d01308047f864601a821e02dc328eab4"
MAGNET_IMEI = "868120345678901"
WATER_ID = "15045240868120345678902"

DEVICES = {
    SMOKE_ID: DeviceInfo("SMK-3-1-0101", "smoke_detector"),
    MAGNET_IMEI: DeviceInfo("MAG-3-1-0101", "door_magnet"),  # registered by IMEI
    WATER_ID: DeviceInfo("WTR-3-1-0101", "water_meter"),
    "15045240868120345678903": DeviceInfo("ELE-3-1-0101", "electricity_meter"),
    "15045240868120345678904": DeviceInfo("HYD-N-01", "hydrant"),
    "15045240868120345678905": DeviceInfo("MH-N-07", "manhole"),
    "15045240868120345678906": DeviceInfo("PIR-3-1", "infrared"),
    "2016617": DeviceInfo("SMK-5-2-0301", "smoke_detector"),
    "2016618": DeviceInfo("MAG-5-2-0301", "door_magnet"),
    "2016619": DeviceInfo("WTR-5-2-0301", "water_meter"),
    "2016690": DeviceInfo("GAS-5-2-0301", "gas_meter"),
}
lookup = DEVICES.get


def ctwing_report(device_id: str, payload: dict, **extra) -> dict:
    """A CTWing/AEP ``dataReport`` push as the platform sends it."""
    return {
        "upPacketSN": -1,
        "upDataSN": -1,
        "topic": "v1/up/ad",
        "timestamp": TS_MS,
        "tenantId": "2000033827",
        "serviceId": "",
        "protocol": "lwm2m",
        "productId": "15045240",
        "payload": payload,
        "messageType": "dataReport",
        "deviceType": "",
        "deviceId": device_id,
        "assocAssetId": "",
        "IMSI": "undefined",
        "IMEI": device_id[-15:],
        **extra,
    }


def one(outcomes: list) -> Event:
    assert len(outcomes) == 1
    assert isinstance(outcomes[0], Event), outcomes[0]
    return outcomes[0]


def rejected(outcomes: list) -> Rejection:
    assert len(outcomes) == 1
    assert isinstance(outcomes[0], Rejection), outcomes[0]
    return outcomes[0]


def md5_b64(text: str) -> str:
    return base64.b64encode(hashlib.md5(text.encode("utf-8")).digest()).decode()


# --- CTWing ------------------------------------------------------------------------------


def test_ctwing_smoke_alarm_with_health():
    push = ctwing_report(
        SMOKE_ID,
        {
            "serviceId": "notification",
            "serviceData": {"Alarm_Status": 1, "Battery_Level": 87, "RSRP": -95, "SNR": 12},
        },
        upPacketSN=1024,
        upDataSN=3,
    )
    event = one(parse_ctwing(push, RECEIVED, devices=lookup))
    assert (event.device, event.kind, event.value, event.at) == (
        "SMK-3-1-0101",
        Kind.FIRE_SMOKE,
        1.0,
        AT,
    )
    assert event.data["state"] == "alarm"
    assert (event.data["battery"], event.data["rsrp"], event.data["snr"]) == (87, -95, 12)
    assert event.data["fields"]["Alarm_Status"] == 1
    assert event.data["carrier"]["platform"] == "ctwing"
    assert event.data["carrier"]["device_id"] == SMOKE_ID
    assert event.id.startswith("ctw:") and len(event.id) <= 64


@pytest.mark.parametrize(
    ("field", "raw", "state", "value"),
    [
        ("alarm_state", 0, "clear", 0.0),
        ("smoke_state", "ALARM", "alarm", 1.0),
        ("SmokeState", "1", "alarm", 1.0),
        ("alarmStatus", "normal", "clear", 0.0),
        ("Alarm_Status", "test", "test", 0.0),
        ("smoke-alarm", True, "alarm", 1.0),
    ],
)
def test_ctwing_smoke_states_case_and_separator_insensitive(field, raw, state, value):
    push = ctwing_report(SMOKE_ID, {"serviceId": "smoke", "serviceData": {field: raw}})
    event = one(parse_ctwing(push, RECEIVED, devices=lookup))
    assert (event.kind, event.data["state"], event.value) == (Kind.FIRE_SMOKE, state, value)


def test_ctwing_unknown_alarm_code_is_kept_as_vendor_event_not_guessed():
    push = ctwing_report(SMOKE_ID, {"serviceData": {"Alarm_Status": 7}})
    event = one(parse_ctwing(push, RECEIVED, devices=lookup))
    assert event.kind is Kind.DEVICE_EVENT
    assert event.data["unrecognised_state"] == "alarmstatus"
    assert event.data["fields"] == {"Alarm_Status": 7}


def test_ctwing_redelivery_gives_the_same_id_and_seconds_equal_milliseconds():
    payload = {"serviceData": {"smoke_state": 1}}
    first = one(parse_ctwing(ctwing_report(SMOKE_ID, payload), RECEIVED, devices=lookup))
    again = one(parse_ctwing(ctwing_report(SMOKE_ID, payload), RECEIVED, devices=lookup))
    in_seconds = ctwing_report(SMOKE_ID, payload, timestamp=TS_MS // 1000)
    seconds = one(parse_ctwing(in_seconds, RECEIVED, devices=lookup))
    assert first.id == again.id == seconds.id
    assert seconds.at == AT
    later = ctwing_report(SMOKE_ID, payload, timestamp=TS_MS + 1000)
    assert one(parse_ctwing(later, RECEIVED, devices=lookup)).id != first.id


def test_ctwing_packet_numbers_enter_the_id_beside_the_time():
    payload = {"serviceData": {"smoke_state": 1}}
    a = one(parse_ctwing(ctwing_report(SMOKE_ID, payload, upPacketSN=7), RECEIVED, devices=lookup))
    b = one(parse_ctwing(ctwing_report(SMOKE_ID, payload, upPacketSN=8), RECEIVED, devices=lookup))
    assert a.id != b.id


@pytest.mark.parametrize(
    ("fields", "state", "value"),
    [
        ({"door_state": "open", "battery": 66}, "open", 1.0),
        ({"magnet_status": 0}, "closed", 0.0),
        ({"DoorStatus": "CLOSED"}, "closed", 0.0),
    ],
)
def test_ctwing_door_magnet_found_by_imei(fields, state, value):
    push = ctwing_report("15045240" + MAGNET_IMEI, {"serviceData": fields})
    event = one(parse_ctwing(push, RECEIVED, devices=lookup))
    assert (event.device, event.kind) == ("MAG-3-1-0101", Kind.SENSOR_DOOR_MAGNET)
    assert (event.data["state"], event.value) == (state, value)


def test_ctwing_water_meter_flat_payload_reading_with_unit():
    push = ctwing_report(
        WATER_ID, {"total_volume": "123.45", "battery": 90, "signal": -101}, upPacketSN=55
    )
    event = one(parse_ctwing(push, RECEIVED, devices=lookup))
    assert (event.kind, event.value, event.data["unit"]) == (Kind.METER_WATER, 123.45, "m3")
    assert (event.data["battery"], event.data["rsrp"]) == (90, -101)


def test_ctwing_electricity_meter_reading():
    push = ctwing_report("15045240868120345678903", {"serviceData": {"electricity": 2345.6}})
    event = one(parse_ctwing(push, RECEIVED, devices=lookup))
    assert (event.kind, event.value, event.data["unit"]) == (Kind.METER_ELECTRICITY, 2345.6, "kWh")


def test_ctwing_positive_signal_is_not_taken_for_rsrp():
    push = ctwing_report(WATER_ID, {"reading": 10, "signal": 23})
    event = one(parse_ctwing(push, RECEIVED, devices=lookup))
    assert "rsrp" not in event.data and event.data["signal"] == 23


def test_ctwing_meter_reading_that_is_not_a_number_is_rejected_without_its_value(caplog):
    push = ctwing_report(WATER_ID, {"serviceData": {"reading": "SECRET-READING-123"}})
    with caplog.at_level(logging.DEBUG, logger="anju"):
        rejection = rejected(parse_ctwing(push, RECEIVED, devices=lookup))
    assert "reading is not a number" in rejection.reason
    assert "SECRET" not in rejection.reason and "SECRET" not in caplog.text


def test_ctwing_hydrant_pressure_in_kpa_becomes_mpa():
    push = ctwing_report(
        "15045240868120345678904", {"serviceData": {"water_pressure": 350, "unit": "kPa"}}
    )
    event = one(parse_ctwing(push, RECEIVED, devices=lookup))
    assert event.kind is Kind.FIRE_HYDRANT_PRESSURE
    assert event.value == pytest.approx(0.35) and event.data["unit"] == "MPa"


def test_ctwing_manhole_and_infrared():
    manhole = ctwing_report("15045240868120345678905", {"serviceData": {"cover_state": 1}})
    pir = ctwing_report("15045240868120345678906", {"serviceData": {"pir_state": 0}})
    m = one(parse_ctwing(manhole, RECEIVED, devices=lookup))
    p = one(parse_ctwing(pir, RECEIVED, devices=lookup))
    assert (m.kind, m.data["state"], m.value) == (Kind.SENSOR_MANHOLE, "open", 1.0)
    assert (p.kind, p.data["state"], p.value) == (Kind.SENSOR_INFRARED, "clear", 0.0)


def test_ctwing_battery_and_signal_only_is_a_heartbeat():
    push = ctwing_report(SMOKE_ID, {"serviceData": {"Battery_Level": 15, "RSRP": -110, "SNR": 2}})
    event = one(parse_ctwing(push, RECEIVED, devices=lookup))
    assert event.kind is Kind.DEVICE_HEARTBEAT and event.value is None
    assert (event.data["battery"], event.data["rsrp"], event.data["snr"]) == (15, -110, 2)


def test_ctwing_report_with_nothing_known_is_kept_as_vendor_event():
    push = ctwing_report(SMOKE_ID, {"serviceData": {"temperature": 24.5}})
    event = one(parse_ctwing(push, RECEIVED, devices=lookup))
    assert event.kind is Kind.DEVICE_EVENT
    assert event.data["fields"] == {"temperature": 24.5}


def test_ctwing_pass_through_bytes_are_kept_as_hex():
    raw = bytes.fromhex("50550003c1a2ff00")
    push = ctwing_report(WATER_ID, {"APPdata": base64.b64encode(raw).decode()})
    event = one(parse_ctwing(push, RECEIVED, devices=lookup))
    assert event.kind is Kind.DEVICE_EVENT
    assert (event.data["raw_hex"], event.data["raw_size"]) == ("50550003c1a2ff00", 8)


def test_ctwing_pass_through_json_is_read():
    inner = json.dumps({"total_volume": 88.2, "Battery_Level": 71}).encode()
    push = ctwing_report(WATER_ID, {"APPdata": base64.b64encode(inner).decode()})
    event = one(parse_ctwing(push, RECEIVED, devices=lookup))
    assert (event.kind, event.value, event.data["battery"]) == (Kind.METER_WATER, 88.2, 71)


def test_ctwing_pass_through_that_is_not_base64_is_rejected():
    push = ctwing_report(WATER_ID, {"APPdata": "not base64!"})
    assert "APPdata is not base64" in rejected(parse_ctwing(push, RECEIVED, devices=lookup)).reason


@pytest.mark.parametrize(
    ("event_type", "kind"), [(1, Kind.DEVICE_ONLINE), (0, Kind.DEVICE_OFFLINE)]
)
def test_ctwing_online_offline(event_type, kind):
    push = {
        "timestamp": TS_MS,
        "tenantId": "2000033827",
        "protocol": "lwm2m",
        "productId": "15045240",
        "messageType": "deviceOnlineOfflineReport",
        "iccid": "undefined",
        "eventType": event_type,
        "deviceId": SMOKE_ID,
    }
    event = one(parse_ctwing(push, RECEIVED, devices=lookup))
    assert (event.kind, event.device, event.at) == (kind, "SMK-3-1-0101", AT)


def ctwing_event(event_type: int, content: dict) -> dict:
    return {
        "timestamp": TS_MS,
        "tenantId": "2000033827",
        "serviceId": 1002,
        "protocol": "lwm2m",
        "productId": "15045240",
        "messageType": "eventReport",
        "eventType": event_type,
        "eventContent": content,
        "deviceSn": "",
        "deviceId": SMOKE_ID,
        "IMSI": "undefined",
        "IMEI": "868120345678999",
    }


def test_ctwing_fault_event():
    event = one(parse_ctwing(ctwing_event(3, {"fault_code": 4}), RECEIVED, devices=lookup))
    assert event.kind is Kind.DEVICE_FAULT
    assert event.data["event_type"] == "fault"
    assert event.data["fields"] == {"fault_code": 4}


def test_ctwing_fault_or_warning_with_an_odd_reading_is_still_kept():
    push = ctwing_event(3, {"reading": "E1", "Battery_Level": 20})
    push["deviceId"] = WATER_ID
    fault = one(parse_ctwing(push, RECEIVED, devices=lookup))
    assert (fault.kind, fault.data["battery"]) == (Kind.DEVICE_FAULT, 20)
    push = ctwing_event(2, {"reading": "E1"})
    push["deviceId"] = WATER_ID
    assert one(parse_ctwing(push, RECEIVED, devices=lookup)).kind is Kind.DEVICE_EVENT


def test_ctwing_warning_event_that_is_a_smoke_alarm_stays_a_smoke_alarm():
    event = one(parse_ctwing(ctwing_event(2, {"smoke_state": 1}), RECEIVED, devices=lookup))
    assert (event.kind, event.value, event.data["event_type"]) == (Kind.FIRE_SMOKE, 1.0, "warning")


def test_ctwing_low_battery_info_event_carries_battery():
    content = {"battery_value": 9, "battery_state": 1}
    event = one(parse_ctwing(ctwing_event(1, content), RECEIVED, devices=lookup))
    assert (event.kind, event.data["battery"]) == (Kind.DEVICE_EVENT, 9)


def test_ctwing_command_response():
    push = {
        "timestamp": TS_MS,
        "tenantId": "10461180",
        "taskId": 12,
        "result": {"resultDetail": "", "resultCode": "DELIVERED"},
        "protocol": "lwm2m",
        "productId": "15045240",
        "messageType": "commandResponse",
        "deviceId": SMOKE_ID,
    }
    event = one(parse_ctwing(push, RECEIVED, devices=lookup))
    assert event.kind is Kind.DEVICE_EVENT
    assert (event.data["task_id"], event.data["result_code"]) == ("12", "DELIVERED")


def test_ctwing_batch_with_unknown_device_and_bad_items():
    good = ctwing_report(SMOKE_ID, {"serviceData": {"Alarm_Status": 0}})
    stranger = ctwing_report("99999999868000000000001", {"serviceData": {"Alarm_Status": 1}})
    outcomes = parse_ctwing(
        [good, stranger, {"messageType": "dataReportTupUnion", "deviceId": SMOKE_ID}, "junk"],
        RECEIVED,
        devices=lookup,
    )
    assert isinstance(outcomes[0], Event)
    assert isinstance(outcomes[1], Rejection) and outcomes[1].reason.startswith("unknown device")
    assert outcomes[1].detail["deviceId"] == "99999999868000000000001"
    assert (
        isinstance(outcomes[2], Rejection)
        and "unsupported CTWing messageType" in outcomes[2].reason
    )
    assert isinstance(outcomes[3], Rejection)


@pytest.mark.parametrize(
    ("timestamp", "reason"),
    [
        (TS_MS + 3_600_000, "timestamp is in the future"),
        (TS_MS * 1_000_000, "timestamp is out of range"),
        ("yesterday", "timestamp must be Unix time"),
    ],
)
def test_ctwing_bad_time_is_rejected(timestamp, reason):
    push = ctwing_report(SMOKE_ID, {"serviceData": {"Alarm_Status": 1}}, timestamp=timestamp)
    assert reason in rejected(parse_ctwing(push, RECEIVED, devices=lookup)).reason


def test_ctwing_oversized_batch_and_odd_pass_through():
    too_many = [ctwing_report(SMOKE_ID, {"serviceData": {}})] * 501
    assert "larger than 500" in rejected(parse_ctwing(too_many, RECEIVED, devices=lookup)).reason
    push = ctwing_report(WATER_ID, {"APPdata": 12345})
    assert "base64 string" in rejected(parse_ctwing(push, RECEIVED, devices=lookup)).reason
    push = ctwing_report(WATER_ID, {"APPdata": base64.b64encode(b"{not json").decode()})
    assert one(parse_ctwing(push, RECEIVED, devices=lookup)).data["raw_hex"] == b"{not json".hex()


def test_ctwing_hydrant_pressure_in_an_unknown_unit_is_rejected():
    push = ctwing_report(
        "15045240868120345678904", {"serviceData": {"pressure": 3.5, "unit": "psi"}}
    )
    assert "pressure unit" in rejected(parse_ctwing(push, RECEIVED, devices=lookup)).reason


def test_ctwing_message_without_time_is_dated_on_receipt_with_a_stable_id():
    push = ctwing_report(SMOKE_ID, {"serviceData": {"Alarm_Status": 1}})
    del push["timestamp"]
    first = one(parse_ctwing(push, RECEIVED, devices=lookup))
    again = one(parse_ctwing(dict(push), RECEIVED + dt.timedelta(seconds=9), devices=lookup))
    assert first.at == RECEIVED and first.id == again.id


# --- OneNET ------------------------------------------------------------------------------

TOKEN = "anjuOneNetToken01"


def test_onenet_url_verification():
    msg, nonce = "qB5yo8Yk", "4Xh3kAHz"
    signature = md5_b64(TOKEN + nonce + msg)
    assert verify_onenet_url(msg, nonce, signature, TOKEN)
    assert verify_onenet_url(msg, nonce, signature.replace("+", " "), TOKEN)
    assert not verify_onenet_url(msg, nonce, signature, "another-token")
    assert not verify_onenet_url(msg + "x", nonce, signature, TOKEN)
    assert not verify_onenet_url(msg, nonce, signature, "")


def test_onenet_url_verification_with_plus_read_as_space():
    # Search for a msg whose signature holds a "+", as form-decoding turns it into a space.
    nonce = "abcdefgh"
    msg = next(f"m{i}" for i in range(1000) if "+" in md5_b64(f"{TOKEN}{nonce}m{i}"))
    signature = md5_b64(TOKEN + nonce + msg)
    assert verify_onenet_url(msg, nonce, signature.replace("+", " "), TOKEN)


def signed_body(msg_text: str, nonce: str = "abcdefgh", token: str = TOKEN) -> dict:
    """The body as OneNET posts it: ``msg`` compact JSON, signed over exactly that text."""
    signature = md5_b64(token + nonce + msg_text)
    text = f'{{"msg":{msg_text},"msg_signature":"{signature}","nonce":"{nonce}"}}'
    return json.loads(text)


def test_onenet_signed_data_push():
    msg = f'{{"type":1,"dev_id":2016617,"ds_id":"smoke","at":{TS_MS},"value":1}}'
    body = signed_body(msg)
    assert check_onenet_signature(body, TOKEN)
    assert not check_onenet_signature(body, "wrong-token")
    tampered = json.loads(json.dumps(body))
    tampered["msg"]["value"] = 0
    assert not check_onenet_signature(tampered, TOKEN)
    event = one(parse_onenet(body, RECEIVED, devices=lookup))
    assert (event.device, event.kind, event.value, event.at) == (
        "SMK-5-2-0301",
        Kind.FIRE_SMOKE,
        1.0,
        AT,
    )
    assert event.data["datastream"] == "smoke"
    assert event.id == f"onenet:2016617:{TS_MS}:smoke"


def test_onenet_signed_array_and_non_ascii_push():
    msg = (
        f'[{{"type":1,"dev_id":2016618,"ds_id":"door","at":{TS_MS},"value":"open"}},'
        f'{{"type":1,"dev_id":2016618,"ds_id":"备注","at":{TS_MS},"value":"门磁"}}]'
    )
    assert check_onenet_signature(signed_body(msg), TOKEN)


def test_onenet_signature_needs_nonce_and_signature():
    body = signed_body('{"type":2,"dev_id":2016617,"status":1,"login_type":10,"at":1}')
    assert not check_onenet_signature({k: v for k, v in body.items() if k != "nonce"}, TOKEN)
    assert not check_onenet_signature({**body, "msg_signature": 5}, TOKEN)
    assert not check_onenet_signature(body, "")


def test_onenet_encrypted_push_signature_is_over_enc_msg_and_push_is_refused():
    enc = base64.b64encode(b"\x00" * 48).decode()
    body = {"enc_msg": enc, "msg_signature": md5_b64(TOKEN + "abcdefgh" + enc), "nonce": "abcdefgh"}
    assert check_onenet_signature(body, TOKEN)
    assert rejected(parse_onenet(body, RECEIVED, devices=lookup)).reason == ENCRYPTED_ONENET


def test_onenet_array_with_one_bad_item():
    body = {
        "msg": [
            {"type": 1, "dev_id": 2016618, "ds_id": "door", "at": TS_MS, "value": 1},
            {"type": 1, "dev_id": 2016618, "at": TS_MS + 1, "value": 0},  # no ds_id
            {"type": 1, "dev_id": 2016619, "ds_id": "water", "at": TS_MS, "value": 321.5},
            {"type": 1, "dev_id": 2016617, "ds_id": "battery", "at": TS_MS, "value": 64},
        ],
        "msg_signature": "unchecked-here",
        "nonce": "abcdefgh",
    }
    door, bad, water, battery = parse_onenet(body, RECEIVED, devices=lookup)
    assert isinstance(door, Event) and (door.kind, door.data["state"], door.value) == (
        Kind.SENSOR_DOOR_MAGNET,
        "open",
        1.0,
    )
    assert isinstance(bad, Rejection) and "ds_id" in bad.reason
    assert isinstance(water, Event) and (water.kind, water.value) == (Kind.METER_WATER, 321.5)
    assert isinstance(battery, Event) and battery.kind is Kind.DEVICE_HEARTBEAT
    assert battery.data["battery"] == 64


def test_onenet_object_value_holds_the_datastream_fields():
    body = {
        "msg": {
            "type": 1,
            "dev_id": 2016690,
            "ds_id": "meter",
            "at": TS_MS,
            "value": {"gas_consumption": 12.75, "unit": "m3", "RSRP": -88},
        }
    }
    event = one(parse_onenet(body, RECEIVED, devices=lookup))
    assert (event.kind, event.value, event.data["rsrp"]) == (Kind.METER_GAS, 12.75, -88)


@pytest.mark.parametrize(("status", "kind"), [(1, Kind.DEVICE_ONLINE), (0, Kind.DEVICE_OFFLINE)])
def test_onenet_online_offline(status, kind):
    msg = {"type": 2, "dev_id": 2016617, "status": status, "login_type": 10, "at": TS_MS}
    event = one(parse_onenet({"msg": msg, "nonce": "abcdefgh"}, RECEIVED, devices=lookup))
    assert (event.kind, event.data["login_type"], event.at) == (kind, "NB-IoT", AT)


def test_onenet_cached_command_result():
    msg = {
        "type": 7,
        "cmd_id": "3a351323-c4fe-5f21-9e9e-a9adc321182f",
        "imei": "865820060031939",
        "dev_id": 2016690,
        "cmd_type": 0,
        "send_time": TS_MS,
        "send_status": 5,
        "confirm_time": TS_MS + 2000,
        "confirm_status": 0,
        "confirm_body": {"obj_id": 3, "obj_inst": [{"obj_inst_id": 0, "res": []}]},
    }
    event = one(parse_onenet({"msg": msg}, RECEIVED, devices=lookup))
    assert event.kind is Kind.DEVICE_EVENT
    assert event.data["cmd_id"] == msg["cmd_id"] and event.data["confirm_body"]["obj_id"] == 3
    assert event.at == AT + dt.timedelta(seconds=2)
    again = one(parse_onenet({"msg": dict(msg)}, RECEIVED, devices=lookup))
    assert event.id == again.id


def test_onenet_unknown_device_and_unsupported_type():
    body = {
        "msg": [
            {"type": 1, "dev_id": 7777777, "ds_id": "smoke", "at": TS_MS, "value": 1},
            {"type": 5, "dev_id": 2016617, "at": TS_MS},
        ]
    }
    stranger, odd = parse_onenet(body, RECEIVED, devices=lookup)
    assert isinstance(stranger, Rejection) and stranger.reason.startswith("unknown device")
    assert isinstance(odd, Rejection) and "unsupported OneNET message type 5" in odd.reason


def test_onenet_body_without_msg_and_junk_items():
    assert "msg" in rejected(parse_onenet({"nonce": "abcdefgh"}, RECEIVED, devices=lookup)).reason
    assert isinstance(rejected(parse_onenet([], RECEIVED, devices=lookup)), Rejection)
    junk = parse_onenet({"msg": ["x", 3]}, RECEIVED, devices=lookup)
    assert all(isinstance(o, Rejection) and "JSON object" in o.reason for o in junk)


# --- fuzz --------------------------------------------------------------------------------

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=12), children, max_size=5)
    ),
    max_leaves=25,
)
field_names = st.sampled_from(
    ["Alarm_Status", "door_state", "reading", "pressure", "unit", "battery", "RSRP", "signal"]
)
fields = st.dictionaries(field_names | st.text(max_size=8), json_values, max_size=5)
any_device = st.sampled_from([*DEVICES, "unknown-1", ""]) | json_values

ctwing_messages = st.fixed_dictionaries(
    {
        "messageType": st.sampled_from(
            ["dataReport", "deviceOnlineOfflineReport", "eventReport", "commandResponse", "x"]
        )
        | json_values,
        "deviceId": any_device,
    },
    optional={
        "IMEI": any_device,
        "timestamp": st.sampled_from([TS_MS, TS_MS // 1000, -1, "", "soon"]) | json_values,
        "upPacketSN": json_values,
        "eventType": st.integers(-1, 4) | json_values,
        "eventContent": fields | json_values,
        "payload": st.fixed_dictionaries({}, optional={"serviceData": fields, "APPdata": st.text()})
        | fields
        | json_values,
        "result": json_values,
        "taskId": json_values,
    },
)
onenet_items = st.fixed_dictionaries(
    {"type": st.sampled_from([1, 2, 7]) | json_values, "dev_id": any_device},
    optional={
        "ds_id": field_names | json_values,
        "at": st.sampled_from([TS_MS, TS_MS // 1000, 0]) | json_values,
        "value": fields | json_values,
        "status": json_values,
        "login_type": json_values,
        "cmd_id": json_values,
        "confirm_body": json_values,
    },
)


def _all_outcomes(outcomes: list) -> bool:
    return all(isinstance(o, Event | Rejection) for o in outcomes)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(json_values, ctwing_messages, st.lists(ctwing_messages, max_size=4)))
def test_fuzz_ctwing_never_raises(payload):
    assert _all_outcomes(parse_ctwing(payload, RECEIVED, devices=lookup))


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.one_of(
        json_values,
        st.fixed_dictionaries(
            {"msg": onenet_items | st.lists(onenet_items, max_size=4) | json_values},
            optional={"msg_signature": json_values, "nonce": json_values, "enc_msg": json_values},
        ),
    )
)
def test_fuzz_onenet_never_raises(body):
    assert _all_outcomes(parse_onenet(body, RECEIVED, devices=lookup))
    assert check_onenet_signature(body, TOKEN) in (True, False)


@given(json_values, json_values, json_values, json_values)
def test_fuzz_onenet_url_check_never_raises(msg, nonce, signature, token):
    assert verify_onenet_url(msg, nonce, signature, token) in (True, False)
