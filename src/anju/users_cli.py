"""``anju user``: add accounts, set passwords, API tokens, list who exists."""

from __future__ import annotations

import datetime as dt
import json
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table
from sqlalchemy import select
from sqlalchemy.orm import Session

from anju.auth import service as auth_service
from anju.auth import tokens as auth_tokens
from anju.auth import totp as auth_totp
from anju.auth.models import TokenKind, User
from anju.bootstrap import Node
from anju.core.db import utcnow
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
    node = _node()
    try:
        with node.unit_of_work() as ctx:
            user = _user(ctx.session, username)
            auth_service.set_password(ctx.session, user, password, utcnow())
    except ValidationFailed as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None
    console.print(f"password of {username} changed")


def _user(session: Session, username: str) -> User:
    user = session.scalar(select(User).where(User.username == username))
    if user is None:
        raise ValidationFailed.one("username", f"no account {username}")
    return user


@app.command("token")
def token(
    username: str,
    label: Annotated[str, typer.Option(help="What the token is for (shown in lists).")],
    integration: Annotated[
        bool, typer.Option("--integration", help="An integration token (for another system).")
    ] = False,
    days: Annotated[
        int | None, typer.Option(min=1, help="Days until it expires (default: never).")
    ] = None,
    json_output: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Make an API token acting as USERNAME; the token is printed once and never again."""
    node = _node()
    now = utcnow()
    kind = TokenKind.INTEGRATION if integration else TokenKind.PERSONAL
    expires = now + dt.timedelta(days=days) if days else None
    try:
        with node.unit_of_work() as ctx:
            user = _user(ctx.session, username)
            clear, row = auth_tokens.create_token(ctx.session, user, label, kind, expires, now)
            prefix = row.prefix
    except ValidationFailed as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None
    out = {
        "username": username,
        "kind": kind.value,
        "prefix": prefix,
        "expires_at": expires.isoformat() if expires else None,
        "token": clear,
    }
    if json_output:
        print(json.dumps(out))
        return
    console.print(f"{kind.value} token {prefix}… for {username} (shown once; keep it safe):")
    print(clear)


@app.command("revoke-token")
def revoke_token(
    prefix: Annotated[str, typer.Argument(help="The token's prefix as listed (anju_AbCd1234).")],
) -> None:
    """Revoke the API token whose prefix is given (it must name exactly one live token)."""
    node = _node()
    with node.unit_of_work() as ctx:
        live = [
            t
            for t in auth_tokens.find_by_prefix(ctx.session, prefix.rstrip("…"))
            if t.revoked_at is None
        ]
        if len(live) != 1:
            problem = "no live token" if not live else f"{len(live)} live tokens"
            console.print(f"[red]{problem} with prefix {prefix}[/red]")
            raise typer.Exit(2)
        auth_tokens.revoke_token(ctx.session, live[0], utcnow())
        shown, owner = live[0].prefix, live[0].user.username
    console.print(f"token {shown} of {owner} revoked")


@app.command("reset-totp")
def reset_totp(username: str) -> None:
    """Turn off an account's second factor (a lost phone); they set it up again after."""
    node = _node()
    try:
        with node.unit_of_work() as ctx:
            auth_totp.disable(_user(ctx.session, username))
    except ValidationFailed as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None
    console.print(f"second factor of {username} turned off")


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
