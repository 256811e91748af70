"""Hold creation over HTTP on PostgreSQL with 8 concurrent clients (not a test).

Run ``python bench/holds_pg.py [--workers N] [--seconds S]``: creates its own database
on 127.0.0.1:5432 (user postgres), 40 providers open around the clock, and serves it the
way production does: ``parley serve --no-worker`` for one process (N = 1), or uvicorn
with N worker processes and the same logging set-up (N > 1; several web processes on one
PostgreSQL are a supported deployment). Logging stays at its default level (one
``cal.hold.created`` line per hold, sent to /dev/null). A light client in a separate
process (asyncio, raw HTTP/1.1 keep-alive, 8 connections) POSTs /api/v1/holds for random
30/60-minute slots for S seconds. Prints holds/s (201s), conflicts (409s), and checks
that no two active holds of one provider overlap. The database is dropped after.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import random
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, text

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from slots_http import free_port, wait_up

from core.db.engine import make_engine, make_sessionmaker
from core.db.migrate import upgrade
from core.db.models import DEFAULT_TENANT
from core.domain import AvailabilityPolicy, weekly_windows
from core.logging import configure_logging
from core.services.availability import put_availability
from core.services.providers import create_provider
from tests.pg import create_database, drop_database

PROVIDERS = 40
CLIENTS = 8
DAYS = 60

OVERLAPS = text(
    """
    SELECT count(*) FROM holds a JOIN holds b
      ON a.provider_id = b.provider_id AND a.id < b.id
     AND a.start_at < b.end_at AND b.start_at < a.end_at
     WHERE a.status = 'active' AND b.status = 'active' AND a.provider_id = ANY(:ids)
    """
)


def seed(
    url: str, now: datetime, tenant_id: str = DEFAULT_TENANT, prefix: str = "hold"
) -> list[str]:
    """PROVIDERS providers of ``tenant_id`` (slugs ``prefix``0…), open around the clock."""
    engine = make_engine(url)
    sessions = make_sessionmaker(engine)
    days = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
    policy = AvailabilityPolicy(
        "Europe/Berlin",
        weekly=weekly_windows(days, "00:00", "24:00"),
        lead_time_hours=0,
        booking_window_days=DAYS + 2,
    )
    ids = []
    with sessions.begin() as session:
        for n in range(PROVIDERS):
            provider = create_provider(
                session, name=f"P{n}", email=f"p{n}@example.org", timezone="Europe/Berlin",
                slug=f"{prefix}{n}", now=now, tenant_id=tenant_id,
            )  # fmt: skip
            put_availability(session, provider.id, policy, now, actor="bench")
            ids.append(provider.id)
    engine.dispose()
    return ids


def serve(url: str, port: int, workers: int) -> subprocess.Popen[bytes]:
    """`parley serve --no-worker` (one process), or uvicorn with ``workers`` processes."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PARLEY_")}
    env.update(
        PARLEY_DATABASE_URL=url,
        PARLEY_DATA_DIR=f"/tmp/parley-bench-{port}",
        PARLEY_SMTP_PORT="0",
        PARLEY_HTTP_PORT=str(port),
        PARLEY_PUBLIC_RATE_LIMIT_PER_MINUTE=str(10**9),
    )
    if workers == 1:
        command = [sys.executable, "-m", "parley.cli", "serve", "--no-worker"]
    else:
        command = [
            sys.executable, "-m", "uvicorn", "slots_http:production_app", "--factory",
            "--app-dir", str(Path(__file__).resolve().parent), "--port", str(port),
            "--workers", str(workers), "--no-access-log", "--log-level", "warning",
        ]  # fmt: skip
    root = Path(__file__).resolve().parents[1]
    return subprocess.Popen(
        command, env=env, cwd=root, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )


async def _connection(
    client: int, port: int, providers: list[str], first: float, stop: float, tally: Counter[int]
) -> None:
    """One client: a keep-alive connection sending holds back to back until ``stop``.

    Each client comes from its own loopback address, as 8 real clients would come from 8
    addresses, so each has its own public rate-limit budget (and counter row).
    """
    rng = random.Random()
    source = (f"127.0.0.{client + 2}", 0)
    reader, writer = await asyncio.open_connection("127.0.0.1", port, local_addr=source)
    while time.monotonic() < stop:
        start = first + 1800 * rng.randrange(DAYS * 48)
        body = json.dumps({
            "provider_id": rng.choice(providers),
            "start": datetime.fromtimestamp(start, UTC).isoformat(),
            "end": datetime.fromtimestamp(start + rng.choice((1800, 3600)), UTC).isoformat(),
            "guest_email": "guest@example.net",
        }).encode()  # fmt: skip
        writer.write(
            b"POST /api/v1/holds HTTP/1.1\r\nHost: bench\r\nContent-Type: application/json\r\n"
            b"Content-Length: %d\r\n\r\n%s" % (len(body), body)
        )
        status_line = await reader.readline()
        length = 0
        while (line := await reader.readline()) not in (b"\r\n", b""):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":")[1])
        answer = await reader.readexactly(length)
        status = int(status_line.split()[1])
        tally[status] += 1
        if status not in (201, 409, 422) and tally[status] == 1:
            print("unexpected", status, answer[:300])
    writer.close()


def client_process(port: int, providers: list[str], first: float, seconds: float, out: Any) -> None:
    """The load generator, in its own process so it never competes for the server's GIL."""
    tally: Counter[int] = Counter()

    async def main() -> float:
        began = time.monotonic()
        stop = began + seconds
        await asyncio.gather(
            *(_connection(i, port, providers, first, stop, tally) for i in range(CLIENTS))
        )
        return time.monotonic() - began

    elapsed = asyncio.run(main())
    out.put((dict(tally), elapsed))


@dataclass(frozen=True, slots=True)
class HoldsRun:
    """What one load run got: answers by status, its length, and the check afterwards."""

    tally: Counter[int]
    elapsed: float
    workers: int
    stored: int
    overlaps: int

    @property
    def created_per_second(self) -> float:
        return self.tally[201] / self.elapsed

    def line(self) -> str:
        created, taken = self.tally[201], self.tally[409]
        other = sum(v for k, v in self.tally.items() if k not in (201, 409))
        server = "parley serve --no-worker" if self.workers == 1 else f"{self.workers} workers"
        return (
            f"POST /holds, PostgreSQL, {CLIENTS} connections, {server}, {self.elapsed:.1f} s: "
            f"{self.created_per_second:.0f} holds/s created ({created} × 201, {taken} × 409 "
            f"slot_taken, {other} other (422: slot crosses midnight); "
            f"{(created + taken) / self.elapsed:.0f} req/s); {self.stored} holds stored, "
            f"{self.overlaps} overlapping pairs of active holds (double bookings)"
        )


def measure(
    url: str, providers: list[str], now: datetime, workers: int, seconds: float
) -> HoldsRun:
    """The load run against a fresh server on the migrated database ``url``."""
    first = (now + timedelta(days=1)).replace(hour=0, minute=0)
    port = free_port()
    server = serve(url, port, workers)
    try:
        wait_up(f"http://127.0.0.1:{port}")
        results: Any = multiprocessing.Queue()
        args = (port, providers, first.timestamp(), seconds, results)
        client = multiprocessing.Process(target=client_process, args=args)
        client.start()
        counts, elapsed = results.get(timeout=seconds + 60)
        client.join()
    finally:
        server.terminate()
        server.wait(timeout=15)
    engine = create_engine(url)
    with engine.connect() as conn:
        overlaps = conn.execute(OVERLAPS, {"ids": providers}).scalar_one()
        stored = conn.execute(
            text("SELECT count(*) FROM holds WHERE provider_id = ANY(:ids)"), {"ids": providers}
        ).scalar_one()
    engine.dispose()
    return HoldsRun(Counter(counts), elapsed, workers, stored, overlaps)


def run(workers: int, seconds: float) -> None:
    url = create_database(prefix="parley_bench")
    try:
        upgrade(url)
        now = datetime.now(UTC).replace(second=0, microsecond=0)
        result = measure(url, seed(url, now), now, workers, seconds)
    finally:
        drop_database(url)
    print(result.line())


if __name__ == "__main__":
    configure_logging("warning")
    parser = argparse.ArgumentParser()
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()
    run(args.workers, args.seconds)
