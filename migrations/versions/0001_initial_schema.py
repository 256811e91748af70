"""Initial schema: the whole Parley domain (see core/db/models.py).

Revision ID: 0001
Revises: 
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op


revision: str = '0001'
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('tenants',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_tenants'))
    )
    # Single-tenant installs live in this tenant; every table references it.
    tenants = sa.table(
        "tenants",
        sa.column("id", sa.String),
        sa.column("name", sa.String),
        sa.column("created_at", sa.DateTime(timezone=True)),
    )
    op.bulk_insert(
        tenants,
        [{"id": "default", "name": "Default", "created_at": datetime.now(UTC)}],
    )
    op.create_table('audit_log',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('tenant_id', sa.String(length=40), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('actor', sa.String(length=320), nullable=False),
    sa.Column('action', sa.String(length=64), nullable=False),
    sa.Column('subject_type', sa.String(length=32), nullable=False),
    sa.Column('subject_id', sa.String(length=64), nullable=False),
    sa.Column('data', sa.JSON(), nullable=False),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_audit_log_tenant_id_tenants'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_audit_log'))
    )
    with op.batch_alter_table('audit_log', schema=None) as batch_op:
        batch_op.create_index('ix_audit_log_subject', ['subject_type', 'subject_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_audit_log_tenant_id'), ['tenant_id'], unique=False)

    op.create_table('imap_state',
    sa.Column('mailbox', sa.String(length=255), nullable=False),
    sa.Column('tenant_id', sa.String(length=40), nullable=False),
    sa.Column('uidvalidity', sa.BigInteger(), nullable=True),
    sa.Column('last_uid', sa.BigInteger(), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_imap_state_tenant_id_tenants'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('mailbox', name=op.f('pk_imap_state'))
    )
    with op.batch_alter_table('imap_state', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_imap_state_tenant_id'), ['tenant_id'], unique=False)

    op.create_table('inbound_messages',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('tenant_id', sa.String(length=40), nullable=False),
    sa.Column('message_key', sa.String(length=255), nullable=False),
    sa.Column('content_hash', sa.String(length=64), nullable=False),
    sa.Column('channel', sa.String(length=8), nullable=False),
    sa.Column('envelope_from', sa.String(length=320), nullable=True),
    sa.Column('envelope_to', sa.Text(), nullable=True),
    sa.Column('raw', sa.LargeBinary(), nullable=False),
    sa.Column('size', sa.Integer(), nullable=False),
    sa.Column('received_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('from_address', sa.String(length=320), nullable=True),
    sa.Column('subject', sa.Text(), nullable=True),
    sa.Column('method', sa.String(length=32), nullable=True),
    sa.Column('uid', sa.String(length=255), nullable=True),
    sa.Column('sequence', sa.Integer(), nullable=True),
    sa.Column('dtstamp', sa.DateTime(timezone=True), nullable=True),
    sa.Column('attendee', sa.String(length=320), nullable=True),
    sa.Column('partstat', sa.String(length=32), nullable=True),
    sa.Column('outcome', sa.String(length=24), nullable=False),
    sa.Column('outcome_reason', sa.Text(), nullable=True),
    sa.Column('booking_id', sa.String(length=40), nullable=True),
    sa.Column('processed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('imap_uid', sa.BigInteger(), nullable=True),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_inbound_messages_tenant_id_tenants'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_inbound_messages')),
    sa.UniqueConstraint('message_key', name=op.f('uq_inbound_messages_message_key'))
    )
    with op.batch_alter_table('inbound_messages', schema=None) as batch_op:
        batch_op.create_index('ix_inbound_messages_outcome_received', ['outcome', 'received_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_inbound_messages_tenant_id'), ['tenant_id'], unique=False)
        batch_op.create_index('ix_inbound_messages_uid', ['uid'], unique=False)

    op.create_table('jobs',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('tenant_id', sa.String(length=40), nullable=False),
    sa.Column('kind', sa.String(length=64), nullable=False),
    sa.Column('dedup_key', sa.String(length=255), nullable=True),
    sa.Column('payload', sa.JSON(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('run_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('attempts', sa.Integer(), server_default='0', nullable=False),
    sa.Column('max_attempts', sa.Integer(), nullable=False),
    sa.Column('locked_by', sa.String(length=128), nullable=True),
    sa.Column('locked_until', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
    sa.CheckConstraint("status in ('queued', 'running', 'done', 'failed')", name=op.f('ck_jobs_status')),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_jobs_tenant_id_tenants'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_jobs')),
    sa.UniqueConstraint('dedup_key', name=op.f('uq_jobs_dedup_key'))
    )
    with op.batch_alter_table('jobs', schema=None) as batch_op:
        batch_op.create_index('ix_jobs_due', ['status', 'run_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_jobs_tenant_id'), ['tenant_id'], unique=False)

    op.create_table('outbound_messages',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('tenant_id', sa.String(length=40), nullable=False),
    sa.Column('idempotency_key', sa.String(length=400), nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('uid', sa.String(length=255), nullable=True),
    sa.Column('sequence', sa.Integer(), nullable=True),
    sa.Column('attendee', sa.String(length=320), nullable=True),
    sa.Column('method', sa.String(length=32), nullable=True),
    sa.Column('booking_id', sa.String(length=40), nullable=True),
    sa.Column('recipient', sa.String(length=320), nullable=False),
    sa.Column('message_id', sa.String(length=255), nullable=False),
    sa.Column('mime', sa.LargeBinary(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('attempts', sa.Integer(), server_default='0', nullable=False),
    sa.Column('next_attempt_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('locked_until', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('sent_at', sa.DateTime(timezone=True), nullable=True),
    sa.CheckConstraint("status in ('pending', 'sending', 'sent', 'failed')", name=op.f('ck_outbound_messages_status')),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_outbound_messages_tenant_id_tenants'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_outbound_messages')),
    sa.UniqueConstraint('idempotency_key', name=op.f('uq_outbound_messages_idempotency_key')),
    sa.UniqueConstraint('uid', 'sequence', 'attendee', 'method', name=op.f('uq_outbound_messages_uid_sequence_attendee_method'))
    )
    with op.batch_alter_table('outbound_messages', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_outbound_messages_booking_id'), ['booking_id'], unique=False)
        batch_op.create_index('ix_outbound_messages_due', ['status', 'next_attempt_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_outbound_messages_tenant_id'), ['tenant_id'], unique=False)

    op.create_table('providers',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('tenant_id', sa.String(length=40), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('slug', sa.String(length=80), nullable=False),
    sa.Column('email', sa.String(length=320), nullable=False),
    sa.Column('timezone', sa.String(length=64), nullable=False),
    sa.Column('dav_username', sa.String(length=80), nullable=False),
    sa.Column('show_holds_calendar', sa.Boolean(), server_default='0', nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("kind in ('person', 'unit')", name=op.f('ck_providers_kind')),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_providers_tenant_id_tenants'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_providers')),
    sa.UniqueConstraint('dav_username', name=op.f('uq_providers_dav_username')),
    sa.UniqueConstraint('tenant_id', 'slug', name=op.f('uq_providers_tenant_id_slug'))
    )
    with op.batch_alter_table('providers', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_providers_tenant_id'), ['tenant_id'], unique=False)

    op.create_table('rate_limits',
    sa.Column('key', sa.String(length=255), nullable=False),
    sa.Column('tenant_id', sa.String(length=40), nullable=False),
    sa.Column('window_start', sa.DateTime(timezone=True), nullable=False),
    sa.Column('hits', sa.Integer(), server_default='0', nullable=False),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_rate_limits_tenant_id_tenants'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('key', name=op.f('pk_rate_limits'))
    )
    with op.batch_alter_table('rate_limits', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_rate_limits_tenant_id'), ['tenant_id'], unique=False)

    op.create_table('app_passwords',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('tenant_id', sa.String(length=40), nullable=False),
    sa.Column('provider_id', sa.String(length=40), nullable=False),
    sa.Column('label', sa.String(length=200), nullable=True),
    sa.Column('password_hash', sa.String(length=255), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('last_used_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['provider_id'], ['providers.id'], name=op.f('fk_app_passwords_provider_id_providers'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_app_passwords_tenant_id_tenants'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_app_passwords'))
    )
    with op.batch_alter_table('app_passwords', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_app_passwords_provider_id'), ['provider_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_app_passwords_tenant_id'), ['tenant_id'], unique=False)

    op.create_table('availability_exceptions',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('tenant_id', sa.String(length=40), nullable=False),
    sa.Column('provider_id', sa.String(length=40), nullable=False),
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('start_minute', sa.Integer(), nullable=True),
    sa.Column('end_minute', sa.Integer(), nullable=True),
    sa.Column('note', sa.Text(), nullable=True),
    sa.CheckConstraint("kind in ('available', 'unavailable')", name=op.f('ck_availability_exceptions_kind')),
    sa.ForeignKeyConstraint(['provider_id'], ['providers.id'], name=op.f('fk_availability_exceptions_provider_id_providers'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_availability_exceptions_tenant_id_tenants'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_availability_exceptions'))
    )
    with op.batch_alter_table('availability_exceptions', schema=None) as batch_op:
        batch_op.create_index('ix_availability_exceptions_provider_day', ['provider_id', 'day'], unique=False)
        batch_op.create_index(batch_op.f('ix_availability_exceptions_tenant_id'), ['tenant_id'], unique=False)

    op.create_table('availability_settings',
    sa.Column('provider_id', sa.String(length=40), nullable=False),
    sa.Column('tenant_id', sa.String(length=40), nullable=False),
    sa.Column('lead_time_hours', sa.Integer(), nullable=False),
    sa.Column('booking_window_days', sa.Integer(), nullable=False),
    sa.Column('min_duration_minutes', sa.Integer(), nullable=False),
    sa.Column('slot_step_minutes', sa.Integer(), nullable=False),
    sa.Column('buffer_before_minutes', sa.Integer(), server_default='0', nullable=False),
    sa.Column('buffer_after_minutes', sa.Integer(), server_default='0', nullable=False),
    sa.Column('instant_book', sa.Boolean(), server_default='1', nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['provider_id'], ['providers.id'], name=op.f('fk_availability_settings_provider_id_providers'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_availability_settings_tenant_id_tenants'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('provider_id', name=op.f('pk_availability_settings'))
    )
    with op.batch_alter_table('availability_settings', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_availability_settings_tenant_id'), ['tenant_id'], unique=False)

    op.create_table('bookings',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('tenant_id', sa.String(length=40), nullable=False),
    sa.Column('provider_id', sa.String(length=40), nullable=False),
    sa.Column('uid', sa.String(length=255), nullable=False),
    sa.Column('sequence', sa.Integer(), server_default='0', nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('mode', sa.String(length=16), nullable=False),
    sa.Column('title', sa.String(length=200), nullable=False),
    sa.Column('start_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('end_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('host_name', sa.String(length=200), nullable=True),
    sa.Column('host_email', sa.String(length=320), nullable=False),
    sa.Column('guest_name', sa.String(length=200), nullable=True),
    sa.Column('guest_email', sa.String(length=320), nullable=False),
    sa.Column('guest_timezone', sa.String(length=64), nullable=True),
    sa.Column('hold_id', sa.String(length=40), nullable=True),
    sa.Column('cancel_reason', sa.Text(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("mode in ('instant', 'request')", name=op.f('ck_bookings_mode')),
    sa.CheckConstraint("status in ('requested', 'confirmed', 'cancelled', 'declined')", name=op.f('ck_bookings_status')),
    sa.CheckConstraint('end_at > start_at', name=op.f('ck_bookings_ordered')),
    sa.ForeignKeyConstraint(['provider_id'], ['providers.id'], name=op.f('fk_bookings_provider_id_providers'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_bookings_tenant_id_tenants'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_bookings')),
    sa.UniqueConstraint('uid', name=op.f('uq_bookings_uid'))
    )
    with op.batch_alter_table('bookings', schema=None) as batch_op:
        batch_op.create_index('ix_bookings_provider_span', ['provider_id', 'start_at', 'end_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_bookings_tenant_id'), ['tenant_id'], unique=False)

    op.create_table('dav_calendars',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('tenant_id', sa.String(length=40), nullable=False),
    sa.Column('provider_id', sa.String(length=40), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('blocking', sa.Boolean(), server_default='1', nullable=False),
    sa.Column('props', sa.JSON(), nullable=False),
    sa.Column('revision', sa.Integer(), server_default='0', nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("kind in ('bookings', 'holds', 'blocks', 'custom')", name=op.f('ck_dav_calendars_kind')),
    sa.ForeignKeyConstraint(['provider_id'], ['providers.id'], name=op.f('fk_dav_calendars_provider_id_providers'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_dav_calendars_tenant_id_tenants'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_dav_calendars')),
    sa.UniqueConstraint('provider_id', 'name', name=op.f('uq_dav_calendars_provider_id_name'))
    )
    with op.batch_alter_table('dav_calendars', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_dav_calendars_tenant_id'), ['tenant_id'], unique=False)

    op.create_table('external_sources',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('tenant_id', sa.String(length=40), nullable=False),
    sa.Column('provider_id', sa.String(length=40), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=True),
    sa.Column('url', sa.Text(), nullable=False),
    sa.Column('kind', sa.String(length=8), nullable=False),
    sa.Column('platform', sa.String(length=32), nullable=False),
    sa.Column('priority', sa.Integer(), nullable=False),
    sa.Column('username', sa.String(length=320), nullable=True),
    sa.Column('secret_encrypted', sa.LargeBinary(), nullable=True),
    sa.Column('etag', sa.String(length=255), nullable=True),
    sa.Column('last_modified', sa.String(length=64), nullable=True),
    sa.Column('content_hash', sa.String(length=64), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('last_attempt_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_success_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.Column('consecutive_errors', sa.Integer(), server_default='0', nullable=False),
    sa.Column('poll_interval_seconds', sa.Integer(), nullable=False),
    sa.Column('next_poll_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('future_event_count', sa.Integer(), server_default='0', nullable=False),
    sa.Column('held_reason', sa.Text(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("kind in ('ics', 'caldav')", name=op.f('ck_external_sources_kind')),
    sa.ForeignKeyConstraint(['provider_id'], ['providers.id'], name=op.f('fk_external_sources_provider_id_providers'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_external_sources_tenant_id_tenants'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_external_sources')),
    sa.UniqueConstraint('provider_id', 'url', name=op.f('uq_external_sources_provider_id_url'))
    )
    with op.batch_alter_table('external_sources', schema=None) as batch_op:
        batch_op.create_index('ix_external_sources_due', ['next_poll_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_external_sources_tenant_id'), ['tenant_id'], unique=False)

    op.create_table('feed_tokens',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('tenant_id', sa.String(length=40), nullable=False),
    sa.Column('provider_id', sa.String(length=40), nullable=False),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('include_holds', sa.Boolean(), server_default='0', nullable=False),
    sa.Column('format', sa.String(length=16), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['provider_id'], ['providers.id'], name=op.f('fk_feed_tokens_provider_id_providers'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_feed_tokens_tenant_id_tenants'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_feed_tokens')),
    sa.UniqueConstraint('token_hash', name=op.f('uq_feed_tokens_token_hash'))
    )
    with op.batch_alter_table('feed_tokens', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_feed_tokens_provider_id'), ['provider_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_feed_tokens_tenant_id'), ['tenant_id'], unique=False)

    op.create_table('unit_relationships',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('tenant_id', sa.String(length=40), nullable=False),
    sa.Column('parent_id', sa.String(length=40), nullable=False),
    sa.Column('child_id', sa.String(length=40), nullable=False),
    sa.Column('block_child_on_parent', sa.Boolean(), server_default='1', nullable=False),
    sa.Column('block_parent_on_all_children', sa.Boolean(), server_default='0', nullable=False),
    sa.Column('priority', sa.Integer(), server_default='0', nullable=False),
    sa.Column('active', sa.Boolean(), server_default='1', nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint('parent_id <> child_id', name=op.f('ck_unit_relationships_distinct_units')),
    sa.ForeignKeyConstraint(['child_id'], ['providers.id'], name=op.f('fk_unit_relationships_child_id_providers'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['parent_id'], ['providers.id'], name=op.f('fk_unit_relationships_parent_id_providers'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_unit_relationships_tenant_id_tenants'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_unit_relationships')),
    sa.UniqueConstraint('parent_id', 'child_id', name=op.f('uq_unit_relationships_parent_id_child_id'))
    )
    with op.batch_alter_table('unit_relationships', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_unit_relationships_child_id'), ['child_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_unit_relationships_parent_id'), ['parent_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_unit_relationships_tenant_id'), ['tenant_id'], unique=False)

    op.create_table('vacations',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('tenant_id', sa.String(length=40), nullable=False),
    sa.Column('provider_id', sa.String(length=40), nullable=False),
    sa.Column('first_day', sa.Date(), nullable=False),
    sa.Column('last_day', sa.Date(), nullable=False),
    sa.Column('note', sa.Text(), nullable=True),
    sa.CheckConstraint('last_day >= first_day', name=op.f('ck_vacations_ordered')),
    sa.ForeignKeyConstraint(['provider_id'], ['providers.id'], name=op.f('fk_vacations_provider_id_providers'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_vacations_tenant_id_tenants'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_vacations'))
    )
    with op.batch_alter_table('vacations', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_vacations_provider_id'), ['provider_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_vacations_tenant_id'), ['tenant_id'], unique=False)

    op.create_table('web_sessions',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('tenant_id', sa.String(length=40), nullable=False),
    sa.Column('provider_id', sa.String(length=40), nullable=False),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('csrf_secret', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('last_seen_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['provider_id'], ['providers.id'], name=op.f('fk_web_sessions_provider_id_providers'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_web_sessions_tenant_id_tenants'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_web_sessions')),
    sa.UniqueConstraint('token_hash', name=op.f('uq_web_sessions_token_hash'))
    )
    with op.batch_alter_table('web_sessions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_web_sessions_provider_id'), ['provider_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_web_sessions_tenant_id'), ['tenant_id'], unique=False)

    op.create_table('weekly_rules',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('tenant_id', sa.String(length=40), nullable=False),
    sa.Column('provider_id', sa.String(length=40), nullable=False),
    sa.Column('weekday', sa.Integer(), nullable=False),
    sa.Column('start_minute', sa.Integer(), nullable=False),
    sa.Column('end_minute', sa.Integer(), nullable=False),
    sa.CheckConstraint('end_minute > start_minute', name=op.f('ck_weekly_rules_ordered')),
    sa.CheckConstraint('start_minute >= 0 and end_minute <= 1440', name=op.f('ck_weekly_rules_minute_range')),
    sa.CheckConstraint('weekday between 0 and 6', name=op.f('ck_weekly_rules_weekday')),
    sa.ForeignKeyConstraint(['provider_id'], ['providers.id'], name=op.f('fk_weekly_rules_provider_id_providers'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_weekly_rules_tenant_id_tenants'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_weekly_rules'))
    )
    with op.batch_alter_table('weekly_rules', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_weekly_rules_provider_id'), ['provider_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_weekly_rules_tenant_id'), ['tenant_id'], unique=False)

    op.create_table('dav_changes',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('tenant_id', sa.String(length=40), nullable=False),
    sa.Column('calendar_id', sa.String(length=40), nullable=False),
    sa.Column('revision', sa.Integer(), nullable=False),
    sa.Column('href', sa.String(length=255), nullable=False),
    sa.Column('deleted', sa.Boolean(), server_default='0', nullable=False),
    sa.ForeignKeyConstraint(['calendar_id'], ['dav_calendars.id'], name=op.f('fk_dav_changes_calendar_id_dav_calendars'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_dav_changes_tenant_id_tenants'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_dav_changes'))
    )
    with op.batch_alter_table('dav_changes', schema=None) as batch_op:
        batch_op.create_index('ix_dav_changes_calendar_revision', ['calendar_id', 'revision'], unique=False)
        batch_op.create_index(batch_op.f('ix_dav_changes_tenant_id'), ['tenant_id'], unique=False)

    op.create_table('dav_objects',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('tenant_id', sa.String(length=40), nullable=False),
    sa.Column('calendar_id', sa.String(length=40), nullable=False),
    sa.Column('href', sa.String(length=255), nullable=False),
    sa.Column('uid', sa.String(length=512), nullable=False),
    sa.Column('etag', sa.String(length=64), nullable=False),
    sa.Column('ics', sa.Text(), nullable=False),
    sa.Column('start_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('end_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('recurring', sa.Boolean(), server_default='0', nullable=False),
    sa.Column('revision', sa.Integer(), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['calendar_id'], ['dav_calendars.id'], name=op.f('fk_dav_objects_calendar_id_dav_calendars'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_dav_objects_tenant_id_tenants'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_dav_objects')),
    sa.UniqueConstraint('calendar_id', 'href', name=op.f('uq_dav_objects_calendar_id_href'))
    )
    with op.batch_alter_table('dav_objects', schema=None) as batch_op:
        batch_op.create_index('ix_dav_objects_calendar_span', ['calendar_id', 'start_at', 'end_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_dav_objects_tenant_id'), ['tenant_id'], unique=False)

    op.create_table('external_events',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('tenant_id', sa.String(length=40), nullable=False),
    sa.Column('source_id', sa.String(length=40), nullable=False),
    sa.Column('provider_id', sa.String(length=40), nullable=False),
    sa.Column('uid', sa.String(length=512), nullable=False),
    sa.Column('recurrence_id', sa.String(length=64), nullable=False),
    sa.Column('start_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('end_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('all_day', sa.Boolean(), server_default='0', nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('summary', sa.String(length=500), nullable=True),
    sa.Column('reservation_code', sa.String(length=50), nullable=True),
    sa.Column('phone_last4', sa.String(length=4), nullable=True),
    sa.Column('content_hash', sa.String(length=64), nullable=False),
    sa.Column('dedup_key', sa.String(length=255), nullable=True),
    sa.Column('merged_into_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('first_seen_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('last_seen_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("kind in ('reservation', 'block')", name=op.f('ck_external_events_kind')),
    sa.ForeignKeyConstraint(['provider_id'], ['providers.id'], name=op.f('fk_external_events_provider_id_providers'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['source_id'], ['external_sources.id'], name=op.f('fk_external_events_source_id_external_sources'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_external_events_tenant_id_tenants'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_external_events')),
    sa.UniqueConstraint('source_id', 'uid', 'recurrence_id', name=op.f('uq_external_events_source_id_uid_recurrence_id'))
    )
    with op.batch_alter_table('external_events', schema=None) as batch_op:
        batch_op.create_index('ix_external_events_dedup_key', ['dedup_key'], unique=False)
        batch_op.create_index('ix_external_events_provider_span', ['provider_id', 'start_at', 'end_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_external_events_tenant_id'), ['tenant_id'], unique=False)

    op.create_table('holds',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('tenant_id', sa.String(length=40), nullable=False),
    sa.Column('provider_id', sa.String(length=40), nullable=False),
    sa.Column('start_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('end_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('purpose', sa.String(length=16), nullable=False),
    sa.Column('idempotency_key', sa.String(length=200), nullable=True),
    sa.Column('guest_email', sa.String(length=320), nullable=True),
    sa.Column('guest_name', sa.String(length=200), nullable=True),
    sa.Column('guest_timezone', sa.String(length=64), nullable=True),
    sa.Column('booking_id', sa.String(length=40), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("status in ('active', 'converted', 'expired', 'released')", name=op.f('ck_holds_status')),
    sa.CheckConstraint('end_at > start_at', name=op.f('ck_holds_ordered')),
    sa.ForeignKeyConstraint(['booking_id'], ['bookings.id'], name=op.f('fk_holds_booking_id_bookings'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['provider_id'], ['providers.id'], name=op.f('fk_holds_provider_id_providers'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_holds_tenant_id_tenants'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_holds')),
    sa.UniqueConstraint('tenant_id', 'idempotency_key', name=op.f('uq_holds_tenant_id_idempotency_key'))
    )
    with op.batch_alter_table('holds', schema=None) as batch_op:
        batch_op.create_index('ix_holds_provider_span', ['provider_id', 'start_at', 'end_at'], unique=False)
        batch_op.create_index('ix_holds_status_expires', ['status', 'expires_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_holds_tenant_id'), ['tenant_id'], unique=False)

    op.create_table('invitations',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('tenant_id', sa.String(length=40), nullable=False),
    sa.Column('booking_id', sa.String(length=40), nullable=False),
    sa.Column('role', sa.String(length=8), nullable=False),
    sa.Column('address', sa.String(length=320), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=True),
    sa.Column('timezone', sa.String(length=64), nullable=True),
    sa.Column('plus_tag', sa.String(length=40), nullable=False),
    sa.Column('partstat', sa.String(length=16), nullable=False),
    sa.Column('last_method_sent', sa.String(length=64), nullable=True),
    sa.Column('last_sequence_sent', sa.Integer(), nullable=True),
    sa.Column('last_message_id', sa.String(length=255), nullable=True),
    sa.Column('last_reply_dtstamp', sa.DateTime(timezone=True), nullable=True),
    sa.Column('delivery_state', sa.String(length=16), nullable=False),
    sa.Column('delivery_error', sa.Text(), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("partstat in ('needs-action', 'accepted', 'declined', 'tentative', 'delegated')", name=op.f('ck_invitations_partstat')),
    sa.CheckConstraint("role in ('host', 'guest')", name=op.f('ck_invitations_role')),
    sa.ForeignKeyConstraint(['booking_id'], ['bookings.id'], name=op.f('fk_invitations_booking_id_bookings'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_invitations_tenant_id_tenants'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_invitations')),
    sa.UniqueConstraint('booking_id', 'role', name=op.f('uq_invitations_booking_id_role')),
    sa.UniqueConstraint('plus_tag', name=op.f('uq_invitations_plus_tag'))
    )
    with op.batch_alter_table('invitations', schema=None) as batch_op:
        batch_op.create_index('ix_invitations_address', ['address'], unique=False)
        batch_op.create_index(batch_op.f('ix_invitations_tenant_id'), ['tenant_id'], unique=False)

    op.create_table('proposals',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('tenant_id', sa.String(length=40), nullable=False),
    sa.Column('booking_id', sa.String(length=40), nullable=False),
    sa.Column('proposed_by', sa.String(length=8), nullable=False),
    sa.Column('proposer_address', sa.String(length=320), nullable=False),
    sa.Column('start_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('end_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('note', sa.Text(), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('via', sa.String(length=8), nullable=False),
    sa.Column('base_sequence', sa.Integer(), nullable=False),
    sa.Column('inbound_message_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('decided_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('decided_by', sa.String(length=320), nullable=True),
    sa.CheckConstraint("status in ('pending', 'approved', 'declined', 'expired', 'superseded')", name=op.f('ck_proposals_status')),
    sa.CheckConstraint("via in ('link', 'counter')", name=op.f('ck_proposals_via')),
    sa.CheckConstraint('end_at > start_at', name=op.f('ck_proposals_ordered')),
    sa.ForeignKeyConstraint(['booking_id'], ['bookings.id'], name=op.f('fk_proposals_booking_id_bookings'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['inbound_message_id'], ['inbound_messages.id'], name=op.f('fk_proposals_inbound_message_id_inbound_messages'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_proposals_tenant_id_tenants'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_proposals'))
    )
    with op.batch_alter_table('proposals', schema=None) as batch_op:
        batch_op.create_index('ix_proposals_booking_status', ['booking_id', 'status'], unique=False)
        batch_op.create_index(batch_op.f('ix_proposals_tenant_id'), ['tenant_id'], unique=False)

    op.create_table('sync_logs',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('tenant_id', sa.String(length=40), nullable=False),
    sa.Column('source_id', sa.String(length=40), nullable=False),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('completed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('http_status', sa.Integer(), nullable=True),
    sa.Column('not_modified', sa.Boolean(), server_default='0', nullable=False),
    sa.Column('events_found', sa.Integer(), server_default='0', nullable=False),
    sa.Column('events_added', sa.Integer(), server_default='0', nullable=False),
    sa.Column('events_updated', sa.Integer(), server_default='0', nullable=False),
    sa.Column('events_removed', sa.Integer(), server_default='0', nullable=False),
    sa.Column('events_skipped', sa.Integer(), server_default='0', nullable=False),
    sa.Column('conflicts_found', sa.Integer(), server_default='0', nullable=False),
    sa.Column('bytes_received', sa.Integer(), server_default='0', nullable=False),
    sa.Column('http_ms', sa.Integer(), server_default='0', nullable=False),
    sa.Column('parse_ms', sa.Integer(), server_default='0', nullable=False),
    sa.Column('db_ms', sa.Integer(), server_default='0', nullable=False),
    sa.Column('duration_ms', sa.Integer(), server_default='0', nullable=False),
    sa.Column('error', sa.Text(), nullable=True),
    sa.ForeignKeyConstraint(['source_id'], ['external_sources.id'], name=op.f('fk_sync_logs_source_id_external_sources'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_sync_logs_tenant_id_tenants'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_sync_logs'))
    )
    with op.batch_alter_table('sync_logs', schema=None) as batch_op:
        batch_op.create_index('ix_sync_logs_source_started', ['source_id', 'started_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_sync_logs_tenant_id'), ['tenant_id'], unique=False)

    op.create_table('conflicts',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('tenant_id', sa.String(length=40), nullable=False),
    sa.Column('provider_id', sa.String(length=40), nullable=False),
    sa.Column('event_a_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('event_b_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('conflict_type', sa.String(length=32), nullable=False),
    sa.Column('overlap_start', sa.DateTime(timezone=True), nullable=False),
    sa.Column('overlap_end', sa.DateTime(timezone=True), nullable=False),
    sa.Column('resolution', sa.String(length=32), nullable=True),
    sa.Column('winner_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('warning', sa.Text(), nullable=True),
    sa.Column('resolved_by', sa.String(length=64), nullable=True),
    sa.Column('resolved_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['event_a_id'], ['external_events.id'], name=op.f('fk_conflicts_event_a_id_external_events'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['event_b_id'], ['external_events.id'], name=op.f('fk_conflicts_event_b_id_external_events'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['provider_id'], ['providers.id'], name=op.f('fk_conflicts_provider_id_providers'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_conflicts_tenant_id_tenants'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_conflicts')),
    sa.UniqueConstraint('event_a_id', 'event_b_id', name=op.f('uq_conflicts_event_a_id_event_b_id'))
    )
    with op.batch_alter_table('conflicts', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_conflicts_provider_id'), ['provider_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_conflicts_tenant_id'), ['tenant_id'], unique=False)

    op.create_table('magic_links',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('tenant_id', sa.String(length=40), nullable=False),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('purpose', sa.String(length=16), nullable=False),
    sa.Column('booking_id', sa.String(length=40), nullable=True),
    sa.Column('proposal_id', sa.String(length=40), nullable=True),
    sa.Column('provider_id', sa.String(length=40), nullable=True),
    sa.Column('actor_address', sa.String(length=320), nullable=False),
    sa.Column('actor_role', sa.String(length=64), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('used_at', sa.DateTime(timezone=True), nullable=True),
    sa.CheckConstraint("purpose in ('propose', 'approve', 'decline', 'sign_in', 'approve_booking', 'decline_booking')", name=op.f('ck_magic_links_purpose')),
    sa.ForeignKeyConstraint(['booking_id'], ['bookings.id'], name=op.f('fk_magic_links_booking_id_bookings'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['proposal_id'], ['proposals.id'], name=op.f('fk_magic_links_proposal_id_proposals'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['provider_id'], ['providers.id'], name=op.f('fk_magic_links_provider_id_providers'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_magic_links_tenant_id_tenants'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_magic_links')),
    sa.UniqueConstraint('token_hash', name=op.f('uq_magic_links_token_hash'))
    )
    with op.batch_alter_table('magic_links', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_magic_links_booking_id'), ['booking_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_magic_links_tenant_id'), ['tenant_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('magic_links', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_magic_links_tenant_id'))
        batch_op.drop_index(batch_op.f('ix_magic_links_booking_id'))

    op.drop_table('magic_links')
    with op.batch_alter_table('conflicts', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_conflicts_tenant_id'))
        batch_op.drop_index(batch_op.f('ix_conflicts_provider_id'))

    op.drop_table('conflicts')
    with op.batch_alter_table('sync_logs', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_sync_logs_tenant_id'))
        batch_op.drop_index('ix_sync_logs_source_started')

    op.drop_table('sync_logs')
    with op.batch_alter_table('proposals', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_proposals_tenant_id'))
        batch_op.drop_index('ix_proposals_booking_status')

    op.drop_table('proposals')
    with op.batch_alter_table('invitations', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_invitations_tenant_id'))
        batch_op.drop_index('ix_invitations_address')

    op.drop_table('invitations')
    with op.batch_alter_table('holds', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_holds_tenant_id'))
        batch_op.drop_index('ix_holds_status_expires')
        batch_op.drop_index('ix_holds_provider_span')

    op.drop_table('holds')
    with op.batch_alter_table('external_events', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_external_events_tenant_id'))
        batch_op.drop_index('ix_external_events_provider_span')
        batch_op.drop_index('ix_external_events_dedup_key')

    op.drop_table('external_events')
    with op.batch_alter_table('dav_objects', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_dav_objects_tenant_id'))
        batch_op.drop_index('ix_dav_objects_calendar_span')

    op.drop_table('dav_objects')
    with op.batch_alter_table('dav_changes', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_dav_changes_tenant_id'))
        batch_op.drop_index('ix_dav_changes_calendar_revision')

    op.drop_table('dav_changes')
    with op.batch_alter_table('weekly_rules', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_weekly_rules_tenant_id'))
        batch_op.drop_index(batch_op.f('ix_weekly_rules_provider_id'))

    op.drop_table('weekly_rules')
    with op.batch_alter_table('web_sessions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_web_sessions_tenant_id'))
        batch_op.drop_index(batch_op.f('ix_web_sessions_provider_id'))

    op.drop_table('web_sessions')
    with op.batch_alter_table('vacations', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_vacations_tenant_id'))
        batch_op.drop_index(batch_op.f('ix_vacations_provider_id'))

    op.drop_table('vacations')
    with op.batch_alter_table('unit_relationships', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_unit_relationships_tenant_id'))
        batch_op.drop_index(batch_op.f('ix_unit_relationships_parent_id'))
        batch_op.drop_index(batch_op.f('ix_unit_relationships_child_id'))

    op.drop_table('unit_relationships')
    with op.batch_alter_table('feed_tokens', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_feed_tokens_tenant_id'))
        batch_op.drop_index(batch_op.f('ix_feed_tokens_provider_id'))

    op.drop_table('feed_tokens')
    with op.batch_alter_table('external_sources', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_external_sources_tenant_id'))
        batch_op.drop_index('ix_external_sources_due')

    op.drop_table('external_sources')
    with op.batch_alter_table('dav_calendars', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_dav_calendars_tenant_id'))

    op.drop_table('dav_calendars')
    with op.batch_alter_table('bookings', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_bookings_tenant_id'))
        batch_op.drop_index('ix_bookings_provider_span')

    op.drop_table('bookings')
    with op.batch_alter_table('availability_settings', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_availability_settings_tenant_id'))

    op.drop_table('availability_settings')
    with op.batch_alter_table('availability_exceptions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_availability_exceptions_tenant_id'))
        batch_op.drop_index('ix_availability_exceptions_provider_day')

    op.drop_table('availability_exceptions')
    with op.batch_alter_table('app_passwords', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_app_passwords_tenant_id'))
        batch_op.drop_index(batch_op.f('ix_app_passwords_provider_id'))

    op.drop_table('app_passwords')
    with op.batch_alter_table('rate_limits', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_rate_limits_tenant_id'))

    op.drop_table('rate_limits')
    with op.batch_alter_table('providers', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_providers_tenant_id'))

    op.drop_table('providers')
    with op.batch_alter_table('outbound_messages', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_outbound_messages_tenant_id'))
        batch_op.drop_index('ix_outbound_messages_due')
        batch_op.drop_index(batch_op.f('ix_outbound_messages_booking_id'))

    op.drop_table('outbound_messages')
    with op.batch_alter_table('jobs', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_jobs_tenant_id'))
        batch_op.drop_index('ix_jobs_due')

    op.drop_table('jobs')
    with op.batch_alter_table('inbound_messages', schema=None) as batch_op:
        batch_op.drop_index('ix_inbound_messages_uid')
        batch_op.drop_index(batch_op.f('ix_inbound_messages_tenant_id'))
        batch_op.drop_index('ix_inbound_messages_outcome_received')

    op.drop_table('inbound_messages')
    with op.batch_alter_table('imap_state', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_imap_state_tenant_id'))

    op.drop_table('imap_state')
    with op.batch_alter_table('audit_log', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_audit_log_tenant_id'))
        batch_op.drop_index('ix_audit_log_subject')

    op.drop_table('audit_log')
    op.drop_table('tenants')
