"""``anju worker``: background consumers that run apart from the web server.

``anju worker mqtt`` runs only the MQTT consumer. Start several (on one host or many): in
one shared-subscription group (``ANJU_MQTT_GROUP``) the broker splits the messages
between them.
"""

from __future__ import annotations

import logging
import signal
import threading
from typing import Annotated, Any

import typer
from rich.console import Console

app = typer.Typer(help="Run background consumers (MQTT ingest).", no_args_is_help=True)
console = Console()
log = logging.getLogger(__name__)

STATS_EVERY = 60.0


@app.command("mqtt")
def mqtt_worker(
    client_id: Annotated[
        str | None, typer.Option(help="MQTT client id (default: random, unique per worker).")
    ] = None,
    group: Annotated[
        str | None, typer.Option(help="Shared-subscription group (default ANJU_MQTT_GROUP).")
    ] = None,
) -> None:
    """Consume device events from ANJU_MQTT_URL until interrupted (Ctrl-C or SIGTERM)."""
    from anju.cli import _node, configure_logging, err_console, settings_or_exit
    from anju.core import migrate
    from anju.events.adapters.mqtt import MqttIngest

    settings = settings_or_exit()
    configure_logging(settings.log_level)
    if not settings.mqtt_url:
        err_console.print("[red]set ANJU_MQTT_URL (e.g. mqtt://127.0.0.1:1883)[/red]")
        raise typer.Exit(2)
    node = _node(settings)
    current, head = migrate.current_revision(node.engine), migrate.head_revision(node.engine)
    if current != head:
        err_console.print(f"[red]database schema at {current}, newest is {head}: run 'anju init'")
        raise typer.Exit(2)
    ingest = MqttIngest(
        node, settings.mqtt_url, client_id=client_id, shared_group=group or settings.mqtt_group
    )
    done = threading.Event()

    def _stop(signum: int, frame: Any) -> None:
        done.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    ingest.start()
    console.print(f"MQTT worker {ingest.client_id}: consuming {ingest.subscription}")
    try:
        while not done.wait(STATS_EVERY):
            log.info("MQTT worker %s: %s", ingest.client_id, dict(ingest.stats))
    finally:
        ingest.stop()
        node.dispose()
