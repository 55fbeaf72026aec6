"""Migrations: empty → head, down one step, up again — on SQLite and PostgreSQL.

Also checks that the models and the newest migration agree (no pending autogenerate diff).
"""

from __future__ import annotations

import uuid

import psycopg
import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect

import anju.core.models_registry  # noqa: F401
from anju.core import migrate
from anju.core.db import Base, make_engine
from tests.conftest import PG_ADMIN_URL, _pg_available


@pytest.fixture(params=["sqlite", "postgres"])
def empty_engine(request, tmp_path):
    if request.param == "sqlite":
        engine = make_engine(f"sqlite:///{tmp_path / 'm.db'}")
        yield engine
        engine.dispose()
        return
    reason = _pg_available()
    if reason:
        pytest.skip(reason)
    name = f"anju_mig_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base = PG_ADMIN_URL.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://", 1)
    engine = make_engine(f"{base}/{name}")
    yield engine
    engine.dispose()
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_upgrade_downgrade_upgrade(empty_engine):
    migrate.upgrade(empty_engine)
    head = migrate.head_revision(empty_engine)
    assert migrate.current_revision(empty_engine) == head
    tables = set(inspect(empty_engine).get_table_names())
    assert {"persons", "houses", "residencies", "org_units", "devices", "users"} <= tables

    script = ScriptDirectory.from_config(migrate.alembic_config(empty_engine))
    previous = script.get_revision(head).down_revision
    migrate.downgrade(empty_engine, previous or "base")
    assert migrate.current_revision(empty_engine) == previous
    migrate.upgrade(empty_engine)
    assert migrate.current_revision(empty_engine) == head


def test_models_match_migrations(empty_engine):
    migrate.upgrade(empty_engine)
    with empty_engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": False})
        diff = compare_metadata(ctx, Base.metadata)
    assert diff == [], f"models and migrations disagree; write a revision: {diff}"
