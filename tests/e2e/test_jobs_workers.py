"""A job claimed by a worker that dies is picked up by another worker."""

from __future__ import annotations

import signal
import subprocess
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select

from core.db.models import Job
from core.jobs import enqueue
from core.runtime import Runtime
from tests.e2e.helpers import PARLEY, parley_env, start

pytestmark = pytest.mark.slow


def _job(runtime: Runtime) -> Job:
    with runtime.sessions() as session:
        return session.scalars(select(Job).where(Job.kind == "system.sleep")).one()


def _wait_for(predicate, timeout: float) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise TimeoutError("condition not met")


def test_killed_workers_job_is_retried_by_another(runtime: Runtime, tmp_path: Path) -> None:
    with runtime.sessions.begin() as session:
        enqueue(session, "system.sleep", now=datetime.now(UTC), payload={"seconds": 2})
    env = parley_env(
        tmp_path / "data",
        PARLEY_DATABASE_URL=runtime.settings.database_url,
        PARLEY_JOB_LEASE_SECONDS="3",
        PARLEY_WORKER_POLL_SECONDS="0.2",
    )
    first = start(["worker"], env, tmp_path)
    try:
        _wait_for(lambda: _job(runtime).status == "running", timeout=15)
        claimed_by = _job(runtime).locked_by
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=5)
    finally:
        first.kill()
    assert _job(runtime).status == "running"  # the dead worker's claim is still there
    second = start(["worker"], env, tmp_path)
    try:
        _wait_for(lambda: _job(runtime).status == "done", timeout=20)
    finally:
        second.send_signal(signal.SIGTERM)
        assert second.wait(timeout=10) == 0
    job = _job(runtime)
    assert job.attempts == 2
    assert claimed_by is not None and str(first.pid) in claimed_by


def test_mail_ingest_stores_and_tempfails(runtime: Runtime, tmp_path: Path) -> None:
    message = tmp_path / "m.eml"
    message.write_bytes(b"From: a@example.net\r\nMessage-ID: <pipe-1@x>\r\n\r\nhello\r\n")
    env = parley_env(tmp_path / "data", PARLEY_DATABASE_URL=runtime.settings.database_url)
    ok = subprocess.run([*PARLEY, "mail", "ingest", str(message)], env=env, capture_output=True)
    assert ok.returncode == 0, ok.stderr
    again = subprocess.run(
        [*PARLEY, "mail", "ingest", "-"], env=env, input=message.read_bytes(), capture_output=True
    )
    assert again.returncode == 0 and b"duplicate" in again.stdout
    down = parley_env(
        tmp_path / "data", PARLEY_DATABASE_URL="postgresql+psycopg://postgres@127.0.0.1:1/none"
    )
    failed = subprocess.run(
        [*PARLEY, "mail", "ingest", str(message)], env=down, capture_output=True
    )
    assert failed.returncode == 75
