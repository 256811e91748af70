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
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
from starlette.applications import Starlette

from core.db.engine import make_engine, make_sessionmaker
from core.db.migrate import upgrade
from core.db.models import Booking, ExternalEvent, ExternalSource, Hold, new_id
from core.domain import AvailabilityPolicy, weekly_windows
from core.logging import configure_logging
from core.services.availability import put_availability
from core.services.providers import create_provider
from core.settings import load_settings
from web.app import create_app

BUSY = 1_000
DAYS = 60
RUNS = 300


def seed(url: str, now: datetime) -> str:
    sessions = make_sessionmaker(make_engine(url))
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
            slug="bench",
            now=now,
        )
        policy = AvailabilityPolicy(
            "Europe/Berlin", weekly=weekly, lead_time_hours=0, booking_window_days=90
        )
        put_availability(session, provider.id, policy, now, actor="bench")
        source = ExternalSource(
            id=new_id("src"), provider_id=provider.id, url="https://example.org/a.ics", kind="ics",
            next_poll_at=now, created_at=now,
        )  # fmt: skip
        session.add(source)
        session.flush()
        session.add_all(_busy_rows(provider.id, source.id, now, random.Random(7)))
        return provider.id


def _busy_rows(provider_id: str, source_id: str, now: datetime, rng: random.Random) -> list[object]:
    rows: list[object] = []
    for n in range(BUSY):
        start = now + timedelta(seconds=int(rng.uniform(0, DAYS * 86_400)))
        end = start + timedelta(minutes=rng.choice((15, 30, 60, 90)))
        kind = n % 3
        if kind == 0:
            rows.append(ExternalEvent(
                source_id=source_id, provider_id=provider_id, uid=f"e{n}", start_at=start,
                end_at=end, content_hash="x", first_seen_at=now, last_seen_at=now,
            ))  # fmt: skip
        elif kind == 1:
            rows.append(Booking(
                id=new_id("bkg"), provider_id=provider_id, uid=f"b{n}@bench", status="confirmed",
                start_at=start, end_at=end, host_email="b@example.org", guest_email="g@example.net",
                created_at=now, updated_at=now,
            ))  # fmt: skip
        else:
            rows.append(Hold(
                id=new_id("hld"), provider_id=provider_id, start_at=start, end_at=end,
                expires_at=now + timedelta(days=365), created_at=now,
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


def main() -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    with tempfile.TemporaryDirectory() as folder:
        url = f"sqlite:///{folder}/bench.db"
        upgrade(url)
        provider_id = seed(url, now)
        port = free_port()
        server = serve(url, Path(folder), port)
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
    samples.sort()
    print(
        f"GET /slots over HTTP, SQLite, {DAYS}-day window, 30-min step, {BUSY} busy intervals, "
        f"{count} slots: median {statistics.median(samples):.2f} ms, "
        f"p90 {samples[int(len(samples) * 0.9)]:.2f} ms, min {samples[0]:.2f} ms, {RUNS} requests"
    )


if __name__ == "__main__":
    configure_logging("warning")
    main()
