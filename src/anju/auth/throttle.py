"""Sign-in throttling: lock an account, or block an address, after repeated failures.

Every attempt that reaches the password check is recorded. An account is locked when its
last ``max_failures`` failures (since its last success) fall within ``window``; an address
is blocked the same way with ``ip_max_failures``, and a success does not lift that block —
one good password must not whitewash a guessing run across many accounts. Either refusal
lasts ``lockout`` from the last failure that counted. Attempts refused by a lock are not
recorded, so a lock ends on time rather than being stretched by whoever keeps knocking.
Time is passed in, never read here.
"""

from __future__ import annotations

import datetime as dt
import enum
from dataclasses import dataclass

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from anju.auth.models import LoginAttempt
from anju.config import Settings

USERNAME_MAX = 60
IP_MAX = 64
# Attempts older than this are of no use to throttling and are deleted as new ones arrive.
KEEP = dt.timedelta(days=7)


@dataclass(frozen=True)
class LoginPolicy:
    """The throttling numbers (from settings)."""

    max_failures: int = 5
    ip_max_failures: int = 20
    window: dt.timedelta = dt.timedelta(minutes=15)
    lockout: dt.timedelta = dt.timedelta(minutes=15)

    @classmethod
    def from_settings(cls, settings: Settings) -> LoginPolicy:
        return cls(
            max_failures=settings.login_max_failures,
            ip_max_failures=settings.login_ip_max_failures,
            window=dt.timedelta(minutes=settings.login_window_minutes),
            lockout=dt.timedelta(minutes=settings.login_lockout_minutes),
        )


class LockReason(enum.StrEnum):
    ACCOUNT = "account"
    ADDRESS = "address"


@dataclass(frozen=True)
class Lock:
    """Why sign-in is refused and until when."""

    reason: LockReason
    until: dt.datetime

    def minutes_left(self, now: dt.datetime) -> int:
        """Whole minutes to wait, rounded up (at least one)."""
        seconds = (self.until - now).total_seconds()
        return max(1, int(-(-seconds // 60)))


def _clip(username: str) -> str:
    return username[:USERNAME_MAX]


def record_attempt(
    session: Session, username: str, ip: str | None, success: bool, now: dt.datetime
) -> None:
    """Remember one attempt (and forget those too old to matter)."""
    session.execute(delete(LoginAttempt).where(LoginAttempt.at < now - KEEP))
    session.add(
        LoginAttempt(
            at=now,
            username=_clip(username),
            ip=ip[:IP_MAX] if ip else None,
            success=success,
        )
    )
    session.flush()


def _lock_from(
    failures: list[dt.datetime], limit: int, policy: LoginPolicy, now: dt.datetime
) -> dt.datetime | None:
    """Given the newest failures (newest first), when the resulting lock ends, if any."""
    if len(failures) < limit:
        return None
    newest, oldest = failures[0], failures[limit - 1]
    if newest - oldest > policy.window:
        return None
    until = newest + policy.lockout
    return until if until > now else None


def lock_for(
    session: Session, username: str, ip: str | None, now: dt.datetime, policy: LoginPolicy
) -> Lock | None:
    """The lock that refuses this attempt, if any: the address's first, then the account's."""
    horizon = now - policy.window - policy.lockout
    if ip:
        ip_failures = list(
            session.scalars(
                select(LoginAttempt.at)
                .where(
                    LoginAttempt.ip == ip[:IP_MAX],
                    LoginAttempt.success.is_(False),
                    LoginAttempt.at > horizon,
                )
                .order_by(LoginAttempt.at.desc(), LoginAttempt.id.desc())
                .limit(policy.ip_max_failures)
            )
        )
        until = _lock_from(ip_failures, policy.ip_max_failures, policy, now)
        if until is not None:
            return Lock(LockReason.ADDRESS, until)
    name = _clip(username)
    # Ids, not times, order a success against failures: two attempts may share a timestamp.
    last_success = session.scalar(
        select(func.max(LoginAttempt.id)).where(
            LoginAttempt.username == name, LoginAttempt.success.is_(True)
        )
    )
    account_failures = list(
        session.scalars(
            select(LoginAttempt.at)
            .where(
                LoginAttempt.username == name,
                LoginAttempt.success.is_(False),
                LoginAttempt.at > horizon,
                LoginAttempt.id > (last_success or 0),
            )
            .order_by(LoginAttempt.at.desc(), LoginAttempt.id.desc())
            .limit(policy.max_failures)
        )
    )
    until = _lock_from(account_failures, policy.max_failures, policy, now)
    return Lock(LockReason.ACCOUNT, until) if until is not None else None


def is_locked(
    session: Session, username: str, ip: str | None, now: dt.datetime, policy: LoginPolicy
) -> bool:
    """Whether a sign-in for ``username`` from ``ip`` is refused now."""
    return lock_for(session, username, ip, now, policy) is not None
