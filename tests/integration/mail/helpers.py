"""Shared pieces of the mail integration tests: servers in a thread, certificates, keys, rows."""

from __future__ import annotations

import asyncio
import subprocess
import threading
from collections.abc import Callable, Coroutine, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy.orm import Session

from core.db.models import Booking, Invitation, Provider, new_id
from tests.conftest import free_port

T = TypeVar("T")

NOW = datetime(2026, 5, 5, 10, 0, tzinfo=UTC)


@contextmanager
def server_in_thread(factory: Callable[[], asyncio.Protocol]) -> Iterator[int]:
    """Run loop.create_server(factory) on a free loopback port in a thread; yields the port."""
    loop = asyncio.new_event_loop()
    port = free_port()
    ready = threading.Event()
    holder: dict[str, Any] = {}

    def run() -> None:
        asyncio.set_event_loop(loop)
        holder["server"] = loop.run_until_complete(loop.create_server(factory, "127.0.0.1", port))
        ready.set()
        loop.run_forever()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    if not ready.wait(10):
        raise TimeoutError("server did not start")
    try:
        yield port
    finally:

        async def close() -> None:
            holder["server"].close()
            await holder["server"].wait_closed()

        asyncio.run_coroutine_threadsafe(close(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


def self_signed(tmp: Path, name: str = "localhost") -> tuple[Path, Path]:
    """A self-signed certificate and key for name (and 127.0.0.1), made with openssl."""
    cert, key = tmp / f"{name}.crt", tmp / f"{name}.key"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
         "-subj", f"/CN={name}", "-addext", f"subjectAltName=DNS:{name},IP:127.0.0.1",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    return cert, key


def rsa_key(tmp: Path) -> tuple[bytes, bytes]:
    """(PKCS#1 private key PEM, DNS TXT record value) for a DKIM test key."""
    key = tmp / "dkim.key"
    subprocess.run(
        ["openssl", "genrsa", "-traditional", "-out", str(key), "1024"],
        check=True, capture_output=True,
    )  # fmt: skip
    der = subprocess.run(
        ["openssl", "rsa", "-in", str(key), "-pubout", "-outform", "DER"],
        check=True, capture_output=True,
    ).stdout  # fmt: skip
    import base64

    txt = b"v=DKIM1; k=rsa; p=" + base64.b64encode(der)
    return key.read_bytes(), txt


def make_invitation(
    session: Session,
    *,
    address: str,
    plus_tag: str,
    message_id: str,
    role: str = "guest",
    uid: str | None = None,
) -> Invitation:
    """A provider, booking and one invitation, enough for bounce and reply matching."""
    provider = Provider(
        id=new_id("prv"), name="Ann", slug=new_id("s"), email="ann@parley.example",
        timezone="Europe/Berlin", dav_username=new_id("u"), created_at=NOW, updated_at=NOW,
    )  # fmt: skip
    booking = Booking(
        id=new_id("bkg"), provider_id=provider.id, uid=uid or f"{new_id('uid')}@parley.example",
        sequence=0, status="confirmed", start_at=NOW + timedelta(days=7),
        end_at=NOW + timedelta(days=7, minutes=30), host_email="ann@parley.example",
        guest_email=address, created_at=NOW, updated_at=NOW,
    )  # fmt: skip
    invitation = Invitation(
        id=new_id("inv"), booking_id=booking.id, role=role, address=address,
        plus_tag=plus_tag, last_message_id=message_id, updated_at=NOW,
    )  # fmt: skip
    session.add(provider)
    session.flush()
    session.add(booking)
    session.flush()
    session.add(invitation)
    session.flush()
    return invitation


def mail(
    *,
    sender: str = "guest@example.net",
    to: str = "scheduling@parley.localhost",
    message_id: str = "<m1@example.net>",
    subject: str = "Hello",
    body: str = "Hi there",
    extra: str = "",
) -> bytes:
    text = (
        f"From: {sender}\r\nTo: {to}\r\nSubject: {subject}\r\nMessage-ID: {message_id}\r\n"
        f"Date: Tue, 05 May 2026 10:00:00 +0000\r\n{extra}\r\n{body}\r\n"
    )
    return text.encode()


def reply(
    *,
    sender: str,
    attendee: str,
    uid: str = "uid-1@parley.example",
    message_id: str = "<r1@x>",
    to: str = "scheduling@parley.localhost",
) -> bytes:
    """An iTIP REPLY (ACCEPTED) from sender speaking for attendee."""
    ics = (
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//Test//EN\r\nMETHOD:REPLY\r\nBEGIN:VEVENT\r\n"
        f"UID:{uid}\r\nSEQUENCE:2\r\nDTSTAMP:20260505T100000Z\r\n"
        "DTSTART:20260512T080000Z\r\nDTEND:20260512T083000Z\r\n"
        "ORGANIZER:mailto:scheduling@parley.localhost\r\n"
        f"ATTENDEE;PARTSTAT=ACCEPTED:mailto:{attendee}\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
    )
    return mail(
        sender=sender, to=to, message_id=message_id, subject="Accepted: Intro call",
        extra='MIME-Version: 1.0\r\nContent-Type: text/calendar; charset="UTF-8"; method=REPLY\r\n',
        body=ics,
    )  # fmt: skip


def run_client(work: Coroutine[Any, Any, T]) -> T:
    """asyncio.run for client code, letting closing transports finish before the loop ends.

    A connection closed just before the loop stops (a TLS close_notify still under way,
    say) would leave its socket open, and its ResourceWarning would surface, at garbage
    collection, in whatever test runs next.
    """

    async def main() -> T:
        result = await work
        await asyncio.sleep(0.1)
        return result

    return asyncio.run(main())
