"""``anju worker``: background consumers that run apart from the web server.

``anju worker rules`` runs the alert models over what the other processes store (with
``ANJU_RULES=worker`` they do not run them; see :mod:`anju.alerts.worker`).

``anju worker mqtt`` runs only the MQTT consumer. Start several (on one host or many): in
one shared-subscription group (``ANJU_MQTT_GROUP``) the broker splits the messages
between them. ``anju worker tick`` runs the device-health tick (offline/online events); more
than one may run, each event is raised once.
"""

from __future__ import annotations

import json
import logging
import signal
import threading
from typing import Annotated, Any

import typer
from rich.console import Console

app = typer.Typer(
    help="Run background consumers (MQTT ingest, alert models, device-health tick).",
    no_args_is_help=True,
)
console = Console()
log = logging.getLogger(__name__)

STATS_EVERY = 60.0


@app.command("mqtt")
def mqtt_worker(
    client_id: Annotated[
        str | None,
        typer.Option(
            help="MQTT client id; keep it across restarts so the broker keeps the session "
            "(default: anju-{group}-{host}-worker; give each worker on one host its own)."
        ),
    ] = None,
    group: Annotated[
        str | None, typer.Option(help="Shared-subscription group (default ANJU_MQTT_GROUP).")
    ] = None,
    session_expiry: Annotated[
        int,
        typer.Option(
            min=0,
            help="Seconds the broker keeps this worker's session (and queues its messages) "
            "while it is stopped; 0: a clean session each time.",
        ),
    ] = 86_400,
) -> None:
    """Consume device events from ANJU_MQTT_URL until interrupted (Ctrl-C or SIGTERM)."""
    from anju.bootstrap import settle_process
    from anju.cli import configure_logging, err_console, settings_or_exit
    from anju.events.adapters.mqtt import MqttIngest, default_client_id

    settings = settings_or_exit()
    configure_logging(settings.log_level)
    if not settings.mqtt_url:
        err_console.print("[red]set ANJU_MQTT_URL (e.g. mqtt://127.0.0.1:1883)[/red]")
        raise typer.Exit(2)
    node = _migrated_node(settings)
    group = group or settings.mqtt_group
    ingest = MqttIngest(
        node,
        settings.mqtt_url,
        client_id=client_id or default_client_id(group, "worker"),
        shared_group=group,
        session_expiry=session_expiry,
    )
    done = threading.Event()

    def _stop(signum: int, frame: Any) -> None:
        done.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    ingest.start()
    settle_process()
    console.print(f"MQTT worker {ingest.client_id}: consuming {ingest.subscription}")
    try:
        while not done.wait(STATS_EVERY):
            log.info("MQTT worker %s: %s", ingest.client_id, dict(ingest.stats))
    finally:
        ingest.stop()
        node.dispose()


@app.command("tick")
def tick_worker(
    every: Annotated[
        float, typer.Option(min=1.0, help="Seconds between ticks (default one minute).")
    ] = 60.0,
    once: Annotated[bool, typer.Option("--once", help="Run one tick and exit.")] = False,
    json_output: Annotated[
        bool, typer.Option("--json", help="With --once: print what was raised as JSON.")
    ] = False,
) -> None:
    """Raise device.offline / device.online events for silent and returning devices."""
    from anju.cli import configure_logging, console, settings_or_exit
    from anju.core.db import utcnow
    from anju.events.ticker import Ticker, tick

    settings = settings_or_exit()
    configure_logging(settings.log_level)
    node = _migrated_node(settings)
    try:
        if once:
            report = tick(node, utcnow())
            if json_output:
                print(json.dumps(report.as_dict(), ensure_ascii=False))
            else:
                console.print(
                    f"offline: {', '.join(report.offline) or '-'}; "
                    f"back online: {', '.join(report.online) or '-'}"
                )
            return
        ticker = Ticker(node, every=every)
        done = threading.Event()

        def _stop(signum: int, frame: Any) -> None:
            done.set()

        signal.signal(signal.SIGTERM, _stop)
        signal.signal(signal.SIGINT, _stop)
        ticker.start()
        console.print(f"health tick: every {every:g} s")
        done.wait()
        ticker.stop()
    finally:
        node.dispose()


@app.command("rules")
def rules_worker(
    shard: Annotated[
        str,
        typer.Option(
            help="K/N: take the communities whose id is K modulo N (run N workers, 0/N to N-1/N).",
        ),
    ] = "0/1",
    every: Annotated[
        float, typer.Option(min=0.01, max=10.0, help="Seconds between polls of the store.")
    ] = 0.05,
    tick_every: Annotated[
        float, typer.Option(min=1.0, help="Seconds between ticks of the absence rules.")
    ] = 60.0,
) -> None:
    """Run the alert models over what the other processes store (ANJU_RULES=worker there)."""
    from anju.alerts.worker import RulesWorker, Shard
    from anju.bootstrap import settle_process
    from anju.cli import configure_logging, err_console, settings_or_exit

    try:
        part = Shard.parse(shard)
    except ValueError as e:
        err_console.print(f"[red]{e}[/red]")
        raise typer.Exit(2) from None
    settings = settings_or_exit()
    configure_logging(settings.log_level)
    node = _migrated_node(settings)
    worker = RulesWorker(node, part)
    done = threading.Event()

    def _stop(signum: int, frame: Any) -> None:
        done.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    try:
        worker.start()
        settle_process()
        assert worker.follower is not None
        console.print(
            f"rules worker {part.name}: following the event store after id {worker.follower.cursor}"
        )
        thread = threading.Thread(
            target=worker.run, args=(done, every, tick_every), name="anju-rules-worker"
        )
        thread.start()
        while not done.wait(STATS_EVERY):
            log.info("rules worker %s: %d event(s) through the models, cursor %d, failures %s",
                     part.name, worker.seen, worker.follower.cursor, worker.failures)  # fmt: skip
        thread.join()
    finally:
        node.dispose()


def _migrated_node(settings: Any) -> Any:
    """The node, refusing to run against a database not at the newest schema."""
    from anju.cli import _node, err_console
    from anju.core import migrate

    node = _node(settings)
    current, head = migrate.current_revision(node.engine), migrate.head_revision(node.engine)
    if current != head:
        err_console.print(f"[red]database schema at {current}, newest is {head}: run 'anju init'")
        node.dispose()
        raise typer.Exit(2)
    return node
