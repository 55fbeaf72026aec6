"""alert model configuration per organisation unit, watchlists; their permissions

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-21 09:30:00.000000

A database initialised before ``alert.configure`` and ``watchlist.manage`` existed gets
them here, added to the default roles it has (``seed_defaults`` never rewrites roles).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from anju.core.db import UTCDateTime

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

RULES = ["alert.configure", "watchlist.manage"]
GRANTS = {"district_analyst": RULES, "station_analyst": RULES, "officer": RULES}
BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "alert_configs",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column(
            "org_unit_id",
            BigId,
            sa.ForeignKey("org_units.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("model", sa.String(40), nullable=False),
        sa.Column("params", sa.JSON(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("updated_by", sa.String(60), nullable=True),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.UniqueConstraint("org_unit_id", "model", "version"),
    )
    op.create_index("ix_alert_configs_org_unit_id", "alert_configs", ["org_unit_id"])
    op.create_table(
        "watchlist_entries",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column(
            "org_unit_id",
            BigId,
            sa.ForeignKey("org_units.id", ondelete="RESTRICT"),
            nullable=False,
        ),
        sa.Column(
            "list_kind",
            sa.Enum(
                "key_person", "controlled", name="watchlist", native_enum=False,
                create_constraint=True, length=16,
            ),
            nullable=False,
        ),
        sa.Column("category", sa.String(40), nullable=False),
        sa.Column("reason", sa.String(200), nullable=False),
        sa.Column(
            "match_type",
            sa.Enum(
                "person", "id_hash", "card", "plate", "plate_prefix", "mac", "face",
                name="matchtype", native_enum=False, create_constraint=True, length=16,
            ),
            nullable=False,
        ),
        sa.Column("match_value", sa.String(100), nullable=False),
        sa.Column("owner_id", BigId, sa.ForeignKey("users.id", ondelete="SET NULL")),
        sa.Column("expires_at", UTCDateTime(), nullable=True),
        sa.Column("police_only", sa.Boolean(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
    )  # fmt: skip
    op.create_index("ix_watchlist_entries_org_unit_id", "watchlist_entries", ["org_unit_id"])
    _grant(add=True)


def downgrade() -> None:
    _grant(add=False)
    op.drop_index("ix_watchlist_entries_org_unit_id", table_name="watchlist_entries")
    op.drop_table("watchlist_entries")
    op.drop_index("ix_alert_configs_org_unit_id", table_name="alert_configs")
    op.drop_table("alert_configs")


def _grant(add: bool) -> None:
    """Add (or take back) the rules permissions of the default roles that exist."""
    roles = sa.table("roles", sa.column("code", sa.String), sa.column("permissions", sa.JSON))
    conn = op.get_bind()
    for code, permissions in conn.execute(sa.select(roles.c.code, roles.c.permissions)):
        grants = GRANTS.get(code)
        if not grants or "*" in (permissions or []):
            continue
        current = list(permissions or [])
        if add:
            changed = current + [p for p in grants if p not in current]
        else:
            changed = [p for p in current if p not in grants]
        if changed != current:
            conn.execute(roles.update().where(roles.c.code == code).values(permissions=changed))
