"""``anju device``: credentials by which devices identify themselves to the node."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.console import Console
from sqlalchemy import select

from anju.auth import tokens as auth_tokens
from anju.bootstrap import Node
from anju.core.db import utcnow
from anju.devices.models import Device

app = typer.Typer(help="Manage devices' credentials.", no_args_is_help=True)
console = Console()


def _node() -> Node:
    from anju.cli import _node as build
    from anju.cli import settings_or_exit

    return build(settings_or_exit())


@app.command("credential")
def credential(
    device_code: Annotated[str, typer.Argument(help="The device's code, as registered.")],
    json_output: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Issue a new credential for a device (printed once); its previous one stops working."""
    node = _node()
    with node.unit_of_work() as ctx:
        device = ctx.session.scalar(select(Device).where(Device.code == device_code))
        if device is None:
            console.print(f"[red]no device with code {device_code}[/red]")
            raise typer.Exit(2)
        secret = auth_tokens.issue_device_credential(ctx.session, device, utcnow())
    if json_output:
        print(json.dumps({"device": device_code, "credential": secret}, ensure_ascii=False))
        return
    console.print(f"credential of device {device_code} (shown once; any earlier one is revoked):")
    print(secret)
