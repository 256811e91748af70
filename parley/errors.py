"""Errors of the parley command's own tools (backup)."""

from __future__ import annotations

from core.errors import ParleyError


class BackupError(ParleyError):
    """Raised when no backup was written; the message says why and what to do instead."""
