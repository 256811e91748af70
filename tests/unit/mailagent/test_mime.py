"""parse_message on fixtures shaped like real clients' mail, and split_plus."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from pathlib import Path

import pytest

from core.imip.errors import BadAddress
from core.imip.mail import Outcome, ParsedMail, split_plus
from mailagent.mime import MAX_TEXT, parse_message

MAIL = Path(__file__).parents[2] / "data" / "mail"
UID = "parley-7f3c2a10-booking-42@parley.example"


def parsed(name: str) -> ParsedMail:
    return parse_message((MAIL / name).read_bytes())


def test_outlook_reply_windows_zone_base64_inline() -> None:
    mail = parsed("outlook_reply_accepted.eml")
    assert mail.outcome is Outcome.ITIP
    assert mail.from_address == "host.person@contoso.example"
    assert mail.from_name == "Host Person"
    assert mail.to_addresses == ("organizer+b42@parley.example",)
    assert mail.in_reply_to == "invite-42-1@parley.example"
    assert mail.date == datetime(2026, 5, 5, 8, 15, 12, tzinfo=UTC)
    assert not mail.is_auto  # X-Auto-Response-Suppress is not an auto-reply marker
    itip = mail.itip
    assert itip is not None
    assert (itip.method, itip.uid, itip.sequence) == ("REPLY", UID, 1)
    assert itip.organizer is None
    assert itip.dtstart == datetime(2026, 5, 12, 8, 0, tzinfo=UTC)
    assert itip.dtstamp == datetime(2026, 5, 5, 8, 15, 12, tzinfo=UTC)
    assert [(a.address, a.partstat) for a in itip.attendees] == [
        ("host.person@contoso.example", "ACCEPTED")
    ]
    assert itip.comment == "See you then, looking forward.\n"
    assert itip.event.x_prop("X-MICROSOFT-CDO-OWNERAPPTID") == "2119312345"
    assert mail.text == "See you then, looking forward."


def test_outlook_counter_proposes_time_without_organizer() -> None:
    mail = parsed("outlook_counter.eml")
    itip = mail.itip
    assert mail.outcome is Outcome.ITIP and itip is not None
    assert itip.method == "COUNTER"
    assert itip.organizer is None
    # 15:00 Pacific Daylight Time is 22:00 UTC.
    assert itip.dtstart == datetime(2026, 5, 12, 22, 0, tzinfo=UTC)
    assert itip.dtend == datetime(2026, 5, 12, 22, 30, tzinfo=UTC)
    assert itip.attendees[0].partstat == "TENTATIVE"
    assert "3pm" in (itip.comment or "")
    assert mail.text.startswith("Would 3pm work instead?")  # iso-8859-1 QP with a =A0


def test_gmail_reply_prefers_inline_calendar_over_invite_ics() -> None:
    mail = parsed("gmail_reply_accepted.eml")
    assert mail.outcome is Outcome.ITIP
    kinds = [(p.content_type, p.method, p.attachment) for p in mail.calendar_parts]
    assert kinds == [("text/calendar", "REPLY", False), ("application/ics", None, True)]
    assert mail.calendar_parts[1].filename == "invite.ics"
    assert mail.delivered_to == ("organizer+b42@parley.example",)
    assert mail.reply_to == "guest.person@gmail.com"
    assert mail.itip is not None
    assert mail.itip.attendees[0].cn == "Guest Person"
    assert mail.itip.dtstart == datetime(2026, 5, 12, 8, 0, tzinfo=UTC)


def test_gmail_counter_carries_tentative_and_response_comment() -> None:
    itip = parsed("gmail_counter.eml").itip
    assert itip is not None
    assert itip.method == "COUNTER"
    attendee = itip.attendees[0]
    assert attendee.partstat == "TENTATIVE"
    assert attendee.response_comment == "Could we do 3pm instead? Mornings are hard, sorry."
    assert itip.dtstart == datetime(2026, 5, 12, 13, 0, tzinfo=UTC)


def test_apple_reply_method_only_in_file_and_encoded_headers() -> None:
    mail = parsed("apple_reply_declined.eml")
    assert mail.outcome is Outcome.ITIP
    assert mail.calendar_parts[0].method is None
    assert mail.subject == "Invitation declined: Intro call at Café Luna"
    assert (mail.from_name, mail.from_address) == ("Zoë Müller", "zoe@icloud.example")
    itip = mail.itip
    assert itip is not None
    assert (itip.method, itip.method_from_content_type) == ("REPLY", False)
    assert itip.attendees[0].partstat == "DECLINED"
    assert itip.attendees[0].cn == "Zoë Müller"
    assert itip.summary == "Intro call at Café Luna"


def test_thunderbird_reply_quoted_printable() -> None:
    mail = parsed("thunderbird_reply_accepted.eml")
    assert mail.itip is not None
    assert mail.itip.attendees[0].cn == "Jürgen Groß"
    assert mail.from_name == "Jürgen Groß"
    assert mail.text == "Jürgen Groß has accepted your event invitation."


def test_exchange_dsn_is_a_bounce_with_recipient_and_original_id() -> None:
    mail = parsed("exchange_dsn_bounce.eml")
    assert mail.outcome is Outcome.BOUNCE
    assert mail.is_bounce and mail.is_auto
    assert mail.bounced_recipients == ("nobody@contoso.example",)
    assert mail.bounced_message_id == "invite-42-1@parley.example"
    # The returned invitation is ours, not the sender's iTIP.
    assert mail.itip is None
    assert mail.has_forwarded_calendar


def test_postfix_bounce_reads_original_id_from_rfc822_headers() -> None:
    mail = parsed("postfix_bounce.eml")
    assert mail.outcome is Outcome.BOUNCE
    assert mail.from_address == "mailer-daemon@mx.parley.example"
    assert mail.bounced_recipients == ("guest@unreachable.example",)
    assert mail.bounced_message_id == "invite-42-2@parley.example"


def test_delay_notice_is_automated_but_not_a_bounce() -> None:
    mail = parsed("postfix_delay.eml")
    assert mail.outcome is Outcome.AUTO_REPLY
    assert not mail.is_bounce and mail.is_auto


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("out_of_office.eml", "auto-submitted: auto-replied"),
        ("out_of_office_subject_only.eml", "automatic-reply subject"),
    ],
)
def test_out_of_office(name: str, reason: str) -> None:
    mail = parsed(name)
    assert mail.outcome is Outcome.AUTO_REPLY
    assert mail.auto_reason == reason


def test_plain_reply_with_in_reply_to() -> None:
    mail = parsed("plain_reply_3pm.eml")
    assert mail.outcome is Outcome.PLAIN
    assert mail.itip is None and not mail.is_auto
    assert mail.in_reply_to == "invite-42-1@parley.example"
    assert mail.references == ("booking-42@parley.example", "invite-42-1@parley.example")
    assert mail.from_name == "Guest, Person"
    assert mail.text.startswith("Hi, can we do 3pm? The morning doesn’t work")


def test_missing_message_id_falls_back_to_content_hash() -> None:
    raw = (MAIL / "no_message_id.eml").read_bytes()
    mail = parse_message(raw)
    assert mail.message_id is None
    assert mail.content_hash == hashlib.sha256(raw).hexdigest()
    assert mail.dedup_key == "sha256:" + mail.content_hash
    assert parsed("plain_reply_3pm.eml").dedup_key == "CAJ9x1y2z3=plain-reply@mail.gmail.com"


def test_forwarded_invitation_is_not_the_senders_itip() -> None:
    mail = parsed("forwarded_invite.eml")
    assert mail.outcome is Outcome.PLAIN
    assert mail.itip is None
    assert mail.has_forwarded_calendar
    assert mail.calendar_parts[0].forwarded
    assert mail.text == "Forwarding this to my assistant, see below."


def test_wrong_charsets_fall_back() -> None:
    mail = parsed("wrong_charset.eml")
    assert mail.subject == "café ok"
    assert mail.text.startswith("Café au lait")
    assert mail.date is None


@pytest.mark.parametrize(
    ("name", "outcome", "error"),
    [
        ("bad_base64_calendar.eml", Outcome.BAD_CALENDAR, "BadStructure"),
        ("truncated_calendar.eml", Outcome.BAD_CALENDAR, "BadStructure"),
        ("binary_garbage.eml", Outcome.UNPARSEABLE, "no mail headers"),
        ("no_headers.eml", Outcome.UNPARSEABLE, "no mail headers"),
    ],
)
def test_malformed(name: str, outcome: Outcome, error: str) -> None:
    mail = parsed(name)
    assert mail.outcome is outcome
    assert error in (mail.error or "")
    assert mail.unparseable is (outcome is Outcome.UNPARSEABLE)


def test_missing_closing_boundary_still_reads_the_calendar() -> None:
    mail = parsed("missing_boundary.eml")
    assert mail.itip is not None and mail.itip.uid == "no-close-1"


def test_huge_header_is_clipped_and_first_subject_kept() -> None:
    mail = parsed("huge_header.eml")
    assert mail.subject == "big"
    assert mail.text == "body"


def test_html_only_body_is_stripped_and_long_text_truncated() -> None:
    html = (
        "From: a@example.net\r\nSubject: html\r\nContent-Type: text/html; charset=utf-8\r\n\r\n"
        "<html><head><style>p {color: red}</style></head><body><p>Hello&nbsp;<b>there</b></p>"
        "<!-- hidden --><script>alert(1)</script><p>Line two &amp; more</p></body></html>"
    )
    assert parse_message(html.encode()).text == "Hello there\nLine two & more"
    long = b"From: a@example.net\r\nSubject: long\r\n\r\n" + b"x" * (MAX_TEXT + 10)
    mail = parse_message(long)
    assert len(mail.text) == MAX_TEXT and mail.text_truncated


def test_raw_utf8_headers_and_adjacent_encoded_words() -> None:
    raw = (
        "From: Zoë <zoe@example.net>\r\n"
        "Subject: =?utf-8?B?w6k=?= =?utf-8?B?w6k=?= and =?utf-8?q?split_=C3?= =?utf-8?q?=A9?=\r\n"
        "\r\nhi\r\n"
    ).encode()
    mail = parse_message(raw)
    assert mail.from_name == "Zoë"
    assert mail.subject == "éé and split é"


@pytest.mark.parametrize(
    ("headers", "auto"),
    [
        ("Precedence: bulk", True),
        ("Precedence: list", True),
        ("X-Autoreply: yes", True),
        ("X-Autorespond: Out of office", True),
        ("Auto-Submitted: no", False),
        ("Auto-Submitted: auto-generated", True),
        ("Return-Path: <>", True),
    ],
)
def test_auto_headers(headers: str, auto: bool) -> None:
    raw = f"From: a@example.net\r\nSubject: Re: hi\r\n{headers}\r\n\r\nbody\r\n".encode()
    assert parse_message(raw).is_auto is auto


def test_calendar_attachment_as_octet_stream_with_ics_name() -> None:
    raw = (
        b"From: a@example.net\r\nSubject: x\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n"
        b"--b\r\nContent-Type: application/octet-stream; name=reply.ics\r\n"
        b"Content-Disposition: attachment; filename=reply.ics\r\n\r\n"
        b"BEGIN:VCALENDAR\r\nMETHOD:REPLY\r\nBEGIN:VEVENT\r\nUID:oct\r\nEND:VEVENT\r\n"
        b"END:VCALENDAR\r\n--b--\r\n"
    )
    mail = parse_message(raw)
    assert mail.itip is not None and mail.itip.uid == "oct"


def test_calendar_without_method_is_a_bad_calendar() -> None:
    raw = (
        b"From: a@example.net\r\nSubject: x\r\nContent-Type: text/calendar\r\n\r\n"
        b"BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nUID:nm\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
    )
    mail = parse_message(raw)
    assert mail.outcome is Outcome.BAD_CALENDAR
    assert "NoMethod" in (mail.error or "")


@pytest.mark.parametrize(
    ("address", "expected"),
    [
        ("Organizer+B42@Parley.Example", ("organizer", "b42", "parley.example")),
        ("organizer@parley.example", ("organizer", None, "parley.example")),
        ("<mailto:a+b+c@x.example>", ("a", "b+c", "x.example")),
        ("a+@x.example", ("a", None, "x.example")),
    ],
)
def test_split_plus(address: str, expected: tuple[str, str | None, str]) -> None:
    assert split_plus(address) == expected


@pytest.mark.parametrize("address", ["", "no-at-sign", "@x.example", "a@", "+tag@x.example"])
def test_split_plus_rejects_non_addresses(address: str) -> None:
    with pytest.raises(BadAddress):
        split_plus(address)
