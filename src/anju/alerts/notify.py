"""Notification channels (预警推送): every way an alert leaves the node, behind one interface.

A :class:`Notice` is a plain snapshot of an alert taken inside its transaction; after the
commit :func:`send` hands it to each channel — console live feed (SSE), webhooks (generic
JSON, DingTalk and WeCom group robots), MQTT commands to linked sirens, e-mail, and SMS
through a :class:`SmsGateway` a deployment plugs in (no provider is assumed). A failing
channel is logged and skipped: it never stops the others, nor the alert.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import smtplib
import threading
import urllib.request
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from email.message import EmailMessage
from typing import Any, Protocol
from urllib.parse import unquote, urlsplit

from sqlalchemy.orm import Session

from anju.alerts.model import Severity
from anju.alerts.models import Alert
from anju.alerts.names import MODEL_NAMES
from anju.org.models import OrgUnit

log = logging.getLogger(__name__)

LOUD = (Severity.HIGH.value, Severity.CRITICAL.value)  # the console plays a sound
SEVERITY_RANK = {s.value: i for i, s in enumerate(Severity)}
SEVERITY_NAMES = {"low": "低", "medium": "中", "high": "高", "critical": "紧急"}
TIMEOUT = 5.0


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
        return {**asdict(self), "sirens": list(self.sirens), "sound": self.loud}


@dataclass(frozen=True)
class Recipient:
    """A person to reach; channels use what they need of it."""

    name: str
    email: str | None = None
    phone: str | None = None


def notice_of(session: Session, alert: Alert, action: str) -> Notice:
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
        self.feed.publish([alert.as_item()])


def webhook_body(alert: Notice, fmt: str) -> dict[str, Any]:
    """The JSON a webhook gets: our own shape, or a DingTalk / WeCom group-robot message."""
    if fmt == "dingtalk":
        return {
            "msgtype": "markdown",
            "markdown": {"title": alert.title, "text": f"### {alert.text()}\n\n{alert.at}"},
        }
    if fmt == "wecom":
        return {"msgtype": "markdown", "markdown": {"content": f"**{alert.text()}**\n{alert.at}"}}
    return {"alert": alert.as_item()}


@dataclass
class WebhookChannel:
    """POST the alert as JSON to a URL (generic, DingTalk or WeCom robot format)."""

    url: str
    format: str = "json"
    min_severity: str = "low"
    timeout: float = TIMEOUT
    name: str = "webhook"

    def send(self, alert: Notice, recipients: Sequence[Recipient]) -> None:
        if SEVERITY_RANK[alert.severity] < SEVERITY_RANK[self.min_severity]:
            return
        body = json.dumps(webhook_body(alert, self.format), ensure_ascii=False).encode()
        request = urllib.request.Request(
            self.url,
            data=body,
            method="POST",
            headers={"Content-Type": "application/json; charset=utf-8"},
        )
        with urllib.request.urlopen(request, timeout=self.timeout) as response:
            response.read()


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
        addresses = [*self.to, *(r.email for r in recipients if r.email)]
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
        """Send each notice on each channel; the number of failures (logged)."""
        failed = 0
        for notice in notices:
            for channel in self.channels:
                try:
                    channel.send(notice, recipients)
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
    return channels


def send(node: Any, notices: Sequence[Notice], recipients: Sequence[Recipient] = ()) -> None:
    """After commit: the console at once; the outside channels on a thread of their own, so
    a slow webhook never holds up the pipeline or the request."""
    if not notices:
        return
    Notifier([ConsoleChannel(node.alert_feed)]).send(notices, recipients)
    outside = external_channels(node)
    if outside:
        threading.Thread(
            target=Notifier(outside).send,
            args=(list(notices), list(recipients)),
            name="anju-alert-notify",
            daemon=True,
        ).start()
