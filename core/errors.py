"""The root of every error Parley raises on purpose, and the errors of core's own modules.

Each package keeps its own ``errors.py`` under ``ParleyError`` (core.domain, core.feeds,
core.itip, core.imip, core.services, mailagent, caldav_bridge, web); the edges (HTTP,
SMTP, Radicale) map those classes to their answers in one place each.
"""

from __future__ import annotations

from datetime import datetime
from typing import Protocol


class ParleyError(Exception):
    """Base of every error Parley raises on purpose."""


class ConfigError(ParleyError):
    """Raised at start-up when a setting has a bad value; the message is one line."""


class CannotDecrypt(ParleyError):
    """Raised when a stored secret was sealed under another secret key or was altered."""


class Claims(Protocol):
    """What a token error tells of the genuine token it refused (core.tokens.TokenClaims)."""

    @property
    def booking_id(self) -> str: ...
    @property
    def role(self) -> str: ...
    @property
    def purpose(self) -> str: ...
    @property
    def expires_at(self) -> datetime: ...


class TokenError(ParleyError):
    """Base of every error raised while issuing or checking a token."""


class TokenInvalid(TokenError):
    """Raised when a token is malformed, was altered, or was signed with another key."""


class TokenExpired(TokenError):
    """Raised when a genuine token is past its expiry; carries the claims for a fresh link."""

    def __init__(self, claims: Claims) -> None:
        super().__init__(f"token for booking {claims.booking_id} expired at {claims.expires_at}")
        self.claims = claims


class TokenWrongPurpose(TokenError):
    """Raised when a genuine token is presented for another purpose than it was issued for."""

    def __init__(self, claims: Claims, expected: str) -> None:
        super().__init__(f"token is for {claims.purpose!r}, not {expected!r}")
        self.claims = claims
        self.expected = expected
