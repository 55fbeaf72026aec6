"""Request dependencies: the node, a unit of work per request, the signed-in actor, CSRF."""

from __future__ import annotations

import datetime as dt
import hmac
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session

from anju.auth import service as auth_service
from anju.auth import tokens as auth_tokens
from anju.auth import totp as auth_totp
from anju.auth.models import User
from anju.bootstrap import Node
from anju.core.context import Ctx
from anju.core.db import utcnow
from anju.core.scope import Actor

log = logging.getLogger(__name__)

SESSION_COOKIE = "anju_session"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"
LOGIN_CSRF_COOKIE = "anju_login_csrf"
PASSWORD_PAGE = "/account/password"
TOTP_PAGE = "/account/totp"
# Pages an account may still reach while a forced step (new password, second factor) is due.
_OPEN_DURING_PASSWORD_CHANGE = frozenset({PASSWORD_PAGE, "/logout"})
_OPEN_DURING_TOTP_SETUP = frozenset({TOTP_PAGE, PASSWORD_PAGE, "/logout"})

Clock = Callable[[], dt.datetime]


class LoginRequired(Exception):
    """No valid console session: the app answers with a redirect to the login page."""


class CsrfFailed(Exception):
    """A state-changing request without the session's CSRF token."""


class PasswordChangeRequired(Exception):
    """The account must replace its password first: every page leads to the password form."""


class SecondFactorRequired(Exception):
    """The account's role must use a second factor: every page leads to its set-up."""


def get_node(request: Request) -> Node:
    node: Node = request.app.state.node
    return node


NodeDep = Annotated[Node, Depends(get_node)]


def get_clock(request: Request) -> Clock:
    """The app's clock (``app.state.clock``): the wall clock, or a fake one in tests."""
    clock: Clock = getattr(request.app.state, "clock", utcnow)
    return clock


ClockDep = Annotated[Clock, Depends(get_clock)]


def client_ip(request: Request) -> str | None:
    return request.client.host if request.client else None


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
    totp_enabled: bool = False
    totp_required: bool = False  # the role must use a second factor and has none yet


@dataclass(frozen=True)
class Signed:
    """The signed-in account for this request."""

    user: UserView
    session_id: int | None  # None when the request came with an API token
    csrf_token: str
    actor: Actor
    token_id: int | None = None

    @property
    def by_token(self) -> bool:
        return self.token_id is not None


def _view(user: User, node: Node) -> UserView:
    return UserView(
        id=user.id,
        username=user.username,
        display_name=user.display_name,
        role_code=user.role_code,
        role_name=user.role.name,
        role_name_en=user.role.name_en,
        org_name=user.org_unit.name,
        must_change_password=user.must_change_password,
        totp_enabled=user.totp_enabled,
        totp_required=auth_totp.required_for(node.settings, user.role) and not user.totp_enabled,
    )


def _signed(request: Request, session: Session, node: Node, now: dt.datetime) -> Signed | None:
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        return None
    login = auth_service.session_for(session, token, now)
    if login is None:
        # Expired, revoked, tampered with or made up: all read as "not signed in".
        log.info("console session cookie refused for %s %s", request.method, request.url.path)
        return None
    user: User = login.user
    return Signed(
        user=_view(user, node),
        session_id=login.id,
        csrf_token=login.csrf_token,
        actor=auth_service.actor_for(user),
    )


def console_user(request: Request, session: SessionDep, node: NodeDep, clock: ClockDep) -> Signed:
    """The signed-in account of a console page; forced steps come before anything else."""
    signed = _signed(request, session, node, clock())
    if signed is None:
        raise LoginRequired()
    request.state.signed = signed
    path = request.url.path
    if signed.user.must_change_password and path not in _OPEN_DURING_PASSWORD_CHANGE:
        raise PasswordChangeRequired()
    if signed.user.totp_required and path not in _OPEN_DURING_TOTP_SETUP:
        raise SecondFactorRequired()
    return signed


def _refuse(detail: str) -> HTTPException:
    return HTTPException(status_code=401, detail=detail, headers={"WWW-Authenticate": "Bearer"})


_TOKEN_REFUSALS = {
    auth_tokens.TokenProblem.UNKNOWN: "API token not recognised",
    auth_tokens.TokenProblem.REVOKED: "API token has been revoked",
    auth_tokens.TokenProblem.EXPIRED: "API token has expired",
    auth_tokens.TokenProblem.INACTIVE: "the account of this API token is disabled",
}


# Declared as a security scheme so the OpenAPI document (and its "Authorize" button) shows it.
_bearer_scheme = HTTPBearer(
    auto_error=False,
    scheme_name="ApiToken",
    description="An API token made on the console's API tokens page or by 'anju user token'.",
)
BearerDep = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer_scheme)]


def _token_signed(
    request: Request, session: Session, node: Node, clear: str, now: dt.datetime
) -> Signed:
    found = auth_tokens.check_token(session, clear, now)
    if found.token is None or found.problem is not None:
        problem = found.problem or auth_tokens.TokenProblem.UNKNOWN
        log.warning(
            "API token %s refused (%s) for %s %s from %s",
            auth_tokens.shown_prefix(clear),
            problem.value,
            request.method,
            request.url.path,
            client_ip(request) or "?",
        )
        raise _refuse(_TOKEN_REFUSALS[problem])
    user = found.token.user
    return Signed(
        user=_view(user, node),
        session_id=None,
        csrf_token="",
        actor=auth_service.actor_for(user),
        token_id=found.token.id,
    )


def api_user(
    request: Request, session: SessionDep, node: NodeDep, clock: ClockDep, bearer: BearerDep
) -> Signed:
    """The caller of an API route: a bearer token if one is sent, else the console session."""
    now = clock()
    if bearer is not None:
        signed = _token_signed(request, session, node, bearer.credentials.strip(), now)
    else:
        found = _signed(request, session, node, now)
        if found is None:
            raise _refuse("sign in first, or send an API token as 'Authorization: Bearer …'")
        if found.user.must_change_password:
            raise HTTPException(status_code=403, detail="change your password first")
        if found.user.totp_required:
            raise HTTPException(status_code=403, detail="set up the second factor first")
        signed = found
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


async def api_csrf(request: Request, signed: ApiUser, session: SessionDep, clock: ClockDep) -> None:
    """A token-only caller needs no CSRF token: no browser attaches a bearer token by itself.

    If a session cookie rides along, the request may come from a browser, so the session's
    CSRF token is required as for any cookie-authenticated write.
    """
    expected: str | None = signed.csrf_token
    if signed.by_token:
        cookie = request.cookies.get(SESSION_COOKIE)
        if not cookie:
            return
        login = auth_service.session_for(session, cookie, clock())
        expected = login.csrf_token if login is not None else None
    await _check_csrf(request, expected)


async def login_csrf(request: Request) -> None:
    """Before sign-in there is no session: the form's token must match a cookie (double submit)."""
    await _check_csrf(request, request.cookies.get(LOGIN_CSRF_COOKIE))


CsrfDep = Depends(console_csrf)
ApiCsrfDep = Depends(api_csrf)
LoginCsrfDep = Depends(login_csrf)
