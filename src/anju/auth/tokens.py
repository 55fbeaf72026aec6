"""API bearer tokens and device credentials: random secrets, shown once, stored hashed.

An API token (``anju_…``) acts as the account that owns it: same role, same scope, so a
token can never see more than its owner. A device credential (``anjud_<device id>_…``)
identifies one device to the ingestion endpoints; a device has at most one live credential.
Only SHA-256 digests are stored (the secrets are long and random, so a slow password hash
would add nothing), plus a short prefix by which people recognise a secret in lists.
"""

from __future__ import annotations

import datetime as dt
import enum
import hashlib
import logging
import secrets
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from anju.auth.models import ApiToken, DeviceCredential, TokenKind, User
from anju.auth.service import actor_for
from anju.core.errors import ValidationFailed
from anju.core.scope import Actor
from anju.devices.models import Device, DeviceStatus

log = logging.getLogger(__name__)

TOKEN_PREFIX = "anju_"
DEVICE_PREFIX = "anjud_"
SHOWN_CHARS = 8  # random characters kept after the fixed prefix, to recognise a secret
# Writing last_used_at on every request would make each API call a write; once a minute is
# precise enough to tell which tokens are still in use.
USE_RESOLUTION = dt.timedelta(minutes=1)
# Devices that may no longer send: a disabled or scrapped device's credential is refused.
_SILENT_DEVICES = frozenset({DeviceStatus.INACTIVE, DeviceStatus.RETIRED})

_NO_NAME = "give the token a name"
_TOO_LONG_NAME = "the name is too long (at most 60 characters)"


def digest(secret: str) -> str:
    """The stored form of a token or device secret."""
    return hashlib.sha256(secret.encode()).hexdigest()


def shown_prefix(secret: str) -> str:
    """What may be shown or logged of a secret: its fixed prefix and a few characters."""
    if secret.startswith(DEVICE_PREFIX):
        head, _, rest = secret[len(DEVICE_PREFIX) :].partition("_")
        return f"{DEVICE_PREFIX}{head[:12]}_{rest[:SHOWN_CHARS]}"
    if secret.startswith(TOKEN_PREFIX):
        return secret[: len(TOKEN_PREFIX) + SHOWN_CHARS]
    return "(not an Anju secret)"


# --- API tokens ---------------------------------------------------------------------------


class TokenProblem(enum.StrEnum):
    """Why a bearer token was refused (the answer names it; the token's holder may know)."""

    UNKNOWN = "unknown"
    REVOKED = "revoked"
    EXPIRED = "expired"
    INACTIVE = "inactive"  # the owning account is disabled


@dataclass(frozen=True)
class TokenCheck:
    """The result of checking a bearer token: the token row, or why it was refused."""

    token: ApiToken | None
    problem: TokenProblem | None


def create_token(
    session: Session,
    user: User,
    name: str,
    kind: TokenKind,
    expires: dt.datetime | None,
    now: dt.datetime,
    created_by: User | None = None,
) -> tuple[str, ApiToken]:
    """Make a token for ``user``; returns the clear token (shown once) and its row."""
    name = name.strip()
    if not name:
        raise ValidationFailed.one("name", _NO_NAME)
    if len(name) > 60:
        raise ValidationFailed.one("name", _TOO_LONG_NAME)
    clear = TOKEN_PREFIX + secrets.token_urlsafe(32)
    row = ApiToken(
        user_id=user.id,
        name=name,
        kind=kind,
        prefix=shown_prefix(clear),
        token_hash=digest(clear),
        created_by_id=(created_by or user).id,
        created_at=now,
        expires_at=expires,
    )
    session.add(row)
    session.flush()
    log.info("API token %s (%s) made for account %s", row.prefix, kind.value, user.username)
    return clear, row


def revoke_token(session: Session, token: ApiToken, now: dt.datetime) -> bool:
    """Revoke a token; returns False when it was already revoked."""
    if token.revoked_at is not None:
        return False
    token.revoked_at = now
    log.info("API token %s of account %s revoked", token.prefix, token.user.username)
    return True


def check_token(session: Session, clear: str, now: dt.datetime) -> TokenCheck:
    """Look a bearer token up; a usable one has its last use noted."""
    if not clear.startswith(TOKEN_PREFIX):
        return TokenCheck(None, TokenProblem.UNKNOWN)
    row = session.scalar(select(ApiToken).where(ApiToken.token_hash == digest(clear)))
    if row is None:
        return TokenCheck(None, TokenProblem.UNKNOWN)
    if row.revoked_at is not None:
        return TokenCheck(row, TokenProblem.REVOKED)
    if row.expires_at is not None and row.expires_at <= now:
        return TokenCheck(row, TokenProblem.EXPIRED)
    if not row.user.active:
        return TokenCheck(row, TokenProblem.INACTIVE)
    if row.last_used_at is None or now - row.last_used_at >= USE_RESOLUTION:
        row.last_used_at = now
    return TokenCheck(row, None)


def token_actor(session: Session, clear: str, now: dt.datetime) -> Actor | None:
    """The actor a bearer token stands for, or None if it is unknown, revoked or expired."""
    found = check_token(session, clear, now)
    if found.token is None or found.problem is not None:
        return None
    return actor_for(found.token.user)


def tokens_of(session: Session, user_id: int) -> list[ApiToken]:
    """An account's tokens, newest first (revoked ones too: the list is also a record)."""
    stmt = select(ApiToken).where(ApiToken.user_id == user_id).order_by(ApiToken.id.desc())
    return list(session.scalars(stmt))


def find_by_prefix(session: Session, prefix: str) -> list[ApiToken]:
    """Tokens whose shown prefix starts with ``prefix`` (for revoking from the command line)."""
    stmt = select(ApiToken).where(ApiToken.prefix.startswith(prefix, autoescape=True))
    return list(session.scalars(stmt.order_by(ApiToken.id)))


# --- device credentials -------------------------------------------------------------------


def issue_device_credential(session: Session, device: Device, now: dt.datetime) -> str:
    """A new secret for ``device`` (shown once); any earlier credential is revoked."""
    for old in session.scalars(
        select(DeviceCredential).where(
            DeviceCredential.device_id == device.id, DeviceCredential.revoked_at.is_(None)
        )
    ):
        old.revoked_at = now
        log.info("device credential %s of device %s replaced", old.prefix, device.code)
    clear = f"{DEVICE_PREFIX}{device.id}_{secrets.token_urlsafe(32)}"
    row = DeviceCredential(
        device_id=device.id,
        prefix=shown_prefix(clear),
        secret_hash=digest(clear),
        created_at=now,
    )
    session.add(row)
    session.flush()
    log.info("device credential %s issued for device %s", row.prefix, device.code)
    return clear


def device_for_credential(session: Session, secret: str, now: dt.datetime) -> Device | None:
    """The device a secret belongs to, if the secret is live and the device may send."""
    if not secret.startswith(DEVICE_PREFIX):
        return None
    head = secret[len(DEVICE_PREFIX) :].partition("_")[0]
    if not head.isdigit():
        return None
    row = session.scalar(
        select(DeviceCredential).where(DeviceCredential.secret_hash == digest(secret))
    )
    if row is None or row.revoked_at is not None or row.device_id != int(head):
        log.warning("device credential %s refused", shown_prefix(secret))
        return None
    device = row.device
    if device.status in _SILENT_DEVICES:
        log.warning("device %s is %s; its credential is refused", device.code, device.status)
        return None
    if row.last_used_at is None or now - row.last_used_at >= USE_RESOLUTION:
        row.last_used_at = now
    return device


def revoke_device_credentials(session: Session, device: Device, now: dt.datetime) -> int:
    """Revoke a device's live credential(s); returns how many."""
    count = 0
    for row in session.scalars(
        select(DeviceCredential).where(
            DeviceCredential.device_id == device.id, DeviceCredential.revoked_at.is_(None)
        )
    ):
        row.revoked_at = now
        count += 1
    return count
