"""The two servers every conformance suite runs against, side by side on free ports.

Parley: the real `parley serve` as a subprocess over SQLite in a temp folder, with one
provider and one app password made through the JSON API. Stock Radicale: the same
Radicale version with filesystem storage and a plain htpasswd user.
"""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

ADMIN_TOKEN = "conformance-admin-token"
RADICALE_USER = "conformance"


class ServerDidNotStart(RuntimeError):
    """Raised when a server's port does not answer within the start timeout."""


@dataclass(frozen=True)
class DavServer:
    """One running server: where the CalDAV root and the user's principal are."""

    name: str
    root: str  # the CalDAV root, e.g. http://127.0.0.1:P/dav/
    username: str
    password: str
    # A second account on the same server (the same tenant on Parley), for the suites'
    # multi-user scheduling checks: (username, password).
    other: tuple[str, str] | None = None
    schedules: bool = False  # offers RFC 6638 scheduling (the suites' hints then say so)

    @property
    def principal(self) -> str:
        return f"{self.root}{self.username}/"

    @property
    def host_root(self) -> str:
        """scheme://host:port/ without the mount path."""
        return self.root.split("/", 3)[0] + "//" + self.root.split("/", 3)[2] + "/"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _wait(url: str, process: subprocess.Popen[bytes], log: Path, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise ServerDidNotStart(f"{url}: exited {process.returncode}\n{log.read_text()}")
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise ServerDidNotStart(f"{url} did not answer within {timeout} s\n{log.read_text()}")


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@contextmanager
def parley(folder: Path) -> Iterator[DavServer]:
    """`parley serve --no-worker` on a free port, with provider "conformance" and an app
    password issued through the API (the way an operator sets a provider up)."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PARLEY_")}
    env.update(
        PARLEY_DATA_DIR=str(folder),
        PARLEY_HTTP_PORT=str(port),
        PARLEY_BASE_URL=f"http://127.0.0.1:{port}",
        PARLEY_SMTP_PORT="0",
        PARLEY_ADMIN_TOKEN=ADMIN_TOKEN,
        PARLEY_LOG_LEVEL="warning",
    )
    log = folder / "parley.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "parley.cli", "serve", "--no-worker"],
            env=env,
            cwd=folder,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        base = f"http://127.0.0.1:{port}"
        _wait(f"{base}/healthz", process, log)
        first, second = _issue_password(base, "conformance"), _issue_password(base, "second")
        yield DavServer("parley", f"{base}/dav/", *first, other=second, schedules=True)
    finally:
        _stop(process)


def _issue_password(base: str, slug: str) -> tuple[str, str]:
    """A provider made through the API and an app password for it: (username, password)."""
    headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    provider = {
        "name": slug.title(),
        "email": f"{slug}@example.org",
        "timezone": "Europe/Berlin",
        "slug": slug,
    }
    with httpx.Client(base_url=f"{base}/api/v1", headers=headers, timeout=30) as api:
        created = api.post("/providers", json=provider)
        created.raise_for_status()
        issued = api.post(f"/providers/{created.json()['id']}/app-passwords", json={})
        issued.raise_for_status()
    body = issued.json()
    return body["username"], body["password"]


@contextmanager
def radicale(folder: Path) -> Iterator[DavServer]:
    """Stock Radicale (same version as Parley's) with filesystem storage and htpasswd."""
    port = free_port()
    password, other = secrets.token_urlsafe(16), secrets.token_urlsafe(16)
    users = folder / "users"
    users.write_text(f"{RADICALE_USER}:{password}\nsecond:{other}\n")
    log = folder / "radicale.log"
    command = [
        sys.executable,
        "-m",
        "radicale",
        "--storage-filesystem-folder",
        str(folder / "collections"),
        "--auth-type",
        "htpasswd",
        "--auth-htpasswd-filename",
        str(users),
        "--auth-htpasswd-encryption",
        "plain",
        "--server-hosts",
        f"127.0.0.1:{port}",
        "--logging-level",
        "warning",
    ]
    with open(log, "wb") as out:
        process = subprocess.Popen(command, cwd=folder, stdout=out, stderr=subprocess.STDOUT)
    try:
        base = f"http://127.0.0.1:{port}/"
        _wait(base, process, log)
        yield DavServer("radicale", base, RADICALE_USER, password, other=("second", other))
    finally:
        _stop(process)
