"""`parley doctor` through the CLI: a good configuration passes, each bad one fails its line.

The relay is a real aiosmtpd server on loopback (one that accepts, one that refuses the
organizer), IMAP a real Dovecot when installed; the DKIM record printed is checked by
verifying a signature made with the key against it.
"""

from __future__ import annotations

import os
import re
import sqlite3
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import dkim
import pytest
from aiosmtpd.controller import Controller
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from mailagent.dkim import DkimSigner
from tests.conftest import free_port
from tests.e2e.helpers import PARLEY, parley_env
from tests.e2e.relay import RelaySink, running_relay
from tests.integration.mail.test_imap_dovecot import Dovecot, dovecot

__all__ = ["dovecot"]
pytestmark = pytest.mark.slow
ORGANIZER = "scheduling@example.org"


class Refusing:
    """A relay that takes no mail for the organizer."""

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: Any
    ) -> str:
        return "550 5.7.1 <scheduling@example.org>: Relay access denied"


@pytest.fixture
def relay() -> Iterator[tuple[RelaySink, int]]:
    with running_relay() as started:
        yield started


@pytest.fixture
def good(tmp_path: Path, db_url: str, relay: tuple[RelaySink, int]) -> dict[str, str]:
    """The environment of a configuration ready to go live (without IMAP)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    key_file = tmp_path / "dkim.key"
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
    )
    key_file.chmod(0o600)
    config = tmp_path / "parley.toml"
    config.write_text('secret_key = "doctor-secret-key-0123456789abcdef"\n')
    config.chmod(0o600)
    return parley_env(
        tmp_path / "data",
        PARLEY_CONFIG=str(config),
        PARLEY_DATABASE_URL=db_url,
        PARLEY_BASE_URL="https://parley.example.org",
        PARLEY_ORGANIZER_EMAIL=ORGANIZER,
        PARLEY_SMTP_RELAY_URL=f"smtp://127.0.0.1:{relay[1]}",
        PARLEY_DKIM_SELECTOR="parley",
        PARLEY_DKIM_DOMAIN="example.org",
        PARLEY_DKIM_KEY_FILE=str(key_file),
        PARLEY_INBOUND_AUTH="authres:mx.example.org",
        PARLEY_LOG_LEVEL="warning",
    )


def doctor(env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*PARLEY, "doctor"], env=env, cwd=cwd, capture_output=True, text=True, timeout=120
    )


def line(output: str, name: str) -> str:
    found = [row for row in output.splitlines() if re.match(rf"\[.{{4}}\] {name}:", row)]
    assert len(found) == 1, output
    return found[0]


def test_a_good_configuration_passes_and_prints_the_dkim_record(
    good: dict[str, str], tmp_path: Path, relay: tuple[RelaySink, int]
) -> None:
    done = doctor(good, tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    for name in ("database", "base URL", "relay", "DKIM", "inbound auth", "secret files"):
        assert line(done.stdout, name).startswith("[ ok ]"), done.stdout
    assert line(done.stdout, "IMAP").startswith("[skip]")
    assert "0 failed" in done.stdout
    assert relay[0].snapshot() == []  # RCPT, then RSET: no mail sent
    # The printed record verifies a signature made with the key.
    strings = re.findall(r'^\s+"(.*)"$', done.stdout, re.MULTILINE)
    record = "".join(strings)
    assert record.startswith("v=DKIM1; k=rsa; p=") and all(len(s) <= 255 for s in strings)
    assert "parley._domainkey.example.org. IN TXT (" in done.stdout
    signer = DkimSigner.from_file("parley", "example.org", good["PARLEY_DKIM_KEY_FILE"])
    message = signer.sign(b"From: scheduling@example.org\r\nSubject: hi\r\n\r\nbody\r\n")

    def dns(name: bytes, timeout: int = 5) -> bytes | None:
        return record.encode() if name == b"parley._domainkey.example.org." else None

    assert dkim.verify(message, dnsfunc=dns)


def test_imap_login_and_folders_pass_against_dovecot(
    good: dict[str, str], tmp_path: Path, dovecot: Dovecot
) -> None:
    env = {**good, "PARLEY_IMAP_URL": dovecot.url}
    if dovecot.cert:
        env["PARLEY_IMAP_CA_FILE"] = str(dovecot.cert)
    done = doctor(env, tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    imap = line(done.stdout, "IMAP")
    assert imap.startswith("[ ok ]") and "INBOX opens" in imap
    assert "created on the first poll: Parley/Failed, Parley/Ignored, Parley/Processed" in imap


def test_a_wrong_imap_password_fails(
    good: dict[str, str], tmp_path: Path, dovecot: Dovecot
) -> None:
    env = {**good, "PARLEY_IMAP_URL": dovecot.url.replace("s3cret%20pass", "wrong")}
    if dovecot.cert:
        env["PARLEY_IMAP_CA_FILE"] = str(dovecot.cert)
    done = doctor(env, tmp_path)
    assert done.returncode == 1
    assert line(done.stdout, "IMAP").startswith("[FAIL] IMAP: cannot log in as parley@")


def empty_database(tmp_path: Path) -> str:
    path = tmp_path / "other.db"
    with sqlite3.connect(path) as connection:
        connection.execute("CREATE TABLE unrelated (id INTEGER)")
    connection.close()
    return f"sqlite:///{path}"


BAD: dict[str, tuple[str, str, str]] = {
    # case: (setting, value or a marker the test resolves, expected start of the FAIL line)
    "unmigrated database": (
        "PARLEY_DATABASE_URL", "<empty-db>", "[FAIL] database: sqlite:///",
    ),
    "missing database": (
        "PARLEY_DATABASE_URL", "<missing-db>", "[FAIL] database: no SQLite database at",
    ),
    "http for a public host": (
        "PARLEY_BASE_URL", "http://parley.example.org",
        "[FAIL] base URL: http://parley.example.org is a public host over plain http",
    ),
    "private base host": (
        "PARLEY_BASE_URL", "https://parley.internal",
        "[FAIL] base URL: parley.internal cannot be reached",
    ),
    "relay refusing": ("PARLEY_SMTP_RELAY_URL", "<refusing>", "[FAIL] relay: 127.0.0.1:"),
    "relay down": ("PARLEY_SMTP_RELAY_URL", "<closed>", "[FAIL] relay: cannot talk to"),
    "unreadable DKIM key": (
        "PARLEY_DKIM_KEY_FILE", "<missing-key>", "[FAIL] DKIM: cannot read",
    ),
    "DKIM key that is no key": (
        "PARLEY_DKIM_KEY_FILE", "<garbage-key>", "[FAIL] DKIM: ",
    ),
    "inbound auth none": (
        "PARLEY_INBOUND_AUTH", "none", "[FAIL] inbound auth: PARLEY_INBOUND_AUTH=none",
    ),
    "world-readable secrets file": (
        "PARLEY_CONFIG", "<loose-config>", "[FAIL] secret files: readable by others:",
    ),
}  # fmt: skip


@pytest.mark.parametrize("case", list(BAD), ids=list(BAD))
def test_each_bad_setting_fails_its_own_line(
    good: dict[str, str], tmp_path: Path, case: str
) -> None:
    setting, value, expected = BAD[case]
    with _resolved(value, tmp_path) as resolved:
        env = {**good, setting: resolved}
        done = doctor(env, tmp_path)
    assert done.returncode == 1, done.stdout
    name = expected.removeprefix("[FAIL] ").partition(":")[0]
    failing = line(done.stdout, name)
    assert failing.startswith(expected), done.stdout
    others = [row for row in done.stdout.splitlines() if row.startswith("[FAIL]")]
    assert others == [failing], done.stdout  # only the broken part fails
    assert "fix: " in done.stdout.split(failing, 1)[1].splitlines()[1]
    if case == "unmigrated database":
        assert "has no Parley schema" in failing
    if case == "relay refusing":
        assert "RCPT TO:<scheduling@example.org>: 550 5.7.1" in failing
    if case == "world-readable secrets file":
        assert "(644)" in failing and "chmod 600" in done.stdout


@contextmanager
def _resolved(value: str, tmp: Path) -> Iterator[str]:
    """The value for a bad case, with any server it needs running while the doctor runs."""
    if value == "<refusing>":
        port = free_port()
        controller = Controller(Refusing(), hostname="127.0.0.1", port=port)
        controller.start()
        try:
            yield f"smtp://127.0.0.1:{port}"
        finally:
            controller.stop()
        return
    yield _file_value(value, tmp)


def _file_value(value: str, tmp: Path) -> str:
    if value == "<empty-db>":
        return empty_database(tmp)
    if value == "<missing-db>":
        return f"sqlite:///{tmp / 'nowhere.db'}"
    if value == "<closed>":
        return f"smtp://127.0.0.1:{free_port()}"
    if value == "<missing-key>":
        return str(tmp / "no-such.key")
    if value == "<garbage-key>":
        (tmp / "garbage.key").write_text("not a key\n")
        os.chmod(tmp / "garbage.key", 0o600)
        return str(tmp / "garbage.key")
    if value == "<loose-config>":
        (tmp / "loose.toml").write_text('secret_key = "doctor-secret-key-0123456789abcdef"\n')
        os.chmod(tmp / "loose.toml", 0o644)
        return str(tmp / "loose.toml")
    return value
