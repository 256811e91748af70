"""The feasibility engine, named after the seed's test list (§1.12.13)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from core.domain import (
    AvailabilityPolicy,
    Busy,
    BusyKind,
    compute_slots,
    date_exception,
    vacation,
    weekly_windows,
)
from core.domain.errors import (
    BelowMinimumDuration,
    InvalidInterval,
    InvalidTime,
    InvalidWeekday,
    InvalidWindow,
    NaiveDatetime,
    UnknownZone,
)

BERLIN = ZoneInfo("Europe/Berlin")
NOW = datetime(2027, 3, 1, 8, 0, tzinfo=UTC)  # a Monday
HALF_HOUR = timedelta(minutes=30)


def local(*parts: int, zone: ZoneInfo = BERLIN, fold: int = 0) -> datetime:
    return datetime(*parts, tzinfo=zone, fold=fold).astimezone(UTC)  # type: ignore[misc]


def policy(**overrides: object) -> AvailabilityPolicy:
    settings: dict[str, object] = {
        "timezone": "Europe/Berlin",
        "weekly": weekly_windows(["mon", "tue", "wed", "thu", "fri"], "09:00", "12:00"),
        "lead_time_hours": 0,
    }
    settings.update(overrides)
    return AvailabilityPolicy(**settings)  # type: ignore[arg-type]


def starts_on(the_policy: AvailabilityPolicy, day: date, busy: list[Busy] | None = None) -> list:
    first = datetime.combine(day, datetime.min.time(), BERLIN).astimezone(UTC)
    slots = compute_slots(the_policy, busy or [], NOW, first, first + timedelta(days=1), HALF_HOUR)
    return [slot.start.astimezone(BERLIN).strftime("%H:%M") for slot in slots]


def test_feasibility_happy_path_weekly_rules_and_available_override() -> None:
    the_policy = policy(exceptions=(date_exception("2027-03-06", "available", "10:00", "11:00"),))
    assert starts_on(the_policy, date(2027, 3, 3)) == [
        "09:00",
        "09:30",
        "10:00",
        "10:30",
        "11:00",
        "11:30",
    ]
    assert starts_on(the_policy, date(2027, 3, 6)) == ["10:00", "10:30"]  # a Saturday
    assert starts_on(the_policy, date(2027, 3, 7)) == []
    slot = compute_slots(
        the_policy, [], NOW, local(2027, 3, 3, 9), local(2027, 3, 3, 9, 1), HALF_HOUR
    )
    assert [(s.start, s.end) for s in slot] == [(local(2027, 3, 3, 9), local(2027, 3, 3, 9, 30))]
    assert slot[0].start.tzinfo is UTC


def test_longer_duration_must_fit_wholly_inside_the_window() -> None:
    the_policy = policy()
    first = local(2027, 3, 3)
    slots = compute_slots(the_policy, [], NOW, first, first + timedelta(days=1), timedelta(hours=2))
    assert [s.start.astimezone(BERLIN).hour for s in slots] == [9, 9, 10]


def test_lead_time_and_booking_window_exclude_starts() -> None:
    the_policy = policy(lead_time_hours=24, booking_window_days=2)
    now = local(2027, 3, 2, 10)
    slots = compute_slots(the_policy, [], now, now, now + timedelta(days=10), HALF_HOUR)
    starts = [s.start for s in slots]
    assert min(starts) == local(2027, 3, 3, 10)  # exactly now + 24 h is allowed
    assert max(starts) == local(2027, 3, 4, 10)  # exactly now + 2 days is allowed


def test_unavailable_exception_removes_a_slice_and_whole_days() -> None:
    the_policy = policy(
        exceptions=(
            date_exception("2027-03-03", "unavailable", "10:00", "11:00"),
            date_exception("2027-03-04", "unavailable"),
        )
    )
    assert starts_on(the_policy, date(2027, 3, 3)) == ["09:00", "09:30", "11:00", "11:30"]
    assert starts_on(the_policy, date(2027, 3, 4)) == []
    assert starts_on(the_policy, date(2027, 3, 5)) != []


def test_available_exception_adds_a_slice_on_a_closed_day() -> None:
    the_policy = policy(exceptions=(date_exception("2027-03-07", "available", "14:00", "15:00"),))
    assert starts_on(the_policy, date(2027, 3, 7)) == ["14:00", "14:30"]


def test_vacation_removes_every_day_in_its_range() -> None:
    the_policy = policy(vacations=(vacation("2027-03-03", "2027-03-04"),))
    assert starts_on(the_policy, date(2027, 3, 2)) != []
    assert starts_on(the_policy, date(2027, 3, 3)) == []
    assert starts_on(the_policy, date(2027, 3, 4)) == []
    assert starts_on(the_policy, date(2027, 3, 5)) != []


def test_busy_of_every_kind_blocks_and_buffers_pad_bookings_and_holds() -> None:
    the_policy = policy(buffer_before_minutes=30, buffer_after_minutes=30)
    busy = [
        Busy(local(2027, 3, 3, 9), local(2027, 3, 3, 9, 15), BusyKind.EXTERNAL, "src1", "Google"),
        Busy(local(2027, 3, 4, 10), local(2027, 3, 4, 10, 30), BusyKind.BOOKING, "bk1"),
        Busy(local(2027, 3, 5, 10), local(2027, 3, 5, 10, 30), BusyKind.HOLD, "h1"),
        Busy(local(2027, 3, 2, 11), local(2027, 3, 2, 12), BusyKind.RELATED, "unit9"),
    ]
    assert starts_on(the_policy, date(2027, 3, 3), busy) == [
        "09:30",
        "10:00",
        "10:30",
        "11:00",
        "11:30",
    ]
    assert starts_on(the_policy, date(2027, 3, 4), busy) == ["09:00", "11:00", "11:30"]
    assert starts_on(the_policy, date(2027, 3, 5), busy) == ["09:00", "11:00", "11:30"]
    assert starts_on(the_policy, date(2027, 3, 2), busy) == ["09:00", "09:30", "10:00", "10:30"]


def test_busy_order_does_not_matter() -> None:
    busy = [
        Busy(local(2027, 3, 3, 10), local(2027, 3, 3, 10, 45)),
        Busy(local(2027, 3, 3, 9, 5), local(2027, 3, 3, 9, 10)),
        Busy(local(2027, 3, 3, 9), local(2027, 3, 3, 12)),
    ]
    assert starts_on(policy(), date(2027, 3, 3), busy) == []
    assert starts_on(policy(), date(2027, 3, 3), busy[:2]) == starts_on(
        policy(), date(2027, 3, 3), busy[1::-1]
    )


def test_time_zones_spring_forward_trim() -> None:
    the_policy = policy(weekly=weekly_windows(["sun"], "02:30", "04:00"))
    assert starts_on(the_policy, date(2027, 3, 28)) == ["03:00", "03:30"]
    stepped = policy(weekly=weekly_windows(["sun"], "02:30", "04:00"), slot_step_minutes=45)
    assert starts_on(stepped, date(2027, 3, 28)) == ["03:15"]  # 02:30 never exists


def test_time_zones_fall_back_duplication() -> None:
    the_policy = policy(weekly=weekly_windows(["sun"], "01:00", "03:00"), booking_window_days=300)
    first = local(2027, 10, 31)
    slots = compute_slots(the_policy, [], NOW, first, first + timedelta(days=1), HALF_HOUR)
    assert [s.start for s in slots] == [
        local(2027, 10, 31, 1),
        local(2027, 10, 31, 1, 30),
        local(2027, 10, 31, 2),
        local(2027, 10, 31, 2, 30),
        local(2027, 10, 31, 2, fold=1),
        local(2027, 10, 31, 2, 30, fold=1),
    ]


def test_time_zones_window_until_24_00() -> None:
    the_policy = policy(weekly=weekly_windows(["wed"], "23:00", "24:00"))
    assert starts_on(the_policy, date(2027, 3, 3)) == ["23:00", "23:30"]


@pytest.mark.parametrize(
    ("zone", "day", "window", "expected"),
    [
        ("Australia/Lord_Howe", date(2027, 10, 3), ("01:00", "04:00"), 5),  # 02:00→02:30
        ("Australia/Lord_Howe", date(2027, 4, 4), ("01:00", "03:00"), 5),  # 01:30–02:00 twice
        ("Asia/Kolkata", date(2027, 3, 3), ("09:00", "12:00"), 6),
    ],
)
def test_time_zones_half_hour_shifts_and_offsets_match_zoneinfo(
    zone: str, day: date, window: tuple[str, str], expected: int
) -> None:
    tz = ZoneInfo(zone)
    the_policy = policy(
        timezone=zone, weekly=weekly_windows([day.strftime("%a")], *window), booking_window_days=300
    )
    first = datetime.combine(day, datetime.min.time(), tz).astimezone(UTC)
    slots = compute_slots(the_policy, [], NOW, first, first + timedelta(days=1), HALF_HOUR)
    assert len(slots) == expected
    for slot in slots:
        wall = slot.start.astimezone(tz)
        assert wall.astimezone(UTC) == slot.start
        assert window[0] <= wall.strftime("%H:%M") < window[1]
        assert wall.minute in (0, 30)


def test_bad_inputs_raise_specific_errors() -> None:
    with pytest.raises(BelowMinimumDuration):
        compute_slots(policy(), [], NOW, NOW, NOW + timedelta(days=1), timedelta(minutes=15))
    with pytest.raises(InvalidInterval):
        compute_slots(policy(), [], NOW, NOW, NOW, HALF_HOUR)
    with pytest.raises(NaiveDatetime):
        compute_slots(policy(), [], datetime(2027, 3, 1), NOW, NOW + HALF_HOUR, HALF_HOUR)
    with pytest.raises(UnknownZone):
        policy(timezone="Mars/Olympus")
    with pytest.raises(InvalidTime):
        weekly_windows(["mon"], "24:00", "24:00")
    with pytest.raises(InvalidTime):
        weekly_windows(["mon"], "9:75", "10:00")
    with pytest.raises(InvalidWeekday):
        weekly_windows(["someday"], "09:00", "10:00")
    with pytest.raises(InvalidWindow):
        weekly_windows(["mon"], "10:00", "09:00")
