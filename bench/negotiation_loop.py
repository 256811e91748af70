"""The negotiation loop's latency and throughput: an answer in over SMTP, its mail out (not a test).

Run ``python bench/negotiation_loop.py [--kind reply|counter] [--bookings N] [--clients C]
[--rate R] [--workers W]``:
creates its own PostgreSQL database on 127.0.0.1:5432 (``--sqlite`` for the embedded
default), starts `parley serve` with a local relay sink, books N sessions over the JSON
API and waits for their invitations. Then for each booking one answer is sent to
Parley's SMTP listener: a REPLY DECLINED from the guest (result: CANCEL to both) or a
Gmail-shaped COUNTER from the host (result: the approval request to that booking's
guest). Latency runs from the listener's 250 to the last resulting mail at the relay:
first one answer at a time (light load), then all the rest from C concurrent clients
(sustained loops/s), or with ``--rate R`` offered at R answers a second, so the latency
under that load shows whether Parley keeps up. ``--workers W`` adds W `parley worker`
processes beside `parley serve` (the scaled-out deployment: they share the job queue and
the inbound mail).
"""

from __future__ import annotations

import argparse
import email
import os
import re
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email import policy
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.e2e.helpers import start
from tests.e2e.inbound import ALL_DAY
from tests.e2e.relay import Received, running_relay
from tests.e2e.test_negotiation_smtp import (
    ADMIN,
    serve_parley,
    stop_parley,
    worker_env,
)
from tests.integration.negotiation import mails
from tests.pg import create_database, drop_database

HOST = "ada.host@hostmail.example"


class Arrivals:
    """What the relay got, keyed by booking UID (iTIP) or by recipient (notices)."""

    def __init__(self) -> None:
        self.times: dict[str, list[float]] = {}
        self.changed = threading.Condition()
        self.invitations: dict[str, dict[str, str]] = {}  # guest → uid, organizer per role

    def __call__(self, item: Received) -> None:
        # Runs inside the relay sink's DATA handler: a fast MTA answers 250 at once, so the
        # calendar part is read straight from the bytes (Parley sends it 7bit), and only
        # other shapes go through the full email parser.
        fields = _calendar_fields(item.raw)
        if fields is None:
            fields = _parsed_calendar_fields(item.raw)
        uid, method = fields.get("UID"), fields.get("METHOD")
        organizer = fields.get("ORGANIZER", "").rpartition("mailto:")[2]
        key = uid or item.recipient
        with self.changed:
            if method == "REQUEST" and uid and organizer:
                self.invitations.setdefault(uid, {})[item.recipient] = organizer
            else:
                self.times.setdefault(key, []).append(item.at)
            self.changed.notify_all()

    def wait(self, predicate: Callable[[], bool], timeout: float) -> None:
        with self.changed:
            if not self.changed.wait_for(predicate, timeout):
                raise TimeoutError("the relay did not receive the expected mail in time")


def _fields(ics: str) -> dict[str, str]:
    unfolded = ics.replace("\r\n ", "").replace("\n ", "")
    out = {}
    for line in unfolded.splitlines():
        name, _, value = line.partition(":")
        key = name.split(";")[0].upper()
        out.setdefault(key, value if key != "ORGANIZER" else line)
    return out


_CALENDAR_PART = re.compile(
    rb"\r\nContent-Type: text/calendar[^\r]*\r\n((?:[^\r]+\r\n)*)\r\n(.*?)\r\n--", re.DOTALL
)


def _calendar_fields(raw: bytes) -> dict[str, str] | None:
    """UID, METHOD and ORGANIZER of an unencoded calendar part; {} without one; None: parse."""
    found = _CALENDAR_PART.search(raw)
    if found is None:
        return None if b"text/calendar" in raw else {}
    headers, body = found.groups()
    if b"base64" in headers or b"quoted-printable" in headers:
        return None
    return _fields(body.decode("utf-8", "replace"))


def _parsed_calendar_fields(raw: bytes) -> dict[str, str]:
    message = email.message_from_bytes(raw, policy=policy.default)
    for part in message.walk():
        if part.get_content_type() == "text/calendar" and not part.is_attachment():
            ics = part.get_content()
            return _fields(ics.decode() if isinstance(ics, bytes) else ics)
    return {}


def book_all(
    base: str, count: int, arrivals: Arrivals, tenant_slug: str | None = None, slug: str = "ada"
) -> list[tuple[str, str]]:
    """count confirmed bookings (guest i, 30 min each) in the tenant (None: default);
    returns (uid, guest) once invited."""
    headers = ADMIN | ({} if tenant_slug is None else {"X-Parley-Tenant": tenant_slug})
    http = httpx.Client(base_url=f"{base}/api/v1", headers=headers, timeout=30)
    created = http.post(
        "/providers", json={"name": "Ada Host", "email": HOST, "timezone": "UTC", "slug": slug}
    )
    provider_id = created.json()["id"]
    assert http.put(f"/providers/{provider_id}/availability", json=ALL_DAY).status_code == 200
    first = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) + timedelta(days=1)

    def one(index: int) -> str:
        start = first + timedelta(minutes=30 * index)
        guest = f"guest{index}@guests.example"
        body = {
            "provider_id": provider_id, "start": start.isoformat(),
            "end": (start + timedelta(minutes=30)).isoformat(), "guest_email": guest,
            "guest_name": f"Guest {index}",
        }  # fmt: skip
        with httpx.Client(base_url=f"{base}/api/v1", headers=headers, timeout=30) as client:
            hold = client.post("/holds", json=body)
            assert hold.status_code == 201, hold.text
            done = client.post(f"/holds/{hold.json()['id']}/confirm")
            assert done.status_code == 201, done.text
            uid: str = done.json()["booking"]["uid"]
            return uid

    with ThreadPoolExecutor(8) as pool:
        uids = list(pool.map(one, range(count)))
    arrivals.wait(
        lambda: all(len(arrivals.invitations.get(uid, ())) == 2 for uid in uids), 60 + count / 5
    )
    return [(uid, f"guest{i}@guests.example") for i, uid in enumerate(uids)]


def answer(kind: str, uid: str, guest: str, organizers: dict[str, str], now: datetime) -> Any:
    """(raw, envelope to, key of the result, results expected) for one booking."""
    if kind == "reply":
        to = organizers[guest]
        raw = mails.apple(uid=uid, sequence=0, attendee=guest, to=to, partstat="DECLINED")
        return raw, to, uid, 2
    to = organizers[HOST]
    start = now + timedelta(days=300, minutes=30 * (hash(uid) % 1000))
    raw = mails.gmail(
        method="COUNTER", uid=uid, sequence=0, attendee=HOST, to=to, partstat="TENTATIVE",
        start_utc=start.strftime("%Y%m%dT%H%M%SZ"),
        end_utc=(start + timedelta(minutes=30)).strftime("%Y%m%dT%H%M%SZ"), note="later?",
    )  # fmt: skip
    return raw, to, guest, 1


@dataclass(frozen=True, slots=True)
class LoopRun:
    """Seconds from 250 to the last resulting mail, one at a time and under load; loops/s."""

    light: list[float]
    loaded: list[float]
    loops_per_second: float
    cpu_per_loop: float  # seconds of Parley's processes per sustained loop (0: unknown)


def run(args: argparse.Namespace) -> None:
    db_url = (
        f"sqlite:///{tempfile.mkdtemp()}/parley.db"
        if args.sqlite
        else create_database(prefix="parley_bench")
    )
    try:
        measure(db_url, args)
    finally:
        if not args.sqlite:
            drop_database(db_url)


def measure(
    db_url: str, args: argparse.Namespace, tenant_slug: str | None = None, slug: str = "ada"
) -> LoopRun:
    """The loop on the database ``db_url`` (`parley serve` migrates it), booked in the
    tenant (None: default); prints its lines and returns the figures."""
    import smtplib

    workdir = Path(tempfile.mkdtemp(prefix="parley-bench-"))
    with running_relay() as (sink, relay_port):
        arrivals = Arrivals()
        sink.listeners.append(arrivals)
        settings = dict(item.split("=", 1) for item in args.set)
        proc, parley = serve_parley(
            workdir, db_url, sink, relay_port, PARLEY_PUBLIC_RATE_LIMIT_PER_MINUTE="0",
            **settings,
        )  # fmt: skip
        workers = [
            start(["worker"], worker_env(workdir, db_url, relay_port, parley.base), workdir)
            for _ in range(args.workers)
        ]
        try:
            started = time.monotonic()
            booked = book_all(parley.base, args.bookings, arrivals, tenant_slug, slug)
            print(f"{len(booked)} bookings invited in {time.monotonic() - started:.1f} s")
            now = datetime.now(UTC)
            jobs = [
                answer(args.kind, uid, guest, arrivals.invitations[uid], now)
                for uid, guest in booked
            ]
            light, heavy = jobs[: args.light], jobs[args.light :]

            def send_all(share: list[Any], due: list[float], sent_at: dict[str, float]) -> None:
                with smtplib.SMTP("127.0.0.1", parley.smtp_port, timeout=30) as client:
                    for index, (raw, to, key, _) in enumerate(share):
                        if due:  # an offered rate: wait for this answer's turn
                            time.sleep(max(0.0, due[index] - time.monotonic()))
                        sender = str(email.message_from_bytes(raw)["From"])
                        client.sendmail(sender, [to], raw)
                        sent_at[key] = time.monotonic()

            def done(key: str, expected: int) -> bool:
                return len(arrivals.times.get(key, ())) >= expected

            latencies = []
            for job in light:
                sent: dict[str, float] = {}
                send_all([job], [], sent)
                arrivals.wait(lambda job=job: done(job[2], job[3]), 30)
                latencies.append(max(arrivals.times[job[2]]) - sent[job[2]])
            report("light load (one at a time)", latencies)

            cpu_before = _cpu_seconds([proc, *workers])
            own_before, database_before = _cpu_seconds_of(os.getpid()), _postgres_cpu()
            steal_before = _steal_seconds()
            sent_heavy: dict[str, float] = {}
            shares = [heavy[i :: args.clients] for i in range(args.clients)]
            begin = time.monotonic()
            # With --rate, answer n is due at begin + n / rate (open loop: a late one
            # is sent at once, and the next keep their times); without it, flat out.
            dues = [
                [begin + n / args.rate for n in range(i, len(heavy), args.clients)]
                if args.rate
                else []
                for i in range(args.clients)
            ]
            threads = [
                threading.Thread(target=send_all, args=(share, due, sent_heavy))
                for share, due in zip(shares, dues, strict=True)
            ]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            accepted = time.monotonic() - begin
            arrivals.wait(lambda: all(done(j[2], j[3]) for j in heavy), 120)
            elapsed = max(max(arrivals.times[j[2]]) for j in heavy) - begin
            loaded = [max(arrivals.times[j[2]]) - sent_heavy[j[2]] for j in heavy]
            print(
                f"sustained: {len(heavy)} loops from {args.clients} SMTP clients"
                f"{f' offered at {args.rate:g}/s' if args.rate else ''} in "
                f"{elapsed:.2f} s = {len(heavy) / elapsed:.1f} loops/s "
                f"(SMTP accepted them all in {accepted:.2f} s = "
                f"{len(heavy) / accepted:.1f} msg/s)"
            )
            report("under sustained load", loaded)
            cpu = _cpu_seconds([proc, *workers]) - cpu_before
            own = _cpu_seconds_of(os.getpid()) - own_before
            database = sum(
                used - database_before.get(pid, 0.0) for pid, used in _postgres_cpu().items()
            )
            steal = _steal_seconds() - steal_before
            if cpu > 0:
                per = 1000 / len(heavy)
                print(
                    f"CPU time per sustained loop: Parley {cpu * per:.1f} ms, this "
                    f"benchmark (SMTP clients, relay sink) {own * per:.1f} ms, "
                    f"PostgreSQL {database * per:.1f} ms (machine: {os.cpu_count()} cores, "
                    f"{steal / elapsed / (os.cpu_count() or 1) * 100:.0f}% stolen by the host)"
                )
        finally:
            for process in [proc, *workers]:
                stop_parley(process)
    return LoopRun(latencies, loaded, len(heavy) / elapsed, cpu / len(heavy))


def _cpu_seconds(processes: list[Any]) -> float:
    """User + system CPU seconds the processes have used so far (Linux /proc; else 0)."""
    return _cpu_seconds_of(*(process.pid for process in processes))


def _cpu_seconds_of(*pids: int) -> float:
    """User + system CPU seconds these processes have used so far; 0 for one that is gone."""
    total = 0.0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def _postgres_cpu() -> dict[int, float]:
    """CPU seconds of each PostgreSQL server process (Linux /proc; empty elsewhere)."""
    found = {}
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            if (entry / "comm").read_text().strip() in ("postgres", "postmaster"):
                found[int(entry.name)] = _cpu_seconds_of(int(entry.name))
        except OSError:
            continue
    return found


def _steal_seconds() -> float:
    """CPU time the hypervisor gave to others, all cores together (Linux; else 0)."""
    try:
        fields = Path("/proc/stat").read_text().splitlines()[0].split()
    except OSError:
        return 0.0
    return int(fields[8]) / os.sysconf("SC_CLK_TCK") if len(fields) > 8 else 0.0


def report(label: str, values: list[float]) -> None:
    ms = sorted(v * 1000 for v in values)
    p95 = ms[min(len(ms) - 1, int(len(ms) * 0.95))]
    print(
        f"{label}: n={len(ms)} median {statistics.median(ms):.0f} ms, p95 {p95:.0f} ms, "
        f"max {ms[-1]:.0f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kind", choices=["reply", "counter"], default="reply")
    parser.add_argument("--bookings", type=int, default=600)
    parser.add_argument("--light", type=int, default=40, help="answers sent one at a time")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument(
        "--rate", type=float, default=0.0,
        help="offer the answers at this many per second (default: as fast as accepted)",
    )  # fmt: skip
    parser.add_argument("--workers", type=int, default=0, help="extra `parley worker` processes")
    parser.add_argument("--sqlite", action="store_true", help="the embedded default database")
    parser.add_argument(
        "--set", action="append", default=[], metavar="PARLEY_X=VALUE",
        help="a setting for `parley serve` (repeatable)",
    )  # fmt: skip
    args = parser.parse_args()
    print(f"negotiation loop: kind={args.kind} on {'SQLite' if args.sqlite else 'PostgreSQL'}")
    run(args)


if __name__ == "__main__":
    main()
