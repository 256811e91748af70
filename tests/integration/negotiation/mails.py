# ruff: noqa: E501  (MIME shapes read best one header per line)
"""Replies and counters shaped the way real calendar clients send them.

Outlook: multipart/alternative, text/calendar inline in base64 with method on the
Content-Type, Windows zone names, no ORGANIZER in a COUNTER. Gmail: the calendar inline
plus an application/ics invite.ics attachment; "Propose a new time" is a COUNTER with
PARTSTAT=TENTATIVE and the note in X-RESPONSE-COMMENT. Apple: METHOD only inside the file,
base64. Thunderbird: quoted-printable text/calendar, an Olson TZID with its VTIMEZONE, and
for "Propose new time" the whole event again with the new DTSTART/DTEND and a COMMENT.
iOS through Exchange (ActiveSync): Exchange writes the COUNTER itself, "New Time Proposed:"
subject, text and HTML beside a base64 text/calendar, times in UTC and the attendee's
PARTSTAT=NEEDS-ACTION, the note only in the text parts.
"""

from __future__ import annotations

import base64
import quopri
import uuid

CRLF = "\r\n"


def _vcal(method: str, lines: list[str], *, prodid: str, vtimezone: str = "") -> str:
    body = ["BEGIN:VCALENDAR", f"PRODID:{prodid}", "VERSION:2.0"]
    if method:
        body.append(f"METHOD:{method}")
    if vtimezone:
        body.append(vtimezone)
    body += ["BEGIN:VEVENT", *lines, "END:VEVENT", "END:VCALENDAR"]
    return CRLF.join(body) + CRLF


WINDOWS_BERLIN = CRLF.join(
    [
        "BEGIN:VTIMEZONE",
        "TZID:W. Europe Standard Time",
        "BEGIN:STANDARD",
        "DTSTART:16010101T030000",
        "TZOFFSETFROM:+0200",
        "TZOFFSETTO:+0100",
        "RRULE:FREQ=YEARLY;INTERVAL=1;BYDAY=-1SU;BYMONTH=10",
        "END:STANDARD",
        "BEGIN:DAYLIGHT",
        "DTSTART:16010101T020000",
        "TZOFFSETFROM:+0100",
        "TZOFFSETTO:+0200",
        "RRULE:FREQ=YEARLY;INTERVAL=1;BYDAY=-1SU;BYMONTH=3",
        "END:DAYLIGHT",
        "END:VTIMEZONE",
    ]
)


def _headers(sender: str, to: str, subject: str, extra: str = "") -> str:
    return (
        f"From: {sender}{CRLF}To: {to}{CRLF}Subject: {subject}{CRLF}"
        f"Date: Mon, 01 Mar 2027 09:00:00 +0000{CRLF}"
        f"Message-ID: <{uuid.uuid4().hex}@client.example>{CRLF}MIME-Version: 1.0{CRLF}{extra}"
    )


def outlook(
    *,
    method: str,
    uid: str,
    sequence: int,
    attendee: str,
    to: str,
    partstat: str = "ACCEPTED",
    start_local: str = "",
    end_local: str = "",
    comment: str = "",
) -> bytes:
    lines = [f"ATTENDEE;PARTSTAT={partstat};CN=Guest:mailto:{attendee}"]
    if comment:
        lines.append(f"COMMENT;LANGUAGE=en-US:{comment}")
    if method == "COUNTER":
        lines += [
            f"DTSTART;TZID=W. Europe Standard Time:{start_local}",
            f"DTEND;TZID=W. Europe Standard Time:{end_local}",
        ]
    else:
        lines.append(f"ORGANIZER:mailto:{to}")
    lines += [f"UID:{uid}", f"SEQUENCE:{sequence}", "DTSTAMP:20270301T090000Z"]
    ics = _vcal(method, lines, prodid="Microsoft Exchange Server 2010", vtimezone=WINDOWS_BERLIN)
    b64 = base64.encodebytes(ics.encode()).decode().replace("\n", CRLF)
    boundary = "_000_outlook_boundary_"
    return (
        _headers(
            attendee,
            to,
            "Accepted: Session",
            f'Content-Type: multipart/alternative; boundary="{boundary}"{CRLF}',
        )
        + CRLF
        + f"--{boundary}{CRLF}Content-Type: text/plain; charset=us-ascii{CRLF}{CRLF}Sure.{CRLF}"
        + f"--{boundary}{CRLF}Content-Type: text/calendar; charset=utf-8; method={method}{CRLF}"
        + f"Content-Transfer-Encoding: base64{CRLF}{CRLF}{b64}{CRLF}--{boundary}--{CRLF}"
    ).encode()


def gmail(
    *,
    method: str,
    uid: str,
    sequence: int,
    attendee: str,
    to: str,
    partstat: str,
    start_utc: str = "",
    end_utc: str = "",
    note: str = "",
    dtstamp: str = "20270301T090000Z",
) -> bytes:
    comment = f";X-RESPONSE-COMMENT={note}" if note else ""
    lines = [
        f"ORGANIZER;CN=Scheduling:mailto:{to}",
        f"ATTENDEE;CUTYPE=INDIVIDUAL;ROLE=REQ-PARTICIPANT;PARTSTAT={partstat}{comment};CN={attendee}:mailto:{attendee}",
        f"UID:{uid}",
        f"SEQUENCE:{sequence}",
        f"DTSTAMP:{dtstamp}",
    ]
    if start_utc:
        lines += [f"DTSTART:{start_utc}", f"DTEND:{end_utc}"]
    ics = _vcal(method, lines, prodid="-//Google Inc//Google Calendar 70.9054//EN")
    b64 = base64.encodebytes(ics.encode()).decode().replace("\n", CRLF)
    outer, inner = "000000000000outer", "000000000000inner"
    return (
        _headers(
            attendee,
            to,
            "Invitation: Session",
            f'Content-Type: multipart/mixed; boundary="{outer}"{CRLF}',
        )
        + CRLF
        + f'--{outer}{CRLF}Content-Type: multipart/alternative; boundary="{inner}"{CRLF}{CRLF}'
        + f'--{inner}{CRLF}Content-Type: text/plain; charset="UTF-8"{CRLF}{CRLF}{note or "ok"}{CRLF}'
        + f'--{inner}{CRLF}Content-Type: text/calendar; charset="UTF-8"; method={method}{CRLF}'
        + f"Content-Transfer-Encoding: 7bit{CRLF}{CRLF}{ics}{CRLF}--{inner}--{CRLF}"
        + f'--{outer}{CRLF}Content-Type: application/ics; name="invite.ics"{CRLF}'
        + f'Content-Disposition: attachment; filename="invite.ics"{CRLF}'
        + f"Content-Transfer-Encoding: base64{CRLF}{CRLF}{b64}{CRLF}--{outer}--{CRLF}"
    ).encode()


def apple(
    *, uid: str, sequence: int, attendee: str, to: str, partstat: str, sender: str = ""
) -> bytes:
    lines = [
        f"ATTENDEE;CN=Guest;CUTYPE=INDIVIDUAL;EMAIL={attendee};PARTSTAT={partstat}:mailto:{attendee}",
        f"ORGANIZER:mailto:{to}",
        f"UID:{uid}",
        f"SEQUENCE:{sequence}",
        "DTSTAMP:20270301T090000Z",
    ]
    ics = _vcal("REPLY", lines, prodid="-//Apple Inc.//iPhone 17.0//EN")
    b64 = base64.encodebytes(ics.encode()).decode().replace("\n", CRLF)
    boundary = "Apple-Mail=_1"
    return (
        _headers(
            sender or attendee,
            to,
            "Invitation: Session",
            f'Content-Type: multipart/mixed; boundary="{boundary}"{CRLF}',
        )
        + CRLF
        + f'--{boundary}{CRLF}Content-Type: text/calendar; charset=utf-8; name="iCal-reply.ics"{CRLF}'
        + f"Content-Transfer-Encoding: base64{CRLF}{CRLF}{b64}{CRLF}--{boundary}--{CRLF}"
    ).encode()


MOZILLA_BERLIN = CRLF.join(
    [
        "BEGIN:VTIMEZONE",
        "TZID:Europe/Berlin",
        "X-LIC-LOCATION:Europe/Berlin",
        "BEGIN:DAYLIGHT",
        "TZOFFSETFROM:+0100",
        "TZOFFSETTO:+0200",
        "TZNAME:CEST",
        "DTSTART:19700329T020000",
        "RRULE:FREQ=YEARLY;BYMONTH=3;BYDAY=-1SU",
        "END:DAYLIGHT",
        "BEGIN:STANDARD",
        "TZOFFSETFROM:+0200",
        "TZOFFSETTO:+0100",
        "TZNAME:CET",
        "DTSTART:19701025T030000",
        "RRULE:FREQ=YEARLY;BYMONTH=10;BYDAY=-1SU",
        "END:STANDARD",
        "END:VTIMEZONE",
    ]
)


def thunderbird(
    *,
    method: str,
    uid: str,
    sequence: int,
    attendee: str,
    to: str,
    partstat: str = "",
    start_local: str = "",
    end_local: str = "",
    comment: str = "",
) -> bytes:
    lines = [
        f"ORGANIZER:mailto:{to}",
        f"UID:{uid}",
        f"SEQUENCE:{sequence}",
        "DTSTAMP:20270301T090000Z",
    ]
    vtimezone = ""
    if start_local:
        lines += [
            "CREATED:20270301T080000Z",
            "SUMMARY:Session",
            f"DTSTART;TZID=Europe/Berlin:{start_local}",
            f"DTEND;TZID=Europe/Berlin:{end_local}",
            "X-MOZ-SEND-INVITATIONS:TRUE",
        ]
        vtimezone = MOZILLA_BERLIN
    if comment:
        lines.append(f"COMMENT:{comment}")
    if partstat:
        lines.insert(1, f"ATTENDEE;PARTSTAT={partstat}:mailto:{attendee}")
    else:
        lines.insert(1, f"ATTENDEE:mailto:{attendee}")
    ics = _vcal(
        method,
        lines,
        prodid="-//Mozilla.org/NONSGML Mozilla Calendar V1.1//EN",
        vtimezone=vtimezone,
    )
    qp = quopri.encodestring(ics.encode()).decode()
    return (
        _headers(
            attendee,
            to,
            "Session",
            f"Content-Type: text/calendar; charset=UTF-8; method={method}{CRLF}Content-Transfer-Encoding: quoted-printable{CRLF}",
        )
        + CRLF
        + qp
    ).encode()


def ios_exchange_counter(
    *, uid: str, sequence: int, attendee: str, to: str, start_utc: str, end_utc: str, note: str
) -> bytes:
    lines = [
        f"ORGANIZER;CN=Scheduling:mailto:{to}",
        f'ATTENDEE;ROLE=REQ-PARTICIPANT;PARTSTAT=NEEDS-ACTION;RSVP=TRUE;CN="{attendee}":mailto:{attendee}',
        "SUMMARY;LANGUAGE=en-US:New Time Proposed: Session",
        f"DTSTART:{start_utc}",
        f"DTEND:{end_utc}",
        f"UID:{uid}",
        "CLASS:PUBLIC",
        "PRIORITY:5",
        "DTSTAMP:20270301T090000Z",
        "TRANSP:OPAQUE",
        "STATUS:CONFIRMED",
        f"SEQUENCE:{sequence}",
        f"X-MICROSOFT-CDO-APPT-SEQUENCE:{sequence}",
        "X-MICROSOFT-CDO-OWNERAPPTID:-1",
        "X-MICROSOFT-CDO-BUSYSTATUS:TENTATIVE",
        "X-MICROSOFT-CDO-INTENDEDSTATUS:BUSY",
        "X-MICROSOFT-DISALLOW-COUNTER:FALSE",
    ]
    ics = _vcal("COUNTER", lines, prodid="Microsoft Exchange Server 2010")
    b64 = base64.encodebytes(ics.encode()).decode().replace("\n", CRLF)
    boundary = "_000_DB9PR04MB8432exchange_"
    html = f"<html><body><p>{note}</p><p>Sent from my iPhone</p></body></html>"
    return (
        _headers(
            attendee,
            to,
            "New Time Proposed: Session",
            f"Thread-Topic: Session{CRLF}X-MS-Has-Attach: {CRLF}X-MS-TNEF-Correlator: {CRLF}"
            f'Content-Type: multipart/alternative; boundary="{boundary}"{CRLF}',
        )
        + CRLF
        + f'--{boundary}{CRLF}Content-Type: text/plain; charset="us-ascii"{CRLF}{CRLF}{note}{CRLF}Sent from my iPhone{CRLF}'
        + f'--{boundary}{CRLF}Content-Type: text/html; charset="us-ascii"{CRLF}{CRLF}{html}{CRLF}'
        + f'--{boundary}{CRLF}Content-Type: text/calendar; charset="utf-8"; method=COUNTER{CRLF}'
        + f"Content-Transfer-Encoding: base64{CRLF}{CRLF}{b64}{CRLF}--{boundary}--{CRLF}"
    ).encode()


def plain(*, sender: str, to: str, in_reply_to: str, text: str = "Can we do 3pm instead?") -> bytes:
    return (
        _headers(
            sender,
            to,
            "Re: Session — Invitation",
            f"In-Reply-To: {in_reply_to}{CRLF}References: {in_reply_to}{CRLF}Content-Type: text/plain; charset=utf-8{CRLF}",
        )
        + CRLF
        + text
        + CRLF
    ).encode()
