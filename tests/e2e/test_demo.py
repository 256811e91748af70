"""`parley demo` on the embedded defaults: a booking, two private invitations, a link."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import httpx
import pytest

from tests.e2e.helpers import PARLEY, parley_env, serving

pytestmark = pytest.mark.slow


def test_demo_books_and_delivers_two_private_invitations(tmp_path: Path) -> None:
    data = tmp_path / "data"
    # Without a server the demo still books and delivers, but prints no link: none would open.
    alone = subprocess.run(
        [*PARLEY, "demo"], env=parley_env(data), cwd=tmp_path, capture_output=True
    )
    assert alone.returncode == 0, alone.stderr.decode()[-2000:]
    said = alone.stdout.decode()
    assert "No links printed: nothing answers at http://127.0.0.1:8000" in said, said
    assert "Start `parley serve`" in said and "http://127.0.0.1:8000/" not in said
    files = sorted((data / "maildir" / "new").glob("*"))
    assert len(files) == 2
    host, guest = "dana@demo.parley.localhost", "gus@guest.parley.localhost"
    for path in files:
        raw = path.read_bytes()
        assert b"METHOD:REQUEST" in raw
        mine, theirs = (host, guest) if host.encode() in raw else (guest, host)
        assert mine.encode() in raw and theirs.encode() not in raw
    # With the server running on the same settings: the next free time, and links that open.
    with serving(data, tmp_path) as (env, base):
        again = subprocess.run([*PARLEY, "demo"], env=env, cwd=tmp_path, capture_output=True)
        assert again.returncode == 0, again.stderr.decode()[-2000:]
        text = again.stdout.decode()
        assert f"Booking page:          {base}/book/demo" in text, text
        link = re.search(rf"{re.escape(base)}/reschedule\?r=\S+", text)
        assert link is not None, text
        for url in (f"{base}/book/demo", link[0]):
            page = httpx.get(url, timeout=10)
            assert page.status_code == 200, (url, page.status_code)
    assert len(list((data / "maildir" / "new").glob("*"))) == 4
