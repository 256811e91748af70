"""A CalDAV calendar on a real Radicale (subprocess) imported as a source, seen through slots."""

from __future__ import annotations

import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from core.runtime import Runtime
from tests.conftest import free_port
from tests.integration.sync.conftest import (
    Clock,
    TestClient,
    add_source,
    make_provider,
    slots,
    sync_now,
)

NOW = datetime(2030, 3, 4, 0, 0, tzinfo=UTC)
EVENTS = {
    "one.ics": "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//T//T//EN\r\nBEGIN:VEVENT\r\n"
    "UID:dav-one\r\nDTSTAMP:20300101T000000Z\r\nDTSTART;TZID=Europe/Berlin:20300305T100000\r\n"
    "DTEND;TZID=Europe/Berlin:20300305T110000\r\nSUMMARY:Dentist\r\nEND:VEVENT\r\n"
    "END:VCALENDAR\r\n",
    "weekly.ics": "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//T//T//EN\r\nBEGIN:VEVENT\r\n"
    "UID:dav-weekly\r\nDTSTAMP:20300101T000000Z\r\nDTSTART:20300101T150000Z\r\n"
    "DTEND:20300101T160000Z\r\nRRULE:FREQ=WEEKLY\r\nSUMMARY:Yoga\r\nEND:VEVENT\r\n"
    "END:VCALENDAR\r\n",
}


@pytest.fixture(scope="module")
def radicale(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    folder = tmp_path_factory.mktemp("radicale")
    port = free_port()
    command = [
        sys.executable, "-m", "radicale", "--storage-filesystem-folder", str(folder / "store"),
        "--auth-type", "none", "--server-hosts", f"127.0.0.1:{port}",
    ]  # fmt: skip
    log = (folder / "radicale.log").open("wb")
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        _wait(base, process, folder)
        yield base
    finally:
        process.terminate()
        process.wait(10)
        log.close()


def _wait(base: str, process: subprocess.Popen[bytes], folder: Path) -> None:
    for _ in range(100):
        if process.poll() is not None:
            pytest.skip(f"Radicale did not start: {(folder / 'radicale.log').read_text()[-300:]}")
        try:
            httpx.get(base + "/", timeout=0.5)
            return
        except httpx.HTTPError:
            time.sleep(0.1)
    pytest.skip("Radicale did not answer within 10 s")


def _calendar_with_events(base: str, user: str) -> str:
    """A calendar made over plain WebDAV (MKCALENDAR, PUT), so the test does not trust caldav."""
    url = f"{base}/{user}/work/"
    auth = (user, "any")
    made = httpx.request("MKCALENDAR", url, auth=auth, timeout=5)
    assert made.status_code in (201, 405), made.text
    for name, body in EVENTS.items():
        put = httpx.put(url + name, content=body, auth=auth, timeout=5,
                        headers={"Content-Type": "text/calendar"})  # fmt: skip
        assert put.status_code in (201, 204), put.text
    return url


def test_caldav_calendar_blocks_slots(
    runtime: Runtime, api: TestClient, admin_headers: dict[str, str], radicale: str
) -> None:
    runtime.clock = Clock(NOW)
    user = f"ana{uuid.uuid4().hex[:8]}"  # Radicale runs once for both database backends
    url = _calendar_with_events(radicale, user)
    provider = make_provider(api, admin_headers, "davuser")
    source = add_source(api, admin_headers, provider, url, kind="caldav", username=user,
                        password="any")  # fmt: skip
    result = sync_now(api, admin_headers, source)
    assert result["status"] == "ok", result
    assert result["added"] >= 1 + 9  # one event, and the weekly series over ~69 days
    day = slots(api, provider, "2030-03-05T00:00:00Z", "2030-03-06T00:00:00Z")
    assert ("2030-03-05T09:00:00Z", "2030-03-05T10:00:00Z") not in day  # 10:00 Berlin
    assert ("2030-03-05T15:00:00Z", "2030-03-05T16:00:00Z") not in day  # Tuesday yoga
    assert ("2030-03-05T12:00:00Z", "2030-03-05T13:00:00Z") in day
    again = sync_now(api, admin_headers, source)
    assert again["not_modified"], again  # the same objects give the same joined body
    httpx.delete(url + "one.ics", auth=(user, "any"), timeout=5)
    third = sync_now(api, admin_headers, source)
    assert third["removed"] == 1 and third["status"] == "ok"


def test_caldav_errors_keep_status_and_message(
    runtime: Runtime, api: TestClient, admin_headers: dict[str, str], radicale: str
) -> None:
    runtime.clock = Clock(NOW)
    provider = make_provider(api, admin_headers, "davmissing")
    source = add_source(api, admin_headers, provider, f"http://127.0.0.1:{free_port()}/x/y/",
                        kind="caldav", username="x", password="y")  # fmt: skip
    result = sync_now(api, admin_headers, source)
    assert result["status"] == "error" and "CalDAV" in (result["error"] or "")
