"""Errors of the mail agent.

Parsing inbound mail never raises (it reports an outcome instead); these errors belong to
helpers whose caller passes something that is not what they need.
"""

from __future__ import annotations


class MailError(Exception):
    """Base class for mail agent errors."""
