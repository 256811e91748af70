"""The booking page's time zone picker: IANA's canonical zones, grouped by region.

The list is IANA's own ``zone1970.tab`` (one row per canonical zone, with the countries it
covers), not ``available_timezones()``, which also holds ``Factory``, ``localtime``,
``W-SU`` and hundreds of backward-compatible links. Each entry shows its UTC offset now;
cities and countries are named in the page's language (CLDR), region names through gettext.
"""

from __future__ import annotations

import zoneinfo
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from importlib import resources
from pathlib import Path

from babel import Locale
from babel.dates import get_timezone_location

from core.formatting import DEFAULT_LOCALE, locale_or_default
from web.words import N_

_NOT_ZONES = frozenset({"Factory", "localtime", "posixrules"})
# The groups' names, in English; the page translates them.
YOUR_ZONE = N_("Your zone")
REGIONS = [
    N_("Africa"), N_("America"), N_("Antarctica"), N_("Arctic"), N_("Asia"), N_("Atlantic"),
    N_("Australia"), N_("Europe"), N_("Indian"), N_("Pacific"),
]  # fmt: skip


@dataclass(frozen=True, slots=True)
class ZoneChoice:
    """One option: the IANA name sent with the form and the label the guest reads."""

    name: str
    label: str


@dataclass(frozen=True, slots=True)
class ZoneGroup:
    """The options of one region (Africa, America, …), in the order shown."""

    region: str
    choices: list[ZoneChoice]


def _tab_text(file: str) -> str | None:
    """A tzdata table from the system's zoneinfo, else from the ``tzdata`` package."""
    for folder in zoneinfo.TZPATH:
        path = Path(folder) / file
        if path.is_file():
            return path.read_text(encoding="utf-8")
    try:
        return resources.files("tzdata.zoneinfo").joinpath(file).read_text(encoding="utf-8")
    except (ModuleNotFoundError, FileNotFoundError):
        return None


def _rows(text: str | None) -> list[list[str]]:
    lines = (text or "").splitlines()
    return [line.split("\t") for line in lines if line.strip() and not line.startswith("#")]


@lru_cache(maxsize=1)
def _country_codes() -> dict[str, tuple[str, ...]]:
    """Every canonical zone with the ISO codes of the countries it covers (UTC first)."""
    zones: dict[str, tuple[str, ...]] = {"UTC": ()}
    for row in _rows(_tab_text("zone1970.tab")):
        if len(row) >= 3:
            zones[row[2]] = tuple(row[0].split(","))
    if len(zones) == 1:  # no tables on this system: regional names, links and all
        regional = (z for z in zoneinfo.available_timezones() if "/" in z)
        zones.update((z, ()) for z in regional if not z.startswith(("Etc/", "SystemV/")))
    return zones


@lru_cache(maxsize=1)
def canonical_zones() -> dict[str, tuple[str, ...]]:
    """Every canonical zone with the (English) names of the countries it covers."""
    countries = {row[0]: row[1] for row in _rows(_tab_text("iso3166.tab")) if len(row) > 1}
    return {
        name: tuple(countries.get(code, code) for code in codes)
        for name, codes in _country_codes().items()
    }


@lru_cache(maxsize=8)
def _places(locale: str) -> dict[str, tuple[str, tuple[str, ...]]]:
    """Each canonical zone's city and countries as a language names them: English from the
    zone database's own tables, other languages from CLDR ("Wien — Österreich")."""
    english = canonical_zones()
    if locale == DEFAULT_LOCALE:
        return {name: (_city(name), english[name]) for name in english}
    cldr = Locale.parse(locale)
    places = {}
    for name, codes in _country_codes().items():
        try:
            city = str(get_timezone_location(name, locale=cldr, return_city=True))
        except LookupError:
            city = _city(name)
        countries = tuple(str(cldr.territories.get(code, fallback)) for code, fallback
                          in zip(codes, english[name], strict=True))  # fmt: skip
        places[name] = (city, countries)
    return places


def _city(name: str) -> str:
    return name.split("/", 1)[-1].replace("_", " ").replace("/", " / ")


def accepts(name: str | None) -> bool:
    """True when name is an IANA zone the page may show times in (a link too)."""
    return bool(name) and name not in _NOT_ZONES and name in _known()


@lru_cache(maxsize=1)
def _known() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def offset_label(name: str, now: datetime) -> str:
    """The zone's UTC offset at now, as ``UTC+05:30`` or ``UTC-03:00``."""
    offset = now.astimezone(zoneinfo.ZoneInfo(name)).utcoffset() or timedelta(0)
    minutes = int(offset.total_seconds() // 60)
    sign = "-" if minutes < 0 else "+"
    return f"UTC{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


def _choice(name: str, place: str, countries: tuple[str, ...], now: datetime) -> ZoneChoice:
    if name == "UTC":
        return ZoneChoice(name, "UTC")
    where = f" — {', '.join(countries)}" if countries and countries != (place,) else ""
    return ZoneChoice(name, f"{place}{where} ({offset_label(name, now)})")


def zone_groups(now: datetime, selected: str, locale: str = DEFAULT_LOCALE) -> list[ZoneGroup]:
    """The picker's options by region, cities in alphabetical order; selected always listed.

    A zone the browser reports that is only a link (``Europe/Stockholm``) is not in the
    canonical list; it is put first so the picker still shows the guest's choice.
    """
    zones = _places(locale_or_default(locale))
    groups: dict[str, list[ZoneChoice]] = {}
    if selected not in zones:
        groups[YOUR_ZONE] = [_choice(selected, _city(selected), (), now)]
    for name, (place, countries) in zones.items():
        region = name.split("/", 1)[0] if "/" in name else "UTC"
        groups.setdefault(region, []).append(_choice(name, place, countries, now))
    first = {YOUR_ZONE: 0, "UTC": 1}
    ordered = sorted(groups.items(), key=lambda item: (first.get(item[0], 2), item[0]))
    return [ZoneGroup(region, sorted(items, key=lambda c: c.label)) for region, items in ordered]
