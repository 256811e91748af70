"""`parley demo` on the embedded defaults: a booking, two private invitations, a link."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from tests.e2e.helpers import PARLEY, parley_env

pytestmark = pytest.mark.slow


def test_demo_books_and_delivers_two_private_invitations(tmp_path: Path) -> None:
    env = parley_env(tmp_path / "data")
    result = subprocess.run([*PARLEY, "demo"], env=env, cwd=tmp_path, capture_output=True)
    assert result.returncode == 0, result.stderr.decode()[-2000:]
    text = result.stdout.decode()
    assert "/book/demo" in text
    link = re.search(r"http://127\.0\.0\.1:8000/reschedule\?r=\S+", text)
    assert link is not None, text
    files = sorted((tmp_path / "data" / "maildir" / "new").glob("*"))
    assert len(files) == 2
    host, guest = "dana@demo.parley.localhost", "gus@guest.parley.localhost"
    for path in files:
        raw = path.read_bytes()
        assert b"METHOD:REQUEST" in raw
        mine, theirs = (host, guest) if host.encode() in raw else (guest, host)
        assert mine.encode() in raw and theirs.encode() not in raw
    # A second run reuses the demo provider and books the next free time.
    again = subprocess.run([*PARLEY, "demo"], env=env, cwd=tmp_path, capture_output=True)
    assert again.returncode == 0, again.stderr.decode()[-2000:]
    assert len(list((tmp_path / "data" / "maildir" / "new").glob("*"))) == 4
