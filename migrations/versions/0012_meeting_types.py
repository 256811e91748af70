"""Meeting types: what a provider offers (title, place, lengths, own buffers and lead
time); holds and bookings remember the one chosen, bookings its place and description.

Revision ID: 0012_meeting_types
Revises: 0008
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '0012_meeting_types'
down_revision: str | None = '0008'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('meeting_types',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('tenant_id', sa.String(length=40), nullable=False),
    sa.Column('provider_id', sa.String(length=40), nullable=False),
    sa.Column('slug', sa.String(length=80), nullable=False),
    sa.Column('title', sa.String(length=200), nullable=False),
    sa.Column('description', sa.Text(), nullable=True),
    sa.Column('location', sa.String(length=500), nullable=True),
    sa.Column('durations', sa.String(length=100), nullable=False),
    sa.Column('buffer_before_minutes', sa.Integer(), nullable=True),
    sa.Column('buffer_after_minutes', sa.Integer(), nullable=True),
    sa.Column('lead_time_hours', sa.Integer(), nullable=True),
    sa.Column('active', sa.Boolean(), server_default='1', nullable=False),
    sa.Column('position', sa.Integer(), server_default='0', nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['provider_id', 'tenant_id'], ['providers.id', 'providers.tenant_id'], name=op.f('fk_meeting_types_provider_id_providers'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_meeting_types_tenant_id_tenants'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_meeting_types')),
    sa.UniqueConstraint('tenant_id', 'id', name=op.f('uq_meeting_types_tenant_id_id')),
    sa.UniqueConstraint('tenant_id', 'provider_id', 'slug', name=op.f('uq_meeting_types_tenant_id_provider_id_slug'))
    )
    with op.batch_alter_table('meeting_types', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_meeting_types_provider_id'), ['provider_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_meeting_types_tenant_id'), ['tenant_id'], unique=False)

    with op.batch_alter_table('bookings', schema=None) as batch_op:
        batch_op.add_column(sa.Column('meeting_type_id', sa.String(length=40), nullable=True))
        batch_op.add_column(sa.Column('location', sa.String(length=500), nullable=True))
        batch_op.add_column(sa.Column('description', sa.Text(), nullable=True))

    with op.batch_alter_table('holds', schema=None) as batch_op:
        batch_op.add_column(sa.Column('meeting_type_id', sa.String(length=40), nullable=True))



def downgrade() -> None:
    # Plain ALTER TABLE … DROP COLUMN (SQLite ≥ 3.35 has it): a batch copy of bookings
    # would lose 0009's expression index lower(host_email), which SQLite cannot reflect.
    for table, column in (
        ("holds", "meeting_type_id"),
        ("bookings", "description"),
        ("bookings", "location"),
        ("bookings", "meeting_type_id"),
    ):
        op.execute(f"ALTER TABLE {table} DROP COLUMN {column}")

    with op.batch_alter_table('meeting_types', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_meeting_types_tenant_id'))
        batch_op.drop_index(batch_op.f('ix_meeting_types_provider_id'))

    op.drop_table('meeting_types')
