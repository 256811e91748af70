"""The IMAP poller against a real Dovecot on loopback, with a throwaway config and mailbox.

Skips (with the reason) when Dovecot is not installed; CI installs dovecot-imapd.
"""

from __future__ import annotations

import asyncio
import contextlib
import imaplib
import os
import shutil
import signal
import ssl
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import select

from core.db.models import ImapState, InboundMessage
from core.runtime import Runtime
from core.services.mail_in import AuthPolicy, ProcessingContext
from mailagent.imap import ImapConfig, ImapPoller, append_sent
from parley.handlers import MAIL_READER
from tests.conftest import DATA, free_port
from tests.integration.mail.helpers import NOW, mail, make_invitation, reply, self_signed

pytestmark = pytest.mark.slow
DOVECOT = shutil.which("dovecot") or shutil.which("dovecot", path="/usr/sbin")
CONF = """
base_dir = {root}/run
state_dir = {root}/state
log_path = {root}/dovecot.log
protocols = imap
listen = 127.0.0.1
ssl = {ssl}
{ssl_files}
disable_plaintext_auth = no
auth_mechanisms = plain login
first_valid_uid = 1
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {root}/passwd
}}
userdb {{
  driver = static
  args = uid={uid} gid={gid} home={root}/home/%u
}}
mail_location = maildir:~/Maildir:LAYOUT=fs
namespace inbox {{
  inbox = yes
  separator = /
}}
service imap-login {{
  inet_listener imap {{
    port = {plain_port}
  }}
  inet_listener imaps {{
    port = {tls_port}
    ssl = yes
  }}
}}
"""


@dataclass
class Dovecot:
    root: Path
    port: int
    tls: bool
    cert: Path | None
    proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        command = [DOVECOT or "dovecot", "-F", "-c", str(self.root / "dovecot.conf")]
        self.proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                self.client().logout()
                return
            except OSError:
                time.sleep(0.05)
        raise TimeoutError("dovecot did not start: " + self.log())

    def stop(self) -> None:
        """Stop the server and end its client processes too, so open connections drop."""
        if self.proc is None:
            return
        children = _children(self.proc.pid)
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(10)
        for pid in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self.proc = None

    def client(self) -> imaplib.IMAP4:
        client: imaplib.IMAP4
        if self.tls:
            context = ssl.create_default_context(cafile=str(self.cert))
            client = imaplib.IMAP4_SSL("127.0.0.1", self.port, ssl_context=context, timeout=5)
        else:
            client = imaplib.IMAP4("127.0.0.1", self.port, timeout=5)
        client.login("parley", "s3cret pass")
        return client

    def append(self, raw: bytes) -> None:
        client = self.client()
        assert client.append("INBOX", None, None, raw)[0] == "OK"
        client.logout()

    def uids(self, folder: str) -> list[bytes]:
        client = self.client()
        try:
            if client.select(f'"{folder}"')[0] != "OK":
                return []
            return [m for m in client.search(None, "ALL")[1][0].split()]
        finally:
            client.logout()

    def log(self) -> str:
        path = self.root / "dovecot.log"
        return path.read_text()[-2000:] if path.exists() else ""

    @property
    def url(self) -> str:
        return f"imap{'s' if self.tls else ''}://parley:s3cret%20pass@127.0.0.1:{self.port}/INBOX"


def _children(parent: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            fields = (entry / "stat").read_text().rpartition(")")[2].split()
            if int(fields[1]) == parent:
                found.append(int(entry.name))
    return found


@pytest.fixture(params=["tls", "plain"])
def dovecot(request: pytest.FixtureRequest) -> Iterator[Dovecot]:
    if DOVECOT is None:
        print("dovecot is not installed (apt-get install dovecot-imapd): skipping")
        pytest.skip("dovecot is not installed (apt-get install dovecot-imapd)")
    tls = request.param == "tls"
    # Outside pytest's 0700 tmp folders: Dovecot's mail processes run as nobody.
    root = Path(tempfile.mkdtemp(prefix="parley-dovecot-"))
    os.chmod(root, 0o755)
    (root / "home").mkdir(mode=0o777)
    os.chmod(root / "home", 0o777)
    (root / "passwd").write_text("parley:{PLAIN}s3cret pass\n")
    cert = key = None
    if tls:
        cert, key = self_signed(root)
    port, other = free_port(), free_port()
    user = "nobody" if os.geteuid() == 0 else str(os.geteuid())
    group = "nogroup" if os.geteuid() == 0 else str(os.getegid())
    (root / "dovecot.conf").write_text(CONF.format(
        root=root, ssl="required" if tls else "no", uid=user, gid=group,
        ssl_files=f"ssl_cert = <{cert}\nssl_key = <{key}" if tls else "",
        plain_port=other if tls else port, tls_port=port if tls else 0,
    ))  # fmt: skip
    server = Dovecot(root, port, tls, cert)
    server.start()
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)


def _poller(runtime: Runtime, server: Dovecot) -> ImapPoller:
    context = ProcessingContext(
        runtime.sessions, runtime.settings, AuthPolicy(), lambda: NOW, reader=MAIL_READER
    )
    tls = ssl.create_default_context(cafile=str(server.cert)) if server.cert else None
    return ImapPoller(ImapConfig.from_url(server.url), context, poll_seconds=2, tls=tls)


async def _until(predicate: Callable[[], bool], timeout: float = 60.0) -> None:
    """Wait for state the test can observe; the deadline is generous, not a timing claim."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await asyncio.to_thread(predicate):
            return
        await asyncio.sleep(0.1)
    raise TimeoutError("condition not met in time")


def _outcomes(runtime: Runtime) -> dict[str, str]:
    with runtime.sessions() as session:
        rows = session.scalars(select(InboundMessage))
        return {r.message_key: r.outcome for r in rows}


def test_poller_files_mail_by_outcome_idles_and_reconnects(
    runtime: Runtime, dovecot: Dovecot
) -> None:
    with runtime.sessions.begin() as session:
        make_invitation(session, address="guest@example.net", plus_tag="t1",
                        message_id="<i1@parley.localhost>", uid="uid-1@parley.example")  # fmt: skip
    answer = reply(
        sender="guest@example.net", attendee="guest@example.net", message_id="<r@x>",
        to="scheduling+t1@parley.localhost",  # the invitation's private ORGANIZER address
    )  # fmt: skip
    dovecot.append(answer)
    dovecot.append((DATA / "mail" / "out_of_office.eml").read_bytes())
    dovecot.append((DATA / "mail" / "binary_garbage.eml").read_bytes())
    dovecot.append(answer)
    poller = _poller(runtime, dovecot)

    async def scenario() -> None:
        stop = asyncio.Event()
        task = asyncio.create_task(poller.run(stop))
        try:
            await _until(lambda: dovecot.uids("INBOX") == [] and len(_outcomes(runtime)) == 3)
            # Once the poller waits (IDLE, or its short poll), new mail arrives and is filed.
            await asyncio.wait_for(poller.waiting.wait(), 60)
            await asyncio.to_thread(dovecot.append, mail(message_id="<late@x>"))
            await _until(lambda: _outcomes(runtime).get("<late@x>") == "ignored")
            # The server goes away and comes back: the poller reconnects with back-off.
            await asyncio.to_thread(dovecot.stop)
            await _until(lambda: not poller.connected.is_set())
            await asyncio.to_thread(dovecot.start)
            await asyncio.to_thread(dovecot.append, mail(message_id="<after@x>"))
            await _until(
                lambda: "<after@x>" in _outcomes(runtime) and dovecot.uids("INBOX") == [],
                timeout=120,
            )
        finally:
            stop.set()
            await asyncio.wait_for(task, 60)

    asyncio.run(scenario())
    outcomes = _outcomes(runtime)
    assert outcomes["<r@x>"] == "itip" and outcomes["<ooo-1@contoso.example>"] == "auto_reply"
    assert sorted(outcomes.values()).count("unparseable") == 1
    assert len(dovecot.uids("Parley/Processed")) == 2  # the reply and its duplicate copy
    assert len(dovecot.uids("Parley/Ignored")) == 3
    assert len(dovecot.uids("Parley/Failed")) == 1
    assert dovecot.uids("INBOX") == []
    assert poller.connections >= 2
    with runtime.sessions() as session:
        state = session.scalars(select(ImapState)).one()
        assert state.uidvalidity and state.last_uid >= 6
        imap_uids = session.scalars(select(InboundMessage.imap_uid)).all()
        assert all(uid is not None for uid in imap_uids)


def test_sent_copies_are_appended(dovecot: Dovecot) -> None:
    tls = ssl.create_default_context(cafile=str(dovecot.cert)) if dovecot.cert else None
    config = ImapConfig.from_url(dovecot.url)
    stored = asyncio.run(append_sent(config, "Sent", [mail(message_id="<s1@x>")], tls))
    assert stored == 1 and len(dovecot.uids("Sent")) == 1
