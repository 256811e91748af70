"""The worker loop: claims due jobs from the database and runs them.

Runs inside `parley serve` or alone as `parley worker`; any number of workers share
the queue. On stop it finishes the job in hand (or leaves it to its lease) and exits.

Every lease a worker takes (a job, an outbox row) names its owner, ``identity#incarnation``.
The identity is the host, the data folder's node id and the lowest worker slot no live
process on that data folder holds (an exclusive flock, which the kernel drops when the
process dies, even by kill -9), so a process restarted after a crash has the identity
it had, and no live process shares it. The incarnation is new at every start. On start
a worker releases the leases of its identity's earlier incarnations at once: their work
resumes now rather than when the leases (PARLEY_JOB_LEASE_SECONDS,
PARLEY_OUTBOX_LEASE_SECONDS) run out. Leases of other identities are left to run out.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import socket
import time
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import IO

from core.jobs import (
    ClaimedJob,
    Handler,
    JobContext,
    Periodic,
    claim,
    ensure_periodic,
    on_wake,
    owner_pattern,
    release_dead_leases,
    run_claimed,
)
from core.logging import get_logger
from core.runtime import Runtime
from core.services import outbox

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX: every start is a new identity
    fcntl = None  # type: ignore[assignment]

_log = get_logger("parley.worker")


class Worker:
    def __init__(
        self,
        runtime: Runtime,
        handlers: Mapping[str, Handler],
        periodic: list[Periodic],
        *,
        name: str | None = None,
    ) -> None:
        self.runtime = runtime
        self.handlers = handlers
        self.periodic = periodic
        self.wake = asyncio.Event()
        self._slot: IO[bytes] | None = None
        self.identity: str | None = None
        if name is None:
            self.identity, self._slot = lease_identity(runtime.settings.data_dir)
            name = f"{self.identity}#{os.getpid()}-{secrets.token_hex(3)}"
        self.name = name

    def close(self) -> None:
        """Give up the identity's slot (the process's end does it too)."""
        if self._slot is not None:
            self._slot.close()
            self._slot = None

    def release_dead_leases(self, now: datetime) -> tuple[int, int]:
        """(jobs, outbox rows) an earlier incarnation of this identity held, now due again."""
        if self.identity is None:
            return 0, 0
        sessions = self.runtime.sessions
        with sessions.begin() as session:
            jobs = release_dead_leases(session, identity=self.identity, current=self.name, now=now)
            rows = outbox.release_dead_leases(
                session, owners=owner_pattern(self.identity), current=self.name, now=now
            )
        return jobs, rows

    async def run(self, stop: asyncio.Event) -> None:
        """Claim due jobs and run up to ``worker_concurrency`` of them at once until stop.

        A slot that frees up is refilled at once, so a long job (draining a burst of
        inbound mail) never holds up a short one (sending the outbox) behind it.
        """
        released = await asyncio.to_thread(self.release_dead_leases, self.runtime.clock())
        if any(released):
            _log.info("worker.released_dead_leases", jobs=released[0], outbox=released[1])
        await asyncio.to_thread(
            ensure_periodic, self.runtime.sessions, self.periodic, self.runtime.clock()
        )
        _log.info("worker.started", worker=self.name)
        loop = asyncio.get_running_loop()

        def woken() -> None:  # from any thread
            if not loop.is_closed():  # else this worker has stopped (a wake raced its end)
                loop.call_soon_threadsafe(self.wake.set)

        forget = on_wake(woken)
        try:
            await self._loop(stop)
        finally:
            forget()
            self.close()
        _log.info("worker.stopped", worker=self.name)

    async def _loop(self, stop: asyncio.Event) -> None:
        settings = self.runtime.settings
        running: set[asyncio.Future[None]] = set()
        while not stop.is_set():
            # Cleared before claiming: a wake-up that comes while claiming is not lost.
            self.wake.clear()
            free = settings.worker_concurrency - len(running)
            jobs = await self._claim(free) if free > 0 else []
            for job in jobs:
                running.add(asyncio.ensure_future(asyncio.to_thread(self.run_job, job)))
            if jobs and len(running) < settings.worker_concurrency:
                continue
            waiters = {asyncio.ensure_future(stop.wait()), asyncio.ensure_future(self.wake.wait())}
            done, _ = await asyncio.wait(
                waiters | running,
                timeout=settings.worker_poll_seconds,
                return_when=asyncio.FIRST_COMPLETED,
            )
            running -= done
            for waiter in waiters:
                waiter.cancel()
        if running:  # finish the jobs in hand (their leases cover a harder stop)
            await asyncio.wait(running)

    async def _claim(self, limit: int) -> list[ClaimedJob]:
        try:
            return await asyncio.to_thread(self.claim, limit)
        except Exception as exc:  # database down: keep going, try again shortly
            _log.warning("worker.error", error=type(exc).__name__, detail=str(exc)[:200])
            return []

    def claim(self, limit: int) -> list[ClaimedJob]:
        """Claim up to limit due jobs of the kinds this worker handles."""
        runtime = self.runtime
        return claim(
            runtime.sessions,
            worker=self.name,
            now=runtime.clock(),
            lease_seconds=runtime.settings.job_lease_seconds,
            kinds=list(self.handlers),
            limit=limit,
        )

    def run_job(self, job: ClaimedJob) -> None:
        runtime = self.runtime
        context = JobContext(
            sessions=runtime.sessions,
            now=runtime.clock(),
            services={"runtime": runtime},
            worker=self.name,
        )
        try:
            run_claimed(
                job, self.handlers, context, runtime.sessions, worker=self.name, clock=runtime.clock
            )
        except Exception as exc:  # settling failed (database down): the lease expires
            _log.warning("worker.error", error=type(exc).__name__, detail=str(exc)[:200])


MAX_SLOTS = 256


def lease_identity(data_dir: Path) -> tuple[str, IO[bytes] | None]:
    """This process's lease identity and the open slot file that reserves it.

    ``host/node/worker-N``: node is the data folder's id (made once, kept in
    ``node_id``), N the lowest slot whose lock file no live process holds. Without
    flock (or with every slot taken) the identity is this process alone.
    """
    host = socket.gethostname()[:48] or "host"
    if fcntl is None:
        return f"{host}/pid-{os.getpid()}-{secrets.token_hex(3)}", None
    node = _node_id(data_dir)
    folder = data_dir / "leases"
    folder.mkdir(parents=True, exist_ok=True)
    for slot in range(1, MAX_SLOTS + 1):
        handle = open(folder / f"worker-{slot}.lock", "ab")  # noqa: SIM115 - kept open
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.close()
            continue
        return f"{host}/{node}/worker-{slot}", handle
    return f"{host}/{node}/pid-{os.getpid()}-{secrets.token_hex(3)}", None


def _node_id(data_dir: Path) -> str:
    """The data folder's node id, created by whichever process gets there first."""
    path = data_dir / "node_id"
    data_dir.mkdir(parents=True, exist_ok=True)
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except FileExistsError:
        for _ in range(50):  # its creator may not have written it yet
            text = path.read_text().strip()
            if text:
                return text
            time.sleep(0.01)
        raise RuntimeError(f"{path} is empty") from None
    node = secrets.token_hex(4)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(node + "\n")
    return node
