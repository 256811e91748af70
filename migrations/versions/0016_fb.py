"""CalDAV scheduling: a provider's schedule inbox (RFC 6638) is a dav_calendars row of
kind 'inbox', so iTIP messages delivered to it are stored, listed and synced as the
objects of any other stored calendar. The names inbox and outbox now belong to the
scheduling collections: a calendar a provider had made under one of them is renamed
(inbox-calendar, outbox-calendar), which a calendar app sees as a calendar moved.

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
    op.execute(
        "UPDATE dav_calendars SET name = name || '-calendar' "
        "WHERE kind = 'custom' AND name IN ('inbox', 'outbox')"
    )
    with op.batch_alter_table("dav_calendars", schema=None) as batch_op:
        batch_op.drop_constraint(op.f(_NAME), type_="check")
        batch_op.create_check_constraint(op.f(_NAME), _AFTER)


def downgrade() -> None:
    # Children first: SQLite runs migrations with foreign keys off, so no cascade.
    inboxes = "SELECT id FROM dav_calendars WHERE kind = 'inbox'"
    for table in ("dav_busy", "dav_changes", "dav_objects"):
        op.execute(f"DELETE FROM {table} WHERE calendar_id IN ({inboxes})")
    op.execute("DELETE FROM dav_calendars WHERE kind = 'inbox'")
    with op.batch_alter_table("dav_calendars", schema=None) as batch_op:
        batch_op.drop_constraint(op.f(_NAME), type_="check")
        batch_op.create_check_constraint(op.f(_NAME), _BEFORE)
