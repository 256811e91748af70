"""Availability of a provider: storing its policy, and answering "which slots are free?".

``put_availability`` replaces weekly rules, exceptions, vacations and settings in the
caller's transaction. ``find_slots`` and ``explain_slot`` load the policy and the busy
time of just the range asked about, then call the pure engine in ``core.domain``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import delete
from sqlalchemy.orm import Session

from core.db.driver import driver_rows
from core.db.models import (
    AuditEntry,
    AvailabilityException,
    AvailabilitySettings,
    Provider,
    WeeklyRule,
    new_id,
)
from core.db.models import Vacation as VacationRow
from core.domain import (
    AvailabilityPolicy,
    Busy,
    DateException,
    ExceptionKind,
    Explanation,
    Slot,
    Vacation,
    WeeklyWindow,
    explain,
)
from core.domain.errors import InvalidInterval
from core.domain.slots import BusyRow, compute_slots_from_rows, duration_seconds, require_aware
from core.domain.windows import window_count
from core.events import record
from core.metrics import FEASIBILITY_SECONDS, FEASIBILITY_SLOTS, FEASIBILITY_TRUNCATED
from core.services import meeting_types
from core.services.busy import Exclude, Related, busy_rows, load_busy
from core.services.errors import InvalidInput, SlotTaken, SlotUnavailable
from core.services.providers import Scope, get_provider, load_scope, lock_providers

MAX_QUERY_DAYS = 400


@dataclass(frozen=True, slots=True)
class SlotList:
    """The answer to a slots query: the provider's zone and the free slots in UTC."""

    timezone: str
    slots: list[Slot]


# The whole rule set of one provider in one round trip; sorted in Python per part.
RULES = """
    SELECT 0, weekday, start_minute, end_minute, CAST(NULL AS DATE), NULL,
           CAST(NULL AS DATE), id
      FROM weekly_rules WHERE provider_id = :provider
    UNION ALL
    SELECT 1, NULL, start_minute, end_minute, day, kind, NULL, id
      FROM availability_exceptions WHERE provider_id = :provider
    UNION ALL
    SELECT 2, NULL, NULL, NULL, first_day, NULL, last_day, id
      FROM vacations WHERE provider_id = :provider
"""


def _day(value: date | str) -> date:
    return value if isinstance(value, date) else date.fromisoformat(value)


def policy_of(session: Session, scope: Scope) -> AvailabilityPolicy:
    """The provider's whole availability policy from its scope and one rules query."""
    return policy_from_rows(scope, driver_rows(session, RULES, {"provider": scope.id}))


def policy_from_rows(scope: Scope, rows: list[tuple[Any, ...]]) -> AvailabilityPolicy:
    """The policy that ``scope`` and the rows of ``RULES`` describe."""
    weekly = sorted((r[1], r[2], r[3]) for r in rows if r[0] == 0)
    exceptions = sorted((_day(r[4]), r[7], r[5], r[2], r[3]) for r in rows if r[0] == 1)
    vacations = sorted((_day(r[4]), _day(r[6])) for r in rows if r[0] == 2)
    values = scope.settings or _DEFAULTS
    return AvailabilityPolicy(
        scope.timezone,
        weekly=tuple(WeeklyWindow(*w) for w in weekly),
        exceptions=tuple(
            DateException(day, ExceptionKind(kind), first, last)
            for day, _, kind, first, last in exceptions
        ),
        vacations=tuple(Vacation(first, last) for first, last in vacations),
        lead_time_hours=values[0],
        booking_window_days=values[1],
        min_duration_minutes=values[2],
        slot_step_minutes=values[3],
        buffer_before_minutes=values[4],
        buffer_after_minutes=values[5],
        instant_book=bool(values[6]),
    )


_BASE = AvailabilityPolicy("UTC")
_DEFAULTS = (
    _BASE.lead_time_hours,
    _BASE.booking_window_days,
    _BASE.min_duration_minutes,
    _BASE.slot_step_minutes,
    _BASE.buffer_before_minutes,
    _BASE.buffer_after_minutes,
    _BASE.instant_book,
)


def load_policy(session: Session, provider: Provider) -> AvailabilityPolicy:
    """The provider's whole availability policy as the pure domain value."""
    return policy_of(session, load_scope(session, provider.id))


def _window_key(window: WeeklyWindow) -> tuple[int, int, int]:
    return (window.weekday, window.start_minute, window.end_minute)


def put_availability(
    session: Session, provider_id: str, policy: AvailabilityPolicy, now: datetime, *, actor: str
) -> AvailabilityPolicy:
    """Replace the provider's rules, exceptions, vacations, settings and zone with ``policy``."""
    provider = get_provider(session, provider_id)
    lock_providers(session, [provider.id])
    provider.timezone = policy.timezone
    provider.updated_at = now
    for table in (WeeklyRule, AvailabilityException, VacationRow):
        session.execute(delete(table).where(table.provider_id == provider.id))
    session.add_all(_rows(provider, policy))
    _store_settings(session, provider, policy, now)
    session.add(
        AuditEntry(
            tenant_id=provider.tenant_id,
            at=now,
            actor=actor,
            action="availability.replaced",
            subject_type="provider",
            subject_id=provider.id,
            data={
                "timezone": policy.timezone,
                "weekly": len(policy.weekly),
                "exceptions": len(policy.exceptions),
                "vacations": len(policy.vacations),
            },
        )
    )
    session.flush()
    _rules_recorded(provider.id, policy)
    return policy


def _rules_recorded(provider_id: str, policy: AvailabilityPolicy) -> None:
    """``cal.rule.updated`` for the new rule set, ``cal.exception.upserted`` per exception.

    weekday_mask: bit d set when weekday d (Monday 0) has a window; span_minutes: how
    much of the day an exception opens or closes (a whole closed day is 1440).
    """
    mask = sum({1 << window.weekday for window in policy.weekly})
    record(
        "cal.rule.updated",
        provider_id=provider_id,
        rule_count=len(policy.weekly),
        weekday_mask=mask,
        timezone=policy.timezone,
        lead_time_hours=policy.lead_time_hours,
    )
    for exception in policy.exceptions:
        first, last = exception.start_minute, exception.end_minute
        span = 1440 if first is None or last is None else last - first
        record(
            "cal.exception.upserted",
            provider_id=provider_id,
            day=exception.day.isoformat(),
            kind=exception.kind.value,
            span_minutes=span,
        )


def _rows(
    provider: Provider, policy: AvailabilityPolicy
) -> list[WeeklyRule | AvailabilityException | VacationRow]:
    """The provider's new rule rows, in its tenant (as every row of a provider is)."""
    provider_id, tenant_id = provider.id, provider.tenant_id
    rows: list[WeeklyRule | AvailabilityException | VacationRow] = [
        WeeklyRule(
            id=new_id("wkr"),
            tenant_id=tenant_id,
            provider_id=provider_id,
            weekday=w.weekday,
            start_minute=w.start_minute,
            end_minute=w.end_minute,
        )
        for w in sorted(set(policy.weekly), key=_window_key)
    ]
    rows += [
        AvailabilityException(
            id=new_id("exc"),
            tenant_id=tenant_id,
            provider_id=provider_id,
            day=e.day,
            kind=e.kind.value,
            start_minute=e.start_minute,
            end_minute=e.end_minute,
        )
        for e in policy.exceptions
    ]
    rows += [
        VacationRow(
            id=new_id("vac"),
            tenant_id=tenant_id,
            provider_id=provider_id,
            first_day=v.first,
            last_day=v.last,
        )
        for v in policy.vacations
    ]
    return rows


def _store_settings(
    session: Session, provider: Provider, policy: AvailabilityPolicy, now: datetime
) -> None:
    settings = session.get(AvailabilitySettings, provider.id)
    if settings is None:
        settings = AvailabilitySettings(provider_id=provider.id, tenant_id=provider.tenant_id)
        session.add(settings)
    settings.lead_time_hours = policy.lead_time_hours
    settings.booking_window_days = policy.booking_window_days
    settings.min_duration_minutes = policy.min_duration_minutes
    settings.slot_step_minutes = policy.slot_step_minutes
    settings.buffer_before_minutes = policy.buffer_before_minutes
    settings.buffer_after_minutes = policy.buffer_after_minutes
    settings.instant_book = policy.instant_book
    settings.updated_at = now


def get_availability(session: Session, provider_id: str) -> AvailabilityPolicy:
    """The stored policy of ``provider_id``."""
    return policy_of(session, load_scope(session, provider_id))


def busy_for_span(
    session: Session,
    provider_id: str,
    policy: AvailabilityPolicy,
    span: tuple[datetime, datetime],
    now: datetime,
    exclude: Exclude = Exclude(),
    related: Related | None = None,
) -> list[Busy]:
    """Busy items that can block a slot lying in ``span`` once the buffers are applied."""
    low, high = padded(policy, span)
    return load_busy(session, provider_id, low, high, now, exclude=exclude, related=related)


def padded(
    policy: AvailabilityPolicy, span: tuple[datetime, datetime]
) -> tuple[datetime, datetime]:
    low = span[0] - timedelta(minutes=policy.buffer_after_minutes)
    high = span[1] + timedelta(minutes=policy.buffer_before_minutes)
    return low, high


def check_query(
    policy: AvailabilityPolicy, start: datetime, end: datetime, duration: timedelta
) -> int:
    """Validate a slot query before touching the database; returns the duration in seconds."""
    require_aware(start=start, end=end)
    if end <= start:
        raise InvalidInterval("end must be after start")
    if end - start > timedelta(days=MAX_QUERY_DAYS):
        raise InvalidInput(f"a query may span at most {MAX_QUERY_DAYS} days", code="range_too_long")
    return duration_seconds(policy, duration)


def find_slots(
    session: Session,
    provider_id: str,
    start: datetime,
    end: datetime,
    duration: timedelta | None,
    now: datetime,
    *,
    exclude: Exclude = Exclude(),
    surface: str = "api",
    meeting_type: str | None = None,
) -> SlotList:
    """Every free slot of ``duration`` for the provider whose start lies in [start, end).

    surface: who asked (api, page, proposal), for the feasibility metrics. meeting_type:
    the provider's type (id or slug) whose lengths, buffers and lead time apply; without
    a duration its first length is taken.
    """
    started = time.perf_counter()
    scope = load_scope(session, provider_id)
    policy = policy_of(session, scope)
    if meeting_type is not None:
        kind = meeting_types.bookable_type(session, scope.id, meeting_type)
        duration = duration or timedelta(minutes=meeting_types.durations_of(kind)[0])
        meeting_types.check_length(kind, duration)
        policy = meeting_types.policy_for(policy, kind)
    if duration is None:
        raise InvalidInput("duration is required", code="invalid_duration")
    check_query(policy, start, end, duration)
    low = max(start, now + timedelta(hours=policy.lead_time_hours))
    high = min(end, now + timedelta(days=policy.booking_window_days) + timedelta(seconds=1))
    rows: list[BusyRow] = []
    if low < high:
        span = padded(policy, (low, high + duration))
        rows = busy_rows(session, scope.id, *span, now, exclude=exclude, related=scope.related)
    slots = compute_slots_from_rows(policy, rows, now, start, end, duration)
    _feasibility_measured(
        scope.id,
        policy,
        (start, end),
        (low, high),
        slots=len(slots),
        busy=len(rows),
        seconds=time.perf_counter() - started,
        surface=surface,
    )
    return SlotList(scope.timezone, slots)


def _feasibility_measured(
    provider_id: str,
    policy: AvailabilityPolicy,
    asked: tuple[datetime, datetime],
    searched: tuple[datetime, datetime],
    *,
    slots: int,
    busy: int,
    seconds: float,
    surface: str,
) -> None:
    """The metrics and the ``cal.feasible.generated`` event of one slot search.

    truncated: the lead time or the booking window cut the range asked for, so some of
    it was never searched; candidate_windows: the availability windows in what was.
    """
    low, high = searched
    truncated = low > asked[0] or high < asked[1]
    candidates = 0
    if low < high:
        zone = policy.zone
        candidates = window_count(policy, low.astimezone(zone).date(), high.astimezone(zone).date())
    FEASIBILITY_SECONDS.labels(surface=surface).observe(seconds)
    FEASIBILITY_SLOTS.labels(surface=surface).observe(slots)
    if truncated:
        FEASIBILITY_TRUNCATED.labels(surface=surface).inc()
    record(
        "cal.feasible.generated",
        provider_id=provider_id,
        surface=surface,
        slot_count=slots,
        candidate_windows=candidates,
        busy_count=busy,
        duration_ms=round(seconds * 1000, 3),
        truncated=truncated,
    )


def explain_slot(
    session: Session,
    provider_id: str,
    at: datetime,
    duration: timedelta,
    now: datetime,
    *,
    exclude: Exclude = Exclude(),
) -> Explanation:
    """Why the slot [at, at + duration) is or is not bookable for the provider."""
    scope = load_scope(session, provider_id)
    policy = policy_of(session, scope)
    require_aware(at=at)
    if duration <= timedelta(0):
        raise InvalidInput("duration must be positive", code="invalid_duration")
    span = (at, at + duration)
    busy = busy_for_span(session, scope.id, policy, span, now, exclude, scope.related)
    return explain(policy, busy, now, at, duration)


def check_bookable(
    session: Session,
    provider_id: str,
    policy: AvailabilityPolicy,
    start: datetime,
    end: datetime,
    now: datetime,
    *,
    exclude: Exclude = Exclude(),
    related: Related | None = None,
) -> None:
    """Raise unless [start, end) is a bookable slot right now (call under the provider lock).

    Only busy reasons make it ``SlotTaken`` (someone else got there first); any rule
    reason (outside hours, lead time, off grid, too short) makes it ``SlotUnavailable``.
    Rules are checked first, so a slot that breaks one costs no busy query.
    """
    check_rules(policy, start, end, now)
    busy = busy_for_span(session, provider_id, policy, (start, end), now, exclude, related)
    check_free(policy, busy, start, end, now)


def check_rules(policy: AvailabilityPolicy, start: datetime, end: datetime, now: datetime) -> None:
    """Raise ``SlotUnavailable`` unless [start, end) keeps every rule (busy time aside)."""
    require_aware(start=start, end=end)
    if end <= start:
        raise InvalidInterval("end must be after start")
    rules = [r.message for r in explain(policy, (), now, start, end - start).reasons]
    if rules:
        raise SlotUnavailable(rules)


def check_free(
    policy: AvailabilityPolicy, busy: list[Busy], start: datetime, end: datetime, now: datetime
) -> None:
    """Raise ``SlotTaken`` when ``busy`` (buffers applied) blocks [start, end)."""
    verdict = explain(policy, busy, now, start, end - start)
    if not verdict.bookable:
        raise SlotTaken(", ".join(f"{r.kind} {r.ref}" for r in verdict.reasons if r.kind))
