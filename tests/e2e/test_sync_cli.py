"""`parley sync` run as a subprocess against a loopback feed server."""

from __future__ import annotations

import subprocess
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from core.db.engine import make_engine, make_sessionmaker
from core.db.models import ExternalEvent
from core.services.providers import create_provider
from core.services.sources import NewSource, create_source
from tests.e2e.helpers import PARLEY, parley_env

pytestmark = pytest.mark.slow
SOON = datetime.now(UTC).replace(microsecond=0) + timedelta(days=3)


def _feed() -> bytes:
    lines = ["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//Example//Feed//EN"]
    for n in range(3):
        start = SOON + timedelta(days=n)
        lines += ["BEGIN:VEVENT", f"UID:cli-{n}@example.com", "DTSTAMP:20250101T000000Z",
                  f"DTSTART:{start:%Y%m%dT%H%M%SZ}",
                  f"DTEND:{start + timedelta(hours=1):%Y%m%dT%H%M%SZ}", "SUMMARY:Busy",
                  "END:VEVENT"]  # fmt: skip
    return ("\r\n".join([*lines, "END:VCALENDAR"]) + "\r\n").encode()


@pytest.fixture
def feeds() -> Iterator[str]:
    body = _feed()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            ok = self.path == "/good.ics"
            payload = body if ok else b"<html><body>Sign in</body></html>"
            self.send_response(200)
            self.send_header("Content-Type", "text/calendar" if ok else "text/html")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def _run(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*PARLEY, *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=60
    )


def test_parley_sync_all_and_one(tmp_path: Path, feeds: str) -> None:
    # The key the sources' URLs are sealed with, shared with the command.
    key = "sync-cli-test-secret-key-0123456789abcdef"
    env = parley_env(tmp_path / "data", PARLEY_IMPORT_ALLOW_PRIVATE="true",
                     PARLEY_SMTP_PORT="0", PARLEY_LOG_LEVEL="warning", COLUMNS="200",
                     PARLEY_SECRET_KEY=key)  # fmt: skip
    assert _run(["migrate"], env, tmp_path).returncode == 0
    engine = make_engine(f"sqlite:///{tmp_path / 'data' / 'parley.db'}")
    sessions = make_sessionmaker(engine)
    now = datetime.now(UTC)
    with sessions.begin() as session:
        provider = create_provider(session, name="Cli", email="cli@example.com",
                                   timezone="Europe/Berlin", slug="cli", now=now)  # fmt: skip
        good = create_source(session, provider.id, NewSource(url=f"{feeds}/good.ics"), now=now,
                             secret_key=key.encode(), max_sources=5)  # fmt: skip
    done = _run(["sync", "--source", good], env, tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert good in done.stdout and "ok" in done.stdout
    with sessions() as session:
        assert session.scalar(select(func.count()).select_from(ExternalEvent)) == 3
    with sessions.begin() as session:
        create_source(session, provider.id, NewSource(url=f"{feeds}/login.ics"), now=now,
                      secret_key=key.encode(), max_sources=5)  # fmt: skip
    failed = _run(["sync", "--all"], env, tmp_path)
    assert failed.returncode == 1
    assert "2 source(s) synced" in failed.stdout and "HTML" in failed.stdout
    missing = _run(["sync", "--source", "src_missing"], env, tmp_path)
    assert missing.returncode == 1 and "no source" in missing.stderr
    nothing = _run(["sync"], env, tmp_path)  # nothing is due right after a poll
    assert nothing.returncode == 0 and "no sources due" in nothing.stdout
    engine.dispose()
