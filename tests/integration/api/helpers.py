"""Shared set-up for the scheduling API tests: a clocked runtime, a provider with hours."""

from __future__ import annotations

import threading
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import uvicorn
from starlette.exceptions import StarletteDeprecationWarning

from core.runtime import Runtime
from tests.conftest import free_port
from web.app import create_app

with warnings.catch_warnings():
    # Starlette asks for the httpx2 fork; plain httpx works the same for these tests.
    warnings.simplefilter("ignore", StarletteDeprecationWarning)
    from starlette.testclient import TestClient

NOW = datetime(2027, 3, 1, 8, 0, tzinfo=UTC)  # a Monday; Berlin is UTC+1 until 28 March
HOURS: dict[str, Any] = {
    "timezone": "Europe/Berlin",
    "weekly": [{"days": ["mon", "tue", "wed", "thu", "fri"], "start": "09:00", "end": "17:00"}],
    "lead_time_hours": 24,
    "booking_window_days": 60,
    "min_duration_minutes": 30,
    "slot_step_minutes": 30,
    "instant_book": True,
}


class Clock:
    """A settable clock for the runtime."""

    def __init__(self, now: datetime = NOW) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def client_for(runtime: Runtime, clock: Clock | None = None) -> TestClient:
    runtime.clock = clock or Clock()
    return TestClient(create_app(runtime.settings, runtime=runtime))


def make_provider(
    client: TestClient, headers: dict[str, str], slug: str = "ada", **hours: Any
) -> str:
    body = {
        "name": "Ada Host",
        "email": f"{slug}@example.org",
        "timezone": "Europe/Berlin",
        "slug": slug,
    }
    created = client.post("/api/v1/providers", json=body, headers=headers)
    assert created.status_code == 201, created.text
    provider_id: str = created.json()["id"]
    put = client.put(
        f"/api/v1/providers/{provider_id}/availability", json={**HOURS, **hours}, headers=headers
    )
    assert put.status_code == 200, put.text
    return provider_id


def hold_body(provider_id: str, start: str, end: str, **extra: Any) -> dict[str, Any]:
    return {
        "provider_id": provider_id,
        "start": start,
        "end": end,
        "guest_email": "guest@example.net",
        **extra,
    }


@contextmanager
def served(runtime: Runtime) -> Iterator[str]:
    """A real uvicorn server for the runtime's app in a thread; yields its base URL."""
    port = free_port()
    config = uvicorn.Config(
        create_app(runtime.settings, runtime=runtime),
        host="127.0.0.1",
        port=port,
        log_level="warning",
        proxy_headers=False,  # as `parley serve` runs it: the app reads trusted proxies
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
