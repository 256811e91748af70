"""Errors raised by the services: scheduling, links and sign-in, CalDAV, sources and sync.

Each carries a stable ``code``; the web edge maps the classes to HTTP statuses
(not found → 404, conflicts → 409, bad input → 400/422, rate limits → 429).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from core.db.models import Booking
from core.errors import ParleyError


class ServiceError(ParleyError):
    """Base of every error a scheduling service raises on purpose."""

    code = "service_error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class NotFoundError(ServiceError):
    """Raised when an id names no row of the kind asked for."""

    code = "not_found"

    def __init__(self, kind: str, ident: str) -> None:
        super().__init__(f"no {kind} with id {ident!r}")
        self.kind = kind
        self.ident = ident


class Forbidden(ServiceError):
    """Raised when the caller's role does not include the action (a viewer key that writes)."""

    code = "forbidden"


class TenantTaken(ServiceError):
    """Raised when a new tenant's slug or organizer address belongs to another tenant."""

    code = "tenant_taken"


class OperatorExists(ServiceError):
    """Raised when a tenant already has an operator with the address being added."""

    code = "operator_exists"


class AlreadyResolved(ServiceError):
    """Raised when a conflict a person already settled is asked to be resolved again."""

    code = "already_resolved"


class InvalidInput(ServiceError):
    """Raised when a value is well-formed JSON but not acceptable (bad slug, email, range)."""

    code = "invalid_input"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code


class SlugTaken(ServiceError):
    """Raised when a new provider's slug (or derived DAV user name) is already in use."""

    code = "slug_taken"

    def __init__(self, slug: str) -> None:
        super().__init__(f"the slug {slug!r} is already taken")
        self.slug = slug


class SlotTaken(ServiceError):
    """Raised when a hold, booking or reschedule overlaps something that already blocks it."""

    code = "slot_taken"

    def __init__(self, what: str = "") -> None:
        super().__init__("this time is no longer available" + (f": {what}" if what else ""))


class SlotUnavailable(ServiceError):
    """Raised when the requested time is not a bookable slot for rule reasons (not busy)."""

    code = "slot_unavailable"

    def __init__(self, reasons: list[str]) -> None:
        super().__init__("this time is not bookable: " + "; ".join(reasons))
        self.reasons = reasons


class HoldExpired(ServiceError):
    """Raised when a hold is confirmed after its TTL passed (or after it was released)."""

    code = "hold_expired"

    def __init__(self, hold_id: str) -> None:
        super().__init__(f"hold {hold_id} has expired; pick the time again")
        self.hold_id = hold_id


class IdempotencyMismatch(ServiceError):
    """Raised when an idempotency key is reused with a different provider, start or end."""

    code = "idempotency_mismatch"

    def __init__(self, key: str) -> None:
        super().__init__(f"idempotency key {key!r} was used for a different hold")
        self.key = key


class InvalidState(ServiceError):
    """Raised when a booking is not in a state that allows the action (approve a cancelled…)."""

    code = "invalid_state"

    def __init__(self, booking_id: str, status: str, action: str) -> None:
        super().__init__(f"booking {booking_id} is {status}; cannot {action}")
        self.booking_id = booking_id
        self.status = status
        self.action = action


class RelationshipRefused(ServiceError):
    """Raised when a unit relationship would duplicate another or close a loop."""

    code = "relationship_refused"


class NotRetryable(ServiceError):
    """Raised when an outbound message is asked to be sent again but has not failed."""

    code = "not_retryable"


class RateLimited(ServiceError):
    """Raised when a client exceeded its request budget for the current window."""

    code = "rate_limited"

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"too many requests; retry in {retry_after} s")
        self.retry_after = retry_after


class SyncThrottled(RateLimited):
    """Raised when "sync now" was asked too often for one calendar or one tenant."""

    code = "sync_throttled"

    def __init__(self, retry_after: int, what: str) -> None:
        super().__init__(retry_after)
        self.message = f"{what} synced just now; try again in {retry_after} s"
        self.args = (self.message,)


class SignInProblem(ServiceError):
    """Raised when a sign-in link cannot be used; ``reason`` is invalid, expired or used."""

    code = "sign_in_link_unusable"

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class BookingFacts:
    """What an error page may show of a booking, detached from any session."""

    id: str
    title: str
    start_at: datetime
    end_at: datetime
    status: str

    @classmethod
    def of(cls, booking: Booking) -> BookingFacts:
        return cls(booking.id, booking.title, booking.start_at, booking.end_at, booking.status)


class LinkProblem(ServiceError):
    """Raised when a link cannot be used: unknown, tampered, expired, used or superseded.

    ``reason`` is one of "invalid", "expired", "used", "not_pending", "moved", "cancelled";
    ``booking`` is set when the link could be tied to a booking (to offer a fresh link).
    """

    code = "link_unusable"

    def __init__(self, reason: str, message: str, booking: Booking | None = None) -> None:
        super().__init__(message)
        self.reason = reason
        # A copy, read now: the transaction that raised is rolled back before anyone renders it.
        self.booking = BookingFacts.of(booking) if booking is not None else None


class ReadOnlyCalendar(ServiceError):
    """Raised when something tries to write into a generated (bookings, holds) calendar."""

    code = "read_only_calendar"

    def __init__(self, name: str) -> None:
        super().__init__(
            f"the {name!r} calendar is read-only: Parley generates it from its {name};"
            " put your own events into 'blocks' or a calendar you created"
        )
        self.name = name


class CalendarExists(ServiceError):
    """Raised when MKCALENDAR names a calendar the provider already has."""

    code = "calendar_exists"

    def __init__(self, name: str) -> None:
        super().__init__(f"a calendar named {name!r} already exists")
        self.name = name


# --- external calendar sources and their sync --------------------------------------------------


class FetchFailed(ParleyError):
    """Raised when a fetcher cannot read a source (network, HTTP error, refused)."""

    def __init__(self, message: str, *, http_status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.http_status = http_status


class SourceError(ParleyError):
    """Base of the errors of the sources service; code is the API's stable error code."""

    code = "invalid_source"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code


class ProviderNotFound(SourceError):
    """Raised when a source is added to a provider id that does not exist."""

    code = "not_found"


class SourceNotFound(SourceError):
    """Raised when a source id names no source."""

    code = "not_found"


class SourceMissing(SourceNotFound):
    """Raised when a sync is asked for a source id that names no source (deleted while queued)."""


class InvalidSource(SourceError):
    """Raised when a field of a new source is unusable (URL, kind, platform, priority)."""


class SourceLimitReached(SourceError):
    """Raised when the provider already has the most sources settings allow."""

    code = "source_limit"


class DuplicateSource(SourceError):
    """Raised when the provider already imports the same URL."""

    code = "duplicate_source"


class NotHeld(SourceError):
    """Raised when a removal is confirmed for a source that is not held."""

    code = "not_held"


class AmbiguousKey(ServiceError):
    """Raised when a key prefix of the local mail folder names more than one message."""

    code = "ambiguous_key"
