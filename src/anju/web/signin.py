"""Steps shared by the sign-in pages: throttling, opening a session, the cookies involved."""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from fastapi import Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from anju.audit import service as audit
from anju.auth import service as auth_service
from anju.auth import throttle
from anju.auth import totp as auth_totp
from anju.auth.models import User
from anju.bootstrap import Node
from anju.core.crypto import mask
from anju.web.deps import LOGIN_CSRF_COOKIE, SESSION_COOKIE, client_ip
from anju.web.templating import render

log = logging.getLogger(__name__)

CHALLENGE_COOKIE = "anju_login_challenge"
CHALLENGE_PATH = "/login"


def secure_cookies(request: Request) -> bool:
    """Cookies are Secure when the settings say so, else when the request came over HTTPS."""
    forced: bool | None = request.app.state.node.settings.secure_cookies
    return forced if forced is not None else request.url.scheme == "https"


def safe_next(target: str | None) -> str:
    """Only same-site paths are followed after sign-in (no open redirects)."""
    if target and target.startswith("/") and not target.startswith("//"):
        return target
    return "/"


def attempt_name(session: Session, node: Node, typed: str) -> str:
    """The name a sign-in attempt is recorded and throttled under.

    An existing account's user name as it is; anything else (a typo, a guess, an ID number
    typed into the wrong box) only as a keyed hash, so no stray personal data is stored.
    """
    typed = typed[: throttle.USERNAME_MAX]
    if session.scalar(select(User.id).where(User.username == typed)) is not None:
        return typed
    return "#" + node.cipher.lookup_hash(typed, "login_attempts.username")[:40]


def shown_name(name: str, typed: str) -> str:
    """How a typed user name appears in the log: as is for an account, else masked."""
    return (
        repr(typed[:60]) if name == typed[: throttle.USERNAME_MAX] else f"unknown {mask(typed)!r}"
    )


def lock_of(
    request: Request, session: Session, node: Node, username: str, now: dt.datetime
) -> throttle.Lock | None:
    """The lock refusing this account or address now, if any (logged).

    ``username`` is the attempt's recorded name (see :func:`attempt_name`).
    """
    ip = client_ip(request)
    lock = throttle.lock_for(
        session, username, ip, now, throttle.LoginPolicy.from_settings(node.settings)
    )
    if lock is not None:
        log.warning(
            "sign-in refused: %s locked (account %s from %s) until %s",
            lock.reason.value,
            username[:60],
            ip or "?",
            lock.until.isoformat(timespec="seconds"),
        )
    return lock


def refuse_if_locked(
    request: Request,
    session: Session,
    node: Node,
    username: str,
    now: dt.datetime,
    page: str,
    **context: Any,
) -> Response | None:
    """A 429 page when the account or the address is locked, so the secret is not checked.

    ``page`` is rendered with ``context`` and ``locked_minutes`` (what is left of the lock).
    """
    lock = lock_of(request, session, node, username, now)
    if lock is None:
        return None
    response = render(
        request, page, status_code=429, locked_minutes=lock.minutes_left(now), **context
    )
    response.headers["Retry-After"] = str(max(1, int((lock.until - now).total_seconds())))
    return response


def audit_failure(session: Session, name: str, reason: str) -> None:
    """Put a refused sign-in (wrong password or code) in the audit log.

    ``name`` is the attempt's recorded name, so a mistyped identity stays a hash. Attempts
    refused by a lock are only logged: under attack they would flood the audit log.
    """
    user_id = session.scalar(select(User.id).where(User.username == name))
    audit.record(
        session,
        audit.Action.LOGIN_FAILURE,
        entity="users" if user_id is not None else None,
        entity_id=user_id,
        detail={"account": name, "reason": reason},
    )


def open_session(
    request: Request, session: Session, node: Node, user: User, now: dt.datetime, target: str
) -> Response:
    """Record the success, start the console session and send the browser on."""
    ip = client_ip(request)
    throttle.record_attempt(session, user.username, ip, True, now)
    token, _ = auth_service.start_session(session, user, now, node.settings.session_hours, ip)
    audit.record(
        session,
        audit.Action.LOGIN_SUCCESS,
        entity="users",
        entity_id=user.id,
        detail={"second_factor": user.totp_enabled},
        actor=auth_service.actor_for(user),
    )
    log.info("account %s signed in from %s", user.username, ip or "?")
    response = RedirectResponse(safe_next(target), status_code=303)
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=node.settings.session_hours * 3600,
        httponly=True,
        samesite="lax",
        secure=secure_cookies(request),
    )
    response.delete_cookie(LOGIN_CSRF_COOKIE)
    response.delete_cookie(CHALLENGE_COOKIE, path=CHALLENGE_PATH)
    return response


def code_page(request: Request, target: str, status_code: int = 200, **extra: object) -> Response:
    """The page asking for the 6-digit code of the second factor."""
    context: dict[str, object] = {"next": safe_next(target), "error": None}
    context.update(extra)
    return render(request, "account/login_totp.html", status_code=status_code, **context)


def ask_for_code(
    request: Request, node: Node, user: User, now: dt.datetime, target: str
) -> Response:
    """After a good password, for an account with a second factor: no session yet."""
    challenge = auth_totp.issue_challenge(node.cipher, user, now)
    response = code_page(request, target)
    response.set_cookie(
        CHALLENGE_COOKIE,
        challenge,
        max_age=int(auth_totp.CHALLENGE_TTL.total_seconds()),
        path=CHALLENGE_PATH,
        httponly=True,
        samesite="strict",
        secure=secure_cookies(request),
    )
    log.info("account %s passed the password step; code asked for", user.username)
    return response
