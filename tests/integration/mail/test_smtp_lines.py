"""Mail a lenient MTA passes on, over a real SMTP / LMTP conversation: bare LF line ends,
body lines of thousands of bytes, unfolded long headers. Each is answered 250, stored as
received and then processed like any other mail; only the message size is limited, and
the end of data is only the standard <CR><LF>.<CR><LF>.

smtplib rewrites bare LFs as CRLF, so bare-LF mail goes over a raw socket.
"""

from __future__ import annotations

import smtplib
import socket
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from sqlalchemy import select

from core.db.models import Booking, InboundMessage, Invitation
from core.runtime import Runtime
from core.services.bookings import actor_of
from core.services.mail_in import AuthPolicy, ProcessingContext, process_pending
from mailagent.lmtp import LmtpHandler, lmtp_factory
from mailagent.smtp import InboundHandler, RecipientPolicy, smtp_factory
from parley.handlers import MAIL_READER
from tests.integration.mail.helpers import mail, server_in_thread
from tests.integration.negotiation import mails
from tests.integration.negotiation.helpers import GUEST, booked

ORGANIZER = "scheduling@parley.localhost"
POLICY = RecipientPolicy.single(ORGANIZER)


class RawClient:
    """An SMTP / LMTP client writing exactly the bytes it is given."""

    def __init__(self, port: int, lmtp: bool = False, eol: bytes = b"\r\n") -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.file = self.sock.makefile("rb")
        self.eol = eol
        assert self.reply()[0] == 220
        code, _ = self.command(("LHLO" if lmtp else "EHLO") + " client.example")
        assert code == 250

    def reply(self) -> tuple[int, str]:
        lines = []
        while True:
            line = self.file.readline().decode()
            assert line, "the server closed the connection"
            lines.append(line[4:].strip())
            if line[3:4] != "-":
                return int(line[:3]), "\n".join(lines)

    def command(self, text: str) -> tuple[int, str]:
        self.sock.sendall(text.encode() + self.eol)
        return self.reply()

    def send(self, raw: bytes, to: str = ORGANIZER, end: bytes = b"\r\n.\r\n") -> tuple[int, str]:
        """MAIL, RCPT, DATA, then raw and end as they are (no dot-stuffing, no line ends)."""
        assert self.command("MAIL FROM:<sender@example.net>")[0] == 250
        assert self.command(f"RCPT TO:<{to}>")[0] == 250
        assert self.command("DATA")[0] == 354
        self.sock.sendall(raw + end)
        return self.reply()

    def close(self) -> None:
        try:
            self.command("QUIT")
        finally:
            self.file.close()
            self.sock.close()


@contextmanager
def listening(runtime: Runtime, kind: str, size: int = 1 << 20) -> Iterator[int]:
    if kind == "lmtp":
        lmtp = LmtpHandler(runtime.sessions, POLICY, channel="lmtp")
        with server_in_thread(lmtp_factory(lmtp, data_size_limit=size)) as port:
            yield port
        lmtp.close()
    else:
        smtp = InboundHandler(runtime.sessions, POLICY)
        with server_in_thread(smtp_factory(smtp, data_size_limit=size)) as port:
            yield port
        smtp.close()


def _rows(runtime: Runtime) -> list[InboundMessage]:
    with runtime.sessions() as session:
        return list(session.scalars(select(InboundMessage).order_by(InboundMessage.id)))


def _process(runtime: Runtime) -> None:
    context = ProcessingContext(
        runtime.sessions, runtime.settings, AuthPolicy(), runtime.clock,
        actor_of(runtime, "mailbox"), reader=MAIL_READER,
    )  # fmt: skip
    process_pending(context)


@pytest.mark.parametrize("kind", ["smtp", "lmtp"])
def test_a_bare_lf_reply_of_4_kb_is_stored_as_sent_and_applied(
    runtime: Runtime, admin_headers: dict[str, str], kind: str
) -> None:
    _, booking_id = booked(runtime, admin_headers)
    with runtime.sessions() as session:
        booking = session.get(Booking, booking_id)
        assert booking is not None
        uid = booking.uid
        tag = session.scalar(
            select(Invitation.plus_tag).where(
                Invitation.booking_id == booking_id, Invitation.role == "guest"
            )
        )
    to = f"scheduling+{tag}@parley.localhost"
    note = "Sorry, something came up and I cannot make it that day after all. " * 50
    crlf = mails.gmail(
        method="REPLY", uid=uid, sequence=0, attendee=GUEST, to=to, partstat="ACCEPTED"
    )
    raw = crlf.replace(b"\r\n", b"\n").replace(b"\n\n--", b"\n\n" + note.encode() + b"\n\n--", 1)
    assert b"\r" not in raw and len(raw) > 4096
    with listening(runtime, kind) as port:
        client = RawClient(port, lmtp=kind == "lmtp", eol=b"\n")  # commands with bare LF too
        code, text = client.send(raw, to=to)
        client.close()
    assert code == 250, text
    (row,) = _rows(runtime)
    assert row.raw == raw + b"\r\n"  # what was received, bare LFs kept (the CRLF is the end's)
    _process(runtime)
    (row,) = _rows(runtime)
    assert row.outcome == "itip", row.outcome_reason
    with runtime.sessions() as session:
        partstat = session.scalar(
            select(Invitation.partstat).where(
                Invitation.booking_id == booking_id, Invitation.role == "guest"
            )
        )
    assert partstat == "accepted"


@pytest.mark.parametrize("kind", ["smtp", "lmtp"])
def test_a_long_unfolded_header_and_a_5000_byte_body_line_are_stored_and_parsed(
    runtime: Runtime, kind: str
) -> None:
    subject = "Re: " + "long subject " * 92  # 1,200 bytes, one line
    html = "<p>" + "x" * 5000 + "</p>"
    raw = mail(
        message_id="<long@example.net>",
        subject=subject,
        extra=f"X-Tracking: {'t' * 1500}\r\nContent-Type: text/html\r\n",
        body=html,
    )
    assert any(len(line) > 5000 for line in raw.split(b"\r\n"))
    with listening(runtime, kind) as port:
        if kind == "smtp":
            with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
                assert client.sendmail("guest@example.net", [ORGANIZER], raw) == {}
        else:
            with smtplib.LMTP("127.0.0.1", port, timeout=10) as client:
                assert client.sendmail("guest@example.net", [ORGANIZER], raw) == {}
    (row,) = _rows(runtime)
    assert row.raw == raw and row.message_key == "<long@example.net>"
    _process(runtime)
    (row,) = _rows(runtime)
    assert row.outcome not in ("pending", "unparseable", "failed"), row.outcome_reason
    assert row.subject is not None and row.subject.startswith("Re: long subject long subject")


def test_a_bare_lf_dot_is_content_not_the_end_of_data(runtime: Runtime) -> None:
    """No smuggling: "\\n.\\n" or "\\n.\\r\\n" does not end DATA; commands after it are content."""
    smuggled = (
        b"From: a@example.net\nMessage-ID: <outer@example.net>\nSubject: one\n\nhello\n"
        b".\nMAIL FROM:<boss@parley.localhost>\nRCPT TO:<scheduling@parley.localhost>\n"
        b"DATA\nFrom: boss@parley.localhost\nMessage-ID: <smuggled@x>\n\nforged\n.\r\n"
        b"..dotted line\r\n"
    )
    with listening(runtime, "smtp") as port:
        client = RawClient(port)
        code, text = client.send(smuggled)
        assert code == 250, text
        assert client.command("NOOP")[0] == 250  # the conversation is in step
        client.close()
    (row,) = _rows(runtime)
    assert row.message_key == "<outer@example.net>"
    # Dot-unstuffed as every line starting with "." is; the rest as it came.
    unstuffed = smuggled.replace(b"\n.\n", b"\n\n").replace(b"\n.\r\n", b"\n\r\n")
    assert row.raw == unstuffed.replace(b"\n..dotted", b"\n.dotted") + b"\r\n"
    assert b"Message-ID: <smuggled@x>" in row.raw


@pytest.mark.parametrize("kind", ["smtp", "lmtp"])
def test_only_the_size_limit_bounds_a_line(runtime: Runtime, kind: str) -> None:
    endless = b"Subject: x\r\n\r\n" + b"y" * 50_000  # one line, far over the limit
    with listening(runtime, kind, size=10_000) as port:
        client = RawClient(port, lmtp=kind == "lmtp")
        code, _ = client.send(endless)
        assert code == 552
        fits = mail(message_id="<after@example.net>", body="z" * 9_000)  # one 9,000-byte line
        code, text = client.send(fits)
        assert code == 250, text
        client.close()
    assert [r.message_key for r in _rows(runtime)] == ["<after@example.net>"]
