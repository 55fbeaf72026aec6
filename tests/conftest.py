"""Shared fixtures: a migrated node per database backend, and a rolled-back ctx per test.

Integration tests that take ``node`` or ``ctx`` run once on SQLite and once on PostgreSQL.
PostgreSQL comes from ``ANJU_TEST_PG`` (default: the local server's ``test`` database, trust
auth); each run creates a throwaway database and drops it afterwards. When no server answers,
the PostgreSQL half is skipped with the reason.
"""

from __future__ import annotations

import base64
import logging
import os
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import psycopg
import pytest

from anju.bootstrap import Node, bootstrap, initialise
from anju.config import Settings
from anju.core.context import Ctx
from anju.core.scope import Actor

# Every clear ID number and phone the tests make, and every log line of the run: at the end
# no such value may appear in any log (sensitive data never reaches the logs).
SENSITIVE_VALUES: set[str] = set()
LOG_LINES: list[str] = []


class _CaptureAll(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        try:
            LOG_LINES.append(self.format(record))
        except Exception:  # a broken log call must not hide the others
            LOG_LINES.append(str(record.msg))


@pytest.fixture(scope="session", autouse=True)
def capture_every_log_line() -> Iterator[None]:
    handler = _CaptureAll(level=logging.DEBUG)
    handler.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    levels = {name: logging.getLogger(name).level for name in ("anju", "uvicorn")}
    logging.getLogger("anju").setLevel(logging.DEBUG)
    logging.getLogger("uvicorn").setLevel(logging.INFO)
    yield
    root.removeHandler(handler)
    for name, level in levels.items():
        logging.getLogger(name).setLevel(level)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    text = "\n".join(LOG_LINES)
    leaked = sorted(v for v in SENSITIVE_VALUES if len(v) >= 11 and v in text)
    if leaked:
        masked = ", ".join(v[:3] + "…" + v[-2:] for v in leaked[:10])
        print(f"\nSENSITIVE VALUES IN LOGS ({len(leaked)}): {masked}")
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


PG_ADMIN_URL = os.environ.get("ANJU_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
TEST_KEY = base64.b64encode(bytes(range(32))).decode()
ADMIN_PASSWORD = "admin-password-for-tests"


def _pg_available() -> str | None:
    try:
        with psycopg.connect(PG_ADMIN_URL, connect_timeout=3):
            return None
    except psycopg.Error as exc:
        return f"PostgreSQL not reachable at {PG_ADMIN_URL}: {exc}".splitlines()[0]


@contextmanager
def throwaway_pg() -> Iterator[str]:
    """Create a PostgreSQL database, yield its SQLAlchemy URL, drop it afterwards."""
    reason = _pg_available()
    if reason:
        pytest.skip(reason)
    name = f"anju_test_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base = PG_ADMIN_URL.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://", 1)
    try:
        yield f"{base}/{name}"
    finally:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def pg_database() -> Iterator[str]:
    """A throwaway PostgreSQL database for this run, as a SQLAlchemy URL."""
    with throwaway_pg() as url:
        yield url


def make_settings(data_dir: Path, database_url: str | None) -> Settings:
    return Settings(
        data_dir=data_dir,
        database_url=database_url,
        secret_key=TEST_KEY,
    )


@pytest.fixture(scope="session", params=["sqlite", "postgres"])
def backend(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> str:
    """The database URL of each backend in turn."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path_factory.mktemp('sqlite') / 'anju.db'}"
    return str(request.getfixturevalue("pg_database"))


@pytest.fixture(scope="session")
def node(backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Node]:
    """A migrated, initialised node on each backend (shared by the tests of a run)."""
    settings = make_settings(tmp_path_factory.mktemp("data"), backend)
    built = bootstrap(settings)
    initialise(built, admin_password=ADMIN_PASSWORD)
    yield built
    built.dispose()


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def app_node(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Node]:
    """A node on a database of its own, for tests whose requests commit (web, browser, CLI).

    Committed rows would otherwise leak into the shared ``node`` that ``ctx`` tests count on.
    """
    data = tmp_path_factory.mktemp("app")
    with ExitStack() as stack:
        url = (
            f"sqlite:///{data / 'anju.db'}"
            if request.param == "sqlite"
            else stack.enter_context(throwaway_pg())
        )
        built = bootstrap(make_settings(data, url))
        initialise(built, admin_password=ADMIN_PASSWORD)
        stack.callback(built.dispose)
        built.backend = request.param  # type: ignore[attr-defined]
        yield built


@pytest.fixture
def ctx(node: Node) -> Iterator[Ctx]:
    """A system-actor context whose writes are rolled back after the test."""
    with node.engine.connect() as conn:
        outer = conn.begin()
        # From the node's factory, so the audit hook sees these sessions too.
        session = node.sessions(bind=conn, join_transaction_mode="create_savepoint")
        try:
            yield node.ctx(session, Actor.system())
        finally:
            session.close()
            outer.rollback()


@pytest.fixture(scope="session")
def test_output() -> Path:
    """Where tests leave artefacts people look at (screenshots, reports)."""
    path = Path(os.environ.get("ANJU_TEST_OUTPUT", "test-output"))
    path.mkdir(parents=True, exist_ok=True)
    return path
