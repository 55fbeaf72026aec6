"""Change logging built into the unit of work: every flush of an audited record is logged.

:func:`install` hooks a session factory once (the composition root does it). Then, for
every flush:

* ``after_flush`` turns the session's new, dirty and deleted instances of audited tables
  into ``record.create`` / ``record.update`` / ``record.delete`` entries. At that moment
  the rows are written but the session still holds its pre-flush bookkeeping: attribute
  history gives each changed column's old and new value, new rows already have their ids,
  and deleted rows still hold what they contained. The entries are inserted through the
  session's own connection (Core, so no second flush), inside the same transaction: a
  change and its audit entry commit or roll back together, and if the entry cannot be
  written the change fails with it.
* ``before_flush`` refuses audit entries added through the ORM (the chain is only
  extended by :func:`anju.audit.service.append`), and reads from the database the old
  values the session never loaded (a column changed without being read first), so the
  entry's "before" is complete.
* ``do_orm_execute`` records bulk ``insert``/``update``/``delete`` statements run through
  the session against audited tables (they bypass the instance events above) as one
  ``record.bulk`` entry with the statement and the row count.

What is logged: the changed columns' before and after, as JSON-safe values. Ciphertexts,
lookup hashes, secrets and binary columns (``*_enc``, ``*_hash`` — so ``password_hash`` —
``*_secret``) are never logged; their names appear under ``redacted`` when they changed.
Sealed fields show through their ``*_masked`` column. ``created_at``/``updated_at`` and
bookkeeping touched by every sign-in or API call (``users.last_login_at``, tokens'
``last_used_at`` …; see :data:`NOISE_BY_TABLE`) are left out as noise.

Every table must be classified: :data:`AUDITED_TABLES` or :data:`UNAUDITED_TABLES`
(a test fails for a table in neither).
"""

from __future__ import annotations

import logging
import weakref
from typing import Any

from sqlalchemy import LargeBinary, event, inspect, select
from sqlalchemy.orm import (
    InstanceState,
    Mapper,
    ORMExecuteState,
    Session,
    UOWTransaction,
    sessionmaker,
)
from sqlalchemy.sql.schema import Column, Table

from anju.audit.models import AuditEntry
from anju.audit.service import Action, Draft, append, jsonable

log = logging.getLogger(__name__)

_MISSING = object()  # an attribute not loaded on the instance
_STORED = "anju.audit.stored"  # session.info key: old values read before a flush

AUDITED_TABLES = frozenset(
    {
        # organisation and accounts
        "org_units",
        "grids",
        "users",
        "roles",
        "api_tokens",
        "device_credentials",
        "access_credentials",
        # the registry
        "buildings",
        "building_units",
        "floors",
        "houses",
        "persons",
        "tags",
        "person_tags",
        "residencies",
        "organisations",
        "parking_spaces",
        "vehicles",
        "security_staff",
        "incidents",
        # devices
        "devices",
        # alert model settings and watchlists (who changed a threshold, who put whom on a list)
        "alert_configs",
        "watchlist_entries",
        # where an account's alerts go (e-mail, SMS; the phone shows masked)
        "alert_notify_prefs",
        # faces: enrolled photos, officers' merge/split/link and "not this person" (vectors
        # are binary, so redacted); the pipeline's own sightings write through the connection
        "face_templates",
        "stranger_clusters",
        "face_rejections",
    }
)
# The log itself; console sessions and sign-in attempts (sign-ins are logged explicitly).
# Events are the devices' own record (millions a day): they are not registry changes.
# Alerts: a row changes on every merged repeat (count, last seen), and every human act on it
# is already written, with who and when, to ``alert_steps`` (its timeline) in the same
# transaction; logging them again here would double the record and flood the chain.
UNAUDITED_TABLES = frozenset(
    {
        "audit_log",
        "login_sessions",
        "login_attempts",
        "events",
        "alerts",
        "alert_evidence",
        "alert_steps",
        # counters bumped on every gallery change: bookkeeping, not a change anyone made;
        # the sealed probe of each recognised face event, written by the pipeline like events
        "face_generations",
        "face_probes",
        # how far a rules worker has followed the event store: moved on every round
        "rules_cursors",
    }
)

SECRET_SUFFIXES = ("_enc", "_hash", "_secret")
# Columns an update entry needs even when unchanged: where the record belongs.
CONTEXT_COLUMNS = ("community_id", "level")
NOISE_COLUMNS = frozenset({"created_at", "updated_at"})
# Bookkeeping that changes on every sign-in or API call, not a change anyone made.
NOISE_BY_TABLE: dict[str, frozenset[str]] = {
    "users": frozenset({"last_login_at", "totp_last_step"}),
    "api_tokens": frozenset({"last_used_at"}),
    "device_credentials": frozenset({"last_used_at"}),
    # A stranger cluster seen again (the pipeline, through the connection).
    "stranger_clusters": frozenset({"last_seen", "sightings"}),
    # Device health, kept by the event pipeline (through the connection, not the ORM).
    "devices": frozenset(
        {
            "last_seen_at",
            "battery",
            "signal",
            "events_accepted",
            "events_rejected",
            "last_rejection",
            "last_rejected_at",
        }
    ),
}


def install(factory: sessionmaker[Session]) -> sessionmaker[Session]:
    """Log changes made through sessions of ``factory`` (idempotent); returns the factory.

    Which factories have the listeners is kept here, not asked of ``event.contains``:
    SQLAlchemy's registry answers by ``id()``, so a new factory that reuses a collected
    one's address was taken as already audited and its changes went unlogged (seen when
    a test built and dropped a second node before the next was made)."""
    if factory not in _INSTALLED:
        event.listen(factory, "before_flush", _before_flush)
        event.listen(factory, "after_flush", _after_flush)
        event.listen(factory, "do_orm_execute", _bulk_statement)
        _INSTALLED.add(factory)
    return factory


_INSTALLED: weakref.WeakSet[sessionmaker[Session]] = weakref.WeakSet()


# --- events ------------------------------------------------------------------------------


def _before_flush(session: Session, _flush: UOWTransaction, _instances: Any) -> None:
    """Refuse ORM-made audit entries; read old values the session does not hold yet.

    Setting an attribute that was never loaded (a column left at its default on insert,
    say) keeps no old value in its history, and a deleted record may have expired
    attributes; until this flush the row in the database still holds them.
    """
    for obj in (*session.new, *session.dirty, *session.deleted):
        if isinstance(obj, AuditEntry):
            raise RuntimeError("audit entries are appended by anju.audit.service only")
    stored: dict[InstanceState[Any], dict[str, Any]] = {}
    for deleting, objects in ((False, session.dirty), (True, session.deleted)):
        for obj in objects:
            state = _audited_state(obj)
            if state is None or state.key is None:
                continue
            unknown = [
                (key, column)
                for key, column in _columns(state.mapper)
                if not _is_secret(column) and _unknown(state, key, deleting)
            ]
            if unknown:
                stored[state] = _stored_values(session, state, unknown)
    session.info[_STORED] = stored


def _unknown(state: InstanceState[Any], key: str, deleting: bool) -> bool:
    """Whether the entry will need the stored value of ``key`` and the session lacks it."""
    if key in _noise(state.mapper.local_table.name):  # type: ignore[attr-defined]
        return False
    if deleting or key in CONTEXT_COLUMNS:
        return key not in state.dict
    history = state.attrs[key].history
    return bool(history.added) and not history.deleted


def _stored_values(
    session: Session, state: InstanceState[Any], columns: list[tuple[str, Column[Any]]]
) -> dict[str, Any]:
    """The values of ``columns`` in the record's row as the database holds it now."""
    mapper = state.mapper
    assert state.key is not None
    where = [pk == value for pk, value in zip(mapper.primary_key, state.key[1], strict=True)]
    row = session.connection().execute(select(*(c for _, c in columns)).where(*where)).first()
    if row is None:
        return {}
    return {key: value for (key, _), value in zip(columns, row, strict=True)}


def _after_flush(session: Session, _flush: UOWTransaction) -> None:
    stored: dict[InstanceState[Any], dict[str, Any]] = session.info.pop(_STORED, None) or {}
    drafts: list[Draft] = []
    for obj in session.new:
        state = _audited_state(obj)
        if state is not None:
            drafts.append(_created(state))
    for obj in session.dirty:
        state = _audited_state(obj)
        if state is not None and not state.deleted:
            draft = _updated(state, stored.get(state, {}))
            if draft is not None:
                drafts.append(draft)
    for obj in session.deleted:
        state = _audited_state(obj)
        if state is not None:
            drafts.append(_deleted(state, stored.get(state, {})))
    if drafts:
        append(session, drafts)
        log.debug("recorded %d change(s) in the audit log", len(drafts))


def _bulk_statement(orm_state: ORMExecuteState) -> Any:
    if not (orm_state.is_insert or orm_state.is_update or orm_state.is_delete):
        return None
    table = getattr(orm_state.statement, "table", None)
    if not isinstance(table, Table) or table.name not in AUDITED_TABLES:
        return None
    result = orm_state.invoke_statement()
    kind = "insert" if orm_state.is_insert else "update" if orm_state.is_update else "delete"
    rows = getattr(result, "rowcount", -1)
    # The SQL with placeholders only: bound values may be sealed data.
    detail = {"statement": kind, "sql": str(orm_state.statement), "rows": rows}
    append(orm_state.session, [Draft(Action.RECORD_BULK, entity=table.name, detail=detail)])
    return result


# --- what a change looks like ------------------------------------------------------------


def _audited_state(obj: object) -> InstanceState[Any] | None:
    state = _inspect(obj)
    table = state.mapper.local_table
    if isinstance(table, Table) and table.name in AUDITED_TABLES:
        return state
    return None


def _inspect(obj: object) -> InstanceState[Any]:
    state: InstanceState[Any] = inspect(obj)
    return state


def _columns(mapper: Mapper[Any]) -> list[tuple[str, Column[Any]]]:
    """(attribute key, column) of the mapped columns of the record's own table."""
    table = mapper.local_table
    out: list[tuple[str, Column[Any]]] = []
    for prop in mapper.column_attrs:
        column = prop.columns[0]
        if isinstance(column, Column) and column.table is table:
            out.append((prop.key, column))
    return out


def _is_secret(column: Column[Any]) -> bool:
    return column.name.endswith(SECRET_SUFFIXES) or isinstance(column.type, LargeBinary)


def _secret_name(column: Column[Any]) -> str:
    """``id_number_enc`` → ``id_number``; ``password_hash`` → ``password``."""
    for suffix in SECRET_SUFFIXES:
        if column.name.endswith(suffix):
            return column.name[: -len(suffix)]
    return column.name


def _noise(table_name: str) -> frozenset[str]:
    return NOISE_COLUMNS | NOISE_BY_TABLE.get(table_name, frozenset())


def _identity(state: InstanceState[Any]) -> str:
    key = state.identity or state.mapper.primary_key_from_instance(state.obj())
    return "/".join(str(part) for part in key)


def _community(state: InstanceState[Any], values: dict[str, Any]) -> int | None:
    table_name = state.mapper.local_table.name  # type: ignore[attr-defined]
    community = values.get("community_id")
    if isinstance(community, int):
        return community
    if table_name == "org_units" and values.get("level") == "community":
        return _int_or_none(_identity(state))
    return None


def _int_or_none(value: str) -> int | None:
    return int(value) if value.isdigit() else None


def _draft(
    state: InstanceState[Any],
    action: Action,
    detail: dict[str, Any],
    values: dict[str, Any],
) -> Draft:
    return Draft(
        action=action,
        entity=state.mapper.local_table.name,  # type: ignore[attr-defined]
        entity_id=_identity(state),
        community_id=_community(state, values),
        detail=detail,
    )


def _snapshot(
    state: InstanceState[Any], stored: dict[str, Any]
) -> tuple[dict[str, Any], list[str]]:
    """Column values (what was written, or what a deleted row held), and redactions."""
    table_name = state.mapper.local_table.name  # type: ignore[attr-defined]
    noise = _noise(table_name)
    values: dict[str, Any] = {}
    redacted: list[str] = []
    primary = {c.key for c in state.mapper.primary_key}
    for key, column in _columns(state.mapper):
        if key in noise or column.key in primary:
            continue
        value = state.dict.get(key, stored.get(key, _MISSING))
        if value is _MISSING:
            continue
        if _is_secret(column):
            if value is not None:
                redacted.append(_secret_name(column))
            continue
        values[column.name] = jsonable(value)
    for key, items in _collections(state).items():
        values[key] = items
    return values, sorted(set(redacted))


def _created(state: InstanceState[Any]) -> Draft:
    after, redacted = _snapshot(state, {})
    detail: dict[str, Any] = {"after": after}
    if redacted:
        detail["redacted"] = redacted
    return _draft(state, Action.RECORD_CREATE, detail, after)


def _deleted(state: InstanceState[Any], stored: dict[str, Any]) -> Draft:
    before, redacted = _snapshot(state, stored)
    detail: dict[str, Any] = {"before": before}
    if redacted:
        detail["redacted"] = redacted
    return _draft(state, Action.RECORD_DELETE, detail, before)


def _updated(state: InstanceState[Any], stored: dict[str, Any]) -> Draft | None:
    table_name = state.mapper.local_table.name  # type: ignore[attr-defined]
    noise = _noise(table_name)
    before: dict[str, Any] = {}
    after: dict[str, Any] = {}
    redacted: set[str] = set()
    for key, column in _columns(state.mapper):
        if key in noise:
            continue
        history = state.attrs[key].history
        if not history.added and not history.deleted:
            continue
        known = bool(history.deleted) or key in stored
        old = jsonable(history.deleted[0] if history.deleted else stored.get(key))
        new = jsonable(history.added[0]) if history.added else None
        if known and history.added and old == new:
            continue
        if _is_secret(column):
            redacted.add(_secret_name(column))
            continue
        if known:
            before[column.name] = old
        after[column.name] = new
    for key, (old_items, new_items) in _collection_changes(state).items():
        before[key], after[key] = old_items, new_items
    if not (after or before or redacted):
        return None
    detail: dict[str, Any] = {"before": before, "after": after}
    if redacted:
        detail["redacted"] = sorted(redacted)
    context = {k: jsonable(state.dict.get(k, stored.get(k))) for k in CONTEXT_COLUMNS}
    values = {**after, **context}
    return _draft(state, Action.RECORD_UPDATE, detail, values)


# --- many-to-many collections (person tags): changed rows of a link table -----------------


def _linked(mapper: Mapper[Any]) -> list[str]:
    """Keys of collections kept in a link table (their changes are no row of their own)."""
    return [rel.key for rel in mapper.relationships if rel.uselist and rel.secondary is not None]


def _ident(item: object) -> Any:
    state = _inspect(item)
    key = state.identity or state.mapper.primary_key_from_instance(item)
    return jsonable(key[0] if len(key) == 1 else list(key))


def _collections(state: InstanceState[Any]) -> dict[str, list[Any]]:
    """The current members of each link-table collection, by primary key."""
    out: dict[str, list[Any]] = {}
    for key in _linked(state.mapper):
        items = state.dict.get(key, _MISSING)
        if items is _MISSING or items is None:
            continue
        out[key] = sorted((_ident(i) for i in items), key=str)
    return out


def _collection_changes(state: InstanceState[Any]) -> dict[str, tuple[list[Any], list[Any]]]:
    """Before and after of each link-table collection that changed."""
    out: dict[str, tuple[list[Any], list[Any]]] = {}
    for key in _linked(state.mapper):
        history = state.attrs[key].history
        if not history.added and not history.deleted:
            continue
        kept = [_ident(i) for i in history.unchanged or ()]
        old = sorted(kept + [_ident(i) for i in history.deleted or ()], key=str)
        new = sorted(kept + [_ident(i) for i in history.added or ()], key=str)
        if old != new:
            out[key] = (old, new)
    return out
