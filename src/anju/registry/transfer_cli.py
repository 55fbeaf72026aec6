"""``anju import`` and ``anju export``: registry spreadsheets from the command line.

The two commands are plain functions; ``anju.cli`` mounts them with ``app.command(...)``.
They run as the node itself (the system actor), in one unit of work each.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from anju.bootstrap import Node, bootstrap
from anju.config import UnknownSettingError, load_settings
from anju.core.crypto import KeyError_
from anju.registry.transfer import (
    SHEET_NAMES,
    ImportReport,
    Kind,
    TransferError,
    export_data,
    import_file,
)

console = Console()
err_console = Console(stderr=True)

EXIT_UNREADABLE = 2
SHOWN_REJECTIONS = 50  # the table stops here; --json lists them all

_FORMATS = {".xlsx": "xlsx", ".xlsm": "xlsx", ".csv": "csv"}


def _fail(message: str, json_output: bool) -> NoReturn:
    """Report a failure (as JSON when asked) and leave with the 'unreadable' exit code."""
    if json_output:
        typer.echo(json.dumps({"error": message}, ensure_ascii=False))
    else:
        err_console.print(f"[red]error:[/red] {escape(message)}")
    raise typer.Exit(EXIT_UNREADABLE)


def _node(json_output: bool) -> Node:
    try:
        return bootstrap(load_settings())
    except (UnknownSettingError, ValidationError, KeyError_) as exc:
        _fail(f"configuration error: {exc}", json_output)


def _kind_title(kind: Kind) -> str:
    return f"{SHEET_NAMES[kind]} ({kind.value})"


def _print_report(report: ImportReport) -> None:
    counts = Table(title=f"Import of {escape(report.filename)}")
    counts.add_column("kind")
    for name in ("created", "updated", "unchanged", "rejected"):
        counts.add_column(name, justify="right")
    for kind, c in report.counts.items():
        rejected = f"[red]{c.rejected}[/red]" if c.rejected else "0"
        counts.add_row(
            _kind_title(kind), str(c.created), str(c.updated), str(c.unchanged), rejected
        )
    console.print(counts)
    if report.buildings_created or report.units_created:
        console.print(
            f"made {report.buildings_created} building(s) and {report.units_created} unit(s) "
            "for new houses"
        )
    for note in report.notes:
        console.print(f"[yellow]note:[/yellow] {escape(note)}")
    if report.rejections:
        table = Table(title="Rejected rows (ID numbers and phones masked)")
        for name in ("sheet", "row", "column", "value", "reason"):
            table.add_column(name, justify="right" if name == "row" else "left")
        for r in report.rejections[:SHOWN_REJECTIONS]:
            table.add_row(
                escape(r.sheet), str(r.row), escape(r.column), escape(r.value), escape(r.reason)
            )
        console.print(table)
        hidden = len(report.rejections) - SHOWN_REJECTIONS
        if hidden > 0:
            console.print(f"… and {hidden} more problem(s); use --json to see them all")
        console.print(
            f"[yellow]{report.rows_rejected} row(s) rejected; the other "
            f"{report.rows_accepted} row(s) were imported.[/yellow] Fix the rows listed and "
            "import the file again: rows already imported are not duplicated."
        )
    else:
        console.print(f"[green]all {report.rows_accepted} row(s) imported[/green]")


def import_command(
    path: Annotated[Path, typer.Argument(help="The .xlsx or .csv file to import.")],
    kind: Annotated[
        str | None,
        typer.Option(
            "--kind",
            help="Kind of a CSV or single-sheet file: people, houses, residencies, vehicles, "
            "organisations (default: from sheet names or column headers).",
        ),
    ] = None,
    community: Annotated[
        str | None,
        typer.Option("--community", help="Community code for rows whose 小区编码 is blank."),
    ] = None,
    json_output: Annotated[
        bool, typer.Option("--json", help="Print one JSON object (for scripts).")
    ] = False,
) -> None:
    """Import people, houses, residencies, vehicles and organisations from a spreadsheet.

    Exit code 0 when the file was read, even if some rows were rejected (they are listed);
    2 when the file could not be read.
    """
    try:
        content = path.read_bytes()
    except OSError as exc:
        _fail(f"cannot read {path}: {exc.strerror or exc}", json_output)
    node = _node(json_output)
    try:
        with node.unit_of_work() as ctx:
            report = import_file(
                ctx, content, filename=path.name, kind=kind, community_code=community
            )
    except TransferError as exc:
        _fail(str(exc), json_output)
    finally:
        node.dispose()
    if json_output:
        typer.echo(json.dumps(report.to_dict(), ensure_ascii=False))
    else:
        _print_report(report)


def export_command(
    kind: Annotated[
        str,
        typer.Argument(
            help="people, houses, residencies, vehicles, organisations, or all (xlsx only)."
        ),
    ],
    path: Annotated[Path, typer.Argument(help="The file to write (.xlsx or .csv).")],
    fmt: Annotated[
        str | None,
        typer.Option("--format", help="xlsx or csv (default: from the file's extension)."),
    ] = None,
    json_output: Annotated[
        bool, typer.Option("--json", help="Print one JSON object (for scripts).")
    ] = False,
    community: Annotated[
        str | None, typer.Option("--community", help="Export only this community (its code).")
    ] = None,
    full_numbers: Annotated[
        bool,
        typer.Option(
            "--full-numbers",
            help="Write ID numbers and phones in clear (recorded in the audit log with the "
            "row count and the file's SHA-256).",
        ),
    ] = False,
) -> None:
    """Export registry records to a spreadsheet, ID numbers and phones masked.

    The file has the headers ``anju import`` reads.
    """
    chosen = fmt or _FORMATS.get(path.suffix.lower())
    if chosen is None:
        _fail(f"cannot tell the format of {path.name}: use .xlsx or .csv, or --format", json_output)
    node = _node(json_output)
    try:
        with node.unit_of_work() as ctx:
            export = export_data(
                ctx, kind, chosen, community_code=community, sensitive=full_numbers
            )
    except TransferError as exc:
        _fail(str(exc), json_output)
    finally:
        node.dispose()
    try:
        path.write_bytes(export.content)
    except OSError as exc:
        _fail(f"cannot write {path}: {exc.strerror or exc}", json_output)
    rows: dict[str, Any] = {k.value: n for k, n in export.rows.items()}
    if json_output:
        typer.echo(
            json.dumps({"path": str(path), "format": chosen, "rows": rows}, ensure_ascii=False)
        )
        return
    written = ", ".join(f"{n} {_kind_title(k)}" for k, n in export.rows.items())
    console.print(f"wrote {written} to {escape(str(path))} (ID numbers and phones masked)")
