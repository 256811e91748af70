"""Implicit scheduling latency: a provider's CalDAV PUT of an event with two attendees, from
the request to both REQUESTs accepted by a local relay (target: median <= 100 ms).

Starts `parley serve` with a local aiosmtpd relay sink (as tests/e2e does), makes a
provider with an app password, then PUTs N new events into its blocks calendar one after
the other over a kept-alive HTTP connection, each inviting two attendees, and times each
from sending the PUT to the relay accepting the second REQUEST. Prints median and p95.

Usage: python -m bench.dav_schedule [--events 60] [--sqlite]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

from tests.e2e.relay import Received, running_relay
from tests.e2e.test_negotiation_smtp import serve_parley, stop_parley
from tests.pg import create_database, drop_database

FMT = "%Y%m%dT%H%M%SZ"


def event(uid: str, start: datetime, n: int) -> str:
    return "\r\n".join([
        "BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//Apple Inc.//macOS 14.0//EN", "BEGIN:VEVENT",
        f"UID:{uid}", f"DTSTAMP:{datetime.now(UTC):{FMT}}", f"DTSTART:{start:{FMT}}",
        f"DTEND:{start + timedelta(hours=1):{FMT}}", "SUMMARY:Planning",
        "ORGANIZER;CN=Bench Provider:mailto:bench@provider.example",
        f"ATTENDEE;CN=Anna;PARTSTAT=NEEDS-ACTION;RSVP=TRUE:mailto:anna{n}@guests.example",
        f"ATTENDEE;CN=Bob;PARTSTAT=NEEDS-ACTION;RSVP=TRUE:mailto:bob{n}@other.example",
        "END:VEVENT", "END:VCALENDAR", "",
    ])  # fmt: skip


class Arrivals:
    """When the relay accepted each message, by recipient."""

    def __init__(self) -> None:
        self.at: dict[str, float] = {}
        self.changed = threading.Condition()

    def __call__(self, received: Received) -> None:
        with self.changed:
            self.at[received.recipient] = received.at
            self.changed.notify_all()

    def wait(self, recipients: list[str], timeout: float = 20.0) -> float:
        deadline = time.monotonic() + timeout
        with self.changed:
            while not all(r in self.at for r in recipients):
                if not self.changed.wait(max(0.0, deadline - time.monotonic())):
                    raise TimeoutError(f"relay did not get {recipients}")
            return max(self.at[r] for r in recipients)


def measure(db_url: str, events: int) -> tuple[list[float], list[float]]:
    workdir = Path(tempfile.mkdtemp(prefix="parley-bench-"))
    with running_relay() as (sink, relay_port):
        arrivals = Arrivals()
        sink.listeners.append(arrivals)
        proc, parley = serve_parley(workdir, db_url, sink, relay_port)
        try:
            made = parley.api("POST", "/providers", json={
                "name": "Bench Provider", "email": "bench@provider.example",
                "timezone": "Europe/Berlin", "slug": "bench"})  # fmt: skip
            made.raise_for_status()
            issued = parley.api("POST", f"/providers/{made.json()['id']}/app-passwords",
                                json={"label": "bench"})  # fmt: skip
            issued.raise_for_status()
            auth = (issued.json()["username"], issued.json()["password"])
            base = f"{parley.base}/dav/{auth[0]}/blocks"
            start = datetime.now(UTC).replace(microsecond=0) + timedelta(days=2)
            times, answers = [], []
            with httpx.Client(auth=auth, timeout=20) as client:
                client.request("PROPFIND", f"{base}/", headers={"Depth": "0"})  # warm, signed in
                for n in range(events + 5):  # the first five warm the process up
                    text = event(f"bench-{n}@apple.example", start + timedelta(hours=n), n)
                    sent = time.monotonic()
                    answer = client.put(f"{base}/bench-{n}.ics", content=text,
                                        headers={"Content-Type": "text/calendar"})  # fmt: skip
                    answered = time.monotonic()
                    if answer.status_code != 201:
                        raise RuntimeError(f"PUT answered {answer.status_code}: {answer.text}")
                    got = arrivals.wait([f"anna{n}@guests.example", f"bob{n}@other.example"])
                    if n >= 5:
                        times.append(got - sent)
                        answers.append(answered - sent)
            return times, answers
        finally:
            parley.http.close()
            stop_parley(proc)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=60)
    parser.add_argument("--sqlite", action="store_true", help="the embedded default database")
    args = parser.parse_args()
    if args.sqlite:
        folder = Path(tempfile.mkdtemp(prefix="parley-bench-db-"))
        times, answers = measure(f"sqlite:///{folder / 'parley.db'}", args.events)
    else:
        url = create_database(prefix="parley_bench")
        try:
            times, answers = measure(url, args.events)
        finally:
            drop_database(url)
    ms = sorted(t * 1000 for t in times)
    p95 = ms[min(len(ms) - 1, round(0.95 * (len(ms) - 1)))]
    backend = "SQLite" if args.sqlite else "PostgreSQL"
    print(
        f"CalDAV PUT with 2 attendees -> both REQUESTs at the relay ({backend}, {len(ms)} PUTs): "
        f"median {statistics.median(ms):.1f} ms, p95 {p95:.1f} ms, max {ms[-1]:.1f} ms"
        f" (the PUT's own answer: median {statistics.median(answers) * 1000:.1f} ms)"
    )


if __name__ == "__main__":
    main()
