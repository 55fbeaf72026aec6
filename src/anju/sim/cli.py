"""``anju sim``: build a simulated community (模拟社区) into this node's database."""

from __future__ import annotations

import datetime as dt
import json
import logging
import sys
import threading
import time
from typing import Annotated, Any
from zoneinfo import ZoneInfo

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from anju.bootstrap import Node
from anju.core.errors import DomainError
from anju.sim.community import STAGES, CommunityConfig, SimReport, build_community

log = logging.getLogger(__name__)

app = typer.Typer(
    help="Simulated communities: believable residents, houses, vehicles and devices.",
    no_args_is_help=True,
)
console = Console()
err_console = Console(stderr=True)

# Rows of the summary table: report field, Chinese label.
SUMMARY_ROWS: tuple[tuple[str, str], ...] = (
    ("grids", "网格"),
    ("buildings", "楼栋"),
    ("units", "单元"),
    ("houses", "实有房屋"),
    ("households", "住户"),
    ("residents", "实有人口(在住)"),
    ("floating", "流动人口"),
    ("overseas", "境外人员"),
    ("tenants", "租客"),
    ("leases_ending_soon", "30天内到期租约"),
    ("children", "未成年人"),
    ("elderly", "老年人"),
    ("elderly_alone", "独居老人"),
    ("volunteers", "志愿者"),
    ("key_persons", "重点人员"),
    ("absentee_owners", "不在本小区居住的业主"),
    ("people_left", "已搬离人员"),
    ("organisations", "实有单位"),
    ("parking_spaces", "车位"),
    ("vehicles", "车辆"),
    ("new_energy_vehicles", "新能源车辆"),
    ("devices", "安防设施"),
    ("security_staff", "安防力量"),
    ("incidents", "警情"),
    ("verified", "已核实记录"),
)


@app.callback()
def simulator() -> None:
    """Simulated communities (模拟社区) for the demo, benchmarks and tests."""


@app.command()
def build(
    residents: Annotated[
        int, typer.Option(min=10, max=100_000, help="How many people live in the community.")
    ] = 2000,
    seed: Annotated[int, typer.Option(help="Random seed: the same seed builds the same.")] = 1,
    code: Annotated[str, typer.Option(help="Community code (letters, digits, - and _).")] = "AJHY",
    name: Annotated[str, typer.Option(help="Community name.")] = "安居花园",
    buildings: Annotated[
        int | None, typer.Option(min=1, max=999, help="Buildings (default: enough for everyone).")
    ] = None,
    today: Annotated[
        str | None, typer.Option(help="The simulated today, YYYY-MM-DD (default: today).")
    ] = None,
    json_output: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Build a community: addresses, people, houses, units, vehicles, devices, forces."""
    try:
        day = dt.date.fromisoformat(today) if today else None
    except ValueError:
        raise typer.BadParameter("use YYYY-MM-DD", param_hint="--today") from None
    try:
        config = CommunityConfig(
            seed=seed, residents=residents, buildings=buildings, code=code, name=name, today=day
        )
    except ValueError as exc:
        err_console.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None
    node = _node()
    try:
        admin_password = _ensure_initialised(node)
        started = time.perf_counter()
        report = _build(node, config, show_progress=not json_output)
        seconds = time.perf_counter() - started
    except DomainError as exc:
        err_console.print(f"[red]{exc}[/red]")
        raise typer.Exit(1) from None
    finally:
        node.dispose()
    if json_output:
        out = {**report.as_dict(), "seconds": round(seconds, 2)}
        if admin_password:
            out["admin_password"] = admin_password
        print(json.dumps(out, ensure_ascii=False))
        return
    if admin_password:
        console.print(
            f"initialised the database; admin password [cyan]{admin_password}[/cyan] "
            "(shown once; keep it safe)"
        )
    console.print(_summary(report, seconds))


def _node() -> Node:
    """This node, from the ``ANJU_*`` settings; it must have its secret key already."""
    from anju.bootstrap import bootstrap
    from anju.config import UnknownSettingError, load_settings
    from anju.core.crypto import KeyError_

    try:
        settings = load_settings()
    except (UnknownSettingError, ValidationError) as exc:
        err_console.print(f"[red]configuration error:[/red] {exc}")
        raise typer.Exit(2) from None
    logging.basicConfig(
        level=getattr(logging, settings.log_level, logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    try:
        return bootstrap(settings)
    except KeyError_ as exc:
        err_console.print(f"[red]{exc}[/red] (run 'anju init' first)")
        raise typer.Exit(2) from None


def _ensure_initialised(node: Node) -> str | None:
    """Migrate and seed the node if its schema is behind; the admin password if one was made."""
    from anju.bootstrap import initialise
    from anju.core import migrate

    if migrate.current_revision(node.engine) == migrate.head_revision(node.engine):
        return None
    log.info("database schema is not at the newest revision: initialising")
    result = initialise(node, admin_password=node.settings.admin_password)
    return result.admin_password


def _build(node: Node, config: CommunityConfig, show_progress: bool) -> SimReport:
    """Run the build, with a progress bar unless printing JSON."""
    if not show_progress:
        with node.unit_of_work() as ctx:
            return build_community(ctx, config)
    columns = (
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console) as bar:
        tasks: dict[str, TaskID] = {}

        def progress(stage: str, done: int, total: int) -> None:
            if stage not in tasks:
                tasks[stage] = bar.add_task(STAGES.get(stage, stage), total=total)
            bar.update(tasks[stage], completed=done, total=total)

        with node.unit_of_work() as ctx:
            return build_community(ctx, config, progress=progress)


def _summary(report: SimReport, seconds: float) -> Table:
    """The report as a table."""
    table = Table(title=f"{report.community_name} ({report.community_code}) · seed {report.seed}")
    table.add_column("项目")
    table.add_column("item", style="dim")
    table.add_column("count", justify="right")
    values = report.as_dict()
    for key, label in SUMMARY_ROWS:
        table.add_row(label, key, str(values[key]))
    uses = ", ".join(f"{use} {n}" for use, n in report.houses_by_use.items())
    table.add_row("房屋用途", "houses_by_use", uses)
    table.add_row("用时", "seconds", f"{seconds:.1f}")
    return table


@app.command()
def run(
    url: Annotated[
        str | None,
        typer.Option(help="The node's base URL (default http://ANJU_HOST:ANJU_PORT)."),
    ] = None,
    via: Annotated[
        str, typer.Option(help="http (each device's own credential) or mqtt (ANJU_MQTT_URL).")
    ] = "http",
    speed: Annotated[
        float | None,
        typer.Option(min=0.1, help="Simulated seconds per real second (60: an hour a minute)."),
    ] = None,
    days: Annotated[
        int | None,
        typer.Option(min=1, max=3660, help="Simulate N days as fast as possible, then stop."),
    ] = None,
    seed: Annotated[int, typer.Option(help="Random seed: the same seed lives the same.")] = 1,
    community: Annotated[str, typer.Option(help="The community's code.")] = "AJHY",
    start: Annotated[
        str | None,
        typer.Option(
            help="Simulated start, YYYY-MM-DD or ISO time (default: for --days, the N days "
            "ending yesterday; for --speed, 24 hours ago)."
        ),
    ] = None,
    json_output: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Live the community's days through the real ways in (HTTP or MQTT), then summarise."""
    from anju.sim.life import Life
    from anju.sim.runner import prepare, run_days, run_paced
    from anju.sim.senders import HttpSender, MqttSender, Sender, issue_device_credentials

    if via not in ("http", "mqtt"):
        raise typer.BadParameter("use http or mqtt", param_hint="--via")
    node = _node()
    logging.getLogger("httpx").setLevel(logging.WARNING)  # not a line per batch
    settings = node.settings
    tz = ZoneInfo(settings.timezone)
    try:
        begin = _start(start, tz)
    except ValueError:
        raise typer.BadParameter("use YYYY-MM-DD or an ISO time", param_hint="--start") from None
    if via == "mqtt" and not settings.mqtt_url:
        err_console.print("[red]--via mqtt needs a broker: set ANJU_MQTT_URL[/red]")
        raise typer.Exit(2)
    try:
        world = prepare(node, community)
        sender: Sender
        if via == "http":
            credentials = issue_device_credentials(node, world.devices)
            base = url or f"http://{settings.host}:{settings.port}"
            sender = HttpSender(base, credentials)
        else:
            sender = MqttSender(str(settings.mqtt_url), community)
    except LookupError as exc:
        err_console.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None
    finally:
        node.dispose()
    life = Life(world, seed)
    started = time.perf_counter()
    try:
        if speed is None and days is not None:
            today = dt.datetime.now(tz).date()
            first = begin.date() if begin else today - dt.timedelta(days=days)
            last = first + dt.timedelta(days=days - 1)
            run_days(life, sender, first, last, progress=None if json_output else _day_done)
        else:
            paced_from = begin or dt.datetime.now(dt.UTC) - dt.timedelta(days=1)
            until = paced_from + dt.timedelta(days=days) if days else None
            if not json_output:
                local = paced_from.astimezone(tz)
                console.print(
                    f"living {community} at {speed or 60:g}x from {local:%Y-%m-%d %H:%M} "
                    "(Ctrl-C stops)"
                )
            run_paced(life, sender, paced_from, speed or 60.0, threading.Event(), until=until)
    except KeyboardInterrupt:
        pass
    finally:
        sender.close()
    seconds = time.perf_counter() - started
    if json_output:
        print(json.dumps({**sender.tally.as_dict(), "via": via, "seconds": round(seconds, 1)}))
        return
    console.print(_life_summary(sender.tally, via, seconds))


def _start(text: str | None, tz: ZoneInfo) -> dt.datetime | None:
    """``--start``: a date (local midnight) or an ISO time (local when it has no offset)."""
    if not text:
        return None
    if len(text) == 10:
        return dt.datetime.combine(dt.date.fromisoformat(text), dt.time(), tz)
    when = dt.datetime.fromisoformat(text)
    return when if when.tzinfo else when.replace(tzinfo=tz)


def _day_done(day: Any) -> None:
    console.print(f"{day.date}: {len(day.events)} events")


def _life_summary(tally: Any, via: str, seconds: float) -> Table:
    """Events per kind: sent, accepted, duplicate, rejected (and failed when any)."""
    table = Table(title=f"simulated events via {via} · {seconds:.1f} s")
    table.add_column("kind")
    for status in ("sent", "accepted", "duplicate", "rejected", "failed"):
        table.add_column(status, justify="right")
    unknown = "—" if via == "mqtt" else None  # MQTT answers only rejections
    for kind, counts in tally.rows():
        table.add_row(
            kind,
            str(counts["sent"]),
            unknown or str(counts["accepted"]),
            unknown or str(counts["duplicate"]),
            str(counts["rejected"]),
            str(counts["failed"]),
        )
    totals = {s: tally.total(s) for s in ("sent", "accepted", "duplicate", "rejected", "failed")}
    table.add_row(
        "total",
        str(totals["sent"]),
        unknown or str(totals["accepted"]),
        unknown or str(totals["duplicate"]),
        str(totals["rejected"]),
        str(totals["failed"]),
        style="bold",
    )
    for reason, n in tally.reasons.most_common(5):
        err_console.print(f"rejected {n}×: {reason}")
    return table
