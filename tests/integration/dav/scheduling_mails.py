"""Answers to CalDAV-scheduled events, shaped as Outlook and Gmail send them.

The shapes live in tests/data/dav_scheduling/*.eml.tmpl (after the real messages in
tests/data/mail and ../shared/corpus): {NAME} placeholders, and calendar blocks between
"@@CALENDAR" / "@@BASE64" and "@@END" that are folded at 75 octets (and base64-encoded);
"@@BASE64 CALENDAR" repeats the message's calendar as an attachment, as Gmail does.
"""

from __future__ import annotations

import base64
import re
import uuid
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

DATA = Path(__file__).resolve().parents[2] / "data" / "dav_scheduling"
BERLIN = ZoneInfo("Europe/Berlin")
_BLOCK = re.compile(r"@@(CALENDAR|BASE64)( CALENDAR)?\n(.*?)@@END\n", re.DOTALL)


def _fold(calendar: str) -> str:
    out = []
    for line in calendar.strip("\n").split("\n"):
        while len(line.encode()) > 75:
            out.append(line[:75])
            line = " " + line[75:]
        out.append(line)
    return "\r\n".join(out) + "\r\n"


def fill(name: str, **values: object) -> bytes:
    """The message of template name with its placeholders filled, CRLF line endings."""
    text = (DATA / f"{name}.eml.tmpl").read_text()
    values.setdefault("MESSAGE_ID", uuid.uuid4().hex)
    for key, value in values.items():
        text = text.replace("{" + key + "}", str(value))
    calendars: list[str] = []

    def block(match: re.Match[str]) -> str:
        kind, again, body = match.groups()
        calendar = calendars[0] if again else _fold(body)
        if kind == "CALENDAR":
            calendars.append(calendar)
            return calendar.replace("\r\n", "\n")
        return base64.encodebytes(calendar.encode()).decode()

    text = _BLOCK.sub(block, text)
    return text.replace("\r\n", "\n").replace("\n", "\r\n").encode()


def berlin(moment: datetime) -> str:
    return moment.astimezone(BERLIN).strftime("%Y%m%dT%H%M%S")


def outlook_accept(
    *, uid: str, sequence: int, attendee: str, name: str, to: str, start: datetime,
    end: datetime, summary: str = "Planning", dtstamp: str = "20300304T081512Z",
    partstat: str = "ACCEPTED",
) -> bytes:  # fmt: skip
    return fill(
        "outlook_reply_accepted", UID=uid, SEQUENCE=sequence, ATTENDEE=attendee,
        ATTENDEE_NAME=name, TO=to, START_LOCAL=berlin(start), END_LOCAL=berlin(end),
        SUMMARY=summary, DTSTAMP=dtstamp, PARTSTAT=partstat,
    )  # fmt: skip


def gmail_counter(
    *, uid: str, sequence: int, attendee: str, name: str, to: str, start: datetime,
    end: datetime, summary: str = "Planning", organizer_name: str = "Alice",
) -> bytes:  # fmt: skip
    return fill(
        "gmail_counter", UID=uid, SEQUENCE=sequence, ATTENDEE=attendee, ATTENDEE_NAME=name,
        TO=to, START_LOCAL=berlin(start), END_LOCAL=berlin(end), SUMMARY=summary,
        DTSTAMP="20300304T101011Z", ORGANIZER_NAME=organizer_name,
    )  # fmt: skip
