"""Compose Parley's outgoing mail: iMIP messages carrying one iTIP object, and plain notices.

An iMIP message is multipart/mixed holding multipart/alternative (text, HTML, text/calendar)
and the same calendar as an invite.ics attachment; both calendar parts name the METHOD that
is inside. Each message goes To one person only. Pure: Message-ID and Date are passed in.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from email import policy as email_policy
from email.message import EmailMessage
from email.utils import format_datetime
from enum import StrEnum
from pathlib import Path
from typing import Final

from jinja2 import Environment, FileSystemLoader, pass_context
from jinja2.runtime import Context

from core.formatting import format_range, locale_or_default
from core.i18n import translations
from core.imip.errors import ComposeError
from core.itip.build import EventSnapshot

# 7bit: every body is made ASCII-safe (quoted-printable or base64), so no relay needs
# 8BITMIME; SMTP: CRLF line endings, as the DATA command wants them.
SMTP_POLICY: Final = email_policy.SMTP.clone(cte_type="7bit")
TEMPLATE_DIR: Final = Path(__file__).parent / "templates"
_MESSAGE_ID_RE: Final = re.compile(r"^<[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]+@[A-Za-z0-9.-]+>$")
_CONTROL_RE: Final = re.compile(r"[\x00-\x1f\x7f]+")


class ItipKind(StrEnum):
    """Why an iMIP message is sent; picks the template and the expected METHOD."""

    INVITATION = "invitation"
    UPDATE = "update"
    CANCELLATION = "cancellation"
    DECLINE_COUNTER = "declinecounter"


METHOD_FOR_KIND: Final[Mapping[ItipKind, str]] = {
    ItipKind.INVITATION: "REQUEST",
    ItipKind.UPDATE: "REQUEST",
    ItipKind.CANCELLATION: "CANCEL",
    ItipKind.DECLINE_COUNTER: "DECLINECOUNTER",
}


@dataclass(frozen=True, slots=True)
class Mailbox:
    """A mail address with an optional display name."""

    address: str
    name: str = ""


def compose_itip(
    *,
    kind: ItipKind,
    ics: str,
    event: EventSnapshot,
    recipient: Mailbox,
    message_id: str,
    date: datetime,
    zone_name: str | None = None,
    reschedule_url: str | None = None,
    sender: Mailbox | None = None,
    manage_url: str | None = None,
    reason: str | None = None,
    locale: str | None = None,
    other_name: str | None = None,
) -> bytes:
    """The iMIP message carrying ics (from core.itip.build) to its single attendee.

    other_name: whom the attendee meets, named in the subject ("Planning call with Dana
    Demo — Thu, 3 Dec 2026, 05:00–05:30 EST").

    Refuses an ics whose METHOD does not fit kind, or that names any ATTENDEE other than
    the recipient: this is the last gate before a message could leak the other party.
    The words are in locale (the calendar's SUMMARY stays the booking's title).
    """
    method = _check_ics(ics, METHOD_FOR_KIND[kind], recipient.address)
    context = {
        "title": event.summary,
        "when": format_when(event.start_utc, event.end_utc, zone_name, locale),
        "location": event.location,
        "description": event.description,
        "reschedule_url": reschedule_url,
        "manage_url": manage_url,
        "reason": reason,
        "recipient_name": recipient.name,
        "organizer_name": event.organizer_name,
        "other_name": other_name,
    }
    subject, text, html = render(kind.value, context, zone_name, locale)
    origin = sender or Mailbox(event.organizer_address, event.organizer_name)
    headers = _envelope(origin, recipient, subject, message_id, date)
    calendar = _calendar_part(ics, method, attachment=False)
    attachment = _calendar_part(ics, method, attachment=True)
    return _message(headers, message_id, _alternative(text, html, calendar), attachment)


def compose_notice(
    *,
    template: str,
    context: Mapping[str, object],
    sender: Mailbox,
    recipient: Mailbox,
    message_id: str,
    date: datetime,
    zone_name: str | None = None,
    in_reply_to: str | None = None,
    auto_submitted: bool = True,
    locale: str | None = None,
) -> bytes:
    """A text + HTML message without a calendar (approval request, courtesy note,
    auto-reply, sign-in link). Marked Auto-Submitted so vacation responders stay quiet."""
    if template not in REQUIRED_CONTEXT:
        raise ComposeError(f"no notice template named {template!r}")
    missing = REQUIRED_CONTEXT[template] - context.keys()
    if missing:
        raise ComposeError(f"notice {template!r} needs {', '.join(sorted(missing))}")
    full = {"recipient_name": recipient.name, **context}
    subject, text, html = render(template, full, zone_name, locale)
    headers = _envelope(sender, recipient, subject, message_id, date)
    if auto_submitted:
        headers += [("Auto-Submitted", "auto-generated"), ("X-Auto-Response-Suppress", "All")]
    if in_reply_to:
        _check_message_id(in_reply_to)
        headers += [("In-Reply-To", in_reply_to), ("References", in_reply_to)]
    return _message(headers, message_id, _alternative(text, html))


def to_bytes(message: bytes | EmailMessage) -> bytes:
    """The message as SMTP DATA: CRLF line endings, 7-bit clean."""
    if isinstance(message, bytes):
        return message
    return message.as_bytes(policy=SMTP_POLICY)


def message_id_for(idempotency_key: str, domain: str) -> str:
    """A stable Message-ID derived from an outbox idempotency key."""
    digest = hashlib.sha256(idempotency_key.encode("utf-8")).hexdigest()[:40]
    return f"<{digest}@{domain}>"


def format_when(
    start: datetime,
    end: datetime | None = None,
    zone_name: str | None = None,
    locale: str | None = None,
) -> str:
    """A time (or range) in the recipient's zone when known, otherwise in UTC, written as
    every page writes it (core.formatting)."""
    return format_range(start, end, zone_name, locale_or_default(locale))


def render(
    name: str, context: Mapping[str, object], zone_name: str | None, locale: str | None = None
) -> tuple[str, str, str]:
    """(subject, text, html) of template set name; times shown in zone_name, words in
    locale (English when None)."""
    language = locale_or_default(locale)
    when: Callable[..., str] = lambda start, end=None: format_when(start, end, zone_name, language)  # noqa: E731
    full = {"when": when, **context, "locale": language}
    subject = _ENV.get_template(f"{name}.subject.j2").render(full)
    full["subject"] = _one_line(subject)
    text = _ENV.get_template(f"{name}.txt.j2").render(full)
    html = _ENV.get_template(f"{name}.html.j2").render(full)
    return _one_line(subject), text, html


# --- writing MIME -------------------------------------------------------------------
# Messages are written straight to bytes: always the same small tree, and the stdlib's
# header registry costs several milliseconds per message. Every header value is ASCII
# (RFC 2047 words for the rest), every body quoted-printable, base64 or short-lined
# 7-bit ASCII, every line CRLF-terminated; tests read the result back with the stdlib.

Part = tuple[list[tuple[str, str]], bytes]  # (headers, encoded body)
_ATEXT: Final = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~ -]*")
_ADDR_SPEC: Final = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]+@[A-Za-z0-9.-]+")
_WORD_BYTES: Final = 39  # base64 of 39 bytes is 52 characters: a word stays under 75


def _envelope(
    sender: Mailbox, recipient: Mailbox, subject: str, message_id: str, date: datetime
) -> list[tuple[str, str]]:
    _check_message_id(message_id)
    if date.tzinfo is None:
        raise ComposeError("the Date of a message needs a time zone")
    return [
        ("Message-ID", message_id),
        ("Date", format_datetime(date)),
        ("From", _address(sender)),
        ("To", _address(recipient)),
        ("Subject", _text_header(subject)),
        ("MIME-Version", "1.0"),
    ]


def _message(
    headers: list[tuple[str, str]], message_id: str, body: Part, *attachments: Part
) -> bytes:
    tree = _multipart("mixed", [body, *attachments], message_id)
    return _header_block(headers + tree[0]) + b"\r\n" + tree[1]


def _alternative(text: str, html: str, *more: Part) -> Part:
    parts = [_text_part(text, "plain"), _text_part(html, "html"), *more]
    return _multipart("alternative", parts, text)


def _multipart(subtype: str, parts: list[Part], seed: str) -> Part:
    bodies = [_header_block(headers) + b"\r\n" + body for headers, body in parts]
    boundary = _boundary(subtype, seed, bodies)
    mark = b"--" + boundary.encode()
    out = [b"This is a multi-part message in MIME format.\r\n"]
    for body in bodies:
        # The line break before a boundary belongs to the boundary (RFC 2046 5.1.1).
        out += [mark, b"\r\n", body, b"\r\n"]
    out += [mark, b"--\r\n"]
    return [("Content-Type", f'multipart/{subtype}; boundary="{boundary}"')], b"".join(out)


def _boundary(subtype: str, seed: str, bodies: list[bytes]) -> str:
    """A boundary none of the bodies contains (stable for the same message)."""
    digest = hashlib.sha256(f"{subtype}:{seed}".encode()).hexdigest()
    for length in range(24, 65, 8):
        boundary = f"=_{subtype[:3]}_{digest[:length]}"
        if not any(boundary.encode() in body for body in bodies):
            return boundary
    raise ComposeError("no MIME boundary fits this message")  # pragma: no cover


def _text_part(text: str, subtype: str) -> Part:
    data = "\n".join(text.splitlines()).encode("utf-8") + b"\n"
    encoded = binascii.b2a_qp(data, quotetabs=False, istext=True, header=False)
    headers = [
        ("Content-Type", f'text/{subtype}; charset="utf-8"'),
        ("Content-Transfer-Encoding", "quoted-printable"),
    ]
    return headers, encoded.replace(b"\n", b"\r\n")


def _calendar_part(ics: str, method: str, *, attachment: bool) -> Part:
    # base64 keeps a non-ASCII calendar byte for byte; ASCII goes as it is, in CRLF lines.
    data = ics.encode("utf-8")
    content_type = f'text/calendar; method={method}; charset="UTF-8"'
    if attachment:
        content_type += '; name="invite.ics"'
    lines = data.replace(b"\r\n", b"\n").split(b"\n")
    if data.isascii() and max(map(len, lines)) <= 900:
        cte, body = "7bit", b"\r\n".join(lines)
        body += b"" if body.endswith(b"\r\n") else b"\r\n"
    else:
        cte, body = "base64", base64.encodebytes(data).replace(b"\n", b"\r\n")
    headers = [("Content-Type", content_type), ("Content-Transfer-Encoding", cte)]
    if attachment:
        headers.append(("Content-Disposition", 'attachment; filename="invite.ics"'))
    return headers, body


def _header_block(headers: list[tuple[str, str]]) -> bytes:
    return "".join(f"{name}: {value}\r\n" for name, value in headers).encode("ascii")


def _text_header(text: str) -> str:
    """Header text as it may go on the wire: ASCII words, folded; RFC 2047 words else."""
    text = _one_line(text)
    if text.isascii():
        return _fold(text.split(" "))
    words, chunk = [], b""
    for char in text:
        encoded = char.encode("utf-8")
        if len(chunk) + len(encoded) > _WORD_BYTES:
            words.append(chunk)
            chunk = b""
        chunk += encoded
    words.append(chunk)
    return _fold([f"=?utf-8?b?{base64.b64encode(w).decode()}?=" for w in words if w])


def _fold(words: list[str]) -> str:
    lines, line = [], ""
    for word in words:
        if line and len(line) + 1 + len(word) > 72:
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}" if line else word
    lines.append(line)
    return "\r\n ".join(lines)


def _address(mailbox: Mailbox) -> str:
    address = mailbox.address.strip()
    if not _ADDR_SPEC.fullmatch(address) or ".." in address or len(address) > 320:
        raise ComposeError(f"{mailbox.address!r} is not a usable mail address")
    name = _one_line(mailbox.name)
    if not name:
        return address
    if not name.isascii():
        shown = _text_header(name)
    elif _ATEXT.fullmatch(name):
        shown = name
    else:
        shown = '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return f"{shown} <{address}>"


def _check_ics(ics: str, expected_method: str, recipient_address: str) -> str:
    """The calendar's METHOD, once it is known to be one calendar for the recipient only.

    A line scan (after unfolding) rather than a full parse: the text comes from
    core.itip.build, and what matters here is what a reader would find in it.
    """
    lines = [line for line in re.sub(r"\r?\n[ \t]", "", ics).splitlines() if line]
    names = [_property(line) for line in lines]
    calendars = sum(1 for name, value in names if name == "BEGIN" and value.upper() == "VCALENDAR")
    if calendars != 1:
        raise ComposeError(f"one iTIP object per message, got {calendars}")
    method = next((value.upper() for name, value in names if name == "METHOD"), "")
    if method != expected_method:
        raise ComposeError(f"calendar METHOD {method!r} does not match {expected_method!r}")
    attendees = [value.casefold() for name, value in names if name == "ATTENDEE"]
    if attendees != [f"mailto:{recipient_address}".casefold()]:
        raise ComposeError("the calendar must name exactly one ATTENDEE: the recipient")
    return method


def _property(line: str) -> tuple[str, str]:
    """(NAME, value) of one unfolded content line; the value starts at the first colon
    outside a quoted parameter."""
    quoted = False
    for index, char in enumerate(line):
        if char == '"':
            quoted = not quoted
        elif char == ":" and not quoted:
            return line[:index].split(";", 1)[0].strip().upper(), line[index + 1 :]
    return line.strip().upper(), ""


def is_message_id(message_id: str) -> bool:
    """Whether message_id is a Message-ID like <id@domain> that may go into a header."""
    return len(message_id) <= 250 and _MESSAGE_ID_RE.fullmatch(message_id) is not None


def _check_message_id(message_id: str) -> None:
    if not is_message_id(message_id):
        raise ComposeError(f"{message_id!r} is not a Message-ID like <id@domain>")


def _one_line(text: str) -> str:
    return " ".join(_CONTROL_RE.sub(" ", text).split())


@pass_context
def _gettext(context: Context, message: str) -> str:
    return translations(context.get("locale")).gettext(message)


@pass_context
def _ngettext(context: Context, singular: str, plural: str, n: int) -> str:
    return translations(context.get("locale")).ngettext(singular, plural, n)


_ENV: Final = Environment(
    loader=FileSystemLoader(TEMPLATE_DIR),
    autoescape=lambda name: name is not None and name.endswith(".html.j2"),
    keep_trailing_newline=True,
    trim_blocks=True,
    auto_reload=False,  # shipped with the code: no stat() of the file on every message
    extensions=["jinja2.ext.i18n"],
)
_ENV.install_gettext_callables(_gettext, _ngettext, newstyle=True)  # type: ignore[attr-defined]
# A text made elsewhere (a reason given by a service) in the mail's language when known.
_ENV.filters["translate"] = pass_context(
    lambda context, text: translations(context.get("locale")).gettext(str(text))
)
# What each notice template cannot do without; a missing key is a caller bug, not a blank.
REQUIRED_CONTEXT: Final[Mapping[str, frozenset[str]]] = {
    "approval_request": frozenset(
        {
            "title",
            "current_start",
            "current_end",
            "proposed_start",
            "proposed_end",
            "approve_url",
            "decline_url",
        }
    ),
    "proposal_declined": frozenset(
        {"title", "current_start", "current_end", "proposed_start", "proposed_end"}
    ),
    "auto_reply": frozenset({"title", "reschedule_url"}),
    "booking_request": frozenset({"title", "start", "end", "approve_url", "decline_url"}),
    "sign_in_link": frozenset({"link_url"}),
    "conflict_review": frozenset({"unit", "sentence", "conflicts_url"}),
    "request_received": frozenset({"title", "start", "end", "host_label", "manage_url"}),
    "request_declined": frozenset({"title", "start", "end", "host_label", "reason"}),
    "request_lapsed": frozenset({"title", "start", "end", "guest_label"}),
}
