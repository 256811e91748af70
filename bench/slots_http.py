"""Median latency of GET /api/v1/providers/{id}/slots over HTTP (not a test).

Run ``python bench/slots_http.py``: a migrated SQLite database in a temp folder, one
provider (Mon–Fri 09–17, Sat, Sun windows, Europe/Berlin, 30-min step) with 1,000 busy
intervals (external events, bookings and holds) over the 60 days, a real uvicorn server
in a subprocess, and 300 keep-alive requests for a 60-day window after 20 warm-ups.
"""

from __future__ import annotations

import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
from starlette.applications import Starlette

from core.db.engine import make_engine, make_sessionmaker
from core.db.migrate import upgrade
from core.db.models import (
    DEFAULT_TENANT,
    Booking,
    ExternalEvent,
    ExternalSource,
    Hold,
    Provider,
    new_id,
)
from core.domain import AvailabilityPolicy, weekly_windows
from core.logging import configure_logging
from core.services.availability import put_availability
from core.services.providers import create_provider
from core.settings import load_settings
from web.app import create_app

BUSY = 1_000
DAYS = 60
RUNS = 300


def seed(url: str, now: datetime, tenant_id: str = DEFAULT_TENANT, slug: str = "bench") -> str:
    """One provider of ``tenant_id`` with the week's windows and BUSY busy intervals."""
    engine = make_engine(url)
    sessions = make_sessionmaker(engine)
    weekly = (
        *weekly_windows(["mon", "tue", "wed", "thu", "fri"], "09:00", "17:00"),
        *weekly_windows(["sat"], "10:00", "14:00"),
        *weekly_windows(["sun"], "16:00", "20:00"),
    )
    with sessions.begin() as session:
        provider = create_provider(
            session,
            name="Bench",
            email="b@example.org",
            timezone="Europe/Berlin",
            slug=slug,
            now=now,
            tenant_id=tenant_id,
        )
        policy = AvailabilityPolicy(
            "Europe/Berlin", weekly=weekly, lead_time_hours=0, booking_window_days=90
        )
        put_availability(session, provider.id, policy, now, actor="bench")
        source = ExternalSource(
            id=new_id("src"), tenant_id=tenant_id, provider_id=provider.id,
            url="https://example.org/a.ics", kind="ics", next_poll_at=now, created_at=now,
        )  # fmt: skip
        session.add(source)
        session.flush()
        session.add_all(_busy_rows(provider, source.id, now, random.Random(7)))
        ident = provider.id
    engine.dispose()
    return ident


def _busy_rows(
    provider: Provider, source_id: str, now: datetime, rng: random.Random
) -> list[object]:
    provider_id, tenant_id = provider.id, provider.tenant_id
    rows: list[object] = []
    for n in range(BUSY):
        start = now + timedelta(seconds=int(rng.uniform(0, DAYS * 86_400)))
        end = start + timedelta(minutes=rng.choice((15, 30, 60, 90)))
        kind = n % 3
        if kind == 0:
            rows.append(ExternalEvent(
                tenant_id=tenant_id, source_id=source_id, provider_id=provider_id, uid=f"e{n}",
                start_at=start, end_at=end, content_hash="x", first_seen_at=now, last_seen_at=now,
            ))  # fmt: skip
        elif kind == 1:
            rows.append(Booking(
                id=new_id("bkg"), tenant_id=tenant_id, provider_id=provider_id,
                uid=f"b{n}.{provider_id}@bench", status="confirmed",
                start_at=start, end_at=end, host_email="b@example.org", guest_email="g@example.net",
                created_at=now, updated_at=now,
            ))  # fmt: skip
        else:
            rows.append(Hold(
                id=new_id("hld"), tenant_id=tenant_id, provider_id=provider_id, start_at=start,
                end_at=end, expires_at=now + timedelta(days=365), created_at=now,
            ))  # fmt: skip
    return rows


def production_app() -> Starlette:
    """The app as ``parley serve`` builds it: settings read once, logging configured."""
    settings = load_settings()
    configure_logging(settings.log_level, settings.log_json)
    return create_app(settings)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def serve(url: str, data_dir: Path, port: int, workers: int = 1) -> subprocess.Popen[bytes]:
    """uvicorn on ``production_app`` (logging at its default level, to /dev/null)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PARLEY_")}
    env.update(
        PARLEY_DATABASE_URL=url,
        PARLEY_DATA_DIR=str(data_dir),
        PARLEY_SMTP_PORT="0",
        PARLEY_PUBLIC_RATE_LIMIT_PER_MINUTE=str(10**9),
    )
    here = Path(__file__).resolve().parent
    command = [
        sys.executable, "-m", "uvicorn", "slots_http:production_app", "--factory",
        "--app-dir", str(here), "--port", str(port), "--log-level", "warning",
        "--no-access-log", "--workers", str(workers),
    ]  # fmt: skip
    return subprocess.Popen(
        command, env=env, cwd=here.parent, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )


def wait_up(base: str) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise SystemExit("server did not come up")


@dataclass(frozen=True, slots=True)
class SlotsRun:
    """Milliseconds per request (sorted) and the slots the last answer held."""

    samples: list[float]
    slots: int

    @property
    def median(self) -> float:
        return statistics.median(self.samples)

    def line(self, database: str) -> str:
        s = self.samples
        return (
            f"GET /slots over HTTP, {database}, {DAYS}-day window, 30-min step, {BUSY} busy "
            f"intervals, {self.slots} slots: median {self.median:.2f} ms, "
            f"p90 {s[int(len(s) * 0.9)]:.2f} ms, min {s[0]:.2f} ms, {len(s)} requests"
        )


def measure(url: str, data_dir: Path, provider_id: str, now: datetime) -> SlotsRun:
    """RUNS keep-alive requests for the provider's 60 days (after 20 warm-ups) to a fresh
    uvicorn serving ``url``."""
    port = free_port()
    server = serve(url, data_dir, port)
    try:
        base = f"http://127.0.0.1:{port}"
        wait_up(base)
        params = {
            "start": now.isoformat(),
            "end": (now + timedelta(days=DAYS)).isoformat(),
            "duration": "30",
        }
        samples, count = [], 0
        with httpx.Client(base_url=base, timeout=10) as client:
            for n in range(RUNS + 20):
                began = time.perf_counter()
                answer = client.get(f"/api/v1/providers/{provider_id}/slots", params=params)
                elapsed = (time.perf_counter() - began) * 1000
                answer.raise_for_status()
                count = len(answer.json()["slots"])
                if n >= 20:
                    samples.append(elapsed)
    finally:
        server.terminate()
        server.wait(timeout=10)
    return SlotsRun(sorted(samples), count)


def main() -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    with tempfile.TemporaryDirectory() as folder:
        url = f"sqlite:///{folder}/bench.db"
        upgrade(url)
        provider_id = seed(url, now)
        result = measure(url, Path(folder), provider_id, now)
    print(result.line("SQLite"))


if __name__ == "__main__":
    configure_logging("warning")
    main()
