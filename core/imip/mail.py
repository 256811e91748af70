"""What an inbound mail says, as the decisions read it: its kind, its parts, its facts.

Vocabulary only: the MIME parser that fills these in is the mail agent's
(``mailagent.mime.parse_message``); core's inbound service decides on what it found.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from core.imip.errors import BadAddress
from core.itip.read import ItipMessage

_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")


class Outcome(StrEnum):
    """What kind of mail this is, in the order the checks apply."""

    UNPARSEABLE = "unparseable"  # not readable as mail at all; `error` says why
    BOUNCE = "bounce"  # a delivery failure report
    ITIP = "itip"  # the sender's own calendar part, read into `itip`
    BAD_CALENDAR = "bad_calendar"  # the sender's own calendar part exists but is unreadable
    AUTO_REPLY = "auto_reply"  # out-of-office, list, delay notice or other automated mail
    PLAIN = "plain"  # a person's mail with no calendar of their own (may answer an invite)


@dataclass(frozen=True, slots=True)
class CalendarPart:
    """A text/calendar or .ics part; `forwarded` when it sits inside a message/rfc822."""

    content_type: str
    method: str | None
    charset: str | None
    filename: str | None
    attachment: bool
    forwarded: bool
    data: bytes


@dataclass(frozen=True, slots=True)
class ParsedMail:
    """Everything parse_message learned; addresses are lower-cased, ids lack their <>."""

    content_hash: str
    outcome: Outcome
    error: str | None = None
    message_id: str | None = None
    from_address: str | None = None
    from_name: str | None = None
    reply_to: str | None = None
    to_addresses: tuple[str, ...] = ()
    cc_addresses: tuple[str, ...] = ()
    delivered_to: tuple[str, ...] = ()
    subject: str = ""
    in_reply_to: str | None = None
    references: tuple[str, ...] = ()
    date: datetime | None = None
    is_auto: bool = False
    auto_reason: str | None = None
    is_bounce: bool = False
    bounced_recipients: tuple[str, ...] = ()
    bounced_message_id: str | None = None
    calendar_parts: tuple[CalendarPart, ...] = ()
    has_forwarded_calendar: bool = False
    text: str = ""
    text_truncated: bool = False
    itip: ItipMessage | None = None
    defects: tuple[str, ...] = ()

    @property
    def unparseable(self) -> bool:
        return self.outcome is Outcome.UNPARSEABLE

    @property
    def dedup_key(self) -> str:
        """Message-ID when present, else the sha256 of the raw bytes."""
        return self.message_id or f"sha256:{self.content_hash}"


def split_plus(address: str) -> tuple[str, str | None, str]:
    """Split "Bob+Tag@Example.org" into ("bob", "tag", "example.org"); tag None when absent."""
    local, at, domain = bare_address(address).rpartition("@")
    if not at or not local or not domain:
        raise BadAddress(address)
    base, plus, tag = local.partition("+")
    if not base:
        raise BadAddress(address)
    return base, (tag or None) if plus else None, domain


def bare_address(address: str) -> str:
    """The bare address, lower-cased; "" for one with control characters (no address)."""
    address = address.strip().strip("<>").strip()
    if address[:7].lower() == "mailto:":
        address = address[7:]
    return "" if _CONTROL_RE.search(address) else address.lower()
