"""Outbox: who holds a row's lease (locked_by), as jobs already record.

A process that restarts after a crash releases the leases its earlier incarnation held
at once, instead of leaving those messages for the lease (PARLEY_OUTBOX_LEASE_SECONDS)
to run out; it needs to know which leases were its own.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("outbound_messages") as batch:
        batch.add_column(sa.Column("locked_by", sa.String(length=128), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("outbound_messages") as batch:
        batch.drop_column("locked_by")
