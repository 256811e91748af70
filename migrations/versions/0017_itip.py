"""CalDAV implicit scheduling (RFC 6638): events providers organize in their calendars,
their attendees (private plus-address tags, answers) and COUNTERs waiting for approval.

Revision ID: 0017_itip
Revises: 0016_fb
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '0017_itip'
down_revision: str | None = '0016_fb'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('dav_schedules',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('tenant_id', sa.String(length=40), nullable=False),
    sa.Column('provider_id', sa.String(length=40), nullable=False),
    sa.Column('calendar_id', sa.String(length=40), nullable=False),
    sa.Column('href', sa.String(length=255), nullable=False),
    sa.Column('uid', sa.String(length=512), nullable=False),
    sa.Column('sequence', sa.Integer(), server_default='0', nullable=False),
    sa.Column('schedule_tag', sa.String(length=64), nullable=False),
    sa.Column('content_digest', sa.String(length=64), nullable=False),
    sa.Column('summary', sa.String(length=500), nullable=False),
    sa.Column('start_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('end_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('cancelled', sa.Boolean(), server_default='0', nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['provider_id', 'tenant_id'], ['providers.id', 'providers.tenant_id'], name=op.f('fk_dav_schedules_provider_id_providers'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_dav_schedules_tenant_id_tenants'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_dav_schedules')),
    sa.UniqueConstraint('tenant_id', 'id', name=op.f('uq_dav_schedules_tenant_id_id')),
    sa.UniqueConstraint('tenant_id', 'provider_id', 'uid', name=op.f('uq_dav_schedules_tenant_id_provider_id_uid'))
    )
    with op.batch_alter_table('dav_schedules', schema=None) as batch_op:
        batch_op.create_index('ix_dav_schedules_object', ['calendar_id', 'href'], unique=False)
        batch_op.create_index(batch_op.f('ix_dav_schedules_tenant_id'), ['tenant_id'], unique=False)

    op.create_table('dav_attendees',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('tenant_id', sa.String(length=40), nullable=False),
    sa.Column('schedule_id', sa.String(length=40), nullable=False),
    sa.Column('address', sa.String(length=320), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=True),
    sa.Column('plus_tag', sa.String(length=40), nullable=False),
    sa.Column('partstat', sa.String(length=16), nullable=False),
    sa.Column('client_agent', sa.Boolean(), server_default='0', nullable=False),
    sa.Column('removed', sa.Boolean(), server_default='0', nullable=False),
    sa.Column('last_sequence_sent', sa.Integer(), nullable=True),
    sa.Column('last_reply_dtstamp', sa.DateTime(timezone=True), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['schedule_id', 'tenant_id'], ['dav_schedules.id', 'dav_schedules.tenant_id'], name=op.f('fk_dav_attendees_schedule_id_dav_schedules'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_dav_attendees_tenant_id_tenants'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_dav_attendees')),
    sa.UniqueConstraint('tenant_id', 'id', name=op.f('uq_dav_attendees_tenant_id_id')),
    sa.UniqueConstraint('tenant_id', 'plus_tag', name=op.f('uq_dav_attendees_tenant_id_plus_tag')),
    sa.UniqueConstraint('tenant_id', 'schedule_id', 'address', name=op.f('uq_dav_attendees_tenant_id_schedule_id_address'))
    )
    with op.batch_alter_table('dav_attendees', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_dav_attendees_schedule_id'), ['schedule_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_dav_attendees_tenant_id'), ['tenant_id'], unique=False)

    op.create_table('dav_proposals',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('tenant_id', sa.String(length=40), nullable=False),
    sa.Column('schedule_id', sa.String(length=40), nullable=False),
    sa.Column('attendee_id', sa.String(length=40), nullable=False),
    sa.Column('start_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('end_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('note', sa.Text(), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('via', sa.String(length=8), nullable=False),
    sa.Column('base_sequence', sa.Integer(), nullable=False),
    sa.Column('approve_hash', sa.String(length=64), nullable=False),
    sa.Column('decline_hash', sa.String(length=64), nullable=False),
    sa.Column('inbound_message_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('decided_at', sa.DateTime(timezone=True), nullable=True),
    sa.CheckConstraint("status in ('pending', 'approved', 'declined', 'expired', 'superseded')", name=op.f('ck_dav_proposals_status')),
    sa.CheckConstraint('end_at > start_at', name=op.f('ck_dav_proposals_ordered')),
    sa.ForeignKeyConstraint(['attendee_id', 'tenant_id'], ['dav_attendees.id', 'dav_attendees.tenant_id'], name=op.f('fk_dav_proposals_attendee_id_dav_attendees'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['schedule_id', 'tenant_id'], ['dav_schedules.id', 'dav_schedules.tenant_id'], name=op.f('fk_dav_proposals_schedule_id_dav_schedules'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_dav_proposals_tenant_id_tenants'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_dav_proposals')),
    sa.UniqueConstraint('tenant_id', 'approve_hash', name=op.f('uq_dav_proposals_tenant_id_approve_hash')),
    sa.UniqueConstraint('tenant_id', 'decline_hash', name=op.f('uq_dav_proposals_tenant_id_decline_hash')),
    sa.UniqueConstraint('tenant_id', 'id', name=op.f('uq_dav_proposals_tenant_id_id'))
    )
    with op.batch_alter_table('dav_proposals', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_dav_proposals_schedule_id'), ['schedule_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_dav_proposals_tenant_id'), ['tenant_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('dav_proposals', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_dav_proposals_tenant_id'))
        batch_op.drop_index(batch_op.f('ix_dav_proposals_schedule_id'))

    op.drop_table('dav_proposals')
    with op.batch_alter_table('dav_attendees', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_dav_attendees_tenant_id'))
        batch_op.drop_index(batch_op.f('ix_dav_attendees_schedule_id'))

    op.drop_table('dav_attendees')
    with op.batch_alter_table('dav_schedules', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_dav_schedules_tenant_id'))
        batch_op.drop_index('ix_dav_schedules_object')

    op.drop_table('dav_schedules')
