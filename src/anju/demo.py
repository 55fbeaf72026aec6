"""The demo: a simulated community and one account per everyday role, ready to explore."""

from __future__ import annotations

import logging
from typing import Any

from rich.console import Console
from rich.progress import Progress
from sqlalchemy import select

from anju.auth import service as auth_service
from anju.auth.models import User
from anju.bootstrap import Node
from anju.org.models import OrgUnit
from anju.registry.models import Person, Relation, Residency
from anju.sim.runner import LifeThread

log = logging.getLogger(__name__)

DEMO_CODE = "AJHY"
DEMO_NAME = "安居花园"
DEMO_PASSWORD = "anju-demo-2026"

# username, display name, role, which node: the community or one of its ancestors by level
DEMO_ACCOUNTS = [
    ("city", "市局分析员", "city_analyst", "city"),
    ("district", "分局分析员", "district_analyst", "district"),
    ("station", "派出所分析员", "station_analyst", "station"),
    ("officer", "李警官", "officer", "office"),
    ("grid", "网格员小王", "grid_worker", "community"),
    ("property", "物业张经理", "property_manager", "community"),
    ("staff", "物业客服小陈", "property_staff", "community"),
    ("guard", "保安老赵", "guard", "community"),
    ("integration", "对接系统", "integration", "community"),
]


def ensure_demo(
    node: Node, *, residents: int, seed: int, console: Console, admin_password: str
) -> list[tuple[str, str, str, str]]:
    """Build the demo community once and add the demo accounts (user, password, role, scope)."""
    from anju.sim.community import STAGES, CommunityConfig, build_community

    with node.unit_of_work() as ctx:
        community = ctx.session.scalar(select(OrgUnit).where(OrgUnit.code == DEMO_CODE))
    if community is None:
        config = CommunityConfig(seed=seed, residents=residents, code=DEMO_CODE, name=DEMO_NAME)
        with Progress(console=console, transient=True) as progress:
            task = progress.add_task("building the demo community", total=None)

            def report(step: str, done: int, total: int) -> None:
                progress.update(
                    task, description=STAGES.get(step, step), completed=done, total=total
                )

            with node.unit_of_work() as ctx:
                result = build_community(ctx, config, progress=report)
        console.print(f"built {DEMO_NAME}: {result.summary()}")
    ensure_counting_cameras(node, DEMO_CODE)
    return _ensure_accounts(node, admin_password)


def ensure_counting_cameras(node: Node, code: str) -> None:
    """People-counting cameras on two squares of the community (the builder fits none),
    so the crowd model has counts to judge; added once."""
    from anju.alerts.evaluate import COUNTING_CAMERAS, add_counting_cameras
    from anju.devices.models import Device

    with node.unit_of_work() as ctx:
        community = ctx.session.scalar(select(OrgUnit).where(OrgUnit.code == code))
        if community is None:
            return
        first = f"{code}-{COUNTING_CAMERAS[0][0]}"
        if ctx.session.scalar(select(Device.id).where(Device.code == first)) is None:
            add_counting_cameras(ctx, community.id, code)


def _ensure_accounts(node: Node, admin_password: str) -> list[tuple[str, str, str, str]]:
    rows: list[tuple[str, str, str, str]] = [("admin", admin_password, "admin", "全市")]
    with node.unit_of_work() as ctx:
        community = ctx.session.scalar(select(OrgUnit).where(OrgUnit.code == DEMO_CODE))
        assert community is not None
        chain: dict[str, Any] = {}
        unit: OrgUnit | None = community
        while unit is not None:
            chain[unit.level.value] = unit
            unit = unit.parent
        for username, display, role, level in DEMO_ACCOUNTS:
            scope = chain[level]
            if ctx.session.scalar(select(User.id).where(User.username == username)) is None:
                auth_service.create_user(
                    ctx.session,
                    username=username,
                    display_name=display,
                    password=DEMO_PASSWORD,
                    role_code=role,
                    org_unit_id=scope.id,
                )
            rows.append((username, DEMO_PASSWORD, role, scope.name))
        resident = _demo_resident(ctx.session, community)
        if resident is not None:
            if ctx.session.scalar(select(User.id).where(User.username == "resident")) is None:
                auth_service.create_user(
                    ctx.session,
                    username="resident",
                    display_name=resident.name,
                    password=DEMO_PASSWORD,
                    role_code="resident",
                    org_unit_id=community.id,
                    person_id=resident.id,
                )
            rows.append(("resident", DEMO_PASSWORD, "resident", f"{resident.name}（本人及家庭）"))
    return rows


def _demo_resident(session: Any, community: OrgUnit) -> Person | None:
    """The demo resident: the owner of the community's first lived-in house."""
    stmt = (
        select(Person)
        .join(Residency, Residency.person_id == Person.id)
        .where(
            Residency.community_id == community.id,
            Residency.relation == Relation.OWNER,
            Residency.end_date.is_(None),
        )
        .order_by(Residency.house_id, Person.id)
        .limit(1)
    )
    return session.scalar(stmt)


def start_life(node: Node, base_url: str, *, seed: int, speed: float = 3600.0) -> LifeThread:
    """Live the demo community in a daemon thread, over HTTP to ``base_url``.

    The simulator issues its devices fresh credentials and starts a day back, so a new demo
    has a whole day of events within its first minute (at the default 3600x; the node takes
    them as fast as it can) and then keeps time with the clock, as real devices would.
    """
    logging.getLogger("httpx").setLevel(logging.WARNING)  # not a line per batch
    # With every alert model's anomaly planted over its first days, and a showcase of every
    # model within its first minutes (anju.sim.showcase), so the alert centre has something
    # of each kind to take through the loop, some of it arriving while one watches.
    # And a few real photographs through the real face encoder: the demo resident enrolled
    # by photo and recognised at a gate, a key person watched by photo, returning strangers
    # (anju.sim.real_faces).
    with node.unit_of_work() as ctx:
        community = ctx.session.scalar(select(OrgUnit).where(OrgUnit.code == DEMO_CODE))
        resident = _demo_resident(ctx.session, community) if community is not None else None
    thread = LifeThread(
        node,
        base_url,
        community=DEMO_CODE,
        seed=seed,
        speed=speed,
        anomalies=True,
        real_faces_for=resident.id if resident is not None else None,
    )
    thread.start()
    return thread
