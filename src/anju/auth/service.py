"""Passwords, accounts and console sessions."""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from anju.auth.defaults import DEFAULT_ROLES, DEFAULT_TAGS
from anju.auth.models import LoginSession, Role, User
from anju.core.errors import ValidationFailed
from anju.core.scope import Actor
from anju.registry.models import Tag

_hasher = PasswordHasher()  # argon2id with the library's recommended parameters
MIN_PASSWORD = 10


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def check_password(stored: str, password: str) -> bool:
    try:
        return _hasher.verify(stored, password)
    except (VerificationError, InvalidHashError):
        return False


def new_password() -> str:
    """A random password people can type: 16 URL-safe characters."""
    return secrets.token_urlsafe(12)


# A constant (not an f-string) so the console catalogue can translate it; keep in step.
_TOO_SHORT = "password needs at least 10 characters"


def validate_password(password: str) -> None:
    """The rule every new password follows: at least ``MIN_PASSWORD`` characters."""
    if len(password) < MIN_PASSWORD:
        raise ValidationFailed.one("password", _TOO_SHORT)


_WRONG_CURRENT = "the current password is wrong"
_SAME_AS_CURRENT = "the new password must differ from the current one"
_SAME_AS_USERNAME = "the password must not be the user name"


def set_password(
    session: Session,
    user: User,
    password: str,
    now: dt.datetime,
    *,
    must_change: bool = False,
    keep_session_id: int | None = None,
) -> None:
    """Give ``user`` a new password and end their sessions (all but ``keep_session_id``)."""
    validate_password(password)
    if password.casefold() == user.username.casefold():
        raise ValidationFailed.one("password", _SAME_AS_USERNAME)
    user.password_hash = hash_password(password)
    user.password_changed_at = now
    user.must_change_password = must_change
    end_sessions(session, user, now, keep_session_id=keep_session_id)


def change_password(
    session: Session,
    user: User,
    current: str,
    new: str,
    now: dt.datetime,
    keep_session_id: int | None = None,
) -> None:
    """The account holder's own change: the current password proves it is them.

    The new password follows :func:`validate_password`, differs from the current one and
    from the user name; the account's other sessions end and a forced change is satisfied.
    """
    if not check_password(user.password_hash, current):
        raise ValidationFailed.one("current_password", _WRONG_CURRENT)
    if new == current:
        raise ValidationFailed.one("new_password", _SAME_AS_CURRENT)
    try:
        set_password(session, user, new, now, keep_session_id=keep_session_id)
    except ValidationFailed as exc:
        # The rules speak of "password"; on this form the field is the new one.
        raise ValidationFailed.one("new_password", exc.errors[0].message) from None


def end_sessions(
    session: Session, user: User, now: dt.datetime, keep_session_id: int | None = None
) -> int:
    """Revoke the account's open console sessions except one; returns how many ended."""
    stmt = select(LoginSession).where(
        LoginSession.user_id == user.id, LoginSession.revoked_at.is_(None)
    )
    if keep_session_id is not None:
        stmt = stmt.where(LoginSession.id != keep_session_id)
    ended = 0
    for login in session.scalars(stmt):
        login.revoked_at = now
        ended += 1
    return ended


def seed_defaults(session: Session) -> None:
    """Insert the shipped roles and tags that are missing (never overwrites edits)."""
    have_roles = set(session.scalars(select(Role.code)))
    for code, name, name_en, police, perms in DEFAULT_ROLES:
        if code not in have_roles:
            session.add(
                Role(code=code, name=name, name_en=name_en, police=police, permissions=perms)
            )
    have_tags = set(session.scalars(select(Tag.code)))
    for code, name, name_en, police_only in DEFAULT_TAGS:
        if code not in have_tags:
            session.add(Tag(code=code, name=name, name_en=name_en, police_only=police_only))
    session.flush()


def create_user(
    session: Session,
    *,
    username: str,
    display_name: str,
    password: str,
    role_code: str,
    org_unit_id: int,
    person_id: int | None = None,
    must_change_password: bool = False,
) -> User:
    validate_password(password)
    if session.scalar(select(User.id).where(User.username == username)) is not None:
        raise ValidationFailed.one("username", "this user name is taken")
    if session.get(Role, role_code) is None:
        raise ValidationFailed.one("role_code", f"role {role_code} does not exist")
    user = User(
        username=username,
        display_name=display_name,
        password_hash=hash_password(password),
        role_code=role_code,
        org_unit_id=org_unit_id,
        person_id=person_id,
        must_change_password=must_change_password,
    )
    session.add(user)
    session.flush()
    return user


def actor_for(user: User) -> Actor:
    return Actor(
        user_id=user.id,
        username=user.username,
        org_path=user.org_unit.path,
        permissions=frozenset(user.role.permissions),
        police=user.role.police,
        person_id=user.person_id,
    )


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def authenticate(session: Session, username: str, password: str) -> User | None:
    user = session.scalar(select(User).where(User.username == username))
    if user is None:
        # Spend the same time as a real check so timing does not reveal which names exist.
        check_password(_DUMMY_HASH, password)
        return None
    if not user.active or not check_password(user.password_hash, password):
        return None
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
    return user


def start_session(
    session: Session, user: User, now: dt.datetime, hours: int, ip: str | None
) -> tuple[str, LoginSession]:
    """Open a console session; returns the cookie token (only its hash is stored)."""
    token = secrets.token_urlsafe(32)
    row = LoginSession(
        token_hash=_token_hash(token),
        user_id=user.id,
        csrf_token=secrets.token_urlsafe(24),
        created_at=now,
        expires_at=now + dt.timedelta(hours=hours),
        ip=ip,
    )
    user.last_login_at = now
    session.add(row)
    session.flush()
    return token, row


def session_for(session: Session, token: str, now: dt.datetime) -> LoginSession | None:
    row = session.scalar(select(LoginSession).where(LoginSession.token_hash == _token_hash(token)))
    if row is None or row.revoked_at is not None or row.expires_at <= now or not row.user.active:
        return None
    return row


def end_session(session: Session, token: str, now: dt.datetime) -> None:
    row = session.scalar(select(LoginSession).where(LoginSession.token_hash == _token_hash(token)))
    if row is not None and row.revoked_at is None:
        row.revoked_at = now


_DUMMY_HASH = _hasher.hash("anju-timing-equaliser")
