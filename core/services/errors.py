"""Errors raised by the scheduling services (providers, availability, holds, bookings).

Each carries a stable ``code``; the web edge maps the classes to HTTP statuses
(not found → 404, conflicts → 409, bad input → 400/422, rate limits → 429).
"""

from __future__ import annotations

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


class RateLimited(ServiceError):
    """Raised when a client exceeded its request budget for the current window."""

    code = "rate_limited"

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"too many requests; retry in {retry_after} s")
        self.retry_after = retry_after
