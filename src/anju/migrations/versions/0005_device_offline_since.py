"""device offline_since, index of event images

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-21 08:40:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # A plain column add (no batch rebuild: dropping the old devices table would cascade).
    op.add_column("devices", sa.Column("offline_since", sa.DateTime(timezone=True), nullable=True))
    # Only rows with an image: retention looks up whether a blob is still shown.
    has_image = sa.text("image IS NOT NULL")
    op.create_index(
        "ix_events_image",
        "events",
        ["image"],
        unique=False,
        sqlite_where=has_image,
        postgresql_where=has_image,
    )


def downgrade() -> None:
    op.drop_index("ix_events_image", table_name="events")
    op.drop_column("devices", "offline_since")
