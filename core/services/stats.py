"""The KPIs of seed 000 §1.12.10 for a chosen period, computed from the database.

Prometheus's recording rules give the same figures as rates over the per-process
counters; these are the ground truth of the rows, for any past period, the same from
every process. Feasibility latency is the exception: no row records it, so it comes
from this process's histogram and says so.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar

from prometheus_client.metrics import MetricWrapperBase
from sqlalchemy import ColumnElement, Select, and_, case, func, select
from sqlalchemy.orm import InstrumentedAttribute, Session

from core.db.models import (
    DEFAULT_TENANT,
    AuditEntry,
    AvailabilitySettings,
    Booking,
    Hold,
    Proposal,
    SyncLog,
)
from core.metrics import FEASIBILITY_SECONDS
from core.services.errors import InvalidInput

# Durations are fetched and ranked in Python, so a period stays bounded.
MAX_PERIOD = timedelta(days=366)
DEFAULT_PERIOD = timedelta(days=7)
S = TypeVar("S", bound=Select[*tuple[Any, ...]])

# The audit actions that say a booking was confirmed, cancelled or declined, by counter.
_BOOKING_CHANGES = {
    "booking.confirmed": "confirmed",  # instant book: confirmed as it was made
    "booking.approved": "confirmed",  # a request to book the host approved
    "booking.cancelled": "cancelled",
    "booking.declined": "declined",  # a request to book the host turned down
}
_HOLD_STATES = ("converted", "expired", "released", "active")
_DECIDED = ("approved", "declined", "expired")


@dataclass(frozen=True, slots=True)
class Period:
    """The half-open span [start, end) the figures are about, at most MAX_PERIOD long."""

    start: datetime
    end: datetime

    @classmethod
    def of(cls, start: datetime | None, end: datetime | None, now: datetime) -> Period:
        """The period asked for: ``end`` defaults to now, ``start`` to DEFAULT_PERIOD before it."""
        end = now if end is None else end
        start = end - DEFAULT_PERIOD if start is None else start
        if start >= end:
            raise InvalidInput("from must be before to", code="invalid_range")
        if end - start > MAX_PERIOD:
            raise InvalidInput(
                f"a period may span at most {MAX_PERIOD.days} days", code="range_too_long"
            )
        return cls(start, end)

    def holds(self, column: InstrumentedAttribute[Any]) -> ColumnElement[bool]:
        return and_(column >= self.start, column < self.end)


@dataclass(frozen=True, slots=True)
class Scope:
    """Whose rows are counted. Every query goes through ``_scoped``, the one tenant filter."""

    tenant_id: str = DEFAULT_TENANT


@dataclass(frozen=True, slots=True)
class Durations:
    """Median and 95th percentile of a set of durations in seconds (None when empty)."""

    median: float | None
    p95: float | None
    count: int


@dataclass(frozen=True, slots=True)
class Stats:
    """The KPIs and the counts they are made of, for one period and scope."""

    period: Period
    scope: Scope
    bookings: dict[str, int]
    holds: dict[str, int]
    proposals: dict[str, int]
    ics_polls: dict[str, int]
    instant_book_success_rate: float | None
    time_to_reschedule: Durations
    holds_expired_unused_ratio: float | None
    ics_error_rate: float | None
    feasibility_p95_ms: float | None


def compute(session: Session, period: Period, now: datetime, scope: Scope) -> Stats:
    """Every figure for ``period``; a ratio without data is None, never a division by zero."""
    bookings = booking_counts(session, period, scope)
    holds = hold_counts(session, period, now, scope)
    polls = poll_counts(session, period, scope)
    settled = holds["converted"] + holds["expired"] + holds["released"]
    return Stats(
        period=period,
        scope=scope,
        bookings=bookings,
        holds=holds,
        proposals=proposal_counts(session, period, scope),
        ics_polls=polls,
        instant_book_success_rate=instant_book_success_rate(session, period, scope),
        time_to_reschedule=time_to_reschedule(session, period, scope),
        holds_expired_unused_ratio=ratio(holds["expired"], settled),
        ics_error_rate=ratio(polls["error"], polls["total"]),
        feasibility_p95_ms=feasibility_p95_ms(),
    )


def ratio(part: int, whole: int) -> float | None:
    return None if whole == 0 else part / whole


def _scoped(query: S, *models: Any, scope: Scope) -> S:
    """query limited to the scope's tenant on each model it reads."""
    return query.where(*(model.tenant_id == scope.tenant_id for model in models))


def _counted(session: Session, query: Select[*tuple[Any, ...]]) -> dict[str, int]:
    return {str(key): int(n) for key, n in session.execute(query).all()}


def booking_counts(session: Session, period: Period, scope: Scope) -> dict[str, int]:
    """Bookings made in the period (instant or request) and what happened to bookings in it.

    "created", "instant" and "request" count bookings made in the period; "confirmed",
    "cancelled" and "declined" count those changes made in the period (audit log), to
    bookings made then or before.
    """
    made = _counted(
        session,
        _scoped(
            select(Booking.mode, func.count()).where(period.holds(Booking.created_at)),
            Booking,
            scope=scope,
        ).group_by(Booking.mode),
    )
    changes = _counted(
        session,
        _scoped(
            select(AuditEntry.action, func.count()).where(
                AuditEntry.subject_type == "booking",
                AuditEntry.action.in_(_BOOKING_CHANGES),
                period.holds(AuditEntry.at),
            ),
            AuditEntry,
            scope=scope,
        ).group_by(AuditEntry.action),
    )
    counts = {"created": sum(made.values()), "confirmed": 0, "cancelled": 0, "declined": 0}
    for action, n in changes.items():
        counts[_BOOKING_CHANGES[action]] += n
    return {**counts, "instant": made.get("instant", 0), "request": made.get("request", 0)}


def hold_counts(session: Session, period: Period, now: datetime, scope: Scope) -> dict[str, int]:
    """Holds placed in the period, by what became of them.

    Holds live for minutes and record no time of release, so they are counted by when
    they were placed. One still active past its TTL is expired already (as readers see
    it, ``holds.hold_status``), whether or not the expiry job has marked it yet.
    """
    state = case(
        (and_(Hold.status == "active", Hold.expires_at <= now), "expired"), else_=Hold.status
    )
    found = _counted(
        session,
        _scoped(
            select(state, func.count()).where(period.holds(Hold.created_at)), Hold, scope=scope
        ).group_by(state),
    )
    return {"created": sum(found.values()), **{name: found.get(name, 0) for name in _HOLD_STATES}}


def proposal_counts(session: Session, period: Period, scope: Scope) -> dict[str, int]:
    """Proposals made in the period, and those approved, declined or expired in it.

    A pending proposal past its expiry counts as expired once the expiry job marks it.
    """
    made = session.scalar(
        _scoped(
            select(func.count()).select_from(Proposal).where(period.holds(Proposal.created_at)),
            Proposal,
            scope=scope,
        )
    )
    decided = _counted(
        session,
        _scoped(
            select(Proposal.status, func.count()).where(
                Proposal.status.in_(_DECIDED), period.holds(Proposal.decided_at)
            ),
            Proposal,
            scope=scope,
        ).group_by(Proposal.status),
    )
    return {"created": int(made or 0), **{name: decided.get(name, 0) for name in _DECIDED}}


def poll_counts(session: Session, period: Period, scope: Scope) -> dict[str, int]:
    """Polls of imported calendars (ICS and CalDAV) started in the period: all, and failed.

    Every poll writes a sync_logs row (ok, not modified, partial, held or error), so this
    is a per-poll rate, not the last outcome of each source.
    """
    found = _counted(
        session,
        _scoped(
            select(SyncLog.status, func.count()).where(period.holds(SyncLog.started_at)),
            SyncLog,
            scope=scope,
        ).group_by(SyncLog.status),
    )
    return {"total": sum(found.values()), "error": found.get("error", 0)}


def instant_book_success_rate(session: Session, period: Period, scope: Scope) -> float | None:
    """Of bookings made in the period for providers with instant book on, the share
    confirmed at once; the others fell back to request-to-book because the freshness gate
    had paused instant book. Providers without instant book are not counted.

    Read against today's settings (the booking row keeps the outcome, not the setting
    then), and a confirmation refused as the slot was taken leaves no row: the per-process
    counter parley_booking_attempts_total counts those.
    """
    found = _counted(
        session,
        _scoped(
            select(Booking.mode, func.count())
            .join(AvailabilitySettings, AvailabilitySettings.provider_id == Booking.provider_id)
            .where(AvailabilitySettings.instant_book.is_(True), period.holds(Booking.created_at)),
            Booking,
            scope=scope,
        ).group_by(Booking.mode),
    )
    return ratio(found.get("instant", 0), sum(found.values()))


def time_to_reschedule(session: Session, period: Period, scope: Scope) -> Durations:
    """From a proposal being made to its approval, for proposals approved in the period."""
    rows = session.execute(
        _scoped(
            select(Proposal.created_at, Proposal.decided_at).where(
                Proposal.status == "approved", period.holds(Proposal.decided_at)
            ),
            Proposal,
            scope=scope,
        )
    ).all()
    return durations([(done - made).total_seconds() for made, done in rows if done is not None])


def durations(seconds: Sequence[float]) -> Durations:
    """Median and p95 (linear between ranks, as numpy's default) of ``seconds``."""
    if not seconds:
        return Durations(None, None, 0)
    ordered = sorted(seconds)
    return Durations(statistics.median(ordered), percentile(ordered, 0.95), len(ordered))


def percentile(ordered: Sequence[float], q: float) -> float:
    """The q-quantile of sorted, non-empty values, interpolated between neighbouring ranks."""
    rank = q * (len(ordered) - 1)
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def feasibility_p95_ms(histogram: MetricWrapperBase = FEASIBILITY_SECONDS) -> float | None:
    """p95 of slot-search time in this process since it started (all surfaces), in ms.

    No row records it, so it is this process's share only: another web process has its
    own. None before the first slot search.
    """
    buckets: dict[float, float] = {}
    for family in histogram.collect():
        for sample in family.samples:
            if sample.name.endswith("_bucket"):
                bound = float(sample.labels["le"])
                buckets[bound] = buckets.get(bound, 0.0) + sample.value
    seconds = histogram_quantile(0.95, sorted(buckets.items()))
    return None if seconds is None else seconds * 1000


def histogram_quantile(q: float, buckets: Iterable[tuple[float, float]]) -> float | None:
    """Prometheus's histogram_quantile over (upper bound, cumulative count) pairs sorted by
    bound, the last being +Inf: linear within the bucket the rank falls in; a rank in the
    +Inf bucket answers the highest finite bound. None when nothing was observed."""
    pairs = list(buckets)
    total = pairs[-1][1] if pairs else 0.0
    if total <= 0:
        return None
    rank = q * total
    lower, below = 0.0, 0.0
    for upper, count in pairs:
        if count >= rank:
            if upper == float("inf"):
                return lower
            return lower + (upper - lower) * (rank - below) / (count - below)
        lower, below = upper, count
    return lower
