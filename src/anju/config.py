"""One typed settings tree, read from ``ANJU_*`` environment variables."""

from __future__ import annotations

import os
from collections.abc import Mapping
from functools import cached_property
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

# Variables read by the test suite, not by the node itself.
EXTRA_ENVIRONMENT_KEYS = frozenset({"ANJU_TEST_PG", "ANJU_TEST_OUTPUT"})


class Settings(BaseSettings):
    """Settings of one Anju node. Unknown ``ANJU_*`` keys are refused."""

    model_config = SettingsConfigDict(
        env_prefix="ANJU_",
        extra="forbid",
        frozen=True,
    )

    data_dir: Path = Field(
        default=Path("anju-data"),
        description="Folder holding the embedded database, the key file and the blob store.",
    )
    database_url: str | None = Field(
        default=None,
        description="SQLAlchemy URL; default is SQLite in the data folder. "
        "PostgreSQL: postgresql+psycopg://user@host/db",
    )
    secret_key: str | None = Field(
        default=None,
        description="Base64 32-byte master key for sensitive fields; default: the key file "
        "in the data folder.",
        repr=False,
    )
    admin_password: str | None = Field(
        default=None,
        description="Password for the first admin account created by 'anju init'.",
        repr=False,
    )
    timezone: str = Field(
        default="Asia/Shanghai", description="Time zone used to show times to people."
    )
    language: Literal["zh_CN", "en"] = Field(
        default="zh_CN", description="Default console language."
    )
    host: str = Field(default="127.0.0.1", description="Address the web server binds to.")
    port: int = Field(default=8000, ge=1, le=65535, description="Port of the web server.")
    session_hours: int = Field(
        default=12, ge=1, le=24 * 30, description="Console session lifetime in hours."
    )
    secure_cookies: bool | None = Field(
        default=None,
        description="Mark cookies Secure; default: only when the request came over HTTPS.",
    )
    login_max_failures: int = Field(
        default=5,
        ge=1,
        le=100,
        description="Failed sign-ins of one account within the window that lock it.",
    )
    login_ip_max_failures: int = Field(
        default=20,
        ge=1,
        le=10_000,
        description="Failed sign-ins from one address within the window that block it.",
    )
    login_window_minutes: int = Field(
        default=15, ge=1, le=24 * 60, description="Window in which failed sign-ins are counted."
    )
    login_lockout_minutes: int = Field(
        default=15,
        ge=1,
        le=24 * 60,
        description="How long a locked account or blocked address is refused.",
    )
    require_totp_for_police: bool = Field(
        default=False,
        description="Police roles must set up a second factor (TOTP) before using the console.",
    )
    page_size: int = Field(default=50, ge=5, le=500, description="Rows per console page.")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(default="INFO")
    onenet_token: str | None = Field(
        default=None,
        description="The token set on the OneNET HTTP push: pushes are checked against it.",
        repr=False,
    )
    ctwing_token: str | None = Field(
        default=None,
        description="A secret in the CTWing subscription URL as ?token=… (CTWing signs nothing).",
        repr=False,
    )
    mqtt_url: str | None = Field(
        default=None,
        description="MQTT broker to take device events from, e.g. mqtt://127.0.0.1:1883 or "
        "mqtts://user:pass@broker:8883 (?version=3.1.1 to force MQTT 3.1.1); "
        "unset: no MQTT consumer.",
        repr=False,
    )
    mqtt_group: str = Field(
        default="anju",
        min_length=1,
        max_length=64,
        pattern=r"^[\w.\-]+$",
        description="Shared-subscription group: consumers in one group split the messages.",
    )
    rules: Literal["node", "worker"] = Field(
        default="node",
        description="Where the alert models run: 'node' in every process that stores events "
        "(the embedded default); 'worker' only in 'anju worker rules' processes, which follow "
        "the event store, so ingest processes do not run them.",
    )
    image_retention_days: int = Field(
        default=90,
        ge=1,
        le=3650,
        description="Days an event image (face or vehicle capture) is kept; "
        "'anju retention run' deletes older ones.",
    )
    image_retention_by_kind: dict[str, int] = Field(
        default_factory=dict,
        description='Per-kind image retention in days, as JSON: {"capture.face": 30}; '
        "kinds not named keep image_retention_days.",
    )
    event_retention_days: int | None = Field(
        default=None,
        ge=1,
        le=36500,
        description="Days event rows are kept ('anju retention run' deletes older ones); "
        "unset: kept for ever.",
    )
    face_threshold: float = Field(
        default=0.6,
        gt=0,
        le=2,
        description="Largest encoding distance at which a face matches an enrolled person or "
        "watchlist entry (dlib: 0.6; lower is stricter).",
    )
    face_stranger_threshold: float = Field(
        default=0.55,
        gt=0,
        le=2,
        description="Largest distance at which an unknown face joins an existing stranger "
        "cluster instead of starting a new one (photos of one person measured 0.04-0.53 apart, "
        "of different people 0.66 and more).",
    )
    face_stranger_retention_days: int = Field(
        default=90,
        ge=1,
        le=3650,
        description="Days a stranger cluster with no new sighting is kept; "
        "'anju retention run' deletes older ones with their encodings.",
    )
    alert_webhooks: list[dict[str, str]] = Field(
        default_factory=list,
        description="Where alerts are posted, as JSON: "
        '[{"url": "https://…", "format": "json|dingtalk|wecom", "min_severity": "high"}] '
        "(format json by default; min_severity low by default; a DingTalk robot with "
        '加签 security takes its "secret").',
        repr=False,
    )
    alert_smtp_url: str | None = Field(
        default=None,
        description="SMTP server that e-mails alerts, smtp://[user:pass@]host:port; "
        "unset: no e-mail.",
        repr=False,
    )
    alert_email_from: str = Field(
        default="anju@localhost", description="Sender address of alert e-mails."
    )
    alert_email_to: list[str] = Field(
        default_factory=list, description='Addresses that get every alert, as JSON: ["a@b"].'
    )

    @field_validator("image_retention_by_kind")
    @classmethod
    def _known_kinds(cls, value: dict[str, int]) -> dict[str, int]:
        from anju.events.model import Kind

        known = {k.value for k in Kind}
        for kind, days in value.items():
            if kind not in known:
                raise ValueError(f"unknown event kind {kind!r}")
            if not 1 <= days <= 3650:
                raise ValueError(f"{kind}: days must be between 1 and 3650")
        return value

    @field_validator("alert_webhooks")
    @classmethod
    def _webhooks(cls, value: list[dict[str, str]]) -> list[dict[str, str]]:
        severities = ("low", "medium", "high", "critical")
        for i, hook in enumerate(value):
            if not str(hook.get("url", "")).startswith(("http://", "https://")):
                raise ValueError(f"webhook {i}: url must start with http:// or https://")
            if hook.get("format", "json") not in ("json", "dingtalk", "wecom"):
                raise ValueError(f"webhook {i}: format must be json, dingtalk or wecom")
            if hook.get("min_severity", "low") not in severities:
                raise ValueError(f"webhook {i}: min_severity must be one of {severities}")
            unknown = set(hook) - {"url", "format", "min_severity", "secret"}
            if unknown:
                raise ValueError(f"webhook {i}: unknown keys {sorted(unknown)}")
        return value

    @field_validator("alert_smtp_url")
    @classmethod
    def _smtp_url(cls, value: str | None) -> str | None:
        if value and not value.startswith(("smtp://", "smtps://")):
            raise ValueError("use smtp://host:port or smtps://host:port")
        return value or None

    @field_validator("mqtt_url")
    @classmethod
    def _broker_url(cls, value: str | None) -> str | None:
        if value and not value.startswith(("mqtt://", "mqtts://")):
            raise ValueError("use mqtt://host:port or mqtts://host:port")
        return value or None

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r}") from exc
        return value

    @field_validator("database_url")
    @classmethod
    def _supported_database(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if not value.startswith(("sqlite", "postgresql")):
            raise ValueError("only sqlite:// and postgresql+psycopg:// URLs are supported")
        if value.startswith("postgresql") and not value.startswith("postgresql+psycopg"):
            raise ValueError("use the psycopg 3 driver: postgresql+psycopg://…")
        return value

    @cached_property
    def resolved_database_url(self) -> str:
        """The database URL in force, defaulting to SQLite inside the data folder."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'anju.db').resolve()}"

    @property
    def key_file(self) -> Path:
        return self.data_dir / "secret.key"

    @property
    def blob_dir(self) -> Path:
        return self.data_dir / "blobs"


class UnknownSettingError(ValueError):
    """An ``ANJU_*`` variable names no setting (a typo would otherwise be ignored)."""


def unknown_environment_keys(environ: Mapping[str, str] | None = None) -> list[str]:
    """``ANJU_*`` variables in the environment that name no setting."""
    environ = os.environ if environ is None else environ
    known = {f"ANJU_{name.upper()}" for name in Settings.model_fields}
    known |= EXTRA_ENVIRONMENT_KEYS
    return sorted(
        key for key in environ if key.upper().startswith("ANJU_") and key.upper() not in known
    )


def load_settings(**overrides: object) -> Settings:
    """Read settings from the environment, with explicit overrides (used by the CLI).

    Unknown ``ANJU_*`` variables are refused so that a misspelt setting never goes unnoticed.
    """
    unknown = unknown_environment_keys()
    if unknown:
        raise UnknownSettingError(
            "unknown setting(s): " + ", ".join(unknown) + " (see 'anju check-config --help')"
        )
    return Settings(**overrides)  # type: ignore[arg-type]
