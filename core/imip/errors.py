"""Errors of core.imip: what composing Parley's mail and reading addresses can refuse."""

from __future__ import annotations

from core.errors import ParleyError


class BadAddress(ParleyError, ValueError):
    """Raised when a string is not an address of the form local@domain."""

    def __init__(self, address: str) -> None:
        super().__init__(f"not an email address: {address[:80]!r}")
        self.address = address


class ComposeError(ParleyError, ValueError):
    """Raised when a message cannot be composed safely (method mismatch, wrong attendee)."""
