"""Tests for core.imip.compose: MIME shape, headers, templates and the privacy property."""

from __future__ import annotations

import json
import random
import shutil
import subprocess
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from email import message_from_bytes
from email import policy as email_policy
from email.message import EmailMessage
from pathlib import Path

import icalendar
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from core.imip.compose import (
    ItipKind,
    Mailbox,
    compose_itip,
    compose_notice,
    format_when,
    message_id_for,
    to_bytes,
)
from core.imip.errors import ComposeError
from core.itip.build import (
    EventSnapshot,
    Recipient,
    build_cancel,
    build_declinecounter,
    build_request,
)

# The ical.js checker and its node_modules live with the mail agent's tests.
ICALJS = Path(__file__).resolve().parents[1] / "mailagent"
DTSTAMP = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)
DATE = datetime(2025, 3, 1, 9, 0, 5, tzinfo=UTC)
EVENT = EventSnapshot(
    uid="b-1@parley.example",
    sequence=0,
    start_utc=datetime(2025, 3, 4, 13, 0, tzinfo=UTC),
    end_utc=datetime(2025, 3, 4, 14, 0, tzinfo=UTC),
    summary="Practice Session",
    description="Bring your sheet music.",
    location="Studio 2",
    organizer_address="scheduling+t4g@example.org",
    organizer_name="Parley Scheduling",
)
HOST = Recipient("host@example.com", "Hannah Host")
GUEST = Recipient("guest@example.net", "Gary Guest")
BUILDERS = {
    ItipKind.INVITATION: lambda e, r: build_request(e, r, dtstamp=DTSTAMP, reschedule_url=URL),
    ItipKind.UPDATE: lambda e, r: build_request(e, r, dtstamp=DTSTAMP, reschedule_url=URL),
    ItipKind.CANCELLATION: lambda e, r: build_cancel(e, r, dtstamp=DTSTAMP),
    ItipKind.DECLINE_COUNTER: lambda e, r: build_declinecounter(e, r, dtstamp=DTSTAMP),
}
URL = "https://parley.example/reschedule?r=tok"
SUBJECTS = {
    ItipKind.INVITATION: "Practice Session — Tue, 4 Mar 2025, 13:00–14:00 UTC",
    ItipKind.UPDATE: "Updated: Practice Session — Tue, 4 Mar 2025, 13:00–14:00 UTC",
    ItipKind.CANCELLATION: "Cancelled: Practice Session — Tue, 4 Mar 2025, 13:00–14:00 UTC",
    ItipKind.DECLINE_COUNTER: "Practice Session — Proposed Time Declined",
}


def invite(
    kind: ItipKind = ItipKind.INVITATION,
    event: EventSnapshot = EVENT,
    recipient: Recipient = HOST,
    zone_name: str | None = None,
    reschedule_url: str | None = URL,
    locale: str | None = None,
) -> bytes:
    return compose_itip(
        kind=kind,
        ics=BUILDERS[kind](event, recipient),
        event=event,
        recipient=Mailbox(recipient.address, recipient.name),
        message_id=message_id_for(f"{event.uid}/{event.sequence}/{recipient.address}", "x.org"),
        date=DATE,
        zone_name=zone_name,
        reschedule_url=reschedule_url,
        locale=locale,
    )


def reparse(raw: bytes) -> EmailMessage:
    message = message_from_bytes(raw, policy=email_policy.default)
    assert isinstance(message, EmailMessage)
    return message


def decoded_texts(message: EmailMessage) -> list[str]:
    """Every leaf part's content after transfer decoding."""
    texts = []
    for part in message.walk():
        if not part.is_multipart():
            content = part.get_content()
            texts.append(content.decode("utf-8") if isinstance(content, bytes) else content)
    return texts


def shape(message: EmailMessage) -> list[str]:
    return [part.get_content_type() for part in message.walk()]


@pytest.mark.parametrize("kind", list(ItipKind))
def test_mime_tree_and_method_agree(kind: ItipKind) -> None:
    message = reparse(to_bytes(invite(kind)))
    assert shape(message) == [
        "multipart/mixed",
        "multipart/alternative",
        "text/plain",
        "text/html",
        "text/calendar",
        "text/calendar",
    ]
    calendars = [p for p in message.walk() if p.get_content_type() == "text/calendar"]
    inline, attached = calendars
    method = {
        ItipKind.INVITATION: "REQUEST",
        ItipKind.UPDATE: "REQUEST",
        ItipKind.CANCELLATION: "CANCEL",
        ItipKind.DECLINE_COUNTER: "DECLINECOUNTER",
    }[kind]
    for part in calendars:
        assert part.get_param("method") == method
        assert str(part.get_param("charset")).upper() == "UTF-8"
        ics = part.get_content()
        text = ics.decode() if isinstance(ics, bytes) else ics
        calendar = icalendar.Calendar.from_ical(text)
        assert str(calendar["METHOD"]) == method
    assert inline.get_content_disposition() is None
    assert attached.get_content_disposition() == "attachment"
    assert attached.get_filename() == "invite.ics"
    assert attached.get_param("name") == "invite.ics"


@pytest.mark.parametrize("kind", list(ItipKind))
def test_headers_address_one_person_from_the_organizer(kind: ItipKind) -> None:
    message = reparse(to_bytes(invite(kind)))
    assert message["To"] == "Hannah Host <host@example.com>"
    assert message["From"] == "Parley Scheduling <scheduling+t4g@example.org>"
    assert message["Cc"] is None and message["Bcc"] is None
    assert message["Subject"] == SUBJECTS[kind]
    assert message["Message-ID"] == message_id_for("b-1@parley.example/0/host@example.com", "x.org")
    assert message["Date"] == "Sat, 01 Mar 2025 09:00:05 +0000"
    assert message["MIME-Version"] == "1.0"
    assert message["Auto-Submitted"] is None


def test_message_id_is_stable_per_idempotency_key() -> None:
    assert message_id_for("k", "x.org") == message_id_for("k", "x.org")
    assert message_id_for("k", "x.org") != message_id_for("k2", "x.org")
    assert message_id_for("k", "x.org").startswith("<") and message_id_for("k", "x.org").endswith(
        "@x.org>"
    )


def test_bytes_are_crlf_seven_bit_and_short_lined() -> None:
    event = replace(EVENT, summary="Übung — 日本語", description="ä" * 500)
    raw = to_bytes(invite(event=event))
    assert all(byte < 128 for byte in raw)
    assert b"\n" not in raw.replace(b"\r\n", b"")
    assert max(len(line) for line in raw.split(b"\r\n")) <= 998


def test_non_ascii_calendar_survives_transfer_encoding_byte_for_byte() -> None:
    event = replace(EVENT, summary="Übung; mit, Zeichen 😀", description="zeile 1\nzeile 2")
    ics = build_request(event, HOST, dtstamp=DTSTAMP, reschedule_url=URL)
    message = reparse(to_bytes(invite(event=event)))
    attached = next(p for p in message.walk() if p.get_filename() == "invite.ics")
    assert attached.get_payload(decode=True) == ics.encode("utf-8")


def test_html_is_autoescaped_and_text_is_not() -> None:
    event = replace(EVENT, summary="<script>alert(1)</script> & co")
    message = reparse(to_bytes(invite(event=event)))
    text, html = decoded_texts(message)[:2]
    assert "<script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; co" in html
    assert "<script>alert(1)</script> & co" in text


def test_times_show_in_the_recipient_zone_or_utc() -> None:
    berlin = "\n".join(decoded_texts(reparse(to_bytes(invite(zone_name="Europe/Berlin")))))
    assert "Tue, 4 Mar 2025, 14:00–15:00 CET" in berlin
    unknown = "\n".join(decoded_texts(reparse(to_bytes(invite(zone_name="Mars/Olympus")))))
    assert "Tue, 4 Mar 2025, 13:00–14:00 UTC" in unknown
    plain = "\n".join(decoded_texts(reparse(to_bytes(invite()))))
    assert "13:00–14:00 UTC" in plain


def test_words_and_times_follow_the_recipients_language() -> None:
    german = "\n".join(
        decoded_texts(reparse(to_bytes(invite(zone_name="Europe/Berlin", locale="de"))))
    )
    assert "Di., 4. März 2025, 14:00–15:00 MEZ" in german
    assert "Sie sind eingeladen" in german and "You are invited" not in german


def test_format_when_spans_midnight_and_reads_windows_zone_names() -> None:
    start = datetime(2025, 3, 4, 22, 30, tzinfo=UTC)
    assert format_when(start, start + timedelta(hours=2), "Pacific Standard Time") == (
        "Tue, 4 Mar 2025, 14:30–16:30 PST"
    )
    assert format_when(start, start + timedelta(hours=2)) == (
        "Tue, 4 Mar 2025, 22:30 – Wed, 5 Mar 2025, 00:30 UTC"
    )
    assert format_when(start) == "Tue, 4 Mar 2025, 22:30 UTC"


def test_reschedule_link_is_in_text_html_and_calendar() -> None:
    texts = decoded_texts(reparse(to_bytes(invite())))
    assert all(URL in text for text in texts[:2])
    assert all("Request a new time: " in text for text in texts[2:])


def test_wrong_method_for_kind_is_refused() -> None:
    ics = build_cancel(EVENT, HOST, dtstamp=DTSTAMP)
    with pytest.raises(ComposeError, match="METHOD"):
        compose_itip(
            kind=ItipKind.INVITATION,
            ics=ics,
            event=EVENT,
            recipient=Mailbox(HOST.address),
            message_id="<a@x.org>",
            date=DATE,
        )


def test_a_calendar_for_the_other_party_is_refused() -> None:
    guest_ics = build_request(EVENT, GUEST, dtstamp=DTSTAMP, reschedule_url=URL)
    with pytest.raises(ComposeError, match="ATTENDEE"):
        compose_itip(
            kind=ItipKind.INVITATION,
            ics=guest_ics,
            event=EVENT,
            recipient=Mailbox(HOST.address),
            message_id="<a@x.org>",
            date=DATE,
        )


def test_two_calendars_in_one_message_are_refused() -> None:
    ics = build_request(EVENT, HOST, dtstamp=DTSTAMP, reschedule_url=URL)
    with pytest.raises(ComposeError, match="one iTIP object"):
        compose_itip(
            kind=ItipKind.INVITATION,
            ics=ics + ics,
            event=EVENT,
            recipient=Mailbox(HOST.address),
            message_id="<a@x.org>",
            date=DATE,
        )


@pytest.mark.parametrize("message_id", ["a@x.org", "<a@x.org>\r\nBcc: g@e.net", "<>"])
def test_bad_message_ids_are_refused(message_id: str) -> None:
    with pytest.raises(ComposeError):
        compose_notice(
            template="sign_in_link",
            context={"link_url": "https://x/s"},
            sender=Mailbox("scheduling@example.org"),
            recipient=Mailbox(HOST.address),
            message_id=message_id,
            date=DATE,
        )


def approval_context() -> dict[str, object]:
    return {
        "title": "Practice Session",
        "current_start": EVENT.start_utc,
        "current_end": EVENT.end_utc,
        "proposed_start": EVENT.start_utc + timedelta(days=1),
        "proposed_end": EVENT.end_utc + timedelta(days=1),
        "approve_url": "https://parley.example/approve?t=A",
        "decline_url": "https://parley.example/decline?t=D",
        "proposer_label": "The guest",
        "note": "Train <delayed> & late",
        "expires_at": EVENT.start_utc - timedelta(hours=1),
    }


def test_approval_request_notice() -> None:
    message = compose_notice(
        template="approval_request",
        context=approval_context(),
        sender=Mailbox("scheduling@example.org", "Parley"),
        recipient=Mailbox(HOST.address, HOST.name),
        message_id="<n1@x.org>",
        date=DATE,
        zone_name="Europe/Berlin",
    )
    parsed = reparse(to_bytes(message))
    assert parsed["Subject"] == "Approve new time for Practice Session?"
    assert parsed["Auto-Submitted"] == "auto-generated"
    assert parsed["To"] == "Hannah Host <host@example.com>"
    assert shape(parsed) == ["multipart/mixed", "multipart/alternative", "text/plain", "text/html"]
    text, html = decoded_texts(parsed)
    assert "Wed, 5 Mar 2025, 14:00–15:00 CET" in text
    assert "https://parley.example/approve?t=A" in text and "decline?t=D" in html
    assert "Train &lt;delayed&gt; &amp; late" in html


def test_auto_reply_threads_under_the_original() -> None:
    message = compose_notice(
        template="auto_reply",
        context={"title": "Practice Session", "reschedule_url": URL, "original_subject": "3pm?"},
        sender=Mailbox("scheduling@example.org"),
        recipient=Mailbox(GUEST.address),
        message_id="<n2@x.org>",
        date=DATE,
        in_reply_to="<orig@mail.example.net>",
    )
    parsed = reparse(message)
    assert parsed["Subject"] == "Re: 3pm?"
    assert parsed["In-Reply-To"] == "<orig@mail.example.net>"
    assert parsed["References"] == "<orig@mail.example.net>"
    assert parsed["Auto-Submitted"] == "auto-generated"


def test_notice_without_required_context_is_refused() -> None:
    context = approval_context()
    del context["approve_url"]
    with pytest.raises(ComposeError, match="approve_url"):
        compose_notice(
            template="approval_request",
            context=context,
            sender=Mailbox("scheduling@example.org"),
            recipient=Mailbox(HOST.address),
            message_id="<n3@x.org>",
            date=DATE,
        )


def test_header_injection_through_names_and_titles_is_neutralised() -> None:
    event = replace(EVENT, summary="Hi\r\nBcc: guest@example.net")
    recipient = Recipient(HOST.address, "Hannah\r\nCc: guest@example.net")
    raw = to_bytes(invite(event=event, recipient=recipient))
    headers = raw.split(b"\r\n\r\n", 1)[0]
    assert b"\r\nBcc:" not in headers and b"\r\nCc:" not in headers


# --- privacy: the host's message never carries the guest's address, and vice versa ---

local_part = st.from_regex(r"[a-z0-9][a-z0-9._+-]{0,20}[a-z0-9]", fullmatch=True).filter(
    lambda s: ".." not in s
)
domain = st.from_regex(r"[a-z0-9]{1,12}(\.[a-z0-9]{1,8})?\.(com|net|org|de|io)", fullmatch=True)
address = st.builds(lambda local, dom: f"{local}@{dom}", local_part, domain)
name = st.text(alphabet=st.characters(blacklist_categories=("Cs", "Cc")), max_size=40)


def message_views(message: EmailMessage) -> list[str]:
    raw = to_bytes(message)
    return [raw.decode("ascii").casefold(), *(t.casefold() for t in decoded_texts(reparse(raw)))]


@settings(max_examples=30, deadline=None)
@given(
    host=address,
    guest=address,
    host_name=name,
    guest_name=name,
    kind=st.sampled_from([ItipKind.INVITATION, ItipKind.UPDATE, ItipKind.CANCELLATION]),
)
def test_neither_party_sees_the_other_address(
    host: str, guest: str, host_name: str, guest_name: str, kind: ItipKind
) -> None:
    organizer = EVENT.organizer_address
    for mine, theirs in ((host, guest), (guest, host)):
        # Only meaningful when the other address is not spelled inside legitimate content.
        assume(theirs.casefold() not in mine.casefold())
        assume(theirs.casefold() not in organizer.casefold())
        assume(theirs.casefold() not in URL)
    event = replace(EVENT, sequence=1 if kind is ItipKind.UPDATE else 0)
    host_message = invite(kind, event, Recipient(host, host_name))
    guest_message = invite(kind, event, Recipient(guest, guest_name))
    for view in message_views(host_message):
        assert guest.casefold() not in view
    for view in message_views(guest_message):
        assert host.casefold() not in view
    assert host.casefold() in message_views(host_message)[0]


# --- a second parser: ical.js, the library Thunderbird reads invitations with ---


def run_icaljs(texts: list[str]) -> list[dict[str, object]]:
    if shutil.which("node") is None:
        pytest.skip("node is not installed; cannot cross-check with ical.js")
    if not (ICALJS / "js" / "node_modules" / "ical.js").is_dir():
        pytest.skip("ical.js missing: run `npm install` in tests/unit/mailagent/js")
    result = subprocess.run(
        ["node", str(ICALJS / "icaljs_check.mjs")],
        input=json.dumps(texts),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if result.returncode == 3:
        pytest.skip(f"ical.js could not be loaded: {result.stderr.strip()}")
    assert result.returncode == 0, result.stderr
    parsed = json.loads(result.stdout)
    assert isinstance(parsed, list)
    return parsed


def tricky_text(rng: random.Random) -> str:
    pieces = [",", ";", "\\", "\n", ":", '"', "ü", "€", "😀", "日本", " ", "\\n", "x" * 80, "a"]
    return "".join(rng.choice(pieces) for _ in range(rng.randint(0, 40)))


def test_ical_js_reads_what_we_build() -> None:
    rng = random.Random(5546)
    cases = []
    for index in range(40):
        event = replace(
            EVENT,
            sequence=index,
            summary=tricky_text(rng),
            description=tricky_text(rng),
            location=tricky_text(rng),
        )
        recipient = Recipient(f"person{index}@example.com", tricky_text(rng))
        builder = [build_request, build_cancel][index % 2]
        cases.append(
            (event, recipient, builder(event, recipient, dtstamp=DTSTAMP, reschedule_url=URL))
        )
    results = run_icaljs([ics for _, _, ics in cases])
    for (event, recipient, ics), result in zip(cases, results, strict=True):
        assert "error" not in result, result
        mine = icalendar.Calendar.from_ical(ics).walk("VEVENT")[0]
        (theirs,) = result["events"]  # type: ignore[misc]
        assert result["method"] == str(icalendar.Calendar.from_ical(ics)["METHOD"])
        assert result["prodid"] == "-//Parley//Parley//EN"
        assert theirs["uid"] == event.uid
        assert theirs["sequence"] == event.sequence
        assert theirs["dtstart"] == "2025-03-04T13:00:00.000Z" and theirs["dtstart_is_utc"]
        assert theirs["summary"] == event.summary == str(mine["SUMMARY"])
        assert theirs["description"] == str(mine["DESCRIPTION"])
        assert (theirs["location"] or "") == event.location
        assert theirs["disallow_counter"] == "FALSE"
        assert theirs["organizer"] == f"mailto:{event.organizer_address}"
        (attendee,) = theirs["attendees"]
        assert attendee["value"] == f"mailto:{recipient.address}"
        assert (attendee["cn"] or "") == mine["ATTENDEE"].params.get("CN", "")


def test_ical_js_reads_a_declinecounter() -> None:
    ics = build_declinecounter(EVENT, GUEST, dtstamp=DTSTAMP, comment="No, sorry; try later")
    (result,) = run_icaljs([ics])
    assert result["method"] == "DECLINECOUNTER"
    (event,) = result["events"]  # type: ignore[misc]
    assert event["comment"] == "No, sorry; try later"
    assert [a["value"] for a in event["attendees"]] == ["mailto:guest@example.net"]


# --- the MIME writer, read back by the stdlib parser a mail client would use ---

header_text = st.text(
    alphabet=st.characters(blacklist_categories=("Cs", "Cc", "Zl", "Zp")), max_size=120
)


@settings(max_examples=60, deadline=None)
@given(name=header_text, title=header_text, body=header_text)
def test_any_name_title_and_text_read_back_as_written(name: str, title: str, body: str) -> None:
    event = replace(EVENT, summary=title, description=body)
    recipient = Recipient(HOST.address, name)
    raw = to_bytes(invite(event=event, recipient=recipient))
    assert all(byte < 128 for byte in raw)
    assert max(len(line) for line in raw.split(b"\r\n")) <= 998
    message = reparse(raw)
    (to,) = message["To"].addresses
    assert to.addr_spec == HOST.address
    # Compared without white space: the stdlib parser puts a space between adjacent
    # encoded words of a display name, which RFC 2047 says to drop.
    assert "".join(to.display_name.split()) == "".join(name.split())
    assert "".join(title.split()) in "".join(message["Subject"].split())
    *_, inline, attached = decoded_texts(message)
    assert inline == attached == BUILDERS[ItipKind.INVITATION](event, recipient)


def test_long_lines_and_equals_signs_survive_quoted_printable() -> None:
    body = "=" * 5 + " a=b " + "x" * 300 + " trailing space \n\tTab\nlast"
    event = replace(EVENT, description=body)
    message = reparse(to_bytes(invite(event=event)))
    text = decoded_texts(message)[0]
    assert "=====" in text and "x" * 300 in text and " a=b " in text


def test_display_names_with_specials_are_quoted() -> None:
    raw = to_bytes(invite(recipient=Recipient(HOST.address, 'Host, "The" Best\\')))
    message = reparse(raw)
    assert message["To"].addresses[0].display_name == 'Host, "The" Best\\'
    assert message["To"].addresses[0].addr_spec == HOST.address


@pytest.mark.parametrize("address", ["no-at-sign", "a@b@c", "x y@example.org", "a..b@example.org"])
def test_unusable_addresses_are_refused(address: str) -> None:
    with pytest.raises(ComposeError, match="not a usable mail address"):
        compose_notice(
            template="sign_in_link",
            context={"link_url": "https://x/s"},
            sender=Mailbox("scheduling@example.org"),
            recipient=Mailbox(address, "X"),
            message_id="<n4@x.org>",
            date=DATE,
        )
