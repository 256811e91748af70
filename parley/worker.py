"""The worker loop: claims due jobs from the database and runs them.

Runs inside `parley serve` or alone as `parley worker`; any number of workers share
the queue. On stop it finishes the job in hand (or leaves it to its lease) and exits.
"""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import Mapping

from core.jobs import (
    ClaimedJob,
    Handler,
    JobContext,
    Periodic,
    claim,
    ensure_periodic,
    on_wake,
    run_claimed,
)
from core.logging import get_logger
from core.runtime import Runtime

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
        self.name = name or f"{socket.gethostname()}:{os.getpid()}"
        self.wake = asyncio.Event()

    async def run(self, stop: asyncio.Event) -> None:
        """Claim due jobs and run up to ``worker_concurrency`` of them at once until stop.

        A slot that frees up is refilled at once, so a long job (draining a burst of
        inbound mail) never holds up a short one (sending the outbox) behind it.
        """
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
            sessions=runtime.sessions, now=runtime.clock(), services={"runtime": runtime}
        )
        try:
            run_claimed(
                job, self.handlers, context, runtime.sessions, worker=self.name, clock=runtime.clock
            )
        except Exception as exc:  # settling failed (database down): the lease expires
            _log.warning("worker.error", error=type(exc).__name__, detail=str(exc)[:200])
