"""Resolve the time zone names found in the wild to IANA zones.

Calendar files name zones as IANA ids, Windows names ("W. Europe Standard Time",
sometimes with trailing spaces or quotes), or prefixed ids ("/freeassociation.sourceforge.net/…").
Pure: no I/O beyond zoneinfo's own data.
"""

from __future__ import annotations

from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from icalendar.timezone.windows_to_olson import WINDOWS_TO_OLSON

_WINDOWS_FOLDED = {name.casefold(): olson for name, olson in WINDOWS_TO_OLSON.items()}
_UTC_NAMES = {"utc", "z", "gmt", "etc/utc", "etc/gmt", "coordinated universal time", "utc+00:00"}


def _clean(name: str) -> str:
    return name.strip().strip('"').strip("'").strip()


@lru_cache(maxsize=1024)
def zone_for_tzid(tzid: str | None) -> ZoneInfo | None:
    """The IANA zone a TZID names, or None when it names no zone we know."""
    if not tzid:
        return None
    name = _clean(tzid)
    if not name:
        return None
    if name.casefold() in _UTC_NAMES:
        return ZoneInfo("UTC")
    candidates = [name]
    if name.startswith("/"):
        # libical style "/freeassociation.sourceforge.net/Tzfile/Europe/Berlin"
        parts = name.strip("/").split("/")
        candidates += ["/".join(parts[i:]) for i in range(1, len(parts))]
    olson = _WINDOWS_FOLDED.get(name.casefold())
    if olson:
        candidates.insert(0, olson)
    for candidate in candidates:
        zone = _load(candidate)
        if zone is not None:
            return zone
    return None


def is_valid_zone(name: str) -> bool:
    """True when name is an IANA zone id this machine knows."""
    return _load(name) is not None


def _load(name: str) -> ZoneInfo | None:
    if not name or len(name) > 200 or name.startswith("/") or ".." in name:
        return None
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError, UnicodeError):
        return None
