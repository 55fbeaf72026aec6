"""``anju org``: build the organisation tree from the command line (scripts, first set-up)."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.tree import Tree
from sqlalchemy import select

from anju.bootstrap import Node
from anju.core.errors import ValidationFailed
from anju.org import service as org_service
from anju.org.models import Level, OrgUnit

app = typer.Typer(help="The organisation tree: city → district → station → office → community.")
console = Console()


def _node() -> Node:
    from anju.cli import _node as build
    from anju.cli import settings_or_exit

    return build(settings_or_exit())


@app.command("add")
def add(
    code: Annotated[str, typer.Argument(help="The new node's code (letters, digits, - and _).")],
    name: Annotated[str, typer.Argument(help="Its name, e.g. 南山分局 or 阳光花园.")],
    parent: Annotated[
        str | None, typer.Option(help="Code of the parent node (default: the city root).")
    ] = None,
    address: Annotated[str | None, typer.Option(help="Address (for communities).")] = None,
    json_output: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Add a node one level below its parent (the level follows from the parent's)."""
    node = _node()
    try:
        with node.unit_of_work() as ctx:
            above = (
                ctx.session.scalar(select(OrgUnit).where(OrgUnit.code == parent))
                if parent
                else org_service.root(ctx.session)
            )
            if above is None:
                raise ValidationFailed.one("parent", f"no organisation with code {parent}")
            levels = list(Level)
            if above.level.depth + 1 >= len(levels):
                raise ValidationFailed.one("parent", "a community has no organisations below it")
            unit = org_service.add_unit(
                ctx.session,
                level=levels[above.level.depth + 1],
                code=code,
                name=name,
                parent=above,
                address=address,
            )
            out = {
                "id": unit.id,
                "code": unit.code,
                "level": unit.level.value,
                "parent": above.code,
            }
    except ValidationFailed as exc:
        if json_output:
            print(json.dumps({"error": str(exc)}, ensure_ascii=False))
        else:
            console.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None
    if json_output:
        print(json.dumps(out, ensure_ascii=False))
    else:
        console.print(f"added {out['level']} {code} ({name}) under {above.code}")


@app.command("list")
def list_units(
    json_output: Annotated[bool, typer.Option("--json", help="Print a JSON list.")] = False,
) -> None:
    """Show the tree."""
    node = _node()
    with node.unit_of_work() as ctx:
        units = list(ctx.session.scalars(select(OrgUnit).order_by(OrgUnit.path)))
        rows: list[dict[str, Any]] = [
            {
                "id": u.id,
                "code": u.code,
                "name": u.name,
                "level": u.level.value,
                "parent_id": u.parent_id,
            }
            for u in units
        ]
    if json_output:
        print(json.dumps(rows, ensure_ascii=False))
        return
    branches: dict[int | None, Tree] = {}
    root = Tree("组织机构")
    for row in rows:
        holder = branches.get(row["parent_id"], root)
        branches[row["id"]] = holder.add(f"{row['name']} [dim]{row['code']} · {row['level']}[/dim]")
    console.print(root)
