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
import dataclasses
import datetime as dt
import json
import logging
import os
import random
import statistics
import tempfile
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table
from sqlalchemy import select

from anju.alerts.models import Alert, AlertEvidence
from anju.alerts.rules import MODELS
from anju.alerts.watchlist import MatchType, WatchList, add_entry
from anju.core.scope import Actor
from anju.devices.models import Device, DeviceKind
from anju.events import ticker, wire
from anju.events.api import Sender, deliver
from anju.events.models import StoredEvent
from anju.registry import schemas
from anju.registry import service as registry
from anju.sim.anomalies import Scenario, Truth, merged, plant
from anju.sim.community import CommunityConfig, build_community
from anju.sim.faces import MODEL as FACE_MODEL
from anju.sim.life import Day, Life, by_device
from anju.sim.runner import prepare

log = logging.getLogger(__name__)
console = Console()

TARGET = 0.95
STEP = dt.timedelta(minutes=5)
# Alerts first seen this soon after the run starts are about the time before it (the
# previous night's patrol rounds, which nobody lived): not scored, and no truth lies there.
WARMUP = dt.timedelta(hours=2)
DEFAULT_DELAY = dt.timedelta(minutes=10)
# Every lived-in house has a smart water meter here (the simulated community fits them only
# for the elderly living alone by default): the group-rental model's meter half compares a
# house's water use with the community's and needs at least ten metered houses to do so.
WATER_METER_SHARE = 1.0
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
    """An alert as scored: its model, the subject key (as :class:`Truth` names it), when
    it was first seen, and the times of the events it holds as evidence (repeats merged
    into it: a second e-bike at the same door the same day)."""

    model: str
    key: str
    at: dt.datetime
    seen: tuple[dt.datetime, ...] = ()


@dataclass(frozen=True)
class Score:
    """One model's figures (None where there is nothing to divide by)."""

    model: str
    truths: int
    alerts: int
    precision: float | None
    recall: float | None
    median_delay_s: float | None
    lookalikes: int = 0  # look-alikes planted for the model (decoys)
    fooled: int = 0  # of them, how many an alert landed on

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
            "lookalikes": self.lookalikes,
            "fooled": self.fooled,
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


def found(truth: Truth, alert: Raised) -> dt.datetime | None:
    """When the alert shows the truth: its first sighting when it :func:`matches`, else the
    first of its evidence events within [start, end + allowed delay] (a repeat merged into
    the open alert is found too — people see it there); None when it does not."""
    if matches(truth, alert):
        return alert.at
    if truth.model != alert.model or truth.key != alert.key:
        return None
    delay = ALLOWED_DELAY.get(truth.model, DEFAULT_DELAY)
    return min((t for t in alert.seen if truth.start <= t <= truth.end + delay), default=None)


def score(
    models: Iterable[str],
    truths: Sequence[Truth],
    alerts: Sequence[Raised],
    decoys: Sequence[Truth] = (),
) -> dict[str, Score]:
    """Per model: precision (alerts raised for a truth / alerts), recall (truths an alert
    shows / truths, see :func:`found`) and the median delay from a truth's start to when an
    alert first showed it; and how many of its look-alikes (``decoys``, named like truths)
    an alert landed on."""
    out: dict[str, Score] = {}
    for model in models:
        ts = [t for t in truths if t.model == model]
        als = [a for a in alerts if a.model == model]
        ds = [d for d in decoys if d.model == model]
        fooled = sum(any(found(d, a) is not None for a in als) for d in ds)
        good = sum(any(matches(t, a) for t in ts) for a in als)
        delays: list[float] = []
        for t in ts:
            when = [at for a in als if (at := found(t, a)) is not None]
            if when:
                delays.append((min(when) - t.start).total_seconds())
        out[model] = Score(
            model,
            len(ts),
            len(als),
            good / len(als) if als else None,
            len(delays) / len(ts) if ts else None,
            statistics.median(delays) if delays else None,
            len(ds),
            fooled,
        )
    return out


def alert_key(alert: Alert, codes: dict[int, str]) -> str:
    """The subject an alert names, the way truths name it."""
    if alert.model in DEVICE_KEYED:
        return codes.get(alert.device_id or 0, "")
    if alert.model in PERSON_KEYED and alert.person_id is not None:
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
    decoys: list[Truth]
    lived: tuple[dt.date, dt.date]  # the first and last day lived


@dataclass
class Staged:
    """A community built into a node, its days lived and the anomalies planted and put on
    the watchlist — everything before delivery."""

    community_id: int
    life: Life
    lived: list[Day]
    scenario: Scenario
    start: dt.datetime  # the first lived day's midnight (UTC)


def stage(
    node: Any, *, days: int, seed: int, residents: int, until: dt.date | None = None
) -> Staged:
    """Build the evaluation's community (with the counting cameras and a water meter in
    every lived-in house), live the ``days`` ending with ``until`` (default: yesterday),
    plant the anomalies and enter the watchlist entries they need."""
    with node.unit_of_work() as ctx:
        config = CommunityConfig(
            seed=seed, residents=residents, water_meter_share=WATER_METER_SHARE
        )
        report = build_community(ctx, config)
        add_counting_cameras(ctx, report.community_id, report.community_code)
    community_id = report.community_id
    world = prepare(node, report.community_code)
    life = Life(world, seed)
    last = until or dt.datetime.now(life.tz).date() - dt.timedelta(days=1)
    first = last - dt.timedelta(days=days - 1)
    lived = list(life.days(first, last))
    scenario = plant(life, lived, community_id)
    with node.unit_of_work() as ctx:
        for watch in scenario.watches:
            entry = add_entry(
                ctx.session, org_unit_id=community_id,
                list_kind=WatchList(watch.list_kind), category=watch.category,
                reason="evaluate", match_type=MatchType(watch.match_type), value=watch.value,
            )  # fmt: skip
            if watch.face:  # a face entry: its photo's vector
                node.faces.enroll_watch_vectors(ctx, entry.id, [watch.face], FACE_MODEL)
    start = dt.datetime.combine(first, dt.time(), life.tz).astimezone(dt.UTC)
    return Staged(community_id, life, lived, scenario, start)


def run(
    *,
    days: int,
    seed: int,
    residents: int,
    database_url: str | None = None,
    data_dir: Path | None = None,
    shuffled: bool = True,
    until: dt.date | None = None,
) -> Run:
    """Build, live, plant, score (see the module docstring). ``shuffled``: each window's
    events go as per-device batches in a random order (as devices deliver), else as one
    batch in time order. ``until``: the last day lived (default: yesterday) — the
    scenario is drawn for the dates lived, so the same seed and ``until`` give the same run."""
    from anju.bootstrap import bootstrap, initialise
    from anju.config import Settings

    started = time.monotonic()
    folder = data_dir or Path(tempfile.mkdtemp(prefix="anju-evaluate-"))
    key = base64.b64encode(os.urandom(32)).decode()
    node = bootstrap(Settings(data_dir=folder, database_url=database_url, secret_key=key))
    try:
        initialise(node, admin_password=base64.b64encode(os.urandom(12)).decode())
        staged = stage(node, days=days, seed=seed, residents=residents, until=until)
        community_id, lived, scenario = staged.community_id, staged.lived, staged.scenario
        events = merged(lived, scenario)
        start = staged.start
        order = random.Random(f"{seed}/delivery") if shuffled else None
        _live(node, events, start, start + dt.timedelta(days=days), order)
        with node.sessions() as session:
            codes = {r.id: r.code for r in session.execute(select(Device.id, Device.code))}
            evidence: dict[int, list[dt.datetime]] = {}
            for alert_id, at in session.execute(
                select(AlertEvidence.alert_id, StoredEvent.at)
                .join(StoredEvent, StoredEvent.id == AlertEvidence.event_id)
                .join(Alert, Alert.id == AlertEvidence.alert_id)
                .where(Alert.community_id == community_id)
            ):
                evidence.setdefault(alert_id, []).append(_aware(at))
            raised = [
                Raised(
                    a.model,
                    alert_key(a, codes),
                    _aware(a.first_at),
                    tuple(sorted(evidence.get(a.id, ()))),
                )
                for a in session.scalars(select(Alert).where(Alert.community_id == community_id))
                if _aware(a.first_at) >= start + WARMUP
            ]
        truths = [t for t in resolve_keys(node, scenario.truths) if t.start >= start + WARMUP]
        decoys = [d for d in scenario.decoys if d.start >= start + WARMUP]
        return Run(
            score(sorted(MODELS), truths, raised, decoys),
            len(events),
            time.monotonic() - started,
            dict(scenario.lookalikes),
            truths,
            raised,
            decoys,
            (lived[0].date, lived[-1].date),
        )
    finally:
        node.dispose()


def resolve_keys(node: Any, truths: Sequence[Truth]) -> list[Truth]:
    """Truths whose subject only the node can name — a stranger's code, given by face
    recognition — keyed by what the stored planted events (``sightings``) were given,
    the most common of them."""
    wanted = {i for t in truths for i in t.sightings}
    if not wanted:
        return list(truths)
    with node.sessions() as session:
        columns = (StoredEvent.event_key, StoredEvent.person_id, StoredEvent.subject_value)
        rows = session.execute(select(*columns).where(StoredEvent.event_key.in_(wanted))).all()
    named = {r.event_key: (r.person_id, r.subject_value) for r in rows}
    out: list[Truth] = []
    for t in truths:
        keys = Counter(
            str(person) if t.model in PERSON_KEYED and person is not None
            else (subject or "").upper()
            for person, subject in (named[i] for i in t.sightings if i in named)
        )  # fmt: skip
        out.append(dataclasses.replace(t, key=keys.most_common(1)[0][0]) if keys else t)
    return out


def _aware(at: dt.datetime) -> dt.datetime:
    return at if at.tzinfo is not None else at.replace(tzinfo=dt.UTC)


SENDER = Sender(None, Actor.system("evaluate"))  # a gateway account: any device in scope


COUNTING_CAMERAS = (("CROWD-01", "中心广场人流统计"), ("CROWD-02", "南门广场人流统计"))


def add_counting_cameras(ctx: Any, community_id: int, community_code: str) -> None:
    """People-counting cameras on two squares (the simulated community has none of its
    own), for the crowd model's scenario."""
    for suffix, name in COUNTING_CAMERAS:
        data = schemas.DeviceCreate(
            community_id=community_id, code=f"{community_code}-{suffix}", name=name,
            kind=DeviceKind.VIDEO_CAMERA,
        )  # fmt: skip
        registry.devices.create(ctx, data)


def _live(
    node: Any,
    events: Sequence[Any],
    start: dt.datetime,
    end: dt.datetime,
    order: random.Random | None = None,
) -> None:
    """Deliver the events window by window, ticking after each window. With ``order``,
    each window's events go device by device (each device's own in time order, as a
    device sends its batch) with the devices in a random order: across devices, events
    arrive out of time order by up to the window. Without, as one time-ordered batch."""
    i, now = 0, start
    while now < end:
        now += STEP
        first = i
        while i < len(events) and events[i].at < now:
            i += 1
        if order is not None:
            batches = list(by_device(events[first:i]).values())
            order.shuffle(batches)
            window = [body for batch in batches for body in batch]
        else:
            window = [e.body for e in events[first:i]]
        for chunk in range(0, len(window), wire.MAX_BATCH):
            outcomes = wire.parse_batch(window[chunk : chunk + wire.MAX_BATCH], now)
            deliver(node, outcomes, SENDER)
        _settle(node)
        ticker.tick(node, now)
        _settle(node)


def _settle(node: Any) -> None:
    """Wait for the rules engine to finish what it was handed, where it works on a thread
    of its own (``drain``); in-line engines have nothing to wait for."""
    drain = getattr(node.rules, "drain", None)
    if callable(drain):
        drain()


# --- the command --------------------------------------------------------------------------


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f}"


def _delay(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    return f"{seconds / 60:.1f} min" if seconds < 7200 else f"{seconds / 3600:.1f} h"


def table(result: Run, days: int, seed: int) -> Table:
    """The scores as a rich table ("look-alikes": alerts on them / planted)."""
    first, last = result.lived
    title = f"alert models · {days} days ({first} to {last}) · seed {seed} · {result.events} events"
    out = Table(title=title)
    columns = ("model", "truths", "alerts", "precision", "recall", "median delay", "look-alikes",
               "target")  # fmt: skip
    for column in columns:
        out.add_column(column, justify="left" if column == "model" else "right")
    for model, s in result.scores.items():
        met = s.met
        verdict = (
            "[dim]no scenario[/dim]"
            if met is None
            else ("[green]met[/green]" if met else "[red]NOT met[/red]")
        )
        looks = f"{s.fooled}/{s.lookalikes}" if s.lookalikes else "—"
        out.add_row(model, str(s.truths), str(s.alerts), _pct(s.precision), _pct(s.recall),
                    _delay(s.median_delay_s), looks, verdict)  # fmt: skip
    return out


def evaluate_command(
    days: Annotated[int, typer.Option(min=1, max=60, help="Simulated days.")] = 14,
    seed: Annotated[int, typer.Option(help="Random seed (community, life and anomalies).")] = 1,
    residents: Annotated[int, typer.Option(min=30, max=5000, help="People living there.")] = 300,
    database_url: Annotated[
        str | None, typer.Option(help="A database to use instead of a temporary SQLite file.")
    ] = None,
    json_output: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    in_order: Annotated[
        bool,
        typer.Option(
            "--in-order",
            help="Deliver each 5-minute window as one time-ordered batch instead of per-device "
            "batches in a random order.",
        ),
    ] = False,
    until: Annotated[
        dt.datetime | None,
        typer.Option(
            formats=["%Y-%m-%d"],
            help="The last day lived (default: yesterday). The scenario follows the dates "
            "lived: give it to repeat a run.",
        ),
    ] = None,
) -> None:
    """Measure the alert models on a simulated community with planted anomalies."""
    logging.basicConfig(level=logging.WARNING)
    result = run(days=days, seed=seed, residents=residents, database_url=database_url,
                 shuffled=not in_order, until=until.date() if until else None)  # fmt: skip
    if json_output:
        print(json.dumps({m: s.as_dict() for m, s in result.scores.items()}, ensure_ascii=False))
        return
    console.print(table(result, days, seed))
    looks = ", ".join(f"{k} ×{n}" for k, n in sorted(result.lookalikes.items()))
    console.print(f"look-alikes planted: {looks}")
    console.print(f"{result.seconds:.0f} s")
