"""How every page and mail writes a time: in the viewer's zone, in the viewer's language.

One set of functions over Babel's locale data (CLDR), so a time reads the same on the
manage page, in the invitation and on /me: "Thu, 3 Dec 2026, 05:00 EST" in English,
"Do., 3. Dez. 2026, 11:00 MEZ" in German. The zone is always named by ``zone_label``;
a time is shown in UTC only when the viewer's zone is UTC (or unknown). Pure: no clock.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta, tzinfo
from functools import lru_cache
from typing import Final, Literal
from zoneinfo import ZoneInfo

from babel import Locale
from babel.dates import format_date, format_skeleton, get_datetime_format, get_timezone_name

from core.tzids import zone_for_tzid

# The languages Parley speaks; the first is the fallback.
LOCALES: Final = ("en", "de", "fr", "es")
DEFAULT_LOCALE: Final = "en"
LANGUAGE_NAMES: Final = {"en": "English", "de": "Deutsch", "fr": "Français", "es": "Español"}
# Whose CLDR data each language formats with: English reads "3 Dec 2026, 17:00", as
# Parley has always written it (24-hour clock, day before month).
_CLDR: Final = {"en": "en_GB", "de": "de_DE", "fr": "fr_FR", "es": "es_ES"}
# A 12-hour clock in English reads "3:00 PM" (en_GB would write "3:00 pm").
_CLDR_12: Final = {"en": "en_US"}
_ALPHA_ABBREVIATION: Final = re.compile(r"[A-Za-z]{2,5}")

Style = Literal["datetime", "date", "day", "time"]


def normalize_locale(text: str | None) -> str | None:
    """One of LOCALES for a tag like "de", "de-AT" or "fr_CA"; None for anything else."""
    if not text:
        return None
    language = text.strip().replace("_", "-").split("-", 1)[0].lower()
    return language if language in LOCALES else None


def locale_or_default(text: str | None) -> str:
    return normalize_locale(text) or DEFAULT_LOCALE


@lru_cache(maxsize=16)
def _cldr(locale: str) -> Locale:
    return Locale.parse(_CLDR.get(locale_or_default(locale), "en_GB"))


def zone_of(name: str | None) -> tzinfo:
    """The zone for an IANA (or Windows) name; UTC when there is none or it is unknown."""
    return (zone_for_tzid(name) if name else None) or ZoneInfo("UTC")


def zone_label(local: datetime, locale: str = DEFAULT_LOCALE) -> str:
    """The zone of an aware local time, named the same way everywhere: the language's
    own abbreviation where CLDR has one (MEZ, CET, EST), else the zone database's
    (JST, IST, GMT), else the offset from GMT ("GMT-3", "GMT+5:30")."""
    if local.utcoffset() == timedelta(0) and str(local.tzinfo) in ("UTC", "Etc/UTC", "UTC+00:00"):
        return "UTC"
    cldr = get_timezone_name(local, "short", locale=_cldr(locale))
    if _ALPHA_ABBREVIATION.fullmatch(cldr) and cldr.isupper():
        return cldr
    own = local.tzname() or ""
    if _ALPHA_ABBREVIATION.fullmatch(own) and own.isupper():
        return own
    return _gmt_offset(local.utcoffset() or timedelta(0))


def _gmt_offset(offset: timedelta) -> str:
    minutes = int(offset.total_seconds() // 60)
    sign = "+" if minutes >= 0 else "-"
    hours, rest = divmod(abs(minutes), 60)
    return f"GMT{sign}{hours}" + (f":{rest:02d}" if rest else "")


def in_zone(moment: datetime, zone: str | None) -> datetime:
    """moment (aware; naive is read as UTC) in the named zone."""
    aware = moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
    return aware.astimezone(zone_of(zone))


def format_day(day: date, locale: str = DEFAULT_LOCALE, *, year: bool = True) -> str:
    """A calendar day: "Thu, 3 Dec 2026" (or "Thu, 3 Dec" without the year)."""
    return format_skeleton("yMMMEd" if year else "MMMEd", day, locale=_cldr(locale))


def format_clock(
    moment: datetime, zone: str | None, locale: str = DEFAULT_LOCALE, *, hours: int = 24
) -> str:
    """The wall-clock time alone: "05:00" (24-hour), or with hours=12 in the language's
    own 12-hour way ("5:00 AM", "5:00 a. m.")."""
    local = in_zone(moment, zone)
    if hours == 12:
        twelve = _CLDR_12.get(locale_or_default(locale))
        cldr = Locale.parse(twelve) if twelve else _cldr(locale)
        return format_skeleton("hm", local, locale=cldr)
    return format_skeleton("Hm", local, locale=_cldr(locale))


def format_long_day(day: date, locale: str = DEFAULT_LOCALE) -> str:
    """A calendar day in full: "Tuesday, 2 March 2027", "Dienstag, 2. März 2027"."""
    return format_date(day, "full", locale=_cldr(locale))


def format_month(day: date, locale: str = DEFAULT_LOCALE) -> str:
    """The month of a day with its year: "March 2027", "März 2027", "marzo de 2027"."""
    return format_skeleton("yMMMM", day, locale=_cldr(locale))


def format_weekday(day: date, locale: str = DEFAULT_LOCALE) -> str:
    """The weekday of a day, short: "Mon", "Mo.", "lun.", "lun"."""
    return format_date(day, "EEE", locale=_cldr(locale))


def format_datetime(
    moment: datetime, zone: str | None, locale: str = DEFAULT_LOCALE, style: Style = "datetime"
) -> str:
    """moment in zone: "Thu, 3 Dec 2026, 05:00 EST" (style "datetime"), the day only
    ("date"), the day without its year ("day") or the clock with the zone ("time")."""
    local = in_zone(moment, zone)
    if style == "date":
        return format_day(local.date(), locale)
    if style == "day":
        return format_day(local.date(), locale, year=False)
    clock = f"{format_skeleton('Hm', local, locale=_cldr(locale))} {zone_label(local, locale)}"
    if style == "time":
        return clock
    return _join(format_day(local.date(), locale), clock, locale)


def format_range(
    start: datetime, end: datetime | None, zone: str | None, locale: str = DEFAULT_LOCALE
) -> str:
    """[start, end) in zone: "Thu, 3 Dec 2026, 05:00–06:00 EST"; across midnight both
    days are named, and both zones when the clocks change in between."""
    if end is None:
        return format_datetime(start, zone, locale)
    first, last = in_zone(start, zone), in_zone(end, zone)
    cldr = _cldr(locale)
    begin = format_skeleton("Hm", first, locale=cldr)
    finish = format_skeleton("Hm", last, locale=cldr)
    first_zone, last_zone = zone_label(first, locale), zone_label(last, locale)
    if first.date() == last.date():
        if first_zone == last_zone:
            return _join(format_day(first.date(), locale), f"{begin}–{finish} {last_zone}", locale)
        return _join(
            format_day(first.date(), locale), f"{begin} {first_zone} – {finish} {last_zone}", locale
        )
    opening = _join(format_day(first.date(), locale), f"{begin} {first_zone}", locale)
    closing = _join(format_day(last.date(), locale), f"{finish} {last_zone}", locale)
    if first_zone == last_zone:
        opening = _join(format_day(first.date(), locale), begin, locale)
    return f"{opening} – {closing}"


def _join(day: str, clock: str, locale: str) -> str:
    """The language's own way to put a date and a time together ("{1}, {0}")."""
    pattern = str(get_datetime_format("medium", locale=_cldr(locale)))
    return pattern.replace("{1}", day).replace("{0}", clock).replace("'", "")
