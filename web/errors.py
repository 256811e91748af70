"""Errors the web layer turns into JSON `{"error": {"code", "message"}}` responses."""

from __future__ import annotations


class ApiError(Exception):
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
