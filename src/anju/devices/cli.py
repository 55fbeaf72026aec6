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


@app.command("add")
def add(
    code: Annotated[str, typer.Argument(help="A code for the device, unique in the city.")],
    name: Annotated[
        str, typer.Argument(help="What installers and staff call it, e.g. 东门人脸闸机.")
    ],
    kind: Annotated[
        str, typer.Option(help="Device kind, e.g. face_gate, barrier, smoke_detector.")
    ],
    community: Annotated[str, typer.Option(help="The community's code.")],
    vendor: Annotated[str | None, typer.Option(help="Vendor, e.g. Hikvision.")] = None,
    model: Annotated[str | None, typer.Option(help="Model.")] = None,
    door: Annotated[str | None, typer.Option(help="Door or gate it stands at.")] = None,
    external_id: Annotated[
        str | None, typer.Option(help="Carrier device ID or IMEI (NB-IoT devices).")
    ] = None,
    json_output: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Register a device and print its code and credential (the credential is shown once)."""
    from pydantic import ValidationError

    from anju.core.errors import ValidationFailed, field_errors
    from anju.org.models import Level, OrgUnit
    from anju.registry import schemas
    from anju.registry import service as registry

    node = _node()
    try:
        with node.unit_of_work() as ctx:
            unit = ctx.session.scalar(
                select(OrgUnit).where(OrgUnit.code == community, OrgUnit.level == Level.COMMUNITY)
            )
            if unit is None:
                raise ValidationFailed.one("community", f"no community with code {community}")
            try:
                data = schemas.DeviceCreate(
                    community_id=unit.id,
                    code=code,
                    name=name,
                    kind=kind,
                    vendor=vendor,
                    model=model,
                    door=door,
                    external_id=external_id,
                )
            except ValidationError as exc:
                raise ValidationFailed(field_errors(exc)) from None
            device = registry.devices.create(ctx, data)
            secret = auth_tokens.issue_device_credential(ctx.session, device, utcnow())
    except ValidationFailed as exc:
        if json_output:
            errors = [{"field": e.field, "message": e.message} for e in exc.errors]
            print(json.dumps({"errors": errors}, ensure_ascii=False))
        else:
            console.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None
    if json_output:
        print(json.dumps({"device": code, "credential": secret}, ensure_ascii=False))
        return
    console.print(f"device {code} registered in {community}; its credential (shown once):")
    print(secret)
