"""CalDAV scheduling: a provider's schedule inbox (RFC 6638) is a dav_calendars row of
kind 'inbox', so iTIP messages delivered to it are stored, listed and synced as the
objects of any other stored calendar.

Revision ID: 0016_fb
Revises: 0015_page
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0016_fb"
down_revision: str | None = "0015_page"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_NAME = "ck_dav_calendars_kind"
_BEFORE = "kind in ('bookings', 'holds', 'blocks', 'custom')"
_AFTER = "kind in ('bookings', 'holds', 'blocks', 'custom', 'inbox')"


def upgrade() -> None:
    with op.batch_alter_table("dav_calendars", schema=None) as batch_op:
        batch_op.drop_constraint(op.f(_NAME), type_="check")
        batch_op.create_check_constraint(op.f(_NAME), _AFTER)


def downgrade() -> None:
    op.execute("DELETE FROM dav_calendars WHERE kind = 'inbox'")
    with op.batch_alter_table("dav_calendars", schema=None) as batch_op:
        batch_op.drop_constraint(op.f(_NAME), type_="check")
        batch_op.create_check_constraint(op.f(_NAME), _BEFORE)
