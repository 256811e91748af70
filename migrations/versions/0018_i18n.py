"""Languages: the language a guest booked in (their mails speak it) and the one a
provider chose for theirs.

Revision ID: 0018_i18n
Revises: 0017_itip
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = "0018_i18n"
down_revision: str | None = "0017_itip"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("bookings", schema=None) as batch_op:
        batch_op.add_column(sa.Column("guest_locale", sa.String(length=16), nullable=True))
    with op.batch_alter_table("providers", schema=None) as batch_op:
        batch_op.add_column(sa.Column("locale", sa.String(length=16), nullable=True))


def downgrade() -> None:
    # Plain ALTER TABLE … DROP COLUMN (as 0012): a batch copy of bookings would lose
    # 0009's expression index lower(host_email), which SQLite cannot reflect.
    op.execute("ALTER TABLE bookings DROP COLUMN guest_locale")
    op.execute("ALTER TABLE providers DROP COLUMN locale")
