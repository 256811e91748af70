"""Properties of the slot engine over zones that shift their clocks, around their shifts."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from hypothesis import example, given, settings
from hypothesis import strategies as st

from core.domain import AvailabilityPolicy, Busy, BusyKind, compute_slots, explain
from core.domain.availability import DateException, ExceptionKind, WeeklyWindow
from core.domain.windows import day_windows
from core.domain.zones import window_to_utc

# Days around each zone's 2027 clock changes (Kolkata has none: a plain +05:30 week).
AROUND = {
    "Europe/Berlin": [date(2027, 3, 28), date(2027, 10, 31)],
    "America/New_York": [date(2027, 3, 14), date(2027, 11, 7)],
    "Australia/Lord_Howe": [date(2027, 4, 4), date(2027, 10, 3)],
    "Asia/Kolkata": [date(2027, 6, 6)],
}
NOW = datetime(2027, 1, 1, tzinfo=UTC)

windows = st.tuples(st.integers(0, 47), st.integers(1, 16)).map(
    lambda pair: (pair[0] * 30, min(24 * 60, pair[0] * 30 + pair[1] * 30))
)


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[AvailabilityPolicy, date, list[Busy], int]:
    zone = draw(st.sampled_from(sorted(AROUND)))
    day = draw(st.sampled_from(AROUND[zone])) + timedelta(days=draw(st.integers(-1, 1)))
    weekly = tuple(
        WeeklyWindow(draw(st.integers(0, 6)), *draw(windows))
        for _ in range(draw(st.integers(1, 4)))
    )
    exceptions = tuple(
        DateException(day, draw(st.sampled_from(list(ExceptionKind))), *draw(windows))
        for _ in range(draw(st.integers(0, 2)))
    )
    policy = AvailabilityPolicy(
        zone,
        weekly=weekly,
        exceptions=exceptions,
        lead_time_hours=0,
        booking_window_days=400,
        slot_step_minutes=draw(st.sampled_from([15, 30, 45, 60])),
        buffer_before_minutes=draw(st.sampled_from([0, 15])),
        buffer_after_minutes=draw(st.sampled_from([0, 30])),
    )
    midnight = datetime.combine(day, datetime.min.time(), ZoneInfo(zone)).astimezone(UTC)
    busy = [
        Busy(
            midnight + timedelta(minutes=start),
            midnight + timedelta(minutes=start + length),
            draw(st.sampled_from(list(BusyKind))),
            ref=str(i),
        )
        for i, (start, length) in enumerate(
            draw(st.lists(st.tuples(st.integers(-120, 1600), st.integers(5, 180)), max_size=5))
        )
    ]
    return policy, day, busy, draw(st.sampled_from([30, 45, 60, 90]))


def query(policy: AvailabilityPolicy, day: date, busy: list[Busy], minutes: int) -> list:
    midnight = datetime.combine(day, datetime.min.time(), policy.zone).astimezone(UTC)
    return compute_slots(
        policy,
        busy,
        NOW,
        midnight - timedelta(hours=3),
        midnight + timedelta(hours=28),
        timedelta(minutes=minutes),
    )


def _policy(zone: str, weekday: int, start: int, end: int, step: int = 30) -> AvailabilityPolicy:
    return AvailabilityPolicy(
        zone,
        weekly=(WeeklyWindow(weekday, start, end),),
        lead_time_hours=0,
        booking_window_days=400,
        slot_step_minutes=step,
    )


# The DST cases of DESIGN.md, pinned.
SPRING_TRIM = (_policy("Europe/Berlin", 6, 150, 240), date(2027, 3, 28), [], 30)
FALL_BACK = (_policy("Europe/Berlin", 6, 60, 180), date(2027, 10, 31), [], 30)
UNTIL_MIDNIGHT = (_policy("America/New_York", 5, 22 * 60, 24 * 60), date(2027, 11, 6), [], 60)
LORD_HOWE = (_policy("Australia/Lord_Howe", 6, 60, 180, 15), date(2027, 4, 4), [], 30)
KOLKATA = (_policy("Asia/Kolkata", 6, 9 * 60, 17 * 60), date(2027, 6, 6), [], 30)
GAP_START_OFF_GRID = (_policy("Europe/Berlin", 6, 150, 240, 45), date(2027, 3, 28), [], 30)
END_IN_REPEATED_HOUR = (_policy("Europe/Berlin", 6, 60, 150), date(2027, 10, 31), [], 60)


def pinned(test):  # type: ignore[no-untyped-def]
    for case in (
        SPRING_TRIM,
        FALL_BACK,
        UNTIL_MIDNIGHT,
        LORD_HOWE,
        KOLKATA,
        GAP_START_OFF_GRID,
        END_IN_REPEATED_HOUR,
    ):
        test = example(case)(test)
    return test


@settings(max_examples=60, deadline=None)
@pinned
@given(scenarios())
def test_slots_lie_in_windows_and_never_overlap_busy(
    case: tuple[AvailabilityPolicy, date, list[Busy], int],
) -> None:
    policy, day, busy, minutes = case
    zone = policy.zone
    segments = [
        segment
        for offset in (-2, -1, 0, 1, 2)
        for start, end in day_windows(policy, day + timedelta(days=offset))
        for segment in window_to_utc(zone, day + timedelta(days=offset), start, end)
    ]
    for slot in query(policy, day, busy, minutes):
        assert any(low <= slot.start and slot.end <= high for low, high in segments)
        wall = slot.start.astimezone(zone)
        # The start is a real wall-clock time: converting it back gives the same instant.
        assert (
            wall.replace(tzinfo=None).replace(tzinfo=zone, fold=wall.fold).astimezone(UTC)
            == slot.start
        )
        for item in busy:
            pad = (
                (
                    timedelta(minutes=policy.buffer_before_minutes),
                    timedelta(minutes=policy.buffer_after_minutes),
                )
                if item.kind in (BusyKind.BOOKING, BusyKind.HOLD)
                else (timedelta(0), timedelta(0))
            )
            assert not (item.start - pad[0] < slot.end and item.end + pad[1] > slot.start)


@settings(max_examples=60, deadline=None)
@pinned
@given(scenarios())
def test_adding_busy_never_adds_slots_and_order_does_not_matter(
    case: tuple[AvailabilityPolicy, date, list[Busy], int],
) -> None:
    policy, day, busy, minutes = case
    free = query(policy, day, [], minutes)
    with_busy = query(policy, day, busy, minutes)
    assert set(with_busy) <= set(free)
    assert query(policy, day, busy[::-1], minutes) == with_busy
    assert with_busy == sorted(with_busy)


@settings(max_examples=60, deadline=None)
@pinned
@given(scenarios())
def test_explain_agrees_with_compute_slots(
    case: tuple[AvailabilityPolicy, date, list[Busy], int],
) -> None:
    policy, day, busy, minutes = case
    duration = timedelta(minutes=minutes)
    offered = {slot.start for slot in query(policy, day, busy, minutes)}
    midnight = datetime.combine(day, datetime.min.time(), policy.zone).astimezone(UTC)
    probes = {midnight + timedelta(minutes=15 * k) for k in range(-4, 26 * 4)} | offered
    for at in probes:
        assert explain(policy, busy, NOW, at, duration).bookable == (at in offered), at
