"""Why one instant is or is not bookable: the reasons behind ``compute_slots``.

``explain`` applies the same rules as the slot engine to a single start instant and
lists every rule it breaks, each with a stable ``code`` for programs and a ``message``
for people; busy reasons name the blocking item (kind, ref, label, interval).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

from core.domain.availability import AvailabilityPolicy
from core.domain.busy import Busy, BusyKind, blocks
from core.domain.errors import BelowMinimumDuration
from core.domain.slots import bookable_range, duration_seconds, require_aware
from core.domain.windows import DayPlan, Minutes, day_plan
from core.domain.zones import is_nonexistent, local_day, local_seconds, offset_at, resolve_window


class ReasonCode(StrEnum):
    """Stable machine-readable reason codes."""

    OUTSIDE_RULES = "outside_rules"
    EXCEPTION = "exception"
    VACATION = "vacation"
    LEAD_TIME = "lead_time"
    BOOKING_WINDOW = "booking_window"
    BUSY_EXTERNAL = "busy_external"
    BUSY_BOOKING = "busy_booking"
    BUSY_HOLD = "busy_hold"
    BUSY_RELATED = "busy_related"
    OFF_GRID = "off_grid"
    BELOW_MINIMUM_DURATION = "below_minimum_duration"
    NONEXISTENT_LOCAL_TIME = "nonexistent_local_time"


@dataclass(frozen=True, slots=True)
class Reason:
    """One broken rule; the busy fields are set only for ``busy_*`` codes."""

    code: ReasonCode
    message: str
    kind: BusyKind | None = None
    ref: str | None = None
    label: str | None = None
    busy_start: datetime | None = None
    busy_end: datetime | None = None


@dataclass(frozen=True, slots=True)
class Explanation:
    """Whether [at, at + duration) is bookable, and every reason it is not."""

    bookable: bool
    reasons: list[Reason] = field(default_factory=list)


def explain(
    policy: AvailabilityPolicy,
    busy: Iterable[Busy],
    now: datetime,
    at: datetime,
    duration: timedelta,
) -> Explanation:
    """Explain the slot starting at ``at``; ``bookable`` iff ``compute_slots`` offers it.

    A duration below the minimum is a reason here, not an error. An ``at`` whose own
    zone skips its wall-clock time (a ZoneInfo datetime inside a DST gap) is reported as
    ``nonexistent_local_time``: the caller named a time that never happens.
    """
    require_aware(now=now, at=at)
    reasons: list[Reason] = []
    length = _length(policy, duration, reasons)
    if is_nonexistent(at):
        reasons.append(Reason(ReasonCode.NONEXISTENT_LOCAL_TIME, f"{at} does not exist locally"))
    start = at.timestamp()
    reasons += _range_reasons(policy, now, start)
    reasons += _window_reasons(policy, start, length)
    reasons += _busy_reasons(policy, busy, start, start + length)
    return Explanation(bookable=not reasons, reasons=reasons)


def _length(policy: AvailabilityPolicy, duration: timedelta, reasons: list[Reason]) -> int:
    try:
        return duration_seconds(policy, duration)
    except BelowMinimumDuration as error:
        reasons.append(Reason(ReasonCode.BELOW_MINIMUM_DURATION, str(error)))
        return int(duration.total_seconds())


def _range_reasons(policy: AvailabilityPolicy, now: datetime, start: float) -> list[Reason]:
    earliest, latest = bookable_range(policy, now)
    if start < earliest:
        text = f"starts less than the lead time of {policy.lead_time_hours} h from now"
        return [Reason(ReasonCode.LEAD_TIME, text)]
    if start > latest:
        text = f"starts beyond the booking window of {policy.booking_window_days} days"
        return [Reason(ReasonCode.BOOKING_WINDOW, text)]
    return []


def _window_reasons(policy: AvailabilityPolicy, start: float, length: int) -> list[Reason]:
    zone = policy.zone
    plan = day_plan(policy, local_day(int(start) + offset_at(zone, start)))
    verdict = _verdict(policy, plan.windows, plan, start, length)
    if verdict == "on_grid":
        return []
    if verdict == "fits":
        step = policy.slot_step_minutes
        return [Reason(ReasonCode.OFF_GRID, f"not on the {step}-minute grid of its window")]
    if _verdict(policy, list(plan.weekly), plan, start, length) != "outside":
        if plan.vacation:
            return [Reason(ReasonCode.VACATION, f"{plan.day} is during a vacation")]
        return [Reason(ReasonCode.EXCEPTION, f"an unavailable exception covers {plan.day}")]
    text = f"not wholly inside an availability window on {plan.day}"
    return [Reason(ReasonCode.OUTSIDE_RULES, text)]


def _verdict(
    policy: AvailabilityPolicy, windows: list[Minutes], plan: DayPlan, start: float, length: int
) -> str:
    """ "on_grid", "fits" (inside a window, off grid) or "outside" for [start, start+length)."""
    fits = False
    for start_minute, end_minute in windows:
        window = resolve_window(
            policy.zone,
            local_seconds(plan.day, start_minute),
            local_seconds(plan.day, end_minute),
        )
        if start in window.starts(policy.slot_step_minutes * 60, length):
            return "on_grid"
        fits = fits or any(low <= start and start + length <= high for low, high in window.segments)
    return "fits" if fits else "outside"


def _busy_reasons(
    policy: AvailabilityPolicy, busy: Iterable[Busy], start: float, end: float
) -> list[Reason]:
    reasons = []
    for item in busy:
        if blocks(policy, item, start, end):
            what = item.label or item.ref or item.kind.value
            reasons.append(
                Reason(
                    ReasonCode(f"busy_{item.kind.value}"),
                    f"overlaps {item.kind.value} {what} ({item.start} – {item.end})",
                    kind=item.kind,
                    ref=item.ref,
                    label=item.label,
                    busy_start=item.start,
                    busy_end=item.end,
                )
            )
    return reasons
