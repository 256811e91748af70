"""Errors the web layer raises, and the one table that turns errors into HTTP answers.

Every answer is JSON ``{"error": {"code", "message"}}`` (pages render the same facts as
HTML). ``web.app`` registers a handler for each class below; Starlette, like
``status_of``, looks a raised error's classes up along its MRO, so the most specific
entry wins.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from core.domain.errors import DomainError
from core.errors import ParleyError
from core.metrics import LINK_REJECTIONS
from core.services.errors import (
    DuplicateSource,
    Forbidden,
    InvalidInput,
    LinkProblem,
    NotFoundError,
    NotHeld,
    ProviderNotFound,
    RateLimited,
    ServiceError,
    SlotUnavailable,
    SourceError,
    SourceLimitReached,
    SourceNotFound,
)


class ApiError(ParleyError):
    """Base: an HTTP status, a stable code and a human message."""

    status = 400
    code = "bad_request"

    def __init__(self, message: str, *, code: str | None = None, status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        if status is not None:
            self.status = status


class BadRequest(ApiError):
    """Raised when the request body or query cannot be understood."""


class Unauthorized(ApiError):
    """Raised when an admin call lacks a valid bearer token."""

    status = 401
    code = "unauthorized"


class NotFound(ApiError):
    """Raised when the id in the path names nothing this caller may see."""

    status = 404
    code = "not_found"


class Conflict(ApiError):
    """Raised when the request collides with current state (e.g. slot taken)."""

    status = 409
    code = "conflict"


class TooManyRequests(ApiError):
    """Raised when a client exceeds a rate limit."""

    status = 429
    code = "rate_limited"


# The HTTP status of each core error class; a class not listed takes its nearest listed base.
STATUS: Final[Mapping[type[Exception], int]] = {
    DomainError: 400,
    ServiceError: 409,
    InvalidInput: 400,
    NotFoundError: 404,
    Forbidden: 403,
    SlotUnavailable: 422,
    RateLimited: 429,
    SourceError: 400,
    ProviderNotFound: 404,
    SourceNotFound: 404,
    SourceLimitReached: 409,
    DuplicateSource: 409,
    NotHeld: 409,
}
# A link that cannot be used says why: unknown → 404, expired or used → 410, else 409.
LINK_STATUS: Final[Mapping[str, int]] = {
    "invalid": 404,
    "expired": 410,
    "used": 410,
    "not_pending": 409,
    "moved": 409,
}
Answered = ApiError | DomainError | ServiceError | SourceError
ANSWERED: Final = (ApiError, DomainError, ServiceError, SourceError)


@dataclass(frozen=True, slots=True)
class Reply:
    """What the web answers for an error: status, stable code, human message."""

    status: int
    code: str
    message: str


def status_of(error: Exception) -> int:
    """The status of error's nearest class in STATUS (the MRO order Starlette uses)."""
    return next(STATUS[cls] for cls in type(error).__mro__ if cls in STATUS)


def reply_for(error: Answered) -> Reply:
    """The answer for an error the web edge answers for (see ANSWERED)."""
    if isinstance(error, ApiError):
        return Reply(error.status, error.code, error.message)
    return Reply(status_of(error), error.code, str(error))


def link_reply(problem: LinkProblem) -> Reply:
    """The answer for an emailed link that cannot be used: its reason is the code."""
    return Reply(LINK_STATUS.get(problem.reason, 409), f"link_{problem.reason}", problem.message)


# Label values of parley_link_rejections_total: anything else is counted as "other".
LINK_PURPOSES: Final = frozenset({"approve", "decline", "reschedule", "sign_in", "feed", "manage"})
LINK_REASONS: Final = frozenset({*LINK_STATUS, "cancelled"})


def link_rejected(purpose: str, reason: str) -> None:
    """Count a refused emailed or published link by purpose and reason (bounded labels)."""
    LINK_REJECTIONS.labels(
        purpose=purpose if purpose in LINK_PURPOSES else "other",
        reason=reason if reason in LINK_REASONS else "other",
    ).inc()


def link_purpose(path: str) -> str:
    """The purpose of a link page or API call, read off its path (/approve, /api/v1/…)."""
    parts = [part for part in path.split("/") if part]
    if parts[:2] == ["api", "v1"]:
        parts = parts[2:]
    return parts[0] if parts else "other"
