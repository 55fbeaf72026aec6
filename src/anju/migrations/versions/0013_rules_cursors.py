"""where each ``anju worker rules`` process has followed the event store to

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-21 18:00:00.000000

With ``ANJU_RULES=worker`` the processes that store events do not run the alert models;
``anju worker rules`` follows the ``events`` table by id instead and keeps, per shard, the
last id it has handled, so a restarted worker alerts on what was stored while it was down,
and its models' failure counts, which the console shows to admins.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from anju.core.db import UTCDateTime

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "rules_cursors",
        sa.Column("name", sa.String(40), primary_key=True),
        sa.Column("last_id", sa.BigInteger(), nullable=False),
        sa.Column("failures", sa.JSON(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("rules_cursors")
