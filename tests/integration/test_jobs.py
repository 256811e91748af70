"""The job queue: periodic jobs reschedule themselves; a wake-up during a run is not lost."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, text

from core.db.engine import make_engine, make_sessionmaker
from core.db.models import Job
from core.jobs import (
    JobContext,
    Periodic,
    claim,
    enqueue,
    ensure_periodic,
    finish,
    wake_after_commit,
    wake_now,
    wake_periodic,
)
from core.runtime import Runtime

T0 = datetime(2027, 1, 4, 12, 0, tzinfo=UTC)


def _row(runtime: Runtime) -> Job:
    with runtime.sessions() as session:
        return session.scalars(select(Job)).one()


def test_periodic_job_runs_again_after_its_period(runtime: Runtime) -> None:
    ensure_periodic(runtime.sessions, [Periodic("tick", 60)], T0)
    (job,) = claim(runtime.sessions, worker="w", now=T0, lease_seconds=30)
    finish(runtime.sessions, job, worker="w", now=T0 + timedelta(seconds=1))
    row = _row(runtime)
    assert row.status == "queued" and row.run_at == T0 + timedelta(seconds=61)


def test_wake_up_during_a_run_makes_it_run_again_at_once(runtime: Runtime) -> None:
    ensure_periodic(runtime.sessions, [Periodic("tick", 60)], T0)
    (job,) = claim(runtime.sessions, worker="w", now=T0, lease_seconds=30)
    with runtime.sessions.begin() as session:  # new work arrives while the job runs
        wake_periodic(session, "tick", T0 + timedelta(seconds=1))
    finish(runtime.sessions, job, worker="w", now=T0 + timedelta(seconds=2))
    row = _row(runtime)
    assert row.status == "queued" and row.run_at == T0 + timedelta(seconds=2)
    assert claim(runtime.sessions, worker="w", now=T0 + timedelta(seconds=2), lease_seconds=30)


def test_wake_up_of_a_waiting_job_makes_it_due(runtime: Runtime) -> None:
    ensure_periodic(runtime.sessions, [Periodic("tick", 60)], T0 - timedelta(seconds=1))
    (job,) = claim(runtime.sessions, worker="w", now=T0, lease_seconds=30)
    finish(runtime.sessions, job, worker="w", now=T0)
    assert not claim(runtime.sessions, worker="w", now=T0 + timedelta(seconds=5), lease_seconds=30)
    with runtime.sessions.begin() as session:
        wake_periodic(session, "tick", T0 + timedelta(seconds=5))
    assert claim(runtime.sessions, worker="w", now=T0 + timedelta(seconds=5), lease_seconds=30)


def test_wake_now_wakes_only_its_own_kind(runtime: Runtime) -> None:
    # "a_b" must not match "axb": the LIKE pattern takes _ and % literally.
    kinds = [Periodic("a_b", 60), Periodic("axb", 60), Periodic("50%", 60)]
    ensure_periodic(runtime.sessions, kinds, T0 - timedelta(seconds=1))
    for _ in kinds:
        (job,) = claim(runtime.sessions, worker="w", now=T0, lease_seconds=30)
        finish(runtime.sessions, job, worker="w", now=T0)
    later = T0 + timedelta(seconds=5)
    assert not claim(runtime.sessions, worker="w", now=later, lease_seconds=30)
    wake_now(runtime.engine, {"a_b": later, "50%": later})
    woken = claim(runtime.sessions, worker="w", now=later, lease_seconds=30, limit=5)
    assert sorted(job.kind for job in woken) == ["50%", "a_b"]


def test_a_worker_runs_a_short_job_while_a_long_one_is_in_hand(runtime: Runtime) -> None:
    import asyncio
    import threading

    from parley.worker import Worker

    runtime.clock = lambda: datetime.now(UTC)
    release, fast_done = threading.Event(), threading.Event()
    seen: list[str] = []

    def slow(context: JobContext, payload: dict[str, object]) -> None:
        seen.append("slow started")
        release.wait(20)
        seen.append("slow finished")

    def fast(context: JobContext, payload: dict[str, object]) -> None:
        seen.append("fast")
        fast_done.set()

    worker = Worker(runtime, {"slow": slow, "fast": fast}, [Periodic("slow", 600)])
    now = datetime.now(UTC)

    async def scenario() -> None:
        stop = asyncio.Event()
        running = asyncio.ensure_future(worker.run(stop))
        while "slow started" not in seen:
            await asyncio.sleep(0.02)
        with runtime.sessions.begin() as session:
            enqueue(session, "fast", now=now)
        worker.wake.set()
        assert await asyncio.to_thread(fast_done.wait, 10), "the short job waited for the long one"
        release.set()
        stop.set()
        await asyncio.wait_for(running, 10)

    asyncio.run(scenario())
    assert seen == ["slow started", "fast", "slow finished"]


def test_a_wake_up_committed_while_the_job_finishes_is_not_lost(runtime: Runtime) -> None:
    import threading
    import time

    ensure_periodic(runtime.sessions, [Periodic("tick", 60)], T0)
    (job,) = claim(runtime.sessions, worker="w", now=T0, lease_seconds=30)
    waking = runtime.sessions()
    waking.begin()
    wake_periodic(waking, "tick", T0 + timedelta(seconds=1))  # not committed yet
    finishing = threading.Thread(
        target=finish, args=(runtime.sessions, job), kwargs={"worker": "w", "now": T0 + T2}
    )
    finishing.start()
    time.sleep(0.3)  # finish() now waits for the wake-up's transaction
    waking.commit()
    waking.close()
    finishing.join(10)
    row = _row(runtime)
    assert row.status == "queued" and row.run_at == T0 + T2, "the wake-up was overwritten"


T2 = timedelta(seconds=2)


def test_a_wake_after_commit_happens_only_once_the_transaction_commits(runtime: Runtime) -> None:
    ensure_periodic(runtime.sessions, [Periodic("tick", 60)], T0)
    (job,) = claim(runtime.sessions, worker="w", now=T0, lease_seconds=30)
    with runtime.sessions.begin() as session:
        wake_after_commit(session, "tick", T0 + timedelta(seconds=1))
        wake_after_commit(session, "tick", T0 + timedelta(seconds=1))  # one wake per kind
        assert _row(runtime).run_at == T0, "woken before the commit"
    assert _row(runtime).run_at == T0 + timedelta(seconds=1)
    with runtime.sessions() as session, session.begin():
        wake_after_commit(session, "tick", T0 + T2)
        session.rollback()
    assert _row(runtime).run_at == T0 + timedelta(seconds=1), "a rolled-back wake took effect"
    finish(runtime.sessions, job, worker="w", now=T0 + T2)
    row = _row(runtime)
    assert row.status == "queued" and row.run_at == T0 + T2, "the wake-up was lost"


def test_a_wake_after_commit_needs_no_second_pooled_connection(runtime: Runtime) -> None:
    """With one pooled connection, held by the committing session, the wake still happens:
    it runs once that connection is back (32 SQLite clients once ran the pool dry)."""
    ensure_periodic(runtime.sessions, [Periodic("tick", 60)], T0)
    engine = make_engine(runtime.settings.database_url, pool_size=1, max_overflow=0, pool_timeout=1)
    try:
        with make_sessionmaker(engine).begin() as session:
            wake_after_commit(session, "tick", T0 - timedelta(seconds=5))
            session.execute(text("SELECT 1"))  # the session holds the pool's one connection
        assert engine.pool.checkedout() == 0
    finally:
        engine.dispose()
    assert _row(runtime).run_at == T0 - timedelta(seconds=5), "the wake did not happen"


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)  # SQLite has one writer
def test_an_open_transaction_that_will_wake_a_job_does_not_lock_its_row(runtime: Runtime) -> None:
    ensure_periodic(runtime.sessions, [Periodic("tick", 60)], T0)
    (job,) = claim(runtime.sessions, worker="w", now=T0, lease_seconds=30)
    with runtime.sessions.begin() as queuing:
        wake_after_commit(queuing, "tick", T0 + timedelta(seconds=1))
        queuing.execute(text("SELECT 1"))  # the transaction is open and stays open
        with runtime.sessions.begin() as other:  # another answer wakes the same job
            other.execute(text("SET LOCAL lock_timeout = '2s'"))
            wake_periodic(other, "tick", T0 + timedelta(seconds=1))
        finish(runtime.sessions, job, worker="w", now=T0 + T2)
    assert _row(runtime).status == "queued"


def test_claim_takes_due_jobs_of_its_kinds_oldest_first_and_lapsed_leases(
    runtime: Runtime,
) -> None:
    with runtime.sessions.begin() as session:
        enqueue(session, "mail", now=T0, run_at=T0 + T2, payload={"to": ["ada"], "n": 2})
        enqueue(session, "mail", now=T0, run_at=T0, payload={"n": 1})
        enqueue(session, "feed", now=T0, run_at=T0)
        enqueue(session, "mail", now=T0, run_at=T0 + timedelta(hours=1))  # not due yet
    now = T0 + timedelta(seconds=5)
    first = claim(runtime.sessions, worker="a", now=now, lease_seconds=30, kinds=["mail"], limit=5)
    assert [job.payload for job in first] == [{"n": 1}, {"to": ["ada"], "n": 2}]
    assert [job.run_at for job in first] == [T0, T0 + T2] and {j.attempts for j in first} == {1}
    assert not claim(runtime.sessions, worker="b", now=now, lease_seconds=30, kinds=["mail"])
    assert claim(runtime.sessions, worker="b", now=now, lease_seconds=30, kinds=[]) == []
    # Worker a died: once its lease lapses, b takes the job over, and a's late finish is void.
    later = now + timedelta(seconds=31)
    (taken,) = claim(runtime.sessions, worker="b", now=later, lease_seconds=30, kinds=["mail"])
    assert taken.id == first[0].id and taken.attempts == 2
    finish(runtime.sessions, first[0], worker="a", now=later)
    with runtime.sessions() as session:
        row = session.get(Job, taken.id)
        assert row is not None and (row.status, row.locked_by) == ("running", "b")
        assert row.locked_until == later + timedelta(seconds=30)
    finish(runtime.sessions, taken, worker="b", now=later)
    with runtime.sessions() as session:
        row = session.get(Job, taken.id)
        assert row is not None and (row.status, row.locked_by, row.finished_at) == (
            "done", None, later
        )  # fmt: skip


def test_workers_claiming_at_once_never_share_a_job(runtime: Runtime) -> None:
    from concurrent.futures import ThreadPoolExecutor

    with runtime.sessions.begin() as session:
        for n in range(60):
            enqueue(session, "mail", now=T0, payload={"n": n})

    def take(worker: str) -> list[int]:
        taken = []
        while jobs := claim(runtime.sessions, worker=worker, now=T0, lease_seconds=30, limit=3):
            taken.extend(job.payload["n"] for job in jobs)
        return taken

    with ThreadPoolExecutor(4) as pool:
        shares = list(pool.map(take, ["a", "b", "c", "d"]))
    everything = [n for share in shares for n in share]
    assert sorted(everything) == list(range(60)), "a job was claimed twice or not at all"


def test_a_wake_in_the_same_process_reaches_the_worker_before_its_next_poll(
    runtime: Runtime,
) -> None:
    import asyncio
    import threading

    from core.db.driver import engine_of
    from parley.worker import Worker

    runtime.clock = lambda: datetime.now(UTC)
    runtime.settings = runtime.settings.model_copy(update={"worker_poll_seconds": 60.0})
    runs: list[float] = []
    ran = threading.Event()

    def tick(context: JobContext, payload: dict[str, object]) -> None:
        runs.append(time.monotonic())
        ran.set()

    worker = Worker(runtime, {"tick": tick}, [Periodic("tick", 600)])

    async def scenario() -> float:
        stop = asyncio.Event()
        running = asyncio.ensure_future(worker.run(stop))
        assert await asyncio.to_thread(ran.wait, 10), "the first run did not happen"
        await asyncio.sleep(0.3)  # finished, next run in 600 s, next poll in 60 s
        ran.clear()
        woken = time.monotonic()
        await asyncio.to_thread(wake_now, engine_of(runtime.sessions), {"tick": runtime.clock()})
        assert await asyncio.to_thread(ran.wait, 10), "the wake was not noticed"
        stop.set()
        await asyncio.wait_for(running, 10)
        return runs[-1] - woken

    assert asyncio.run(scenario()) < 2.0
    assert len(runs) == 2
