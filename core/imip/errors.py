"""Errors of core.imip: what its helpers raise when handed something they cannot use."""

from __future__ import annotations

from core.errors import ParleyError


class BadAddress(ParleyError, ValueError):
    """Raised when a string is not an address of the form local@domain."""

    def __init__(self, address: str) -> None:
        super().__init__(f"not an email address: {address[:80]!r}")
        self.address = address
