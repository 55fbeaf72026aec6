"""The ``anju`` command: init, demo, serve, check-config, import/export, sim, users."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Callable
from typing import Annotated, Any

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.table import Table

from anju import __version__
from anju.config import Settings, UnknownSettingError, load_settings

app = typer.Typer(
    name="anju",
    help="Anju (安居) — smart safe community platform.",
    no_args_is_help=True,
    add_completion=False,
)
console = Console()
err_console = Console(stderr=True)

SECRET_SETTINGS = (
    "secret_key",
    "admin_password",
    "onenet_token",
    "ctwing_token",
    "mqtt_url",
)

JsonFlag = Annotated[bool, typer.Option("--json", help="Print one JSON object (for scripts).")]


def configure_logging(level: str) -> None:
    logging.basicConfig(
        level=getattr(logging, level, logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )


def settings_or_exit(**overrides: Any) -> Settings:
    try:
        return load_settings(**{k: v for k, v in overrides.items() if v is not None})
    except (UnknownSettingError, ValidationError) as exc:
        err_console.print(f"[red]configuration error:[/red] {exc}")
        raise typer.Exit(2) from None


def _node(settings: Settings, create_key: bool = False) -> Any:
    from anju.bootstrap import bootstrap
    from anju.core.crypto import KeyError_

    try:
        return bootstrap(settings, create_key=create_key)
    except KeyError_ as exc:
        err_console.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None


@app.command()
def version() -> None:
    """Print the version."""
    console.print(__version__)


@app.command()
def init(json_output: JsonFlag = False) -> None:
    """Create the data folder and database, migrate, and make the first admin account."""
    from anju.bootstrap import initialise

    settings = settings_or_exit()
    configure_logging(settings.log_level)
    node = _node(settings, create_key=True)
    result = initialise(node, admin_password=settings.admin_password)
    node.dispose()
    out = {
        "data_dir": str(settings.data_dir.resolve()),
        "database": node.engine.url.render_as_string(hide_password=True),
        "admin_created": result.admin_created,
        "admin_username": result.admin_username,
        "admin_password": result.admin_password,
    }
    if json_output:
        print(json.dumps(out, ensure_ascii=False))
        return
    console.print(f"data folder: {out['data_dir']}")
    console.print(f"database:    {out['database']}")
    if result.admin_created and result.admin_password:
        console.print(
            f"[bold]admin account created[/bold]: user [cyan]admin[/cyan], password "
            f"[cyan]{result.admin_password}[/cyan] (shown once; keep it safe)"
        )
    elif result.admin_created:
        console.print("admin account created with the password from ANJU_ADMIN_PASSWORD")
    else:
        console.print("already initialised; schema is at the newest revision")


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Address to bind (default 127.0.0.1).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default 8000).")] = None,
) -> None:
    """Run the web server (console and API); migrates the database to the newest revision."""
    settings = settings_or_exit(host=host, port=port)
    configure_logging(settings.log_level)
    node = _node(settings)
    from anju.bootstrap import prepare_database

    prepare_database(node.engine)
    _run_server(node)


def _run_server(node: Any, on_listening: Callable[[str], None] | None = None) -> None:
    """Serve until stopped; ``on_listening(base_url)`` runs once the port accepts requests."""
    import uvicorn

    from anju.alerts.notify import AlertRelay
    from anju.bootstrap import settle_process
    from anju.events.relay import EventRelay
    from anju.web.app import create_app

    settings = node.settings
    ingest = _start_mqtt(node)
    ticker = _start_ticker(node)
    relay = AlertRelay(node)  # alerts raised by workers onto this console's live list
    relay.start()
    events = EventRelay(node)  # and the events they store onto its live feed
    events.start()
    console.print(f"Anju console: [bold]http://{settings.host}:{settings.port}/[/bold]")
    try:
        web = create_app(node)
        settle_process()
        server = uvicorn.Server(
            uvicorn.Config(
                web,
                host=settings.host,
                port=settings.port,
                access_log=False,  # our own access log leaves query strings out
                log_config=None,
            )
        )
        if on_listening is not None:
            _when_listening(server, on_listening, _own_url(settings.host, settings.port))
        server.run()
    finally:
        events.stop()
        relay.stop()
        ticker.stop()
        if ingest is not None:
            ingest.stop()


def _when_listening(server: Any, call: Callable[[str], None], url: str) -> None:
    """Call ``call(url)`` from a daemon thread once uvicorn has started listening."""
    import threading
    import time

    def wait() -> None:
        while not server.started:
            if server.should_exit:
                return
            time.sleep(0.1)
        call(url)

    threading.Thread(target=wait, name="anju-when-listening", daemon=True).start()


def _own_url(host: str, port: int) -> str:
    """How this process reaches its own server (a wildcard bind answers on loopback)."""
    if host in ("0.0.0.0", "", "::"):
        host = "127.0.0.1"
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port}"


def _start_mqtt(node: Any) -> Any:
    """The MQTT consumer beside the web server, when ``ANJU_MQTT_URL`` is set."""
    if not node.settings.mqtt_url:
        return None
    from anju.events.adapters.mqtt import MqttIngest

    ingest = MqttIngest(node, node.settings.mqtt_url, shared_group=node.settings.mqtt_group)
    ingest.start()
    console.print("MQTT events: consuming [bold]anju/v1/+/+/events[/bold]")
    return ingest


def _start_ticker(node: Any) -> Any:
    """The device-health tick beside the web server: offline/online events once a minute."""
    from anju.events.ticker import Ticker

    ticker = Ticker(node)
    ticker.start()
    return ticker


@app.command()
def demo(
    residents: Annotated[int, typer.Option(help="Residents of the simulated community.")] = 2000,
    seed: Annotated[int, typer.Option(help="Random seed of the simulation.")] = 2026,
    host: Annotated[str | None, typer.Option(help="Address to bind.")] = None,
    port: Annotated[int | None, typer.Option(help="Port.")] = None,
    life: Annotated[
        bool,
        typer.Option(
            "--life/--no-life",
            help="Live the community's days in the background (the simulator, over HTTP).",
        ),
    ] = True,
    speed: Annotated[
        float,
        typer.Option(
            min=1,
            help="Simulated seconds per real second while it catches up on the last day "
            "(it then keeps time with the clock).",
        ),
    ] = 3600.0,
) -> None:
    """Initialise if needed, build a simulated community, and serve the console.

    Unless ``--no-life``, the simulator then lives the demo community's last day at
    ``--speed`` (by default within seconds) through the server's own HTTP API, and keeps
    time with the clock after: the device-health tick judges devices by the real clock, and
    a community living a day behind it would look offline.
    """
    from anju.bootstrap import initialise
    from anju.demo import DEMO_PASSWORD, ensure_demo

    settings = settings_or_exit(host=host, port=port)
    configure_logging(settings.log_level)
    node = _node(settings, create_key=True)
    initial = settings.admin_password or DEMO_PASSWORD
    result = initialise(node, admin_password=initial)
    admin_note = (
        initial if result.admin_created else "(set earlier; 'anju user set-password admin')"
    )
    accounts = ensure_demo(
        node, residents=residents, seed=seed, console=console, admin_password=admin_note
    )
    table = Table(title="Demo accounts")
    for col in ("user", "password", "role", "scope"):
        table.add_column(col)
    for row in accounts:
        table.add_row(*row)
    console.print(table)
    _run_server(node, on_listening=_demo_life(node, seed, speed) if life else None)


def _demo_life(node: Any, seed: int, speed: float) -> Callable[[str], None]:
    """Start the demo community's simulated life against the server once it listens."""
    from anju.demo import start_life

    def begin(url: str) -> None:
        start_life(node, url, seed=seed, speed=speed)
        console.print(
            "simulator: the demo community catches up on its last day, then lives in real "
            "time (--no-life to stop)"
        )

    return begin


@app.command("check-config")
def check_config(json_output: JsonFlag = False) -> None:
    """Validate settings, the secret key and the database; print what is in force."""
    from anju.core import migrate
    from anju.core.crypto import KeyError_, load_or_create_key

    settings = settings_or_exit()
    problems: list[str] = []
    try:
        load_or_create_key(settings.key_file, settings.secret_key, create=False)
    except KeyError_ as exc:
        problems.append(str(exc))
    from anju.core.db import make_engine

    engine = make_engine(settings.resolved_database_url)
    current = head = None
    try:
        current, head = migrate.current_revision(engine), migrate.head_revision(engine)
        if current != head:
            problems.append(f"database schema at {current}, newest is {head} (run 'anju init')")
    except Exception as exc:  # any driver error means the database is unreachable
        problems.append(f"database unreachable: {exc}".splitlines()[0])
    finally:
        engine.dispose()
    shown = {
        name: ("***" if name in SECRET_SETTINGS and value else value)
        for name, value in settings.model_dump(mode="json").items()
    }
    shown["database"] = engine.url.render_as_string(hide_password=True)
    out = {
        "ok": not problems,
        "settings": shown,
        "schema": current,
        "newest": head,
        "problems": problems,
    }
    if json_output:
        print(json.dumps(out, ensure_ascii=False))
    else:
        table = Table(title="Settings in force")
        table.add_column("setting")
        table.add_column("value")
        for name, value in shown.items():
            table.add_row(name, str(value))
        console.print(table)
        for p in problems:
            err_console.print(f"[red]problem:[/red] {p}")
        if not problems:
            console.print("[green]configuration OK[/green]")
    if problems:
        raise typer.Exit(1)


def main() -> None:
    """Entry point of the ``anju`` script."""
    app()


# The command groups of other slices (imported last: they import this module's helpers).
from anju.alerts.evaluate import evaluate_command  # noqa: E402
from anju.audit.cli import app as audit_app  # noqa: E402
from anju.devices.cli import app as devices_app  # noqa: E402
from anju.events.retention_cli import app as retention_app  # noqa: E402
from anju.events.worker_cli import app as worker_app  # noqa: E402
from anju.faces.cli import app as faces_app  # noqa: E402
from anju.org.cli import app as org_app  # noqa: E402
from anju.registry.transfer_cli import export_command, import_command  # noqa: E402
from anju.sim.cli import app as sim_app  # noqa: E402
from anju.users_cli import app as users_app  # noqa: E402

app.command("import")(import_command)
app.command("export")(export_command)
app.command("evaluate")(evaluate_command)
app.add_typer(sim_app, name="sim")
app.add_typer(users_app, name="user")
app.add_typer(org_app, name="org")
app.add_typer(devices_app, name="device")
app.add_typer(audit_app, name="audit")
app.add_typer(worker_app, name="worker")
app.add_typer(retention_app, name="retention")
app.add_typer(faces_app, name="faces")
