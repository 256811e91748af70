"""32 guests grab the same slot at once over HTTP: exactly one hold wins, 31 get slot_taken."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import httpx

from core.runtime import Runtime
from tests.integration.api.helpers import client_for, make_provider, served

CLIENTS = 32


def test_32_concurrent_holds_for_one_slot_one_wins(
    runtime: Runtime, admin_headers: dict[str, str]
) -> None:
    runtime.settings = runtime.settings.model_copy(update={"public_rate_limit_per_minute": 1000})
    provider = make_provider(client_for(runtime), admin_headers)
    runtime.clock = lambda: datetime.now(UTC)  # the real clock: holds must not expire mid-test
    day = _next_weekday(datetime.now(UTC) + timedelta(days=3))
    start = day.replace(hour=10, minute=0, second=0, microsecond=0)
    barrier = threading.Barrier(CLIENTS)
    answers: list[tuple[int, str]] = []
    lock = threading.Lock()

    def grab(base: str, n: int) -> None:
        body = {
            "provider_id": provider,
            "start": start.isoformat(),
            "end": (start + timedelta(minutes=30 + 30 * (n % 2))).isoformat(),
            "guest_email": f"guest{n}@example.net",
        }
        with httpx.Client(base_url=base, timeout=30) as client:
            barrier.wait()
            answer = client.post("/api/v1/holds", json=body)
        with lock:
            answers.append((answer.status_code, answer.json().get("error", {}).get("code", "")))

    with served(runtime) as base:
        threads = [threading.Thread(target=grab, args=(base, n)) for n in range(CLIENTS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
    statuses = sorted(status for status, _ in answers)
    assert statuses == [201] + [409] * (CLIENTS - 1), answers
    assert {code for status, code in answers if status == 409} == {"slot_taken"}


def _next_weekday(moment: datetime) -> datetime:
    while moment.weekday() >= 5:
        moment += timedelta(days=1)
    return moment
