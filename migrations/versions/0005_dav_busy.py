"""DAV busy spans: the occurrences of objects in providers' own calendars, as rows.

The busy engine reads bookings, holds and imported events with one indexed range scan
each; events a provider saves into `blocks` (or a calendar they made) join that scan
through this table instead of being parsed from iCalendar on every slots query. Existing
objects are expanded by the `dav.spans` job on the first run after this migration.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "dav_busy",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("provider_id", sa.String(length=40), nullable=False),
        sa.Column("calendar_id", sa.String(length=40), nullable=False),
        sa.Column("object_id", _ID, nullable=False),
        sa.Column("start_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("end_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["calendar_id"],
            ["dav_calendars.id"],
            name=op.f("fk_dav_busy_calendar_id_dav_calendars"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["object_id"],
            ["dav_objects.id"],
            name=op.f("fk_dav_busy_object_id_dav_objects"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["provider_id"],
            ["providers.id"],
            name=op.f("fk_dav_busy_provider_id_providers"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_dav_busy_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dav_busy")),
    )
    with op.batch_alter_table("dav_busy", schema=None) as batch_op:
        batch_op.create_index(
            "ix_dav_busy_provider_span", ["provider_id", "start_at", "end_at"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_dav_busy_object_id"), ["object_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_dav_busy_tenant_id"), ["tenant_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("dav_busy", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_dav_busy_tenant_id"))
        batch_op.drop_index(batch_op.f("ix_dav_busy_object_id"))
        batch_op.drop_index("ix_dav_busy_provider_span")
    op.drop_table("dav_busy")
