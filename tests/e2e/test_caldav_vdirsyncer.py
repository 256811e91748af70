"""vdirsyncer syncs a provider's blocks calendar to a folder and back over /dav/."""

from __future__ import annotations

import shutil
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from core.runtime import Runtime
from core.services import dav
from tests.integration.dav.conftest import add_booking, add_provider, dav_base  # noqa: F401

VDIRSYNCER = shutil.which("vdirsyncer") or str(Path(sys.executable).parent / "vdirsyncer")

EVENT = (
    "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//EN\r\nBEGIN:VEVENT\r\n"
    "UID:from-folder\r\nDTSTAMP:20300101T000000Z\r\nDTSTART:20300311T090000Z\r\n"
    "DTEND:20300311T100000Z\r\nSUMMARY:Blocked locally\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
)


def _config(tmp: Path, base: str, user: str, password: str) -> Path:
    config = tmp / "config"
    config.write_text(
        f"""[general]
status_path = "{tmp / "status"}"

[pair cal]
a = "local"
b = "parley"
collections = ["from b"]
conflict_resolution = "b wins"

[storage local]
type = "filesystem"
path = "{tmp / "cal"}"
fileext = ".ics"

[storage parley]
type = "caldav"
url = "{base}/dav/"
username = "{user}"
password = "{password}"
"""
    )
    return config


def _run(config: Path, *args: str) -> None:
    result = subprocess.run(
        [VDIRSYNCER, "-c", str(config), *args],
        input="y\n" * 10,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_vdirsyncer_round_trip(runtime: Runtime, dav_base: str, tmp_path: Path) -> None:  # noqa: F811
    if not Path(VDIRSYNCER).exists():
        pytest.skip("vdirsyncer is not installed")
    alice = add_provider(runtime, "alice")
    booking = add_booking(runtime, alice.provider_id, datetime(2030, 3, 5, 10, tzinfo=UTC))
    config = _config(tmp_path, dav_base, alice.username, alice.password)
    _run(config, "discover")
    _run(config, "sync")
    synced = list((tmp_path / "cal" / "bookings").glob("*.ics"))
    assert len(synced) == 1 and booking.uid in synced[0].read_text()
    (tmp_path / "cal" / "blocks" / "from-folder.ics").write_text(EVENT, newline="")
    _run(config, "sync")
    window = (datetime(2030, 3, 1, tzinfo=UTC), datetime(2030, 3, 31, tzinfo=UTC))
    with runtime.sessions.begin() as session:
        busy = dav.dav_busy(session, alice.provider_id, *window)
    start = datetime(2030, 3, 11, 9, tzinfo=UTC)
    assert [(b.start, b.end) for b in busy] == [(start, start + timedelta(hours=1))]
    _run(config, "sync")  # a second sync changes nothing and still succeeds
