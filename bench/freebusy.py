"""Free-busy for 30 days over 10,000 busy items (not a test): ``python bench/freebusy.py``.

A migrated SQLite database in a temp folder (and PostgreSQL too when
PARLEY_BENCH_DATABASE_URL names a server database to fill, e.g.
postgresql+psycopg://postgres@127.0.0.1:5432/postgres, in a fresh database made on it):
two providers of one tenant; the one asked about has 10,000 busy items in the 30 days
(imported events, confirmed and requested bookings, live holds), each 1–4 minutes long so
that thousands of spans stay apart in the answer. Timed:

- in process, what a VFREEBUSY POST does between reading the request and writing the
  answer: one read transaction, the busy engine's rows (core.services.freebusy.answer),
  the merged spans and the REPLY's VFREEBUSY text; 300 runs after 20 warm-ups;
- over HTTP, the same request POSTed to the asker's schedule outbox on a real uvicorn
  (one keep-alive client, basic auth with an app password); 200 requests after 20.
"""

from __future__ import annotations

import os
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from slots_http import free_port, serve, wait_up

from core.db.engine import make_engine, make_sessionmaker
from core.db.migrate import upgrade
from core.db.models import (
    DEFAULT_TENANT,
    Booking,
    ExternalEvent,
    ExternalSource,
    Hold,
    new_id,
)
from core.logging import configure_logging
from core.services import app_passwords, freebusy
from core.services.providers import create_provider
from tests.pg import create_database, drop_database

BUSY = 10_000
DAYS = 30
RUNS, HTTP_RUNS, WARM = 300, 200, 20


def seed(url: str, now: datetime) -> tuple[str, str, str]:
    """(asker's DAV user name, its app password, the asked provider's address)."""
    engine = make_engine(url)
    sessions = make_sessionmaker(engine)
    rng = random.Random(30)
    with sessions.begin() as session:
        made = [
            create_provider(
                session, name=name.title(), email=f"{name}@example.org",
                timezone="Europe/Berlin", slug=name, now=now, tenant_id=DEFAULT_TENANT,
            )
            for name in ("asker", "busy")
        ]  # fmt: skip
        asker, busy = made
        source = ExternalSource(
            id=new_id("src"), tenant_id=DEFAULT_TENANT, provider_id=busy.id,
            url="https://example.org/a.ics", kind="ics", next_poll_at=now, created_at=now,
        )  # fmt: skip
        session.add(source)
        session.flush()
        rows: list[object] = []
        for n in range(BUSY):
            start = now + timedelta(seconds=int(rng.uniform(0, DAYS * 86_400)))
            # Short items (1–4 minutes, one every 4.3 on average), so that thousands of
            # spans stay apart after merging and the answer is as long as it can get.
            end = start + timedelta(minutes=rng.choice((1, 2, 3, 4)))
            common = {"tenant_id": DEFAULT_TENANT, "provider_id": busy.id,
                      "start_at": start, "end_at": end}  # fmt: skip
            if n % 4 == 0:
                rows.append(ExternalEvent(
                    source_id=source.id, uid=f"e{n}", content_hash="x",
                    first_seen_at=now, last_seen_at=now, **common,
                ))  # fmt: skip
            elif n % 4 == 3:
                rows.append(Hold(
                    id=new_id("hld"), expires_at=now + timedelta(days=365), created_at=now,
                    **common,
                ))  # fmt: skip
            else:
                rows.append(Booking(
                    id=new_id("bkg"), uid=f"b{n}@bench",
                    status="confirmed" if n % 4 == 1 else "requested",
                    host_email="busy@example.org", guest_email="g@example.net",
                    created_at=now, updated_at=now, **common,
                ))  # fmt: skip
        session.add_all(rows)
        issued = app_passwords.issue(session, asker.id, now, label="bench")
        user, address = asker.dav_username, busy.email
    engine.dispose()
    return user, issued.password, address


def percentiles(samples: list[float]) -> str:
    ordered = sorted(samples)
    p95 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))]
    return f"median {statistics.median(ordered):.2f} ms, p95 {p95:.2f} ms"


def timed(run: Callable[[], object], runs: int) -> tuple[list[float], list[float]]:
    """Wall-clock and this thread's CPU milliseconds per run (on a shared machine the CPU
    figure is what the code costs; the wall figure adds the wait for a core)."""
    for _ in range(WARM):
        run()
    wall, cpu = [], []
    for _ in range(runs):
        began, began_cpu = time.perf_counter(), time.thread_time()
        run()
        wall.append((time.perf_counter() - began) * 1000)
        cpu.append((time.thread_time() - began_cpu) * 1000)
    return wall, cpu


def in_process(
    url: str, now: datetime, address: str
) -> tuple[tuple[list[float], list[float]], int]:
    engine = make_engine(url)
    sessions = make_sessionmaker(engine)
    start, end = now, now + timedelta(days=DAYS)
    spans = 0

    def run() -> None:
        nonlocal spans
        with sessions() as session, session.begin():
            (answer,) = freebusy.answer(session, DEFAULT_TENANT, [address], start, end, now)
        text = freebusy.vfreebusy(
            answer.periods, start, end, now, method="REPLY", uid="bench@x",
            organizer="mailto:asker@example.org", attendee=f"mailto:{address}",
        )  # fmt: skip
        assert text.count("FREEBUSY:") + text.count("FREEBUSY;") == len(answer.periods)
        spans = len(answer.periods)

    samples = timed(run, RUNS)
    engine.dispose()
    return samples, spans


def over_http(
    url: str, data_dir: Path, now: datetime, login: tuple[str, str], address: str
) -> list[float]:
    stamp = now.strftime("%Y%m%dT%H%M%SZ")
    finish = (now + timedelta(days=DAYS)).strftime("%Y%m%dT%H%M%SZ")
    body = "\r\n".join([
        "BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//bench//EN", "METHOD:REQUEST",
        "BEGIN:VFREEBUSY", "UID:bench@x", f"DTSTAMP:{stamp}", f"DTSTART:{stamp}",
        f"DTEND:{finish}", "ORGANIZER:mailto:asker@example.org", f"ATTENDEE:mailto:{address}",
        "END:VFREEBUSY", "END:VCALENDAR", "",
    ])  # fmt: skip
    port = free_port()
    server = serve(url, data_dir, port)
    try:
        base = f"http://127.0.0.1:{port}"
        wait_up(base)
        headers = {"Content-Type": "text/calendar"}
        with httpx.Client(base_url=base, auth=login, timeout=30) as client:

            def run() -> None:
                answer = client.post(f"/dav/{login[0]}/outbox/", content=body, headers=headers)
                assert answer.status_code == 200 and "2.0;Success" in answer.text, answer.text

            return timed(run, HTTP_RUNS)[0]
    finally:
        server.terminate()
        server.wait(timeout=10)


def scenario(label: str, url: str, data_dir: Path, now: datetime) -> None:
    upgrade(url)
    user, password, address = seed(url, now)
    (wall, cpu), spans = in_process(url, now, address)
    print(f"{label}, in process: {DAYS} days over {BUSY:,} busy items ({spans:,} merged spans), "
          f"{RUNS} runs: wall {percentiles(wall)}; CPU {percentiles(cpu)}")  # fmt: skip
    http = over_http(url, data_dir, now, (user, password), address)
    print(f"{label}, POST to the outbox over HTTP: {percentiles(http)} over {HTTP_RUNS} requests")


def main() -> None:
    print(f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
    now = datetime.now(UTC).replace(microsecond=0)
    with tempfile.TemporaryDirectory() as folder:
        scenario("SQLite", f"sqlite:///{folder}/bench.db", Path(folder), now)
        base = os.environ.get("PARLEY_BENCH_DATABASE_URL", "")
        if base:
            url = create_database(base)
            try:
                scenario("PostgreSQL", url, Path(folder), now)
            finally:
                drop_database(url)


if __name__ == "__main__":
    configure_logging("warning")
    main()
