"""Second factor (双因素认证): time-based one-time codes (RFC 6238) and the pending sign-in.

The TOTP secret is sealed with the node's field cipher. A code is accepted within one time
step either side (clock drift of a phone) and only once: the accepted step is remembered.

Between the password and the code no session exists. The pending sign-in is a short-lived
challenge signed with a key derived from the node's master key (the field cipher's keyed
hash), carried in a cookie: ``v1.<user id>.<issued unix time>.<nonce>.<mac>``. The MAC also
covers the account's current password hash, so changing the password voids every pending
challenge; it expires after ``CHALLENGE_TTL``. Nothing is stored for a challenge, so nothing
needs cleaning up and any worker of the node can check it.
"""

from __future__ import annotations

import datetime as dt
import hmac
import secrets
from dataclasses import dataclass

import pyotp
from sqlalchemy.orm import Session

from anju.auth.models import Role, User
from anju.config import Settings
from anju.core.crypto import FieldCipher

ISSUER = "Anju"
SECRET_CONTEXT = "users.totp_secret"
CHALLENGE_CONTEXT = "auth/login-challenge/v1"
CHALLENGE_TTL = dt.timedelta(minutes=5)
STEP_SECONDS = 30
VALID_WINDOW = 1  # steps either side


def new_secret() -> str:
    """A fresh base32 TOTP secret (160 bits)."""
    return pyotp.random_base32(length=32)


def seal_secret(cipher: FieldCipher, secret: str) -> bytes:
    return cipher.encrypt(secret, SECRET_CONTEXT)


def open_secret(cipher: FieldCipher, user: User) -> str | None:
    """The clear secret of ``user`` (enrolled or pending), if any."""
    if user.totp_secret_enc is None:
        return None
    return cipher.decrypt(user.totp_secret_enc, SECRET_CONTEXT)


def provisioning_uri(secret: str, username: str) -> str:
    """The ``otpauth://`` URI an authenticator app imports."""
    return pyotp.TOTP(secret, interval=STEP_SECONDS).provisioning_uri(
        name=username, issuer_name=ISSUER
    )


def _step(when: dt.datetime) -> int:
    return int(when.timestamp()) // STEP_SECONDS


def verify_code(secret: str, code: str, now: dt.datetime, last_step: int | None) -> int | None:
    """The time step a code matches (within the window), or None; steps not after
    ``last_step`` are refused so a code cannot be replayed."""
    code = code.strip().replace(" ", "")
    if len(code) != 6 or not code.isdigit():
        return None
    totp = pyotp.TOTP(secret, interval=STEP_SECONDS)
    current = _step(now)
    # What pyotp's verify(valid_window=1) does, keeping the matched step for replay checks.
    for step in range(current - VALID_WINDOW, current + VALID_WINDOW + 1):
        if hmac.compare_digest(totp.generate_otp(step), code):
            if last_step is not None and step <= last_step:
                return None
            return step
    return None


def check_user_code(cipher: FieldCipher, user: User, code: str, now: dt.datetime) -> bool:
    """Check a code against the user's secret and, if good, remember its step."""
    secret = open_secret(cipher, user)
    if secret is None:
        return False
    step = verify_code(secret, code, now, user.totp_last_step)
    if step is None:
        return False
    user.totp_last_step = step
    return True


def start_enrolment(cipher: FieldCipher, user: User) -> str:
    """Give the user a pending secret (kept until confirmed or replaced); returns it."""
    secret = open_secret(cipher, user) if not user.totp_enabled else None
    if secret is None:
        secret = new_secret()
        user.totp_secret_enc = seal_secret(cipher, secret)
        user.totp_last_step = None
    return secret


def confirm_enrolment(cipher: FieldCipher, user: User, code: str, now: dt.datetime) -> bool:
    """Turn the second factor on once the app shows the right code."""
    if user.totp_enabled or not check_user_code(cipher, user, code, now):
        return False
    user.totp_enabled = True
    return True


def disable(user: User) -> None:
    """Turn the second factor off and forget the secret."""
    user.totp_enabled = False
    user.totp_secret_enc = None
    user.totp_last_step = None


def required_for(settings: Settings, role: Role) -> bool:
    """Whether this role must have a second factor under the node's settings."""
    return settings.require_totp_for_police and role.police


# --- pending sign-in ----------------------------------------------------------------------


@dataclass(frozen=True)
class Challenge:
    """A verified pending sign-in: who, and when the password was checked."""

    user_id: int
    issued_at: dt.datetime


def _mac(cipher: FieldCipher, body: str, password_hash: str) -> str:
    return cipher.lookup_hash(f"{body}\x00{password_hash}", CHALLENGE_CONTEXT)


def issue_challenge(cipher: FieldCipher, user: User, now: dt.datetime) -> str:
    """A signed pending sign-in for ``user`` whose password was just checked."""
    body = f"v1.{user.id}.{int(now.timestamp())}.{secrets.token_urlsafe(12)}"
    return f"{body}.{_mac(cipher, body, user.password_hash)}"


def read_challenge(
    session: Session, cipher: FieldCipher, token: str, now: dt.datetime
) -> tuple[Challenge, User] | None:
    """Check a pending sign-in: well formed, signed by this node, fresh, account usable."""
    parts = token.split(".")
    if len(parts) != 5 or parts[0] != "v1" or not parts[1].isdigit() or not parts[2].isdigit():
        return None
    body, mac = ".".join(parts[:4]), parts[4]
    issued = dt.datetime.fromtimestamp(int(parts[2]), dt.UTC)
    if not (issued <= now + dt.timedelta(seconds=5) and now - issued <= CHALLENGE_TTL):
        return None
    user = session.get(User, int(parts[1]))
    if user is None or not user.active or not user.totp_enabled:
        return None
    if not hmac.compare_digest(mac, _mac(cipher, body, user.password_hash)):
        return None
    return Challenge(user.id, issued), user
