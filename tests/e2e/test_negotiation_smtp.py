"""The negotiation loop over real SMTP: `parley serve` in, a local relay sink out.

Parley runs as a subprocess (SQLite and PostgreSQL); the test books over the JSON API,
reads the invitations the relay received, answers them with smtplib the way Outlook,
Gmail, Apple Calendar and Thunderbird do, and follows the links a person would click.
The PRD's acceptance criteria (§15) and edge cases (§13) of seed 004.
"""

from __future__ import annotations

import email
import json
import re
import shutil
import signal
import smtplib
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import icalendar
import pytest
from sqlalchemy import select

from core.db.engine import make_engine, make_sessionmaker
from core.db.models import InboundMessage, Job, OutboundMessage
from core.jobs import Periodic, ensure_periodic
from core.runtime import Runtime
from tests.conftest import free_port
from tests.e2e.helpers import parley_env, start, wait_healthy
from tests.e2e.relay import Received, RelaySink, running_relay
from tests.integration.api.helpers import Clock
from tests.integration.negotiation import mails
from tests.integration.negotiation.helpers import GUEST as HELPER_GUEST
from tests.integration.negotiation.helpers import booked as booked_in_process

pytestmark = pytest.mark.slow

ORGANIZER = "scheduling@parley.test"
ADMIN_TOKEN = "e2e-admin-token"
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
HOST = "ada.host@hostmail.example"
GUEST = "grace.guest@guestmail.example"
BERLIN = ZoneInfo("Europe/Berlin")
LINK = re.compile(
    r"https?://[^\s\"'<>]+/(reschedule\?r|approve\?t|decline\?t)=([A-Za-z0-9_\-%.~]+)"
)
ICALJS = Path(__file__).resolve().parents[1] / "unit" / "mailagent" / "icaljs_check.mjs"


# --- Parley as a process -------------------------------------------------------------------


@dataclass
class Parley:
    """A running `parley serve` with its relay sink and ports."""

    base: str
    smtp_port: int
    relay: RelaySink
    db_url: str
    http: httpx.Client = field(default_factory=lambda: httpx.Client(timeout=10))

    def api(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        return self.http.request(method, f"{self.base}/api/v1{path}", headers=ADMIN, **kwargs)

    def booking(self, booking_id: str) -> dict[str, Any]:
        response = self.api("GET", f"/bookings/{booking_id}")
        assert response.status_code == 200, response.text
        booking: dict[str, Any] = response.json()
        return booking

    def send(self, raw: bytes, to: str, sender: str | None = None) -> None:
        """Hand raw to Parley's SMTP listener as a mail server would."""
        mail_from = sender or str(email.message_from_bytes(raw)["From"])
        with smtplib.SMTP("127.0.0.1", self.smtp_port, timeout=10) as client:
            assert client.sendmail(mail_from, [to], raw) == {}

    def inbound_outcome(self, raw: bytes, timeout: float = 15.0) -> tuple[str, str | None]:
        """(outcome, reason) of a stored message once the worker has settled it."""
        key = str(email.message_from_bytes(raw)["Message-ID"]).strip()
        engine = make_engine(self.db_url)
        try:
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                with make_sessionmaker(engine)() as session:
                    row = session.scalar(
                        select(InboundMessage).where(InboundMessage.message_key == key)
                    )
                    if row is not None and row.outcome != "pending":
                        return row.outcome, row.outcome_reason
                time.sleep(0.1)
        finally:
            engine.dispose()
        raise TimeoutError(f"{key} not processed within {timeout} s")


@pytest.fixture
def parley(tmp_path: Path, db_url: str) -> Iterator[Parley]:
    with running_relay() as (sink, relay_port):
        proc, parley_ = serve_parley(tmp_path, db_url, sink, relay_port)
        try:
            yield parley_
        finally:
            parley_.http.close()
            stop_parley(proc)


def serve_parley(
    tmp_path: Path,
    db_url: str,
    sink: RelaySink,
    relay_port: int,
    *options: str,
    **extra: str,
) -> tuple[subprocess.Popen[bytes], Parley]:
    http_port, smtp_port = free_port(), free_port()
    base = f"http://127.0.0.1:{http_port}"
    env = parley_env(
        tmp_path / "data",
        PARLEY_DATABASE_URL=db_url,
        PARLEY_HTTP_PORT=str(http_port),
        PARLEY_BASE_URL=base,
        PARLEY_SMTP_PORT=str(smtp_port),
        PARLEY_SMTP_RELAY_URL=f"smtp://127.0.0.1:{relay_port}",
        PARLEY_ORGANIZER_EMAIL=ORGANIZER,
        PARLEY_WORKER_POLL_SECONDS="0.2",
        PARLEY_ADMIN_TOKEN=ADMIN_TOKEN,
        PARLEY_SECRET_KEY="e2e-secret-key-0123456789abcdef0123",
        **({"PARLEY_LOG_LEVEL": "warning"} | extra),
    )
    proc = start(["serve", *options], env, tmp_path)
    deadline = time.monotonic() + 60
    while True:
        try:
            wait_healthy(base, timeout=1)
            return proc, Parley(base, smtp_port, sink, db_url)
        except TimeoutError:
            if proc.poll() is None and time.monotonic() < deadline:
                continue
            stop_parley(proc)
            logs = b"".join(p.read_bytes() for p in tmp_path.glob("parley-serve-*.log"))
            raise RuntimeError(f"parley serve did not come up: {logs[-2000:]!r}") from None


def worker_env(tmp_path: Path, db_url: str, relay_port: int, base: str) -> dict[str, str]:
    """What `parley worker` needs to share the work of a `parley serve` from serve_parley."""
    return parley_env(
        tmp_path / "data",
        PARLEY_DATABASE_URL=db_url,
        PARLEY_BASE_URL=base,
        PARLEY_SMTP_PORT="0",
        PARLEY_SMTP_RELAY_URL=f"smtp://127.0.0.1:{relay_port}",
        PARLEY_ORGANIZER_EMAIL=ORGANIZER,
        PARLEY_WORKER_POLL_SECONDS="0.2",
        PARLEY_SECRET_KEY="e2e-secret-key-0123456789abcdef0123",
        PARLEY_LOG_LEVEL="warning",
    )


def stop_parley(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=5)


# --- booking over the JSON API -------------------------------------------------------------


@dataclass(frozen=True)
class Booked:
    id: str
    uid: str
    start: datetime
    invitations: dict[str, Received]  # by role
    free: list[datetime]  # other free starts of the same duration

    def organizer_of(self, role: str) -> str:
        """The private (plus-addressed) organizer address in that attendee's invitation."""
        _, calendar = itip_of(self.invitations[role])
        event = next(iter(calendar.walk("VEVENT")))
        return str(event["ORGANIZER"]).removeprefix("mailto:")


def book(parley: Parley, slug: str = "ada") -> Booked:
    """Provider, availability, hold and confirm; returns once both invitations arrived."""
    created = parley.api(
        "POST",
        "/providers",
        json={"name": "Ada Host", "email": HOST, "timezone": "Europe/Berlin", "slug": slug},
    )
    assert created.status_code == 201, created.text
    provider_id = created.json()["id"]
    hours = {
        "timezone": "Europe/Berlin",
        "weekly": [{"days": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"],
                    "start": "08:00", "end": "20:00"}],
        "lead_time_hours": 2,
        "booking_window_days": 30,
        "min_duration_minutes": 30,
        "slot_step_minutes": 30,
        "instant_book": True,
    }  # fmt: skip
    put = parley.api("PUT", f"/providers/{provider_id}/availability", json=hours)
    assert put.status_code == 200, put.text
    now = datetime.now(UTC)
    slots = parley.api(
        "GET",
        f"/providers/{provider_id}/slots",
        params={
            "start": (now + timedelta(days=2)).isoformat(),
            "end": (now + timedelta(days=6)).isoformat(),
            "duration": "30",
        },
    )
    assert slots.status_code == 200, slots.text
    starts = [datetime.fromisoformat(s["start"]) for s in slots.json()["slots"]]
    assert len(starts) > 10
    chosen = starts[0]
    before = len(parley.relay.snapshot())
    hold = parley.api(
        "POST",
        "/holds",
        json={
            "provider_id": provider_id,
            "start": chosen.isoformat(),
            "end": (chosen + timedelta(minutes=30)).isoformat(),
            "guest_email": GUEST,
            "guest_name": "Grace Guest",
            "guest_timezone": "Europe/Berlin",
        },
    )
    assert hold.status_code == 201, hold.text
    confirmed = parley.api("POST", f"/holds/{hold.json()['id']}/confirm")
    assert confirmed.status_code == 201, confirmed.text
    booking = confirmed.json()["booking"]
    got = parley.relay.wait_count(before + 2)[before:]
    by_recipient = {m.recipient: m for m in got}
    assert set(by_recipient) == {HOST, GUEST}, [m.rcpt_tos for m in got]
    return Booked(
        booking["id"],
        booking["uid"],
        chosen,
        {"host": by_recipient[HOST], "guest": by_recipient[GUEST]},
        [s for s in starts[4:] if s != chosen],
    )


# --- reading what the relay got ------------------------------------------------------------


def parts(received: Received) -> list[EmailMessage]:
    return [p for p in received.message.walk() if not p.is_multipart()]  # type: ignore[misc]


def decoded(part: EmailMessage) -> str:
    content = part.get_content()
    return content.decode("utf-8", "replace") if isinstance(content, bytes) else str(content)


def itip_of(received: Received) -> tuple[str, icalendar.Calendar]:
    """METHOD and calendar of the inline text/calendar part."""
    for part in parts(received):
        if part.get_content_type() == "text/calendar" and not part.is_attachment():
            calendar = icalendar.Calendar.from_ical(decoded(part))
            return str(calendar["METHOD"]), calendar
    raise AssertionError(f"no inline text/calendar in {received.message['Subject']}")


def is_itip(received: Received, method: str) -> bool:
    return any(
        p.get_content_type() == "text/calendar" and f"METHOD:{method}" in decoded(p)
        for p in parts(received)
    )


def links(received: Received) -> dict[str, str]:
    """Link URLs in the message text, by kind ("reschedule", "approve", "decline")."""
    found: dict[str, str] = {}
    for part in parts(received):
        if part.get_content_type() in ("text/plain", "text/html"):
            for match in LINK.finditer(decoded(part)):
                found.setdefault(match.group(1).split("?")[0], match.group(0))
    return found


def views(received: Received) -> list[str]:
    """Every readable form of a message: raw, decoded headers, each decoded part."""
    message = received.message
    out = [received.raw.decode("latin-1")]
    out += [f"{name}: {value}" for name, value in message.items()]
    out += [decoded(p) for p in parts(received)]
    out += [str(p.get_filename() or "") for p in parts(received)]
    return [v.casefold() for v in out]


def event_of(received: Received) -> icalendar.Event:
    _, calendar = itip_of(received)
    events = list(calendar.walk("VEVENT"))
    assert len(events) == 1
    event: icalendar.Event = events[0]
    return event


def attendees(event: icalendar.Event) -> list[Any]:
    value = event.get("ATTENDEE")
    if value is None:
        return []
    return list(value) if isinstance(value, list) else [value]


def new_mail(
    relay: RelaySink, before: int, wanted: Callable[[Received], bool], count: int
) -> list[Received]:
    got = relay.wait_for(lambda all_: sum(map(wanted, all_[before:])) >= count)
    return [m for m in got[before:] if wanted(m)]


def run_icaljs(texts: list[str]) -> list[dict[str, Any]]:
    if shutil.which("node") is None:
        pytest.skip("node is not installed; cannot cross-check with ical.js")
    if not (ICALJS.parent / "js" / "node_modules" / "ical.js").is_dir():
        pytest.skip("ical.js missing: run `npm install` in tests/unit/mailagent/js")
    result = subprocess.run(
        ["node", str(ICALJS)], input=json.dumps(texts), capture_output=True, text=True,
        timeout=60, check=False,
    )  # fmt: skip
    if result.returncode == 3:
        pytest.skip(f"ical.js could not be loaded: {result.stderr.strip()}")
    assert result.returncode == 0, result.stderr
    parsed: list[dict[str, Any]] = json.loads(result.stdout)
    return parsed


def berlin(moment: datetime) -> str:
    return moment.astimezone(BERLIN).strftime("%Y%m%dT%H%M%S")


def utc(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


# --- §15: invitations ----------------------------------------------------------------------


def test_confirmation_sends_two_private_requests_both_parsers_read(parley: Parley) -> None:
    booked = book(parley)
    calendars = {}
    for role, other in (("host", GUEST), ("guest", HOST)):
        received = booked.invitations[role]
        method, calendar = itip_of(received)
        event = event_of(received)
        assert method == "REQUEST"
        assert str(event["UID"]) == booked.uid
        assert int(event["SEQUENCE"]) == 0
        (attendee,) = attendees(event)
        assert str(attendee).lower() == f"mailto:{received.recipient}"
        assert attendee.params["RSVP"] == "TRUE"
        assert attendee.params["PARTSTAT"] == "NEEDS-ACTION"
        assert str(event["X-MICROSOFT-DISALLOW-COUNTER"]) == "FALSE"
        organizer = booked.organizer_of(role)
        assert organizer.startswith("scheduling+") and organizer.endswith("@parley.test")
        assert event.decoded("DTSTART") == booked.start
        assert "reschedule" in links(received)
        attachments = [p for p in parts(received) if p.is_attachment()]
        assert attachments, "an .ics attachment for clients that ignore the inline part"
        for view in views(received):
            assert other.casefold() not in view, f"{role}'s copy leaks {other}"
        calendars[role] = calendar.to_ical().decode()
    assert booked.organizer_of("host") != booked.organizer_of("guest")
    raw_ics = [
        decoded(p)
        for role in ("host", "guest")
        for p in parts(booked.invitations[role])
        if p.get_content_type() == "text/calendar"
    ]
    for result, text in zip(run_icaljs(raw_ics), raw_ics, strict=True):
        assert "error" not in result, (result, text)
        assert result["method"] == "REQUEST"
        (event,) = result["events"]
        assert event["uid"] == booked.uid and event["sequence"] == 0
        assert len(event["attendees"]) == 1
        assert datetime.fromisoformat(event["dtstart"].replace("Z", "+00:00")) == booked.start


# --- §15: answers from calendar apps -------------------------------------------------------


def test_declined_reply_cancels_for_both_under_strict(parley: Parley) -> None:
    booked = book(parley)
    before = len(parley.relay.snapshot())
    to = booked.organizer_of("guest")
    raw = mails.apple(uid=booked.uid, sequence=0, attendee=GUEST, to=to, partstat="DECLINED")
    sent = time.monotonic()
    parley.send(raw, to)
    cancels = new_mail(parley.relay, before, lambda m: is_itip(m, "CANCEL"), 2)
    # Not at outbox.deliver's next period (5 s): the change makes delivery due at once.
    assert max(m.at for m in cancels) - sent < 2.5
    assert {m.recipient for m in cancels} == {HOST, GUEST}
    for message in cancels:
        event = event_of(message)
        assert str(event["UID"]) == booked.uid
        assert int(event["SEQUENCE"]) == 1
        assert str(event["STATUS"]) == "CANCELLED"
        other = GUEST if message.recipient == HOST else HOST
        assert all(other.casefold() not in v for v in views(message))
    booking = parley.booking(booked.id)
    assert booking["status"] == "cancelled" and booking["sequence"] == 1
    assert parley.inbound_outcome(raw)[0] == "itip"


def test_outlook_counter_is_routed_to_the_host_and_approval_updates_both(parley: Parley) -> None:
    booked = book(parley)
    new_start = booked.free[0]
    before = len(parley.relay.snapshot())
    to = booked.organizer_of("guest")
    counter = mails.outlook(
        method="COUNTER", uid=booked.uid, sequence=0, attendee=GUEST, to=to,
        start_local=berlin(new_start), end_local=berlin(new_start + timedelta(minutes=30)),
        comment="Could we move it?",
    )  # fmt: skip
    parley.send(counter, to)
    (request,) = new_mail(parley.relay, before, lambda m: "approve" in links(m), 1)
    assert request.recipient == HOST
    assert all(GUEST.casefold() not in v for v in views(request))
    approve = links(request)["approve"]
    token = approve.split("t=", 1)[1]

    page = parley.http.get(approve)  # a mail scanner or a person opening the link
    assert page.status_code == 200 and "Yes, approve" in page.text
    assert parley.booking(booked.id)["sequence"] == 0, "opening the link changed the booking"

    before = len(parley.relay.snapshot())
    done = parley.http.post(f"{parley.base}/approve", data={"t": token})
    assert done.status_code == 200, done.text
    assert "Approved" in done.text
    updates = new_mail(parley.relay, before, lambda m: is_itip(m, "REQUEST"), 2)
    assert {m.recipient for m in updates} == {HOST, GUEST}
    for message in updates:
        event = event_of(message)
        assert str(event["UID"]) == booked.uid
        assert int(event["SEQUENCE"]) == 1
        assert event.decoded("DTSTART") == new_start
    booking = parley.booking(booked.id)
    assert booking["sequence"] == 1
    assert datetime.fromisoformat(booking["start"]) == new_start

    again = parley.http.post(f"{parley.base}/approve", data={"t": token})
    assert again.status_code == 410 and "already used" in again.text
    assert parley.booking(booked.id)["sequence"] == 1
    time.sleep(1.0)  # nothing more may arrive for the refused second approval
    assert len(parley.relay.snapshot()) == before + 2


def test_gmail_counter_then_a_second_one_the_latest_wins(parley: Parley) -> None:
    booked = book(parley)
    to = booked.organizer_of("guest")
    requests = []
    for index, new_start in enumerate(booked.free[:2]):
        before = len(parley.relay.snapshot())
        raw = mails.gmail(
            method="COUNTER", uid=booked.uid, sequence=0, attendee=GUEST, to=to,
            partstat="TENTATIVE", start_utc=utc(new_start),
            end_utc=utc(new_start + timedelta(minutes=30)), note=f"option {index}",
            dtstamp=utc(datetime.now(UTC) + timedelta(seconds=index)),
        )  # fmt: skip
        parley.send(raw, to)
        requests += new_mail(parley.relay, before, lambda m: "approve" in links(m), 1)
    first, second = (links(m)["approve"] for m in requests)
    stale = parley.http.get(first)
    assert stale.status_code == 409
    assert "replaced by a newer proposal" in stale.text or "superseded" in stale.text
    refused = parley.http.post(f"{parley.base}/approve", data={"t": first.split("t=")[1]})
    assert refused.status_code == 409
    done = parley.http.post(f"{parley.base}/approve", data={"t": second.split("t=")[1]})
    assert done.status_code == 200, done.text
    booking = parley.booking(booked.id)
    assert datetime.fromisoformat(booking["start"]) == booked.free[1]
    assert booking["guest"]["partstat"] == "needs-action"  # TENTATIVE in a COUNTER is no answer


def test_thunderbird_and_ios_exchange_counters_reach_the_counterparty(parley: Parley) -> None:
    booked = book(parley)
    shapes = [
        ("host", GUEST, lambda to, start: mails.thunderbird(
            method="COUNTER", uid=booked.uid, sequence=0, attendee=HOST, to=to,
            partstat="ACCEPTED", start_local=berlin(start),
            end_local=berlin(start + timedelta(minutes=30)), comment="Earlier?",
        )),
        ("guest", HOST, lambda to, start: mails.ios_exchange_counter(
            uid=booked.uid, sequence=0, attendee=GUEST, to=to, start_utc=utc(start),
            end_utc=utc(start + timedelta(minutes=30)), note="Later?",
        )),
    ]  # fmt: skip
    for (role, counterparty, shape), new_start in zip(shapes, booked.free[:2], strict=True):
        to = booked.organizer_of(role)
        before = len(parley.relay.snapshot())
        raw = shape(to, new_start)
        parley.send(raw, to)
        (request,) = new_mail(parley.relay, before, lambda m: "approve" in links(m), 1)
        assert request.recipient == counterparty
        proposer = HOST if role == "host" else GUEST
        assert all(proposer.casefold() not in v for v in views(request))
        assert parley.inbound_outcome(raw)[0] == "itip"
    assert parley.booking(booked.id)["sequence"] == 0  # proposals only, until approved


def test_thunderbird_accept_is_recorded_without_mail(parley: Parley) -> None:
    booked = book(parley)
    to = booked.organizer_of("host")
    raw = mails.thunderbird(
        method="REPLY", uid=booked.uid, sequence=0, attendee=HOST, to=to, partstat="ACCEPTED"
    )
    before = len(parley.relay.snapshot())
    parley.send(raw, to)
    assert parley.inbound_outcome(raw)[0] == "itip"
    assert parley.booking(booked.id)["host"]["partstat"] == "accepted"
    time.sleep(0.5)
    assert len(parley.relay.snapshot()) == before


def test_answers_reach_a_worker_of_another_process_at_once(tmp_path: Path, db_url: str) -> None:
    """`parley serve --no-worker` beside `parley worker`: each stored answer wakes the job
    in the database, so it is not left for inbound.process's next period (10 s)."""
    with running_relay() as (sink, relay_port):
        proc, parley = serve_parley(tmp_path, db_url, sink, relay_port, "--no-worker")
        worker = start(["worker"], worker_env(tmp_path, db_url, relay_port, parley.base), tmp_path)
        try:
            booked = book(parley)
            # The first answer may ride on the job's periodic run; the second comes right
            # after it, a whole period before the next one.
            accept = mails.thunderbird(
                method="REPLY", uid=booked.uid, sequence=0, attendee=HOST,
                to=booked.organizer_of("host"), partstat="ACCEPTED",
            )  # fmt: skip
            parley.send(accept, booked.organizer_of("host"))
            assert parley.inbound_outcome(accept)[0] == "itip"
            before = len(parley.relay.snapshot())
            to = booked.organizer_of("guest")
            decline = mails.apple(
                uid=booked.uid, sequence=0, attendee=GUEST, to=to, partstat="DECLINED"
            )
            sent = time.monotonic()
            parley.send(decline, to)
            cancels = new_mail(parley.relay, before, lambda m: is_itip(m, "CANCEL"), 2)
            assert max(m.at for m in cancels) - sent < 2.5
        finally:
            parley.http.close()
            stop_parley(worker)
            stop_parley(proc)


# --- §13: edge cases -----------------------------------------------------------------------


def test_forwarded_invite_answered_by_a_third_party_is_ignored(parley: Parley) -> None:
    booked = book(parley)
    to = booked.organizer_of("guest")
    stranger = "forwarded.to@elsewhere.example"
    raw = mails.gmail(
        method="REPLY", uid=booked.uid, sequence=0, attendee=stranger, to=to, partstat="DECLINED"
    )
    before = len(parley.relay.snapshot())
    parley.send(raw, to)
    outcome, reason = parley.inbound_outcome(raw)
    assert outcome == "ignored", reason
    assert "never invited" in (reason or "")
    booking = parley.booking(booked.id)
    assert booking["status"] == "confirmed" and booking["sequence"] == 0
    time.sleep(0.5)
    assert len(parley.relay.snapshot()) == before


def test_plain_answer_gets_its_senders_link_and_an_out_of_office_gets_nothing(
    parley: Parley,
) -> None:
    booked = book(parley)
    invitation_id = str(booked.invitations["guest"].message["Message-ID"])
    to = booked.organizer_of("guest")
    before = len(parley.relay.snapshot())
    ooo = (
        f"From: {GUEST}\r\nTo: {to}\r\nSubject: Automatic reply: Session\r\n"
        f"Message-ID: <ooo-{time.monotonic_ns()}@guestmail.example>\r\n"
        f"In-Reply-To: {invitation_id}\r\nAuto-Submitted: auto-replied\r\n"
        "X-Auto-Response-Suppress: All\r\nContent-Type: text/plain\r\n\r\n"
        "I am out of the office until Monday.\r\n"
    ).encode()
    parley.send(ooo, to)
    assert parley.inbound_outcome(ooo)[0] == "auto_reply"
    plain = mails.plain(sender=GUEST, to=to, in_reply_to=invitation_id)
    parley.send(plain, to)
    (answer,) = new_mail(parley.relay, before, lambda m: True, 1)
    assert answer.recipient == GUEST
    assert answer.message["In-Reply-To"] == str(email.message_from_bytes(plain)["Message-ID"])
    assert answer.message["Auto-Submitted"] == "auto-generated"
    assert all(HOST.casefold() not in v for v in views(answer))
    page = parley.http.get(links(answer)["reschedule"])
    assert page.status_code == 200 and "Request a new time" in page.text
    assert parley.inbound_outcome(plain)[0] == "plain_reply"
    time.sleep(0.5)
    assert len(parley.relay.snapshot()) == before + 1  # the out-of-office got no answer


def test_mail_written_by_a_change_makes_outbox_delivery_due_at_once(
    runtime: Runtime, admin_headers: dict[str, str]
) -> None:
    runtime.clock = Clock()
    ensure_periodic(runtime.sessions, [Periodic("outbox.deliver", 5)], runtime.clock())
    with runtime.sessions.begin() as session:
        job = session.scalar(select(Job).where(Job.dedup_key == "periodic:outbox.deliver"))
        assert job is not None
        job.run_at = runtime.clock() + timedelta(seconds=5)
    booked_in_process(runtime, admin_headers)  # writes two invitations
    with runtime.sessions() as session:
        job = session.scalar(select(Job).where(Job.dedup_key == "periodic:outbox.deliver"))
        assert job is not None
        assert job.run_at <= runtime.clock(), "the invitations would wait for the next period"


def test_expired_approve_link_offers_a_fresh_request_a_new_time_button(
    runtime: Runtime, admin_headers: dict[str, str]
) -> None:
    # The runtime's clock only moves in-process, so expiry is tested over the app itself.
    runtime.settings.proposal_ttl_hours = 1
    client, booking_id = booked_in_process(runtime, admin_headers)
    with runtime.sessions() as session:
        rows = session.scalars(select(OutboundMessage).order_by(OutboundMessage.id)).all()
        guest_copy = next(r for r in rows if r.recipient == HELPER_GUEST)
    reschedule = links(Received("", (HELPER_GUEST,), guest_copy.mime, 0.0))["reschedule"]
    token = reschedule.split("r=", 1)[1]
    proposed = client.post(
        "/api/v1/reschedule/propose",
        json={"token": token, "start": "2027-03-02T13:00:00Z", "end": "2027-03-02T13:30:00Z"},
    )
    assert proposed.status_code == 201, proposed.text
    with runtime.sessions() as session:
        row = session.scalars(select(OutboundMessage).order_by(OutboundMessage.id.desc())).first()
        assert row is not None
    approve = links(Received("", (row.recipient,), row.mime, 0.0))["approve"]
    runtime.clock.now += timedelta(hours=1, minutes=1)  # type: ignore[attr-defined]
    page = client.get("/approve?t=" + approve.split("t=", 1)[1])
    assert page.status_code == 410, page.text
    assert "This link has expired" in page.text
    fresh = re.search(r'href="([^"]*/reschedule\?r=[^"]+)"', page.text)
    assert fresh is not None, "a fresh Request a new time button"
    assert "Request a new time" in page.text
    again = client.get("/reschedule?r=" + fresh.group(1).split("r=", 1)[1])
    assert again.status_code == 200 and "Free times" in again.text
    booking = client.get(f"/api/v1/bookings/{booking_id}", headers=admin_headers).json()
    assert booking["sequence"] == 0


# --- answers the in-process twins (integration/negotiation/test_replies.py) only fed to
# --- process_pending: here they arrive over SMTP and are judged by what the user sees.


def _reschedule(parley: Parley, booked: Booked) -> datetime:
    """Move the booking over the API; returns the new start once both updates arrived."""
    new_start = booked.free[0]
    before = len(parley.relay.snapshot())
    end = new_start + timedelta(minutes=30)
    moved = parley.api("POST", f"/bookings/{booked.id}/reschedule",
                       json={"start": new_start.isoformat(), "end": end.isoformat()})  # fmt: skip
    assert moved.status_code == 200, moved.text
    new_mail(parley.relay, before, lambda m: is_itip(m, "REQUEST"), 2)
    return new_start


def test_refresh_by_mail_gets_the_current_copy_back(parley: Parley) -> None:
    # Catches: a REFRESH answered with the copy first sent (old time, SEQUENCE 0) or sent
    # to the host, or not answered by mail at all.
    booked = book(parley)
    new_start = _reschedule(parley, booked)
    to = booked.organizer_of("guest")
    before = len(parley.relay.snapshot())
    raw = mails.thunderbird(method="REFRESH", uid=booked.uid, sequence=1, attendee=GUEST, to=to)
    parley.send(raw, to)
    (copy,) = new_mail(parley.relay, before, lambda m: is_itip(m, "REQUEST"), 1)
    assert copy.recipient == GUEST
    event = event_of(copy)
    assert str(event["UID"]) == booked.uid and int(event["SEQUENCE"]) == 1
    assert event.decoded("DTSTART") == new_start
    assert all(HOST.casefold() not in v for v in views(copy))


def test_a_decline_of_the_old_time_changes_nothing_after_a_reschedule(parley: Parley) -> None:
    # Catches: a late answer to SEQUENCE 0 cancelling the booking that was moved since.
    booked = book(parley)
    _reschedule(parley, booked)
    to = booked.organizer_of("guest")
    before = len(parley.relay.snapshot())
    raw = mails.gmail(method="REPLY", uid=booked.uid, sequence=0, attendee=GUEST, to=to,
                      partstat="DECLINED")  # fmt: skip
    parley.send(raw, to)
    assert parley.inbound_outcome(raw)[0] == "ignored"
    booking = parley.booking(booked.id)
    assert booking["status"] == "confirmed" and booking["sequence"] == 1
    time.sleep(0.5)
    assert not [m for m in parley.relay.snapshot()[before:] if is_itip(m, "CANCEL")]


def test_an_apple_reply_from_another_account_counts_for_the_guest(parley: Parley) -> None:
    # Catches: an answer sent from the guest's iCloud account (other From, same private
    # address) being refused, so the guest's answer never shows on the booking.
    booked = book(parley)
    to = booked.organizer_of("guest")
    raw = mails.apple(uid=booked.uid, sequence=0, attendee=GUEST, to=to, partstat="TENTATIVE",
                      sender="grace@icloud.example")  # fmt: skip
    parley.send(raw, to, sender="grace@icloud.example")
    assert parley.inbound_outcome(raw)[0] == "itip"
    assert parley.booking(booked.id)["guest"]["partstat"] == "tentative"
