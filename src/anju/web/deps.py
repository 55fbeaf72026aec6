"""Request dependencies: the node, a unit of work per request, the signed-in actor, CSRF."""

from __future__ import annotations

import hmac
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from sqlalchemy.orm import Session

from anju.auth import service as auth_service
from anju.auth.models import User
from anju.bootstrap import Node
from anju.core.context import Ctx
from anju.core.db import utcnow
from anju.core.scope import Actor

log = logging.getLogger(__name__)

SESSION_COOKIE = "anju_session"
LANG_COOKIE = "anju_lang"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"
LOGIN_CSRF_COOKIE = "anju_login_csrf"


class LoginRequired(Exception):
    """No valid console session: the app answers with a redirect to the login page."""


class CsrfFailed(Exception):
    """A state-changing request without the session's CSRF token."""


def get_node(request: Request) -> Node:
    node: Node = request.app.state.node
    return node


NodeDep = Annotated[Node, Depends(get_node)]


def get_session(request: Request, node: NodeDep) -> Iterator[Session]:
    """One transaction per request: committed when the route returns, rolled back on error."""
    session = node.sessions()
    session.info["ip"] = request.client.host if request.client else None
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


SessionDep = Annotated[Session, Depends(get_session)]


@dataclass(frozen=True)
class UserView:
    """What pages show of the signed-in account: plain values that outlive the transaction."""

    id: int
    username: str
    display_name: str
    role_code: str
    role_name: str
    role_name_en: str
    org_name: str
    must_change_password: bool


@dataclass(frozen=True)
class Signed:
    """The signed-in account for this request."""

    user: UserView
    session_id: int
    csrf_token: str
    actor: Actor


def _signed(request: Request, session: Session) -> Signed | None:
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        return None
    login = auth_service.session_for(session, token, utcnow())
    if login is None:
        return None
    user: User = login.user
    view = UserView(
        id=user.id,
        username=user.username,
        display_name=user.display_name,
        role_code=user.role_code,
        role_name=user.role.name,
        role_name_en=user.role.name_en,
        org_name=user.org_unit.name,
        must_change_password=user.must_change_password,
    )
    return Signed(
        user=view,
        session_id=login.id,
        csrf_token=login.csrf_token,
        actor=auth_service.actor_for(user),
    )


def console_user(request: Request, session: SessionDep) -> Signed:
    signed = _signed(request, session)
    if signed is None:
        raise LoginRequired()
    request.state.signed = signed
    return signed


def api_user(request: Request, session: SessionDep) -> Signed:
    signed = _signed(request, session)
    if signed is None:
        raise HTTPException(
            status_code=401, detail="sign in first", headers={"WWW-Authenticate": "Bearer"}
        )
    request.state.signed = signed
    return signed


ConsoleUser = Annotated[Signed, Depends(console_user)]
ApiUser = Annotated[Signed, Depends(api_user)]


def console_ctx(node: NodeDep, session: SessionDep, signed: ConsoleUser) -> Ctx:
    return node.ctx(session, signed.actor)


def api_ctx(node: NodeDep, session: SessionDep, signed: ApiUser) -> Ctx:
    return node.ctx(session, signed.actor)


ConsoleCtx = Annotated[Ctx, Depends(console_ctx)]
ApiCtx = Annotated[Ctx, Depends(api_ctx)]


async def _check_csrf(request: Request, expected: str | None) -> None:
    """State-changing requests carry the expected CSRF token (form field or header)."""
    sent = request.headers.get(CSRF_HEADER)
    if sent is None and request.headers.get("content-type", "").startswith(
        ("application/x-www-form-urlencoded", "multipart/form-data")
    ):
        form = await request.form()
        value = form.get(CSRF_FIELD)
        sent = value if isinstance(value, str) else None
    if not sent or not expected or not hmac.compare_digest(sent, expected):
        log.warning("CSRF check failed for %s %s", request.method, request.url.path)
        raise CsrfFailed()


async def console_csrf(request: Request, signed: ConsoleUser) -> None:
    await _check_csrf(request, signed.csrf_token)


async def api_csrf(request: Request, signed: ApiUser) -> None:
    await _check_csrf(request, signed.csrf_token)


async def login_csrf(request: Request) -> None:
    """Before sign-in there is no session: the form's token must match a cookie (double submit)."""
    await _check_csrf(request, request.cookies.get(LOGIN_CSRF_COOKIE))


CsrfDep = Depends(console_csrf)
ApiCsrfDep = Depends(api_csrf)
LoginCsrfDep = Depends(login_csrf)
