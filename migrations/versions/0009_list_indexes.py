"""Indexes for the operator's booking list at scale.

A tenant's bookings newest first by (created_at, id), the order the list's keyset cursor
walks, and its search by guest or host address in lower case. Without them a page of a
tenant with 100,000 bookings reads and sorts all of them.

Revision ID: 0009_list_indexes
Revises: 0011
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009_list_indexes"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("bookings", schema=None) as batch_op:
        batch_op.create_index(
            "ix_bookings_tenant_created", ["tenant_id", "created_at", "id"], unique=False
        )
        batch_op.create_index(
            "ix_bookings_tenant_guest_email",
            ["tenant_id", sa.text("lower(guest_email)")],
            unique=False,
        )
        batch_op.create_index(
            "ix_bookings_tenant_host_email",
            ["tenant_id", sa.text("lower(host_email)")],
            unique=False,
        )


def downgrade() -> None:
    with op.batch_alter_table("bookings", schema=None) as batch_op:
        batch_op.drop_index("ix_bookings_tenant_host_email")
        batch_op.drop_index("ix_bookings_tenant_guest_email")
        batch_op.drop_index("ix_bookings_tenant_created")
