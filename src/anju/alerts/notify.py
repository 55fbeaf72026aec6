"""Notification channels (预警推送): every way an alert leaves the node, behind one interface.

A :class:`Notice` is a plain snapshot of an alert taken inside its transaction; after the
commit :func:`send` hands it to each channel — console live feed (SSE), webhooks (generic
JSON, DingTalk and WeCom group robots), MQTT commands to linked sirens, e-mail, and SMS
through a :class:`SmsGateway` a deployment plugs in (no provider is assumed). A failing
channel is logged and skipped: it never stops the others, nor the alert.

Who a notice is for (:func:`anju.alerts.service.people_for`) and how each of them wants to
be reached (:class:`~anju.alerts.models.NotifyPref`: least severity, console sound, e-mail,
SMS) are settled in the transaction, into the notice's ``recipients``; the personal
channels (e-mail, SMS) use them, the shared ones (console list, webhooks, sirens) do not.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
import logging
import re
import smtplib
import threading
import time
import urllib.request
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from email.message import EmailMessage
from typing import Any, Protocol
from urllib.parse import quote_plus, unquote, urlsplit

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from anju.alerts import service
from anju.alerts.model import Severity
from anju.alerts.models import Alert, NotifyPref
from anju.alerts.names import MODEL_NAMES
from anju.core import validation
from anju.core.crypto import FieldCipher, mask
from anju.core.errors import ValidationFailed
from anju.core.periodic import Periodic
from anju.org.models import OrgUnit

log = logging.getLogger(__name__)

LOUD = (Severity.HIGH.value, Severity.CRITICAL.value)  # the console plays a sound
SEVERITY_RANK = {s.value: i for i, s in enumerate(Severity)}
SEVERITY_NAMES = {"low": "低", "medium": "中", "high": "高", "critical": "紧急"}
TIMEOUT = 5.0
PHONE_CONTEXT = "alert_notify_prefs.phone"  # bound to the sealed phone (crypto context)
WECOM_MARKDOWN_BYTES = 4096  # WeCom refuses a longer markdown content
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")

_BAD_EMAIL = "not a valid e-mail address"
_NEED_PHONE = "give a mobile number to get SMS"
_BAD_SEVERITY = "not a valid choice"


@dataclass(frozen=True)
class Notice:
    """What channels say about an alert: values that outlive the transaction."""

    id: int
    action: str  # raised / dispatched / delegated / escalated …
    model: str
    model_name: str
    community_id: int
    community_code: str
    community_name: str
    title: str
    severity: str
    state: str
    police_only: bool
    place: str | None
    at: str  # last seen, ISO 8601 UTC
    count: int
    sirens: tuple[str, ...] = ()  # device codes of linked sirens (the draft's detail)
    # The people it is for, as their preferences allow; never part of what is broadcast.
    recipients: tuple[Recipient, ...] = ()

    @property
    def loud(self) -> bool:
        return self.severity in LOUD

    def text(self) -> str:
        """One line for chat robots, SMS and mail subjects (Chinese, as the console)."""
        where = f"｜{self.place}" if self.place else ""
        return (
            f"【{SEVERITY_NAMES.get(self.severity, self.severity)}】{self.model_name}："
            f"{self.title}（{self.community_name}{where}）"
        )

    def as_item(self) -> dict[str, Any]:
        """What the console feed and webhooks get: everything but the recipients."""
        item = asdict(self)
        del item["recipients"]
        return {**item, "sirens": list(self.sirens), "sound": self.loud}


@dataclass(frozen=True)
class Recipient:
    """A person to reach; channels use what they need of it. In a notice the phone is
    still sealed (``phone_sealed``); :func:`send` opens it just before the channels run."""

    name: str
    email: str | None = None
    phone: str | None = None
    user_id: int | None = None
    phone_sealed: bytes | None = None


def notice_of(session: Session, alert: Alert, action: str) -> Notice:
    """The notice of ``action`` on the alert, with the people it is for (see
    :func:`recipients_of`)."""
    community = session.get(OrgUnit, alert.community_id)
    sirens = alert.detail.get("sirens") if isinstance(alert.detail, dict) else None
    return Notice(
        id=alert.id,
        action=action,
        model=alert.model,
        model_name=MODEL_NAMES.get(alert.model, alert.model),
        community_id=alert.community_id,
        community_code=community.code if community else "",
        community_name=community.name if community else "",
        title=alert.title,
        severity=alert.severity.value,
        state=alert.state.value,
        police_only=alert.police_only,
        place=alert.place,
        at=alert.last_at.astimezone(dt.UTC).isoformat(),
        count=alert.count,
        sirens=tuple(str(s) for s in sirens) if isinstance(sirens, list) else (),
        recipients=tuple(recipients_of(session, alert, action)),
    )


def recipients_of(session: Session, alert: Alert, action: str) -> list[Recipient]:
    """The people a notice is for, each as their preferences allow: nobody below their
    least severity; their e-mail if they gave one; their phone if they turned SMS on.
    People who gave neither get the console only (not a recipient here)."""
    people = service.people_for(session, alert, action)
    if not people:
        return []
    prefs = {
        p.user_id: p
        for p in session.scalars(
            select(NotifyPref).where(NotifyPref.user_id.in_([u.id for u in people]))
        )
    }
    rank = SEVERITY_RANK[alert.severity.value]
    out: list[Recipient] = []
    for user in people:
        pref = prefs.get(user.id)
        if pref is None or rank < SEVERITY_RANK[pref.min_severity.value]:
            continue
        phone = pref.phone_enc if pref.sms else None
        if pref.email or phone:
            out.append(Recipient(user.display_name, pref.email, None, user.id, phone))
    return out


# --- preferences (通知偏好) -----------------------------------------------------------------


def prefs_of(session: Session, user_id: int) -> NotifyPref:
    """An account's preferences; the defaults (not stored) when it never saved any."""
    pref = session.get(NotifyPref, user_id)
    if pref is None:
        pref = NotifyPref(user_id=user_id, min_severity=Severity.LOW, console_sound=True, sms=False)
    return pref


def save_prefs(
    session: Session,
    cipher: FieldCipher,
    user_id: int,
    *,
    min_severity: str,
    console_sound: bool,
    email: str,
    sms: bool,
    phone: str,
) -> NotifyPref:
    """Check and store an account's preferences; an empty phone removes the stored one."""
    try:
        least = Severity(min_severity)
    except ValueError:
        raise ValidationFailed.one("min_severity", _BAD_SEVERITY) from None
    address = email.strip()
    if address and (len(address) > 254 or not _EMAIL.fullmatch(address)):
        raise ValidationFailed.one("email", _BAD_EMAIL)
    number = None
    if phone.strip():
        try:
            number = validation.phone(phone)
        except ValueError as exc:
            raise ValidationFailed.one("phone", str(exc)) from None
    if sms and number is None:
        raise ValidationFailed.one("phone", _NEED_PHONE)
    pref = session.get(NotifyPref, user_id)
    if pref is None:
        pref = NotifyPref(user_id=user_id)
        session.add(pref)
    pref.min_severity = least
    pref.console_sound = console_sound
    pref.email = address or None
    pref.sms = sms
    if number != (open_phone(cipher, pref) or None):  # unchanged: no new ciphertext
        pref.phone_enc = cipher.encrypt(number, PHONE_CONTEXT) if number else None
        pref.phone_masked = mask(number) if number else None
    session.flush()
    return pref


def open_phone(cipher: FieldCipher, pref: NotifyPref) -> str:
    """The account's own phone, for its own preferences page."""
    return cipher.decrypt(pref.phone_enc, PHONE_CONTEXT) if pref.phone_enc else ""


def sounds_for(pref: NotifyPref, item: dict[str, Any]) -> bool:
    """Whether the console of the account beeps for a feed item: a loud alert, at or above
    its least severity, with the sound on."""
    severity = str(item.get("severity", "low"))
    return (
        bool(item.get("sound"))
        and pref.console_sound
        and SEVERITY_RANK.get(severity, 0) >= SEVERITY_RANK[pref.min_severity.value]
    )


class Channel(Protocol):
    """One way out. ``send`` may block (network); it raises on failure."""

    name: str

    def send(self, alert: Notice, recipients: Sequence[Recipient]) -> None: ...


class ConsoleChannel:
    """The console's live alert list (SSE): in process, never blocks."""

    name = "console"

    def __init__(self, feed: Any) -> None:
        self.feed = feed

    def send(self, alert: Notice, recipients: Sequence[Recipient]) -> None:
        self.feed.publish([alert.as_item()], keys=[(alert.id, alert.action)])


def webhook_body(alert: Notice, fmt: str) -> dict[str, Any]:
    """The JSON a webhook gets: our own shape, or a DingTalk / WeCom group-robot message."""
    if fmt == "dingtalk":
        return {
            "msgtype": "markdown",
            "markdown": {"title": alert.title, "text": f"### {alert.text()}\n\n{alert.at}"},
        }
    if fmt == "wecom":
        content = f"**{alert.text()}**\n{alert.at}"
        encoded = content.encode()
        if len(encoded) > WECOM_MARKDOWN_BYTES:  # cut on a character boundary
            content = encoded[:WECOM_MARKDOWN_BYTES].decode(errors="ignore")
        return {"msgtype": "markdown", "markdown": {"content": content}}
    return {"alert": alert.as_item()}


def dingtalk_signed(url: str, secret: str, now_ms: int | None = None) -> str:
    """A DingTalk robot URL with its 加签 signature: ``timestamp`` (ms) and ``sign``, the
    base64 HMAC-SHA256 of ``"{timestamp}\n{secret}"`` keyed by the secret, URL-encoded.
    DingTalk refuses a timestamp more than an hour off, so each request signs anew."""
    timestamp = str(now_ms if now_ms is not None else int(time.time() * 1000))
    digest = hmac.new(secret.encode(), f"{timestamp}\n{secret}".encode(), hashlib.sha256)
    sign = quote_plus(base64.b64encode(digest.digest()).decode())
    joiner = "&" if urlsplit(url).query else "?"
    return f"{url}{joiner}timestamp={timestamp}&sign={sign}"


class RobotRefused(RuntimeError):
    """A DingTalk or WeCom robot answered HTTP 200 with a non-zero ``errcode``."""


@dataclass
class WebhookChannel:
    """POST the alert as JSON to a URL (generic, DingTalk or WeCom robot format). With a
    ``secret``, DingTalk URLs are signed (加签). The robots answer 200 even when they refuse
    (bad signature, bad key, too long): their ``errcode`` is checked and a refusal raised."""

    url: str
    format: str = "json"
    min_severity: str = "low"
    timeout: float = TIMEOUT
    secret: str | None = field(default=None, repr=False)
    name: str = "webhook"

    def send(self, alert: Notice, recipients: Sequence[Recipient]) -> None:
        if SEVERITY_RANK[alert.severity] < SEVERITY_RANK[self.min_severity]:
            return
        body = json.dumps(webhook_body(alert, self.format), ensure_ascii=False).encode()
        url = self.url
        if self.format == "dingtalk" and self.secret:
            url = dingtalk_signed(url, self.secret)
        request = urllib.request.Request(
            url,
            data=body,
            method="POST",
            headers={"Content-Type": "application/json; charset=utf-8"},
        )
        with urllib.request.urlopen(request, timeout=self.timeout) as response:
            answer = response.read()
        if self.format in ("dingtalk", "wecom"):
            try:
                code = json.loads(answer or b"{}").get("errcode", 0)
            except (ValueError, AttributeError):
                code = None
            if code != 0:
                raise RobotRefused(f"{self.format} robot refused the message: errcode {code}")


@dataclass
class MqttSirenChannel:
    """Command linked sirens (``anju/v1/{community}/{device}/commands``) for loud alerts."""

    node_or_client: Any
    name: str = "mqtt"

    def send(self, alert: Notice, recipients: Sequence[Recipient]) -> None:
        if not alert.loud or alert.action != "raised":
            return
        from anju.events.adapters.mqtt import send_command

        for device in alert.sirens:
            command = {"command": "siren", "alert_id": alert.id, "severity": alert.severity}
            send_command(self.node_or_client, alert.community_code, device, command)


@dataclass
class EmailChannel:
    """E-mail through an SMTP server (``smtp://[user:pass@]host:port``)."""

    url: str
    sender: str
    to: Sequence[str] = ()
    timeout: float = TIMEOUT
    name: str = "email"

    def send(self, alert: Notice, recipients: Sequence[Recipient]) -> None:
        addresses = list(dict.fromkeys([*self.to, *(r.email for r in recipients if r.email)]))
        if not addresses:
            return
        parts = urlsplit(self.url)
        message = EmailMessage()
        message["Subject"] = alert.text()
        message["From"] = self.sender
        message["To"] = ", ".join(addresses)
        message.set_content(f"{alert.text()}\n{alert.at}\n#{alert.id}")
        smtp_class = smtplib.SMTP_SSL if parts.scheme == "smtps" else smtplib.SMTP
        with smtp_class(parts.hostname or "localhost", parts.port or 25, timeout=self.timeout) as s:
            if parts.username:
                s.login(unquote(parts.username), unquote(parts.password or ""))
            s.send_message(message)


class SmsGateway(Protocol):
    """A provider's SMS API, supplied by the deployment."""

    def send(self, phone: str, text: str) -> None: ...


@dataclass
class SmsChannel:
    """SMS to recipients with a phone, through whatever gateway is plugged in."""

    gateway: SmsGateway
    name: str = "sms"

    def send(self, alert: Notice, recipients: Sequence[Recipient]) -> None:
        for r in recipients:
            if r.phone:
                self.gateway.send(r.phone, alert.text())


@dataclass
class Notifier:
    """The channels of a node, with a failing channel isolated from the rest."""

    channels: list[Channel] = field(default_factory=list)

    def send(self, notices: Sequence[Notice], recipients: Sequence[Recipient] = ()) -> int:
        """Send each notice on each channel, to its own recipients and ``recipients``; the
        number of failures (logged)."""
        failed = 0
        for notice in notices:
            people = [*notice.recipients, *recipients]
            for channel in self.channels:
                try:
                    channel.send(notice, people)
                except Exception:  # one channel's outage must not stop the others
                    failed += 1
                    log.exception("alert %d: %s channel failed", notice.id, channel.name)
        return failed


def external_channels(node: Any) -> list[Channel]:
    """The channels that leave the process, from the node's settings."""
    settings = node.settings
    channels: list[Channel] = [
        WebhookChannel(
            url=h["url"],
            format=h.get("format", "json"),
            min_severity=h.get("min_severity", "low"),
        )
        for h in settings.alert_webhooks
    ]
    if settings.mqtt_url:
        channels.append(MqttSirenChannel(node))
    if settings.alert_smtp_url:
        channels.append(
            EmailChannel(
                settings.alert_smtp_url, settings.alert_email_from, settings.alert_email_to
            )
        )
    # SMS: a deployment that has a provider sets ``node.sms_gateway`` (an SmsGateway).
    gateway = getattr(node, "sms_gateway", None)
    if gateway is not None:
        channels.append(SmsChannel(gateway))
    return channels


def send(node: Any, notices: Sequence[Notice], recipients: Sequence[Recipient] = ()) -> None:
    """After commit: the console at once; the outside channels on a thread of their own, so
    a slow webhook never holds up the pipeline or the request."""
    if not notices:
        return
    notices = [_opened(node.cipher, n) for n in notices]
    Notifier([ConsoleChannel(node.alert_feed)]).send(notices, recipients)
    outside = external_channels(node)
    if outside:
        threading.Thread(
            target=Notifier(outside).send,
            args=(list(notices), list(recipients)),
            name="anju-alert-notify",
            daemon=True,
        ).start()


def _opened(cipher: FieldCipher, notice: Notice) -> Notice:
    """The notice with its recipients' sealed phones opened for the SMS channel."""
    if not any(r.phone_sealed for r in notice.recipients):
        return notice
    people = []
    for r in notice.recipients:
        phone = None
        if r.phone_sealed:
            try:
                phone = cipher.decrypt(r.phone_sealed, PHONE_CONTEXT)
            except Exception:  # sealed under another key: this person gets no SMS
                log.warning(
                    "alert %d: the phone of account %s cannot be read", notice.id, r.user_id
                )
        people.append(replace(r, phone=phone, phone_sealed=None))
    return replace(notice, recipients=tuple(people))


class AlertRelay:
    """Alerts raised in other processes onto this process's console feed.

    ``anju worker rules`` (and, with the models in the node, each ``anju worker mqtt``)
    raises alerts in its own process; the console's live list and its sound are served
    from the web server's. Every ``every`` seconds this reads the alerts created since the
    last look and publishes, one look later, those this process has not published itself
    (the wait lets a local alert's own announcement, just after its commit, go first).
    Only new alerts: merges and steps are seen when the list is opened."""

    def __init__(self, node: Any, every: float = 1.0) -> None:
        self.node = node
        self.every = every
        self.last: int | None = None
        self.relayed = 0
        self._waiting: list[int] = []
        self._thread = Periodic("anju-alert-relay", every, self.poll)

    def poll(self) -> int:
        """One look; returns how many alerts it published."""
        with self.node.sessions() as session:
            if self.last is None:
                self.last = session.scalar(select(func.coalesce(func.max(Alert.id), 0)))
                return 0
            due, self._waiting = (
                self._waiting,
                list(
                    session.scalars(select(Alert.id).where(Alert.id > self.last).order_by(Alert.id))
                ),
            )
            if self._waiting:
                self.last = self._waiting[-1]
            feed = self.node.alert_feed
            notices = [
                notice_of(session, alert, "raised")
                for alert in session.scalars(select(Alert).where(Alert.id.in_(due)))
                if not feed.published((alert.id, "raised"))
            ] if due else []  # fmt: skip
        if notices:
            feed.publish([n.as_item() for n in notices], keys=[(n.id, n.action) for n in notices])
            self.relayed += len(notices)
        return len(notices)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._thread.stop()
