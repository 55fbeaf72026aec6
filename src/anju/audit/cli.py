"""``anju audit``: check the audit log's hash chain."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import Progress

from anju.audit.verify import DEFAULT_BATCH, count, verify_chain
from anju.core.db import make_engine

app = typer.Typer(help="The audit log.", no_args_is_help=True)
console = Console()
err_console = Console(stderr=True)


@app.command("verify")
def verify(
    json_output: Annotated[
        bool, typer.Option("--json", help="Print one JSON object (for scripts).")
    ] = False,
    batch_size: Annotated[
        int, typer.Option(min=1, help="Rows read per query while walking the chain.")
    ] = DEFAULT_BATCH,
) -> None:
    """Walk the hash chain in id order; exit 1 at the first row that breaks it.

    Needs only the database: no secret key, so an auditor can check a copy.
    """
    from anju.cli import settings_or_exit

    engine = make_engine(settings_or_exit().resolved_database_url)
    try:
        with engine.connect() as conn:
            if json_output:
                result = verify_chain(conn, batch_size)
            else:
                with Progress(console=err_console, transient=True) as bar:
                    task = bar.add_task("checking the audit log", total=count(conn))
                    result = verify_chain(conn, batch_size, progress=lambda n: bar.advance(task, n))
    finally:
        engine.dispose()
    if json_output:
        print(json.dumps(result.as_dict(), ensure_ascii=False))
    elif result.ok:
        console.print(f"[green]OK[/green]: {result.message}")
        if result.head_id is not None:
            console.print(f"head: row {result.head_id}, hash {result.head_hash}", soft_wrap=True)
    else:
        err_console.print(f"[red]BROKEN[/red] ({result.problem}) {result.message}")
        console.print(f"{result.checked} row(s) before it are intact")
    if not result.ok:
        raise typer.Exit(1)
