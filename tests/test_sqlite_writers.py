"""SQLite writers of one process queue on one lock (``anju.core.db._writer_connection``).

The lock is taken just before a transaction's first write (with ``BEGIN IMMEDIATE``) and
passed on when it commits or rolls back, whichever way the transaction ends.
"""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Column, Integer, MetaData, Table, func, insert, select, text
from sqlalchemy.orm import Session

from anju.core.db import make_engine, make_session_factory, transaction

metadata = MetaData()
items = Table("items", metadata, Column("id", Integer, primary_key=True), Column("n", Integer))


@pytest.fixture
def engine(tmp_path: Path) -> Any:
    engine = make_engine(f"sqlite:///{tmp_path / 'w.db'}")
    metadata.create_all(engine)
    yield engine
    engine.dispose()


def writer_lock(session: Session) -> Any:
    """The lock behind the session's connection (shared by the engine's connections)."""
    return session.connection().connection.dbapi_connection.writer_lock


def test_a_write_holds_the_lock_until_commit(engine):
    factory = make_session_factory(engine)
    with transaction(factory) as session:
        session.execute(select(items.c.id)).all()
        lock = writer_lock(session)
        assert not lock.locked(), "reading takes no lock"
        session.execute(insert(items).values(n=1))
        assert lock.locked()
    assert not lock.locked()


def test_a_rollback_passes_the_lock_on(engine):
    factory = make_session_factory(engine)
    with pytest.raises(RuntimeError), transaction(factory) as session:
        lock = writer_lock(session)
        session.execute(insert(items).values(n=1))
        assert lock.locked()
        raise RuntimeError("the request failed")
    assert not lock.locked()
    with factory() as session:
        assert session.scalar(select(func.count()).select_from(items)) == 0


def test_a_second_writer_waits_for_the_first_to_commit(engine):
    factory = make_session_factory(engine)
    first_wrote, second_done = threading.Event(), threading.Event()
    order: list[str] = []

    def second() -> None:
        first_wrote.wait(10)
        with transaction(factory) as session:
            session.execute(insert(items).values(n=2))
            order.append("second wrote")
        second_done.set()

    thread = threading.Thread(target=second)
    thread.start()
    with transaction(factory) as session:
        session.execute(insert(items).values(n=1))
        first_wrote.set()
        # The second writer cannot get past the lock while this transaction is open.
        assert not second_done.wait(0.3)
        order.append("first committing")
    thread.join(10)
    assert order == ["first committing", "second wrote"]
    with factory() as session:
        assert session.scalars(select(items.c.n).order_by(items.c.id)).all() == [1, 2]


def test_a_failed_begin_passes_the_lock_on(engine, tmp_path):
    """Another process holds SQLite's write lock past our busy timeout: the writer fails
    with "database is locked" and the next writer of this process is not stuck behind it."""
    other = sqlite3.connect(tmp_path / "w.db", isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    factory = make_session_factory(engine)
    try:
        with pytest.raises(Exception, match="database is locked"), transaction(factory) as session:
            session.execute(text("PRAGMA busy_timeout=50"))
            lock = writer_lock(session)
            session.execute(insert(items).values(n=1))
        assert not lock.locked()
    finally:
        other.execute("ROLLBACK")
        other.close()
    with transaction(factory) as session:
        session.execute(text("PRAGMA busy_timeout=10000"))
        session.execute(insert(items).values(n=2))
    with factory() as session:
        assert session.scalars(select(items.c.n)).all() == [2]


def test_many_threads_write_without_losing_a_row(engine):
    factory = make_session_factory(engine)
    errors: list[BaseException] = []

    def work(k: int) -> None:
        try:
            for n in range(40):
                with transaction(factory) as session:
                    session.execute(insert(items).values(n=k * 1000 + n))
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    with factory() as session:
        assert session.scalar(select(func.count()).select_from(items)) == 160


def test_each_engine_has_its_own_lock(tmp_path):
    """Two databases do not wait for each other."""
    a = make_engine(f"sqlite:///{tmp_path / 'a.db'}")
    b = make_engine(f"sqlite:///{tmp_path / 'b.db'}")
    try:
        metadata.create_all(a)
        metadata.create_all(b)
        with transaction(make_session_factory(a)) as one:
            one.execute(insert(items).values(n=1))
            with transaction(make_session_factory(b)) as two:
                two.execute(insert(items).values(n=2))
                assert writer_lock(one) is not writer_lock(two)
    finally:
        a.dispose()
        b.dispose()


def test_a_writer_that_waits_too_long_is_told_why(engine, monkeypatch):
    """Past the busy timeout a second writer gives up with a reason, and the first one's
    transaction is untouched."""
    monkeypatch.setattr("anju.core.db.BUSY_TIMEOUT", 0.2)
    factory = make_session_factory(engine)
    failed: list[BaseException] = []

    def second() -> None:
        try:
            with transaction(factory) as session:
                session.execute(insert(items).values(n=2))
        except BaseException as exc:  # reported below
            failed.append(exc)

    with transaction(factory) as session:
        session.execute(insert(items).values(n=1))
        thread = threading.Thread(target=second)
        thread.start()
        thread.join(10)
    assert len(failed) == 1
    assert "another write of this process held it" in str(failed[0])
    with factory() as session:
        assert session.scalars(select(items.c.n)).all() == [1]
