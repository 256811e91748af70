"""`parley serve` as a process: healthy within 10 s, stores SMTP mail, stops on SIGTERM."""

from __future__ import annotations

import signal
import smtplib
import subprocess
import time
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from core.db.engine import make_engine, make_sessionmaker
from core.db.models import InboundMessage
from tests.conftest import free_port
from tests.e2e.helpers import PARLEY, parley_env, start, wait_healthy

pytestmark = pytest.mark.slow


def _serve(tmp_path: Path, db_url: str | None) -> tuple[subprocess.Popen[bytes], str, int]:
    http_port, smtp_port = free_port(), free_port()
    extra = {"PARLEY_HTTP_PORT": str(http_port), "PARLEY_SMTP_PORT": str(smtp_port)}
    if db_url:
        extra["PARLEY_DATABASE_URL"] = db_url
    proc = start(["serve"], parley_env(tmp_path / "data", **extra), tmp_path)
    return proc, f"http://127.0.0.1:{http_port}", smtp_port


@pytest.mark.parametrize("use_given_db", [False, True], ids=["embedded-default", "test-db"])
def test_serve_answers_stores_mail_and_stops_on_sigterm(
    tmp_path: Path, db_url: str, use_given_db: bool
) -> None:
    proc, base, smtp_port = _serve(tmp_path, db_url if use_given_db else None)
    try:
        wait_healthy(base, timeout=10)
        assert httpx.get(f"{base}/metrics").text.count("parley_") > 0
        assert httpx.get(f"{base}/api/v1/openapi.json").json()["openapi"].startswith("3.")
        raw = (
            b"From: Ann <ann@example.net>\r\nTo: scheduling@parley.localhost\r\n"
            b"Subject: hello\r\nMessage-ID: <serve-test@example.net>\r\n\r\nHi there\r\n"
        )
        with smtplib.SMTP("127.0.0.1", smtp_port, timeout=10) as client:
            refused = client.sendmail("ann@example.net", ["scheduling+b1@parley.localhost"], raw)
            assert refused == {}
            with pytest.raises(smtplib.SMTPRecipientsRefused):
                client.sendmail("ann@example.net", ["someone@else.example"], raw)
        url = db_url if use_given_db else f"sqlite:///{tmp_path / 'data' / 'parley.db'}"
        engine = make_engine(url)
        sessions = make_sessionmaker(engine)
        # Stored before the 250; the worker, woken by the store, then settles it: plain
        # mail that answers no invitation is "ignored".
        deadline = time.monotonic() + 10
        while True:
            with sessions() as session:
                rows = session.scalars(select(InboundMessage)).all()
            if (rows and rows[0].outcome != "pending") or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        engine.dispose()
        assert [r.message_key for r in rows] == ["<serve-test@example.net>"]
        assert rows[0].raw == raw
        assert rows[0].outcome == "ignored"
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=10)
    assert code == 0


def test_first_start_prints_the_admin_token_once(tmp_path: Path) -> None:
    env = parley_env(tmp_path / "data")
    first = subprocess.run([*PARLEY, "migrate"], env=env, cwd=tmp_path, capture_output=True)
    assert first.returncode == 0
    proc, base, _ = _serve(tmp_path, None)
    try:
        wait_healthy(base, timeout=30)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=10)
    logs = b"".join(p.read_bytes() for p in tmp_path.glob("parley-serve-*.log")).decode()
    token = (tmp_path / "data" / "admin_token").read_text().strip()
    assert logs.count(token) == 1
    proc, base, _ = _serve(tmp_path, None)
    try:
        wait_healthy(base, timeout=30)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=10)
    logs = b"".join(p.read_bytes() for p in tmp_path.glob("parley-serve-*.log")).decode()
    assert logs.count(token) == 1


def test_bad_setting_is_one_line_not_a_traceback(tmp_path: Path) -> None:
    env = parley_env(tmp_path / "data", PARLEY_HTTP_PORT="abc")
    result = subprocess.run([*PARLEY, "serve"], env=env, cwd=tmp_path, capture_output=True)
    assert result.returncode == 2
    lines = result.stderr.decode().strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "PARLEY_HTTP_PORT" in lines[0] and "Traceback" not in lines[0]


def test_every_command_has_help(tmp_path: Path) -> None:
    for command in (["serve"], ["migrate"], ["worker"], ["mail", "ingest"], ["sync"], ["demo"]):
        result = subprocess.run([*PARLEY, *command, "--help"], capture_output=True, cwd=tmp_path)
        assert result.returncode == 0, command
        assert b"Usage" in result.stdout


def test_serve_trusts_no_forwarded_for_and_keeps_connections_after_errors(
    tmp_path: Path,
) -> None:
    """As operators run it: uvicorn itself would trust X-Forwarded-For from loopback."""
    http_port = free_port()
    env = parley_env(
        tmp_path / "data",
        PARLEY_HTTP_PORT=str(http_port),
        PARLEY_SMTP_PORT="0",
        PARLEY_PUBLIC_RATE_LIMIT_PER_MINUTE="3",
    )
    proc = start(["serve", "--no-worker"], env, tmp_path)
    base = f"http://127.0.0.1:{http_port}"
    try:
        wait_healthy(base, timeout=10)
        with httpx.Client(base_url=base, timeout=10) as client:
            statuses = []
            for i in range(4):
                deep = b"[" * 100_000 + b"]" * 100_000  # once a RecursionError, a 500
                answer = client.post(
                    "/api/v1/holds", content=deep, headers={"X-Forwarded-For": f"203.0.113.{i}"}
                )
                statuses.append(answer.status_code)
                assert client.get("/healthz").status_code == 200  # same connection
        assert statuses == [400, 400, 400, 429]
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=10)
    assert code == 0
