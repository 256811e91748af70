"""Small builders for ICS feed bodies used by the sync tests."""

from __future__ import annotations

from datetime import date, datetime, timedelta


def calendar(*events: str, prodid: str = "-//Example Corp//Test Feed//EN", extra: str = "") -> str:
    head = f"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:{prodid}\r\n{extra}"
    return head + "".join(events) + "END:VCALENDAR\r\n"


def timed(uid: str, start: datetime, minutes: int = 60, summary: str = "Busy", **props: str) -> str:
    """A UTC-timed event; props are added as NAME:value lines (underscores become dashes)."""
    end = start + timedelta(minutes=minutes)
    lines = [
        "BEGIN:VEVENT",
        f"UID:{uid}",
        "DTSTAMP:20300101T000000Z",
        f"DTSTART:{start:%Y%m%dT%H%M%SZ}",
        f"DTEND:{end:%Y%m%dT%H%M%SZ}",
        f"SUMMARY:{summary}",
        *(f"{k.replace('_', '-')}:{v}" for k, v in props.items()),
        "END:VEVENT",
    ]
    return "\r\n".join(lines) + "\r\n"


def all_day(uid: str, first: date, nights: int, summary: str, **props: str) -> str:
    lines = [
        "BEGIN:VEVENT",
        f"UID:{uid}",
        "DTSTAMP:20300101T000000Z",
        f"DTSTART;VALUE=DATE:{first:%Y%m%d}",
        f"DTEND;VALUE=DATE:{first + timedelta(days=nights):%Y%m%d}",
        f"SUMMARY:{summary}",
        *(f"{k.replace('_', '-')}:{v}" for k, v in props.items()),
        "END:VEVENT",
    ]
    return "\r\n".join(lines) + "\r\n"
