"""32 HTTP clients book at once against `parley serve` on SQLite: the server keeps up.

A confirmation mails both parties and wakes the outbox job after its commit. That wake
once ran while the request's own connection was still checked out, so 32 requests each
held one pooled connection and waited for a second: the pool ran dry and the server
stalled for the pool's 30 s timeout (`job.wake_failed TimeoutError`).
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from tests.conftest import free_port
from tests.e2e.helpers import parley_env, start, wait_healthy
from tests.e2e.test_negotiation_smtp import ADMIN, ADMIN_TOKEN, stop_parley

pytestmark = pytest.mark.slow

CLIENTS = 32
ROUNDS = 4  # slots, hold, confirm per round and client
HOURS = {
    "timezone": "UTC",
    "weekly": [{"days": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"],
                "start": "00:00", "end": "23:59"}],
    "lead_time_hours": 1,
    "booking_window_days": 30,
    "min_duration_minutes": 30,
    "slot_step_minutes": 30,
    "instant_book": True,
}  # fmt: skip


def test_32_clients_booking_on_sqlite_never_stall(tmp_path: Path) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = parley_env(
        tmp_path / "data",
        PARLEY_HTTP_PORT=str(port),
        PARLEY_BASE_URL=base,
        PARLEY_SMTP_PORT="0",
        PARLEY_ADMIN_TOKEN=ADMIN_TOKEN,
        PARLEY_SECRET_KEY="e2e-secret-key-0123456789abcdef0123",
        PARLEY_PUBLIC_RATE_LIMIT_PER_MINUTE="100000",
        PARLEY_WORKER_POLL_SECONDS="0.2",
    )
    proc = start(["serve"], env, tmp_path)
    try:
        wait_healthy(base, timeout=30)
        providers = _providers(base)
        errors: list[str] = []
        confirmed: list[float] = []
        lock = threading.Lock()
        barrier = threading.Barrier(CLIENTS)

        def client(n: int) -> None:
            provider = providers[n]
            now = datetime.now(UTC)
            window = {"start": (now + timedelta(days=2)).isoformat(),
                      "end": (now + timedelta(days=3)).isoformat(), "duration": "30"}  # fmt: skip
            with httpx.Client(base_url=f"{base}/api/v1", headers=ADMIN, timeout=20) as http:
                barrier.wait()
                for round_ in range(ROUNDS):
                    try:
                        slots = http.get(f"/providers/{provider}/slots", params=window)
                        assert slots.status_code == 200, slots.text
                        slot = slots.json()["slots"][round_]
                        hold = http.post("/holds", json={
                            "provider_id": provider, "start": slot["start"], "end": slot["end"],
                            "guest_email": f"guest{n}.{round_}@example.net",
                        })  # fmt: skip
                        assert hold.status_code == 201, hold.text
                        done = http.post(f"/holds/{hold.json()['id']}/confirm")
                        assert done.status_code == 201, done.text
                        with lock:
                            confirmed.append(time.monotonic())
                    except (AssertionError, httpx.HTTPError) as exc:
                        with lock:
                            errors.append(f"{n}/{round_}: {type(exc).__name__}: {exc}"[:300])

        started = time.monotonic()
        threads = [threading.Thread(target=client, args=(n,)) for n in range(CLIENTS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        elapsed = time.monotonic() - started
    finally:
        stop_parley(proc)
    logs = b"".join(p.read_bytes() for p in tmp_path.glob("parley-serve-*.log"))
    assert errors == [], errors[:5]
    assert len(confirmed) == CLIENTS * ROUNDS
    # 3 requests per booking; a stall is a pause of 30 s (the pool's and busy timeouts)
    assert elapsed < 15, f"{CLIENTS * ROUNDS} bookings took {elapsed:.1f} s"
    assert b"wake_failed" not in logs
    assert b"TimeoutError" not in logs


def _providers(base: str) -> list[str]:
    ids = []
    with httpx.Client(base_url=f"{base}/api/v1", headers=ADMIN, timeout=20) as http:
        for n in range(CLIENTS):
            made = http.post("/providers", json={
                "name": f"Unit {n}", "email": f"unit{n}@host.example", "timezone": "UTC",
                "slug": f"unit-{n}",
            })  # fmt: skip
            assert made.status_code == 201, made.text
            put = http.put(f"/providers/{made.json()['id']}/availability", json=HOURS)
            assert put.status_code == 200, put.text
            ids.append(made.json()["id"])
    return ids
