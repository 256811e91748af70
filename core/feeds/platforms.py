"""Which platform an imported event comes from, and whether it is a booking or a block.

Detection follows MUVA §3.2 (UID prefixes, PRODID, X- properties, summaries). It returns
only what conflict settlement needs: platform, kind, reservation code and the last four
phone digits the OTA itself publishes; guest names and other personal data never leave here.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from types import MappingProxyType


class Platform(StrEnum):
    """A source platform; the values are the keys of the seed's priority matrix."""

    MOTOPRESS_API = "motopress_api"
    MOTOPRESS_ICS = "motopress_ics"
    AIRBNB = "airbnb"
    BOOKING = "booking.com"
    VRBO = "vrbo"
    MANUAL = "manual"
    GOOGLE = "google"
    OUTLOOK = "outlook"
    APPLE = "apple"
    GENERIC = "generic_ics"


class EventKind(StrEnum):
    """What an imported event means for the unit."""

    RESERVATION = "reservation"
    BLOCK = "block"


# MUVA §3.4: a lower number wins. Personal calendars are generic ICS.
SOURCE_PRIORITY: Mapping[str, int] = MappingProxyType(
    {
        Platform.MOTOPRESS_API: 1,
        Platform.MOTOPRESS_ICS: 2,
        Platform.AIRBNB: 3,
        Platform.BOOKING: 3,
        Platform.VRBO: 3,
        Platform.MANUAL: 4,
        Platform.GOOGLE: 5,
        Platform.OUTLOOK: 5,
        Platform.APPLE: 5,
        Platform.GENERIC: 5,
    }
)

AIRBNB_RESERVATION_PREFIX = "1418fb94e984-"
AIRBNB_BLOCK_PREFIX = "7f662ec65913-"
# Airbnb closes the far end of its calendar with one long block that moves every day.
ROLLING_HORIZON_MIN_DAYS = 28

_AIRBNB_CODE = re.compile(r"\b(HM[A-Z0-9]{8})\b")
_PHONE_LAST4 = re.compile(
    r"Phone Number \(Last 4 Digits\):\s*(\d{4})\b|Phone:\s*[*xX•]{2,}\s*(\d{4})\b", re.IGNORECASE
)
_BLOCK_WORDS = re.compile(r"not available|blocked|closed|unavailable|no disponible", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class PlatformInfo:
    """The platform facts of one event; nothing personal beyond the OTA's own last-4 digits."""

    platform: Platform
    kind: EventKind
    reservation_code: str | None = None
    phone_last4: str | None = None
    rolling_horizon: bool = False

    @property
    def priority(self) -> int:
        return priority_of(self.platform)


def priority_of(platform: str) -> int:
    """The seed's priority for a platform name (1 wins); unknown names rank as generic ICS."""
    return SOURCE_PRIORITY.get(platform, SOURCE_PRIORITY[Platform.GENERIC])


def feed_platform(prodid: str | None, x_names: Iterable[str] = ()) -> Platform:
    """The platform a whole feed comes from, judged by its PRODID and X- property names."""
    names = [name.upper() for name in x_names]
    if any(name.startswith("X-MOTOPRESS") for name in names):
        return Platform.MOTOPRESS_ICS
    if any(name.startswith("X-VRBO") for name in names):
        return Platform.VRBO
    low = (prodid or "").casefold()
    for needle, platform in _PRODID_NEEDLES:
        if needle in low:
            return platform
    return Platform.GENERIC


_PRODID_NEEDLES: tuple[tuple[str, Platform], ...] = (
    ("motopress", Platform.MOTOPRESS_ICS),
    ("booking.com", Platform.BOOKING),
    ("airbnb", Platform.AIRBNB),
    ("vrbo", Platform.VRBO),
    ("homeaway", Platform.VRBO),
    ("google", Platform.GOOGLE),
    ("microsoft", Platform.OUTLOOK),
    ("outlook", Platform.OUTLOOK),
    ("exchange", Platform.OUTLOOK),
    ("apple", Platform.APPLE),
    ("//ical", Platform.APPLE),
)


def detect(
    *,
    uid: str,
    summary: str,
    description: str,
    feed: Platform,
    x_names: Iterable[str] = (),
    at_horizon: bool = False,
) -> PlatformInfo:
    """Platform and kind of one event; at_horizon: it is long and ends where the feed ends."""
    platform = _event_platform(uid, summary, description, feed, x_names)
    code_match = _AIRBNB_CODE.search(description) or _AIRBNB_CODE.search(summary)
    code = code_match.group(1) if code_match else None
    phone = _phone_last4(description)
    kind = _kind(platform, uid, summary, code)
    rolling = at_horizon and kind is EventKind.BLOCK and platform is Platform.AIRBNB
    return PlatformInfo(platform, kind, code, phone, rolling)


def _event_platform(
    uid: str, summary: str, description: str, feed: Platform, x_names: Iterable[str]
) -> Platform:
    low_uid = uid.casefold()
    if low_uid.startswith((AIRBNB_RESERVATION_PREFIX, AIRBNB_BLOCK_PREFIX)) or low_uid.endswith(
        "@airbnb.com"
    ):
        return Platform.AIRBNB
    if low_uid.endswith(("@vrbo.com", "@homeaway.com")):
        return Platform.VRBO
    if low_uid.endswith("@booking.com"):
        return Platform.BOOKING
    from_props = feed_platform(None, x_names)
    if from_props is not Platform.GENERIC:
        return from_props
    if feed is Platform.GENERIC and (
        "airbnb.com" in description.casefold() or summary.strip() == "Airbnb (Not available)"
    ):
        return Platform.AIRBNB
    return feed


def _kind(platform: Platform, uid: str, summary: str, code: str | None) -> EventKind:
    text = summary.strip()
    if platform is Platform.AIRBNB:
        if uid.casefold().startswith(AIRBNB_RESERVATION_PREFIX) or text.startswith("Reserved"):
            return EventKind.RESERVATION
        if uid.casefold().startswith(AIRBNB_BLOCK_PREFIX) or _BLOCK_WORDS.search(text):
            return EventKind.BLOCK
        return EventKind.RESERVATION if code else EventKind.BLOCK
    if platform is Platform.VRBO:
        return EventKind.RESERVATION if text.startswith("Reserved") else EventKind.BLOCK
    if platform in (Platform.BOOKING, Platform.MOTOPRESS_ICS, Platform.MOTOPRESS_API):
        return EventKind.BLOCK if _BLOCK_WORDS.search(text) else EventKind.RESERVATION
    # Personal calendars: busy time, not a guest's stay, unless it carries an OTA code.
    return EventKind.RESERVATION if code else EventKind.BLOCK


def _phone_last4(description: str) -> str | None:
    match = _PHONE_LAST4.search(description)
    if match is None:
        return None
    return match.group(1) or match.group(2)
