"""Magic links for a guest's own booking page ("manage"), usable more than once.

Revision ID: 0010
Revises: 0007_tenant_keys
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0010"
down_revision: str | None = "0007_tenant_keys"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_BEFORE = (
    "purpose in ('propose', 'approve', 'decline', 'sign_in', 'approve_booking',"
    " 'decline_booking')"
)
_AFTER = (
    "purpose in ('propose', 'approve', 'decline', 'sign_in', 'approve_booking',"
    " 'decline_booking', 'manage')"
)


def _purposes(rule: str) -> None:
    with op.batch_alter_table("magic_links", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_magic_links_purpose"), type_="check")
        batch_op.create_check_constraint("purpose", rule)


def upgrade() -> None:
    _purposes(_AFTER)


def downgrade() -> None:
    op.execute("DELETE FROM magic_links WHERE purpose = 'manage'")
    _purposes(_BEFORE)
