"""The rate limiter's one-statement hit and the periodic purge job, on both databases."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from core.db.models import RateLimit
from core.jobs import JobContext
from core.runtime import Runtime
from core.services import ratelimit
from core.services.errors import RateLimited
from parley.handlers import job_handlers, periodic_jobs
from tests.integration.services.helpers import NOW


def test_hits_count_per_window_and_the_limit_holds(runtime: Runtime) -> None:
    counts = [ratelimit.check(runtime.sessions, "k", NOW, limit=3) for _ in range(3)]
    assert counts == [1, 2, 3]
    with pytest.raises(RateLimited):
        ratelimit.check(runtime.sessions, "k", NOW, limit=3)
    assert ratelimit.check(runtime.sessions, "k", NOW + timedelta(minutes=1), limit=3) == 1


def test_purge_job_is_periodic_and_deletes_old_counters(runtime: Runtime) -> None:
    assert "ratelimit.purge" in {job.kind for job in periodic_jobs(runtime.settings)}
    ratelimit.check(runtime.sessions, "old", NOW - timedelta(hours=2), limit=10)
    ratelimit.check(runtime.sessions, "new", NOW, limit=10)
    job_handlers()["ratelimit.purge"](JobContext(runtime.sessions, NOW), {})
    with runtime.sessions() as session:
        keys = set(session.scalars(select(RateLimit.key)))
        total = session.scalar(select(func.count()).select_from(RateLimit))
    assert keys == {"new"} and total == 1
