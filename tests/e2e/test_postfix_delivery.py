"""Debian's Postfix with ops/deploy/postfix's configuration hands a REPLY to Parley over LMTP.

A private Postfix instance (its own config and queue folders, smtpd on a free loopback
port, nothing system-wide) runs the shipped main.cf lines; a guest's DECLINED reply sent
to it over SMTP must reach `parley serve`'s LMTP listener and cancel the booking, as the
JSON API then shows. The pipe alternative is checked by `postfix check` and against the
CLI (its delivery needs a user other than root who can run this venv's Python).
Skips, saying why, when Postfix is not installed; CI installs it (scripts/test.sh).
"""

from __future__ import annotations

import os
import shlex
import shutil
import signal
import smtplib
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import free_port
from tests.e2e.relay import running_relay
from tests.e2e.test_negotiation_smtp import (
    GUEST,
    ORGANIZER,
    Parley,
    book,
    serve_parley,
    stop_parley,
)
from tests.integration.negotiation import mails

pytestmark = pytest.mark.slow
POSTFIX = shutil.which("postfix") or shutil.which("postfix", path="/usr/sbin")
SHIPPED = Path(__file__).resolve().parents[2] / "ops" / "deploy" / "postfix"
# The services a private instance needs to take mail over SMTP and pass it on.
MASTER = """\
127.0.0.1:{port} inet n - n - - smtpd
cleanup   unix n - n - 0 cleanup
qmgr      unix n - n 300 1 qmgr
rewrite   unix - - n - - trivial-rewrite
bounce    unix - - n - 0 bounce
defer     unix - - n - 0 bounce
trace     unix - - n - 0 bounce
verify    unix - - n - 1 verify
flush     unix n - n 1000? 0 flush
proxymap  unix - - n - - proxymap
smtp      unix - - n - - smtp
relay     unix - - n - - smtp
showq     unix n - n - - showq
error     unix - - n - - error
retry     unix - - n - - error
discard   unix - - n - - discard
lmtp      unix - - n - - lmtp
anvil     unix - - n - 1 anvil
scache    unix - - n - 1 scache
postlog   unix-dgram n - n - 1 postlogd
"""
PRIVATE = """\
compatibility_level = 3.6
queue_directory = {root}/queue
data_directory = {root}/data
maillog_file = {root}/postfix.log
maillog_file_prefixes = {root}
myhostname = mx.parley.test
mydestination =
alias_maps =
alias_database =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
smtpd_peername_lookup = no
smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination
smtp_dns_support_level = disabled
lmtp_dns_support_level = disabled
"""


class Postfix:
    """One private Postfix instance under root, started and stopped with -c."""

    def __init__(self, root: Path, smtp_port: int) -> None:
        self.root, self.smtp_port = root, smtp_port
        self.config = root / "etc"

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        assert POSTFIX is not None
        return subprocess.run(
            [POSTFIX, "-c", str(self.config), *args], capture_output=True, text=True, timeout=60
        )

    def stop(self) -> None:
        """Stop the master (which leaves its pid file behind) and wait until it is gone."""
        pid_file = self.root / "queue" / "pid" / "master.pid"
        if not pid_file.exists():
            return
        pid = int(pid_file.read_text().split()[0])
        self.run("stop")
        deadline = time.monotonic() + 15
        while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        if Path(f"/proc/{pid}").exists():
            os.kill(pid, signal.SIGKILL)

    def log(self) -> str:
        path = self.root / "postfix.log"
        return path.read_text()[-3000:] if path.exists() else "(no log)"


def shipped(name: str, lmtp_port: int) -> str:
    """The shipped lines with the example domain and port replaced by the test's."""
    text = (SHIPPED / name).read_text()
    text = text.replace("example.org", ORGANIZER.rpartition("@")[2])
    return text.replace("127.0.0.1:2424", f"127.0.0.1:{lmtp_port}")


@pytest.fixture
def postfix_root() -> Iterator[Path]:
    if POSTFIX is None:
        print("postfix is not installed (apt-get install postfix): skipping")
        pytest.skip("postfix is not installed (apt-get install postfix)")
    if os.geteuid() != 0:
        pytest.skip("a Postfix instance needs root to start (its daemons drop to postfix)")
    # Outside pytest's 0700 folders: Postfix's daemons run as the postfix user.
    root = Path(tempfile.mkdtemp(prefix="parley-postfix-"))
    root.chmod(0o755)
    try:
        yield root
    finally:
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def postfix_for(postfix_root: Path) -> Iterator[Postfix]:
    """A Postfix configured with main.cf.parley; started by start()."""
    server = Postfix(postfix_root, free_port())
    server.config.mkdir()
    (postfix_root / "queue").mkdir()  # postfix check makes its sub-folders
    yield server
    server.stop()


def configure(server: Postfix, lmtp_port: int, *, pipe: bool = False) -> None:
    main = PRIVATE.format(root=server.root) + shipped("main.cf.parley", lmtp_port)
    master = MASTER.format(port=server.smtp_port)
    if pipe:
        master += shipped("master.cf.parley", lmtp_port)
    (server.config / "main.cf").write_text(main)
    (server.config / "master.cf").write_text(master)


def test_postfix_hands_a_reply_to_parley_over_lmtp(
    postfix_for: Postfix, tmp_path: Path, db_url: str
) -> None:
    lmtp_port = free_port()
    configure(postfix_for, lmtp_port)
    with running_relay() as (sink, relay_port):
        proc, parley = serve_parley(
            tmp_path, db_url, sink, relay_port, PARLEY_LMTP_PORT=str(lmtp_port)
        )
        try:
            booked = book(parley)
            started = postfix_for.run("start")
            assert started.returncode == 0, started.stderr + postfix_for.log()
            to = booked.organizer_of("guest")
            raw = mails.apple(
                uid=booked.uid, sequence=0, attendee=GUEST, to=to, partstat="DECLINED"
            )
            with smtplib.SMTP("127.0.0.1", postfix_for.smtp_port, timeout=30) as client:
                assert client.sendmail(GUEST, [to], raw) == {}
                with pytest.raises(smtplib.SMTPRecipientsRefused):
                    client.sendmail(GUEST, ["someone-else@parley.test"], raw)
            status = wait_status(parley, booked.id, "cancelled", postfix_for)
            assert status == "cancelled"
            assert parley.inbound_outcome(raw)[0] == "itip"
            assert "status=sent" in postfix_for.log()
        finally:
            parley.http.close()
            stop_parley(proc)


def wait_status(parley: Parley, booking_id: str, wanted: str, server: Postfix) -> str:
    deadline = time.monotonic() + 60
    while (status := parley.booking(booking_id)["status"]) != wanted:
        if time.monotonic() > deadline:
            raise TimeoutError(f"booking still {status}; postfix log:\n{server.log()}")
        time.sleep(0.2)
    return status


def test_pipe_alternative_passes_postfix_check_and_names_the_real_command(
    postfix_for: Postfix,
) -> None:
    configure(postfix_for, free_port(), pipe=True)
    checked = postfix_for.run("check")
    assert checked.returncode == 0, checked.stderr
    assert "warning" not in checked.stderr, checked.stderr
    line = (SHIPPED / "master.cf.parley").read_text().split("argv=", 1)[1].splitlines()[0]
    argv = shlex.split(line)
    tail = argv[argv.index("/opt/parley/venv/bin/parley") + 1 :]
    assert tail == ["mail", "ingest", "-"]
    done = subprocess.run(
        [sys.executable, "-m", "parley.cli", "mail", "ingest", "--help"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0 and "pipe transport" in done.stdout, done.stderr
