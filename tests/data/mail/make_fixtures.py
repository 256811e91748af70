# ruff: noqa: E501  (fixture lines copy real clients, long lines included)
"""Write the .eml fixtures in this folder (run by hand: python tests/data/mail/make_fixtures.py).

Each message copies the MIME shape a real client sends (boundaries, encodings, header set),
with made-up people, so the encodings stay correct when a calendar body is edited.
"""

from __future__ import annotations

import base64
import quopri
from pathlib import Path

HERE = Path(__file__).parent

VTZ_WEUROPE = """BEGIN:VTIMEZONE
TZID:W. Europe Standard Time
BEGIN:STANDARD
DTSTART:16010101T030000
TZOFFSETFROM:+0200
TZOFFSETTO:+0100
RRULE:FREQ=YEARLY;INTERVAL=1;BYDAY=-1SU;BYMONTH=10
END:STANDARD
BEGIN:DAYLIGHT
DTSTART:16010101T020000
TZOFFSETFROM:+0100
TZOFFSETTO:+0200
RRULE:FREQ=YEARLY;INTERVAL=1;BYDAY=-1SU;BYMONTH=3
END:DAYLIGHT
END:VTIMEZONE"""

VTZ_PACIFIC = """BEGIN:VTIMEZONE
TZID:Pacific Standard Time
BEGIN:STANDARD
DTSTART:16010101T020000
TZOFFSETFROM:-0700
TZOFFSETTO:-0800
RRULE:FREQ=YEARLY;INTERVAL=1;BYDAY=1SU;BYMONTH=11
END:STANDARD
BEGIN:DAYLIGHT
DTSTART:16010101T020000
TZOFFSETFROM:-0800
TZOFFSETTO:-0700
RRULE:FREQ=YEARLY;INTERVAL=1;BYDAY=2SU;BYMONTH=3
END:DAYLIGHT
END:VTIMEZONE"""

VTZ_BERLIN = """BEGIN:VTIMEZONE
TZID:Europe/Berlin
X-LIC-LOCATION:Europe/Berlin
BEGIN:DAYLIGHT
TZOFFSETFROM:+0100
TZOFFSETTO:+0200
TZNAME:CEST
DTSTART:19700329T020000
RRULE:FREQ=YEARLY;BYMONTH=3;BYDAY=-1SU
END:DAYLIGHT
BEGIN:STANDARD
TZOFFSETFROM:+0200
TZOFFSETTO:+0100
TZNAME:CET
DTSTART:19701025T030000
RRULE:FREQ=YEARLY;BYMONTH=10;BYDAY=-1SU
END:STANDARD
END:VTIMEZONE"""

UID = "parley-7f3c2a10-booking-42@parley.example"


def fold(ics: str) -> str:
    """Fold content lines at 75 octets as RFC 5545 asks."""
    out: list[str] = []
    for line in ics.strip("\n").split("\n"):
        data = line.encode()
        while len(data) > 75:
            cut = 75
            while (data[cut] & 0xC0) == 0x80:
                cut -= 1
            out.append(data[:cut].decode())
            data = b" " + data[cut:]
        out.append(data.decode())
    return "\r\n".join(out) + "\r\n"


def b64(data: bytes, width: int = 76) -> str:
    text = base64.b64encode(data).decode()
    return "\n".join(text[i : i + width] for i in range(0, len(text), width))


def write(name: str, text: str, crlf: bool = False, encoding: str = "utf-8") -> None:
    text = text.lstrip("\n")
    if crlf:
        text = text.replace("\r\n", "\n").replace("\n", "\r\n")
    (HERE / name).write_bytes(text.encode(encoding))


def outlook_reply() -> None:
    ics = fold(f"""BEGIN:VCALENDAR
METHOD:REPLY
PRODID:Microsoft Exchange Server 2010
VERSION:2.0
{VTZ_WEUROPE}
BEGIN:VEVENT
ATTENDEE;PARTSTAT=ACCEPTED;CN=Host Person:mailto:Host.Person@Contoso.example
COMMENT;LANGUAGE=en-US:See you then\\, looking forward.\\n
SUMMARY;LANGUAGE=en-US:Accepted: Intro call
DTSTART;TZID=W. Europe Standard Time:20260512T100000
DTEND;TZID=W. Europe Standard Time:20260512T103000
UID:{UID}
CLASS:PUBLIC
PRIORITY:5
DTSTAMP:20260505T081512Z
TRANSP:OPAQUE
STATUS:CONFIRMED
SEQUENCE:1
LOCATION;LANGUAGE=en-US:
X-MICROSOFT-CDO-APPT-SEQUENCE:1
X-MICROSOFT-CDO-OWNERAPPTID:2119312345
X-MICROSOFT-CDO-BUSYSTATUS:BUSY
X-MICROSOFT-CDO-INTENDEDSTATUS:BUSY
X-MICROSOFT-CDO-ALLDAYEVENT:FALSE
X-MICROSOFT-CDO-IMPORTANCE:1
X-MICROSOFT-CDO-INSTTYPE:0
X-MICROSOFT-DONOTFORWARDMEETING:FALSE
X-MICROSOFT-DISALLOW-COUNTER:FALSE
END:VEVENT
END:VCALENDAR""")
    write(
        "outlook_reply_accepted.eml",
        f"""
Received: from AM9PR07MB7140.eurprd07.prod.outlook.com ([fe80::1]) by
 AM9PR07MB7140.eurprd07.prod.outlook.com ([fe80::1%5]) with mapi id 15.20.7362.019;
 Tue, 5 May 2026 08:15:13 +0000
From: Host Person <Host.Person@Contoso.example>
To: "organizer+b42@parley.example" <organizer+b42@parley.example>
Subject: Accepted: Intro call
Thread-Topic: Intro call
Thread-Index: AQHanVx0cYQmBf5mVUuN0Y3bH8Rnqw==
Date: Tue, 5 May 2026 08:15:12 +0000
Message-ID: <AM9PR07MB71409C7F0D3E2B1A5F6E7C2AB1234@AM9PR07MB7140.eurprd07.prod.outlook.com>
In-Reply-To: <invite-42-1@parley.example>
References: <invite-42-1@parley.example>
Accept-Language: en-US
Content-Language: en-US
X-MS-Has-Attach:
X-MS-TNEF-Correlator:
X-Auto-Response-Suppress: All
Content-Type: multipart/alternative;
	boundary="_000_AM9PR07MB71409C7F0D3E2B1A5F6E7C2AB1234AM9PR07MB7140eurp_"
MIME-Version: 1.0

--_000_AM9PR07MB71409C7F0D3E2B1A5F6E7C2AB1234AM9PR07MB7140eurp_
Content-Type: text/plain; charset="us-ascii"
Content-Transfer-Encoding: quoted-printable

See you then, looking forward.

--_000_AM9PR07MB71409C7F0D3E2B1A5F6E7C2AB1234AM9PR07MB7140eurp_
Content-Type: text/html; charset="us-ascii"
Content-Transfer-Encoding: quoted-printable

<html><head><meta http-equiv=3D"Content-Type" content=3D"text/html; charset=
=3Dus-ascii"></head><body><div>See you then, looking forward.</div></body></h=
tml>

--_000_AM9PR07MB71409C7F0D3E2B1A5F6E7C2AB1234AM9PR07MB7140eurp_
Content-Type: text/calendar; charset="utf-8"; method=REPLY
Content-Transfer-Encoding: base64

{b64(ics.encode())}

--_000_AM9PR07MB71409C7F0D3E2B1A5F6E7C2AB1234AM9PR07MB7140eurp_--
""",
        crlf=True,
    )


def outlook_counter() -> None:
    ics = fold(f"""BEGIN:VCALENDAR
METHOD:COUNTER
PRODID:Microsoft Exchange Server 2010
VERSION:2.0
{VTZ_PACIFIC}
BEGIN:VEVENT
ATTENDEE;PARTSTAT=TENTATIVE;CN=Guest Example:mailto:guest@fabrikam.example
COMMENT;LANGUAGE=en-US:Would 3pm work instead? I have a clash in the morning.\\n
SUMMARY;LANGUAGE=en-US:New Time Proposed: Intro call
DTSTART;TZID=Pacific Standard Time:20260512T150000
DTEND;TZID=Pacific Standard Time:20260512T153000
UID:{UID}
CLASS:PUBLIC
PRIORITY:5
DTSTAMP:20260505T090000Z
TRANSP:OPAQUE
STATUS:CONFIRMED
SEQUENCE:1
LOCATION;LANGUAGE=en-US:
X-MICROSOFT-CDO-APPT-SEQUENCE:1
X-MICROSOFT-CDO-BUSYSTATUS:TENTATIVE
X-MICROSOFT-CDO-INTENDEDSTATUS:BUSY
X-MICROSOFT-CDO-ALLDAYEVENT:FALSE
X-MS-OLK-PROPOSEDSTARTTIME:20260512T220000Z
END:VEVENT
END:VCALENDAR""")
    write(
        "outlook_counter.eml",
        f"""
From: Guest Example <guest@fabrikam.example>
To: "organizer+b42@parley.example" <organizer+b42@parley.example>
Subject: New Time Proposed: Intro call
Thread-Topic: Intro call
Date: Tue, 5 May 2026 09:00:02 +0000
Message-ID: <BY5PR11MB4018A1B2C3D4E5F6A7B8C9D0E1F2@BY5PR11MB4018.namprd11.prod.outlook.com>
Accept-Language: en-US
Content-Language: en-US
X-MS-Exchange-Organization-SCL: -1
Content-Type: multipart/alternative;
	boundary="_000_BY5PR11MB4018A1B2C3D4E5F6A7B8C9D0E1F2BY5PR11MB4018namp_"
MIME-Version: 1.0

--_000_BY5PR11MB4018A1B2C3D4E5F6A7B8C9D0E1F2BY5PR11MB4018namp_
Content-Type: text/plain; charset="iso-8859-1"
Content-Transfer-Encoding: quoted-printable

Would 3pm work instead? I have a clash in the morning.=A0

--_000_BY5PR11MB4018A1B2C3D4E5F6A7B8C9D0E1F2BY5PR11MB4018namp_
Content-Type: text/calendar; charset="utf-8"; method=COUNTER
Content-Transfer-Encoding: base64

{b64(ics.encode())}

--_000_BY5PR11MB4018A1B2C3D4E5F6A7B8C9D0E1F2BY5PR11MB4018namp_--
""",
        crlf=True,
    )


def gmail(name: str, method: str, subject: str, attendee: str, extra: str, body: str) -> None:
    ics = fold(f"""BEGIN:VCALENDAR
PRODID:-//Google Inc//Google Calendar 70.9054//EN
VERSION:2.0
CALSCALE:GREGORIAN
METHOD:{method}
{VTZ_BERLIN}
BEGIN:VEVENT
DTSTART;TZID=Europe/Berlin:20260512T{"150000" if method == "COUNTER" else "100000"}
DTEND;TZID=Europe/Berlin:20260512T{"153000" if method == "COUNTER" else "103000"}
DTSTAMP:20260505T101010Z
ORGANIZER;CN=Parley:mailto:organizer+b42@parley.example
UID:{UID}
{attendee}
{extra}CREATED:20260504T120000Z
LAST-MODIFIED:20260505T101010Z
LOCATION:
SEQUENCE:1
STATUS:CONFIRMED
SUMMARY:Intro call
TRANSP:OPAQUE
END:VEVENT
END:VCALENDAR""")
    write(
        name,
        f"""
Return-Path: <guest.person@gmail.com>
Delivered-To: organizer+b42@parley.example
Received: by mail-sor-f41.google.com with SMTP id a640c23a62f3a-a9a1b2c3d4so12345666b.1
        for <organizer+b42@parley.example>; Tue, 05 May 2026 03:10:11 -0700 (PDT)
MIME-Version: 1.0
Sender: Google Calendar <calendar-notification@google.com>
Reply-To: guest.person@gmail.com
Message-ID: <calendar-0a1b2c3d-{method.lower()}-4e5f@google.com>
Date: Tue, 05 May 2026 10:10:11 +0000
Subject: {subject}
From: Guest Person <guest.person@gmail.com>
To: organizer+b42@parley.example
Content-Type: multipart/mixed; boundary="000000000000c0ffee0605a1b2c3d4"

--000000000000c0ffee0605a1b2c3d4
Content-Type: multipart/alternative; boundary="000000000000c0ffee0405a1b2c3d4"

--000000000000c0ffee0405a1b2c3d4
Content-Type: text/plain; charset="UTF-8"; format=flowed; delsp=yes
Content-Transfer-Encoding: base64

{b64(body.encode())}
--000000000000c0ffee0405a1b2c3d4
Content-Type: text/html; charset="UTF-8"
Content-Transfer-Encoding: quoted-printable

<span itemscope=3D"" itemtype=3D"http://schema.org/InformAction"><p>{body}</p></span>
--000000000000c0ffee0405a1b2c3d4
Content-Type: text/calendar; charset="UTF-8"; method={method}
Content-Transfer-Encoding: 7bit

{ics}
--000000000000c0ffee0405a1b2c3d4--

--000000000000c0ffee0605a1b2c3d4
Content-Type: application/ics; name="invite.ics"
Content-Disposition: attachment; filename="invite.ics"
Content-Transfer-Encoding: base64

{b64(ics.encode())}
--000000000000c0ffee0605a1b2c3d4--
""",
    )


def gmail_pair() -> None:
    gmail(
        "gmail_reply_accepted.eml",
        "REPLY",
        "Accepted: Intro call @ Tue 12 May 2026 10am - 10:30am (CEST) "
        "(organizer+b42@parley.example)",
        "ATTENDEE;CUTYPE=INDIVIDUAL;ROLE=REQ-PARTICIPANT;PARTSTAT=ACCEPTED;CN=Guest Person;X-NUM-GUESTS=0:mailto:guest.person@gmail.com",
        "",
        "Guest Person has accepted this invitation.",
    )
    gmail(
        "gmail_counter.eml",
        "COUNTER",
        "New event time proposed: Intro call @ Tue 12 May 2026 10am - 10:30am (CEST)",
        "ATTENDEE;CUTYPE=INDIVIDUAL;ROLE=REQ-PARTICIPANT;PARTSTAT=TENTATIVE;CN=Guest Person;"
        'X-NUM-GUESTS=0;X-RESPONSE-COMMENT="Could we do 3pm instead? Mornings'
        ' are hard\\, sorry.":mailto:guest.person@gmail.com',
        "",
        "Guest Person has proposed a new time for this event: 3pm - 3:30pm.",
    )


def apple_reply() -> None:
    ics = fold(f"""BEGIN:VCALENDAR
VERSION:2.0
PRODID:-//Apple Inc.//iPhone OS 18.4//EN
METHOD:REPLY
CALSCALE:GREGORIAN
{VTZ_BERLIN}
BEGIN:VEVENT
ATTENDEE;CN="Zoë Müller";CUTYPE=INDIVIDUAL;EMAIL="zoe@icloud.example";PARTSTAT=DECLINED:mailto:zoe@icloud.example
DTEND;TZID=Europe/Berlin:20260512T103000
DTSTAMP:20260505T111500Z
DTSTART;TZID=Europe/Berlin:20260512T100000
ORGANIZER;CN=Parley;EMAIL=organizer+b42@parley.example:mailto:organizer+b42@parley.example
REQUEST-STATUS:2.0;Success
SEQUENCE:1
SUMMARY:Intro call at Café Luna
UID:{UID}
END:VEVENT
END:VCALENDAR""")
    write(
        "apple_reply_declined.eml",
        f"""
Content-Type: multipart/alternative;
	boundary="Apple-Mail=_5C1A3B2E-8F0D-4A6B-9E3C-7D2F1A0B9C8E"
Subject: =?utf-8?Q?Invitation_declined:_Intro_call_at_Caf=C3=A9?=
 =?utf-8?Q?_Luna?=
Mime-Version: 1.0 (1.0)
From: =?utf-8?Q?Zo=C3=AB_M=C3=BCller?= <Zoe@iCloud.example>
Date: Tue, 5 May 2026 13:15:00 +0200
Message-Id: <5C1A3B2E-8F0D-4A6B-9E3C-7D2F1A0B9C8E@icloud.example>
To: organizer+b42@parley.example
X-Mailer: iPhone Mail (22E240)

--Apple-Mail=_5C1A3B2E-8F0D-4A6B-9E3C-7D2F1A0B9C8E
Content-Transfer-Encoding: 7bit
Content-Type: text/plain;
	charset=us-ascii

Zoe has declined your invitation.

--Apple-Mail=_5C1A3B2E-8F0D-4A6B-9E3C-7D2F1A0B9C8E
Content-Transfer-Encoding: base64
Content-Type: text/calendar;
	charset=utf-8
Content-Disposition: inline;
	filename=iCal-20260505-111500.ics

{b64(ics.encode())}
--Apple-Mail=_5C1A3B2E-8F0D-4A6B-9E3C-7D2F1A0B9C8E--
""",
    )


def thunderbird_reply() -> None:
    ics = fold(f"""BEGIN:VCALENDAR
PRODID:-//Mozilla.org/NONSGML Mozilla Calendar V1.1//EN
VERSION:2.0
METHOD:REPLY
{VTZ_BERLIN}
BEGIN:VEVENT
CREATED:20260504T120000Z
LAST-MODIFIED:20260505T121000Z
DTSTAMP:20260505T121000Z
UID:{UID}
SUMMARY:Intro call
ORGANIZER;CN=Parley:mailto:organizer+b42@parley.example
ATTENDEE;RSVP=FALSE;PARTSTAT=ACCEPTED;ROLE=REQ-PARTICIPANT;CN=Jürgen Groß;EMAIL=juergen@posteo.example:mailto:juergen@posteo.example
REQUEST-STATUS:2.0;Success
DTSTART;TZID=Europe/Berlin:20260512T100000
DTEND;TZID=Europe/Berlin:20260512T103000
SEQUENCE:1
TRANSP:OPAQUE
END:VEVENT
END:VCALENDAR""")
    qp = quopri.encodestring(ics.encode()).decode()
    write(
        "thunderbird_reply_accepted.eml",
        f"""
Message-ID: <0b6f2c1e-4d3a-4b5c-9e8f-1a2b3c4d5e6f@posteo.example>
Date: Tue, 5 May 2026 14:10:00 +0200
MIME-Version: 1.0
User-Agent: Mozilla Thunderbird
From: =?UTF-8?Q?J=C3=BCrgen_Gro=C3=9F?= <juergen@posteo.example>
To: organizer+b42@parley.example
Subject: Accepted: Intro call
Content-Type: multipart/mixed; boundary="------------y0N2b4c6d8e0f1a3b5c7d9e1"

This is a multi-part message in MIME format.
--------------y0N2b4c6d8e0f1a3b5c7d9e1
Content-Type: multipart/alternative;
 boundary="------------a1b2c3d4e5f6a7b8c9d0e1f2"

--------------a1b2c3d4e5f6a7b8c9d0e1f2
Content-Type: text/plain; charset=UTF-8; format=flowed
Content-Transfer-Encoding: 8bit

Jürgen Groß has accepted your event invitation.

--------------a1b2c3d4e5f6a7b8c9d0e1f2
Content-Type: text/calendar; charset=UTF-8; method=REPLY
Content-Transfer-Encoding: quoted-printable

{qp}
--------------a1b2c3d4e5f6a7b8c9d0e1f2--

--------------y0N2b4c6d8e0f1a3b5c7d9e1
Content-Type: application/ics; name="invite.ics"
Content-Disposition: attachment; filename="invite.ics"
Content-Transfer-Encoding: base64

{b64(ics.encode(), 72)}

--------------y0N2b4c6d8e0f1a3b5c7d9e1--
""",
    )


def original_invite() -> str:
    ics = fold(f"""BEGIN:VCALENDAR
PRODID:-//Parley//Parley 0.1//EN
VERSION:2.0
METHOD:REQUEST
BEGIN:VEVENT
UID:{UID}
SEQUENCE:1
DTSTAMP:20260505T080000Z
DTSTART:20260512T080000Z
DTEND:20260512T083000Z
SUMMARY:Intro call
ORGANIZER;CN=Parley:mailto:organizer+b42@parley.example
ATTENDEE;CN=Nobody;PARTSTAT=NEEDS-ACTION;RSVP=TRUE:mailto:nobody@contoso.example
END:VEVENT
END:VCALENDAR""")
    return f"""From: Parley <organizer+b42@parley.example>
To: nobody@contoso.example
Subject: Invitation: Intro call
Date: Tue, 5 May 2026 08:00:00 +0000
Message-ID: <invite-42-1@parley.example>
MIME-Version: 1.0
Content-Type: text/calendar; charset="utf-8"; method=REQUEST
Content-Transfer-Encoding: 7bit

{ics}"""


def exchange_dsn() -> None:
    write(
        "exchange_dsn_bounce.eml",
        f"""
From: Microsoft Outlook <postmaster@contoso.example>
To: <organizer+b42@parley.example>
Date: Tue, 5 May 2026 08:00:05 +0000
Content-Type: multipart/report; report-type=delivery-status;
	boundary="94eb1fae-6e23-4b2a-a7d4-8e5d0d4c9f01"
X-MS-Exchange-Message-Is-Ndr:
Content-Language: en-US
Message-ID: <5d8f3a1b-2c4e-4f6a-8b9c-0d1e2f3a4b5c@contoso.example>
In-Reply-To: <invite-42-1@parley.example>
References: <invite-42-1@parley.example>
Subject: Undeliverable: Invitation: Intro call
Auto-Submitted: auto-replied

--94eb1fae-6e23-4b2a-a7d4-8e5d0d4c9f01
Content-Type: multipart/alternative; differences=Content-Type;
	boundary="c2b7a8d9-1e3f-4a5b-8c6d-7e8f9a0b1c2d"

--c2b7a8d9-1e3f-4a5b-8c6d-7e8f9a0b1c2d
Content-Type: text/plain; charset="us-ascii"
Content-Transfer-Encoding: quoted-printable

Your message to nobody@contoso.example couldn't be delivered.
nobody wasn't found at contoso.example.

--c2b7a8d9-1e3f-4a5b-8c6d-7e8f9a0b1c2d
Content-Type: text/html; charset="us-ascii"
Content-Transfer-Encoding: quoted-printable

<html><body><p>Your message to nobody@contoso.example couldn't be delivered.</p></body></html>

--c2b7a8d9-1e3f-4a5b-8c6d-7e8f9a0b1c2d--

--94eb1fae-6e23-4b2a-a7d4-8e5d0d4c9f01
Content-Type: message/delivery-status

Reporting-MTA: dns;AM9PR07MB7140.eurprd07.prod.outlook.com
Received-From-MTA: dns;mail.parley.example
Arrival-Date: Tue, 5 May 2026 08:00:04 +0000

Final-Recipient: rfc822;nobody@contoso.example
Action: failed
Status: 5.1.10
Diagnostic-Code: smtp;550 5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient not found by SMTP address lookup

--94eb1fae-6e23-4b2a-a7d4-8e5d0d4c9f01
Content-Type: message/rfc822

{original_invite()}
--94eb1fae-6e23-4b2a-a7d4-8e5d0d4c9f01--
""",
        crlf=True,
    )


def postfix_bounce(name: str, action: str, subject: str) -> None:
    write(
        name,
        f"""
Return-Path: <>
Delivered-To: organizer+b42@parley.example
Date: Tue,  5 May 2026 10:00:00 +0200 (CEST)
From: MAILER-DAEMON@mx.parley.example (Mail Delivery System)
Subject: {subject}
To: organizer+b42@parley.example
Auto-Submitted: auto-replied
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status;
	boundary="4A1B2C3D4E.1778000000/mx.parley.example"
Message-Id: <20260505080000.0A1B2C3D4E@mx.parley.example>

This is a MIME-encapsulated message.

--4A1B2C3D4E.1778000000/mx.parley.example
Content-Description: Notification
Content-Type: text/plain; charset=us-ascii

This is the mail system at host mx.parley.example.

<guest@unreachable.example>: host mx.unreachable.example[192.0.2.1] said: 450
    4.2.0 mailbox temporarily unavailable

--4A1B2C3D4E.1778000000/mx.parley.example
Content-Description: Delivery report
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.parley.example
X-Postfix-Queue-ID: 4A1B2C3D4E
Arrival-Date: Tue,  5 May 2026 09:00:00 +0200 (CEST)

Final-Recipient: rfc822; guest@unreachable.example
Original-Recipient: rfc822;guest@unreachable.example
Action: {action}
Status: 4.2.0
Remote-MTA: dns; mx.unreachable.example

--4A1B2C3D4E.1778000000/mx.parley.example
Content-Description: Undelivered Message Headers
Content-Type: text/rfc822-headers

From: Parley <organizer+b42@parley.example>
To: guest@unreachable.example
Subject: Invitation: Intro call
Message-ID: <invite-42-2@parley.example>
Date: Tue, 5 May 2026 07:00:00 +0000

--4A1B2C3D4E.1778000000/mx.parley.example--
""",
    )


def simple(
    name: str,
    headers: str,
    body: str,
    *,
    charset: str = "utf-8",
    cte: str = "8bit",
    encoding: str = "utf-8",
) -> None:
    write(
        name,
        f"""{headers.strip()}
MIME-Version: 1.0
Content-Type: text/plain; charset="{charset}"
Content-Transfer-Encoding: {cte}

{body}""",
        encoding=encoding,
    )


def human_mail() -> None:
    simple(
        "out_of_office.eml",
        """
From: Host Person <host.person@contoso.example>
To: organizer+b42@parley.example
Subject: Automatic reply: Invitation: Intro call
Date: Tue, 5 May 2026 08:00:09 +0000
Message-ID: <ooo-1@contoso.example>
In-Reply-To: <invite-42-1@parley.example>
Auto-Submitted: auto-replied
X-Auto-Response-Suppress: All
X-MS-Exchange-Inbox-Rules-Loop: host.person@contoso.example""",
        "I am out of the office until 11 May with limited access to email.\n",
    )
    simple(
        "out_of_office_subject_only.eml",
        """
From: Karl <karl@example.de>
To: organizer+b42@parley.example
Subject: =?iso-8859-1?Q?Abwesenheitsnotiz:_Einladung_f=FCr_Intro_call?=
Date: Tue, 5 May 2026 10:00:00 +0200
Message-ID: <ooo-2@example.de>""",
        "Ich bin bis 11. Mai nicht im Büro.\n",
        charset="iso-8859-1",
        encoding="latin-1",
    )
    simple(
        "plain_reply_3pm.eml",
        """
From: "Guest, Person" <guest.person@gmail.com>
To: Parley <organizer+b42@parley.example>
Subject: Re: Invitation: Intro call @ Tue 12 May 2026 10am
Date: Tue, 5 May 2026 12:01:00 +0200
Message-ID: <CAJ9x1y2z3=plain-reply@mail.gmail.com>
In-Reply-To: <invite-42-1@parley.example>
References: <booking-42@parley.example>
 <invite-42-1@parley.example>""",
        "Hi, can we do 3pm? The morning doesn=E2=80=99t work for me.\n\nThanks!\n\n"
        "On Tue, 5 May 2026 at 10:00, Parley <organizer+b42@parley.example> wrote:\n"
        "> You are invited to Intro call.\n",
        cte="quoted-printable",
    )
    simple(
        "no_message_id.eml",
        """
From: someone@example.net
To: organizer@parley.example
Subject: hello
Date: Tue, 5 May 2026 12:00:00 +0000""",
        "Just saying hi, no Message-ID here.\n",
    )
    simple(
        "wrong_charset.eml",
        """
From: =?x-unknown-9?B?SGVsbG8=?= <odd@example.net>
To: organizer@parley.example
Subject: =?bogus-charset?Q?caf=E9?= ok
Date: not a date at all
Message-ID: <wrong-charset@example.net>""",
        "Caf\u00e9 au lait, declared as a charset that does not exist.\n",
        charset="x-does-not-exist",
        encoding="latin-1",
    )


def forwarded_invite() -> None:
    write(
        "forwarded_invite.eml",
        f"""
From: Host Person <host.person@contoso.example>
To: organizer+b42@parley.example
Subject: Fwd: Invitation: Intro call
Date: Tue, 5 May 2026 09:30:00 +0000
Message-ID: <fwd-1@contoso.example>
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="fwd-boundary"

--fwd-boundary
Content-Type: text/plain; charset=utf-8

Forwarding this to my assistant, see below.

--fwd-boundary
Content-Type: message/rfc822
Content-Disposition: attachment; filename="Invitation.eml"

{original_invite()}
--fwd-boundary--
""",
    )


def malformed() -> None:
    write(
        "bad_base64_calendar.eml",
        """
From: guest@example.net
To: organizer@parley.example
Subject: Accepted: broken
Message-ID: <bad-b64@example.net>
MIME-Version: 1.0
Content-Type: text/calendar; charset=utf-8; method=REPLY
Content-Transfer-Encoding: base64

QkVHSU46VkNBTEVOREFSCk1FVEhPRDpSRVBMWQpCRUdJTjpWRVZFTlQKVUlEOmJyb2tlbgpE!!!***
%%%% this is not base64 at all ####
""",
    )
    cut = original_invite()
    write("truncated_calendar.eml", cut[: cut.index("ORGANIZER")])
    write(
        "missing_boundary.eml",
        """
From: guest@example.net
To: organizer@parley.example
Subject: multipart without its closing boundary
Message-ID: <no-close@example.net>
MIME-Version: 1.0
Content-Type: multipart/alternative; boundary="never-closed"

--never-closed
Content-Type: text/plain

first part
--never-closed
Content-Type: text/calendar; method=REPLY

BEGIN:VCALENDAR
METHOD:REPLY
BEGIN:VEVENT
UID:no-close-1
ATTENDEE;PARTSTAT=ACCEPTED:mailto:guest@example.net
DTSTAMP:20260505T101010Z
END:VEVENT
END:VCALENDAR
""",
    )
    (HERE / "binary_garbage.eml").write_bytes(
        bytes((i * 131 + 7) % 256 for i in range(3000)) + b"\x00\xff\xfe" * 50
    )
    huge = "X-Huge: " + "a" * 200_000 + "\n"
    write(
        "huge_header.eml",
        "From: big@example.net\nTo: organizer@parley.example\nSubject: big\n"
        "Message-ID: <huge@example.net>\n" + huge + "Subject: second subject\n\nbody\n",
    )
    write("no_headers.eml", "\nThis has no header lines at all, just a body.\n")


if __name__ == "__main__":
    outlook_reply()
    outlook_counter()
    gmail_pair()
    apple_reply()
    thunderbird_reply()
    exchange_dsn()
    postfix_bounce("postfix_bounce.eml", "failed", "Undelivered Mail Returned to Sender")
    postfix_bounce("postfix_delay.eml", "delayed", "Delayed Mail (still being retried)")
    human_mail()
    forwarded_invite()
    malformed()
