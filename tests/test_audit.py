"""The audit log: change rows from the unit of work, the hash chain, tamper detection, the
database's refusal to update or delete, the ``anju audit verify`` command and the console page.

Database tests run on SQLite and PostgreSQL; ``actx`` is the ``ctx`` fixture with a session
from the node's own factory, so the audit hook is installed, rolled back after each test.
"""

from __future__ import annotations

import datetime as dt
import json
import secrets
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Connection, delete, func, insert, inspect, select, text, update
from sqlalchemy.exc import DBAPIError
from typer.testing import CliRunner

import anju.core.models_registry  # noqa: F401  (every table, for the classification test)
from anju.audit import service as audit
from anju.audit.changes import AUDITED_TABLES, UNAUDITED_TABLES
from anju.audit.models import AuditEntry
from anju.audit.service import GENESIS_HASH, audit_table, chain_hash, record, who_looked
from anju.audit.verify import Problem, verify_chain
from anju.auth import service as auth_service
from anju.auth.models import Role, User
from anju.bootstrap import Node
from anju.cli import app as cli_app
from anju.core import migrate
from anju.core.context import Ctx
from anju.core.db import Base, make_engine, utcnow
from anju.core.scope import Actor
from anju.org import service as org_service
from anju.registry import schemas
from anju.registry import service as registry
from anju.registry.models import Tag
from anju.web.app import create_app
from anju.web.deps import SESSION_COOKIE
from tests import factories as f
from tests.conftest import ADMIN_PASSWORD, TEST_KEY, throwaway_pg

AUDITOR = Actor(
    user_id=4242, username="auditor", org_path="/", permissions=frozenset({"*"}), police=True
)


@pytest.fixture
def actx(node: Node) -> Iterator[Ctx]:
    """A context whose session comes from the node's factory (audited), rolled back after."""
    with node.engine.connect() as conn:
        outer = conn.begin()
        session = node.sessions(bind=conn, join_transaction_mode="create_savepoint")
        session.info["ip"] = "10.0.0.7"
        try:
            yield node.ctx(session, AUDITOR)
        finally:
            session.close()
            outer.rollback()


def _rows(ctx: Ctx, **where: Any) -> list[AuditEntry]:
    stmt = select(AuditEntry).filter_by(**where).order_by(AuditEntry.id)
    return list(ctx.session.scalars(stmt))


def _last_ids(conn: Connection, n: int) -> list[int]:
    ids = conn.scalars(select(audit_table.c.id).order_by(audit_table.c.id.desc()).limit(n))
    return sorted(ids)


def _keys(value: Any) -> Iterator[str]:
    if isinstance(value, dict):
        for key, item in value.items():
            yield str(key)
            yield from _keys(item)
    elif isinstance(value, list):
        for item in value:
            yield from _keys(item)


def _drop_triggers(conn: Connection) -> None:
    """What an attacker with database access would do first."""
    if conn.dialect.name == "postgresql":
        conn.execute(text("DROP TRIGGER audit_log_no_update_delete ON audit_log"))
    else:
        conn.execute(text("DROP TRIGGER audit_log_no_update"))
        conn.execute(text("DROP TRIGGER audit_log_no_delete"))


# --- changes through the unit of work -----------------------------------------------------


def test_person_changes_are_logged_before_and_after_with_nothing_sensitive(actx):
    t = f.tree(actx)
    id_number = f.resident_id_for("440305", "19800101", 417)
    person = registry.people.create(
        actx,
        schemas.PersonCreate(
            community_id=t.community.id,
            name="王五",
            id_number=id_number,
            phone="13900139000",
            tags=["elderly"],
        ),
    )
    secrets_in_row = [person.id_number_hash, person.phone_hash]
    registry.people.update(
        actx, person, schemas.PersonUpdate(name="王小五", phone="13700137000", tags=["volunteer"])
    )
    secrets_in_row.append(person.phone_hash)
    person_id = person.id
    registry.people.delete(actx, person)

    rows = _rows(actx, entity="persons", entity_id=str(person_id))
    # One service call may flush more than once (the tags after the columns): each flush
    # writes its own row, so the update is read as the sum of the update rows.
    created, *updates, deleted = rows
    assert (created.action, deleted.action) == ("record.create", "record.delete")
    assert updates and {u.action for u in updates} == {"record.update"}

    after = created.detail["after"]
    assert after["name"] == "王五"
    assert after["id_number_masked"] == "4403**********" + id_number[-4:]
    assert after["phone_masked"] == "139****9000"
    assert after["tags"] == ["elderly"]
    assert after["community_id"] == t.community.id
    assert after["birth_date"] == "1980-01-01" and after["id_type"] == "resident_id"
    assert created.detail["redacted"] == ["id_number", "phone"]

    changed_before: dict[str, Any] = {}
    changed_after: dict[str, Any] = {}
    redacted: set[str] = set()
    for u in updates:
        changed_before = {**u.detail["before"], **changed_before}  # the first "before" wins
        changed_after.update(u.detail["after"])
        redacted.update(u.detail.get("redacted", []))
    assert changed_before == {"name": "王五", "phone_masked": "139****9000", "tags": ["elderly"]}
    assert changed_after == {"name": "王小五", "phone_masked": "137****7000", "tags": ["volunteer"]}
    assert redacted == {"phone"}
    assert deleted.detail["before"]["name"] == "王小五"
    assert deleted.detail["before"]["tags"] == ["volunteer"]

    for row in rows:
        assert row.community_id == t.community.id
        assert (row.actor_user_id, row.actor_name, row.ip) == (4242, "auditor", "10.0.0.7")
        flat = json.dumps(row.detail, ensure_ascii=False)
        for clear in (id_number, "13900139000", "13700137000", *secrets_in_row):
            assert clear not in flat
        assert not [k for k in _keys(row.detail) if k.endswith(("_enc", "_hash"))]


def test_org_units_and_residencies_are_logged_with_their_community(actx):
    t = f.tree(actx)
    created, pathed = _rows(actx, entity="org_units", entity_id=str(t.community.id))
    assert created.detail["after"]["level"] == "community"
    # The materialised path is set once the id is known: a second flush, a second row.
    assert pathed.action == "record.update"
    assert pathed.detail == {"before": {"path": ""}, "after": {"path": t.community.path}}
    # A community is its own scope.
    assert created.community_id == pathed.community_id == t.community.id

    house = f.house(actx, t.community)
    person = registry.people.create(
        actx,
        schemas.PersonCreate(
            community_id=t.community.id,
            name="赵六",
            id_number=f.resident_id_for("440305", "19700101", 418),
        ),
    )
    residency = registry.residencies.create(
        actx,
        schemas.ResidencyCreate(
            person_id=person.id,
            house_id=house.id,
            relation="tenant",
            start_date=dt.date(2026, 1, 2),
        ),
    )
    registry.residencies.end(
        actx, residency, schemas.ResidencyEnd(end_date=dt.date(2026, 3, 4), reason="搬走")
    )
    created, ended = _rows(actx, entity="residencies", entity_id=str(residency.id))
    assert created.detail["after"]["relation"] == "tenant"
    assert created.detail["after"]["start_date"] == "2026-01-02"
    assert ended.action == "record.update"
    assert ended.detail["before"] == {"end_date": None, "end_reason": None}
    assert ended.detail["after"] == {"end_date": "2026-03-04", "end_reason": "搬走"}
    floors = _rows(actx, entity="floors", action="record.create")
    assert any(r.detail["after"]["unit_id"] == house.unit_id for r in floors)


def test_permission_and_password_changes_are_logged_without_the_hash(actx):
    s = actx.session
    role = s.get(Role, "guard")
    old = list(role.permissions)
    role.permissions = [*old, "stats.view"]
    root = org_service.root(s)
    user = auth_service.create_user(
        s,
        username="audited-user",
        display_name="审计",
        password="first-password-1",
        role_code="guard",
        org_unit_id=root.id,
    )
    first_hash = user.password_hash
    user.password_hash = auth_service.hash_password("second-password-2")
    user.role_code = "officer"
    user.last_login_at = utcnow()  # bookkeeping: left out
    s.flush()

    (role_row,) = _rows(actx, entity="roles", entity_id="guard", action="record.update")
    assert role_row.detail["before"] == {"permissions": old}
    assert role_row.detail["after"] == {"permissions": [*old, "stats.view"]}
    created, changed = _rows(actx, entity="users", entity_id=str(user.id))
    assert created.detail["redacted"] == ["password"]
    assert "password_hash" not in created.detail["after"]
    assert changed.detail == {
        "before": {"role_code": "guard"},
        "after": {"role_code": "officer"},
        "redacted": ["password"],
    }
    for row in (created, changed):
        flat = json.dumps(row.detail)
        assert first_hash not in flat and user.password_hash not in flat


def test_a_flush_without_real_changes_writes_nothing(actx):
    t = f.tree(actx)
    before = actx.session.scalar(select(func.max(AuditEntry.id)))
    t.community.name = t.community.name  # same value
    t.community.updated_at = utcnow()  # noise only
    actx.session.flush()
    assert actx.session.scalar(select(func.max(AuditEntry.id))) == before


def test_bulk_statements_on_audited_tables_are_logged(actx):
    actx.session.execute(update(Tag).where(Tag.code == "child").values(description="未满18周岁"))
    (row,) = _rows(actx, action="record.bulk", entity="tags")
    assert row.detail["statement"] == "update" and row.detail["rows"] == 1
    assert "未满18周岁" not in json.dumps(row.detail, ensure_ascii=False)  # values are not kept


def test_audit_entries_cannot_be_added_through_the_orm(actx):
    fake = AuditEntry(
        id=10**9,
        at=utcnow(),
        actor_name="x",
        action="record.create",
        detail={},
        prev_hash="f" * 64,
        hash="f" * 64,
    )
    actx.session.add(fake)
    with pytest.raises(RuntimeError, match=r"appended by anju\.audit\.service"):
        actx.session.flush()


def test_every_table_is_either_audited_or_deliberately_not():
    tables = set(Base.metadata.tables)
    assert tables - AUDITED_TABLES - UNAUDITED_TABLES == set(), "classify in anju.audit.changes"
    assert (AUDITED_TABLES | UNAUDITED_TABLES) - tables == set(), "a classified table is gone"
    assert not AUDITED_TABLES & UNAUDITED_TABLES


# --- explicit events and the chain --------------------------------------------------------


def test_explicit_records_chain_and_verify(actx):
    record(
        actx.session,
        "person.reveal",
        entity="persons",
        entity_id=12,
        community_id=7,
        detail={"fields": ["id_number"], "reason": "上门核实", "on": dt.date(2026, 1, 2)},
    )
    signing_in = Actor(user_id=77, username="officer-li", org_path="/1/", permissions=frozenset())
    record(actx.session, "registry.export", detail={"rows": 3, "share": 0.25}, actor=signing_in)
    conn = actx.session.connection()
    first, second = (
        actx.session.get(AuditEntry, i) for i in _last_ids(conn, 2)
    )  # read back as stored
    assert first.entity_id == "12" and first.community_id == 7
    assert first.detail == {"fields": ["id_number"], "reason": "上门核实", "on": "2026-01-02"}
    assert (first.actor_user_id, first.actor_name, first.ip) == (4242, "auditor", "10.0.0.7")
    assert (second.actor_user_id, second.actor_name) == (77, "officer-li")
    assert second.detail == {"rows": 3, "share": 0.25}
    assert second.prev_hash == first.hash and second.id == first.id + 1
    for row in (first, second):
        fields = {c: getattr(row, c) for c in audit.HASHED_FIELDS}
        assert chain_hash(row.prev_hash, fields) == row.hash
        assert row.at.tzinfo is not None
    result = verify_chain(conn, batch_size=7)  # several batches
    assert result.ok, result.message
    assert (result.head_id, result.head_hash) == (second.id, second.hash)
    assert result.checked == second.id


def test_the_first_row_starts_from_the_genesis_hash(actx):
    first = actx.session.scalar(select(AuditEntry).order_by(AuditEntry.id).limit(1))
    assert first is not None and first.id == 1 and first.prev_hash == GENESIS_HASH


def test_timestamps_round_trip_exactly(actx, monkeypatch):
    """Whole seconds, the last microsecond, and a zone other than UTC: same hash back."""
    moments = iter(
        [
            dt.datetime(2026, 5, 1, 8, 0, 0, tzinfo=dt.UTC),
            dt.datetime(2026, 5, 1, 8, 0, 0, 999999, tzinfo=dt.UTC),
            dt.datetime(2026, 5, 1, 16, 0, 0, 1, tzinfo=dt.timezone(dt.timedelta(hours=8))),
        ]
    )
    monkeypatch.setattr(audit, "utcnow", lambda: next(moments))
    for n in range(3):
        record(actx.session, "test.clock", detail={"n": n})
    conn = actx.session.connection()
    stored = conn.execute(
        select(audit_table.c.at).where(audit_table.c.action == "test.clock").order_by("id")
    ).scalars()
    assert [audit.format_at(at) for at in stored] == [
        "2026-05-01T08:00:00.000000Z",
        "2026-05-01T08:00:00.999999Z",
        "2026-05-01T08:00:00.000001Z",
    ]
    assert verify_chain(conn).ok


def test_tampered_row_is_named(actx):
    for n in range(3):
        record(actx.session, "test.tamper", detail={"n": n})
    conn = actx.session.connection()
    _first, middle, _last = _last_ids(conn, 3)
    _drop_triggers(conn)
    conn.execute(update(audit_table).where(audit_table.c.id == middle).values(detail={"n": 99}))
    result = verify_chain(conn)
    assert not result.ok
    assert (result.broken_id, result.problem) == (middle, Problem.CONTENT_CHANGED)
    assert result.checked == middle - 1
    assert result.head_id == middle - 1


def test_tampered_actor_with_recomputed_hash_breaks_the_next_link(actx):
    for n in range(3):
        record(actx.session, "test.rehash", detail={"n": n})
    conn = actx.session.connection()
    _first, middle, last = _last_ids(conn, 3)
    _drop_triggers(conn)
    row = conn.execute(select(audit_table).where(audit_table.c.id == middle)).mappings().one()
    forged = {**row, "actor_name": "someone-else"}
    conn.execute(
        update(audit_table)
        .where(audit_table.c.id == middle)
        .values(actor_name="someone-else", hash=chain_hash(row["prev_hash"], forged))
    )
    result = verify_chain(conn)
    assert (result.ok, result.broken_id, result.problem) == (False, last, Problem.LINK_BROKEN)


def test_a_deleted_row_is_found(actx):
    for n in range(3):
        record(actx.session, "test.delete", detail={"n": n})
    conn = actx.session.connection()
    _first, middle, last = _last_ids(conn, 3)
    _drop_triggers(conn)
    conn.execute(delete(audit_table).where(audit_table.c.id == middle))
    result = verify_chain(conn)
    assert (result.ok, result.broken_id, result.problem) == (False, last, Problem.ROW_MISSING)
    assert str(middle) in result.message


def test_the_database_refuses_update_and_delete(actx):
    record(actx.session, "test.refuse")
    conn = actx.session.connection()
    (last,) = _last_ids(conn, 1)
    statements = [
        update(audit_table).where(audit_table.c.id == last).values(actor_name="x"),
        delete(audit_table).where(audit_table.c.id == last),
    ]
    if conn.dialect.name == "postgresql":
        statements.append(text("TRUNCATE audit_log"))
    for stmt in statements:
        with pytest.raises(DBAPIError, match="append-only"), conn.begin_nested():
            conn.execute(stmt)
    assert verify_chain(conn).ok


def test_who_looked_lists_views_and_reveals_newest_first(actx):
    record(actx.session, "person.view", entity="persons", entity_id=31337)
    record(actx.session, "record.update", entity="persons", entity_id=31337)
    record(
        actx.session,
        "person.reveal",
        entity="persons",
        entity_id=31337,
        detail={"fields": ["phone"], "reason": "联系本人"},
    )
    record(actx.session, "person.view", entity="persons", entity_id=31338)
    looked = who_looked(actx.session, "persons", 31337)
    assert [e.action for e in looked] == ["person.reveal", "person.view"]
    assert looked[0].detail["reason"] == "联系本人" and looked[0].actor_name == "auditor"
    assert len(who_looked(actx.session, "persons", 31337, limit=1)) == 1


def test_below_the_root_the_log_is_limited_to_the_area(actx):
    t = f.tree(actx)
    other = f.tree(actx)
    record(actx.session, "test.scope", community_id=t.community.id)
    record(actx.session, "test.scope", community_id=other.community.id)
    record(actx.session, "test.scope")  # belongs to no community
    wanted = audit.AuditFilter(action="test")  # a family: test.*
    district = Actor(user_id=1, username="d", org_path=t.district.path, permissions=frozenset())
    city = Actor(user_id=2, username="c", org_path=t.city.path, permissions=frozenset())
    seen = actx.session.scalars(audit.entries(district, wanted)).all()
    assert [e.community_id for e in seen] == [t.community.id]
    seen = actx.session.scalars(audit.entries(city, wanted)).all()
    assert [e.community_id for e in seen] == [None, other.community.id, t.community.id]


def test_concurrent_appenders_do_not_fork_the_chain(app_node):
    """Two threads, each appending 50 entries in 50 transactions of its own."""
    errors: list[BaseException] = []
    start = threading.Barrier(2)

    def append_many(name: str) -> None:
        try:
            start.wait()
            for n in range(50):
                with app_node.unit_of_work(Actor.system(name)) as ctx:
                    record(ctx.session, "test.concurrent", detail={"n": n})
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)

    threads = [threading.Thread(target=append_many, args=(f"t{i}",)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    with app_node.engine.connect() as conn:
        result = verify_chain(conn)
        assert result.ok, result.message
        counted = conn.scalar(select(func.count()).where(audit_table.c.action == "test.concurrent"))
    assert counted == 100


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_migration_0002_goes_down_and_up_cleanly(backend, tmp_path):
    with ExitStack() as stack:
        url = f"sqlite:///{tmp_path / 'm.db'}" if backend == "sqlite" else None
        url = url or stack.enter_context(throwaway_pg())
        engine = make_engine(url)
        stack.callback(engine.dispose)
        migrate.upgrade(engine, "0002")
        assert "audit_log" in inspect(engine).get_table_names()
        migrate.downgrade(engine, "0001")
        assert "audit_log" not in inspect(engine).get_table_names()
        with engine.connect() as conn:
            if backend == "postgres":
                leftover = conn.scalar(
                    text("SELECT count(*) FROM pg_proc WHERE proname = 'audit_log_append_only'")
                )
            else:
                leftover = conn.scalar(
                    text("SELECT count(*) FROM sqlite_master WHERE type = 'trigger'")
                )
        assert leftover == 0
        migrate.upgrade(engine)
        row = {"id": 1, "at": utcnow(), "actor_name": "t", "action": "t", "detail": {}}
        row["hash"] = chain_hash(
            GENESIS_HASH,
            {
                **row,
                **dict.fromkeys(("actor_user_id", "entity", "entity_id", "community_id", "ip")),
            },
        )
        with engine.begin() as conn:
            conn.execute(insert(audit_table).values(**row, prev_hash=GENESIS_HASH))
        with pytest.raises(DBAPIError, match="append-only"), engine.begin() as conn:
            conn.execute(text("DELETE FROM audit_log"))
        with engine.connect() as conn:
            assert verify_chain(conn).ok


# --- the command --------------------------------------------------------------------------


def test_cli_verify_passes_then_names_the_tampered_row(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("ANJU_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("ANJU_SECRET_KEY", TEST_KEY)
    monkeypatch.setenv("ANJU_ADMIN_PASSWORD", ADMIN_PASSWORD)
    monkeypatch.delenv("ANJU_DATABASE_URL", raising=False)
    runner = CliRunner()
    init = runner.invoke(cli_app, ["init", "--json"])
    assert init.exit_code == 0, init.output

    ok = runner.invoke(cli_app, ["audit", "verify", "--json"])
    assert ok.exit_code == 0, ok.output
    report = json.loads(ok.stdout)
    assert report["ok"] and report["checked"] > 3 and report["broken_id"] is None
    assert report["head_id"] == report["checked"] and len(report["head_hash"]) == 64
    human = runner.invoke(cli_app, ["audit", "verify"])
    assert human.exit_code == 0 and "OK" in human.stdout

    db = sqlite3.connect(tmp_path / "data" / "anju.db")
    with db:
        db.execute("DROP TRIGGER audit_log_no_update")
        db.execute("UPDATE audit_log SET actor_name = 'nobody' WHERE id = 3")
    db.close()
    broken = runner.invoke(cli_app, ["audit", "verify", "--json"])
    assert broken.exit_code == 1
    report = json.loads(broken.stdout)
    assert report == {
        **report,
        "ok": False,
        "broken_id": 3,
        "problem": "content_changed",
        "checked": 2,
    }
    assert runner.invoke(cli_app, ["audit", "verify"]).exit_code == 1


# --- the console page ---------------------------------------------------------------------


def _signed_in_client(node: Node, username: str, role: str) -> tuple[TestClient, str]:
    """A client with a console session made directly (the login form is tested elsewhere)."""
    with node.unit_of_work() as ctx:
        user = ctx.session.scalar(select(User).where(User.username == username))
        if user is None:
            root = org_service.root(ctx.session)
            user = auth_service.create_user(
                ctx.session,
                username=username,
                display_name=username,
                password=secrets.token_urlsafe(12),
                role_code=role,
                org_unit_id=root.id,
            )
        token, login = auth_service.start_session(ctx.session, user, utcnow(), 12, "127.0.0.1")
        csrf = login.csrf_token
    client = TestClient(create_app(node))
    client.cookies.set(SESSION_COOKIE, token)
    return client, csrf


def test_audit_page_is_for_admins_and_shows_changes(app_node):
    with app_node.unit_of_work() as ctx:
        t = f.tree(ctx)
        community_id = t.community.id
    officer, _ = _signed_in_client(app_node, "audit-officer", "officer")
    with officer:
        assert officer.get("/admin/audit").status_code == 403

    admin, csrf = _signed_in_client(app_node, "admin", "admin")
    with admin:
        created = admin.post(
            "/api/v1/grids",
            json={"community_id": community_id, "code": "AUD1", "name": "审计网格"},
            headers={"X-CSRF-Token": csrf},
        )
        assert created.status_code in (200, 201), created.text
        grid_id = created.json()["id"]
        admin.cookies.set("anju_lang", "zh_CN")
        page = admin.get("/admin/audit")
        assert page.status_code == 200
        assert "审计日志" in page.text
        assert f'href="/grids/{grid_id}"' in page.text and "审计网格" in page.text
        only = admin.get(
            "/admin/audit",
            params={"entity": "grids", "action": "record", "actor": "ADM"},
            headers={"hx-request": "true", "hx-target": "results"},
        )
        assert only.status_code == 200 and "<html" not in only.text
        assert f'href="/grids/{grid_id}"' in only.text and "小区" not in only.text
        today = dt.date.today()
        future = admin.get("/admin/audit", params={"since": str(today + dt.timedelta(days=2))})
        assert "审计网格" not in future.text
        bad = admin.get("/admin/audit", params={"since": "yesterday"})
        assert bad.status_code == 200 and "审计网格" in bad.text

    with app_node.unit_of_work() as ctx:
        (row,) = _rows(ctx, entity="grids", entity_id=str(grid_id))
        assert row.actor_name == "admin" and row.actor_user_id is not None
        assert row.ip == "testclient" and row.community_id == community_id


def test_a_new_factory_at_a_dropped_ones_address_is_audited_too() -> None:
    """SQLAlchemy's ``event.contains`` answers by ``id()``: a factory made where a collected
    one lived looked audited already, and ``install`` left it without its listeners."""
    import gc

    from sqlalchemy.orm import sessionmaker

    from anju.audit.changes import install

    engine = make_engine("sqlite://")
    dropped: set[int] = set()
    reused = None
    for _ in range(10_000):
        factory = install(sessionmaker(bind=engine))
        if id(factory) in dropped:
            reused = factory
            break
        dropped.add(id(factory))
        del factory
        gc.collect()
    if reused is None:
        pytest.skip("no address was reused")
    with reused() as session:
        session.add(AuditEntry())
        with pytest.raises(RuntimeError, match=r"appended by anju\.audit\.service only"):
            session.flush()
