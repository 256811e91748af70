"""Fixtures for the CalDAV bridge: providers with app passwords and a real uvicorn server."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import caldav
import pytest
import uvicorn

from core.db.models import Booking, Provider, new_id
from core.runtime import Runtime
from core.services import app_passwords
from tests.conftest import free_port
from web.app import create_app

NOW = datetime(2030, 3, 4, 9, 0, tzinfo=UTC)


@dataclass(frozen=True)
class DavUser:
    provider_id: str
    username: str
    password: str
    password_id: str


def add_provider(runtime: Runtime, slug: str, *, show_holds: bool = False) -> DavUser:
    """A provider row (inserted directly) and one app password for it."""
    with runtime.sessions.begin() as session:
        provider = Provider(
            id=new_id("prv"),
            name=slug.title(),
            slug=slug,
            email=f"{slug}@example.org",
            timezone="Europe/Berlin",
            dav_username=slug,
            show_holds_calendar=show_holds,
            created_at=NOW,
            updated_at=NOW,
        )
        session.add(provider)
        session.flush()
        issued = app_passwords.issue(session, provider.id, NOW, label="test")
    return DavUser(provider.id, issued.username, issued.password, issued.id)


def add_booking(
    runtime: Runtime,
    provider_id: str,
    start: datetime,
    *,
    status: str = "confirmed",
    guest_name: str = "Ada Guest",
    minutes: int = 60,
) -> Booking:
    with runtime.sessions.begin() as session:
        booking = Booking(
            id=new_id("bkg"),
            provider_id=provider_id,
            uid=f"{new_id('uid')}@parley.test",
            sequence=2,
            status=status,
            title="Session",
            start_at=start,
            end_at=start + timedelta(minutes=minutes),
            host_email="host@example.org",
            guest_name=guest_name,
            guest_email="ada.secret@guest.example",
            created_at=NOW,
            updated_at=runtime.clock(),
        )
        session.add(booking)
    return booking


def event_ics(uid: str, start: datetime, hours: int = 1, extra: str = "") -> str:
    """A one-event calendar as a calendar app would PUT it (extra: more VEVENT lines)."""
    fmt = "%Y%m%dT%H%M%SZ"
    return (
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//EN\r\nBEGIN:VEVENT\r\n"
        f"UID:{uid}\r\nDTSTAMP:20300101T000000Z\r\nDTSTART:{start:{fmt}}\r\n"
        f"DTEND:{start + timedelta(hours=hours):{fmt}}\r\nSUMMARY:Dentist\r\n{extra}"
        "END:VEVENT\r\nEND:VCALENDAR\r\n"
    )


def calendar_named(client: caldav.DAVClient, name: str) -> caldav.Calendar:
    """The principal's calendar whose URL ends in /name."""
    for calendar in client.principal().calendars():
        if str(calendar.url).rstrip("/").endswith(f"/{name}"):
            return calendar
    raise LookupError(name)


class _Server(uvicorn.Server):
    def install_signal_handlers(self) -> None:  # running in a thread
        pass


@pytest.fixture
def dav_base(runtime: Runtime) -> Iterator[str]:
    """A real uvicorn server running Parley's web app (with /dav/) on a free port."""
    port = free_port()
    app = create_app(runtime.settings, runtime=runtime)
    server = _Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)
