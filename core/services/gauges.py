"""Gauges that describe the database, computed when Prometheus scrapes.

Backlogs, staleness, open conflicts and waiting mail are facts of the shared database,
not of one process: a counter kept in memory would differ between the web process and
each worker. So every process that serves metrics binds this collector to its database,
and a scrape reads the numbers there, through a cache of a few seconds so that several
scrapers (or a scrape storm) cost one set of queries. Every process reports the same
values; alert rules take max() over instances, never sum().
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta

from prometheus_client import REGISTRY
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from core.db.models import (
    Conflict,
    ExternalSource,
    FeedToken,
    Hold,
    InboundMessage,
    OutboundMessage,
)
from core.logging import get_logger
from core.runtime import Runtime

_log = get_logger("parley.gauges")

CACHE_SECONDS = 10.0

# name → help; the order is the order of /metrics.
GAUGES: dict[str, str] = {
    "parley_sources_active": "Imported calendars (ICS and CalDAV sources) Parley polls",
    "parley_sources_stale": (
        "Sources with no successful poll within PARLEY_SOURCE_STALE_MINUTES (or never)"
    ),
    "parley_source_last_success_age_max_seconds": (
        "Age of the oldest last successful poll among sources (since creation if never)"
    ),
    "parley_poll_backlog": "Sources whose next poll is due and has not run yet",
    "parley_poll_oldest_due_seconds": "How long the most overdue source has waited for its poll",
    "parley_holds_active": "Holds keeping a slot right now (active, not past their TTL)",
    "parley_conflicts_open": "Overlapping reservations across imported calendars not yet resolved",
    "parley_outbox_pending": "Outbound messages waiting to be sent (pending or sending)",
    "parley_outbox_failed": "Outbound messages given up on after their retries",
    "parley_outbox_oldest_pending_seconds": "Age of the oldest outbound message still waiting",
    "parley_inbound_pending": "Inbound messages stored and not yet processed",
    "parley_inbound_failed": "Inbound messages whose processing failed",
    "parley_feed_regenerations_24h_max": (
        "Most feed tokens issued for any one provider in the last 24 hours"
    ),
    "parley_database_gauges_up": "1 when the last read of these gauges from the database worked",
}


@dataclass(frozen=True, slots=True)
class _Source:
    sessions: sessionmaker[Session]
    clock: Callable[[], datetime]
    stale_after: timedelta
    is_open: Callable[[], bool]


def read_gauges(session: Session, now: datetime, stale_after: timedelta) -> dict[str, float]:
    """Every gauge of GAUGES (but the up flag) as of ``now``, in one read-only session."""
    src = ExternalSource
    sources, never, oldest_success, oldest_created = session.execute(
        select(
            func.count(),
            func.count().filter(src.last_success_at.is_(None)),
            func.min(src.last_success_at),
            func.min(src.created_at).filter(src.last_success_at.is_(None)),
        )
    ).one()
    stale = session.scalar(
        select(func.count()).where(
            src.last_success_at.is_not(None), src.last_success_at < now - stale_after
        )
    )
    due, oldest_due = session.execute(
        select(func.count(), func.min(src.next_poll_at)).where(src.next_poll_at <= now)
    ).one()
    holds = session.scalar(
        select(func.count()).where(Hold.status == "active", Hold.expires_at > now)
    )
    conflicts = session.scalar(select(func.count()).where(Conflict.resolved_at.is_(None)))
    waiting = OutboundMessage.status.in_(("pending", "sending"))
    pending, oldest_pending = session.execute(
        select(func.count(), func.min(OutboundMessage.created_at)).where(waiting)
    ).one()
    failed = session.scalar(select(func.count()).where(OutboundMessage.status == "failed"))
    inbound = dict(
        session.execute(
            select(InboundMessage.outcome, func.count())
            .where(InboundMessage.outcome.in_(("pending", "failed")))
            .group_by(InboundMessage.outcome)
        ).all()
    )
    per_provider = (
        select(func.count().label("n"))
        .where(FeedToken.created_at > now - timedelta(hours=24))
        .group_by(FeedToken.provider_id)
        .subquery()
    )
    regenerations = session.scalar(select(func.max(per_provider.c.n)))
    oldest_seen = [moment for moment in (oldest_success, oldest_created) if moment is not None]
    return {
        "parley_sources_active": sources,
        "parley_sources_stale": (stale or 0) + never,
        "parley_source_last_success_age_max_seconds": _age(now, min(oldest_seen, default=None)),
        "parley_poll_backlog": due,
        "parley_poll_oldest_due_seconds": _age(now, oldest_due),
        "parley_holds_active": holds or 0,
        "parley_conflicts_open": conflicts or 0,
        "parley_outbox_pending": pending,
        "parley_outbox_failed": failed or 0,
        "parley_outbox_oldest_pending_seconds": _age(now, oldest_pending),
        "parley_inbound_pending": inbound.get("pending", 0),
        "parley_inbound_failed": inbound.get("failed", 0),
        "parley_feed_regenerations_24h_max": regenerations or 0,
    }


def _age(now: datetime, moment: datetime | None) -> float:
    """Seconds from ``moment`` to ``now`` (0 for none); SQLite hands back naive UTC."""
    if moment is None:
        return 0.0
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=now.tzinfo)
    return max((now - moment).total_seconds(), 0.0)


class DatabaseGauges(Collector):
    """The collector behind GAUGES: reads the bound database at most every CACHE_SECONDS."""

    def __init__(self, cache_seconds: float = CACHE_SECONDS) -> None:
        self.cache_seconds = cache_seconds
        self._source: _Source | None = None
        self._lock = threading.Lock()
        self._values: dict[str, float] = {}
        self._read_at = float("-inf")
        self.reads = 0  # how many times the database was asked (the cache is tested by it)

    def bind(
        self,
        sessions: sessionmaker[Session],
        clock: Callable[[], datetime],
        *,
        stale_after: timedelta,
        is_open: Callable[[], bool] = lambda: True,
    ) -> None:
        """Read these gauges from ``sessions`` from now on (a process binds its runtime's),
        while ``is_open()``: a closed runtime's engine is never used again."""
        source = _Source(sessions, clock, stale_after, is_open)
        with self._lock:
            if source != self._source:
                self._source, self._read_at, self._values = source, float("-inf"), {}

    def describe(self) -> Iterator[GaugeMetricFamily]:
        for name, help_text in GAUGES.items():
            yield GaugeMetricFamily(name, help_text)

    def collect(self) -> Iterator[GaugeMetricFamily]:
        values = self.current()
        for name, help_text in GAUGES.items():
            if name in values:
                yield GaugeMetricFamily(name, help_text, value=values[name])

    def current(self) -> dict[str, float]:
        """The cached values, read again when older than cache_seconds; {} when unbound."""
        with self._lock:
            source = self._source
            if source is not None and not source.is_open():
                self._source, self._values = None, {}
                source = None
            if source is None:
                return {}
            if time.monotonic() - self._read_at < self.cache_seconds:
                return self._values
            self.reads += 1
            try:
                with source.sessions() as session:
                    values = read_gauges(session, source.clock(), source.stale_after)
                values["parley_database_gauges_up"] = 1.0
            except SQLAlchemyError as exc:  # a scrape must still answer while the database is down
                _log.warning("metrics.gauges.unavailable", error=type(exc).__name__)
                values = {"parley_database_gauges_up": 0.0}
            self._values, self._read_at = values, time.monotonic()
            return values


COLLECTOR = DatabaseGauges()
REGISTRY.register(COLLECTOR)


def bind_runtime(runtime: Runtime) -> None:
    """Bind the process's collector to ``runtime``'s database, clock and staleness setting."""
    stale_after = timedelta(minutes=runtime.settings.source_stale_minutes)
    COLLECTOR.bind(
        runtime.sessions, runtime.clock, stale_after=stale_after, is_open=runtime.is_open
    )
