"""Imported feeds seen through GET /providers/{id}/slots: zones, all-day, recurrence, free time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from core.runtime import Runtime
from tests.conftest import DATA
from tests.integration.sync.conftest import (
    Clock,
    FeedServer,
    TestClient,
    add_source,
    make_provider,
    slots,
    sync_now,
)

NOW = datetime(2025, 6, 1, 0, 0, tzinfo=UTC)
FEEDS = DATA / "feeds"


def _free(api: TestClient, provider: str, start: str) -> bool:
    """Whether the one-hour slot starting at start (UTC, "YYYY-MM-DDTHH:MM") is offered."""
    begin = datetime.fromisoformat(start + ":00+00:00")
    found = slots(api, provider, f"{start}:00Z", f"{begin + timedelta(hours=1):%Y-%m-%dT%H:%M}:00Z")
    return (f"{start}:00Z", f"{begin + timedelta(hours=1):%Y-%m-%dT%H:%M}:00Z") in found


@pytest.fixture
def imported(
    runtime: Runtime,
    api: TestClient,
    admin_headers: dict[str, str],
    feed_server: FeedServer,
    request: pytest.FixtureRequest,
) -> str:
    runtime.clock = Clock(NOW)
    provider = make_provider(api, admin_headers, "zoe", timezone="Europe/Berlin")
    name = request.param
    url = feed_server.put(f"/{name}", (FEEDS / name).read_bytes(), etag='"1"')
    result = sync_now(api, admin_headers, add_source(api, admin_headers, provider, url))
    assert result["status"] == "ok", result
    return provider


@pytest.mark.parametrize("imported", ["google.ics"], indirect=True)
def test_google_export_zones_recurrence_and_free_time(api: TestClient, imported: str) -> None:
    expectations = {
        "2025-06-02T14:00": False,  # UTC event
        "2025-06-02T16:00": True,
        "2025-06-03T13:00": False,  # floating 09:00 read in X-WR-TIMEZONE New York (UTC-4)
        "2025-06-03T07:00": True,  # ... not in the provider's Berlin zone
        "2025-06-05T14:00": False,  # weekly Thursday 10:00 New York
        "2025-06-12T14:00": True,  # EXDATE
        "2025-06-19T14:00": True,  # moved by RECURRENCE-ID ...
        "2025-06-20T19:00": False,  # ... to Friday 15:00 New York
        "2025-06-26T14:00": False,
        "2025-07-03T14:00": False,  # UNTIL is inclusive
        "2025-07-10T14:00": True,
        "2025-06-04T17:00": True,  # TRANSP:TRANSPARENT
        "2025-06-06T17:00": True,  # STATUS:CANCELLED
    }
    assert {at: _free(api, imported, at) for at in expectations} == expectations


@pytest.mark.parametrize("imported", ["outlook.ics"], indirect=True)
def test_outlook_windows_zone_names_and_busy_status(api: TestClient, imported: str) -> None:
    assert not _free(api, imported, "2025-06-10T07:00")  # 09:00 W. Europe Standard Time (CEST)
    assert _free(api, imported, "2025-06-10T09:00")
    assert _free(api, imported, "2025-06-11T07:00")  # X-MICROSOFT-CDO-BUSYSTATUS:FREE


@pytest.mark.parametrize("imported", ["airbnb.ics"], indirect=True)
def test_all_day_stays_block_whole_local_days(api: TestClient, imported: str) -> None:
    # Reserved 3–7 June (check-out day free) in the provider's zone, Berlin = UTC+2.
    assert _free(api, imported, "2025-06-02T21:00")
    assert not _free(api, imported, "2025-06-02T22:00")
    assert not _free(api, imported, "2025-06-05T12:00")
    assert not _free(api, imported, "2025-06-06T21:00")
    assert _free(api, imported, "2025-06-06T22:00")
