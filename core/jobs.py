"""A job queue in the database, shared by any number of worker processes.

A job is claimed with a lease (locked_until): on PostgreSQL with SELECT … FOR UPDATE
SKIP LOCKED so workers never wait on each other, on SQLite under its single writer
lock. A worker that dies leaves its lease to run out, and the job is claimed again —
retried, never lost. Periodic jobs are one row each (dedup_key) that reschedules itself.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, Update, event, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, SessionTransaction, sessionmaker

from core.db.driver import as_utc, dialect_time, engine_of, for_driver
from core.db.models import DEFAULT_TENANT, Job
from core.logging import get_logger

_log = get_logger("parley.jobs")


@dataclass(frozen=True)
class ClaimedJob:
    id: int
    kind: str
    payload: dict[str, Any]
    attempts: int
    dedup_key: str | None
    # run_at when claimed: a wake-up during the run moves it, and finish() runs again at once.
    run_at: datetime


@dataclass(frozen=True)
class JobContext:
    """What a handler gets: the session factory, the current time and the app's services."""

    sessions: sessionmaker[Session]
    now: datetime
    services: Mapping[str, Any] = field(default_factory=dict)
    worker: str | None = None  # the lease owner running the job (also of what it claims)


Handler = Callable[[JobContext, dict[str, Any]], None]


@dataclass(frozen=True)
class Periodic:
    """A job that runs every ``every_seconds``; ``instances`` rows of it may run at once
    (in different workers), each woken together, for work that is safe to share."""

    kind: str
    every_seconds: float
    instances: int = 1

    def dedup_keys(self) -> list[str]:
        first = f"periodic:{self.kind}"
        return [first, *(f"{first}#{n}" for n in range(2, self.instances + 1))]


def enqueue(
    session: Session,
    kind: str,
    *,
    now: datetime,
    payload: dict[str, Any] | None = None,
    run_at: datetime | None = None,
    dedup_key: str | None = None,
    tenant_id: str = DEFAULT_TENANT,
) -> None:
    """Add a job in the caller's transaction; with a dedup_key it exists at most once."""
    if dedup_key is not None:
        existing = session.scalar(select(Job.id).where(Job.dedup_key == dedup_key))
        if existing is not None:
            return
    session.add(
        Job(
            tenant_id=tenant_id,
            kind=kind,
            payload=payload or {},
            run_at=run_at or now,
            dedup_key=dedup_key,
            status="queued",
            created_at=now,
        )
    )


def ensure_periodic(
    sessions: sessionmaker[Session], jobs: Iterable[Periodic], now: datetime
) -> None:
    """Create the row of each periodic job once (several processes may race: harmless)."""
    for job in jobs:
        for key in job.dedup_keys():
            try:
                with sessions.begin() as session:
                    enqueue(
                        session,
                        job.kind,
                        now=now,
                        payload={"every_seconds": job.every_seconds},
                        dedup_key=key,
                    )
            except IntegrityError:  # another process inserted the same key: it exists now
                continue


# claim and finish as plain SQL on a pooled driver connection: the worker runs them for
# every job it takes, which under a stream of answers is hundreds of times a second, and
# the ORM's load, flush and commit cost several times the statements themselves.
_CLAIM = (
    "UPDATE jobs SET status = 'running', locked_by = :worker, locked_until = :until,"
    " attempts = attempts + 1 WHERE id IN (SELECT id FROM jobs WHERE"
    " ((status = 'queued' AND run_at <= :now) OR (status = 'running' AND locked_until < :now))"
    "{kinds} ORDER BY run_at, id LIMIT :limit{lock})"
    " RETURNING id, kind, payload, attempts, dedup_key, run_at"
)


def claim(
    sessions: sessionmaker[Session],
    *,
    worker: str,
    now: datetime,
    lease_seconds: float,
    kinds: Iterable[str] | None = None,
    limit: int = 1,
) -> list[ClaimedJob]:
    """Claim up to limit due jobs (queued and due, or running with a lapsed lease).

    On PostgreSQL a job another worker is claiming at the same moment is skipped.
    """
    engine = engine_of(sessions)
    dialect = engine.dialect.name
    names = list(kinds) if kinds is not None else None
    if names == []:
        return []
    params: dict[str, Any] = {
        "worker": worker,
        "now": dialect_time(dialect, now),
        "until": dialect_time(dialect, now + timedelta(seconds=lease_seconds)),
        "limit": limit,
    }
    wanted = ""
    if names is not None:
        params.update((f"kind{i}", name) for i, name in enumerate(names))
        wanted = " AND kind IN (" + ", ".join(f":kind{i}" for i in range(len(names))) + ")"
    lock = " FOR UPDATE SKIP LOCKED" if dialect == "postgresql" else ""
    rows = _run_plain(engine, _CLAIM.format(kinds=wanted, lock=lock), params)
    claimed = [
        ClaimedJob(id, kind, _payload(payload), attempts, dedup_key, as_utc(run_at))
        for id, kind, payload, attempts, dedup_key, run_at in rows
    ]
    claimed.sort(key=lambda job: (job.run_at, job.id))
    return claimed


def _payload(stored: dict[str, Any] | str | None) -> dict[str, Any]:
    """A JSON column as read on the driver's cursor: a dict on PostgreSQL, text on SQLite."""
    if isinstance(stored, dict):
        return stored
    loaded = json.loads(stored) if stored else {}
    return loaded if isinstance(loaded, dict) else {}


# One statement, so a wake-up being committed at the same moment is waited for and seen
# (PostgreSQL re-reads a row it had to wait for) rather than overwritten with the next
# period's time.
_FINISH_PERIODIC = (
    "UPDATE jobs SET status = 'queued', locked_by = NULL, locked_until = NULL,"
    " last_error = NULL, attempts = 0,"
    " run_at = CASE WHEN run_at > :claimed THEN :now ELSE :next END"
    " WHERE id = :id AND locked_by = :worker"
)
_FINISH_ONCE = (
    "UPDATE jobs SET status = 'done', locked_by = NULL, locked_until = NULL,"
    " last_error = NULL, finished_at = :now WHERE id = :id AND locked_by = :worker"
)


def finish(sessions: sessionmaker[Session], job: ClaimedJob, *, worker: str, now: datetime) -> None:
    """Mark a job done; a periodic job is queued again for its next run.

    A periodic job woken while it ran (wake_periodic moved its run_at) runs again at
    once, so work that arrived after its last look is not left for the next period.
    A job whose lease another worker has taken over is left alone.
    """
    engine = engine_of(sessions)
    dialect = engine.dialect.name
    params: dict[str, Any] = {"id": job.id, "worker": worker, "now": dialect_time(dialect, now)}
    every = job.payload.get("every_seconds")
    if every:
        params["claimed"] = dialect_time(dialect, job.run_at)
        params["next"] = dialect_time(dialect, now + timedelta(seconds=float(every)))
        _run_plain(engine, _FINISH_PERIODIC, params)
    else:
        _run_plain(engine, _FINISH_ONCE, params)


def _run_plain(engine: Engine, sql: str, *params: Mapping[str, Any]) -> list[tuple[Any, ...]]:
    """sql once per parameter set, in a short transaction of its own on a pooled driver
    connection; the rows they return."""
    connection = engine.raw_connection()
    try:
        cursor = connection.cursor()
        rows: list[tuple[Any, ...]] = []
        for values in params:
            cursor.execute(for_driver(sql, engine.dialect.name), values)
            if cursor.description is not None:
                rows.extend(cursor.fetchall())
        cursor.close()
        connection.commit()
        return rows
    finally:
        connection.close()  # back to the pool, which rolls back whatever is left open


def wake_periodic(session: Session, kind: str, now: datetime) -> None:
    """Make periodic job kind due now, in the caller's transaction (also while it runs).

    Every instance of it is woken: whichever is free takes the work.
    """
    session.execute(_wake_statement(kind, now))


def _wake_statement(kind: str, now: datetime) -> Update:
    return (
        update(Job)
        .where(
            Job.kind == kind,
            Job.dedup_key.startswith(f"periodic:{kind}", autoescape=True),
            or_(Job.status == "running", Job.run_at > now),
        )
        .values(run_at=now)
    )


_WAKES = "parley.wakes"  # session.info: the kinds to wake once the transaction commits
_COMMITTED = "parley.wakes.committed"  # …and those committed, woken once it lets go


def wake_after_commit(session: Session, kind: str, now: datetime) -> None:
    """Make periodic job kind due as soon as the caller's transaction has committed.

    Waking inside the transaction would hold the job's row lock until the commit, and
    every transaction that queues work for the same job (each answer that mails
    someone) would wait for the one before it to finish. The wake is a short statement
    of its own instead, once per kind per transaction, and nothing happens on a rollback.
    It runs once the session has handed its connection back to the pool: a wake taking
    a second connection while the first is still checked out ran the pool dry under
    concurrent requests (each thread holding one and waiting for another, all stalled
    for the pool timeout). Should the process die in between, the job's next period
    picks the work up.
    """
    wakes = session.info.get(_WAKES)
    if wakes is None:
        wakes = session.info[_WAKES] = {}
        session.info[_COMMITTED] = {}
        event.listen(session, "after_commit", _wake_committed)
        event.listen(session, "after_rollback", _forget_wakes)
        event.listen(session, "after_transaction_end", _wake_released)
    wakes[kind] = max(now, wakes.get(kind, now))


def _wake_committed(session: Session) -> None:
    wakes = session.info.get(_WAKES)
    if not wakes or session.in_nested_transaction():  # a savepoint: the outer may roll back
        return
    committed: dict[str, datetime] = session.info[_COMMITTED]
    for kind, now in wakes.items():
        committed[kind] = max(now, committed.get(kind, now))
    wakes.clear()


def _wake_released(session: Session, transaction: SessionTransaction) -> None:
    """After the outermost transaction ended, its connection back in the pool."""
    committed = session.info.get(_COMMITTED)
    if not committed or transaction.parent is not None:
        return
    pending = dict(committed)
    committed.clear()
    bind = session.get_bind()
    engine = bind if isinstance(bind, Engine) else bind.engine
    try:
        wake_now(engine, pending)
    except Exception as exc:  # the work is committed; the job's next period finds it
        _log.warning("job.wake_failed", kinds=sorted(pending), error=type(exc).__name__)


# _wake_statement as plain SQL: it runs once per answer that mails someone, and on the
# driver's cursor it costs a tenth of what building and compiling the statement costs.
_WAKE = (
    "UPDATE jobs SET run_at = :now WHERE kind = :kind AND dedup_key LIKE :prefix ESCAPE '/'"
    " AND (status = 'running' OR run_at > :now)"
)


def wake_now(engine: Engine, wakes: Mapping[str, datetime]) -> None:
    """``wake_periodic`` for each kind (at its time), in a short transaction of its own;
    then the workers of this process that listen (``on_wake``) claim at once, rather than
    at their next poll."""
    dialect = engine.dialect.name
    _run_plain(
        engine,
        _WAKE,
        *(
            {"now": dialect_time(dialect, now), "kind": kind, "prefix": _like_prefix(kind)}
            for kind, now in wakes.items()
        ),
    )
    for listener in list(_LISTENERS):
        listener()


_LISTENERS: list[Callable[[], None]] = []


def on_wake(listener: Callable[[], None]) -> Callable[[], None]:
    """Call listener (from any thread) after each wake in this process; returns the undo.

    A worker running in the same process as the code that queues work (`parley serve`)
    learns about it at once; workers elsewhere see the database row at their next poll
    or when a job of theirs ends.
    """
    _LISTENERS.append(listener)
    return lambda: _LISTENERS.remove(listener)


def _like_prefix(kind: str) -> str:
    """LIKE pattern for the periodic rows of kind, with _ % and / taken literally."""
    escaped = f"periodic:{kind}".replace("/", "//").replace("%", "/%").replace("_", "/_")
    return escaped + "%"


def _forget_wakes(session: Session) -> None:
    wakes = session.info.get(_WAKES)
    if wakes:
        wakes.clear()


def owner_pattern(identity: str) -> str:
    """LIKE pattern (escape /) for the lease owners of every incarnation of identity."""
    return identity.replace("/", "//").replace("%", "/%").replace("_", "/_") + "#%"


def release_dead_leases(session: Session, *, identity: str, current: str, now: datetime) -> int:
    """Make the jobs an earlier incarnation of identity held due again at once.

    Lease owners are ``identity#incarnation``. The caller holds identity exclusively (no
    other live process has it), so a lease of another incarnation belongs to a process
    that died, and waiting for it to run out would only delay the work. Leases of other
    identities are never touched: they may belong to a live process.
    """
    result = session.execute(
        update(Job)
        .where(
            Job.status == "running",
            Job.locked_by.like(owner_pattern(identity), escape="/"),
            Job.locked_by != current,
        )
        .values(status="queued", locked_by=None, locked_until=None, run_at=now)
    )
    return int(getattr(result, "rowcount", 0) or 0)


def fail(
    sessions: sessionmaker[Session], job: ClaimedJob, *, worker: str, now: datetime, error: str
) -> None:
    """Record a failure: retried with exponential back-off and jitter, failed for good at max."""
    with sessions.begin() as session:
        row = session.get(Job, job.id)
        if row is None or row.locked_by != worker:
            return
        row.locked_by = None
        row.locked_until = None
        row.last_error = error[:2000]
        periodic = bool(job.payload.get("every_seconds"))
        if row.attempts >= row.max_attempts and not periodic:
            row.status = "failed"
            row.finished_at = now
            return
        delay = min(3600.0, 5.0 * 2 ** min(row.attempts, 12)) * random.uniform(0.8, 1.2)
        row.status = "queued"
        row.run_at = now + timedelta(seconds=delay)


def run_claimed(
    job: ClaimedJob,
    handlers: Mapping[str, Handler],
    context: JobContext,
    sessions: sessionmaker[Session],
    *,
    worker: str,
    clock: Callable[[], datetime],
) -> bool:
    """Run one claimed job with its handler; True when it succeeded."""
    handler = handlers.get(job.kind)
    if handler is None:
        fail(
            sessions, job, worker=worker, now=clock(), error=f"no handler for job kind {job.kind!r}"
        )
        return False
    try:
        handler(context, job.payload)
    except Exception as exc:
        _log.warning("job.failed", job_id=job.id, kind=job.kind, error=type(exc).__name__)
        fail(sessions, job, worker=worker, now=clock(), error=f"{type(exc).__name__}: {exc}")
        return False
    finish(sessions, job, worker=worker, now=clock())
    return True
