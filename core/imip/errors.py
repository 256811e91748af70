"""Errors raised while composing the mail Parley sends (core.imip.compose)."""

from __future__ import annotations

from core.errors import ParleyError


class ComposeError(ParleyError, ValueError):
    """Raised when a message cannot be composed safely (method mismatch, wrong attendee)."""
