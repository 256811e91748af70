"""A tenant may have a host of its own; links, cookies and feed URLs are found by their
token's hash alone (they name no tenant), so that column gets an index of its own.

Revision ID: 0014_tenant_hosts
Revises: 0013_conflict_parts
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014_tenant_hosts"
down_revision: str | None = "0013_conflict_parts"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_HASHED = ("magic_links", "web_sessions", "feed_tokens")


def upgrade() -> None:
    with op.batch_alter_table("tenants", schema=None) as batch_op:
        batch_op.add_column(sa.Column("host", sa.String(length=260), nullable=True))
        batch_op.create_unique_constraint(batch_op.f("uq_tenants_host"), ["host"])
    for table in _HASHED:
        op.create_index(op.f(f"ix_{table}_token_hash"), table, ["token_hash"], unique=False)


def downgrade() -> None:
    for table in _HASHED:
        op.drop_index(op.f(f"ix_{table}_token_hash"), table_name=table)
    with op.batch_alter_table("tenants", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("uq_tenants_host"), type_="unique")
        batch_op.drop_column("host")
