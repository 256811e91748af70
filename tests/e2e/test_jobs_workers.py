"""A job claimed by a worker that dies is picked up by another worker."""

from __future__ import annotations

import signal
import subprocess
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, update

from core.db.models import Job, OutboundMessage
from core.jobs import enqueue
from core.runtime import Runtime
from core.services.outbox import enqueue_message
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


def _sleep_job(runtime: Runtime, seconds: float) -> int:
    with runtime.sessions.begin() as session:
        enqueue(session, "system.sleep", now=datetime.now(UTC), payload={"seconds": seconds})
        session.flush()
        return max(session.scalars(select(Job.id).where(Job.kind == "system.sleep")))


def _job_row(runtime: Runtime, job_id: int) -> Job:
    with runtime.sessions() as session:
        job = session.get(Job, job_id)
        assert job is not None
        return job


def _leased_mail(runtime: Runtime, key: str, owner: str | None) -> None:
    """An outbox row as a sender leaves it while sending: leased for minutes to owner."""
    now = datetime.now(UTC)
    with runtime.sessions.begin() as session:
        enqueue_message(
            session, idempotency_key=key, kind="invitation", uid=key, sequence=0,
            attendee="a@example.net", method="REQUEST", booking_id=None,
            recipient="a@example.net", message=b"Subject: hi\r\n\r\nhi\r\n",
            message_id=f"<{key}@parley.test>", now=now,
        )  # fmt: skip
        session.execute(
            update(OutboundMessage)
            .where(OutboundMessage.idempotency_key == key)
            .values(status="sending", locked_by=owner, locked_until=now + timedelta(minutes=5))
        )


def _mail_status(runtime: Runtime, key: str) -> str:
    with runtime.sessions() as session:
        return session.scalars(
            select(OutboundMessage.status).where(OutboundMessage.idempotency_key == key)
        ).one()


def test_a_restarted_worker_takes_back_its_own_dead_leases_at_once(
    runtime: Runtime, tmp_path: Path
) -> None:
    """kill -9, restart on the same data folder: the job and the mail it held go on now,
    not after their leases (120 s, 300 s); a live worker's lease is never taken."""

    def env(folder: str) -> dict[str, str]:
        return parley_env(
            tmp_path / folder,
            PARLEY_DATABASE_URL=runtime.settings.database_url,
            PARLEY_WORKER_POLL_SECONDS="0.2",
            PARLEY_WORKER_CONCURRENCY="1",
        )

    other_job = _sleep_job(runtime, 30)
    other = start(["worker"], env("other"), tmp_path)  # another host's worker, alive
    first = second = None
    try:
        _wait_for(lambda: _job_row(runtime, other_job).status == "running", timeout=15)
        other_owner = _job_row(runtime, other_job).locked_by
        job = _sleep_job(runtime, 1)
        first = start(["worker"], env("data"), tmp_path)
        _wait_for(lambda: _job_row(runtime, job).status == "running", timeout=15)
        dead_owner = _job_row(runtime, job).locked_by
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=5)
        assert dead_owner and other_owner and str(first.pid) in dead_owner
        _leased_mail(runtime, "held-by-the-dead", dead_owner)
        _leased_mail(runtime, "held-by-the-live", other_owner)
        restarted = time.monotonic()
        second = start(["worker"], env("data"), tmp_path)
        _wait_for(lambda: _job_row(runtime, job).status == "done", timeout=15)
        _wait_for(lambda: _mail_status(runtime, "held-by-the-dead") == "sent", timeout=5)
        took = time.monotonic() - restarted
        assert took < 10, f"the dead worker's job waited {took:.1f} s"
        still = _job_row(runtime, other_job)
        assert (still.status, still.locked_by) == ("running", other_owner)
        assert _mail_status(runtime, "held-by-the-live") == "sending"
        assert (tmp_path / "data" / "maildir" / "new").is_dir()
    finally:
        for proc in (other, first, second):
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.wait(timeout=5)


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
