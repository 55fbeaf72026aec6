"""Alerts over HTTP on both databases (console pages, forms, API) and the notification
channels against real servers: a local HTTP server for webhooks, Mosquitto for sirens, a
local SMTP server for e-mail."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import queue
import secrets
import socketserver
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from fastapi.testclient import TestClient
from paho.mqtt.enums import CallbackAPIVersion
from sqlalchemy import select

from anju.alerts import notify, service
from anju.alerts.model import AlertDraft, Severity
from anju.alerts.models import Alert
from anju.audit.models import AuditEntry
from anju.auth import service as auth_service
from anju.auth.models import User
from anju.events.feed import LiveFeed
from anju.events.model import Event, Kind
from anju.org.models import OrgUnit
from anju.registry import schemas
from anju.registry import service as registry
from anju.web.app import create_app
from tests import factories as f
from tests.web_helpers import sign_in

NOW = dt.datetime.now(dt.UTC).replace(microsecond=0)
PASSWORD = "alerts-web-password-" + secrets.token_hex(4)
JPEG = b"\xff\xd8\xff\xe0 feedback photo " + secrets.token_bytes(8)


def _user(ctx: Any, name: str, role: str, unit_id: int) -> None:
    auth_service.create_user(
        ctx.session,
        username=name,
        display_name=f"{name} 姓名",
        password=PASSWORD,
        role_code=role,
        org_unit_id=unit_id,
    )


@pytest.fixture(scope="module")
def site(app_node: Any) -> dict[str, Any]:
    """A community with a camera whose capture is evidence, an ordinary and a police-only
    alert, an officer, a property manager and an officer of another area."""
    with app_node.unit_of_work() as ctx:
        t = f.tree(ctx, "AW")
        other = f.tree(ctx, "AX")
        registry.devices.create(
            ctx,
            schemas.DeviceCreate(
                community_id=t.community.id, code="AW-CAM", name="北门抓拍", kind="vehicle_camera"
            ),
        )
        capture = Event(
            device="AW-CAM", kind=Kind.CAPTURE_VEHICLE, at=NOW, image_data=JPEG + b"evidence"
        )
        event_id = app_node.pipeline(ctx.session).process([capture]).results[0].stored_id
        _user(ctx, "aw-officer", "officer", t.office.id)
        _user(ctx, "aw-property", "property_manager", t.community.id)
        _user(ctx, "ax-officer", "officer", other.office.id)
        base = {"community_id": t.community.id, "at": NOW, "severity": Severity.HIGH}
        plain, _ = service.raise_or_merge(
            ctx.session,
            AlertDraft(
                model="fire",
                fingerprint="aw:fire",
                title="消防通道被占用",
                place="3 号楼北侧",
                evidence=(event_id,),
                **base,
            ),
            NOW,
        )
        secret, _ = service.raise_or_merge(
            ctx.session,
            AlertDraft(
                model="key_person",
                fingerprint="aw:kp",
                title="重点人员出现",
                police_only=True,
                **base,
            ),
            NOW,
        )
        return {"plain": plain.id, "secret": secret.id, "event": event_id}


@pytest.fixture(scope="module")
def app(app_node: Any) -> Any:
    return create_app(app_node)


def client_for(app: Any, username: str) -> tuple[TestClient, str]:
    client = TestClient(app)
    return client, sign_in(client, username, PASSWORD)


def test_officer_takes_an_alert_round_the_loop_in_the_console(
    app: Any, site: dict[str, Any]
) -> None:
    client, csrf = client_for(app, "aw-officer")
    centre = client.get("/alerts")
    assert centre.status_code == 200
    assert "消防通道被占用" in centre.text and "重点人员出现" in centre.text
    url = f"/alerts/{site['plain']}"
    page = client.get(url)
    assert "3 号楼北侧" in page.text and f"/events/{site['event']}/image" in page.text
    assert client.get(f"/events/{site['event']}/image").content.startswith(JPEG)
    # A step that does not fit the state comes back on the page, with nothing changed.
    wrong = client.post(url + "/close", data={"csrf_token": csrf})
    assert wrong.status_code == 422 and "此操作" in wrong.text
    steps = [
        ("dispatch", {"target": "role:officer", "note": "请到场"}, None),
        ("acknowledge", {}, None),
        ("handle", {"feedback": "已挪车", "verdict": "true_alarm"}, JPEG),
        ("close", {"note": "办结"}, None),
    ]
    for action, data, photo in steps:
        files = {"photos": ("p.jpg", photo, "image/jpeg")} if photo else None
        resp = client.post(
            f"{url}/{action}",
            data={"csrf_token": csrf, **data},
            files=files,
            follow_redirects=False,
        )
        assert resp.status_code == 303, (action, resp.text[:300])
    page = client.get(url).text
    assert "已办结" in page and "已挪车" in page and "请到场" in page
    answer = client.get(f"/api/v1/alerts/{site['plain']}").json()
    assert [s["action"] for s in answer["steps"]] == [
        "raised",
        "dispatched",
        "acknowledged",
        "handled",
        "closed",
    ]
    assert answer["verdict"] == "true_alarm" and answer["evidence"] == [site["event"]]
    handled = next(s for s in answer["steps"] if s["action"] == "handled")
    assert handled["photos"] == 1
    photo_link = page.split(f"/alerts/{site['plain']}/photos/")[1].split('"')[0]
    photo = client.get(f"/alerts/{site['plain']}/photos/{photo_link}")
    assert photo.status_code == 200 and photo.content == JPEG
    stats = client.get("/alerts/stats")
    assert stats.status_code == 200 and "消防安全" in stats.text


def test_property_never_sees_police_only_alerts(app: Any, site: dict[str, Any]) -> None:
    client, _csrf = client_for(app, "aw-property")
    centre = client.get("/alerts?state=")
    assert "消防通道被占用" in centre.text and "重点人员出现" not in centre.text
    assert client.get(f"/alerts/{site['secret']}").status_code == 404
    assert client.get(f"/api/v1/alerts/{site['secret']}").status_code == 404
    ids = [a["id"] for a in client.get("/api/v1/alerts?state=").json()["items"]]
    assert site["secret"] not in ids and site["plain"] in ids
    nav = client.get("/").text
    assert 'href="/alerts"' in nav


def test_out_of_scope_officer_gets_404_and_api_refusals_are_clear(
    app: Any, site: dict[str, Any]
) -> None:
    outsider, csrf = client_for(app, "ax-officer")
    assert outsider.get(f"/alerts/{site['secret']}").status_code == 404
    resp = outsider.post(
        f"/api/v1/alerts/{site['secret']}/dispatch",
        json={"role": "officer"},
        headers={"X-CSRF-Token": csrf},
    )
    assert resp.status_code == 404
    officer, csrf = client_for(app, "aw-officer")
    headers = {"X-CSRF-Token": csrf}
    url = f"/api/v1/alerts/{site['secret']}"
    wrong = officer.post(url + "/handle", json={"feedback": "x"}, headers=headers)
    assert wrong.status_code == 422
    assert wrong.json()["detail"][0]["message"] == "this alert is not in a state that allows this"
    assert officer.post(url + "/fly", json={}, headers=headers).status_code == 404
    to_property = officer.post(url + "/dispatch", json={"role": "property"}, headers=headers)
    assert to_property.status_code == 422
    ok = officer.post(url + "/dispatch", json={"role": "officer"}, headers=headers)
    assert ok.status_code == 200 and ok.json()["state"] == "dispatched"


# --- channels against real servers -------------------------------------------------------


def _notice(**kw: Any) -> notify.Notice:
    values: dict[str, Any] = {
        "id": 7,
        "action": "raised",
        "model": "perimeter",
        "model_name": "周界入侵",
        "community_id": 1,
        "community_code": "AWC",
        "community_name": "阳光小区",
        "title": "东侧围墙入侵",
        "severity": "critical",
        "state": "raised",
        "police_only": False,
        "place": "东侧围墙 3 号防区",
        "at": NOW.isoformat(),
        "count": 1,
    }
    values.update(kw)
    return notify.Notice(**values)


@pytest.fixture
def http_sink() -> Iterator[tuple[str, queue.Queue[tuple[str, dict[str, Any]]]]]:
    """A real HTTP server on a free port that keeps what it was POSTed."""
    got: queue.Queue[tuple[str, dict[str, Any]]] = queue.Queue()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            got.put((self.path, json.loads(body)))
            self.send_response(200 if self.path != "/broken" else 500)
            self.end_headers()
            self.wfile.write(b'{"errcode":0}')

        def log_message(self, *args: Any) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}", got
    server.shutdown()
    server.server_close()


def test_webhooks_post_json_dingtalk_and_wecom(http_sink: Any) -> None:
    base, got = http_sink
    notifier = notify.Notifier(
        [
            notify.WebhookChannel(f"{base}/json"),
            notify.WebhookChannel(f"{base}/ding", format="dingtalk"),
            notify.WebhookChannel(f"{base}/wecom", format="wecom"),
            notify.WebhookChannel(f"{base}/quiet", min_severity="critical"),
        ]
    )
    assert notifier.send([_notice()]) == 0
    bodies = dict(got.get(timeout=5) for _ in range(4))
    assert bodies["/json"]["alert"]["title"] == "东侧围墙入侵"
    assert bodies["/json"]["alert"]["sound"] is True
    assert bodies["/ding"]["msgtype"] == "markdown"
    assert "周界入侵" in bodies["/ding"]["markdown"]["text"]
    assert bodies["/wecom"]["msgtype"] == "markdown"
    assert "东侧围墙 3 号防区" in bodies["/wecom"]["markdown"]["content"]
    # Below a hook's minimum severity nothing is sent; a failing hook spares the others.
    notifier = notify.Notifier(
        [
            notify.WebhookChannel(f"{base}/quiet", min_severity="critical"),
            notify.WebhookChannel(f"{base}/broken"),
            notify.WebhookChannel(f"{base}/after"),
        ]
    )
    assert notifier.send([_notice(severity="high")]) == 1
    paths = {got.get(timeout=5)[0] for _ in range(2)}
    assert paths == {"/broken", "/after"} and got.empty()


def test_siren_command_reaches_the_device_topic_on_mosquitto() -> None:
    community = f"AWC{uuid.uuid4().hex[:6]}"
    topic = f"anju/v1/{community}/SIREN-1/commands"
    got: queue.Queue[bytes] = queue.Queue()
    listener = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"t-{uuid.uuid4().hex[:8]}")
    listener.on_message = lambda _c, _u, msg: got.put(msg.payload)
    subscribed = threading.Event()
    listener.on_subscribe = lambda *_a: subscribed.set()
    listener.connect("127.0.0.1", 1883)
    listener.loop_start()
    try:
        listener.subscribe(topic, qos=1)
        assert subscribed.wait(5)
        sender = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"s-{uuid.uuid4().hex[:8]}")
        sender.connect("127.0.0.1", 1883)
        sender.loop_start()
        try:
            channel = notify.MqttSirenChannel(sender)
            # Not loud, or not a new alert: no command.
            channel.send(_notice(community_code=community, severity="low", sirens=("SIREN-1",)), [])
            channel.send(_notice(community_code=community, sirens=("SIREN-1",)), [])
            command = json.loads(got.get(timeout=5))
            assert command == {"command": "siren", "alert_id": 7, "severity": "critical"}
            assert got.empty()
        finally:
            sender.loop_stop()
            sender.disconnect()
    finally:
        listener.loop_stop()
        listener.disconnect()


class _Smtp(socketserver.StreamRequestHandler):
    """Just enough SMTP to take one message (EHLO, MAIL, RCPT, DATA, QUIT)."""

    def handle(self) -> None:
        sink: queue.Queue[dict[str, Any]] = self.server.sink  # type: ignore[attr-defined]
        self.wfile.write(b"220 test SMTP\r\n")
        mail: dict[str, Any] = {"to": []}
        while line := self.rfile.readline():
            verb = line.decode().strip().upper()
            if verb.startswith(("EHLO", "HELO")):
                self.wfile.write(b"250 test\r\n")
            elif verb.startswith("MAIL FROM"):
                mail["from"] = line.decode().strip()[10:]
                self.wfile.write(b"250 ok\r\n")
            elif verb.startswith("RCPT TO"):
                mail["to"].append(line.decode().strip()[8:])
                self.wfile.write(b"250 ok\r\n")
            elif verb == "DATA":
                self.wfile.write(b"354 go on\r\n")
                data = b""
                while (chunk := self.rfile.readline()) not in (b".\r\n", b""):
                    data += chunk
                mail["data"] = data
                sink.put(mail)
                self.wfile.write(b"250 queued\r\n")
            elif verb == "QUIT":
                self.wfile.write(b"221 bye\r\n")
                return
            else:
                self.wfile.write(b"250 ok\r\n")


def test_email_goes_through_a_real_smtp_server() -> None:
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _Smtp)
    server.sink = queue.Queue()  # type: ignore[attr-defined]
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"smtp://127.0.0.1:{server.server_address[1]}"
        channel = notify.EmailChannel(url, "anju@example.org", ["duty@example.org"])
        channel.send(_notice(), [notify.Recipient("值班员", email="officer@example.org")])
        mail = server.sink.get(timeout=5)  # type: ignore[attr-defined]
        assert mail["to"] == ["<duty@example.org>", "<officer@example.org>"]
        from email import message_from_bytes
        from email.header import decode_header, make_header

        message = message_from_bytes(mail["data"])
        assert "东侧围墙入侵" in str(make_header(decode_header(message["Subject"])))
    finally:
        server.shutdown()
        server.server_close()


def test_console_channel_publishes_to_the_alert_feed() -> None:
    feed = LiveFeed()

    async def listen() -> list[dict[str, Any]]:
        sub = feed.subscribe(frozenset({1}))
        notify.ConsoleChannel(feed).send(_notice(), [])
        notify.ConsoleChannel(feed).send(_notice(community_id=2, id=8), [])  # not in scope
        item = await asyncio.wait_for(sub.queue.get(), 2)
        await asyncio.sleep(0.05)
        return [item, *([sub.queue.get_nowait()] if not sub.queue.empty() else [])]

    items = asyncio.run(listen())
    assert [i["id"] for i in items] == [7] and items[0]["sound"] is True


def test_the_minute_tick_escalates_and_announces(app_node: Any) -> None:
    from anju.events import ticker

    with app_node.unit_of_work() as ctx:
        t = f.tree(ctx)
        alert, _ = service.raise_or_merge(
            ctx.session,
            AlertDraft(
                model="emergency",
                community_id=t.community.id,
                fingerprint=f"sos:{t.community.id}",
                title="紧急求助按钮被按下",
                severity=Severity.CRITICAL,
                at=NOW,
            ),
            NOW,
        )
        alert_id, station = alert.id, t.station.name
    feed_items: list[dict[str, Any]] = []

    async def run_tick() -> None:
        sub = app_node.alert_feed.subscribe(None)
        try:
            await asyncio.to_thread(ticker.tick, app_node, NOW + dt.timedelta(minutes=6))
            await asyncio.sleep(0.05)
            while not sub.queue.empty():
                feed_items.append(sub.queue.get_nowait())
        finally:
            app_node.alert_feed.unsubscribe(sub)

    asyncio.run(run_tick())
    with app_node.unit_of_work() as ctx:
        steps = service.steps(ctx.session, alert_id)
        assert (steps[-1].action, steps[-1].note) == ("escalated", f"→ {station}")
    assert [(i["id"], i["action"]) for i in feed_items] == [(alert_id, "escalated")]


# --- the live stream, preferences, configured recipients end to end ---------------------


def _listen(
    web: Any, path: str, got: list[dict[str, Any]], want: int, ready: threading.Event
) -> None:
    with web.stream("GET", path) as stream:
        ready.set()
        for line in stream.iter_lines():
            if line.startswith("data: "):
                got.append(json.loads(line[6:]))
                if len(got) >= want:
                    return


@contextmanager
def _officer_and_manager_listening(
    app_node: Any, feed: Any, path: str, want: dict[str, int]
) -> Iterator[dict[str, list[dict[str, Any]]]]:
    """Over a real server, the officer and the property manager each on the stream at
    ``path`` until they have ``want`` items; yields what each got (complete on exit)."""
    import httpx

    from tests.live_server import live_server

    with (
        live_server(app_node) as base,
        httpx.Client(base_url=base, timeout=10) as officer,
        httpx.Client(base_url=base, timeout=10) as manager,
    ):
        _sign_in_live(officer, "aw-officer")
        _sign_in_live(manager, "aw-property")
        before = feed.subscribers
        seen: dict[str, list[dict[str, Any]]] = {"officer": [], "property": []}
        threads = []
        for web, key in ((officer, "officer"), (manager, "property")):
            ready = threading.Event()
            args = (web, path, seen[key], want[key], ready)
            thread = threading.Thread(target=_listen, args=args)
            thread.start()
            assert ready.wait(5)
            threads.append(thread)
        for _ in range(100):  # the subscriptions exist once both streams have started
            if feed.subscribers >= before + 2:
                break
            time.sleep(0.05)
        yield seen
        for thread in threads:
            thread.join(10)


def _sign_in_live(web: Any, username: str) -> None:
    """Sign in over a real server, where the session's commit may trail the redirect."""
    token = web.get("/login").cookies.get("anju_login_csrf")
    form = {"username": username, "password": PASSWORD, "csrf_token": token}
    assert web.post("/login", data=form).status_code in (200, 303)
    for _ in range(50):
        if web.get("/account/notifications").status_code == 200:
            return
        time.sleep(0.1)
    raise AssertionError(f"{username} could not sign in")


def test_live_stream_keeps_police_only_alerts_from_property(
    app_node: Any, site: dict[str, Any]
) -> None:
    """Over a real server: a police-only alert and then an ordinary one are raised; the
    officer's stream carries both, the property manager's only the ordinary one — and
    without sound, as the manager turned the console sound off."""
    with app_node.unit_of_work() as ctx:
        manager = ctx.session.scalar(select(User).where(User.username == "aw-property"))
        notify.save_prefs(
            ctx.session, ctx.cipher, manager.id, min_severity="low", console_sound=False,
            email="", sms=False, phone="",
        )  # fmt: skip
    live = "/api/v1/alerts/live"
    want = {"officer": 2, "property": 1}
    with _officer_and_manager_listening(app_node, app_node.alert_feed, live, want) as seen:
        notices = []
        with app_node.unit_of_work() as ctx:
            community = ctx.session.get(Alert, site["plain"]).community_id
            raised = (
                ("aw:live-kp", "重点人员出现（直播）", True),
                ("aw:live-fire", "消防通道被占用（直播）", False),
            )
            for fp, title, secret in raised:
                alert, _ = service.raise_or_merge(
                    ctx.session,
                    AlertDraft(
                        model="key_person" if secret else "fire",
                        community_id=community,
                        fingerprint=fp,
                        title=title,
                        severity=Severity.HIGH,
                        at=NOW,
                        police_only=secret,
                    ),
                    NOW,
                )
                notices.append(notify.notice_of(ctx.session, alert, "raised"))
        notify.send(app_node, notices)
    assert [i["title"] for i in seen["officer"]] == [
        "重点人员出现（直播）",
        "消防通道被占用（直播）",
    ]
    assert [i["title"] for i in seen["property"]] == ["消防通道被占用（直播）"]
    assert seen["officer"][1]["sound"] is True and seen["property"][0]["sound"] is False
    assert not any(i["police_only"] for i in seen["property"])


def test_live_event_feed_hides_watchlist_hits_from_property(
    app_node: Any, site: dict[str, Any]
) -> None:
    """Over a real server: a face capture matched to a police watchlist entry goes out on
    the event feed; the officer's stream carries the hit, the property manager's the same
    event without it (they may see the face match, not whom the police watch)."""

    with app_node.unit_of_work() as ctx:
        community = ctx.session.get(Alert, site["plain"]).community_id
    face = {"match": "stranger", "stranger": "S-20261121-0001", "distance": 0.31, "watch": [4]}
    item = {
        "id": 999_001, "community_id": community, "kind": "capture.face", "device": "AW-CAM",
        "at": NOW.isoformat(), "data": {"face": face},
    }  # fmt: skip
    live, want = "/api/v1/events/live", {"officer": 1, "property": 1}
    with _officer_and_manager_listening(app_node, app_node.feed, live, want) as seen:
        app_node.feed.publish([item])
    assert seen["officer"][0]["data"]["face"]["watch"] == [4]
    shown = seen["property"][0]["data"]["face"]
    assert "watch" not in shown and shown["stranger"] == "S-20261121-0001"
    assert item["data"]["face"]["watch"] == [4]  # the shared item is left as it was


def test_detail_names_the_house_and_the_escalation_in_words(
    app: Any, app_node: Any, site: dict[str, Any]
) -> None:
    """An elderly person's silence: the page says which house (a link to it), and the
    escalation nobody acted on is shown as such, not by the system account's code."""
    from anju.events import ticker

    with app_node.unit_of_work() as ctx:
        community = ctx.session.get(Alert, site["plain"]).community_id
        unit = ctx.session.get(OrgUnit, community)
        home = f.house(ctx, unit, building="6", unit="2", room="1201")
        alert, _ = service.raise_or_merge(
            ctx.session,
            AlertDraft(
                model="elderly_inactive", community_id=community, fingerprint="aw:elderly",
                title="独居老人无活动：王奶奶 已 13 小时无活动迹象", severity=Severity.CRITICAL,
                at=NOW, house_id=home.id,
            ),
            NOW,
        )  # fmt: skip
        alert_id, address = alert.id, home.full_address
    ticker.tick(app_node, NOW + dt.timedelta(minutes=6))  # past the 5-minute deadline
    for username in ("aw-officer", "aw-property"):
        client, _csrf = client_for(app, username)
        page = client.get(f"/alerts/{alert_id}").text
        assert f'<a href="/houses/{home.id}">{address}</a>' in page
        assert "超时自动升级" in page and "alert-escalation" not in page


def test_notification_preferences_page(app: Any, site: dict[str, Any]) -> None:
    client, csrf = client_for(app, "ax-officer")
    page = client.get("/account/notifications")
    assert page.status_code == 200 and 'name="min_severity"' in page.text
    bad = client.post(
        "/account/notifications",
        data={"csrf_token": csrf, "min_severity": "high", "email": "nope", "sms": "1"},
    )
    assert bad.status_code == 422 and "has-error" in bad.text
    assert 'value="nope"' in bad.text  # what was typed comes back
    ok = client.post(
        "/account/notifications",
        data={
            "csrf_token": csrf,
            "min_severity": "high",
            "email": "ax@example.org",
            "sms": "1",
            "phone": "13900139000",
        },
    )
    assert ok.status_code == 200 and "13900139000" in ok.text  # one's own number, shown back
    assert ok.headers["cache-control"] == "no-store"
    again = client.get("/account/notifications").text
    assert 'value="ax@example.org"' in again and 'value="high" selected' in again
    assert not client.post("/account/notifications", data={"min_severity": "low"}).is_success
    with app.state.node.unit_of_work() as ctx:
        entries = ctx.session.scalars(
            select(AuditEntry).where(AuditEntry.entity == "alert_notify_prefs")
        ).all()
        logged = json.dumps([e.detail for e in entries], ensure_ascii=False)
    assert entries and "139****9000" in logged and "13900139000" not in logged


def test_configured_recipients_get_mail_and_sms_when_a_model_raises(
    app_node: Any, site: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The fire model of the community names a grid worker's role and an officer: a smoke
    alarm through the real pipeline is dispatched to the grid workers, the grid worker's
    e-mail goes through a real SMTP server and the officer's SMS through the gateway."""
    from anju.alerts import config as alert_config
    from anju.devices.models import Device
    from anju.events.api import deliver, sender_for

    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _Smtp)
    server.sink = queue.Queue()  # type: ignore[attr-defined]
    threading.Thread(target=server.serve_forever, daemon=True).start()
    sms: queue.Queue[tuple[str, str]] = queue.Queue()

    class Gateway:
        """A provider's side of the SmsGateway interface: what it was asked to send."""

        def send(self, phone: str, text: str) -> None:
            sms.put((phone, text))

    smtp_url = f"smtp://127.0.0.1:{server.server_address[1]}"
    settings = app_node.settings.model_copy(update={"alert_smtp_url": smtp_url})
    monkeypatch.setattr(app_node, "settings", settings)
    monkeypatch.setattr(app_node, "sms_gateway", Gateway(), raising=False)
    try:
        with app_node.unit_of_work() as ctx:
            community = ctx.session.get(Alert, site["plain"]).community_id
            _user(ctx, "aw-grid", "grid_worker", community)
            ctx.session.flush()
            grid = ctx.session.scalar(select(User).where(User.username == "aw-grid"))
            officer = ctx.session.scalar(select(User).where(User.username == "aw-officer"))
            notify.save_prefs(
                ctx.session, ctx.cipher, grid.id, min_severity="low", console_sound=True,
                email="grid@example.org", sms=False, phone="",
            )  # fmt: skip
            notify.save_prefs(
                ctx.session, ctx.cipher, officer.id, min_severity="high", console_sound=True,
                email="", sms=True, phone="13700137000",
            )  # fmt: skip
            alert_config.save(
                ctx.session, community, "fire", {"recipients": ["grid", "user:aw-officer"]}, "t"
            )
            registry.devices.create(
                ctx,
                schemas.DeviceCreate(
                    community_id=community, code="AW-SMOKE", name="3 号楼烟感",
                    kind="smoke_detector",
                ),
            )  # fmt: skip
        app_node.rules.reload()
        with app_node.unit_of_work() as ctx:
            sender = sender_for(ctx.session.scalar(select(Device).where(Device.code == "AW-SMOKE")))
        smoke = Event(device="AW-SMOKE", kind=Kind.FIRE_SMOKE, at=NOW, id="aw-smoke-1", value=1)
        assert deliver(app_node, [smoke], sender).results[0].status == "accepted"
        mail = server.sink.get(timeout=10)  # type: ignore[attr-defined]
        assert "<grid@example.org>" in mail["to"]
        phone, text = sms.get(timeout=10)
        assert phone == "13700137000" and "3 号楼烟感" in text
        with app_node.unit_of_work() as ctx:
            alert = ctx.session.scalars(
                select(Alert).where(Alert.model == "fire", Alert.community_id == community)
                .order_by(Alert.id.desc())
            ).first()  # fmt: skip
            assert alert is not None and alert.state.value == "dispatched"
            assert alert.assigned_role == "grid"
            note = service.steps(ctx.session, alert.id)[-1].note
            assert note == "→ 网格员\n抄送：aw-officer 姓名"
    finally:
        server.shutdown()
        server.server_close()
