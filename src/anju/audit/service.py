"""Appending to the audit log, and reading it back.

The hash chain
--------------
Every row stores ``prev_hash`` (the ``hash`` of the row before it; the first row has
:data:`GENESIS_HASH`) and its own ``hash``::

    hash = sha256_hex(prev_hash + canonical_json(fields))

``fields`` are all stored columns except the two hashes: ``id``, ``at``, ``actor_user_id``,
``actor_name``, ``action``, ``entity``, ``entity_id``, ``community_id``, ``detail`` and ``ip``.
Canonical JSON is ``json.dumps`` with sorted keys, no whitespace, UTF-8 text
(``ensure_ascii=False``) and no NaN; ``at`` is written ``YYYY-MM-DDTHH:MM:SS.ffffffZ`` in
UTC, which both SQLite (text) and PostgreSQL (``timestamptz``, microseconds) give back
unchanged. So a row can be re-hashed from what is stored in it alone.

The id is hashed too, and assigned here as the last id + 1 rather than by the database:
ids are contiguous, so removing a row leaves a gap that :mod:`anju.audit.verify` names.

Concurrency
-----------
Reading the last row and inserting the next must not interleave with another
transaction doing the same, or the chain would fork. On PostgreSQL the appender takes
``pg_advisory_xact_lock(LOCK_KEY)`` first; it is held until the transaction ends, so the
next appender reads the last row only after this one committed or rolled back. SQLite
has one writer at a time; the appender takes the write lock *before* reading, by
appending nothing (``INSERT … SELECT … WHERE 0``, which needs the lock and waits for it up
to ``busy_timeout``). A SQLite transaction that read other tables earlier holds an older
snapshot and cannot take the lock once another writer has committed ("database is
locked"): it fails, it does not fork the chain. As a last line of defence the primary
key and the unique ``prev_hash`` refuse a second row claiming the same place.
Keep audited transactions short: they serialise on this lock until they commit.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import decimal
import enum
import hashlib
import json
import math
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import Connection, Select, Table, insert, select, text
from sqlalchemy.orm import Session

from anju.audit.models import AuditEntry
from anju.core.db import utcnow
from anju.core.scope import Actor, communities_in_scope

GENESIS_HASH = "0" * 64
# The advisory lock that serialises appends on PostgreSQL ("anjuaudt" as a 64-bit int).
LOCK_KEY = int.from_bytes(b"anjuaudt", "big")
SYSTEM_NAME = "system"
LOOKED_ACTIONS = ("person.view", "person.reveal", "event.image_view")

audit_table = cast(Table, AuditEntry.__table__)


class Action(enum.StrEnum):
    """The actions the code records (``record()`` also takes other dotted names)."""

    LOGIN_SUCCESS = "login.success"
    LOGIN_FAILURE = "login.failure"
    LOGOUT = "logout"
    RECORD_CREATE = "record.create"
    RECORD_UPDATE = "record.update"
    RECORD_DELETE = "record.delete"
    RECORD_BULK = "record.bulk"
    PERSON_VIEW = "person.view"
    PERSON_REVEAL = "person.reveal"
    REGISTRY_EXPORT = "registry.export"
    REGISTRY_IMPORT = "registry.import"
    ROLE_UPDATE = "role.update"
    USER_CREATE = "user.create"
    PASSWORD_CHANGE = "password.change"
    PASSWORD_RESET = "password.reset"
    TOKEN_CREATE = "token.create"


@dataclass(frozen=True)
class Draft:
    """One entry waiting for its place in the chain (who and when are added on append)."""

    action: str
    entity: str | None = None
    entity_id: str | None = None
    community_id: int | None = None
    detail: dict[str, Any] = dataclasses.field(default_factory=dict)


# --- writing -----------------------------------------------------------------------------


def record(
    session: Session,
    action: str,
    *,
    entity: str | None = None,
    entity_id: int | str | None = None,
    community_id: int | None = None,
    detail: Mapping[str, Any] | None = None,
    actor: Actor | None = None,
) -> None:
    """Append one explicit event (sign-in, reveal, export …) in ``session``'s transaction.

    The actor is ``actor`` if given (a sign-in: the account signing in), else
    ``session.info["actor"]`` (absent: the system); the address is ``session.info["ip"]``.
    The row commits or rolls back with the rest of the work.
    """
    draft = Draft(
        action=str(action),
        entity=entity,
        entity_id=None if entity_id is None else str(entity_id),
        community_id=community_id,
        detail=jsonable(dict(detail or {})),
    )
    append(session, [draft], actor=actor)


def append(session: Session, drafts: Sequence[Draft], actor: Actor | None = None) -> list[int]:
    """Chain ``drafts`` onto the log through the session's connection; returns their ids."""
    if not drafts:
        return []
    who = actor if actor is not None else session.info.get("actor")
    ip = session.info.get("ip")
    user_id, name = (who.user_id, who.username) if isinstance(who, Actor) else (None, None)
    conn = session.connection()
    _lock_chain(conn)
    last = conn.execute(
        select(audit_table.c.id, audit_table.c.hash).order_by(audit_table.c.id.desc()).limit(1)
    ).first()
    next_id, prev_hash = (last[0] + 1, last[1]) if last is not None else (1, GENESIS_HASH)
    at = utcnow()
    rows: list[dict[str, Any]] = []
    for draft in drafts:
        fields: dict[str, Any] = {
            "id": next_id,
            "at": at,
            "actor_user_id": user_id,
            "actor_name": (name or SYSTEM_NAME)[:60],
            "action": draft.action,
            "entity": draft.entity,
            "entity_id": draft.entity_id,
            "community_id": draft.community_id,
            "detail": draft.detail,
            "ip": ip[:64] if isinstance(ip, str) else None,
        }
        digest = chain_hash(prev_hash, fields)
        rows.append({**fields, "prev_hash": prev_hash, "hash": digest})
        prev_hash = digest
        next_id += 1
    conn.execute(insert(audit_table), rows)
    return [row["id"] for row in rows]


def _lock_chain(conn: Connection) -> None:
    """Make this transaction the only appender until it ends (see the module docstring)."""
    dialect = conn.dialect.name
    if dialect == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": LOCK_KEY})
    elif dialect == "sqlite":
        # Appending nothing: a write, so it takes (or waits for) the write lock.
        conn.exec_driver_sql("INSERT INTO audit_log SELECT * FROM audit_log WHERE 0")


# --- hashing -----------------------------------------------------------------------------

HASHED_FIELDS = (
    "id",
    "at",
    "actor_user_id",
    "actor_name",
    "action",
    "entity",
    "entity_id",
    "community_id",
    "detail",
    "ip",
)


def format_at(at: dt.datetime) -> str:
    """The one textual form of a timestamp that goes into the hash (UTC, microseconds)."""
    return at.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def canonical_json(fields: Mapping[str, Any]) -> str:
    """The fields of a row as canonical JSON: sorted keys, no spaces, ``at`` normalised."""
    values = {name: fields[name] for name in HASHED_FIELDS}
    values["at"] = format_at(values["at"])
    return json.dumps(
        values, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    )


def chain_hash(prev_hash: str, fields: Mapping[str, Any]) -> str:
    """The hash of a row: SHA-256 over the previous hash and the row's canonical JSON."""
    return hashlib.sha256((prev_hash + canonical_json(fields)).encode("utf-8")).hexdigest()


def jsonable(value: Any) -> Any:
    """``value`` made of JSON types only, so it is stored and read back unchanged.

    Dates become ISO strings, enums their values, decimals and UUIDs strings, sets sorted
    lists; non-finite floats become strings (JSON has no NaN); bytes are never logged.
    """
    if isinstance(value, enum.Enum):
        return jsonable(value.value)
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, dt.datetime):
        if value.tzinfo is not None:
            value = value.astimezone(dt.UTC)
        return value.isoformat()
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, decimal.Decimal | uuid.UUID):
        return str(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return f"<{len(bytes(value))} bytes>"
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, set | frozenset):
        return sorted((jsonable(v) for v in value), key=lambda v: json.dumps(v, sort_keys=True))
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    return str(value)


# --- reading -----------------------------------------------------------------------------


def who_looked(
    session: Session, entity: str, entity_id: int | str, limit: int = 50
) -> list[AuditEntry]:
    """Who opened a record or revealed its sensitive fields, newest first."""
    stmt = (
        select(AuditEntry)
        .where(
            AuditEntry.entity == entity,
            AuditEntry.entity_id == str(entity_id),
            AuditEntry.action.in_(LOOKED_ACTIONS),
        )
        .order_by(AuditEntry.id.desc())
        .limit(limit)
    )
    return list(session.scalars(stmt))


@dataclass(frozen=True)
class AuditFilter:
    """What the audit view narrows the log to; empty fields do not filter."""

    action: str = ""
    actor: str = ""
    entity: str = ""
    entity_id: str = ""
    since: dt.datetime | None = None  # inclusive, UTC
    until: dt.datetime | None = None  # exclusive, UTC


def sees_whole_log(actor: Actor) -> bool:
    """Whether ``actor`` is bound at the root of the tree (the only root: the city).

    Only they see entries that belong to no community (sign-ins, exports, role changes).
    """
    return len([part for part in actor.org_path.split("/") if part]) <= 1


def entries(actor: Actor, wanted: AuditFilter) -> Select[AuditEntry]:
    """The log as ``actor`` may read it, filtered, newest first.

    Someone bound below the root sees only entries about the communities in their area.
    An ``action`` without a dot matches its whole family (``login`` → ``login.*``).
    """
    stmt = select(AuditEntry)
    if not sees_whole_log(actor):
        stmt = stmt.where(AuditEntry.community_id.in_(communities_in_scope(actor)))
    if wanted.action:
        if "." in wanted.action:
            stmt = stmt.where(AuditEntry.action == wanted.action)
        else:
            stmt = stmt.where(
                (AuditEntry.action == wanted.action)
                | AuditEntry.action.startswith(wanted.action + ".", autoescape=True)
            )
    if wanted.actor:
        stmt = stmt.where(AuditEntry.actor_name.icontains(wanted.actor, autoescape=True))
    if wanted.entity:
        stmt = stmt.where(AuditEntry.entity == wanted.entity)
    if wanted.entity_id:
        stmt = stmt.where(AuditEntry.entity_id == wanted.entity_id)
    if wanted.since is not None:
        stmt = stmt.where(AuditEntry.at >= wanted.since)
    if wanted.until is not None:
        stmt = stmt.where(AuditEntry.at < wanted.until)
    return stmt.order_by(AuditEntry.id.desc())
