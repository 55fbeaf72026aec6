"""``anju user``: add accounts, set passwords, list who exists."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table
from sqlalchemy import select

from anju.auth import service as auth_service
from anju.auth.models import User
from anju.bootstrap import Node
from anju.core.errors import ValidationFailed
from anju.org.models import OrgUnit

app = typer.Typer(help="Manage accounts.", no_args_is_help=True)
console = Console()


def _node() -> Node:
    from anju.cli import _node as build
    from anju.cli import settings_or_exit

    return build(settings_or_exit())


@app.command("add")
def add(
    username: str,
    role: Annotated[
        str, typer.Option(help="Role code, e.g. officer, grid_worker, property_manager.")
    ],
    org: Annotated[
        str, typer.Option(help="Code of the organisation node the account is bound to.")
    ],
    name: Annotated[str | None, typer.Option(help="Display name.")] = None,
    password: Annotated[
        str | None, typer.Option(help="Password; generated and printed if absent.")
    ] = None,
    json_output: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Create an account bound to a node of the organisation tree."""
    node = _node()
    generated = password is None
    secret = password or auth_service.new_password()
    try:
        with node.unit_of_work() as ctx:
            unit = ctx.session.scalar(select(OrgUnit).where(OrgUnit.code == org))
            if unit is None:
                raise ValidationFailed.one("org", f"no organisation with code {org}")
            auth_service.create_user(
                ctx.session,
                username=username,
                display_name=name or username,
                password=secret,
                role_code=role,
                org_unit_id=unit.id,
                must_change_password=generated,
            )
    except ValidationFailed as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None
    if json_output:
        print(json.dumps({"username": username, "password": secret if generated else None}))
    elif generated:
        console.print(f"account {username} created; password [cyan]{secret}[/cyan] (shown once)")
    else:
        console.print(f"account {username} created")


@app.command("set-password")
def set_password(
    username: str,
    password: Annotated[str, typer.Option(prompt=True, hide_input=True, confirmation_prompt=True)],
) -> None:
    """Set an account's password (and end its open sessions)."""
    from anju.auth.models import LoginSession
    from anju.core.db import utcnow

    node = _node()
    try:
        with node.unit_of_work() as ctx:
            user = ctx.session.scalar(select(User).where(User.username == username))
            if user is None:
                raise ValidationFailed.one("username", f"no account {username}")
            auth_service.validate_password(password)
            user.password_hash = auth_service.hash_password(password)
            for login in ctx.session.scalars(
                select(LoginSession).where(
                    LoginSession.user_id == user.id, LoginSession.revoked_at.is_(None)
                )
            ):
                login.revoked_at = utcnow()
    except ValidationFailed as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None
    console.print(f"password of {username} changed")


@app.command("list")
def list_users(json_output: Annotated[bool, typer.Option("--json")] = False) -> None:
    """List accounts with their role and scope."""
    node = _node()
    with node.unit_of_work() as ctx:
        rows = [
            {
                "username": u.username,
                "name": u.display_name,
                "role": u.role_code,
                "scope": u.org_unit.name,
                "active": u.active,
            }
            for u in ctx.session.scalars(select(User).order_by(User.username))
        ]
    if json_output:
        print(json.dumps(rows, ensure_ascii=False))
        return
    table = Table()
    for col in ("username", "name", "role", "scope", "active"):
        table.add_column(col)
    for r in rows:
        table.add_row(*(str(r[c]) for c in ("username", "name", "role", "scope", "active")))
    console.print(table)
