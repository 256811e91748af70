"""The whole Parley schema as SQLAlchemy 2 typed models.

Alembic migrations in migrations/ create these tables; nothing else does. Every
table carries tenant_id so a deployment can shard by tenant without a schema change.
API-visible rows have prefixed string ids ("prv_…", "bkg_…"); logs and queues
use integer ids because their order matters.
"""

from __future__ import annotations

import secrets
from datetime import date, datetime
from typing import Annotated, Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from core.db.types import UTCDateTime

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

DEFAULT_TENANT = "default"

# BIGINT on PostgreSQL, but INTEGER on SQLite so that it is the rowid alias and autoincrements.
BigId = BigInteger().with_variant(Integer(), "sqlite")


def new_id(prefix: str) -> str:
    """A short random id with a readable type prefix, e.g. "bkg_3f9a…"."""
    return f"{prefix}_{secrets.token_hex(10)}"


str_id = Annotated[str, mapped_column(String(40), primary_key=True)]
int_id = Annotated[int, mapped_column(BigId, primary_key=True, autoincrement=True)]
tenant = Annotated[
    str,
    mapped_column(
        String(40), ForeignKey("tenants.id", ondelete="CASCADE"), index=True, default=DEFAULT_TENANT
    ),
]
utc = Annotated[datetime, mapped_column(UTCDateTime())]
utc_null = Annotated[datetime | None, mapped_column(UTCDateTime(), nullable=True)]
short = Annotated[str, mapped_column(String(64))]
short_null = Annotated[str | None, mapped_column(String(64), nullable=True)]
address = Annotated[str, mapped_column(String(320))]
address_null = Annotated[str | None, mapped_column(String(320), nullable=True)]
text_null = Annotated[str | None, mapped_column(Text, nullable=True)]
flag_false = Annotated[bool, mapped_column(Boolean, default=False, server_default="0")]
flag_true = Annotated[bool, mapped_column(Boolean, default=True, server_default="1")]
count = Annotated[int, mapped_column(Integer, default=0, server_default="0")]


def _provider_fk() -> Any:
    return mapped_column(String(40), index=True)


def _fk(column: str, parent: str, ondelete: str | None = "CASCADE") -> ForeignKeyConstraint:
    """(column, tenant_id) -> parent (id, tenant_id): a row lives in its parent's tenant.

    With tenant_id in every key the tables can be distributed by tenant (Citus), and a row
    pointing at another tenant's parent is refused by the database, not only by the code.
    """
    return ForeignKeyConstraint(
        [column, "tenant_id"], [f"{parent}.id", f"{parent}.tenant_id"], ondelete=ondelete
    )


def _operator_fk() -> ForeignKeyConstraint:
    """(tenant_id, operator_id) → operators: a session or link of an operator dies with them."""
    return ForeignKeyConstraint(
        ["tenant_id", "operator_id"], ["operators.tenant_id", "operators.id"], ondelete="CASCADE"
    )


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class Tenant(Base):
    """An organisation on this deployment: its people, bookings, keys and organizer mailbox."""

    __tablename__ = "tenants"
    __table_args__ = (
        UniqueConstraint("slug"),
        UniqueConstraint("organizer_email"),
        UniqueConstraint("host"),
    )
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    slug: Mapped[str] = mapped_column(String(80))
    # None for the default tenant: it uses PARLEY_ORGANIZER_EMAIL / _NAME.
    organizer_email: Mapped[address_null]
    organizer_name: Mapped[str | None] = mapped_column(String(200), nullable=True)
    # The tenant's own site (book.casas.example[:port]): its links point there and its
    # pages answer there without /t/{slug}; None: the deployment's PARLEY_BASE_URL.
    host: Mapped[str | None] = mapped_column(String(260), nullable=True)
    created_at: Mapped[utc]


class ApiKey(Base):
    """A tenant's API key: only its SHA-256 is stored; the key names its tenant."""

    __tablename__ = "api_keys"
    __table_args__ = (
        UniqueConstraint("tenant_id", "key_hash"),
        CheckConstraint("role in ('owner', 'manager', 'staff', 'viewer')", name="role"),
    )
    id: Mapped[str_id]
    tenant_id: Mapped[tenant]
    key_hash: Mapped[str] = mapped_column(String(64))
    role: Mapped[str] = mapped_column(String(16))
    label: Mapped[str | None] = mapped_column(String(200), nullable=True)
    # Provider ids the key is limited to; None: every provider of the tenant.
    providers: Mapped[list[str] | None] = mapped_column(JSON, nullable=True)
    created_at: Mapped[utc]
    revoked_at: Mapped[utc_null]


# --- providers and availability -------------------------------------------------------------


class Provider(Base):
    """A person or a bookable unit (an apartment, a room) with its own calendar."""

    __tablename__ = "providers"
    __table_args__ = (
        UniqueConstraint("tenant_id", "slug"),
        # Unique across the deployment too: dav_username() derives it from the tenant's and
        # the provider's slugs, both unique, and a slug has no ".".
        UniqueConstraint("tenant_id", "dav_username"),
        UniqueConstraint("tenant_id", "id"),
        CheckConstraint("kind in ('person', 'unit')", name="kind"),
    )
    id: Mapped[str_id]
    tenant_id: Mapped[tenant]
    kind: Mapped[str] = mapped_column(String(16), default="person")
    name: Mapped[str] = mapped_column(String(200))
    slug: Mapped[str] = mapped_column(String(80))
    email: Mapped[address]
    timezone: Mapped[str] = mapped_column(String(64))
    # The language of the provider's mails (core.formatting.LOCALES); None: English.
    locale: Mapped[str | None] = mapped_column(String(16), nullable=True)
    dav_username: Mapped[str] = mapped_column(String(80))
    show_holds_calendar: Mapped[flag_false]
    # The booking page's look, set by the provider: a #rrggbb colour and an https image.
    accent_colour: Mapped[str | None] = mapped_column(String(7))
    photo_url: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[utc]
    updated_at: Mapped[utc]


class AvailabilitySettings(Base):
    __tablename__ = "availability_settings"
    __table_args__ = (_fk("provider_id", "providers"),)
    provider_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[tenant]
    lead_time_hours: Mapped[int] = mapped_column(Integer, default=24)
    booking_window_days: Mapped[int] = mapped_column(Integer, default=60)
    min_duration_minutes: Mapped[int] = mapped_column(Integer, default=30)
    slot_step_minutes: Mapped[int] = mapped_column(Integer, default=30)
    buffer_before_minutes: Mapped[count]
    buffer_after_minutes: Mapped[count]
    instant_book: Mapped[flag_true]
    updated_at: Mapped[utc]


class MeetingType(Base):
    """What a provider offers to book (seed 003's "service"): a title, a place, the lengths
    guests may choose and, when set, its own buffers and lead time over the provider's."""

    __tablename__ = "meeting_types"
    __table_args__ = (
        UniqueConstraint("tenant_id", "id"),
        UniqueConstraint("tenant_id", "provider_id", "slug"),
        _fk("provider_id", "providers"),
    )
    id: Mapped[str_id]
    tenant_id: Mapped[tenant]
    provider_id: Mapped[str] = _provider_fk()
    slug: Mapped[str] = mapped_column(String(80))
    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[text_null]
    location: Mapped[str | None] = mapped_column(String(500), nullable=True)
    # Minutes, comma-separated, the first the default ("30,60").
    durations: Mapped[str] = mapped_column(String(100))
    buffer_before_minutes: Mapped[int | None] = mapped_column(Integer, nullable=True)
    buffer_after_minutes: Mapped[int | None] = mapped_column(Integer, nullable=True)
    lead_time_hours: Mapped[int | None] = mapped_column(Integer, nullable=True)
    active: Mapped[flag_true]
    position: Mapped[count]
    created_at: Mapped[utc]
    updated_at: Mapped[utc]


class WeeklyRule(Base):
    """A local wall-clock window on one weekday; end_minute may be 1440 ("24:00")."""

    __tablename__ = "weekly_rules"
    __table_args__ = (
        CheckConstraint("weekday between 0 and 6", name="weekday"),
        CheckConstraint("start_minute >= 0 and end_minute <= 1440", name="minute_range"),
        CheckConstraint("end_minute > start_minute", name="ordered"),
        _fk("provider_id", "providers"),
    )
    id: Mapped[str_id]
    tenant_id: Mapped[tenant]
    provider_id: Mapped[str] = _provider_fk()
    weekday: Mapped[int] = mapped_column(Integer)
    start_minute: Mapped[int] = mapped_column(Integer)
    end_minute: Mapped[int] = mapped_column(Integer)


class AvailabilityException(Base):
    """A per-date override: unavailable (whole day when no times) or an extra available window."""

    __tablename__ = "availability_exceptions"
    __table_args__ = (
        CheckConstraint("kind in ('available', 'unavailable')", name="kind"),
        Index("ix_availability_exceptions_provider_day", "provider_id", "day"),
        _fk("provider_id", "providers"),
    )
    id: Mapped[str_id]
    tenant_id: Mapped[tenant]
    provider_id: Mapped[str] = mapped_column(String(40))
    day: Mapped[date] = mapped_column(Date)
    kind: Mapped[str] = mapped_column(String(16))
    start_minute: Mapped[int | None] = mapped_column(Integer, nullable=True)
    end_minute: Mapped[int | None] = mapped_column(Integer, nullable=True)
    note: Mapped[text_null]


class Vacation(Base):
    __tablename__ = "vacations"
    __table_args__ = (
        CheckConstraint("last_day >= first_day", name="ordered"),
        _fk("provider_id", "providers"),
    )
    id: Mapped[str_id]
    tenant_id: Mapped[tenant]
    provider_id: Mapped[str] = _provider_fk()
    first_day: Mapped[date] = mapped_column(Date)
    last_day: Mapped[date] = mapped_column(Date)
    note: Mapped[text_null]


class UnitRelationship(Base):
    """Parent/child units: a reservation on the parent blocks the child (MUVA §3.5)."""

    __tablename__ = "unit_relationships"
    __table_args__ = (
        UniqueConstraint("tenant_id", "parent_id", "child_id"),
        CheckConstraint("parent_id <> child_id", name="distinct_units"),
        _fk("parent_id", "providers"),
        _fk("child_id", "providers"),
    )
    id: Mapped[str_id]
    tenant_id: Mapped[tenant]
    parent_id: Mapped[str] = _provider_fk()
    child_id: Mapped[str] = _provider_fk()
    block_child_on_parent: Mapped[flag_true]
    block_parent_on_all_children: Mapped[flag_false]
    priority: Mapped[count]
    active: Mapped[flag_true]
    created_at: Mapped[utc]


# --- holds, bookings, invitations, proposals ----------------------------------------------


class Hold(Base):
    """A soft block while a guest checks out or a reschedule is being confirmed."""

    __tablename__ = "holds"
    __table_args__ = (
        UniqueConstraint("tenant_id", "idempotency_key"),
        CheckConstraint("end_at > start_at", name="ordered"),
        CheckConstraint("status in ('active', 'converted', 'expired', 'released')", name="status"),
        Index("ix_holds_provider_span", "provider_id", "start_at", "end_at"),
        Index("ix_holds_status_expires", "status", "expires_at"),
        # The busy query's: active holds of one unit around a span. Without it, planners
        # with stale statistics walk every active hold via ix_holds_status_expires.
        Index(
            "ix_holds_active_span",
            "provider_id",
            "start_at",
            "end_at",
            postgresql_where=text("status = 'active'"),
            sqlite_where=text("status = 'active'"),
        ),
        _fk("provider_id", "providers"),
        # Not SET NULL: on (booking_id, tenant_id) it would null tenant_id too, and SQLite
        # has no PostgreSQL 15 "SET NULL (booking_id)". Bookings are never deleted (they
        # are cancelled); they go only with their provider or tenant, which takes the
        # holds in the same statement, and NO ACTION is checked at the statement's end.
        _fk("booking_id", "bookings", ondelete=None),
    )
    id: Mapped[str_id]
    tenant_id: Mapped[tenant]
    provider_id: Mapped[str] = mapped_column(String(40))
    start_at: Mapped[utc]
    end_at: Mapped[utc]
    expires_at: Mapped[utc]
    status: Mapped[str] = mapped_column(String(16), default="active")
    purpose: Mapped[str] = mapped_column(String(16), default="checkout")
    idempotency_key: Mapped[str | None] = mapped_column(String(200), nullable=True)
    guest_email: Mapped[address_null]
    guest_name: Mapped[str | None] = mapped_column(String(200), nullable=True)
    guest_timezone: Mapped[short_null]
    # The meeting type the guest chose (its title, place and rules), if any.
    meeting_type_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    booking_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    created_at: Mapped[utc]


class Booking(Base):
    """A confirmed or requested meeting with a stable iCalendar UID and a SEQUENCE."""

    __tablename__ = "bookings"
    __table_args__ = (
        UniqueConstraint("tenant_id", "uid"),
        UniqueConstraint("tenant_id", "id"),
        CheckConstraint("end_at > start_at", name="ordered"),
        CheckConstraint(
            "status in ('requested', 'confirmed', 'cancelled', 'declined')", name="status"
        ),
        CheckConstraint("mode in ('instant', 'request')", name="mode"),
        Index("ix_bookings_provider_span", "provider_id", "start_at", "end_at"),
        _fk("provider_id", "providers"),
        # The operator's list: a tenant's bookings newest first (the keyset cursor's order),
        # and its search by address, which the list compares in lower case.
        Index("ix_bookings_tenant_created", "tenant_id", "created_at", "id"),
        Index("ix_bookings_tenant_guest_email", "tenant_id", text("lower(guest_email)")),
        Index("ix_bookings_tenant_host_email", "tenant_id", text("lower(host_email)")),
    )
    id: Mapped[str_id]
    tenant_id: Mapped[tenant]
    provider_id: Mapped[str] = mapped_column(String(40))
    uid: Mapped[str] = mapped_column(String(255))
    sequence: Mapped[count]
    status: Mapped[str] = mapped_column(String(16))
    mode: Mapped[str] = mapped_column(String(16), default="instant")
    title: Mapped[str] = mapped_column(String(200), default="Session")
    start_at: Mapped[utc]
    end_at: Mapped[utc]
    host_name: Mapped[str | None] = mapped_column(String(200), nullable=True)
    host_email: Mapped[address]
    guest_name: Mapped[str | None] = mapped_column(String(200), nullable=True)
    guest_email: Mapped[address]
    guest_timezone: Mapped[short_null]
    # The language the guest booked in: their mails speak it (None: English).
    guest_locale: Mapped[str | None] = mapped_column(String(16), nullable=True)
    hold_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    meeting_type_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    # Copied from the meeting type when booked: the invitation's LOCATION and DESCRIPTION.
    location: Mapped[str | None] = mapped_column(String(500), nullable=True)
    description: Mapped[text_null]
    cancel_reason: Mapped[text_null]
    created_at: Mapped[utc]
    updated_at: Mapped[utc]


class Invitation(Base):
    """One attendee's private copy of a booking: only this address is ever in its messages."""

    __tablename__ = "invitations"
    __table_args__ = (
        UniqueConstraint("tenant_id", "booking_id", "role"),
        UniqueConstraint("tenant_id", "plus_tag"),
        CheckConstraint("role in ('host', 'guest')", name="role"),
        CheckConstraint(
            "partstat in ('needs-action', 'accepted', 'declined', 'tentative', 'delegated')",
            name="partstat",
        ),
        Index("ix_invitations_address", "address"),
        _fk("booking_id", "bookings"),
    )
    id: Mapped[str_id]
    tenant_id: Mapped[tenant]
    booking_id: Mapped[str] = mapped_column(String(40))
    role: Mapped[str] = mapped_column(String(8))
    address: Mapped[address]
    name: Mapped[str | None] = mapped_column(String(200), nullable=True)
    timezone: Mapped[short_null]
    plus_tag: Mapped[str] = mapped_column(String(40))
    partstat: Mapped[str] = mapped_column(String(16), default="needs-action")
    last_method_sent: Mapped[short_null]
    last_sequence_sent: Mapped[int | None] = mapped_column(Integer, nullable=True)
    last_message_id: Mapped[str | None] = mapped_column(String(255), nullable=True)
    last_reply_dtstamp: Mapped[utc_null]
    delivery_state: Mapped[str] = mapped_column(String(16), default="pending")
    delivery_error: Mapped[text_null]
    updated_at: Mapped[utc]


class Proposal(Base):
    """A request for a new time, from a link or an iTIP COUNTER, waiting for the counterparty."""

    __tablename__ = "proposals"
    __table_args__ = (
        CheckConstraint(
            "status in ('pending', 'approved', 'declined', 'expired', 'superseded')",
            name="status",
        ),
        CheckConstraint("via in ('link', 'counter')", name="via"),
        CheckConstraint("end_at > start_at", name="ordered"),
        Index("ix_proposals_booking_status", "booking_id", "status"),
        UniqueConstraint("tenant_id", "id"),
        _fk("booking_id", "bookings"),
        # Not SET NULL, for the reason given at holds.booking_id: inbound messages are kept
        # (the raw evidence) and go only with their tenant. A future purge of old messages
        # must clear proposals.inbound_message_id first.
        _fk("inbound_message_id", "inbound_messages", ondelete=None),
    )
    id: Mapped[str_id]
    tenant_id: Mapped[tenant]
    booking_id: Mapped[str] = mapped_column(String(40))
    proposed_by: Mapped[str] = mapped_column(String(8))
    proposer_address: Mapped[address]
    start_at: Mapped[utc]
    end_at: Mapped[utc]
    note: Mapped[text_null]
    status: Mapped[str] = mapped_column(String(16), default="pending")
    via: Mapped[str] = mapped_column(String(8), default="link")
    base_sequence: Mapped[int] = mapped_column(Integer)
    inbound_message_id: Mapped[int | None] = mapped_column(BigId, nullable=True)
    created_at: Mapped[utc]
    expires_at: Mapped[utc]
    decided_at: Mapped[utc_null]
    decided_by: Mapped[address_null]


class MagicLink(Base):
    """A single-use signed link; only the token's hash is kept."""

    __tablename__ = "magic_links"
    __table_args__ = (
        UniqueConstraint("tenant_id", "token_hash"),
        _fk("booking_id", "bookings"),
        _fk("proposal_id", "proposals"),
        _fk("provider_id", "providers"),
        CheckConstraint(
            "purpose in ('propose', 'approve', 'decline', 'sign_in', 'approve_booking',"
            " 'decline_booking', 'manage')",
            name="purpose",
        ),
        _operator_fk(),
    )
    id: Mapped[str_id]
    tenant_id: Mapped[tenant]
    token_hash: Mapped[str] = mapped_column(String(64), index=True)  # links name no tenant
    purpose: Mapped[str] = mapped_column(String(16))
    booking_id: Mapped[str | None] = mapped_column(String(40), nullable=True, index=True)
    proposal_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    provider_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    operator_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    actor_address: Mapped[address]
    actor_role: Mapped[short_null]
    created_at: Mapped[utc]
    expires_at: Mapped[utc]
    used_at: Mapped[utc_null]


# --- mail ----------------------------------------------------------------------------------


class InboundMessage(Base):
    """Every message the organizer mailbox received, raw bytes kept, with what became of it."""

    __tablename__ = "inbound_messages"
    __table_args__ = (
        UniqueConstraint("tenant_id", "message_key"),
        UniqueConstraint("tenant_id", "id"),
        # Stored once per deployment: found by key before the insert (core.services.inbound).
        Index("ix_inbound_messages_message_key", "message_key"),
        Index("ix_inbound_messages_outcome_received", "outcome", "received_at"),
        Index("ix_inbound_messages_uid", "uid"),
    )
    id: Mapped[int_id]
    tenant_id: Mapped[tenant]
    # The Message-ID, or "sha256:<hex>" of the raw bytes when the message has none.
    message_key: Mapped[str] = mapped_column(String(255))
    content_hash: Mapped[str] = mapped_column(String(64))
    channel: Mapped[str] = mapped_column(String(8))
    envelope_from: Mapped[address_null]
    envelope_to: Mapped[text_null]
    raw: Mapped[bytes] = mapped_column(LargeBinary)
    size: Mapped[int] = mapped_column(Integer)
    received_at: Mapped[utc]
    from_address: Mapped[address_null]
    subject: Mapped[text_null]
    method: Mapped[str | None] = mapped_column(String(32), nullable=True)
    uid: Mapped[str | None] = mapped_column(String(255), nullable=True)
    sequence: Mapped[int | None] = mapped_column(Integer, nullable=True)
    dtstamp: Mapped[utc_null]
    attendee: Mapped[address_null]
    partstat: Mapped[str | None] = mapped_column(String(32), nullable=True)
    outcome: Mapped[str] = mapped_column(String(24), default="pending")
    outcome_reason: Mapped[text_null]
    booking_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    processed_at: Mapped[utc_null]
    imap_uid: Mapped[int | None] = mapped_column(BigInteger, nullable=True)


class OutboundMessage(Base):
    """The outbox: written with the state change that causes it, sent at most once per key."""

    __tablename__ = "outbound_messages"
    __table_args__ = (
        UniqueConstraint("tenant_id", "idempotency_key"),
        UniqueConstraint("tenant_id", "uid", "sequence", "attendee", "method"),
        CheckConstraint("status in ('pending', 'sending', 'sent', 'failed')", name="status"),
        Index("ix_outbound_messages_due", "status", "next_attempt_at"),
    )
    id: Mapped[int_id]
    tenant_id: Mapped[tenant]
    idempotency_key: Mapped[str] = mapped_column(String(400))
    kind: Mapped[str] = mapped_column(String(32))
    uid: Mapped[str | None] = mapped_column(String(255), nullable=True)
    sequence: Mapped[int | None] = mapped_column(Integer, nullable=True)
    attendee: Mapped[address_null]
    method: Mapped[str | None] = mapped_column(String(32), nullable=True)
    booking_id: Mapped[str | None] = mapped_column(String(40), nullable=True, index=True)
    recipient: Mapped[address]
    message_id: Mapped[str] = mapped_column(String(255))
    mime: Mapped[bytes] = mapped_column(LargeBinary)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[count]
    next_attempt_at: Mapped[utc]
    locked_until: Mapped[utc_null]
    # The sender's lease owner (identity#incarnation, as jobs.locked_by): a restart
    # releases the rows its dead incarnation held.
    locked_by: Mapped[str | None] = mapped_column(String(128), nullable=True)
    last_error: Mapped[text_null]
    created_at: Mapped[utc]
    sent_at: Mapped[utc_null]


class ImapState(Base):
    """Where the IMAP poller stopped in a mailbox, so a restart neither loses nor repeats."""

    __tablename__ = "imap_state"
    mailbox: Mapped[str] = mapped_column(String(255), primary_key=True)
    tenant_id: Mapped[tenant]
    uidvalidity: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    last_uid: Mapped[int] = mapped_column(BigInteger, default=0)
    updated_at: Mapped[utc]


# --- external calendars --------------------------------------------------------------------


class ExternalSource(Base):
    """An imported calendar (ICS URL or CalDAV collection) whose events block a provider."""

    __tablename__ = "external_sources"
    __table_args__ = (
        UniqueConstraint("tenant_id", "provider_id", "url_digest"),
        UniqueConstraint("tenant_id", "id"),
        CheckConstraint("kind in ('ics', 'caldav')", name="kind"),
        _fk("provider_id", "providers"),
        Index("ix_external_sources_due", "next_poll_at"),
    )
    id: Mapped[str_id]
    tenant_id: Mapped[tenant]
    provider_id: Mapped[str] = mapped_column(String(40))
    name: Mapped[str | None] = mapped_column(String(200), nullable=True)
    # The URL masked for display; the real one only sealed (core.services.source_urls).
    url: Mapped[str] = mapped_column(Text)
    url_sealed: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    url_digest: Mapped[str | None] = mapped_column(String(64), nullable=True)
    kind: Mapped[str] = mapped_column(String(8))
    platform: Mapped[str] = mapped_column(String(32), default="generic_ics")
    priority: Mapped[int] = mapped_column(Integer, default=5)
    username: Mapped[str | None] = mapped_column(String(320), nullable=True)
    secret_encrypted: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    etag: Mapped[str | None] = mapped_column(String(255), nullable=True)
    last_modified: Mapped[str | None] = mapped_column(String(64), nullable=True)
    content_hash: Mapped[str | None] = mapped_column(String(64), nullable=True)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    last_attempt_at: Mapped[utc_null]
    last_success_at: Mapped[utc_null]
    last_error: Mapped[text_null]
    consecutive_errors: Mapped[count]
    poll_interval_seconds: Mapped[int] = mapped_column(Integer, default=3600)
    next_poll_at: Mapped[utc]
    future_event_count: Mapped[count]
    held_reason: Mapped[text_null]
    created_at: Mapped[utc]


class ExternalEvent(Base):
    """One busy occurrence read from an external source, stored in UTC."""

    __tablename__ = "external_events"
    __table_args__ = (
        UniqueConstraint("tenant_id", "source_id", "uid", "recurrence_id"),
        UniqueConstraint("tenant_id", "id"),
        _fk("source_id", "external_sources"),
        _fk("provider_id", "providers"),
        CheckConstraint("kind in ('reservation', 'block')", name="kind"),
        Index("ix_external_events_provider_span", "provider_id", "start_at", "end_at"),
        Index("ix_external_events_dedup_key", "dedup_key"),
    )
    id: Mapped[int_id]
    tenant_id: Mapped[tenant]
    source_id: Mapped[str] = mapped_column(String(40))
    provider_id: Mapped[str] = mapped_column(String(40))
    uid: Mapped[str] = mapped_column(String(512))
    # "" for a non-recurring event or the master, so that the unique key works everywhere.
    recurrence_id: Mapped[str] = mapped_column(String(64), default="")
    start_at: Mapped[utc]
    end_at: Mapped[utc]
    all_day: Mapped[flag_false]
    kind: Mapped[str] = mapped_column(String(16), default="block")
    summary: Mapped[str | None] = mapped_column(String(500), nullable=True)
    reservation_code: Mapped[str | None] = mapped_column(String(50), nullable=True)
    phone_last4: Mapped[str | None] = mapped_column(String(4), nullable=True)
    content_hash: Mapped[str] = mapped_column(String(64))
    dedup_key: Mapped[str | None] = mapped_column(String(255), nullable=True)
    merged_into_id: Mapped[int | None] = mapped_column(BigId, nullable=True)
    first_seen_at: Mapped[utc]
    last_seen_at: Mapped[utc]


class SyncLog(Base):
    """One attempt to poll a source, with timings and counts (MUVA §4)."""

    __tablename__ = "sync_logs"
    __table_args__ = (
        Index("ix_sync_logs_source_started", "source_id", "started_at"),
        _fk("source_id", "external_sources"),
    )
    id: Mapped[int_id]
    tenant_id: Mapped[tenant]
    source_id: Mapped[str] = mapped_column(String(40))
    started_at: Mapped[utc]
    completed_at: Mapped[utc_null]
    status: Mapped[str] = mapped_column(String(16))
    http_status: Mapped[int | None] = mapped_column(Integer, nullable=True)
    not_modified: Mapped[flag_false]
    events_found: Mapped[count]
    events_added: Mapped[count]
    events_updated: Mapped[count]
    events_removed: Mapped[count]
    events_skipped: Mapped[count]
    conflicts_found: Mapped[count]
    bytes_received: Mapped[count]
    http_ms: Mapped[count]
    parse_ms: Mapped[count]
    db_ms: Mapped[count]
    duration_ms: Mapped[count]
    error: Mapped[text_null]


class Conflict(Base):
    """Two overlapping external events and how the priority rules settled them."""

    __tablename__ = "conflicts"
    __table_args__ = (
        UniqueConstraint("tenant_id", "event_a_id", "event_b_id"),
        _fk("provider_id", "providers"),
        _fk("event_a_id", "external_events"),
        _fk("event_b_id", "external_events"),
    )
    id: Mapped[int_id]
    tenant_id: Mapped[tenant]
    provider_id: Mapped[str] = _provider_fk()
    event_a_id: Mapped[int] = mapped_column(BigId)
    event_b_id: Mapped[int] = mapped_column(BigId)
    conflict_type: Mapped[str] = mapped_column(String(32))
    overlap_start: Mapped[utc]
    overlap_end: Mapped[utc]
    resolution: Mapped[str | None] = mapped_column(String(32), nullable=True)
    winner_id: Mapped[int | None] = mapped_column(BigId, nullable=True)
    warning: Mapped[text_null]
    resolved_by: Mapped[short_null]
    resolved_at: Mapped[utc_null]
    created_at: Mapped[utc]
    # A split block (MUVA §3.4): the losing event's parts outside the winner, as
    # [[start, end], …] in ISO 8601 UTC; None when nothing of the loser remains.
    remaining: Mapped[list[list[str]] | None] = mapped_column(JSON, nullable=True)

    def remaining_parts(self) -> tuple[tuple[datetime, datetime], ...]:
        return tuple(
            (datetime.fromisoformat(a), datetime.fromisoformat(b)) for a, b in self.remaining or ()
        )


# --- CalDAV, feeds and provider access ------------------------------------------------------


class DavCalendar(Base):
    """A provider's CalDAV collection: bookings and holds (read-only), blocks and own ones."""

    __tablename__ = "dav_calendars"
    __table_args__ = (
        UniqueConstraint("tenant_id", "provider_id", "name"),
        UniqueConstraint("tenant_id", "id"),
        CheckConstraint("kind in ('bookings', 'holds', 'blocks', 'custom', 'inbox')", name="kind"),
        _fk("provider_id", "providers"),
    )
    id: Mapped[str_id]
    tenant_id: Mapped[tenant]
    provider_id: Mapped[str] = mapped_column(String(40))
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(16))
    blocking: Mapped[flag_true]
    props: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    revision: Mapped[count]
    created_at: Mapped[utc]


class DavObject(Base):
    """An iCalendar object a provider stored in a writable calendar, indexed by time span."""

    __tablename__ = "dav_objects"
    __table_args__ = (
        UniqueConstraint("tenant_id", "calendar_id", "href"),
        UniqueConstraint("tenant_id", "id"),
        Index("ix_dav_objects_calendar_span", "calendar_id", "start_at", "end_at"),
        _fk("calendar_id", "dav_calendars"),
    )
    id: Mapped[int_id]
    tenant_id: Mapped[tenant]
    calendar_id: Mapped[str] = mapped_column(String(40))
    href: Mapped[str] = mapped_column(String(255))
    uid: Mapped[str] = mapped_column(String(512))
    etag: Mapped[str] = mapped_column(String(64))
    ics: Mapped[str] = mapped_column(Text)
    # Span covered by all occurrences (end null when it recurs forever).
    start_at: Mapped[utc_null]
    end_at: Mapped[utc_null]
    recurring: Mapped[flag_false]
    revision: Mapped[int] = mapped_column(Integer)
    updated_at: Mapped[utc]


class DavBusy(Base):
    """Busy time of one stored object: its occurrences, merged, over the expansion horizon.

    Written with the object, so the busy engine reads a blocking calendar with the same
    indexed range scan as imported events instead of parsing iCalendar on every query.
    """

    __tablename__ = "dav_busy"
    __table_args__ = (
        Index("ix_dav_busy_provider_span", "provider_id", "start_at", "end_at"),
        _fk("provider_id", "providers"),
        _fk("calendar_id", "dav_calendars"),
        _fk("object_id", "dav_objects"),
    )
    id: Mapped[int_id]
    tenant_id: Mapped[tenant]
    provider_id: Mapped[str] = mapped_column(String(40))
    calendar_id: Mapped[str] = mapped_column(String(40))
    object_id: Mapped[int] = mapped_column(BigId, index=True)
    start_at: Mapped[utc]
    end_at: Mapped[utc]


class DavChange(Base):
    """The change log behind sync-collection tokens: one row per href per revision."""

    __tablename__ = "dav_changes"
    __table_args__ = (
        Index("ix_dav_changes_calendar_revision", "calendar_id", "revision"),
        _fk("calendar_id", "dav_calendars"),
    )
    id: Mapped[int_id]
    tenant_id: Mapped[tenant]
    calendar_id: Mapped[str] = mapped_column(String(40))
    revision: Mapped[int] = mapped_column(Integer)
    href: Mapped[str] = mapped_column(String(255))
    deleted: Mapped[flag_false]


class FeedToken(Base):
    """A private ICS feed URL; only the token's hash is kept."""

    __tablename__ = "feed_tokens"
    __table_args__ = (UniqueConstraint("tenant_id", "token_hash"), _fk("provider_id", "providers"))
    id: Mapped[str_id]
    tenant_id: Mapped[tenant]
    provider_id: Mapped[str] = _provider_fk()
    token_hash: Mapped[str] = mapped_column(String(64), index=True)  # feed URLs name no tenant
    include_holds: Mapped[flag_false]
    format: Mapped[str] = mapped_column(String(16), default="standard")
    created_at: Mapped[utc]
    revoked_at: Mapped[utc_null]


class AppPassword(Base):
    """A CalDAV app password; only a salted hash is kept."""

    __tablename__ = "app_passwords"
    __table_args__ = (_fk("provider_id", "providers"),)
    id: Mapped[str_id]
    tenant_id: Mapped[tenant]
    provider_id: Mapped[str] = _provider_fk()
    label: Mapped[str | None] = mapped_column(String(200), nullable=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[utc]
    last_used_at: Mapped[utc_null]
    revoked_at: Mapped[utc_null]


class WebSession(Base):
    """A provider's or an operator's signed-in browser session, revocable server-side."""

    __tablename__ = "web_sessions"
    __table_args__ = (
        UniqueConstraint("tenant_id", "token_hash"),
        _fk("provider_id", "providers"),
        _operator_fk(),
        CheckConstraint("(provider_id is null) <> (operator_id is null)", name="one_subject"),
    )
    id: Mapped[str_id]
    tenant_id: Mapped[tenant]
    provider_id: Mapped[str | None] = mapped_column(String(40), index=True, nullable=True)
    operator_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    token_hash: Mapped[str] = mapped_column(String(64), index=True)  # cookies name no tenant
    csrf_secret: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[utc]
    expires_at: Mapped[utc]
    last_seen_at: Mapped[utc_null]
    revoked_at: Mapped[utc_null]


class RateLimit(Base):
    """A fixed-window counter shared by all processes (public endpoints, sign-in, DAV auth)."""

    __tablename__ = "rate_limits"
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    tenant_id: Mapped[tenant]
    window_start: Mapped[utc]
    hits: Mapped[count]


# --- jobs and audit ------------------------------------------------------------------------


class Job(Base):
    """A unit of background work; claimed with a lease so a dead worker's job is retried.

    Deliberately no index on status or run_at: the few rows (one per periodic job) are
    updated on every wake, claim and finish, and such an index would turn each update
    into new index entries and each claim into a walk over the dead ones.
    """

    __tablename__ = "jobs"
    __table_args__ = (
        UniqueConstraint("dedup_key"),
        CheckConstraint("status in ('queued', 'running', 'done', 'failed')", name="status"),
    )
    id: Mapped[int_id]
    tenant_id: Mapped[tenant]
    kind: Mapped[str] = mapped_column(String(64))
    # Periodic and singleton jobs carry a key so that they exist once.
    dedup_key: Mapped[str | None] = mapped_column(String(255), nullable=True)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    status: Mapped[str] = mapped_column(String(16), default="queued")
    run_at: Mapped[utc]
    attempts: Mapped[count]
    max_attempts: Mapped[int] = mapped_column(Integer, default=10)
    locked_by: Mapped[str | None] = mapped_column(String(128), nullable=True)
    locked_until: Mapped[utc_null]
    last_error: Mapped[text_null]
    created_at: Mapped[utc]
    finished_at: Mapped[utc_null]


class AuditEntry(Base):
    """Every business decision, for "why did this happen?" questions."""

    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_log_subject", "subject_type", "subject_id"),)
    id: Mapped[int_id]
    tenant_id: Mapped[tenant]
    at: Mapped[utc]
    actor: Mapped[str] = mapped_column(String(320))
    action: Mapped[str] = mapped_column(String(64))
    subject_type: Mapped[str] = mapped_column(String(32))
    subject_id: Mapped[str] = mapped_column(String(64))
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


# --- the operator console -------------------------------------------------------------------


class Operator(Base):
    """A person who runs a tenant from the console at /admin, with one of the key roles."""

    __tablename__ = "operators"
    __table_args__ = (
        UniqueConstraint("tenant_id", "email"),
        UniqueConstraint("tenant_id", "id"),  # the target of (tenant_id, operator_id) keys
        CheckConstraint("role in ('owner', 'manager', 'staff', 'viewer')", name="role"),
    )
    id: Mapped[str_id]
    tenant_id: Mapped[tenant]
    email: Mapped[address]  # lower-case
    role: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[utc]


# --- CalDAV scheduling (RFC 6638) ----------------------------------------------------------


class DavSchedule(Base):
    """An event a provider organizes in a writable calendar, scheduled through the organizer
    mailbox: its SEQUENCE and Schedule-Tag as Parley last published them."""

    __tablename__ = "dav_schedules"
    __table_args__ = (
        UniqueConstraint("tenant_id", "id"),
        UniqueConstraint("tenant_id", "provider_id", "uid"),
        Index("ix_dav_schedules_object", "calendar_id", "href"),
        _fk("provider_id", "providers"),
    )
    id: Mapped[str_id]
    tenant_id: Mapped[tenant]
    provider_id: Mapped[str] = mapped_column(String(40))
    # Where the organizer's copy lives; no key: the object goes before its CANCELs are sent.
    calendar_id: Mapped[str] = mapped_column(String(40))
    href: Mapped[str] = mapped_column(String(255))
    uid: Mapped[str] = mapped_column(String(512))
    sequence: Mapped[count]
    schedule_tag: Mapped[str] = mapped_column(String(64))
    # What attendees were last sent (times, texts, rules): a change of it is an update.
    content_digest: Mapped[str] = mapped_column(String(64))
    summary: Mapped[str] = mapped_column(String(500), default="")
    start_at: Mapped[utc_null]
    end_at: Mapped[utc_null]
    cancelled: Mapped[flag_false]
    created_at: Mapped[utc]
    updated_at: Mapped[utc]


class DavAttendee(Base):
    """One attendee of a scheduled event: its private plus-address tag and its answer."""

    __tablename__ = "dav_attendees"
    __table_args__ = (
        UniqueConstraint("tenant_id", "id"),
        UniqueConstraint("tenant_id", "schedule_id", "address"),
        UniqueConstraint("tenant_id", "plus_tag"),
        _fk("schedule_id", "dav_schedules"),
    )
    id: Mapped[str_id]
    tenant_id: Mapped[tenant]
    schedule_id: Mapped[str] = mapped_column(String(40), index=True)
    address: Mapped[address]
    name: Mapped[str | None] = mapped_column(String(200), nullable=True)
    plus_tag: Mapped[str] = mapped_column(String(40))
    partstat: Mapped[str] = mapped_column(String(16), default="NEEDS-ACTION")
    # SCHEDULE-AGENT=CLIENT: the calendar app mails this one itself; Parley sends nothing.
    client_agent: Mapped[flag_false]
    removed: Mapped[flag_false]
    last_sequence_sent: Mapped[int | None] = mapped_column(Integer, nullable=True)
    last_reply_dtstamp: Mapped[utc_null]
    updated_at: Mapped[utc]


class DavProposal(Base):
    """A COUNTER to a scheduled event, waiting for the provider's approve or decline link."""

    __tablename__ = "dav_proposals"
    __table_args__ = (
        UniqueConstraint("tenant_id", "id"),
        UniqueConstraint("tenant_id", "approve_hash"),
        UniqueConstraint("tenant_id", "decline_hash"),
        CheckConstraint(
            "status in ('pending', 'approved', 'declined', 'expired', 'superseded')",
            name="status",
        ),
        CheckConstraint("end_at > start_at", name="ordered"),
        _fk("schedule_id", "dav_schedules"),
        _fk("attendee_id", "dav_attendees"),
    )
    id: Mapped[str_id]
    tenant_id: Mapped[tenant]
    schedule_id: Mapped[str] = mapped_column(String(40), index=True)
    attendee_id: Mapped[str] = mapped_column(String(40))
    start_at: Mapped[utc]
    end_at: Mapped[utc]
    note: Mapped[text_null]
    status: Mapped[str] = mapped_column(String(16), default="pending")
    via: Mapped[str] = mapped_column(String(8), default="counter")
    base_sequence: Mapped[int] = mapped_column(Integer)
    approve_hash: Mapped[str] = mapped_column(String(64))
    decline_hash: Mapped[str] = mapped_column(String(64))
    inbound_message_id: Mapped[int | None] = mapped_column(BigId, nullable=True)
    created_at: Mapped[utc]
    expires_at: Mapped[utc]
    decided_at: Mapped[utc_null]
