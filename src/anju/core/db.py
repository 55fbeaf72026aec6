"""Database engine, session factory and the declarative base shared by every area."""

from __future__ import annotations

import datetime as dt
import re
import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, ClassVar

from sqlalchemy import BigInteger, DateTime, Integer, MetaData, create_engine, event
from sqlalchemy.engine import Dialect, Engine
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker
from sqlalchemy.types import TypeDecorator

from anju.core import jsonio

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# BIGINT on PostgreSQL, INTEGER on SQLite (where only INTEGER PRIMARY KEY autoincrements).
BigId = BigInteger().with_variant(Integer(), "sqlite")


class UTCDateTime(TypeDecorator[dt.datetime]):
    """A timestamp stored in UTC and always read back timezone-aware.

    SQLite keeps no offset, so values are normalised to UTC on the way in and tagged
    as UTC on the way out; naive datetimes are refused rather than guessed at.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given; Anju stores timezone-aware UTC times")
        value = value.astimezone(dt.UTC)
        if dialect.name == "sqlite":
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: dt.datetime | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=dt.UTC)
        return value.astimezone(dt.UTC)


class Base(DeclarativeBase):
    """Declarative base for every table."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map: ClassVar[dict[Any, Any]] = {dt.datetime: UTCDateTime()}


def utcnow() -> dt.datetime:
    """The current time, timezone-aware UTC (only infrastructure reads the wall clock)."""
    return dt.datetime.now(dt.UTC)


class IdMixin:
    """A surrogate integer primary key."""

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)


class TimestampMixin:
    """Creation and last-change times."""

    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)


BUSY_TIMEOUT = 10.0  # seconds a SQLite writer waits for the write lock (PRAGMA busy_timeout)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # Transaction control is taken from pysqlite (which would let a SAVEPOINT after a read
    # become the outermost transaction, so RELEASE commits it) and done in _begin_before_write.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute(f"PRAGMA busy_timeout={int(BUSY_TIMEOUT * 1000)}")
    # Checkpoint the WAL every ~40 MB instead of every 4 MB: event ingest dirties many index
    # pages per batch, and each checkpoint is an fsync paid by the committing request
    # (measured: about twice the insert rate at 4,000+ pages). The file is cut back to
    # 64 MB after a burst.
    cursor.execute("PRAGMA wal_autocheckpoint=10000")
    # A 16 MB page cache per connection instead of 2 MB: a batch of events lands on a few
    # hundred scattered index pages (subjects, people, vehicles), which a small cache reads
    # again from the file on every batch (measured: inserts +10 to +20 %; 64 MB did no
    # better). Pages are only held once read, so an idle connection costs little.
    cursor.execute("PRAGMA cache_size=-16384")
    cursor.execute("PRAGMA journal_size_limit=67108864")
    cursor.close()


_WRITES = re.compile(r"^\s*(INSERT|UPDATE|DELETE|REPLACE|SAVEPOINT)\b", re.IGNORECASE)


def _begin_before_write(
    conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool
) -> None:
    """Open the SQLite transaction as ``BEGIN IMMEDIATE`` just before its first write.

    Reads before it run as in autocommit, each on a fresh snapshot; the write lock is taken
    (waiting up to ``busy_timeout``) before anything is written, so a transaction never holds
    a snapshot that another writer has made stale ("database is locked" on upgrade), and
    savepoints always nest inside a real transaction.
    """
    dbapi_connection = conn.connection.dbapi_connection
    if conn.in_transaction() and not dbapi_connection.in_transaction and _WRITES.match(statement):
        dbapi_connection.begin_immediate(cursor)


def _writer_connection() -> type[sqlite3.Connection]:
    """A ``sqlite3.Connection`` class whose writers, within this process, queue on one lock.

    SQLite lets one transaction write at a time; a second writer that finds the database
    locked sleeps in SQLite's busy handler (1, 2, 5, 10 … 100 ms between tries), so under
    load the write lock often lies free while the next writer sleeps. Writers of one process
    (the server's threads) take this lock first: it passes to the next writer as soon as the
    last one commits or rolls back. Writers in other processes still meet SQLite's own lock.
    One class per engine: one lock per database.
    """
    lock = threading.Lock()

    class WriterConnection(sqlite3.Connection):
        writer_lock = lock  # shared by every connection of the engine
        _holds = False

        def begin_immediate(self, cursor: Any) -> None:
            if not lock.acquire(timeout=BUSY_TIMEOUT):
                raise sqlite3.OperationalError(
                    f"database is locked: another write of this process held it for "
                    f"{BUSY_TIMEOUT:g} s; try again"
                )
            self._holds = True
            try:
                cursor.execute("BEGIN IMMEDIATE")
            except BaseException:
                self._release()
                raise

        def _release(self) -> None:
            if self._holds:
                self._holds = False
                lock.release()

        def commit(self) -> None:
            self._end(super().commit)

        def rollback(self) -> None:
            self._end(super().rollback)

        def _end(self, end: Callable[[], None]) -> None:
            """Commit or roll back; the lock passes on once no transaction is left open
            (a failed commit keeps it until the rollback that follows)."""
            try:
                end()
            finally:
                if not self.in_transaction:
                    self._release()

        def close(self) -> None:
            try:
                super().close()
            finally:
                self._release()

    return WriterConnection


def make_engine(url: str, **kwargs: Any) -> Engine:
    """Create an engine; SQLite gets WAL mode and enforced foreign keys."""
    if url.startswith("sqlite"):
        kwargs.setdefault(
            "connect_args", {"check_same_thread": False, "factory": _writer_connection()}
        )
        kwargs.setdefault("json_deserializer", jsonio.loads)
        engine = create_engine(url, **kwargs)
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "before_cursor_execute", _begin_before_write)
        return engine
    kwargs.setdefault("pool_pre_ping", True)
    engine = create_engine(url, **kwargs)
    if engine.dialect.driver == "psycopg":
        event.listen(engine, "connect", _psycopg_json)
    return engine


def _psycopg_json(dbapi_connection: Any, _record: Any) -> None:
    """Read JSON columns with :func:`anju.core.jsonio.loads`: event rows carry a JSON
    payload each, and the standard library's decoder was the largest single cost of
    reading a 300-sighting trajectory."""
    from psycopg.types.json import set_json_loads

    set_json_loads(jsonio.loads, dbapi_connection)


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


@contextmanager
def transaction(factory: sessionmaker[Session]) -> Iterator[Session]:
    """A session that commits on success and rolls back on any error: nothing half-written."""
    session = factory()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()
