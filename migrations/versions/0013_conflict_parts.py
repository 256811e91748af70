"""Conflicts keep a split block's remaining parts (MUVA §3.4).

Revision ID: 0013_conflict_parts
Revises: 0012_meeting_types
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013_conflict_parts"
down_revision: str | None = "0012_meeting_types"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("conflicts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("remaining", sa.JSON(), nullable=True))


def downgrade() -> None:
    op.execute("ALTER TABLE conflicts DROP COLUMN remaining")
