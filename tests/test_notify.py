"""Group-robot webhooks against a real local HTTP server that checks what a robot checks:
DingTalk's signed URL (加签: timestamp and HMAC-SHA256 signature, verified here with the
secret, independently of the code under test), WeCom's markdown message and key, and the
robots' "HTTP 200 but errcode ≠ 0" refusals; and the SMS channel getting opened phones."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
import queue
import threading
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from anju.alerts import notify
from anju.core.crypto import FieldCipher

SECRET = "SEC" + "0123456789abcdef" * 4
NOW = dt.datetime(2026, 11, 21, 3, 0, tzinfo=dt.UTC)


def _notice(**kw: Any) -> notify.Notice:
    values: dict[str, Any] = {
        "id": 9,
        "action": "raised",
        "model": "emergency",
        "model_name": "紧急事件",
        "community_id": 1,
        "community_code": "NTC",
        "community_name": "安居小区",
        "title": "一键求助：3 号楼 2 单元",
        "severity": "critical",
        "state": "raised",
        "police_only": False,
        "place": "3 号楼 2 单元",
        "at": NOW.isoformat(),
        "count": 1,
    }
    values.update(kw)
    return notify.Notice(**values)


@dataclass
class Arrival:
    path: str
    query: dict[str, list[str]]
    body: dict[str, Any]
    answer: dict[str, Any] = field(default_factory=dict)


def _dingtalk_answer(query: dict[str, list[str]]) -> dict[str, Any]:
    """What DingTalk answers: the sign must be HMAC-SHA256("{timestamp}\\n{secret}") under
    the secret, base64, and the timestamp within an hour of now."""
    if "timestamp" not in query or "sign" not in query:
        return {"errcode": 310000, "errmsg": "sign not match"}
    timestamp = query["timestamp"][0]
    digest = hmac.new(SECRET.encode(), f"{timestamp}\n{SECRET}".encode(), hashlib.sha256)
    expected = base64.b64encode(digest.digest()).decode()
    fresh = abs(time.time() * 1000 - int(timestamp)) < 3600 * 1000
    if query["sign"][0] != expected or not fresh:
        return {"errcode": 310000, "errmsg": "sign not match"}
    return {"errcode": 0, "errmsg": "ok"}


def _wecom_answer(query: dict[str, list[str]], body: dict[str, Any]) -> dict[str, Any]:
    """What WeCom answers: a known key, msgtype markdown, content of at most 4096 bytes."""
    if query.get("key") != ["good-key"]:
        return {"errcode": 93000, "errmsg": "invalid webhook url"}
    content = body.get("markdown", {}).get("content", "")
    if body.get("msgtype") != "markdown" or not content:
        return {"errcode": 40008, "errmsg": "invalid message type"}
    if len(content.encode()) > 4096:
        return {"errcode": 40058, "errmsg": "content exceed max length"}
    return {"errcode": 0, "errmsg": "ok"}


@pytest.fixture
def robots() -> Iterator[tuple[str, queue.Queue[Arrival]]]:
    """A real HTTP server standing in for DingTalk and WeCom: it records each request and
    answers as the robot would."""
    got: queue.Queue[Arrival] = queue.Queue()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            parts = urlsplit(self.path)
            # parse_qs decodes the URL-encoding, as the robot's server does.
            query = parse_qs(parts.query)
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            if parts.path == "/robot/send":
                answer = _dingtalk_answer(query)
            else:
                answer = _wecom_answer(query, body)
            got.put(Arrival(parts.path, query, body, answer))
            payload = json.dumps(answer).encode()
            self.send_response(200)  # the robots answer 200 even when they refuse
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args: Any) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}", got
    server.shutdown()
    server.server_close()


def test_dingtalk_signed_url_is_accepted_by_a_checking_server(robots: Any) -> None:
    base, got = robots
    url = f"{base}/robot/send?access_token=tok123"
    channel = notify.WebhookChannel(url, format="dingtalk", secret=SECRET)
    assert notify.Notifier([channel]).send([_notice()]) == 0
    arrival = got.get(timeout=5)
    assert arrival.answer == {"errcode": 0, "errmsg": "ok"}
    assert arrival.query["access_token"] == ["tok123"]  # the robot's own token kept
    sent_at = int(arrival.query["timestamp"][0])
    assert abs(sent_at - time.time() * 1000) < 60_000  # signed now, in milliseconds
    assert arrival.body["msgtype"] == "markdown"
    assert "一键求助" in arrival.body["markdown"]["text"]
    assert SECRET not in json.dumps(arrival.body) + json.dumps(arrival.query)


def test_a_signature_in_need_of_url_encoding_survives_the_trip(robots: Any) -> None:
    """base64 has '+', '/' and '='; unencoded, '+' would arrive as a space and fail."""
    base, got = robots
    now_ms = int(time.time() * 1000)
    stamp = next(
        ms
        for ms in range(now_ms, now_ms + 2000)
        if "+" in base64.b64encode(_hmac(ms)).decode()  # about 1 in 4 has one
    )
    signed = notify.dingtalk_signed(f"{base}/robot/send?access_token=t", SECRET, stamp)
    assert "%2B" in signed and "+" not in urlsplit(signed).query
    body = json.dumps(notify.webhook_body(_notice(), "dingtalk")).encode()
    request = urllib.request.Request(
        signed, data=body, method="POST", headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        assert json.loads(response.read())["errcode"] == 0
    arrival = got.get(timeout=5)
    assert arrival.query["timestamp"] == [str(stamp)]
    assert arrival.query["sign"] == [base64.b64encode(_hmac(stamp)).decode()]
    # Without a query string of its own the URL gets one.
    assert notify.dingtalk_signed("https://x.test/hook", SECRET, 1).startswith(
        "https://x.test/hook?timestamp=1&sign="
    )


def _hmac(ms: int) -> bytes:
    return hmac.new(SECRET.encode(), f"{ms}\n{SECRET}".encode(), hashlib.sha256).digest()


def test_a_wrong_secret_or_no_signature_is_a_failed_send(robots: Any) -> None:
    base, got = robots
    notifier = notify.Notifier(
        [
            notify.WebhookChannel(f"{base}/robot/send?access_token=t", "dingtalk", secret="SECx"),
            notify.WebhookChannel(f"{base}/robot/send?access_token=t", "dingtalk"),
            notify.WebhookChannel(f"{base}/robot/send?access_token=t", "dingtalk", secret=SECRET),
        ]
    )
    assert notifier.send([_notice()]) == 2  # logged and counted; the third still went
    answers = [got.get(timeout=5).answer["errcode"] for _ in range(3)]
    assert answers == [310000, 310000, 0]


def test_wecom_markdown_fits_and_a_bad_key_is_a_failed_send(robots: Any) -> None:
    base, got = robots
    long_title = "周界入侵告警：" + "东侧围墙 3 号防区，" * 400  # far over 4096 bytes
    good = notify.WebhookChannel(f"{base}/cgi-bin/webhook/send?key=good-key", "wecom")
    bad = notify.WebhookChannel(f"{base}/cgi-bin/webhook/send?key=revoked", "wecom")
    assert notify.Notifier([good, bad]).send([_notice(title=long_title)]) == 1
    first, second = got.get(timeout=5), got.get(timeout=5)
    assert first.answer["errcode"] == 0 and second.answer["errcode"] == 93000
    content = first.body["markdown"]["content"]
    assert content.startswith("**【紧急】紧急事件：周界入侵告警")
    assert len(content.encode()) <= 4096  # cut to WeCom's limit on a character boundary
    short = notify.webhook_body(_notice(), "wecom")["markdown"]["content"]
    assert short == f"**{_notice().text()}**\n{NOW.isoformat()}"  # short ones stay whole


def test_sms_reaches_recipients_with_their_phone_opened_only_at_send() -> None:
    cipher = FieldCipher(bytes(range(32)))
    sealed = cipher.encrypt("13800138000", notify.PHONE_CONTEXT)
    people = (
        notify.Recipient("值班民警", user_id=1, phone_sealed=sealed),
        notify.Recipient("网格员", email="grid@example.org", user_id=2),
        notify.Recipient("换过密钥", user_id=3, phone_sealed=b"\x00" * 40),
    )
    sent: list[tuple[str, str]] = []

    class Gateway:
        """The provider's side of the SmsGateway interface: what it was asked to send."""

        def send(self, phone: str, text: str) -> None:
            sent.append((phone, text))

    notice = notify._opened(cipher, _notice(recipients=people))
    assert notify.Notifier([notify.SmsChannel(Gateway())]).send([notice]) == 0
    assert sent == [("13800138000", _notice().text())]
    assert all(r.phone_sealed is None for r in notice.recipients)
