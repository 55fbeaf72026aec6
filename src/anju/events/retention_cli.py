"""``anju retention run``: purge expired event images (and rows) and say what went."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

app = typer.Typer(help="Purge event images and events past their retention.", no_args_is_help=True)
console = Console()


@app.command("run")
def run_command(
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Report what would be purged; change nothing.")
    ] = False,
    json_output: Annotated[
        bool, typer.Option("--json", help="Print one JSON object (for scripts).")
    ] = False,
) -> None:
    """Delete images older than their kind's retention, stranger clusters not seen for
    ANJU_FACE_STRANGER_RETENTION_DAYS (with their face encodings) and, when
    ANJU_EVENT_RETENTION_DAYS is set, older events; print counts per kind and the bytes
    freed."""
    from anju.cli import _node, configure_logging, settings_or_exit
    from anju.core.db import utcnow
    from anju.events import retention

    settings = settings_or_exit()
    configure_logging(settings.log_level)
    node = _node(settings)
    try:
        policy = retention.Policy.from_settings(settings)
        report = retention.run(node, policy, utcnow(), dry_run=dry_run)
    finally:
        node.dispose()
    out = report.as_dict()
    if json_output:
        print(json.dumps(out, ensure_ascii=False))
        return
    table = Table(title="Retention" + (" (dry run: nothing changed)" if dry_run else ""))
    table.add_column("kind")
    table.add_column("images purged", justify="right")
    table.add_column("events deleted", justify="right")
    for kind in sorted(set(report.images) | set(report.events)):
        table.add_row(kind, str(report.images[kind]), str(report.events[kind]))
    console.print(table)
    console.print(
        f"stranger clusters deleted: {report.strangers}, "
        f"face encodings of events deleted: {report.face_probes}"
    )
    console.print(
        f"files deleted: {report.files}, bytes freed: {report.bytes_freed}"
        + ("" if policy.event_days else "; event rows are kept (ANJU_EVENT_RETENTION_DAYS unset)")
    )
