"""The booking page's look per provider: an accent colour (#rrggbb) and a photo or logo
(an https URL).

Revision ID: 0015_page
Revises: 0014_tenant_hosts
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015_page"
down_revision: str | None = "0014_tenant_hosts"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Plain ALTER TABLE … ADD COLUMN on both databases: nullable, no default, no copy.
    op.add_column("providers", sa.Column("accent_colour", sa.String(length=7), nullable=True))
    op.add_column("providers", sa.Column("photo_url", sa.String(length=500), nullable=True))


def downgrade() -> None:
    # Plain ALTER TABLE … DROP COLUMN (SQLite ≥ 3.35 has it), as 0012 does: a batch copy
    # of a table can lose indexes SQLite cannot reflect.
    for column in ("photo_url", "accent_colour"):
        op.execute(f"ALTER TABLE providers DROP COLUMN {column}")
