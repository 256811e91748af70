"""How long one unit's platform export of a year takes over HTTP (not a test).

Run ``python bench/export_unit.py``: a migrated SQLite database in a temp folder, one
unit with a year ahead of stays (a booking every third day: about 120 of them), Airbnb
and Booking.com calendars imported into it (180 reservations and blocks each), a real
uvicorn server in a subprocess, and 100 keep-alive ``GET /api/v1/export/{id}/calendar.ics``
requests per format with a viewer key after 10 warm-ups. Seed 003 §12.3 asks ≤ 500 ms.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
from slots_http import free_port, serve, wait_up

from core.db.engine import make_engine, make_sessionmaker
from core.db.migrate import upgrade
from core.db.models import DEFAULT_TENANT, Booking, ExternalEvent, ExternalSource, new_id
from core.logging import configure_logging
from core.services.access import SYSTEM
from core.services.providers import create_provider
from core.services.tenants import create_key

RUNS = 100
DAYS = 365
PER_SOURCE = 180


def seed(url: str, now: datetime) -> tuple[str, str, int]:
    """The unit's id, a viewer key, and how many events the year holds."""
    engine = make_engine(url)
    sessions = make_sessionmaker(engine)
    with sessions.begin() as session:
        unit = create_provider(
            session, name="Casa Azul", email="casa@example.org", timezone="Europe/Lisbon",
            slug="casa-azul", now=now, kind="unit",
        )  # fmt: skip
        rows: list[object] = []
        for day in range(0, DAYS, 3):
            start = now + timedelta(days=day, hours=15)
            rows.append(Booking(
                id=new_id("bkg"), tenant_id=unit.tenant_id, provider_id=unit.id,
                uid=f"stay{day}@bench", status="confirmed", start_at=start,
                end_at=start + timedelta(days=2, hours=-4), host_email="casa@example.org",
                guest_name="Guest", guest_email="g@example.net", created_at=now, updated_at=now,
            ))  # fmt: skip
        for platform in ("airbnb", "booking.com"):
            source = ExternalSource(
                id=new_id("src"), tenant_id=unit.tenant_id, provider_id=unit.id,
                url=f"https://{platform}.example/{platform}.ics", kind="ics", platform=platform,
                next_poll_at=now, created_at=now,
            )  # fmt: skip
            session.add(source)
            session.flush()
            for n in range(PER_SOURCE):
                start = now + timedelta(days=n * DAYS // PER_SOURCE + 1)
                rows.append(ExternalEvent(
                    tenant_id=unit.tenant_id, source_id=source.id, provider_id=unit.id,
                    uid=f"{platform}-{n}", start_at=start, end_at=start + timedelta(days=1),
                    kind="reservation" if n % 2 else "block", content_hash="x",
                    first_seen_at=now, last_seen_at=now,
                ))  # fmt: skip
        session.add_all(rows)
        issued = create_key(
            session, SYSTEM, DEFAULT_TENANT, role="viewer", label="bench", providers=None, now=now
        )
        unit_id, key, count = unit.id, issued.key, len(rows)
    engine.dispose()
    return unit_id, key, count


def main() -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    with tempfile.TemporaryDirectory() as folder:
        url = f"sqlite:///{folder}/bench.db"
        upgrade(url)
        unit_id, key, count = seed(url, now)
        port = free_port()
        server = serve(url, Path(folder), port)
        figures = {}
        try:
            base = f"http://127.0.0.1:{port}"
            wait_up(base)
            headers = {"Authorization": f"Bearer {key}"}
            path = f"/api/v1/export/{unit_id}/calendar.ics"
            with httpx.Client(base_url=base, headers=headers, timeout=30) as client:
                for fmt in ("airbnb", "booking.com", "generic"):
                    samples, events = [], 0
                    for n in range(RUNS + 10):
                        began = time.perf_counter()
                        answer = client.get(path, params={"format": fmt})
                        elapsed = (time.perf_counter() - began) * 1000
                        answer.raise_for_status()
                        events = answer.text.count("BEGIN:VEVENT")
                        if n >= 10:
                            samples.append(elapsed)
                    samples.sort()
                    figures[fmt] = (statistics.median(samples), samples[int(RUNS * 0.95)], events)
        finally:
            server.terminate()
            server.wait(timeout=10)
    print(
        f"GET /export/{{unit}}/calendar.ics over HTTP, SQLite, a year of one unit ({count} rows):"
    )
    for fmt, (median, p95, events) in figures.items():
        print(f"  {fmt:12} {events} events: median {median:.1f} ms, p95 {p95:.1f} ms ({RUNS} runs)")


if __name__ == "__main__":
    configure_logging("warning")
    main()
