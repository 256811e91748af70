"""`parley mail list|show`: the local mail folder read without a mail client.

With no relay configured, outbound mail lands in a Maildir; a newcomer follows the
sign-in and invitation links from `parley mail show`, decoded (the files are
quoted-printable, where a long link is cut over several lines)."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from tests.e2e.helpers import PARLEY, parley_env

pytestmark = pytest.mark.slow


def _run(env: dict[str, str], cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*PARLEY, *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=120
    )


def test_mail_list_and_show_decode_the_demo_invitations(tmp_path: Path) -> None:
    data = tmp_path / "data"
    env = parley_env(data)
    empty = _run(env, tmp_path, "mail", "list")
    assert empty.returncode == 0 and "No mail in" in empty.stdout
    assert _run(env, tmp_path, "demo").returncode == 0
    # A message the folder may also hold: broken charset, no Date, no text part.
    junk = data / "maildir" / "new" / "1.0badc0ffee00.host.eml"
    junk.write_bytes(
        b"From: x@y\r\nTo: nobody@example.org\r\nSubject: =?bogus?q?x?=\r\n"
        b"Content-Type: text/plain; charset=no-such\r\n\r\n\xff\xfe odd\r\n"
    )

    listed = _run(env, tmp_path, "mail", "list")
    assert listed.returncode == 0, listed.stderr
    rows = [line for line in listed.stdout.splitlines() if "REQUEST" in line]
    assert len(rows) == 2 and all("Session" in row for row in rows), listed.stdout
    assert "0badc0ffee" in listed.stdout  # listed last (oldest), not a crash

    only_guest = _run(env, tmp_path, "mail", "list", "--to", "gus@guest.parley.localhost")
    assert "dana@demo" not in only_guest.stdout and "gus@guest" in only_guest.stdout
    key = re.search(r"^(\w{10}) ", only_guest.stdout, re.MULTILINE)
    assert key, only_guest.stdout

    shown = _run(env, tmp_path, "mail", "show", key[1][:6])
    assert shown.returncode == 0, shown.stderr
    assert "To:      gus@guest.parley.localhost" in shown.stdout
    assert "Invitation: METHOD:REQUEST" in shown.stdout
    links = re.findall(r"^  (http\S+)$", shown.stdout, re.MULTILINE)
    assert any("/reschedule?r=" in link for link in links), shown.stdout
    assert any("/booking?m=" in link for link in links), shown.stdout
    path = next((data / "maildir" / "new").glob(f"*.{key[1]}*.eml"))
    # Each link is printed whole; the file holds it soft-wrapped (quoted-printable).
    reschedule = next(link for link in links if "/reschedule?r=" in link)
    assert len(reschedule) > 76 and reschedule not in path.read_text()

    raw = subprocess.run([*PARLEY, "mail", "show", key[1], "--raw"], env=env, cwd=tmp_path,
                         capture_output=True, timeout=60)  # fmt: skip
    assert raw.returncode == 0 and raw.stdout == path.read_bytes()

    assert _run(env, tmp_path, "mail", "show", "0badc0ffee").returncode == 0
    missing = _run(env, tmp_path, "mail", "show", "ffffffffff")
    assert missing.returncode == 1 and "no message with key" in missing.stderr
    for hostile in ("../../etc/passwd", "ab", "new/x"):
        refused = _run(env, tmp_path, "mail", "show", hostile)
        assert refused.returncode == 1 and "Traceback" not in refused.stderr, hostile
