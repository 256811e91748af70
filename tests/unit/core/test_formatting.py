"""core.formatting: one way to write a time, per zone and language."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from core.formatting import (
    format_clock,
    format_datetime,
    format_long_day,
    format_month,
    format_range,
    format_weekday,
    normalize_locale,
)

AT = datetime(2026, 12, 3, 10, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("zone", "locale", "shown"),
    [
        ("America/New_York", "en", "Thu, 3 Dec 2026, 05:00 EST"),
        ("Europe/Berlin", "de", "Do., 3. Dez. 2026, 11:00 MEZ"),
        ("Europe/Berlin", "en", "Thu, 3 Dec 2026, 11:00 CET"),
        ("Europe/Paris", "fr", "jeu. 3 déc. 2026, 11:00 CET"),
        ("Europe/Madrid", "es", "jue, 3 dic 2026, 11:00 CET"),
        ("Asia/Tokyo", "de", "Do., 3. Dez. 2026, 19:00 JST"),
        ("America/Sao_Paulo", "en", "Thu, 3 Dec 2026, 07:00 GMT-3"),
        ("Asia/Kolkata", "en", "Thu, 3 Dec 2026, 15:30 IST"),
        ("Pacific Standard Time", "en", "Thu, 3 Dec 2026, 02:00 PST"),  # a Windows name
        ("UTC", "fr", "jeu. 3 déc. 2026, 10:00 UTC"),
        (None, "en", "Thu, 3 Dec 2026, 10:00 UTC"),  # no zone known: UTC, and it says so
        ("Mars/Olympus", "en", "Thu, 3 Dec 2026, 10:00 UTC"),
    ],
)
def test_a_time_in_a_zone_and_language(zone: str | None, locale: str, shown: str) -> None:
    assert format_datetime(AT, zone, locale) == shown


def test_ranges_name_both_days_and_both_zones_only_when_they_differ() -> None:
    hour = timedelta(hours=1)
    assert (
        format_range(AT, AT + hour, "Europe/Berlin", "de") == "Do., 3. Dez. 2026, 11:00–12:00 MEZ"
    )
    assert format_range(AT, AT + 15 * hour, "Europe/Berlin", "en") == (
        "Thu, 3 Dec 2026, 11:00 – Fri, 4 Dec 2026, 02:00 CET"
    )
    spring = datetime(2026, 3, 29, 0, 30, tzinfo=UTC)  # Berlin's clocks go forward at 01:00 UTC
    assert format_range(spring, spring + hour, "Europe/Berlin", "de") == (
        "So., 29. März 2026, 01:30 MEZ – 03:30 MESZ"
    )


def test_language_tags_are_read_by_their_language() -> None:
    assert normalize_locale("de-AT") == "de" and normalize_locale("fr_CA") == "fr"
    assert normalize_locale("pt-BR") is None and normalize_locale(None) is None


@pytest.mark.parametrize(
    ("locale", "long_day", "month", "monday", "clock_24", "clock_12"),
    [
        ("en", "Monday, 7 December 2026", "December 2026", "Mon", "22:05", "10:05 PM"),
        ("de", "Montag, 7. Dezember 2026", "Dezember 2026", "Mo.", "22:05", "10:05\u202fPM"),
        ("fr", "lundi 7 décembre 2026", "décembre 2026", "lun.", "22:05", "10:05\u202fPM"),
        ("es", "lunes, 7 de diciembre de 2026", "diciembre de 2026", "lun", "22:05",
         "10:05\u202fp.\u202fm."),
    ],
)  # fmt: skip
def test_the_booking_pages_days_months_weekdays_and_both_clocks(
    locale: str, long_day: str, month: str, monday: str, clock_24: str, clock_12: str
) -> None:
    # Catches: the booking page's strftime English ("Monday 07 December 2026", "%a") and a
    # 12-hour clock that exists only in English.
    day = date(2026, 12, 7)
    moment = datetime(2026, 12, 7, 21, 5, tzinfo=UTC)
    assert format_long_day(day, locale) == long_day
    assert format_month(day, locale) == month
    assert format_weekday(day, locale) == monday
    assert format_clock(moment, "Europe/Berlin", locale) == clock_24
    assert format_clock(moment, "Europe/Berlin", locale, hours=12) == clock_12
    assert format_clock(moment, "Asia/Tokyo", locale, hours=12).startswith("6:05")
