"""Console pages of one's own account (我的账号): password, API tokens, second factor,
notification preferences (通知偏好).

Also the second step of signing in (``/login/totp``), which needs the account's TOTP
secret but no session yet.
"""

from __future__ import annotations

import datetime as dt
import logging

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from anju.alerts import notify
from anju.alerts.model import Severity
from anju.auth import service as auth_service
from anju.auth import throttle
from anju.auth import tokens as auth_tokens
from anju.auth import totp as auth_totp
from anju.auth.models import ApiToken, TokenKind, User
from anju.bootstrap import Node
from anju.core.errors import NotFound, PermissionDenied, ValidationFailed
from anju.core.scope import Actor
from anju.org.models import OrgUnit
from anju.web import signin
from anju.web.deps import (
    ClockDep,
    ConsoleCtx,
    ConsoleUser,
    CsrfDep,
    LoginCsrfDep,
    NodeDep,
    SessionDep,
    Signed,
    client_ip,
)
from anju.web.templating import render

log = logging.getLogger(__name__)

router = APIRouter(include_in_schema=False)

TOKEN_MANAGE = "token.manage"
# Lifetimes offered for a new token, in days (0: does not expire).
TOKEN_DAYS = (30, 90, 365, 0)
DEFAULT_TOKEN_DAYS = 90
NO_STORE = {"Cache-Control": "no-store"}

_PASSWORDS_DIFFER = "the two new passwords differ"
_WRONG_CODE = "the code is wrong or was already used"
_BAD_LIFETIME = "choose one of the offered lifetimes"
_NO_SUCH_ACCOUNT = "choose an account in your area"
_TOTP_KEPT = "your role must keep the second factor"
_WRONG_PASSWORD = "the password is wrong"


def _me(session: Session, signed: Signed) -> User:
    user = session.get(User, signed.user.id)
    if user is None:  # deleted while signed in
        raise NotFound("user")
    return user


# --- password -----------------------------------------------------------------------------


@router.get("/account/password", response_class=HTMLResponse)
def password_page(request: Request, signed: ConsoleUser) -> Response:
    return render(request, "account/password.html", errors={}, changed=False)


@router.post("/account/password", dependencies=[CsrfDep], response_class=HTMLResponse)
def change_password(
    request: Request,
    node: NodeDep,
    session: SessionDep,
    clock: ClockDep,
    signed: ConsoleUser,
    current_password: str = Form(""),
    new_password: str = Form(""),
    repeat_password: str = Form(""),
) -> Response:
    """Change one's own password; the account's other sessions end."""
    now = clock()
    user = _me(session, signed)
    # The current password is a secret worth guessing from a stolen session: throttle it.
    locked = signin.refuse_if_locked(
        request,
        session,
        node,
        user.username,
        now,
        "account/password.html",
        errors={},
        changed=False,
    )
    if locked is not None:
        return locked
    try:
        if new_password != repeat_password:
            raise ValidationFailed.one("repeat_password", _PASSWORDS_DIFFER)
        was_forced = user.must_change_password
        auth_service.change_password(
            session, user, current_password, new_password, now, keep_session_id=signed.session_id
        )
    except ValidationFailed as exc:
        if any(e.field == "current_password" for e in exc.errors):
            throttle.record_attempt(session, user.username, client_ip(request), False, now)
            log.warning("wrong current password on the password form of %s", user.username)
        return render(
            request,
            "account/password.html",
            status_code=422,
            errors={e.field: e.message for e in exc.errors},
            changed=False,
        )
    log.info("account %s changed its password", user.username)
    if was_forced:
        return RedirectResponse("/", status_code=303)
    return render(request, "account/password.html", errors={}, changed=True)


# --- API tokens ---------------------------------------------------------------------------


def _users_in_scope(session: Session, actor: Actor) -> list[User]:
    stmt = select(User).join(OrgUnit, OrgUnit.id == User.org_unit_id).order_by(User.username)
    if actor.org_path != "/":
        stmt = stmt.where(OrgUnit.path.startswith(actor.org_path, autoescape=True))
    return list(session.scalars(stmt.where(User.active.is_(True))))


def _integration_tokens(session: Session, actor: Actor) -> list[ApiToken]:
    stmt = (
        select(ApiToken)
        .join(User, User.id == ApiToken.user_id)
        .join(OrgUnit, OrgUnit.id == User.org_unit_id)
        .where(ApiToken.kind == TokenKind.INTEGRATION)
        .order_by(ApiToken.id.desc())
    )
    if actor.org_path != "/":
        stmt = stmt.where(OrgUnit.path.startswith(actor.org_path, autoescape=True))
    return list(session.scalars(stmt))


def _tokens_page(
    request: Request,
    session: Session,
    signed: Signed,
    now: dt.datetime,
    status_code: int = 200,
    **extra: object,
) -> Response:
    manage = signed.actor.can(TOKEN_MANAGE)
    context: dict[str, object] = {
        "tokens": auth_tokens.tokens_of(session, signed.user.id),
        "integration_tokens": _integration_tokens(session, signed.actor) if manage else [],
        "accounts": _users_in_scope(session, signed.actor) if manage else [],
        "can_manage": manage,
        "lifetimes": TOKEN_DAYS,
        "default_days": DEFAULT_TOKEN_DAYS,
        "now": now,
        "new_token": None,
        "errors": {},
    }
    context.update(extra)
    response = render(request, "account/tokens.html", status_code=status_code, **context)
    response.headers.update(NO_STORE)
    return response


@router.get("/account/tokens", response_class=HTMLResponse)
def tokens_page(
    request: Request, session: SessionDep, clock: ClockDep, signed: ConsoleUser
) -> Response:
    return _tokens_page(request, session, signed, clock())


@router.post("/account/tokens", dependencies=[CsrfDep], response_class=HTMLResponse)
def create_token(
    request: Request,
    session: SessionDep,
    clock: ClockDep,
    signed: ConsoleUser,
    name: str = Form(""),
    days: int = Form(DEFAULT_TOKEN_DAYS),
    kind: str = Form(TokenKind.PERSONAL.value),
    user_id: int | None = Form(None),
) -> Response:
    """Make a token; its clear text is on this one page and nowhere else."""
    now = clock()
    me = _me(session, signed)
    try:
        if days not in TOKEN_DAYS:
            raise ValidationFailed.one("days", _BAD_LIFETIME)
        owner = me
        token_kind = TokenKind.PERSONAL
        if kind == TokenKind.INTEGRATION.value:
            if not signed.actor.can(TOKEN_MANAGE):
                raise PermissionDenied(TOKEN_MANAGE)
            token_kind = TokenKind.INTEGRATION
            chosen = {u.id: u for u in _users_in_scope(session, signed.actor)}.get(user_id or -1)
            if chosen is None:
                raise ValidationFailed.one("user_id", _NO_SUCH_ACCOUNT)
            owner = chosen
        expires = now + dt.timedelta(days=days) if days else None
        clear, row = auth_tokens.create_token(
            session, owner, name, token_kind, expires, now, created_by=me
        )
    except ValidationFailed as exc:
        return _tokens_page(
            request,
            session,
            signed,
            now,
            status_code=422,
            errors={e.field: e.message for e in exc.errors},
        )
    return _tokens_page(request, session, signed, now, new_token=(row, clear))


@router.post("/account/tokens/{token_id}/revoke", dependencies=[CsrfDep])
def revoke_token(
    request: Request, session: SessionDep, clock: ClockDep, signed: ConsoleUser, token_id: int
) -> Response:
    """Revoke one's own token, or (with ``token.manage``) an integration token in one's area."""
    token = session.get(ApiToken, token_id)
    allowed = token is not None and (
        token.user_id == signed.user.id
        or (signed.actor.can(TOKEN_MANAGE) and token in _integration_tokens(session, signed.actor))
    )
    if token is None or not allowed:
        raise NotFound(f"token {token_id}")
    auth_tokens.revoke_token(session, token, clock())
    return RedirectResponse("/account/tokens", status_code=303)


# --- second factor ------------------------------------------------------------------------


def _totp_page(
    request: Request,
    node: Node,
    user: User,
    status_code: int = 200,
    error: str | None = None,
    done: str | None = None,
    locked_minutes: int | None = None,
) -> Response:
    secret = auth_totp.open_secret(node.cipher, user) if not user.totp_enabled else None
    response = render(
        request,
        "account/totp.html",
        status_code=status_code,
        enabled=user.totp_enabled,
        secret=secret,
        uri=auth_totp.provisioning_uri(secret, user.username) if secret else None,
        required=auth_totp.required_for(node.settings, user.role),
        error=error,
        done=done,
        locked_minutes=locked_minutes,
    )
    response.headers.update(NO_STORE)
    return response


@router.get("/account/totp", response_class=HTMLResponse)
def totp_page(
    request: Request, node: NodeDep, session: SessionDep, signed: ConsoleUser
) -> Response:
    return _totp_page(request, node, _me(session, signed))


@router.post("/account/totp", dependencies=[CsrfDep], response_class=HTMLResponse)
def totp_action(
    request: Request,
    node: NodeDep,
    session: SessionDep,
    clock: ClockDep,
    signed: ConsoleUser,
    action: str = Form(""),
    code: str = Form(""),
    password: str = Form(""),
) -> Response:
    """``start`` a set-up, ``confirm`` it with a code, or ``disable`` with password and code."""
    now = clock()
    user = _me(session, signed)
    if action == "start" and not user.totp_enabled:
        auth_totp.start_enrolment(node.cipher, user)
        return _totp_page(request, node, user)
    if action == "confirm" and not user.totp_enabled:
        if not auth_totp.confirm_enrolment(node.cipher, user, code, now):
            log.warning("second-factor set-up of %s: wrong code", user.username)
            return _totp_page(request, node, user, status_code=422, error=_WRONG_CODE)
        log.info("account %s turned on the second factor", user.username)
        if signed.user.totp_required:
            return RedirectResponse("/", status_code=303)
        return _totp_page(request, node, user, done="on")
    if action == "disable" and user.totp_enabled:
        if auth_totp.required_for(node.settings, user.role):
            return _totp_page(request, node, user, status_code=422, error=_TOTP_KEPT)
        lock = signin.lock_of(request, session, node, user.username, now)
        if lock is not None:
            return _totp_page(
                request, node, user, status_code=429, locked_minutes=lock.minutes_left(now)
            )
        if not auth_service.check_password(user.password_hash, password):
            throttle.record_attempt(session, user.username, client_ip(request), False, now)
            log.warning("second factor of %s not turned off: wrong password", user.username)
            return _totp_page(request, node, user, status_code=422, error=_WRONG_PASSWORD)
        if not auth_totp.check_user_code(node.cipher, user, code, now):
            throttle.record_attempt(session, user.username, client_ip(request), False, now)
            log.warning("second factor of %s not turned off: wrong code", user.username)
            return _totp_page(request, node, user, status_code=422, error=_WRONG_CODE)
        auth_totp.disable(user)
        log.info("account %s turned off the second factor", user.username)
        return _totp_page(request, node, user, done="off")
    return RedirectResponse("/account/totp", status_code=303)


# --- notification preferences -------------------------------------------------------------


def _notify_page(
    request: Request,
    ctx: ConsoleCtx,
    status_code: int = 200,
    errors: dict[str, str] | None = None,
    saved: bool = False,
    values: dict[str, object] | None = None,
) -> Response:
    user_id = ctx.actor.user_id
    assert user_id is not None  # a console session always has an account
    pref = notify.prefs_of(ctx.session, user_id)
    shown: dict[str, object] = {
        "min_severity": pref.min_severity.value,
        "console_sound": pref.console_sound,
        "email": pref.email or "",
        "sms": pref.sms,
        "phone": notify.open_phone(ctx.cipher, pref),
    }
    shown.update(values or {})
    response = render(
        request,
        "account/notifications.html",
        status_code=status_code,
        values=shown,
        severities=list(Severity),
        errors=errors or {},
        saved=saved,
    )
    response.headers.update(NO_STORE)  # the page shows one's own phone number
    return response


@router.get("/account/notifications", response_class=HTMLResponse)
def notifications_page(request: Request, ctx: ConsoleCtx) -> Response:
    """How alerts sent to oneself (or to one's role) reach one."""
    return _notify_page(request, ctx)


@router.post("/account/notifications", dependencies=[CsrfDep], response_class=HTMLResponse)
def save_notifications(
    request: Request,
    ctx: ConsoleCtx,
    min_severity: str = Form("low"),
    console_sound: str = Form(""),
    email: str = Form(""),
    sms: str = Form(""),
    phone: str = Form(""),
) -> Response:
    """Save one's notification preferences; a wrong field comes back named."""
    user_id = ctx.actor.user_id
    assert user_id is not None
    values: dict[str, object] = {
        "min_severity": min_severity,
        "console_sound": bool(console_sound),
        "email": email,
        "sms": bool(sms),
        "phone": phone,
    }
    try:
        notify.save_prefs(
            ctx.session,
            ctx.cipher,
            user_id,
            min_severity=min_severity,
            console_sound=bool(console_sound),
            email=email,
            sms=bool(sms),
            phone=phone,
        )
    except ValidationFailed as exc:
        ctx.session.rollback()
        errors = {e.field: e.message for e in exc.errors}
        return _notify_page(request, ctx, 422, errors=errors, values=values)
    log.info("account %s saved its notification preferences", ctx.actor.username)
    return _notify_page(request, ctx, saved=True)


# --- second step of signing in ------------------------------------------------------------


def _expired(request: Request) -> Response:
    response = render(
        request,
        "login.html",
        status_code=401,
        next="/",
        error="The sign-in took too long; sign in again",
    )
    response.delete_cookie(signin.CHALLENGE_COOKIE, path=signin.CHALLENGE_PATH)
    return response


@router.get("/login/totp", response_class=HTMLResponse)
def code_page(
    request: Request, node: NodeDep, session: SessionDep, clock: ClockDep, next: str = "/"
) -> Response:
    token = request.cookies.get(signin.CHALLENGE_COOKIE, "")
    if auth_totp.read_challenge(session, node.cipher, token, clock()) is None:
        return RedirectResponse("/login", status_code=303)
    return signin.code_page(request, next)


@router.post("/login/totp", dependencies=[LoginCsrfDep])
def submit_code(
    request: Request,
    node: NodeDep,
    session: SessionDep,
    clock: ClockDep,
    code: str = Form(""),
    next: str = Form("/"),
) -> Response:
    """Check the code of a pending sign-in and open the session."""
    now = clock()
    token = request.cookies.get(signin.CHALLENGE_COOKIE, "")
    pending = auth_totp.read_challenge(session, node.cipher, token, now)
    if pending is None:
        log.warning("second sign-in step refused: no valid pending sign-in")
        return _expired(request)
    _, user = pending
    locked = signin.refuse_if_locked(
        request, session, node, user.username, now, "login.html", next=next, error=None
    )
    if locked is not None:
        return locked
    if not auth_totp.check_user_code(node.cipher, user, code, now):
        throttle.record_attempt(session, user.username, client_ip(request), False, now)
        signin.audit_failure(session, user.username, "code")
        log.warning(
            "wrong second-factor code for account %s from %s",
            user.username,
            client_ip(request) or "?",
        )
        return signin.code_page(request, next, status_code=401, error=_WRONG_CODE)
    return signin.open_session(request, session, node, user, now, next)
