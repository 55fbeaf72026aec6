"""What every alert model shares: the parameter base class, the context a model runs in, and
small helpers for time windows.

A model is a plain class (no database, no wall clock): the engine hands it :class:`Seen`
events and ticks with a :class:`RuleCtx`; it answers with :class:`AlertDraft` values.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import MutableMapping
from dataclasses import dataclass
from typing import Any, ClassVar
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from anju.alerts.facts import Facts, History
from anju.alerts.model import AlertDraft, Seen, Severity


class ModelParams(BaseModel):
    """A model's configuration for one community: what every model has, plus its own
    thresholds in subclasses. Defaults are the model's; organisation units override them."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = Field(True, description="whether the model runs in the community")
    severity: Severity = Field(Severity.MEDIUM, description="severity of the alerts it raises")
    recipients: tuple[str, ...] = Field(
        (),
        description="who the alert is dispatched to: a role group (officer, grid, property), "
        "a role code in one, or user:<username>; the first must acknowledge, the others are "
        "copied (empty: the service's default)",
    )

    @field_validator("recipients")
    @classmethod
    def _recipients_name_someone(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        from anju.alerts.service import recipient_target  # the service imports the models

        unknown = [entry for entry in value if recipient_target(entry) is None]
        if unknown:
            raise ValueError(f"not a role group, role or user:<username>: {', '.join(unknown)}")
        return value


class Window(BaseModel):
    """A daily time window in local time, e.g. 22:00–06:00 (it may cross midnight)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    start: dt.time
    end: dt.time

    @model_validator(mode="after")
    def _not_empty(self) -> Window:
        if self.start == self.end:
            raise ValueError("the window's start and end must differ")
        return self

    def contains(self, at: dt.datetime, tz: ZoneInfo) -> bool:
        local = at.astimezone(tz).time()
        if self.start < self.end:
            return self.start <= local < self.end
        return local >= self.start or local < self.end


@dataclass
class RuleCtx:
    """What a model may use: the time, its configuration, its own state, registry facts and
    recent history. ``state`` belongs to the model in this community and lives in memory
    (rebuilt from the event store on start, see :mod:`anju.alerts.engine`)."""

    now: dt.datetime
    community_id: int
    config: Any  # the model's ModelParams subclass
    state: MutableMapping[str, Any]
    facts: Facts
    history: History
    tz: ZoneInfo


class AlertModel:
    """Base of the alert models: override ``on_event`` and/or ``on_tick``.

    ``kinds`` are the event kinds the model wants (the engine routes by kind, so a model is
    not called for events it would ignore); ``replay`` is how far back its state reaches,
    for the rebuild on start (None: it keeps no state built from events).
    """

    code: ClassVar[str]
    name: ClassVar[str]  # Chinese, for people
    Params: ClassVar[type[ModelParams]] = ModelParams
    kinds: ClassVar[frozenset[str]] = frozenset()
    replay: ClassVar[dt.timedelta | None] = None

    def on_event(self, event: Seen, ctx: RuleCtx) -> list[AlertDraft]:
        return []

    def on_tick(self, now: dt.datetime, ctx: RuleCtx) -> list[AlertDraft]:
        return []

    def draft(
        self, ctx: RuleCtx, fingerprint: str, title: str, at: dt.datetime, **kw: Any
    ) -> AlertDraft:
        """A draft of this model in ctx's community with the configured severity."""
        kw.setdefault("severity", ctx.config.severity)
        if ctx.config.recipients:
            kw.setdefault("detail", {})["recipients"] = list(ctx.config.recipients)
        return AlertDraft(
            model=self.code,
            community_id=ctx.community_id,
            fingerprint=f"{self.code}:{fingerprint}",
            title=title,
            at=at,
            **kw,
        )


def from_event(event: Seen) -> dict[str, Any]:
    """The draft fields an event gives: subject, person, vehicle, house, device, evidence."""
    return {
        "subject_type": event.subject_type,
        "subject_value": event.subject_value,
        "person_id": event.person_id,
        "vehicle_id": event.vehicle_id,
        "house_id": event.house_id,
        "device_id": event.device_id,
        "evidence": (event.id,),
    }


def day_key(at: dt.datetime, tz: ZoneInfo) -> str:
    """The local date, for fingerprints such as "per key person per day"."""
    return at.astimezone(tz).date().isoformat()
