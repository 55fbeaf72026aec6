"""face templates (sealed encodings), stranger clusters, "not this person" feedback,
probes of recognised events, gallery generations; face permissions for the default roles

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-21 11:10:00.000000

``seed_defaults`` never overwrites an existing role, so a database initialised before the
face permissions existed gets them here, added to the default roles it has.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from anju.core.db import UTCDateTime

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

# Frozen copy of what auth/defaults.py grants: a migration must not change with the code.
POLICE = ["face.view", "face.manage", "face.search"]
GRANTS: dict[str, list[str]] = {
    "city_analyst": POLICE,
    "district_analyst": POLICE,
    "station_analyst": POLICE,
    "officer": POLICE,
    "property_manager": ["face.view", "face.manage"],
}


def upgrade() -> None:
    op.create_table(
        "face_templates",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column(
            "community_id", BigId, sa.ForeignKey("org_units.id", ondelete="RESTRICT"),
            nullable=True,
        ),
        sa.Column("owner_kind", sa.String(10), nullable=False),
        sa.Column("owner_id", BigId, nullable=False),
        sa.Column("model", sa.String(40), nullable=False),
        sa.Column("vector_enc", sa.LargeBinary(), nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("image", sa.String(100), nullable=True),
        sa.Column("event_id", BigId, nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
    )  # fmt: skip
    op.create_index("ix_face_templates_owner", "face_templates", ["owner_kind", "owner_id"])
    op.create_index(
        "ix_face_templates_community_model", "face_templates", ["community_id", "model"]
    )
    op.create_table(
        "stranger_clusters",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column(
            "community_id", BigId, sa.ForeignKey("org_units.id", ondelete="RESTRICT"),
            nullable=False,
        ),
        sa.Column("code", sa.String(20), nullable=False, unique=True),
        sa.Column("first_seen", UTCDateTime(), nullable=False),
        sa.Column("last_seen", UTCDateTime(), nullable=False),
        sa.Column("sightings", sa.Integer(), nullable=False),
        sa.Column(
            "person_id", BigId, sa.ForeignKey("persons.id", ondelete="SET NULL"), nullable=True
        ),
        sa.Column(
            "merged_into_id", BigId,
            sa.ForeignKey("stranger_clusters.id", ondelete="SET NULL"), nullable=True,
        ),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
    )  # fmt: skip
    op.create_index(
        "ix_stranger_clusters_community_last", "stranger_clusters", ["community_id", "last_seen"]
    )
    op.create_table(
        "face_rejections",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column(
            "community_id", BigId, sa.ForeignKey("org_units.id", ondelete="CASCADE"),
            nullable=True,
        ),
        sa.Column("owner", sa.String(24), nullable=False),
        sa.Column("model", sa.String(40), nullable=False),
        sa.Column("vector_enc", sa.LargeBinary(), nullable=False),
        sa.Column("event_id", BigId, nullable=True),
        sa.Column("reason", sa.String(200), nullable=False),
        sa.Column(
            "user_id", BigId, sa.ForeignKey("users.id", ondelete="SET NULL"), nullable=True
        ),
        sa.Column("created_at", UTCDateTime(), nullable=False),
    )  # fmt: skip
    op.create_index(
        "ix_face_rejections_community_model", "face_rejections", ["community_id", "model"]
    )
    op.create_table(
        "face_probes",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("event_id", BigId, nullable=False),
        sa.Column("community_id", BigId, nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("model", sa.String(40), nullable=False),
        sa.Column("vector_enc", sa.LargeBinary(), nullable=False),
        sa.Column("at", UTCDateTime(), nullable=False),
    )
    op.create_index("ix_face_probes_event_id", "face_probes", ["event_id"])
    op.create_index("ix_face_probes_at", "face_probes", ["at"])
    op.create_table(
        "face_generations",
        sa.Column("scope", sa.String(24), primary_key=True),
        sa.Column("generation", sa.Integer(), nullable=False),
    )
    _grant(add=True)


def downgrade() -> None:
    _grant(add=False)
    op.drop_table("face_generations")
    op.drop_index("ix_face_probes_at", table_name="face_probes")
    op.drop_index("ix_face_probes_event_id", table_name="face_probes")
    op.drop_table("face_probes")
    op.drop_index("ix_face_rejections_community_model", table_name="face_rejections")
    op.drop_table("face_rejections")
    op.drop_index("ix_stranger_clusters_community_last", table_name="stranger_clusters")
    op.drop_table("stranger_clusters")
    op.drop_index("ix_face_templates_community_model", table_name="face_templates")
    op.drop_index("ix_face_templates_owner", table_name="face_templates")
    op.drop_table("face_templates")


def _grant(add: bool) -> None:
    """Add (or take back) the face permissions of the default roles that exist."""
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
