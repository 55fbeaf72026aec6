"""The composition root: builds a node's engine, sessions and cipher from settings.

The web app, the CLI, the simulator and the tests all start here; nothing else holds
global state.
"""

from __future__ import annotations

import gc
import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from sqlalchemy import select, text
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from anju import audit
from anju.alerts.engine import NodeRules
from anju.auth import service as auth_service
from anju.auth.models import User
from anju.config import Settings
from anju.core import migrate
from anju.core.context import Ctx
from anju.core.crypto import FieldCipher, load_or_create_key
from anju.core.db import make_engine, make_session_factory, transaction, utcnow
from anju.core.scope import Actor
from anju.events import partitions
from anju.events.blobs import FolderBlobs
from anju.events.feed import LiveFeed
from anju.events.pipeline import Pipeline
from anju.events.sql import SqlDevices, SqlEnricher, SqlStore
from anju.faces.service import FaceService
from anju.org import service as org_service
from anju.org.models import Level

log = logging.getLogger(__name__)

ROOT_CODE = "CITY"
ROOT_NAME = "市公安局"


@dataclass
class Node:
    """One running Anju node: settings plus the objects built from them."""

    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    cipher: FieldCipher
    feed: LiveFeed = field(default_factory=LiveFeed)
    rules: NodeRules = field(default_factory=NodeRules)  # the alert models, on their own thread
    # Alerts have their own feed: the event feed goes to roles that must not see police-only
    # alerts, and its listeners expect events.
    alert_feed: LiveFeed = field(default_factory=LiveFeed)
    # Face recognition: enrollment, strangers, search; its galleries live in this process.
    faces: FaceService = field(init=False)

    def __post_init__(self) -> None:
        self.faces = FaceService(self.settings, self.cipher)

    def pipeline(self, session: Session) -> Pipeline:
        """The event pipeline over one session (its transaction is the caller's)."""
        return Pipeline(
            devices=SqlDevices(session),
            enricher=SqlEnricher(session),
            store=SqlStore(session),
            blobs=FolderBlobs(self.settings.blob_dir),
            clock=utcnow,
            faces=self.faces.recognizer(session),
        )

    @contextmanager
    def unit_of_work(self, actor: Actor | None = None) -> Iterator[Ctx]:
        """A transaction with its context: commits on success, rolls back on error."""
        with transaction(self.sessions) as session:
            yield self.ctx(session, actor)

    def ctx(self, session: Session, actor: Actor | None = None) -> Ctx:
        """A context for ``session``; the actor is also put on the session for the audit log."""
        who = actor or Actor.system()
        session.info["actor"] = who
        return Ctx(session=session, cipher=self.cipher, actor=who, timezone=self.settings.timezone)

    def dispose(self) -> None:
        self.rules.close()  # the alert models finish what was handed over before the pool goes
        self.engine.dispose()


def bootstrap(settings: Settings, *, create_key: bool = False) -> Node:
    """Build a node. Only ``anju init`` may create the data folder's key."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    key = load_or_create_key(settings.key_file, settings.secret_key, create=create_key)
    engine = make_engine(settings.resolved_database_url)
    return Node(
        settings=settings,
        engine=engine,
        sessions=audit.install(make_session_factory(engine)),  # changes are audited
        cipher=FieldCipher(key),
        rules=NodeRules(local=settings.rules == "node"),
    )


@dataclass(frozen=True)
class InitResult:
    admin_created: bool
    admin_username: str
    admin_password: str | None  # only when generated: printed once


def settle_process() -> None:
    """Once a long-running process has started (``anju serve``, ``anju worker``):

    - collect, then freeze what start-up built (modules, the app, catalogues, caches), so the
      cyclic garbage collector no longer walks those objects on every full collection — a
      pause that stops every thread (measured: up to 89 ms inside a trajectory, a fifth of
      the collector's time during ingest; docs/performance.md);
    - hand the interpreter between threads every millisecond instead of every 5: a thread
      back from the database (which runs without holding the interpreter) otherwise waits
      up to 5 ms while another thread decodes the next request, and the write lock it holds
      waits with it (measured: HTTP ingest into SQLite +15 to +20 %, docs/performance.md).
    """
    gc.collect()
    gc.freeze()
    sys.setswitchinterval(SWITCH_INTERVAL)


SWITCH_INTERVAL = 0.001  # seconds; CPython's default is 0.005


def prepare_database(engine: Engine) -> None:
    """Bring the database to the newest schema and ready it for traffic: the coming months'
    event partitions, and (PostgreSQL) planner statistics for the organisation tree, which
    autovacuum never gathers for a table of fewer than 50 rows; without them scoped event
    queries were planned from the wrong side (docs/performance.md, "Trajectory")."""
    migrate.upgrade(engine)
    with engine.begin() as conn:
        partitions.ensure_partitions(conn, utcnow())
        if conn.dialect.name == "postgresql":
            conn.execute(text("ANALYZE org_units"))


def initialise(node: Node, admin_password: str | None = None) -> InitResult:
    """Migrate to head (and make the coming months' event partitions), seed roles and tags,
    make the root organisation and first admin."""
    prepare_database(node.engine)
    with node.unit_of_work() as ctx:
        auth_service.seed_defaults(ctx.session)
        root = org_service.root(ctx.session)
        if root is None:
            root = org_service.add_unit(
                ctx.session, level=Level.CITY, code=ROOT_CODE, name=ROOT_NAME, parent=None
            )
        if ctx.session.scalar(select(User.id).where(User.username == "admin")) is not None:
            return InitResult(False, "admin", None)
        generated = admin_password is None
        password = admin_password or auth_service.new_password()
        auth_service.create_user(
            ctx.session,
            username="admin",
            display_name="系统管理员",
            password=password,
            role_code="admin",
            org_unit_id=root.id,
            # A generated password was printed on a terminal: its holder must replace it.
            must_change_password=generated,
        )
        log.info("created the first admin account")
        return InitResult(True, "admin", password if generated else None)
