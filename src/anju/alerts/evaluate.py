"""``anju evaluate``: proves the alert models on a simulated community with planted
anomalies (:mod:`anju.sim.anomalies`) and prints precision, recall and detection delay.

A fresh node in a temporary data folder lives N days through the real pipeline in-process,
in time order: every five simulated minutes the events of the window go through
:func:`anju.events.api.deliver` (as a gateway account would send them; the rules engine
runs after commit like for HTTP), then the device-health tick runs with the simulated time
(it ticks the rules engine and escalation too). The alerts are read back from the alerts
table — what people would see, after the alert service merged drafts by fingerprint.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import logging
import os
import statistics
import tempfile
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table
from sqlalchemy import select

from anju.alerts.models import Alert
from anju.alerts.rules import MODELS
from anju.alerts.watchlist import MatchType, WatchList, add_entry
from anju.core.scope import Actor
from anju.devices.models import Device
from anju.events import ticker, wire
from anju.events.api import Sender, deliver
from anju.sim.anomalies import Truth, merged, plant
from anju.sim.community import CommunityConfig, build_community
from anju.sim.life import Life
from anju.sim.runner import prepare

log = logging.getLogger(__name__)
console = Console()

TARGET = 0.95
STEP = dt.timedelta(minutes=5)
# Alerts first seen this soon after the run starts are about the time before it (the
# previous night's patrol rounds, which nobody lived): not scored, and no truth lies there.
WARMUP = dt.timedelta(hours=2)
DEFAULT_DELAY = dt.timedelta(minutes=10)
# How late after a truth's end an alert still counts as finding it: absence rules judge
# on the tick after a limit passes, the offline check two heartbeats after the last one.
ALLOWED_DELAY = {
    "elderly_inactive": dt.timedelta(hours=14),
    "device_health": dt.timedelta(minutes=30),
    "rental_unregistered": dt.timedelta(hours=1),
}
DEVICE_KEYED = frozenset(
    {"fire", "emergency", "ebike", "perimeter", "crowd", "device_health", "tailgating",
     "suspicious_entry"}
)  # fmt: skip
PERSON_KEYED = frozenset({"elderly_inactive", "night_entry", "key_person"})
HOUSE_KEYED = frozenset({"rental_unregistered", "group_rental"})


@dataclass(frozen=True)
class Raised:
    """An alert as scored: its model, the subject key (as :class:`Truth` names it), and
    when it was first seen."""

    model: str
    key: str
    at: dt.datetime


@dataclass(frozen=True)
class Score:
    """One model's figures (None where there is nothing to divide by)."""

    model: str
    truths: int
    alerts: int
    precision: float | None
    recall: float | None
    median_delay_s: float | None

    @property
    def met(self) -> bool | None:
        """Whether both targets are met (None: no scenario)."""
        if self.truths == 0:
            return None
        return (self.precision or 0) >= TARGET and (self.recall or 0) >= TARGET

    def as_dict(self) -> dict[str, Any]:
        return {
            "truths": self.truths,
            "alerts": self.alerts,
            "precision": self.precision,
            "recall": self.recall,
            "median_delay_s": self.median_delay_s,
            "met": self.met,
            "scenario": self.truths > 0,
        }


def matches(truth: Truth, alert: Raised) -> bool:
    """Same model and subject, first seen within [start, end + the model's allowed delay]."""
    delay = ALLOWED_DELAY.get(truth.model, DEFAULT_DELAY)
    return (
        truth.model == alert.model
        and truth.key == alert.key
        and truth.start <= alert.at <= truth.end + delay
    )


def score(
    models: Iterable[str], truths: Sequence[Truth], alerts: Sequence[Raised]
) -> dict[str, Score]:
    """Per model: precision (alerts matching a truth / alerts), recall (truths matched /
    truths) and the median delay from a truth's start to its first matching alert."""
    out: dict[str, Score] = {}
    for model in models:
        ts = [t for t in truths if t.model == model]
        als = [a for a in alerts if a.model == model]
        good = sum(any(matches(t, a) for t in ts) for a in als)
        delays: list[float] = []
        for t in ts:
            found = [a.at for a in als if matches(t, a)]
            if found:
                delays.append((min(found) - t.start).total_seconds())
        out[model] = Score(
            model,
            len(ts),
            len(als),
            good / len(als) if als else None,
            len(delays) / len(ts) if ts else None,
            statistics.median(delays) if delays else None,
        )
    return out


def alert_key(alert: Alert, codes: dict[int, str]) -> str:
    """The subject an alert names, the way truths name it."""
    if alert.model in DEVICE_KEYED:
        return codes.get(alert.device_id or 0, "")
    if alert.model in PERSON_KEYED:
        return str(alert.person_id)
    if alert.model in HOUSE_KEYED:
        return str(alert.house_id)
    return (alert.subject_value or "").upper()


@dataclass
class Run:
    """What one evaluation run produced."""

    scores: dict[str, Score]
    events: int
    seconds: float
    lookalikes: dict[str, int]
    truths: list[Truth]
    raised: list[Raised]


def run(
    *,
    days: int,
    seed: int,
    residents: int,
    database_url: str | None = None,
    data_dir: Path | None = None,
) -> Run:
    """Build, live, plant, score (see the module docstring)."""
    from anju.bootstrap import bootstrap, initialise
    from anju.config import Settings

    started = time.monotonic()
    folder = data_dir or Path(tempfile.mkdtemp(prefix="anju-evaluate-"))
    key = base64.b64encode(os.urandom(32)).decode()
    node = bootstrap(Settings(data_dir=folder, database_url=database_url, secret_key=key))
    try:
        initialise(node, admin_password=base64.b64encode(os.urandom(12)).decode())
        with node.unit_of_work() as ctx:
            report = build_community(ctx, CommunityConfig(seed=seed, residents=residents))
        community_id = report.community_id
        world = prepare(node, report.community_code)
        life = Life(world, seed)
        today = dt.datetime.now(life.tz).date()
        first = today - dt.timedelta(days=days)
        lived = list(life.days(first, today - dt.timedelta(days=1)))
        scenario = plant(life, lived, community_id)
        with node.unit_of_work() as ctx:
            for watch in scenario.watches:
                add_entry(
                    ctx.session, org_unit_id=community_id,
                    list_kind=WatchList(watch.list_kind), category=watch.category,
                    reason="evaluate", match_type=MatchType(watch.match_type), value=watch.value,
                )  # fmt: skip
        events = merged(lived, scenario)
        start = dt.datetime.combine(first, dt.time(), life.tz).astimezone(dt.UTC)
        _live(node, events, start, start + dt.timedelta(days=days))
        with node.sessions() as session:
            codes = {r.id: r.code for r in session.execute(select(Device.id, Device.code))}
            raised = [
                Raised(a.model, alert_key(a, codes), _aware(a.first_at))
                for a in session.scalars(select(Alert).where(Alert.community_id == community_id))
                if _aware(a.first_at) >= start + WARMUP
            ]
        truths = [t for t in scenario.truths if t.start >= start + WARMUP]
        return Run(
            score(sorted(MODELS), truths, raised),
            len(events),
            time.monotonic() - started,
            dict(scenario.lookalikes),
            truths,
            raised,
        )
    finally:
        node.dispose()


def _aware(at: dt.datetime) -> dt.datetime:
    return at if at.tzinfo is not None else at.replace(tzinfo=dt.UTC)


SENDER = Sender(None, Actor.system("evaluate"))  # a gateway account: any device in scope


def _live(node: Any, events: Sequence[Any], start: dt.datetime, end: dt.datetime) -> None:
    """Deliver the events window by window in time order, ticking after each window."""
    i, now = 0, start
    while now < end:
        now += STEP
        window: list[dict[str, Any]] = []
        while i < len(events) and events[i].at < now:
            window.append(events[i].body)
            i += 1
        for chunk in range(0, len(window), wire.MAX_BATCH):
            outcomes = wire.parse_batch(window[chunk : chunk + wire.MAX_BATCH], now)
            deliver(node, outcomes, SENDER)
        ticker.tick(node, now)


# --- the command --------------------------------------------------------------------------


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f}"


def _delay(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    return f"{seconds / 60:.1f} min" if seconds < 7200 else f"{seconds / 3600:.1f} h"


def table(result: Run, days: int, seed: int) -> Table:
    """The scores as a rich table."""
    out = Table(title=f"alert models · {days} days · seed {seed} · {result.events} events")
    for column in ("model", "truths", "alerts", "precision", "recall", "median delay", "target"):
        out.add_column(column, justify="left" if column == "model" else "right")
    for model, s in result.scores.items():
        met = s.met
        verdict = (
            "[dim]no scenario[/dim]"
            if met is None
            else ("[green]met[/green]" if met else "[red]NOT met[/red]")
        )
        out.add_row(model, str(s.truths), str(s.alerts), _pct(s.precision), _pct(s.recall),
                    _delay(s.median_delay_s), verdict)  # fmt: skip
    return out


def evaluate_command(
    days: Annotated[int, typer.Option(min=1, max=60, help="Simulated days.")] = 14,
    seed: Annotated[int, typer.Option(help="Random seed (community, life and anomalies).")] = 1,
    residents: Annotated[int, typer.Option(min=30, max=5000, help="People living there.")] = 300,
    database_url: Annotated[
        str | None, typer.Option(help="A database to use instead of a temporary SQLite file.")
    ] = None,
    json_output: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Measure the alert models on a simulated community with planted anomalies."""
    logging.basicConfig(level=logging.WARNING)
    result = run(days=days, seed=seed, residents=residents, database_url=database_url)
    if json_output:
        print(json.dumps({m: s.as_dict() for m, s in result.scores.items()}, ensure_ascii=False))
        return
    console.print(table(result, days, seed))
    looks = ", ".join(f"{k} ×{n}" for k, n in sorted(result.lookalikes.items()))
    console.print(f"look-alikes planted: {looks}")
    console.print(f"{result.seconds:.0f} s")
