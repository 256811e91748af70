"""Errors of the mail agent.

Parsing inbound mail never raises (it reports an outcome instead); these errors belong to
helpers whose caller passes something that is not what they need.
"""

from __future__ import annotations

from core.errors import ParleyError


class MailError(ParleyError):
    """Base class for mail agent errors."""


class ImapError(MailError):
    """Raised when the IMAP server refuses a command the poller needs."""


class RelayUrlError(MailError, ValueError):
    """Raised when PARLEY_SMTP_RELAY_URL is not smtp://… or smtps://…."""


class DkimKeyError(MailError):
    """Raised when the configured DKIM key cannot be read or used."""
