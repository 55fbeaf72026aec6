"""The Hikvision ISAPI adapter: real DS-K1T344 captures, synthetic pushes, and fuzzing.

The two ``.raw`` captures come from nupsterd/hikvision-face-terminal-addon (MIT; see the
``SOURCES.md`` beside them). They are looked for in ``tests/fixtures/hikvision`` and then in
the shared fixtures folder (or ``ANJU_HIKVISION_FIXTURES``).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import struct
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from anju.events.adapters.hikvision import parse_isapi
from anju.events.model import Direction, Event, Kind, Outcome, Rejection, Subject, SubjectType

RECEIVED = dt.datetime(2026, 11, 21, 8, 0, tzinfo=dt.UTC)
MULTIPART = "multipart/mixed; boundary=MIME_boundary"
FIRST = "dsk1t344_alertstream_first.raw"
F4 = "dsk1t344_f4_capture.raw"


def _fixture_dir() -> Path | None:
    candidates = [
        os.environ.get("ANJU_HIKVISION_FIXTURES", ""),
        str(Path(__file__).parent / "fixtures" / "hikvision"),
        "/work/shared/fixtures/hikvision",
    ]
    for candidate in candidates:
        if candidate and (Path(candidate) / FIRST).is_file():
            return Path(candidate)
    return None


FIXTURES = _fixture_dir()
needs_fixtures = pytest.mark.skipif(FIXTURES is None, reason="Hikvision .raw captures not found")


def _raw(name: str) -> bytes:
    assert FIXTURES is not None
    return (FIXTURES / name).read_bytes()


def _events(outcomes: list[Outcome]) -> list[Event]:
    return [o for o in outcomes if isinstance(o, Event)]


def _tiny_jpeg() -> bytes:
    """A complete 8×8 grey baseline JPEG (one block, DC 0, end of block), built by hand."""

    def segment(marker: int, payload: bytes) -> bytes:
        return struct.pack(">BBH", 0xFF, marker, len(payload) + 2) + payload

    counts = bytes([1] + [0] * 15)  # one Huffman code of length 1, for symbol 0
    return b"".join(
        [
            b"\xff\xd8",
            segment(0xE0, b"JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"),
            segment(0xDB, b"\x00" + bytes([1] * 64)),
            segment(0xC0, b"\x08\x00\x08\x00\x08\x01\x01\x11\x00"),
            segment(0xC4, b"\x00" + counts + b"\x00"),
            segment(0xC4, b"\x10" + counts + b"\x00"),
            segment(0xDA, b"\x01\x01\x00\x00\x3f\x00"),
            b"\x3f",  # DC category 0 ("0"), EOB ("0"), padded with ones
            b"\xff\xd9",
        ]
    )


JPEG = _tiny_jpeg()


def _multipart(parts: list[tuple[dict[str, str], bytes]], boundary: str = "MIME_boundary") -> bytes:
    """A multipart body as the devices write it: CRLF line ends, closing delimiter."""
    out = b""
    for headers, content in parts:
        out += f"--{boundary}\r\n".encode()
        for name, value in headers.items():
            out += f"{name}: {value}\r\n".encode()
        out += b"\r\n" + content + b"\r\n"
    return out + f"--{boundary}--\r\n".encode()


def _json_part(document: object) -> tuple[dict[str, str], bytes]:
    content = json.dumps(document, ensure_ascii=False, indent="\t").encode()
    headers = {
        "Content-Disposition": 'form-data; name="AccessControllerEvent"',
        "Content-Type": 'application/json; charset="UTF-8"',
        "Content-Length": str(len(content)),
    }
    return headers, content


def _picture_part(data: bytes, filename: str = "Picture.jpg", name: str = "Picture"):
    headers = {
        "Content-Disposition": f'form-data; name="{name}"; filename="{filename}"',
        "Content-Type": "image/jpeg",
        "Content-Length": str(len(data)),
    }
    return headers, data


def _access(minor: int, serial: int, *, major: int = 5, current: bool = True, **fields: object):
    return {
        "ipAddress": "192.168.1.64",
        "portNo": 80,
        "protocol": "HTTP",
        "macAddress": "44:47:cc:12:34:56",
        "channelID": 1,
        "dateTime": "2026-11-21T15:30:00+08:00",
        "activePostCount": 1,
        "eventType": "AccessControllerEvent",
        "eventState": "active",
        "eventDescription": "Access Controller Event",
        "AccessControllerEvent": {
            "deviceName": "1号楼单元门",
            "majorEventType": major,
            "subEventType": minor,
            "cardReaderKind": 1,
            "cardReaderNo": 1,
            "doorNo": 1,
            "serialNo": serial,
            "currentEvent": current,
            "frontSerialNo": serial - 1,
            **fields,
        },
    }


ANPR_XML = """<?xml version="1.0" encoding="UTF-8"?>
<EventNotificationAlert version="2.0" xmlns="http://www.hikvision.com/ver20/XMLSchema">
  <ipAddress>192.168.1.70</ipAddress>
  <portNo>80</portNo>
  <protocol>HTTP</protocol>
  <macAddress>bc:5e:33:62:2a:5c</macAddress>
  <channelID>1</channelID>
  <dateTime>2026-11-21T07:42:10+08:00</dateTime>
  <activePostCount>1</activePostCount>
  <eventType>ANPR</eventType>
  <eventState>active</eventState>
  <eventDescription>ANPR</eventDescription>
  <channelName>东门入口</channelName>
  <ANPR>
    <country>1</country>
    <licensePlate>{plate}</licensePlate>
    <line>1</line>
    <direction>{direction}</direction>
    <confidenceLevel>97</confidenceLevel>
    <plateType>92TypeCivil</plateType>
    <plateColor>blue</plateColor>
    <licenseBright>0</licenseBright>
    <plateCharBelieve>99,99,98,97,99,99,99</plateCharBelieve>
    <vehicleType>vehicle</vehicleType>
    <detectDir>8</detectDir>
    <detectType>0</detectType>
    <vehicleInfo>
      <index>12</index>
      <colorDepth>2</colorDepth>
      <color>white</color>
      <length>0</length>
      <vehicleLogoRecog>1036</vehicleLogoRecog>
    </vehicleInfo>
    <pictureInfoList>
      <pictureInfo>
        <fileName>licensePlatePicture.jpg</fileName>
        <type>licensePlatePicture</type>
        <absTime>20261121074210123</absTime>
        <pId>2026112107421012300aBcDeFgHiJkLm</pId>
      </pictureInfo>
      <pictureInfo>
        <fileName>detectionPicture.jpg</fileName>
        <type>detectionPicture</type>
        <absTime>20261121074210123</absTime>
        <plateRect><X>544</X><Y>835</Y><width>40</width><height>35</height></plateRect>
        <vehicelRect><X>300</X><Y>400</Y><width>600</width><height>500</height></vehicelRect>
        <pId>2026112107421012300nOpQrStUvWxYz</pId>
      </pictureInfo>
    </pictureInfoList>
    <originalLicensePlate>{plate}</originalLicensePlate>
    <vehicleListName>allowList</vehicleListName>
  </ANPR>
  <UUID>{uuid}</UUID>
  <picNum>2</picNum>
  <deviceUUID>a1b2c3d4-0000-1111-2222-bc5e33622a5c</deviceUUID>
  <VehicleGATInfo>
    <palteTypeByGAT>02</palteTypeByGAT>
    <plateColorByGAT>2</plateColorByGAT>
    <vehicleTypeByGAT>K33</vehicleTypeByGAT>
    <colorByGAT>A</colorByGAT>
  </VehicleGATInfo>
  <isDataRetransmission>false</isDataRetransmission>
</EventNotificationAlert>
"""
ANPR_UUID = "2026112107421012300SxQpL7cYkd9wHnE2RmZbT4aVf6uJ3eGi8oNhPqWc1XyZ"


def _anpr_xml(plate: str = "粤B·12345", direction: str = "forward", uuid: str = ANPR_UUID):
    return ANPR_XML.format(plate=plate, direction=direction, uuid=uuid).encode()


def _anpr_body(xml: bytes, pictures: list[tuple[str, bytes]]) -> bytes:
    parts = [
        (
            {
                "Content-Disposition": 'form-data; name="anpr.xml"; filename="anpr.xml"',
                "Content-Type": "text/xml",
                "Content-Length": str(len(xml)),
            },
            xml,
        )
    ]
    parts += [_picture_part(data, filename, filename) for filename, data in pictures]
    return _multipart(parts, boundary="---------------------------7e13971310878")


# --- the real captures -----------------------------------------------------------------------


@needs_fixtures
def test_first_burst_is_41_history_events():
    outcomes = parse_isapi(_raw(FIRST), MULTIPART, "GATE-01", RECEIVED)

    events = _events(outcomes)
    assert len(outcomes) == len(events) == 41
    assert all(e.history for e in events)
    assert len({e.id for e in events}) == 41
    assert all(e.device == "GATE-01" and e.at.tzinfo is dt.UTC for e in events)
    assert Counter(e.kind for e in events) == {
        Kind.DEVICE_EVENT: 26,
        Kind.DOOR_CLOSED: 7,
        Kind.DOOR_OPENED: 4,
        Kind.ACCESS_FACE: 2,
        Kind.ACCESS_REMOTE: 1,
        Kind.ACCESS_DENIED: 1,
    }
    first = events[0]
    assert first.id == "hik:a4d5c275fd64:1:20250726T052354Z"
    assert first.at == dt.datetime(2025, 7, 26, 5, 23, 54, tzinfo=dt.UTC)
    assert first.data == {
        "major": 2,
        "minor": 1024,
        "event": "dev_power_on",
        "serialNo": 1,
        "eventType": "AccessControllerEvent",
        "description": "dev power on",
    }
    faces = [e for e in events if e.kind is Kind.ACCESS_FACE]
    assert [f.subject for f in faces] == [
        Subject(SubjectType.PERSON, "6617508710"),
        Subject(SubjectType.PERSON, "1428168725"),
    ]
    assert faces[0].data["name"] == "David"
    assert faces[0].data["FaceRect"] == {"x": 0.35, "y": 0.255, "width": 0.293, "height": 0.517}
    (button,) = [e for e in events if e.kind is Kind.ACCESS_REMOTE]
    assert button.data["method"] == "exit_button" and button.data["minor"] == 0x17
    assert {e.data["source"] for e in events if e.kind is Kind.DOOR_OPENED} == {"lock", "contact"}
    unmapped = [e for e in events if e.kind is Kind.DEVICE_EVENT]
    assert all({"major", "minor", "eventType", "description"} <= e.data.keys() for e in unmapped)
    assert all(e.subject is None for e in events if e.kind is not Kind.ACCESS_FACE)


@needs_fixtures
def test_f4_capture_live_events_and_heartbeats():
    outcomes = parse_isapi(_raw(F4), MULTIPART, "GATE-01", RECEIVED)

    events = _events(outcomes)
    assert len(outcomes) == len(events) == 19
    heartbeats = [e for e in events if e.kind is Kind.DEVICE_HEARTBEAT]
    access = [e for e in events if e.kind is not Kind.DEVICE_HEARTBEAT]
    assert len(heartbeats) == 6 and len(access) == 13
    assert all(h.data["eventType"] == "videoloss" for h in heartbeats)
    assert not any(e.history for e in events)
    assert len({e.id for e in events}) == 19

    verified = [e for e in access if e.data["minor"] == 75]
    assert len(verified) == 2
    for event in verified:
        assert event.kind is Kind.ACCESS_FACE
        assert event.subject == Subject(SubjectType.PERSON, "9001")
        assert event.data["name"] == "DM"
        assert event.data["userType"] == "normal"
        assert event.data["currentVerifyMode"] == "faceOrFpOrCardOrPw"
        assert event.data["mask"] == "no"
        assert event.data["cardReaderNo"] == 1
        assert set(event.data["FaceRect"]) == {"x", "y", "width", "height"}
    assert verified[0].id == "hik:a4d5c275fd64:201:20260717T002429Z"

    (failed,) = [e for e in access if e.data["minor"] == 76]
    assert failed.kind is Kind.ACCESS_DENIED
    assert failed.subject is None
    assert failed.data["event"] == "face_verify_fail"

    (finger,) = [e for e in access if e.data["minor"] == 0x26]
    assert finger.kind is Kind.ACCESS_FINGERPRINT
    assert finger.subject == Subject(SubjectType.PERSON, "9001")
    assert Counter(e.kind for e in access)[Kind.DOOR_OPENED] == 3


@needs_fixtures
def test_redelivery_gives_the_same_ids_whatever_the_framing():
    body = _raw(F4)
    ids = [o.id for o in parse_isapi(body, MULTIPART, "GATE-01", RECEIVED)]
    later = RECEIVED + dt.timedelta(hours=3)
    variants = [
        (body, MULTIPART),
        (body, None),  # no content type: the boundary is sniffed
        (body, "multipart/form-data"),  # no boundary parameter
        (body, "multipart/mixed; boundary=NotTheRealOne"),
        (body.replace(b"\r\n", b"\n"), MULTIPART),  # LF line ends, Content-Length now wrong
        (b"\r\n" + body, MULTIPART),
    ]
    for variant, content_type in variants:
        assert [o.id for o in parse_isapi(variant, content_type, "GATE-01", later)] == ids


@needs_fixtures
def test_each_part_alone_parses_as_a_bare_json_body():
    body = _raw(FIRST)
    whole = parse_isapi(body, MULTIPART, "GATE-01", RECEIVED)
    chunk = body.split(b"--MIME_boundary\r\n")[30]
    content = chunk.split(b"\r\n\r\n", 1)[1]
    (alone,) = parse_isapi(content, "application/json", "GATE-01", RECEIVED)
    assert alone == whole[29]


# --- pictures --------------------------------------------------------------------------------


def test_picture_part_is_attached_to_its_event():
    body = _multipart(
        [
            _json_part(_access(0x4B, 77, employeeNoString="1001", name="张三")),
            _picture_part(JPEG),
            _json_part(_access(0x16, 78)),
        ]
    )
    face, lock = parse_isapi(body, "multipart/form-data; boundary=MIME_boundary", "G1", RECEIVED)
    assert isinstance(face, Event) and isinstance(lock, Event)
    assert face.kind is Kind.ACCESS_FACE
    assert face.image_data == JPEG
    assert "picture" not in face.data
    assert lock.image_data is None


def test_picture_without_disposition_and_lf_line_ends():
    content = json.dumps(_access(0x01, 5, cardNo="0012 3456")).encode()
    body = (
        b"--MIME_boundary\nContent-Type: application/json\n\n"
        + content
        + b"\n--MIME_boundary\nContent-Type: image/jpeg\n\n"
        + JPEG
        + b"\n--MIME_boundary--\n"
    )
    (card,) = parse_isapi(body, "multipart/form-data", "G1", RECEIVED)
    assert isinstance(card, Event)
    assert card.kind is Kind.ACCESS_CARD
    assert card.subject == Subject(SubjectType.CARD, "00123456")
    assert card.image_data == JPEG


@pytest.mark.parametrize(
    "broken",
    [JPEG[: len(JPEG) // 2], JPEG[2:], b"", b"\x00" * 40],
    ids=["cut", "no-start", "empty", "zeros"],
)
def test_broken_picture_is_dropped_and_noted(broken):
    body = _multipart(
        [_json_part(_access(0x4B, 9, employeeNoString="1001")), _picture_part(broken)]
    )
    (face,) = parse_isapi(body, "multipart/form-data; boundary=MIME_boundary", "G1", RECEIVED)
    assert isinstance(face, Event)
    assert face.kind is Kind.ACCESS_FACE
    assert face.image_data is None
    assert face.data["picture"] == "truncated"


def test_stream_cut_inside_the_picture():
    body = _multipart([_json_part(_access(0x4B, 9, employeeNoString="1001")), _picture_part(JPEG)])
    cut = body[: body.index(b"\xff\xd9") - 3]
    (face,) = parse_isapi(cut, "multipart/form-data; boundary=MIME_boundary", "G1", RECEIVED)
    assert isinstance(face, Event) and face.data["picture"] == "truncated"


def test_pictures_alone_are_no_event():
    body = _multipart([_picture_part(JPEG)])
    (rejection,) = parse_isapi(body, "multipart/form-data; boundary=MIME_boundary", "G1", RECEIVED)
    assert isinstance(rejection, Rejection)
    assert "no event" in rejection.reason


# --- ANPR ------------------------------------------------------------------------------------


def test_anpr_multipart_with_pictures():
    plate_crop = JPEG
    scene = JPEG[:-2] + b"\x00\xff\xd9"  # different bytes, so the chosen one can be told
    body = _anpr_body(
        _anpr_xml(), [("licensePlatePicture.jpg", plate_crop), ("detectionPicture.jpg", scene)]
    )
    boundary = "multipart/form-data; boundary=---------------------------7e13971310878"
    (event,) = parse_isapi(body, boundary, "BARRIER-E", RECEIVED)

    assert isinstance(event, Event)
    assert event.kind is Kind.VEHICLE_PASSED
    assert event.subject == Subject(SubjectType.PLATE, "粤B12345")
    assert event.direction is Direction.IN
    assert event.id == ANPR_UUID
    assert event.at == dt.datetime(2026, 11, 20, 23, 42, 10, tzinfo=dt.UTC)
    assert event.history is False
    assert event.image_data == scene  # the scene, not the plate close-up
    assert event.data["plateColor"] == "blue"
    assert event.data["vehicleType"] == "vehicle"
    assert event.data["vehicleColor"] == "white"
    assert event.data["confidence"] == 97
    assert event.data["list"] == "allowList"
    assert event.data["deviceDirection"] == "forward"
    assert event.data["gat"] == {
        "plateType": "02",
        "plateColor": "2",
        "vehicleType": "K33",
        "vehicleColor": "A",
    }


def test_anpr_direction_reverse_and_exit_lane():
    reverse = parse_isapi(_anpr_xml(direction="reverse"), "application/xml", "B", RECEIVED)[0]
    assert isinstance(reverse, Event) and reverse.direction is Direction.OUT
    exit_lane = parse_isapi(_anpr_xml(), "text/xml", "B", RECEIVED, forward_is=Direction.OUT)[0]
    assert isinstance(exit_lane, Event) and exit_lane.direction is Direction.OUT
    unknown = parse_isapi(_anpr_xml(direction="unknown"), "text/xml", "B", RECEIVED)[0]
    assert isinstance(unknown, Event) and unknown.direction is None


@pytest.mark.parametrize("plate", ["无车牌", "unknown", ""])
def test_anpr_without_plate(plate):
    body = _anpr_body(_anpr_xml(plate=plate), [("detectionPicture.jpg", JPEG)])
    (event,) = parse_isapi(body, None, "BARRIER-E", RECEIVED)
    assert isinstance(event, Event)
    assert event.kind is Kind.VEHICLE_PASSED
    assert event.subject is None
    assert event.data["plate"] == "unrecognised"
    assert event.image_data == JPEG


def test_anpr_ids_without_uuid():
    xml = _anpr_xml().replace(f"<UUID>{ANPR_UUID}</UUID>".encode(), b"")
    (event,) = parse_isapi(xml, "application/xml", "B", RECEIVED)
    assert isinstance(event, Event)
    assert event.id == "hik:pid:2026112107421012300aBcDeFgHiJkLm"
    long_uuid = "x" * 80
    (hashed,) = parse_isapi(_anpr_xml(uuid=long_uuid), "application/xml", "B", RECEIVED)
    assert isinstance(hashed, Event) and hashed.id.startswith("hik:uuid:")
    assert len(hashed.id) <= 64


def test_anpr_retransmission_is_history():
    xml = _anpr_xml().replace(b">false</isDataRetransmission>", b">true</isDataRetransmission>")
    (event,) = parse_isapi(xml, "application/xml", "B", RECEIVED)
    assert isinstance(event, Event) and event.history is True


# --- bare bodies -----------------------------------------------------------------------------


def test_bare_json_envelope_and_wrapped():
    envelope = _access(0x26, 301, employeeNoString="2002", current=False)
    bare = parse_isapi(json.dumps(envelope).encode(), "application/json", "G1", RECEIVED)
    wrapped = parse_isapi(
        json.dumps({"EventNotificationAlert": envelope}).encode(),
        "application/json",
        "G1",
        RECEIVED,
    )
    assert bare == wrapped
    (event,) = bare
    assert isinstance(event, Event)
    assert event.kind is Kind.ACCESS_FINGERPRINT
    assert event.subject == Subject(SubjectType.PERSON, "2002")
    assert event.history is True
    assert event.id == "hik:4447cc123456:301:20261121T073000Z"


def test_bare_xml_heartbeat_and_fault():
    xml = b"""<?xml version="1.0" encoding="UTF-8"?>
<EventNotificationAlert version="2.0" xmlns="http://www.hikvision.com/ver20/XMLSchema">
<ipAddress>192.168.1.64</ipAddress><portNo>80</portNo><protocol>HTTP</protocol>
<macAddress>44:47:cc:12:34:56</macAddress><channelID>1</channelID>
<dateTime>2026-11-21T15:00:00+08:00</dateTime><activePostCount>0</activePostCount>
<eventType>videoloss</eventType><eventState>inactive</eventState>
<eventDescription>videoloss alarm</eventDescription>
</EventNotificationAlert>"""
    (beat,) = parse_isapi(xml, "application/xml; charset=UTF-8", "CAM-1", RECEIVED)
    assert isinstance(beat, Event)
    assert beat.kind is Kind.DEVICE_HEARTBEAT
    assert beat.id.startswith("hik:h:")
    assert beat.at == dt.datetime(2026, 11, 21, 7, 0, tzinfo=dt.UTC)
    (again,) = parse_isapi(xml.replace(b"\n", b"\r\n"), None, "CAM-1", RECEIVED)
    assert isinstance(again, Event) and again.id == beat.id

    active = xml.replace(b">inactive<", b">active<")
    (fault,) = parse_isapi(active, "application/xml", "CAM-1", RECEIVED)
    assert isinstance(fault, Event) and fault.kind is Kind.DEVICE_FAULT

    other = xml.replace(b">videoloss<", b">linedetection<")
    (unmapped,) = parse_isapi(other, "application/xml", "CAM-1", RECEIVED)
    assert isinstance(unmapped, Event)
    assert unmapped.kind is Kind.DEVICE_EVENT
    assert unmapped.data["eventType"] == "linedetection"
    assert unmapped.data["description"] == "videoloss alarm"
    assert {"major", "minor"} <= unmapped.data.keys()


def test_bare_xml_access_event():
    xml = b"""<?xml version="1.0" encoding="UTF-8"?>
<EventNotificationAlert version="2.0" xmlns="http://www.isapi.org/ver20/XMLSchema">
  <macAddress>44:47:cc:12:34:56</macAddress>
  <dateTime>2026-11-21T15:31:00+08:00</dateTime>
  <eventType>AccessControllerEvent</eventType>
  <AccessControllerEvent>
    <majorEventType>5</majorEventType>
    <subEventType>75</subEventType>
    <employeeNoString>1001</employeeNoString>
    <doorNo>1</doorNo>
    <serialNo>88</serialNo>
    <currentEvent>false</currentEvent>
    <FaceRect><x>0.1</x><y>0.2</y><width>0.3</width><height>0.4</height></FaceRect>
  </AccessControllerEvent>
</EventNotificationAlert>"""
    (face,) = parse_isapi(xml, "text/xml", "G1", RECEIVED)
    assert isinstance(face, Event)
    assert face.kind is Kind.ACCESS_FACE
    assert face.subject == Subject(SubjectType.PERSON, "1001")
    assert face.history is True
    assert face.data["doorNo"] == 1 and face.data["serialNo"] == 88
    assert face.data["FaceRect"] == {"x": 0.1, "y": 0.2, "width": 0.3, "height": 0.4}
    assert face.id == "hik:4447cc123456:88:20261121T073100Z"


def test_chinese_encodings():
    gb_xml = _anpr_xml(plate="粤B12345").decode().replace('"UTF-8"', '"GB2312"')
    (anpr,) = parse_isapi(gb_xml.encode("gb2312"), "text/xml", "B", RECEIVED)
    assert isinstance(anpr, Event) and anpr.subject == Subject(SubjectType.PLATE, "粤B12345")

    envelope = _access(0x4B, 5, employeeNoString="1001", name="张三")
    gbk = json.dumps(envelope, ensure_ascii=False).encode("gbk")
    (face,) = parse_isapi(gbk, "application/json; charset=GBK", "G1", RECEIVED)
    assert isinstance(face, Event) and face.data["name"] == "张三"

    utf16 = gb_xml.replace('encoding="GB2312"', 'encoding="UTF-16"').encode("utf-16")
    (refused,) = parse_isapi(utf16, "text/xml", "B", RECEIVED)
    assert isinstance(refused, Rejection) and "encoding" in refused.reason


# --- mapping ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("major", "minor", "kind"),
    [
        (5, 0x01, Kind.ACCESS_CARD),
        (5, 0x09, Kind.ACCESS_DENIED),
        (5, 0x4C, Kind.ACCESS_DENIED),
        (5, 0x15, Kind.DOOR_OPENED),
        (5, 0x19, Kind.DOOR_OPENED),
        (5, 0x16, Kind.DOOR_CLOSED),
        (5, 0x1A, Kind.DOOR_CLOSED),
        (5, 0x17, Kind.ACCESS_REMOTE),
        (5, 0x1B, Kind.DOOR_FORCED),
        (5, 0x1C, Kind.DOOR_HELD_OPEN),
        (5, 0x26, Kind.ACCESS_FINGERPRINT),
        (5, 0x4B, Kind.ACCESS_FACE),
        (3, 0x400, Kind.ACCESS_REMOTE),
        (5, 0x25, Kind.DEVICE_EVENT),
        (7, 12345, Kind.DEVICE_EVENT),
    ],
)
def test_access_codes(major, minor, kind):
    body = json.dumps(_access(minor, 10, major=major)).encode()
    (event,) = parse_isapi(body, "application/json", "G1", RECEIVED)
    assert isinstance(event, Event)
    assert event.kind is kind
    assert (event.data["major"], event.data["minor"]) == (major, minor)


def test_subjects_by_kind():
    card = _access(0x01, 1, cardNo="ab-12 34", employeeNoString="3003")
    denied_card = _access(0x09, 2, cardNo="9988776655")
    denied_person = _access(0x06, 3, cardNo="9988776655", employeeNoString="3003")
    door = _access(0x15, 4, employeeNoString="3003")
    got = [
        parse_isapi(json.dumps(d).encode(), None, "G1", RECEIVED)[0]
        for d in (card, denied_card, denied_person, door)
    ]
    assert [getattr(e, "subject", None) for e in got] == [
        Subject(SubjectType.CARD, "AB1234"),
        Subject(SubjectType.CARD, "9988776655"),
        Subject(SubjectType.PERSON, "3003"),
        None,
    ]


def test_times_offsets_and_clock():
    local = _access(0x4B, 1, employeeNoString="1")
    local["dateTime"] = "2026-11-21T05:30:00"  # no offset: the deployment's zone
    (event,) = parse_isapi(json.dumps(local).encode(), None, "G1", RECEIVED)
    assert isinstance(event, Event) and event.at == dt.datetime(2026, 11, 20, 21, 30, tzinfo=dt.UTC)
    (utc,) = parse_isapi(json.dumps(local).encode(), None, "G1", RECEIVED, tz=dt.UTC)
    assert isinstance(utc, Event) and utc.at == dt.datetime(2026, 11, 21, 5, 30, tzinfo=dt.UTC)

    del local["dateTime"]
    (undated,) = parse_isapi(json.dumps(local).encode(), None, "G1", RECEIVED)
    assert isinstance(undated, Event) and undated.at == RECEIVED
    assert undated.data["at"] == "received"
    assert undated.id == "hik:4447cc123456:1"

    future = _access(0x4B, 2)
    future["dateTime"] = "2026-11-21T17:00:00+08:00"
    (refused,) = parse_isapi(json.dumps(future).encode(), None, "G1", RECEIVED)
    assert isinstance(refused, Rejection)
    assert "future" in refused.reason and refused.id is not None

    garbled = _access(0x4B, 3)
    garbled["dateTime"] = "yesterday"
    (bad,) = parse_isapi(json.dumps(garbled).encode(), None, "G1", RECEIVED)
    assert isinstance(bad, Rejection) and "dateTime" in bad.reason


# --- malformed input -------------------------------------------------------------------------


def test_malformed_part_between_two_good_ones():
    good_one = _json_part(_access(0x4B, 1, employeeNoString="1"))
    bad_json = ({"Content-Type": "application/json"}, b'{"eventType": "AccessControllerEvent",')
    bad_xml = ({"Content-Type": "application/xml"}, b"<EventNotificationAlert><eventType>ANPR")
    good_two = _json_part(_access(0x16, 2))
    body = _multipart([good_one, bad_json, _picture_part(JPEG), bad_xml, good_two])
    outcomes = parse_isapi(body, "multipart/form-data; boundary=MIME_boundary", "G1", RECEIVED)

    assert [type(o) for o in outcomes] == [Event, Rejection, Rejection, Event]
    first, json_error, xml_error, last = outcomes
    assert isinstance(json_error, Rejection) and json_error.reason.startswith("part 2")
    assert "JSON" in json_error.reason and json_error.device == "G1"
    assert isinstance(xml_error, Rejection) and xml_error.reason.startswith("part 4")
    assert "XML" in xml_error.reason
    assert isinstance(first, Event) and first.image_data is None  # its picture was the bad part's
    assert isinstance(last, Event) and last.kind is Kind.DOOR_CLOSED


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (b"", "application/json"),
        (b"   \r\n", None),
        (b"hello device", "text/plain"),
        (b"\x00\x01\x02garbage", None),
        (b'{"eventType": "AccessControllerEvent"', "application/json"),
        (b"<html><body>login</body></html>", "text/html"),
        (b"<!DOCTYPE x [<!ENTITY a 'b'>]><EventNotificationAlert/>", "application/xml"),
        (b"<?xml version='1.0' encoding='cp037'?>\x4c\x6e", "application/xml"),
        (b"[]", "application/json"),
        (b"42", "application/json"),
        (b'{"no": "eventType"}', "application/json"),
    ],
)
def test_unparseable_body_is_one_rejection(body, content_type):
    (rejection,) = parse_isapi(body, content_type, "G1", RECEIVED)
    assert isinstance(rejection, Rejection)
    assert rejection.device == "G1" and rejection.reason


def test_personal_data_never_logged(caplog):
    caplog.set_level(logging.DEBUG)
    secrets = ["王小明", "6617508710", "0012345678", "粤B12345"]
    bodies = [
        json.dumps(_access(0x4B, 1, employeeNoString="6617508710", name="王小明")).encode(),
        json.dumps(_access(0x01, 2, cardNo="0012345678")).encode(),
        _anpr_xml(plate="粤B12345"),
        b'{"eventType": "AccessControllerEvent", "name": "\\u738b\\u5c0f\\u660e", ',
        json.dumps(_access(0x4B, 3, name="王小明", dateTime="2030-01-01T00:00:00Z")).encode(),
    ]
    for body in bodies:
        parse_isapi(body, None, "G1", RECEIVED)
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "refused" in logged  # the rejections were logged at all
    assert not [s for s in secrets if s in logged]


# --- fuzzing ---------------------------------------------------------------------------------

CONTENT_TYPES = st.sampled_from(
    [
        None,
        "",
        MULTIPART,
        "multipart/form-data",
        "multipart/form-data; boundary=",
        "multipart/form-data; boundary=xyz",
        "application/json",
        "application/xml",
        "image/jpeg",
        "text/plain; charset=gbk",
    ]
)
FUZZ = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow], database=None
)


def _check(outcomes: object) -> list[Outcome]:
    assert isinstance(outcomes, list) and outcomes
    assert all(isinstance(o, Event | Rejection) for o in outcomes)
    for outcome in outcomes:
        if isinstance(outcome, Event):
            assert outcome.at.tzinfo is not None and outcome.device == "FUZZ"
            assert outcome.id and len(outcome.id) <= 64
            json.dumps(outcome.data, allow_nan=False)
    return outcomes


@FUZZ
@given(body=st.binary(max_size=2048), content_type=CONTENT_TYPES)
def test_fuzz_random_bytes_never_raise(body, content_type):
    _check(parse_isapi(body, content_type, "FUZZ", RECEIVED))


@FUZZ
@given(
    parts=st.lists(
        st.tuples(
            st.sampled_from(["application/json", "image/jpeg", "text/xml", ""]),
            st.one_of(
                st.binary(max_size=200),
                st.sampled_from([JPEG, JPEG[:-2], json.dumps(_access(0x4B, 7)).encode()]),
                st.recursive(
                    st.none() | st.booleans() | st.integers() | st.text(max_size=10),
                    lambda inner: (
                        st.lists(inner, max_size=3)
                        | st.dictionaries(st.text(max_size=8), inner, max_size=3)
                    ),
                    max_leaves=10,
                ).map(lambda v: json.dumps(v).encode()),
            ),
        ),
        max_size=6,
    ),
    content_type=CONTENT_TYPES,
)
def test_fuzz_multipart_of_random_parts(parts, content_type):
    body = _multipart([({"Content-Type": ct} if ct else {}, data) for ct, data in parts])
    _check(parse_isapi(body, content_type, "FUZZ", RECEIVED))


@needs_fixtures
@FUZZ
@given(data=st.data())
def test_fuzz_truncated_and_mangled_captures(data):
    name = data.draw(st.sampled_from([FIRST, F4]))
    body = _raw(name)
    full = {o.id for o in parse_isapi(body, MULTIPART, "FUZZ", RECEIVED)}
    cut = data.draw(st.integers(min_value=0, max_value=len(body)))
    truncated = _check(parse_isapi(body[:cut], MULTIPART, "FUZZ", RECEIVED))
    # A cut loses events at the end; it never invents one.
    assert {o.id for o in truncated if isinstance(o, Event)} <= full

    mangled = bytearray(body)
    for _ in range(data.draw(st.integers(min_value=1, max_value=20))):
        position = data.draw(st.integers(min_value=0, max_value=len(mangled) - 1))
        mangled[position] = data.draw(st.integers(min_value=0, max_value=255))
    _check(parse_isapi(bytes(mangled), data.draw(CONTENT_TYPES), "FUZZ", RECEIVED))
